//! A blocking multi-producer single-consumer buffer over [`ringledger_core::mpsc`].
//!
//! Producers are `Clone + Send + Sync` and push through `&self`. The buffer closes when the
//! consumer or the last producer is dropped, or when any endpoint calls `close()`.
//!
//! ```
//! use ringledger::blocking::{mpsc, PopError};
//! use ringledger::wait::Deadline;
//!
//! let (producer, mut consumer) = mpsc::channel::<u32>(4);
//! std::thread::scope(|s| {
//!     for p in 0..3 {
//!         let producer = producer.clone();
//!         s.spawn(move || producer.push(p, Deadline::Forever).unwrap());
//!     }
//! });
//! drop(producer);
//! let mut got = Vec::new();
//! while let Ok(n) = consumer.pop_many(8, Deadline::Forever, |item| got.push(item)) {
//!     assert!(n > 0);
//! }
//! got.sort();
//! assert_eq!(got, [0, 1, 2]);
//! assert_eq!(consumer.pop(Deadline::Forever), Err(PopError::Closed));
//! ```

use std::fmt;

use ringledger_core::mpsc;

use super::{PopError, PushError, Signals, Take, TryPopError, TryPushError};
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::wait::{CancelToken, Deadline};

/// Creates a blocking MPSC buffer of `capacity` items and returns a producer and the consumer.
///
/// # Panics
/// If `capacity` is not a power of two of at least 2 (as [`mpsc::channel`]).
///
/// ```
/// use ringledger::blocking::mpsc;
/// use ringledger::wait::Deadline;
///
/// let (producer, mut consumer) = mpsc::channel::<String>(64);
/// let writer = std::thread::spawn(move || {
///     for i in 0..100 {
///         producer.push(format!("event {i}"), Deadline::Forever).unwrap();
///     }
///     producer.close();
/// });
/// let mut seen = 0;
/// while let Ok(event) = consumer.pop(Deadline::Forever) {
///     assert_eq!(event, format!("event {seen}"));
///     seen += 1;
/// }
/// assert_eq!(seen, 100);
/// writer.join().unwrap();
/// ```
pub fn channel<T>(capacity: usize) -> (Producer<'static, T>, Consumer<'static, T>) {
    let (producer, consumer) = mpsc::channel(capacity);
    from_ring(producer, consumer)
}

/// Adds blocking to the two endpoints of a core ring, such as one living in a `static`.
///
/// ```
/// use ringledger::blocking;
/// use ringledger::core::mpsc::Ring;
/// use ringledger::wait::Deadline;
///
/// let mut ring = Ring::<u8, 4>::new();
/// let (producer, consumer) = ring.split();
/// let (producer, mut consumer) = blocking::mpsc::from_ring(producer, consumer);
/// producer.push(1, Deadline::Forever).unwrap();
/// assert_eq!(consumer.pop(Deadline::Forever), Ok(1));
/// ```
pub fn from_ring<'a, T>(
    ring_producer: mpsc::Producer<'a, T>,
    ring_consumer: mpsc::Consumer<'a, T>,
) -> (Producer<'a, T>, Consumer<'a, T>) {
    let shared = Arc::new(Shared {
        signals: Signals::new(),
        producers: AtomicUsize::new(1),
    });
    (
        Producer {
            ring: ring_producer,
            shared: Arc::clone(&shared),
        },
        Consumer {
            ring: ring_consumer,
            shared,
        },
    )
}

pub(super) struct Shared {
    pub(super) signals: Signals,
    /// Live producer handles; the last one to go closes the buffer.
    producers: AtomicUsize,
}

/// A writing end of a blocking MPSC buffer; clone it for more producers.
///
/// The buffer closes when the last clone is dropped (or any endpoint calls `close()`).
///
/// ```
/// use ringledger::blocking::mpsc;
/// use ringledger::wait::Deadline;
///
/// let (producer, mut consumer) = mpsc::channel::<u32>(8);
/// let workers: Vec<_> = (0..2)
///     .map(|w| {
///         let producer = producer.clone();
///         std::thread::spawn(move || producer.push(w, Deadline::Forever).unwrap())
///     })
///     .collect();
/// drop(producer); // the clones keep the buffer open until the workers finish
/// let mut got: Vec<u32> = std::iter::from_fn(|| consumer.pop(Deadline::Forever).ok()).collect();
/// got.sort();
/// assert_eq!(got, [0, 1]);
/// workers.into_iter().for_each(|w| w.join().unwrap());
/// ```
pub struct Producer<'a, T> {
    pub(super) ring: mpsc::Producer<'a, T>,
    pub(super) shared: Arc<Shared>,
}

