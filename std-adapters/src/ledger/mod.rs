//! The ledger: an append-only log of entries in memory-mapped segment files.
//!
//! quasar's ledger (`reference/quasar.md` §2) on files of the core segment format
//! (`core/FORMAT.md`). A [`Ledger`] is a directory:
//!
//! - `<base>.seg` segment files of a fixed size, really allocated when created (a full disk is
//!   an error from [`write`](Ledger::write), never a `SIGBUS`), mapped once, written
//!   append-only, sealed when full and never truncated;
//! - `ledger.meta`, the ledger's id and the head and tail that must survive deleting every
//!   segment;
//! - `LOCK`, locked while a [`Ledger`] has the directory open: a second writer, in this process
//!   or another, gets [`LedgerError::Locked`].
//!
//! Entries have a sequence (> 0, strictly increasing across the ledger), a tag and a payload.
//! A [`write`](Ledger::write) is all or nothing, also across a crash. Readers never wait for
//! the writer: they read the mapping below an end the writer publishes after each write, and
//! payloads are [`Bytes`] that keep the mapping alive (no copy), also after a
//! [`delete`](Ledger::delete) unlinked the segment.
//!
//! # Durability
//!
//! [`Durability::Buffered`] writes survive a crash of the process; [`Durability::Synced`]
//! writes survive a power loss, and writers syncing at the same time share one `fdatasync`
//! (group commit). A failed sync poisons the ledger for good: the kernel may have dropped the
//! data, so every later write fails with [`LedgerError::Poisoned`]; reads keep working.
//!
//! # Recovery
//!
//! [`Ledger::open`] applies the recovery rule of `core/FORMAT.md`: sealed segments are checked
//! through their seals (no scan), the unsealed tail is scanned, a torn tail is zeroed and
//! synced before writes resume after the last complete write. What it did is in
//! [`Ledger::recovery`]. Damage inside sealed data is an error naming the segment and offset;
//! [`LedgerConfig::repair`] cuts the log there instead.
//!
//! # Examples
//!
//! ```
//! use ringledger::ledger::{Entry, Ledger, LedgerConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
//! ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(5, "c")]).unwrap();
//!
//! let entries = ledger.read(2, 10).unwrap();
//! let payloads: Vec<&[u8]> = entries.iter().map(|e| &e.payload[..]).collect();
//! assert_eq!(payloads, [&b"b"[..], b"c"]);
//! assert_eq!((ledger.head(), ledger.len()), (5, 3));
//!
//! assert_eq!(ledger.delete(2).unwrap(), 2);
//! assert_eq!(ledger.index(0).unwrap().unwrap().sequence, 5);
//! drop(ledger);
//!
//! // Reopening recovers everything, the tail included.
//! let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
//! assert_eq!((ledger.head(), ledger.tail(), ledger.len()), (5, 2, 1));
//! ```

mod background;
mod meta;
mod open;
mod segment;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use ringledger_core::segment::{
    file_name, frame_len, Appender, CorruptReason, Damage, FileHeader, WriteError, FILE_HEADER_LEN,
};

#[cfg(unix)]
use crate::storage::DirStorage;
pub use crate::storage::Durability;
use crate::storage::{now_ns, random_u64, LockGuard, Storage};
use crate::sync::{lock, Mutex};
use crate::wait::{CancelToken, Deadline, WaitError, Waiters};

use background::Background;
use meta::{Meta, META_FILE};
use segment::{Counts, Mapping, Segment};

/// How a [`Ledger`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerConfig {
    /// Size of each segment file in bytes: a multiple of 4096, from 8192 to 32 GiB. An entry must
    /// fit in one segment, and so must every write (all of its entries). Default 64 MiB.
    pub segment_size: usize,
    /// What [`Ledger::write`] waits for. Default [`Durability::Buffered`].
    pub durability: Durability,
    /// The most entries the ledger holds; a write that would pass it fails with
    /// [`LedgerError::LimitReached`]. Default `None` (no limit).
    pub limit: Option<u64>,
    /// Bytes between entries of a segment's sparse index (in memory, and in the seal), from
    /// 64 to 2^30. Smaller finds a sequence faster and costs more memory. Default 4096.
    pub index_interval: u32,
    /// When recovery finds damage inside sealed data (or a missing segment), cut the log at
    /// the damage instead of failing to open. Default `false`.
    pub repair: bool,
    /// Fault in each new segment's pages on a background thread, ahead of the writer.
    /// Default `true`.
    pub prefault: bool,
    /// Open without the lock and change nothing on disk: for inspecting a ledger, also one a
    /// writer (in another process) has open. Recovery is worked out, not applied: the report
    /// says what opening for writing would do, and reads see the records it would keep.
    /// Writes, deletes and syncs fail with [`LedgerError::ReadOnly`]. A read-only ledger does
    /// not see what a writer in another process appends after the open: open it again.
    /// Default `false`.
    pub read_only: bool,
    /// For deterministic crash tests: no background thread; its jobs (finishing sealed
    /// segments, preparing the next file) wait for [`Ledger::run_background`]. Default
    /// `false`.
    #[doc(hidden)]
    pub manual_background: bool,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            durability: Durability::Buffered,
            limit: None,
            index_interval: 4096,
            repair: false,
            prefault: true,
            read_only: false,
            manual_background: false,
        }
    }
}

impl LedgerConfig {
    /// The default configuration with segments of `bytes` bytes.
    #[must_use]
    pub fn with_segment_size(mut self, bytes: usize) -> Self {
        self.segment_size = bytes;
        self
    }

    /// The configuration with this default durability.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The configuration with this limit on the number of entries.
    #[must_use]
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The configuration with repair on or off.
    #[must_use]
    pub fn with_repair(mut self, repair: bool) -> Self {
        self.repair = repair;
        self
    }

