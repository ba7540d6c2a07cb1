//! One frame: the 40-byte header, the payload and its zero padding, and the checks that decide
//! whether the bytes at an offset are a frame.
//!
//! The writer uses [`write_frame`]; the scanner, the sealed-segment lookup and recovery all go
//! through [`inspect`], so there is exactly one definition of a valid frame.

use super::scan::CorruptReason;
use super::{all_zero, u32_at, u64_at, FRAME_ALIGN};
use crate::crc32c::{crc32c, crc32c_append};

/// Length of a frame header.
pub const FRAME_HEADER_LEN: usize = 40;

/// XORed into every frame header checksum, so that no header of zeros validates even under a
/// salt whose checksum happened to be zero.
const HEADER_CRC_MASK: u32 = 0xA282_EAD8;

/// Offset of the header checksum within the frame header; it covers the bytes before it.
const HEADER_CRC_AT: usize = 36;

/// Frame flag: more records of the same write follow this one. A write of several records is
/// atomic: recovery drops a trailing group of records whose last one still has this flag.
pub const FLAG_CONTINUES: u8 = 1;

/// What a frame carries: the byte at offset 4 of its header.
///
/// ```
/// use ringledger_core::segment::{FileHeader, FrameKind, Writer, FILE_HEADER_LEN};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// let seal_at = writer.append(1, 0, 0, b"entry").unwrap();
/// writer.seal().unwrap();
/// assert_eq!(image[FILE_HEADER_LEN + 4], FrameKind::Record as u8);
/// assert_eq!(image[seal_at + 4], FrameKind::Seal as u8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A ledger entry.
    Record = 1,
    /// The last frame of a full segment: statistics and the sparse index.
    Seal = 2,
}

/// A valid record frame, borrowed from the segment image.
///
/// ```
/// use ringledger_core::segment::{FileHeader, Scanner, Writer, FILE_HEADER_LEN};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// writer.append(3, 1_000, 42, b"payload").unwrap();
/// let record = Scanner::new(&image).unwrap().next().unwrap();
/// assert_eq!((record.seq, record.timestamp, record.tag), (3, 1_000, 42));
/// assert_eq!(record.payload, b"payload");
/// assert_eq!(record.offset, FILE_HEADER_LEN);
/// assert!(!record.continues);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Offset of the frame's header in the segment.
    pub offset: usize,
    /// The entry's sequence.
    pub seq: u64,
    /// The writer's timestamp for the entry (nanoseconds since the unix epoch by convention).
    pub timestamp: u64,
    /// A value chosen by the writer, such as an event type for stream filters.
    pub tag: u32,
    /// The entry's bytes.
    pub payload: &'a [u8],
    /// More records of the same atomic write follow this one ([`FLAG_CONTINUES`]).
    pub continues: bool,
}

impl Record<'_> {
    /// Offset just past this frame (its padding included): where the next frame starts.
    pub fn end(&self) -> usize {
        self.offset + frame_len(self.payload.len())
    }
}

/// The bytes a frame with a payload of `payload_len` bytes occupies: header, payload, padding.
/// Saturates at `usize::MAX` instead of overflowing.
pub const fn frame_len(payload_len: usize) -> usize {
    let padded = match payload_len.checked_add(FRAME_ALIGN - 1) {
        Some(n) => n & !(FRAME_ALIGN - 1),
        None => return usize::MAX,
    };
    FRAME_HEADER_LEN.saturating_add(padded)
}

/// Reads validated records at known offsets of a segment image: what a reader that keeps its
/// own index of a segment (the ledger does) uses instead of a scan.
///
/// ```
/// use ringledger_core::segment::{FileHeader, RecordReader, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 99, capacity: 4096, created_ns: 0 };
/// let mut image = vec![0u8; 4096];
/// let mut writer = Writer::create(&mut image, &header, 1024).unwrap();
/// let end = writer.append(5, 0, 2, b"hello").unwrap();
/// let reader = RecordReader::new(&header);
/// let record = reader.record_at(&image[..end], 64).unwrap();
/// assert_eq!((record.seq, record.tag, record.payload), (5, 2, &b"hello"[..]));
/// assert_eq!(record.end(), end);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RecordReader {
    seed: u32,
}

