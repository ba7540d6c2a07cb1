//! [`SimStorage`]: an in-memory [`Storage`] that can simulate a power loss by seed.
//!
//! Every file has two images: the *current* one, what the page cache holds and what regions
//! map, and the *durable* one, what the disk holds; [`Region::sync`] copies the first into the
//! second. The directory is modelled the same way: a current and a durable name map, and the
//! journal of creations, renames and removals made since the last
//! [`sync_dir`](Storage::sync_dir). [`SimStorage::crash`] builds what a machine finds after a
//! power loss: a seeded prefix of that journal, and for every page changed since its file's
//! last sync, by seed, the new bytes, the old ones, a torn mix of sectors or garbage in the
//! bytes the unsynced write changed (synced bytes are never damaged by a later write).
//! [`SimStorage::snapshot`] is the kinder crash of a process, where the page cache survives.
//!
//! The crash tests of the ledger and the table run their recovery on these images, so a rule
//! that only holds when the disk is kind fails there, reproducibly, with the seed that broke it.
//!
//! The sim is not model-checked, so it uses `std`'s locks directly rather than the
//! crate's `sync` shim.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{LockGuard, Region, Storage};

/// The unit a power loss keeps or loses whole (unless it tears it).
const PAGE: usize = 4096;
/// The unit a torn page is torn at: a disk writes a sector whole or not at all.
const SECTOR: usize = 512;

/// An in-memory directory of files that can simulate a power loss; see the
/// [module documentation](self).
///
/// `SimStorage` is a handle: clones share the same files, as two opens of one directory do.
///
/// ```
/// use ringledger::storage::{sim::SimStorage, Storage};
///
/// let storage = SimStorage::new();
/// let region = storage.create("a", 4096).unwrap();
/// // SAFETY: the region is 4096 bytes long and nothing else touches it.
/// unsafe { region.as_ptr().write(7) };
/// region.sync().unwrap();
/// storage.sync_dir().unwrap();
///
/// let after = storage.crash(42);
/// assert_eq!(after.contents("a").unwrap()[0], 7);
/// ```
#[derive(Clone, Default)]
pub struct SimStorage {
    state: Arc<Mutex<State>>,
}

/// A file's identity, which outlives its names (as an inode does).
type FileId = u64;

/// Everything a [`SimStorage`] and its clones share.
#[derive(Default)]
struct State {
    /// Every file something may still find: by a current name, a durable one, or a name the
    /// journal would give it back after a crash.
    files: BTreeMap<FileId, File>,
    next_id: FileId,
    /// The directory as the running system sees it.
    names: BTreeMap<String, FileId>,
    /// The directory as of the last `sync_dir`.
    durable_names: BTreeMap<String, FileId>,
    /// The operations since the last `sync_dir`: applied in order to `durable_names`, they
    /// give `names`.
    journal: Vec<DirOp>,
    locked: bool,
    failing_syncs: bool,
    capacity: Option<u64>,
    syncs: u64,
    dir_syncs: u64,
    /// Called before each [`Region::sync`], outside the state's lock.
    before_sync: Option<SyncHook>,
}

/// What [`SimStorage::before_sync`] runs.
type SyncHook = Arc<dyn Fn() + Send + Sync>;

/// One file's two images.
struct File {
    /// What the page cache holds; every region of the file maps this buffer.
    current: Arc<Buffer>,
    /// What the disk holds.
    durable: Vec<u8>,
}

/// A directory operation, as the file system's journal records it.
#[derive(Debug)]
enum DirOp {
    Link { name: String, id: FileId },
    Rename { from: String, to: String },
    Unlink { name: String },
}

impl DirOp {
    fn apply(&self, names: &mut BTreeMap<String, FileId>) {
        match self {
            DirOp::Link { name, id } => {
                names.insert(name.clone(), *id);
            }
            DirOp::Rename { from, to } => {
                if let Some(id) = names.remove(from) {
                    names.insert(to.clone(), id);
                }
            }
            DirOp::Unlink { name } => {
                names.remove(name);
            }
        }
    }
}

impl State {
    /// Changes the current directory, recording the change in the journal.
    fn log(&mut self, op: DirOp) {
        op.apply(&mut self.names);
        self.journal.push(op);
    }

