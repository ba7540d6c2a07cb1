//! Cursors for tasks (feature `async`): [`Cursor::next_async`] and a cursor as a
//! [`Stream`] of entries ([`Cursor::into_stream`]).
//!
//! The async forms read exactly as [`Cursor::next`] does: the same read-ahead, filter and
//! truncation rules (an entry read ahead is handed out only while it is not deleted), the
//! same errors except [`Timeout`](StreamError::Timeout) (a timeout is the runtime's, which
//! drops the future), and the same interrupts: closing the cursor through a
//! [`CursorCloser`](super::CursorCloser) or cancelling its token wakes a waiting task. Where
//! `next` would block, the task waits with the stream's [`Reader::poll_wait`](super::Reader::poll_wait):
//! on a [`LedgerStream`](super::LedgerStream) every ledger write that publishes a head wakes
//! it, on a [`MemoryStream`](super::MemoryStream) every append.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures_core::{FusedStream, Stream};

use super::{Cursor, CursorCloser, StreamError};
use crate::ledger::Entry;
use crate::wait::{TaskSlot, WaitError};

impl Cursor {
    /// The next matching entry, waiting as long as it takes: the async form of
    /// [`next`](Self::next) (feature `async`). The errors are `next`'s, without
    /// [`Timeout`](StreamError::Timeout).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: an entry leaves the cursor only in the poll that returns it, so
    /// dropping the future (in a `select!`, on a timeout) loses no entry and leaves the
    /// [`position`](Self::position) where it was; no waker stays registered.
    ///
    /// ```
    /// use ringledger::ledger::Entry;
    /// use ringledger::stream::{EventStream, MemoryStream, TagSet};
    ///
    /// let stream = MemoryStream::new(100, TagSet::all());
    /// let mut cursor = stream.open(1, TagSet::of([2]))?;
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let entry = runtime.block_on(async {
    ///     let appender = stream.clone();
    ///     tokio::spawn(async move {
    ///         appender.append(&[Entry::new(1, "skipped").with_tag(1)]).unwrap();
    ///         appender.append(&[Entry::new(2, "wanted").with_tag(2)]).unwrap();
    ///     });
    ///     cursor.next_async().await // waits for the append
    /// })?;
    /// assert_eq!((entry.sequence, cursor.position()), (2, 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_async(&mut self) -> NextEntry<'_> {
        NextEntry {
            cursor: self,
            slot: TaskSlot::new(),
        }
    }

    /// The cursor as a [`Stream`] of its entries (feature `async`): each item is what
    /// [`next_async`](Self::next_async) would return. The stream ends (`None`) once the cursor
    /// is closed, and after the first error, which it yields (a
    /// [`Truncated`](StreamError::Truncated) cursor, say: reopen at the
    /// [`position`](EntryStream::position) or at `first_available`).
    ///
    /// ```
    /// use futures::StreamExt;
    /// use ringledger::ledger::Entry;
    /// use ringledger::stream::{EventStream, MemoryStream, TagSet};
    ///
    /// let stream = MemoryStream::new(100, TagSet::all());
    /// stream.append(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
    /// let entries = stream.open(2, TagSet::all())?.into_stream();
    /// let first_two: Vec<u64> = futures::executor::block_on(
    ///     entries.take(2).map(|entry| entry.unwrap().sequence).collect(),
    /// );
    /// assert_eq!(first_two, [2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_stream(self) -> EntryStream {
        EntryStream {
            cursor: self,
            slot: TaskSlot::new(),
            done: false,
        }
    }

    /// The next entry, or `Pending` with the task registered in `slot`.
    fn poll_entry(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
    ) -> Poll<Result<Entry, StreamError>> {
        loop {
            if let Some(entry) = self.fetch(None).transpose() {
                self.control.waiting.store(false, Ordering::Release);
                return Poll::Ready(entry);
            }
            // Announce the wait, then look at `closed` again, as `next` does: a closer that
            // missed the announcement set `closed` before we look, so we do not wait.
            self.control.waiting.store(true, Ordering::SeqCst);
            if self.control.closed.load(Ordering::SeqCst) {
                self.control.waiting.store(false, Ordering::Release);
                return Poll::Ready(Err(StreamError::Closed));
            }
            // The task stays announced while it waits: a closer cancels the token to wake it.
            match self.reader.poll_wait(self.scanned, cx, slot, &self.cancel) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) | Poll::Ready(Err(WaitError::TimedOut)) => {}
                Poll::Ready(Err(_)) => {
                    self.control.waiting.store(false, Ordering::Release);
                    return Poll::Ready(Err(if self.is_closed() {
                        StreamError::Closed
                    } else {
                        StreamError::Cancelled
                    }));
                }
            }
        }
    }
}

