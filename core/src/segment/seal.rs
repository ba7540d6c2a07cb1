//! The seal frame, and reading a sealed segment through it without a scan.
//!
//! When a segment is full the writer appends one seal frame after the last record and stores
//! the seal's offset in the footer (the file's last 8 bytes). The seal holds the segment's
//! [`SegmentStats`] and a sparse index, one `(sequence - base, offset)` entry for the first
//! record at or after every `index_interval` bytes, so [`SealedSegment::seek`] reads a few
//! frames instead of the whole file.

use super::frame::{
    inspect, salt_seed, FrameKind, Inspect, Record, FLAG_CONTINUES, FRAME_HEADER_LEN,
};
use super::header::{FileHeader, HeaderError, FILE_HEADER_LEN};
use super::scan::{CorruptReason, SegmentStats};
use super::{decode_footer, u32_at, u64_at, Footer, FOOTER_LEN, FRAME_ALIGN};

/// Length of the seal payload before its index entries.
pub const SEAL_FIXED_LEN: usize = 56;

/// Length of one index entry.
pub(super) const INDEX_ENTRY_LEN: usize = 16;

/// The contents of a seal frame.
///
/// ```
/// use ringledger_core::segment::{FileHeader, SealedSegment, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// writer.append(1, 100, 0, b"a").unwrap();
/// let data_end = writer.append(2, 200, 0, b"b").unwrap();
/// writer.seal().unwrap();
///
/// let sealed = SealedSegment::open(&image).unwrap();
/// let seal = sealed.seal();
/// assert_eq!((seal.stats.count, seal.stats.max_timestamp), (2, 200));
/// assert_eq!(seal.data_end, data_end as u64);
/// assert_eq!(seal.index_len(), 2); // an index_interval of 0 indexes every record
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal<'a> {
    /// The records of the segment.
    pub stats: SegmentStats,
    /// Offset of the seal frame: the end of the records.
    pub data_end: u64,
    /// The byte spacing the writer used between index entries.
    pub index_interval: u32,
    /// The raw index entries.
    index: &'a [u8],
}

/// One sparse index entry.
///
/// ```
/// use ringledger_core::segment::{FileHeader, IndexEntry, SealedSegment, Writer};
///
/// let header = FileHeader { base_seq: 10, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// let second_at = writer.append(10, 0, 0, b"a").unwrap();
/// writer.append(13, 0, 0, b"b").unwrap();
/// writer.seal().unwrap();
///
/// let sealed = SealedSegment::open(&image).unwrap();
/// let entries: Vec<IndexEntry> = sealed.seal().entries().collect();
/// assert_eq!(entries[1], IndexEntry { relative_seq: 3, offset: second_at as u64 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// The record's sequence minus the segment's base sequence.
    pub relative_seq: u64,
    /// Offset of the record's frame.
    pub offset: u64,
}

impl<'a> Seal<'a> {
    /// Reads a seal payload; `None` when it does not have the seal layout.
    pub(super) fn parse(payload: &'a [u8]) -> Option<Self> {
        if payload.len() < SEAL_FIXED_LEN {
            return None;
        }
        let entries = u32_at(payload, 48) as usize;
        let index = &payload[SEAL_FIXED_LEN..];
        if index.len() != entries.checked_mul(INDEX_ENTRY_LEN)? {
            return None;
        }
        Some(Self {
            stats: SegmentStats {
                count: u64_at(payload, 0),
                first_seq: u64_at(payload, 8),
                last_seq: u64_at(payload, 16),
                min_timestamp: u64_at(payload, 24),
                max_timestamp: u64_at(payload, 32),
            },
            data_end: u64_at(payload, 40),
            index_interval: u32_at(payload, 52),
            index,
        })
    }

    /// Number of index entries.
    pub fn index_len(&self) -> usize {
        self.index.len() / INDEX_ENTRY_LEN
    }