    fn add_file(&mut self, current: Arc<Buffer>, durable: Vec<u8>) -> FileId {
        let id = self.next_id;
        self.next_id += 1;
        self.files.insert(id, File { current, durable });
        id
    }

    fn named(&self, name: &str) -> Option<(FileId, &File)> {
        let id = *self.names.get(name)?;
        Some((id, self.files.get(&id)?))
    }

    /// Fails when replacing `freed` bytes of current files by `added` would pass the capacity.
    fn make_room(&self, added: usize, freed: usize) -> io::Result<()> {
        let Some(capacity) = self.capacity else {
            return Ok(());
        };
        let used: u64 = self
            .names
            .values()
            .filter_map(|id| self.files.get(id))
            .map(|file| file.current.len as u64)
            .sum();
        if used.saturating_sub(freed as u64) + added as u64 > capacity {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated full disk",
            ));
        }
        Ok(())
    }

    fn check_syncs(&self) -> io::Result<()> {
        if self.failing_syncs {
            return Err(io::Error::other("simulated sync failure"));
        }
        Ok(())
    }

    fn sync_file(&mut self, id: FileId) -> io::Result<()> {
        self.check_syncs()?;
        // A file no name can bring back has nothing left to make durable.
        if let Some(file) = self.files.get_mut(&id) {
            file.current.copy_to(&mut file.durable);
        }
        self.syncs += 1;
        Ok(())
    }

    /// Forgets the files no name, current or durable, refers to (their regions keep their
    /// buffers alive).
    fn collect_garbage(&mut self) {
        let live: BTreeSet<FileId> = self
            .names
            .values()
            .chain(self.durable_names.values())
            .copied()
            .collect();
        self.files.retain(|id, _| live.contains(id));
    }
}

