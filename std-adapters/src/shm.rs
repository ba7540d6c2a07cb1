//! An SPSC ring shared between two processes, in a file mapping.
//!
//! The core's [`spsc`] ring placed by its [`RegionLayout`] in a file
//! that both processes map: the same algorithm as in one process (atomic loads and stores on
//! two cache lines, no system call per item), so a producer in one process hands items to a
//! consumer in another at memory speed. Put the file on a tmpfs (`/dev/shm` on Linux) to keep
//! it in memory only; on a disk it also works, written back now and then for nothing.
//!
//! The file starts with a 128-byte header: a magic, the format version, the kind of ring
//! (fixed-size items or byte records), the item size and alignment, the capacity and the ring's
//! size, under a CRC-32C. Opening checks all of it, so a peer built for another item type, a
//! file of another program or a damaged header is a clear [`ShmError`], never a misread.
//! Each end is taken by one handle at a time, across processes: a second producer (or
//! consumer) gets [`ShmError::Busy`]. The claim is an open-file-description lock that the
//! kernel drops with the process, so a killed peer's end can be opened again at once, and it
//! resumes where the indices in the file say.
//!
//! Items are plain data ([`bytemuck::Pod`]): the memory is shared with another program, so any
//! bit pattern it may hold must be a valid value. Records are byte strings of any length up
//! to the capacity less 4, each written whole.
//!
//! The handles do not block: a full or empty ring is reported at once, as by the core ring.
//!
//! An end's claim belongs to the open file behind the handle. A process that starts another
//! program while a handle is being dropped may keep that end claimed until the new program
//! has started (the file is closed on `exec`); opening an end waits up to about 50 ms for a
//! claim to go before it says [`ShmError::Busy`], which covers that moment.
//!
//! ```
//! use ringledger::shm::{ShmConsumer, ShmProducer, ShmRing};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("ring");
//! ShmRing::create::<u64>(&path, 1024)?;
//! // Usually in two processes:
//! let mut producer = ShmProducer::<u64>::open(&path)?;
//! let mut consumer = ShmConsumer::<u64>::open(&path)?;
//! producer.push(7).unwrap();
//! assert_eq!(consumer.pop(), Some(7));
//! // Each end has one handle at a time.
//! assert!(ShmProducer::<u64>::open(&path).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use bytemuck::Pod;
use ringledger_core::crc32c::crc32c;
use ringledger_core::spsc::{self, RegionLayout};
use ringledger_core::Full;

use crate::storage::{random_u64, DirStorage, Region, Storage};

const MAGIC: [u8; 8] = *b"RLSHRING";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;
/// The header's bytes; the ring follows (aligned to 128).
const HEADER_LEN: usize = 128;
/// The header's checksummed part, and where the checksum is.
const CHECKED_LEN: usize = 40;
const KIND_ITEMS: u32 = 1;
const KIND_RECORDS: u32 = 2;
/// Bytes before each record's payload: its length.
const RECORD_HEADER: usize = 4;

/// Why a shared ring could not be created or opened, or a record not read.
///
/// ```
/// use ringledger::shm::{ShmError, ShmProducer};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("ring");
/// // A file of another program, long enough for a header but without the magic.
/// std::fs::write(&path, [7u8; 4096])?;
/// match ShmProducer::<u64>::open(&path) {
///     Err(ShmError::NotARing { path }) => println!("{}: not a shared ring", path.display()),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// A file operation failed.
    #[error("{}: {context}", path.display())]
    Io {
        /// The ring's file.
        path: PathBuf,
        /// What was being done.
        context: &'static str,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// The file is not a shared ring (its magic is wrong, or it is shorter than a header).
    #[error("{}: not a ringledger shared ring", path.display())]
    NotARing {
        /// The file.
        path: PathBuf,
    },
    /// The header's checksum does not match: the header is damaged.
    #[error("{}: the header is damaged (checksum mismatch)", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
    },
    /// The file was made by a build with another format version.
    #[error("{}: format version {found}, this build reads version {VERSION}", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// The file's version.
        found: u32,
    },
    /// The ring was made for other items (or for records) than the handle's.
    #[error("{}: made for {found}, opened for {expected}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What the handle needs.
        expected: String,
        /// What the header says.
        found: String,
    },
    /// The end is held by another handle, in this process or another.
    #[error("{}: the {role} end is in use by another handle", path.display())]
    Busy {
        /// The file.
        path: PathBuf,
        /// `"producer"` or `"consumer"`.
        role: &'static str,
    },
    /// The capacity is not a power of two (of at least 8 bytes for records), or too large.
    #[error("capacity {0} is not a power of two (at least 8 for records) or too large")]
    Capacity(usize),
    /// A record's length in the ring is impossible: the memory was written by something else.
    #[error("{}: a record of {len} bytes in a ring of {capacity}", path.display())]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// The length found.
        len: usize,
        /// The ring's capacity in bytes.
        capacity: usize,
    },
}