    /// The configuration opening read-only; see [`read_only`](Self::read_only).
    #[must_use]
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    fn validate(&self) -> Result<(), LedgerError> {
        if self.read_only && self.repair {
            return Err(LedgerError::Config(
                "repair changes the files: it needs a writable open".into(),
            ));
        }
        if !(64..=1 << 30).contains(&self.index_interval) {
            return Err(LedgerError::Config(format!(
                "index_interval {} must be from 64 to 2^30 bytes",
                self.index_interval
            )));
        }
        if self.segment_size < 8192 || self.segment_size % 4096 != 0 || self.segment_size > 32 << 30
        {
            return Err(LedgerError::Config(format!(
                "segment_size {} must be a multiple of 4096, at least 8192 and at most 32 GiB",
                self.segment_size
            )));
        }
        Ok(())
    }
}

/// One entry of the ledger.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The entry's sequence: > 0, and greater than every sequence before it in the ledger.
    pub sequence: u64,
    /// A value for the application (an event type, say); `0` if unused.
    pub tag: u32,
    /// When the entry was made, in nanoseconds since the unix epoch by convention.
    pub timestamp: u64,
    /// The entry's bytes. Entries read from the ledger share the segment's mapping.
    pub payload: Bytes,
}

impl Entry {
    /// An entry with tag 0, stamped with the current time.
    pub fn new(sequence: u64, payload: impl Into<Bytes>) -> Self {
        Self {
            sequence,
            tag: 0,
            timestamp: now_ns(),
            payload: payload.into(),
        }
    }

    /// The entry with this tag.
    #[must_use]
    pub fn with_tag(mut self, tag: u32) -> Self {
        self.tag = tag;
        self
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("sequence", &self.sequence)
            .field("tag", &self.tag)
            .field("timestamp", &self.timestamp)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// How far [`Ledger::read_tagged_into`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// Entries scanned, kept or not.
    pub scanned: usize,
    /// One past the last sequence scanned (where the next scan starts); `from` if none.
    pub next: u64,
}

/// An entry borrowed from the ledger's mapping, as [`Ledger::visit`] hands it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The entry's sequence.
    pub sequence: u64,
    /// The entry's tag.
    pub tag: u32,
    /// The entry's timestamp.
    pub timestamp: u64,
    /// The entry's bytes, in the mapping.
    pub payload: &'a [u8],
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Another [`Ledger`] (in this process or another) has the directory open.
    #[error("the ledger directory is locked by another writer")]
    Locked,
    /// The file system failed.
    #[error("{context}: {source}")]
    Io {
        /// What the ledger was doing.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A sequence not greater than the one before it (or than the head); nothing was written.
    #[error("sequence {seq} is not greater than {last}: sequences must increase")]
    NotMonotonic {
        /// The head, or the previous entry's sequence in the same write.
        last: u64,
        /// The rejected sequence.
        seq: u64,
    },
    /// The write would take the ledger past its limit; nothing was written.
    #[error("limit of {limit} entries reached: {len} stored, {adding} more would not fit")]
    LimitReached {
        /// The configured limit.
        limit: u64,
        /// Entries stored.
        len: u64,
        /// Entries in the write.
        adding: u64,
    },
    /// A write's entries together do not fit in one segment; nothing was written.
    #[error("a write of {bytes} bytes does not fit in a segment of {segment_size} bytes")]
    TooLarge {
        /// The write's size as frames.
        bytes: usize,
        /// The configured segment size.
        segment_size: usize,
    },
    /// An earlier sync failed, so data the kernel had may be lost; the ledger takes no more
    /// writes. Reads keep working; reopening runs recovery.
    #[error("the ledger is poisoned by an earlier failed sync ({reason}); it stays readable")]
    Poisoned {
        /// The failure that poisoned it.
        reason: String,
    },
    /// Damaged data where the ledger had complete data.
    #[error("segment {segment}: corrupt data at offset {offset}: {reason}")]
    Corrupt {
        /// The segment's file name.
        segment: String,
        /// Offset of the damage in the file.
        offset: usize,
        /// What is wrong there.
        reason: CorruptReason,
    },
    /// A segment file that is not a valid segment of this ledger.
    #[error("segment {segment}: {reason}")]
    BadSegment {
        /// The file's name.
        segment: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A segment is missing from the middle of the ledger.
    #[error("a segment is missing between {before} and {after}")]
    MissingSegment {
        /// The segment before the gap.
        before: String,
        /// The segment after the gap.
        after: String,
    },
    /// `ledger.meta` is missing (while segments exist) or damaged.
    #[error("ledger metadata: {reason}")]
    BadMeta {
        /// What is wrong.
        reason: String,
    },
    /// The ledger was opened read-only.
    #[error("the ledger is open read-only")]
    ReadOnly,
    /// The configuration is invalid.
    #[error("invalid ledger configuration: {0}")]
    Config(String),
}

impl LedgerError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// One segment file, as [`Ledger::segments`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The file's name.
    pub name: String,
    /// The base sequence (the previous segment's last sequence + 1).
    pub base: u64,
    /// Records in the segment (deleted ones included, until the segment goes).
    pub count: u64,
    /// The first record's sequence (0 if none).
    pub first_seq: u64,
    /// The last record's sequence (0 if none).
    pub last_seq: u64,
    /// Bytes used by the header and the records.
    pub used: usize,
    /// The file's size.
    pub size: usize,
    /// Whether the segment is sealed (full: it takes no more records).
    pub sealed: bool,
}

/// What recovery did when the ledger was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Leftover temporary files that were removed.
    pub removed_temporary: Vec<String>,
    /// Where the log was cut: the segment, the offset and what was found there. A
    /// [`Damage::TornTail`] is the expected trace of a crash; a [`Damage::Corrupt`] may be
    /// damage to data that had been synced.
    pub cut: Vec<(String, usize, Damage)>,
    /// Segments whose seal was missing (a crash while the segment was being closed), sealed
    /// again from their intact records.
    pub resealed: Vec<String>,
    /// Segments removed: after a cut, or fully deleted before the crash.
    pub removed_segments: Vec<String>,
}

