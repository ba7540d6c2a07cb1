//! Appending frames to a segment image, and sealing it.
//!
//! The writer owns the image mutably (in the ledger: the writable mapping of the one segment
//! being appended to). After [`Writer::append`] returns the new end, the bytes below it are a
//! complete, valid prefix; the ledger publishes that end to readers (release/acquire) and syncs.
//! The writer always keeps room for the seal, so a full segment can always be sealed.

use super::frame::{
    frame_len, salt_seed, write_frame, write_header, FrameFields, FrameKind, FLAG_CONTINUES,
    FRAME_HEADER_LEN,
};
use super::header::{FileHeader, HeaderError, FILE_HEADER_LEN};
use super::scan::{ScanEnd, Scanner, SegmentStats};
use super::seal::{write_seal_fixed, IndexEntry, INDEX_ENTRY_LEN, SEAL_FIXED_LEN};
use super::{encode_footer, u32_at, u64_at, FOOTER_LEN};

/// Why an append, a seal or opening a writer failed. Nothing was written when it fails.
///
/// ```
/// use ringledger_core::segment::{FileHeader, WriteError, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// writer.append(5, 0, 0, b"a").unwrap();
/// match writer.append(5, 0, 0, b"again") {
///     Err(WriteError::NotIncreasing { last, seq }) => assert_eq!((last, seq), (5, 5)),
///     other => panic!("{other:?}"),
/// }
/// match writer.append(6, 0, 0, &[0; 1000]) {
///     Err(WriteError::Full { .. }) => {} // seal this segment, continue in a new one
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The file header is invalid.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The buffer's length is not the header's capacity.
    #[error("buffer is {len} bytes but the segment capacity is {capacity}")]
    CapacityMismatch {
        /// The buffer's length.
        len: usize,
        /// The capacity in the header.
        capacity: u64,
    },
    /// The frame (plus the room kept for the seal) does not fit: time for a new segment.
    #[error("segment full: the frame needs {needed} bytes, {available} are left")]
    Full {
        /// Bytes the frame and the seal it implies need.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A sequence not greater than the last one written (or below the base sequence).
    #[error("sequence {seq} must be greater than {last}")]
    NotIncreasing {
        /// The last sequence written, or the base sequence minus one.
        last: u64,
        /// The rejected sequence.
        seq: u64,
    },
    /// The segment is sealed (or its scan found a seal): no more appends.
    #[error("segment is sealed")]
    Sealed,
    /// The index entries given to [`Appender::seal_frame_indexed`] are not the ones the
    /// records call for.
    #[error("the seal needs {expected} index entries, a different number was given")]
    IndexMismatch {
        /// How many the records call for.
        expected: usize,
    },
    /// The image does not end cleanly: run [`recover`](super::recover) first.
    #[error("segment needs recovery: invalid bytes at offset {offset}")]
    NeedsRecovery {
        /// Where the valid frames end.
        offset: usize,
    },
}

/// The bookkeeping of an append: where the next frame goes, the records so far and the seal's
/// index, detached from the image.
///
/// [`Writer`] pairs it with a `&mut [u8]` of the whole image. The ledger uses it directly: the
/// image there is a shared mapping whose bytes below [`end`](Self::end) are being read by other
/// threads, so the appender is handed only the unwritten part of the image (`image[end..]`)
/// mutably, and the written part (`image[..end]`) shared, when it seals.
///
/// ```
/// use ringledger_core::segment::{Appender, FileHeader, SealedSegment};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// header.encode(&mut image).unwrap();
/// let mut appender = Appender::create(&header, 0).unwrap();
/// for seq in 1..=2 {
///     let end = appender.end();
///     appender.append(&mut image[end..], seq, 0, 0, b"entry").unwrap();
/// }
/// let (records, tail) = image.split_at_mut(appender.end());
/// appender.seal(records, tail).unwrap();
/// assert_eq!(SealedSegment::open(&image).unwrap().seal().stats.count, 2);
/// ```
#[derive(Debug, Clone)]
pub struct Appender {
    header: FileHeader,
    seed: u32,
    /// End of the last frame written: where the next one goes.
    end: usize,
    stats: SegmentStats,
    index_interval: usize,
    /// Index entries the seal will have for the records so far.
    index_entries: usize,
    /// The next record at or after this offset gets an index entry.
    next_indexed_at: usize,
}

