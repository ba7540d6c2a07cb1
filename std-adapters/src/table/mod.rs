//! The positions table: for each consumer name, the list of ledger positions it has processed.
//!
//! quasar's table (`reference/quasar.md` §3): a [`Table`] maps names to lists of `u64`
//! positions, as the consumer's compiled marks (`ringledger_core::sequence::compile`) store
//! them: the first position means "everything up to here is done", the others are done
//! individually above it. The cleaner reads [`range`](Table::range) to know what no consumer
//! needs any more. Unlike quasar, a list whose first position is 0 counts in the range (0 is a
//! real position, not "unset"), so the cleaner never deletes entries a consumer has not read.
//!
//! The whole table lives in memory; reads never touch a file. Writes go to an append log in
//! the segment format of `core/FORMAT.md`, one record per operation, which is compacted when
//! it is full or mostly dead ([`TableConfig::compact_factor`]):
//!
//! | record tag | operation | payload |
//! |-----------:|-----------|---------|
//! | 1 | set    | name length (`u32` LE), name (UTF-8), each position (`u64` LE) |
//! | 2 | delete | name (UTF-8) |
//!
//! Record sequences are an operation counter that only grows, also across compactions, and a
//! log file is named after its first one (`<20 digits>.seg`), so the newest file has the
//! greatest name. A compaction writes the live entries into a new file, syncs it, renames it
//! into place and only then removes the old one; opening the table removes what an interrupted
//! compaction left behind and cuts a torn tail (the recovery rule of `core/FORMAT.md`).
//!
//! # Durability
//!
//! [`Durability::Buffered`] (the default) writes survive a crash of the process;
//! [`Durability::Synced`] writes are synced before they return and survive a power loss.
//! [`Table::sync`] makes buffered writes durable on demand. A failed sync poisons the table
//! for good: the kernel may have dropped the data, so every later write fails with
//! [`TableError::Poisoned`], while reads keep working.
//!
//! The storage is a [`Storage`]: a directory ([`Table::open`]) or anything else
//! ([`Table::open_in`]), such as the simulated storage of the crash tests.

mod log;
mod op;
mod recover;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
#[cfg(unix)]
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ringledger_core::segment::CorruptReason;

use self::log::{Entries, Log};
use self::op::{set_payload_len, Op};
#[cfg(unix)]
use crate::storage::DirStorage;
use crate::storage::{Durability, LockGuard, Storage};

/// The longest entry name, in bytes.
pub const MAX_NAME_LEN: usize = 4096;

/// The largest entry (its name and positions, as logged), in bytes.
pub const MAX_ENTRY_LEN: usize = 1 << 30;

/// How a [`Table`] keeps its log.
///
/// ```
/// use std::sync::Arc;
/// use ringledger::storage::{sim::SimStorage, Durability};
/// use ringledger::table::{Table, TableConfig};
///
/// let storage = SimStorage::new();
/// let config = TableConfig { durability: Durability::Synced, ..TableConfig::default() };
/// let table = Table::open_in(Arc::new(storage.clone()), config)?;
/// table.set("billing", &[42])?; // synced before it returns
/// drop(table);
/// let after_power_loss = Table::open_in(Arc::new(storage.crash(1)), config)?;
/// assert_eq!(after_power_loss.get("billing")?, [42]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableConfig {
    /// How far a write gets before it returns. Default [`Durability::Buffered`].
    pub durability: Durability,
    /// The smallest log file, in bytes (rounded up to whole 4 KiB pages). A compaction makes
    /// the file four times the live entries' size when that is larger. Default 64 KiB.
    pub min_capacity: usize,
    /// Compact when the log has grown past this many times the live entries' size (and past
    /// `min_capacity`), or when it is full. Default 4; 0 counts as 1.
    pub compact_factor: usize,
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Buffered,
            min_capacity: 64 * 1024,
            compact_factor: 4,
        }
    }
}

