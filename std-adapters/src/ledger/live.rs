//! `ledger.live`: where a writer shows readers in other processes how far the ledger goes.
//!
//! One page, mapped shared by the writer (read-write) and by read-only ledgers in other
//! processes. It is a hint, never synced and never needed for recovery: a reader trusts it
//! only while a writer holds the directory's lock ([`Storage::writer_alive`]), and a new
//! writer rewrites it after its recovery.
//!
//! | offset | field | written by |
//! |---|---|---|
//! | 0 | magic `b"RLLIVE\0\0"` | writer, on open |
//! | 8 | version (u64, 1) | writer, on open |
//! | 16 | ledger id (u64) | writer, on open |
//! | 24 | generation (u64): a random number per writable open; 0 while one starts | writer |
//! | 64 | head (u64): the head readers may see (a synced write once durable) | writer |
//! | 72 | tail (u64): entries are deleted up to here | writer |
//! | 128 | wake (u32): bumped after each publication; the futex readers park on | writer |
//! | 192 | parked (u32): how many readers are parked on `wake` | readers |
//!
//! The words are atomics on the shared mapping: every process uses them through the same
//! physical page. Waking costs the writer one read-modify-write of `wake` and one load of
//! `parked` per publication, a system call only when a reader is parked: a reader registers
//! in `parked`, then re-reads `wake`, then sleeps in `FUTEX_WAIT` only while `wake` still
//! holds the value it saw before it looked at the head (both sides `SeqCst`, so one of the
//! two sees the other). Elsewhere than Linux, readers poll with bounded sleeps. A reader that
//! dies while parked leaves `parked` too high, which costs the writer a wake-up system call
//! per publication until the next writer resets it; nothing waits longer.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::storage::{random_u64, Region, Storage};

/// The control file's name.
pub(super) const LIVE_FILE: &str = "ledger.live";
/// Its size: one page.
const LEN: usize = 4096;
const MAGIC: u64 = u64::from_le_bytes(*b"RLLIVE\0\0");
const VERSION: u64 = 1;

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = 8;
const LEDGER_ID_AT: usize = 16;
const GENERATION_AT: usize = 24;
const HEAD_AT: usize = 64;
const TAIL_AT: usize = 72;
const WAKE_AT: usize = 128;
const PARKED_AT: usize = 192;

/// The control page, mapped.
struct Page {
    region: Box<dyn Region>,
}

impl Page {
    fn map(region: Box<dyn Region>) -> io::Result<Self> {
        if region.len() < LEN || region.as_ptr().align_offset(8) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{LIVE_FILE} is {} bytes, not {LEN}", region.len()),
            ));
        }
        Ok(Page { region })
    }

    fn word(&self, at: usize) -> &AtomicU64 {
        debug_assert!(at % 8 == 0 && at + 8 <= LEN);
        // SAFETY: in bounds (checked in `map`), 8-aligned (the mapping is page-aligned), and
        // every process touches these bytes only through atomics; the mapping lives as long
        // as `self`.
        unsafe { AtomicU64::from_ptr(self.region.as_ptr().add(at).cast()) }
    }

    fn word32(&self, at: usize) -> &AtomicU32 {
        debug_assert!(at % 8 == 0 && at + 4 <= LEN);
        // SAFETY: as for `word`; these offsets are only ever used as 32-bit words.
        unsafe { AtomicU32::from_ptr(self.region.as_ptr().add(at).cast()) }
    }

    fn wake(&self) -> &AtomicU32 {
        self.word32(WAKE_AT)
    }

    fn parked(&self) -> &AtomicU32 {
        self.word32(PARKED_AT)
    }
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field(
                "generation",
                &self.word(GENERATION_AT).load(Ordering::Relaxed),
            )
            .field("head", &self.word(HEAD_AT).load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The writer's side.
#[derive(Debug)]
pub(super) struct Publisher {
    page: Page,
}

impl Publisher {
    /// Creates or takes over `ledger.live` for a writer that recovered `head` and `tail`, and
    /// wakes every parked reader so that it sees the new generation.
    pub(super) fn start(
        storage: &dyn Storage,
        ledger_id: u64,
        head: u64,
        tail: u64,
    ) -> io::Result<Self> {
        let region = match storage.open(LIVE_FILE, true) {
            Ok(region) if region.len() == LEN => region,
            Ok(region) => {
                drop(region);
                storage.remove(LIVE_FILE)?;
                storage.create(LIVE_FILE, LEN)?
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound) => {
                storage.create(LIVE_FILE, LEN)?
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::UnexpectedEof) => {
                storage.remove(LIVE_FILE)?;
                storage.create(LIVE_FILE, LEN)?
            }
            Err(e) => return Err(e),
        };
        let page = Page::map(region)?;
        // Generation 0 first: a reader never takes the fields below for the old writer's.
        page.word(GENERATION_AT).store(0, Ordering::SeqCst);
        page.word(MAGIC_AT).store(MAGIC, Ordering::Relaxed);
        page.word(VERSION_AT).store(VERSION, Ordering::Relaxed);
        page.word(LEDGER_ID_AT).store(ledger_id, Ordering::Relaxed);
        page.word(HEAD_AT).store(head, Ordering::Relaxed);
        page.word(TAIL_AT).store(tail, Ordering::Relaxed);
        // Readers parked on the old writer's page count again when they park next.
        page.parked().store(0, Ordering::Relaxed);
        let generation = random_u64().max(1);
        page.word(GENERATION_AT).store(generation, Ordering::SeqCst);
        page.wake().fetch_add(1, Ordering::SeqCst);
        futex::wake_all(page.wake());
        Ok(Publisher { page })
    }

    /// Shows readers the head (under the writer lock, after the records are published).
    #[inline]
    pub(super) fn publish_head(&self, head: u64) {
        self.page.word(HEAD_AT).store(head, Ordering::Release);
    }

    /// Shows readers the tail (after `ledger.meta` has it).
    pub(super) fn publish_tail(&self, tail: u64) {
        self.page.word(TAIL_AT).store(tail, Ordering::Release);
    }

    /// Wakes parked readers, if any: one read-modify-write and one load when none is.
    #[inline]
    pub(super) fn wake(&self) {
        self.page.wake().fetch_add(1, Ordering::SeqCst);
        if self.page.parked().load(Ordering::SeqCst) != 0 {
            futex::wake_all(self.page.wake());
        }
    }
}

/// What a reader read from the page, consistently (one generation throughout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub(super) generation: u64,
    pub(super) head: u64,
    pub(super) tail: u64,
}