    /// The index entry at `i`.
    pub fn entry(&self, i: usize) -> Option<IndexEntry> {
        let at = i.checked_mul(INDEX_ENTRY_LEN)?;
        let bytes = self.index.get(at..at + INDEX_ENTRY_LEN)?;
        Some(IndexEntry {
            relative_seq: u64_at(bytes, 0),
            offset: u64_at(bytes, 8),
        })
    }

    /// The index entries in order.
    pub fn entries(&self) -> impl Iterator<Item = IndexEntry> + '_ {
        (0..self.index_len()).filter_map(|i| self.entry(i))
    }
}

/// Writes a seal payload's fixed part into `out` (at least [`SEAL_FIXED_LEN`] bytes).
pub(super) fn write_seal_fixed(
    out: &mut [u8],
    stats: &SegmentStats,
    data_end: u64,
    entries: u32,
    index_interval: u32,
) {
    out[0..8].copy_from_slice(&stats.count.to_le_bytes());
    out[8..16].copy_from_slice(&stats.first_seq.to_le_bytes());
    out[16..24].copy_from_slice(&stats.last_seq.to_le_bytes());
    out[24..32].copy_from_slice(&stats.min_timestamp.to_le_bytes());
    out[32..40].copy_from_slice(&stats.max_timestamp.to_le_bytes());
    out[40..48].copy_from_slice(&data_end.to_le_bytes());
    out[48..52].copy_from_slice(&entries.to_le_bytes());
    out[52..56].copy_from_slice(&index_interval.to_le_bytes());
}

/// A frame that failed its checks at a known offset.
///
/// ```
/// use ringledger_core::segment::{CorruptReason, Corruption, FileHeader, SealedSegment, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// let second_at = writer.append(1, 0, 0, b"a").unwrap();
/// writer.append(2, 0, 0, b"b").unwrap();
/// writer.seal().unwrap();
/// image[second_at + 40] ^= 1; // bit rot in the second record's payload
///
/// let sealed = SealedSegment::open(&image).unwrap(); // records are checked when read
/// assert!(sealed.find(1).is_ok());
/// let Corruption { offset, reason } = sealed.find(2).unwrap_err();
/// assert_eq!((offset, reason), (second_at, CorruptReason::PayloadChecksum));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("corrupt segment at offset {offset}: {reason}")]
pub struct Corruption {
    /// Where the offending frame starts.
    pub offset: usize,
    /// What is wrong.
    pub reason: CorruptReason,
}

/// Why a segment could not be opened as sealed.
///
/// ```
/// use ringledger_core::segment::{FileHeader, OpenSealedError, Scanner, SealedSegment, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// Writer::create(&mut image, &header, 0).unwrap().append(1, 0, 0, b"a").unwrap();
/// let count = match SealedSegment::open(&image) {
///     Ok(sealed) => sealed.seal().stats.count,
///     Err(OpenSealedError::NotSealed) => Scanner::new(&image).unwrap().count() as u64,
///     Err(error) => panic!("damaged segment: {error}"),
/// };
/// assert_eq!(count, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenSealedError {
    /// The file header is invalid.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The image is shorter than the header's capacity.
    #[error("segment truncated: {len} of {capacity} bytes")]
    Truncated {
        /// The image's length.
        len: usize,
        /// The capacity in the header.
        capacity: u64,
    },
    /// The footer is zero: the segment was never sealed (scan it instead).
    #[error("segment is not sealed")]
    NotSealed,
    /// The footer, the seal or its index is invalid.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
}

/// A sealed segment, opened through its footer and seal, without a scan.
///
/// ```
/// use ringledger_core::segment::{FileHeader, SealedSegment, Writer};
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 4096, created_ns: 0 };
/// let mut image = vec![0u8; 4096];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// for seq in [1, 5, 9] {
///     writer.append(seq, 0, 0, &[seq as u8; 3]).unwrap();
/// }
/// writer.seal().unwrap();
/// let sealed = SealedSegment::open(&image).unwrap();
/// assert_eq!(sealed.find(5).unwrap().unwrap().payload, [5; 3]);
/// assert!(sealed.find(6).unwrap().is_none());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SealedSegment<'a> {
    image: &'a [u8],
    header: FileHeader,
    seed: u32,
    seal: Seal<'a>,
}