impl Appender {
    /// Prepares to append after the file header (which the caller writes: [`FileHeader::encode`]).
    ///
    /// The seal's index gets an entry for the first record at or after every `index_interval`
    /// bytes (0 indexes every record).
    ///
    /// ```
    /// use ringledger_core::segment::{Appender, FileHeader, HeaderError, WriteError};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let appender = Appender::create(&header, 0).unwrap();
    /// assert_eq!((appender.end(), appender.stats().count), (64, 0)); // just past the header
    /// let bad = FileHeader { capacity: 70, ..header }; // not a multiple of 8
    /// assert_eq!(
    ///     Appender::create(&bad, 0).unwrap_err(),
    ///     WriteError::Header(HeaderError::BadCapacity { capacity: 70 })
    /// );
    /// ```
    pub fn create(header: &FileHeader, index_interval: u32) -> Result<Self, WriteError> {
        let mut image = [0u8; FILE_HEADER_LEN];
        header.encode(&mut image)?;
        Ok(Self::at_end(
            *header,
            FILE_HEADER_LEN,
            SegmentStats::default(),
            index_interval,
        ))
    }

    /// Picks up appending after the last valid frame of `image`.
    ///
    /// Scans the image; it must end cleanly and be unsealed (after [`recover`](super::recover)
    /// it does). The index bookkeeping is rebuilt from the frames' headers.
    ///
    /// ```
    /// use ringledger_core::segment::{Appender, FileHeader, WriteError, Writer};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// let end = Writer::create(&mut image, &header, 0).unwrap().append(1, 0, 0, b"a").unwrap();
    /// // After a restart:
    /// let mut appender = Appender::resume(&image, 0).unwrap();
    /// assert_eq!((appender.end(), appender.stats().last_seq), (end, 1));
    /// let next = appender.append(&mut image[end..], 2, 0, 0, b"b").unwrap();
    /// assert!(next > end);
    /// assert!(matches!(Appender::resume(&[0; 64], 0), Err(WriteError::Header(_))));
    /// ```
    pub fn resume(image: &[u8], index_interval: u32) -> Result<Self, WriteError> {
        let mut scanner = Scanner::new(image)?;
        let mut open_write = None;
        for record in scanner.by_ref() {
            open_write = record.continues.then_some(record.offset);
        }
        let stats = *scanner.stats();
        let header = *scanner.header();
        if let Some(offset) = open_write {
            // The image ends inside a write of several records: recovery cuts it first.
            return Err(WriteError::NeedsRecovery { offset });
        }
        let end = match scanner.end() {
            Some(ScanEnd::CleanEnd { seal: Some(_), .. }) => return Err(WriteError::Sealed),
            Some(&ScanEnd::CleanEnd { offset, seal: None }) => offset,
            Some(other) => {
                return Err(WriteError::NeedsRecovery {
                    offset: other.offset(),
                })
            }
            None => {
                return Err(WriteError::NeedsRecovery {
                    offset: FILE_HEADER_LEN,
                })
            }
        };
        check_len(image, &header)?;
        let mut appender = Self::at_end(header, FILE_HEADER_LEN, stats, index_interval);
        // Replay the index bookkeeping over the frames the scan validated.
        let mut at = FILE_HEADER_LEN;
        while at < end {
            appender.note_indexed(at);
            at += frame_len(u32_at(image, at) as usize);
        }
        appender.end = end;
        Ok(appender)
    }

