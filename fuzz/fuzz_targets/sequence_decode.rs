//! `sequence::decode` on arbitrary bytes: never panics, agrees with `str::parse::<u64>` on
//! digit strings, rejects everything else, and round-trips through `encode`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringledger_core::sequence::{decode, encode, DecodeError, ENCODED_LEN};

fuzz_target!(|data: &[u8]| {
    let decoded = decode(data);
    let all_digits = !data.is_empty() && data.iter().all(u8::is_ascii_digit);
    if all_digits {
        // `str::parse` accepts a leading '+', which never reaches here: all bytes are digits.
        let reference = core::str::from_utf8(data)
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        match (decoded, reference) {
            (Ok(value), Some(expected)) => assert_eq!(value, expected),
            (Err(DecodeError::Overflow { offset }), None) => assert!(offset < data.len()),
            (got, expected) => panic!("decode {got:?} but parse {expected:?}"),
        }
    } else {
        let error = decoded.expect_err("non-digit input decoded");
        // The reported offset points at the offending byte.
        match error {
            DecodeError::Empty { offset } => assert!(data.is_empty() && offset == 0),
            DecodeError::Sign { offset, byte } | DecodeError::NotADigit { offset, byte } => {
                assert_eq!(data[offset], byte);
                assert!(!byte.is_ascii_digit());
            }
            DecodeError::Overflow { offset } => assert!(offset < data.len()),
            other => panic!("a decode error this target does not know: {other:?}"),
        }
    }
    if let Ok(value) = decoded {
        let mut buf = [0u8; ENCODED_LEN];
        for compact in [true, false] {
            let text = encode(value, compact, &mut buf);
            assert_eq!(decode(text.as_bytes()), Ok(value));
        }
    }
});
