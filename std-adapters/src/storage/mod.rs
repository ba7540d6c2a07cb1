//! Where ledgers and tables keep their files: a directory of fixed-size, memory-mapped files.
//!
//! [`Storage`] is the handful of operations the [`ledger`](crate::ledger) and the
//! [`table`](crate::table) need from a file system: create a file of a fixed size, really
//! allocated (so a full disk is an error here, never a `SIGBUS` later) and mapped; map an
//! existing one; rename, remove and list names; make data and names durable. [`DirStorage`] is
//! the real thing, on a directory. [`sim::SimStorage`] keeps everything in memory and can
//! simulate a power loss by seed, which is how the crash tests check the recovery rule.
//!
//! Nothing above this module touches a file descriptor, so what "durable" means is decided in
//! exactly one place per backend.

use std::fmt;
use std::io;
use std::ops::Range;

#[cfg(unix)]
mod dir;
pub mod sim;

#[cfg(unix)]
pub use dir::DirStorage;

/// The file in a storage directory that a writer locks; [`Storage::list`] leaves it out.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// A file mapped into memory, shared with the operating system's page cache.
///
/// # Safety
///
/// Implementations promise that [`as_ptr`](Region::as_ptr) points at [`len`](Region::len)
/// bytes that stay valid, at the same address, until the region is dropped, and that writing
/// through it (when the region was opened writable) changes the file. The bytes may be read
/// and written by several threads through that pointer; callers keep the accesses disjoint.
///
/// ```
/// use ringledger::storage::{sim::SimStorage, Storage};
///
/// let storage = SimStorage::new();
/// let region = storage.create("data", 4096)?;
/// // SAFETY: `len()` bytes from `as_ptr()` are the mapping, and nothing else uses them.
/// let bytes = unsafe { std::slice::from_raw_parts_mut(region.as_ptr(), region.len()) };
/// bytes[..5].copy_from_slice(b"hello");
/// region.sync()?; // durable now
/// assert_eq!(&storage.durable_contents("data").unwrap()[..5], b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
pub unsafe trait Region: Send + Sync + fmt::Debug {
    /// The first byte of the mapping.
    fn as_ptr(&self) -> *mut u8;

    /// The mapping's length: the file's size.
    fn len(&self) -> usize;

    /// Whether the mapping is empty (never, for a region a storage handed out).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `bytes` at `offset` of the file (which the mapping then shows): what a writer
    /// that stages whole writes uses instead of storing through the mapping, which spares it a
    /// page fault per new page. The default stores through the pointer.
    ///
    /// ```
    /// use ringledger::storage::{sim::SimStorage, Storage};
    ///
    /// let storage = SimStorage::new();
    /// let region = storage.create("data", 4096)?;
    /// region.write_at(100, b"staged")?;
    /// assert_eq!(&storage.contents("data").unwrap()[100..106], b"staged");
    /// assert!(region.write_at(4095, b"too long").is_err()); // past the end: nothing written
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn write_at(&self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let end = offset
            .checked_add(bytes.len())
            .filter(|&end| end <= self.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "write past the region"))?;
        // SAFETY: `offset..end` lies inside the mapping (checked above), which the `Region`
        // contract keeps valid; the caller keeps other accesses to the range away.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.as_ptr().add(offset), end - offset);
        }
        Ok(())
    }

    /// Makes every write to the region so far durable (`fdatasync`). An error here means the
    /// kernel may have dropped the data: the caller must not trust any later sync either.
    fn sync(&self) -> io::Result<()>;

    /// A hint that `range` will not be written again through this mapping: it may become
    /// read-only (then the kernel's writeback needs no TLB flush per page to clean it).
    /// Only whole pages inside the range are affected.
    fn protect(&self, range: Range<usize>) {
        let _ = range;
    }

    /// A hint that `range` is about to be written: fault its pages in now, off the hot path.
    /// With `dirty`, they are faulted in writable (no fault at all on the first write, but a
    /// sync of the file writes them, zeros and all); without, they come in clean (the first
    /// write to each page still takes a light fault).
    fn prefault(&self, range: Range<usize>, dirty: bool) {
        let _ = (range, dirty);
    }
}

