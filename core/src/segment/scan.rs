//! Walking a segment image frame by frame, and deciding how it ends.
//!
//! The scanner is what recovery, `verify` and readers of the unsealed segment use. It yields
//! each valid record in order and stops at the first thing that is not one, classifying it:
//!
//! - [`ScanEnd::CleanEnd`]: everything after the last frame is zero (or the seal closed the
//!   segment and only zeros and a matching footer follow it).
//! - [`ScanEnd::TornTail`]: an interrupted append: a frame cut short by the end of the image,
//!   or a frame whose checksum fails with nothing written after it.
//! - [`ScanEnd::Corrupt`]: anything else: a frame that fails a check while bytes were written
//!   after it, a valid frame that breaks the format's rules (sequence order, seal contents).
//!
//! It never returns a frame whose bytes changed since they were written: every field is under
//! the header checksum, the payload under its own, and the salt ties both to this file.

use super::frame::{
    header_checksum_holds, inspect, salt_seed, FrameKind, Inspect, Record, FLAG_CONTINUES,
    FRAME_HEADER_LEN,
};
use super::header::{FileHeader, HeaderError, FILE_HEADER_LEN};
use super::seal::{IndexEntry, Seal};
use super::{all_zero, decode_footer, u64_at, Footer, FOOTER_LEN, FRAME_ALIGN};

/// Why the scan stopped at a corrupt frame.
///
/// ```
/// use ringledger_core::segment::{CorruptReason, FileHeader, ScanEnd, Scanner, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let end = Writer::create(&mut image, &header, 0).unwrap().append(1, 0, 0, b"a").unwrap();
/// image[end + 100] = 0xFF; // a stray byte after the last frame
/// match Scanner::new(&image).unwrap().finish() {
///     ScanEnd::Corrupt { offset, reason: CorruptReason::DataAfterEnd { at } } => {
///         assert_eq!((offset, at), (end, end + 100));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptReason {
    /// The frame header's checksum does not match (bit rot, a frame from another segment,
    /// garbage).
    #[error("frame header checksum mismatch")]
    HeaderChecksum,
    /// The payload's checksum does not match.
    #[error("payload checksum mismatch")]
    PayloadChecksum,
    /// A frame kind this version does not know.
    #[error("unknown frame kind {kind}")]
    UnknownKind {
        /// The kind byte.
        kind: u8,
    },
    /// A valid frame of another kind (a seal) where a record was asked for
    /// ([`RecordReader::record_at`](super::RecordReader::record_at) at a seal's offset).
    #[error("a frame of kind {kind} where a record was expected")]
    NotARecord {
        /// The frame's kind byte.
        kind: u8,
    },
    /// A reserved header field is not zero.
    #[error("reserved frame header field is not zero")]
    NonZeroReserved,
    /// The padding after the payload is not zero.
    #[error("payload padding is not zero")]
    NonZeroPadding,
    /// The frame's length runs past the end of the frame area.
    #[error("frame length runs past the end of the segment")]
    FrameOverrun,
    /// A record's sequence is below the segment's base sequence.
    #[error("sequence {seq} is below the segment's base sequence {base}")]
    SequenceBelowBase {
        /// The record's sequence.
        seq: u64,
        /// The base sequence from the file header.
        base: u64,
    },
    /// A record's sequence is not greater than the previous record's (spliced or duplicated).
    #[error("sequence {seq} does not follow {prev}")]
    SequenceNotIncreasing {
        /// The previous record's sequence.
        prev: u64,
        /// This record's sequence.
        seq: u64,
    },
    /// Nothing was written at this offset, but bytes were written after it.
    #[error("non-zero bytes at offset {at} after the end of the frames")]
    DataAfterEnd {
        /// Offset of the first such byte.
        at: usize,
    },
    /// The seal's payload does not have the seal layout.
    #[error("malformed seal")]
    SealMalformed,
    /// The seal's statistics disagree with the records before it.
    #[error("seal does not match the records")]
    SealMismatch,
    /// A seal index entry does not point at the record it names.
    #[error("seal index entry {entry} is wrong")]
    SealIndex {
        /// The index entry's position.
        entry: usize,
    },
    /// The footer neither is zero nor points at the seal.
    #[error("footer {value:#x} does not point at a seal")]
    BadFooter {
        /// The footer's value.
        value: u64,
    },
}

