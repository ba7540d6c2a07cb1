//! Comma-separated lists of sequences: how a consumer's positions are stored.
//!
//! The text form is quasar's: compact decimals joined by `,` in the given order, the empty list
//! as empty text. Decoding tolerates one trailing comma (`"1,2,"`) but not an empty item
//! anywhere else (`",1"`, `"1,,2"`). The no-alloc forms are [`encode_list_into`] and the
//! [`decode_list_iter`] iterator; [`encode_list`] and [`decode_list`] are the `alloc` conveniences.

use super::{decimal_len, decode_at, encode, DecodeError, ENCODED_LEN};

/// The number of bytes [`encode_list_into`] writes for `seqs`.
pub fn encoded_list_len(seqs: &[u64]) -> usize {
    let digits: usize = seqs.iter().map(|&s| decimal_len(s)).sum();
    digits + seqs.len().saturating_sub(1)
}

/// The output buffer given to [`encode_list_into`] is too small.
///
/// ```
/// use ringledger_core::sequence::list::BufferTooSmall;
/// use ringledger_core::sequence::encode_list_into;
///
/// let mut out = [0u8; 4];
/// match encode_list_into(&[10, 20], &mut out) {
///     Ok(n) => unreachable!("{n} bytes cannot fit"),
///     Err(BufferTooSmall { needed, available }) => assert_eq!((needed, available), (5, 4)),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the encoded list needs {needed} bytes, the buffer has {available}")]
pub struct BufferTooSmall {
    /// Bytes the whole list needs ([`encoded_list_len`]).
    pub needed: usize,
    /// Bytes the buffer has.
    pub available: usize,
}

/// Writes `seqs` as compact decimals joined by `,` into `out`; returns the number of bytes
/// written. Nothing is written when `out` is too small.
///
/// ```
/// use ringledger_core::sequence::encode_list_into;
///
/// let mut out = [0u8; 16];
/// let n = encode_list_into(&[1, 2, 3], &mut out).unwrap();
/// assert_eq!(&out[..n], b"1,2,3");
/// assert_eq!(encode_list_into(&[], &mut out), Ok(0));
/// ```
pub fn encode_list_into(seqs: &[u64], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let needed = encoded_list_len(seqs);
    if needed > out.len() {
        return Err(BufferTooSmall {
            needed,
            available: out.len(),
        });
    }
    let mut pos = 0;
    let mut digits = [0u8; ENCODED_LEN];
    for (i, &seq) in seqs.iter().enumerate() {
        if i > 0 {
            out[pos] = b',';
            pos += 1;
        }
        let text = encode(seq, true, &mut digits).as_bytes();
        out[pos..pos + text.len()].copy_from_slice(text);
        pos += text.len();
    }
    Ok(pos)
}

/// Encodes `seqs` as an owned string (see [`encode_list_into`]).
#[cfg(feature = "alloc")]
pub fn encode_list(seqs: &[u64]) -> alloc::string::String {
    let mut out = alloc::vec![0u8; encoded_list_len(seqs)];
    let written = encode_list_into(seqs, &mut out).unwrap_or(0);
    out.truncate(written);
    // Only ASCII digits and commas were written.
    alloc::string::String::from_utf8(out).unwrap_or_default()
}

/// Decodes a comma-separated list into a vector.
///
/// The vector grows one decoded item at a time, so its size is bounded by the input's, never
/// by a number read from it.
///
/// ```
/// use ringledger_core::sequence::{decode_list, DecodeError};
///
/// assert_eq!(decode_list(b"1,2,"), Ok(vec![1, 2]));
/// assert_eq!(decode_list(b""), Ok(vec![]));
/// assert_eq!(decode_list(b"1,,2"), Err(DecodeError::Empty { offset: 2 }));
/// ```
#[cfg(feature = "alloc")]
pub fn decode_list(text: &[u8]) -> Result<alloc::vec::Vec<u64>, DecodeError> {
    decode_list_iter(text).collect()
}

/// Decodes a comma-separated list lazily, without allocating.
///
/// The iterator yields each sequence in order; on the first bad item it yields the error (with
/// the offset in `text`) and then ends.
///
/// ```
/// use ringledger_core::sequence::{decode_list_iter, DecodeError};
///
/// let mut items = decode_list_iter(b"7,x");
/// assert_eq!(items.next(), Some(Ok(7)));
/// assert_eq!(items.next(), Some(Err(DecodeError::NotADigit { offset: 2, byte: b'x' })));
/// assert_eq!(items.next(), None);
/// ```
pub fn decode_list_iter(text: &[u8]) -> ListIter<'_> {
    ListIter {
        text,
        pos: 0,
        finished: text.is_empty(),
    }
}

