//! Blocking buffers: Ensign's event buffers done right, over the lock-free core rings.
//!
//! [`spsc::channel`] and [`mpsc::channel`] wrap the rings of `ringledger_core` with endpoints
//! whose `push`/`pop` wait until a [`Deadline`] (optionally also until a
//! [`CancelToken`] is cancelled), `try_*` forms that never wait, and
//! a `close()` that wakes every waiter: pops then drain what is left and report
//! [`Closed`](PopError::Closed); pushes hand their item back in [`PushError::Closed`]. Dropping
//! the consumer, or the last producer, closes the buffer.
//!
//! Waiting costs nothing on the fast path: a push or pop is the ring operation plus the
//! [`Waiters::notify`](crate::wait::Waiters::notify) protocol: a barrier (only a compiler barrier
//! on Linux, where sleepers pay with `membarrier`; a full fence elsewhere) and a load of a line
//! nobody writes while nobody sleeps. No mutex is taken and no notification is sent unless a
//! thread is actually asleep on the other side.
//!
//! A push that returns `Ok` is popped by a consumer that pops until `Closed`, also when it
//! raced `close()`: the MPSC ring claims a slot and checks the closed flag in one
//! compare-and-swap, and the consumer reports `Closed` only once every push that claimed a slot
//! before the close has landed and been popped. On the SPSC buffer the producer is one thread,
//! so a close by the producer is ordered after its pushes; when the *consumer* closes, a push
//! racing that close may still land (after the consumer's last pop) and is dropped with the
//! buffer, as in `std::sync::mpsc` when the receiver goes away. A push that starts after
//! `close()` returned always fails.
//!
//! ```
//! use ringledger::blocking::{spsc, PopError};
//! use ringledger::wait::Deadline;
//!
//! let (mut producer, mut consumer) = spsc::channel::<u32>(4);
//! let t = std::thread::spawn(move || {
//!     for i in 0..100 {
//!         producer.push(i, Deadline::Forever).unwrap(); // waits while the ring is full
//!     }
//!     // dropping the producer closes the buffer
//! });
//! for i in 0..100 {
//!     assert_eq!(consumer.pop(Deadline::Forever), Ok(i));
//! }
//! assert_eq!(consumer.pop(Deadline::Forever), Err(PopError::Closed));
//! t.join().unwrap();
//! ```

#[cfg(feature = "async")]
mod asynch;
pub mod mpsc;
pub mod spsc;

#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub use asynch::{Pop, PopMany, PopStream, Push, PushSink};

use std::fmt;

use crate::sync::{AtomicBool, Ordering};

use crate::wait::{CancelToken, Deadline, WaitError, Waiters};

/// Why [`try_push`](spsc::Producer::try_push) did not push. The item is handed back.
///
/// ```
/// use ringledger::blocking::{spsc, TryPushError};
///
/// let (mut producer, consumer) = spsc::channel::<&str>(1);
/// producer.try_push("first").unwrap();
/// let mut dropped = Vec::new();
/// match producer.try_push("second") {
///     Ok(()) => {}
///     Err(TryPushError::Full(event)) => dropped.push(event), // shed load instead of waiting
///     Err(TryPushError::Closed(_)) => unreachable!("the consumer is alive"),
/// }
/// assert_eq!(dropped, ["second"]);
/// drop(consumer); // closes the buffer
/// assert_eq!(producer.try_push("third"), Err(TryPushError::Closed("third")));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryPushError<T> {
    /// The buffer is full right now.
    #[error("buffer is full")]
    Full(T),
    /// The buffer was closed.
    #[error("buffer is closed")]
    Closed(T),
}

/// Why [`push`](spsc::Producer::push) did not push. The item is handed back.
///
/// ```
/// use std::time::Duration;
/// use ringledger::blocking::{spsc, PushError};
/// use ringledger::wait::Deadline;
///
/// let (mut producer, _consumer) = spsc::channel::<u32>(1);
/// producer.push(1, Deadline::Forever).unwrap();
/// match producer.push(2, Deadline::Timeout(Duration::from_millis(5))) {
///     Ok(()) => unreachable!("nobody pops"),
///     Err(PushError::TimedOut(item)) => assert_eq!(item, 2), // the consumer is stuck
///     Err(PushError::Cancelled(_) | PushError::Closed(_)) => unreachable!(),
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError<T> {
    /// The buffer stayed full until the deadline.
    #[error("timed out waiting for room in the buffer")]
    TimedOut(T),
    /// The cancel token was cancelled while waiting.
    #[error("cancelled while waiting for room in the buffer")]
    Cancelled(T),
    /// The buffer was closed.
    #[error("buffer is closed")]
    Closed(T),
}

