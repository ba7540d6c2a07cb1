//! The conformance suite as another crate runs it: through the public `stream::conformance`
//! module (feature `conformance`; run with `cargo test -p ringledger --features conformance`).
//! The crate's unit tests run the same suite on every implementation without the feature.
#![cfg(feature = "conformance")]

use ringledger::stream::conformance::{cases, run_all, LedgerFactory, LedgerLayout, MemoryFactory};

#[test]
fn the_suite_has_every_case() {
    assert_eq!(cases::<MemoryFactory>().len(), 22);
}

#[test]
fn memory_stream() {
    run_all(&MemoryFactory::default());
}

#[test]
fn memory_stream_holding_only_the_fixtures() {
    // No case reads an entry older than the five most recent ones it appended.
    run_all(&MemoryFactory { capacity: 5 });
}

#[test]
fn ledger_stream() {
    run_all(&LedgerFactory::new(LedgerLayout::OneSegment));
}

#[test]
fn ledger_stream_over_many_segments() {
    run_all(&LedgerFactory::new(LedgerLayout::Spread));
}

#[test]
fn reopened_ledger_stream() {
    run_all(&LedgerFactory::new(LedgerLayout::Reopened));
}