    fn at_end(header: FileHeader, end: usize, stats: SegmentStats, index_interval: u32) -> Self {
        Self {
            seed: salt_seed(header.salt),
            header,
            end,
            stats,
            index_interval: index_interval as usize,
            index_entries: 0,
            next_indexed_at: FILE_HEADER_LEN,
        }
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// End of the last frame written: the bytes below it are complete frames.
    pub fn end(&self) -> usize {
        self.end
    }

    /// The records written so far.
    pub fn stats(&self) -> &SegmentStats {
        &self.stats
    }

    /// The segment's capacity, in bytes.
    pub fn capacity(&self) -> usize {
        usize::try_from(self.header.capacity).unwrap_or(usize::MAX)
    }

    /// The largest payload that still fits (with the room kept for the seal), if any.
    pub fn max_payload(&self) -> Option<usize> {
        let seal = seal_len(self.index_entries + 1) + FOOTER_LEN;
        let left = self
            .capacity()
            .checked_sub(self.end + seal + FRAME_HEADER_LEN)?;
        Some((left & !7).min(u32::MAX as usize))
    }

    /// The largest payload an empty segment of `capacity` bytes takes (0 if it takes none).
    ///
    /// ```
    /// use ringledger_core::segment::{Appender, FileHeader, WriteError, Writer};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let max = Appender::max_payload_in(1024);
    /// let mut image = vec![0u8; 1024];
    /// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
    /// assert!(matches!(writer.append(1, 0, 0, &vec![0; max + 1]), Err(WriteError::Full { .. })));
    /// writer.append(1, 0, 0, &vec![0; max]).unwrap();
    /// assert_eq!(Appender::max_payload_in(64), 0);
    /// ```
    pub const fn max_payload_in(capacity: usize) -> usize {
        let overhead = FILE_HEADER_LEN + FRAME_HEADER_LEN + seal_len(1) + FOOTER_LEN;
        let left = capacity.saturating_sub(overhead) & !7;
        if left > u32::MAX as usize {
            u32::MAX as usize
        } else {
            left
        }
    }

    /// Appends a record frame into `tail`, the image from [`end`](Self::end) to the capacity,
    /// and returns the new end.
    ///
    /// ```
    /// use ringledger_core::segment::{frame_len, Appender, FileHeader, WriteError};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// header.encode(&mut image).unwrap();
    /// let mut appender = Appender::create(&header, 0).unwrap();
    /// let end = appender.end();
    /// let new_end = appender.append(&mut image[end..], 1, 0, 0, b"hello").unwrap();
    /// assert_eq!(new_end, end + frame_len(5));
    /// // `tail` must be the image from the end on, nothing shorter:
    /// let error = appender.append(&mut image[new_end..1000], 2, 0, 0, b"x").unwrap_err();
    /// assert!(matches!(error, WriteError::CapacityMismatch { .. }));
    /// ```
    pub fn append(
        &mut self,
        tail: &mut [u8],
        seq: u64,
        timestamp: u64,
        tag: u32,
        payload: &[u8],
    ) -> Result<usize, WriteError> {
        self.append_in_write(tail, seq, timestamp, tag, payload, false)
    }

    /// Like [`append`](Self::append), for one record of a write of several: `continues` says
    /// that more records of the same write follow (the last one passes `false`). Recovery drops
    /// a trailing group whose last record continues, so the write is all or nothing.
    ///
    /// ```
    /// use ringledger_core::segment::{Appender, FileHeader, Scanner};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// header.encode(&mut image).unwrap();
    /// let mut appender = Appender::create(&header, 0).unwrap();
    /// for (seq, continues) in [(1, true), (2, true), (3, false)] {
    ///     let end = appender.end();
    ///     appender.append_in_write(&mut image[end..], seq, 0, 0, b"part", continues).unwrap();
    /// }
    /// let flags: Vec<bool> = Scanner::new(&image).unwrap().map(|r| r.continues).collect();
    /// assert_eq!(flags, [true, true, false]);
    /// ```
    pub fn append_in_write(
        &mut self,
        tail: &mut [u8],
        seq: u64,
        timestamp: u64,
        tag: u32,
        payload: &[u8],
        continues: bool,
    ) -> Result<usize, WriteError> {
        self.check_tail(tail)?;
        self.append_staged(tail, seq, timestamp, tag, payload, continues)
    }

    /// Like [`append_in_write`](Self::append_in_write), but the frame goes to the start of
    /// `out`, a staging buffer, instead of into the image at [`end`](Self::end): the caller
    /// copies it there (with `pwrite`, say) before it publishes the new end. The room left in
    /// the segment is checked against the capacity; `out` must hold the frame
    /// ([`frame_len`](super::frame_len) of the payload) or the call fails with
    /// [`WriteError::Full`]. Returns the new end.
    ///
    /// ```
    /// use ringledger_core::segment::{Appender, FileHeader, Scanner};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// header.encode(&mut image).unwrap();
    /// let mut appender = Appender::create(&header, 0).unwrap();
    /// let (start, mut staging) = (appender.end(), [0u8; 64]);
    /// let end = appender.append_staged(&mut staging, 1, 0, 0, b"staged", false).unwrap();
    /// image[start..end].copy_from_slice(&staging[..end - start]); // the caller's pwrite
    /// assert_eq!(Scanner::new(&image).unwrap().next().unwrap().payload, b"staged");
    /// ```
    pub fn append_staged(
        &mut self,
        out: &mut [u8],
        seq: u64,
        timestamp: u64,
        tag: u32,
        payload: &[u8],
        continues: bool,
    ) -> Result<usize, WriteError> {
        let last = if self.stats.count == 0 {
            self.header.base_seq.checked_sub(1)
        } else {
            Some(self.stats.last_seq)
        };
        if let Some(last) = last.filter(|&last| seq <= last) {
            return Err(WriteError::NotIncreasing { last, seq });
        }
        let len = frame_len(payload.len());
        let indexed = self.end >= self.next_indexed_at;
        let seal = seal_len(self.index_entries + usize::from(indexed)) + FOOTER_LEN;
        let available = self.capacity().saturating_sub(self.end);
        let needed = len.saturating_add(seal);
        if payload.len() > u32::MAX as usize || needed > available || out.len() < len {
            return Err(WriteError::Full {
                needed,
                available: available.min(out.len().saturating_add(seal)),
            });
        }
        let fields = FrameFields {
            kind: FrameKind::Record,
            flags: if continues { FLAG_CONTINUES } else { 0 },
            tag,
            seq,
            timestamp,
        };
        write_frame(out, self.seed, fields, payload);
        self.note_indexed(self.end);
        self.stats.add(seq, timestamp);
        self.end += len;
        Ok(self.end)
    }

    fn check_tail(&self, tail: &[u8]) -> Result<(), WriteError> {
        let expected = self.capacity().saturating_sub(self.end);
        if tail.len() != expected {
            return Err(WriteError::CapacityMismatch {
                len: self.end + tail.len(),
                capacity: self.header.capacity,
            });
        }
        Ok(())
    }

    /// Counts an index entry for a record at `at` if the interval calls for one.
    fn note_indexed(&mut self, at: usize) {
        if at >= self.next_indexed_at {
            self.index_entries += 1;
            self.next_indexed_at = at.saturating_add(self.index_interval.max(1));
        }
    }

    /// Writes the seal frame after the last record, and the footer pointing at it, into
    /// `tail` (the image from [`end`](Self::end) on); `records` is the image below the end,
    /// which the index is built from. Returns the seal's end. The segment takes no more
    /// records.
    pub fn seal(self, records: &[u8], tail: &mut [u8]) -> Result<usize, WriteError> {
        let at = self.end;
        let salt = self.header.salt;
        let end = self.seal_frame(records, tail)?;
        let footer_at = tail.len() - FOOTER_LEN;
        tail[footer_at..].copy_from_slice(&encode_footer(salt, at));
        Ok(end)
    }

    /// Like [`seal`](Self::seal), but leaves the footer zero, for a writer that makes the seal
    /// durable first and writes the footer ([`encode_footer`](super::encode_footer)) after: then a footer on
    /// disk always points at a seal on disk. A scan recognises the seal either way.
    pub fn seal_frame(self, records: &[u8], tail: &mut [u8]) -> Result<usize, WriteError> {
        if records.len() != self.end {
            return Err(WriteError::CapacityMismatch {
                len: records.len() + tail.len(),
                capacity: self.header.capacity,
            });
        }
        let index = self.index_from(records);
        self.seal_frame_indexed(index, tail)
    }

    /// The seal's index entries, walked from `records` (the image below [`end`](Self::end)):
    /// the same walk `append` did, now with offsets. For [`seal_frame_staged`](Self::seal_frame_staged)
    /// when the writer kept no index of its own.
    ///
    /// ```
    /// use ringledger_core::segment::{Appender, FileHeader};
    ///
    /// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 9, capacity: 8192, created_ns: 0 };
    /// let mut image = vec![0u8; 8192];
    /// header.encode(&mut image[..64]).unwrap();
    /// let mut appender = Appender::create(&header, 4096).unwrap();
    /// appender.append(&mut image[64..], 1, 10, 0, b"one").unwrap();
    /// let index: Vec<_> = appender.index_from(&image[..appender.end()]).collect();
    /// assert_eq!((index.len(), index[0].offset, index[0].relative_seq), (1, 64, 0));
    /// ```
    pub fn index_from<'r>(&self, records: &'r [u8]) -> impl Iterator<Item = IndexEntry> + 'r {
        let (base, interval) = (self.header.base_seq, self.index_interval.max(1));
        let end = self.end.min(records.len());
        let mut next_indexed_at = FILE_HEADER_LEN;
        let mut pos = FILE_HEADER_LEN;
        core::iter::from_fn(move || {
            while pos < end {
                let at = pos;
                pos += frame_len(u32_at(records, at) as usize);
                if at >= next_indexed_at {
                    next_indexed_at = at.saturating_add(interval);
                    return Some(IndexEntry {
                        relative_seq: u64_at(records, at + 16).wrapping_sub(base),
                        offset: at as u64,
                    });
                }
            }
            None
        })
    }

    /// Like [`seal_frame`](Self::seal_frame), with the index entries from the caller instead of
    /// a walk over the records: a writer that kept them while appending (the ledger does)
    /// saves reading every frame header of a full segment. `index` must yield exactly the
    /// entries the walk would (the first record at or after every `index_interval` bytes);
    /// a different number of them is [`WriteError::IndexMismatch`] and writes nothing.
    pub fn seal_frame_indexed(
        self,
        index: impl IntoIterator<Item = IndexEntry>,
        tail: &mut [u8],
    ) -> Result<usize, WriteError> {
        self.check_tail(tail)?;
        let total = self.seal_len();
        // `append` kept this room; the check only guards against a broken invariant.
        if total + FOOTER_LEN > tail.len() {
            return Err(WriteError::Full {
                needed: total + FOOTER_LEN,
                available: tail.len(),
            });
        }
        self.seal_frame_staged(index, &mut tail[..total])
    }

    /// The bytes of the seal frame [`seal_frame_indexed`](Self::seal_frame_indexed) would write
    /// now (the room `append` keeps for it).
    pub fn seal_len(&self) -> usize {
        frame_len(SEAL_FIXED_LEN + self.index_entries * INDEX_ENTRY_LEN)
    }

    /// Like [`seal_frame_indexed`](Self::seal_frame_indexed), for a writer that stages its
    /// writes: builds the seal frame into `frame`, exactly [`seal_len`](Self::seal_len) bytes,
    /// which the caller writes at [`end`](Self::end). Returns the seal's end.
    ///
    /// ```
    /// use ringledger_core::segment::{Appender, FileHeader, Scanner, ScanEnd};
    ///
    /// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 9, capacity: 8192, created_ns: 0 };
    /// let mut image = vec![0u8; 8192];
    /// header.encode(&mut image[..64]).unwrap();
    /// let mut appender = Appender::create(&header, 4096).unwrap();
    /// let end = appender.append(&mut image[64..], 1, 10, 0, b"one").unwrap();
    /// let mut seal = vec![0u8; appender.seal_len()];
    /// let at = appender.end();
    /// let index = [ringledger_core::segment::IndexEntry { relative_seq: 0, offset: 64 }];
    /// let sealed_end = appender.seal_frame_staged(index, &mut seal).unwrap();
    /// image[at..sealed_end].copy_from_slice(&seal);
    /// assert_eq!(end, at);
    ///
    /// let scanner = Scanner::new(&image).unwrap();
    /// assert!(matches!(scanner.finish(), ScanEnd::CleanEnd { seal: Some(_), .. }));
    /// ```
    pub fn seal_frame_staged(
        self,
        index: impl IntoIterator<Item = IndexEntry>,
        frame: &mut [u8],
    ) -> Result<usize, WriteError> {
        let at = self.end;
        let payload_len = SEAL_FIXED_LEN + self.index_entries * INDEX_ENTRY_LEN;
        let total = frame_len(payload_len);
        let available = self.capacity().saturating_sub(at);
        if total + FOOTER_LEN > available || frame.len() != total {
            return Err(WriteError::Full {
                needed: total + FOOTER_LEN,
                available: available.min(frame.len().saturating_add(FOOTER_LEN)),
            });
        }
        let (header, body) = frame.split_at_mut(FRAME_HEADER_LEN);
        let (payload, padding) = body.split_at_mut(payload_len);
        let mut written = 0;
        let mut entry = SEAL_FIXED_LEN;
        for IndexEntry {
            relative_seq,
            offset,
        } in index
        {
            if written == self.index_entries {
                written += 1;
                break;
            }
            payload[entry..entry + 8].copy_from_slice(&relative_seq.to_le_bytes());
            payload[entry + 8..entry + 16].copy_from_slice(&offset.to_le_bytes());
            entry += INDEX_ENTRY_LEN;
            written += 1;
        }
        if written != self.index_entries {
            payload[SEAL_FIXED_LEN..].fill(0);
            return Err(WriteError::IndexMismatch {
                expected: self.index_entries,
            });
        }
        padding.fill(0);
        write_seal_fixed(
            payload,
            &self.stats,
            at as u64,
            self.index_entries as u32,
            self.index_interval as u32,
        );
        let fields = FrameFields {
            kind: FrameKind::Seal,
            flags: 0,
            tag: 0,
            seq: self.stats.last_seq,
            timestamp: self.stats.max_timestamp,
        };
        write_header(header, self.seed, fields, payload);
        Ok(at + total)
    }
}

