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

use std::sync::mpsc::{sync_channel, TrySendError};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use ringbuf::traits::{Consumer as _, Producer as _, Split as _};
use ringledger_benches::{
    check_seq, chunked, copy_baseline, echo, extra_work, fill_seq, mpsc, ping_pong, stream, Regime,
};

/// Usable capacity of every ring (heapless: `Queue<_, 1024>` holds 1023).
const CAP: usize = 1024;
/// Items per criterion iteration in the streaming cases.
const BATCH: u64 = 100_000;
/// Round trips per criterion iteration in the echo case.
const ECHO_BATCH: u64 = 100_000;
/// Chunk size of the chunk case.
const CHUNK: usize = 256;
/// Batch of the chunk case: a multiple of `CHUNK`, at least 100 000.
const CHUNK_BATCH: u64 = 102_400;

fn group<'a>(c: &'a mut Criterion, name: &str, elements: u64) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(elements));
    g
}

/// `iters` batches of `per_iter` items, in one pair of threads.
fn items(iters: u64, per_iter: u64) -> u64 {
    iters.checked_mul(per_iter).expect("too many iterations")
}

fn spsc_stream(c: &mut Criterion, regime: Regime) {
    let name = match regime {
        Regime::NearEmpty => "spsc_u64_near_empty",
        Regime::NearFull => "spsc_u64_near_full",
        Regime::Free => "spsc_u64_free",
    };
    let mut g = group(c, name, BATCH);
    g.bench_function("ringledger", |b| {
        b.iter_custom(|iters| {
            stream(
                items(iters, BATCH),
                regime,
                ringledger_core::spsc::channel::<u64>(CAP),
                |p, v| p.push(v).is_ok(),
                |c| c.pop(),
            )
        })
    });
    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            stream(
                items(iters, BATCH),
                regime,
                rtrb::RingBuffer::<u64>::new(CAP),
                |p, v| p.push(v).is_ok(),
                |c| c.pop().ok(),
            )
        })
    });
    g.bench_function("ringbuf", |b| {
        b.iter_custom(|iters| {
            stream(
                items(iters, BATCH),
                regime,
                ringbuf::HeapRb::<u64>::new(CAP).split(),
                |p, v| p.try_push(v).is_ok(),
                |c| c.try_pop(),
            )
        })
    });
    g.bench_function("crossbeam_array_queue", |b| {
        b.iter_custom(|iters| {
            let q = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
            stream(
                items(iters, BATCH),
                regime,
                (&q, &q),
                |q, v| q.push(v).is_ok(),
                |q| q.pop(),
            )
        })
    });
    g.bench_function("heapless_spsc", |b| {
        b.iter_custom(|iters| {
            let mut q = Box::new(heapless::spsc::Queue::<u64, CAP>::new());
            stream(
                items(iters, BATCH),
                regime,
                q.split(),
                |p, v| p.enqueue(v).is_ok(),
                |c| c.dequeue(),
            )
        })
    });
    g.bench_function("std_sync_channel", |b| {
        b.iter_custom(|iters| {
            stream(
                items(iters, BATCH),
                regime,
                sync_channel::<u64>(CAP),
                |p, v| !matches!(p.try_send(v), Err(TrySendError::Full(_))),
                |c| c.try_recv().ok(),
            )
        })
    });
    g.finish();
}

fn spsc_near_empty(c: &mut Criterion) {
    spsc_stream(c, Regime::NearEmpty);
}

fn spsc_near_full(c: &mut Criterion) {
    spsc_stream(c, Regime::NearFull);
}

