//! `ringledger verify DIR [--repair]`.

use std::path::Path;
use std::process::ExitCode;

use ringledger::ledger::{Ledger, LedgerConfig};

use crate::{describe_damage, ledger_dir, open_table_read_only, Outcome};

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
        .map_err(|e| format!("{}: repair failed: {e}", table_dir.display()))?;
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
                let consumers = table.all().map_err(|e| e.to_string())?.len();
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
