//! `ringledger verify DIR [--repair] [--format json]`.

use std::path::Path;
use std::process::ExitCode;

use ringledger::ledger::{Ledger, LedgerConfig};
use serde::Serialize;

use crate::{describe_damage, fmt, ledger_dir, open_table_read_only, Outcome};
use crate::{Report, ReportFormat};

/// What `verify` found and did. Text prints it as it always has (findings on stdout, problems
/// and advice on stderr); JSON prints it as one object. The exit status is the same in both.
#[derive(Serialize, Default)]
struct Verdict {
    ledger: String,
    /// `damaged` after `--repair` only if repair failed.
    status: Status,
    /// The first problem found, before any repair.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    /// Records and segments of the (repaired) ledger, when it reads whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<u64>,
    /// What `--repair` did.
    repairs: Vec<String>,
    /// Entries of the ledger directory that are not the ledger's.
    foreign: Vec<Foreign>,
    /// The consumers' table of a queue directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<TableVerdict>,
}

/// What a check found, as the JSON shows it (`"clean"`, `"damaged"`, `"repaired"`).
#[derive(Serialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Status {
    Clean,
    /// Until a check says otherwise.
    #[default]
    Damaged,
    Repaired,
}

#[derive(Serialize)]
struct Foreign {
    name: String,
    what: &'static str,
}

#[derive(Serialize, Default)]
struct TableVerdict {
    path: String,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumers: Option<usize>,
    repairs: Vec<String>,
}

impl Verdict {
    fn ok(&self) -> bool {
        self.status != Status::Damaged
            && self.foreign.is_empty()
            && self
                .table
                .as_ref()
                .is_none_or(|t| t.status != Status::Damaged)
    }
}

pub fn run(dir: &Path, repair: bool, format: ReportFormat) -> Outcome {
    let path = ledger_dir(dir)?;
    let mut verdict = Verdict {
        ledger: path.display().to_string(),
        // What the ledger ignores, the operator should hear about: a directory or a FIFO
        // named like a segment, or any file that is not the ledger's.
        foreign: foreign_entries(&path)?,
        ..Verdict::default()
    };
    check_ledger(&path, repair, &mut verdict)?;
    let table_dir = dir.join("table");
    if verdict.status != Status::Damaged && table_dir.is_dir() {
        verdict.table = Some(check_table(&table_dir, repair)?);
    }
    verdict.print(format)?;
    Ok(if verdict.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The entries of the ledger directory `path` that are not the ledger's: anything but
/// the files [`ringledger::ledger::ledger_file_kind`] names, as regular files.
fn foreign_entries(path: &Path) -> Result<Vec<Foreign>, String> {
    let mut foreign = Vec::new();
    let entries =
        std::fs::read_dir(path).map_err(|e| format!("{}: {}", path.display(), fmt::chain(&e)))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {}", path.display(), fmt::chain(&e)))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {}", entry.path().display(), fmt::chain(&e)))?;
        let ours = ringledger::ledger::ledger_file_kind(&name).is_some();
        let what = match (ours, kind.is_file(), kind.is_dir()) {
            (true, true, _) => continue,
            (true, false, true) => "a directory named like a ledger file",
            (true, false, false) => "not a regular file, though named like a ledger file",
            (false, _, true) => "a directory",
            (false, _, false) => "a foreign entry",
        };
        foreign.push(Foreign { name, what });
    }
    foreign.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(foreign)
}

