//! [`DirStorage`]: a real directory, files allocated with `posix_fallocate` and mapped with
//! `mmap(MAP_SHARED)`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{LockGuard, Region, Storage, LOCK_FILE};

/// A directory on a real file system; see the [module documentation](super).
///
/// Its [`lock`](Storage::lock) is an exclusive `flock` of the `LOCK` file. A lock that is
/// released within about 50 ms is waited for: a child process forked by any thread of the
/// previous holder's process (to run a command, say) shares the lock until it calls `exec`,
/// so a ledger just closed in a process that spawns processes may still be held that long.
///
/// ```
/// use ringledger::storage::{DirStorage, Storage};
///
/// let dir = tempfile::tempdir().unwrap();
/// let storage = DirStorage::new(dir.path()).unwrap();
/// let region = storage.create("a.tmp", 8192).unwrap();
/// assert_eq!(region.len(), 8192);
/// region.sync().unwrap();
/// storage.rename("a.tmp", "a").unwrap();
/// storage.sync_dir().unwrap();
/// assert_eq!(storage.list().unwrap(), ["a"]);
/// ```
#[derive(Debug)]
pub struct DirStorage {
    path: PathBuf,
    dir: File,
}

impl DirStorage {
    /// Uses the directory at `path`, creating it (and its parents) if needed.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Ledger, LedgerConfig};
    /// use ringledger::storage::DirStorage;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let storage = DirStorage::new(dir.path().join("a/b"))?;
    /// // What `Ledger::open(dir)` does.
    /// let ledger = Ledger::open_in(Arc::new(storage), LedgerConfig::default())?;
    /// assert!(ledger.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        fs::create_dir_all(&path)?;
        let dir = File::open(&path)?;
        Ok(Self { path, dir })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// The lock on a directory: an exclusive `flock` on its `LOCK` file, held while the file is
/// open. `flock` locks belong to the open file description, so a second open in the same
/// process conflicts as well as one in another process.
///
/// On Linux the holder also takes an open-file-description `fcntl` lock on the file's first
/// byte: unlike `flock`, it can be queried without being taken (`F_OFD_GETLK`), which is how
/// a reader in another process tells a live writer from a dead one
/// ([`Storage::writer_alive`]).
#[derive(Debug)]
struct DirLock {
    _file: File,
}

impl LockGuard for DirLock {}

/// How many times [`Storage::lock`] tries again, 2 ms apart, when the lock is held.
const LOCK_RETRIES: u32 = 25;

impl Storage for DirStorage {
    fn lock(&self) -> io::Result<Box<dyn LockGuard>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.file(LOCK_FILE))?;
        // A holder that goes away within a few milliseconds is waited for: a child process
        // forked by any thread of the holder's process shares the lock's open file until it
        // calls `exec` (which closes it), so a writer that just closed its ledger can still
        // hold it for that long. A real second writer is refused after the retries.
        let mut tries = 0;
        loop {
            // SAFETY: `flock` on a file descriptor we own; no memory is passed.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                break;
            }
            let error = io::Error::last_os_error();
            tries += 1;
            if error.kind() != io::ErrorKind::WouldBlock || tries > LOCK_RETRIES {
                return Err(error);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        #[cfg(target_os = "linux")]
        {
            // Cannot conflict: only the `flock` holder takes it. A failure only means readers
            // cannot see the writer; they then fall back to reopening.
            if let Err(e) = ofd_lock(&file, libc::F_OFD_SETLK, libc::F_WRLCK) {
                tracing::debug!(error = %e, "cannot take the LOCK file's fcntl lock");
            }
        }
        Ok(Box::new(DirLock { _file: file }))
    }

    #[cfg(target_os = "linux")]
    fn writer_alive(&self) -> io::Result<Option<bool>> {
        let file = match File::open(self.file(LOCK_FILE)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(false)),
            Err(e) => return Err(e),
        };
        let lock = ofd_lock(&file, libc::F_OFD_GETLK, libc::F_RDLCK)?;
        Ok(Some(i32::from(lock.l_type) != libc::F_UNLCK))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    if name != LOCK_FILE {
                        names.push(name.to_owned());
                    }
                }
            }
        }
        Ok(names)
    }

    fn create(&self, name: &str, len: usize) -> io::Result<Box<dyn Region>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(self.file(name))?;
        if let Err(e) = allocate(&file, len) {
            drop(file);
            let _ = fs::remove_file(self.file(name));
            return Err(e);
        }
        Ok(Box::new(Mapping::fresh(file, len)?))
    }

    fn create_written(&self, name: &str, len: usize) -> io::Result<Box<dyn Region>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(self.file(name))?;
        if let Err(e) = write_zeros(&file, len) {
            drop(file);
            let _ = fs::remove_file(self.file(name));
            return Err(e);
        }
        Ok(Box::new(Mapping::fresh(file, len)?))
    }

    fn open(&self, name: &str, writable: bool) -> io::Result<Box<dyn Region>> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(self.file(name))?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large to map"))?;
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name} is empty"),
            ));
        }
        Ok(Box::new(Mapping::new(file, len, writable)?))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.file(from), self.file(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.file(name))
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.dir.sync_all()
    }

    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.file(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut file = File::create(self.file(name))?;
        file.write_all(bytes)?;
        data_sync(&file)
    }
}

