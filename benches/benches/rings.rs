//! ringledger's rings against their peers, side by side in one run.
//!
//! Run: `cargo bench -p ringledger-benches --bench rings` (quick check: `-- --test`).
//!
//! Every case moves whole batches of at least 100 000 items per criterion iteration, producer
//! (or echo initiator, or every MPSC producer) pinned to core 0 and consumer to core 1, both
//! spinning with `core::hint::spin_loop` on full and empty, with order and a checksum verified.
//! `Throughput::Elements` is the number of items (round trips for `echo`) per iteration.
//!
//! Groups:
//! - `spsc_u64_near_empty` / `spsc_u64_near_full`: `u64`, capacity 1024, one item at a time;
//!   the producer (near-empty) or the consumer (near-full) does `extra_work` per item (about
//!   4 ns, chained from item to item, so the working side cannot go faster than ~240 M items/s).
//! - `spsc_chunk256`: chunks of 256 through the chunk APIs, capacity 1024, plus the raw
//!   copy-through-a-shared-buffer baseline.
//! - `echo_rtt`: one item there and back over two rings; time per round trip =
//!   iteration time / `ECHO_BATCH`. Baseline: an `AtomicU64` ping-pong.
//! - `mpsc_1p`, `mpsc_2p_oversubscribed` (3 spinning threads on 2 cores: both producers on
//!   core 0): `u64`, capacity 1024.
//! - `baseline/extra_work`: the cost of one `extra_work` call, for reference.
//!
//! Placement drift: on the 2-vCPU KVM guests the host moves the vCPUs between physical cores
//! while the run goes on (the ping-pong round trip jumps between ~46 ns and ~400 ns within
//! seconds), and criterion measures one crate after another, so two crates of one group may
//! be measured on different placements. Check the ping-pong baseline, and for ratios prefer
//! `cargo run --release -p ringledger-benches --example paired`, which interleaves the crates
//! and buckets rounds by a ping-pong canary. Busy neighbours on the machine ruin spinning
//! benchmarks: run with a high priority for both (e.g. `nice -n -19`, and with autogrouping
//! `echo -19 > /proc/self/autogroup` in the shell first).
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringledger_benches::peers::{self, Contender, CHUNK};
use ringledger_benches::{extra_work, Regime};

/// Items per criterion iteration in the streaming cases.
const BATCH: u64 = 100_000;
/// Round trips per criterion iteration in the echo case.
const ECHO_BATCH: u64 = 100_000;
/// Batch of the chunk case: a multiple of `CHUNK`, at least 100 000.
const CHUNK_BATCH: u64 = 400 * CHUNK as u64;

/// One criterion group for a case: every contender of its table, `per_iter` items per
/// iteration (all of one pair of threads).
fn case(c: &mut Criterion, name: &str, per_iter: u64, contenders: Vec<Contender>) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(per_iter));
    for contender in &contenders {
        g.bench_function(contender.name, |b| {
            b.iter_custom(|iters| {
                (contender.run)(iters.checked_mul(per_iter).expect("too many iterations"))
            })
        });
    }
    g.finish();
}

fn spsc_near_empty(c: &mut Criterion) {
    case(
        c,
        "spsc_u64_near_empty",
        BATCH,
        peers::spsc_stream(Regime::NearEmpty),
    );
}

fn spsc_near_full(c: &mut Criterion) {
    case(
        c,
        "spsc_u64_near_full",
        BATCH,
        peers::spsc_stream(Regime::NearFull),
    );
}

fn spsc_chunks(c: &mut Criterion) {
    case(c, "spsc_chunk256", CHUNK_BATCH, peers::spsc_chunk256());
}

fn echo_rtt(c: &mut Criterion) {
    case(c, "echo_rtt", ECHO_BATCH, peers::echo_rtt());
}

fn mpsc_1p(c: &mut Criterion) {
    case(c, "mpsc_1p", BATCH, peers::mpsc_many(1));
}

fn mpsc_2p(c: &mut Criterion) {
    case(c, "mpsc_2p_oversubscribed", BATCH, peers::mpsc_many(2));
}

fn baseline_extra_work(c: &mut Criterion) {
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Elements(1));
    g.bench_function("extra_work", |b| {
        // Dependent calls: the latency of one call, the upper bound of its cost in a stream.
        let mut x = 0u64;
        b.iter(|| {
            x = extra_work(x);
            x
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = rings;
    config = config();
    targets = baseline_extra_work, spsc_near_empty, spsc_near_full, spsc_chunks, echo_rtt,
        mpsc_1p, mpsc_2p
}
criterion_main!(rings);