/// The ledger; see the [module documentation](self). Clones share the same ledger.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("head", &self.head())
            .field("tail", &self.tail())
            .field("len", &self.len())
            .field("segments", &self.inner.segments().len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    storage: Arc<dyn Storage>,
    config: LedgerConfig,
    ledger_id: u64,
    /// The published segments, oldest first. Swapped (not mutated) on roll and delete.
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    head: AtomicU64,
    tail: AtomicU64,
    len: AtomicU64,
    /// Odd while a delete changes `tail` and `len` (a seqlock for readers of both).
    deletes: AtomicU64,
    writer: Mutex<Writer>,
    /// The newest write ticket known durable.
    synced: Mutex<u64>,
    poison: Arc<OnceLock<String>>,
    waiters: Waiters,
    subscribers: Mutex<Vec<SyncSender<u64>>>,
    /// Whether `subscribers` may be non-empty: spares writes the lock when nobody listens.
    has_subscribers: AtomicBool,
    background: Background,
    report: RecoveryReport,
    _lock: Box<dyn LockGuard>,
}

/// The writer's state, under the writer lock.
struct Writer {
    /// The segment being appended to; `None` before the first write or after its seal.
    active: Option<(Arc<Segment>, Appender)>,
    /// Segments written since the last sync.
    unsynced: Vec<Arc<Segment>>,
    /// Names created or renamed since the last directory sync.
    dir_dirty: bool,
    /// Counts writes; a sync makes every write up to some ticket durable.
    ticket: u64,
    /// The last sequence written (the head, as the writer knows it).
    last_seq: u64,
    /// Where staged writes build their frames (reused).
    staging: Vec<u8>,
}

/// Why appending to the active segment failed.
enum AppendError {
    /// The segment format refused (full: time to roll).
    Format(WriteError),
    /// The file write failed; nothing was published and the bytes were zeroed again.
    Io(io::Error),
    /// The file write failed and so did zeroing what it left: the ledger is poisoned.
    Poison(String),
}

/// Writes of at least this many bytes are staged and written with one `pwrite`.
const STAGE_MIN: usize = 16 << 10;

impl Ledger {
    /// Opens the ledger in directory `dir`, creating it if needed, and recovers it.
    #[cfg(unix)]
    pub fn open(dir: impl AsRef<Path>, config: LedgerConfig) -> Result<Self, LedgerError> {
        let dir = dir.as_ref();
        let storage = DirStorage::new(dir)
            .map_err(|e| LedgerError::io(format!("opening {}", dir.display()), e))?;
        Self::open_in(Arc::new(storage), config)
    }

