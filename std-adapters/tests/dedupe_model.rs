//! The dedupe buffer against a plain reference implementation of its rules
//! (`ringledger::dedupe::model`), over random sequences of pushes, deletes, statuses,
//! resyncs and batches. The `dedupe_ops` fuzz target runs the same checker.

use proptest::prelude::*;
use ringledger::dedupe::model::{check, decode, Op};
use ringledger::dedupe::Status as S;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 2000 }))]

    #[test]
    fn the_buffer_agrees_with_the_model(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check(&decode(&bytes));
    }
}

/// The audit's cases: the oldest queued key deleted before the consumer saw it, with something
/// queued behind it (a key, a status), then a batch. It used to panic ("vacant slots are
/// trimmed from both ends").
#[test]
fn deleting_the_oldest_unseen_key_with_entries_behind_it() {
    use Op::*;
    check(&[Upsert(0, 1), Upsert(7, 2), Delete(0), NextBatch(10)]);
    check(&[Upsert(0, 1), Status(S::InSync), Delete(0), NextBatch(10)]);
    check(&[
        Upsert(0, 1),
        Upsert(1, 1),
        Upsert(2, 1),
        Delete(1),
        Delete(0),
        NextBatch(1),
    ]);
    check(&[
        Upsert(3, 1),
        NextBatch(5),
        Restart,
        Upsert(0, 1),
        Upsert(1, 2),
        Delete(0),
        Status(S::InSync),
        NextBatch(2),
    ]);
}
