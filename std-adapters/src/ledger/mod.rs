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
//!   or another, gets [`LedgerError::Locked`];
//! - `ledger.live`, one page where the writer shows its head and tail to
//!   [read-only](LedgerConfig::read_only) ledgers in other processes, which follow it without
//!   reopening ([`Ledger::refresh`], [`FollowMode`]); never needed for recovery.
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
//! (group commit). Readers see a synced write only once it is durable (and a buffered write
//! queued behind it with it): nothing a reader was handed from a synced write is taken back
//! by a power loss. A failed sync poisons the ledger for good: the kernel may have dropped the
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

#[cfg(feature = "async")]
mod asynch;
mod background;
mod config;
mod error;
mod follow;
mod live;
mod meta;
mod naming;
mod open;
mod read;
mod segment;
mod write;

use std::fmt;
#[cfg(unix)]
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use ringledger_core::segment::Damage;

#[cfg(unix)]
use crate::storage::DirStorage;
pub use crate::storage::Durability;
use crate::storage::{now_ns, LockGuard, Storage};
use crate::sync::{lock, AtomicBool, AtomicU64, Condvar, Mutex, Ordering, RwLock};
use crate::wait::{CancelToken, Deadline, Rare, WaitError, Waiters};

use background::Background;
use segment::Segment;

#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub use asynch::WaitForHead;
pub use config::LedgerConfig;
pub use error::LedgerError;
pub use follow::FollowMode;
use read::{live_in, walk};
use write::{SyncState, Writer};

/// What a file name in a ledger directory is to the ledger, if anything.
///
/// Tools that look at a ledger directory (the `ringledger verify` command, a backup script)
/// use it to tell the ledger's own files from foreign ones. Temporary files are a writer's
/// work in progress (a segment being created, a spare segment prepared in advance, the newest
/// segment until its header is synced and it gets its name, a metadata file being replaced);
/// after a crash, the next writable [`Ledger::open`] names the newest segment if it was one
/// of them and removes the rest.
///
/// ```
/// use ringledger::ledger::{ledger_file_kind, LedgerFileKind};
///
/// assert_eq!(ledger_file_kind("00000000000000000001.seg"), Some(LedgerFileKind::Segment));
/// assert_eq!(ledger_file_kind("spare-0123456789abcdef.tmp"), Some(LedgerFileKind::Temporary));
/// assert_eq!(ledger_file_kind("notes.txt"), None);
/// ```
pub fn ledger_file_kind(name: &str) -> Option<LedgerFileKind> {
    use ringledger_core::segment::parse_file_name;
    let spare = |base: &str| {
        base.strip_prefix(background::SPARE_PREFIX)
            .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if name == meta::META_FILE {
        Some(LedgerFileKind::Meta)
    } else if name == live::LIVE_FILE {
        Some(LedgerFileKind::Live)
    } else if name == crate::storage::LOCK_FILE {
        Some(LedgerFileKind::Lock)
    } else if parse_file_name(name).is_ok() {
        Some(LedgerFileKind::Segment)
    } else if name
        .strip_suffix(".tmp")
        .is_some_and(|base| base == meta::META_FILE || parse_file_name(base).is_ok() || spare(base))
    {
        Some(LedgerFileKind::Temporary)
    } else {
        None
    }
}

/// The kinds of file a ledger directory holds; see [`ledger_file_kind`].
///
/// ```
/// use ringledger::ledger::{ledger_file_kind, Entry, Ledger, LedgerConfig, LedgerFileKind};
///
/// let dir = tempfile::tempdir()?;
/// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
/// ledger.write(&[Entry::new(1, "a")])?;
/// // The newest segment gets its name once its header is synced: by a background thread
/// // shortly after the write, or by a sync (until then it is a temporary file).
/// ledger.sync()?;
/// std::fs::write(dir.path().join("README"), "put here by someone else")?;
/// let (mut segments, mut foreign) = (0, Vec::new());
/// for file in std::fs::read_dir(dir.path())? {
///     let name = file?.file_name().into_string().unwrap();
///     match ledger_file_kind(&name) {
///         Some(LedgerFileKind::Segment) => segments += 1,
///         Some(_) => {} // the meta, the lock, a spare segment being prepared
///         None => foreign.push(name),
///     }
/// }
/// assert_eq!((segments, foreign), (1, vec!["README".to_string()]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedgerFileKind {
    /// A segment file, `<20-digit base sequence>.seg`.
    Segment,
    /// `ledger.meta`: the ledger's id, head and tail.
    Meta,
    /// `LOCK`, the file a writer locks.
    Lock,
    /// `ledger.live`, where the writer shows readers in other processes its head (never
    /// needed for recovery).
    Live,
    /// A writer's work in progress (see [`ledger_file_kind`]); after a crash, the next
    /// writable open names it (the newest segment, not named yet) or removes it.
    Temporary,
}

