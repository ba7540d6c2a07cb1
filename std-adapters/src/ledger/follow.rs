//! A read-only ledger following the writer of another process (or of this one).
//!
//! While a writer holds the directory, it shows its head and tail in `ledger.live` (see
//! `live.rs`). A read-only [`Ledger`] follows them without reopening:
//!
//! - new records are read from the segment files (the same page cache the writer writes),
//!   only those whose sequence is at most the published head: they were complete, and in a
//!   synced ledger durable, before the head named them;
//! - a new segment is found in the directory when the head passes the last known one, and
//!   the one before it is then sealed;
//! - a delete moves the tail; segments it emptied leave the view (payloads handed out keep
//!   their mapping), and cursors before the tail get [`Truncated`](crate::stream) as in the
//!   writer's process;
//! - a new writer (after a crash of the old one) starts a new generation: the view is rebuilt
//!   by the read-only recovery, bounded by the new writer's head, so it holds exactly the
//!   entries recovery kept.
//!
//! Without a usable `ledger.live` (missing, garbage, another ledger's, or no writer holding
//! the directory), a refresh reopens the ledger read-only, and waits poll; the ledger says
//! so once, at `info` level (`warn` for a garbage file), and in [`Ledger::follow_mode`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::live::{Follower, Snapshot, Unusable};
use super::meta::{Meta, META_FILE};
use super::open::{self, Opened};
use super::segment::Segment;
use super::{live_in, Inner, Ledger, LedgerError};
use crate::sync::{lock, Mutex, Ordering};
use crate::wait::{CancelToken, Deadline, WaitError};

/// How a read-only [`Ledger`] learns about the writer's new entries; see
/// [`Ledger::follow_mode`].
///
/// ```
/// use ringledger::ledger::{Entry, FollowMode, Ledger, LedgerConfig};
///
/// let dir = tempfile::tempdir()?;
/// let writer = Ledger::open(dir.path(), LedgerConfig::default())?;
/// let reader = Ledger::open(dir.path(), LedgerConfig::default().with_read_only(true))?;
/// assert_eq!(reader.follow_mode(), FollowMode::Live);
/// assert_eq!(writer.follow_mode(), FollowMode::Writer);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FollowMode {
    /// This ledger is the writer.
    Writer,
    /// A writer holds the directory and shows its head in `ledger.live`: waits park until
    /// it publishes (a futex on Linux, short sleeps elsewhere). A writer that ended is noticed
    /// by the first refresh a tenth of a second after it last showed anything new.
    Live,
    /// No writer holds the directory: the entries on disk are all there is until one opens
    /// it (which a wait notices within its polling interval).
    Idle,
    /// `ledger.live` cannot be used (the reason): refreshes reopen the ledger, waits poll.
    Reopening(String),
}

/// How long a live writer may show nothing new before a refresh asks whether it is alive.
const ASK_ALIVE: Duration = Duration::from_millis(100);
/// How often a wait that cannot park on the writer looks again.
const POLL: Duration = Duration::from_millis(20);
/// The longest a parked wait sleeps before it looks again by itself: a cancellation, or a
/// writer replaced between a look and a park, is noticed within it.
const PARK_SLICE: Duration = Duration::from_millis(20);

/// The follower's state, under its lock.
#[derive(Debug)]
pub(super) struct Follow {
    /// The writer's page, when it could be mapped (at open; never replaced).
    page: Option<Arc<Follower>>,
    state: Mutex<State>,
    /// Whether the thread that follows the writer for tasks runs (feature `async`).
    #[cfg(feature = "async")]
    for_tasks: crate::sync::AtomicBool,
}

#[derive(Debug)]
struct State {
    /// The generation the view follows (0: none).
    generation: u64,
    mode: FollowMode,
    /// When the storage was last asked whether the writer is alive.
    alive_asked: Instant,
}