/// Appends record frames to a segment image and seals it: an [`Appender`] over a
/// `&mut [u8]` of the whole image.
///
/// ```
/// use ringledger_core::segment::FileHeader;
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 4096, created_ns: 0 };
/// let mut image = vec![0u8; 4096];
/// let mut writer = ringledger_core::segment::Writer::create(&mut image, &header, 0).unwrap();
/// writer.append(1, 1_000, 0, b"first").unwrap();
/// writer.append(2, 1_001, 0, b"second").unwrap();
/// assert_eq!(writer.stats().count, 2);
/// writer.seal().unwrap(); // full: no more appends
/// ```
#[derive(Debug)]
pub struct Writer<'a> {
    image: &'a mut [u8],
    appender: Appender,
}

impl<'a> Writer<'a> {
    /// Writes `header` at the start of `image` and prepares to append after it.
    ///
    /// `image.len()` must equal `header.capacity`, and the image must be zero after the header
    /// (a freshly allocated segment file is). The seal's index gets an entry for the first
    /// record at or after every `index_interval` bytes (0 indexes every record).
    ///
    /// ```
    /// use ringledger_core::segment::{FileHeader, WriteError, Writer, FILE_HEADER_LEN};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// let writer = Writer::create(&mut image, &header, 0).unwrap();
    /// assert_eq!(writer.end(), FILE_HEADER_LEN);
    /// let mut short = vec![0u8; 512];
    /// let error = Writer::create(&mut short, &header, 0).unwrap_err();
    /// assert_eq!(error, WriteError::CapacityMismatch { len: 512, capacity: 1024 });
    /// ```
    pub fn create(
        image: &'a mut [u8],
        header: &FileHeader,
        index_interval: u32,
    ) -> Result<Self, WriteError> {
        check_len(image, header)?;
        header.encode(image)?;
        let appender = Appender::create(header, index_interval)?;
        Ok(Self { image, appender })
    }