/// One entry of the ledger.
///
/// ```
/// use ringledger::ledger::Entry;
///
/// let entry = Entry::new(42, "order placed").with_tag(3);
/// assert_eq!((entry.sequence, entry.tag), (42, 3));
/// assert!(entry.timestamp > 0, "stamped with the current time");
/// ```
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
    ///
    /// The payload is anything that becomes [`Bytes`] without a copy: a `&'static str` or
    /// byte slice, a `String`, a `Vec<u8>`, or `Bytes` itself.
    ///
    /// ```
    /// use ringledger::ledger::Entry;
    ///
    /// let text = Entry::new(1, "static text");
    /// let owned = Entry::new(2, vec![1u8, 2, 3]);
    /// let shared = Entry::new(3, bytes::Bytes::from(format!("event {}", 3)));
    /// assert_eq!((text.tag, &owned.payload[..]), (0, &[1u8, 2, 3][..]));
    /// assert_eq!(shared.payload, "event 3");
    /// ```
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
///
/// A filter over a long ledger scans it in bounded steps, each starting at the last one's
/// `next`:
///
/// ```
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig, Scanned};
///
/// let dir = tempfile::tempdir()?;
/// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
/// let entries: Vec<Entry> = (1..=6).map(|s| Entry::new(s, "x").with_tag(s as u32 % 2)).collect();
/// ledger.write(&entries)?;
/// let (mut from, mut odd) = (1, Vec::new());
/// loop {
///     let Scanned { scanned, next } = ledger.read_tagged_into(from, 4, 100, |t| t == 1, &mut odd)?;
///     if scanned == 0 {
///         break; // the end of the ledger
///     }
///     from = next;
/// }
/// assert_eq!(odd.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 3, 5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// Entries scanned, kept or not.
    pub scanned: usize,
    /// One past the last sequence scanned (where the next scan starts); `from` if none.
    pub next: u64,
}

/// An entry borrowed from the ledger's mapping, as [`Ledger::visit`] hands it out.
///
/// ```
/// use ringledger::ledger::{Entry, EntryRef, Ledger, LedgerConfig};
///
/// let dir = tempfile::tempdir()?;
/// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
/// ledger.write(&[Entry::new(1, "ab").with_tag(1), Entry::new(2, "cde").with_tag(2)])?;
/// let mut tagged_bytes = [0; 3];
/// ledger.visit(0, usize::MAX, |entry: EntryRef<'_>| {
///     tagged_bytes[entry.tag as usize] += entry.payload.len(); // no copy, no allocation
/// })?;
/// assert_eq!(tagged_bytes, [0, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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

/// One segment file, as [`Ledger::segments`] describes it.
///
/// ```
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
///
/// let dir = tempfile::tempdir()?;
/// let ledger = Ledger::open(dir.path(), LedgerConfig::default().with_segment_size(8192))?;
/// for seq in 1..=100 {
///     ledger.write(&[Entry::new(seq, vec![0u8; 100])])?; // about 50 fit in a segment
/// }
/// let segments = ledger.segments();
/// assert_eq!(segments.len(), 2);
/// assert!(segments[0].sealed && !segments[1].sealed);
/// assert_eq!(segments[1].base, segments[0].last_seq + 1);
/// assert_eq!(segments[0].count + segments[1].count, 100);
/// assert!(segments[1].used < segments[1].size);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The file's name. A buffered writer's newest segment may not have it on disk yet (it
    /// is written under a temporary name until its header is synced; `Ledger::sync` names
    /// it); a read-only ledger that found it so shows the temporary name.
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
///
/// ```
/// use std::sync::Arc;
/// use ringledger::core::segment::Damage;
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
///
/// let storage = SimStorage::new();
/// let ledger = Ledger::open_in(Arc::new(storage.clone()), LedgerConfig::default())?;
/// ledger.write(&[Entry::new(1, "kept")])?;
/// let segment = ledger.segments().remove(0);
/// drop(ledger);
/// storage.corrupt(&segment.name, segment.used, b"half a frame"); // a crash mid-write
///
/// let ledger = Ledger::open_in(Arc::new(storage), LedgerConfig::default())?;
/// let report = ledger.recovery();
/// assert_eq!(report.cut, [(segment.name, segment.used, Damage::TornTail)]);
/// assert!(report.rebuilt_meta.is_none());
/// assert_eq!(ledger.head(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Leftover temporary files that were removed.
    pub removed_temporary: Vec<String>,
    /// The newest segment, found under a temporary name: the writer had rolled to it and
    /// stopped (a crash) before giving it its name. Named (read-only: read where it is) and
    /// recovered like any segment.
    pub adopted: Vec<String>,
    /// Where the log was cut: the segment, the offset and what was found there. A
    /// [`Damage::TornTail`] is the expected trace of a crash; a [`Damage::Corrupt`] may be
    /// damage to data that had been synced.
    pub cut: Vec<(String, usize, Damage)>,
    /// Segments whose seal was missing (a crash while the segment was being closed), sealed
    /// again from their intact records.
    pub resealed: Vec<String>,
    /// Segments removed: after a cut, or fully deleted before the crash.
    pub removed_segments: Vec<String>,
    /// With [`LedgerConfig::repair`]: why `ledger.meta` (garbled or missing) was rebuilt
    /// from the segments, and what that could not restore.
    pub rebuilt_meta: Option<String>,
}