/// The reading end of a blocking MPSC buffer. Dropping it closes the buffer.
///
/// ```
/// use ringledger::blocking::{mpsc, PushError};
/// use ringledger::wait::Deadline;
///
/// let (producer, mut consumer) = mpsc::channel::<u32>(2);
/// producer.push(1, Deadline::Forever).unwrap();
/// assert_eq!((consumer.len(), consumer.capacity()), (1, 2));
/// assert_eq!(consumer.pop(Deadline::Forever), Ok(1));
/// drop(consumer); // nobody reads any more: pushes fail instead of waiting forever
/// assert_eq!(producer.push(2, Deadline::Forever), Err(PushError::Closed(2)));
/// ```
pub struct Consumer<'a, T> {
    pub(super) ring: mpsc::Consumer<'a, T>,
    pub(super) shared: Arc<Shared>,
}

impl<T> Clone for Producer<'_, T> {
    fn clone(&self) -> Self {
        self.shared.producers.fetch_add(1, Ordering::Relaxed);
        Producer {
            ring: self.ring.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Producer<'_, T> {
    /// Pushes `item` if there is room now; never blocks (a push behind a producer stalled
    /// halfway through its own may yield its time slice once: see
    /// [`ringledger_core::mpsc::Producer::push`]).
    ///
    /// ```
    /// use ringledger::blocking::{mpsc, PopError, TryPopError};
    /// use ringledger::wait::Deadline;
    /// use std::time::Duration;
    ///
    /// let (producer, mut consumer) = mpsc::channel::<u32>(4);
    /// for i in 0..4 {
    ///     producer.try_push(i).unwrap();
    /// }
    /// // Full: the item comes back.
    /// assert!(matches!(producer.try_push(9), Err(ringledger::blocking::TryPushError::Full(9))));
    /// assert_eq!(consumer.try_pop(), Ok(0));
    /// ```
    #[inline]
    pub fn try_push(&self, item: T) -> Result<(), TryPushError<T>> {
        self.shared.signals.try_push(item, |item| {
            self.ring.try_push(item).map_err(TryPushError::from)
        })
    }

    /// Pushes `item`, waiting for room until `deadline`.
    ///
    /// ```
    /// use ringledger::blocking::{mpsc, PopError, TryPopError};
    /// use ringledger::wait::Deadline;
    /// use std::time::Duration;
    ///
    /// let (producer, mut consumer) = mpsc::channel::<u32>(4);
    /// producer.push(1, Deadline::Forever).unwrap();
    /// assert_eq!(consumer.pop(Deadline::from(Duration::from_secs(1))), Ok(1));
    /// ```
    #[inline]
    pub fn push(&self, item: T, deadline: Deadline) -> Result<(), PushError<T>> {
        self.shared.signals.push(item, deadline, None, |item| {
            self.ring.try_push(item).map_err(TryPushError::from)
        })
    }

    /// Pushes `item`, waiting for room until `deadline` or until `cancel` is cancelled.
    ///
    /// ```
    /// use ringledger::blocking::{mpsc, PushError};
    /// use ringledger::wait::{CancelToken, Deadline};
    ///
    /// let (producer, _consumer) = mpsc::channel::<u32>(2);
    /// producer.push(1, Deadline::Forever).unwrap();
    /// producer.push(2, Deadline::Forever).unwrap(); // full from now on
    /// let shutdown = CancelToken::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| shutdown.cancel());
    ///     let pushed = producer.push_cancellable(3, Deadline::Forever, &shutdown);
    ///     assert_eq!(pushed, Err(PushError::Cancelled(3)));
    /// });
    /// ```
    pub fn push_cancellable(
        &self,
        item: T,
        deadline: Deadline,
        cancel: &CancelToken,
    ) -> Result<(), PushError<T>> {
        self.shared
            .signals
            .push(item, deadline, Some(cancel), |item| {
                self.ring.try_push(item).map_err(TryPushError::from)
            })
    }

    /// Closes the buffer for every endpoint: pushes fail from now on, and every waiter wakes.
    pub fn close(&self) {
        self.ring.close();
        self.shared.signals.close();
    }

    /// Whether the buffer was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.signals.is_closed()
    }

    /// How many items the buffer holds at most.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }
}

