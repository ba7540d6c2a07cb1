//! A read-only ledger following its writer through `ledger.live`, against the writer's own
//! ledger handle, in one run.
//!
//! Run: `cargo bench -p ringledger-benches --bench follow` (quick check: `-- --test`).
//!
//! The follower is a second [`Ledger`] opened read-only on the same directory: its own
//! mappings of the segment files, the writer's live page, the shared (not process-private)
//! futex: the path a reader in another process takes, in one process so that criterion can
//! time it. The writer is pinned to core 0, the reader to core 1.
//!
//! Groups (after each, a line gives the ratio):
//! - `follow_wake`: one-way latency from an append to the return of a blocked
//!   `wait_for_head` (the reader parked: the writer idles `RINGLEDGER_BENCH_PARK_US` µs,
//!   default 100, before each append). `in_process`: on the writer's ledger (a condition
//!   variable); `follower`: on the read-only ledger (a futex on the live page). p50 and p99
//!   are printed; target: the follower's p50 within 2× the in-process one.
//! - `follow_256B`: a writer appends `RINGLEDGER_BENCH_FOLLOW_ENTRIES` entries of 256 bytes
//!   (default 200 000) in batches of 64 while a reader follows them with a `LedgerStream`
//!   cursor to the last one; `in_process` reads the writer's ledger, `follower` the read-only
//!   one. Target: the follower at least 0.8× the in-process cursor.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::stream::{EventStream, LedgerStream, TagSet};
use ringledger::wait::Deadline;
use ringledger_benches::setup::{env_u64, scratch_dir};
use ringledger_benches::{pin_to, print_percentiles, wake_latencies, CONSUMER_CORE, PRODUCER_CORE};

const PAYLOAD: usize = 256;
const BATCH: u64 = 64;

fn entries_total() -> u64 {
    env_u64("RINGLEDGER_BENCH_FOLLOW_ENTRIES", 200_000, 5_000)
}

fn park_delay() -> Duration {
    Duration::from_micros(env_u64("RINGLEDGER_BENCH_PARK_US", 100, 100))
}

/// Every wake-up latency measured, per case.
fn latencies() -> &'static Mutex<HashMap<&'static str, Vec<Duration>>> {
    static LATENCIES: OnceLock<Mutex<HashMap<&'static str, Vec<Duration>>>> = OnceLock::new();
    LATENCIES.get_or_init(Default::default)
}

/// The best time per element of each case.
fn best() -> &'static Mutex<HashMap<&'static str, f64>> {
    static BEST: OnceLock<Mutex<HashMap<&'static str, f64>>> = OnceLock::new();
    BEST.get_or_init(Default::default)
}

fn p50(name: &str) -> Option<Duration> {
    let mut all = latencies().lock().unwrap().get(name)?.clone();
    print_percentiles(name, &mut all)
}

fn follow_wake(c: &mut Criterion) {
    let dir = scratch_dir();
    let writer = Ledger::open(dir.path(), LedgerConfig::default()).expect("open");
    let follower =
        Ledger::open(dir.path(), LedgerConfig::default().with_read_only(true)).expect("follow");
    let next = Mutex::new(1u64);
    let mut group = c.benchmark_group("follow_wake");
    group.sample_size(10);
    for (name, reader) in [("in_process", &writer), ("follower", &follower)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut next = next.lock().unwrap();
                let first = *next;
                *next += iters;
                let append = |seq: u64| {
                    writer.write(&[Entry::new(seq, "wake")]).expect("write");
                };
                let measured = wake_latencies(iters, first, park_delay(), append, |seq| {
                    reader.wait_for_head(seq, Deadline::Forever).expect("wait");
                });
                let total = measured.iter().sum();
                latencies()
                    .lock()
                    .unwrap()
                    .entry(name)
                    .or_default()
                    .extend(measured);
                total
            });
        });
    }
    group.finish();
    if let (Some(ours), Some(base)) = (p50("follower"), p50("in_process")) {
        println!(
            "ratio follower / in_process wake p50: {:.2}x the latency",
            ours.as_secs_f64() / base.as_secs_f64()
        );
    }
}

/// Appends `n` entries from `first` while `reader` follows them with a cursor; returns the
/// time until the reader has the last one.
fn follow_run(writer: &Ledger, reader: &Ledger, first: u64, n: u64) -> Duration {
    let payload = bytes::Bytes::from(vec![7u8; PAYLOAD]);
    let stream = LedgerStream::new(reader.clone());
    let mut cursor = stream.open(first, TagSet::all()).expect("cursor");
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_to(PRODUCER_CORE);
            let mut seq = first;
            let mut batch = Vec::with_capacity(BATCH as usize);
            while seq < first + n {
                batch.clear();
                let end = (seq + BATCH).min(first + n);
                batch.extend((seq..end).map(|s| Entry::new(s, payload.clone())));
                writer.write(&batch).expect("write");
                seq = end;
            }
        });
        pin_to(CONSUMER_CORE);
        let mut bytes = 0;
        for _ in 0..n {
            bytes += cursor.next(Deadline::Forever).expect("next").payload.len();
        }
        assert_eq!(bytes, n as usize * PAYLOAD);
    });
    start.elapsed()
}

fn follow_throughput(c: &mut Criterion) {
    let n = entries_total();
    let mut group = c.benchmark_group("follow_256B");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n));
    for name in ["in_process", "follower"] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = scratch_dir();
                    let writer = Ledger::open(dir.path(), LedgerConfig::default()).expect("open");
                    let reader = if name == "follower" {
                        Ledger::open(dir.path(), LedgerConfig::default().with_read_only(true))
                            .expect("follow")
                    } else {
                        writer.clone()
                    };
                    let took = follow_run(&writer, &reader, 1, n);
                    let mut best = best().lock().unwrap();
                    let per = took.as_secs_f64() / n as f64;
                    let slot = best.entry(name).or_insert(f64::MAX);
                    *slot = slot.min(per);
                    total += took;
                }
                total
            });
        });
    }
    group.finish();
    let best = best().lock().unwrap();
    if let (Some(ours), Some(base)) = (best.get("follower"), best.get("in_process")) {
        println!(
            "ratio follower / in_process follow: {:.2}x the speed ({:.2} / {:.2} M entries/s)",
            base / ours,
            1e-6 / ours,
            1e-6 / base
        );
    }
}

criterion_group!(follow_benches, follow_wake, follow_throughput);
criterion_main!(follow_benches);