impl SimStorage {
    /// An empty storage.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::storage::sim::SimStorage;
    ///
    /// let storage = SimStorage::new();
    /// let ledger = Ledger::open_in(Arc::new(storage.clone()), LedgerConfig::default()).unwrap();
    /// ledger.write(&[Entry::new(1, "lost?")]).unwrap(); // buffered: not synced
    /// drop(ledger);
    /// // A power loss, by seed: unsynced pages may go, synced ones never do.
    /// let after = Ledger::open_in(Arc::new(storage.crash(7)), LedgerConfig::default()).unwrap();
    /// assert!(after.head() <= 1);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A storage holding `images` under `names`, all of it durable.
    fn from_images(names: BTreeMap<String, FileId>, images: BTreeMap<FileId, Vec<u8>>) -> Self {
        let next_id = images.keys().next_back().map_or(0, |id| id + 1);
        let files = images
            .into_iter()
            .map(|(id, bytes)| {
                let current = Buffer::new(bytes.clone());
                (
                    id,
                    File {
                        current,
                        durable: bytes,
                    },
                )
            })
            .collect();
        let state = State {
            files,
            next_id,
            durable_names: names.clone(),
            names,
            ..State::default()
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every method leaves the state consistent before anything that could panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn region(&self, id: FileId, buffer: Arc<Buffer>) -> Box<dyn Region> {
        Box::new(SimRegion {
            buffer,
            id,
            state: Arc::clone(&self.state),
        })
    }

    /// What a power loss right now leaves on the disk, as a new, independent storage (unlocked,
    /// with fresh counters and no faults injected) whose current and durable images both hold
    /// it. The same seed on the same history gives the same result.
    ///
    /// The directory is the durable one with a seeded prefix of the operations since the last
    /// [`sync_dir`](Storage::sync_dir) applied, in order, each whole. Each surviving file
    /// keeps its durable bytes except where a 4096-byte page changed since its last
    /// [`sync`](Region::sync): there the page is, by seed, the new bytes (35%), the old ones
    /// (35%), the new bytes for a number of leading 512-byte sectors and the old ones after
    /// (20%), or garbage (10%).
    ///
    /// Call it while no thread is writing to a region of this storage (quiesce or drop the
    /// ledger first): the pages are read as they are at that moment.
    pub fn crash(&self, seed: u64) -> SimStorage {
        let state = self.state();
        let mut rng = SplitMix64(seed);
        let journal_len = state.journal.len() as u64;
        let applied = usize::try_from(rng.below(journal_len + 1)).unwrap_or(usize::MAX);
        let mut names = state.durable_names.clone();
        for op in state.journal.iter().take(applied) {
            op.apply(&mut names);
        }
        let mut images = BTreeMap::new();
        for id in names.values() {
            if let (Some(file), false) = (state.files.get(id), images.contains_key(id)) {
                let current = file.current.to_vec();
                images.insert(*id, lose_power(&current, &file.durable, &mut rng));
            }
        }
        Self::from_images(names, images)
    }

    /// What a crash of the process right now leaves: a new, independent storage (unlocked,
    /// fresh counters, no faults) holding every current name and byte, durably.
    ///
    /// Like [`crash`](Self::crash), call it while no thread is writing to a region.
    pub fn snapshot(&self) -> SimStorage {
        let state = self.state();
        let images = state
            .names
            .values()
            .filter_map(|id| Some((*id, state.files.get(id)?.current.to_vec())))
            .collect();
        Self::from_images(state.names.clone(), images)
    }

    /// While `on`, [`Region::sync`], [`sync_dir`](Storage::sync_dir) and
    /// [`write`](Storage::write) fail with a "simulated sync failure" and change nothing.
    pub fn fail_syncs(&self, on: bool) {
        self.state().failing_syncs = on;
    }

    /// Runs `hook` at the start of every [`Region::sync`], before it changes anything, or no
    /// hook (`None`). A test observes there what others see while a sync is in flight: it
    /// can read through the system under test and take a [`crash`](Self::crash) image in
    /// which the sync never happened. The hook must not sync through this storage itself.
    pub fn before_sync(&self, hook: Option<Box<dyn Fn() + Send + Sync>>) {
        self.state().before_sync = hook.map(Arc::from);
    }

    /// Limits the total size of the files with a current name to `bytes` (`None`: no limit).
    /// A [`create`](Storage::create) or [`write`](Storage::write) that would pass it fails
    /// with [`io::ErrorKind::StorageFull`] and changes nothing.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.state().capacity = bytes;
    }

    /// How many [`Region::sync`] calls have succeeded.
    pub fn syncs(&self) -> u64 {
        self.state().syncs
    }

    /// How many [`sync_dir`](Storage::sync_dir) calls have succeeded.
    pub fn dir_syncs(&self) -> u64 {
        self.state().dir_syncs
    }

    /// The current file names, sorted.
    pub fn file_names(&self) -> Vec<String> {
        self.state().names.keys().cloned().collect()
    }

    /// The current bytes of `name` (what a reader of the page cache sees).
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        Some(self.state().named(name)?.1.current.to_vec())
    }

    /// The durable bytes of the file currently called `name` (what its last sync wrote).
    pub fn durable_contents(&self, name: &str) -> Option<Vec<u8>> {
        Some(self.state().named(name)?.1.durable.clone())
    }

    /// Overwrites `bytes` at `offset` of `name`, in both its current and its durable image:
    /// bit rot, for tests of checksums.
    ///
    /// # Panics
    ///
    /// When `name` does not exist or the range is past its end: a test bug.
    pub fn corrupt(&self, name: &str, offset: usize, bytes: &[u8]) {
        let mut state = self.state();
        let id = match state.named(name) {
            Some((id, _)) => id,
            None => panic!("corrupt: no file {name:?}"),
        };
        let Some(file) = state.files.get_mut(&id) else {
            return;
        };
        let end = offset.checked_add(bytes.len());
        let Some(end) = end.filter(|&end| end <= file.current.len) else {
            panic!(
                "corrupt: {offset}+{} is past the end of {name:?}",
                bytes.len()
            );
        };
        file.current.write_at(offset, bytes);
        file.durable[offset..end].copy_from_slice(bytes);
    }
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("SimStorage")
            .field("names", &state.names)
            .field("pending_dir_ops", &state.journal.len())
            .field("locked", &state.locked)
            .finish_non_exhaustive()
    }
}

impl Storage for SimStorage {
    fn writer_alive(&self) -> io::Result<Option<bool>> {
        Ok(Some(self.state().locked))
    }

