//! [`LedgerStream`]: a [`Ledger`] read as an event stream.

use bytes::Bytes;

use super::{Cursor, EventStream, Reader, StreamError, TagSet};
use crate::ledger::{Entry, Ledger};
use crate::wait::{CancelToken, Deadline, WaitError};

/// Entries an unfiltered cursor reads ahead by default.
const DEFAULT_READ_AHEAD: usize = 512;
/// Entries a filtered read scans at most (unless the read-ahead is larger).
const SCAN_LIMIT: usize = 4096;
/// A matching entry's payload up to this size is copied out of the visit; a larger one is
/// read again as a shared slice of the mapping (a seek costs at most an index interval).
const COPY_LIMIT: usize = 2048;

/// A [`Ledger`] as an [`EventStream`]: offsets are the ledger's sequences.
///
/// Cursors read the ledger's mapping directly (an unfiltered cursor hands out payloads that
/// share it, with no copy), wait for more with
/// [`wait_for_head`](Ledger::wait_for_head_cancellable), which every write wakes (a broadcast
/// to all waiting cursors), and report [`StreamError::Truncated`] once a
/// [`delete`](Ledger::delete) removed entries they had not read. Offsets and everything else
/// survive a reopen of the ledger.
///
/// A filtered cursor skips the entries whose tag it does not want. While few entries pass, it
/// walks them with [`visit`](Ledger::visit) and copies the small payloads it wants into one
/// buffer per read (large ones are read again as shared slices of the mapping), so a skipped
/// entry costs neither an allocation nor a reference count; while at least half pass, it
/// reads in bulk and drops the rest. (The
/// ledger still checks each skipped record's payload checksum as it walks.)
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
    #[must_use]
    pub fn new(ledger: Ledger) -> Self {
        LedgerStream {
            ledger,
            tags: TagSet::all(),
            read_ahead: DEFAULT_READ_AHEAD,
        }
    }

    /// The stream declaring that its entries carry only `tags` (what
    /// [`tags`](EventStream::tags) reports; the ledger does not check it).
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
        // A filter that wants every tag the stream carries filters nothing: read in bulk.
        let filtered = !filter.is_superset(&self.tags);
        let reader = LedgerReader {
            ledger: self.ledger.clone(),
            filter: filter.clone(),
            filtered,
            read_ahead: self.read_ahead,
            scan: self.read_ahead,
            dense: false,
            copied: 0,
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
    /// Entries the next sparse read scans: adapts to how rare the wanted tags are.
    scan: usize,
    /// Whether the last filtered read kept at least half of what it scanned: then reading in
    /// bulk and dropping the rest is cheaper than copying the wanted payloads out of a visit.
    dense: bool,
    /// Bytes the last sparse read copied: the next one's first guess.
    copied: usize,
    /// The head seen just before the last read, if that read found nothing to scan: no entry
    /// at or below it is coming, so the next wait is for a head beyond it.
    empty_below: Option<u64>,
}

impl LedgerReader {
    /// Up to `read_ahead` entries `>= from`, as shared slices of the mapping, of which those
    /// passing the filter are kept; returns one past the last entry read.
    fn read_bulk(&mut self, from: u64, out: &mut Vec<Entry>) -> Result<u64, StreamError> {
        let before = out.len();
        let read = self.ledger.read_into(from, self.read_ahead, out)?;
        let next = out[before..]
            .last()
            .map_or(from, |e| e.sequence.saturating_add(1));
        if self.filtered {
            let mut kept = before;
            for i in before..out.len() {
                if self.filter.contains(out[i].tag) {
                    out.swap(kept, i);
                    kept += 1;
                }
            }
            out.truncate(kept);
            self.dense = (kept - before) * 2 >= read;
        }
        Ok(next)
    }

    /// Up to `read_ahead` entries `>= from` passing the filter, out of the next `scan`, visited
    /// so that the others cost neither an allocation nor a reference count; returns one past
    /// the last entry scanned.
    fn read_sparse(&mut self, from: u64, out: &mut Vec<Entry>) -> Result<u64, StreamError> {
        let (filter, read_ahead) = (&self.filter, self.read_ahead);
        let mut next = from;
        let (mut scanned, mut taken) = (0, 0);
        // Small payloads are copied into one buffer that their entries share (one allocation
        // per read, not per entry); large ones are read again as slices of the mapping.
        let mut copied = Vec::with_capacity(self.copied);
        let mut small = Vec::new();
        let mut large = Vec::new();
        self.ledger.visit(from, self.scan, |entry| {
            if taken == read_ahead {
                return; // full: the rest is scanned again by the next read
            }
            scanned += 1;
            next = entry.sequence.saturating_add(1);
            if !filter.contains(entry.tag) {
                return;
            }
            taken += 1;
            if entry.payload.len() > COPY_LIMIT {
                large.push((out.len(), entry.sequence));
            } else {
                small.push((out.len(), copied.len()..copied.len() + entry.payload.len()));
                copied.extend_from_slice(entry.payload);
            }
            out.push(Entry {
                sequence: entry.sequence,
                tag: entry.tag,
                timestamp: entry.timestamp,
                payload: Bytes::new(),
            });
        })?;
        self.dense = taken * 2 >= scanned && scanned > 0;
        // Scan about as far as it takes to fill the read-ahead: further for a rare tag.
        self.scan = if taken == read_ahead {
            (self.scan / 2).max(read_ahead)
        } else if taken < read_ahead / 2 {
            self.scan.saturating_mul(2).min(SCAN_LIMIT.max(read_ahead))
        } else {
            self.scan
        };
        self.copied = copied.len();
        let copied = Bytes::from(copied);
        for (at, range) in small {
            out[at].payload = copied.slice(range);
        }
        let mut one = Vec::with_capacity(1);
        for (at, sequence) in large {
            one.clear();
            self.ledger.read_into(sequence, 1, &mut one)?;
            // Missing only if deleted since the visit, which the truncation check reports.
            if let Some(entry) = one.pop().filter(|e| e.sequence == sequence) {
                out[at].payload = entry.payload;
            }
        }
        Ok(next)
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
        let next = if self.filtered && !self.dense {
            self.read_sparse(from, out)?
        } else {
            self.read_bulk(from, out)?
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
}