/// Why [`ShmRecordProducer::push`] refused a record.
///
/// ```
/// use ringledger::shm::{RecordError, ShmRecordProducer, ShmRing};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("log");
/// ShmRing::create_records(&path, 16)?;
/// let mut producer = ShmRecordProducer::open(&path)?;
/// producer.push(b"12345678")?; // 8 bytes and a 4-byte length: 12 of 16
/// assert_eq!(producer.push(b"1234"), Err(RecordError::Full)); // until the consumer reads
/// assert!(matches!(producer.push(&[0; 13]), Err(RecordError::TooLarge { .. }))); // never
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Not enough room now; try again once the consumer has read.
    #[error("the ring is full")]
    Full,
    /// The record can never fit: its length plus 4 exceeds the capacity.
    #[error("a record of {len} bytes does not fit a ring of {capacity}")]
    TooLarge {
        /// The record's length.
        len: usize,
        /// The ring's capacity in bytes.
        capacity: usize,
    },
}

/// What a ring file holds, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    kind: u32,
    item_size: u32,
    item_align: u32,
    capacity: u64,
    ring_len: u64,
}

impl Header {
    fn for_items<T>(capacity: usize) -> Option<(Self, RegionLayout)> {
        let layout = RegionLayout::new::<T>(capacity)?;
        if layout.align() > HEADER_LEN {
            return None;
        }
        let header = Header {
            kind: KIND_ITEMS,
            item_size: u32::try_from(std::mem::size_of::<T>()).ok()?,
            item_align: u32::try_from(std::mem::align_of::<T>()).ok()?,
            capacity: capacity as u64,
            ring_len: layout.size() as u64,
        };
        Some((header, layout))
    }

    fn for_records(capacity: usize) -> Option<(Self, RegionLayout)> {
        if capacity < 2 * RECORD_HEADER {
            return None;
        }
        let (mut header, layout) = Self::for_items::<u8>(capacity)?;
        header.kind = KIND_RECORDS;
        Some((header, layout))
    }

    fn describe(&self) -> String {
        match self.kind {
            KIND_ITEMS => format!(
                "items of {} bytes (alignment {}), {} slots",
                self.item_size, self.item_align, self.capacity
            ),
            KIND_RECORDS => format!("byte records, {} bytes", self.capacity),
            other => format!("an unknown kind of ring ({other})"),
        }
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.kind.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.item_size.to_le_bytes());
        bytes[20..24].copy_from_slice(&self.item_align.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.capacity.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.ring_len.to_le_bytes());
        let crc = crc32c(&bytes[..CHECKED_LEN]);
        bytes[CHECKED_LEN..CHECKED_LEN + 4].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8], path: &Path) -> Result<Self, ShmError> {
        let path = || path.to_path_buf();
        if bytes.len() < HEADER_LEN || bytes[0..8] != MAGIC {
            return Err(ShmError::NotARing { path: path() });
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        if crc32c(&bytes[..CHECKED_LEN]) != u32_at(CHECKED_LEN) {
            return Err(ShmError::Corrupt { path: path() });
        }
        let version = u32_at(8);
        if version != VERSION {
            return Err(ShmError::Version {
                path: path(),
                found: version,
            });
        }
        Ok(Header {
            kind: u32_at(12),
            item_size: u32_at(16),
            item_align: u32_at(20),
            capacity: u64_at(24),
            ring_len: u64_at(32),
        })
    }
}

