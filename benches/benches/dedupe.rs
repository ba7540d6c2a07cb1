//! ringledger's dedupe buffer against a straightforward `Mutex<HashMap + VecDeque>` version
//! with the same semantics, in one run.
//!
//! Run: `cargo bench -p ringledger-benches --bench dedupe` (quick check: `-- --test`).
//!
//! One run: 1 000 000 upserts over 10 000 keys (a fixed pseudo-random key sequence) from a
//! producer pinned to core 0, into a consumer on core 1 whose sink spends about 200 ns per
//! update (slower than the producer, so most updates are absorbed by dedupe). The time is the
//! producer's, so time per update = reported time / 1 000 000. Peak memory is measured with a
//! counting global allocator (peak live bytes above the level at the start of the run) and
//! printed once per implementation before the timed runs.
//!
//! Implementations:
//! - `ringledger_batched`: `DedupeBuffer::push_updates` with batches of 100 (Calico's
//!   `OnUpdates` takes slices too).
//! - `ringledger_one_at_a_time`: `DedupeBuffer::push`, one update per call.
//! - `naive_mutex_hashmap_vecdeque`: [`Naive`] below, one update per call, the way it is
//!   usually written.
//! - `naive_batched`: [`Naive`] with one lock per batch of 100, for a like-for-like view.
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::hash_map::{Entry, HashMap};
use std::collections::{HashSet, VecDeque};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringledger::dedupe::{Change, Config, DedupeBuffer, Sink, Status, Update};
use ringledger_benches::{extra_work, pin_to, CONSUMER_CORE, PRODUCER_CORE};

const UPDATES: usize = 1_000_000;
const KEYS: u64 = 10_000;
const BATCH: usize = 100;
/// `extra_work` calls per delivered update in the sink (~4 ns each).
const SINK_WORK: u32 = 50;

// ---------------------------------------------------------------------------------------------
// Peak-memory accounting.

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; `ptr` was allocated by `alloc` above with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            let now = CURRENT.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ---------------------------------------------------------------------------------------------
// The straightforward version: one mutex around a map of pending values and a queue of keys.

/// Calico's semantics the obvious way: `pending` maps each queued key to its queue position
/// and value (`None` = delete); `order` holds `(position, key)`, and entries whose position no
/// longer matches the map are stale and skipped; `live` is the set of keys the sink has seen.
#[derive(Default)]
struct NaiveState {
    pending: HashMap<u64, (u64, Option<u64>)>,
    order: VecDeque<(u64, u64)>,
    live: HashSet<u64>,
    next: u64,
    stopped: bool,
}

#[derive(Default)]
struct Naive {
    state: Mutex<NaiveState>,
    ready: Condvar,
}

impl NaiveState {
    fn apply(&mut self, key: u64, value: Option<u64>) {
        match self.pending.entry(key) {
            Entry::Occupied(mut e) => {
                if value.is_none() && !self.live.contains(&key) {
                    e.remove();
                } else {
                    e.get_mut().1 = value;
                }
            }
            Entry::Vacant(e) => {
                if value.is_none() && !self.live.contains(&key) {
                    return;
                }
                e.insert((self.next, value));
                self.order.push_back((self.next, key));
                self.next += 1;
            }
        }
    }
}

impl Naive {
    fn update(&self, key: u64, value: u64) {
        let mut state = self.state.lock().unwrap();
        state.apply(key, Some(value));
        drop(state);
        self.ready.notify_one();
    }

    fn update_batch(&self, batch: &[(u64, u64)]) {
        let mut state = self.state.lock().unwrap();
        for &(key, value) in batch {
            state.apply(key, Some(value));
        }
        drop(state);
        self.ready.notify_one();
    }

    fn stop(&self) {
        self.state.lock().unwrap().stopped = true;
        self.ready.notify_all();
    }

