//! One segment file as the ledger holds it: the mapping, the committed end readers may read
//! below, and an in-memory sparse index for finding a sequence.

use crate::sync::{lock, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use ringledger_core::segment::{
    CorruptReason, FileHeader, IndexEntry, Record, RecordReader, FOOTER_LEN,
};

use crate::storage::Region;

/// The mapping of a segment file, shared by the segment and by every `Bytes` handed out from
/// it: the file stays mapped while any payload of it is alive.
#[derive(Debug)]
pub(super) struct Mapping {
    region: Box<dyn Region>,
}

impl Mapping {
    pub(super) fn new(region: Box<dyn Region>) -> Arc<Self> {
        Arc::new(Self { region })
    }

    pub(super) fn region(&self) -> &dyn Region {
        &*self.region
    }

    pub(super) fn len(&self) -> usize {
        self.region.len()
    }

    /// The bytes `range`, shared.
    ///
    /// # Safety
    ///
    /// Nobody may write to `range` while the returned slice lives: the caller keeps `range`
    /// below a committed end (which is never written again), or holds the only access.
    pub(super) unsafe fn slice(&self, start: usize, end: usize) -> &[u8] {
        assert!(start <= end && end <= self.len());
        // SAFETY: in bounds (checked above) of a mapping that lives as long as `self`; the
        // caller guarantees nobody writes the range meanwhile.
        unsafe { std::slice::from_raw_parts(self.region.as_ptr().add(start), end - start) }
    }

    /// The bytes from `start` to the end of the mapping, mutably.
    ///
    /// # Safety
    ///
    /// Nobody else may read or write the range while the returned slice lives: the ledger's
    /// writer (which holds the writer lock) is the only one touching bytes at or above the
    /// committed end.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn tail_mut(&self, start: usize) -> &mut [u8] {
        assert!(start <= self.len());
        // SAFETY: in bounds of a live mapping; exclusivity is the caller's promise.
        unsafe {
            std::slice::from_raw_parts_mut(self.region.as_ptr().add(start), self.len() - start)
        }
    }

    /// Writes the footer (the last 8 bytes).
    ///
    /// # Safety
    ///
    /// As for [`tail_mut`](Self::tail_mut): nobody else touches the footer. Readers never
    /// read it; the writer has moved on from a sealed segment.
    pub(super) unsafe fn write_footer(&self, footer: [u8; FOOTER_LEN]) {
        // SAFETY: forwarded to the caller.
        let tail = unsafe { self.tail_mut(self.len() - FOOTER_LEN) };
        tail.copy_from_slice(&footer);
    }
}

/// Committed bytes `[0, len)` of a mapping, as the owner of a [`Bytes`].
struct Committed {
    mapping: Arc<Mapping>,
    len: usize,
}

impl AsRef<[u8]> for Committed {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `len` is a committed end: bytes below it are never written again.
        unsafe { self.mapping.slice(0, self.len) }
    }
}

/// A sparse index of a segment: `(sequence, offset)` of some records, in increasing order,
/// appended by the writer and read by readers without locks.
#[derive(Debug)]
struct SparseIndex {
    /// `2 * capacity` words: sequence, offset, sequence, offset, ...
    words: Box<[AtomicU64]>,
    len: AtomicUsize,
}

impl SparseIndex {
    fn with_capacity(entries: usize) -> Self {
        Self {
            words: (0..entries * 2).map(|_| AtomicU64::new(0)).collect(),
            len: AtomicUsize::new(0),
        }
    }

    /// Adds an entry (writer only); silently full once the capacity is used.
    fn push(&self, seq: u64, offset: usize) {
        let n = self.len.load(Ordering::Relaxed);
        if 2 * n + 1 < self.words.len() {
            self.words[2 * n].store(seq, Ordering::Relaxed);
            self.words[2 * n + 1].store(offset as u64, Ordering::Relaxed);
            self.len.store(n + 1, Ordering::Release);
        }
    }

    /// The entries, in order.
    fn entries(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        let n = self.len.load(Ordering::Acquire);
        (0..n).map(move |i| {
            (
                self.words[2 * i].load(Ordering::Relaxed),
                self.words[2 * i + 1].load(Ordering::Relaxed) as usize,
            )
        })
    }

    /// Offset of the last indexed record with a sequence `<= seq`, if any.
    fn floor(&self, seq: u64) -> Option<usize> {
        let n = self.len.load(Ordering::Acquire);
        let seq_at = |i: usize| self.words[2 * i].load(Ordering::Relaxed);
        // The number of entries with a sequence <= seq.
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if seq_at(mid) <= seq {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo > 0).then(|| self.words[2 * (lo - 1) + 1].load(Ordering::Relaxed) as usize)
    }
}

