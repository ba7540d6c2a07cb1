//! `ringledger bench`: a quick look at the speed of the rings and the ledger, each next to a
//! baseline measured in the same run. A few seconds, no statistics: criterion in `benches/`
//! (`cargo bench -p ringledger-benches`) is the reference.

use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::ValueEnum;
use ringledger::core::{mpsc, spsc};
use ringledger::ledger::{Durability, Entry, Ledger, LedgerConfig};

use crate::{fmt, Outcome};

/// What `bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// The SPSC and MPSC rings against `std::sync::mpsc::sync_channel`.
    Rings,
    /// Ledger appends and reads against copies into memory and `fdatasync`.
    Ledger,
    /// Both.
    All,
}

pub fn run(suite: Suite) -> Outcome {
    let machine = Machine::look();
    say!("{}", machine.describe());
    say!(
        "{:<40} {:>12} {:>12} {:>8} {:>7}",
        "case (medians of interleaved rounds)",
        "ringledger",
        "baseline",
        "ratio",
        "spread"
    );
    let mut verdict = Verdict::default();
    if machine.busy {
        verdict.noisy.push(format!(
            "load average {:.2} on {} CPUs before the run",
            machine.load, machine.cpus
        ));
    }
    if matches!(suite, Suite::Rings | Suite::All) {
        rings(&machine, &mut verdict)?;
    }
    if matches!(suite, Suite::Ledger | Suite::All) {
        ledger(&mut verdict)?;
    }
    if PIN_FAILED.load(std::sync::atomic::Ordering::Relaxed) {
        verdict.noisy.push(
            "a thread could not be pinned (sched_setaffinity failed): threads ran unpinned".into(),
        );
    }
    verdict.print();
    Ok(ExitCode::SUCCESS)
}

/// Rounds of each side per case, alternated (ours, baseline, ours, ...), so that a change in
/// the machine's load hits both sides alike.
const ROUNDS: usize = 5;

/// A case whose rounds differ by more than this (slowest / fastest) on either side was
/// disturbed: its ratio is not to be trusted.
const MAX_SPREAD: f64 = 1.5;

/// What the machine offers the benchmark: the CPUs it may run on and how busy they are.
struct Machine {
    /// CPUs the process may use, in order (pinning uses the first two).
    allowed: Vec<usize>,
    cpus: usize,
    load: f64,
    busy: bool,
}

impl Machine {
    fn look() -> Self {
        let allowed = allowed_cpus();
        let cpus = allowed.len().max(1);
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|l| l.parse().ok()))
            .unwrap_or(0.0);
        Machine {
            busy: load > cpus as f64 - 0.5,
            allowed,
            cpus,
            load,
        }
    }

    fn describe(&self) -> String {
        let pinning = match self.pair() {
            Some((a, b)) => format!("threads pinned to producer CPU {a}, consumer CPU {b}"),
            None => "one CPU: threads not pinned, cross-thread cases share it".into(),
        };
        format!(
            "{} CPUs, load average {:.2}; {pinning}; a warm-up and {ROUNDS} interleaved rounds per side",
            self.cpus, self.load
        )
    }

    /// Two different CPUs for the producer and the consumer side, if there are two.
    fn pair(&self) -> Option<(usize, usize)> {
        match self.allowed[..] {
            [a, b, ..] => Some((a, b)),
            _ => None,
        }
    }
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most
        // its size into it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 is this thread; the pointer and size describe `set`.
        let got = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
        if got == 0 {
            // SAFETY: CPU_ISSET reads the set in bounds (i < CPU_SETSIZE).
            return (0..libc::CPU_SETSIZE as usize)
                .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
                .collect();
        }
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..n).collect()
}

