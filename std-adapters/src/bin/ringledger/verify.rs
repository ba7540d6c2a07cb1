//! `ringledger verify DIR [--repair]`.

use std::path::Path;
use std::process::ExitCode;

use ringledger::ledger::{Ledger, LedgerConfig};

use crate::{describe_damage, fmt, ledger_dir, open_table_read_only, Outcome};

pub fn run(dir: &Path, repair: bool) -> Outcome {
    let path = ledger_dir(dir)?;
    // What the ledger ignores, the operator should hear about: a directory or a FIFO named
    // like a segment, or any file that is not the ledger's.
    let foreign = foreign_entries(&path)?;
    for (name, what) in &foreign {
        eprintln!("{}: {name}: {what}; not part of the ledger", path.display());
    }
    let outcome = check(dir, &path, repair)?;
    if !foreign.is_empty() {
        eprintln!("(remove or move what is not the ledger's; `--repair` leaves it alone)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(outcome)
}

/// The entries of the ledger directory `path` that are not the ledger's: anything but
/// `ledger.meta`, `LOCK`, segment files and their `.tmp` leftovers as regular files.
fn foreign_entries(path: &Path) -> Result<Vec<(String, &'static str)>, String> {
    let mut foreign = Vec::new();
    let entries =
        std::fs::read_dir(path).map_err(|e| format!("{}: {}", path.display(), fmt::chain(&e)))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {}", path.display(), fmt::chain(&e)))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {}", entry.path().display(), fmt::chain(&e)))?;
        let ours = name == "ledger.meta"
            || name == "ledger.meta.tmp"
            || name == "LOCK"
            || ringledger::core::segment::parse_file_name(&name).is_ok()
            || name
                .strip_suffix(".tmp")
                .is_some_and(|base| ringledger::core::segment::parse_file_name(base).is_ok());
        let what = match (ours, kind.is_file(), kind.is_dir()) {
            (true, true, _) => continue,
            (true, false, true) => "a directory named like a ledger file",
            (true, false, false) => "not a regular file, though named like a ledger file",
            (false, _, true) => "a directory",
            (false, _, false) => "a foreign entry",
        };
        foreign.push((name, what));
    }
    foreign.sort();
    Ok(foreign)
}

fn check(dir: &Path, path: &Path, repair: bool) -> Outcome {
    let read_only = LedgerConfig::default().with_read_only(true);
    let problem = match Ledger::open(path, read_only) {
        Err(e) => Some(fmt::chain(&e)),
        Ok(ledger) => match ledger.verify() {
            Err(e) => Some(fmt::chain(&e)),
            Ok(records) => match ledger.recovery().cut.first() {
                Some((segment, offset, damage)) => Some(format!(
                    "segment {segment}: {} at offset {offset}",
                    describe_damage(damage)
                )),
                None => {
                    say!(
                        "{}: clean: {records} records in {} segments",
                        path.display(),
                        ledger.segments().len()
                    );
                    return if repair {
                        repair_table(dir)
                    } else {
                        verify_table(dir)
                    };
                }
            },
        },
    };
    let problem = problem.unwrap_or_default();
    if !repair {
        eprintln!("{}: {problem}", path.display());
        eprintln!("(run `ringledger verify --repair` to cut the log there)");
        return Ok(ExitCode::FAILURE);
    }
    say!("{}: {problem}; repairing", path.display());
    let ledger = Ledger::open(path, LedgerConfig::default().with_repair(true))
        .map_err(|e| format!("{}: repair failed: {}", path.display(), fmt::chain(&e)))?;
    if let Some(rebuilt) = &ledger.recovery().rebuilt_meta {
        say!("  {rebuilt}");
    }
    for (segment, offset, damage) in &ledger.recovery().cut {
        say!("  cut {segment} at offset {offset} ({damage:?})");
    }
    for name in &ledger.recovery().removed_segments {
        say!("  removed {name}");
    }
    let records = ledger.verify().map_err(|e| {
        format!(
            "{}: still damaged after repair: {}",
            path.display(),
            fmt::chain(&e)
        )
    })?;
    say!(
        "{}: clean after repair: {records} records, head {}",
        path.display(),
        ledger.head()
    );
    drop(ledger);
    repair_table(dir)
}

/// Applies the consumers' table's recovery (opening it for writing cuts a torn or damaged
/// tail), says what it cut, and checks it again.
fn repair_table(dir: &Path) -> Outcome {
    let table_dir = dir.join("table");
    if !table_dir.is_dir() {
        return Ok(ExitCode::SUCCESS);
    }
    let table = ringledger::table::Table::open(&table_dir, Default::default())
        .map_err(|e| format!("{}: repair failed: {}", table_dir.display(), fmt::chain(&e)))?;
    if let Some((file, offset, damage)) = table.recovery() {
        say!("  table: cut {file} at offset {offset} ({damage:?})");
    }
    drop(table);
    verify_table(dir)
}

/// Checks the consumers' table of a queue directory (if there is one): it opens and its log
/// reads whole. Exit 1 naming the problem otherwise.
fn verify_table(dir: &Path) -> Outcome {
    let table_dir = dir.join("table");
    if !table_dir.is_dir() {
        return Ok(ExitCode::SUCCESS);
    }
    let problem = match open_table_read_only(&table_dir) {
        Err(e) => e,
        Ok(table) => match table.recovery() {
            None => {
                let consumers = table.all().map_err(|e| fmt::chain(&e))?.len();
                say!("{}: clean: {consumers} consumers", table_dir.display());
                return Ok(ExitCode::SUCCESS);
            }
            Some((file, offset, damage)) => format!(
                "{}: log {file}: {} at offset {offset}",
                table_dir.display(),
                describe_damage(damage)
            ),
        },
    };
    eprintln!("{problem}");
    eprintln!("(run `ringledger verify --repair` to cut the table's log there)");
    Ok(ExitCode::FAILURE)
}