    fn lock(&self) -> io::Result<Box<dyn LockGuard>> {
        let mut state = self.state();
        if state.locked {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "simulated storage is locked",
            ));
        }
        state.locked = true;
        Ok(Box::new(SimLock {
            state: Arc::clone(&self.state),
        }))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.file_names())
    }

    fn create(&self, name: &str, len: usize) -> io::Result<Box<dyn Region>> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map an empty file",
            ));
        }
        let mut state = self.state();
        if state.names.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name} exists"),
            ));
        }
        state.make_room(len, 0)?;
        let buffer = Buffer::new(vec![0; len]);
        // Allocation is durable at once (fallocate); the name is not.
        let id = state.add_file(Arc::clone(&buffer), vec![0; len]);
        state.log(DirOp::Link {
            name: name.to_owned(),
            id,
        });
        Ok(self.region(id, buffer))
    }

    fn open(&self, name: &str, _writable: bool) -> io::Result<Box<dyn Region>> {
        let state = self.state();
        let Some((id, file)) = state.named(name) else {
            return Err(not_found(name));
        };
        if file.current.len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name} is empty"),
            ));
        }
        let buffer = Arc::clone(&file.current);
        drop(state);
        Ok(self.region(id, buffer))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.state();
        if !state.names.contains_key(from) {
            return Err(not_found(from));
        }
        if from != to {
            state.log(DirOp::Rename {
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.state();
        if !state.names.contains_key(name) {
            return Err(not_found(name));
        }
        state.log(DirOp::Unlink {
            name: name.to_owned(),
        });
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut state = self.state();
        state.check_syncs()?;
        state.durable_names = state.names.clone();
        state.journal.clear();
        state.collect_garbage();
        state.dir_syncs += 1;
        Ok(())
    }

    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.contents(name))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        state.check_syncs()?;
        match state.named(name) {
            Some((id, file)) => {
                state.make_room(bytes.len(), file.current.len)?;
                let Some(file) = state.files.get_mut(&id) else {
                    return Ok(());
                };
                // Truncating keeps the inode: regions of the same length see the new bytes.
                // Others keep the old buffer (a real mapping would fault past the new end).
                if file.current.len == bytes.len() {
                    file.current.write_at(0, bytes);
                } else {
                    file.current = Buffer::new(bytes.to_vec());
                }
                file.durable = bytes.to_vec();
            }
            None => {
                state.make_room(bytes.len(), 0)?;
                let id = state.add_file(Buffer::new(bytes.to_vec()), bytes.to_vec());
                state.log(DirOp::Link {
                    name: name.to_owned(),
                    id,
                });
            }
        }
        Ok(())
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name} does not exist"))
}

/// The bytes of one file after a power loss: `durable`, with each page that differs in
/// `current` applied, dropped, torn or garbled by `rng`.
///
/// The model: bytes that reached the disk stay as they are unless written again. A page
/// written after its last sync comes back new, old, torn at a sector boundary (a prefix of
/// its sectors new, the rest old), or garbled: every byte the unsynced write changed holds
/// garbage. Bytes the write did not change keep their value in every case: a sync is a
/// promise about those bytes, and a later write of other bytes on the same page must not
/// break it (a disk writes sectors whole, and the old and new contents agree on them).
fn lose_power(current: &[u8], durable: &[u8], rng: &mut SplitMix64) -> Vec<u8> {
    let mut survivor = durable.to_vec();
    survivor.resize(current.len(), 0);
    for (new, page) in current.chunks(PAGE).zip(survivor.chunks_mut(PAGE)) {
        if new == page {
            continue;
        }
        match rng.below(100) {
            0..=34 => page.copy_from_slice(new),
            35..=69 => {}
            70..=89 => {
                let sectors = page.len().div_ceil(SECTOR) as u64;
                let torn = usize::try_from(rng.below(sectors + 1)).unwrap_or(usize::MAX);
                let torn = torn.saturating_mul(SECTOR).min(page.len());
                page[..torn].copy_from_slice(&new[..torn]);
            }
            _ => {
                let mut garbage = vec![0u8; page.len()];
                rng.fill(&mut garbage);
                for ((old, &new), junk) in page.iter_mut().zip(new).zip(garbage) {
                    if *old != new {
                        *old = junk;
                    }
                }
            }
        }
    }
    survivor
}