    /// Reopens a segment for appending after its last valid frame.
    ///
    /// Scans the image; it must end cleanly and be unsealed (after [`recover`](super::recover)
    /// it does). The index bookkeeping is rebuilt from the frames' headers.
    ///
    /// ```
    /// use ringledger_core::segment::{FileHeader, WriteError, Writer};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// Writer::create(&mut image, &header, 0).unwrap().append(1, 0, 0, b"a").unwrap();
    /// let mut writer = Writer::resume(&mut image, 0).unwrap(); // after a restart
    /// writer.append(2, 0, 0, b"b").unwrap();
    /// assert_eq!(writer.stats().count, 2);
    /// writer.seal().unwrap();
    /// assert_eq!(Writer::resume(&mut image, 0).unwrap_err(), WriteError::Sealed);
    /// ```
    pub fn resume(image: &'a mut [u8], index_interval: u32) -> Result<Self, WriteError> {
        let appender = Appender::resume(image, index_interval)?;
        Ok(Self { image, appender })
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        self.appender.header()
    }

    /// End of the last frame written: the bytes below it are complete frames.
    pub fn end(&self) -> usize {
        self.appender.end()
    }

    /// The records written so far.
    pub fn stats(&self) -> &SegmentStats {
        self.appender.stats()
    }

