//! Event streams and sources against plain ledger reads, in one run.
//!
//! Run: `cargo bench -p ringledger-benches --bench stream` (quick check: `-- --test`).
//!
//! The ledger lives in a fresh temporary directory under `RINGLEDGER_BENCH_DIR` (default: the
//! system's temporary directory), written once and read warm from the page cache. Entries
//! have 256-byte payloads; `RINGLEDGER_BENCH_STREAM_ENTRIES` sets how many (default 500 000,
//! about 150 MB of segments).
//!
//! Groups (after each, a line `ratio ...` gives ours over the baseline, from the best time per
//! run of each, the least disturbed by other work on the machine):
//! - `stream_cursor_256B`: every entry from the first to the last, touching one byte of each
//!   payload and adding up the lengths. `ledger_read_4096`: a `Ledger::read(from, 4096)` loop
//!   (the baseline; it allocates a 229 KB vector per call, and its time varies between runs of
//!   the process with where that lands); `ledger_read_into_4096`: the same into one reused
//!   vector (the fastest plain loop); `cursor_try_next`: a `LedgerStream` cursor wanting every
//!   tag, `try_next` until `None`. Target: the cursor ≥ 0.8× the read loop.
//! - `stream_filtered_1_in_10`: the same ledger with tags 0 to 9 in turn and the tag also in
//!   the payload's first byte; the entries of tag 3 are wanted. `read_and_filter_payloads`: the
//!   read loop, keeping the entries whose payload says 3 (the baseline); `cursor_tag_filter`: a
//!   cursor with the filter `{3}`; `visit_tag_filter`: `Ledger::visit` handing out nothing but
//!   the tag test (the floor of what today's ledger API allows). Target: the cursor ≥ 3× faster
//!   than the baseline. Throughput counts the entries scanned.
//! - `stream_wake`: one-way latency from an append to the return of a cursor's blocked
//!   `next(Forever)` on the other core (writer pinned to core 0, reader to core 1). The writer
//!   waits `RINGLEDGER_BENCH_PARK_US` µs (default 100) before each append, so the reader has
//!   parked, or none (`back_to_back`, the reader mostly still spinning). For the ledger stream
//!   and the memory stream; p50 and p99 of every wake-up measured are printed after the group.
//! - `source_batches_256B`: batches of 128 events of 256 bytes: a `PullSource` whose function
//!   copies a payload into each event; a `PushSource` fed by a producer thread pushing
//!   freshly allocated events (its allocation included) through a 1024-slot `blocking::mpsc`
//!   buffer; a `stream_source` over the ledger stream. Throughput in events.
//!
//! In `--test` mode every case runs once on 20 000 entries, so the check takes seconds.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringledger::blocking::mpsc;
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::source::{
    stream_source, Batch, BatchEnd, NoEvent, PullSource, PushSource, Source, SourceEvent,
    SourceOptions,
};
use ringledger::stream::{EventStream, LedgerStream, MemoryStream, TagSet};
use ringledger::wait::Deadline;
use ringledger_benches::setup::{env_u64, scratch_dir};
use ringledger_benches::{pin_to, CONSUMER_CORE, PRODUCER_CORE};
use ringledger_benches::{print_percentiles, wake_latencies};
use tempfile::TempDir;

/// Payload bytes of every entry and event.
const PAYLOAD: usize = 256;
/// Entries per `read` call of the baselines.
const READ_MAX: usize = 4096;
/// Tags in turn in the filtered ledger; one of them is wanted.
const TAGS: u32 = 10;
/// The wanted tag.
const WANTED: u32 = 3;
/// Events per source batch.
const BATCH: usize = 128;

fn entries_total() -> u64 {
    env_u64("RINGLEDGER_BENCH_STREAM_ENTRIES", 500_000, 20_000)
}

/// A ledger in a fresh temporary directory, removed on drop.
struct TempLedger {
    ledger: Ledger,
    _dir: TempDir,
}

