//! The blocking buffers for tasks (feature `async`): futures that push and pop, a `Stream` of
//! the consumer's items and a `Sink` for a producer.
//!
//! Each async form is its blocking twin without the deadline: the same fast path (a push that
//! finds room is the ring push, a closed check and [`Waiters::notify`]: no lock, no
//! allocation, nothing registered), the same errors and the same close rules. Only the wait
//! differs: where a thread would park, the task registers its waker in the same
//! [`Waiters`](crate::wait::Waiters) with [`poll_until`](crate::wait::Waiters::poll_until)
//! and returns `Pending`; the push or close that a parked thread would see wakes it. A
//! timeout is the runtime's (`tokio::time::timeout`), which drops the future: every future
//! here can be dropped at any await point (see each method's *Cancel safety*).
//!
//! ```
//! use futures::{SinkExt, StreamExt};
//! use ringledger::blocking::mpsc;
//!
//! let (producer, consumer) = mpsc::channel::<u32>(4);
//! futures::executor::block_on(async move {
//!     let writer = async move {
//!         let mut sink = producer.into_sink();
//!         for i in 0..10 {
//!             sink.send(i).await.unwrap(); // waits while the buffer is full
//!         }
//!         // dropping the sink (the last producer) closes the buffer
//!     };
//!     let reader = consumer.into_stream().collect::<Vec<u32>>();
//!     let ((), got) = futures::join!(writer, reader);
//!     assert_eq!(got, (0..10).collect::<Vec<_>>());
//! });
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[cfg(doc)]
use futures_core::Stream;
#[cfg(doc)]
use futures_sink::Sink;
use ringledger_core::buffer::Full;

use super::{mpsc, spsc, PopError, PushError, Signals, Take, TryPopError, TryPushError};
use crate::wait::TaskSlot;

mod adapters;

pub use adapters::{PopStream, PushSink};

impl Signals {
    /// The async pop protocol: [`try_pop`](Self::try_pop), then registers in `slot` on
    /// `not_empty` and tries once more. Wakes producers on success.
    #[inline]
    fn poll_pop<R>(
        &self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
        mut pop: impl FnMut() -> Take<R>,
    ) -> Poll<Result<R, PopError>> {
        // Read before the pop: its notify's barrier would make the compiler reload it,
        // where here it sees that a fresh future's slot is empty (nothing to undo).
        let registered = slot.is_registered();
        match self.try_pop(&mut pop) {
            Ok(taken) => {
                if registered {
                    self.not_empty.unregister(slot);
                }
                return Poll::Ready(Ok(taken));
            }
            Err(TryPopError::Closed) => {
                self.not_empty.unregister(slot);
                return Poll::Ready(Err(PopError::Closed));
            }
            Err(TryPopError::Empty) => {}
        }
        self.poll_pop_slow(cx, slot, &mut pop)
    }

    #[cold]
    fn poll_pop_slow<R>(
        &self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
        pop: &mut dyn FnMut() -> Take<R>,
    ) -> Poll<Result<R, PopError>> {
        let outcome = self.not_empty.poll_until(cx, slot, None, || {
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
        match outcome {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Ok(taken))) => {
                self.not_full.notify();
                Poll::Ready(Ok(taken))
            }
            Poll::Ready(Ok(Err(closed))) => Poll::Ready(Err(closed)),
            Poll::Ready(Err(wait)) => Poll::Ready(Err(wait.into())),
        }
    }

    /// The async push protocol for the item in `pending` (taken out when pushed or handed
    /// back in an error): [`try_push`](Self::try_push), then registers in `slot` on `not_full`
    /// and tries once more. Wakes the consumer on success. With nothing pending it is `Ok`.
    #[inline]
    fn poll_push<T>(
        &self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
        pending: &mut Option<T>,
        mut push: impl FnMut(T) -> Result<(), TryPushError<T>>,
    ) -> Poll<Result<(), PushError<T>>> {
        let Some(item) = pending.take() else {
            self.not_full.unregister(slot);
            return Poll::Ready(Ok(()));
        };
        // As in `poll_pop`: read before the push's barrier.
        let registered = slot.is_registered();
        match self.try_push(item, &mut push) {
            Ok(()) => {
                if registered {
                    self.not_full.unregister(slot);
                }
                return Poll::Ready(Ok(()));
            }
            Err(TryPushError::Closed(item)) => {
                self.not_full.unregister(slot);
                return Poll::Ready(Err(PushError::Closed(item)));
            }
            Err(TryPushError::Full(item)) => *pending = Some(item),
        }
        self.poll_push_slow(cx, slot, pending, &mut push)
    }

