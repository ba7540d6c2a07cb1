//! [`Cursor`]: one reader's position in a stream, with the read-ahead, the wait and the
//! interrupts that every [`EventStream`](super::EventStream) shares.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Reader, StreamError, TagSet};
use crate::ledger::Entry;
use crate::wait::{CancelToken, Deadline, WaitError};

/// A position in an [`EventStream`](super::EventStream) that returns the entries after it, in
/// order, waiting for more at the end.
///
/// It reads ahead (a batch of matching entries at a time) and hands them out one by one.
/// [`position`](Self::position) is always one past the last entry returned, so reopening there
/// resumes without a repeat or a gap, also after a filter skipped entries (Dogma's issue
/// 194). Dropping the cursor closes it.
///
/// ```
/// use ringledger::ledger::Entry;
/// use ringledger::stream::{EventStream, MemoryStream, TagSet};
/// use ringledger::wait::Deadline;
///
/// let stream = MemoryStream::new(100, TagSet::all());
/// stream.append(&[Entry::new(1, "a"), Entry::new(2, "b")])?;
/// let mut cursor = stream.open(1, TagSet::all())?;
/// assert_eq!(cursor.next(Deadline::Forever)?.sequence, 1);
/// // Reopening at the position resumes with no repeat and no gap.
/// let position = cursor.position();
/// drop(cursor);
/// let mut cursor = stream.open(position, TagSet::all())?;
/// assert_eq!(cursor.next(Deadline::Forever)?.sequence, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Cursor {
    pub(super) reader: Box<dyn Reader>,
    filter: TagSet,
    /// Entries read ahead and not returned yet, newest first (returned from the back).
    ahead: Vec<Entry>,
    /// One past the last entry returned (or the offset opened at).
    position: u64,
    /// Where the reader goes on: every entry below it is in `ahead`, was returned or was
    /// filtered out.
    pub(super) scanned: u64,
    pub(super) control: Arc<Control>,
    pub(super) cancel: CancelToken,
}

/// What the cursor shares with its closers.
#[derive(Debug)]
pub(super) struct Control {
    pub(super) closed: AtomicBool,
    /// Set while the cursor waits: a closer cancels the token only then (see `close`).
    pub(super) waiting: AtomicBool,
}

/// Closes a [`Cursor`] from any thread, waking a [`next`](Cursor::next) blocked in it.
///
/// Obtained from [`Cursor::closer`]; `Clone + Send + Sync`.
///
/// ```
/// use ringledger::stream::{EventStream, MemoryStream, StreamError, TagSet};
/// use ringledger::wait::Deadline;
///
/// let stream = MemoryStream::new(10, TagSet::all());
/// let mut cursor = stream.open(1, TagSet::all())?;
/// let closer = cursor.closer();
/// std::thread::scope(|s| {
///     s.spawn(move || closer.close().unwrap());
///     // Waits for an entry that never comes, until the closer closes the cursor.
///     assert!(matches!(cursor.next(Deadline::Forever), Err(StreamError::Closed)));
/// });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CursorCloser {
    control: Arc<Control>,
    cancel: CancelToken,
}

