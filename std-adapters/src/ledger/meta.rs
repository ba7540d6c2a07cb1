//! `ledger.meta`: the ledger's id, and the head and tail that must outlive the segments.
//!
//! 64 bytes, little-endian, replaced atomically (written to a temporary file, synced, renamed
//! over, directory synced) when the ledger is created and on every delete:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 8 | magic `RLEDGMET` |
//! | 8  | 2 | version `1` |
//! | 10 | 6 | reserved, `0` |
//! | 16 | 8 | ledger id (every segment header carries it) |
//! | 24 | 8 | tail: entries up to it are deleted |
//! | 32 | 8 | head at the time of writing (the head survives deleting everything) |
//! | 40 | 20 | reserved, `0` |
//! | 60 | 4 | CRC-32C of bytes 0..60 |

use ringledger_core::crc32c::crc32c;

/// The file's name in the ledger directory.
pub(super) const META_FILE: &str = "ledger.meta";

const MAGIC: [u8; 8] = *b"RLEDGMET";
const VERSION: u16 = 1;
const LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    pub(super) ledger_id: u64,
    pub(super) tail: u64,
    pub(super) head: u64,
}

impl Meta {
    pub(super) fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.ledger_id.to_le_bytes());
        out[24..32].copy_from_slice(&self.tail.to_le_bytes());
        out[32..40].copy_from_slice(&self.head.to_le_bytes());
        let crc = crc32c(&out[..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != LEN {
            return Err(format!("{} bytes, expected {LEN}", bytes.len()));
        }
        if bytes[0..8] != MAGIC {
            return Err("wrong magic: not a ringledger metadata file".into());
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let stored = u32::from_le_bytes([bytes[60], bytes[61], bytes[62], bytes[63]]);
        if crc32c(&bytes[..60]) != stored {
            return Err("checksum mismatch".into());
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != VERSION {
            return Err(format!(
                "version {version}, this build reads version {VERSION}"
            ));
        }
        Ok(Self {
            ledger_id: word(16),
            tail: word(24),
            head: word(32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let meta = Meta {
            ledger_id: 7,
            tail: 5,
            head: 9,
        };
        let bytes = meta.encode();
        assert_eq!(Meta::decode(&bytes), Ok(meta));
        for at in 0..LEN {
            let mut bad = bytes;
            bad[at] ^= 1;
            assert!(Meta::decode(&bad).is_err(), "flip at {at}");
        }
        assert!(Meta::decode(&bytes[..10]).is_err());
    }
}