    #[cold]
    fn poll_push_slow<T>(
        &self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
        pending: &mut Option<T>,
        push: &mut dyn FnMut(T) -> Result<(), TryPushError<T>>,
    ) -> Poll<Result<(), PushError<T>>> {
        let outcome = self.not_full.poll_until(cx, slot, None, || {
            let item = pending.take()?;
            if self.is_closed() {
                return Some(Err(PushError::Closed(item)));
            }
            match push(item) {
                Ok(()) => Some(Ok(())),
                Err(TryPushError::Closed(item)) => Some(Err(PushError::Closed(item))),
                Err(TryPushError::Full(item)) => {
                    *pending = Some(item);
                    None
                }
            }
        });
        match outcome {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Ok(()))) => {
                self.not_empty.notify();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(Err(closed))) => Poll::Ready(Err(closed)),
            // No cancel token is given, so this is not reached; the item stays the caller's.
            Poll::Ready(Err(wait)) => match pending.take() {
                Some(item) => Poll::Ready(Err(PushError::from_wait(wait, item))),
                None => Poll::Ready(Ok(())),
            },
        }
    }
}

/// The ends a [`Pop`] future and a [`PopStream`] take items from: the SPSC and MPSC
/// consumers (and `&mut` to them). Sealed: the module that names it is private.
pub trait PopEnd {
    /// The items popped.
    type Item;

    /// Pops an item, or registers the task in `slot` to be woken when there may be one.
    fn poll_pop(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
    ) -> Poll<Result<Self::Item, PopError>>;
}

/// The ends a [`Push`] future and a [`PushSink`] put items in: the SPSC and MPSC producers
/// (and references to them). Sealed: the module that names it is private.
pub trait PushEnd<T> {
    /// Pushes the item in `pending`, or registers the task in `slot` to be woken when there
    /// may be room.
    fn poll_push(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
        pending: &mut Option<T>,
    ) -> Poll<Result<(), PushError<T>>>;

    /// Pushes `item` if there is room now; never waits, never registers.
    fn try_push_item(&mut self, item: T) -> Result<(), TryPushError<T>>;

    /// Closes the buffer.
    fn close_buffer(&self);
}

impl<T> PopEnd for spsc::Consumer<'_, T> {
    type Item = T;

    #[inline]
    fn poll_pop(&mut self, cx: &mut Context<'_>, slot: &mut TaskSlot) -> Poll<Result<T, PopError>> {
        let spsc::Consumer { ring, signals } = self;
        signals.poll_pop(cx, slot, || Take::from_option(ring.pop()))
    }
}

impl<T> PopEnd for mpsc::Consumer<'_, T> {
    type Item = T;

    #[inline]
    fn poll_pop(&mut self, cx: &mut Context<'_>, slot: &mut TaskSlot) -> Poll<Result<T, PopError>> {
        let mpsc::Consumer { ring, shared } = self;
        shared
            .signals
            .poll_pop(cx, slot, || mpsc::take(ring.pop(), ring))
    }
}

impl<C: PopEnd + ?Sized> PopEnd for &mut C {
    type Item = C::Item;

    #[inline]
    fn poll_pop(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
    ) -> Poll<Result<C::Item, PopError>> {
        (**self).poll_pop(cx, slot)
    }
}

impl<T> PushEnd<T> for spsc::Producer<'_, T> {
    #[inline]
    fn poll_push(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
        pending: &mut Option<T>,
    ) -> Poll<Result<(), PushError<T>>> {
        let spsc::Producer { ring, signals } = self;
        signals.poll_push(cx, slot, pending, |item| {
            ring.push(item)
                .map_err(|Full(item)| TryPushError::Full(item))
        })
    }

    fn try_push_item(&mut self, item: T) -> Result<(), TryPushError<T>> {
        self.try_push(item)
    }

    fn close_buffer(&self) {
        self.close();
    }
}