impl TempLedger {
    /// `n` entries of 256 bytes, sequences 1 to `n`, with tags 0 to 9 in turn (also in the
    /// payload's first byte).
    fn filled(n: u64) -> Self {
        let dir = scratch_dir();
        let ledger = Ledger::open(dir.path(), LedgerConfig::default()).expect("open ledger");
        let mut batch = Vec::with_capacity(1000);
        for seq in 1..=n {
            let tag = (seq % u64::from(TAGS)) as u32;
            let mut payload = [0xA5u8; PAYLOAD];
            payload[0] = tag as u8;
            batch.push(Entry::new(seq, payload.to_vec()).with_tag(tag));
            if batch.len() == batch.capacity() || seq == n {
                ledger.write(&batch).expect("fill ledger");
                batch.clear();
            }
        }
        TempLedger { ledger, _dir: dir }
    }
}

/// The best time per iteration of each case over criterion's calls, for the ratios: the
/// least disturbed by other work on the machine.
fn best_times() -> &'static Mutex<HashMap<&'static str, f64>> {
    static BEST: OnceLock<Mutex<HashMap<&'static str, f64>>> = OnceLock::new();
    BEST.get_or_init(Mutex::default)
}

/// Times `iters` runs of `f` and notes the time per run under `name`.
fn timed(name: &'static str, iters: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let took = start.elapsed();
    let per_run = took.as_secs_f64() / iters.max(1) as f64;
    let mut best = best_times().lock().expect("poisoned");
    let entry = best.entry(name).or_insert(f64::INFINITY);
    *entry = entry.min(per_run);
    took
}

/// Prints how many times faster `ours` is than `baseline` (best time per run of each).
fn print_ratio(ours: &'static str, baseline: &'static str) {
    let best = best_times().lock().expect("poisoned");
    if let (Some(ours_time), Some(base_time)) = (best.get(ours), best.get(baseline)) {
        println!(
            "ratio {ours} / {baseline}: {:.2}x the speed (best runs: {:.2} ms / {:.2} ms)",
            base_time / ours_time,
            ours_time * 1e3,
            base_time * 1e3
        );
    }
}

/// Every entry read with `read(from, 4096)`; returns the payload bytes and a checksum byte.
fn read_all(ledger: &Ledger) -> (usize, u8) {
    let (mut bytes, mut touch, mut from) = (0, 0u8, 1);
    loop {
        let entries = ledger.read(from, READ_MAX).expect("read");
        let Some(last) = entries.last() else {
            return (bytes, touch);
        };
        from = last.sequence + 1;
        for entry in &entries {
            bytes += entry.payload.len();
            touch ^= entry.payload[1];
        }
    }
}

/// Every entry read with `read_into(from, 4096, ..)` into one reused vector.
fn read_into_all(ledger: &Ledger, out: &mut Vec<Entry>) -> (usize, u8) {
    let (mut bytes, mut touch, mut from) = (0, 0u8, 1);
    loop {
        out.clear();
        ledger.read_into(from, READ_MAX, out).expect("read");
        let Some(last) = out.last() else {
            return (bytes, touch);
        };
        from = last.sequence + 1;
        for entry in out.iter() {
            bytes += entry.payload.len();
            touch ^= entry.payload[1];
        }
    }
}

/// Every entry through a cursor.
fn cursor_all(stream: &LedgerStream, filter: TagSet) -> (usize, u8) {
    let (mut bytes, mut touch) = (0, 0u8);
    let mut cursor = stream.open(0, filter).expect("open");
    while let Some(entry) = cursor.try_next().expect("next") {
        bytes += entry.payload.len();
        touch ^= entry.payload[1];
    }
    (bytes, touch)
}

/// The read loop keeping the entries whose payload names the wanted tag.
fn read_and_filter(ledger: &Ledger) -> (usize, u8) {
    let (mut bytes, mut touch, mut from) = (0, 0u8, 1);
    loop {
        let entries = ledger.read(from, READ_MAX).expect("read");
        let Some(last) = entries.last() else {
            return (bytes, touch);
        };
        from = last.sequence + 1;
        for entry in entries.iter().filter(|e| e.payload[0] == WANTED as u8) {
            bytes += entry.payload.len();
            touch ^= entry.payload[1];
        }
    }
}

