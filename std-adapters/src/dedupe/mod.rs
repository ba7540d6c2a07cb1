//! A dedupe buffer between a fast producer of key/value updates and a slower consumer.
//!
//! [`DedupeBuffer`] is Calico's `DedupeBuffer`, generic over key `K`, value `V` and sync status
//! `S`. Producers push [`Change`]s and statuses and never wait for the sink; one consumer takes
//! batches, either by pulling ([`next_batch`](DedupeBuffer::next_batch)) or by handing the
//! buffer a [`Sink`] ([`run_to_sink`](DedupeBuffer::run_to_sink)), and is never called with
//! the lock held. In between, the queue holds at most one entry per key:
//!
//! - a newer update for a queued key replaces the queued value *where it stands* (it keeps its
//!   old position, so it may overtake updates to other keys and later statuses);
//! - a delete of a queued key the consumer never saw removes it entirely (and a delete of a
//!   key that is neither queued nor seen is dropped);
//! - a status equal to the last one received is dropped, and a status right after a status
//!   overwrites it;
//! - [`Update::New`], [`Update::Updated`] or [`Update::Deleted`] is decided when an entry is
//!   dequeued, from the set of keys the consumer has seen ("live" keys).
//!
//! So under overload the consumer skips ahead to the latest state instead of seeing every
//! intermediate one, and memory is bounded by the number of distinct pending keys (plus the
//! live-key set, which mirrors what the consumer holds). A hard bound, [`Config::max_pending`],
//! rejects or blocks producers with the caller's choice of [`Overflow`] policy. Capacity is
//! given back when a burst has drained.
//!
//! Resync: [`restart_snapshot`](DedupeBuffer::restart_snapshot) (Calico's "connection
//! restarted") drops what is queued and starts tracking which live keys the new snapshot
//! mentions; the next in-sync status ([`SyncStatus::is_in_sync`]) is preceded by synthesized
//! deletes for the live keys it did not mention. Unlike Calico, a restart forgets the last
//! status received, so an in-sync status that equals the one before the restart is never
//! dropped as a duplicate, and the consumer is never left waiting for it.
//!
//! ```
//! use ringledger::dedupe::{Change, DedupeBuffer, Event, Status, Update};
//! use ringledger::wait::Deadline;
//!
//! let buffer = DedupeBuffer::<&str, u32, Status>::new();
//! buffer.push_status(Status::ResyncInProgress).unwrap();
//! buffer.push_updates(&mut vec![Change::Upsert("a", 1), Change::Upsert("b", 2)]).unwrap();
//! buffer.push(Change::Upsert("a", 3)).unwrap(); // replaces 1 in place
//! buffer.push(Change::Delete("b")).unwrap(); // never seen: gone
//! buffer.push_status(Status::InSync).unwrap();
//!
//! let batch = buffer.next_batch(100, Deadline::IMMEDIATE).unwrap();
//! assert_eq!(batch, [
//!     Event::Status(Status::ResyncInProgress),
//!     Event::Update(Update::New("a", 3)),
//!     Event::Status(Status::InSync),
//! ]);
//! ```

mod config;
mod events;
#[doc(hidden)]
pub mod model;
mod queue;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Instant;

use hashbrown::HashTable;

use crate::sync::{lock, wait_on, Condvar, Mutex, MutexGuard};
use crate::wait::Deadline;
pub use config::{Config, Overflow, PushError, RecvError, Stats};
pub use events::{Change, Event, Sink, Status, SyncStatus, Update};
use queue::{Applied, PendingQueue, Slot};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunState {
    Running,
    /// No more pushes; the consumer delivers what is queued, then stops.
    Flushing,
    Stopped,
}

struct State<K, V, S> {
    queue: PendingQueue<K, V, S>,
    /// Keys the consumer has been sent and not sent a delete for.
    live: HashTable<K>,
    /// During a resync: live keys the new snapshot has not mentioned yet.
    unseen: Option<HashTable<K>>,
    last_status: Option<S>,
    run: RunState,
    consumers_waiting: usize,
    producers_waiting: usize,
    peak_pending: usize,
}