impl<T> PushEnd<T> for &mpsc::Producer<'_, T> {
    #[inline]
    fn poll_push(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
        pending: &mut Option<T>,
    ) -> Poll<Result<(), PushError<T>>> {
        let ring = &self.ring;
        self.shared.signals.poll_push(cx, slot, pending, |item| {
            ring.try_push(item).map_err(TryPushError::from)
        })
    }

    fn try_push_item(&mut self, item: T) -> Result<(), TryPushError<T>> {
        self.try_push(item)
    }

    fn close_buffer(&self) {
        self.close();
    }
}

impl<T> PushEnd<T> for mpsc::Producer<'_, T> {
    #[inline]
    fn poll_push(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
        pending: &mut Option<T>,
    ) -> Poll<Result<(), PushError<T>>> {
        (&*self).poll_push(cx, slot, pending)
    }

    fn try_push_item(&mut self, item: T) -> Result<(), TryPushError<T>> {
        self.try_push(item)
    }

    fn close_buffer(&self) {
        self.close();
    }
}

impl<T, P: PushEnd<T> + ?Sized> PushEnd<T> for &mut P {
    #[inline]
    fn poll_push(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
        pending: &mut Option<T>,
    ) -> Poll<Result<(), PushError<T>>> {
        (**self).poll_push(cx, slot, pending)
    }

    fn try_push_item(&mut self, item: T) -> Result<(), TryPushError<T>> {
        (**self).try_push_item(item)
    }

    fn close_buffer(&self) {
        (**self).close_buffer();
    }
}

/// The future of [`spsc::Consumer::pop_async`] and [`mpsc::Consumer::pop_async`]: the oldest
/// item, or [`PopError::Closed`] once the buffer is closed and empty.
///
/// Polling it again after it completed pops the next item.
///
/// ```
/// use std::time::Duration;
/// use ringledger::blocking::{mpsc, PopError};
///
/// let (producer, mut consumer) = mpsc::channel::<u32>(4);
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// runtime.block_on(async {
///     // Empty: the runtime's timeout drops the future, which took nothing.
///     let idle = tokio::time::timeout(Duration::from_millis(10), consumer.pop_async()).await;
///     assert!(idle.is_err());
///
///     producer.try_push(1).unwrap();
///     producer.try_push(2).unwrap();
///     drop(producer); // the last producer: the buffer closes
///     let mut pop = consumer.pop_async();
///     assert_eq!((&mut pop).await, Ok(1));
///     assert_eq!((&mut pop).await, Ok(2)); // polled again: the next item
///     assert_eq!(pop.await, Err(PopError::Closed));
/// });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Pop<'b, C: ?Sized> {
    end: &'b mut C,
    slot: TaskSlot,
}

impl<C: PopEnd + ?Sized> Future for Pop<'_, C> {
    type Output = Result<C::Item, PopError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.end.poll_pop(cx, &mut this.slot)
    }
}

impl<C: ?Sized> fmt::Debug for Pop<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pop")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

/// The future of [`spsc::Producer::push_async`] and [`mpsc::Producer::push_async`]: `Ok`
/// once the item is in the buffer, or [`PushError::Closed`] with the item.
///
/// Polling it again after it completed pushes nothing and returns `Ok(())`.
///
/// ```
/// use ringledger::blocking::spsc;
///
/// let (mut producer, mut consumer) = spsc::channel::<u32>(1);
/// futures::executor::block_on(async {
///     producer.push_async(1).await.unwrap();
///     let mut push = producer.push_async(2);
///     assert!(futures::poll!(&mut push).is_pending()); // full: it waits for room
///     assert_eq!(consumer.try_pop(), Ok(1)); // the pop wakes it
///     assert_eq!(push.await, Ok(()));
/// });
/// assert_eq!(consumer.try_pop(), Ok(2));
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Push<P, T> {
    end: P,
    item: Option<T>,
    slot: TaskSlot,
}

// The item is moved, never pinned: the future is `Unpin` whatever `T` is.
impl<P: Unpin, T> Unpin for Push<P, T> {}