/// The future of [`Cursor::next_async`]: the next matching entry. Polling it again after it
/// completed returns the entry after that.
///
/// ```
/// use futures::FutureExt;
/// use ringledger::ledger::Entry;
/// use ringledger::stream::{EventStream, MemoryStream, TagSet};
///
/// let stream = MemoryStream::new(100, TagSet::all());
/// let mut cursor = stream.open(1, TagSet::all())?;
/// // Nothing yet: pending, and dropping the future moves nothing.
/// assert!(cursor.next_async().now_or_never().is_none());
/// assert_eq!(cursor.position(), 1);
///
/// stream.append(&[Entry::new(1, "a"), Entry::new(2, "b")])?;
/// let mut next = cursor.next_async();
/// let first = futures::executor::block_on(&mut next)?;
/// let second = futures::executor::block_on(&mut next)?; // the same future, the next entry
/// assert_eq!((first.sequence, second.sequence), (1, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct NextEntry<'c> {
    cursor: &'c mut Cursor,
    slot: TaskSlot,
}

impl Future for NextEntry<'_> {
    type Output = Result<Entry, StreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.cursor.poll_entry(cx, &mut this.slot)
    }
}

impl Drop for NextEntry<'_> {
    fn drop(&mut self) {
        // Dropped while waiting: the cursor is no longer waiting, so a closer need not cancel.
        self.cursor.control.waiting.store(false, Ordering::Release);
    }
}

impl fmt::Debug for NextEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NextEntry")
            .field("cursor", &self.cursor)
            .field("slot", &self.slot)
            .finish()
    }
}

/// A [`Cursor`] as a [`Stream`] of its entries, from [`Cursor::into_stream`].
///
/// Entries leave the cursor only in the poll that yields them, so dropping the stream, or a
/// `next()` future on it, loses none: [`position`](Self::position) says where to reopen.
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use ringledger::ledger::Entry;
/// use ringledger::stream::{EventStream, MemoryStream, TagSet};
///
/// let stream = MemoryStream::new(100, TagSet::all());
/// stream.append(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
/// let mut entries = stream.open(1, TagSet::all())?.into_stream();
/// let first = futures::executor::block_on(entries.next()).unwrap()?;
/// assert_eq!((first.sequence, entries.position()), (1, 2));
///
/// // Back to a cursor, to read on with a deadline from where the stream stopped.
/// let mut cursor = entries.into_inner();
/// assert_eq!(cursor.next(Duration::from_secs(1))?.sequence, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EntryStream {
    cursor: Cursor,
    slot: TaskSlot,
    done: bool,
}

impl EntryStream {
    /// One past the offset of the last entry yielded: where to reopen to resume
    /// ([`Cursor::position`]).
    #[must_use]
    pub fn position(&self) -> u64 {
        self.cursor.position()
    }

    /// A handle that closes the cursor from anywhere, ending the stream (a task waiting in it
    /// wakes up).
    ///
    /// ```
    /// use futures::StreamExt;
    /// use ringledger::stream::{EventStream, MemoryStream, TagSet};
    ///
    /// let stream = MemoryStream::new(10, TagSet::all());
    /// let mut entries = stream.open(1, TagSet::all())?.into_stream();
    /// let closer = entries.closer();
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let end = runtime.block_on(async {
    ///     tokio::spawn(async move { closer.close() });
    ///     entries.next().await // waits for an entry that never comes, until the close
    /// });
    /// assert!(end.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn closer(&self) -> CursorCloser {
        self.cursor.closer()
    }

    /// The cursor under the stream.
    #[must_use]
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// The cursor back, to read with deadlines.
    #[must_use]
    pub fn into_inner(self) -> Cursor {
        let EntryStream { cursor, .. } = self;
        cursor.control.waiting.store(false, Ordering::Release);
        cursor
    }
}

impl Stream for EntryStream {
    type Item = Result<Entry, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.cursor.poll_entry(cx, &mut this.slot) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(entry)) => Poll::Ready(Some(Ok(entry))),
            Poll::Ready(Err(StreamError::Closed)) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Err(error)) => {
                this.done = true;
                Poll::Ready(Some(Err(error)))
            }
        }
    }
}

impl FusedStream for EntryStream {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl fmt::Debug for EntryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryStream")
            .field("cursor", &self.cursor)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
