//! A blocking single-producer single-consumer buffer over [`ringledger_core::spsc`].
//!
//! ```
//! use std::time::Duration;
//! use ringledger::blocking::{spsc, PopError, PushError, TryPopError, TryPushError};
//! use ringledger::wait::Deadline;
//!
//! let (mut producer, mut consumer) = spsc::channel::<&str>(1);
//! producer.try_push("a").unwrap();
//! assert_eq!(producer.try_push("b"), Err(TryPushError::Full("b")));
//! let waited = producer.push("b", Deadline::Timeout(Duration::from_millis(1)));
//! assert_eq!(waited, Err(PushError::TimedOut("b")));
//! assert_eq!(consumer.try_pop(), Ok("a"));
//! assert_eq!(consumer.try_pop(), Err(TryPopError::Empty));
//! producer.close();
//! assert_eq!(producer.try_push("c"), Err(TryPushError::Closed("c")));
//! assert_eq!(consumer.pop(Deadline::Forever), Err(PopError::Closed));
//! ```

use std::fmt;

use ringledger_core::spsc;

use super::{PopError, PushError, Signals, Take, TryPopError, TryPushError};
use crate::sync::Arc;
use crate::wait::{CancelToken, Deadline};
use ringledger_core::Full;

/// Creates a blocking SPSC buffer of `capacity` items and returns its two endpoints.
///
/// # Panics
/// If `capacity` is zero or not a power of two (as [`spsc::channel`]).
///
/// ```
/// use ringledger::blocking::spsc;
/// use ringledger::wait::Deadline;
///
/// let (mut producer, mut consumer) = spsc::channel::<String>(64);
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
    let (producer, consumer) = spsc::channel(capacity);
    from_ring(producer, consumer)
}

/// Adds blocking to the two endpoints of a core ring, such as one living in a `static`.
///
/// ```
/// use ringledger::blocking;
/// use ringledger::core::spsc::Ring;
/// use ringledger::wait::Deadline;
///
/// let mut ring = Ring::<u8, 4>::new();
/// let (producer, consumer) = ring.split();
/// let (mut producer, mut consumer) = blocking::spsc::from_ring(producer, consumer);
/// producer.push(1, Deadline::Forever).unwrap();
/// assert_eq!(consumer.pop(Deadline::Forever), Ok(1));
/// ```
pub fn from_ring<'a, T>(
    ring_producer: spsc::Producer<'a, T>,
    ring_consumer: spsc::Consumer<'a, T>,
) -> (Producer<'a, T>, Consumer<'a, T>) {
    let signals = Arc::new(Signals::new());
    (
        Producer {
            ring: ring_producer,
            signals: Arc::clone(&signals),
        },
        Consumer {
            ring: ring_consumer,
            signals,
        },
    )
}

/// The writing end of a blocking SPSC buffer. Dropping it closes the buffer.
///
/// `Send` but not `Clone`: one thread pushes (for several, see [`mpsc`](super::mpsc)).
///
/// ```
/// use ringledger::blocking::{spsc, PopError};
/// use ringledger::wait::Deadline;
///
/// let (mut producer, mut consumer) = spsc::channel::<u64>(8);
/// let writer = std::thread::spawn(move || {
///     for i in 0..3 {
///         producer.push(i, Deadline::Forever).unwrap();
///     }
/// }); // the producer is dropped here: the buffer closes
/// let got: Vec<u64> = std::iter::from_fn(|| consumer.pop(Deadline::Forever).ok()).collect();
/// assert_eq!(got, [0, 1, 2]);
/// writer.join().unwrap();
/// ```
pub struct Producer<'a, T> {
    pub(super) ring: spsc::Producer<'a, T>,
    pub(super) signals: Arc<Signals>,
}

/// The reading end of a blocking SPSC buffer. Dropping it closes the buffer.
///
/// ```
/// use ringledger::blocking::{spsc, PushError};
/// use ringledger::wait::Deadline;
///
/// let (mut producer, mut consumer) = spsc::channel::<u32>(2);
/// producer.push(1, Deadline::Forever).unwrap();
/// assert_eq!((consumer.len(), consumer.capacity()), (1, 2));
/// assert_eq!(consumer.pop(Deadline::Forever), Ok(1));
/// drop(consumer); // nobody reads any more: pushes fail instead of waiting forever
/// assert_eq!(producer.push(2, Deadline::Forever), Err(PushError::Closed(2)));
/// ```
pub struct Consumer<'a, T> {
    pub(super) ring: spsc::Consumer<'a, T>,
    pub(super) signals: Arc<Signals>,
}