impl<P: PushEnd<T> + Unpin, T> Future for Push<P, T> {
    type Output = Result<(), PushError<T>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.end.poll_push(cx, &mut this.slot, &mut this.item)
    }
}

impl<P, T> fmt::Debug for Push<P, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Push")
            .field("pushed", &self.item.is_none())
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl<'a, T> spsc::Consumer<'a, T> {
    /// Pops the oldest item, waiting as long as it takes: the async form of
    /// [`pop`](Self::pop) (feature `async`). Fails only with [`PopError::Closed`], once the
    /// buffer is closed and empty; for a timeout, wrap it in the runtime's
    /// (`tokio::time::timeout`).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: the item is taken from the buffer only in the poll that returns it, so
    /// dropping the future (in a `select!`, on a timeout) loses no item, and it leaves no
    /// waker registered.
    ///
    /// ```
    /// use ringledger::blocking::{spsc, PopError};
    ///
    /// let (mut producer, mut consumer) = spsc::channel::<u32>(4);
    /// let writer = std::thread::spawn(move || {
    ///     producer.push(7, ringledger::wait::Deadline::Forever).unwrap();
    /// }); // dropping the producer closes the buffer
    /// futures::executor::block_on(async {
    ///     assert_eq!(consumer.pop_async().await, Ok(7));
    ///     assert_eq!(consumer.pop_async().await, Err(PopError::Closed));
    /// });
    /// writer.join().unwrap();
    /// ```
    pub fn pop_async(&mut self) -> Pop<'_, Self> {
        Pop {
            end: self,
            slot: TaskSlot::new(),
        }
    }

    /// The consumer as a [`Stream`] of its items, which ends once the buffer is closed and
    /// empty (feature `async`).
    ///
    /// ```
    /// use futures::StreamExt;
    /// use ringledger::blocking::spsc;
    ///
    /// let (mut producer, consumer) = spsc::channel::<u32>(4);
    /// producer.try_push(1).unwrap();
    /// producer.try_push(2).unwrap();
    /// drop(producer);
    /// let items: Vec<u32> = futures::executor::block_on(consumer.into_stream().collect());
    /// assert_eq!(items, [1, 2]);
    /// ```
    pub fn into_stream(self) -> PopStream<Self> {
        PopStream {
            end: self,
            slot: TaskSlot::new(),
            done: false,
        }
    }
}

impl<'a, T> mpsc::Consumer<'a, T> {
    /// Pops the oldest item, waiting as long as it takes: the async form of
    /// [`pop`](Self::pop) (feature `async`). Fails only with [`PopError::Closed`], once the
    /// buffer is closed and every push that got in before the close has been popped.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: the item is taken from the buffer only in the poll that returns it, so
    /// dropping the future loses no item, and it leaves no waker registered.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringledger::blocking::mpsc;
    ///
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// runtime.block_on(async {
    ///     let (producer, mut consumer) = mpsc::channel::<u32>(4);
    ///     // Nothing comes: the runtime's timeout drops the future, which loses nothing.
    ///     let waited = tokio::time::timeout(Duration::from_millis(10), consumer.pop_async()).await;
    ///     assert!(waited.is_err());
    ///     tokio::spawn(async move { producer.push_async(5).await.unwrap() });
    ///     assert_eq!(consumer.pop_async().await, Ok(5));
    /// });
    /// ```
    pub fn pop_async(&mut self) -> Pop<'_, Self> {
        Pop {
            end: self,
            slot: TaskSlot::new(),
        }
    }

    /// The consumer as a [`Stream`] of its items, which ends once the buffer is closed and
    /// drained (feature `async`).
    ///
    /// ```
    /// use futures::StreamExt;
    /// use ringledger::blocking::mpsc;
    ///
    /// let runtime = tokio::runtime::Runtime::new().unwrap();
    /// let mut got = runtime.block_on(async {
    ///     let (producer, consumer) = mpsc::channel::<u32>(8);
    ///     for task in 0..4 {
    ///         let producer = producer.clone();
    ///         tokio::spawn(async move { producer.push_async(task).await.unwrap() });
    ///     }
    ///     drop(producer); // the buffer closes when the last task's producer goes
    ///     consumer.into_stream().collect::<Vec<u32>>().await
    /// });
    /// got.sort();
    /// assert_eq!(got, [0, 1, 2, 3]);
    /// ```
    pub fn into_stream(self) -> PopStream<Self> {
        PopStream {
            end: self,
            slot: TaskSlot::new(),
            done: false,
        }
    }
}