/// Creating shared rings; see [`create`](Self::create) and
/// [`create_records`](Self::create_records).
///
/// ```
/// use std::io::ErrorKind;
/// use ringledger::shm::{ShmError, ShmRing};
///
/// let dir = tempfile::tempdir()?;
/// ShmRing::create::<u64>(dir.path().join("items"), 1024)?;
/// ShmRing::create_records(dir.path().join("records"), 1 << 16)?;
/// // Capacities are powers of two.
/// let odd = ShmRing::create::<u64>(dir.path().join("odd"), 1000);
/// assert!(matches!(odd, Err(ShmError::Capacity(1000))));
/// // A ring a peer may have open is never replaced.
/// match ShmRing::create::<u64>(dir.path().join("items"), 1024) {
///     Err(ShmError::Io { source, .. }) => assert_eq!(source.kind(), ErrorKind::AlreadyExists),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ShmRing(());

impl ShmRing {
    /// Creates the file `path` (which must not exist) holding an empty ring of `capacity`
    /// slots of `T` (a power of two). The file appears whole: a peer opening it never sees
    /// it half made.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// ringledger::shm::ShmRing::create::<[u32; 4]>(dir.path().join("ring"), 256)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create<T: Pod>(path: impl AsRef<Path>, capacity: usize) -> Result<(), ShmError> {
        let (header, _) = Header::for_items::<T>(capacity).ok_or(ShmError::Capacity(capacity))?;
        create(path.as_ref(), &header)
    }

    /// Creates the file `path` (which must not exist) holding an empty ring of `capacity`
    /// bytes (a power of two, at least 8) for byte records.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// ringledger::shm::ShmRing::create_records(dir.path().join("log"), 1 << 20)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_records(path: impl AsRef<Path>, capacity: usize) -> Result<(), ShmError> {
        let (header, _) = Header::for_records(capacity).ok_or(ShmError::Capacity(capacity))?;
        create(path.as_ref(), &header)
    }
}

fn io_error<'a>(path: &'a Path, context: &'static str) -> impl FnOnce(io::Error) -> ShmError + 'a {
    move |source| ShmError::Io {
        path: path.to_path_buf(),
        context,
        source,
    }
}

/// The directory and the file name of `path`.
fn split(path: &Path) -> Result<(DirStorage, String), ShmError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ShmError::Io {
            path: path.to_path_buf(),
            context: "naming the ring's file",
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
        })?
        .to_owned();
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let storage = DirStorage::new(dir).map_err(io_error(path, "opening the ring's directory"))?;
    Ok((storage, name))
}

fn create(path: &Path, header: &Header) -> Result<(), ShmError> {
    let (storage, name) = split(path)?;
    if path.exists() {
        return Err(ShmError::Io {
            path: path.to_path_buf(),
            context: "creating the ring",
            source: io::Error::new(io::ErrorKind::AlreadyExists, "the file exists"),
        });
    }
    let len = HEADER_LEN + header.ring_len as usize;
    let tmp = format!(".{name}.{:016x}.tmp", random_u64());
    // Zeros, really allocated: an empty ring (both indices zero), and no SIGBUS on a full
    // file system later.
    let region = storage
        .create(&tmp, len)
        .map_err(io_error(path, "creating the ring"))?;
    let written = region
        .write_at(0, &header.encode())
        .and_then(|()| storage.rename(&tmp, &name));
    if let Err(e) = written {
        let _ = storage.remove(&tmp);
        return Err(io_error(path, "creating the ring")(e));
    }
    Ok(())
}

/// An attached end: the ring's mapping and the lock that makes it this handle's.
struct Attached {
    region: Box<dyn Region>,
    _claim: File,
    layout: RegionLayout,
    path: PathBuf,
}

