//! The queue end to end (producer -> ledger -> consumer) against the ledger's raw append rate,
//! in one run.
//!
//! Run: `cargo bench -p ringledger-benches --bench queue` (quick check: `-- --test`).
//!
//! Files go to fresh temporary directories under `RINGLEDGER_BENCH_DIR` (default: the system's
//! temporary directory). It must be a real disk: on a tmpfs every sync is free.
//!
//! Groups (criterion; one iteration = 100 entries of 256 bytes):
//! - `queue_256B`: `ledger_write_batch100`, `Ledger::write` of 100 entries per call on one
//!   thread (the raw append rate), next to `producer_to_consumer`: one thread queues entries
//!   with `Producer::write` (batches of 256, no batching delay), the producer's worker writes
//!   them, and this thread `recv`s them from a persistent consumer (batch 256, window 4096)
//!   and marks every 100th cumulatively; the time runs to the last entry received and its
//!   mark persisted. `producer_to_consumer_batched`: the same with `Producer::write_batch` of
//!   256 entries (one ack each) and `Consumer::recv_batch` of up to 256. Target: end to end
//!   ≥ 0.7× the raw rate.
//! - `queue_synced_256B`: the same with `Durability::Synced` writes of 100 entries (raw), and
//!   a synced producer with batches of 100.
//!
//! After criterion, a summary measures both rates again over a fixed count
//! (`RINGLEDGER_BENCH_QUEUE_ENTRIES`, default 1 000 000 unsynced and a tenth of it synced) and
//! prints the ratio, then the latency from `Producer::write` to `Consumer::recv` of entries
//! written one at a time at a steady pace by a sleeping writer (every 10 µs unsynced, i.e. 100 k/s, the target's pace; every 1 ms synced): p50,
//! p99, p99.9 and the maximum.
//!
//! `RINGLEDGER_STAGE_AT_LEAST=N` sets `LedgerConfig::stage_at_least` (0: every write staged).
//!
//! The ledger and the table live across samples; everything written is deleted after each
//! sample (untimed), so segments do not pile up. The pipeline runs four threads (writer,
//! producer worker, consumer, consumer's committer) on however many cores there are; on the
//! 2-vCPU VM they share two.
//!
//! In `--test` mode every case runs once on 100 entries and the summary on a few thousand.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringledger::consumer::{Consumer, ConsumerConfig};
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::producer::{Producer, ProducerConfig};
use ringledger::storage::Durability;
use ringledger::table::{Table, TableConfig};
use ringledger::wait::Deadline;
use ringledger_benches::setup::{env_u64, scratch_dir};
use tempfile::TempDir;

/// Payload bytes of every entry.
const PAYLOAD: usize = 256;
/// Entries per criterion iteration, and per raw ledger write.
const BATCH: usize = 100;
/// The consumer marks every this many entries (cumulatively).
const MARK_EVERY: u64 = 100;

static PAYLOAD_256: [u8; PAYLOAD] = [0xA5; PAYLOAD];

/// A ledger and a positions table in one temporary directory.
struct Setup {
    ledger: Ledger,
    table: Arc<Table>,
    _dir: TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = scratch_dir();
        let mut config = LedgerConfig::default();
        if let Ok(v) = std::env::var("RINGLEDGER_STAGE_AT_LEAST") {
            config.stage_at_least = v.parse().expect("RINGLEDGER_STAGE_AT_LEAST: a byte count");
        }
        let ledger = Ledger::open(dir.path().join("ledger"), config).expect("open ledger");
        let table =
            Table::open(dir.path().join("table"), TableConfig::default()).expect("open table");
        Self {
            ledger,
            table: Arc::new(table),
            _dir: dir,
        }
    }

    /// Deletes everything written (untimed, after a sample).
    fn clear(&self) {
        self.ledger
            .delete(self.ledger.head())
            .expect("ledger delete");
    }
}

/// An entry of the shared static payload.
fn entry(sequence: u64, timestamp: u64) -> Entry {
    Entry {
        sequence,
        tag: 0,
        timestamp,
        payload: Bytes::from_static(&PAYLOAD_256),
    }
}