/// Checks the ledger read-only; with `repair`, applies recovery when it is damaged and checks
/// again. An `Err` is a repair that failed outright.
fn check_ledger(path: &Path, repair: bool, verdict: &mut Verdict) -> Result<(), String> {
    let read_only = LedgerConfig::default().with_read_only(true);
    let problem = match Ledger::open(path, read_only) {
        Err(e) => fmt::chain(&e),
        Ok(ledger) => match ledger.verify() {
            Err(e) => fmt::chain(&e),
            Ok(records) => match ledger.recovery().cut.first() {
                Some((segment, offset, damage)) => format!(
                    "segment {segment}: {} at offset {offset}",
                    describe_damage(damage)
                ),
                None => {
                    verdict.status = Status::Clean;
                    verdict.records = Some(records);
                    verdict.segments = Some(ledger.segments().len());
                    verdict.head = Some(ledger.head());
                    return Ok(());
                }
            },
        },
    };
    verdict.problem = Some(problem);
    verdict.status = Status::Damaged;
    if !repair {
        return Ok(());
    }
    let ledger = Ledger::open(path, LedgerConfig::default().with_repair(true))
        .map_err(|e| format!("{}: repair failed: {}", path.display(), fmt::chain(&e)))?;
    let report = ledger.recovery();
    verdict.repairs.extend(report.rebuilt_meta.clone());
    for (segment, offset, damage) in &report.cut {
        verdict
            .repairs
            .push(format!("cut {segment} at offset {offset} ({damage:?})"));
    }
    for name in &report.removed_segments {
        verdict.repairs.push(format!("removed {name}"));
    }
    let records = ledger.verify().map_err(|e| {
        format!(
            "{}: still damaged after repair: {}",
            path.display(),
            fmt::chain(&e)
        )
    })?;
    verdict.status = Status::Repaired;
    verdict.records = Some(records);
    verdict.segments = Some(ledger.segments().len());
    verdict.head = Some(ledger.head());
    Ok(())
}

/// Checks the consumers' table of a queue directory: it opens and its log reads whole. With
/// `repair`, first applies its recovery (opening it for writing cuts a torn or damaged tail).
fn check_table(table_dir: &Path, repair: bool) -> Result<TableVerdict, String> {
    let mut verdict = TableVerdict {
        path: table_dir.display().to_string(),
        ..TableVerdict::default()
    };
    if repair {
        let table = ringledger::table::Table::open(table_dir, Default::default())
            .map_err(|e| format!("{}: repair failed: {}", table_dir.display(), fmt::chain(&e)))?;
        if let Some((file, offset, damage)) = table.recovery() {
            verdict
                .repairs
                .push(format!("cut {file} at offset {offset} ({damage:?})"));
        }
    }
    let problem = match open_table_read_only(table_dir) {
        Err(e) => e,
        Ok(table) => match table.recovery() {
            None => {
                verdict.status = Status::Clean;
                verdict.consumers = Some(table.all().map_err(|e| fmt::chain(&e))?.len());
                return Ok(verdict);
            }
            Some((file, offset, damage)) => format!(
                "{}: log {file}: {} at offset {offset}",
                table_dir.display(),
                describe_damage(damage)
            ),
        },
    };
    verdict.status = Status::Damaged;
    verdict.problem = Some(problem);
    Ok(verdict)
}

impl Report for Verdict {
    fn text(&self) {
        for foreign in &self.foreign {
            eprintln!(
                "{}: {}: {}; not part of the ledger",
                self.ledger, foreign.name, foreign.what
            );
        }
        let problem = self.problem.as_deref().unwrap_or_default();
        match self.status {
            Status::Clean => say!(
                "{}: clean: {} records in {} segments",
                self.ledger,
                self.records.unwrap_or_default(),
                self.segments.unwrap_or_default()
            ),
            Status::Repaired => {
                say!("{}: {problem}; repairing", self.ledger);
                for repair in &self.repairs {
                    say!("  {repair}");
                }
                say!(
                    "{}: clean after repair: {} records, head {}",
                    self.ledger,
                    self.records.unwrap_or_default(),
                    self.head.unwrap_or_default()
                );
            }
            Status::Damaged => {
                eprintln!("{}: {problem}", self.ledger);
                eprintln!("(run `ringledger verify --repair` to cut the log there)");
            }
        }
        if let Some(table) = &self.table {
            for repair in &table.repairs {
                say!("  table: {repair}");
            }
            match &table.problem {
                None => say!(
                    "{}: clean: {} consumers",
                    table.path,
                    table.consumers.unwrap_or_default()
                ),
                Some(problem) => {
                    eprintln!("{problem}");
                    eprintln!("(run `ringledger verify --repair` to cut the table's log there)");
                }
            }
        }
        if !self.foreign.is_empty() {
            eprintln!("(remove or move what is not the ledger's; `--repair` leaves it alone)");
        }
    }
}
