//! Opening a table's directory: finding the log, applying the recovery rule, replaying it.
//!
//! The rule, given how [the log](super::log) replaces its file (written as `.tmp`, synced,
//! renamed in, directory synced, and only then the old file removed):
//!
//! 1. `*.tmp` files are compactions that never got renamed in: removed.
//! 2. Of the `<base>.seg` files, the one with the greatest base is the log: it was complete
//!    before it got its name. Older ones are left over from a compaction interrupted before it
//!    removed them: removed, once the log's header proved valid (a log with a bad header is an
//!    error for the operator, and no `.seg` file is touched).
//! 3. The log is recovered as the last segment of a ledger (`core/FORMAT.md`): a torn or
//!    corrupt tail is zeroed, and synced before any write. After a power loss the unsynced
//!    end of the log can come back in any order, so both are expected there.
//! 4. Its records, replayed in order, are the table. Appends resume after the last one; a log
//!    that cannot take appends as it is (truncated, or sealed by something else) is rewritten
//!    by a compaction.

use std::sync::Arc;

use ringledger_core::segment::{
    file_name, parse_file_name, recover, Appender, FileName, ScanEnd, Scanner,
};

use super::log::{entry_bytes, Entries, Log, LogFile, Mapped, INDEX_INTERVAL};
use super::op::{decode, DecodedOp};
use super::{TableConfig, TableError};
use crate::storage::{random_u64, Storage};

/// Opens the table kept in `storage` (whose lock the caller holds): its entries, and the log
/// ready for the next write.
/// Where recovery cut the log: the file, the offset, and what was found there.
pub(super) type Cut = (String, usize, ringledger_core::segment::Damage);