/// Calico's dedupe buffer: producers push key/value changes and statuses, one consumer takes
/// deduplicated batches. See the [module documentation](self) for the rules.
///
/// Share it between threads with an `Arc` (or scoped threads): every method takes `&self`.
/// `H` hashes keys; hashing happens before the lock is taken.
///
/// ```
/// use ringledger::dedupe::{Change, DedupeBuffer, Event, Status, Update};
/// use ringledger::wait::Deadline;
///
/// let buffer = DedupeBuffer::<String, u64, Status>::new();
/// std::thread::scope(|s| {
///     s.spawn(|| buffer.push(Change::Upsert("price".into(), 10)).unwrap());
/// });
/// buffer.push(Change::Upsert("price".into(), 11)).unwrap(); // replaces 10: one update
/// let batch = buffer.next_batch(10, Deadline::IMMEDIATE).unwrap();
/// assert_eq!(batch, [Event::Update(Update::New("price".into(), 11))]);
/// ```
pub struct DedupeBuffer<K, V, S, H = RandomState> {
    state: Mutex<State<K, V, S>>,
    /// The consumer waits here for entries.
    not_empty: Condvar,
    /// Producers wait here for room under [`Overflow::Block`].
    not_full: Condvar,
    hasher: H,
    config: Config,
}

impl<K, V, S, H> fmt::Debug for DedupeBuffer<K, V, S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DedupeBuffer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<K, V, S> Default for DedupeBuffer<K, V, S>
where
    K: Hash + Eq + Clone,
    S: SyncStatus,
{
    fn default() -> Self {
        Self::new()
    }
}

/// How many changes are hashed ahead before taking the lock.
const HASH_AHEAD: usize = 64;

impl<K, V, S> DedupeBuffer<K, V, S>
where
    K: Hash + Eq + Clone,
    S: SyncStatus,
{
    /// An unbounded buffer with batches of 100.
    ///
    /// ```
    /// use ringledger::dedupe::{Change, Config, DedupeBuffer, Status};
    ///
    /// let buffer: DedupeBuffer<String, Vec<u8>, Status> = DedupeBuffer::new();
    /// assert_eq!(buffer.config(), &Config::default());
    /// buffer.push(Change::Upsert("key".into(), b"value".to_vec()))?;
    /// assert_eq!(buffer.stats().pending_keys, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A buffer configured by `config`.
    ///
    /// ```
    /// use ringledger::dedupe::{Change, Config, DedupeBuffer, Overflow, Status};
    ///
    /// let config = Config::default().batch_size(500).max_pending(10_000, Overflow::Reject);
    /// let buffer = DedupeBuffer::<u64, u64, Status>::with_config(config);
    /// assert_eq!(buffer.config().max_pending, Some(10_000));
    /// buffer.push(Change::Upsert(1, 1))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_config(config: Config) -> Self {
        Self::with_config_and_hasher(config, RandomState::new())
    }
}