fn spsc_chunks(c: &mut Criterion) {
    let mut g = group(c, "spsc_chunk256", CHUNK_BATCH);
    g.bench_function("ringledger", |b| {
        b.iter_custom(|iters| {
            chunked(
                items(iters, CHUNK_BATCH),
                CHUNK,
                ringledger_core::spsc::channel::<u64>(CAP),
                |p, start, n| match p.write_chunk_uninit(n) {
                    Ok(mut chunk) => {
                        let (a, b) = chunk.as_mut_slices();
                        fill_seq(a, start);
                        let len_a = a.len() as u64;
                        fill_seq(b, start + len_a);
                        // SAFETY: both slices were fully initialized just above.
                        unsafe { chunk.commit_all() };
                        true
                    }
                    Err(_) => false,
                },
                |c, start, n| {
                    let chunk = c.read_chunk(n).ok()?;
                    let (a, b) = chunk.as_slices();
                    let sum =
                        check_seq(a, start).wrapping_add(check_seq(b, start + a.len() as u64));
                    chunk.commit_all();
                    Some(sum)
                },
            )
        })
    });
    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            chunked(
                items(iters, CHUNK_BATCH),
                CHUNK,
                rtrb::RingBuffer::<u64>::new(CAP),
                |p, start, n| match p.write_chunk_uninit(n) {
                    Ok(mut chunk) => {
                        let (a, b) = chunk.as_mut_slices();
                        fill_seq(a, start);
                        let len_a = a.len() as u64;
                        fill_seq(b, start + len_a);
                        // SAFETY: both slices were fully initialized just above.
                        unsafe { chunk.commit_all() };
                        true
                    }
                    Err(_) => false,
                },
                |c, start, n| {
                    let chunk = c.read_chunk(n).ok()?;
                    let (a, b) = chunk.as_slices();
                    let sum =
                        check_seq(a, start).wrapping_add(check_seq(b, start + a.len() as u64));
                    chunk.commit_all();
                    Some(sum)
                },
            )
        })
    });
    g.bench_function("baseline_copy_shared_buffer", |b| {
        b.iter_custom(|iters| copy_baseline(items(iters, CHUNK_BATCH), CAP, CHUNK))
    });
    g.finish();
}

fn echo_rtt(c: &mut Criterion) {
    let mut g = group(c, "echo_rtt", ECHO_BATCH);
    g.bench_function("ringledger", |b| {
        b.iter_custom(|iters| {
            echo(
                items(iters, ECHO_BATCH),
                ringledger_core::spsc::channel::<u64>(CAP),
                ringledger_core::spsc::channel::<u64>(CAP),
                |p, v| p.push(v).is_ok(),
                |c| c.pop(),
            )
        })
    });
    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            echo(
                items(iters, ECHO_BATCH),
                rtrb::RingBuffer::<u64>::new(CAP),
                rtrb::RingBuffer::<u64>::new(CAP),
                |p, v| p.push(v).is_ok(),
                |c| c.pop().ok(),
            )
        })
    });
    g.bench_function("crossbeam_array_queue", |b| {
        b.iter_custom(|iters| {
            let qa = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
            let qb = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
            echo(
                items(iters, ECHO_BATCH),
                (&qa, &qa),
                (&qb, &qb),
                |q, v| q.push(v).is_ok(),
                |q| q.pop(),
            )
        })
    });
    g.bench_function("baseline_atomic_ping_pong", |b| {
        b.iter_custom(|iters| ping_pong(items(iters, ECHO_BATCH)))
    });
    g.finish();
}

fn mpsc_case(c: &mut Criterion, producers: usize) {
    let name = if producers == 1 {
        "mpsc_1p"
    } else {
        "mpsc_2p_oversubscribed"
    };
    let per = BATCH / producers as u64;
    let mut g = group(c, name, per * producers as u64);
    g.bench_function("ringledger", |b| {
        b.iter_custom(|iters| {
            let (p, c) = ringledger_core::mpsc::channel::<u64>(CAP);
            mpsc(
                items(iters, per),
                vec![p; producers],
                c,
                |p, v| p.push(v).is_ok(),
                |c| c.pop(),
            )
        })
    });
    g.bench_function("crossbeam_array_queue", |b| {
        b.iter_custom(|iters| {
            let q = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
            mpsc(
                items(iters, per),
                vec![&q; producers],
                &q,
                |q, v| q.push(v).is_ok(),
                |q| q.pop(),
            )
        })
    });
    g.bench_function("thingbuf", |b| {
        b.iter_custom(|iters| {
            let q = thingbuf::ThingBuf::<u64>::new(CAP);
            mpsc(
                items(iters, per),
                vec![&q; producers],
                &q,
                |q, v| q.push(v).is_ok(),
                |q| q.pop(),
            )
        })
    });
    g.bench_function("std_sync_channel", |b| {
        b.iter_custom(|iters| {
            let (p, c) = sync_channel::<u64>(CAP);
            mpsc(
                items(iters, per),
                vec![p; producers],
                c,
                |p, v| !matches!(p.try_send(v), Err(TrySendError::Full(_))),
                |c| c.try_recv().ok(),
            )
        })
    });
    g.finish();
}

fn mpsc_1p(c: &mut Criterion) {
    mpsc_case(c, 1);
}

fn mpsc_2p(c: &mut Criterion) {
    mpsc_case(c, 2);
}

fn baseline_extra_work(c: &mut Criterion) {
    let mut g = group(c, "baseline", 1);
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
