//! Shared helpers for ringledger's criterion benchmarks.
//!
//! - [`pin_to`]: pins the calling thread to one core ([`PRODUCER_CORE`] / [`CONSUMER_CORE`]).
//! - [`extra_work`]: the fixed per-item arithmetic that forces a one-at-a-time stream into the
//!   near-empty regime (the producer does it) or the near-full regime (the consumer does it).
//!   It is the same function, with the same step count, for every crate, and it is chained from
//!   item to item (`acc = extra_work(acc ^ item)`), so out-of-order execution cannot overlap it
//!   away: the working side really spends about 4 ns per item. (Unchained, the same 4 ns
//!   overlapped with the ring operations and the consumer of rtrb, ringbuf and ringledger still
//!   kept up with the producer, so the "near-full" case ran near-empty.) Set
//!   `RINGLEDGER_BENCH_STATS=1` to see, per run, how often each side found the ring full/empty.
//! - [`SpinBarrier`]: starts both sides of a run together without a futex wake-up inside the
//!   timed region.
//! - Generic drivers: [`stream`] (one item at a time), [`chunked`] (chunk APIs), [`echo`]
//!   (round trips over two rings) and [`mpsc`] (N producers, one consumer). Each verifies
//!   order and a checksum and returns the time the consumer (or the echo initiator) measured
//!   from the barrier's release to the last item.
//! - Baselines: [`ping_pong`] (a single `AtomicU64` bounced between two cores) and
//!   [`copy_baseline`] (a raw shared array with two atomic indices, copying whole chunks in
//!   and out).
//!
//! - [`peers`]: the rings compared, one table per case, shared by the criterion bench and the
//!   paired runner.
//!
//! Every driver keeps the ring's endpoints in their own threads and inlines the per-crate
//! closures, so the only difference between two crates in one case is the ring itself.

pub mod peers;

use std::cell::UnsafeCell;
use std::hint::{black_box, spin_loop};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The core the producer (or the echo initiator, or every MPSC producer) runs on.
pub const PRODUCER_CORE: usize = 0;
/// The core the consumer (or the echo responder) runs on.
pub const CONSUMER_CORE: usize = 1;

/// Dependent multiply/xor-shift steps in [`extra_work`]: about 4 ns (1 ns a step) on the
/// project's 2-vCPU KVM guest (the `baseline/extra_work` bench reports it in the same run).
pub const EXTRA_WORK_STEPS: u32 = 4;

static PIN_WARNED: AtomicBool = AtomicBool::new(false);

/// Pins the calling thread to `core` (a logical CPU id). Warns once if that fails (fewer
/// cores, or a restricted affinity mask): the run still works, but unpinned.
pub fn pin_to(core: usize) {
    let ok = core_affinity::set_for_current(core_affinity::CoreId { id: core });
    if !ok && !PIN_WARNED.swap(true, Ordering::Relaxed) {
        eprintln!("ringledger-benches: could not pin a thread to core {core}; running unpinned");
    }
}

/// A fixed amount of dependent arithmetic (about 4 ns), opaque to the optimizer.
///
/// The drivers chain it, `acc = extra_work(acc ^ item)`, so each call waits for the last.
/// Each step goes through [`opaque`], which keeps the value in a register: unlike
/// `std::hint::black_box` (a store and a reload through the stack per call) it puts nothing in
/// the store buffer, so the work does not compete with the ring's own stores.
#[inline(always)]
pub fn extra_work(seed: u64) -> u64 {
    let mut x = opaque(seed);
    for _ in 0..EXTRA_WORK_STEPS {
        x = opaque(x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 29));
    }
    x
}

