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
    say!(
        "{:<44} {:>16} {:>16} {:>8}",
        "case",
        "ringledger",
        "baseline",
        "ratio"
    );
    if matches!(suite, Suite::Rings | Suite::All) {
        rings();
    }
    if matches!(suite, Suite::Ledger | Suite::All) {
        ledger()?;
    }
    say!("(higher is better; one run on this machine, so noisy: see benches/ for criterion)");
    Ok(ExitCode::SUCCESS)
}

fn row(case: &str, ours: f64, baseline: f64, unit: &str, baseline_name: &str) {
    say!(
        "{case:<44} {:>14}{unit} {:>14}{unit} {:>7.2}x   (baseline: {baseline_name})",
        fmt::count(ours),
        fmt::count(baseline),
        ours / baseline
    );
    let _ = std::io::stdout().flush();
}

const RING_ITEMS: u64 = 20_000_000;

fn rings() {
    // SPSC: one producer thread, one consumer thread.
    let (mut tx, mut rx) = spsc::channel::<u64>(1024);
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..RING_ITEMS {
                let mut item = i;
                while let Err(full) = tx.push(item) {
                    item = full.0;
                    std::hint::spin_loop();
                }
            }
        });
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
    let ours = fmt::rate(RING_ITEMS, start.elapsed());
    let baseline = sync_channel_rate(1);
    row(
        "SPSC ring, u64 across two threads",
        ours,
        baseline,
        "/s",
        "sync_channel(1024)",
    );

    // MPSC: two producers.
    let (tx, mut rx) = mpsc::channel::<u64>(1024);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let tx = tx.clone();
            s.spawn(move || {
                for i in 0..RING_ITEMS / 2 {
                    let mut item = i;
                    while let Err(full) = tx.push(item) {
                        item = full.0;
                        std::thread::yield_now();
                    }
                }
            });
        }
        let mut got = 0;
        while got < RING_ITEMS {
            if rx.pop().is_some() {
                got += 1;
            } else {
                std::thread::yield_now();
            }
        }
    });
    let ours = fmt::rate(RING_ITEMS, start.elapsed());
    let baseline = sync_channel_rate(2);
    row(
        "MPSC ring, u64, two producers",
        ours,
        baseline,
        "/s",
        "sync_channel(1024)",
    );
}

fn sync_channel_rate(producers: u64) -> f64 {
    let items = RING_ITEMS / 4;
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(1024);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..producers {
            let tx = tx.clone();
            s.spawn(move || {
                for i in 0..items / producers {
                    tx.send(i).ok();
                }
            });
        }
        drop(tx);
        let mut sum = 0u64;
        for v in rx.iter() {
            sum = sum.wrapping_add(v);
        }
        black_box(sum);
    });
    fmt::rate(items, start.elapsed())
}

const PAYLOAD: usize = 256;
const APPEND_ENTRIES: u64 = 2_000_000;

fn ledger() -> Result<(), String> {
    let dir =
        tempfile::tempdir().map_err(|e| format!("temporary directory: {}", fmt::chain(&e)))?;
    let ledger = Ledger::open(dir.path().join("ledger"), LedgerConfig::default())
        .map_err(|e| fmt::chain(&e))?;
    let payload = Bytes::from(vec![0x5A; PAYLOAD]);

    // Unsynced appends in writes of 100, against framing the same entries into memory.
    let mut batch: Vec<Entry> = (1..=100).map(|s| Entry::new(s, payload.clone())).collect();
    let start = Instant::now();
    for _ in 0..APPEND_ENTRIES / 100 {
        ledger.write(&batch).map_err(|e| fmt::chain(&e))?;
        for e in &mut batch {
            e.sequence += 100;
        }
    }
    let ours = fmt::rate(APPEND_ENTRIES, start.elapsed());
    let baseline = framed_copy_rate(&payload);
    row(
        "ledger append, 256 B, writes of 100",
        ours,
        baseline,
        "/s",
        "frame + CRC into a warm buffer",
    );

    // Sequential read of what was written, against copying the same bytes.
    let start = Instant::now();
    let mut bytes = 0u64;
    ledger
        .visit(0, usize::MAX, |e| bytes += e.payload.len() as u64)
        .map_err(|e| fmt::chain(&e))?;
    let ours = fmt::rate(bytes, start.elapsed());
    let baseline = memcpy_rate(bytes as usize);
    row(
        "ledger sequential read (visit)",
        ours,
        baseline,
        "B/s",
        "memcpy",
    );

    // Synced writes of 1000, against the latency of one small fdatasync.
    let synced = Ledger::open(dir.path().join("synced"), LedgerConfig::default())
        .map_err(|e| fmt::chain(&e))?;
    let mut batch: Vec<Entry> = (1..=1000).map(|s| Entry::new(s, payload.clone())).collect();
    let rounds = 50;
    let start = Instant::now();
    for _ in 0..rounds {
        synced
            .write_with(&batch, Durability::Synced)
            .map_err(|e| fmt::chain(&e))?;
        for e in &mut batch {
            e.sequence += 1000;
        }
    }
    let ours = fmt::rate(rounds * 1000, start.elapsed());
    let sync = fdatasync_latency(dir.path())?;
    let baseline = 1000.0 / sync.as_secs_f64();
    row(
        "ledger synced append, writes of 1000",
        ours,
        baseline,
        "/s",
        &format!("1000 per fdatasync ({})", fmt::duration(sync)),
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

fn fdatasync_latency(dir: &std::path::Path) -> Result<Duration, String> {
    let path = dir.join("probe");
    let file = std::fs::File::create(&path).map_err(|e| fmt::chain(&e))?;
    let block = [7u8; 4096];
    file.write_all_at(&block, 0).map_err(|e| fmt::chain(&e))?;
    file.sync_data().map_err(|e| fmt::chain(&e))?;
    let rounds = 50;
    let start = Instant::now();
    for _ in 0..rounds {
        file.write_all_at(&block, 0).map_err(|e| fmt::chain(&e))?;
        file.sync_data().map_err(|e| fmt::chain(&e))?;
    }
    Ok(start.elapsed() / rounds)
}