/// splitmix64: a tiny, good-enough deterministic generator for crash choices.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let random = self.next().to_le_bytes();
            chunk.copy_from_slice(&random[..chunk.len()]);
        }
    }
}

/// A file's current image: heap memory at a fixed address, handed out to regions as a raw
/// pointer, freed when the file and all its regions are gone.
struct Buffer {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer is plain heap memory owned by this struct; `Region`'s contract leaves
// keeping concurrent accesses through the pointer disjoint to the callers, and the sim's own
// accesses happen under the state lock, at moments its callers keep writers away
// (documented on `crash` and `snapshot`).
unsafe impl Send for Buffer {}
// SAFETY: as above.
unsafe impl Sync for Buffer {}

impl Buffer {
    fn new(bytes: Vec<u8>) -> Arc<Self> {
        let len = bytes.len();
        let ptr = NonNull::from(Box::leak(bytes.into_boxed_slice())).cast::<u8>();
        Arc::new(Self { ptr, len })
    }

    /// Copies the buffer into `out`, resized to fit.
    fn copy_to(&self, out: &mut Vec<u8>) {
        out.resize(self.len, 0);
        // SAFETY: `ptr` points at `len` live bytes (owned until drop) and `out` has room for
        // `len`; a `Vec` never overlaps our leaked allocation. A thread writing through a
        // region at the same moment makes the copy a mix of old and new bytes, which is what a
        // disk writing back a page being dirtied gets too.
        unsafe { ptr::copy_nonoverlapping(self.ptr.as_ptr(), out.as_mut_ptr(), self.len) };
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.copy_to(&mut bytes);
        bytes
    }

    /// Copies `bytes` in at `offset`; the caller checked the range.
    fn write_at(&self, offset: usize, bytes: &[u8]) {
        assert!(offset <= self.len && bytes.len() <= self.len - offset);
        // SAFETY: the range is inside our `len` live bytes (asserted above), and `bytes`
        // borrows memory that is not ours, so the two do not overlap.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(offset), bytes.len());
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let slice = ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        // SAFETY: `ptr` and `len` are those of the boxed slice `new` leaked, freed only here;
        // the last `Arc` is going, so no region points at it any more.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// A region of a [`SimStorage`] file: its current buffer.
struct SimRegion {
    buffer: Arc<Buffer>,
    id: FileId,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimRegion")
            .field("file", &self.id)
            .field("len", &self.buffer.len)
            .finish()
    }
}

// SAFETY: the buffer holds `len` bytes at a fixed address for as long as this region holds its
// `Arc`, and it is the file's current image, so writes through it change the file.
unsafe impl Region for SimRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.buffer.ptr.as_ptr()
    }

    fn len(&self) -> usize {
        self.buffer.len
    }

    fn sync(&self) -> io::Result<()> {
        let hook = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .before_sync
            .clone();
        if let Some(hook) = hook {
            hook();
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.sync_file(self.id)
    }
}

/// The lock of a [`SimStorage`]; dropping it releases the lock.
struct SimLock {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimLock")
    }
}

