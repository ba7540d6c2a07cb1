//! A quick look at the ledger's unsynced append rate outside criterion: writes `N` million
//! 256-byte entries in batches (`RINGLEDGER_BATCH`, default 100) to a ledger in a temporary
//! directory and prints entries per second, and the writes that took over 2 ms (a roll's
//! sync behind the disk's writeback, or the kernel throttling a writer past its dirty limit).
//! `RINGLEDGER_PREFAULT=0`: without the background prefault; `RINGLEDGER_STAGE_AT_LEAST=N`:
//! `LedgerConfig::stage_at_least`; `RINGLEDGER_SYNCED=1`: synced writes.
//! `cargo run --release -p ringledger-benches --example ledger_write -- 4`
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringledger::ledger::{Entry, Ledger, LedgerConfig};

fn main() {
    let millions: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2);
    let batch: usize = std::env::var("RINGLEDGER_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir =
        tempfile::tempdir_in(std::env::var("RINGLEDGER_BENCH_DIR").unwrap_or("/var/tmp".into()))
            .expect("temp dir");
    let mut config = LedgerConfig::default();
    if std::env::var("RINGLEDGER_PREFAULT").is_ok_and(|v| v == "0") {
        config.prefault = false;
    }
    if let Ok(v) = std::env::var("RINGLEDGER_STAGE_AT_LEAST") {
        config.stage_at_least = v.parse().expect("RINGLEDGER_STAGE_AT_LEAST: a byte count");
    }
    if std::env::var("RINGLEDGER_SYNCED").is_ok_and(|v| v == "1") {
        config.durability = ringledger::storage::Durability::Synced;
    }
    let ledger = Ledger::open(dir.path(), config).expect("open");
    let payload = Bytes::from(vec![7u8; 256]);
    let mut entries: Vec<Entry> = (0..batch).map(|_| Entry::new(1, payload.clone())).collect();
    let total = millions * 1_000_000;
    let mut seq = 0;
    let start = Instant::now();
    let mut slow: Vec<Duration> = Vec::new();
    while seq < total {
        for e in entries.iter_mut() {
            seq += 1;
            e.sequence = seq;
        }
        let t = Instant::now();
        ledger.write(&entries).expect("write");
        let took = t.elapsed();
        if took > Duration::from_millis(2) {
            slow.push(took);
        }
    }
    let elapsed = start.elapsed();
    slow.sort();
    println!(
        "writes over 2 ms: {} (over 10 ms: {}), worst {:?}, sum {:?}",
        slow.len(),
        slow.iter()
            .filter(|d| **d > Duration::from_millis(10))
            .count(),
        slow.last(),
        slow.iter().sum::<Duration>()
    );
    println!(
        "{total} entries of 256 B in batches of {batch}: {:.2?}, {:.2} M entries/s, {:.2} GB/s",
        elapsed,
        total as f64 / elapsed.as_secs_f64() / 1e6,
        (total * 296) as f64 / elapsed.as_secs_f64() / 1e9
    );
}