/// Pins the calling thread to `cpu` (Linux; elsewhere a no-op).
fn pin(cpu: Option<usize>) {
    #[cfg(target_os = "linux")]
    if let Some(cpu) = cpu {
        // SAFETY: as in `allowed_cpus`; `cpu` came from the allowed set, below CPU_SETSIZE.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set)
        };
        if rc != 0 {
            PIN_FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

/// Set when a thread could not be pinned: the run's verdict says so (the header, printed
/// before, can only say what was asked for).
static PIN_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The rounds of one case.
struct Samples {
    ours: Vec<f64>,
    baseline: Vec<f64>,
}

/// Runs `ours` and `baseline` once each to warm up, then [`ROUNDS`] times each, alternating;
/// each returns a rate.
fn interleaved(
    mut ours: impl FnMut() -> Result<f64, String>,
    mut baseline: impl FnMut() -> Result<f64, String>,
) -> Result<Samples, String> {
    // A warm-up round of each, not counted: first-touch page faults, file creation, caches.
    ours()?;
    baseline()?;
    let mut samples = Samples {
        ours: Vec::with_capacity(ROUNDS),
        baseline: Vec::with_capacity(ROUNDS),
    };
    for _ in 0..ROUNDS {
        samples.ours.push(ours()?);
        samples.baseline.push(baseline()?);
    }
    Ok(samples)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Slowest over fastest round: 1.0 for a steady machine.
fn spread(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    if min > 0.0 {
        max / min
    } else {
        f64::INFINITY
    }
}

/// Whether the run's ratios can be trusted, and if not, why.
#[derive(Default)]
struct Verdict {
    noisy: Vec<String>,
}

impl Verdict {
    fn print(&self) {
        if self.noisy.is_empty() {
            say!(
                "verdict: steady machine (every case within {MAX_SPREAD}x across its rounds); \
                 higher is better; criterion in benches/ is the reference"
            );
        } else {
            say!(
                "verdict: the machine was too busy for these ratios to mean anything ({}); \
                 run again on an idle machine",
                self.noisy.join("; ")
            );
        }
    }
}

fn row(case: &str, samples: &Samples, unit: &str, baseline_name: &str, verdict: &mut Verdict) {
    let (ours, baseline) = (median(&samples.ours), median(&samples.baseline));
    let spread = spread(&samples.ours).max(spread(&samples.baseline));
    if spread > MAX_SPREAD {
        verdict
            .noisy
            .push(format!("{case}: rounds differ by {spread:.1}x"));
    }
    say!(
        "{case:<40} {:>10}{unit} {:>10}{unit} {:>7.2}x {:>6.2}x  (baseline: {baseline_name})",
        fmt::count(ours),
        fmt::count(baseline),
        ours / baseline,
        spread
    );
    let _ = std::io::stdout().flush();
}

const RING_ITEMS: u64 = 4_000_000;

/// Items per second through the SPSC ring, producer and consumer pinned apart.
fn spsc_rate(cpus: Option<(usize, usize)>) -> f64 {
    let (mut tx, mut rx) = spsc::channel::<u64>(1024);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            pin(cpus.map(|c| c.0));
            for i in 0..RING_ITEMS {
                let mut item = i;
                while let Err(full) = tx.push(item) {
                    item = full.0;
                    std::hint::spin_loop();
                }
            }
        });
        s.spawn(move || {
            pin(cpus.map(|c| c.1));
            let mut sum = 0u64;
            let mut got = 0;
            while got < RING_ITEMS {
                if let Some(v) = rx.pop() {
                    sum = sum.wrapping_add(v);
                    got += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
            black_box(sum);
        });
    });
    fmt::rate(RING_ITEMS, start.elapsed())
}

/// Items per second through the MPSC ring from two producers (on the producer CPU) to the
/// consumer (on the other).
fn mpsc_rate(cpus: Option<(usize, usize)>) -> f64 {
    let (tx, mut rx) = mpsc::channel::<u64>(1024);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let tx = tx.clone();
            s.spawn(move || {
                pin(cpus.map(|c| c.0));
                for i in 0..RING_ITEMS / 2 {
                    let mut item = i;
                    while let Err(full) = tx.push(item) {
                        item = full.0;
                        std::thread::yield_now();
                    }
                }
            });
        }
        s.spawn(move || {
            pin(cpus.map(|c| c.1));
            let mut got = 0;
            while got < RING_ITEMS {
                if rx.pop().is_some() {
                    got += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        });
    });
    fmt::rate(RING_ITEMS, start.elapsed())
}