impl Attached {
    /// Opens `path` for `role`; `expect(capacity)` gives the header and layout this handle
    /// needs for a ring of that capacity (the file's), `None` when it cannot have one.
    fn open(
        path: &Path,
        role: &'static str,
        expect: impl Fn(usize) -> Option<(Header, RegionLayout)>,
        wanted: impl Fn() -> String,
    ) -> Result<Self, ShmError> {
        // Before `split`, whose storage would create a missing directory: opening never
        // creates anything.
        let len = std::fs::metadata(path)
            .map_err(io_error(path, "opening the ring"))?
            .len();
        if len < HEADER_LEN as u64 {
            // Too short for a header (and an empty file cannot even be mapped).
            return Err(ShmError::NotARing {
                path: path.to_path_buf(),
            });
        }
        let (storage, name) = split(path)?;
        let region = storage
            .open(&name, true)
            .map_err(io_error(path, "opening the ring"))?;
        let head_len = region.len().min(HEADER_LEN);
        // SAFETY: the region maps the whole file, at least `head_len` bytes, while it lives.
        let bytes = unsafe { std::slice::from_raw_parts(region.as_ptr(), head_len) };
        let found = Header::decode(bytes, path)?;
        let (expected, layout) = usize::try_from(found.capacity)
            .ok()
            .and_then(&expect)
            .filter(|(expected, _)| *expected == found)
            .ok_or_else(|| ShmError::Mismatch {
                path: path.to_path_buf(),
                expected: wanted(),
                found: found.describe(),
            })?;
        if (region.len() as u64) < HEADER_LEN as u64 + expected.ring_len {
            return Err(ShmError::NotARing {
                path: path.to_path_buf(),
            });
        }
        let claim = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_error(path, "opening the ring"))?;
        claim_end(&claim, role, path)?;
        Ok(Attached {
            region,
            _claim: claim,
            layout,
            path: path.to_path_buf(),
        })
    }

    fn ring(&self) -> NonNull<u8> {
        // SAFETY: the mapping is longer than the header (checked in `open`).
        let ring = unsafe { self.region.as_ptr().add(HEADER_LEN) };
        NonNull::new(ring).expect("a mapping is not at address zero")
    }
}

fn items<T>() -> impl Fn(usize) -> Option<(Header, RegionLayout)> {
    Header::for_items::<T>
}

fn describe_items<T>() -> impl Fn() -> String {
    || {
        format!(
            "items of {} bytes (alignment {})",
            std::mem::size_of::<T>(),
            std::mem::align_of::<T>()
        )
    }
}

/// Takes the byte of the file that stands for `role` with an open-file-description lock: one
/// holder at a time across processes, dropped by the kernel when the file is closed (also
/// when the process dies).
fn claim_end(file: &File, role: &'static str, path: &Path) -> Result<(), ShmError> {
    let start = if role == "producer" { 0 } else { 1 };
    // SAFETY: a zeroed `flock` is a valid value; the fields that matter are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = start;
    lock.l_len = 1;
    #[cfg(target_os = "linux")]
    let command = libc::F_OFD_SETLK;
    #[cfg(not(target_os = "linux"))]
    let command = libc::F_SETLK;
    // A holder that lets go within about 50 ms is waited for (a child forked by the previous
    // holder's process shares the lock until it calls `exec`).
    let mut tries = 0;
    loop {
        // SAFETY: a plain system call on a descriptor we own, with a valid `flock`.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), command, &lock) };
        if rc == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EACCES) if tries < 25 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Some(libc::EAGAIN) | Some(libc::EACCES) => {
                return Err(ShmError::Busy {
                    path: path.to_path_buf(),
                    role,
                })
            }
            _ => return Err(io_error(path, "claiming an end of the ring")(error)),
        }
    }
}

/// The producing end of a shared ring of `T`s; see the [module documentation](self).
///
/// ```
/// use ringledger::shm::{ShmProducer, ShmRing};
///
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
/// #[repr(C)]
/// struct Tick {
///     price: u64,
///     size: u32,
///     venue: u32,
/// }
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("ticks");
/// ShmRing::create::<Tick>(&path, 4096)?;
/// let mut producer = ShmProducer::<Tick>::open(&path)?;
/// producer.push(Tick { price: 101, size: 5, venue: 2 }).unwrap();
/// assert_eq!(producer.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmProducer<T: Pod> {
    // Declared first, dropped first: the handle goes before the mapping it points into.
    ring: spsc::Producer<'static, T>,
    attached: Attached,
}

// SAFETY: the handle moves `T: Pod` values (which are `Send`) into shared memory it owns a
// mapping of; nothing in it is tied to a thread.
unsafe impl<T: Pod> Send for ShmProducer<T> {}

