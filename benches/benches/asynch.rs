//! The async forms (feature `async`) against their async peers and against their own
//! blocking twins, in one run.
//!
//! Run: `cargo bench -p ringledger-benches --bench asynch` (quick check: `-- --test`).
//!
//! Groups (after each, lines `ratio ...` give ours over the baseline from the median time per
//! criterion sample of each case: on a 2-core machine shared with other work, medians are the
//! numbers to read, and they still move between runs):
//! - `async_mpsc_handoff_cap1024_{1,4}p`: 1 or 4 producer tasks hand 100 000 `u64` in all to
//!   one consumer task through a bounded channel of 1024, on a tokio runtime of 2 workers:
//!   `blocking::mpsc` with `push_async`/`pop_async`, `tokio::sync::mpsc`, `flume`'s async API,
//!   `thingbuf::mpsc`. Targets (issue 13): ≥ 1.5× tokio, ≥ flume, ≥ thingbuf.
//! - `async_spsc_nobody_waiting`: 512 pushes then 512 pops, repeated, on one thread with
//!   nobody waiting: the bare core ring, the blocking SPSC buffer's `try_push`/`try_pop`, and
//!   its `push_async`/`pop_async` futures polled once each (they complete on the fast path).
//!   Target: async within 1.1× of the bare ring.
//! - `async_ledger_cursor`: every entry (64-byte payloads, `RINGLEDGER_BENCH_ASYNC_ENTRIES`,
//!   default 200 000) of a ledger in a temporary directory read by a `LedgerStream` cursor:
//!   `try_next` until `None`, and the cursor's `into_stream()` polled until that many entries.
//!   Target: the stream ≥ 0.8× the blocking cursor.
//!
//! In `--test` mode every case runs once on small counts, so the check takes seconds.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_core::Stream;
use ringledger::blocking;
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::stream::{EventStream, LedgerStream, TagSet};
use ringledger_benches::setup::{env_u64, scratch_dir};

/// Channel capacity of the hand-off cases.
const CAP: usize = 1024;
/// Items a round of the SPSC case pushes, then pops.
const ROUND: u64 = 512;

fn handoff_items() -> u64 {
    env_u64("RINGLEDGER_BENCH_ASYNC_ITEMS", 100_000, 4_000)
}

fn spsc_items() -> u64 {
    env_u64("RINGLEDGER_BENCH_ASYNC_SPSC_ITEMS", 1_048_576, 8_192)
}

fn ledger_entries() -> u64 {
    env_u64("RINGLEDGER_BENCH_ASYNC_ENTRIES", 200_000, 5_000)
}

/// Every sample's time per run, by case, for the median ratios.
fn samples() -> &'static Mutex<HashMap<String, Vec<f64>>> {
    static SAMPLES: OnceLock<Mutex<HashMap<String, Vec<f64>>>> = OnceLock::new();
    SAMPLES.get_or_init(Mutex::default)
}

/// Times `iters` runs of `f` and notes the time per run under `name`.
fn timed(name: String, iters: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let took = start.elapsed();
    let per_run = took.as_secs_f64() / iters.max(1) as f64;
    let mut samples = samples().lock().expect("poisoned");
    samples.entry(name).or_default().push(per_run);
    took
}

fn median(name: &str) -> Option<f64> {
    let samples = samples().lock().expect("poisoned");
    let mut times = samples.get(name)?.clone();
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied()
}

/// Prints how many times faster `ours` is than `baseline` (median time per run of each).
fn print_ratio(ours: &str, baseline: &str) {
    if let (Some(ours_time), Some(base_time)) = (median(ours), median(baseline)) {
        println!(
            "ratio {ours} / {baseline}: {:.2}x the speed (medians: {:.3} ms / {:.3} ms)",
            base_time / ours_time,
            ours_time * 1e3,
            base_time * 1e3
        );
    }
}

/// Polls `future` once with a waker that does nothing; it must complete there.
fn complete_now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("nobody waits here: the future should complete at once"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime")
}

/// The per-producer item ranges: `n` items split over `producers`.
fn share(n: u64, producers: u64, p: u64) -> std::ops::Range<u64> {
    let each = n / producers;
    p * each..(p + 1) * each
}