/// Writes `records` entries, `BATCH` per `Ledger::write`, with `durability`; returns their
/// time.
fn raw_append(setup: &Setup, records: u64, durability: Durability) -> Duration {
    let first = setup.ledger.head() + 1;
    let mut batch: Vec<Entry> = (0..BATCH as u64).map(|i| entry(first + i, 0)).collect();
    let batches = records.div_ceil(BATCH as u64);
    let start = Instant::now();
    for _ in 0..batches {
        setup
            .ledger
            .write_with(&batch, durability)
            .expect("ledger write");
        for e in &mut batch {
            e.sequence += BATCH as u64;
        }
    }
    let elapsed = start.elapsed();
    setup.clear();
    elapsed
}

fn producer_config(durability: Durability) -> ProducerConfig {
    ProducerConfig {
        batch: match durability {
            Durability::Buffered => 256,
            Durability::Synced => BATCH,
        },
        durability: Some(durability),
        ..ProducerConfig::default()
    }
}

fn consumer(setup: &Setup) -> Consumer {
    let config = ConsumerConfig::named("bench")
        .with_batch(256)
        .with_window(4096);
    Consumer::open(setup.ledger.clone(), Arc::clone(&setup.table), config).expect("consumer")
}

/// How the pipeline moves entries: one at a time (`Producer::write`, `Consumer::recv`), or in
/// groups (`Producer::write_batch` of [`GROUP`] entries with one ack, `Consumer::recv_batch`).
#[derive(Clone, Copy, PartialEq)]
enum Api {
    Single,
    Batch,
}

/// Entries per `write_batch` and at most per `recv_batch` in [`Api::Batch`].
const GROUP: usize = 256;

/// Producer -> ledger -> consumer for `records` entries; returns the time from the first
/// write to the last entry received with its mark persisted.
fn pipeline(setup: &Setup, records: u64, durability: Durability) -> Duration {
    pipeline_with(setup, records, durability, Api::Single)
}

fn pipeline_with(setup: &Setup, records: u64, durability: Durability, api: Api) -> Duration {
    let first = setup.ledger.head() + 1;
    let consumer = consumer(setup);
    let producer =
        Producer::new(setup.ledger.clone(), producer_config(durability)).expect("producer");
    let barrier = std::sync::Barrier::new(2);
    let elapsed = thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            if api == Api::Batch {
                let mut seq = first;
                while seq < first + records {
                    let n = (first + records - seq).min(GROUP as u64);
                    let group = (seq..seq + n).map(|s| entry(s, 0)).collect();
                    drop(
                        producer
                            .write_batch(group, Deadline::Forever)
                            .expect("write"),
                    );
                    seq += n;
                }
                return;
            }
            for seq in first..first + records {
                // The entry's result is not waited for: the consumer seeing it is the proof.
                drop(
                    producer
                        .write(entry(seq, 0), Deadline::Forever)
                        .expect("write"),
                );
            }
        });
        barrier.wait();
        let start = Instant::now();
        let mut last = None;
        let mut n = 0;
        let mut got = Vec::with_capacity(GROUP);
        while n < records {
            got.clear();
            match api {
                Api::Single => got.push(consumer.recv(Deadline::Forever).expect("recv")),
                Api::Batch => {
                    consumer
                        .recv_batch(GROUP, Deadline::Forever, &mut got)
                        .expect("recv");
                }
            }
            for entry in &got {
                n += 1;
                debug_assert_eq!(entry.sequence, first + n - 1);
                black_box(&entry.payload);
                if n % MARK_EVERY == 0 || n == records {
                    last = Some(consumer.mark(entry.sequence, true).expect("mark"));
                }
            }
        }
        if let Some(ack) = last {
            ack.wait(Deadline::Forever).expect("persisted");
        }
        start.elapsed()
    });
    producer.close();
    consumer.close().expect("consumer close");
    setup.clear();
    elapsed
}

