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

pub use consumer::{
    Backoff, ConcurrencyLimit, Consumer, ConsumerError, Handler, HandlerError, Permit, Stopped,
};
pub use cursor::{Cursor, CursorCloser};
pub use ledger::LedgerStream;
pub use memory::{AppendError, MemoryStream};
pub use tags::TagSet;

/// Why a cursor returned no entry, or a stream could not open one.
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
/// promises.
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
    fn open_with(
        &self,
        offset: u64,
        filter: TagSet,
        cancel: CancelToken,
    ) -> Result<Cursor, StreamError>;

    /// [`open_with`](Self::open_with) a token of the cursor's own
    /// ([`Cursor::cancel_token`]).
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
    fn read(&mut self, from: u64, out: &mut Vec<Entry>) -> Result<u64, StreamError>;

    /// Waits until the stream may hold an entry at an offset `>= from`, the deadline passes
    /// or `cancel` is cancelled. Every waiting reader must wake on an append that gets there.
    fn wait(&self, from: u64, deadline: Deadline, cancel: &CancelToken) -> Result<(), WaitError>;
}