/// The future of [`mpsc::Consumer::pop_many_async`]: how many items it handed to the
/// function (at least one), or [`PopError::Closed`]. Polling it again after it completed pops
/// the next batch.
///
/// ```
/// use ringledger::blocking::mpsc;
/// use ringledger::wait::Deadline;
///
/// let (producer, mut consumer) = mpsc::channel::<u32>(4);
/// let writer = std::thread::spawn(move || {
///     for i in 0..10 {
///         producer.push(i, Deadline::Forever).unwrap();
///     }
/// }); // the last producer is dropped: the buffer closes
/// let mut got = Vec::new();
/// futures::executor::block_on(async {
///     let mut batches = consumer.pop_many_async(3, |item| got.push(item));
///     // One future, polled again for each batch, until the buffer is closed and empty.
///     while let Ok(n) = (&mut batches).await {
///         assert!((1..=3).contains(&n));
///     }
/// });
/// writer.join().unwrap();
/// assert_eq!(got, (0..10).collect::<Vec<_>>());
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct PopMany<'b, 'a, T, F> {
    end: &'b mut mpsc::Consumer<'a, T>,
    max: usize,
    f: F,
    slot: TaskSlot,
}

// The function is called, never pinned.
impl<T, F> Unpin for PopMany<'_, '_, T, F> {}

impl<T, F: FnMut(T)> Future for PopMany<'_, '_, T, F> {
    type Output = Result<usize, PopError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (max, f) = (this.max, &mut this.f);
        let mpsc::Consumer { ring, shared } = &mut *this.end;
        shared.signals.poll_pop(cx, &mut this.slot, || {
            let popped = ring.pop_many(max, &mut *f);
            mpsc::take((popped > 0).then_some(popped), ring)
        })
    }
}

impl<T, F> fmt::Debug for PopMany<'_, '_, T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PopMany")
            .field("max", &self.max)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl<'a, T> mpsc::Consumer<'a, T> {
    /// Pops up to `max` items into `f`, oldest first, waiting as long as it takes for the
    /// first: the async form of [`pop_many`](Self::pop_many) (feature `async`). Returns how
    /// many were popped (at least one), or [`PopError::Closed`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: items are popped (and handed to `f`) only in the poll that returns their
    /// count, so dropping the future loses none, and it leaves no waker registered.
    ///
    /// ```
    /// use ringledger::blocking::{mpsc, PopError};
    ///
    /// let (producer, mut consumer) = mpsc::channel::<u32>(8);
    /// for i in 0..5 {
    ///     producer.try_push(i).unwrap();
    /// }
    /// drop(producer);
    /// let mut batch = Vec::new();
    /// futures::executor::block_on(async {
    ///     assert_eq!(consumer.pop_many_async(3, |item| batch.push(item)).await, Ok(3));
    ///     assert_eq!(consumer.pop_many_async(3, |item| batch.push(item)).await, Ok(2));
    ///     assert_eq!(consumer.pop_many_async(3, |_| {}).await, Err(PopError::Closed));
    /// });
    /// assert_eq!(batch, [0, 1, 2, 3, 4]);
    /// ```
    pub fn pop_many_async<F: FnMut(T)>(&mut self, max: usize, f: F) -> PopMany<'_, 'a, T, F> {
        PopMany {
            end: self,
            max: max.max(1),
            f,
            slot: TaskSlot::new(),
        }
    }
}

