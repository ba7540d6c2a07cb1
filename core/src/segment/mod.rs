//! The segment log format: the bytes of one file of the on-disk ledger, as pure functions over
//! byte slices. No I/O happens here; `ringledger`'s ledger maps the files and calls these.
//!
//! A segment is a fixed-capacity file named after its base sequence ([`file_name`]). It starts
//! with a [`FileHeader`], then 8-byte-aligned frames: records (payload, sequence, timestamp,
//! a writer-chosen tag) and finally, when the segment is full, one seal frame with the
//! segment's statistics and a sparse index, found without a scan through the 8-byte footer at the
//! very end of the file. Every frame header carries a CRC-32C that covers the file's random
//! salt, its length and its sequence, so a frame from another segment, a zeroed header or a
//! flipped bit never validates.
//!
//! - [`Writer`] appends frames into a `&mut [u8]` and seals it.
//! - [`Scanner`] walks an image and yields each valid [`Record`], then says how the image ends
//!   ([`ScanEnd`]: clean, torn tail, or corrupt, with the offset and the reason).
//! - [`recover`] applies the recovery rule to the last segment of a ledger.
//! - [`SealedSegment`] opens a sealed segment through its seal and finds sequences through the
//!   index.
//!
//! `core/FORMAT.md` documents the layout byte by byte, and the recovery rule.
//!
//! # Examples
//!
//! ```
//! use ringledger_core::segment::{FileHeader, Scanner, ScanEnd, SealedSegment, Writer};
//!
//! let header = FileHeader { base_seq: 10, ledger_id: 1, salt: 0x5EED, capacity: 4096, created_ns: 0 };
//! let mut image = vec![0u8; 4096];
//! let mut writer = Writer::create(&mut image, &header, 1024).unwrap();
//! writer.append(10, 1_000, 7, b"hello").unwrap();
//! writer.append(12, 1_001, 7, b"world").unwrap();
//! writer.seal().unwrap();
//!
//! let mut scanner = Scanner::new(&image).unwrap();
//! let payloads: Vec<&[u8]> = scanner.by_ref().map(|r| r.payload).collect();
//! assert_eq!(payloads, [&b"hello"[..], &b"world"[..]]);
//! assert!(matches!(scanner.end(), Some(ScanEnd::CleanEnd { seal: Some(_), .. })));
//!
//! let sealed = SealedSegment::open(&image).unwrap();
//! assert_eq!(sealed.find(12).unwrap().unwrap().payload, b"world");
//! ```

mod frame;
mod header;
mod recover;
mod scan;
mod seal;
mod writer;

pub use frame::{frame_len, FrameKind, Record, RecordReader, FLAG_CONTINUES, FRAME_HEADER_LEN};
pub use header::{
    file_name, parse_file_name, FileHeader, FileName, FileNameError, HeaderError, FILE_HEADER_LEN,
    MAGIC, VERSION,
};
pub use recover::{recover, recovery_plan, Damage, Recovered};
pub use scan::{CorruptReason, ScanEnd, Scanner, SegmentStats};
pub use seal::{
    Corruption, IndexEntry, OpenSealedError, Seal, SealedRecords, SealedSegment, SEAL_FIXED_LEN,
};
pub use writer::{Appender, WriteError, Writer};

/// Length of the footer at the end of the file: zero, or where the seal frame is, checksummed.
pub const FOOTER_LEN: usize = 8;

/// XORed into the footer's checksum, so that it differs from a frame header checksum.
const FOOTER_CRC_MASK: u32 = 0x5EA1_F007;

/// What the footer (the last 8 bytes of a segment) says.
///
/// ```
/// use ringledger_core::segment::{decode_footer, encode_footer, Footer};
///
/// let salt = 0xFEED;
/// assert_eq!(decode_footer(salt, &encode_footer(salt, 4000)), Footer::Sealed(4000));
/// assert_eq!(decode_footer(salt, &[0; 8]), Footer::Open);
/// // The checksum covers the salt: another segment's footer does not validate here.
/// assert!(matches!(decode_footer(salt, &encode_footer(0xBEEF, 4000)), Footer::Invalid(_)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Footer {
    /// All zero: no seal is known to be on disk.
    Open,
    /// A valid footer: the seal frame is at this offset.
    Sealed(usize),
    /// Neither: bytes that never were a footer (a garbled page), or a damaged one.
    Invalid(u64),
}

/// The footer of a segment with this salt sealed at offset `seal_at` (a multiple of 8 below
/// 32 GiB): `seal_at / 8` as a `u32`, then `CRC-32C(salt ‖ those 4 bytes) XOR 0x5EA1F007`.
pub fn encode_footer(salt: u64, seal_at: usize) -> [u8; FOOTER_LEN] {
    let slot = u32::try_from(seal_at / FRAME_ALIGN)
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let crc = crate::crc32c::crc32c_append(frame::salt_seed(salt), &slot) ^ FOOTER_CRC_MASK;
    let mut out = [0u8; FOOTER_LEN];
    out[..4].copy_from_slice(&slot);
    out[4..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a footer written by [`encode_footer`] under this salt.
pub fn decode_footer(salt: u64, footer: &[u8]) -> Footer {
    let Some(bytes) = footer.get(..FOOTER_LEN) else {
        return Footer::Invalid(0);
    };
    let value = u64_at(bytes, 0);
    if value == 0 {
        return Footer::Open;
    }
    let slot = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let crc = crate::crc32c::crc32c_append(frame::salt_seed(salt), &slot) ^ FOOTER_CRC_MASK;
    if crc != u32_at(bytes, 4) {
        return Footer::Invalid(value);
    }
    Footer::Sealed(u32::from_le_bytes(slot) as usize * FRAME_ALIGN)
}

/// Frames start at multiples of this, and their payloads are zero-padded to it.
pub const FRAME_ALIGN: usize = 8;

/// Reads a little-endian `u16` at `at`; the caller has checked the bounds.
#[inline]
fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// Reads a little-endian `u32` at `at`; the caller has checked the bounds.
#[inline]
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// Reads a little-endian `u64` at `at`; the caller has checked the bounds.
#[inline]
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Whether every byte is zero, a word at a time.
#[inline]
fn all_zero(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let words_zero =
        words.all(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) == 0);
    words_zero && words.remainder().iter().all(|&b| b == 0)
}

/// Offset of the last non-zero byte in `bytes`, if any.
fn last_non_zero(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&b| b != 0)
}