impl<T: Pod> ShmProducer<T> {
    /// Opens the producing end of the ring in `path` (made by [`ShmRing::create`] for `T`).
    ///
    /// Errors: [`ShmError::Busy`] while another handle holds this end, [`ShmError::Mismatch`]
    /// when the ring was made for another item size or alignment (or for records), and
    /// [`ShmError::NotARing`], [`ShmError::Corrupt`] or [`ShmError::Version`] for a file that
    /// is not such a ring.
    ///
    /// ```
    /// use ringledger::shm::{ShmError, ShmProducer, ShmRing};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("ring");
    /// ShmRing::create::<u32>(&path, 64)?;
    /// let mismatch = ShmProducer::<u64>::open(&path).err().unwrap();
    /// assert!(matches!(mismatch, ShmError::Mismatch { .. }), "{mismatch}");
    /// let mut producer = ShmProducer::<u32>::open(&path)?;
    /// assert_eq!(producer.push_slice(&[1, 2, 3]), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ShmError> {
        let attached = Attached::open(
            path.as_ref(),
            "producer",
            items::<T>(),
            describe_items::<T>(),
        )?;
        // SAFETY: the layout was checked against the file's header for `T`, the mapping is
        // aligned (page, then 128) and lives in `attached`, dropped after the handle; the
        // claim makes this the only producer; `T: Pod` makes every bit pattern valid.
        let ring = unsafe { attached.layout.producer::<T>(attached.ring()) };
        Ok(Self { ring, attached })
    }

    /// Pushes `item`, or hands it back when the ring is full.
    ///
    /// ```
    /// use ringledger::core::Full;
    /// use ringledger::shm::{ShmProducer, ShmRing};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("ring");
    /// ShmRing::create::<u64>(&path, 2)?;
    /// let mut producer = ShmProducer::<u64>::open(&path)?;
    /// producer.push(1).unwrap();
    /// producer.push(2).unwrap();
    /// // Full: nobody consumes. The handle never waits; the caller decides.
    /// assert_eq!(producer.push(3), Err(Full(3)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&mut self, item: T) -> Result<(), Full<T>> {
        self.ring.push(item)
    }

    /// Pushes as many of `items` as fit, in order; returns how many.
    ///
    /// ```
    /// use ringledger::shm::{ShmProducer, ShmRing};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("ring");
    /// ShmRing::create::<u32>(&path, 4)?;
    /// let mut producer = ShmProducer::<u32>::open(&path)?;
    /// let items = [1, 2, 3, 4, 5, 6];
    /// let pushed = producer.push_slice(&items);
    /// assert_eq!(pushed, 4); // the rest, `&items[pushed..]`, waits for room
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_slice(&mut self, items: &[T]) -> usize {
        self.ring.push_slice(items)
    }

    /// Items in the ring now.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The ring's slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The ring's file.
    pub fn path(&self) -> &Path {
        &self.attached.path
    }
}

/// The consuming end of a shared ring of `T`s; see the [module documentation](self).
///
/// ```
/// use ringledger::shm::{ShmConsumer, ShmProducer, ShmRing};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("ring");
/// ShmRing::create::<u32>(&path, 16)?;
/// ShmProducer::<u32>::open(&path)?.push_slice(&[1, 2, 3]);
/// // The producer is gone; what it pushed stays in the file.
/// let mut consumer = ShmConsumer::<u32>::open(&path)?;
/// let mut out = [0; 8];
/// assert_eq!(consumer.pop_slice(&mut out), 3);
/// assert_eq!(out[..3], [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmConsumer<T: Pod> {
    ring: spsc::Consumer<'static, T>,
    attached: Attached,
}

// SAFETY: as for `ShmProducer`.
unsafe impl<T: Pod> Send for ShmConsumer<T> {}