fn rings(machine: &Machine, verdict: &mut Verdict) -> Result<(), String> {
    let cpus = machine.pair();
    let samples = interleaved(|| Ok(spsc_rate(cpus)), || Ok(sync_channel_rate(1, cpus)))?;
    row(
        "SPSC ring, u64 across two threads",
        &samples,
        "/s",
        "sync_channel(1024)",
        verdict,
    );
    let samples = interleaved(|| Ok(mpsc_rate(cpus)), || Ok(sync_channel_rate(2, cpus)))?;
    row(
        "MPSC ring, u64, two producers",
        &samples,
        "/s",
        "sync_channel(1024)",
        verdict,
    );
    Ok(())
}

/// Items per second through `std::sync::mpsc::sync_channel`, pinned as the rings are.
fn sync_channel_rate(producers: u64, cpus: Option<(usize, usize)>) -> f64 {
    let items = RING_ITEMS / 4;
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(1024);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..producers {
            let tx = tx.clone();
            s.spawn(move || {
                pin(cpus.map(|c| c.0));
                for i in 0..items / producers {
                    tx.send(i).ok();
                }
            });
        }
        drop(tx);
        s.spawn(move || {
            pin(cpus.map(|c| c.1));
            let mut sum = 0u64;
            for v in rx.iter() {
                sum = sum.wrapping_add(v);
            }
            black_box(sum);
        });
    });
    fmt::rate(items, start.elapsed())
}

const PAYLOAD: usize = 256;
/// Entries per append round (about 120 MiB of frames).
const APPEND_ENTRIES: u64 = 400_000;

fn ledger(verdict: &mut Verdict) -> Result<(), String> {
    let dir =
        tempfile::tempdir().map_err(|e| format!("temporary directory: {}", fmt::chain(&e)))?;
    let ledger = Ledger::open(dir.path().join("ledger"), LedgerConfig::default())
        .map_err(|e| fmt::chain(&e))?;
    let payload = Bytes::from(vec![0x5A; PAYLOAD]);

    // Unsynced appends in writes of 100, against framing the same entries into memory.
    let mut batch: Vec<Entry> = (1..=100).map(|s| Entry::new(s, payload.clone())).collect();
    let append = |batch: &mut Vec<Entry>| -> Result<f64, String> {
        let start = Instant::now();
        for _ in 0..APPEND_ENTRIES / 100 {
            ledger.write(batch).map_err(|e| fmt::chain(&e))?;
            for e in batch.iter_mut() {
                e.sequence += 100;
            }
        }
        Ok(fmt::rate(APPEND_ENTRIES, start.elapsed()))
    };
    let samples = interleaved(|| append(&mut batch), || Ok(framed_copy_rate(&payload)))?;
    row(
        "ledger append, 256 B, writes of 100",
        &samples,
        "/s",
        "frame + CRC into a warm buffer",
        verdict,
    );

    // Sequential reads of what was written, against copying the same bytes.
    let read = || -> Result<f64, String> {
        let start = Instant::now();
        let mut bytes = 0u64;
        ledger
            .visit(0, usize::MAX, |e| bytes += e.payload.len() as u64)
            .map_err(|e| fmt::chain(&e))?;
        Ok(fmt::rate(bytes, start.elapsed()))
    };
    let len = (ledger.len() as usize) * PAYLOAD;
    let samples = interleaved(read, || Ok(memcpy_rate(len)))?;
    row(
        "ledger sequential read (visit)",
        &samples,
        "B/s",
        "memcpy",
        verdict,
    );
    drop(ledger);

    // Synced writes of 1000, against one small pwrite + fdatasync per 1000 entries.
    let synced = Ledger::open(dir.path().join("synced"), LedgerConfig::default())
        .map_err(|e| fmt::chain(&e))?;
    let mut batch: Vec<Entry> = (1..=1000).map(|s| Entry::new(s, payload.clone())).collect();
    let synced_rate = |batch: &mut Vec<Entry>| -> Result<f64, String> {
        let rounds = 10;
        let start = Instant::now();
        for _ in 0..rounds {
            synced
                .write_with(batch, Durability::Synced)
                .map_err(|e| fmt::chain(&e))?;
            for e in batch.iter_mut() {
                e.sequence += 1000;
            }
        }
        Ok(fmt::rate(rounds * 1000, start.elapsed()))
    };
    let mut sync = Duration::ZERO;
    let samples = interleaved(
        || synced_rate(&mut batch),
        || {
            sync = fdatasync_latency(dir.path())?;
            Ok(1000.0 / sync.as_secs_f64())
        },
    )?;
    row(
        "ledger synced append, writes of 1000",
        &samples,
        "/s",
        &format!(
            "pwrite of 1000 frames + fdatasync ({})",
            fmt::duration(sync)
        ),
        verdict,
    );
    Ok(())
}