/// An open-file-description lock `command` of `kind` on the first byte of `file`; returns the
/// `flock` the kernel filled in (for `F_OFD_GETLK`, the conflicting lock or `F_UNLCK`).
#[cfg(target_os = "linux")]
fn ofd_lock(file: &File, command: libc::c_int, kind: libc::c_int) -> io::Result<libc::flock> {
    // SAFETY: a zeroed `flock` is a valid value (`l_pid` must be 0 for OFD locks).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = 0;
    lock.l_len = 1;
    // SAFETY: a plain system call on a descriptor we own, with a valid `flock`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), command, &mut lock) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lock)
}

/// Gives the file `len` bytes of really allocated space: on a full disk this fails with
/// `ENOSPC`, where `set_len` would make a sparse file whose first write through a mapping
/// raises `SIGBUS`.
fn allocate(file: &File, len: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file length too large"))?;
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        // SAFETY: `posix_fallocate` on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        // No fallocate: write the zeros, which allocates the blocks just as well.
        use std::io::Write;
        let mut file = file;
        let zeros = vec![0u8; 1 << 20];
        let mut left = len as u64;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        Ok(())
    }
}

/// Writes `len` zero bytes from the start of `file` (allocating and writing its blocks).
fn write_zeros(file: &File, len: usize) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let zeros = vec![0u8; (1 << 20).min(len.max(1))];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(zeros.len());
        file.write_all_at(&zeros[..n], at as u64)?;
        at += n;
    }
    Ok(())
}

/// `fdatasync`, or its equivalent where a plain `fsync` does not reach the disk.
fn data_sync(file: &File) -> io::Result<()> {
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
        // SAFETY: `fcntl(F_FULLFSYNC)` on a file descriptor we own.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_FULLFSYNC) } == 0 {
            return Ok(());
        }
        return Err(io::Error::last_os_error());
    }
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    file.sync_data()
}

/// A shared mapping of a whole file, with the file kept open for syncing.
struct Mapping {
    file: File,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; `Region`'s contract leaves keeping concurrent
// accesses disjoint to the callers, and the file handle is thread-safe.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("fd", &self.file.as_raw_fd())
            .field("len", &self.len)
            .finish()
    }
}