impl<T: Pod> ShmConsumer<T> {
    /// Opens the consuming end of the ring in `path`; errors as for [`ShmProducer::open`].
    ///
    /// ```
    /// use ringledger::shm::{ShmConsumer, ShmRing};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("ring");
    /// ShmRing::create::<u16>(&path, 8)?;
    /// let mut consumer = ShmConsumer::<u16>::open(&path)?;
    /// assert_eq!(consumer.pop(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ShmError> {
        let attached = Attached::open(
            path.as_ref(),
            "consumer",
            items::<T>(),
            describe_items::<T>(),
        )?;
        // SAFETY: as in `ShmProducer::open`, for the only consumer.
        let ring = unsafe { attached.layout.consumer::<T>(attached.ring()) };
        Ok(Self { ring, attached })
    }

    /// Pops the oldest item, or `None` when the ring is empty.
    ///
    /// ```
    /// use ringledger::shm::{ShmConsumer, ShmProducer, ShmRing};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("ring");
    /// ShmRing::create::<u64>(&path, 8)?;
    /// let mut producer = ShmProducer::<u64>::open(&path)?;
    /// let mut consumer = ShmConsumer::<u64>::open(&path)?;
    /// producer.push_slice(&[10, 20]);
    /// let mut total = 0;
    /// while let Some(item) = consumer.pop() {
    ///     total += item; // oldest first
    /// }
    /// assert_eq!(total, 30);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "the popped item is lost unless used"]
    pub fn pop(&mut self) -> Option<T> {
        self.ring.pop()
    }

    /// Pops up to `out.len()` items into `out`; returns how many.
    ///
    /// ```
    /// use ringledger::shm::{ShmConsumer, ShmProducer, ShmRing};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("ring");
    /// ShmRing::create::<u32>(&path, 64)?;
    /// let mut producer = ShmProducer::<u32>::open(&path)?;
    /// let mut consumer = ShmConsumer::<u32>::open(&path)?;
    /// producer.push_slice(&[1, 2, 3, 4, 5]);
    /// let mut batch = [0; 2];
    /// let mut seen = Vec::new();
    /// loop {
    ///     let n = consumer.pop_slice(&mut batch); // two at a time, at most
    ///     if n == 0 {
    ///         break;
    ///     }
    ///     seen.extend_from_slice(&batch[..n]);
    /// }
    /// assert_eq!(seen, [1, 2, 3, 4, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize {
        self.ring.pop_slice(out)
    }

    /// Items in the ring now.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The ring's slots.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The ring's file.
    pub fn path(&self) -> &Path {
        &self.attached.path
    }
}

fn records() -> impl Fn(usize) -> Option<(Header, RegionLayout)> {
    Header::for_records
}

fn describe_records() -> String {
    "byte records".to_owned()
}

/// The producing end of a shared ring of byte records; see the [module documentation](self).
///
/// ```
/// use ringledger::shm::{RecordError, ShmRecordConsumer, ShmRecordProducer, ShmRing};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("log");
/// ShmRing::create_records(&path, 4096)?;
/// let mut producer = ShmRecordProducer::open(&path)?;
/// let mut sent = 0;
/// for line in ["GET /", "GET /favicon.ico", "POST /login"].iter().cycle() {
///     match producer.push(line.as_bytes()) {
///         Ok(()) => sent += 1,
///         Err(RecordError::Full) => break, // the consumer is behind: stop, or drop the record
///         Err(error) => return Err(error.into()),
///     }
/// }
/// assert!(sent > 100);
/// let mut consumer = ShmRecordConsumer::open(&path)?;
/// let mut record = Vec::new();
/// consumer.pop(&mut record)?;
/// assert_eq!(record, b"GET /");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmRecordProducer {
    ring: spsc::Producer<'static, u8>,
    attached: Attached,
}

// SAFETY: as for `ShmProducer`: the handle moves bytes into shared memory it owns a mapping
// of; nothing in it is tied to a thread.
unsafe impl Send for ShmRecordProducer {}