fn framed_copy_rate(payload: &[u8]) -> f64 {
    let mut buffer = vec![0u8; 64 << 20];
    let frame = 40 + payload.len();
    let start = Instant::now();
    let mut at = 0;
    for seq in 0..APPEND_ENTRIES {
        if at + frame > buffer.len() {
            at = 0;
        }
        let crc = ringledger::core::crc32c::crc32c(black_box(payload));
        buffer[at..at + 8].copy_from_slice(&seq.to_le_bytes());
        buffer[at + 8..at + 12].copy_from_slice(&crc.to_le_bytes());
        buffer[at + 40..at + frame].copy_from_slice(payload);
        at += frame;
    }
    black_box(&buffer);
    fmt::rate(APPEND_ENTRIES, start.elapsed())
}

fn memcpy_rate(len: usize) -> f64 {
    let src = vec![1u8; len.max(1)];
    let mut dst = vec![0u8; len.max(1)];
    dst.copy_from_slice(&src);
    let start = Instant::now();
    dst.copy_from_slice(black_box(&src));
    black_box(&dst);
    fmt::rate(len as u64, start.elapsed())
}

/// The floor of a synced write of 1000 entries: one `pwrite` of their frames' bytes
/// (appended to a file) and one `fdatasync`, averaged over a few rounds.
fn fdatasync_latency(dir: &std::path::Path) -> Result<Duration, String> {
    let path = dir.join("probe");
    let file = std::fs::File::create(&path).map_err(|e| fmt::chain(&e))?;
    let block = vec![7u8; 1000 * (40 + PAYLOAD)];
    let rounds = 10;
    let start = Instant::now();
    for round in 0..rounds {
        file.write_all_at(&block, (round * block.len()) as u64)
            .map_err(|e| fmt::chain(&e))?;
        file.sync_data().map_err(|e| fmt::chain(&e))?;
    }
    let took = start.elapsed() / rounds as u32;
    drop(file);
    std::fs::remove_file(&path).map_err(|e| fmt::chain(&e))?;
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spreads_judge_the_rounds() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(spread(&[2.0, 4.0, 3.0]), 2.0);
        let steady = Samples {
            ours: vec![10.0, 11.0, 10.5],
            baseline: vec![20.0, 21.0, 20.5],
        };
        let disturbed = Samples {
            ours: vec![10.0, 30.0, 10.5],
            baseline: vec![20.0, 21.0, 20.5],
        };
        let mut verdict = Verdict::default();
        row("steady", &steady, "/s", "x", &mut verdict);
        assert!(verdict.noisy.is_empty());
        row("disturbed", &disturbed, "/s", "x", &mut verdict);
        assert_eq!(verdict.noisy.len(), 1);
        assert!(verdict.noisy[0].starts_with("disturbed"));
    }

    #[test]
    fn interleaving_alternates_after_a_warm_up() {
        let order = std::cell::RefCell::new(Vec::new());
        let samples = interleaved(
            || {
                order.borrow_mut().push('o');
                Ok(1.0)
            },
            || {
                order.borrow_mut().push('b');
                Ok(2.0)
            },
        )
        .unwrap();
        assert_eq!(samples.ours.len(), ROUNDS);
        let order: String = order.into_inner().into_iter().collect();
        assert_eq!(order, "ob".repeat(ROUNDS + 1));
    }

    #[test]
    fn the_machine_is_seen() {
        let machine = Machine::look();
        assert!(machine.cpus >= 1 && !machine.allowed.is_empty());
        assert!(machine.describe().contains("CPUs"));
    }
}