/// Why [`try_pop`](spsc::Consumer::try_pop) returned nothing.
///
/// ```
/// use ringledger::blocking::{spsc, TryPopError};
///
/// let (mut producer, mut consumer) = spsc::channel::<u32>(4);
/// producer.try_push(1).unwrap();
/// drop(producer); // closes the buffer; what it holds can still be popped
/// let mut got = Vec::new();
/// loop {
///     match consumer.try_pop() {
///         Ok(item) => got.push(item),
///         Err(TryPopError::Empty) => unreachable!("the producer is gone"), // else: poll later
///         Err(TryPopError::Closed) => break,
///     }
/// }
/// assert_eq!(got, [1]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TryPopError {
    /// The buffer is empty right now.
    #[error("buffer is empty")]
    Empty,
    /// The buffer was closed and everything in it has been taken.
    #[error("buffer is closed")]
    Closed,
}

/// Why [`pop`](spsc::Consumer::pop) returned nothing.
///
/// ```
/// use std::time::Duration;
/// use ringledger::blocking::{spsc, PopError};
/// use ringledger::wait::Deadline;
///
/// let (producer, mut consumer) = spsc::channel::<u32>(4);
/// let tick = Deadline::Timeout(Duration::from_millis(5));
/// let mut idle_ticks = 0;
/// loop {
///     match consumer.pop(tick) {
///         Ok(_item) => {}
///         Err(PopError::TimedOut) => {
///             idle_ticks += 1; // housekeeping while idle, then wait again
///             if idle_ticks == 2 {
///                 producer.close();
///             }
///         }
///         Err(PopError::Closed) => break,
///         Err(PopError::Cancelled) => unreachable!("no cancel token given"),
///     }
/// }
/// assert_eq!(idle_ticks, 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PopError {
    /// The buffer stayed empty until the deadline.
    #[error("timed out waiting for an item")]
    TimedOut,
    /// The cancel token was cancelled while waiting.
    #[error("cancelled while waiting for an item")]
    Cancelled,
    /// The buffer was closed and everything in it has been taken.
    #[error("buffer is closed")]
    Closed,
}

impl<T> TryPushError<T> {
    /// The item that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            TryPushError::Full(item) | TryPushError::Closed(item) => item,
        }
    }
}

impl<T> PushError<T> {
    /// The item that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::TimedOut(item) | PushError::Cancelled(item) | PushError::Closed(item) => {
                item
            }
        }
    }

    fn from_wait(error: WaitError, item: T) -> Self {
        match error {
            WaitError::TimedOut => PushError::TimedOut(item),
            WaitError::Cancelled => PushError::Cancelled(item),
        }
    }
}

impl From<WaitError> for PopError {
    fn from(error: WaitError) -> Self {
        match error {
            WaitError::TimedOut => PopError::TimedOut,
            WaitError::Cancelled => PopError::Cancelled,
        }
    }
}

// Debug without requiring `T: Debug`, like std's `SendError`.
impl<T> fmt::Debug for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryPushError::Full(_) => "Full(..)",
            TryPushError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::TimedOut(_) => "TimedOut(..)",
            PushError::Cancelled(_) => "Cancelled(..)",
            PushError::Closed(_) => "Closed(..)",
        })
    }
}

/// What a pop from the ring found.
enum Take<R> {
    /// An item, or a batch.
    Taken(R),
    /// Nothing.
    Empty,
    /// Nothing yet, but the ring is closed and a push that claimed its slot before the close
    /// is still writing its item: the consumer must wait for it before it reports `Closed`.
    InFlight,
}

impl<R> Take<R> {
    /// From a ring that cannot have pushes in flight at a close.
    fn from_option(taken: Option<R>) -> Self {
        taken.map_or(Take::Empty, Take::Taken)
    }
}

/// What the two sides of a blocking buffer share besides the ring: the closed flag and the
/// sleepers on each side. Read-mostly: nothing here is written while nobody sleeps.
#[derive(Debug, Default)]
struct Signals {
    closed: AtomicBool,
    /// The consumer sleeps here while the ring is empty.
    not_empty: Waiters,
    /// Producers sleep here while the ring is full.
    not_full: Waiters,
}

impl Signals {
    fn new() -> Self {
        Signals {
            closed: AtomicBool::new(false),
            not_empty: Waiters::new(),
            not_full: Waiters::new(),
        }
    }