impl Follow {
    /// Opens the ledger read-only and its follower: bounded by the writer's head when one is
    /// live (what it has shown, no more), else as recovery would leave it.
    pub(super) fn open(
        storage: &dyn crate::storage::Storage,
        config: &super::LedgerConfig,
    ) -> Result<(Self, Opened), LedgerError> {
        let mut state = State {
            generation: 0,
            mode: FollowMode::Idle,
            alive_asked: Instant::now(),
        };
        // The page names its ledger: the id comes from `ledger.meta` (an open without one
        // fails below with its own error).
        let meta = storage.read(META_FILE).ok().flatten();
        let page = match meta.as_deref().map(Meta::decode) {
            Some(Ok(meta)) => Follower::map(storage, meta.ledger_id),
            _ => Err(Unusable::Missing(format!("no readable {META_FILE}"))),
        };
        let looked = page.as_ref().map(|page| look(storage, page));
        let limit = match &looked {
            Ok(Look::Live(snapshot)) => Some(snapshot.head),
            _ => None,
        };
        let opened = open::open(storage, config, limit)?;
        match looked {
            Ok(Look::Live(snapshot)) => {
                state.generation = snapshot.generation;
                state.mode = FollowMode::Live;
            }
            Ok(Look::Idle(generation)) => state.generation = generation,
            Ok(Look::Unusable(why)) => state.mode = say_reopening(why),
            Err(why) => state.mode = say_reopening(why.clone()),
        }
        Ok((
            Follow {
                page: page.ok().map(Arc::new),
                state: Mutex::new(state),
                #[cfg(feature = "async")]
                for_tasks: crate::sync::AtomicBool::new(false),
            },
            opened,
        ))
    }

    pub(super) fn mode(&self) -> FollowMode {
        lock(&self.state).mode.clone()
    }
}

fn say_reopening(why: Unusable) -> FollowMode {
    match &why {
        Unusable::Missing(_) => {
            tracing::info!(%why, "a read-only ledger without a live writer page: refreshes reopen it")
        }
        Unusable::Foreign(_) => {
            tracing::warn!(%why, "the writer's live page is unusable: refreshes reopen the ledger")
        }
    }
    FollowMode::Reopening(why.to_string())
}

/// What the control page says now.
enum Look {
    /// A writer is live and showed this.
    Live(Snapshot),
    /// The page is sound but no writer holds the directory (its generation).
    Idle(u64),
    Unusable(Unusable),
}

fn look(storage: &dyn crate::storage::Storage, page: &Follower) -> Look {
    match page.snapshot() {
        Err(why) => Look::Unusable(why),
        Ok(snapshot) => match storage.writer_alive() {
            Ok(Some(false)) => Look::Idle(snapshot.generation),
            // Alive, or the storage cannot tell: a sound page is trusted.
            Ok(_) => Look::Live(snapshot),
            Err(e) => Look::Unusable(Unusable::Missing(format!(
                "cannot tell whether a writer holds the ledger: {e}"
            ))),
        },
    }
}

impl Ledger {
    /// How this ledger learns about new entries: [`FollowMode::Writer`] for a writable one;
    /// for a [read-only](super::LedgerConfig::read_only) one, whether it follows a live
    /// writer through `ledger.live` or falls back to reopening (and why).
    pub fn follow_mode(&self) -> FollowMode {
        match &self.inner.follow {
            None => FollowMode::Writer,
            Some(follow) => follow.mode(),
        }
    }

