//! [`LedgerStream`]: a [`Ledger`] read as an event stream.

use super::{Cursor, EventStream, Reader, StreamError, TagSet};
use crate::ledger::{Entry, Ledger};
use crate::wait::{CancelToken, Deadline, WaitError};

/// Entries an unfiltered cursor reads ahead by default.
const DEFAULT_READ_AHEAD: usize = 512;
/// Entries a filtered read scans at most (unless the read-ahead is larger).
const SCAN_LIMIT: usize = 4096;

/// A [`Ledger`] as an [`EventStream`]: offsets are the ledger's sequences.
///
/// Cursors read the ledger's mapping directly (an unfiltered cursor hands out payloads that
/// share it, with no copy), wait for more with
/// [`wait_for_head`](Ledger::wait_for_head_cancellable), which every write wakes (a broadcast
/// to all waiting cursors), and report [`StreamError::Truncated`] once a
/// [`delete`](Ledger::delete) removed entries they had not read. Offsets and everything else
/// survive a reopen of the ledger.
///
/// A filtered cursor skips the entries whose tag it does not want with
/// [`read_tagged_into`](Ledger::read_tagged_into): a skipped entry costs the check of its
/// frame header, never a look at its payload, an allocation or a reference count; the entries
/// it keeps are checked whole and share the mapping.
///
/// ```
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::stream::{EventStream, LedgerStream, TagSet};
///
/// let dir = tempfile::tempdir().unwrap();
/// let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
/// ledger.write(&[Entry::new(3, "x").with_tag(1), Entry::new(8, "y").with_tag(2)]).unwrap();
///
/// let stream = LedgerStream::new(ledger.clone());
/// let mut cursor = stream.open(4, TagSet::of([2])).unwrap();
/// assert_eq!(cursor.try_next().unwrap().unwrap().sequence, 8);
/// assert_eq!(cursor.try_next().unwrap(), None);
/// ```
#[derive(Debug, Clone)]
pub struct LedgerStream {
    ledger: Ledger,
    tags: TagSet,
    read_ahead: usize,
}

impl LedgerStream {
    /// The stream of `ledger`'s entries, carrying any tag.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::stream::{EventStream, LedgerStream, TagSet};
    /// use ringledger::wait::Deadline;
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// ledger.write(&[Entry::new(1, "a").with_tag(2), Entry::new(2, "b").with_tag(3)])?;
    /// let stream = LedgerStream::new(ledger);
    /// let mut cursor = stream.open(1, TagSet::of([3]))?;
    /// assert_eq!(cursor.next(Deadline::Forever)?.payload, "b");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new(ledger: Ledger) -> Self {
        LedgerStream {
            ledger,
            tags: TagSet::all(),
            read_ahead: DEFAULT_READ_AHEAD,
        }
    }

    /// The stream declaring that its entries carry only `tags` (what
    /// [`tags`](EventStream::tags) reports; the ledger does not check it). Cursors still
    /// test every entry against their filter: an entry whose tag was not declared is skipped
    /// by a filter that does not want it.
    #[must_use]
    pub fn with_tags(mut self, tags: TagSet) -> Self {
        self.tags = tags;
        self
    }

    /// The stream whose unfiltered cursors read `entries` ahead per ledger read (at least 1;
    /// default 512).
    #[must_use]
    pub fn with_read_ahead(mut self, entries: usize) -> Self {
        self.read_ahead = entries.max(1);
        self
    }

    /// The ledger under the stream.
    #[must_use]
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

impl EventStream for LedgerStream {
    fn tags(&self) -> TagSet {
        self.tags.clone()
    }

    fn open_with(
        &self,
        offset: u64,
        filter: TagSet,
        cancel: CancelToken,
    ) -> Result<Cursor, StreamError> {
        // Only a filter that wants every tag filters nothing: the declared tags are not
        // checked against what the ledger holds, so a filter covering just them still tests
        // every entry (an entry with an undeclared tag must not slip through).
        let filtered = !filter.is_all();
        let reader = LedgerReader {
            ledger: self.ledger.clone(),
            filter: filter.clone(),
            filtered,
            read_ahead: self.read_ahead,
            scan: self.read_ahead,
            empty_below: None,
        };
        Cursor::new(Box::new(reader), offset, filter, cancel)
    }
}

