//! The factories the crate runs the suite with: memory streams and ledger streams.

use std::fmt;
use std::sync::Arc;

use super::{cases::abc, StreamFactory};
use crate::ledger::{Entry, Ledger, LedgerConfig};
use crate::storage::sim::SimStorage;
use crate::stream::{Cursor, EventStream, LedgerStream, MemoryStream, StreamError, TagSet};
use crate::wait::CancelToken;

/// Runs the suite on [`MemoryStream`]s.
///
/// ```
/// use ringledger::stream::conformance::{a_cursor_past_the_end_wakes_on_append, MemoryFactory};
///
/// // A small capacity: the cases' entries still fit.
/// a_cursor_past_the_end_wakes_on_append(&MemoryFactory { capacity: 8 });
/// ```
#[derive(Debug, Clone)]
pub struct MemoryFactory {
    /// Each stream's capacity.
    pub capacity: usize,
}

impl Default for MemoryFactory {
    fn default() -> Self {
        MemoryFactory { capacity: 1024 }
    }
}

impl StreamFactory for MemoryFactory {
    type Stream = MemoryStream;

    fn create(&self, entries: &[Entry]) -> MemoryStream {
        let stream = MemoryStream::new(self.capacity, abc());
        self.append(&stream, entries);
        stream
    }

    fn append(&self, stream: &MemoryStream, entries: &[Entry]) {
        stream
            .append(entries)
            .expect("appending to a memory stream");
    }

    fn truncate(&self, stream: &MemoryStream, up_to: u64) {
        stream.truncate(up_to);
    }
}

/// How a [`LedgerFactory`] lays its ledgers out.
///
/// ```
/// use ringledger::stream::conformance::{open_honours_the_offset, LedgerFactory, LedgerLayout};
///
/// for layout in [LedgerLayout::OneSegment, LedgerLayout::Spread, LedgerLayout::Reopened] {
///     open_honours_the_offset(&LedgerFactory::new(layout));
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerLayout {
    /// Every entry in one segment.
    OneSegment,
    /// Entries spread over many small segments: before each entry the factory writes
    /// [`FILLERS`] entries of 1000 bytes with tag [`FILLER_TAG`] in the gap below its offset.
    Spread,
    /// [`Spread`](Self::Spread), and the ledger is closed and reopened before the case reads
    /// it: recovered, with nothing of the writer's state cached.
    Reopened,
}

/// Filler entries written before each entry by the spreading layouts.
pub const FILLERS: u64 = 8;
/// The tag of filler entries (not one the cases ask for).
pub const FILLER_TAG: u32 = 0xF111;

/// Runs the suite on [`LedgerStream`]s over ledgers in [`SimStorage`].
///
/// ```
/// use ringledger::stream::conformance::{entries_survive_a_reopen, LedgerFactory, LedgerLayout};
///
/// entries_survive_a_reopen(&LedgerFactory::new(LedgerLayout::Spread));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LedgerFactory {
    layout: LedgerLayout,
}

impl LedgerFactory {
    /// A factory of ledgers laid out so.
    ///
    /// ```
    /// use ringledger::stream::conformance::{fixtures, LedgerFactory, LedgerLayout, StreamFactory};
    ///
    /// let spread = LedgerFactory::new(LedgerLayout::Spread).create(&fixtures());
    /// let ledger = spread.stream().ledger();
    /// assert!(ledger.segments().len() > 1); // fillers in the gaps push the entries apart
    /// ```
    #[must_use]
    pub fn new(layout: LedgerLayout) -> Self {
        LedgerFactory { layout }
    }

    fn config(&self) -> LedgerConfig {
        match self.layout {
            LedgerLayout::OneSegment => LedgerConfig::default().with_segment_size(1 << 20),
            LedgerLayout::Spread | LedgerLayout::Reopened => {
                LedgerConfig::default().with_segment_size(8192)
            }
        }
    }
}

/// A [`LedgerStream`] with the storage it lives in (so that it can be reopened).
///
/// ```
/// use ringledger::stream::conformance::{fixtures, LedgerFactory, LedgerLayout, StreamFactory};
/// use ringledger::stream::{EventStream, TagSet};
///
/// let factory = LedgerFactory::new(LedgerLayout::OneSegment);
/// let stream = factory.create(&fixtures());
/// assert_eq!(stream.stream().ledger().len(), 5);
/// let reopened = factory.reopen(stream).unwrap(); // the ledger, closed and recovered
/// let mut cursor = reopened.open(0, TagSet::all()).unwrap();
/// assert_eq!(cursor.try_next().unwrap().unwrap().sequence, 100);
/// ```
pub struct SimLedgerStream {
    stream: LedgerStream,
    storage: SimStorage,
}

impl SimLedgerStream {
    /// The stream.
    #[must_use]
    pub fn stream(&self) -> &LedgerStream {
        &self.stream
    }
}

impl fmt::Debug for SimLedgerStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.stream.fmt(f)
    }
}

impl EventStream for SimLedgerStream {
    fn tags(&self) -> TagSet {
        self.stream.tags()
    }

    fn open_with(
        &self,
        offset: u64,
        filter: TagSet,
        cancel: CancelToken,
    ) -> Result<Cursor, StreamError> {
        self.stream.open_with(offset, filter, cancel)
    }
}

impl LedgerFactory {
    fn open(&self, storage: SimStorage) -> SimLedgerStream {
        let ledger = Ledger::open_in(Arc::new(storage.clone()), self.config())
            .expect("opening a ledger in memory");
        // One segment: only A, B and C, so a cursor wanting all three reads in bulk. Spread:
        // fillers too, so every cursor filters, reading ahead two entries at a time.
        let stream = match self.layout {
            LedgerLayout::OneSegment => LedgerStream::new(ledger).with_tags(abc()),
            LedgerLayout::Spread | LedgerLayout::Reopened => {
                let mut tags = abc();
                tags.insert(FILLER_TAG);
                LedgerStream::new(ledger).with_tags(tags).with_read_ahead(2)
            }
        };
        SimLedgerStream { stream, storage }
    }
}

impl StreamFactory for LedgerFactory {
    type Stream = SimLedgerStream;

    fn create(&self, entries: &[Entry]) -> SimLedgerStream {
        let stream = self.open(SimStorage::new());
        self.append(&stream, entries);
        if self.layout == LedgerLayout::Reopened {
            let storage = stream.storage.clone();
            drop(stream);
            return self.open(storage);
        }
        stream
    }

    fn append(&self, stream: &SimLedgerStream, entries: &[Entry]) {
        let ledger = stream.stream.ledger();
        for entry in entries {
            if self.layout != LedgerLayout::OneSegment {
                let from = entry
                    .sequence
                    .saturating_sub(FILLERS)
                    .max(ledger.head() + 1);
                let fillers: Vec<Entry> = (from..entry.sequence)
                    .map(|seq| Entry::new(seq, vec![0xF1; 1000]).with_tag(FILLER_TAG))
                    .collect();
                for filler in fillers.chunks(2) {
                    ledger.write(filler).expect("writing fillers");
                }
            }
            ledger
                .write(std::slice::from_ref(entry))
                .expect("writing to the ledger");
        }
    }

    fn truncate(&self, stream: &SimLedgerStream, up_to: u64) {
        stream
            .stream
            .ledger()
            .delete(up_to)
            .expect("deleting from the ledger");
    }

    fn reopen(&self, stream: SimLedgerStream) -> Option<SimLedgerStream> {
        let storage = stream.storage.clone();
        drop(stream);
        Some(self.open(storage))
    }
}
