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

use ringledger_core::{mpsc, Full};

use super::{PopError, PushError, Signals, TryPopError, TryPushError};
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::wait::{CancelToken, Deadline};

/// Creates a blocking MPSC buffer of `capacity` items and returns a producer and the consumer.
///
/// # Panics
/// If `capacity` is not a power of two of at least 2 (as [`mpsc::channel`]).
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

struct Shared {
    signals: Signals,
    /// Live producer handles; the last one to go closes the buffer.
    producers: AtomicUsize,
}

/// A writing end of a blocking MPSC buffer; clone it for more producers.
pub struct Producer<'a, T> {
    ring: mpsc::Producer<'a, T>,
    shared: Arc<Shared>,
}

/// The reading end of a blocking MPSC buffer. Dropping it closes the buffer.
pub struct Consumer<'a, T> {
    ring: mpsc::Consumer<'a, T>,
    shared: Arc<Shared>,
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
    /// Pushes `item` if there is room now; never waits.
    #[inline]
    pub fn try_push(&self, item: T) -> Result<(), TryPushError<T>> {
        let signals = &self.shared.signals;
        if signals.is_closed() {
            return Err(TryPushError::Closed(item));
        }
        match self.ring.push(item) {
            Ok(()) => {
                signals.not_empty.notify();
                Ok(())
            }
            Err(Full(item)) => Err(TryPushError::Full(item)),
        }
    }

    /// Pushes `item`, waiting for room until `deadline`.
    #[inline]
    pub fn push(&self, item: T, deadline: Deadline) -> Result<(), PushError<T>> {
        self.push_until(item, deadline, None)
    }

    /// Pushes `item`, waiting for room until `deadline` or until `cancel` is cancelled.
    pub fn push_cancellable(
        &self,
        item: T,
        deadline: Deadline,
        cancel: &CancelToken,
    ) -> Result<(), PushError<T>> {
        self.push_until(item, deadline, Some(cancel))
    }

    #[inline]
    fn push_until(
        &self,
        item: T,
        deadline: Deadline,
        cancel: Option<&CancelToken>,
    ) -> Result<(), PushError<T>> {
        match self.try_push(item) {
            Ok(()) => Ok(()),
            Err(TryPushError::Closed(item)) => Err(PushError::Closed(item)),
            Err(TryPushError::Full(item)) => self.push_slow(item, deadline, cancel),
        }
    }

    #[cold]
    fn push_slow(
        &self,
        item: T,
        deadline: Deadline,
        cancel: Option<&CancelToken>,
    ) -> Result<(), PushError<T>> {
        let signals = &self.shared.signals;
        let mut pending = Some(item);
        let outcome = signals.not_full.wait_until(deadline, cancel, || {
            let item = pending.take()?;
            if signals.is_closed() {
                return Some(Err(PushError::Closed(item)));
            }
            match self.ring.push(item) {
                Ok(()) => Some(Ok(())),
                Err(Full(item)) => {
                    pending = Some(item);
                    None
                }
            }
        });
        match outcome {
            Ok(Ok(())) => {
                signals.not_empty.notify();
                Ok(())
            }
            Ok(Err(closed)) => Err(closed),
            Err(error) => match pending {
                Some(item) => Err(PushError::from_wait(error, item)),
                None => unreachable!("a failed wait leaves the item with the caller"),
            },
        }
    }

    /// Closes the buffer for every endpoint: pushes fail from now on, and every waiter wakes.
    pub fn close(&self) {
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
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        if let Some(item) = self.ring.pop() {
            self.shared.signals.not_full.notify();
            return Ok(item);
        }
        if !self.shared.signals.is_closed() {
            return Err(TryPopError::Empty);
        }
        // Pushes that completed before the close are visible now.
        match self.ring.pop() {
            Some(item) => {
                self.shared.signals.not_full.notify();
                Ok(item)
            }
            None => Err(TryPopError::Closed),
        }
    }

    /// Pops the oldest item, waiting until `deadline` for one.
    #[inline]
    pub fn pop(&mut self, deadline: Deadline) -> Result<T, PopError> {
        self.pop_until(deadline, None)
    }

    /// Pops the oldest item, waiting until `deadline` or until `cancel` is cancelled.
    pub fn pop_cancellable(
        &mut self,
        deadline: Deadline,
        cancel: &CancelToken,
    ) -> Result<T, PopError> {
        self.pop_until(deadline, Some(cancel))
    }

    #[inline]
    fn pop_until(
        &mut self,
        deadline: Deadline,
        cancel: Option<&CancelToken>,
    ) -> Result<T, PopError> {
        match self.try_pop() {
            Ok(item) => Ok(item),
            Err(TryPopError::Closed) => Err(PopError::Closed),
            Err(TryPopError::Empty) => {
                let mut item = None;
                self.pop_many_slow(1, deadline, cancel, &mut |popped| item = Some(popped))?;
                item.ok_or(PopError::Closed)
            }
        }
    }

    /// Pops up to `max` items into `f`, oldest first, waiting until `deadline` for the first.
    /// Returns how many were popped (at least one).
    pub fn pop_many(
        &mut self,
        max: usize,
        deadline: Deadline,
        mut f: impl FnMut(T),
    ) -> Result<usize, PopError> {
        let max = max.max(1);
        let popped = self.ring.pop_many(max, &mut f);
        if popped > 0 {
            self.shared.signals.not_full.notify();
            return Ok(popped);
        }
        self.pop_many_slow(max, deadline, None, &mut f)
    }

    #[cold]
    fn pop_many_slow(
        &mut self,
        max: usize,
        deadline: Deadline,
        cancel: Option<&CancelToken>,
        f: &mut dyn FnMut(T),
    ) -> Result<usize, PopError> {
        let Consumer { ring, shared } = self;
        let signals = &shared.signals;
        let outcome = signals.not_empty.wait_until(deadline, cancel, || {
            let popped = ring.pop_many(max, &mut *f);
            if popped > 0 {
                return Some(Ok(popped));
            }
            if signals.is_closed() {
                let popped = ring.pop_many(max, &mut *f);
                return Some(if popped > 0 {
                    Ok(popped)
                } else {
                    Err(PopError::Closed)
                });
            }
            None
        });
        let popped = outcome??;
        signals.not_full.notify();
        Ok(popped)
    }

    /// Closes the buffer: pushes fail from now on, and every waiter wakes up. Items already
    /// in the buffer can still be popped.
    pub fn close(&self) {
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

impl<T> Drop for Producer<'_, T> {
    fn drop(&mut self) {
        if self.shared.producers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.signals.close();
        }
    }
}

impl<T> Drop for Consumer<'_, T> {
    fn drop(&mut self) {
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