/// Returns `x` unchanged, hiding it from the optimizer without touching memory.
#[inline(always)]
pub fn opaque(mut x: u64) -> u64 {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: an empty assembly block that claims to read and write one register, nothing else.
    unsafe {
        std::arch::asm!("/* {0} */", inout(reg) x, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        x = black_box(x);
    }
    x
}

/// Pads (and aligns) a value to 128 bytes, two cache lines (the adjacent-line prefetcher).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Padded<T>(pub T);

/// A one-shot spinning barrier for `parties` threads. Waiting yields, so it also works when
/// more threads than cores take part; it is never inside a timed region.
#[derive(Debug)]
pub struct SpinBarrier {
    arrived: Padded<AtomicUsize>,
    parties: usize,
}

impl SpinBarrier {
    /// A barrier for `parties` threads.
    pub fn new(parties: usize) -> Self {
        Self {
            arrived: Padded(AtomicUsize::new(0)),
            parties,
        }
    }

    /// Arrives and waits until all parties have arrived.
    pub fn wait(&self) {
        self.arrived.0.fetch_add(1, Ordering::AcqRel);
        while self.arrived.0.load(Ordering::Acquire) < self.parties {
            std::thread::yield_now();
        }
    }
}

/// Which side of a one-at-a-time stream does [`extra_work`] per item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// The producer does the work: the consumer waits on an empty ring.
    NearEmpty,
    /// The consumer does the work: the producer waits on a full ring.
    NearFull,
    /// Nobody does: whichever side is faster decides (bistable; no criterion case uses it).
    Free,
}

/// Moves an endpoint into the calling thread's own stack frame, alone on 128-byte lines.
///
/// A spawned closure's captures live in a heap block that the spawning thread allocated,
/// typically right next to the other thread's block: a handle that keeps its own index and
/// a cached copy of the other side's there shares a cache line with the other side's handle
/// (false sharing that is the benchmark's, not the ring's). `black_box` keeps the compiler from
/// working on the heap copy anyway.
#[inline(always)]
fn on_own_stack<T>(endpoint: T) -> Padded<T> {
    Padded(black_box(endpoint))
}

#[cold]
#[inline(never)]
fn out_of_order(what: &str, got: u64, expected: u64) -> ! {
    panic!(
        "{what}: got {got}, expected {expected}: the ring lost, duplicated or reordered an item"
    );
}

/// Whether the drivers print, per run, how often each side found the ring full or empty
/// (environment variable `RINGLEDGER_BENCH_STATS` set): the way to check which regime a
/// stream really ran in.
fn stats_enabled() -> bool {
    std::env::var_os("RINGLEDGER_BENCH_STATS").is_some()
}

/// Pushes `v`, spinning while the ring is full; counts the failed attempts in `spins`.
#[inline(always)]
fn spin_push<P>(p: &mut P, v: u64, push: &impl Fn(&mut P, u64) -> bool, spins: &mut u64) {
    while !push(p, v) {
        *spins += 1;
        spin_loop();
    }
}

/// Pops, spinning while the ring is empty; counts the failed attempts in `spins`.
#[inline(always)]
fn spin_pop<C>(c: &mut C, pop: &impl Fn(&mut C) -> Option<u64>, spins: &mut u64) -> u64 {
    loop {
        if let Some(v) = pop(c) {
            return v;
        }
        *spins += 1;
        spin_loop();
    }
}

/// Streams `0..n` one item at a time from a producer pinned to [`PRODUCER_CORE`] to a
/// consumer pinned to [`CONSUMER_CORE`], spinning on full and empty. Checks order and the sum.
/// Returns the consumer's time from the barrier to the last item.
#[inline(always)]
pub fn stream<P: Send, C: Send>(
    n: u64,
    regime: Regime,
    (p, c): (P, C),
    push: impl Fn(&mut P, u64) -> bool + Sync,
    pop: impl Fn(&mut C) -> Option<u64> + Sync,
) -> Duration {
    let barrier = SpinBarrier::new(2);
    let (push, pop, barrier) = (&push, &pop, &barrier);
    let (elapsed, full_spins, empty_spins) = std::thread::scope(|s| {
        let producer = s.spawn(move || {
            pin_to(PRODUCER_CORE);
            let mut p = on_own_stack(p);
            barrier.wait();
            let mut spins = 0;
            if regime == Regime::NearEmpty {
                let mut acc = 0u64;
                for i in 0..n {
                    acc = extra_work(acc ^ i);
                    spin_push(&mut p.0, i, push, &mut spins);
                }
                black_box(acc);
            } else {
                for i in 0..n {
                    spin_push(&mut p.0, i, push, &mut spins);
                }
            }
            drop(p);
            spins
        });
        let consumer = s.spawn(move || {
            pin_to(CONSUMER_CORE);
            let mut c = on_own_stack(c);
            barrier.wait();
            let start = Instant::now();
            let mut sum = 0u64;
            let mut spins = 0;
            let mut acc = 0u64;
            for expected in 0..n {
                let v = spin_pop(&mut c.0, pop, &mut spins);
                if v != expected {
                    out_of_order("stream", v, expected);
                }
                sum = sum.wrapping_add(v);
                if regime == Regime::NearFull {
                    acc = extra_work(acc ^ v);
                }
            }
            black_box(acc);
            let elapsed = start.elapsed();
            assert_eq!(
                sum,
                n.wrapping_mul(n.wrapping_sub(1)) / 2,
                "stream checksum"
            );
            drop(c);
            (elapsed, spins)
        });
        let (elapsed, empty_spins) = consumer.join().expect("consumer panicked");
        let full_spins = producer.join().expect("producer panicked");
        (elapsed, full_spins, empty_spins)
    });
    if stats_enabled() {
        eprintln!(
            "stream {regime:?}: {n} items, producer found full {full_spins} times, consumer found empty {empty_spins} times"
        );
    }
    elapsed
}

