//! The shared-memory ring against the same ring in one process, in one run.
//!
//! Run: `cargo bench -p ringledger-benches --bench shm` (quick check: `-- --test`).
//!
//! Two threads pinned to cores 0 and 1 move items through a ring of 1024 slots (a 256 KiB
//! ring for records): the producer pushes, the consumer pops, each retrying while the ring is
//! full or empty. One iteration = one item. The shared ring lives in a file mapping (under
//! `RINGLEDGER_BENCH_DIR`, default the system's temporary directory; `/dev/shm` to keep it off
//! a disk), opened through `ringledger::shm`, the same mapping two processes would share: the
//! two threads stand for the two processes (the memory traffic is the same).
//!
//! Groups:
//! - `shm_u64`: `spsc_in_process` (the core's `spsc::channel::<u64>`) and `shm_ring`
//!   (`ShmProducer<u64>`/`ShmConsumer<u64>`). Target: shared ≥ 0.9× in process.
//! - `shm_256B`: 256-byte records: `spsc_in_process` moves `[u8; 256]` items through a
//!   channel of 1024, `shm_records` moves byte records of 256 bytes (a 4-byte length each)
//!   through `ShmRecordProducer`/`ShmRecordConsumer`. Target: shared ≥ 0.9× in process.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringledger::shm::{
    RecordError, ShmConsumer, ShmProducer, ShmRecordConsumer, ShmRecordProducer, ShmRing,
};
use ringledger_benches::setup::scratch_dir;
use ringledger_benches::{pin_to, CONSUMER_CORE, PRODUCER_CORE};
use ringledger_core::spsc;

const SLOTS: usize = 1024;
const RECORD: usize = 256;

/// Runs `produce(i)` for `0..n` on the producer core and `consume()` `n` times on the
/// consumer core; returns the time until the last item was consumed. Each closure owns its
/// handle, and the consumer's moves to its thread: handles side by side on one stack would
/// share a cache line, which no real pair of threads does.
fn pair(n: u64, mut produce: impl FnMut(u64) + Send, mut consume: impl FnMut() + Send) -> Duration {
    let barrier = std::sync::Barrier::new(2);
    let barrier = &barrier;
    std::thread::scope(|s| {
        let start = s.spawn(move || {
            pin_to(CONSUMER_CORE);
            barrier.wait();
            let start = Instant::now();
            for _ in 0..n {
                consume();
            }
            start
        });
        pin_to(PRODUCER_CORE);
        barrier.wait();
        for i in 0..n {
            produce(i);
        }
        let start = start.join().expect("consumer");
        start.elapsed()
    })
}

fn u64_items(c: &mut Criterion) {
    let mut g = c.benchmark_group("shm_u64");
    g.throughput(Throughput::Elements(1));
    g.bench_function("spsc_in_process", |b| {
        b.iter_custom(|iters| {
            let (mut producer, mut consumer) = spsc::channel::<u64>(SLOTS);
            pair(
                iters,
                |i| {
                    while producer.push(i).is_err() {
                        std::hint::spin_loop()
                    }
                },
                move || loop {
                    if let Some(item) = consumer.pop() {
                        black_box(item);
                        break;
                    }
                    std::hint::spin_loop();
                },
            )
        })
    });
    g.bench_function("shm_ring", |b| {
        let dir = scratch_dir();
        let path = dir.path().join("ring");
        ShmRing::create::<u64>(&path, SLOTS).expect("create");
        b.iter_custom(|iters| {
            let mut producer = ShmProducer::<u64>::open(&path).expect("producer");
            let mut consumer = ShmConsumer::<u64>::open(&path).expect("consumer");
            pair(
                iters,
                |i| {
                    while producer.push(i).is_err() {
                        std::hint::spin_loop()
                    }
                },
                move || loop {
                    if let Some(item) = consumer.pop() {
                        black_box(item);
                        break;
                    }
                    std::hint::spin_loop();
                },
            )
        })
    });
    g.finish();
}

fn records(c: &mut Criterion) {
    let mut g = c.benchmark_group("shm_256B");
    g.throughput(Throughput::Bytes(RECORD as u64));
    g.bench_function("spsc_in_process", |b| {
        b.iter_custom(|iters| {
            let (mut producer, mut consumer) = spsc::channel::<[u8; RECORD]>(SLOTS);
            pair(
                iters,
                move |i| {
                    let item = [i as u8; RECORD];
                    while producer.push(item).is_err() {
                        std::hint::spin_loop();
                    }
                },
                move || loop {
                    if let Some(item) = consumer.pop() {
                        black_box(&item);
                        break;
                    }
                    std::hint::spin_loop();
                },
            )
        })
    });
    g.bench_function("shm_records", |b| {
        let dir = scratch_dir();
        let path = dir.path().join("records");
        ShmRing::create_records(&path, SLOTS * RECORD).expect("create");
        b.iter_custom(|iters| {
            let mut producer = ShmRecordProducer::open(&path).expect("producer");
            let mut consumer = ShmRecordConsumer::open(&path).expect("consumer");
            let mut out = Vec::with_capacity(RECORD);
            pair(
                iters,
                move |i| {
                    let record = [i as u8; RECORD];
                    loop {
                        match producer.push(&record) {
                            Ok(()) => break,
                            Err(RecordError::Full) => std::hint::spin_loop(),
                            Err(e) => panic!("{e}"),
                        }
                    }
                },
                move || loop {
                    if consumer.pop(&mut out).expect("a record").is_some() {
                        black_box(&out);
                        break;
                    }
                    std::hint::spin_loop();
                },
            )
        })
    });
    g.finish();
}

criterion_group!(shm_benches, u64_items, records);
criterion_main!(shm_benches);