/// A cursor's view of a [`LedgerStream`].
struct LedgerReader {
    ledger: Ledger,
    filter: TagSet,
    /// Whether the filter can reject entries of this stream at all.
    filtered: bool,
    read_ahead: usize,
    /// Entries the next filtered read scans: adapts to how rare the wanted tags are.
    scan: usize,
    /// The head seen just before the last read, if that read found nothing to scan: no entry
    /// at or below it is coming, so the next wait is for a head beyond it.
    empty_below: Option<u64>,
}

impl LedgerReader {
    /// Up to `read_ahead` entries `>= from`, as shared slices of the mapping; returns one past
    /// the last entry read.
    fn read_all(&mut self, from: u64, out: &mut Vec<Entry>) -> Result<u64, StreamError> {
        let before = out.len();
        self.ledger.read_into(from, self.read_ahead, out)?;
        Ok(out[before..]
            .last()
            .map_or(from, |e| e.sequence.saturating_add(1)))
    }

    /// Up to `read_ahead` entries `>= from` passing the filter, out of the next `scan`;
    /// returns one past the last entry scanned.
    fn read_filtered(&mut self, from: u64, out: &mut Vec<Entry>) -> Result<u64, StreamError> {
        let filter = &self.filter;
        let before = out.len();
        let scanned = self.ledger.read_tagged_into(
            from,
            self.scan,
            self.read_ahead,
            |tag| filter.contains(tag),
            out,
        )?;
        let taken = out.len() - before;
        // Scan about as far as it takes to fill the read-ahead: further for a rare tag.
        self.scan = if taken == self.read_ahead {
            (self.scan / 2).max(self.read_ahead)
        } else if taken < self.read_ahead / 2 {
            self.scan
                .saturating_mul(2)
                .min(SCAN_LIMIT.max(self.read_ahead))
        } else {
            self.scan
        };
        Ok(scanned.next)
    }
}

impl Reader for LedgerReader {
    fn truncated_to(&self) -> u64 {
        self.ledger.tail()
    }

    fn read(&mut self, from: u64, out: &mut Vec<Entry>) -> Result<u64, StreamError> {
        let before = out.len();
        // Entries up to the head are readable once it is published.
        let head = self.ledger.head();
        let next = if self.filtered {
            self.read_filtered(from, out)?
        } else {
            self.read_all(from, out)?
        };
        self.empty_below = (next == from).then_some(head);
        // The ledger reads from above its tail: had a delete moved the tail to `from` or
        // beyond while we read, entries we never saw could be missing. Checking after the
        // read covers every delete that could have hidden them.
        let tail = self.ledger.tail();
        if tail >= from {
            out.truncate(before);
            return Err(StreamError::Truncated {
                requested: from,
                first_available: tail.saturating_add(1),
            });
        }
        Ok(next)
    }

    fn wait(&self, from: u64, deadline: Deadline, cancel: &CancelToken) -> Result<(), WaitError> {
        // After a crash the head can be above the last entry that survived (a delete had
        // recorded it): waiting for `from` would return at once, again and again.
        let target = match self.empty_below {
            Some(head) if head >= from => head.saturating_add(1),
            _ => from,
        };
        self.ledger
            .wait_for_head_cancellable(target, deadline, Some(cancel))
            .map(|_| ())
    }

    #[cfg(feature = "async")]
    fn poll_wait(
        &self,
        from: u64,
        cx: &mut std::task::Context<'_>,
        slot: &mut crate::wait::TaskSlot,
        cancel: &CancelToken,
    ) -> std::task::Poll<Result<(), WaitError>> {
        let target = match self.empty_below {
            Some(head) if head >= from => head.saturating_add(1),
            _ => from,
        };
        self.ledger
            .poll_head(cx, slot, target, Some(cancel))
            .map_ok(|_| ())
    }
}
