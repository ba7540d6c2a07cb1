//! Event streams: ordered entries read through cursors that wait for more (Dogma's
//! `eventstream`).
//!
//! An [`EventStream`] is an ordered sequence of [`Entry`]s, each at an offset that is its
//! sequence: offsets increase but need not be dense, exactly as in the
//! [`ledger`](crate::ledger). [`open`](EventStream::open) gives a [`Cursor`] that starts at an
//! offset and returns the entries whose tag is in a [`TagSet`] filter, in order;
//! [`next`](Cursor::next) waits at the end of the stream until a matching entry is appended,
//! the [`Deadline`] passes or the cursor is cancelled or closed. The filter works on the tag
//! alone, so an implementation decides on an entry from its frame, before its payload.
//!
//! Two implementations:
//!
//! - [`MemoryStream`]: a bounded stream in memory that drops its oldest entries to make room;
//! - [`LedgerStream`]: a [`Ledger`](crate::ledger::Ledger) as a stream; cursors are woken by
//!   the ledger's broadcast on every write, and report [`StreamError::Truncated`] once a
//!   [`cleaner`](crate::cleaner) (or anyone) deleted what they were about to read.
//!
//! On top of them, [`Consumer`] feeds a [`Handler`] from a stream with at-least-once delivery
//! and restarts with backoff after any error; [`source`](crate::source) turns a stream into
//! batches for a host. With the `conformance` feature, `stream::conformance` is Dogma's
//! `streamtest` suite as public code, for any implementation of [`EventStream`].
//!
//! Another thread can interrupt a blocked [`next`](Cursor::next): with the cursor's
//! [`CursorCloser`] ([`StreamError::Closed`]) or its [`CancelToken`]
//! ([`StreamError::Cancelled`]).
//!
//! ```
//! use std::time::Duration;
//! use ringledger::ledger::Entry;
//! use ringledger::stream::{EventStream, MemoryStream, StreamError, TagSet};
//!
//! let stream = MemoryStream::new(1000, TagSet::of([1, 2]));
//! stream.append(&[Entry::new(10, "a").with_tag(1), Entry::new(20, "b").with_tag(2)]).unwrap();
//!
//! let mut cursor = stream.open(0, TagSet::of([2])).unwrap();
//! let entry = cursor.next(Duration::from_secs(1)).unwrap();
//! assert_eq!((entry.sequence, &entry.payload[..]), (20, &b"b"[..]));
//! assert_eq!(cursor.position(), 21); // where to resume: after the last entry returned
//!
//! std::thread::scope(|s| {
//!     let appender = s.spawn(|| stream.append(&[Entry::new(25, "c").with_tag(2)]));
//!     let entry = cursor.next(Duration::from_secs(10)).unwrap(); // waits for the append
//!     assert_eq!(entry.sequence, 25);
//!     appender.join().unwrap().unwrap();
//! });
//! assert!(matches!(cursor.next(Duration::from_millis(5)), Err(StreamError::Timeout)));
//! ```

#[cfg(feature = "async")]
mod asynch;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod consumer;
mod cursor;
mod ledger;
mod memory;
mod tags;

use std::error::Error;
use std::sync::Arc;

use crate::ledger::{Entry, LedgerError};
use crate::wait::{CancelToken, Deadline, WaitError};

#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub use asynch::{EntryStream, NextEntry};
pub use consumer::{
    Backoff, ConcurrencyLimit, Consumer, ConsumerError, Handler, HandlerError, Permit, Stopped,
};
pub use cursor::{Cursor, CursorCloser};
pub use ledger::LedgerStream;
pub use memory::{AppendError, MemoryStream};
pub use tags::TagSet;

/// Why a cursor returned no entry, or a stream could not open one.
///
/// ```
/// use std::time::Duration;
/// use ringledger::ledger::Entry;
/// use ringledger::stream::{EventStream, MemoryStream, StreamError, TagSet};
///
/// let stream = MemoryStream::new(100, TagSet::all());
/// stream.append(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
/// let mut cursor = stream.open(1, TagSet::all())?;
/// stream.truncate(2); // a cleaner deleted 1 and 2 before the cursor read them
/// let mut seen = Vec::new();
/// loop {
///     match cursor.next(Duration::from_millis(5)) {
///         Ok(entry) => seen.push(entry.sequence),
///         Err(StreamError::Truncated { first_available, .. }) => {
///             cursor = stream.open(first_available, TagSet::all())?; // accept the gap
///         }
///         Err(StreamError::Timeout) => break, // caught up
///         Err(other) => return Err(other.into()),
///     }
/// }
/// assert_eq!(seen, [3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The cursor was closed (before or during the call).
    #[error("the cursor is closed")]
    Closed,
    /// Entries the cursor had not read yet were deleted: it cannot go on without a gap.
    /// Reopen at `first_available` to skip the gap.
    #[error("offset {requested} was deleted; the stream now starts at {first_available}")]
    Truncated {
        /// Where the cursor was about to read.
        requested: u64,
        /// The lowest offset a cursor may open at now: one past the deleted ones.
        first_available: u64,
    },
    /// The deadline passed before a matching entry arrived.
    #[error("the deadline passed before a matching entry arrived")]
    Timeout,
    /// The cursor's [`CancelToken`] was cancelled.
    #[error("the cursor was cancelled")]
    Cancelled,
    /// The filter wants no tag at all, so a cursor would wait forever.
    #[error("the filter wants no tags")]
    EmptyFilter,
    /// The storage under the stream failed (for a [`LedgerStream`], a [`LedgerError`]).
    #[error("reading the stream failed")]
    Storage(#[source] Box<dyn Error + Send + Sync + 'static>),
}

