//! `ringledger inspect DIR`.

use std::path::Path;
use std::process::ExitCode;

use crate::{fmt, ledger_dir, open_read_only, open_table_read_only, Outcome};

pub fn run(dir: &Path) -> Outcome {
    let path = ledger_dir(dir)?;
    let ledger = open_read_only(dir)?;
    let segments = ledger.segments();
    let disk: u64 = segments.iter().map(|s| s.size as u64).sum();
    say!("ledger {}", path.display());
    say!(
        "  head {}  tail {}  length {}  segments {}  on disk {}",
        ledger.head(),
        ledger.tail(),
        ledger.len(),
        segments.len(),
        fmt::bytes(disk)
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
    for s in &segments {
        say!(
            "  {:<26} {:>20} {:>9} {:>20} {:>20} {:>10} {:>10}  {}",
            s.name,
            s.base,
            s.count,
            s.first_seq,
            s.last_seq,
            fmt::bytes(s.used as u64),
            fmt::bytes(s.size as u64),
            if s.sealed { "sealed" } else { "open" }
        );
    }
    let report = ledger.recovery();
    for (segment, offset, damage) in &report.cut {
        say!("  recovery would cut {segment} at offset {offset}: {damage:?}");
    }
    for name in &report.resealed {
        say!("  recovery would seal {name} again");
    }
    for name in &report.removed_segments {
        say!("  recovery would remove {name}");
    }
    for name in &report.removed_temporary {
        say!("  leftover temporary file {name}");
    }

    let table_dir = dir.join("table");
    if table_dir.is_dir() {
        match open_table_read_only(&table_dir) {
            Ok(table) => {
                let all = table.all().map_err(|e| fmt::chain(&e))?;
                say!("consumers ({})", table_dir.display());
                if all.is_empty() {
                    say!("  none");
                }
                for (name, positions) in all {
                    say!("  {name:<24} {positions:?}");
                }
            }
            Err(e) => say!("consumers: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
