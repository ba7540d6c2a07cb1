//! Sequence numbers: the `u64` that orders every ledger entry, compatible with quasar byte for byte.
//!
//! A sequence is a unix second in the high 32 bits and an ordinal within that second in the low
//! 32 bits ([`join`], [`split`]), so sequences sort by time and a [`Generator`] can hand them out
//! without coordination beyond one atomic word. The decimal text forms are what quasar stores:
//! [`encode`] writes the compact form or the 20-byte zero-padded one (whose byte order is the
//! numeric order, which is why segment file names use it), [`decode`] parses either. Consumers
//! persist their progress as a list ([`list`]) compiled from a mark table ([`compile`]).
//!
//! Nothing here allocates unless a function says so (the `alloc` conveniences).
//!
//! # Examples
//!
//! ```
//! use ringledger_core::sequence;
//!
//! let seq = sequence::join(1_556_787_942, 42);
//! assert_eq!(seq, 6_686_353_297_697_144_874);
//! assert_eq!(sequence::split(seq), (1_556_787_942, 42));
//!
//! let mut buf = [0u8; sequence::ENCODED_LEN];
//! assert_eq!(sequence::encode(seq, false, &mut buf), "06686353297697144874");
//! assert_eq!(sequence::encode(seq, true, &mut buf), "6686353297697144874");
//! assert_eq!(sequence::decode(b"06686353297697144874"), Ok(seq));
//! ```

mod compile;
#[cfg(any(
    target_has_atomic = "64",
    feature = "critical-section",
    feature = "portable-atomic-fallback"
))]
mod generator;
pub mod list;

#[cfg(feature = "alloc")]
pub use compile::compile_to_vec;
pub use compile::{compile, Compiled};
#[cfg(any(
    target_has_atomic = "64",
    feature = "critical-section",
    feature = "portable-atomic-fallback"
))]
pub use generator::{GenerateError, Generator};
#[cfg(feature = "alloc")]
pub use list::{decode_list, encode_list};
pub use list::{decode_list_iter, encode_list_into, encoded_list_len, ListIter};

/// Length of the zero-padded form, and the most digits a `u64` has.
pub const ENCODED_LEN: usize = 20;

/// Combines a unix second and an ordinal within it into a sequence.
#[inline]
pub const fn join(secs: u32, ordinal: u32) -> u64 {
    ((secs as u64) << 32) | ordinal as u64
}

/// Splits a sequence into its unix second and ordinal.
///
/// ```
/// use ringledger_core::sequence::{join, split};
///
/// let (secs, ordinal) = split(join(1_700_000_000, 5));
/// assert_eq!((secs, ordinal), (1_700_000_000, 5));
/// assert!(join(1_700_000_001, 1) > join(1_700_000_000, u32::MAX)); // the second sorts first
/// ```
#[inline]
pub const fn split(seq: u64) -> (u32, u32) {
    ((seq >> 32) as u32, seq as u32)
}

/// Two ASCII digits for every value below 100.
const DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut table = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        table[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    table
};

/// Writes `seq` in decimal into `buf` and returns the text.
///
/// With `compact` the text is the plain decimal (`"42"`), a suffix of `buf`; otherwise it is all
/// of `buf`: the decimal left-padded with `'0'` to exactly [`ENCODED_LEN`] bytes, so that byte
/// order equals numeric order (quasar's key format and our segment file names).
#[inline]
pub fn encode(seq: u64, compact: bool, buf: &mut [u8; ENCODED_LEN]) -> &str {
    write_padded(seq, buf);
    let start = if compact {
        ENCODED_LEN - decimal_len(seq)
    } else {
        0
    };
    // SAFETY: `write_padded` filled the whole buffer with ASCII digits, so every suffix of it
    // is valid UTF-8.
    unsafe { core::str::from_utf8_unchecked(&buf[start..]) }
}