/// `visit` with only the tag test: what a filtered reader pays with today's ledger API.
fn visit_and_filter(ledger: &Ledger) -> (usize, u8) {
    let (mut bytes, mut touch, mut from) = (0, 0u8, 1);
    loop {
        let mut last = None;
        ledger
            .visit(from, READ_MAX, |entry| {
                last = Some(entry.sequence);
                if entry.tag == WANTED {
                    bytes += entry.payload.len();
                    touch ^= entry.payload[1];
                }
            })
            .expect("visit");
        match last {
            Some(last) => from = last + 1,
            None => return (bytes, touch),
        }
    }
}

fn cursor(c: &mut Criterion, ledger: &TempLedger) {
    let n = entries_total();
    let stream = LedgerStream::new(ledger.ledger.clone());
    let mut g = c.benchmark_group("stream_cursor_256B");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(n * PAYLOAD as u64));
    g.bench_function("ledger_read_4096", |b| {
        b.iter_custom(|iters| {
            timed("ledger_read_4096", iters, || {
                black_box(read_all(&ledger.ledger));
            })
        })
    });
    let mut out = Vec::with_capacity(READ_MAX);
    g.bench_function("ledger_read_into_4096", |b| {
        b.iter_custom(|iters| {
            timed("ledger_read_into_4096", iters, || {
                black_box(read_into_all(&ledger.ledger, &mut out));
            })
        })
    });
    g.bench_function("cursor_try_next", |b| {
        b.iter_custom(|iters| {
            timed("cursor_try_next", iters, || {
                black_box(cursor_all(&stream, TagSet::all()));
            })
        })
    });
    g.finish();
    print_ratio("cursor_try_next", "ledger_read_4096");
    print_ratio("cursor_try_next", "ledger_read_into_4096");
}

fn filtered(c: &mut Criterion, ledger: &TempLedger) {
    let n = entries_total();
    let stream = LedgerStream::new(ledger.ledger.clone());
    let mut g = c.benchmark_group("stream_filtered_1_in_10");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function("read_and_filter_payloads", |b| {
        b.iter_custom(|iters| {
            timed("read_and_filter_payloads", iters, || {
                black_box(read_and_filter(&ledger.ledger));
            })
        })
    });
    g.bench_function("cursor_tag_filter", |b| {
        b.iter_custom(|iters| {
            timed("cursor_tag_filter", iters, || {
                black_box(cursor_all(&stream, TagSet::of([WANTED])));
            })
        })
    });
    g.bench_function("visit_tag_filter", |b| {
        b.iter_custom(|iters| {
            timed("visit_tag_filter", iters, || {
                black_box(visit_and_filter(&ledger.ledger));
            })
        })
    });
    g.finish();
    assert_eq!(
        read_and_filter(&ledger.ledger),
        cursor_all(&stream, TagSet::of([WANTED])),
        "both see the same entries"
    );
    print_ratio("cursor_tag_filter", "read_and_filter_payloads");
    print_ratio("visit_tag_filter", "read_and_filter_payloads");
}

/// How long the writer of [`wake_latencies`] leaves the reader alone before each append.
fn park_delay() -> Duration {
    Duration::from_micros(env_u64("RINGLEDGER_BENCH_PARK_US", 100, 100))
}

/// Criterion cases of wake-ups through `stream`, appending with `append`.
fn wake_case<S: EventStream>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &'static str,
    idle: Duration,
    stream: &S,
    head: &(dyn Fn() -> u64 + Sync),
    append: &(dyn Fn(u64) + Sync),
) {
    let mut all = Vec::new();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let first = head() + 1;
            let mut cursor = stream.open(first, TagSet::all()).expect("open");
            let latencies = wake_latencies(iters, first, idle, append, |seq| {
                let entry = cursor.next(Deadline::Forever).expect("next");
                assert_eq!(entry.sequence, seq, "wake-up order");
            });
            let total = latencies.iter().sum();
            all.extend(latencies);
            total
        })
    });
    print_percentiles(name, &mut all);
}

