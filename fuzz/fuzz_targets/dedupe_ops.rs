//! Dedupe buffer operations in arbitrary order (pushes, deletes, statuses, resyncs, batches)
//! against the plain reference model in `ringledger::dedupe::model`: no panic, and every
//! batch is what the model says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringledger::dedupe::model::{check, decode};

fuzz_target!(|bytes: &[u8]| {
    check(&decode(bytes));
});