/// The tag and offset of every record of a segment from its first, in two dense arrays: a
/// filtered read tests tags here instead of reading every record's header. Built by filtered
/// reads (never by the writer) from headers whose checksum holds, extended as the segment
/// grows; 8 bytes per record, only for segments a filter has read.
#[derive(Debug, Default)]
struct TagColumn {
    /// The records below this offset are in the column.
    end: usize,
    tags: Vec<u32>,
    offsets: Vec<u32>,
}

/// A run of a segment's [`TagColumn`], copied out of its lock.
#[derive(Debug, Default)]
pub(super) struct TagRun {
    pub(super) tags: Vec<u32>,
    pub(super) offsets: Vec<u32>,
    /// Whether the run reaches the last record of the image it was taken for.
    pub(super) to_end: bool,
}

/// What readers know about a segment's records; published by the writer with the end.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) count: u64,
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
}

/// A segment of the ledger.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) name: String,
    pub(super) header: FileHeader,
    pub(super) mapping: Arc<Mapping>,
    reader: RecordReader,
    /// The committed end: bytes below it are complete records (and, once sealed, the seal).
    end: AtomicUsize,
    /// End of the records (the seal's offset, once sealed).
    data_end: AtomicUsize,
    count: AtomicU64,
    first_seq: AtomicU64,
    last_seq: AtomicU64,
    sealed: AtomicBool,
    /// The records of a sealed segment as one `Bytes`, payloads are slices of it.
    sealed_bytes: OnceLock<Bytes>,
    index: SparseIndex,
    /// Bytes between index entries.
    pub(super) index_interval: usize,
    /// The writer's next index point: the first record at or after it gets an entry.
    next_index_at: AtomicUsize,
    /// Pages below this were faulted in ahead of the writer.
    prefaulted: AtomicUsize,
    /// Whether a prefault job follows the writer through this segment now.
    prefaulting: AtomicBool,
    /// Tags and offsets for filtered reads, built on demand.
    column: Mutex<TagColumn>,
}

impl Segment {
    /// A segment whose records end at `data_end`; `index_entries` bounds the sparse index.
    pub(super) fn new(
        name: String,
        header: FileHeader,
        mapping: Arc<Mapping>,
        index_interval: usize,
    ) -> Self {
        let interval = index_interval.max(1);
        let capacity = mapping.len() / interval + 2;
        Self {
            name,
            reader: RecordReader::new(&header),
            header,
            mapping,
            end: AtomicUsize::new(ringledger_core::segment::FILE_HEADER_LEN),
            data_end: AtomicUsize::new(ringledger_core::segment::FILE_HEADER_LEN),
            count: AtomicU64::new(0),
            first_seq: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
            sealed: AtomicBool::new(false),
            sealed_bytes: OnceLock::new(),
            index: SparseIndex::with_capacity(capacity),
            index_interval: interval,
            next_index_at: AtomicUsize::new(ringledger_core::segment::FILE_HEADER_LEN),
            prefaulted: AtomicUsize::new(0),
            prefaulting: AtomicBool::new(false),
            column: Mutex::new(TagColumn::default()),
        }
    }

    /// Up to `max` entries of the tag column from the first record at or after `offset` (a
    /// record's offset), after extending the column over `records` (a
    /// [`records`](Self::records) image). `None` when the segment is too large for the
    /// column's 32-bit offsets.
    pub(super) fn tag_run(
        &self,
        records: &[u8],
        offset: usize,
        max: usize,
        run: &mut TagRun,
    ) -> Result<Option<()>, (usize, CorruptReason)> {
        if self.mapping.len() > u32::MAX as usize {
            return Ok(None);
        }
        let mut column = lock(&self.column);
        let mut at = column.end.max(ringledger_core::segment::FILE_HEADER_LEN);
        while at < records.len() {
            let record = self.skim_at(records, at).map_err(|reason| (at, reason))?;
            column.tags.push(record.tag);
            column.offsets.push(at as u32);
            at = record.end();
        }
        column.end = column.end.max(at);
        // The column may reach past this image (taken before another reader extended it).
        let within = column
            .offsets
            .partition_point(|&o| (o as usize) < records.len());
        let first = column.offsets[..within].partition_point(|&o| (o as usize) < offset);
        let last = within.min(first.saturating_add(max));
        run.tags.clear();
        run.tags.extend_from_slice(&column.tags[first..last]);
        run.offsets.clear();
        run.offsets.extend_from_slice(&column.offsets[first..last]);
        run.to_end = last == within;
        Ok(Some(()))
    }

    pub(super) fn base(&self) -> u64 {
        self.header.base_seq
    }