impl ShmRecordProducer {
    /// Opens the producing end of the record ring in `path` (made by
    /// [`ShmRing::create_records`]); errors as for [`ShmProducer::open`].
    ///
    /// ```
    /// use ringledger::shm::{RecordError, ShmRecordProducer, ShmRing};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("log");
    /// ShmRing::create_records(&path, 64)?;
    /// let mut producer = ShmRecordProducer::open(&path)?;
    /// producer.push(b"hello")?;
    /// assert_eq!(producer.push(&[0; 61]), Err(RecordError::TooLarge { len: 61, capacity: 64 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ShmError> {
        let attached = Attached::open(path.as_ref(), "producer", records(), describe_records)?;
        // SAFETY: as in `ShmProducer::open`; bytes are plain data.
        let ring = unsafe { attached.layout.producer::<u8>(attached.ring()) };
        Ok(Self { ring, attached })
    }

    /// Writes `record` whole (its length, then its bytes), or nothing when it does not fit.
    ///
    /// ```
    /// use ringledger::shm::{RecordError, ShmRecordConsumer, ShmRecordProducer, ShmRing};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("log");
    /// ShmRing::create_records(&path, 32)?;
    /// let mut producer = ShmRecordProducer::open(&path)?;
    /// let mut consumer = ShmRecordConsumer::open(&path)?;
    /// producer.push(b"twenty bytes of data")?; // 24 of the 32 bytes
    /// assert_eq!(producer.push(b"more data"), Err(RecordError::Full)); // nothing written
    /// let mut record = Vec::new();
    /// consumer.pop(&mut record)?;
    /// producer.push(b"more data")?; // room again: this record wraps around the ring's end
    /// assert_eq!(consumer.pop(&mut record)?, Some(9));
    /// assert_eq!(record, b"more data");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&mut self, record: &[u8]) -> Result<(), RecordError> {
        let capacity = self.ring.capacity();
        let need = record.len().saturating_add(RECORD_HEADER);
        let len = u32::try_from(record.len())
            .ok()
            .filter(|_| need <= capacity);
        let Some(len) = len else {
            return Err(RecordError::TooLarge {
                len: record.len(),
                capacity,
            });
        };
        let mut chunk = self
            .ring
            .write_chunk_uninit(need)
            .map_err(|_| RecordError::Full)?;
        let (first, second) = chunk.as_mut_slices();
        let header = len.to_le_bytes();
        // The record's bytes, its length first, across the two runs of slots.
        let mut at = 0;
        for part in [&header[..], record] {
            let mut part = part;
            while !part.is_empty() {
                let (run, offset) = if at < first.len() {
                    (&mut first[at..], at)
                } else {
                    (&mut second[at - first.len()..], at)
                };
                let n = run.len().min(part.len());
                // SAFETY: `MaybeUninit<u8>` has the layout of `u8`; `n` fits both slices.
                unsafe {
                    std::ptr::copy_nonoverlapping(part.as_ptr(), run.as_mut_ptr().cast(), n);
                }
                part = &part[n..];
                at = offset + n;
            }
        }
        debug_assert_eq!(at, need);
        // SAFETY: every one of the `need` slots was written just above.
        unsafe { chunk.commit_all() };
        Ok(())
    }

    /// The ring's capacity in bytes (a record takes its length plus 4).
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The ring's file.
    pub fn path(&self) -> &Path {
        &self.attached.path
    }
}

/// The consuming end of a shared ring of byte records; see the [module documentation](self).
///
/// ```
/// use ringledger::shm::{ShmRecordConsumer, ShmRecordProducer, ShmRing};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("log");
/// ShmRing::create_records(&path, 1 << 16)?;
/// let mut producer = ShmRecordProducer::open(&path)?;
/// for n in 0..100 {
///     producer.push(format!("event {n}").as_bytes())?;
/// }
/// // Usually in another process; one buffer serves every record.
/// let mut consumer = ShmRecordConsumer::open(&path)?;
/// let (mut record, mut count) = (Vec::with_capacity(256), 0);
/// while consumer.pop(&mut record)?.is_some() {
///     assert!(record.starts_with(b"event "));
///     count += 1;
/// }
/// assert_eq!(count, 100);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmRecordConsumer {
    ring: spsc::Consumer<'static, u8>,
    attached: Attached,
}

// SAFETY: as for `ShmProducer`.
unsafe impl Send for ShmRecordConsumer {}