/// Why a table operation failed.
///
/// ```
/// use std::sync::Arc;
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::table::{Table, TableConfig, TableError, MAX_NAME_LEN};
///
/// let storage = Arc::new(SimStorage::new());
/// let table = Table::open_in(storage.clone(), TableConfig::default())?;
/// match table.set(&"x".repeat(MAX_NAME_LEN + 1), &[1]) {
///     Err(TableError::NameTooLong { len }) => assert_eq!(len, MAX_NAME_LEN + 1),
///     other => panic!("{other:?}"),
/// }
/// // One writer per storage.
/// assert!(matches!(Table::open_in(storage, TableConfig::default()), Err(TableError::Locked)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// Another open table (in this process or another) holds the directory.
    #[error("the table directory is locked by another open table")]
    Locked,
    /// The storage failed.
    #[error("{context}")]
    Io {
        /// What the table was doing.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The log's frames do not scan at an offset that recovery had checked.
    #[error("table log {file}: corrupt data at offset {offset}: {reason}")]
    Corrupt {
        /// The log file's name.
        file: String,
        /// Where the corrupt frame starts.
        offset: usize,
        /// What is wrong with it.
        reason: CorruptReason,
    },
    /// The log file is not a table log: a bad header, or a record that is not a table
    /// operation.
    #[error("table log {file} is not valid: {reason}")]
    BadFile {
        /// The log file's name.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The name is longer than [`MAX_NAME_LEN`].
    #[error("table entry name of {len} bytes is longer than the {MAX_NAME_LEN} allowed")]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// The entry (name and positions, as logged) is larger than [`MAX_ENTRY_LEN`].
    #[error("table entry of {len} bytes is larger than the {MAX_ENTRY_LEN} allowed")]
    TooLarge {
        /// The entry's length in bytes.
        len: usize,
    },
    /// The table was opened with [`Table::open_read_only`]: it takes no writes.
    #[error("the table is open read-only")]
    ReadOnly,
    /// A sync failed earlier (or a write panicked): the table takes no more writes, reads
    /// keep working.
    #[error("the table is poisoned by an earlier failed sync (or a panic in a write); it stays readable")]
    Poisoned,
}

impl TableError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// quasar's positions table, kept in memory and logged to a directory; see the
/// [module documentation](self).
///
/// Every method takes `&self`: a `Table` is shared between threads behind an [`Arc`]. Writes
/// are serialized; reads copy out of the in-memory map.
///
/// # Examples
///
/// ```
/// use ringledger::table::{Table, TableConfig};
///
/// let dir = tempfile::tempdir().unwrap();
/// let table = Table::open(dir.path(), TableConfig::default()).unwrap();
/// table.set("billing", &[0, 3, 4]).unwrap();
/// table.set("audit", &[2, 9]).unwrap();
/// assert_eq!(table.get("billing").unwrap(), [0, 3, 4]);
/// assert!(table.get("nobody").unwrap().is_empty());
///
/// // From the smallest first position to the largest last one; 0 is a real position.
/// assert_eq!(table.range().unwrap(), Some((0, 9)));
///
/// table.delete("billing").unwrap();
/// drop(table);
///
/// // Reopening replays the log.
/// let table = Table::open(dir.path(), TableConfig::default()).unwrap();
/// assert_eq!(table.all().unwrap().into_iter().collect::<Vec<_>>(), [("audit".to_owned(), vec![2, 9])]);
/// assert_eq!(table.range().unwrap(), Some((2, 9)));
/// ```
pub struct Table {
    state: Mutex<State>,
    /// What opening cut, if anything.
    cut: Option<recover::Cut>,
    /// Opened with [`open_read_only`](Table::open_read_only): no writes.
    read_only: bool,
    /// Released after `state` (fields drop in order): the files are unmapped first. `None`
    /// for a read-only table, which takes no lock.
    _lock: Option<Box<dyn LockGuard>>,
}

/// The entries and the log that persists them, changed together.
#[derive(Debug)]
struct State {
    entries: Entries,
    log: Log,
}

impl Table {
    /// Opens (or creates) the table kept in the directory `dir`, creating the directory if
    /// needed, and locks it.
    ///
    /// ```
    /// use ringledger::table::{Table, TableConfig, TableError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let table = Table::open(dir.path(), TableConfig::default())?;
    /// table.set("consumer-a", &[41, 42])?;
    /// // One writer per directory.
    /// assert!(matches!(Table::open(dir.path(), TableConfig::default()), Err(TableError::Locked)));
    /// drop(table);
    /// let table = Table::open(dir.path(), TableConfig::default())?;
    /// assert_eq!(table.get("consumer-a")?, [41, 42]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    pub fn open(dir: impl AsRef<Path>, config: TableConfig) -> Result<Self, TableError> {
        let dir = dir.as_ref();
        let storage = DirStorage::new(dir)
            .map_err(|e| TableError::io(format!("opening {}", dir.display()), e))?;
        Self::open_in(Arc::new(storage), config)
    }

    /// Opens (or creates) the table kept in `storage`, and locks it: while this table is open,
    /// another open of the same storage fails with [`TableError::Locked`].
    ///
    /// Removes what an interrupted compaction left behind and cuts a torn tail off the log
    /// (synced before this returns). A log with a bad header, or a record that is not a table
    /// operation, is an error ([`TableError::BadFile`]); no log file is changed then.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::table::{Table, TableConfig};
    ///
    /// let table = Table::open_in(Arc::new(SimStorage::new()), TableConfig::default())?;
    /// table.set("a", &[1])?;
    /// table.delete("a")?;
    /// assert!(table.all()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_in(storage: Arc<dyn Storage>, config: TableConfig) -> Result<Self, TableError> {
        let lock = storage.lock().map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => TableError::Locked,
            _ => TableError::io("locking the table directory", e),
        })?;
        let (log, entries, cut) = recover::open_log(storage, config)?;
        trace_cut(cut.as_ref(), "was");
        Ok(Self {
            state: Mutex::new(State { entries, log }),
            cut,
            read_only: false,
            _lock: Some(lock),
        })
    }

    /// Opens the table kept in `storage` for reading only: no lock is taken and nothing is
    /// written (also next to a live writer, in this process or another, which keeps its
    /// lock). The entries are those of the newest log as it is now; a torn tail is cut in
    /// memory only, and reported by [`recovery`](Self::recovery) as opening for writing would.
    /// Writes fail with [`TableError::ReadOnly`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::table::{Table, TableConfig, TableError};
    ///
    /// let storage = Arc::new(SimStorage::new());
    /// let writer = Table::open_in(storage.clone(), TableConfig::default()).unwrap();
    /// writer.set("audit", &[4]).unwrap();
    /// let reader = Table::open_read_only(storage).unwrap();
    /// assert_eq!(reader.get("audit").unwrap(), [4]);
    /// assert!(matches!(reader.set("audit", &[5]), Err(TableError::ReadOnly)));
    /// ```
    pub fn open_read_only(storage: Arc<dyn Storage>) -> Result<Self, TableError> {
        let (entries, cut) = recover::read_log(&*storage)?;
        trace_cut(cut.as_ref(), "would be");
        let log = log::Log::inert(storage);
        Ok(Self {
            state: Mutex::new(State { entries, log }),
            cut,
            read_only: true,
            _lock: None,
        })
    }

    /// Where opening cut the log, if it did: the file, the offset, and what was found there
    /// (a [`Damage::TornTail`](ringledger_core::segment::Damage::TornTail) is the trace of a
    /// crash; a `Corrupt` may be damage to data that had been synced). The operations after
    /// the cut are gone.
    pub fn recovery(&self) -> Option<&(String, usize, ringledger_core::segment::Damage)> {
        self.cut.as_ref()
    }

    /// Sets the positions of `name`, replacing what it had. An empty list is a no-op (quasar's
    /// behaviour): it neither sets nor deletes. The positions are stored as given (the
    /// consumer stores them ascending; [`range`](Self::range) reads the first and the last).
    pub fn set(&self, name: &str, positions: &[u64]) -> Result<(), TableError> {
        if positions.is_empty() {
            return Ok(());
        }
        check_name(name)?;
        let len = set_payload_len(name, positions.len()).unwrap_or(usize::MAX);
        if len > MAX_ENTRY_LEN {
            return Err(TableError::TooLarge { len });
        }
        let mut state = self.write_state()?;
        let State { entries, log } = &mut *state;
        log.write(entries, Op::Set { name, positions })
    }

    /// The positions of `name`; empty when it has none.
    pub fn get(&self, name: &str) -> Result<Vec<u64>, TableError> {
        Ok(self
            .read_state()
            .entries
            .get(name)
            .cloned()
            .unwrap_or_default())
    }

    /// Removes `name` (nothing happens, and nothing is logged, if it has no positions).
    pub fn delete(&self, name: &str) -> Result<(), TableError> {
        check_name(name)?;
        let mut state = self.write_state()?;
        let State { entries, log } = &mut *state;
        if !entries.contains_key(name) {
            return Ok(());
        }
        log.write(entries, Op::Delete { name })
    }

    /// Every name with its positions, in name order.
    pub fn all(&self) -> Result<BTreeMap<String, Vec<u64>>, TableError> {
        Ok(self.read_state().entries.clone())
    }

    /// The span of the positions: the smallest first position and the largest last position
    /// over all names, or `None` when the table is empty. A first position of 0 counts (in
    /// quasar it was taken for "no minimum", and the cleaner could delete unread entries).
    pub fn range(&self) -> Result<Option<(u64, u64)>, TableError> {
        let state = self.read_state();
        let range = state
            .entries
            .values()
            .filter_map(|positions| Some((*positions.first()?, *positions.last()?)))
            .reduce(|(min, max), (first, last)| (min.min(first), max.max(last)));
        Ok(range)
    }

    /// Makes every write so far durable (for [`Durability::Buffered`] tables; a
    /// [`Durability::Synced`] table already is).
    pub fn sync(&self) -> Result<(), TableError> {
        self.write_state()?.log.sync()
    }

    /// The state for reading: a panic in another thread while it held the lock leaves the
    /// entries as they were or with that one operation applied, which is fine to read.
    fn read_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state for writing: after a panic while it was held, the log and the entries may
    /// disagree, so the table takes no more writes.
    fn write_state(&self) -> Result<MutexGuard<'_, State>, TableError> {
        if self.read_only {
            return Err(TableError::ReadOnly);
        }
        self.state.lock().map_err(|_| TableError::Poisoned)
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read_state();
        f.debug_struct("Table")
            .field("names", &state.entries.len())
            .field("log", &state.log)
            .finish_non_exhaustive()
    }
}

fn check_name(name: &str) -> Result<(), TableError> {
    if name.len() > MAX_NAME_LEN {
        return Err(TableError::NameTooLong { len: name.len() });
    }
    Ok(())
}

/// A cut made by opening (or, read-only, worked out), as a `tracing` event.
fn trace_cut(cut: Option<&recover::Cut>, applied: &str) {
    use ringledger_core::segment::Damage;
    match cut {
        Some((file, offset, Damage::TornTail)) => {
            tracing::info!(%file, offset, "the table's torn tail {applied} cut")
        }
        Some((file, offset, damage)) => {
            tracing::warn!(%file, offset, ?damage, "the table's log {applied} cut at damage")
        }
        None => {}
    }
}