async fn ringledger_handoff(n: u64, producers: u64) -> u64 {
    let (producer, mut consumer) = blocking::mpsc::channel::<u64>(CAP);
    for p in 0..producers {
        let producer = producer.clone();
        tokio::spawn(async move {
            for i in share(n, producers, p) {
                producer.push_async(i).await.expect("open");
            }
        });
    }
    drop(producer);
    let reader = tokio::spawn(async move {
        let mut sum = 0;
        while let Ok(i) = consumer.pop_async().await {
            sum += i;
        }
        sum
    });
    reader.await.expect("reader")
}

async fn tokio_handoff(n: u64, producers: u64) -> u64 {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<u64>(CAP);
    for p in 0..producers {
        let sender = sender.clone();
        tokio::spawn(async move {
            for i in share(n, producers, p) {
                sender.send(i).await.expect("open");
            }
        });
    }
    drop(sender);
    let reader = tokio::spawn(async move {
        let mut sum = 0;
        while let Some(i) = receiver.recv().await {
            sum += i;
        }
        sum
    });
    reader.await.expect("reader")
}

async fn flume_handoff(n: u64, producers: u64) -> u64 {
    let (sender, receiver) = flume::bounded::<u64>(CAP);
    for p in 0..producers {
        let sender = sender.clone();
        tokio::spawn(async move {
            for i in share(n, producers, p) {
                sender.send_async(i).await.expect("open");
            }
        });
    }
    drop(sender);
    let reader = tokio::spawn(async move {
        let mut sum = 0;
        while let Ok(i) = receiver.recv_async().await {
            sum += i;
        }
        sum
    });
    reader.await.expect("reader")
}

async fn thingbuf_handoff(n: u64, producers: u64) -> u64 {
    let (sender, receiver) = thingbuf::mpsc::channel::<u64>(CAP);
    for p in 0..producers {
        let sender = sender.clone();
        tokio::spawn(async move {
            for i in share(n, producers, p) {
                sender.send(i).await.expect("open");
            }
        });
    }
    drop(sender);
    let reader = tokio::spawn(async move {
        let mut sum = 0;
        while let Some(i) = receiver.recv().await {
            sum += i;
        }
        sum
    });
    reader.await.expect("reader")
}

fn handoff(c: &mut Criterion, producers: u64) {
    let n = handoff_items();
    let want: u64 = (0..producers)
        .flat_map(|p| share(n, producers, p))
        .sum::<u64>();
    let group_name = format!("async_mpsc_handoff_cap1024_{producers}p");
    let mut g = c.benchmark_group(&group_name);
    g.throughput(Throughput::Elements(n / producers * producers));
    let rt = runtime();
    macro_rules! case {
        ($name:literal, $run:ident) => {
            let key = format!("{group_name}/{}", $name);
            g.bench_function($name, |b| {
                b.iter_custom(|iters| {
                    timed(key.clone(), iters, || {
                        assert_eq!(rt.block_on($run(n, producers)), want);
                    })
                })
            });
        };
    }
    case!("ringledger_blocking_mpsc", ringledger_handoff);
    case!("tokio_mpsc", tokio_handoff);
    case!("flume", flume_handoff);
    case!("thingbuf_mpsc", thingbuf_handoff);
    g.finish();
    let ours = format!("{group_name}/ringledger_blocking_mpsc");
    for peer in ["tokio_mpsc", "flume", "thingbuf_mpsc"] {
        print_ratio(&ours, &format!("{group_name}/{peer}"));
    }
}

fn handoff_1p(c: &mut Criterion) {
    handoff(c, 1);
}

fn handoff_4p(c: &mut Criterion) {
    handoff(c, 4);
}