impl From<LedgerError> for StreamError {
    fn from(error: LedgerError) -> Self {
        StreamError::Storage(Box::new(error))
    }
}

/// An ordered stream of entries that cursors read from an offset on.
///
/// Implement it by giving [`Cursor::new`] a [`Reader`] of your stream; the `conformance`
/// suite (feature `conformance`) checks an implementation against everything this module
/// promises; [`Reader`] shows one.
///
/// Code that reads a stream takes any implementation:
///
/// ```
/// use std::sync::Arc;
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::stream::{EventStream, LedgerStream, MemoryStream, StreamError, TagSet};
///
/// /// The newest entry with tag 7, reading what is there now.
/// fn last_seven(stream: &impl EventStream) -> Result<Option<u64>, StreamError> {
///     let mut cursor = stream.open(0, TagSet::of([7]))?;
///     let mut last = None;
///     while let Some(entry) = cursor.try_next()? {
///         last = Some(entry.sequence);
///     }
///     Ok(last)
/// }
///
/// let entries = [Entry::new(1, "a").with_tag(7), Entry::new(2, "b").with_tag(8)];
/// let memory = MemoryStream::new(10, TagSet::all());
/// memory.append(&entries)?;
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// ledger.write(&entries)?;
/// assert_eq!(last_seven(&memory)?, Some(1));
/// assert_eq!(last_seven(&LedgerStream::new(ledger))?, Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait EventStream: Send + Sync {
    /// The tags entries of this stream may carry (every entry's tag is in it).
    fn tags(&self) -> TagSet;

    /// A cursor over the entries at offsets `>= offset` whose tag is in `filter`, which waits
    /// on `cancel`: cancelling the token ends a blocked [`Cursor::next`] with
    /// [`StreamError::Cancelled`].
    ///
    /// The token is the cursor's interrupt: share one between cursors that stop together (a
    /// consumer's successive cursors), and note that a [`CursorCloser`] wakes a blocked cursor
    /// by cancelling it. Fails with [`StreamError::EmptyFilter`], [`StreamError::Cancelled`]
    /// when `cancel` is already cancelled, and [`StreamError::Truncated`] when entries at or
    /// after `offset` were deleted.
    ///
    /// ```
    /// use ringledger::stream::{EventStream, MemoryStream, StreamError, TagSet};
    /// use ringledger::wait::{CancelToken, Deadline};
    ///
    /// let stream = MemoryStream::new(10, TagSet::all());
    /// let shutdown = CancelToken::new(); // one token for cursors that stop together
    /// let mut all = stream.open_with(1, TagSet::all(), shutdown.clone())?;
    /// let mut sevens = stream.open_with(1, TagSet::of([7]), shutdown.clone())?;
    /// shutdown.cancel();
    /// assert!(matches!(all.next(Deadline::Forever), Err(StreamError::Cancelled)));
    /// assert!(matches!(sevens.next(Deadline::Forever), Err(StreamError::Cancelled)));
    /// let late = stream.open_with(1, TagSet::all(), shutdown);
    /// assert!(matches!(late, Err(StreamError::Cancelled)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn open_with(
        &self,
        offset: u64,
        filter: TagSet,
        cancel: CancelToken,
    ) -> Result<Cursor, StreamError>;

    /// [`open_with`](Self::open_with) a token of the cursor's own
    /// ([`Cursor::cancel_token`]).
    ///
    /// ```
    /// use ringledger::ledger::Entry;
    /// use ringledger::stream::{EventStream, MemoryStream, StreamError, TagSet};
    ///
    /// let stream = MemoryStream::new(2, TagSet::all()); // keeps the newest two
    /// stream.append(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
    /// match stream.open(1, TagSet::all()) {
    ///     Err(StreamError::Truncated { first_available, .. }) => assert_eq!(first_available, 2),
    ///     other => panic!("{other:?}"),
    /// }
    /// let mut cursor = stream.open(2, TagSet::all())?;
    /// assert_eq!(cursor.try_next()?.map(|e| e.sequence), Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn open(&self, offset: u64, filter: TagSet) -> Result<Cursor, StreamError> {
        self.open_with(offset, filter, CancelToken::new())
    }
}