impl LockGuard for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.locked = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `bytes` at `offset` of `region`.
    fn put(region: &dyn Region, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= region.len());
        // SAFETY: in bounds (asserted), and each test writes from one thread.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), region.as_ptr().add(offset), bytes.len());
        }
    }

    fn pattern(len: usize, salt: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ salt).collect()
    }

    #[test]
    fn synced_data_survives_every_crash() {
        let storage = SimStorage::new();
        let region = storage.create("a", 3 * PAGE + 100).unwrap();
        let data = pattern(region.len(), 1);
        put(&*region, 0, &data);
        region.sync().unwrap();
        storage.sync_dir().unwrap();
        for seed in 0..64 {
            let after = storage.crash(seed);
            assert_eq!(after.file_names(), ["a"]);
            assert_eq!(after.contents("a").unwrap(), data, "seed {seed}");
            assert_eq!(after.durable_contents("a").unwrap(), data);
        }
        assert_eq!(storage.syncs(), 1);
        assert_eq!(storage.dir_syncs(), 1);
    }

    #[test]
    fn unsynced_page_is_old_new_torn_or_garbage() {
        let storage = SimStorage::new();
        let region = storage.create("a", 2 * PAGE).unwrap();
        let old = pattern(2 * PAGE, 0x11);
        put(&*region, 0, &old);
        region.sync().unwrap();
        storage.sync_dir().unwrap();
        let new = pattern(PAGE, 0x22);
        put(&*region, 0, &new);

        let (mut applied, mut dropped, mut torn, mut garbled) = (0, 0, 0, 0);
        for seed in 0..400 {
            let bytes = storage.crash(seed).contents("a").unwrap();
            assert_eq!(bytes[PAGE..], old[PAGE..], "an unchanged page changed");
            let page = &bytes[..PAGE];
            let is_torn = (1..PAGE / SECTOR).any(|sectors| {
                let cut = sectors * SECTOR;
                page[..cut] == new[..cut] && page[cut..] == old[cut..PAGE]
            });
            if page == new {
                applied += 1;
            } else if page == &old[..PAGE] {
                dropped += 1;
            } else if is_torn {
                torn += 1;
            } else {
                garbled += 1;
            }
        }
        assert!(applied > 0 && dropped > 0 && torn > 0 && garbled > 0);
        assert!(applied + dropped > torn + garbled);
    }

    #[test]
    fn unsynced_directory_ops_are_applied_in_order_or_not() {
        let storage = SimStorage::new();
        let region = storage.create("a.tmp", PAGE).unwrap();
        put(&*region, 0, b"segment");
        region.sync().unwrap();
        storage.rename("a.tmp", "a").unwrap();
        storage.write("meta", b"m").unwrap();

        let mut outcomes = BTreeSet::new();
        for seed in 0..64 {
            let after = storage.crash(seed);
            let names = after.file_names();
            // A journal prefix: never "meta" without the rename before it.
            assert!(
                names.is_empty() || names == ["a.tmp"] || names == ["a"] || names == ["a", "meta"],
                "{names:?}"
            );
            if let Some(bytes) = after.contents(names.first().map_or("", String::as_str)) {
                assert_eq!(&bytes[..7], b"segment");
            }
            if names.len() == 2 {
                assert_eq!(after.read("meta").unwrap().unwrap(), b"m");
            }
            outcomes.insert(names);
        }
        assert_eq!(outcomes.len(), 4);

        storage.sync_dir().unwrap();
        for seed in 0..16 {
            assert_eq!(storage.crash(seed).file_names(), ["a", "meta"]);
        }
    }

    #[test]
    fn rename_replaces_and_remove_unlinks() {
        let storage = SimStorage::new();
        storage.write("a", b"old").unwrap();
        storage.write("b", b"new").unwrap();
        storage.rename("b", "a").unwrap();
        assert_eq!(storage.read("a").unwrap().unwrap(), b"new");
        assert_eq!(storage.list().unwrap(), ["a"]);
        storage.remove("a").unwrap();
        assert_eq!(storage.read("a").unwrap(), None);
        let missing = storage.rename("a", "c").unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            storage.remove("a").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn create_open_and_write_share_one_file() {
        let storage = SimStorage::new();
        let first = storage.create("a", PAGE).unwrap();
        let exists = storage.create("a", PAGE).unwrap_err();
        assert_eq!(exists.kind(), io::ErrorKind::AlreadyExists);
        let second = storage.open("a", false).unwrap();
        put(&*first, 10, b"shared");
        assert_eq!(second.as_ptr(), first.as_ptr());
        assert_eq!(&storage.contents("a").unwrap()[10..16], b"shared");
        assert_eq!(storage.durable_contents("a").unwrap(), vec![0; PAGE]);

        storage.replace("small", b"abc").unwrap();
        assert_eq!(storage.open("small", true).unwrap().len(), 3);
        assert_eq!(storage.durable_contents("small").unwrap(), b"abc");
        storage.write("empty", b"").unwrap();
        assert!(storage.open("empty", false).is_err());
        assert_eq!(
            storage.open("nope", false).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn removed_file_stays_mapped() {
        let storage = SimStorage::new();
        let region = storage.create("a", PAGE).unwrap();
        put(&*region, 0, b"still here");
        storage.remove("a").unwrap();
        storage.sync_dir().unwrap();
        assert!(storage.file_names().is_empty());
        put(&*region, 10, b"!");
        region.sync().unwrap();
        // SAFETY: the region is PAGE bytes long and only this thread touches it.
        let bytes = unsafe { std::slice::from_raw_parts(region.as_ptr(), 11) };
        assert_eq!(bytes, b"still here!");
        assert!(storage.crash(3).file_names().is_empty());
    }

    #[test]
    fn second_lock_would_block_until_the_first_is_dropped() {
        let storage = SimStorage::new();
        let guard = storage.lock().unwrap();
        let clone = storage.clone();
        assert_eq!(clone.lock().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // A crash releases every lock.
        drop(storage.crash(0).lock().unwrap());
        drop(guard);
        drop(clone.lock().unwrap());
    }

    #[test]
    fn failing_syncs_change_nothing_durable() {
        let storage = SimStorage::new();
        let region = storage.create("a", PAGE).unwrap();
        put(&*region, 0, b"data");
        storage.fail_syncs(true);
        assert!(region.sync().is_err());
        assert!(storage.sync_dir().is_err());
        assert!(storage.write("b", b"x").is_err());
        assert_eq!(storage.durable_contents("a").unwrap(), vec![0; PAGE]);
        assert_eq!(storage.read("b").unwrap(), None);
        assert_eq!((storage.syncs(), storage.dir_syncs()), (0, 0));

        storage.fail_syncs(false);
        region.sync().unwrap();
        storage.sync_dir().unwrap();
        assert_eq!(&storage.crash(5).contents("a").unwrap()[..4], b"data");
        assert_eq!((storage.syncs(), storage.dir_syncs()), (1, 1));
    }

    #[test]
    fn capacity_limits_current_files() {
        let storage = SimStorage::new();
        storage.set_capacity(Some(3 * PAGE as u64));
        let _a = storage.create("a", 2 * PAGE).unwrap();
        let full = storage.create("b", 2 * PAGE).unwrap_err();
        assert_eq!(full.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            storage.write("c", &[1; PAGE + 1]).unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        assert_eq!(storage.file_names(), ["a"]);
        storage.write("c", &[1; PAGE]).unwrap();
        storage.write("c", &[2; PAGE]).unwrap();
        storage.remove("a").unwrap();
        let _b = storage.create("b", 2 * PAGE).unwrap();
        storage.set_capacity(None);
        let _d = storage.create("d", 100 * PAGE).unwrap();
    }

    #[test]
    fn snapshot_keeps_everything_current() {
        let storage = SimStorage::new();
        let region = storage.create("a", 2 * PAGE).unwrap();
        let data = pattern(2 * PAGE, 7);
        put(&*region, 0, &data);
        storage.rename("a", "b").unwrap();
        let copy = storage.snapshot();
        assert_eq!(copy.file_names(), ["b"]);
        assert_eq!(copy.contents("b").unwrap(), data);
        assert_eq!(copy.durable_contents("b").unwrap(), data);
        for seed in 0..8 {
            assert_eq!(copy.crash(seed).contents("b").unwrap(), data);
        }
        put(&*region, 0, b"later");
        assert_eq!(copy.contents("b").unwrap(), data);
    }

    #[test]
    fn same_seed_same_crash() {
        let storage = SimStorage::new();
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            let region = storage.create(name, 4 * PAGE).unwrap();
            put(&*region, 0, &pattern(4 * PAGE, i as u8));
        }
        storage.remove("b").unwrap();
        storage.write("d", &pattern(PAGE + 1, 9)).unwrap();
        let image = |after: &SimStorage| {
            let names = after.file_names();
            let bytes: Vec<_> = names.iter().map(|n| after.contents(n)).collect();
            (names, bytes)
        };
        let mut distinct = BTreeSet::new();
        for seed in 0..32 {
            let first = image(&storage.crash(seed));
            assert_eq!(first, image(&storage.crash(seed)), "seed {seed}");
            distinct.insert(first);
        }
        assert!(distinct.len() > 1);
    }
}