fn spsc_nobody_waiting(c: &mut Criterion) {
    let n = spsc_items();
    let rounds = n / ROUND;
    let mut g = c.benchmark_group("async_spsc_nobody_waiting");
    g.throughput(Throughput::Elements(rounds * ROUND));
    g.bench_function("ringledger_core_spsc", |b| {
        let (mut producer, mut consumer) = ringledger::core::spsc::channel::<u64>(CAP);
        b.iter_custom(|iters| {
            timed("spsc/core".into(), iters, || {
                let mut sum = 0;
                for round in 0..rounds {
                    for i in 0..ROUND {
                        producer.push(black_box(round + i)).expect("room");
                    }
                    for _ in 0..ROUND {
                        sum += consumer.pop().expect("an item");
                    }
                }
                black_box(sum);
            })
        })
    });
    g.bench_function("ringledger_blocking_spsc_try", |b| {
        let (mut producer, mut consumer) = blocking::spsc::channel::<u64>(CAP);
        b.iter_custom(|iters| {
            timed("spsc/blocking_try".into(), iters, || {
                let mut sum = 0;
                for round in 0..rounds {
                    for i in 0..ROUND {
                        producer.try_push(black_box(round + i)).expect("room");
                    }
                    for _ in 0..ROUND {
                        sum += consumer.try_pop().expect("an item");
                    }
                }
                black_box(sum);
            })
        })
    });
    g.bench_function("ringledger_blocking_spsc_async", |b| {
        let (mut producer, mut consumer) = blocking::spsc::channel::<u64>(CAP);
        b.iter_custom(|iters| {
            timed("spsc/async".into(), iters, || {
                let mut sum = 0;
                for round in 0..rounds {
                    for i in 0..ROUND {
                        complete_now(producer.push_async(black_box(round + i))).expect("room");
                    }
                    for _ in 0..ROUND {
                        sum += complete_now(consumer.pop_async()).expect("an item");
                    }
                }
                black_box(sum);
            })
        })
    });
    g.finish();
    print_ratio("spsc/async", "spsc/core");
    print_ratio("spsc/blocking_try", "spsc/core");
}

/// A ledger of `n` entries with 64-byte payloads in a fresh temporary directory.
fn filled_ledger(n: u64) -> (Ledger, tempfile::TempDir) {
    let dir = scratch_dir();
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("open");
    let payload = vec![7u8; 64];
    let mut seq = 1;
    while seq <= n {
        let batch: Vec<Entry> = (seq..=(seq + 4095).min(n))
            .map(|s| Entry::new(s, payload.clone()))
            .collect();
        seq += batch.len() as u64;
        ledger.write(&batch).expect("write");
    }
    (ledger, dir)
}

fn ledger_cursor(c: &mut Criterion) {
    let n = ledger_entries();
    let (ledger, _dir) = filled_ledger(n);
    let stream = LedgerStream::new(ledger);
    let mut g = c.benchmark_group("async_ledger_cursor");
    g.throughput(Throughput::Elements(n));
    g.bench_function("cursor_try_next", |b| {
        b.iter_custom(|iters| {
            timed("cursor/blocking".into(), iters, || {
                let mut cursor = stream.open(1, TagSet::all()).expect("open");
                let (mut count, mut bytes) = (0u64, 0usize);
                while let Some(entry) = cursor.try_next().expect("read") {
                    count += 1;
                    bytes += entry.payload.len();
                }
                assert_eq!(count, n);
                black_box(bytes);
            })
        })
    });
    g.bench_function("cursor_stream", |b| {
        b.iter_custom(|iters| {
            timed("cursor/stream".into(), iters, || {
                let entries = stream.open(1, TagSet::all()).expect("open").into_stream();
                let mut entries = pin!(entries);
                let mut cx = Context::from_waker(Waker::noop());
                let (mut count, mut bytes) = (0u64, 0usize);
                while count < n {
                    match entries.as_mut().poll_next(&mut cx) {
                        Poll::Ready(Some(entry)) => {
                            count += 1;
                            bytes += entry.expect("read").payload.len();
                        }
                        other => panic!("every entry is there: {:?}", other.map(|_| ())),
                    }
                }
                black_box(bytes);
            })
        })
    });
    g.finish();
    print_ratio("cursor/stream", "cursor/blocking");
}

criterion_group! {
    name = asynch_benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = handoff_1p, handoff_4p, spsc_nobody_waiting, ledger_cursor
}
criterion_main!(asynch_benches);