impl<'a, T> spsc::Producer<'a, T> {
    /// Pushes `item`, waiting as long as it takes for room: the async form of
    /// [`push`](Self::push) (feature `async`). Fails only with [`PushError::Closed`], which
    /// hands the item back.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped before it completes, the item was not pushed and is dropped
    /// with the future; nothing else changes and no waker stays registered. To keep an item
    /// across a `select!`, send it through [`into_sink`](Self::into_sink), which holds it.
    ///
    /// ```
    /// use ringledger::blocking::spsc;
    ///
    /// let (mut producer, mut consumer) = spsc::channel::<u32>(1);
    /// futures::executor::block_on(async {
    ///     producer.push_async(1).await.unwrap();
    ///     assert_eq!(consumer.try_pop(), Ok(1));
    ///     drop(consumer); // closes the buffer
    ///     let refused = producer.push_async(2).await;
    ///     assert_eq!(refused, Err(ringledger::blocking::PushError::Closed(2)));
    /// });
    /// ```
    pub fn push_async(&mut self, item: T) -> Push<&mut Self, T> {
        Push {
            end: self,
            item: Some(item),
            slot: TaskSlot::new(),
        }
    }

    /// The producer as a [`Sink`] of items (feature `async`); closing
    /// the sink closes the buffer, and so does dropping it.
    ///
    /// ```
    /// use futures::{SinkExt, StreamExt};
    /// use ringledger::blocking::spsc;
    ///
    /// let (producer, consumer) = spsc::channel::<u32>(2);
    /// let got = futures::executor::block_on(async move {
    ///     let mut sink = producer.into_sink();
    ///     let mut items = futures::stream::iter((0..5).map(Ok));
    ///     let writer = async move { sink.send_all(&mut items).await.and(sink.close().await) };
    ///     let (written, got) = futures::join!(writer, consumer.into_stream().collect::<Vec<_>>());
    ///     written.unwrap();
    ///     got
    /// });
    /// assert_eq!(got, [0, 1, 2, 3, 4]);
    /// ```
    pub fn into_sink(self) -> PushSink<Self, T> {
        PushSink {
            end: self,
            pending: VecDeque::new(),
            current: None,
            slot: TaskSlot::new(),
        }
    }
}

impl<'a, T> mpsc::Producer<'a, T> {
    /// Pushes `item`, waiting as long as it takes for room: the async form of
    /// [`push`](Self::push) (feature `async`). Fails only with [`PushError::Closed`], which
    /// hands the item back.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped before it completes, the item was not pushed and is dropped
    /// with the future; nothing else changes and no waker stays registered. To keep an item
    /// across a `select!`, send it through [`into_sink`](Self::into_sink), which holds it.
    ///
    /// ```
    /// use ringledger::blocking::mpsc;
    ///
    /// let (producer, mut consumer) = mpsc::channel::<u32>(2);
    /// futures::executor::block_on(async {
    ///     producer.push_async(1).await.unwrap();
    ///     producer.push_async(2).await.unwrap();
    ///     // Full: the push waits until the pop below makes room.
    ///     let push = producer.push_async(3);
    ///     let pop = async { consumer.pop_async().await };
    ///     let (pushed, popped) = futures::join!(push, pop);
    ///     assert_eq!((pushed, popped), (Ok(()), Ok(1)));
    /// });
    /// ```
    pub fn push_async(&self, item: T) -> Push<&Self, T> {
        Push {
            end: self,
            item: Some(item),
            slot: TaskSlot::new(),
        }
    }

    /// The producer as a [`Sink`] of items (feature `async`); closing
    /// the sink closes the buffer for every producer, and dropping it drops this producer
    /// handle (the last one to go closes the buffer).
    ///
    /// ```
    /// use futures::{SinkExt, StreamExt};
    /// use ringledger::blocking::mpsc;
    ///
    /// let (producer, consumer) = mpsc::channel::<u32>(2);
    /// let got = futures::executor::block_on(async move {
    ///     let mut sink = producer.into_sink();
    ///     let writer = async move {
    ///         for i in 0..5 {
    ///             sink.feed(i).await.unwrap(); // no flush per item
    ///         }
    ///         sink.close().await.unwrap(); // flushes, then closes the buffer
    ///     };
    ///     futures::join!(writer, consumer.into_stream().collect::<Vec<_>>()).1
    /// });
    /// assert_eq!(got, [0, 1, 2, 3, 4]);
    /// ```
    pub fn into_sink(self) -> PushSink<Self, T> {
        PushSink {
            end: self,
            pending: VecDeque::new(),
            current: None,
            slot: TaskSlot::new(),
        }
    }
}
