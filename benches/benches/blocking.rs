//! ringledger's blocking buffers against the lock-free ring they wrap and against the blocking
//! channels of std and crossbeam, in one run.
//!
//! Run: `cargo bench -p ringledger-benches --bench blocking` (quick check: `-- --test`).
//!
//! Producer pinned to core 0, consumer to core 1 (`ringledger_benches::pin_to`); every case
//! moves at least 100 000 `u64` per criterion iteration and checks order and a checksum.
//!
//! Groups:
//! - `blocking_fast_path_near_empty` / `_near_full`: the blocking SPSC endpoints driven with
//!   `try_push`/`try_pop` and spinning (so nobody ever sleeps) against the bare core ring in
//!   the same regime (see `ringledger_benches::Regime`): the cost of the waiter-flag protocol
//!   on the fast path. Capacity 1024.
//! - `blocking_handoff_cap1024` / `_cap1`: both sides use their blocking calls (`push`/`pop`
//!   with `Deadline::Forever`, `send`/`recv`): ringledger's blocking SPSC and MPSC, std's
//!   `sync_channel`, crossbeam-channel's `bounded`. At capacity 1 every item is a hand-off
//!   and most operations sleep.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use ringledger::blocking;
use ringledger::wait::Deadline;
use ringledger_benches::{pin_to, stream, Regime, CONSUMER_CORE, PRODUCER_CORE};

const BATCH: u64 = 100_000;
const CAP: usize = 1024;

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(BATCH));
    g
}

fn items(iters: u64) -> u64 {
    iters.checked_mul(BATCH).expect("too many iterations")
}

fn fast_path(c: &mut Criterion, regime: Regime) {
    let name = match regime {
        Regime::NearEmpty => "blocking_fast_path_near_empty",
        _ => "blocking_fast_path_near_full",
    };
    let mut g = group(c, name);
    g.bench_function("ringledger_core_spsc", |b| {
        b.iter_custom(|iters| {
            stream(
                items(iters),
                regime,
                ringledger::core::spsc::channel::<u64>(CAP),
                |p, v| p.push(v).is_ok(),
                |c| c.pop(),
            )
        })
    });
    g.bench_function("ringledger_blocking_spsc", |b| {
        b.iter_custom(|iters| {
            stream(
                items(iters),
                regime,
                blocking::spsc::channel::<u64>(CAP),
                |p, v| p.try_push(v).is_ok(),
                |c| c.try_pop().ok(),
            )
        })
    });
    g.finish();
}

/// Streams `0..n` with blocking calls on both sides; returns the consumer's time.
fn handoff<P: Send, C: Send>(
    n: u64,
    (p, c): (P, C),
    push: impl Fn(&mut P, u64) + Sync,
    pop: impl Fn(&mut C) -> u64 + Sync,
) -> Duration {
    let (mut p, mut c) = (p, c);
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_to(PRODUCER_CORE);
            barrier.wait();
            for i in 0..n {
                push(&mut p, i);
            }
        });
        let consumer = s.spawn(|| {
            pin_to(CONSUMER_CORE);
            barrier.wait();
            let start = Instant::now();
            let mut sum = 0u64;
            for expected in 0..n {
                let v = pop(&mut c);
                assert_eq!(v, expected, "handoff order");
                sum = sum.wrapping_add(v);
            }
            let elapsed = start.elapsed();
            assert_eq!(
                sum,
                n.wrapping_mul(n.wrapping_sub(1)) / 2,
                "handoff checksum"
            );
            elapsed
        });
        consumer.join().expect("consumer panicked")
    })
}

fn handoffs(c: &mut Criterion, cap: usize) {
    let mut g = group(c, &format!("blocking_handoff_cap{cap}"));
    g.bench_function("ringledger_blocking_spsc", |b| {
        b.iter_custom(|iters| {
            handoff(
                items(iters),
                blocking::spsc::channel::<u64>(cap),
                |p, v| p.push(v, Deadline::Forever).expect("closed"),
                |c| c.pop(Deadline::Forever).expect("closed"),
            )
        })
    });
    if cap >= 2 {
        g.bench_function("ringledger_blocking_mpsc", |b| {
            b.iter_custom(|iters| {
                handoff(
                    items(iters),
                    blocking::mpsc::channel::<u64>(cap),
                    |p, v| p.push(v, Deadline::Forever).expect("closed"),
                    |c| c.pop(Deadline::Forever).expect("closed"),
                )
            })
        });
    }
    g.bench_function("std_sync_channel", |b| {
        b.iter_custom(|iters| {
            handoff(
                items(iters),
                std::sync::mpsc::sync_channel::<u64>(cap),
                |p, v| p.send(v).expect("closed"),
                |c| c.recv().expect("closed"),
            )
        })
    });
    g.bench_function("crossbeam_channel_bounded", |b| {
        b.iter_custom(|iters| {
            handoff(
                items(iters),
                crossbeam_channel::bounded::<u64>(cap),
                |p, v| p.send(v).expect("closed"),
                |c| c.recv().expect("closed"),
            )
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    fast_path(c, Regime::NearEmpty);
    fast_path(c, Regime::NearFull);
    handoffs(c, CAP);
    handoffs(c, 1);
}

criterion_group! {
    name = blocking_benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(blocking_benches);