    /// Takes up to `max` updates into `out`; false once stopped and drained.
    fn next_batch(&self, out: &mut Vec<Update<u64, u64>>, max: usize) -> bool {
        let mut state = self.state.lock().unwrap();
        while state.pending.is_empty() {
            if state.stopped {
                return false;
            }
            state = self.ready.wait(state).unwrap();
        }
        while out.len() < max {
            let Some((pos, key)) = state.order.pop_front() else {
                break;
            };
            match state.pending.entry(key) {
                Entry::Occupied(e) if e.get().0 == pos => {
                    let (_, value) = e.remove();
                    out.push(match value {
                        Some(v) if state.live.insert(key) => Update::New(key, v),
                        Some(v) => Update::Updated(key, v),
                        None => {
                            state.live.remove(&key);
                            Update::Deleted(key)
                        }
                    });
                }
                _ => {} // stale
            }
        }
        true
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

/// The slow sink: about `SINK_WORK` x 4 ns per update.
struct SlowSink {
    acc: u64,
    delivered: usize,
}

impl SlowSink {
    fn take(&mut self, update: &Update<u64, u64>) {
        let mut acc = self.acc ^ update.value().copied().unwrap_or(0);
        for _ in 0..SINK_WORK {
            acc = extra_work(acc);
        }
        self.acc = acc;
        self.delivered += 1;
    }
}

impl Sink<u64, u64, Status> for SlowSink {
    fn on_updates(&mut self, updates: std::vec::Drain<'_, Update<u64, u64>>) {
        for update in updates {
            self.take(&update);
        }
    }
    fn on_status(&mut self, _: Status) {}
}

fn key_sequence() -> Vec<(u64, u64)> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..UPDATES as u64)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % KEYS, i)
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    RingledgerBatched,
    RingledgerOneAtATime,
    Naive,
    NaiveBatched,
}

/// One run of all updates; returns the producer's time, the peak bytes above the start, and
/// how many updates reached the sink.
fn run(which: Impl, updates: &[(u64, u64)]) -> (Duration, usize, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let (elapsed, delivered) = match which {
        Impl::RingledgerBatched | Impl::RingledgerOneAtATime => {
            let buffer = DedupeBuffer::<u64, u64, Status>::with_config(Config::default());
            std::thread::scope(|s| {
                let consumer = s.spawn(|| {
                    pin_to(CONSUMER_CORE);
                    let mut sink = SlowSink {
                        acc: 0,
                        delivered: 0,
                    };
                    buffer.run_to_sink(&mut sink);
                    black_box(sink.acc);
                    sink.delivered
                });
                pin_to(PRODUCER_CORE);
                let start = Instant::now();
                if which == Impl::RingledgerBatched {
                    let mut batch = Vec::with_capacity(BATCH);
                    for chunk in updates.chunks(BATCH) {
                        batch.extend(chunk.iter().map(|&(k, v)| Change::Upsert(k, v)));
                        buffer.push_updates(&mut batch).expect("unbounded");
                    }
                } else {
                    for &(k, v) in updates {
                        buffer.push(Change::Upsert(k, v)).expect("unbounded");
                    }
                }
                let elapsed = start.elapsed();
                buffer.stop_and_flush();
                (elapsed, consumer.join().expect("consumer panicked"))
            })
        }
        Impl::Naive | Impl::NaiveBatched => {
            let naive = Naive::default();
            std::thread::scope(|s| {
                let consumer = s.spawn(|| {
                    pin_to(CONSUMER_CORE);
                    let mut sink = SlowSink {
                        acc: 0,
                        delivered: 0,
                    };
                    let mut out = Vec::with_capacity(BATCH);
                    while naive.next_batch(&mut out, BATCH) {
                        for update in out.drain(..) {
                            sink.take(&update);
                        }
                    }
                    black_box(sink.acc);
                    sink.delivered
                });
                pin_to(PRODUCER_CORE);
                let start = Instant::now();
                if which == Impl::NaiveBatched {
                    for chunk in updates.chunks(BATCH) {
                        naive.update_batch(chunk);
                    }
                } else {
                    for &(k, v) in updates {
                        naive.update(k, v);
                    }
                }
                let elapsed = start.elapsed();
                naive.stop();
                (elapsed, consumer.join().expect("consumer panicked"))
            })
        }
    };
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (elapsed, peak, delivered)
}

fn benches(c: &mut Criterion) {
    let updates = key_sequence();
    let all = [
        ("ringledger_batched", Impl::RingledgerBatched),
        ("ringledger_one_at_a_time", Impl::RingledgerOneAtATime),
        ("naive_mutex_hashmap_vecdeque", Impl::Naive),
        ("naive_batched", Impl::NaiveBatched),
    ];
    for (name, which) in all {
        let (elapsed, peak, delivered) = run(which, &updates);
        eprintln!(
            "dedupe_1m_over_10k/{name}: {:.1} ns/update, peak {} KiB, {delivered} updates reached the sink",
            elapsed.as_nanos() as f64 / UPDATES as f64,
            peak / 1024
        );
    }
    let mut g = c.benchmark_group("dedupe_1m_over_10k");
    g.throughput(Throughput::Elements(UPDATES as u64));
    for (name, which) in all {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run(which, &updates).0).sum())
        });
    }
    g.finish();
}

criterion_group! {
    name = dedupe_benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(dedupe_benches);