fn throughput(c: &mut Criterion) {
    for (group, durability) in [
        ("queue_256B", Durability::Buffered),
        ("queue_synced_256B", Durability::Synced),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(BATCH as u64));
        if durability == Durability::Synced {
            g.sample_size(10);
        }
        let setup = Setup::new();
        g.bench_function("ledger_write_batch100", |b| {
            b.iter_custom(|iters| raw_append(&setup, iters * BATCH as u64, durability))
        });
        g.bench_function("producer_to_consumer", |b| {
            b.iter_custom(|iters| pipeline(&setup, iters * BATCH as u64, durability))
        });
        g.bench_function("producer_to_consumer_batched", |b| {
            b.iter_custom(|iters| {
                pipeline_with(&setup, iters * BATCH as u64, durability, Api::Batch)
            })
        });
        g.finish();
    }
}

/// Write-to-recv latencies of `count` entries written one every `every`, sorted.
fn latencies(setup: &Setup, count: u64, every: Duration, durability: Durability) -> Vec<Duration> {
    let first = setup.ledger.head() + 1;
    let consumer = consumer(setup);
    let producer =
        Producer::new(setup.ledger.clone(), producer_config(durability)).expect("producer");
    let base = Instant::now();
    let mut latencies = thread::scope(|s| {
        s.spawn(|| {
            for i in 0..count {
                let due = every * i as u32;
                // Sleeps (never spins) until the entry is due: a spinning writer would take
                // one of two cores from the threads under test. A sleep overshoots by tens of
                // microseconds, so entries go a few at a time; each is timed from its write.
                if let Some(wait) = due.checked_sub(base.elapsed()) {
                    thread::sleep(wait);
                }
                let written = base.elapsed().as_nanos() as u64;
                drop(
                    producer
                        .write(entry(first + i, written), Deadline::Forever)
                        .expect("write"),
                );
            }
        });
        (0..count)
            .map(|n| {
                let entry = consumer.recv(Duration::from_secs(10)).expect("recv");
                let latency = base
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(entry.timestamp));
                if (n + 1) % MARK_EVERY == 0 {
                    drop(consumer.mark(entry.sequence, true).expect("mark"));
                }
                latency
            })
            .collect::<Vec<_>>()
    });
    producer.close();
    consumer.close().expect("consumer close");
    setup.clear();
    latencies.sort_unstable();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The summary: both rates over a fixed count, their ratio, and latencies.
fn summary() {
    let records = env_u64("RINGLEDGER_BENCH_QUEUE_ENTRIES", 1_000_000, 10_000);
    println!("\nqueue summary (256-byte entries)");
    for (name, durability, records, every, count) in [
        (
            "unsynced",
            Durability::Buffered,
            records,
            Duration::from_micros(10),
            env_u64("RINGLEDGER_BENCH_QUEUE_PACED", 100_000, 500),
        ),
        (
            "synced",
            Durability::Synced,
            (records / 10).max(BATCH as u64),
            Duration::from_millis(1),
            env_u64("RINGLEDGER_BENCH_QUEUE_PACED", 20_000, 500) / 10,
        ),
    ] {
        let setup = Setup::new();
        // Warm up: first segments, the producer's and consumer's threads.
        raw_append(&setup, records.min(100_000), durability);
        pipeline(&setup, records.min(100_000), durability);
        let raw = raw_append(&setup, records, durability);
        let end_to_end = pipeline(&setup, records, durability);
        let batched = pipeline_with(&setup, records, durability, Api::Batch);
        let rate = |d: Duration| records as f64 / d.as_secs_f64() / 1e6;
        println!(
            "  {name:8} ledger write x100: {:6.2} M entries/s | producer -> consumer: {:6.2} M entries/s ({:.2}x), in groups of {GROUP}: {:6.2} M entries/s ({:.2}x)",
            rate(raw),
            rate(end_to_end),
            raw.as_secs_f64() / end_to_end.as_secs_f64(),
            rate(batched),
            raw.as_secs_f64() / batched.as_secs_f64()
        );
        let sorted = latencies(&setup, count, every, durability);
        println!(
            "  {name:8} write -> recv, one every {every:?} ({count} entries): p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}",
            percentile(&sorted, 0.50),
            percentile(&sorted, 0.99),
            percentile(&sorted, 0.999),
            sorted[sorted.len() - 1]
        );
    }
}

fn benches(c: &mut Criterion) {
    throughput(c);
    summary();
}

criterion_group!(queue_benches, benches);
criterion_main!(queue_benches);