/// The guard of a storage's exclusive lock; dropping it releases the lock.
///
/// ```
/// use std::io::ErrorKind;
/// use ringledger::storage::{DirStorage, Storage};
///
/// let dir = tempfile::tempdir()?;
/// let storage = DirStorage::new(dir.path())?;
/// let guard = storage.lock()?;
/// let again = DirStorage::new(dir.path())?; // another open of the directory
/// assert_eq!(again.lock().unwrap_err().kind(), ErrorKind::WouldBlock);
/// drop(guard);
/// assert!(again.lock().is_ok());
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait LockGuard: Send + Sync + fmt::Debug {}

/// A directory of mapped files; see the [module documentation](self).
///
/// Names are plain file names (no separators). Every method may be called from any thread.
///
/// Code written against `dyn Storage` runs on a real directory and, in tests, in memory:
///
/// ```
/// use ringledger::storage::{sim::SimStorage, DirStorage, Storage};
///
/// fn save_settings(storage: &dyn Storage, text: &str) -> std::io::Result<()> {
///     storage.replace("settings", text.as_bytes()) // atomic and durable
/// }
///
/// let dir = tempfile::tempdir()?;
/// for storage in [&DirStorage::new(dir.path())? as &dyn Storage, &SimStorage::new()] {
///     save_settings(storage, "v1")?;
///     assert_eq!(storage.read("settings")?.as_deref(), Some(&b"v1"[..]));
///     assert_eq!(storage.list()?, ["settings"]);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Storage: Send + Sync + fmt::Debug {
    /// Takes the exclusive lock on the directory. A second holder, in this process or another,
    /// gets an error of kind [`io::ErrorKind::WouldBlock`].
    fn lock(&self) -> io::Result<Box<dyn LockGuard>>;

    /// Whether a writer holds the [`lock`](Storage::lock) now, asked without taking it (a
    /// reader must never make a writer's lock fail). `None` when the storage cannot tell; the
    /// default.
    ///
    /// ```
    /// use ringledger::storage::{sim::SimStorage, Storage};
    ///
    /// let storage = SimStorage::new();
    /// assert_eq!(storage.writer_alive()?, Some(false));
    /// let lock = storage.lock()?;
    /// assert_eq!(storage.writer_alive()?, Some(true));
    /// drop(lock);
    /// assert_eq!(storage.writer_alive()?, Some(false));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn writer_alive(&self) -> io::Result<Option<bool>> {
        Ok(None)
    }

    /// The names of the files in the directory, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;

    /// Creates `name` (which must not exist) with `len` bytes, all zero and really allocated,
    /// and maps it writable. The file's data is not durable until [`Region::sync`], its name
    /// not until [`sync_dir`](Storage::sync_dir).
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use ringledger::storage::{DirStorage, Storage};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let storage = DirStorage::new(dir.path())?;
    /// let region = storage.create("segment.tmp", 8192)?;
    /// assert_eq!(region.len(), 8192);
    /// let again = storage.create("segment.tmp", 8192).unwrap_err();
    /// assert_eq!(again.kind(), ErrorKind::AlreadyExists);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn create(&self, name: &str, len: usize) -> io::Result<Box<dyn Region>>;

    /// [`create`](Storage::create), with the zeros really written rather than only allocated.
    /// Slower to make, but data synced over written blocks commits no metadata: on ext4 and
    /// XFS an `fdatasync` of data written into allocated-but-unwritten blocks also commits
    /// the journal (the extents become written), which halves a synced writer's rate. The
    /// synced ledger prepares its segment files this way, off the write path. By default the
    /// same as `create`.
    ///
    /// ```
    /// use ringledger::storage::{DirStorage, Storage};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let storage = DirStorage::new(dir.path())?;
    /// let region = storage.create_written("spare.tmp", 8192)?; // prepared off the write path
    /// region.sync()?;
    /// let file = std::fs::metadata(dir.path().join("spare.tmp"))?;
    /// assert_eq!(file.len(), 8192);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn create_written(&self, name: &str, len: usize) -> io::Result<Box<dyn Region>> {
        self.create(name, len)
    }

    /// Maps the existing file `name`, whole; writable when asked.
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use ringledger::storage::{DirStorage, Storage};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let storage = DirStorage::new(dir.path())?;
    /// storage.create("a", 8192)?.write_at(0, b"x")?;
    /// let region = storage.open("a", false)?; // read-only
    /// // SAFETY: the mapping is at least one byte long.
    /// assert_eq!(unsafe { region.as_ptr().read() }, b'x');
    /// assert_eq!(storage.open("missing", false).unwrap_err().kind(), ErrorKind::NotFound);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn open(&self, name: &str, writable: bool) -> io::Result<Box<dyn Region>>;

    /// Renames `from` to `to`, replacing `to` if it exists. Durable after
    /// [`sync_dir`](Storage::sync_dir).
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;

    /// Removes `name`. Durable after [`sync_dir`](Storage::sync_dir). Mappings of it stay
    /// valid until they are dropped.
    fn remove(&self, name: &str) -> io::Result<()>;

    /// Makes the creations, renames and removals so far durable (`fsync` of the directory).
    fn sync_dir(&self) -> io::Result<()>;

    /// Reads a small file whole; `None` when it does not exist.
    ///
    /// ```
    /// use ringledger::storage::{sim::SimStorage, Storage};
    ///
    /// let storage = SimStorage::new();
    /// assert_eq!(storage.read("meta")?, None);
    /// storage.write("meta", b"head=5")?;
    /// assert_eq!(storage.read("meta")?, Some(b"head=5".to_vec()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>>;

    /// Creates or truncates `name`, writes `bytes` and makes them durable (not the name: see
    /// [`replace`](Storage::replace)).
    ///
    /// ```
    /// use ringledger::storage::{DirStorage, Storage};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let storage = DirStorage::new(dir.path())?;
    /// storage.write("note", b"first")?;
    /// storage.write("note", b"2nd")?; // truncated, then written
    /// assert_eq!(std::fs::read(dir.path().join("note"))?, b"2nd");
    /// storage.sync_dir()?; // now the name is durable too
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()>;

    /// Atomically replaces the small file `name` with `bytes`, durably: written to
    /// `<name>.tmp`, synced, renamed over `name`, directory synced.
    fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = format!("{name}.tmp");
        self.write(&tmp, bytes)?;
        self.rename(&tmp, name)?;
        self.sync_dir()
    }
}

/// How far a write must get before it returns.
///
/// ```
/// use std::sync::Arc;
/// use ringledger::ledger::{Durability, Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
///
/// let storage = SimStorage::new();
/// let config = LedgerConfig::default().with_segment_size(64 << 10);
/// let ledger = Ledger::open_in(Arc::new(storage.clone()), config.clone())?;
/// ledger.write_with(&[Entry::new(1, "payment")], Durability::Synced)?;
/// ledger.write_with(&[Entry::new(2, "page view")], Durability::Buffered)?;
/// drop(ledger);
/// for seed in 0..4 {
///     // A power loss, by seed: the synced entry is always there, the buffered one may not be.
///     let after = Ledger::open_in(Arc::new(storage.crash(seed)), config.clone())?;
///     assert!(after.head() >= 1);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// Into the page cache: survives a crash of the process, not of the machine.
    #[default]
    Buffered,
    /// Onto the disk (`fdatasync`): survives a power loss. Writers that sync at the same time
    /// share one sync (group commit).
    Synced,
}

/// A random `u64` from the standard library's per-process random hasher keys, a clock and a
/// counter: good enough for salts and ids (they need to differ, not to be secret).
pub fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish()
}

/// Nanoseconds since the unix epoch (0 if the clock is before it).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