impl<S: EventStream + ?Sized> EventStream for &S {
    fn tags(&self) -> TagSet {
        (**self).tags()
    }

    fn open_with(
        &self,
        offset: u64,
        filter: TagSet,
        cancel: CancelToken,
    ) -> Result<Cursor, StreamError> {
        (**self).open_with(offset, filter, cancel)
    }
}

impl<S: EventStream + ?Sized> EventStream for Arc<S> {
    fn tags(&self) -> TagSet {
        (**self).tags()
    }

    fn open_with(
        &self,
        offset: u64,
        filter: TagSet,
        cancel: CancelToken,
    ) -> Result<Cursor, StreamError> {
        (**self).open_with(offset, filter, cancel)
    }
}

/// What a stream gives each [`Cursor`]: reading ahead from a position, and waiting for more.
///
/// A reader belongs to one cursor and knows its filter. The cursor keeps the position, the
/// read-ahead, the deadline and the interrupt; the reader only answers these three questions.
///
/// A stream of a fixed list of entries, as an implementation of a stream looks:
///
/// ```
/// use std::sync::Arc;
/// use ringledger::ledger::Entry;
/// use ringledger::stream::{Cursor, EventStream, Reader, StreamError, TagSet};
/// use ringledger::wait::{CancelToken, Deadline, WaitError, Waiters};
///
/// struct Fixed(Arc<Vec<Entry>>);
///
/// struct FixedReader {
///     entries: Arc<Vec<Entry>>,
///     filter: TagSet,
/// }
///
/// impl Reader for FixedReader {
///     fn truncated_to(&self) -> u64 {
///         0 // nothing is ever deleted
///     }
///     fn read(&mut self, from: u64, out: &mut Vec<Entry>) -> Result<u64, StreamError> {
///         let mut next = from;
///         for entry in self.entries.iter().filter(|e| e.sequence >= from).take(100) {
///             next = entry.sequence + 1;
///             if self.filter.contains(entry.tag) {
///                 out.push(entry.clone());
///             }
///         }
///         Ok(next)
///     }
///     fn wait(&self, _: u64, until: Deadline, cancel: &CancelToken) -> Result<(), WaitError> {
///         // Nothing is ever appended: wait until the deadline or the cancellation.
///         Waiters::new().wait_until(until, Some(cancel), || None)
///     }
/// }
///
/// impl EventStream for Fixed {
///     fn tags(&self) -> TagSet {
///         TagSet::all()
///     }
///     fn open_with(
///         &self,
///         offset: u64,
///         filter: TagSet,
///         cancel: CancelToken,
///     ) -> Result<Cursor, StreamError> {
///         let reader = FixedReader { entries: Arc::clone(&self.0), filter: filter.clone() };
///         Cursor::new(Box::new(reader), offset, filter, cancel)
///     }
/// }
///
/// let entries = vec![Entry::new(1, "a").with_tag(1), Entry::new(5, "b").with_tag(2)];
/// let stream = Fixed(Arc::new(entries));
/// let mut cursor = stream.open(0, TagSet::of([2]))?;
/// assert_eq!(cursor.next(Deadline::IMMEDIATE)?.sequence, 5);
/// assert!(matches!(cursor.next(Deadline::IMMEDIATE), Err(StreamError::Timeout)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Reader: Send {
    /// The offset entries are deleted up to (0 while nothing was deleted): a cursor about to
    /// read at or below it reports [`StreamError::Truncated`].
    fn truncated_to(&self) -> u64;

    /// Appends to `out`, oldest first, entries at offsets `>= from` that pass the filter,
    /// scanning a bounded number of entries, and returns the offset to scan from next: one
    /// past the last entry scanned, or `from` when there was none.
    ///
    /// Fails with [`StreamError::Truncated`] if entries at or after `from` were deleted before
    /// they were scanned.
    ///
    /// ```
    /// # use ringledger::ledger::Entry;
    /// # use ringledger::stream::{Reader, StreamError, TagSet};
    /// # use ringledger::wait::{CancelToken, Deadline, WaitError};
    /// /// Reads a fixed list, scanning at most two entries per call.
    /// struct Fixed {
    ///     entries: Vec<Entry>,
    ///     filter: TagSet,
    /// }
    ///
    /// impl Reader for Fixed {
    ///     fn read(&mut self, from: u64, out: &mut Vec<Entry>) -> Result<u64, StreamError> {
    ///         let mut next = from;
    ///         for entry in self.entries.iter().filter(|e| e.sequence >= from).take(2) {
    ///             next = entry.sequence + 1; // scanned, kept or not
    ///             if self.filter.contains(entry.tag) {
    ///                 out.push(entry.clone());
    ///             }
    ///         }
    ///         Ok(next)
    ///     }
    ///     // ...
    /// #   fn truncated_to(&self) -> u64 {
    /// #       0
    /// #   }
    /// #   fn wait(&self, _: u64, _: Deadline, _: &CancelToken) -> Result<(), WaitError> {
    /// #       Err(WaitError::TimedOut)
    /// #   }
    /// }
    ///
    /// let entries = [(1, 1), (3, 2), (5, 1)].map(|(seq, tag)| Entry::new(seq, "e").with_tag(tag));
    /// let mut reader = Fixed { entries: entries.to_vec(), filter: TagSet::of([1]) };
    /// let mut out = Vec::new();
    /// assert_eq!(reader.read(0, &mut out)?, 4); // scanned 1 and 3, kept 1
    /// assert_eq!(reader.read(4, &mut out)?, 6); // scanned and kept 5
    /// assert_eq!(reader.read(6, &mut out)?, 6); // nothing more: `from` again
    /// assert_eq!(out.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn read(&mut self, from: u64, out: &mut Vec<Entry>) -> Result<u64, StreamError>;

    /// Waits until the stream may hold an entry at an offset `>= from`, the deadline passes
    /// or `cancel` is cancelled. Every waiting reader must wake on an append that gets there.
    fn wait(&self, from: u64, deadline: Deadline, cancel: &CancelToken) -> Result<(), WaitError>;

    /// The async form of [`wait`](Self::wait), for a cursor read as a
    /// [`Stream`](futures_core::Stream) (feature `async`): `Ready` when the stream may hold an
    /// entry at an offset `>= from` or `cancel` is cancelled, else `Pending` with the task
    /// registered in `slot` to be woken by an append that gets there (or the cancellation).
    ///
    /// Streams that wait on [`Waiters`](crate::wait::Waiters) implement it with
    /// [`Waiters::poll_until`](crate::wait::Waiters::poll_until), as their `wait` uses
    /// `wait_until`. The default is correct for any stream but polls in a loop while nothing
    /// comes: it wakes the task at once and returns `Pending`, so the cursor reads again on
    /// the next poll.
    ///
    /// ```
    /// use std::task::{Context, Poll};
    /// # use ringledger::ledger::Entry;
    /// # use ringledger::stream::{Reader, StreamError};
    /// use ringledger::wait::{CancelToken, Deadline, TaskSlot, WaitError, Waiters};
    ///
    /// /// A stream that never gets an entry, waiting on its `Waiters`.
    /// struct Quiet(Waiters);
    ///
    /// impl Reader for Quiet {
    ///     fn wait(&self, _: u64, until: Deadline, cancel: &CancelToken) -> Result<(), WaitError> {
    ///         self.0.wait_until(until, Some(cancel), || None)
    ///     }
    ///     fn poll_wait(
    ///         &self,
    ///         _from: u64,
    ///         cx: &mut Context<'_>,
    ///         slot: &mut TaskSlot,
    ///         cancel: &CancelToken,
    ///     ) -> Poll<Result<(), WaitError>> {
    ///         self.0.poll_until(cx, slot, Some(cancel), || None)
    ///     }
    ///     // ...
    /// #   fn truncated_to(&self) -> u64 {
    /// #       0
    /// #   }
    /// #   fn read(&mut self, from: u64, _: &mut Vec<Entry>) -> Result<u64, StreamError> {
    /// #       Ok(from)
    /// #   }
    /// }
    ///
    /// let quiet = Quiet(Waiters::new());
    /// let token = CancelToken::new();
    /// let mut slot = TaskSlot::new();
    /// let mut cx = Context::from_waker(std::task::Waker::noop());
    /// assert!(quiet.poll_wait(1, &mut cx, &mut slot, &token).is_pending());
    /// token.cancel();
    /// let cancelled = quiet.poll_wait(1, &mut cx, &mut slot, &token);
    /// assert_eq!(cancelled, Poll::Ready(Err(WaitError::Cancelled)));
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    fn poll_wait(
        &self,
        from: u64,
        cx: &mut std::task::Context<'_>,
        slot: &mut crate::wait::TaskSlot,
        cancel: &CancelToken,
    ) -> std::task::Poll<Result<(), WaitError>> {
        let _ = (from, slot);
        if cancel.is_cancelled() {
            return std::task::Poll::Ready(Err(WaitError::Cancelled));
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