/// Counts and bounds of the records in a segment (what a seal records).
///
/// ```
/// use ringledger_core::segment::{FileHeader, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// writer.append(4, 2_000, 0, b"b").unwrap();
/// writer.append(9, 1_000, 0, b"a").unwrap(); // timestamps need not increase
/// let stats = writer.stats();
/// assert_eq!((stats.count, stats.first_seq, stats.last_seq), (2, 4, 9));
/// assert_eq!((stats.min_timestamp, stats.max_timestamp), (1_000, 2_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentStats {
    /// Number of records.
    pub count: u64,
    /// The first record's sequence (0 when there is none).
    pub first_seq: u64,
    /// The last record's sequence (0 when there is none).
    pub last_seq: u64,
    /// The smallest record timestamp (0 when there is none).
    pub min_timestamp: u64,
    /// The largest record timestamp (0 when there is none).
    pub max_timestamp: u64,
}

impl SegmentStats {
    pub(super) fn add(&mut self, seq: u64, timestamp: u64) {
        if self.count == 0 {
            self.first_seq = seq;
            self.min_timestamp = timestamp;
            self.max_timestamp = timestamp;
        }
        self.count += 1;
        self.last_seq = seq;
        self.min_timestamp = self.min_timestamp.min(timestamp);
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }
}

/// How a scan ended.
///
/// ```
/// use ringledger_core::segment::{FileHeader, ScanEnd, Scanner, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let end = Writer::create(&mut image, &header, 0).unwrap().append(1, 0, 0, b"a").unwrap();
/// let next_append = match Scanner::new(&image).unwrap().finish() {
///     ScanEnd::CleanEnd { seal: Some(_), .. } => None, // full: start a new segment
///     ScanEnd::CleanEnd { offset, seal: None } => Some(offset),
///     ScanEnd::TornTail { .. } | ScanEnd::Corrupt { .. } => None, // run `recover` first
/// };
/// assert_eq!(next_append, Some(end));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd<'a> {
    /// Every frame was valid and nothing but zeros follows `offset`, the end of the last frame
    /// (the seal's end in a sealed segment). New frames go at `offset` unless it is sealed.
    CleanEnd {
        /// End of the last valid frame.
        offset: usize,
        /// The seal, if the segment is sealed.
        seal: Option<Seal<'a>>,
    },
    /// An interrupted append at `offset`: nothing valid follows; the bytes from `offset` on are
    /// to be zeroed before appending there.
    TornTail {
        /// Where the torn frame starts (the end of the valid frames).
        offset: usize,
    },
    /// The bytes at `offset` are not a valid frame, and are not a torn tail.
    Corrupt {
        /// Where the offending frame (or byte) starts.
        offset: usize,
        /// What is wrong.
        reason: CorruptReason,
    },
}

impl ScanEnd<'_> {
    /// The end of the valid frames: the offset where the scan stopped.
    pub fn offset(&self) -> usize {
        match *self {
            ScanEnd::CleanEnd { offset, .. }
            | ScanEnd::TornTail { offset }
            | ScanEnd::Corrupt { offset, .. } => offset,
        }
    }
}

/// Yields the valid records of a segment image in order; then [`Scanner::end`] says why it
/// stopped.
///
/// ```
/// use ringledger_core::segment::{FileHeader, ScanEnd, Scanner, Writer};
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 4096, created_ns: 0 };
/// let mut image = vec![0u8; 4096];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// writer.append(1, 0, 0, b"kept").unwrap();
/// let end = writer.end();
/// writer.append(2, 0, 0, b"torn").unwrap();
/// image[end + 20] ^= 1; // a flipped bit in the second frame
///
/// let mut scanner = Scanner::new(&image).unwrap();
/// assert_eq!(scanner.next().unwrap().payload, b"kept");
/// assert!(scanner.next().is_none());
/// assert!(!matches!(scanner.end(), Some(ScanEnd::CleanEnd { .. })), "{:?}", scanner.end());
/// ```
///
/// The image may be shorter than the header's capacity (a truncated file, or a prefix of the
/// mapping): the frame area then ends with the image, and a frame cut by it is a torn tail.
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    image: &'a [u8],
    header: FileHeader,
    seed: u32,
    /// Offset of the next frame.
    pos: usize,
    /// Where frames must end: the capacity less the footer, or the image's end if shorter.
    area_end: usize,
    /// Where the image's meaningful bytes end: the capacity, or the image's end if shorter.
    tail_end: usize,
    stats: SegmentStats,
    end: Option<ScanEnd<'a>>,
    /// End of a seal that matched the records, even if what follows it is corrupt.
    seal_end: Option<usize>,
}

