//! Sequence numbers on the device: quasar's conformance vectors (`reference/quasar.md`), round
//! trips, the error cases, the list forms without allocation, the mark-table compaction and the
//! generator (whose 64-bit compare-and-swap goes through the critical section on both targets).
//! The 64-bit divisions of `encode` are library calls on these cores: the vectors pin them.

use ringledger_core::sequence::{
    self, decode, decode_list_iter, encode, encode_list_into, encoded_list_len, join, split,
    DecodeError, ENCODED_LEN,
};
#[cfg(any(target_has_atomic = "64", feature = "critical-section"))]
use ringledger_core::sequence::{GenerateError, Generator};

use crate::harness::{Board, Outcome};
use crate::{ensure, ensure_eq, passed};

/// quasar's join/split vectors.
pub fn join_split(_: &mut Board) -> Outcome {
    ensure_eq!(join(1_556_787_942, 42), 6_686_353_297_697_144_874);
    ensure_eq!(split(6_686_353_297_697_144_874), (1_556_787_942, 42));
    ensure_eq!(split(0), (0, 0));
    ensure_eq!(split(u64::MAX), (u32::MAX, u32::MAX));
    ensure_eq!(join(u32::MAX, u32::MAX), u64::MAX);
    passed!()
}

/// quasar's encode vectors, and round trips (compact and padded) of spread-out values, whose
/// padded forms sort like the numbers.
pub fn encode_decode(_: &mut Board) -> Outcome {
    let mut buf = [0u8; ENCODED_LEN];
    ensure_eq!(encode(0, true, &mut buf), "0");
    ensure_eq!(encode(0, false, &mut buf), "00000000000000000000");
    ensure_eq!(encode(1, false, &mut buf), "00000000000000000001");
    ensure_eq!(encode(u64::MAX, false, &mut buf), "18446744073709551615");
    ensure_eq!(
        encode(6_686_353_297_697_144_874, false, &mut buf),
        "06686353297697144874"
    );
    ensure_eq!(decode(b"00000000000000000001"), Ok(1));
    ensure_eq!(decode(b"18446744073709551615"), Ok(u64::MAX));

    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut previous = [0u8; ENCODED_LEN];
    let mut previous_value = 0u64;
    for i in 0..2_000u32 {
        // Every digit count: a random value shifted right by 0..64 bits.
        let value = xorshift(&mut state) >> (i % 64);
        let mut text = [0u8; ENCODED_LEN];
        let padded = encode(value, false, &mut text);
        ensure_eq!(padded.len(), ENCODED_LEN);
        ensure_eq!(decode(padded.as_bytes()), Ok(value));
        let compact_len = encode(value, true, &mut buf).len();
        ensure!(
            compact_len == 1 || buf[ENCODED_LEN - compact_len] != b'0',
            "compact form of {} has a leading zero",
            value
        );
        ensure_eq!(decode(&buf[ENCODED_LEN - compact_len..]), Ok(value));
        ensure_eq!(text.cmp(&previous), value.cmp(&previous_value));
        previous = text;
        previous_value = value;
    }
    passed!("2000 values")
}

/// Empty, signed, non-digit and overflowing input, with the offsets.
pub fn decode_errors(_: &mut Board) -> Outcome {
    ensure_eq!(decode(b""), Err(DecodeError::Empty { offset: 0 }));
    ensure_eq!(
        decode(b"-1"),
        Err(DecodeError::Sign {
            offset: 0,
            byte: b'-'
        })
    );
    ensure_eq!(
        decode(b"+1"),
        Err(DecodeError::Sign {
            offset: 0,
            byte: b'+'
        })
    );
    ensure_eq!(
        decode(b"12a4"),
        Err(DecodeError::NotADigit {
            offset: 2,
            byte: b'a'
        })
    );
    ensure_eq!(
        decode(b"18446744073709551616"),
        Err(DecodeError::Overflow { offset: 19 })
    );
    ensure_eq!(
        decode(b"000000000000000000000000018446744073709551615"),
        Ok(u64::MAX)
    );
    passed!()
}