    /// Brings a [read-only](super::LedgerConfig::read_only) ledger up to what its writer has
    /// shown: new entries and segments, deletes, a new writer after a crash. Returns whether
    /// anything changed. A writable ledger is always up to date (`Ok(false)`).
    ///
    /// [`wait_for_head`](Self::wait_for_head) and the [`LedgerStream`](crate::stream)
    /// cursors refresh by themselves; call this before reading the head or the entries
    /// directly.
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let writer = Ledger::open(dir.path(), LedgerConfig::default())?;
    /// let reader = Ledger::open(dir.path(), LedgerConfig::default().with_read_only(true))?;
    /// writer.write(&[Entry::new(1, "a"), Entry::new(2, "b")])?;
    /// assert_eq!(reader.head(), 0, "as of the open");
    /// assert!(reader.refresh()?);
    /// assert_eq!(reader.read(1, 10)?.len(), 2);
    /// writer.delete(1)?;
    /// reader.refresh()?;
    /// assert_eq!((reader.tail(), reader.len()), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn refresh(&self) -> Result<bool, LedgerError> {
        let Some(follow) = &self.inner.follow else {
            return Ok(false);
        };
        let mut state = lock(&follow.state);
        let inner = &*self.inner;
        let Some(page) = &follow.page else {
            return inner.reload(None);
        };
        if state.mode == FollowMode::Live {
            // The common case: the same writer moved on. Whether it is still alive is only
            // asked (a few system calls) when it has not for a while.
            if let Ok(snapshot) = page.snapshot() {
                if snapshot.generation == state.generation {
                    let changed = inner.advance(snapshot)?;
                    if changed || state.alive_asked.elapsed() < ASK_ALIVE {
                        return Ok(changed);
                    }
                }
            }
        }
        state.alive_asked = Instant::now();
        match look(&*inner.storage, page) {
            Look::Live(snapshot) if snapshot.generation == state.generation => {
                if state.mode != FollowMode::Live {
                    state.mode = FollowMode::Live;
                }
                inner.advance(snapshot)
            }
            Look::Live(snapshot) => {
                tracing::info!(
                    generation = snapshot.generation,
                    head = snapshot.head,
                    "a new writer holds the ledger: the read-only view is rebuilt"
                );
                let changed = inner.reload(Some(snapshot.head))?;
                state.generation = snapshot.generation;
                state.mode = FollowMode::Live;
                Ok(changed)
            }
            Look::Idle(generation) => {
                // Nothing changes without a writer; a new one starts a new generation.
                if generation == state.generation && state.mode == FollowMode::Idle {
                    return Ok(false);
                }
                let changed = inner.reload(None)?;
                state.generation = generation;
                state.mode = FollowMode::Idle;
                Ok(changed)
            }
            Look::Unusable(why) => {
                if !matches!(state.mode, FollowMode::Reopening(_)) {
                    state.mode = say_reopening(why);
                }
                inner.reload(None)
            }
        }
    }

    /// [`wait_for_head_cancellable`](Self::wait_for_head_cancellable) of a read-only ledger:
    /// refresh, look, park on the writer's page (or sleep), again.
    pub(super) fn follow_head(
        &self,
        seq: u64,
        deadline: Deadline,
        cancel: Option<&CancelToken>,
    ) -> Result<u64, WaitError> {
        let until = deadline.instant();
        let mut failures = 0u32;
        loop {
            // Read before the refresh looks at the head: a publication after it changes it.
            let page = self.inner.follow.as_ref().and_then(|f| f.page.as_deref());
            let seen = page.map(Follower::wake_word);
            if let Err(error) = self.refresh() {
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(
                        error = %crate::error_chain(&error),
                        failures,
                        "a read-only ledger cannot follow its writer; it keeps trying"
                    );
                }
            }
            let head = self.head();
            if head >= seq {
                return Ok(head);
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(WaitError::Cancelled);
            }
            let now = Instant::now();
            if deadline.has_passed() || until.is_some_and(|at| now >= at) {
                return Err(WaitError::TimedOut);
            }
            let left = until.map_or(Duration::MAX, |at| at - now);
            match (page, seen) {
                (Some(page), Some(seen)) if self.follow_mode() == FollowMode::Live => {
                    page.park(seen, left.min(PARK_SLICE));
                }
                _ => std::thread::sleep(left.min(POLL)),
            }
        }
    }
}

#[cfg(feature = "async")]
impl Ledger {
    /// Starts, once per read-only ledger, the thread that follows the writer for tasks: a
    /// task cannot park on the writer's page, so this thread does (or polls, without a usable
    /// page) and refreshes the view after each publication, which wakes the tasks waiting on
    /// the head. It ends within a park of the ledger's last handle going.
    pub(super) fn follow_for_tasks(&self) {
        let Some(follow) = &self.inner.follow else {
            return;
        };
        if follow.for_tasks.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::downgrade(&self.inner);
        let page = follow.page.clone();
        let started = std::thread::Builder::new()
            .name("ringledger-follow".into())
            .spawn(move || loop {
                let seen = page.as_deref().map(Follower::wake_word);
                let live = {
                    let Some(inner) = inner.upgrade() else {
                        return;
                    };
                    let ledger = Ledger { inner };
                    if let Err(error) = ledger.refresh() {
                        tracing::debug!(
                            error = %crate::error_chain(&error),
                            "a read-only ledger cannot follow its writer for tasks; it keeps trying"
                        );
                    }
                    ledger.follow_mode() == FollowMode::Live
                };
                match (page.as_deref(), seen) {
                    (Some(page), Some(seen)) if live => page.park(seen, PARK_SLICE),
                    _ => std::thread::sleep(POLL),
                }
            });
        if let Err(error) = started {
            // Tasks then see only what other waits and refreshes bring in.
            follow.for_tasks.store(false, Ordering::Release);
            tracing::warn!(%error, "cannot start the thread that follows the writer for tasks");
        }
    }
}

impl Inner {
    /// Rebuilds the view by a read-only open, bounded by `limit` (a live writer's head).
    fn reload(&self, limit: Option<u64>) -> Result<bool, LedgerError> {
        let opened = open::open(&*self.storage, &self.config, limit)?;
        let before = (self.head.load(Ordering::Acquire), self.len_and_tail());
        let segments = merge(&self.segments(), opened.segments);
        self.set_segments(segments);
        self.set_tail_and_len(opened.tail, opened.len);
        self.head.store(opened.head, Ordering::Release);
        self.waiters.notify();
        Ok(before != (opened.head, (opened.len, opened.tail)))
    }

