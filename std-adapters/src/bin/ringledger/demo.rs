//! `ringledger demo`: the main job on an embedded default.
//!
//! A queue in a fresh temporary directory (or `--dir`): one producer thread writes `--entries`
//! entries of `--size` bytes through a [`Producer`](ringledger::producer::Producer), a
//! persistent consumer reads and marks them, a cleaner deletes what the consumer is done with
//! (keeping the newest tenth). A progress bar while it runs; then rates, the append-to-consume
//! latency distribution, and what is on disk.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use ringledger::cleaner::CleanerConfig;
use ringledger::consumer::ConsumerConfig;
use ringledger::ledger::{Durability, Entry, LedgerConfig};
use ringledger::producer::ProducerConfig;
use ringledger::queue::{Queue, QueueConfig};
use ringledger::storage::now_ns;
use ringledger::wait::Deadline;

use crate::{fmt, Outcome};

/// The demo's options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the queue in this directory (for `inspect`, `verify`, `dump` afterwards) instead
    /// of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How many entries to produce and consume, in all (by default nine tenths as a burst, then
    /// the rest paced at 100 k/s, at most one second of it).
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Payload size of each entry, in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Sync every producer batch (survives a power loss) instead of buffered writes.
    #[arg(long)]
    sync: bool,
    /// Pace the producer at this many entries per second and report the latency a steady
    /// source sees (instead of a burst followed by a one-second pace at 100 k/s).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    rate: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// The rate of the default run's paced pass, in entries per second.
const DEFAULT_RATE: u64 = 100_000;

/// The consumer's name in the queue's table.
const CONSUMER: &str = "demo";

pub fn run(args: &Args) -> Outcome {
    if args.entries == 0 {
        return Err("--entries must be at least 1".into());
    }
    if args.size > 16 << 20 {
        return Err(format!(
            "--size {} is too large: at most 16 MiB per entry here",
            args.size
        ));
    }
    let temporary;
    let dir: &Path = match &args.dir {
        Some(dir) => dir,
        None => {
            temporary = tempfile::tempdir()
                .map_err(|e| format!("temporary directory: {}", fmt::chain(&e)))?;
            temporary.path()
        }
    };
    let durability = if args.sync {
        Durability::Synced
    } else {
        Durability::Buffered
    };
    let config = QueueConfig {
        ledger: LedgerConfig::default().with_durability(durability),
        cleaner: Some(CleanerConfig {
            retention: args.entries / 10,
            threshold: 0,
            interval: Duration::from_millis(100),
        }),
        ..QueueConfig::default()
    };
    let queue =
        Queue::open(dir, config).map_err(|e| format!("{}: {}", dir.display(), fmt::chain(&e)))?;
    let producer = queue
        .producer(ProducerConfig {
            batch: 256,
            queue: 4096,
            ..ProducerConfig::default()
        })
        .map_err(|e| fmt::chain(&e))?;
    let consumer = queue
        .consumer(
            ConsumerConfig::named(CONSUMER)
                .with_window(8192)
                .with_skip(1024, Duration::from_millis(20)),
        )
        .map_err(|e| fmt::chain(&e))?;

    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.entries)
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} entries ({per_sec})",
        )
        .map_err(|e| fmt::chain(&e))?,
    );
    let first = queue.ledger().head() + 1;
    if first > 1 && !args.quiet {
        say!(
            "resuming the queue in {}: head {}; what its consumer {CONSUMER:?} did not mark \
             is delivered again first",
            dir.display(),
            first - 1
        );
    }
    let payload = Bytes::from(vec![b'r'; args.size]);
    let redelivered = AtomicU64::new(0);
    // The default run ends with a paced pass of a tenth of the entries, at most one second.
    let paced_rate = args.rate.unwrap_or(DEFAULT_RATE);
    let paced_entries = match args.rate {
        Some(_) => args.entries,
        None => (args.entries / 10).min(DEFAULT_RATE),
    };
    let burst_entries = args.entries - paced_entries;
    progress.set_length(burst_entries + paced_entries);
    let mut passes = Vec::new();
    let mut next = first;
    for (entries, rate) in [(burst_entries, None), (paced_entries, Some(paced_rate))] {
        if entries == 0 {
            continue;
        }
        let pass = Pass {
            producer: &producer,
            consumer: &consumer,
            payload: &payload,
            progress: &progress,
            redelivered: &redelivered,
            first: next,
            entries,
            rate,
            resumed_from: first,
        };
        passes.push((rate, entries, pass.run()?));
        next += entries;
    }
    progress.finish_and_clear();
    consumer
        .close()
        .map_err(|e| format!("closing the consumer: {}", fmt::chain(&e)))?;
    producer.close();

    let total = burst_entries + paced_entries;
    let ledger = queue.ledger();
    let segments = ledger.segments();
    let disk = disk_usage(dir);
    say!(
        "ringledger demo: {} entries of {} through a queue in {} ({})",
        total,
        fmt::bytes(args.size as u64),
        dir.display(),
        if args.sync { "synced" } else { "buffered" }
    );
    for (rate, entries, result) in &passes {
        let bytes = entries * args.size as u64;
        match rate {
            None => say!(
                "  burst: {} entries written as fast as the producer takes them",
                entries
            ),
            Some(rate) => say!(
                "  paced: {} entries at {}/s (what a steady source sees)",
                entries,
                fmt::count(*rate as f64)
            ),
        }
        say!(
            "    produced   {:>10}/s  {:>12}/s  in {}",
            fmt::count(fmt::rate(*entries, result.produced)),
            fmt::bytes(fmt::rate(bytes, result.produced) as u64),
            fmt::duration(result.produced)
        );
        say!(
            "    consumed   {:>10}/s  {:>12}/s  in {}",
            fmt::count(fmt::rate(*entries, result.consumed)),
            fmt::bytes(fmt::rate(bytes, result.consumed) as u64),
            fmt::duration(result.consumed)
        );
        let latencies = &result.latencies;
        say!(
            "    latency, append to consume: p50 {}  p99 {}  p999 {}  max {}",
            fmt::duration(Duration::from_nanos(latencies.value_at_quantile(0.5))),
            fmt::duration(Duration::from_nanos(latencies.value_at_quantile(0.99))),
            fmt::duration(Duration::from_nanos(latencies.value_at_quantile(0.999))),
            fmt::duration(Duration::from_nanos(latencies.max()))
        );
    }
    say!(
        "  ledger: head {}  tail {} (the cleaner deleted what the consumer was done with)  \
         length {}  segments {}  on disk {}",
        ledger.head(),
        ledger.tail(),
        ledger.len(),
        segments.len(),
        fmt::bytes(disk)
    );
    let positions = queue
        .table()
        .get(CONSUMER)
        .map_err(|e| format!("reading the consumer's positions: {}", fmt::chain(&e)))?;
    say!("  consumer {CONSUMER:?} positions {positions:?}");
    if redelivered.load(Ordering::Relaxed) > 0 {
        say!(
            "  redelivered {} entries an earlier run had not marked",
            redelivered.load(Ordering::Relaxed)
        );
    }
    if args.dir.is_some() {
        say!(
            "  kept in {}: try `ringledger inspect {}`",
            dir.display(),
            dir.display()
        );
    }
    queue.close();
    Ok(ExitCode::SUCCESS)
}

