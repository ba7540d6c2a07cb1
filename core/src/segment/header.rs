//! The 64-byte file header and the segment file name.

use super::{u16_at, u32_at, u64_at, FOOTER_LEN, FRAME_ALIGN};
use crate::crc32c::crc32c;
use crate::sequence::{self, DecodeError, ENCODED_LEN};

/// The first eight bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"RLEDGSEG";

/// The format version this module writes and reads.
pub const VERSION: u16 = 1;

/// Length of the file header; the first frame starts right after it.
pub const FILE_HEADER_LEN: usize = 64;

/// What a segment file says about itself in its first 64 bytes.
///
/// ```
/// use ringledger_core::segment::{FileHeader, FILE_HEADER_LEN, MAGIC};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut bytes = [0u8; FILE_HEADER_LEN];
/// header.encode(&mut bytes).unwrap();
/// assert_eq!(bytes[..8], MAGIC);
/// assert_eq!(FileHeader::decode(&bytes), Ok(header));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// The sequence the segment starts at: no record in it has a smaller one. The file name.
    pub base_seq: u64,
    /// Identifies the ledger the segment belongs to.
    pub ledger_id: u64,
    /// A random value chosen when the file is created; every frame header checksum covers it,
    /// so frames copied from another segment (or left over in a recycled file) never validate.
    pub salt: u64,
    /// The file's size in bytes, header and footer included; a multiple of 8.
    pub capacity: u64,
    /// When the segment was created, in nanoseconds since the unix epoch.
    pub created_ns: u64,
}