impl<K, V, S, H> DedupeBuffer<K, V, S, H>
where
    K: Hash + Eq + Clone,
    S: SyncStatus,
    H: BuildHasher,
{
    /// A buffer configured by `config` that hashes keys with `hasher`.
    ///
    /// ```
    /// use std::hash::{BuildHasherDefault, DefaultHasher};
    /// use ringledger::dedupe::{Change, Config, DedupeBuffer, Status};
    ///
    /// // A fixed hasher instead of the randomly keyed default (say, for reproducible runs).
    /// let hasher = BuildHasherDefault::<DefaultHasher>::default();
    /// let buffer: DedupeBuffer<u64, u64, Status, _> =
    ///     DedupeBuffer::with_config_and_hasher(Config::default(), hasher);
    /// buffer.push(Change::Upsert(7, 1))?;
    /// assert_eq!(buffer.stats().pending_keys, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_config_and_hasher(config: Config, hasher: H) -> Self {
        DedupeBuffer {
            state: Mutex::new(State {
                queue: PendingQueue::new(),
                live: HashTable::new(),
                unseen: None,
                last_status: None,
                run: RunState::Running,
                consumers_waiting: 0,
                producers_waiting: 0,
                peak_pending: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            hasher,
            config: Config {
                batch_size: config.batch_size.max(1),
                ..config
            },
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Pushes one change. See [`push_updates`](Self::push_updates).
    ///
    /// ```
    /// use ringledger::dedupe::{Change, DedupeBuffer, Event, Status, Update};
    /// use ringledger::wait::Deadline;
    ///
    /// let buffer = DedupeBuffer::<&str, u32, Status>::new();
    /// buffer.push(Change::Upsert("a", 1)).unwrap();
    /// let first = buffer.next_batch(10, Deadline::IMMEDIATE).unwrap();
    /// assert_eq!(first, [Event::Update(Update::New("a", 1))]);
    /// // Seen by the consumer, then deleted: the delete is sent.
    /// buffer.push(Change::Delete("a")).unwrap();
    /// let second = buffer.next_batch(10, Deadline::IMMEDIATE).unwrap();
    /// assert_eq!(second.len(), 1);
    /// ```
    pub fn push(&self, change: Change<K, V>) -> Result<(), PushError> {
        let hash = self.hasher.hash_one(change.key());
        let state = lock(&self.state);
        let (state, outcome) = self.apply(state, hash, change, self.block_deadline());
        let grew = outcome.as_ref().is_ok_and(|grew| *grew);
        self.notify_consumer(state, grew);
        outcome.map(drop).map_err(|(_, error)| error)
    }

    /// The deadline producers wait for room until, if they wait at all.
    fn block_deadline(&self) -> Option<(Deadline, Option<Instant>)> {
        match self.config.overflow {
            Overflow::Block(deadline) if self.config.max_pending.is_some() => {
                Some((deadline, deadline.instant()))
            }
            _ => None,
        }
    }

    /// Pushes changes in order, taking the lock once per few dozen of them.
    ///
    /// On success `changes` is left empty (its capacity kept, for reuse). On error it holds
    /// the changes that were not accepted, the first of them the one that failed.
    ///
    /// ```
    /// use ringledger::dedupe::{Change, Config, DedupeBuffer, Overflow, PushError, Status};
    /// use ringledger::wait::Deadline;
    ///
    /// let config = Config::default().max_pending(2, Overflow::Reject);
    /// let buffer = DedupeBuffer::<u32, u32, Status>::with_config(config);
    /// let mut changes: Vec<_> = (1..=4).map(|k| Change::Upsert(k, k)).collect();
    /// assert_eq!(buffer.push_updates(&mut changes), Err(PushError::Full));
    /// assert_eq!(changes, [Change::Upsert(3, 3), Change::Upsert(4, 4)]); // still ours
    /// buffer.next_batch(10, Deadline::IMMEDIATE)?; // the consumer catches up
    /// buffer.push_updates(&mut changes)?;
    /// assert!(changes.is_empty()); // its allocation is kept for the next round
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_updates(&self, changes: &mut Vec<Change<K, V>>) -> Result<(), PushError> {
        let until = self.block_deadline();
        let mut hashes = [0u64; HASH_AHEAD];
        let mut result = Ok(());
        let mut refused = None;
        let mut incoming = changes.drain(..);
        'chunks: while incoming.len() > 0 {
            let ahead = incoming.len().min(HASH_AHEAD);
            for (hash, change) in hashes.iter_mut().zip(incoming.as_slice()) {
                *hash = self.hasher.hash_one(change.key());
            }
            let mut state = lock(&self.state);
            let mut appended = false;
            for &hash in &hashes[..ahead] {
                let Some(change) = incoming.next() else { break };
                // The common case, inline: an upsert into an unbounded, running buffer that
                // is not resyncing cannot fail or wait.
                let st = &mut *state;
                let change = match change {
                    Change::Upsert(key, value)
                        if self.config.max_pending.is_none()
                            && st.unseen.is_none()
                            && st.run == RunState::Running =>
                    {
                        let applied = st.queue.upsert(&self.hasher, hash, key, value, true);
                        if matches!(applied, Ok(Applied::Appended)) {
                            appended = true;
                            st.peak_pending = st.peak_pending.max(st.queue.pending_keys());
                        }
                        continue;
                    }
                    change => change,
                };
                let (guard, outcome) = self.apply(state, hash, change, until);
                state = guard;
                match outcome {
                    Ok(grew) => appended |= grew,
                    Err((change, error)) => {
                        refused = Some((change, incoming.by_ref().collect::<Vec<_>>()));
                        result = Err(error);
                        self.notify_consumer(state, appended);
                        break 'chunks;
                    }
                }
            }
            self.notify_consumer(state, appended);
        }
        drop(incoming);
        if let Some((first, rest)) = refused {
            changes.push(first);
            changes.extend(rest);
        }
        result
    }

    /// Applies one change under the lock, waiting for room if the policy says so. Returns
    /// whether the queue grew, or the change with the reason it was refused.
    #[allow(clippy::type_complexity)]
    fn apply<'a>(
        &'a self,
        mut state: MutexGuard<'a, State<K, V, S>>,
        hash: u64,
        mut change: Change<K, V>,
        block: Option<(Deadline, Option<Instant>)>,
    ) -> (
        MutexGuard<'a, State<K, V, S>>,
        Result<bool, (Change<K, V>, PushError)>,
    ) {
        if let Some(unseen) = &mut state.unseen {
            if let Ok(entry) = unseen.find_entry(hash, |k| k == change.key()) {
                entry.remove();
            }
        }
        loop {
            if state.run != RunState::Running {
                return (state, Err((change, PushError::Stopped)));
            }
            let st = &mut *state;
            let room = self
                .config
                .max_pending
                .is_none_or(|max| st.queue.pending_keys() < max);
            let outcome = match change {
                Change::Upsert(key, value) => st
                    .queue
                    .upsert(&self.hasher, hash, key, value, room)
                    .map_err(|(key, value)| Change::Upsert(key, value)),
                Change::Delete(key) => {
                    let live = st.live.find(hash, |k| *k == key).is_some();
                    st.queue
                        .delete(&self.hasher, hash, key, live, room)
                        .map_err(Change::Delete)
                }
            };
            match outcome {
                Ok(applied) => {
                    st.peak_pending = st.peak_pending.max(st.queue.pending_keys());
                    return (state, Ok(applied == Applied::Appended));
                }
                Err(refused) => change = refused,
            }
            let Some((deadline, until)) = block else {
                return (state, Err((change, PushError::Full)));
            };
            if deadline.has_passed() || until.is_some_and(|at| Instant::now() >= at) {
                return (state, Err((change, PushError::TimedOut)));
            }
            // The queue is full, so it is not empty: make sure the consumer is awake to drain it.
            if state.consumers_waiting > 0 {
                self.not_empty.notify_all();
            }
            state.producers_waiting += 1;
            state = wait_on(&self.not_full, state, until);
            state.producers_waiting -= 1;
        }
    }

    /// Pushes a status. One equal to the last status received is dropped; one right after a
    /// queued status overwrites it. An in-sync status during a resync is preceded by deletes
    /// for the live keys the new snapshot did not mention (these may exceed `max_pending`).
    ///
    /// ```
    /// use ringledger::dedupe::{Change, DedupeBuffer, Event, Status, Update};
    /// use ringledger::wait::Deadline;
    ///
    /// let buffer = DedupeBuffer::<&str, u32, Status>::new();
    /// buffer.push(Change::Upsert("a", 1))?;
    /// buffer.push(Change::Upsert("b", 1))?;
    /// buffer.next_batch(10, Deadline::IMMEDIATE)?; // the consumer has seen a and b
    /// buffer.restart_snapshot(); // the upstream reconnected and sends everything again
    /// buffer.push_status(Status::ResyncInProgress)?;
    /// buffer.push(Change::Upsert("a", 2))?; // b is not in the new snapshot
    /// buffer.push_status(Status::InSync)?; // so b's delete comes before the in-sync status
    /// let batch = buffer.next_batch(10, Deadline::IMMEDIATE)?;
    /// assert!(batch.contains(&Event::Update(Update::Deleted("b"))));
    /// assert_eq!(batch.last(), Some(&Event::Status(Status::InSync)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_status(&self, status: S) -> Result<(), PushError> {
        let mut state = lock(&self.state);
        if state.run != RunState::Running {
            return Err(PushError::Stopped);
        }
        if state.last_status.as_ref() == Some(&status) {
            return Ok(());
        }
        state.last_status = Some(status.clone());
        let mut appended = false;
        if status.is_in_sync() {
            if let Some(mut unseen) = state.unseen.take() {
                let st = &mut *state;
                for key in unseen.drain() {
                    let hash = self.hasher.hash_one(&key);
                    if st.live.find(hash, |k| *k == key).is_some() {
                        let applied = st.queue.delete(&self.hasher, hash, key, true, true);
                        appended |= applied == Ok(Applied::Appended);
                    }
                }
                st.peak_pending = st.peak_pending.max(st.queue.pending_keys());
            }
        }
        appended |= state.queue.push_status(status);
        self.notify_consumer(state, appended);
        Ok(())
    }

    /// The producer's upstream restarted and will send a fresh snapshot: drops everything
    /// queued, forgets the last status, and tracks which live keys the snapshot mentions, so
    /// that the next in-sync status deletes the others.
    pub fn restart_snapshot(&self) {
        let mut state = lock(&self.state);
        let st = &mut *state;
        st.queue.clear();
        st.last_status = None;
        st.unseen = Some(st.live.clone());
        st.queue.shrink_if_oversized(&self.hasher);
        let wake = st.producers_waiting > 0;
        drop(state);
        if wake {
            self.not_full.notify_all();
        }
    }

    /// Stops: pushes fail from now on, what is queued is dropped, and the consumer returns
    /// after the batch it is delivering (a sink call in progress is not interrupted).
    pub fn stop(&self) {
        let mut state = lock(&self.state);
        state.run = RunState::Stopped;
        state.queue.clear();
        state.queue.shrink_if_oversized(&self.hasher);
        drop(state);
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Stops taking pushes, but lets the consumer deliver everything queued before it stops.
    pub fn stop_and_flush(&self) {
        let mut state = lock(&self.state);
        if state.run == RunState::Running {
            state.run = RunState::Flushing;
        }
        drop(state);
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Takes up to `max` entries (at least one), waiting until the deadline for the first.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringledger::dedupe::{DedupeBuffer, RecvError, Status};
    /// use ringledger::wait::Deadline;
    ///
    /// let buffer = DedupeBuffer::<u32, u32, Status>::new();
    /// let waited = buffer.next_batch(10, Deadline::Timeout(Duration::from_millis(1)));
    /// assert_eq!(waited, Err(RecvError::TimedOut));
    /// buffer.stop();
    /// assert_eq!(buffer.next_batch(10, Deadline::Forever), Err(RecvError::Stopped));
    /// ```
    pub fn next_batch(
        &self,
        max: usize,
        deadline: Deadline,
    ) -> Result<Vec<Event<K, V, S>>, RecvError> {
        let mut batch = Vec::new();
        self.next_batch_into(&mut batch, max, deadline)?;
        Ok(batch)
    }

    /// Like [`next_batch`](Self::next_batch), appending to `out` (to reuse its allocation).
    /// Returns how many entries were appended.
    ///
    /// ```
    /// use ringledger::dedupe::{Change, DedupeBuffer, Status};
    /// use ringledger::wait::Deadline;
    ///
    /// let buffer = DedupeBuffer::<u32, u32, Status>::new();
    /// let mut batch = Vec::with_capacity(64);
    /// for round in 0..3 {
    ///     buffer.push(Change::Upsert(round, round))?;
    ///     batch.clear(); // the same allocation every round
    ///     assert_eq!(buffer.next_batch_into(&mut batch, 64, Deadline::IMMEDIATE)?, 1);
    /// }
    /// assert!(batch.capacity() >= 64);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_batch_into(
        &self,
        out: &mut Vec<Event<K, V, S>>,
        max: usize,
        deadline: Deadline,
    ) -> Result<usize, RecvError> {
        let until = deadline.instant();
        let mut state = lock(&self.state);
        loop {
            if state.run == RunState::Stopped {
                return Err(RecvError::Stopped);
            }
            if !state.queue.is_empty() {
                break;
            }
            if state.run == RunState::Flushing {
                state.run = RunState::Stopped;
                return Err(RecvError::Stopped);
            }
            if deadline.has_passed() || until.is_some_and(|at| Instant::now() >= at) {
                return Err(RecvError::TimedOut);
            }
            state.consumers_waiting += 1;
            state = wait_on(&self.not_empty, state, until);
            state.consumers_waiting -= 1;
        }
        let st = &mut *state;
        let before = out.len();
        while out.len() - before < max.max(1) {
            let Some((slot, hash)) = st.queue.pop_front(&self.hasher) else {
                break;
            };
            // The live set is updated now, under the lock: once it is released we are
            // committed to delivering these entries.
            let event = match slot {
                Slot::Upsert(key, value) => {
                    if st.live.find(hash, |k| *k == key).is_some() {
                        Update::Updated(key, value)
                    } else {
                        st.live
                            .insert_unique(hash, key.clone(), |k| self.hasher.hash_one(k));
                        Update::New(key, value)
                    }
                }
                Slot::Delete(key) => {
                    match st.live.find_entry(hash, |k| *k == key) {
                        Ok(entry) => {
                            entry.remove();
                        }
                        // Only a live key's delete is ever queued.
                        Err(_) => continue,
                    }
                    Update::Deleted(key)
                }
                Slot::Status(status) => {
                    out.push(Event::Status(status));
                    continue;
                }
                Slot::Vacant => continue,
            };
            out.push(Event::Update(event));
        }
        st.queue.shrink_if_oversized(&self.hasher);
        if st.live.capacity() > 64 && st.live.capacity() / 4 > st.live.len() {
            let keep = st.live.len() * 2;
            st.live.shrink_to(keep, |k| self.hasher.hash_one(k));
        }
        let wake = st.producers_waiting > 0;
        drop(state);
        if wake {
            self.not_full.notify_all();
        }
        Ok(out.len() - before)
    }

    /// Delivers batches of up to [`Config::batch_size`] entries to `sink` until the buffer is
    /// stopped, calling it without the lock held.
    pub fn run_to_sink(&self, sink: &mut impl Sink<K, V, S>) {
        let mut batch = Vec::with_capacity(self.config.batch_size);
        let mut updates = Vec::with_capacity(self.config.batch_size);
        while self
            .next_batch_into(&mut batch, self.config.batch_size, Deadline::Forever)
            .is_ok()
        {
            for event in batch.drain(..) {
                match event {
                    Event::Update(update) => updates.push(update),
                    Event::Status(status) => {
                        if !updates.is_empty() {
                            sink.on_updates(updates.drain(..));
                        }
                        sink.on_status(status);
                    }
                }
            }
            if !updates.is_empty() {
                sink.on_updates(updates.drain(..));
            }
        }
    }

    /// Current memory-use counters.
    pub fn stats(&self) -> Stats {
        let state = lock(&self.state);
        Stats {
            pending_keys: state.queue.pending_keys(),
            peak_pending_keys: state.peak_pending,
            queued_slots: state.queue.slots(),
            slot_capacity: state.queue.slot_capacity(),
            live_keys: state.live.len(),
        }
    }

    fn notify_consumer(&self, state: MutexGuard<'_, State<K, V, S>>, appended: bool) {
        let wake = appended && state.consumers_waiting > 0;
        drop(state);
        if wake {
            self.not_empty.notify_all();
        }
    }
}