impl ShmRecordConsumer {
    /// Opens the consuming end of the record ring in `path`; errors as for
    /// [`ShmProducer::open`].
    ///
    /// ```
    /// use ringledger::shm::{ShmRecordConsumer, ShmRecordProducer, ShmRing};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("log");
    /// ShmRing::create_records(&path, 1024)?;
    /// let mut producer = ShmRecordProducer::open(&path)?;
    /// let mut consumer = ShmRecordConsumer::open(&path)?;
    /// producer.push(b"one")?;
    /// producer.push(b"")?;
    /// let mut record = Vec::new();
    /// assert_eq!(consumer.pop(&mut record)?, Some(3));
    /// assert_eq!(record, b"one");
    /// assert_eq!(consumer.pop(&mut record)?, Some(0));
    /// assert_eq!(consumer.pop(&mut record)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ShmError> {
        let attached = Attached::open(path.as_ref(), "consumer", records(), describe_records)?;
        // SAFETY: as in `ShmProducer::open`, for the only consumer.
        let ring = unsafe { attached.layout.consumer::<u8>(attached.ring()) };
        Ok(Self { ring, attached })
    }

    /// Takes the oldest record into `out` (replacing what it held) and returns its length, or
    /// `None` when there is none. A length the ring cannot hold means something other than a
    /// producer wrote the memory: [`ShmError::BadRecord`], and nothing is taken.
    ///
    /// ```
    /// use ringledger::shm::{ShmError, ShmRecordConsumer, ShmRecordProducer, ShmRing};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("log");
    /// ShmRing::create_records(&path, 256)?;
    /// let mut consumer = ShmRecordConsumer::open(&path)?;
    /// let mut record = Vec::new();
    /// assert_eq!(consumer.pop(&mut record)?, None); // nothing yet: poll again later
    ///
    /// ShmRecordProducer::open(&path)?.push(b"{\"order\": 17}")?;
    /// match consumer.pop(&mut record) {
    ///     Ok(Some(len)) => assert_eq!((len, &record[..]), (13, &b"{\"order\": 17}"[..])),
    ///     Ok(None) => unreachable!("the record was pushed"),
    ///     // Something other than a producer wrote the ring's memory: stop reading it.
    ///     Err(ShmError::BadRecord { len, capacity, .. }) => panic!("length {len} in {capacity}"),
    ///     Err(error) => return Err(error.into()),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&mut self, out: &mut Vec<u8>) -> Result<Option<usize>, ShmError> {
        let capacity = self.ring.capacity();
        let len = {
            let Ok(chunk) = self.ring.read_chunk(RECORD_HEADER) else {
                return Ok(None);
            };
            let (first, second) = chunk.as_slices();
            let mut header = [0u8; RECORD_HEADER];
            for (to, from) in header.iter_mut().zip(first.iter().chain(second)) {
                *to = *from;
            }
            // Not committed: dropping the chunk leaves the bytes in the ring.
            u32::from_le_bytes(header) as usize
        };
        if len > capacity - RECORD_HEADER {
            return Err(ShmError::BadRecord {
                path: self.attached.path.clone(),
                len,
                capacity,
            });
        }
        let chunk = self
            .ring
            .read_chunk(RECORD_HEADER + len)
            .map_err(|_| ShmError::BadRecord {
                path: self.attached.path.clone(),
                len,
                capacity,
            })?;
        let (first, second) = chunk.as_slices();
        out.clear();
        out.reserve(len);
        let skip_first = first.len().min(RECORD_HEADER);
        out.extend_from_slice(&first[skip_first..]);
        out.extend_from_slice(&second[RECORD_HEADER - skip_first..]);
        chunk.commit_all();
        Ok(Some(len))
    }

    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The ring's file.
    pub fn path(&self) -> &Path {
        &self.attached.path
    }
}

/// The `Debug` of every handle: its kind, file, capacity and (for items) how many are in it.
fn debug_handle(
    f: &mut std::fmt::Formatter<'_>,
    kind: &str,
    attached: &Attached,
    capacity: usize,
    len: Option<usize>,
) -> std::fmt::Result {
    let mut debug = f.debug_struct(kind);
    debug
        .field("path", &attached.path)
        .field("capacity", &capacity);
    if let Some(len) = len {
        debug.field("len", &len);
    }
    debug.finish()
}

impl<T: Pod> std::fmt::Debug for ShmProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_handle(
            f,
            "ShmProducer",
            &self.attached,
            self.capacity(),
            Some(self.len()),
        )
    }
}

impl<T: Pod> std::fmt::Debug for ShmConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_handle(
            f,
            "ShmConsumer",
            &self.attached,
            self.capacity(),
            Some(self.len()),
        )
    }
}

impl std::fmt::Debug for ShmRecordProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_handle(
            f,
            "ShmRecordProducer",
            &self.attached,
            self.capacity(),
            None,
        )
    }
}

impl std::fmt::Debug for ShmRecordConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_handle(
            f,
            "ShmRecordConsumer",
            &self.attached,
            self.capacity(),
            None,
        )
    }
}
