//! The producer's input queue and its worker: the batching rule of quasar §4.
//!
//! Writers put `(entry, ack)` pairs, or groups of entries with one ack, in a bounded queue;
//! one worker thread takes them out into a batch (a group whole), writes the batch with one
//! call to its [`BatchSink`] and resolves every ack of the batch with the result.
//!
//! The queue is a `VecDeque` under a mutex rather than one of the lock-free
//! [`blocking`](crate::blocking) rings, for two reasons. Close must be linearizable with
//! writes: a write either gets in before the close (and then the worker or the close resolves
//! its ack) or fails with [`Closed`](ProducerError::Closed); with a ring, a push that checked
//! "open" just before a close can land after the final drain, and its ack would wait forever.
//! And the capacity is any number, not a power of two. The lock is held for a push or a
//! move of up to a batch of items, never across a sink call or an ack resolution, and every
//! batch costs a ledger write: the mutex is not what limits throughput. Single entries share
//! one ack and one vector per run (see [`Item`]), so the queue allocates per batch, not per
//! entry. The condition variables are only signalled when someone waits (the
//! flags under the lock say so).

use std::collections::VecDeque;
use std::mem;
use std::sync::Arc as StdArc;
use std::time::{Duration, Instant};

use super::ack::{self, Ack, AckSender};
use super::{BatchSink, ProducerError};
use crate::ledger::{Entry, LedgerError};
use crate::sync::{lock, wait_on, Condvar, Mutex, MutexGuard};
use crate::wait::Deadline;

/// The worker's settings, from a validated [`ProducerConfig`](super::ProducerConfig).
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) batch: usize,
    pub(super) timeout: Duration,
    pub(super) retry: u32,
    pub(super) delay: Duration,
    pub(super) filter: bool,
}

/// What the writers, the closers and the worker share.
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// The worker waits here for entries (or close), and during a retry delay for close.
    worker_wake: Condvar,
    /// Writers wait here for room (or close).
    room: Condvar,
    pub(super) capacity: usize,
    /// A batch's size: the most entries a run takes.
    run: usize,
}

/// One queued write: an entry with its own ack, or a batch of entries sharing one ack (written
/// together, in one ledger write, all or nothing).
///
/// Single entries queued one after another join a run: entries that share one ack (whose
/// result is their batch's anyway) and one vector, so a single write costs no allocation of
/// its own. A run stops taking entries at a batch's size (or, while the worker waits with a
/// partial batch, at the room left in it), when the worker takes it, or when a
/// group is queued behind it.
enum Item {
    Run(Vec<Entry>, AckSender, Ack),
    Group(Vec<Entry>, AckSender),
}

impl Item {
    fn len(&self) -> usize {
        match self {
            Item::Run(entries, ..) | Item::Group(entries, _) => entries.len(),
        }
    }

    fn into_ack(self) -> AckSender {
        match self {
            Item::Run(_, ack, _) | Item::Group(_, ack) => ack,
        }
    }
}

pub(super) struct State {
    queue: VecDeque<Item>,
    /// Entries in `queue` (a group counts each of its entries).
    pub(super) queued: usize,
    pub(super) closed: bool,
    /// The worker waits for entries on `worker_wake`: the next write must notify it, and
    /// clears the flag, so that a burst of writes wakes it once.
    worker_waiting: bool,
    /// Writers waiting on `room`: taking entries must notify them. Tasks waiting for room
    /// (feature `async`) count here too, while registered in `room_tasks`.
    pub(super) blocked_writers: usize,
    #[cfg(feature = "async")]
    pub(super) room_tasks: crate::wait::WakerSet,
    /// The most entries the run at the back may hold: a batch's size, or while the worker
    /// waits with a partial batch, the room left in it. A run is taken whole, so a run larger
    /// than that room could never join the batch: it would be cut off into the next one, and
    /// with no timeout the partial batch would wait for entries that went to that run.
    run_limit: usize,
}

/// A batch: the entries, and in the same order their acks, each with how many consecutive
/// entries it answers for (1, or a group's length).
struct Batch {
    entries: Vec<Entry>,
    acks: Vec<(AckSender, usize)>,
}