/// Why a file header was rejected.
///
/// ```
/// use ringledger_core::segment::{FileHeader, HeaderError};
///
/// match FileHeader::decode(&[b'x'; 64]) {
///     Err(HeaderError::BadMagic) => {} // not a segment file: skip it
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(FileHeader::decode(&[0; 10]), Err(HeaderError::Truncated { len: 10 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Fewer than 64 bytes.
    #[error("segment header truncated: {len} of {FILE_HEADER_LEN} bytes")]
    Truncated {
        /// The bytes there are.
        len: usize,
    },
    /// The first eight bytes are not [`MAGIC`]: not a segment file.
    #[error("not a segment file: bad magic at offset 0")]
    BadMagic,
    /// The header checksum (offset 60) does not match bytes 0..60.
    #[error("segment header checksum mismatch at offset 60: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the header bytes.
        computed: u32,
    },
    /// A version this code does not read.
    #[error("unsupported segment version {version} at offset 8 (this build reads {VERSION})")]
    UnsupportedVersion {
        /// The version in the file.
        version: u16,
    },
    /// A field that must be zero or fixed is not (the offset says which).
    #[error("invalid segment header field at offset {offset}")]
    InvalidField {
        /// Offset of the field.
        offset: usize,
    },
    /// The capacity cannot hold a header and a footer, or is not a multiple of 8.
    #[error("invalid segment capacity {capacity} at offset 40")]
    BadCapacity {
        /// The capacity in the header.
        capacity: u64,
    },
}

impl FileHeader {
    /// Writes the header into the first 64 bytes of `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<(), HeaderError> {
        let Some(out) = out.get_mut(..FILE_HEADER_LEN) else {
            return Err(HeaderError::Truncated { len: out.len() });
        };
        check_capacity(self.capacity)?;
        out.fill(0);
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out[10..12].copy_from_slice(&(FILE_HEADER_LEN as u16).to_le_bytes());
        // 12..16 flags: zero.
        out[16..24].copy_from_slice(&self.base_seq.to_le_bytes());
        out[24..32].copy_from_slice(&self.ledger_id.to_le_bytes());
        out[32..40].copy_from_slice(&self.salt.to_le_bytes());
        out[40..48].copy_from_slice(&self.capacity.to_le_bytes());
        out[48..56].copy_from_slice(&self.created_ns.to_le_bytes());
        // 56..60 reserved: zero.
        let crc = crc32c(&out[..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    /// Reads and validates the header at the start of `image`.
    ///
    /// ```
    /// use ringledger_core::segment::{FileHeader, Writer};
    ///
    /// let header =
    ///     FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
    /// let mut image = vec![0u8; 1024];
    /// Writer::create(&mut image, &header, 0).unwrap();
    /// let decoded = FileHeader::decode(&image).unwrap();
    /// assert_eq!((decoded.base_seq, decoded.salt), (1, 0xFEED));
    /// image[20] ^= 1; // one flipped bit in the base sequence
    /// assert!(FileHeader::decode(&image).is_err());
    /// ```
    pub fn decode(image: &[u8]) -> Result<Self, HeaderError> {
        let Some(bytes) = image.get(..FILE_HEADER_LEN) else {
            return Err(HeaderError::Truncated { len: image.len() });
        };
        if bytes[0..8] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let stored = u32_at(bytes, 60);
        let computed = crc32c(&bytes[..60]);
        if stored != computed {
            return Err(HeaderError::Checksum { stored, computed });
        }
        let version = u16_at(bytes, 8);
        if version != VERSION {
            return Err(HeaderError::UnsupportedVersion { version });
        }
        if usize::from(u16_at(bytes, 10)) != FILE_HEADER_LEN {
            return Err(HeaderError::InvalidField { offset: 10 });
        }
        if u32_at(bytes, 12) != 0 {
            return Err(HeaderError::InvalidField { offset: 12 });
        }
        if u32_at(bytes, 56) != 0 {
            return Err(HeaderError::InvalidField { offset: 56 });
        }
        let header = Self {
            base_seq: u64_at(bytes, 16),
            ledger_id: u64_at(bytes, 24),
            salt: u64_at(bytes, 32),
            capacity: u64_at(bytes, 40),
            created_ns: u64_at(bytes, 48),
        };
        check_capacity(header.capacity)?;
        Ok(header)
    }
}

fn check_capacity(capacity: u64) -> Result<(), HeaderError> {
    let min = (FILE_HEADER_LEN + FOOTER_LEN) as u64;
    if capacity < min || capacity % FRAME_ALIGN as u64 != 0 {
        return Err(HeaderError::BadCapacity { capacity });
    }
    Ok(())
}

/// A segment file name: the base sequence zero-padded to 20 digits, then `.seg`, so that the
/// lexical order of the names is the numeric order of the segments.
///
/// ```
/// use ringledger_core::segment::{file_name, parse_file_name};
///
/// let name = file_name(9);
/// assert_eq!(name.to_string(), "00000000000000000009.seg");
/// assert!(name < file_name(10)); // names sort as their sequences do
/// assert_eq!(parse_file_name(name.as_str()), Ok(9));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileName([u8; ENCODED_LEN + 4]);

impl FileName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        // Digits and ".seg" only; the fallback is unreachable.
        core::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl core::fmt::Display for FileName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::fmt::Debug for FileName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The file name of the segment whose base sequence is `base_seq`.
///
/// ```
/// use ringledger_core::segment::file_name;
///
/// assert_eq!(file_name(42).as_str(), "00000000000000000042.seg");
/// ```
pub fn file_name(base_seq: u64) -> FileName {
    let mut name = [0u8; ENCODED_LEN + 4];
    let mut digits = [0u8; ENCODED_LEN];
    name[..ENCODED_LEN].copy_from_slice(sequence::encode(base_seq, false, &mut digits).as_bytes());
    name[ENCODED_LEN..].copy_from_slice(b".seg");
    FileName(name)
}

/// Why a name is not a segment file name.
///
/// ```
/// use ringledger_core::segment::{parse_file_name, FileNameError};
///
/// for name in ["00000000000000000042.seg", "notes.txt", "0000000000000000004x.seg"] {
///     match parse_file_name(name) {
///         Ok(base_seq) => assert_eq!(base_seq, 42),
///         Err(FileNameError::Shape) => assert_eq!(name, "notes.txt"), // not a segment: skip
///         Err(FileNameError::Sequence(_)) => assert!(name.ends_with("x.seg")),
///         Err(other) => panic!("{other}"),
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileNameError {
    /// Not 20 digits followed by `.seg`.
    #[error("not a segment file name: expected 20 digits and \".seg\"")]
    Shape,
    /// The digits do not form a sequence.
    #[error("bad base sequence in segment file name")]
    Sequence(#[from] DecodeError),
}

/// The base sequence named by a segment file name (the inverse of [`file_name`]).
pub fn parse_file_name(name: &str) -> Result<u64, FileNameError> {
    let bytes = name.as_bytes();
    if bytes.len() != ENCODED_LEN + 4 || &bytes[ENCODED_LEN..] != b".seg" {
        return Err(FileNameError::Shape);
    }
    Ok(sequence::decode(&bytes[..ENCODED_LEN])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: FileHeader = FileHeader {
        base_seq: 7,
        ledger_id: 9,
        salt: 0xDEAD_BEEF,
        capacity: 4096,
        created_ns: 123,
    };

    #[test]
    fn round_trip() {
        let mut bytes = [0u8; 64];
        HEADER.encode(&mut bytes).unwrap();
        assert_eq!(&bytes[..8], b"RLEDGSEG");
        assert_eq!(FileHeader::decode(&bytes), Ok(HEADER));
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let mut bytes = [0u8; 64];
        HEADER.encode(&mut bytes).unwrap();
        for bit in 0..64 * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(FileHeader::decode(&flipped).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn rejects_short_zero_and_bad_capacity() {
        assert_eq!(
            FileHeader::decode(&[0u8; 10]),
            Err(HeaderError::Truncated { len: 10 })
        );
        assert_eq!(FileHeader::decode(&[0u8; 64]), Err(HeaderError::BadMagic));
        let mut bytes = [0u8; 64];
        let bad = FileHeader {
            capacity: 70,
            ..HEADER
        };
        assert_eq!(
            bad.encode(&mut bytes),
            Err(HeaderError::BadCapacity { capacity: 70 })
        );
    }

    #[test]
    fn file_names_sort_numerically() {
        assert_eq!(file_name(0).as_str(), "00000000000000000000.seg");
        assert!(file_name(9) < file_name(10));
        assert_eq!(parse_file_name(file_name(u64::MAX).as_str()), Ok(u64::MAX));
        assert_eq!(parse_file_name("1.seg"), Err(FileNameError::Shape));
        assert_eq!(
            parse_file_name("0000000000000000000x.seg"),
            Err(FileNameError::Sequence(DecodeError::NotADigit {
                offset: 19,
                byte: b'x'
            }))
        );
    }
}