impl<'a> SealedSegment<'a> {
    /// Validates the header, the footer, the seal frame and the index's shape.
    ///
    /// Records are checked when they are read ([`seek`](Self::seek),
    /// [`records_from`](Self::records_from)); a full check is a [`Scanner`](super::Scanner) run.
    ///
    /// ```
    /// use ringledger_core::segment::{FileHeader, OpenSealedError, SealedSegment, Writer};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
    /// writer.append(1, 0, 0, b"a").unwrap();
    /// writer.seal().unwrap();
    /// assert_eq!(SealedSegment::open(&image).unwrap().header(), &header);
    /// let truncated = SealedSegment::open(&image[..512]).unwrap_err();
    /// assert_eq!(truncated, OpenSealedError::Truncated { len: 512, capacity: 1024 });
    /// ```
    pub fn open(image: &'a [u8]) -> Result<Self, OpenSealedError> {
        let header = FileHeader::decode(image)?;
        let capacity = match usize::try_from(header.capacity) {
            Ok(capacity) if capacity <= image.len() => capacity,
            _ => {
                return Err(OpenSealedError::Truncated {
                    len: image.len(),
                    capacity: header.capacity,
                })
            }
        };
        let area_end = capacity - FOOTER_LEN;
        let value = u64_at(image, area_end);
        let corrupt = |offset, reason| OpenSealedError::Corrupt(Corruption { offset, reason });
        let at = match decode_footer(header.salt, &image[area_end..]) {
            Footer::Open => return Err(OpenSealedError::NotSealed),
            Footer::Sealed(at) if at >= FILE_HEADER_LEN && at < area_end => at,
            Footer::Sealed(_) | Footer::Invalid(_) => {
                return Err(corrupt(area_end, CorruptReason::BadFooter { value }))
            }
        };
        let seed = salt_seed(header.salt);
        let frame = match inspect(image, at, area_end, seed) {
            Inspect::Frame(frame) if frame.fields.kind == FrameKind::Seal => frame,
            Inspect::Invalid { reason, .. } => return Err(corrupt(at, reason)),
            Inspect::Frame(_) | Inspect::ZeroHeader => {
                return Err(corrupt(area_end, CorruptReason::BadFooter { value }));
            }
            Inspect::HeaderCut | Inspect::Overrun => {
                return Err(corrupt(at, CorruptReason::FrameOverrun));
            }
        };
        let seal = Seal::parse(frame.payload).ok_or(corrupt(at, CorruptReason::SealMalformed))?;
        if seal.data_end != at as u64 {
            return Err(corrupt(at, CorruptReason::SealMismatch));
        }
        let mut previous: Option<IndexEntry> = None;
        for (i, entry) in seal.entries().enumerate() {
            let in_order = previous
                .is_none_or(|p| p.offset < entry.offset && p.relative_seq < entry.relative_seq);
            let in_bounds = entry.offset % FRAME_ALIGN as u64 == 0
                && entry.offset >= FILE_HEADER_LEN as u64
                && entry.offset.saturating_add(FRAME_HEADER_LEN as u64) <= value;
            if !in_order || !in_bounds {
                return Err(corrupt(at, CorruptReason::SealIndex { entry: i }));
            }
            previous = Some(entry);
        }
        Ok(Self {
            image: &image[..capacity],
            header,
            seed,
            seal,
        })
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The seal.
    pub fn seal(&self) -> &Seal<'a> {
        &self.seal
    }