/// Writes `start, start + 1, ...` into `dst`.
#[inline(always)]
pub fn fill_seq(dst: &mut [MaybeUninit<u64>], start: u64) {
    for (k, slot) in dst.iter_mut().enumerate() {
        slot.write(start + k as u64);
    }
}

/// Checks that `src` is `start, start + 1, ...`; returns the sum of `src`, or panics.
#[inline(always)]
pub fn check_seq(src: &[u64], start: u64) -> u64 {
    let mut bad = 0u64;
    let mut sum = 0u64;
    for (k, &v) in src.iter().enumerate() {
        bad |= v ^ (start + k as u64);
        sum = sum.wrapping_add(v);
    }
    if bad != 0 {
        out_of_order("chunk", bad, 0);
    }
    sum
}

/// Streams `n` items (a multiple of `chunk`) in chunks of `chunk`. `write(p, start, chunk)`
/// writes `start..start + chunk` and returns whether there was room; `read(c, start, chunk)`
/// reads and checks (with [`fill_seq`]/[`check_seq`]) a chunk and returns its sum, or `None`
/// when fewer than `chunk` items are there. Returns the consumer's time.
#[inline(always)]
pub fn chunked<P: Send, C: Send>(
    n: u64,
    chunk: usize,
    (p, c): (P, C),
    write: impl Fn(&mut P, u64, usize) -> bool + Sync,
    read: impl Fn(&mut C, u64, usize) -> Option<u64> + Sync,
) -> Duration {
    assert_eq!(
        n % chunk as u64,
        0,
        "n must be a multiple of the chunk size"
    );
    let barrier = SpinBarrier::new(2);
    let (write, read, barrier) = (&write, &read, &barrier);
    std::thread::scope(|s| {
        s.spawn(move || {
            pin_to(PRODUCER_CORE);
            let mut p = on_own_stack(p);
            barrier.wait();
            let mut start = 0;
            while start < n {
                while !write(&mut p.0, start, chunk) {
                    spin_loop();
                }
                start += chunk as u64;
            }
            drop(p);
        });
        let consumer = s.spawn(move || {
            pin_to(CONSUMER_CORE);
            let mut c = on_own_stack(c);
            barrier.wait();
            let t0 = Instant::now();
            let mut start = 0;
            let mut sum = 0u64;
            while start < n {
                let chunk_sum = loop {
                    if let Some(x) = read(&mut c.0, start, chunk) {
                        break x;
                    }
                    spin_loop();
                };
                sum = sum.wrapping_add(chunk_sum);
                start += chunk as u64;
            }
            let elapsed = t0.elapsed();
            assert_eq!(sum, n.wrapping_mul(n.wrapping_sub(1)) / 2, "chunk checksum");
            drop(c);
            elapsed
        });
        consumer.join().expect("consumer panicked")
    })
}