impl<'a> Scanner<'a> {
    /// Starts scanning `image` after validating its file header.
    ///
    /// ```
    /// use ringledger_core::segment::{FileHeader, HeaderError, Scanner, Writer};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// Writer::create(&mut image, &header, 0).unwrap();
    /// let scanner = Scanner::new(&image).unwrap();
    /// assert_eq!(scanner.header(), &header);
    /// assert_eq!(scanner.count(), 0); // no records yet
    /// assert_eq!(Scanner::new(&[0; 64]).unwrap_err(), HeaderError::BadMagic);
    /// ```
    pub fn new(image: &'a [u8]) -> Result<Self, HeaderError> {
        let header = FileHeader::decode(image)?;
        let capacity = usize::try_from(header.capacity).unwrap_or(usize::MAX);
        let tail_end = capacity.min(image.len());
        let area_end = (capacity - FOOTER_LEN).min(image.len());
        Ok(Self {
            image,
            header,
            seed: salt_seed(header.salt),
            pos: FILE_HEADER_LEN,
            area_end,
            tail_end,
            stats: SegmentStats::default(),
            end: None,
            seal_end: None,
        })
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The records yielded so far.
    pub fn stats(&self) -> &SegmentStats {
        &self.stats
    }

    /// How the scan ended, once the iterator has returned `None`.
    pub fn end(&self) -> Option<&ScanEnd<'a>> {
        self.end.as_ref()
    }