/// Poisons the ledger (the first reason stays) and says so once, at `error` level.
fn poison(slot: &OnceLock<String>, reason: String) {
    if slot.set(reason).is_ok() {
        if let Some(reason) = slot.get() {
            tracing::error!(%reason, "ledger poisoned: every later write fails");
        }
    }
}

/// What recovery did, as `tracing` events: a cut at damage or a rebuilt meta at `warn` (at
/// `info` for a read-only open), the rest at `info` (a torn tail is the ordinary trace of a
/// crash).
fn trace_recovery(report: &RecoveryReport, read_only: bool) {
    let applied = if read_only { "would be" } else { "was" };
    for (segment, offset, damage) in &report.cut {
        match damage {
            Damage::TornTail => {
                tracing::info!(%segment, offset, "a torn tail {applied} cut (an unfinished write)")
            }
            // A read-only open changes nothing and its caller (`verify`) reports the damage.
            _ if read_only => {
                tracing::info!(%segment, offset, ?damage, "the log {applied} cut at damage")
            }
            _ => tracing::warn!(%segment, offset, ?damage, "the log {applied} cut at damage"),
        }
    }
    for segment in &report.resealed {
        tracing::info!(%segment, "a segment {applied} sealed again (closed by a crash)");
    }
    for segment in &report.removed_segments {
        tracing::info!(%segment, "a segment {applied} removed by recovery");
    }
    if let Some(why) = &report.rebuilt_meta {
        tracing::warn!(%why, "ledger.meta {applied} rebuilt from the segments");
    }
    if !report.adopted.is_empty() {
        tracing::info!(segments = ?report.adopted, "the newest segment {applied} given its name");
    }
    if !report.removed_temporary.is_empty() {
        tracing::debug!(files = ?report.removed_temporary, "leftover temporary files");
    }
}

/// The ledger; see the [module documentation](self). Clones share the same ledger.
///
/// ```
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
///
/// let dir = tempfile::tempdir()?;
/// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
/// let reader = ledger.clone(); // the same ledger, for another thread
/// std::thread::spawn(move || ledger.write(&[Entry::new(1, "from a thread")]))
///     .join()
///     .unwrap()?;
/// assert_eq!(reader.read(1, 1)?[0].payload, "from a thread");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// Group commit's state; `sync_done` wakes the callers waiting for a sync.
    synced: Mutex<SyncState>,
    sync_done: Condvar,
    /// Synced writes between their start and their wait for a sync, and synced writers that
    /// the last sync released and that have not started another write yet: a sync's leader
    /// gives both a moment to land so that its sync covers them (`gather_synced_writes`).
    synced_writes_in_flight: AtomicU64,
    synced_writers_returning: AtomicU64,
    poison: Arc<OnceLock<String>>,
    waiters: Waiters<Rare>,
    subscribers: Mutex<Vec<SyncSender<u64>>>,
    /// Whether `subscribers` may be non-empty: spares writes the lock when nobody listens.
    has_subscribers: AtomicBool,
    background: Background,
    report: RecoveryReport,
    /// The writer's page for readers in other processes (a writable ledger, when the page
    /// could be made).
    live: Option<live::Publisher>,
    /// The newest segment's name, when a roll left it to the background (see `naming`).
    naming: Arc<naming::Naming>,
    /// How a read-only ledger follows its writer.
    follow: Option<follow::Follow>,
    _lock: Box<dyn LockGuard>,
}

