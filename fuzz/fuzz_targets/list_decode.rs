//! Sequence lists on arbitrary bytes: the iterator and the `Vec` form agree with a literal
//! model of quasar's rules (split on ',', one trailing comma tolerated), and whatever decodes
//! re-encodes to a list that decodes to the same sequences.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringledger_core::sequence::{
    decode, decode_list, decode_list_iter, encode_list, encode_list_into, encoded_list_len,
};

/// quasar's rules written out: `None` when some item fails.
fn model(data: &[u8]) -> Option<Vec<u64>> {
    if data.is_empty() {
        return Some(Vec::new());
    }
    let items: Vec<&[u8]> = data.split(|&b| b == b',').collect();
    let last = items.len() - 1;
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if item.is_empty() && i == last {
            continue;
        }
        out.push(decode(item).ok()?);
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let from_iter: Result<Vec<u64>, _> = decode_list_iter(data).collect();
    let from_vec = decode_list(data);
    assert_eq!(from_iter, from_vec);
    assert_eq!(from_vec.as_ref().ok(), model(data).as_ref());
    if let Err(error) = from_vec {
        // The error names an offset inside (or at the end of) the input.
        let offset = match error {
            ringledger_core::sequence::DecodeError::Empty { offset }
            | ringledger_core::sequence::DecodeError::Sign { offset, .. }
            | ringledger_core::sequence::DecodeError::NotADigit { offset, .. }
            | ringledger_core::sequence::DecodeError::Overflow { offset } => offset,
            // A kind this target does not know yet: a new variant must be added above.
            other => panic!("a decode error this target does not know: {other:?}"),
        };
        assert!(offset <= data.len());
        return;
    }
    let seqs = from_vec.unwrap_or_default();
    let text = encode_list(&seqs);
    assert_eq!(text.len(), encoded_list_len(&seqs));
    assert_eq!(decode_list(text.as_bytes()), Ok(seqs.clone()));
    let mut small = vec![0u8; text.len().saturating_sub(1)];
    assert!(seqs.is_empty() || encode_list_into(&seqs, &mut small).is_err());
});
