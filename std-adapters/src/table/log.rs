//! The table's file: one segment file holding an append log of [operations](super::op), and
//! its compaction.
//!
//! The log is one `<base>.seg` file of the core segment format. Every set or delete appends
//! one record whose sequence is the table's operation counter, which only ever grows (also
//! across compactions, so a newer log file always has a greater name). When the next record
//! does not fit, or the file holds much more than the live entries
//! ([`compact_factor`](super::TableConfig::compact_factor)), the log is compacted: a new file,
//! based at the next sequence, gets one set record per live entry, and replaces the old one.
//!
//! Replacing follows the creation rule of `core/FORMAT.md`: the new file is written as
//! `<name>.tmp`, synced, renamed into place, and the directory synced; only then is the old
//! file removed. So at every instant the file with the greatest base is a complete log, which
//! is what [recovery](super::recover) relies on. The records of a compaction are one atomic
//! write (all but the last carry `CONTINUES`), a second guard should a file ever get renamed
//! in unsynced.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::Arc;

use ringledger_core::segment::{frame_len, Appender, FileHeader, FileName, WriteError};

use super::op::{set_payload_len, Op, TAG_SET};
use super::{TableConfig, TableError};
use crate::storage::{now_ns, random_u64, Durability, Region, Storage};

/// The table's entries: name -> positions, never an empty list.
pub(super) type Entries = BTreeMap<String, Vec<u64>>;

/// The seal index interval the appender keeps room for: the table never seals its log, so
/// one entry (for the first record) is all the room it should reserve.
pub(super) const INDEX_INTERVAL: u32 = u32::MAX;

/// Room a log file needs besides its records: the file header, the seal the appender keeps
/// room for (one index entry: 112 bytes), the footer, and a margin.
const SLACK: usize = 1024;

/// A compacted log file gets this many times the live entries' bytes (at least
/// `min_capacity`), so the appends that follow have room before the next compaction.
const GROWTH: usize = 4;

/// Log file sizes are rounded up to whole pages.
const PAGE: usize = 4096;

/// The bytes the set record of an entry takes in a log file.
pub(super) fn entry_bytes(name: &str, positions: &[u64]) -> usize {
    set_payload_len(name, positions.len()).map_or(usize::MAX, frame_len)
}

/// The size of a log file for entries of `live` bytes.
pub(super) fn capacity_for(live: usize, min_capacity: usize) -> usize {
    let wanted = live
        .saturating_mul(GROWTH)
        .saturating_add(SLACK)
        .max(min_capacity);
    wanted.div_ceil(PAGE).saturating_mul(PAGE)
}

/// The mapping of a log file, always writable, owned by exactly one [`LogFile`].
///
/// It is the only way to the file's bytes, and it never hands out the pointer, so Rust's
/// borrow rules on `&self` and `&mut self` are the rules on the bytes.
#[derive(Debug)]
pub(super) struct Mapped {
    region: Box<dyn Region>,
}

impl Mapped {
    /// Takes a writable region (from [`Storage::create`], or [`Storage::open`] with
    /// `writable`).
    pub(super) fn new(region: Box<dyn Region>) -> Self {
        Self { region }
    }

    /// The whole file.
    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: `Region` promises `len` bytes at `as_ptr`, valid until the region is dropped,
        // which `&self` outlives. Nobody writes them meanwhile: `self` owns the region and
        // never lends out the pointer, and writing needs `&mut self`. (Another process could
        // write the file, as with any mapping; the directory lock keeps tables out.)
        unsafe { std::slice::from_raw_parts(self.region.as_ptr(), self.region.len()) }
    }

    /// The whole file, writable.
    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes this the only access to the bytes while
        // the slice lives. The region was mapped writable (see `new`).
        unsafe { std::slice::from_raw_parts_mut(self.region.as_ptr(), self.region.len()) }
    }

    /// Makes the writes so far durable.
    pub(super) fn sync(&self) -> io::Result<()> {
        self.region.sync()
    }
}

/// The current log file and where the next record goes.
#[derive(Debug)]
pub(super) struct LogFile {
    pub(super) name: FileName,
    pub(super) mapped: Mapped,
    pub(super) appender: Appender,
}

impl LogFile {
    /// Appends one record after the last.
    fn append(&mut self, seq: u64, tag: u32, payload: &[u8]) -> Result<(), WriteError> {
        let end = self.appender.end();
        let image = self.mapped.bytes_mut();
        let capacity = image.len() as u64;
        // The appender's capacity is the mapping's length (checked when the file was created
        // or resumed), so the tail exists; `get_mut` keeps a broken invariant from panicking.
        let tail = image
            .get_mut(end..)
            .ok_or(WriteError::CapacityMismatch { len: end, capacity })?;
        self.appender.append(tail, seq, now_ns(), tag, payload)?;
        Ok(())
    }
}