/// Why a reader cannot follow through `ledger.live`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unusable {
    /// No such file, or it cannot be mapped.
    Missing(String),
    /// The page is not a control page of this ledger (garbage, another version, another
    /// ledger's, or a writer in the middle of starting).
    Foreign(String),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Missing(why) | Unusable::Foreign(why) => f.write_str(why),
        }
    }
}

/// A reader's side.
#[derive(Debug)]
pub(super) struct Follower {
    page: Page,
    ledger_id: u64,
    /// Whether the page is mapped writable: parking needs to count itself in `parked`.
    writable: bool,
}

impl Follower {
    /// Maps `ledger.live` of the ledger `ledger_id`: read-write when allowed (to park on it),
    /// read-only otherwise (then waits poll).
    pub(super) fn map(storage: &dyn Storage, ledger_id: u64) -> Result<Self, Unusable> {
        let (region, writable) = match storage.open(LIVE_FILE, true) {
            Ok(region) => (region, true),
            Err(_) => storage
                .open(LIVE_FILE, false)
                .map(|region| (region, false))
                .map_err(|e| Unusable::Missing(format!("{LIVE_FILE}: {e}")))?,
        };
        let page = Page::map(region).map_err(|e| Unusable::Missing(e.to_string()))?;
        Ok(Follower {
            page,
            ledger_id,
            writable,
        })
    }

    /// The writer's head and tail, if the page is this ledger's and holds a started writer.
    pub(super) fn snapshot(&self) -> Result<Snapshot, Unusable> {
        let page = &self.page;
        for _ in 0..1000 {
            let generation = page.word(GENERATION_AT).load(Ordering::SeqCst);
            let magic = page.word(MAGIC_AT).load(Ordering::Relaxed);
            let version = page.word(VERSION_AT).load(Ordering::Relaxed);
            let ledger_id = page.word(LEDGER_ID_AT).load(Ordering::Relaxed);
            let head = page.word(HEAD_AT).load(Ordering::Acquire);
            let tail = page.word(TAIL_AT).load(Ordering::Acquire);
            if page.word(GENERATION_AT).load(Ordering::SeqCst) != generation {
                continue;
            }
            if magic != MAGIC || version != VERSION {
                return Err(Unusable::Foreign(format!(
                    "{LIVE_FILE} is not a control page of version {VERSION}"
                )));
            }
            if ledger_id != self.ledger_id {
                return Err(Unusable::Foreign(format!(
                    "{LIVE_FILE} belongs to ledger {ledger_id:#x}, not {:#x}",
                    self.ledger_id
                )));
            }
            if generation == 0 {
                // A writer is starting; it sets a generation once it has recovered.
                std::thread::yield_now();
                continue;
            }
            return Ok(Snapshot {
                generation,
                head,
                tail,
            });
        }
        Err(Unusable::Foreign(format!(
            "{LIVE_FILE} keeps changing (no generation holds)"
        )))
    }

    /// The wake word now: read it before looking at the head, and pass it to
    /// [`park`](Self::park).
    pub(super) fn wake_word(&self) -> u32 {
        self.page.wake().load(Ordering::SeqCst)
    }

    /// Sleeps until the writer publishes after `seen` was read from [`wake_word`], or
    /// `timeout` passes (or spuriously).
    pub(super) fn park(&self, seen: u32, timeout: Duration) {
        let parked = self.page.parked();
        if !self.writable {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
            return;
        }
        parked.fetch_add(1, Ordering::SeqCst);
        if self.page.wake().load(Ordering::SeqCst) == seen {
            futex::wait(self.page.wake(), seen, timeout);
        }
        // Never below zero: a new writer may have reset the count while we slept.
        let _ = parked.fetch_update(Ordering::SeqCst, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// Waiting on a word shared between processes.
mod futex {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    /// Sleeps while `word` holds `expected`, up to `timeout` (or spuriously).
    #[cfg(target_os = "linux")]
    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        // SAFETY: FUTEX_WAIT (shared: the word is in a shared mapping) reads the 4-byte word
        // at a valid, aligned address and the timespec; it writes nothing.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                &timeout as *const libc::timespec,
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }

    /// Wakes every sleeper on `word`, in every process.
    #[cfg(target_os = "linux")]
    pub(super) fn wake_all(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE on a valid, aligned word; no memory is written.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE,
                i32::MAX,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }

    /// Bounded polling: sleeps a little, at most `timeout`.
    #[cfg(not(target_os = "linux"))]
    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        let _ = (word, expected);
        std::thread::sleep(timeout.min(Duration::from_micros(500)));
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn wake_all(_word: &AtomicU32) {}
}
