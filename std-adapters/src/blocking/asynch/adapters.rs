//! The buffers' ends as a [`Stream`] and a [`Sink`]: [`PopStream`] and [`PushSink`], built on
//! the same poll protocol as the [`Pop`](super::Pop) and [`Push`](super::Push) futures.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::{FusedStream, Stream};
use futures_sink::Sink;

#[cfg(doc)]
use super::super::{mpsc, spsc};
use super::super::{PushError, TryPushError};
use super::{PopEnd, PushEnd};
use crate::wait::TaskSlot;

/// A consumer end as a [`Stream`] of its items, from [`spsc::Consumer::into_stream`] or
/// [`mpsc::Consumer::into_stream`]. The stream ends when the buffer is closed and empty.
///
/// Dropping the stream drops the consumer, which closes the buffer; use
/// [`into_inner`](Self::into_inner) to keep it. Items are taken only in the poll that
/// returns them, so dropping the stream (or a `next()` future on it) loses none.
///
/// ```
/// use futures::StreamExt;
/// use ringledger::blocking::{spsc, TryPushError};
///
/// let (mut producer, consumer) = spsc::channel::<u32>(4);
/// producer.try_push(1).unwrap();
/// let mut items = consumer.into_stream();
/// assert_eq!(futures::executor::block_on(items.next()), Some(1));
/// drop(items); // drops the consumer: the buffer is closed
/// assert_eq!(producer.try_push(2), Err(TryPushError::Closed(2)));
/// ```
pub struct PopStream<C> {
    pub(super) end: C,
    pub(super) slot: TaskSlot,
    pub(super) done: bool,
}

impl<C> PopStream<C> {
    /// The consumer back, to pop with a deadline or to close.
    ///
    /// ```
    /// use ringledger::blocking::spsc;
    /// use ringledger::wait::Deadline;
    ///
    /// let (mut producer, consumer) = spsc::channel::<u8>(2);
    /// let stream = consumer.into_stream();
    /// producer.try_push(1).unwrap();
    /// let mut consumer = stream.into_inner();
    /// assert_eq!(consumer.pop(Deadline::IMMEDIATE), Ok(1));
    /// ```
    pub fn into_inner(self) -> C {
        self.end
    }
}

impl<C: PopEnd + Unpin> Stream for PopStream<C> {
    type Item = C::Item;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<C::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.end.poll_pop(cx, &mut this.slot) {
            Poll::Ready(Ok(item)) => Poll::Ready(Some(item)),
            Poll::Ready(Err(_)) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<C: PopEnd + Unpin> FusedStream for PopStream<C> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<C> fmt::Debug for PopStream<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PopStream")
            .field("done", &self.done)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

/// A producer end as a [`Sink`] of items, from [`spsc::Producer::into_sink`] or
/// [`mpsc::Producer::into_sink`].
///
/// `start_send` pushes at once when there is room, and otherwise keeps the item for
/// `poll_ready`/`poll_flush` to push when there is: a sent item is pushed in order, or
/// handed back in [`PushError::Closed`] by the poll that finds the buffer closed (later
/// items stay in the sink: [`into_inner`](Self::into_inner) does not return them, so flush
/// first). `poll_close` flushes, then closes the buffer.
///
/// ```
/// use futures::SinkExt;
/// use ringledger::blocking::{spsc, PushError};
///
/// let (producer, mut consumer) = spsc::channel::<u32>(2);
/// let mut sink = producer.into_sink();
/// futures::executor::block_on(async move {
///     for i in 1..=3 {
///         sink.feed(i).await.unwrap(); // the third does not fit: the sink holds it
///     }
///     assert_eq!(sink.held(), 1);
///     assert_eq!(consumer.try_pop(), Ok(1));
///     sink.flush().await.unwrap(); // pushes the held item into the room made
///     assert_eq!(sink.held(), 0);
///
///     sink.feed(4).await.unwrap(); // full again: held
///     drop(consumer); // closes the buffer
///     assert_eq!(sink.flush().await, Err(PushError::Closed(4))); // the item comes back
/// });
/// ```
pub struct PushSink<P, T> {
    pub(super) end: P,
    /// Items sent while the buffer was full, oldest first.
    pub(super) pending: VecDeque<T>,
    /// The front of `pending` while a push of it is under way.
    pub(super) current: Option<T>,
    pub(super) slot: TaskSlot,
}

impl<P, T> PushSink<P, T> {
    /// The producer back. Items still held by the sink (sent while the buffer was full and
    /// not flushed) are dropped: flush the sink first.
    ///
    /// ```
    /// use futures::SinkExt;
    /// use ringledger::blocking::spsc;
    ///
    /// let (producer, mut consumer) = spsc::channel::<u8>(2);
    /// let mut sink = producer.into_sink();
    /// futures::executor::block_on(sink.send(1)).unwrap();
    /// let mut producer = sink.into_inner();
    /// producer.try_push(2).unwrap();
    /// assert_eq!((consumer.try_pop(), consumer.try_pop()), (Ok(1), Ok(2)));
    /// ```
    pub fn into_inner(self) -> P {
        self.end
    }

    /// Items sent but not in the buffer yet (it was full).
    #[must_use]
    pub fn held(&self) -> usize {
        self.pending.len() + usize::from(self.current.is_some())
    }
}

impl<P: PushEnd<T>, T> PushSink<P, T> {
    /// Pushes held items until none is left, the buffer is full or it is closed.
    fn poll_flush_held(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), PushError<T>>> {
        loop {
            if self.current.is_none() {
                self.current = self.pending.pop_front();
                if self.current.is_none() {
                    return Poll::Ready(Ok(()));
                }
            }
            match self.end.poll_push(cx, &mut self.slot, &mut self.current) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(closed)) => return Poll::Ready(Err(closed)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

// Items are moved, never pinned: the sink is `Unpin` whatever `T` is.
impl<P: Unpin, T> Unpin for PushSink<P, T> {}

impl<P: PushEnd<T> + Unpin, T> Sink<T> for PushSink<P, T> {
    type Error = PushError<T>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().poll_flush_held(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        let this = self.get_mut();
        if this.current.is_none() && this.pending.is_empty() {
            // The fast path: room now, no waker involved.
            return match this.end.try_push_item(item) {
                Ok(()) => Ok(()),
                Err(TryPushError::Full(item)) => {
                    this.current = Some(item);
                    Ok(())
                }
                Err(TryPushError::Closed(item)) => Err(PushError::Closed(item)),
            };
        }
        this.pending.push_back(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().poll_flush_held(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        match this.poll_flush_held(cx) {
            Poll::Ready(Ok(())) => {
                this.end.close_buffer();
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<P, T> fmt::Debug for PushSink<P, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushSink")
            .field("held", &self.held())
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}
