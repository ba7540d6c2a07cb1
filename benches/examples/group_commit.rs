//! Group commit outside criterion: `THREADS` threads (argument, default 8) write synced
//! batches of 10 entries of 256 B for two seconds; prints writes/s, entries/s and how many
//! claims lost the race. `cargo run --release -p ringledger-benches --example group_commit -- 8`
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringledger::ledger::{Entry, Ledger, LedgerConfig, LedgerError};
use ringledger::storage::Durability;

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(8);
    let dir =
        tempfile::tempdir_in(std::env::var("RINGLEDGER_BENCH_DIR").unwrap_or("/var/tmp".into()))
            .expect("temp dir");
    let config = LedgerConfig::default().with_durability(Durability::Synced);
    let ledger = Ledger::open(dir.path(), config).expect("open");
    let payload = Bytes::from(vec![7u8; 256]);
    let (next, landed, lost) = (AtomicU64::new(1), AtomicU64::new(0), AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(2);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut batch: Vec<Entry> =
                    (0..10).map(|_| Entry::new(1, payload.clone())).collect();
                while Instant::now() < until {
                    let first = next.fetch_add(10, Ordering::Relaxed);
                    for (i, e) in batch.iter_mut().enumerate() {
                        e.sequence = first + i as u64;
                    }
                    match ledger.write(&batch) {
                        Ok(()) => landed.fetch_add(1, Ordering::Relaxed),
                        Err(LedgerError::NotMonotonic { .. }) => {
                            lost.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => panic!("{e}"),
                    };
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let writes = landed.load(Ordering::Relaxed);
    println!(
        "{threads} threads: {:.0} writes/s, {:.0} entries/s, {} claims lost",
        writes as f64 / secs,
        writes as f64 * 10.0 / secs,
        lost.load(Ordering::Relaxed)
    );
}