impl Batch {
    fn with_capacity(n: usize) -> Self {
        Batch {
            entries: Vec::with_capacity(n),
            acks: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn push(&mut self, item: Item) {
        match item {
            Item::Run(entries, ack, _) | Item::Group(entries, ack) => {
                self.acks.push((ack, entries.len()));
                if self.entries.is_empty() {
                    self.entries = entries;
                } else {
                    self.entries.extend(entries);
                }
            }
        }
    }

    fn resolve_all(self, result: &Result<(), ProducerError>) {
        for (ack, _) in self.acks {
            ack.resolve(result.clone());
        }
    }
}

/// What [`Shared::next_batch`] found.
enum Next {
    /// A batch to write.
    Write(Batch),
    /// The producer closed; these entries (the batch being built) get `Closed`.
    Closed(Batch),
}

impl Shared {
    pub(super) fn new(capacity: usize, batch: usize) -> Self {
        Shared {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity),
                queued: 0,
                closed: false,
                worker_waiting: false,
                blocked_writers: 0,
                run_limit: batch.max(1),
                #[cfg(feature = "async")]
                room_tasks: crate::wait::WakerSet::default(),
            }),
            worker_wake: Condvar::new(),
            room: Condvar::new(),
            capacity,
            run: batch.max(1),
        }
    }

    /// Queues `entry`, waiting for room until `deadline`; the writer's side.
    pub(super) fn push(&self, entry: Entry, deadline: Deadline) -> Result<Ack, ProducerError> {
        let state = self.room_for(1, deadline)?;
        Ok(self.enqueue(state, entry))
    }

    /// Queues `entry` in the locked `state`, which has room for it.
    pub(super) fn enqueue(&self, mut state: MutexGuard<'_, State>, entry: Entry) -> Ack {
        let run_limit = state.run_limit;
        let ack = match state.queue.back_mut() {
            Some(Item::Run(entries, _, ack)) if entries.len() < run_limit => {
                entries.push(entry);
                ack.clone()
            }
            _ => {
                let (sender, ack) = ack::pair();
                let mut entries = Vec::with_capacity(self.run.min(1024));
                entries.push(entry);
                state
                    .queue
                    .push_back(Item::Run(entries, sender, ack.clone()));
                ack
            }
        };
        self.queued_in(state, 1);
        ack
    }

    /// Queues `entries` as one group with one ack, waiting until `deadline` for room for all
    /// of them (for a group larger than the queue, for an empty queue).
    pub(super) fn push_group(
        &self,
        entries: Vec<Entry>,
        deadline: Deadline,
    ) -> Result<Ack, ProducerError> {
        let state = self.room_for(entries.len(), deadline)?;
        Ok(self.enqueue_group(state, entries))
    }

    /// Queues `entries` as one group in the locked `state`, which has room for them.
    pub(super) fn enqueue_group(
        &self,
        mut state: MutexGuard<'_, State>,
        entries: Vec<Entry>,
    ) -> Ack {
        let n = entries.len();
        let (sender, ack) = ack::pair();
        state.queue.push_back(Item::Group(entries, sender));
        self.queued_in(state, n);
        ack
    }

    /// Waits until `deadline` for room for `n` entries; returns the locked state to put them
    /// in.
    fn room_for(
        &self,
        n: usize,
        deadline: Deadline,
    ) -> Result<MutexGuard<'_, State>, ProducerError> {
        let until = deadline.instant();
        let mut state = lock(&self.state);
        loop {
            if state.closed {
                return Err(ProducerError::Closed);
            }
            if state.queued + n <= self.capacity || state.queued == 0 {
                return Ok(state);
            }
            if deadline.has_passed() || until.is_some_and(|at| Instant::now() >= at) {
                return Err(ProducerError::Timeout);
            }
            state.blocked_writers += 1;
            state = wait_on(&self.room, state, until);
            state.blocked_writers -= 1;
        }
    }

    /// Counts `n` entries just put in the queue and wakes a waiting worker.
    ///
    /// The lock is released before the notify: a worker woken while the writer still held it
    /// would run (often on the writer's core, preempting it), find the lock taken and sleep
    /// again until the unlock woke it a second time.
    fn queued_in(&self, mut state: MutexGuard<'_, State>, n: usize) {
        state.queued += n;
        // Once: the writes behind this one find the worker already woken.
        let wake = mem::take(&mut state.worker_waiting);
        drop(state);
        if wake {
            self.worker_wake.notify_one();
        }
    }

    /// Closes the queue: later writes fail, every waiter wakes, and what was queued gets
    /// `Closed`. Idempotent.
    pub(super) fn close(&self) {
        let queued = {
            let mut state = lock(&self.state);
            state.closed = true;
            state.queued = 0;
            #[cfg(feature = "async")]
            state.wake_room_tasks();
            mem::take(&mut state.queue)
        };
        self.worker_wake.notify_all();
        self.room.notify_all();
        // Resolved outside the lock: a waiter woken by its ack never meets a held queue lock.
        for item in queued {
            item.into_ack().resolve(Err(ProducerError::Closed));
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Entries queued and not yet taken by the worker.
    pub(super) fn queued(&self) -> usize {
        lock(&self.state).queued
    }

    /// Waits for the first entry, then collects up to `batch` entries or until `timeout`
    /// has passed since the first one was taken.
    fn next_batch(&self, settings: &Settings) -> Next {
        let mut batch = Batch::with_capacity(settings.batch.min(1024));
        let mut state = lock(&self.state);
        // The first entry.
        while state.queue.is_empty() {
            if state.closed {
                return Next::Closed(batch);
            }
            state.worker_waiting = true;
            state = wait_on(&self.worker_wake, state, None);
            state.worker_waiting = false;
        }
        let until = match settings.timeout {
            Duration::ZERO => None,
            timeout => Instant::now().checked_add(timeout),
        };
        loop {
            // Whole items only: a group goes into one write even when it is larger than a
            // batch (then alone, or after what the batch holds if it fits).
            let mut took = false;
            // The next item does not fit: waiting cannot add anything in front of it.
            let mut blocked = false;
            while let Some(front) = state.queue.front() {
                let n = front.len();
                if batch.len() > 0 && batch.len() + n > settings.batch {
                    blocked = true;
                    break;
                }
                let Some(item) = state.queue.pop_front() else {
                    break;
                };
                state.queued -= n;
                batch.push(item);
                took = true;
                if batch.len() >= settings.batch {
                    break;
                }
            }
            let wake_writers = took && state.blocked_writers > 0;
            #[cfg(feature = "async")]
            if wake_writers {
                state.wake_room_tasks();
            }
            let closed = state.closed;
            if closed
                || blocked
                || batch.len() >= settings.batch
                || settings.timeout.is_zero()
                || until.is_some_and(|at| Instant::now() >= at)
            {
                if !closed {
                    state.run_limit = self.run;
                }
                // Writers waiting for room are woken once the lock is free: woken under it,
                // each would run (often on this core, preempting the worker), find the lock
                // taken, and sleep until the unlock woke it again (two context switches per
                // batch on each side, `perf record -e sched:sched_switch`).
                drop(state);
                if wake_writers {
                    self.room.notify_all();
                }
                return if closed {
                    Next::Closed(batch)
                } else {
                    Next::Write(batch)
                };
            }
            if wake_writers {
                // About to wait for more entries: the writers must be on their way first.
                self.room.notify_all();
            }
            // The queue is empty: the runs queued while the worker waits fit in the batch.
            state.run_limit = settings.batch - batch.len();
            state.worker_waiting = true;
            state = wait_on(&self.worker_wake, state, until);
            state.worker_waiting = false;
        }
    }

    /// Waits `delay` before a retry; returns `true` (at once) if the producer closes meanwhile.
    fn pause(&self, delay: Duration) -> bool {
        let until = Instant::now().checked_add(delay);
        let mut state = lock(&self.state);
        loop {
            if state.closed {
                return true;
            }
            if until.is_some_and(|at| Instant::now() >= at) {
                return false;
            }
            state = wait_on(&self.worker_wake, state, until);
        }
    }
}

/// Closes the queue when the worker ends, also by a panic in the sink: writes then fail
/// with `Closed` instead of queueing for a worker that is gone.
struct CloseOnExit<'a>(&'a Shared);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The worker thread's body: batches until the producer closes.
pub(super) fn run<S: BatchSink>(shared: &Shared, mut sink: S, settings: Settings) {
    let _close = CloseOnExit(shared);
    loop {
        match shared.next_batch(&settings) {
            Next::Write(batch) => write(shared, &mut sink, &settings, batch),
            Next::Closed(batch) => {
                batch.resolve_all(&Err(ProducerError::Closed));
                return;
            }
        }
    }
}