impl RecordReader {
    /// A reader for the segment with this header.
    ///
    /// ```
    /// use ringledger_core::segment::{CorruptReason, FileHeader, RecordReader, Writer};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// let end = Writer::create(&mut image, &header, 0).unwrap().append(1, 0, 0, b"x").unwrap();
    /// assert!(RecordReader::new(&header).record_at(&image[..end], 64).is_ok());
    /// // The checksums cover the salt: a reader built from another header rejects the frame.
    /// let other = FileHeader { salt: 1, ..header };
    /// let error = RecordReader::new(&other).record_at(&image[..end], 64).unwrap_err();
    /// assert_eq!(error, CorruptReason::HeaderChecksum);
    /// ```
    pub fn new(header: &crate::segment::FileHeader) -> Self {
        Self {
            seed: salt_seed(header.salt),
        }
    }

    /// The record frame at `at`, with every check of a scan (both checksums, kind, reserved
    /// fields, padding) except the ordering of sequences. `image` must end where the frames
    /// the caller trusts end (a committed end): a frame running past it is an error.
    pub fn record_at<'a>(&self, image: &'a [u8], at: usize) -> Result<Record<'a>, CorruptReason> {
        self.read(image, at, true)
    }

    /// Like [`record_at`](Self::record_at), with the header checked (its checksum covers the
    /// length, the tag, the sequence and the timestamp) but not the payload: for a reader that
    /// skips this record by its tag, and must not hand out the payload (it may be damaged).
    /// Call [`record_at`](Self::record_at) for a record it keeps.
    pub fn skim_at<'a>(&self, image: &'a [u8], at: usize) -> Result<Record<'a>, CorruptReason> {
        self.read(image, at, false)
    }

    fn read<'a>(
        &self,
        image: &'a [u8],
        at: usize,
        check_payload: bool,
    ) -> Result<Record<'a>, CorruptReason> {
        match inspect_with(image, at, image.len(), self.seed, check_payload) {
            Inspect::Frame(RawFrame {
                fields:
                    FrameFields {
                        kind: FrameKind::Record,
                        flags,
                        tag,
                        seq,
                        timestamp,
                    },
                payload,
                ..
            }) => Ok(Record {
                offset: at,
                seq,
                timestamp,
                tag,
                payload,
                continues: flags & FLAG_CONTINUES != 0,
            }),
            Inspect::Frame(_) => Err(CorruptReason::NotARecord {
                kind: FrameKind::Seal as u8,
            }),
            Inspect::Invalid { reason, .. } => Err(reason),
            Inspect::ZeroHeader | Inspect::HeaderCut | Inspect::Overrun => {
                Err(CorruptReason::FrameOverrun)
            }
        }
    }
}

/// The checksum state after the salt: every header checksum of a segment starts from it.
pub(super) fn salt_seed(salt: u64) -> u32 {
    crc32c(&salt.to_le_bytes())
}

/// The fields of a frame header other than the checksums.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameFields {
    pub(super) kind: FrameKind,
    pub(super) flags: u8,
    pub(super) tag: u32,
    pub(super) seq: u64,
    pub(super) timestamp: u64,
}

/// Writes a frame at the start of `out` and returns its length. The caller has checked that
/// `out` holds [`frame_len`] of the payload and that the length fits in a `u32`.
pub(super) fn write_frame(out: &mut [u8], seed: u32, fields: FrameFields, payload: &[u8]) -> usize {
    let total = frame_len(payload.len());
    let (header, rest) = out[..total].split_at_mut(FRAME_HEADER_LEN);
    // Header first: a process killed while copying the payload leaves a frame whose payload
    // checksum fails with zeros after it, which a scan calls a torn tail. (Payload first
    // would leave a zero header before non-zero bytes, which reads as corruption.) The fence
    // keeps the compiler from moving the payload stores ahead; the CPU's order does not
    // matter to a killed process, whose stores all reach the page cache.
    write_header(header, seed, fields, payload);
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::Release);
    let (body, padding) = rest.split_at_mut(payload.len());
    body.copy_from_slice(payload);
    padding.fill(0);
    total
}