/// `n` round trips: the initiator (on [`PRODUCER_CORE`]) pushes `i` into ring `a` and waits
/// for it to come back through ring `b`; the responder (on [`CONSUMER_CORE`]) pops from `a`
/// and pushes into `b`. One item in flight. Returns the initiator's time for all `n`.
#[inline(always)]
pub fn echo<P: Send, C: Send>(
    n: u64,
    a: (P, C),
    b: (P, C),
    push: impl Fn(&mut P, u64) -> bool + Sync,
    pop: impl Fn(&mut C) -> Option<u64> + Sync,
) -> Duration {
    let (pa, ca) = a;
    let (pb, cb) = b;
    let barrier = SpinBarrier::new(2);
    let (push, pop, barrier) = (&push, &pop, &barrier);
    std::thread::scope(|s| {
        s.spawn(move || {
            pin_to(CONSUMER_CORE);
            let mut ca = on_own_stack(ca);
            let mut pb = on_own_stack(pb);
            barrier.wait();
            let mut spins = 0;
            for _ in 0..n {
                let v = spin_pop(&mut ca.0, pop, &mut spins);
                spin_push(&mut pb.0, v, push, &mut spins);
            }
            drop((ca, pb));
        });
        let initiator = s.spawn(move || {
            pin_to(PRODUCER_CORE);
            let mut pa = on_own_stack(pa);
            let mut cb = on_own_stack(cb);
            barrier.wait();
            let t0 = Instant::now();
            let mut spins = 0;
            for i in 0..n {
                spin_push(&mut pa.0, i, push, &mut spins);
                let v = spin_pop(&mut cb.0, pop, &mut spins);
                if v != i {
                    out_of_order("echo", v, i);
                }
            }
            let elapsed = t0.elapsed();
            drop((pa, cb));
            elapsed
        });
        initiator.join().expect("initiator panicked")
    })
}

/// The floor for [`echo`]: `n` round trips of one `AtomicU64` between the two cores (the
/// initiator stores `2i + 1`, the responder answers `2i + 2`). Returns the initiator's time.
pub fn ping_pong(n: u64) -> Duration {
    let cell = Padded(AtomicU64::new(0));
    let barrier = SpinBarrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_to(CONSUMER_CORE);
            barrier.wait();
            for i in 0..n {
                while cell.0.load(Ordering::Acquire) != 2 * i + 1 {
                    spin_loop();
                }
                cell.0.store(2 * i + 2, Ordering::Release);
            }
        });
        let initiator = s.spawn(|| {
            pin_to(PRODUCER_CORE);
            barrier.wait();
            let t0 = Instant::now();
            for i in 0..n {
                cell.0.store(2 * i + 1, Ordering::Release);
                while cell.0.load(Ordering::Acquire) != 2 * i + 2 {
                    spin_loop();
                }
            }
            t0.elapsed()
        });
        initiator.join().expect("initiator panicked")
    })
}

/// `producers.len()` producers (all pinned to [`PRODUCER_CORE`]) each push `per_producer`
/// items tagged with their index in the top 16 bits; one consumer on [`CONSUMER_CORE`] checks
/// each producer's FIFO order and the sum. Returns the consumer's time.
#[inline(always)]
pub fn mpsc<P: Send, C: Send>(
    per_producer: u64,
    producers: Vec<P>,
    c: C,
    push: impl Fn(&mut P, u64) -> bool + Sync,
    pop: impl Fn(&mut C) -> Option<u64> + Sync,
) -> Duration {
    const TAG_SHIFT: u32 = 48;
    let k = producers.len();
    assert!((1..=8).contains(&k) && per_producer < 1 << TAG_SHIFT);
    let barrier = SpinBarrier::new(k + 1);
    let (push, pop) = (&push, &pop);
    let barrier = &barrier;
    let (elapsed, full_spins, empty_spins) = std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(k);
        for (id, p) in producers.into_iter().enumerate() {
            handles.push(s.spawn(move || {
                pin_to(PRODUCER_CORE);
                let mut p = on_own_stack(p);
                barrier.wait();
                let tag = (id as u64) << TAG_SHIFT;
                let mut spins = 0;
                for i in 0..per_producer {
                    spin_push(&mut p.0, tag | i, push, &mut spins);
                }
                drop(p);
                spins
            }));
        }
        let consumer = s.spawn(move || {
            pin_to(CONSUMER_CORE);
            let mut c = on_own_stack(c);
            barrier.wait();
            let t0 = Instant::now();
            let mut next = [0u64; 8];
            let mut sum = 0u64;
            let mut spins = 0;
            for _ in 0..per_producer * k as u64 {
                let v = spin_pop(&mut c.0, pop, &mut spins);
                let id = (v >> TAG_SHIFT) as usize & 7;
                let seq = v & ((1 << TAG_SHIFT) - 1);
                if seq != next[id] {
                    out_of_order("mpsc", seq, next[id]);
                }
                next[id] += 1;
                sum = sum.wrapping_add(seq);
            }
            let elapsed = t0.elapsed();
            let per = per_producer.wrapping_mul(per_producer.wrapping_sub(1)) / 2;
            assert_eq!(sum, per.wrapping_mul(k as u64), "mpsc checksum");
            drop(c);
            (elapsed, spins)
        });
        let (elapsed, empty_spins) = consumer.join().expect("consumer panicked");
        let full_spins: u64 = handles
            .into_iter()
            .map(|h| h.join().expect("producer panicked"))
            .sum();
        (elapsed, full_spins, empty_spins)
    });
    if stats_enabled() {
        eprintln!(
            "mpsc {k}P: {} items, producers found full {full_spins} times, consumer found empty {empty_spins} times",
            per_producer * k as u64
        );
    }
    elapsed
}