/// Writes one batch (filtered, retried as configured) and resolves its acks.
fn write<S: BatchSink>(shared: &Shared, sink: &mut S, settings: &Settings, mut batch: Batch) {
    let mut retries = 0;
    let result = loop {
        if settings.filter {
            batch = filter(batch, sink.head());
        }
        if batch.entries.is_empty() {
            break Ok(());
        }
        match sink.write_batch(&batch.entries) {
            Ok(()) => break Ok(()),
            Err(LedgerError::LimitReached { .. }) if retries < settings.retry => {
                retries += 1;
                tracing::debug!(
                    retry = retries,
                    of = settings.retry,
                    delay = ?settings.delay,
                    entries = batch.entries.len(),
                    "the ledger is full: the producer retries the batch"
                );
                if shared.pause(settings.delay) {
                    break Err(ProducerError::Closed);
                }
            }
            Err(error) => {
                tracing::warn!(
                    error = %crate::error_chain(&error),
                    entries = batch.entries.len(),
                    retries,
                    "the producer's batch was refused"
                );
                break Err(ProducerError::Ledger(StdArc::new(error)));
            }
        }
    };
    batch.resolve_all(&result);
}

/// Drops every entry whose sequence is not above the ledger's head or above the entry kept
/// before it in the batch (both are entries the ledger already has or would refuse as a
/// duplicate); an ack none of whose entries is kept is resolved `Ok`.
fn filter(batch: Batch, head: u64) -> Batch {
    let mut kept = Batch::with_capacity(batch.len());
    let mut last = head;
    let mut entries = batch.entries.into_iter();
    for (ack, n) in batch.acks {
        let before = kept.entries.len();
        for entry in entries.by_ref().take(n) {
            if entry.sequence > last {
                last = entry.sequence;
                kept.entries.push(entry);
            }
        }
        match kept.entries.len() - before {
            0 => ack.resolve(Ok(())),
            count => kept.acks.push((ack, count)),
        }
    }
    kept
}
