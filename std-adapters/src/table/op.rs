//! The table's operations as record payloads: what one frame of the table log says.
//!
//! Every change to the table is one record frame of the [segment format](ringledger_core::segment)
//! whose tag says which operation it is:
//!
//! - [`TAG_SET`]: `name_len` (`u32` LE), the name's UTF-8 bytes, then each position as a `u64`
//!   LE. A compacted log is nothing but these, one per live name.
//! - [`TAG_DELETE`]: the name's UTF-8 bytes, nothing else.
//!
//! Decoding never trusts the bytes: a frame that passed its checksums can still have been
//! written by something else, so a malformed payload is an error, never a panic.

use std::mem::size_of;

/// Record tag of a set: the name's length, the name, the positions.
pub(super) const TAG_SET: u32 = 1;

/// Record tag of a delete: the name.
pub(super) const TAG_DELETE: u32 = 2;

/// Bytes before the name in a set payload (its length).
const NAME_LEN_BYTES: usize = size_of::<u32>();

/// Bytes of one position in a set payload.
const POSITION_BYTES: usize = size_of::<u64>();

/// One change to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op<'a> {
    /// Replaces the positions of `name` (never empty: an empty set is a no-op, not an op).
    Set {
        /// The entry's name.
        name: &'a str,
        /// Its new positions.
        positions: &'a [u64],
    },
    /// Removes `name`.
    Delete {
        /// The entry's name.
        name: &'a str,
    },
}

/// An operation read back from a record. The positions are copied out: after the name they are
/// not 8-byte aligned in general.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DecodedOp<'a> {
    /// See [`Op::Set`].
    Set {
        /// The entry's name.
        name: &'a str,
        /// Its positions.
        positions: Vec<u64>,
    },
    /// See [`Op::Delete`].
    Delete {
        /// The entry's name.
        name: &'a str,
    },
}

impl Op<'_> {
    /// The entry's name.
    pub(super) fn name(&self) -> &str {
        match *self {
            Op::Set { name, .. } | Op::Delete { name } => name,
        }
    }

    /// The record tag.
    pub(super) fn tag(&self) -> u32 {
        match self {
            Op::Set { .. } => TAG_SET,
            Op::Delete { .. } => TAG_DELETE,
        }
    }

    /// Writes the payload into `out`, replacing what it held.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        match *self {
            Op::Set { name, positions } => {
                out.reserve(set_payload_len(name, positions.len()).unwrap_or(0));
                // The caller checked that the name fits (`MAX_NAME_LEN`).
                let name_len = u32::try_from(name.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&name_len.to_le_bytes());
                out.extend_from_slice(name.as_bytes());
                for position in positions {
                    out.extend_from_slice(&position.to_le_bytes());
                }
            }
            Op::Delete { name } => out.extend_from_slice(name.as_bytes()),
        }
    }
}

/// The length of the payload of a set of `name` to `count` positions.
pub(super) fn set_payload_len(name: &str, count: usize) -> Option<usize> {
    count
        .checked_mul(POSITION_BYTES)?
        .checked_add(NAME_LEN_BYTES + name.len())
}

/// Reads a record's payload back into an operation; the error says what is malformed.
pub(super) fn decode(tag: u32, payload: &[u8]) -> Result<DecodedOp<'_>, String> {
    match tag {
        TAG_SET => {
            let (len_bytes, rest) =
                payload
                    .split_first_chunk::<NAME_LEN_BYTES>()
                    .ok_or_else(|| {
                        format!("set payload of {} bytes has no name length", payload.len())
                    })?;
            let name_len = u32::from_le_bytes(*len_bytes) as usize;
            if name_len > rest.len() {
                return Err(format!(
                    "set payload names {name_len} bytes but only {} follow",
                    rest.len()
                ));
            }
            let (name, positions) = rest.split_at(name_len);
            let name = std::str::from_utf8(name).map_err(|e| format!("set name: {e}"))?;
            if positions.is_empty() || positions.len() % POSITION_BYTES != 0 {
                return Err(format!(
                    "set of {name:?} has {} bytes of positions, not a positive multiple of 8",
                    positions.len()
                ));
            }
            let positions = positions
                .chunks_exact(POSITION_BYTES)
                .map(|word| {
                    let mut bytes = [0u8; POSITION_BYTES];
                    bytes.copy_from_slice(word);
                    u64::from_le_bytes(bytes)
                })
                .collect();
            Ok(DecodedOp::Set { name, positions })
        }
        TAG_DELETE => {
            let name = std::str::from_utf8(payload).map_err(|e| format!("delete name: {e}"))?;
            Ok(DecodedOp::Delete { name })
        }
        tag => Err(format!("unknown record tag {tag}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_round_trip(op: Op<'_>, expected: DecodedOp<'_>) {
        let mut payload = Vec::new();
        op.encode(&mut payload);
        if let Op::Set { name, positions } = op {
            assert_eq!(Some(payload.len()), set_payload_len(name, positions.len()));
        }
        assert_eq!(decode(op.tag(), &payload), Ok(expected));
    }

    #[test]
    fn set_and_delete_round_trip() {
        assert_round_trip(
            Op::Set {
                name: "consumer",
                positions: &[0, 7, u64::MAX],
            },
            DecodedOp::Set {
                name: "consumer",
                positions: vec![0, 7, u64::MAX],
            },
        );
        assert_round_trip(Op::Delete { name: "" }, DecodedOp::Delete { name: "" });
    }

    #[test]
    fn set_layout_is_length_name_positions() {
        let mut payload = Vec::new();
        Op::Set {
            name: "ab",
            positions: &[1],
        }
        .encode(&mut payload);
        assert_eq!(payload, [2, 0, 0, 0, b'a', b'b', 1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(decode(TAG_SET, &[1, 0]).is_err());
        assert!(decode(TAG_SET, &[9, 0, 0, 0, b'a']).is_err());
        assert!(
            decode(TAG_SET, &[1, 0, 0, 0, b'a']).is_err(),
            "no positions"
        );
        assert!(decode(TAG_SET, &[1, 0, 0, 0, b'a', 1, 2, 3]).is_err());
        assert!(decode(TAG_SET, &[1, 0, 0, 0, 0xFF, 1, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode(TAG_DELETE, &[0xC3]).is_err());
        assert!(decode(3, b"x")
            .unwrap_err()
            .contains("unknown record tag 3"));
    }
}