/// Bytes allocated on disk under `dir` (what `du` would say), following no links.
fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

/// One pass of the demo: `entries` entries from sequence `first`, as fast as the producer
/// takes them (`rate: None`) or paced at `rate` per second.
struct Pass<'a> {
    producer: &'a ringledger::producer::Producer,
    consumer: &'a ringledger::consumer::Consumer,
    payload: &'a Bytes,
    progress: &'a ProgressBar,
    redelivered: &'a AtomicU64,
    first: u64,
    entries: u64,
    rate: Option<u64>,
    /// The first sequence of this run: anything below was left by an earlier run.
    resumed_from: u64,
}

/// What a pass measured.
struct Measured {
    produced: Duration,
    consumed: Duration,
    /// Append-to-consume latencies, in nanoseconds.
    latencies: Histogram<u64>,
}

impl Pass<'_> {
    fn run(&self) -> Result<Measured, String> {
        let (first, end) = (self.first, self.first + self.entries);
        let start = Instant::now();
        let (produced, consumed) = std::thread::scope(|s| {
            let writer = s.spawn(|| self.produce(start));
            let consumed = self.consume(start);
            let produced = writer
                .join()
                .unwrap_or_else(|_| Err("the producer thread panicked".into()));
            (produced, consumed)
        });
        let produced = produced?;
        let (consumed, latencies) = consumed?;
        debug_assert_eq!(latencies.len(), end - first);
        Ok(Measured {
            produced,
            consumed,
            latencies,
        })
    }

    /// Writes the entries, paced if asked: each is due at `start + i / rate`; the writer
    /// sleeps until the next is due and then writes every entry that is (a few at a time when
    /// the rate is above what a sleep can resolve). Entries carry the time they were written.
    fn produce(&self, start: Instant) -> Result<Duration, String> {
        let mut last = None;
        for (i, seq) in (self.first..self.first + self.entries).enumerate() {
            if let Some(rate) = self.rate {
                let due =
                    start + Duration::from_nanos((i as u128 * 1_000_000_000 / rate as u128) as u64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            let ack = self
                .producer
                .write(Entry::new(seq, self.payload.clone()), Deadline::Forever)
                .map_err(|e| format!("producing {seq}: {}", fmt::chain(&e)))?;
            last = Some(ack);
        }
        if let Some(ack) = last {
            ack.wait(Deadline::Forever)
                .map_err(|e| format!("producing: {}", fmt::chain(&e)))?;
        }
        Ok(start.elapsed())
    }

    /// Receives and checks the entries, marking every 512th; returns the time and the
    /// latencies.
    fn consume(&self, start: Instant) -> Result<(Duration, Histogram<u64>), String> {
        let (first, end) = (self.first, self.first + self.entries);
        // 3 significant digits, 1 ns to an hour: about 180 KiB, a fixed cost per pass.
        let mut latencies = Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
            .map_err(|e| format!("latency histogram: {e}"))?;
        let mut expected = first;
        while expected < end {
            let entry = self
                .consumer
                .recv(Duration::from_secs(30))
                .map_err(|e| format!("consuming: {}", fmt::chain(&e)))?;
            if entry.sequence < self.resumed_from {
                // Left unmarked by an earlier run on this queue: delivered again, as a
                // queue must. Taken and marked, not timed.
                let _ = self
                    .consumer
                    .mark(entry.sequence, true)
                    .map_err(|e| format!("marking {}: {}", entry.sequence, fmt::chain(&e)))?;
                self.redelivered.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if entry.sequence != expected {
                return Err(format!(
                    "consumer got {} where {expected} was next",
                    entry.sequence
                ));
            }
            latencies.saturating_record(now_ns().saturating_sub(entry.timestamp).max(1));
            if entry.sequence % 512 == 0 || entry.sequence == end - 1 {
                let _ = self
                    .consumer
                    .mark(entry.sequence, true)
                    .map_err(|e| format!("marking {}: {}", entry.sequence, fmt::chain(&e)))?;
                self.progress
                    .set_position(entry.sequence - self.resumed_from + 1);
            }
            expected += 1;
        }
        Ok((start.elapsed(), latencies))
    }
}