    /// Runs the scan to its end and says how it ended.
    pub fn finish(mut self) -> ScanEnd<'a> {
        for _ in self.by_ref() {}
        match self.end {
            Some(end) => end,
            // Unreachable: the iterator sets `end` before it returns `None`.
            None => ScanEnd::TornTail { offset: self.pos },
        }
    }

    /// The end of the seal frame, when the scan reached a seal that matches the records. Set
    /// also when the bytes after the seal (the zero gap, the footer) are corrupt: the records
    /// and the seal are then intact, and recovery keeps them.
    pub(super) fn seal_end(&self) -> Option<usize> {
        self.seal_end
    }

    /// Whether the image stops before the header's capacity.
    fn truncated(&self) -> bool {
        (self.image.len() as u64) < self.header.capacity
    }

    /// Everything from `from` to the end of the image's meaningful bytes is zero.
    fn zero_from(&self, from: usize) -> bool {
        from >= self.tail_end || all_zero(&self.image[from..self.tail_end])
    }

    /// Whether a frame header with a valid checksum starts at an aligned offset in `from..to`.
    fn valid_header_in(&self, from: usize, to: usize) -> bool {
        (from..to)
            .step_by(FRAME_ALIGN)
            .any(|at| header_checksum_holds(self.image, at, self.seed))
    }

    /// Decides what ends the scan at `self.pos`, given what is there.
    fn stop(&mut self, what: Inspect<'a>) {
        let at = self.pos;
        let end = match what {
            Inspect::Frame(_) => return,
            Inspect::ZeroHeader | Inspect::HeaderCut if self.zero_from(at) => ScanEnd::CleanEnd {
                offset: at,
                seal: None,
            },
            Inspect::HeaderCut | Inspect::Overrun if self.truncated() => {
                ScanEnd::TornTail { offset: at }
            }
            Inspect::HeaderCut | Inspect::Overrun => ScanEnd::Corrupt {
                offset: at,
                reason: CorruptReason::FrameOverrun,
            },
            Inspect::ZeroHeader => {
                let rest = &self.image[at..self.tail_end];
                let first = at + rest.iter().position(|&b| b != 0).unwrap_or(0);
                ScanEnd::Corrupt {
                    offset: at,
                    reason: CorruptReason::DataAfterEnd { at: first },
                }
            }
            Inspect::Invalid {
                reason,
                claimed_end,
            } => {
                let checksum = matches!(
                    reason,
                    CorruptReason::HeaderChecksum | CorruptReason::PayloadChecksum
                );
                // A failed header checksum leaves the length unverified: a flipped length bit
                // can claim an end past later, intact frames. Those are not a torn tail.
                let frames_inside = || {
                    reason == CorruptReason::HeaderChecksum
                        && self.valid_header_in(at + FRAME_HEADER_LEN, claimed_end)
                };
                if checksum && self.zero_from(claimed_end) && !frames_inside() {
                    ScanEnd::TornTail { offset: at }
                } else {
                    ScanEnd::Corrupt { offset: at, reason }
                }
            }
        };
        self.end = Some(end);
    }

    /// Checks the seal at `self.pos` against the records and what follows it.
    fn close_with_seal(&mut self, payload: &'a [u8], seal_end: usize) -> ScanEnd<'a> {
        let at = self.pos;
        let corrupt = |reason| ScanEnd::Corrupt { offset: at, reason };
        let Some(seal) = Seal::parse(payload) else {
            return corrupt(CorruptReason::SealMalformed);
        };
        if seal.stats != self.stats || seal.data_end != at as u64 {
            return corrupt(CorruptReason::SealMismatch);
        }
        let mut previous: Option<IndexEntry> = None;
        for (i, entry) in seal.entries().enumerate() {
            // In increasing order, as `SealedSegment::open` requires (and so that a seal cannot
            // make the scan check one large frame again for every entry).
            let in_order = previous
                .is_none_or(|p| p.offset < entry.offset && p.relative_seq < entry.relative_seq);
            if !in_order {
                return corrupt(CorruptReason::SealIndex { entry: i });
            }
            previous = Some(entry);
            let ok = usize::try_from(entry.offset).ok().is_some_and(|offset| {
                offset % FRAME_ALIGN == 0
                    && offset >= FILE_HEADER_LEN
                    && offset < at
                    && matches!(
                        inspect(self.image, offset, at, self.seed),
                        Inspect::Frame(f) if f.fields.kind == FrameKind::Record
                            && Some(f.fields.seq) == self.header.base_seq.checked_add(entry.relative_seq)
                    )
            });
            if !ok {
                return corrupt(CorruptReason::SealIndex { entry: i });
            }
        }
        self.seal_end = Some(seal_end);
        if !all_zero(&self.image[seal_end..self.area_end]) {
            let first = self.image[seal_end..self.area_end]
                .iter()
                .position(|&b| b != 0);
            return ScanEnd::Corrupt {
                offset: seal_end,
                reason: CorruptReason::DataAfterEnd {
                    at: seal_end + first.unwrap_or(0),
                },
            };
        }
        if !self.truncated() {
            let footer_at = self.area_end;
            match decode_footer(self.header.salt, &self.image[footer_at..]) {
                Footer::Open => {}
                Footer::Sealed(seal_at) if seal_at == at => {}
                Footer::Sealed(_) | Footer::Invalid(_) => {
                    return ScanEnd::Corrupt {
                        offset: footer_at,
                        reason: CorruptReason::BadFooter {
                            value: u64_at(self.image, footer_at),
                        },
                    };
                }
            }
        }
        ScanEnd::CleanEnd {
            offset: seal_end,
            seal: Some(seal),
        }
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.end.is_some() {
            return None;
        }
        let at = self.pos;
        let frame = match inspect(self.image, at, self.area_end, self.seed) {
            Inspect::Frame(frame) => frame,
            other => {
                self.stop(other);
                return None;
            }
        };
        let fields = frame.fields;
        if fields.kind == FrameKind::Seal {
            self.end = Some(self.close_with_seal(frame.payload, frame.end));
            return None;
        }
        let reason = if fields.seq < self.header.base_seq {
            Some(CorruptReason::SequenceBelowBase {
                seq: fields.seq,
                base: self.header.base_seq,
            })
        } else if self.stats.count > 0 && fields.seq <= self.stats.last_seq {
            Some(CorruptReason::SequenceNotIncreasing {
                prev: self.stats.last_seq,
                seq: fields.seq,
            })
        } else {
            None
        };
        if let Some(reason) = reason {
            self.end = Some(ScanEnd::Corrupt { offset: at, reason });
            return None;
        }
        self.stats.add(fields.seq, fields.timestamp);
        self.pos = frame.end;
        Some(Record {
            offset: at,
            seq: fields.seq,
            timestamp: fields.timestamp,
            tag: fields.tag,
            payload: frame.payload,
            continues: fields.flags & FLAG_CONTINUES != 0,
        })
    }
}

impl core::iter::FusedIterator for Scanner<'_> {}