    /// The largest payload that still fits (with the room kept for the seal), if any.
    pub fn max_payload(&self) -> Option<usize> {
        self.appender.max_payload()
    }

    /// Appends a record frame and returns the new end.
    ///
    /// ```
    /// use ringledger_core::segment::{frame_len, FileHeader, Writer, FILE_HEADER_LEN};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
    /// let end = writer.append(1, 1_000, 7, b"hello").unwrap();
    /// assert_eq!(end, FILE_HEADER_LEN + frame_len(5));
    /// assert_eq!(writer.end(), end); // the bytes below it are complete frames
    /// ```
    pub fn append(
        &mut self,
        seq: u64,
        timestamp: u64,
        tag: u32,
        payload: &[u8],
    ) -> Result<usize, WriteError> {
        let tail = &mut self.image[self.appender.end()..];
        self.appender.append(tail, seq, timestamp, tag, payload)
    }

    /// Appends one record of a write of several; see [`Appender::append_in_write`].
    ///
    /// ```
    /// use ringledger_core::segment::{recover, Damage, FileHeader, Writer};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
    /// let kept = writer.append(1, 0, 0, b"alone").unwrap();
    /// writer.append_in_write(2, 0, 0, b"first half", true).unwrap();
    /// // A crash before the second half: recovery drops the whole write.
    /// let recovered = recover(&mut image).unwrap();
    /// assert_eq!((recovered.end, recovered.damage), (kept, Some(Damage::TornTail)));
    /// ```
    pub fn append_in_write(
        &mut self,
        seq: u64,
        timestamp: u64,
        tag: u32,
        payload: &[u8],
        continues: bool,
    ) -> Result<usize, WriteError> {
        let tail = &mut self.image[self.appender.end()..];
        self.appender
            .append_in_write(tail, seq, timestamp, tag, payload, continues)
    }

    /// Writes the seal frame after the last record and the footer pointing at it; returns the
    /// seal's end. The segment takes no more records.
    pub fn seal(self) -> Result<usize, WriteError> {
        let (records, tail) = self.image.split_at_mut(self.appender.end());
        self.appender.seal(records, tail)
    }
}

/// Bytes of a seal frame with `entries` index entries.
const fn seal_len(entries: usize) -> usize {
    frame_len(SEAL_FIXED_LEN + entries * INDEX_ENTRY_LEN)
}

fn check_len(image: &[u8], header: &FileHeader) -> Result<(), WriteError> {
    if image.len() as u64 != header.capacity {
        return Err(WriteError::CapacityMismatch {
            len: image.len(),
            capacity: header.capacity,
        });
    }
    Ok(())
}