/// Lists without allocation: quasar's vectors, a trailing comma, an empty item, a too-small
/// buffer.
pub fn lists(_: &mut Board) -> Outcome {
    let mut out = [0u8; 64];
    let n = encode_list_into(&[1, 2, 3], &mut out);
    ensure_eq!(n.map(|n| &out[..n]), Ok(&b"1,2,3"[..]));
    ensure_eq!(
        encode_list_into(&[7], &mut out).map(|n| out[..n] == *b"7"),
        Ok(true)
    );
    ensure_eq!(encode_list_into(&[], &mut out), Ok(0));
    let seqs = [join(1_700_000_000, 1), 0, u64::MAX, 42];
    let len = encoded_list_len(&seqs);
    ensure!(encode_list_into(&seqs, &mut out[..len - 1]).is_err());
    ensure_eq!(encode_list_into(&seqs, &mut out), Ok(len));
    let mut decoded = decode_list_iter(&out[..len]);
    for &seq in &seqs {
        ensure_eq!(decoded.next(), Some(Ok(seq)));
    }
    ensure_eq!(decoded.next(), None);

    let mut trailing = decode_list_iter(b"1,2,");
    ensure_eq!(
        (trailing.next(), trailing.next(), trailing.next()),
        (Some(Ok(1)), Some(Ok(2)), None)
    );
    let mut hole = decode_list_iter(b"1,,2");
    ensure_eq!(hole.next(), Some(Ok(1)));
    ensure_eq!(hole.next(), Some(Err(DecodeError::Empty { offset: 2 })));
    ensure_eq!(hole.next(), None);
    ensure_eq!(decode_list_iter(b"").next(), None);
    passed!()
}

/// quasar's mark-table compaction vectors.
pub fn compile(_: &mut Board) -> Outcome {
    type Case = (&'static [(u64, bool)], &'static [u64]);
    const T: bool = true;
    const F: bool = false;
    const CASES: &[Case] = &[
        (
            &[(1, T), (2, F), (3, T), (4, F), (5, T), (6, F), (7, T)],
            &[1, 3, 5, 7],
        ),
        (
            &[(1, T), (2, T), (3, F), (4, T), (5, T), (6, F), (7, T)],
            &[2, 4, 5, 7],
        ),
        (&[(2, F), (3, T), (4, F), (5, T)], &[1, 3, 5]),
        (&[(1, F), (2, T), (3, F), (4, T)], &[0, 2, 4]),
        (&[], &[]),
        (&[(5, F)], &[]),
        (&[(1, T), (2, T), (3, T)], &[3]),
        (&[(1, T), (5, T), (9, F)], &[5]),
        (&[(1, F), (2, T), (3, T)], &[0, 2, 3]),
        (&[(3, T), (4, T), (5, F), (6, T)], &[4, 6]),
    ];
    for (i, (marks, expected)) in CASES.iter().enumerate() {
        let compiled = sequence::compile(marks.iter().copied());
        ensure!(
            compiled.clone().eq(expected.iter().copied()),
            "case {}: {:?} compiled to {:?}, expected {:?}",
            i,
            marks,
            Listed(compiled),
            expected
        );
    }
    passed!("{} vectors", CASES.len())
}

/// The generator never goes back when the clock does, never repeats, and carries an ordinal
/// overflow into the next second.
#[cfg(any(target_has_atomic = "64", feature = "critical-section"))]
pub fn generator(_: &mut Board) -> Outcome {
    static SEQUENCES: Generator = Generator::new();
    let a = SEQUENCES.next(1_700_000_000, 3);
    ensure_eq!(a.map(split), Ok((1_700_000_000, 1)));
    let a = a.unwrap_or(0);
    // The clock steps back: still after the block handed out.
    ensure_eq!(SEQUENCES.next(1_699_999_990, 1), Ok(a + 3));
    ensure_eq!(SEQUENCES.last(), a + 3);
    let mut previous = a + 3;
    for i in 0..500u32 {
        let now = 1_700_000_000 + i / 100;
        let next = SEQUENCES.next(now, i % 4 + 1);
        ensure!(
            matches!(next, Ok(s) if s > previous),
            "sequence {:?} after {}",
            next,
            previous
        );
        previous = SEQUENCES.last();
    }
    // An ordinal about to overflow carries into the next second.
    let full = Generator::starting_after(join(1_700_000_000, u32::MAX - 1));
    ensure_eq!(full.next(1_700_000_000, 2), Ok(join(1_700_000_001, 1)));
    let end = Generator::starting_after(join(u32::MAX, u32::MAX));
    ensure_eq!(end.next(0, 1), Err(GenerateError::Exhausted));
    passed!()
}

/// One step of xorshift64: spread-out test values without a crate.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Debug-prints an iterator's items as a list.
struct Listed<I>(I);

impl<I: Iterator<Item = u64> + Clone> core::fmt::Debug for Listed<I> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.0.clone()).finish()
    }
}