/// Writes the 40-byte header of a frame carrying `payload` (which the caller puts, zero-padded,
/// right after it).
pub(super) fn write_header(header: &mut [u8], seed: u32, fields: FrameFields, payload: &[u8]) {
    header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4] = fields.kind as u8;
    header[5] = fields.flags;
    header[6..8].fill(0);
    header[8..12].copy_from_slice(&fields.tag.to_le_bytes());
    header[12..16].copy_from_slice(&crc32c(payload).to_le_bytes());
    header[16..24].copy_from_slice(&fields.seq.to_le_bytes());
    header[24..32].copy_from_slice(&fields.timestamp.to_le_bytes());
    header[32..36].fill(0);
    let crc = crc32c_append(seed, &header[..HEADER_CRC_AT]) ^ HEADER_CRC_MASK;
    header[36..40].copy_from_slice(&crc.to_le_bytes());
}

/// A frame that passed every check.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawFrame<'a> {
    pub(super) fields: FrameFields,
    pub(super) payload: &'a [u8],
    /// Offset just past the frame.
    pub(super) end: usize,
}

/// What the bytes at an offset are.
#[derive(Debug, Clone, Copy)]
pub(super) enum Inspect<'a> {
    /// A valid frame.
    Frame(RawFrame<'a>),
    /// The 40 header bytes are all zero: nothing was written here.
    ZeroHeader,
    /// Fewer than 40 bytes remain before the end of the frame area.
    HeaderCut,
    /// A header with a valid checksum whose frame runs past the end of the frame area.
    Overrun,
    /// Not a valid frame. `claimed_end` is where the frame says it ends (clamped to the frame
    /// area; just past the header when the length is unusable), for telling torn from corrupt.
    Invalid {
        reason: CorruptReason,
        claimed_end: usize,
    },
}

/// Whether the 40 bytes at `at` are a frame header with a valid checksum under `seed` (the
/// payload and the other rules unchecked).
pub(super) fn header_checksum_holds(image: &[u8], at: usize, seed: u32) -> bool {
    match image.get(at..at.saturating_add(FRAME_HEADER_LEN)) {
        Some(header) if !all_zero(header) => {
            crc32c_append(seed, &header[..HEADER_CRC_AT]) ^ HEADER_CRC_MASK
                == u32_at(header, HEADER_CRC_AT)
        }
        _ => false,
    }
}

/// Checks the frame at `at` (8-aligned) in `image`, whose frame area ends at `area_end`.
pub(super) fn inspect(image: &[u8], at: usize, area_end: usize, seed: u32) -> Inspect<'_> {
    inspect_with(image, at, area_end, seed, true)
}

