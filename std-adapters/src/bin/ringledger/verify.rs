//! `ringledger verify DIR [--repair]`.

use std::path::Path;
use std::process::ExitCode;

use ringledger::ledger::{Ledger, LedgerConfig};

use crate::{describe_damage, ledger_dir, Outcome};

pub fn run(dir: &Path, repair: bool) -> Outcome {
    let path = ledger_dir(dir)?;
    let read_only = LedgerConfig::default().with_read_only(true);
    let problem = match Ledger::open(&path, read_only) {
        Err(e) => Some(e.to_string()),
        Ok(ledger) => match ledger.verify() {
            Err(e) => Some(e.to_string()),
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
                    return Ok(ExitCode::SUCCESS);
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
    let ledger = Ledger::open(&path, LedgerConfig::default().with_repair(true))
        .map_err(|e| format!("{}: repair failed: {e}", path.display()))?;
    for (segment, offset, damage) in &ledger.recovery().cut {
        say!("  cut {segment} at offset {offset} ({damage:?})");
    }
    for name in &ledger.recovery().removed_segments {
        say!("  removed {name}");
    }
    let records = ledger
        .verify()
        .map_err(|e| format!("{}: still damaged after repair: {e}", path.display()))?;
    say!(
        "{}: clean after repair: {records} records, head {}",
        path.display(),
        ledger.head()
    );
    Ok(ExitCode::SUCCESS)
}