    #[inline]
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.not_empty.notify();
        self.not_full.notify();
    }

    /// The push protocol, for any ring producer: `push` puts the item in the ring or hands it
    /// back (full, or closed: a ring that can close refuses in the same step that would
    /// claim a slot, so an `Ok` push is never lost to a racing close). Fails at once when
    /// closed; wakes the consumer on success. Never waits.
    #[inline]
    fn try_push<T>(
        &self,
        item: T,
        push: impl FnOnce(T) -> Result<(), TryPushError<T>>,
    ) -> Result<(), TryPushError<T>> {
        if self.is_closed() {
            return Err(TryPushError::Closed(item));
        }
        push(item)?;
        self.not_empty.notify();
        Ok(())
    }

    /// [`try_push`](Self::try_push), then waits for room until `deadline` or `cancel`.
    #[inline]
    fn push<T>(
        &self,
        item: T,
        deadline: Deadline,
        cancel: Option<&CancelToken>,
        mut push: impl FnMut(T) -> Result<(), TryPushError<T>>,
    ) -> Result<(), PushError<T>> {
        match self.try_push(item, &mut push) {
            Ok(()) => Ok(()),
            Err(TryPushError::Closed(item)) => Err(PushError::Closed(item)),
            Err(TryPushError::Full(item)) => self.push_slow(item, deadline, cancel, &mut push),
        }
    }

    #[cold]
    fn push_slow<T>(
        &self,
        item: T,
        deadline: Deadline,
        cancel: Option<&CancelToken>,
        push: &mut dyn FnMut(T) -> Result<(), TryPushError<T>>,
    ) -> Result<(), PushError<T>> {
        let mut pending = Some(item);
        let outcome = self.not_full.wait_until(deadline, cancel, || {
            let item = pending.take()?;
            if self.is_closed() {
                return Some(Err(PushError::Closed(item)));
            }
            match push(item) {
                Ok(()) => Some(Ok(())),
                Err(TryPushError::Closed(item)) => Some(Err(PushError::Closed(item))),
                Err(TryPushError::Full(item)) => {
                    pending = Some(item);
                    None
                }
            }
        });
        match outcome {
            Ok(Ok(())) => {
                self.not_empty.notify();
                Ok(())
            }
            Ok(Err(closed)) => Err(closed),
            Err(error) => match pending {
                Some(item) => Err(PushError::from_wait(error, item)),
                None => unreachable!("a failed wait leaves the item with the caller"),
            },
        }
    }

    /// The pop protocol, for any ring consumer: `pop` takes what is ready (one item, or a
    /// batch), or says the ring is empty, or that it is empty but a push that claimed its
    /// slot before a close is still writing ([`Take::InFlight`]). Wakes producers on success.
    /// Never waits.
    #[inline]
    fn try_pop<R>(&self, mut pop: impl FnMut() -> Take<R>) -> Result<R, TryPopError> {
        if let Take::Taken(taken) = pop() {
            self.not_full.notify();
            return Ok(taken);
        }
        if !self.is_closed() {
            return Err(TryPopError::Empty);
        }
        // Pushes that completed before the close are visible now: look once more.
        match pop() {
            Take::Taken(taken) => {
                self.not_full.notify();
                Ok(taken)
            }
            Take::Empty => Err(TryPopError::Closed),
            Take::InFlight => Err(TryPopError::Empty),
        }
    }

    /// [`try_pop`](Self::try_pop), then waits for an item until `deadline` or `cancel`.
    #[inline]
    fn pop<R>(
        &self,
        deadline: Deadline,
        cancel: Option<&CancelToken>,
        mut pop: impl FnMut() -> Take<R>,
    ) -> Result<R, PopError> {
        match self.try_pop(&mut pop) {
            Ok(taken) => Ok(taken),
            Err(TryPopError::Closed) => Err(PopError::Closed),
            Err(TryPopError::Empty) => self.pop_slow(deadline, cancel, &mut pop),
        }
    }

    #[cold]
    fn pop_slow<R>(
        &self,
        deadline: Deadline,
        cancel: Option<&CancelToken>,
        pop: &mut dyn FnMut() -> Take<R>,
    ) -> Result<R, PopError> {
        let outcome = self.not_empty.wait_until(deadline, cancel, || {
            if let Take::Taken(taken) = pop() {
                return Some(Ok(taken));
            }
            if self.is_closed() {
                // A push still on its way notifies when it lands.
                return match pop() {
                    Take::Taken(taken) => Some(Ok(taken)),
                    Take::Empty => Some(Err(PopError::Closed)),
                    Take::InFlight => None,
                };
            }
            None
        });
        let taken = outcome??;
        self.not_full.notify();
        Ok(taken)
    }
}