/// `10^i` for every `i` a `u64` has digits for.
const POWERS_OF_TEN: [u64; ENCODED_LEN] = {
    let mut table = [1u64; ENCODED_LEN];
    let mut i = 1;
    while i < ENCODED_LEN {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// The number of decimal digits of `n` (1 for 0), without a division.
///
/// Every sequence from 1977 to 2043 has 19 digits, so that case is two comparisons. Otherwise
/// the bit length times log10(2) (as `1233 / 4096`) is the digit count or one less, and one
/// comparison decides.
#[inline]
pub(crate) fn decimal_len(n: u64) -> usize {
    if n >= POWERS_OF_TEN[18] {
        return 19 + usize::from(n >= POWERS_OF_TEN[19]);
    }
    let bits = 64 - (n | 1).leading_zeros() as usize;
    let estimate = (bits * 1233) >> 12; // at most 18 here
    estimate + usize::from(n >= POWERS_OF_TEN[estimate]) + usize::from(n == 0)
}

/// Writes all 20 digits of `n`, leading zeros included. Straight-line code: two 64-bit
/// divisions split `n` into a 4-digit top and two 8-digit halves; the top takes two table
/// look-ups, each half one multiplication per two digits ([`write_eight`]).
#[inline]
fn write_padded(n: u64, buf: &mut [u8; ENCODED_LEN]) {
    const E8: u64 = 100_000_000;
    let upper = n / E8;
    let low = (n % E8) as u32;
    let top = (upper / E8) as usize; // at most 1844
    let high = (upper % E8) as u32;
    buf[0..2].copy_from_slice(&DIGIT_PAIRS[top / 100 % 100]);
    buf[2..4].copy_from_slice(&DIGIT_PAIRS[top % 100]);
    write_eight(high, &mut buf[4..12]);
    write_eight(low, &mut buf[12..20]);
}

/// Writes the eight digits of `n` (below 10^8) into `out` (8 bytes).
///
/// `y` is `n / 10^6` in 32.32 fixed point, rounded up: its integer part is the first two
/// digits; multiplying the fraction by 100 brings the next two into the integer part, and so
/// on (James Anhalt's method). Rounding up by less than two units in the last place keeps every
/// step exact for all `n < 10^8` (checked exhaustively when this was written; the test samples).
#[inline(always)]
fn write_eight(n: u32, out: &mut [u8]) {
    const FRACTION: u64 = 0xFFFF_FFFF;
    // ceil(2^56 / 10^6); n * it < 2^63 for n < 10^8.
    let mut y = ((u64::from(n) * 72_057_594_038) >> 24) + 1;
    out[0..2].copy_from_slice(&DIGIT_PAIRS[(y >> 32) as usize]);
    y = (y & FRACTION) * 100;
    out[2..4].copy_from_slice(&DIGIT_PAIRS[(y >> 32) as usize]);
    y = (y & FRACTION) * 100;
    out[4..6].copy_from_slice(&DIGIT_PAIRS[(y >> 32) as usize]);
    y = (y & FRACTION) * 100;
    out[6..8].copy_from_slice(&DIGIT_PAIRS[(y >> 32) as usize]);
}

/// Encodes `seq` as an owned string (see [`encode`]).
#[cfg(feature = "alloc")]
pub fn encode_string(seq: u64, compact: bool) -> alloc::string::String {
    let mut buf = [0u8; ENCODED_LEN];
    alloc::string::String::from(encode(seq, compact, &mut buf))
}

/// Why a sequence (or a list of them) did not decode. Offsets count bytes from the start of the
/// input given to the decoder.
///
/// ```
/// use ringledger_core::sequence::{decode, DecodeError};
///
/// let describe = |text: &[u8]| match decode(text) {
///     Ok(seq) => format!("sequence {seq}"),
///     Err(DecodeError::NotADigit { offset, .. }) => format!("bad digit at {offset}"),
///     Err(error) => error.to_string(),
/// };
/// assert_eq!(describe(b"42"), "sequence 42");
/// assert_eq!(describe(b"4x"), "bad digit at 1");
/// assert_eq!(describe(b""), "empty sequence at offset 0");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The sequence at `offset` has no digits: an empty input, or an empty list item.
    #[error("empty sequence at offset {offset}")]
    Empty {
        /// Where the missing sequence should have started.
        offset: usize,
    },
    /// A `+` or `-` at `offset`: sequences are unsigned and written without a sign.
    #[error("sign {byte:#04x} at offset {offset}: sequences are unsigned")]
    Sign {
        /// The offset of the sign.
        offset: usize,
        /// The sign byte.
        byte: u8,
    },
    /// A byte that is not an ASCII digit.
    #[error("byte {byte:#04x} at offset {offset} is not a decimal digit")]
    NotADigit {
        /// The offset of the byte.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The digits ending at `offset` exceed `u64::MAX`.
    #[error("sequence overflows u64 at offset {offset}")]
    Overflow {
        /// The offset of the first digit that made the value too large.
        offset: usize,
    },
}

/// Parses a sequence written in unsigned decimal (compact or zero-padded; any number of leading
/// zeros).
///
/// ```
/// use ringledger_core::sequence::{decode, DecodeError};
///
/// assert_eq!(decode(b"00000000000000000001"), Ok(1));
/// assert_eq!(decode(b""), Err(DecodeError::Empty { offset: 0 }));
/// assert_eq!(decode(b"-1"), Err(DecodeError::Sign { offset: 0, byte: b'-' }));
/// assert_eq!(decode(b"18446744073709551616"), Err(DecodeError::Overflow { offset: 19 }));
/// ```
pub fn decode(text: &[u8]) -> Result<u64, DecodeError> {
    decode_at(text, 0)
}

/// [`decode`] with error offsets shifted by `base` (the position of `text` in a larger input).
fn decode_at(text: &[u8], base: usize) -> Result<u64, DecodeError> {
    if text.is_empty() {
        return Err(DecodeError::Empty { offset: base });
    }
    let mut value: u64 = 0;
    for (i, &byte) in text.iter().enumerate() {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return Err(match byte {
                b'+' | b'-' => DecodeError::Sign {
                    offset: base + i,
                    byte,
                },
                _ => DecodeError::NotADigit {
                    offset: base + i,
                    byte,
                },
            });
        }
        value = match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit)))
        {
            Some(v) => v,
            None => return Err(DecodeError::Overflow { offset: base + i }),
        };
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(seq: u64, compact: bool) -> [u8; ENCODED_LEN + 1] {
        // Returns the text NUL-terminated in a fixed array so tests need no allocation.
        let mut buf = [0u8; ENCODED_LEN];
        let text = encode(seq, compact, &mut buf);
        let mut out = [0u8; ENCODED_LEN + 1];
        out[..text.len()].copy_from_slice(text.as_bytes());
        out
    }

    fn text(bytes: &[u8; ENCODED_LEN + 1]) -> &str {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        core::str::from_utf8(&bytes[..end]).unwrap()
    }

    #[test]
    fn quasar_join_split_vectors() {
        assert_eq!(join(1_556_787_942, 42), 6_686_353_297_697_144_874);
        assert_eq!(split(0), (0, 0));
        assert_eq!(split(u64::MAX), (4_294_967_295, 4_294_967_295));
        assert_eq!(split(6_686_353_297_697_144_874), (1_556_787_942, 42));
    }

    #[test]
    fn quasar_encode_vectors() {
        assert_eq!(text(&enc(0, true)), "0");
        assert_eq!(text(&enc(0, false)), "00000000000000000000");
        assert_eq!(text(&enc(1, false)), "00000000000000000001");
        assert_eq!(text(&enc(u64::MAX, false)), "18446744073709551615");
        assert_eq!(text(&enc(u64::MAX, true)), "18446744073709551615");
        assert_eq!(
            text(&enc(6_686_353_297_697_144_874, false)),
            "06686353297697144874"
        );
    }

    #[test]
    fn encode_decode_round_trip_at_every_digit_count() {
        let mut n: u64 = 1;
        for _ in 0..20 {
            for seq in [n - 1, n, n.saturating_add(1), n.saturating_mul(7) / 3] {
                for compact in [true, false] {
                    let mut buf = [0u8; ENCODED_LEN];
                    let s = encode(seq, compact, &mut buf);
                    assert_eq!(decode(s.as_bytes()), Ok(seq));
                    if !compact {
                        assert_eq!(s.len(), ENCODED_LEN);
                    }
                }
            }
            n = n.saturating_mul(10);
        }
    }

    #[test]
    fn compact_form_has_no_leading_zeros_at_any_length() {
        let mut n = 0u64;
        loop {
            for seq in [n, n.saturating_sub(1), n.saturating_add(1)] {
                let mut buf = [0u8; ENCODED_LEN];
                let text = encode(seq, true, &mut buf);
                assert_eq!(text.len(), decimal_len(seq), "{seq}");
                assert!(seq == 0 || !text.starts_with('0'), "{seq}");
            }
            if n == u64::MAX {
                break;
            }
            n = n.saturating_mul(10).max(1);
        }
    }

    #[test]
    fn eight_digit_halves_match_the_definition() {
        let step = if cfg!(miri) { 999_983 } else { 997 };
        let edges = [
            0, 1, 9, 10, 99, 100, 999_999, 1_000_000, 9_999_999, 99_999_999,
        ];
        for n in (0..100_000_000u32).step_by(step).chain(edges) {
            let mut bytes = [0u8; 8];
            write_eight(n, &mut bytes);
            let mut expected = [0u8; 8];
            let mut rest = n;
            for digit in expected.iter_mut().rev() {
                *digit = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            assert_eq!(bytes, expected, "{n}");
        }
    }

    #[test]
    fn decimal_len_at_every_power_of_ten() {
        assert_eq!(decimal_len(0), 1);
        assert_eq!(decimal_len(u64::MAX), 20);
        for (i, &power) in POWERS_OF_TEN.iter().enumerate() {
            assert_eq!(decimal_len(power), i + 1);
            assert_eq!(decimal_len(power - 1), i.max(1));
        }
    }

    #[test]
    fn padded_byte_order_is_numeric_order() {
        let values = [
            0u64,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ];
        for pair in values.windows(2) {
            assert!(enc(pair[0], false) < enc(pair[1], false));
        }
    }

    #[test]
    fn decode_errors_say_what_and_where() {
        assert_eq!(decode(b""), Err(DecodeError::Empty { offset: 0 }));
        assert_eq!(
            decode(b"+1"),
            Err(DecodeError::Sign {
                offset: 0,
                byte: b'+'
            })
        );
        assert_eq!(
            decode(b"12a"),
            Err(DecodeError::NotADigit {
                offset: 2,
                byte: b'a'
            })
        );
        assert_eq!(
            decode(b" 1"),
            Err(DecodeError::NotADigit {
                offset: 0,
                byte: b' '
            })
        );
        assert_eq!(decode(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            decode(b"18446744073709551616"),
            Err(DecodeError::Overflow { offset: 19 })
        );
        assert_eq!(
            decode(b"99999999999999999999"),
            Err(DecodeError::Overflow { offset: 19 })
        );
        assert_eq!(decode(b"0000000000000000000000000000042"), Ok(42));
    }
}