impl Cursor {
    /// A cursor at `offset` over `reader` (which applies `filter`), waiting on `cancel`; what
    /// an [`EventStream::open_with`](super::EventStream::open_with) returns.
    ///
    /// Checks what every stream's `open` must: a non-empty `filter`, a `cancel` not cancelled
    /// yet, and an `offset` whose entries were not deleted. Offsets start at 1 (0 means 1).
    ///
    /// ```
    /// use ringledger::ledger::Entry;
    /// use ringledger::stream::{Cursor, Reader, StreamError, TagSet};
    /// use ringledger::wait::{CancelToken, Deadline, WaitError};
    ///
    /// /// A stream that never has anything (see [`Reader`] for a real one).
    /// struct Nothing;
    ///
    /// impl Reader for Nothing {
    ///     fn truncated_to(&self) -> u64 {
    ///         0
    ///     }
    ///     fn read(&mut self, from: u64, _: &mut Vec<Entry>) -> Result<u64, StreamError> {
    ///         Ok(from)
    ///     }
    ///     fn wait(&self, _: u64, _: Deadline, _: &CancelToken) -> Result<(), WaitError> {
    ///         Err(WaitError::TimedOut)
    ///     }
    /// }
    ///
    /// let mut cursor = Cursor::new(Box::new(Nothing), 0, TagSet::all(), CancelToken::new())?;
    /// assert_eq!(cursor.position(), 1); // offsets start at 1
    /// assert_eq!(cursor.try_next()?, None);
    /// let refused = Cursor::new(Box::new(Nothing), 1, TagSet::empty(), CancelToken::new());
    /// assert!(matches!(refused, Err(StreamError::EmptyFilter)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        reader: Box<dyn Reader>,
        offset: u64,
        filter: TagSet,
        cancel: CancelToken,
    ) -> Result<Cursor, StreamError> {
        if filter.is_empty() {
            return Err(StreamError::EmptyFilter);
        }
        if cancel.is_cancelled() {
            return Err(StreamError::Cancelled);
        }
        let offset = offset.max(1);
        let truncated_to = reader.truncated_to();
        if truncated_to >= offset {
            return Err(StreamError::Truncated {
                requested: offset,
                first_available: truncated_to.saturating_add(1),
            });
        }
        Ok(Cursor {
            reader,
            filter,
            ahead: Vec::new(),
            position: offset,
            scanned: offset,
            control: Arc::new(Control {
                closed: AtomicBool::new(false),
                waiting: AtomicBool::new(false),
            }),
            cancel,
        })
    }

    /// The next matching entry, waiting until `deadline` for one.
    ///
    /// Errors: [`Closed`](StreamError::Closed) once the cursor is closed (also when it is
    /// closed while waiting); [`Cancelled`](StreamError::Cancelled) once its token is
    /// cancelled (checked before anything else, so the answer does not depend on timing);
    /// [`Truncated`](StreamError::Truncated) when entries it had not read were deleted (it
    /// stays so); [`Timeout`](StreamError::Timeout) when the deadline passed.
    ///
    /// ```
    /// use ringledger::ledger::Entry;
    /// use ringledger::stream::{EventStream, MemoryStream, StreamError, TagSet};
    /// use ringledger::wait::Deadline;
    ///
    /// let stream = MemoryStream::new(100, TagSet::all());
    /// let mut cursor = stream.open(1, TagSet::all())?;
    /// let writer = {
    ///     let stream = stream.clone();
    ///     std::thread::spawn(move || stream.append(&[Entry::new(1, "late")]))
    /// };
    /// // Waits for the append.
    /// assert_eq!(cursor.next(Deadline::Forever)?.payload, "late");
    /// writer.join().unwrap()?;
    /// let waited = cursor.next(std::time::Duration::from_millis(10));
    /// assert!(matches!(waited, Err(StreamError::Timeout)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next(&mut self, deadline: impl Into<Deadline>) -> Result<Entry, StreamError> {
        // Resolve a relative timeout once: wake-ups that find nothing must not extend it.
        let deadline = match deadline.into().instant() {
            Some(at) => Deadline::At(at),
            None => Deadline::Forever,
        };
        match self.fetch(Some(deadline))? {
            Some(entry) => Ok(entry),
            None => Err(StreamError::Timeout),
        }
    }

    /// The next matching entry if one is there now; never waits. The errors are
    /// [`next`](Self::next)'s, without [`Timeout`](StreamError::Timeout).
    ///
    /// ```
    /// use ringledger::ledger::Entry;
    /// use ringledger::stream::{EventStream, MemoryStream, TagSet};
    ///
    /// let stream = MemoryStream::new(10, TagSet::all());
    /// let mut cursor = stream.open(1, TagSet::all())?;
    /// assert_eq!(cursor.try_next()?, None); // nothing yet, and no wait
    /// stream.append(&[Entry::new(1, "a")])?;
    /// assert_eq!(cursor.try_next()?.map(|e| e.sequence), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_next(&mut self) -> Result<Option<Entry>, StreamError> {
        self.fetch(None)
    }

    /// Closes the cursor: every later call returns [`StreamError::Closed`]. Closing a closed
    /// cursor is [`StreamError::Closed`] too. Dropping the cursor closes it.
    pub fn close(&mut self) -> Result<(), StreamError> {
        self.ahead.clear();
        if self.control.closed.swap(true, Ordering::AcqRel) {
            return Err(StreamError::Closed);
        }
        Ok(())
    }

    /// Whether the cursor was closed (here or through a [`CursorCloser`]).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.control.closed.load(Ordering::Acquire)
    }

    /// A handle that closes this cursor from another thread.
    #[must_use]
    pub fn closer(&self) -> CursorCloser {
        CursorCloser {
            control: Arc::clone(&self.control),
            cancel: self.cancel.clone(),
        }
    }

    /// The token this cursor waits on; cancelling it (from any thread) ends a blocked
    /// [`next`](Self::next), and every later call, with [`StreamError::Cancelled`].
    #[must_use]
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// One past the offset of the last entry returned (the offset opened at before the
    /// first): where to reopen to resume.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The tags this cursor returns.
    #[must_use]
    pub fn filter(&self) -> &TagSet {
        &self.filter
    }

    /// The next entry; waits until `deadline` if given, else returns `None` at once.
    pub(super) fn fetch(
        &mut self,
        deadline: Option<Deadline>,
    ) -> Result<Option<Entry>, StreamError> {
        loop {
            if self.control.closed.load(Ordering::Acquire) {
                return Err(StreamError::Closed);
            }
            if self.cancel.is_cancelled() {
                return Err(StreamError::Cancelled);
            }
            // Where the cursor reads next: its oldest entry read ahead, else where it scans.
            // Entries read ahead are handed out only while they are not deleted, so the
            // answer never depends on how far the cursor read ahead.
            let read_at = self.ahead.last().map_or(self.scanned, |e| e.sequence);
            let truncated_to = self.reader.truncated_to();
            if truncated_to >= read_at {
                self.ahead.clear();
                self.scanned = read_at;
                return Err(StreamError::Truncated {
                    requested: read_at,
                    first_available: truncated_to.saturating_add(1),
                });
            }
            if let Some(entry) = self.ahead.pop() {
                self.position = entry.sequence.saturating_add(1);
                return Ok(Some(entry));
            }
            let from = self.scanned;
            let next = self.reader.read(from, &mut self.ahead).inspect_err(|_| {
                self.ahead.clear();
            })?;
            self.scanned = next.max(from);
            if !self.ahead.is_empty() {
                self.ahead.reverse();
                continue;
            }
            if self.scanned > from {
                continue; // scanned past entries the filter skipped: go on scanning
            }
            let Some(deadline) = deadline else {
                return Ok(None);
            };
            // Announce the wait, then look at `closed` again: a closer that missed the
            // announcement set `closed` before we look (both `SeqCst`), so we do not wait.
            self.control.waiting.store(true, Ordering::SeqCst);
            let waited = if self.control.closed.load(Ordering::SeqCst) {
                Err(WaitError::Cancelled)
            } else {
                self.reader.wait(from, deadline, &self.cancel)
            };
            self.control.waiting.store(false, Ordering::Release);
            match waited {
                Ok(()) => {}
                Err(WaitError::TimedOut) => return Ok(None),
                Err(WaitError::Cancelled) if self.is_closed() => return Err(StreamError::Closed),
                Err(WaitError::Cancelled) => return Err(StreamError::Cancelled),
            }
        }
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        // Nobody can be waiting in this cursor (that takes `&mut self`): no need to wake.
        self.control.closed.store(true, Ordering::Release);
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cursor")
            .field("position", &self.position)
            .field("scanned", &self.scanned)
            .field("read_ahead", &self.ahead.len())
            .field("filter", &self.filter)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl CursorCloser {
    /// Closes the cursor and wakes a [`next`](Cursor::next) blocked in it, which returns
    /// [`StreamError::Closed`]. The first close (here or on the cursor) is `Ok`, later ones
    /// are [`StreamError::Closed`].
    ///
    /// To wake a blocked `next`, the closer cancels the cursor's [`CancelToken`] (the only
    /// signal a wait on any stream listens to besides appends); a token shared with other
    /// cursors ([`open_with`](super::EventStream::open_with)) interrupts them too. A cursor
    /// that is not waiting is closed without touching the token.
    pub fn close(&self) -> Result<(), StreamError> {
        if self.control.closed.swap(true, Ordering::SeqCst) {
            return Err(StreamError::Closed);
        }
        if self.control.waiting.load(Ordering::SeqCst) {
            self.cancel.cancel();
        }
        Ok(())
    }

    /// Whether the cursor was closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.control.closed.load(Ordering::Acquire)
    }
}

impl fmt::Debug for CursorCloser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CursorCloser")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