pub(super) fn open_log(
    storage: Arc<dyn Storage>,
    config: TableConfig,
) -> Result<(Log, Entries, Option<Cut>), TableError> {
    let names = storage
        .list()
        .map_err(|e| TableError::io("listing the table directory", e))?;
    let mut bases = Vec::new();
    let mut removed = false;
    for name in &names {
        if name.ends_with(".tmp") {
            storage
                .remove(name)
                .map_err(|e| TableError::io(format!("removing {name}"), e))?;
            removed = true;
        } else if let Ok(base) = parse_file_name(name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    let mut log = Log {
        storage: Arc::clone(&storage),
        config,
        table_id: random_u64(),
        file: None,
        next_seq: 0,
        live_bytes: 0,
        poisoned: false,
        scratch: Vec::new(),
    };
    let Some((&newest, older)) = bases.split_last() else {
        if removed {
            sync_dir(&*storage)?;
        }
        return Ok((log, Entries::new(), None));
    };

    let name = file_name(newest);
    let file = name.as_str();
    let region = storage
        .open(file, true)
        .map_err(|e| TableError::io(format!("opening {file}"), e))?;
    let mut mapped = Mapped::new(region);
    let recovered = recover(mapped.bytes_mut()).map_err(|e| TableError::BadFile {
        file: file.to_owned(),
        reason: crate::error_chain(&e),
    })?;
    if !recovered.zeroed.is_empty() {
        mapped
            .sync()
            .map_err(|e| TableError::io(format!("syncing {file} after cutting its tail"), e))?;
    }
    let cut = recovered
        .damage
        .map(|damage| (file.to_owned(), recovered.end, damage));
    let replayed = replay(name, mapped.bytes())?;

    for &base in older {
        let old = file_name(base);
        storage
            .remove(old.as_str())
            .map_err(|e| TableError::io(format!("removing {old}"), e))?;
        removed = true;
    }
    if removed {
        sync_dir(&*storage)?;
    }

    let entries = replayed.entries;
    log.table_id = replayed.table_id;
    log.next_seq = replayed.next_seq;
    log.live_bytes = entries
        .iter()
        .map(|(name, positions)| entry_bytes(name, positions))
        .fold(0, usize::saturating_add);
    match Appender::resume(mapped.bytes(), INDEX_INTERVAL) {
        Ok(appender) => {
            log.file = Some(LogFile {
                name,
                mapped,
                appender,
            });
        }
        Err(_) => {
            // Not appendable as it is (shorter or longer than its header says, or sealed):
            // the replayed entries go into a fresh file, which replaces this one.
            drop(mapped);
            let live = log.live_bytes;
            log.switch(&entries, live)?;
            log.retire(Some(name))?;
        }
    }
    Ok((log, entries, cut))
}

/// Reads the table kept in `storage` without changing anything or taking the lock: the
/// newest log, mapped read-only, recovered in a private copy (so a torn tail a live writer
/// is still appending reads as cut), replayed. For inspecting a table a live queue holds.
pub(super) fn read_log(storage: &dyn Storage) -> Result<(Entries, Option<Cut>), TableError> {
    let names = storage
        .list()
        .map_err(|e| TableError::io("listing the table directory", e))?;
    let Some(newest) = names.iter().filter_map(|n| parse_file_name(n).ok()).max() else {
        return Ok((Entries::new(), None));
    };
    let name = file_name(newest);
    let file = name.as_str();
    let region = storage
        .open(file, false)
        .map_err(|e| TableError::io(format!("opening {file}"), e))?;
    // SAFETY: a mapping of `len()` bytes that lives until `region` drops below; a writer in
    // another process appends only past what it published, and the copy is taken at once.
    let mut image = unsafe { std::slice::from_raw_parts(region.as_ptr(), region.len()) }.to_vec();
    drop(region);
    let recovered = recover(&mut image).map_err(|e| TableError::BadFile {
        file: file.to_owned(),
        reason: crate::error_chain(&e),
    })?;
    let cut = recovered
        .damage
        .map(|damage| (file.to_owned(), recovered.end, damage));
    Ok((replay(name, &image)?.entries, cut))
}

/// What a log's records add up to.
struct Replayed {
    entries: Entries,
    table_id: u64,
    /// The sequence after the last record (after the base when there is none).
    next_seq: u64,
}

/// Replays the records of a recovered log image.
fn replay(name: FileName, image: &[u8]) -> Result<Replayed, TableError> {
    let file = || name.as_str().to_owned();
    let mut scanner = Scanner::new(image).map_err(|e| TableError::BadFile {
        file: file(),
        reason: crate::error_chain(&e),
    })?;
    let mut entries = Entries::new();
    for record in scanner.by_ref() {
        let op = decode(record.tag, record.payload).map_err(|reason| TableError::BadFile {
            file: file(),
            reason: format!(
                "record {} at offset {}: {reason}",
                record.seq, record.offset
            ),
        })?;
        match op {
            DecodedOp::Set { name, positions } => {
                entries.insert(name.to_owned(), positions);
            }
            DecodedOp::Delete { name } => {
                entries.remove(name);
            }
        }
    }
    match scanner.end() {
        Some(ScanEnd::CleanEnd { .. }) => {}
        // Recovery zeroed everything after the valid records, so a scan ends cleanly; this
        // would take bytes changing under us.
        Some(&ScanEnd::Corrupt { offset, reason }) => {
            return Err(TableError::Corrupt {
                file: file(),
                offset,
                reason,
            })
        }
        Some(ScanEnd::TornTail { offset }) => {
            return Err(TableError::BadFile {
                file: file(),
                reason: format!("torn frame at offset {offset} after recovery"),
            })
        }
        None => {
            return Err(TableError::BadFile {
                file: file(),
                reason: "scan did not finish".to_owned(),
            })
        }
    }
    let header = scanner.header();
    let stats = scanner.stats();
    let last = if stats.count == 0 {
        header.base_seq
    } else {
        stats.last_seq
    };
    let next_seq = last.checked_add(1).ok_or_else(|| TableError::BadFile {
        file: file(),
        reason: "the operation counter is exhausted".to_owned(),
    })?;
    Ok(Replayed {
        entries,
        table_id: header.ledger_id,
        next_seq,
    })
}

fn sync_dir(storage: &dyn Storage) -> Result<(), TableError> {
    storage
        .sync_dir()
        .map_err(|e| TableError::io("syncing the table directory", e))
}