/// The writer side of the table: the log file, the operation counter and the size of the live
/// entries, which decides compaction.
pub(super) struct Log {
    pub(super) storage: Arc<dyn Storage>,
    pub(super) config: TableConfig,
    /// The `ledger_id` of every log file of this table.
    pub(super) table_id: u64,
    /// `None` until the first write of a table that had no file.
    pub(super) file: Option<LogFile>,
    /// The sequence of the next record. Always greater than the current file's base, so a
    /// compaction's file (based here) sorts after it.
    pub(super) next_seq: u64,
    /// The bytes the live entries' set records take: a compacted log's records.
    pub(super) live_bytes: usize,
    /// A sync failed: the kernel may have dropped data, so no write is accepted any more.
    pub(super) poisoned: bool,
    /// Reused payload buffer.
    pub(super) scratch: Vec<u8>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("file", &self.file.as_ref().map(|file| file.name))
            .field("end", &self.file.as_ref().map(|file| file.appender.end()))
            .field("next_seq", &self.next_seq)
            .field("live_bytes", &self.live_bytes)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Log {
    /// The log of a read-only table: no file, and poisoned so nothing could ever be written.
    pub(super) fn inert(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            config: TableConfig::default(),
            table_id: 0,
            file: None,
            next_seq: 0,
            live_bytes: 0,
            poisoned: true,
            scratch: Vec::new(),
        }
    }

    /// Applies `op` to `entries` and logs it, durably if the table is
    /// [`Synced`](Durability::Synced). On an error `entries` are as they were: also on a failed
    /// sync (the file has the op, the disk may not), which poisons the table.
    pub(super) fn write(&mut self, entries: &mut Entries, op: Op<'_>) -> Result<(), TableError> {
        if self.poisoned {
            return Err(TableError::Poisoned);
        }
        let name = op.name();
        let old_bytes = entries.get(name).map_or(0, |p| entry_bytes(name, p));
        op.encode(&mut self.scratch);
        let record_bytes = frame_len(self.scratch.len());
        let new_bytes = match op {
            Op::Set { .. } => record_bytes,
            Op::Delete { .. } => 0,
        };
        let live_after = self.live_bytes.saturating_sub(old_bytes) + new_bytes;

        let seq = self.next_seq;
        let next_seq = seq.checked_add(1).ok_or_else(sequences_exhausted)?;
        let compact = self.file.as_ref().is_none_or(|file| {
            let used_after = file.appender.end().saturating_add(record_bytes);
            used_after > self.config.min_capacity
                && used_after > live_after.saturating_mul(self.config.compact_factor.max(1))
        });
        if let (false, Some(file)) = (compact, &mut self.file) {
            match file.append(seq, op.tag(), &self.scratch) {
                Ok(()) => {
                    self.next_seq = next_seq;
                    self.live_bytes = live_after;
                    let previous = apply(entries, op);
                    // A synced write whose sync failed is not on disk: `get` must not return
                    // it (the table is poisoned, so nothing is written after it either).
                    if let Err(e) = self.sync_for_durability() {
                        restore(entries, name, previous);
                        return Err(e);
                    }
                    return Ok(());
                }
                // Compact, with this op folded in.
                Err(WriteError::Full { .. }) => {}
                Err(e) => return Err(internal("appending to the table log", e)),
            }
        }

        let previous = apply(entries, op);
        match self.switch(entries, live_after) {
            Ok(old) => self.retire(old),
            Err(e) => {
                restore(entries, name, previous);
                Err(e)
            }
        }
    }

    /// Makes every write so far durable.
    pub(super) fn sync(&mut self) -> Result<(), TableError> {
        if self.poisoned {
            return Err(TableError::Poisoned);
        }
        match &self.file {
            Some(file) => file
                .mapped
                .sync()
                .map_err(|e| self.poison("syncing the table log", e)),
            None => Ok(()),
        }
    }

    fn sync_for_durability(&mut self) -> Result<(), TableError> {
        match self.config.durability {
            Durability::Synced => self.sync(),
            Durability::Buffered => Ok(()),
        }
    }