/// The iterator returned by [`decode_list_iter`].
///
/// ```
/// use ringledger_core::sequence::{decode_list_iter, ListIter};
///
/// let items: ListIter<'_> = decode_list_iter(b"5,8,13");
/// let sum: Result<u64, _> = items.sum();
/// assert_eq!(sum, Ok(26));
/// ```
#[derive(Debug, Clone)]
pub struct ListIter<'a> {
    text: &'a [u8],
    pos: usize,
    finished: bool,
}

impl Iterator for ListIter<'_> {
    type Item = Result<u64, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let rest = self.text.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            // Only reachable right after a comma: the one tolerated trailing comma.
            self.finished = true;
            return None;
        }
        let start = self.pos;
        let item = match rest.iter().position(|&b| b == b',') {
            Some(comma) => {
                self.pos = start + comma + 1;
                &rest[..comma]
            }
            None => {
                self.finished = true;
                rest
            }
        };
        let result = decode_at(item, start);
        if result.is_err() {
            self.finished = true;
        }
        Some(result)
    }
}

impl core::iter::FusedIterator for ListIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded<const N: usize>(text: &[u8]) -> ([u64; N], usize, Option<DecodeError>) {
        let mut out = [0u64; N];
        let mut n = 0;
        for item in decode_list_iter(text) {
            match item {
                Ok(seq) => {
                    out[n] = seq;
                    n += 1;
                }
                Err(e) => return (out, n, Some(e)),
            }
        }
        (out, n, None)
    }

    #[test]
    fn quasar_encode_list_vectors() {
        let mut out = [0u8; 64];
        let n = encode_list_into(&[1, 2, 3], &mut out).unwrap();
        assert_eq!(&out[..n], b"1,2,3");
        let n = encode_list_into(&[7], &mut out).unwrap();
        assert_eq!(&out[..n], b"7");
        assert_eq!(encode_list_into(&[], &mut out), Ok(0));
        let n = encode_list_into(&[u64::MAX, 0], &mut out).unwrap();
        assert_eq!(&out[..n], b"18446744073709551615,0");
    }

    #[test]
    fn too_small_buffer_writes_nothing() {
        let mut out = [b'?'; 4];
        assert_eq!(
            encode_list_into(&[10, 22], &mut out),
            Err(BufferTooSmall {
                needed: 5,
                available: 4
            })
        );
        assert_eq!(&out, b"????");
        assert_eq!(encode_list_into(&[1, 22], &mut out), Ok(4));
        assert_eq!(&out, b"1,22");
    }

    #[test]
    fn decode_list_rules() {
        assert_eq!(decoded::<4>(b""), ([0; 4], 0, None));
        assert_eq!(decoded::<4>(b"1,2,3"), ([1, 2, 3, 0], 3, None));
        assert_eq!(decoded::<4>(b"1,2,"), ([1, 2, 0, 0], 2, None));
        assert_eq!(
            decoded::<4>(b","),
            ([0; 4], 0, Some(DecodeError::Empty { offset: 0 }))
        );
        assert_eq!(
            decoded::<4>(b",1"),
            ([0; 4], 0, Some(DecodeError::Empty { offset: 0 }))
        );
        assert_eq!(
            decoded::<4>(b"1,,"),
            ([1, 0, 0, 0], 1, Some(DecodeError::Empty { offset: 2 }))
        );
        assert_eq!(
            decoded::<4>(b"1,-2"),
            (
                [1, 0, 0, 0],
                1,
                Some(DecodeError::Sign {
                    offset: 2,
                    byte: b'-'
                })
            )
        );
        assert_eq!(
            decoded::<4>(b"5,99999999999999999999"),
            ([5, 0, 0, 0], 1, Some(DecodeError::Overflow { offset: 21 }))
        );
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn alloc_forms_round_trip() {
        let seqs = [0, 1, 42, u64::MAX, 6_686_353_297_697_144_874];
        let text = encode_list(&seqs);
        assert_eq!(text, "0,1,42,18446744073709551615,6686353297697144874");
        assert_eq!(decode_list(text.as_bytes()).unwrap(), seqs);
        assert_eq!(encode_list(&[]), "");
    }
}