fn wake(c: &mut Criterion, ledger: &TempLedger) {
    let ledger_stream = LedgerStream::new(ledger.ledger.clone());
    let memory = MemoryStream::new(1 << 16, TagSet::all());
    let payload = [0x5Au8; 8];
    let ledger_head = || ledger.ledger.head();
    let ledger_append = |seq| {
        ledger
            .ledger
            .write(&[Entry::new(seq, payload.to_vec())])
            .expect("append");
    };
    let memory_head = || memory.head();
    let memory_append = |seq| {
        memory
            .append(&[Entry::new(seq, payload.to_vec())])
            .expect("append");
    };
    let mut g = c.benchmark_group("stream_wake");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(2));
    for (name, idle) in [("parked", park_delay()), ("back_to_back", Duration::ZERO)] {
        let ledger_name = if name == "parked" {
            "ledger_parked"
        } else {
            "ledger_back_to_back"
        };
        let memory_name = if name == "parked" {
            "memory_parked"
        } else {
            "memory_back_to_back"
        };
        wake_case(
            &mut g,
            ledger_name,
            idle,
            &ledger_stream,
            &ledger_head,
            &ledger_append,
        );
        wake_case(
            &mut g,
            memory_name,
            idle,
            &memory,
            &memory_head,
            &memory_append,
        );
    }
    g.finish();
}

fn sources(c: &mut Criterion, ledger: &TempLedger) {
    let n = entries_total();
    let mut g = c.benchmark_group("source_batches_256B");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    let options = || {
        SourceOptions::new()
            .with_batch_size(BATCH)
            .with_timeout(Duration::from_secs(10))
    };
    g.bench_function("pull", |b| {
        b.iter_custom(|iters| {
            timed("pull", iters, || {
                let mut left = n;
                let payload = [0xA5u8; PAYLOAD];
                let mut source = PullSource::new(options(), move |_, event| {
                    if left == 0 {
                        return Err(NoEvent::Eof);
                    }
                    left -= 1;
                    event.write(&payload)?;
                    Ok(())
                });
                black_box(drain(&mut source, n));
            })
        })
    });
    g.bench_function("push", |b| {
        b.iter_custom(|iters| {
            timed("push", iters, || {
                let (producer, events) = mpsc::channel(1024);
                let mut source = PushSource::new(options(), events);
                std::thread::scope(|s| {
                    s.spawn(move || {
                        pin_to(PRODUCER_CORE);
                        for _ in 0..n {
                            let event = SourceEvent::new(vec![0xA5u8; PAYLOAD]);
                            producer.push(Ok(event), Deadline::Forever).expect("push");
                        }
                        // Dropping the producer closes the buffer: the source's EOF.
                    });
                    pin_to(CONSUMER_CORE);
                    black_box(drain(&mut source, n));
                });
            })
        })
    });
    let stream = LedgerStream::new(ledger.ledger.clone());
    g.bench_function("stream_source_ledger", |b| {
        b.iter_custom(|iters| {
            timed("stream_source_ledger", iters, || {
                // Batches fill in microseconds; only the last, partial one waits this out.
                let options = options().with_timeout(Duration::from_millis(1));
                let mut source =
                    stream_source(&stream, 0, TagSet::all(), options).expect("stream source");
                black_box(drain(&mut source, n));
            })
        })
    });
    g.finish();
}

/// Takes `n` events from `source` in batches.
fn drain(source: &mut impl Source, n: u64) -> usize {
    let mut batch = Batch::new();
    let mut events = 0;
    while (events as u64) < n {
        match source.next_batch(&mut batch).expect("batch") {
            BatchEnd::Full | BatchEnd::Timeout => events += batch.len(),
            BatchEnd::Eof => {
                events += batch.len();
                break;
            }
        }
        black_box(batch.as_slice());
    }
    assert_eq!(events as u64, n, "every event");
    events
}

fn benches(c: &mut Criterion) {
    let ledger = TempLedger::filled(entries_total());
    cursor(c, &ledger);
    filtered(c, &ledger);
    sources(c, &ledger);
    // Last: it appends to the ledger.
    wake(c, &ledger);
}

criterion_group!(stream_benches, benches);
criterion_main!(stream_benches);
