//! `ringledger demo`: the main job on an embedded default.
//!
//! A queue in a fresh temporary directory (or `--dir`): one producer thread writes `--entries`
//! entries of `--size` bytes through a [`Producer`](ringledger::producer::Producer), a
//! persistent consumer reads and marks them, a cleaner deletes what the consumer is done with
//! (keeping the newest tenth). A progress bar while it runs; then rates, the append-to-consume
//! latency distribution, and what is on disk.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    /// How many entries to produce and consume.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Payload size of each entry, in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Sync every producer batch (survives a power loss) instead of buffered writes.
    #[arg(long)]
    sync: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

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
            temporary = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
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
    let queue = Queue::open(dir, config).map_err(|e| format!("{}: {e}", dir.display()))?;
    let producer = queue
        .producer(ProducerConfig {
            batch: 256,
            queue: 4096,
            ..ProducerConfig::default()
        })
        .map_err(|e| e.to_string())?;
    let consumer = queue
        .consumer(
            ConsumerConfig::named(CONSUMER)
                .with_window(8192)
                .with_skip(1024, Duration::from_millis(20)),
        )
        .map_err(|e| e.to_string())?;

    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.entries)
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} entries ({per_sec})",
        )
        .map_err(|e| e.to_string())?,
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
    let start = Instant::now();
    let redelivered = std::cell::Cell::new(0u64);
    let (produced, consumed) = std::thread::scope(|s| {
        let writer = s.spawn(|| -> Result<Duration, String> {
            let mut last = None;
            for seq in first..first + args.entries {
                let ack = producer
                    .write(Entry::new(seq, payload.clone()), Deadline::Forever)
                    .map_err(|e| format!("producing {seq}: {e}"))?;
                last = Some(ack);
            }
            if let Some(ack) = last {
                ack.wait(Deadline::Forever)
                    .map_err(|e| format!("producing: {e}"))?;
            }
            Ok(start.elapsed())
        });
        let mut latencies = Vec::with_capacity(args.entries as usize);
        let mut expected = first;
        let consumed = (|| -> Result<Duration, String> {
            while expected < first + args.entries {
                let entry = consumer
                    .recv(Duration::from_secs(30))
                    .map_err(|e| format!("consuming: {e}"))?;
                if entry.sequence < first {
                    // Left unmarked by an earlier run on this queue: delivered again, as a
                    // queue must. Taken and marked, not timed.
                    consumer
                        .mark(entry.sequence, true)
                        .map_err(|e| format!("marking {}: {e}", entry.sequence))?;
                    redelivered.set(redelivered.get() + 1);
                    continue;
                }
                if entry.sequence != expected {
                    return Err(format!(
                        "consumer got {} where {expected} was next",
                        entry.sequence
                    ));
                }
                latencies.push(Duration::from_nanos(
                    now_ns().saturating_sub(entry.timestamp),
                ));
                if entry.sequence % 512 == 0 || entry.sequence == first + args.entries - 1 {
                    consumer
                        .mark(entry.sequence, true)
                        .map_err(|e| format!("marking {}: {e}", entry.sequence))?;
                    progress.set_position(entry.sequence - first + 1);
                }
                expected += 1;
            }
            Ok(start.elapsed())
        })();
        let produced = writer
            .join()
            .unwrap_or_else(|_| Err("the producer thread panicked".into()));
        (produced, consumed.map(|d| (d, latencies)))
    });
    progress.finish_and_clear();
    let produced = produced?;
    let (consumed, mut latencies) = consumed?;
    consumer
        .close()
        .map_err(|e| format!("closing the consumer: {e}"))?;
    producer.close();
    latencies.sort_unstable();

    let bytes = args.entries * args.size as u64;
    let ledger = queue.ledger();
    let segments = ledger.segments();
    let disk = disk_usage(dir);
    say!(
        "ringledger demo: {} entries of {} through a queue in {} ({})",
        args.entries,
        fmt::bytes(args.size as u64),
        dir.display(),
        if args.sync { "synced" } else { "buffered" }
    );
    say!(
        "  produced   {:>10}/s  {:>12}/s  in {}",
        fmt::count(fmt::rate(args.entries, produced)),
        fmt::bytes(fmt::rate(bytes, produced) as u64),
        fmt::duration(produced)
    );
    say!(
        "  consumed   {:>10}/s  {:>12}/s  in {}",
        fmt::count(fmt::rate(args.entries, consumed)),
        fmt::bytes(fmt::rate(bytes, consumed) as u64),
        fmt::duration(consumed)
    );
    say!(
        "  latency, append to consume: p50 {}  p99 {}  p999 {}  max {}",
        fmt::duration(fmt::quantile(&latencies, 0.5)),
        fmt::duration(fmt::quantile(&latencies, 0.99)),
        fmt::duration(fmt::quantile(&latencies, 0.999)),
        fmt::duration(latencies.last().copied().unwrap_or_default())
    );
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
        .map_err(|e| format!("reading the consumer's positions: {e}"))?;
    say!("  consumer {CONSUMER:?} positions {positions:?}");
    if redelivered.get() > 0 {
        say!(
            "  redelivered {} entries an earlier run had not marked",
            redelivered.get()
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