    /// The committed counts.
    pub(super) fn counts(&self) -> Counts {
        // `end` is stored last by the writer; loading it first orders the counts after it.
        let _ = self.end.load(Ordering::Acquire);
        Counts {
            count: self.count.load(Ordering::Relaxed),
            first_seq: self.first_seq.load(Ordering::Relaxed),
            last_seq: self.last_seq.load(Ordering::Relaxed),
        }
    }

    /// Notes that pages below `to` were faulted in.
    pub(super) fn set_prefaulted(&self, to: usize) {
        self.prefaulted.fetch_max(to, Ordering::Relaxed);
    }

    /// Where the prefaulted pages end.
    pub(super) fn prefaulted(&self) -> usize {
        self.prefaulted.load(Ordering::Relaxed)
    }

    /// Claims the right to start a prefault job; `false` if one is running.
    pub(super) fn start_prefault_job(&self) -> bool {
        !self.prefaulting.swap(true, Ordering::AcqRel)
    }

    /// A prefault job is over.
    pub(super) fn end_prefault_job(&self) {
        self.prefaulting.store(false, Ordering::Release);
    }

    /// Whether the page holding byte `at` of the file is in the page cache (for tests of
    /// what the writer and the background jobs leave there).
    #[cfg(all(test, target_os = "linux"))]
    pub(super) fn resident(&self, at: usize) -> bool {
        let region = self.mapping.region();
        let page = at & !4095;
        let mut vec = 0u8;
        // SAFETY: a page-aligned range of one page inside the live mapping, and one byte of
        // result for it.
        let rc = unsafe { libc::mincore(region.as_ptr().add(page).cast(), 4096, &mut vec) };
        assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
        vec & 1 == 1
    }

    /// The committed end of the records.
    pub(super) fn data_end(&self) -> usize {
        self.data_end.load(Ordering::Acquire)
    }

    pub(super) fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }

    /// Notes an index entry for a record the writer is about to publish.
    pub(super) fn index_record(&self, seq: u64, offset: usize) {
        self.index.push(seq, offset);
    }

    /// Indexes the record at `offset` if the interval calls for it (writer and recovery only).
    pub(super) fn maybe_index(&self, seq: u64, offset: usize) {
        if offset >= self.next_index_at.load(Ordering::Relaxed) {
            self.index.push(seq, offset);
            self.next_index_at
                .store(offset + self.index_interval, Ordering::Relaxed);
        }
    }

    /// Publishes records up to `end` (writer only).
    pub(super) fn publish(&self, end: usize, counts: Counts) {
        self.count.store(counts.count, Ordering::Relaxed);
        self.first_seq.store(counts.first_seq, Ordering::Relaxed);
        self.last_seq.store(counts.last_seq, Ordering::Relaxed);
        self.data_end.store(end, Ordering::Release);
        self.end.store(end, Ordering::Release);
    }

    /// Marks the segment sealed, with its records ending at the current data end.
    pub(super) fn publish_sealed(&self) {
        let len = self.data_end();
        let _ = self.sealed_bytes.set(Bytes::from_owner(Committed {
            mapping: Arc::clone(&self.mapping),
            len,
        }));
        self.sealed.store(true, Ordering::Release);
    }

    /// The committed records as one `Bytes` (zero-copy: it keeps the mapping alive).
    pub(super) fn records(&self) -> Bytes {
        if let Some(bytes) = self.sealed_bytes.get() {
            return bytes.clone();
        }
        Bytes::from_owner(Committed {
            mapping: Arc::clone(&self.mapping),
            len: self.data_end(),
        })
    }

    /// The sparse index, as the seal stores it: the first record at or after every
    /// `index_interval` bytes.
    pub(super) fn seal_index(&self) -> impl Iterator<Item = IndexEntry> + '_ {
        let base = self.header.base_seq;
        self.index.entries().map(move |(seq, offset)| IndexEntry {
            relative_seq: seq.wrapping_sub(base),
            offset: offset as u64,
        })
    }

    /// Where to start walking to find `seq`: an indexed record at or before it.
    pub(super) fn seek(&self, seq: u64) -> usize {
        self.index
            .floor(seq)
            .unwrap_or(ringledger_core::segment::FILE_HEADER_LEN)
    }

    /// The record at `offset` of `records`, its header validated but not its payload.
    pub(super) fn skim_at<'a>(
        &self,
        records: &'a [u8],
        offset: usize,
    ) -> Result<Record<'a>, CorruptReason> {
        self.reader.skim_at(records, offset)
    }

    /// The record at `offset` of `records` (a [`records`](Self::records) image), validated.
    pub(super) fn record_at<'a>(
        &self,
        records: &'a [u8],
        offset: usize,
    ) -> Result<Record<'a>, CorruptReason> {
        self.reader.record_at(records, offset)
    }
}