impl Mapping {
    fn new(file: File, len: usize, writable: bool) -> io::Result<Self> {
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh shared mapping of `len` bytes of a file we hold open; the kernel
        // picks the address. The file is at least `len` bytes long (allocated or measured).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            file,
            ptr: ptr.cast(),
            len,
        })
    }

    /// A writable mapping of a file just made (all zeros), with readahead off for its faults.
    ///
    /// A fault on a file mapping reads ahead of the page it needs, and on a new file that
    /// means zeroing pages: with the disk's readahead at 8 MiB (this project's machines), one
    /// fault zeroed 5-13 ms' worth of pages without a point where the kernel could switch to
    /// a waiting thread. The ledger's background prefault then held a core that long from the
    /// producer of a paced queue, whatever its scheduling priority (`perf sched timehist` and
    /// `perf script` over `cargo run --release -p ringledger-benches --example paced`). A new
    /// file has nothing to read ahead; mappings of files opened later read ahead as usual.
    fn fresh(file: File, len: usize) -> io::Result<Self> {
        let mapping = Self::new(file, len, true)?;
        // SAFETY: advice on our own whole mapping; it changes how faults read, not what.
        // Best effort: a refusal leaves readahead on, which costs time, not correctness.
        unsafe { libc::madvise(mapping.ptr.cast(), len, libc::MADV_RANDOM) };
        Ok(mapping)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping `new` made; nothing refers to it any more
        // (every user holds the region, which is being dropped).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

// SAFETY: `ptr` is a mapping of `len` bytes that lives, unmoved, until `drop`; writes through
// a shared, writable file mapping change the file.
unsafe impl Region for Mapping {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    fn len(&self) -> usize {
        self.len
    }

    fn write_at(&self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        if offset
            .checked_add(bytes.len())
            .is_none_or(|end| end > self.len)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write past the region",
            ));
        }
        self.file.write_all_at(bytes, offset as u64)
    }

    fn sync(&self) -> io::Result<()> {
        // On Linux `fdatasync` of the file covers the pages dirtied through the mapping.
        data_sync(&self.file)
    }

    fn protect(&self, range: Range<usize>) {
        // Whole pages inside the range only: the first partial page may hold bytes still to
        // be written (none do today, but the contract is about the range).
        let start = range.start.div_ceil(PAGE) * PAGE;
        let end = range.end.min(self.len) & !(PAGE - 1);
        if start >= end {
            return;
        }
        // The pages are mapped afresh, read-only, at the same address (one `mmap` with
        // `MAP_FIXED`, atomic for other threads: a reader sees the same bytes throughout).
        // Unlike `mprotect`, this drops the old page-table entries, dirty bits and all, with one
        // TLB flush for the range; writeback of the pages then finds nothing mapped to clean,
        // where it would clear and flush each page's entry in turn (an IPI per 4 KiB page to
        // the other cores: the sync thread's main cost once a segment is sealed).
        // SAFETY: replaces whole pages of our own mapping with a mapping of the same file at
        // the same offsets; the caller promises nothing writes them again (a write would fault
        // with SIGSEGV).
        let remapped = unsafe {
            libc::mmap(
                self.ptr.add(start).cast(),
                end - start,
                libc::PROT_READ,
                libc::MAP_SHARED | libc::MAP_FIXED,
                self.file.as_raw_fd(),
                start as libc::off_t,
            )
        };
        if remapped != libc::MAP_FAILED {
            return;
        }
        // A failed `MAP_FIXED` may have left a hole where readers read: map the range again
        // as it was, or stop before a reader faults on it.
        // SAFETY: as above, with the mapping's original protection.
        let restored = unsafe {
            libc::mmap(
                self.ptr.add(start).cast(),
                end - start,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                self.file.as_raw_fd(),
                start as libc::off_t,
            )
        };
        if restored == libc::MAP_FAILED {
            eprintln!(
                "ringledger: cannot map a sealed segment again: {}",
                io::Error::last_os_error()
            );
            std::process::abort();
        }
    }

    fn prefault(&self, range: Range<usize>, dirty: bool) {
        let start = range.start.min(self.len) & !(PAGE - 1);
        let end = range.end.min(self.len);
        if start >= end {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            const MADV_POPULATE_READ: libc::c_int = 22;
            const MADV_POPULATE_WRITE: libc::c_int = 23;
            // The pages into the cache first, in one call for the range: a fresh segment's
            // mapping has readahead off (see `Mapping::fresh`), so its faults bring pages in
            // one at a time (this took writes of 100 through the mapping from 4.0 to 4.7 M
            // entries/s). Best effort: a refusal leaves that to the faults.
            // SAFETY: a hint on our own open file; it only fills the page cache.
            unsafe { libc::readahead(self.file.as_raw_fd(), start as libc::off64_t, end - start) };
            let advice = if dirty {
                MADV_POPULATE_WRITE
            } else {
                MADV_POPULATE_READ
            };
            // SAFETY: advice on a page-aligned range inside our own mapping; the kernel only
            // faults pages in (or refuses with EINVAL on kernels before 5.14).
            let rc = unsafe { libc::madvise(self.ptr.add(start).cast(), end - start, advice) };
            if rc == 0 {
                return;
            }
            // SAFETY: as above, with advice every Linux knows.
            unsafe { libc::madvise(self.ptr.add(start).cast(), end - start, libc::MADV_WILLNEED) };
        }
        #[cfg(not(target_os = "linux"))]
        let _ = dirty;
    }
}

/// The page size we align advice to (the smallest page on the targets we run on).
const PAGE: usize = 4096;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The `VmFlags` line of the mapping that starts at `ptr`, from `/proc/self/smaps`.
    fn vm_flags(ptr: *mut u8) -> String {
        let smaps = fs::read_to_string("/proc/self/smaps").expect("read /proc/self/smaps");
        let start = format!("{:x}-", ptr as usize);
        let mut lines = smaps.lines().skip_while(|line| !line.starts_with(&start));
        assert!(lines.next().is_some(), "no mapping starts at {ptr:p}");
        lines
            .find_map(|line| line.strip_prefix("VmFlags:").map(str::to_owned))
            .expect("a VmFlags line")
    }

    #[test]
    fn a_created_file_reads_nothing_ahead_and_an_opened_one_does() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = DirStorage::new(dir.path()).expect("storage");
        for created in [
            storage.create("fresh", 1 << 20).expect("create"),
            storage
                .create_written("written", 1 << 20)
                .expect("create_written"),
        ] {
            // `rr`: VM_RAND_READ, what `MADV_RANDOM` sets.
            let flags = vm_flags(created.as_ptr());
            assert!(flags.split_whitespace().any(|f| f == "rr"), "{flags}");
        }
        let opened = storage.open("fresh", false).expect("open");
        let flags = vm_flags(opened.as_ptr());
        assert!(!flags.split_whitespace().any(|f| f == "rr"), "{flags}");
    }
}