    /// Opens (or creates) the ledger kept in `storage`; [`open`](Self::open) uses a
    /// [`DirStorage`]. Crash tests pass a [`SimStorage`](crate::storage::sim::SimStorage).
    pub fn open_in(storage: Arc<dyn Storage>, config: LedgerConfig) -> Result<Self, LedgerError> {
        config.validate()?;
        let opened = open::open(&*storage, &config)?;
        let poison = Arc::new(OnceLock::new());
        let background = Background::start(Arc::clone(&storage), &config, Arc::clone(&poison));
        if let Some((segment, appender)) = &opened.active {
            if config.prefault {
                background.prefault(Arc::clone(segment), appender.end());
            }
        }
        for segment in &opened.unfinished {
            background.finish(Arc::clone(segment));
        }
        let head = opened.head;
        let inner = Inner {
            ledger_id: opened.ledger_id,
            segments: RwLock::new(Arc::new(opened.segments)),
            head: AtomicU64::new(head),
            tail: AtomicU64::new(opened.tail),
            len: AtomicU64::new(opened.len),
            deletes: AtomicU64::new(0),
            writer: Mutex::new(Writer {
                active: opened.active,
                unsynced: Vec::new(),
                dir_dirty: false,
                ticket: 0,
                last_seq: head,
                staging: Vec::new(),
            }),
            synced: Mutex::new(0),
            poison,
            waiters: Waiters::new(),
            subscribers: Mutex::new(Vec::new()),
            has_subscribers: AtomicBool::new(false),
            background,
            report: opened.report,
            _lock: opened.lock,
            storage,
            config,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Appends `entries` with the configured [`durability`](LedgerConfig::durability); see
    /// [`write_with`](Self::write_with).
    pub fn write(&self, entries: &[Entry]) -> Result<(), LedgerError> {
        self.write_with(entries, self.inner.config.durability)
    }

    /// Appends `entries`, all or nothing, and returns once they are as durable as asked.
    ///
    /// Checks, in this order, and writes nothing if one fails: the
    /// [`limit`](LedgerConfig::limit) ([`LedgerError::LimitReached`]); every sequence greater
    /// than the one before it, the first greater than the head
    /// ([`LedgerError::NotMonotonic`]); the write fits in a segment
    /// ([`LedgerError::TooLarge`]). Subscribers and head waiters are notified, also of an
    /// empty write.
    pub fn write_with(&self, entries: &[Entry], durability: Durability) -> Result<(), LedgerError> {
        let inner = &*self.inner;
        if inner.config.read_only {
            return Err(LedgerError::ReadOnly);
        }
        let ticket = {
            let mut writer = lock(&inner.writer);
            inner.check_poison()?;
            inner.append(&mut writer, entries, durability)?
        };
        inner.notify();
        if durability == Durability::Synced {
            inner.sync_through(ticket)?;
        }
        Ok(())
    }

    /// Makes every write so far durable (one `fdatasync` per segment written since the last
    /// sync, shared with concurrent callers).
    pub fn sync(&self) -> Result<(), LedgerError> {
        if self.inner.config.read_only {
            return Err(LedgerError::ReadOnly);
        }
        let ticket = lock(&self.inner.writer).ticket;
        self.inner.sync_through(ticket)
    }

    /// Up to `max` entries with a sequence `>= from`, oldest first.
    ///
    /// Payloads share the segment mappings. A record that fails its checksums is an error
    /// naming the segment and the offset, never skipped.
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<Entry>, LedgerError> {
        let mut out = Vec::with_capacity(max.min(1024));
        self.read_into(from, max, &mut out)?;
        Ok(out)
    }

    /// [`read`](Self::read) into `out` (appended; returns how many), for a reader that reuses
    /// one vector across calls.
    pub fn read_into(
        &self,
        from: u64,
        max: usize,
        out: &mut Vec<Entry>,
    ) -> Result<usize, LedgerError> {
        let before = out.len();
        self.read_with(from, max, |segment_records, record| {
            let start = record.offset + ringledger_core::segment::FRAME_HEADER_LEN;
            out.push(Entry {
                sequence: record.seq,
                tag: record.tag,
                timestamp: record.timestamp,
                payload: segment_records.slice(start..start + record.payload.len()),
            });
        })?;
        Ok(out.len() - before)
    }

    /// Calls `f` on up to `max` entries with a sequence `>= from`, oldest first, with the
    /// payload borrowed from the mapping: no allocation and no reference count per entry.
    /// Returns how many entries it saw.
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    /// ledger.write(&[Entry::new(1, "ab"), Entry::new(2, "cde")]).unwrap();
    /// let mut bytes = 0;
    /// let seen = ledger.visit(0, 10, |entry| bytes += entry.payload.len()).unwrap();
    /// assert_eq!((seen, bytes), (2, 5));
    /// ```
    pub fn visit(
        &self,
        from: u64,
        max: usize,
        mut f: impl FnMut(EntryRef<'_>),
    ) -> Result<usize, LedgerError> {
        self.read_with(from, max, |_, record| {
            f(EntryRef {
                sequence: record.seq,
                tag: record.tag,
                timestamp: record.timestamp,
                payload: record.payload,
            });
        })
    }

    /// Scans up to `scan` entries with a sequence `>= from` and appends to `out` those whose
    /// tag `wanted` accepts, up to `take` of them (the scan stops at the last one taken).
    ///
    /// For the entries it skips only the frame header is checked (its checksum covers the
    /// length, tag, sequence and timestamp): their payloads are never read, which is what makes
    /// a filter over a rare tag cheap. The entries it keeps are checked whole, as by
    /// [`read`](Self::read), and shared with the mapping. Damage inside a skipped payload is
    /// left for the readers that want it (and for [`verify`](Self::verify)) to report.
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    /// let entries: Vec<Entry> = (1..=10).map(|s| Entry::new(s, "x").with_tag(s as u32 % 3)).collect();
    /// ledger.write(&entries).unwrap();
    /// let mut out = Vec::new();
    /// let scanned = ledger.read_tagged_into(1, 100, 100, |tag| tag == 0, &mut out).unwrap();
    /// assert_eq!(out.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3, 6, 9]);
    /// assert_eq!((scanned.scanned, scanned.next), (10, 11));
    /// ```
    pub fn read_tagged_into(
        &self,
        from: u64,
        scan: usize,
        take: usize,
        mut wanted: impl FnMut(u32) -> bool,
        out: &mut Vec<Entry>,
    ) -> Result<Scanned, LedgerError> {
        let from = from.max(self.tail().saturating_add(1));
        let mut result = Scanned {
            scanned: 0,
            next: from,
        };
        if scan == 0 || take == 0 {
            return Ok(result);
        }
        let mut taken = 0;
        let segments = self.inner.segments();
        let start = segments
            .partition_point(|s| s.base() <= from)
            .saturating_sub(1);
        'segments: for segment in &segments[start..] {
            let counts = segment.counts();
            if counts.count == 0 || counts.last_seq < from {
                continue;
            }
            let records = segment.records();
            let mut at = segment.seek(from);
            while at < records.len() {
                let offset = at;
                let corrupt = |reason| LedgerError::Corrupt {
                    segment: segment.name.clone(),
                    offset,
                    reason,
                };
                let record = segment.skim_at(&records, at).map_err(corrupt)?;
                at = record.end();
                if record.seq < from {
                    continue;
                }
                result.scanned += 1;
                result.next = record.seq.saturating_add(1);
                if wanted(record.tag) {
                    let record = segment
                        .record_at(&records, record.offset)
                        .map_err(corrupt)?;
                    let start = record.offset + ringledger_core::segment::FRAME_HEADER_LEN;
                    out.push(Entry {
                        sequence: record.seq,
                        tag: record.tag,
                        timestamp: record.timestamp,
                        payload: records.slice(start..start + record.payload.len()),
                    });
                    taken += 1;
                }
                if taken == take || result.scanned == scan {
                    break 'segments;
                }
            }
        }
        Ok(result)
    }

    /// Walks the records `>= from` (at most `max`), handing each with its segment's bytes.
    fn read_with(
        &self,
        from: u64,
        max: usize,
        mut f: impl FnMut(&Bytes, ringledger_core::segment::Record<'_>),
    ) -> Result<usize, LedgerError> {
        let mut seen = 0;
        if max == 0 {
            return Ok(0);
        }
        let from = from.max(self.tail().saturating_add(1));
        let segments = self.inner.segments();
        // The last segment whose base is <= from holds `from` if anything does.
        let start = segments
            .partition_point(|s| s.base() <= from)
            .saturating_sub(1);
        for segment in &segments[start..] {
            seen += read_segment(segment, from, max - seen, &mut f)?;
            if seen >= max {
                break;
            }
        }
        Ok(seen)
    }

    /// Deletes every entry with a sequence `<= up_to` and returns how many there were.
    ///
    /// quasar's semantics: `up_to` is clamped to the head; with nothing stored, or `up_to` at
    /// or below the tail, nothing happens and 0 is returned. Otherwise the tail becomes
    /// `up_to` (persisted in `ledger.meta`, so it survives a reopen) and segments holding only
    /// deleted entries are removed. Readers holding payloads of a removed segment keep them.
    pub fn delete(&self, up_to: u64) -> Result<usize, LedgerError> {
        let inner = &*self.inner;
        if inner.config.read_only {
            return Err(LedgerError::ReadOnly);
        }
        let writer = lock(&inner.writer);
        let head = writer.last_seq;
        let up_to = up_to.min(head);
        let tail = inner.tail.load(Ordering::Acquire);
        if inner.len.load(Ordering::Acquire) == 0 || up_to <= tail {
            return Ok(0);
        }
        let segments = inner.segments();
        let deleted = count_between(&segments, tail, up_to)?;
        let meta = Meta {
            ledger_id: inner.ledger_id,
            tail: up_to,
            head,
        };
        inner
            .storage
            .replace(META_FILE, &meta.encode())
            .map_err(|e| LedgerError::io("writing ledger.meta", e))?;
        // A seqlock around the pair, so that `index` never counts one's old value from the
        // other's new one.
        inner.deletes.fetch_add(1, Ordering::AcqRel);
        inner.tail.store(up_to, Ordering::Release);
        inner.len.fetch_sub(deleted as u64, Ordering::AcqRel);
        inner.deletes.fetch_add(1, Ordering::Release);
        // Remove sealed segments whose entries are all deleted (the active one stays).
        let active = writer.active.as_ref().map(|(s, _)| Arc::clone(s));
        let (gone, kept): (Vec<_>, Vec<_>) = segments.iter().cloned().partition(|s| {
            let counts = s.counts();
            s.is_sealed()
                && (counts.count == 0 || counts.last_seq <= up_to)
                && !active.as_ref().is_some_and(|a| Arc::ptr_eq(a, s))
        });
        let mut writer = writer;
        // Deleted segments need no sync, and must not be kept mapped by the sync list.
        writer
            .unsynced
            .retain(|s| !gone.iter().any(|g| Arc::ptr_eq(g, s)));
        drop(writer);
        if !gone.is_empty() {
            inner.set_segments(kept);
            for segment in &gone {
                inner
                    .storage
                    .remove(&segment.name)
                    .map_err(|e| LedgerError::io(format!("removing {}", segment.name), e))?;
            }
            inner
                .storage
                .sync_dir()
                .map_err(|e| LedgerError::io("syncing the ledger directory", e))?;
        }
        Ok(deleted)
    }

    /// The newest sequence ever written (it survives deletes and reopens); 0 if none.
    pub fn head(&self) -> u64 {
        self.inner.head.load(Ordering::Acquire)
    }

    /// The sequence entries are deleted up to; 0 if nothing was ever deleted.
    pub fn tail(&self) -> u64 {
        self.inner.tail.load(Ordering::Acquire)
    }

    /// How many entries the ledger holds.
    pub fn len(&self) -> u64 {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether the ledger holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry at position `i`: 0 is the oldest, -1 the newest. `None` when out of range.
    ///
    /// Walks the frames of one segment: a cost in proportion to a segment's entries.
    pub fn index(&self, i: i64) -> Result<Option<Entry>, LedgerError> {
        // The length and the tail it counts from must belong together: a delete between the
        // two loads would count the old length from the new tail.
        let (len, tail) = self.inner.len_and_tail();
        let k = if i >= 0 {
            i as u64
        } else {
            match len.checked_sub(i.unsigned_abs()) {
                Some(k) => k,
                None => return Ok(None),
            }
        };
        if k >= len {
            return Ok(None);
        }
        let mut k = k;
        for segment in self.inner.segments().iter() {
            let live = live_in(segment, tail)?;
            if k < live {
                let mut found = None;
                walk(segment, tail.saturating_add(1), |entry| {
                    if k == 0 {
                        found = Some(entry);
                        return false;
                    }
                    k -= 1;
                    true
                })?;
                return Ok(found);
            }
            k -= live;
        }
        Ok(None)
    }

    /// A receiver of the head after each write (also an empty one). The channel holds
    /// `capacity` heads (at least 1); when it is full the notification is skipped, never
    /// waited for. Dropping the receiver unsubscribes.
    pub fn subscribe(&self, capacity: usize) -> Receiver<u64> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(capacity.max(1));
        let mut subscribers = lock(&self.inner.subscribers);
        subscribers.push(sender);
        self.inner.has_subscribers.store(true, Ordering::Release);
        receiver
    }

    /// Waits until the head is at least `seq` (and returns it), or the deadline passes.
    /// Every waiter wakes on the write that gets there.
    pub fn wait_for_head(&self, seq: u64, deadline: impl Into<Deadline>) -> Result<u64, WaitError> {
        self.wait_for_head_cancellable(seq, deadline, None)
    }

    /// [`wait_for_head`](Self::wait_for_head) that a [`CancelToken`] can end early.
    pub fn wait_for_head_cancellable(
        &self,
        seq: u64,
        deadline: impl Into<Deadline>,
        cancel: Option<&CancelToken>,
    ) -> Result<u64, WaitError> {
        let head = &self.inner.head;
        self.inner.waiters.wait_until(deadline.into(), cancel, || {
            let now = head.load(Ordering::Acquire);
            (now >= seq).then_some(now)
        })
    }

    /// With [`LedgerConfig::manual_background`], runs the background jobs queued so far and
    /// returns how many ran.
    #[doc(hidden)]
    pub fn run_background(&self) -> usize {
        self.inner.background.run_pending()
    }

    /// The segments, oldest first: what `ringledger inspect` shows.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.inner
            .segments()
            .iter()
            .map(|s| {
                let counts = s.counts();
                SegmentInfo {
                    name: s.name.clone(),
                    base: s.base(),
                    count: counts.count,
                    first_seq: counts.first_seq,
                    last_seq: counts.last_seq,
                    used: s.data_end(),
                    size: s.mapping.len(),
                    sealed: s.is_sealed(),
                }
            })
            .collect()
    }

    /// What recovery did when this ledger was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.inner.report
    }

    /// Why the ledger is poisoned, if it is.
    pub fn poisoned(&self) -> Option<&str> {
        self.inner.poison.get().map(String::as_str)
    }

    /// Checks every record of every segment (both checksums, order), reading them all: what
    /// [`open`](Self::open) does not do for sealed segments. Returns the number of records.
    pub fn verify(&self) -> Result<u64, LedgerError> {
        let mut records = 0;
        for segment in self.inner.segments().iter() {
            walk(segment, 0, |_| {
                records += 1;
                true
            })?;
        }
        Ok(records)
    }
}

impl Inner {
    /// The length and the tail as one delete left them (writes only add at the head, which
    /// does not change what the length counts from).
    fn len_and_tail(&self) -> (u64, u64) {
        loop {
            let before = self.deletes.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let tail = self.tail.load(Ordering::Acquire);
            let len = self.len.load(Ordering::Acquire);
            std::sync::atomic::fence(Ordering::Acquire);
            if self.deletes.load(Ordering::Relaxed) == before {
                return (len, tail);
            }
        }
    }

    fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        Arc::clone(&self.segments.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn set_segments(&self, segments: Vec<Arc<Segment>>) {
        *self.segments.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(segments);
    }

    fn check_poison(&self) -> Result<(), LedgerError> {
        match self.poison.get() {
            Some(reason) => Err(LedgerError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&self, reason: String) -> LedgerError {
        let _ = self.poison.set(reason);
        LedgerError::Poisoned {
            reason: self.poison.get().cloned().unwrap_or_default(),
        }
    }

    /// Checks and appends one write; returns its ticket.
    fn append(
        &self,
        writer: &mut Writer,
        entries: &[Entry],
        durability: Durability,
    ) -> Result<u64, LedgerError> {
        let adding = entries.len() as u64;
        if let Some(limit) = self.config.limit {
            let len = self.len.load(Ordering::Acquire);
            if len.saturating_add(adding) > limit {
                return Err(LedgerError::LimitReached { limit, len, adding });
            }
        }
        let mut last = writer.last_seq;
        for entry in entries {
            if entry.sequence <= last {
                return Err(LedgerError::NotMonotonic {
                    last,
                    seq: entry.sequence,
                });
            }
            last = entry.sequence;
        }
        if entries.is_empty() {
            return Ok(writer.ticket);
        }
        let bytes = entries.iter().fold(0usize, |sum, e| {
            sum.saturating_add(frame_len(e.payload.len()))
        });
        let fits_empty = Appender::max_payload_in(self.config.segment_size)
            .saturating_add(ringledger_core::segment::FRAME_HEADER_LEN);
        if bytes > fits_empty {
            return Err(LedgerError::TooLarge {
                bytes,
                segment_size: self.config.segment_size,
            });
        }
        let staged = durability == Durability::Synced || bytes >= STAGE_MIN;
        let mut rolled = false;
        loop {
            if writer.active.is_none() {
                self.roll(writer)?;
                rolled = true;
            }
            match self.append_to_active(writer, entries, staged) {
                Ok(()) => break,
                // A write that does not fit in an empty segment never will.
                Err(AppendError::Format(WriteError::Full { .. }))
                    if !rolled
                        && writer
                            .active
                            .as_ref()
                            .is_some_and(|(_, a)| a.stats().count > 0) =>
                {
                    self.roll(writer)?;
                    rolled = true;
                }
                Err(AppendError::Format(WriteError::Full { .. })) => {
                    return Err(LedgerError::TooLarge {
                        bytes,
                        segment_size: self.config.segment_size,
                    })
                }
                Err(AppendError::Format(other)) => {
                    return Err(LedgerError::BadSegment {
                        segment: writer
                            .active
                            .as_ref()
                            .map_or_else(String::new, |(s, _)| s.name.clone()),
                        reason: other.to_string(),
                    })
                }
                Err(AppendError::Io(e)) => {
                    return Err(LedgerError::io("writing to the active segment", e))
                }
                Err(AppendError::Poison(reason)) => return Err(self.poison(reason)),
            }
        }
        writer.last_seq = last;
        writer.ticket += 1;
        self.len.fetch_add(adding, Ordering::AcqRel);
        self.head.store(last, Ordering::Release);
        Ok(writer.ticket)
    }

    /// Appends every entry to the active segment and publishes them, or (when they do not
    /// all fit, or the file write fails) writes nothing.
    ///
    /// Small buffered writes store their frames through the mapping. Synced writes and large
    /// ones build the frames in a staging buffer and write them with one `pwrite`: that spares
    /// a page fault per new page (and, after a sync cleaned the pages, per written page), which
    /// costs more than the extra copy once a write spans a few pages.
    fn append_to_active(
        &self,
        writer: &mut Writer,
        entries: &[Entry],
        staged: bool,
    ) -> Result<(), AppendError> {
        let Writer {
            active, staging, ..
        } = writer;
        let Some((segment, appender)) = active.as_mut() else {
            return Err(AppendError::Format(WriteError::Sealed));
        };
        let start = appender.end();
        let saved = appender.clone();
        let last = entries.len() - 1;
        if staged {
            let bytes = entries
                .iter()
                .map(|e| frame_len(e.payload.len()))
                .sum::<usize>();
            staging.clear();
            staging.resize(bytes, 0);
            let mut at = 0;
            for (i, entry) in entries.iter().enumerate() {
                let appended = appender.append_staged(
                    &mut staging[at..],
                    entry.sequence,
                    entry.timestamp,
                    entry.tag,
                    &entry.payload,
                    i != last,
                );
                if let Err(e) = appended {
                    *appender = saved;
                    return Err(AppendError::Format(e));
                }
                at += frame_len(entry.payload.len());
            }
            if let Err(e) = segment.mapping.region().write_at(start, staging) {
                *appender = saved;
                // A write that failed part way may have left bytes past the end: zero them,
                // so the image stays "frames, then zeros". If even that fails, the file can
                // no longer be trusted to end where the ledger thinks.
                staging.fill(0);
                if let Err(zeroing) = segment.mapping.region().write_at(start, staging) {
                    return Err(AppendError::Poison(format!(
                        "writing {}: {e}; then zeroing it: {zeroing}",
                        segment.name
                    )));
                }
                return Err(AppendError::Io(e));
            }
        } else {
            for (i, entry) in entries.iter().enumerate() {
                let at = appender.end();
                // SAFETY: bytes at and above the committed end are touched by the writer
                // alone, and we hold the writer lock.
                let tail = unsafe { segment.mapping.tail_mut(at) };
                let appended = appender.append_in_write(
                    tail,
                    entry.sequence,
                    entry.timestamp,
                    entry.tag,
                    &entry.payload,
                    i != last,
                );
                if let Err(e) = appended {
                    // Undo: zero what this write put down, so the image stays "frames, then
                    // zeros", and forget it.
                    let end = appender.end();
                    // SAFETY: as above.
                    let written = unsafe { segment.mapping.tail_mut(start) };
                    // From the back, so that a kill meanwhile leaves complete frames of an
                    // unfinished write followed by zeros: a torn tail to recovery.
                    for chunk in written[..end - start].rchunks_mut(4096) {
                        chunk.fill(0);
                        std::sync::atomic::compiler_fence(Ordering::Release);
                    }
                    *appender = saved;
                    return Err(AppendError::Format(e));
                }
            }
        }
        // Index after the whole write went in (a failed write leaves no entries behind).
        let mut at = start;
        for entry in entries {
            segment.maybe_index(entry.sequence, at);
            at += frame_len(entry.payload.len());
        }
        let stats = appender.stats();
        segment.publish(
            appender.end(),
            Counts {
                count: stats.count,
                first_seq: stats.first_seq,
                last_seq: stats.last_seq,
            },
        );
        if !writer.unsynced.iter().any(|s| Arc::ptr_eq(s, segment)) {
            writer.unsynced.push(Arc::clone(segment));
        }
        // A prefault job that ended while the writer paused: start another once the writer
        // has used half of what lies ahead.
        if self.config.prefault
            && self.config.durability == Durability::Buffered
            && appender.end() + background::PREFAULT_WINDOW / 2 > segment.prefaulted()
            && segment.prefaulted() < segment.mapping.len()
        {
            self.background.prefault(
                Arc::clone(segment),
                segment.prefaulted().max(appender.end()),
            );
        }
        Ok(())
    }

    /// Seals the active segment (if any) and starts a new one after the head.
    fn roll(&self, writer: &mut Writer) -> Result<(), LedgerError> {
        // The base chains to the previous segment (its last sequence + 1), which lets open
        // notice a missing segment. The head can be above that last sequence (entries lost
        // in a crash after a delete recorded the head), so it is not used while a previous
        // segment exists.
        let previous_last = self
            .segments()
            .last()
            .map(|s| s.counts())
            .filter(|c| c.count > 0)
            .map(|c| c.last_seq);
        let base = previous_last.unwrap_or(writer.last_seq).saturating_add(1);
        let name = file_name(base).as_str().to_owned();
        let header = FileHeader {
            base_seq: base,
            ledger_id: self.ledger_id,
            salt: random_u64(),
            capacity: self.config.segment_size as u64,
            created_ns: now_ns(),
        };
        let (spare_name, region) = match self.background.take_spare() {
            Some(spare) => spare,
            None => {
                let tmp = format!("{name}.tmp");
                let region = self
                    .storage
                    .create(&tmp, self.config.segment_size)
                    .map_err(|e| LedgerError::io(format!("creating segment {tmp}"), e))?;
                (tmp, region)
            }
        };
        let mapping = Mapping::new(region);
        let mut image = [0u8; FILE_HEADER_LEN];
        header
            .encode(&mut image)
            .map_err(|e| LedgerError::Config(e.to_string()))?;
        // SAFETY: the new file is ours alone until it is published below.
        let whole = unsafe { mapping.tail_mut(0) };
        whole[..FILE_HEADER_LEN].copy_from_slice(&image);
        // The header (and the file's allocation) must be durable before the name is: a
        // segment name on disk always has a valid header behind it.
        if let Err(e) = mapping.region().sync() {
            let _ = self.storage.remove(&spare_name);
            return Err(self.poison(format!("syncing new segment {name}: {e}")));
        }
        self.storage
            .rename(&spare_name, &name)
            .map_err(|e| LedgerError::io(format!("renaming {spare_name} to {name}"), e))?;
        writer.dir_dirty = true;
        let appender = Appender::create(&header, self.config.index_interval).map_err(|e| {
            LedgerError::BadSegment {
                segment: name.clone(),
                reason: e.to_string(),
            }
        })?;
        let segment = Arc::new(Segment::new(
            name,
            header,
            mapping,
            self.config.index_interval as usize,
        ));

        if let Some((old, appender)) = writer.active.take() {
            let end = appender.end();
            // SAFETY: below the committed end nobody writes; at and above it only the writer,
            // which is us.
            let (records, tail) = unsafe { (old.mapping.slice(0, end), old.mapping.tail_mut(end)) };
            // The index the segment kept while appending is the seal's; should it ever
            // disagree, build the seal's from the records instead.
            appender
                .clone()
                .seal_frame_indexed(old.seal_index(), tail)
                .or_else(|e| {
                    debug_assert!(false, "the segment's index disagrees with the seal's: {e}");
                    appender.seal_frame(records, tail)
                })
                .map_err(|e| LedgerError::BadSegment {
                    segment: old.name.clone(),
                    reason: format!("sealing: {e}"),
                })?;
            old.publish_sealed();
            // Nobody writes the records and the seal again: write-protect them, so that
            // writing them back does not have to flush a TLB entry per page.
            old.mapping.region().protect(0..end);
            if !writer.unsynced.iter().any(|s| Arc::ptr_eq(s, &old)) {
                writer.unsynced.push(Arc::clone(&old));
            }
            // Sync the seal, then write the footer: a footer on disk always points at a seal
            // on disk.
            self.background.finish(old);
        }
        let mut segments = Vec::clone(&self.segments());
        segments.push(Arc::clone(&segment));
        self.set_segments(segments);
        // Make the next file, then fault this one's pages in ahead of the writer (its header
        // is durable now, so dirty pages may come). The preparing thread follows the writer
        // through this segment until it is sealed.
        self.background.prepare_spare();
        self.background
            .prefault(Arc::clone(&segment), FILE_HEADER_LEN);
        writer.active = Some((segment, appender));
        Ok(())
    }

    /// Makes every write up to `ticket` durable, sharing the sync with concurrent callers.
    fn sync_through(&self, ticket: u64) -> Result<(), LedgerError> {
        let mut synced = lock(&self.synced);
        self.check_poison()?;
        if *synced >= ticket {
            return Ok(());
        }
        let (segments, dir_dirty, upto) = {
            let mut writer = lock(&self.writer);
            (
                std::mem::take(&mut writer.unsynced),
                std::mem::take(&mut writer.dir_dirty),
                writer.ticket,
            )
        };
        for segment in &segments {
            if let Err(e) = segment.mapping.region().sync() {
                return Err(self.poison(format!("syncing segment {}: {e}", segment.name)));
            }
        }
        if dir_dirty {
            if let Err(e) = self.storage.sync_dir() {
                return Err(self.poison(format!("syncing the ledger directory: {e}")));
            }
        }
        *synced = upto;
        Ok(())
    }

    fn notify(&self) {
        let head = self.head.load(Ordering::Acquire);
        self.waiters.notify();
        if !self.has_subscribers.load(Ordering::Acquire) {
            return;
        }
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|s| !matches!(s.try_send(head), Err(TrySendError::Disconnected(_))));
        if subscribers.is_empty() {
            self.has_subscribers.store(false, Ordering::Release);
        }
    }
}

/// Hands the records `>= from` of one segment to `f`, up to `max`; returns how many.
fn read_segment(
    segment: &Segment,
    from: u64,
    max: usize,
    f: &mut impl FnMut(&Bytes, ringledger_core::segment::Record<'_>),
) -> Result<usize, LedgerError> {
    let counts = segment.counts();
    if counts.count == 0 || counts.last_seq < from {
        return Ok(0);
    }
    let records = segment.records();
    let mut at = segment.seek(from);
    let mut seen = 0;
    while at < records.len() && seen < max {
        let record = segment
            .record_at(&records, at)
            .map_err(|reason| LedgerError::Corrupt {
                segment: segment.name.clone(),
                offset: at,
                reason,
            })?;
        at = record.end();
        if record.seq >= from {
            f(&records, record);
            seen += 1;
        }
    }
    Ok(seen)
}

/// Calls `f` on each entry `>= from` of `segment`, in order, until it returns `false`.
fn walk(segment: &Segment, from: u64, mut f: impl FnMut(Entry) -> bool) -> Result<(), LedgerError> {
    let records = segment.records();
    let mut at = segment.seek(from);
    let mut prev: Option<u64> = None;
    while at < records.len() {
        let corrupt = |offset, reason| LedgerError::Corrupt {
            segment: segment.name.clone(),
            offset,
            reason,
        };
        let record = segment
            .record_at(&records, at)
            .map_err(|reason| corrupt(at, reason))?;
        if let Some(prev) = prev.filter(|&p| record.seq <= p) {
            return Err(corrupt(
                at,
                CorruptReason::SequenceNotIncreasing {
                    prev,
                    seq: record.seq,
                },
            ));
        }
        prev = Some(record.seq);
        at = record.end();
        if record.seq >= from {
            let start = record.offset + ringledger_core::segment::FRAME_HEADER_LEN;
            let entry = Entry {
                sequence: record.seq,
                tag: record.tag,
                timestamp: record.timestamp,
                payload: records.slice(start..start + record.payload.len()),
            };
            if !f(entry) {
                break;
            }
        }
    }
    Ok(())
}

/// Entries of `segment` with a sequence above `tail`.
fn live_in(segment: &Segment, tail: u64) -> Result<u64, LedgerError> {
    let counts = segment.counts();
    if counts.count == 0 || counts.last_seq <= tail {
        return Ok(0);
    }
    if counts.first_seq > tail {
        return Ok(counts.count);
    }
    let mut live = 0;
    walk(segment, tail.saturating_add(1), |_| {
        live += 1;
        true
    })?;
    Ok(live)
}

/// Entries with a sequence in `(low, high]`.
fn count_between(segments: &[Arc<Segment>], low: u64, high: u64) -> Result<usize, LedgerError> {
    let mut n = 0u64;
    for segment in segments {
        let counts = segment.counts();
        if counts.count == 0 || counts.last_seq <= low || counts.first_seq > high {
            continue;
        }
        if counts.first_seq > low && counts.last_seq <= high {
            n += counts.count;
            continue;
        }
        walk(segment, low.saturating_add(1), |entry| {
            if entry.sequence > high {
                return false;
            }
            n += 1;
            true
        })?;
    }
    Ok(n as usize)
}