/// [`inspect`], optionally without the payload's checks (its checksum and padding): the header
/// checksum still covers every field, the length included, so the frame's extent is sure.
fn inspect_with(
    image: &[u8],
    at: usize,
    area_end: usize,
    seed: u32,
    check_payload: bool,
) -> Inspect<'_> {
    let Some(header) = image
        .get(at..at.saturating_add(FRAME_HEADER_LEN))
        .filter(|_| at + FRAME_HEADER_LEN <= area_end)
    else {
        return Inspect::HeaderCut;
    };
    // An all-zero header is where the written frames end; it fails the checksum (masked),
    // so it is told apart only then, and a valid frame is not scanned for zeros first.
    let len = u32_at(header, 0) as usize;
    let full_end = at.saturating_add(frame_len(len));
    let claimed_end = if full_end <= area_end {
        full_end
    } else {
        at + FRAME_HEADER_LEN
    };

    let stored = u32_at(header, HEADER_CRC_AT);
    if crc32c_append(seed, &header[..HEADER_CRC_AT]) ^ HEADER_CRC_MASK != stored {
        if all_zero(header) {
            return Inspect::ZeroHeader;
        }
        return Inspect::Invalid {
            reason: CorruptReason::HeaderChecksum,
            claimed_end,
        };
    }
    // The checksum holds: the length and every other field are what the writer wrote.
    let kind = match header[4] {
        1 => FrameKind::Record,
        2 => FrameKind::Seal,
        // (An all-zero header whose masked checksum happens to hold under this salt.)
        _ if all_zero(header) => return Inspect::ZeroHeader,
        kind => {
            return Inspect::Invalid {
                reason: CorruptReason::UnknownKind { kind },
                claimed_end,
            };
        }
    };
    let flags = header[5];
    let allowed = match kind {
        FrameKind::Record => FLAG_CONTINUES,
        FrameKind::Seal => 0,
    };
    if flags & !allowed != 0 || header[6] | header[7] != 0 || u32_at(header, 32) != 0 {
        return Inspect::Invalid {
            reason: CorruptReason::NonZeroReserved,
            claimed_end,
        };
    }
    if full_end > area_end {
        return Inspect::Overrun;
    }
    let payload_start = at + FRAME_HEADER_LEN;
    let payload = &image[payload_start..payload_start + len];
    if check_payload && crc32c(payload) != u32_at(header, 12) {
        return Inspect::Invalid {
            reason: CorruptReason::PayloadChecksum,
            claimed_end,
        };
    }
    if check_payload && image[payload_start + len..full_end].iter().any(|&b| b != 0) {
        return Inspect::Invalid {
            reason: CorruptReason::NonZeroPadding,
            claimed_end,
        };
    }
    Inspect::Frame(RawFrame {
        fields: FrameFields {
            kind,
            flags,
            tag: u32_at(header, 8),
            seq: u64_at(header, 16),
            timestamp: u64_at(header, 24),
        },
        payload,
        end: full_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_pads_to_eight() {
        assert_eq!(frame_len(0), 40);
        assert_eq!(frame_len(1), 48);
        assert_eq!(frame_len(8), 48);
        assert_eq!(frame_len(9), 56);
        assert_eq!(frame_len(usize::MAX), usize::MAX);
    }

    #[test]
    fn written_frame_inspects_back() {
        let mut buf = [0xAAu8; 64];
        let fields = FrameFields {
            kind: FrameKind::Record,
            flags: 0,
            tag: 3,
            seq: 99,
            timestamp: 5,
        };
        let seed = salt_seed(1);
        let n = write_frame(&mut buf, seed, fields, b"abc");
        assert_eq!(n, 48);
        assert_eq!(&buf[43..48], &[0; 5]);
        match inspect(&buf, 0, 64, seed) {
            Inspect::Frame(f) => {
                assert_eq!(
                    (f.fields.seq, f.fields.tag, f.payload, f.end),
                    (99, 3, &b"abc"[..], 48)
                );
            }
            other => panic!("{other:?}"),
        }
        // Another salt: the header checksum fails.
        assert!(matches!(
            inspect(&buf, 0, 64, salt_seed(2)),
            Inspect::Invalid {
                reason: CorruptReason::HeaderChecksum,
                ..
            }
        ));
        // The frame area ends inside the payload: an overrun.
        assert!(matches!(inspect(&buf, 0, 44, seed), Inspect::Overrun));
        assert!(matches!(inspect(&buf, 0, 39, seed), Inspect::HeaderCut));
    }

    #[test]
    fn zero_header_never_validates_under_any_salt() {
        let zeros = [0u8; 40];
        for salt in [0, 1, u64::MAX] {
            assert!(matches!(
                inspect(&zeros, 0, 40, salt_seed(salt)),
                Inspect::ZeroHeader
            ));
        }
    }
}