impl Ledger {
    /// Opens the ledger in directory `dir`, creating it if needed, and recovers it.
    ///
    /// Opening again after a crash keeps every acknowledged entry; [`recovery`](Self::recovery)
    /// says what was cut.
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
    /// ledger.write(&[Entry::new(1, "hello"), Entry::new(2, "world")])?;
    /// drop(ledger);
    ///
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
    /// assert_eq!((ledger.head(), ledger.len()), (2, 2));
    /// assert!(ledger.recovery().cut.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    pub fn open(dir: impl AsRef<Path>, config: LedgerConfig) -> Result<Self, LedgerError> {
        let dir = dir.as_ref();
        let storage = DirStorage::new(dir)
            .map_err(|e| LedgerError::io(format!("opening {}", dir.display()), e))?;
        Self::open_in(Arc::new(storage), config)
    }

    /// Opens (or creates) the ledger kept in `storage`; [`open`](Self::open) uses a
    /// [`DirStorage`]. Crash tests pass a [`SimStorage`](crate::storage::sim::SimStorage).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::storage::sim::SimStorage;
    ///
    /// let storage = Arc::new(SimStorage::new());
    /// let ledger = Ledger::open_in(storage.clone(), LedgerConfig::default())?;
    /// ledger.write(&[Entry::new(1, "in memory")])?;
    /// assert_eq!(ledger.read(1, 10)?[0].payload, "in memory");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_in(storage: Arc<dyn Storage>, config: LedgerConfig) -> Result<Self, LedgerError> {
        config.validate()?;
        let (follow, opened) = if config.read_only {
            let (follow, opened) = follow::Follow::open(&*storage, &config)?;
            (Some(follow), opened)
        } else {
            (None, open::open(&*storage, &config, None)?)
        };
        trace_recovery(&opened.report, config.read_only);
        let live = if config.read_only {
            None
        } else {
            match live::Publisher::start(&*storage, opened.ledger_id, opened.head, opened.tail) {
                Ok(live) => Some(live),
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "cannot write ledger.live: readers in other processes reopen to follow"
                    );
                    None
                }
            }
        };
        let poison = Arc::new(OnceLock::new());
        let naming = Arc::new(naming::Naming::new(Arc::clone(&storage)));
        let background = Background::start(
            Arc::clone(&storage),
            &config,
            Arc::clone(&poison),
            Arc::clone(&naming),
        );
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
            writer: Mutex::new(Writer::new(opened.active, head)),
            synced: Mutex::new(SyncState::default()),
            sync_done: Condvar::new(),
            synced_writes_in_flight: AtomicU64::new(0),
            synced_writers_returning: AtomicU64::new(0),
            poison,
            waiters: Waiters::parking(),
            subscribers: Mutex::new(Vec::new()),
            has_subscribers: AtomicBool::new(false),
            background,
            report: opened.report,
            live,
            naming,
            follow,
            _lock: opened.lock,
            storage,
            config,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The newest sequence written and shown to readers (it survives deletes and reopens); 0
    /// if none. A synced write counts once its sync has completed.
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

    /// The ledger's identity: a random number chosen when the ledger was created, kept in
    /// `ledger.meta` and every segment's header. It survives reopens, so `(id, sequence)`
    /// names one entry among all ledgers (the JetStream bridge's message ids).
    ///
    /// ```
    /// use ringledger::ledger::{Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let id = Ledger::open(dir.path(), LedgerConfig::default())?.id();
    /// assert_eq!(Ledger::open(dir.path(), LedgerConfig::default())?.id(), id);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> u64 {
        self.inner.ledger_id
    }

    /// A receiver of the head after each write (also an empty one). The channel holds
    /// `capacity` heads (at least 1); when it is full the notification is skipped, never
    /// waited for. Dropping the receiver unsubscribes.
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
    /// let heads = ledger.subscribe(16);
    /// ledger.write(&[Entry::new(7, "x")])?;
    /// assert_eq!(heads.recv()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
        if self.inner.follow.is_some() {
            return self.follow_head(seq, deadline.into(), cancel);
        }
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
                crate::sync::spin_loop();
                continue;
            }
            let tail = self.tail.load(Ordering::Acquire);
            let len = self.len.load(Ordering::Acquire);
            crate::sync::fence(Ordering::Acquire);
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
        poison(&self.poison, reason);
        LedgerError::Poisoned {
            reason: self.poison.get().cloned().unwrap_or_default(),
        }
    }
}