impl<T> Producer<'_, T> {
    /// Pushes `item` if there is room now; never waits.
    ///
    /// ```
    /// use ringledger::blocking::{spsc, PopError, TryPopError};
    /// use ringledger::wait::Deadline;
    /// use std::time::Duration;
    ///
    /// let (mut producer, mut consumer) = spsc::channel::<u32>(4);
    /// for i in 0..4 {
    ///     producer.try_push(i).unwrap();
    /// }
    /// // Full: the item comes back.
    /// assert!(matches!(producer.try_push(9), Err(ringledger::blocking::TryPushError::Full(9))));
    /// assert_eq!(consumer.try_pop(), Ok(0));
    /// ```
    #[inline]
    pub fn try_push(&mut self, item: T) -> Result<(), TryPushError<T>> {
        let Producer { ring, signals } = self;
        signals.try_push(item, |item| {
            ring.push(item)
                .map_err(|Full(item)| TryPushError::Full(item))
        })
    }

    /// Pushes `item`, waiting for room until `deadline`.
    ///
    /// ```
    /// use ringledger::blocking::{spsc, PopError, TryPopError};
    /// use ringledger::wait::Deadline;
    /// use std::time::Duration;
    ///
    /// let (mut producer, mut consumer) = spsc::channel::<u32>(4);
    /// producer.push(1, Deadline::Forever).unwrap();
    /// assert_eq!(consumer.pop(Deadline::from(Duration::from_secs(1))), Ok(1));
    /// ```
    #[inline]
    pub fn push(&mut self, item: T, deadline: Deadline) -> Result<(), PushError<T>> {
        let Producer { ring, signals } = self;
        signals.push(item, deadline, None, |item| {
            ring.push(item)
                .map_err(|Full(item)| TryPushError::Full(item))
        })
    }

    /// Pushes `item`, waiting for room until `deadline` or until `cancel` is cancelled.
    ///
    /// ```
    /// use ringledger::blocking::{spsc, PushError};
    /// use ringledger::wait::{CancelToken, Deadline};
    ///
    /// let (mut producer, _consumer) = spsc::channel::<u32>(1);
    /// producer.push(1, Deadline::Forever).unwrap(); // full from now on
    /// let shutdown = CancelToken::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| shutdown.cancel());
    ///     let pushed = producer.push_cancellable(2, Deadline::Forever, &shutdown);
    ///     assert_eq!(pushed, Err(PushError::Cancelled(2)));
    /// });
    /// ```
    pub fn push_cancellable(
        &mut self,
        item: T,
        deadline: Deadline,
        cancel: &CancelToken,
    ) -> Result<(), PushError<T>> {
        let Producer { ring, signals } = self;
        signals.push(item, deadline, Some(cancel), |item| {
            ring.push(item)
                .map_err(|Full(item)| TryPushError::Full(item))
        })
    }

    /// Closes the buffer: pushes fail from now on, and every waiter wakes up.
    pub fn close(&self) {
        self.signals.close();
    }

    /// Whether the buffer was closed (by either end).
    pub fn is_closed(&self) -> bool {
        self.signals.is_closed()
    }

    /// How many items the buffer holds at most.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// How many items are in the buffer (a snapshot).
    pub fn len(&mut self) -> usize {
        self.ring.len()
    }

    /// Whether the buffer is empty (a snapshot).
    pub fn is_empty(&mut self) -> bool {
        self.ring.is_empty()
    }

    /// Whether the buffer is full (a snapshot).
    pub fn is_full(&mut self) -> bool {
        self.ring.is_full()
    }
}

impl<T> Consumer<'_, T> {
    /// Pops the oldest item if there is one; never waits.
    ///
    /// ```
    /// use ringledger::blocking::{spsc, PopError, TryPopError};
    /// use ringledger::wait::Deadline;
    /// use std::time::Duration;
    ///
    /// let (mut producer, mut consumer) = spsc::channel::<u32>(4);
    /// assert_eq!(consumer.try_pop(), Err(TryPopError::Empty));
    /// producer.try_push(5).unwrap();
    /// assert_eq!(consumer.try_pop(), Ok(5));
    /// ```
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        let Consumer { ring, signals } = self;
        signals.try_pop(|| Take::from_option(ring.pop()))
    }

    /// Pops the oldest item, waiting until `deadline` for one.
    ///
    /// ```
    /// use ringledger::blocking::{spsc, PopError, TryPopError};
    /// use ringledger::wait::Deadline;
    /// use std::time::Duration;
    ///
    /// let (mut producer, mut consumer) = spsc::channel::<u32>(4);
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
        let Consumer { ring, signals } = self;
        signals.pop(deadline, None, || Take::from_option(ring.pop()))
    }

    /// Pops the oldest item, waiting until `deadline` or until `cancel` is cancelled.
    ///
    /// ```
    /// use ringledger::blocking::{spsc, PopError};
    /// use ringledger::wait::{CancelToken, Deadline};
    ///
    /// let (_producer, mut consumer) = spsc::channel::<u32>(4);
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
        let Consumer { ring, signals } = self;
        signals.pop(deadline, Some(cancel), || Take::from_option(ring.pop()))
    }

    /// Closes the buffer: pushes fail from now on, and every waiter wakes up. Items already
    /// in the buffer can still be popped.
    pub fn close(&self) {
        self.signals.close();
    }

    /// Whether the buffer was closed (by either end).
    pub fn is_closed(&self) -> bool {
        self.signals.is_closed()
    }

    /// How many items the buffer holds at most.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// How many items are in the buffer (a snapshot).
    pub fn len(&mut self) -> usize {
        self.ring.len()
    }

    /// Whether the buffer is empty (a snapshot).
    pub fn is_empty(&mut self) -> bool {
        self.ring.is_empty()
    }
}

impl<T> Drop for Producer<'_, T> {
    fn drop(&mut self) {
        self.signals.close();
    }
}

impl<T> Drop for Consumer<'_, T> {
    fn drop(&mut self) {
        self.signals.close();
    }
}

impl<T> fmt::Debug for Producer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::spsc::Producer")
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Consumer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::spsc::Consumer")
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
