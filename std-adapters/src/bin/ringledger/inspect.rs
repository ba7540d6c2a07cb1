//! `ringledger inspect DIR [--format json]`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::{describe_damage, fmt, ledger_dir, open_read_only, open_table_read_only, Outcome};
use crate::{Report, ReportFormat};

/// What `inspect` found: printed as text, or as one JSON object.
#[derive(Serialize)]
struct Inspection {
    ledger: String,
    head: u64,
    tail: u64,
    length: u64,
    on_disk: u64,
    segments: Vec<Segment>,
    /// What a writable open would do (a read-only open applies none of it).
    recovery: Recovery,
    /// The queue's consumers, when `DIR` is a queue directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    consumers: Option<Consumers>,
}

#[derive(Serialize)]
struct Segment {
    name: String,
    base: u64,
    records: u64,
    first: u64,
    last: u64,
    used: usize,
    size: usize,
    sealed: bool,
}

#[derive(Serialize)]
struct Recovery {
    cut: Vec<Cut>,
    reseal: Vec<String>,
    remove: Vec<String>,
    /// The newest segment under a temporary name (a writer stopped before naming it).
    adopt: Vec<String>,
    leftover_temporary: Vec<String>,
}

#[derive(Serialize)]
struct Cut {
    segment: String,
    offset: usize,
    damage: String,
}

#[derive(Serialize)]
struct Consumers {
    table: String,
    /// Why the table could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    positions: BTreeMap<String, Vec<u64>>,
}

pub fn run(dir: &Path, format: ReportFormat) -> Outcome {
    let inspection = inspect(dir)?;
    inspection.print(format)?;
    Ok(ExitCode::SUCCESS)
}

fn inspect(dir: &Path) -> Result<Inspection, String> {
    let path = ledger_dir(dir)?;
    let ledger = open_read_only(dir)?;
    let segments: Vec<Segment> = ledger
        .segments()
        .into_iter()
        .map(|s| Segment {
            name: s.name,
            base: s.base,
            records: s.count,
            first: s.first_seq,
            last: s.last_seq,
            used: s.used,
            size: s.size,
            sealed: s.sealed,
        })
        .collect();
    let report = ledger.recovery();
    let recovery = Recovery {
        cut: report
            .cut
            .iter()
            .map(|(segment, offset, damage)| Cut {
                segment: segment.clone(),
                offset: *offset,
                damage: describe_damage(damage),
            })
            .collect(),
        reseal: report.resealed.clone(),
        remove: report.removed_segments.clone(),
        adopt: report.adopted.clone(),
        leftover_temporary: report.removed_temporary.clone(),
    };
    let table_dir = dir.join("table");
    let consumers = table_dir.is_dir().then(|| {
        let read = open_table_read_only(&table_dir)
            .and_then(|table| table.all().map_err(|e| fmt::chain(&e)));
        let (positions, error) = match read {
            Ok(positions) => (positions, None),
            Err(e) => (BTreeMap::new(), Some(e)),
        };
        Consumers {
            table: table_dir.display().to_string(),
            error,
            positions,
        }
    });
    Ok(Inspection {
        ledger: path.display().to_string(),
        head: ledger.head(),
        tail: ledger.tail(),
        length: ledger.len(),
        on_disk: segments.iter().map(|s| s.size as u64).sum(),
        segments,
        recovery,
        consumers,
    })
}

impl Report for Inspection {
    fn text(&self) {
        say!("ledger {}", self.ledger);
        say!(
            "  head {}  tail {}  length {}  segments {}  on disk {}",
            self.head,
            self.tail,
            self.length,
            self.segments.len(),
            fmt::bytes(self.on_disk)
        );
        say!(
            "  {:<26} {:>20} {:>9} {:>20} {:>20} {:>10} {:>10}  state",
            "segment",
            "base",
            "records",
            "first",
            "last",
            "used",
            "size"
        );
        for s in &self.segments {
            say!(
                "  {:<26} {:>20} {:>9} {:>20} {:>20} {:>10} {:>10}  {}",
                s.name,
                s.base,
                s.records,
                s.first,
                s.last,
                fmt::bytes(s.used as u64),
                fmt::bytes(s.size as u64),
                if s.sealed { "sealed" } else { "open" }
            );
        }
        for cut in &self.recovery.cut {
            say!(
                "  recovery would cut {} at offset {}: {}",
                cut.segment,
                cut.offset,
                cut.damage
            );
        }
        for name in &self.recovery.reseal {
            say!("  recovery would seal {name} again");
        }
        for name in &self.recovery.remove {
            say!("  recovery would remove {name}");
        }
        for name in &self.recovery.adopt {
            say!("  recovery would give the newest segment its name, {name}");
        }
        for name in &self.recovery.leftover_temporary {
            say!("  leftover temporary file {name}");
        }
        if let Some(consumers) = &self.consumers {
            match &consumers.error {
                Some(error) => say!("consumers: {error}"),
                None => {
                    say!("consumers ({})", consumers.table);
                    if consumers.positions.is_empty() {
                        say!("  none");
                    }
                    for (name, positions) in &consumers.positions {
                        say!("  {name:<24} {positions:?}");
                    }
                }
            }
        }
    }
}