    /// The record with exactly sequence `seq`, if the segment has it.
    pub fn find(&self, seq: u64) -> Result<Option<Record<'a>>, Corruption> {
        Ok(self.seek(seq)?.filter(|record| record.seq == seq))
    }

    /// The first record whose sequence is `seq` or greater, if any.
    pub fn seek(&self, seq: u64) -> Result<Option<Record<'a>>, Corruption> {
        self.records_from(seq).next().transpose()
    }

    /// The records from the first whose sequence is `seq` or greater, in order. Each is checked
    /// as it is read; the iterator ends after the first error.
    pub fn records_from(&self, seq: u64) -> SealedRecords<'a> {
        let data_end = self.seal.data_end as usize;
        let start = self.index_start(seq);
        SealedRecords {
            image: self.image,
            seed: self.seed,
            pos: start,
            data_end,
            from: seq,
            prev: None,
        }
    }

    /// Offset of the last indexed record whose sequence is at most `seq` (or of the first frame).
    fn index_start(&self, seq: u64) -> usize {
        let Some(relative) = seq.checked_sub(self.header.base_seq) else {
            return FILE_HEADER_LEN;
        };
        // Binary search for the number of entries with relative_seq <= relative.
        let (mut lo, mut hi) = (0, self.seal.index_len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.seal.entry(mid) {
                Some(entry) if entry.relative_seq <= relative => lo = mid + 1,
                _ => hi = mid,
            }
        }
        match lo.checked_sub(1).and_then(|i| self.seal.entry(i)) {
            Some(entry) => entry.offset as usize,
            None => FILE_HEADER_LEN,
        }
    }
}

/// The iterator returned by [`SealedSegment::records_from`].
///
/// ```
/// use ringledger_core::segment::{FileHeader, SealedSegment, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// for seq in [1, 3, 5] {
///     writer.append(seq, 0, 0, b"x").unwrap();
/// }
/// writer.seal().unwrap();
/// let sealed = SealedSegment::open(&image).unwrap();
/// let seqs: Result<Vec<u64>, _> = sealed.records_from(2).map(|r| r.map(|r| r.seq)).collect();
/// assert_eq!(seqs.unwrap(), [3, 5]);
/// ```
#[derive(Debug, Clone)]
pub struct SealedRecords<'a> {
    image: &'a [u8],
    seed: u32,
    pos: usize,
    data_end: usize,
    from: u64,
    prev: Option<u64>,
}

impl<'a> Iterator for SealedRecords<'a> {
    type Item = Result<Record<'a>, Corruption>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.pos < self.data_end {
            let at = self.pos;
            let fail = |reason| Some(Err(Corruption { offset: at, reason }));
            let frame = match inspect(self.image, at, self.data_end, self.seed) {
                Inspect::Frame(frame) if frame.fields.kind == FrameKind::Record => frame,
                Inspect::Invalid { reason, .. } => {
                    self.pos = self.data_end;
                    return fail(reason);
                }
                Inspect::Frame(_) => {
                    self.pos = self.data_end;
                    return fail(CorruptReason::SealMismatch);
                }
                Inspect::ZeroHeader | Inspect::HeaderCut | Inspect::Overrun => {
                    self.pos = self.data_end;
                    return fail(CorruptReason::FrameOverrun);
                }
            };
            let seq = frame.fields.seq;
            if let Some(prev) = self.prev.filter(|&prev| seq <= prev) {
                self.pos = self.data_end;
                return fail(CorruptReason::SequenceNotIncreasing { prev, seq });
            }
            self.prev = Some(seq);
            self.pos = frame.end;
            if seq >= self.from {
                return Some(Ok(Record {
                    offset: at,
                    seq,
                    timestamp: frame.fields.timestamp,
                    tag: frame.fields.tag,
                    payload: frame.payload,
                    continues: frame.fields.flags & FLAG_CONTINUES != 0,
                }));
            }
        }
        None
    }
}

impl core::iter::FusedIterator for SealedRecords<'_> {}