    /// Writes `entries` (whose records take `live` bytes) into a new log file based at the
    /// next sequence, and renames it into place. Returns the name of the file it replaces (its
    /// mapping dropped), which [`retire`](Self::retire) removes. On an error nothing changed (but a failed sync
    /// poisons the table).
    pub(super) fn switch(
        &mut self,
        entries: &Entries,
        live: usize,
    ) -> Result<Option<FileName>, TableError> {
        let base = self.next_seq;
        let count = u64::try_from(entries.len()).unwrap_or(u64::MAX);
        // An empty compaction still moves the counter, so the next file's name is greater.
        let next_seq = base
            .checked_add(count.max(1))
            .ok_or_else(sequences_exhausted)?;
        let capacity = capacity_for(live, self.config.min_capacity);
        let header = FileHeader {
            base_seq: base,
            ledger_id: self.table_id,
            salt: random_u64(),
            capacity: capacity as u64,
            created_ns: now_ns(),
        };
        let name = ringledger_core::segment::file_name(base);
        let tmp = format!("{name}.tmp");
        // A leftover of an earlier attempt that failed half way would make `create` fail.
        let _ = self.storage.remove(&tmp);
        let region = self
            .storage
            .create(&tmp, capacity)
            .map_err(|e| TableError::io(format!("creating {tmp}"), e))?;
        let mut mapped = Mapped::new(region);
        let filled = fill(&mut mapped, &header, entries, &mut self.scratch);
        let synced = match filled {
            Ok(appender) => mapped
                .sync()
                .map(|()| appender)
                .map_err(|e| self.poison(format!("syncing {tmp}"), e)),
            Err(e) => Err(e),
        };
        let appender = match synced {
            Ok(appender) => appender,
            Err(e) => {
                drop(mapped);
                let _ = self.storage.remove(&tmp);
                return Err(e);
            }
        };
        if let Err(e) = self.storage.rename(&tmp, name.as_str()) {
            drop(mapped);
            let _ = self.storage.remove(&tmp);
            return Err(TableError::io(format!("renaming {tmp} into place"), e));
        }
        let new = LogFile {
            name,
            mapped,
            appender,
        };
        let old = self.file.replace(new).map(|old| old.name);
        self.next_seq = next_seq;
        self.live_bytes = live;
        Ok(old)
    }

    /// Finishes a [`switch`](Self::switch): makes the rename durable, then removes the
    /// replaced file. A failed directory sync poisons the table.
    pub(super) fn retire(&mut self, old: Option<FileName>) -> Result<(), TableError> {
        self.storage
            .sync_dir()
            .map_err(|e| self.poison("syncing the table directory", e))?;
        if let Some(old) = old {
            // Best effort: a file left behind is older than the log, and the next open
            // removes it.
            if self.storage.remove(old.as_str()).is_ok() {
                self.storage
                    .sync_dir()
                    .map_err(|e| self.poison("syncing the table directory", e))?;
            }
        }
        Ok(())
    }

    /// Poisons the table for good, and says why.
    fn poison(&mut self, context: impl Into<String>, source: io::Error) -> TableError {
        self.poisoned = true;
        TableError::io(context, source)
    }
}

/// Writes a fresh log file: the header, then one set record per entry, as one atomic write.
fn fill(
    mapped: &mut Mapped,
    header: &FileHeader,
    entries: &Entries,
    scratch: &mut Vec<u8>,
) -> Result<Appender, TableError> {
    let image = mapped.bytes_mut();
    header
        .encode(image)
        .map_err(|e| internal("writing a table log header", e))?;
    let mut appender = Appender::create(header, INDEX_INTERVAL)
        .map_err(|e| internal("writing a table log header", e))?;
    let timestamp = now_ns();
    let mut seq = header.base_seq;
    let mut left = entries.len();
    for (name, positions) in entries {
        left -= 1;
        Op::Set { name, positions }.encode(scratch);
        let tail = image
            .get_mut(appender.end()..)
            .ok_or_else(|| internal("compacting the table log", "end past the file"))?;
        appender
            .append_in_write(tail, seq, timestamp, TAG_SET, scratch, left > 0)
            .map_err(|e| internal("compacting the table log", e))?;
        // `switch` checked that `base + count` does not overflow.
        seq = seq.wrapping_add(1);
    }
    Ok(appender)
}

/// Applies `op` to `entries`; returns the positions it replaced or removed.
fn apply(entries: &mut Entries, op: Op<'_>) -> Option<Vec<u64>> {
    match op {
        Op::Set { name, positions } => entries.insert(name.to_owned(), positions.to_vec()),
        Op::Delete { name } => entries.remove(name),
    }
}

/// Undoes [`apply`]: `name` gets back what it had before.
fn restore(entries: &mut Entries, name: &str, previous: Option<Vec<u64>>) {
    match previous {
        Some(positions) => entries.insert(name.to_owned(), positions),
        None => entries.remove(name),
    };
}

/// An error that the sizing of log files rules out: reported, never a panic.
fn internal(context: &str, e: impl fmt::Display) -> TableError {
    TableError::io(context, io::Error::other(e.to_string()))
}

fn sequences_exhausted() -> TableError {
    TableError::io(
        "logging a table operation",
        io::Error::other("the table's operation counter reached u64::MAX"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compacted_file_holds_its_entries() {
        for live in [0, 1, 8, 48, 1000, 65_536, 1 << 20] {
            let capacity = capacity_for(live, 0);
            assert_eq!(capacity % PAGE, 0);
            // One record of `live` bytes, the worst case for the seal index, must fit.
            let payload = live.saturating_sub(40);
            assert!(Appender::max_payload_in(capacity) >= payload, "live {live}");
        }
        assert_eq!(capacity_for(10, 65_536), 65_536);
    }
}
