//! [`Ack`]: the handle through which a [`Producer`](super::Producer) reports what became of
//! one entry, and the one-shot sender the worker resolves it with.
//!
//! quasar takes a callback per entry and calls it on the producer's goroutine. A handle is
//! better in Rust:
//!
//! - the result lands where the caller can wait on it (with a [`Deadline`]), poll it, or
//!   drop it, instead of in a closure that has to ship it back through a channel of its own;
//! - no user code runs on the worker thread, so a slow or panicking callback cannot stall
//!   the batches of every other writer, and a callback cannot deadlock by writing to (or
//!   closing) the producer that is calling it;
//! - it composes with batching: one ledger write resolves every handle of the batch with the
//!   same (shared, cheaply cloned) result.
//!
//! Each entry's result is set exactly once: the worker holds an [`AckSender`] per entry, and
//! resolving consumes it. A sender dropped unresolved (the worker unwound from a panic in a
//! sink) resolves its handle with [`ProducerError::Closed`], so no handle waits forever.

use std::fmt;
use std::time::Instant;

use super::ProducerError;
use crate::sync::{lock, wait_on, Arc, Condvar, Mutex};
use crate::wait::Deadline;

/// The result of one entry handed to [`Producer::write`](super::Producer::write): wait on it
/// with [`wait`](Self::wait) or look with [`try_result`](Self::try_result).
///
/// The result is `Ok(())` once the entry is in the ledger, or was dropped by the producer's
/// [`filter`](super::ProducerConfig::filter) because its sequence was not above the ledger's
/// head (an `Ok` then says "nothing to write", not "stored": a sequence below the head that
/// the ledger skipped stays missing),
/// [`ProducerError::Ledger`] when the ledger refused the entry's batch, and
/// [`ProducerError::Closed`] when the producer was closed before the entry's batch was handed
/// to the ledger. Clones share the same result. Dropping an `Ack` does not cancel the entry.
///
/// ```
/// use std::sync::Arc;
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::producer::{Producer, ProducerConfig};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::wait::Deadline;
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default()).unwrap();
/// let producer = Producer::new(ledger.clone(), ProducerConfig::default()).unwrap();
/// let ack = producer.write(Entry::new(1, "a"), Deadline::Forever).unwrap();
/// ack.wait(Deadline::Forever).unwrap();
/// assert_eq!(ack.try_result().unwrap().ok(), Some(()));
/// assert_eq!(ledger.head(), 1);
/// ```
#[derive(Clone)]
#[must_use = "dropping an ack throws away the result of the write: `wait` for it, or `let _ =` to say so"]
pub struct Ack {
    pub(super) slot: Arc<Slot>,
}

/// Where the worker puts an entry's result and its waiters find it.
pub(super) struct Slot {
    pub(super) state: Mutex<State>,
    ready: Condvar,
}

/// The result, and whether a thread waits for it (only then does resolving notify: a
/// condition variable's notify is a system call even when nobody listens).
#[derive(Default)]
pub(super) struct State {
    pub(super) result: Option<Result<(), ProducerError>>,
    waiting: bool,
    /// Tasks waiting for the result (feature `async`).
    #[cfg(feature = "async")]
    pub(super) tasks: crate::wait::WakerSet,
}

impl Ack {
    /// Waits until the entry's result is known, or until `deadline`, and returns it.
    ///
    /// [`ProducerError::Timeout`] means the deadline passed before the result was known (the
    /// producer never reports `Timeout` as an entry's result): waiting again is fine.
    pub fn wait(&self, deadline: impl Into<Deadline>) -> Result<(), ProducerError> {
        let deadline = deadline.into();
        let until = deadline.instant();
        let mut state = lock(&self.slot.state);
        loop {
            if let Some(result) = state.result.as_ref() {
                return result.clone();
            }
            if deadline.has_passed() || until.is_some_and(|at| Instant::now() >= at) {
                return Err(ProducerError::Timeout);
            }
            // Under the lock, so the resolver (which sets the result under it) sees the flag.
            state.waiting = true;
            state = wait_on(&self.slot.ready, state, until);
        }
    }

    /// The entry's result if it is known; never waits.
    #[must_use]
    pub fn try_result(&self) -> Option<Result<(), ProducerError>> {
        lock(&self.slot.state).result.clone()
    }

    /// Whether the entry's result is known.
    #[must_use]
    pub fn is_done(&self) -> bool {
        lock(&self.slot.state).result.is_some()
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ack")
            .field("result", &self.try_result())
            .finish()
    }
}

/// The worker's side of one [`Ack`]: resolving it consumes it, so a result is set once.
pub(super) struct AckSender {
    slot: Option<Arc<Slot>>,
}

impl Ack {
    /// An ack resolved `Ok` already (an empty batch write).
    pub(super) fn settled() -> Self {
        let (sender, ack) = pair();
        sender.resolve(Ok(()));
        ack
    }
}

/// A new pending [`Ack`] and the sender that resolves it.
pub(super) fn pair() -> (AckSender, Ack) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::default()),
        ready: Condvar::new(),
    });
    (
        AckSender {
            slot: Some(Arc::clone(&slot)),
        },
        Ack { slot },
    )
}

impl AckSender {
    /// Sets the entry's result and wakes whoever waits for it.
    pub(super) fn resolve(mut self, result: Result<(), ProducerError>) {
        if let Some(slot) = self.slot.take() {
            set(&slot, result);
        }
    }
}

impl Drop for AckSender {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            set(&slot, Err(ProducerError::Closed));
        }
    }
}

fn set(slot: &Slot, result: Result<(), ProducerError>) {
    let mut state = lock(&slot.state);
    debug_assert!(state.result.is_none(), "an ack resolved twice");
    if state.result.is_none() {
        state.result = Some(result);
    }
    let waiting = state.waiting;
    #[cfg(feature = "async")]
    let tasks = (!state.tasks.is_empty()).then(|| state.tasks.take());
    drop(state);
    if waiting {
        slot.ready.notify_all();
    }
    #[cfg(feature = "async")]
    tasks.into_iter().flatten().for_each(std::task::Waker::wake);
}
