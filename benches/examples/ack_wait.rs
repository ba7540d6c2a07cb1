//! A consumer that waits for every mark: `recv`, `mark`, then the ack's `wait`, one entry at a
//! time, over a ledger and a table in a temporary directory on disk (64-byte entries, all
//! written first). Prints the time per round: a receive, a persisted mark and the hand-off to
//! the committer and back. `cargo run --release -p ringledger-benches --example ack_wait --
//! 20000`; `RELAXED=1` sets `ConsumerConfig::relaxed_acks` (a committer that waits for a
//! core instead of preempting). Run it next to CPU hogs (`yes > /dev/null`, one per core) to
//! see what that costs.
use std::sync::Arc;
use std::time::Instant;

use ringledger::consumer::{Consumer, ConsumerConfig};
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::table::{Table, TableConfig};
use ringledger::wait::Deadline;
use ringledger_benches::setup::scratch_dir;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000)
        .max(1);
    let dir = scratch_dir();
    let ledger = Ledger::open(dir.path().join("ledger"), LedgerConfig::default()).expect("ledger");
    let table = Table::open(dir.path().join("table"), TableConfig::default()).expect("table");
    let entries: Vec<Entry> = (1..=n).map(|s| Entry::new(s, vec![1u8; 64])).collect();
    ledger.write(&entries).expect("write");
    let relaxed = std::env::var_os("RELAXED").is_some();
    let config = ConsumerConfig::named("ack_wait").with_relaxed_acks(relaxed);
    let consumer = Consumer::open(ledger, Arc::new(table), config).expect("consumer");
    let mut rounds = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for _ in 0..n {
        let round = Instant::now();
        let entry = consumer.recv(Deadline::Forever).expect("recv");
        consumer
            .mark(entry.sequence, true)
            .expect("mark")
            .wait(Deadline::Forever)
            .expect("ack");
        rounds.push(round.elapsed());
    }
    let elapsed = start.elapsed();
    rounds.sort_unstable();
    let at = |q: f64| rounds[((rounds.len() - 1) as f64 * q) as usize];
    println!(
        "{n} rounds of recv + mark + wait for the ack{}: {:.2} µs each on average, p50 {:?}, p99 {:?}, max {:?}",
        if relaxed { " (relaxed acks)" } else { "" },
        elapsed.as_secs_f64() * 1e6 / n as f64,
        at(0.5),
        at(0.99),
        at(1.0),
    );
}