    /// Follows a live writer of the same generation to `snapshot`.
    fn advance(&self, snapshot: Snapshot) -> Result<bool, LedgerError> {
        let head = self.head.load(Ordering::Acquire);
        let (_, tail) = self.len_and_tail();
        if snapshot.head <= head && snapshot.tail <= tail {
            return Ok(false);
        }
        let mut segments: Vec<Arc<Segment>> = self.segments().as_ref().clone();
        let mut added = 0;
        if snapshot.head > head {
            added = self.read_up_to(&mut segments, snapshot.head)?;
        }
        let new_tail = snapshot.tail.max(tail);
        if new_tail > tail {
            // The writer removes the segments a delete emptied (never the last one).
            let last = segments.len().saturating_sub(1);
            let mut i = 0;
            segments.retain(|s| {
                let keep = i == last || {
                    let counts = s.counts();
                    !(s.is_sealed() && (counts.count == 0 || counts.last_seq <= new_tail))
                };
                i += 1;
                keep
            });
            let mut len = 0;
            for segment in &segments {
                len += live_in(segment, new_tail)?;
            }
            self.set_segments(segments);
            self.set_tail_and_len(new_tail, len);
        } else {
            self.set_segments(segments);
            self.len.fetch_add(added, Ordering::AcqRel);
        }
        if snapshot.head > head {
            self.head.store(snapshot.head, Ordering::Release);
        }
        self.waiters.notify();
        Ok(true)
    }

    /// Reads the records up to `head` into the view, mapping new segments as the head passes
    /// the last one; returns how many records were added.
    fn read_up_to(&self, segments: &mut Vec<Arc<Segment>>, head: u64) -> Result<u64, LedgerError> {
        let mut added = 0;
        // Each round reads one segment; the head names a record in a segment that exists.
        for _ in 0..64 {
            if let Some(last) = segments.last() {
                added += extend(last, head);
                let counts = last.counts();
                if counts.count > 0 && counts.last_seq >= head {
                    return Ok(added);
                }
            }
            let after = segments.last().map(|s| s.base());
            let next =
                open::next_segment(&*self.storage, &self.config, self.ledger_id, after, head)?;
            let Some(next) = next else {
                // The head is above the last record (an entry deleted and lost before a
                // crash, say): every record up to it is read.
                return Ok(added);
            };
            if let Some(last) = segments.last() {
                // A later segment exists: the writer sealed this one first.
                extend(last, next.base().saturating_sub(1));
                if !last.is_sealed() {
                    last.publish_sealed();
                }
            }
            segments.push(next);
        }
        Ok(added)
    }

    /// Sets the tail and the length together, as a delete does.
    fn set_tail_and_len(&self, tail: u64, len: u64) {
        self.deletes.fetch_add(1, Ordering::AcqRel);
        self.tail.store(tail, Ordering::Release);
        self.len.store(len, Ordering::Release);
        self.deletes.fetch_add(1, Ordering::Release);
    }
}

/// Reads the records of `segment` after its committed end whose sequence is at most `head`
/// into its counts and index; returns how many.
fn extend(segment: &Segment, head: u64) -> u64 {
    let mapping = &segment.mapping;
    // SAFETY: bytes below the segment's committed end are never written again. Above it the
    // writer (in another process) may be writing: those bytes are only taken as a record
    // when its header checksum holds and its sequence is at most the published head, which
    // the writer published after the record was complete; anything else ends the read.
    let image = unsafe { mapping.slice(0, mapping.len()) };
    let mut counts = segment.counts();
    let mut end = segment.data_end();
    let mut added = 0;
    // The header's checksum is enough to find the records (their payloads are checked when
    // read, as every read does): a record at most the head is complete, and what follows it
    // is judged by its header alone.
    while let Ok(record) = segment.skim_at(image, end) {
        if record.seq > head || (counts.count > 0 && record.seq <= counts.last_seq) {
            break;
        }
        if counts.count == 0 {
            counts.first_seq = record.seq;
        }
        counts.count += 1;
        counts.last_seq = record.seq;
        segment.maybe_index(record.seq, end);
        end = record.end();
        added += 1;
    }
    if added > 0 {
        segment.publish(end, counts);
    }
    added
}

/// The segments of a reopen, keeping the ones the view already has (same file, as far as
/// read) so that payloads handed out and new ones share mappings.
fn merge(old: &[Arc<Segment>], new: Vec<Arc<Segment>>) -> Vec<Arc<Segment>> {
    new.into_iter()
        .map(|segment| {
            old.iter()
                .find(|o| {
                    o.name == segment.name
                        && o.header.salt == segment.header.salt
                        && o.data_end() == segment.data_end()
                        && o.is_sealed() == segment.is_sealed()
                })
                .cloned()
                .unwrap_or(segment)
        })
        .collect()
}