impl<T> Consumer<'_, T> {
    /// Pops the oldest item if there is one; never waits.
    ///
    /// ```
    /// use ringledger::blocking::{mpsc, PopError, TryPopError};
    /// use ringledger::wait::Deadline;
    /// use std::time::Duration;
    ///
    /// let (producer, mut consumer) = mpsc::channel::<u32>(4);
    /// assert_eq!(consumer.try_pop(), Err(TryPopError::Empty));
    /// producer.try_push(5).unwrap();
    /// assert_eq!(consumer.try_pop(), Ok(5));
    /// ```
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        let Consumer { ring, shared } = self;
        shared.signals.try_pop(|| take(ring.pop(), ring))
    }

    /// Pops the oldest item, waiting until `deadline` for one.
    ///
    /// ```
    /// use ringledger::blocking::{mpsc, PopError, TryPopError};
    /// use ringledger::wait::Deadline;
    /// use std::time::Duration;
    ///
    /// let (producer, mut consumer) = mpsc::channel::<u32>(4);
    /// // Nothing comes: the deadline passes.
    /// assert_eq!(consumer.pop(Deadline::from(Duration::from_millis(10))), Err(PopError::TimedOut));
    /// producer.push(7, Deadline::Forever).unwrap();
    /// producer.close();
    /// // What was pushed before the close is still delivered, then `Closed`.
    /// assert_eq!(consumer.pop(Deadline::Forever), Ok(7));
    /// assert_eq!(consumer.pop(Deadline::Forever), Err(PopError::Closed));
    /// ```
    #[inline]
    pub fn pop(&mut self, deadline: Deadline) -> Result<T, PopError> {
        let Consumer { ring, shared } = self;
        shared
            .signals
            .pop(deadline, None, || take(ring.pop(), ring))
    }

    /// Pops the oldest item, waiting until `deadline` or until `cancel` is cancelled.
    ///
    /// ```
    /// use ringledger::blocking::{mpsc, PopError};
    /// use ringledger::wait::{CancelToken, Deadline};
    ///
    /// let (_producer, mut consumer) = mpsc::channel::<u32>(4);
    /// let shutdown = CancelToken::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| shutdown.cancel());
    ///     let popped = consumer.pop_cancellable(Deadline::Forever, &shutdown);
    ///     assert_eq!(popped, Err(PopError::Cancelled));
    /// });
    /// ```
    pub fn pop_cancellable(
        &mut self,
        deadline: Deadline,
        cancel: &CancelToken,
    ) -> Result<T, PopError> {
        let Consumer { ring, shared } = self;
        shared
            .signals
            .pop(deadline, Some(cancel), || take(ring.pop(), ring))
    }

    /// Pops up to `max` items into `f`, oldest first, waiting until `deadline` for the first.
    /// Returns how many were popped (at least one).
    ///
    /// ```
    /// use ringledger::blocking::{mpsc, PopError};
    /// use ringledger::wait::Deadline;
    ///
    /// let (producer, mut consumer) = mpsc::channel::<u32>(8);
    /// for i in 0..5 {
    ///     producer.push(i, Deadline::Forever).unwrap();
    /// }
    /// drop(producer);
    /// let mut batch = Vec::new();
    /// assert_eq!(consumer.pop_many(3, Deadline::Forever, |item| batch.push(item)), Ok(3));
    /// assert_eq!(consumer.pop_many(3, Deadline::Forever, |item| batch.push(item)), Ok(2));
    /// assert_eq!(batch, [0, 1, 2, 3, 4]);
    /// assert_eq!(consumer.pop_many(3, Deadline::Forever, |_| {}), Err(PopError::Closed));
    /// ```
    pub fn pop_many(
        &mut self,
        max: usize,
        deadline: Deadline,
        mut f: impl FnMut(T),
    ) -> Result<usize, PopError> {
        let max = max.max(1);
        let Consumer { ring, shared } = self;
        shared.signals.pop(deadline, None, || {
            let popped = ring.pop_many(max, &mut f);
            take((popped > 0).then_some(popped), ring)
        })
    }

    /// Closes the buffer: pushes fail from now on, and every waiter wakes up. Items already
    /// in the buffer can still be popped.
    pub fn close(&self) {
        self.ring.close();
        self.shared.signals.close();
    }

    /// Whether the buffer was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.signals.is_closed()
    }

    /// How many items the buffer holds at most.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// How many items are in the buffer (a snapshot).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the buffer is empty (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

/// What a pop from the ring found: nothing, when the ring is closed and not finished, means a
/// push that claimed its slot before the close is still writing.
pub(super) fn take<R, T>(taken: Option<R>, ring: &mpsc::Consumer<'_, T>) -> Take<R> {
    match taken {
        Some(taken) => Take::Taken(taken),
        None if ring.is_closed() && !ring.is_finished() => Take::InFlight,
        None => Take::Empty,
    }
}

impl<T> Drop for Producer<'_, T> {
    fn drop(&mut self) {
        if self.shared.producers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ring.close();
            self.shared.signals.close();
        }
    }
}

impl<T> Drop for Consumer<'_, T> {
    fn drop(&mut self) {
        self.ring.close();
        self.shared.signals.close();
    }
}

impl<T> fmt::Debug for Producer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::mpsc::Producer")
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Consumer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::mpsc::Consumer")
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T> From<mpsc::PushError<T>> for TryPushError<T> {
    fn from(error: mpsc::PushError<T>) -> Self {
        match error {
            mpsc::PushError::Full(item) => TryPushError::Full(item),
            mpsc::PushError::Closed(item) => TryPushError::Closed(item),
        }
    }
}
