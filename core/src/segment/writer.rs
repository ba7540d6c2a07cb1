//! Appending frames to a segment image, and sealing it.
//!
//! The writer owns the image mutably (in the ledger: the writable mapping of the one segment
//! being appended to). After [`Writer::append`] returns the new end, the bytes below it are a
//! complete, valid prefix; the ledger publishes that end to readers (release/acquire) and syncs.
//! The writer always keeps room for the seal, so a full segment can always be sealed.

use super::frame::{
    frame_len, salt_seed, write_frame, write_header, FrameFields, FrameKind, FRAME_HEADER_LEN,
};
use super::header::{FileHeader, HeaderError, FILE_HEADER_LEN};
use super::scan::{ScanEnd, Scanner, SegmentStats};
use super::seal::{write_seal_fixed, INDEX_ENTRY_LEN, SEAL_FIXED_LEN};
use super::{u32_at, u64_at, FOOTER_LEN};

/// Why an append, a seal or opening a writer failed. Nothing was written when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
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
    /// The image does not end cleanly: run [`recover`](super::recover) first.
    #[error("segment needs recovery: invalid bytes at offset {offset}")]
    NeedsRecovery {
        /// Where the valid frames end.
        offset: usize,
    },
}

/// Appends record frames to a segment image and seals it.
#[derive(Debug)]
pub struct Writer<'a> {
    image: &'a mut [u8],
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

impl<'a> Writer<'a> {
    /// Writes `header` at the start of `image` and prepares to append after it.
    ///
    /// `image.len()` must equal `header.capacity`, and the image must be zero after the header
    /// (a freshly allocated segment file is). The seal's index gets an entry for the first
    /// record at or after every `index_interval` bytes (0 indexes every record).
    pub fn create(
        image: &'a mut [u8],
        header: &FileHeader,
        index_interval: u32,
    ) -> Result<Self, WriteError> {
        check_len(image, header)?;
        header.encode(image)?;
        Ok(Self::at_end(
            image,
            *header,
            FILE_HEADER_LEN,
            SegmentStats::default(),
            index_interval,
        ))
    }

    /// Reopens a segment for appending after its last valid frame.
    ///
    /// Scans the image; it must end cleanly and be unsealed (after [`recover`](super::recover)
    /// it does). The index bookkeeping is rebuilt from the frames' headers.
    pub fn resume(image: &'a mut [u8], index_interval: u32) -> Result<Self, WriteError> {
        let (header, end, stats) = {
            let mut scanner = Scanner::new(image)?;
            for _ in scanner.by_ref() {}
            let stats = *scanner.stats();
            match scanner.end() {
                Some(ScanEnd::CleanEnd { seal: Some(_), .. }) => return Err(WriteError::Sealed),
                Some(&ScanEnd::CleanEnd { offset, seal: None }) => {
                    (*scanner.header(), offset, stats)
                }
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
            }
        };
        check_len(image, &header)?;
        let mut writer = Self::at_end(image, header, FILE_HEADER_LEN, stats, index_interval);
        // Replay the index bookkeeping over the frames the scan validated.
        let mut at = FILE_HEADER_LEN;
        while at < end {
            writer.note_indexed(at);
            at += frame_len(u32_at(writer.image, at) as usize);
        }
        writer.end = end;
        Ok(writer)
    }

    fn at_end(
        image: &'a mut [u8],
        header: FileHeader,
        end: usize,
        stats: SegmentStats,
        index_interval: u32,
    ) -> Self {
        Self {
            image,
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

    /// The largest payload that still fits (with the room kept for the seal), if any.
    pub fn max_payload(&self) -> Option<usize> {
        let seal = seal_len(self.index_entries + 1) + FOOTER_LEN;
        let left = self
            .image
            .len()
            .checked_sub(self.end + seal + FRAME_HEADER_LEN)?;
        Some((left & !7).min(u32::MAX as usize))
    }

    /// Appends a record frame and returns the new end.
    pub fn append(
        &mut self,
        seq: u64,
        timestamp: u64,
        tag: u32,
        payload: &[u8],
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
        let available = self.image.len() - self.end;
        let needed = len.saturating_add(seal);
        if payload.len() > u32::MAX as usize || needed > available {
            return Err(WriteError::Full { needed, available });
        }
        let fields = FrameFields {
            kind: FrameKind::Record,
            tag,
            seq,
            timestamp,
        };
        write_frame(&mut self.image[self.end..], self.seed, fields, payload);
        self.note_indexed(self.end);
        self.stats.add(seq, timestamp);
        self.end += len;
        Ok(self.end)
    }

    /// Counts an index entry for a record at `at` if the interval calls for one.
    fn note_indexed(&mut self, at: usize) {
        if at >= self.next_indexed_at {
            self.index_entries += 1;
            self.next_indexed_at = at.saturating_add(self.index_interval.max(1));
        }
    }

    /// Writes the seal frame after the last record and the footer pointing at it; returns the
    /// seal's end. The segment takes no more records.
    pub fn seal(self) -> Result<usize, WriteError> {
        let at = self.end;
        let payload_len = SEAL_FIXED_LEN + self.index_entries * INDEX_ENTRY_LEN;
        let total = frame_len(payload_len);
        let footer_at = self.image.len() - FOOTER_LEN;
        // `append` kept this room; the check only guards against a broken invariant.
        if at + total > footer_at {
            return Err(WriteError::Full {
                needed: total + FOOTER_LEN,
                available: self.image.len() - at,
            });
        }
        let (records, rest) = self.image.split_at_mut(at);
        let (header, body) = rest[..total].split_at_mut(FRAME_HEADER_LEN);
        let (payload, padding) = body.split_at_mut(payload_len);
        padding.fill(0);
        let entries = self.index_entries as u32;
        write_seal_fixed(
            payload,
            &self.stats,
            at as u64,
            entries,
            self.index_interval as u32,
        );
        // The index: the same walk `note_indexed` did while appending, now with offsets.
        let mut next_indexed_at = FILE_HEADER_LEN;
        let mut entry = SEAL_FIXED_LEN;
        let mut pos = FILE_HEADER_LEN;
        while pos < at && entry < payload_len {
            if pos >= next_indexed_at {
                let relative = u64_at(records, pos + 16).wrapping_sub(self.header.base_seq);
                payload[entry..entry + 8].copy_from_slice(&relative.to_le_bytes());
                payload[entry + 8..entry + 16].copy_from_slice(&(pos as u64).to_le_bytes());
                entry += INDEX_ENTRY_LEN;
                next_indexed_at = pos.saturating_add(self.index_interval.max(1));
            }
            pos += frame_len(u32_at(records, pos) as usize);
        }
        let fields = FrameFields {
            kind: FrameKind::Seal,
            tag: 0,
            seq: self.stats.last_seq,
            timestamp: self.stats.max_timestamp,
        };
        write_header(header, self.seed, fields, payload);
        self.image[footer_at..].copy_from_slice(&(at as u64).to_le_bytes());
        Ok(at + total)
    }
}

/// Bytes of a seal frame with `entries` index entries.
fn seal_len(entries: usize) -> usize {
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