/// The raw shared buffer for [`copy_baseline`]: a power-of-two array of `u64` and two
/// free-running atomic indices on their own lines (no cached copies, no chunk objects).
#[derive(Debug)]
pub struct SharedBuffer {
    written: Padded<AtomicUsize>,
    read: Padded<AtomicUsize>,
    data: Box<[UnsafeCell<u64>]>,
}

// SAFETY: slots are only touched by the producer between `read` and `written + capacity` and
// by the consumer between `read` and `written`, handed over with release/acquire on the indices.
unsafe impl Sync for SharedBuffer {}

impl SharedBuffer {
    /// A buffer of `capacity` (a power of two) `u64`s.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two());
        Self {
            written: Padded(AtomicUsize::new(0)),
            read: Padded(AtomicUsize::new(0)),
            data: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
        }
    }
}

/// The plain copy-through-a-shared-buffer baseline for the chunk case: the producer fills a
/// local chunk and copies it into the shared array, the consumer copies a chunk out into a
/// local array and checks it. `capacity` must be a multiple of `chunk` (no wrapped chunks).
pub fn copy_baseline(n: u64, capacity: usize, chunk: usize) -> Duration {
    assert!(capacity % chunk == 0 && n % chunk as u64 == 0);
    let buf = &SharedBuffer::new(capacity);
    let mask = capacity - 1;
    let barrier = SpinBarrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_to(PRODUCER_CORE);
            barrier.wait();
            let mut local = vec![MaybeUninit::<u64>::uninit(); chunk];
            let mut w = 0usize;
            let mut start = 0u64;
            while start < n {
                fill_seq(&mut local, start);
                while w - buf.read.0.load(Ordering::Acquire) > capacity - chunk {
                    spin_loop();
                }
                // SAFETY: `local` is initialized by `fill_seq`; the `chunk` slots at `w & mask`
                // are free (checked against `read` above), contiguous (capacity is a multiple of
                // chunk) and not touched by the consumer until `written` is published.
                unsafe {
                    let dst = UnsafeCell::raw_get(buf.data.as_ptr().add(w & mask));
                    std::ptr::copy_nonoverlapping(local.as_ptr().cast::<u64>(), dst, chunk);
                }
                w += chunk;
                buf.written.0.store(w, Ordering::Release);
                start += chunk as u64;
            }
        });
        let consumer = s.spawn(|| {
            pin_to(CONSUMER_CORE);
            barrier.wait();
            let t0 = Instant::now();
            let mut local = vec![0u64; chunk];
            let mut r = 0usize;
            let mut start = 0u64;
            let mut sum = 0u64;
            while start < n {
                while buf.written.0.load(Ordering::Acquire) - r < chunk {
                    spin_loop();
                }
                // SAFETY: the `chunk` slots at `r & mask` were published by `written` (acquire
                // above), are contiguous, and the producer does not reuse them before `read`.
                unsafe {
                    let src = UnsafeCell::raw_get(buf.data.as_ptr().add(r & mask));
                    std::ptr::copy_nonoverlapping(src.cast_const(), local.as_mut_ptr(), chunk);
                }
                r += chunk;
                buf.read.0.store(r, Ordering::Release);
                sum = sum.wrapping_add(check_seq(&local, start));
                start += chunk as u64;
            }
            let elapsed = t0.elapsed();
            assert_eq!(sum, n.wrapping_mul(n.wrapping_sub(1)) / 2, "copy checksum");
            elapsed
        });
        consumer.join().expect("consumer panicked")
    })
}

/// Setup shared by the ledger, queue and stream benchmarks.
pub mod setup {
    use std::path::PathBuf;

    /// Whether criterion runs in `--test` mode (every case once).
    pub fn test_mode() -> bool {
        std::env::args().any(|a| a == "--test")
    }

    /// The number in the environment variable `name`, else `test` in `--test` mode, else
    /// `default`.
    pub fn env_u64(name: &str, default: u64, test: u64) -> u64 {
        match std::env::var(name) {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
            Err(_) if test_mode() => test,
            Err(_) => default,
        }
    }

    /// A fresh temporary directory under `RINGLEDGER_BENCH_DIR` (default: the system's),
    /// removed on drop. It must be on a real disk for the file benchmarks to mean anything.
    pub fn scratch_dir() -> tempfile::TempDir {
        let base = std::env::var_os("RINGLEDGER_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        tempfile::Builder::new()
            .prefix("ringledger-bench-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("cannot create a directory in {}: {e}", base.display()))
    }
}

/// One-way wake-up latencies: a signalling thread (pinned to [`PRODUCER_CORE`]) idles for
/// `idle`, notes the time, and calls `signal(seq)`; a waiting thread (pinned to
/// [`CONSUMER_CORE`]) calls `wait(seq)`, which returns once `seq` is there, and notes how long
/// after the signal it woke. It then acknowledges through a spinning atomic (untimed), the same
/// for every mechanism, so each wake-up starts from a parked waiter. Sequences run from
/// `first`, `n` of them.
pub fn wake_latencies(
    n: u64,
    first: u64,
    idle: Duration,
    mut signal: impl FnMut(u64) + Send,
    mut wait: impl FnMut(u64) + Send,
) -> Vec<Duration> {
    let epoch = Instant::now();
    let sent_ns = Padded(AtomicU64::new(0));
    let acked = Padded(AtomicU64::new(first - 1));
    let (sent_ns, acked, barrier) = (&sent_ns, &acked, &SpinBarrier::new(2));
    std::thread::scope(|s| {
        s.spawn(move || {
            pin_to(PRODUCER_CORE);
            barrier.wait();
            for seq in first..first + n {
                let start = Instant::now();
                while start.elapsed() < idle {
                    std::hint::spin_loop();
                }
                // Published to the waiter by `signal`'s own release/acquire.
                sent_ns
                    .0
                    .store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                signal(seq);
                while acked.0.load(Ordering::Acquire) != seq {
                    std::hint::spin_loop();
                }
            }
        });
        let reader = s.spawn(move || {
            pin_to(CONSUMER_CORE);
            barrier.wait();
            let mut latencies = Vec::with_capacity(n as usize);
            for seq in first..first + n {
                wait(seq);
                let woke = epoch.elapsed();
                latencies.push(
                    woke.saturating_sub(Duration::from_nanos(sent_ns.0.load(Ordering::Relaxed))),
                );
                acked.0.store(seq, Ordering::Release);
            }
            latencies
        });
        reader.join().expect("reader panicked")
    })
}

/// Prints the p50 and p99 of `latencies` (sorting them) as `latency NAME: p50 …, p99 …`;
/// returns the p50, or `None` when there are none.
pub fn print_percentiles(name: &str, latencies: &mut [Duration]) -> Option<Duration> {
    if latencies.is_empty() {
        return None;
    }
    latencies.sort_unstable();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "latency {name}: p50 {:.1} µs, p99 {:.1} µs ({} wake-ups)",
        at(50).as_secs_f64() * 1e6,
        at(99).as_secs_f64() * 1e6,
        latencies.len()
    );
    Some(at(50))
}
