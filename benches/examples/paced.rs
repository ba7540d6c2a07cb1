//! Where a paced queue's latency goes: writes one 256-byte entry every `--every` µs (default
//! 10) for `N` entries, either straight into a ledger with a reader waiting on its head
//! (`paced ledger`), or through a producer and a consumer (`paced queue`, with marks every
//! 100 entries). Prints the distribution of write-call times and of write-to-read latency.
//! `cargo run --release -p ringledger-benches --example paced -- queue 100000`
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringledger::consumer::{Consumer, ConsumerConfig};
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::producer::{Producer, ProducerConfig};
use ringledger::table::{Table, TableConfig};
use ringledger::wait::Deadline;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or("queue".into());
    let count: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    // Print the slow entries (read once, not per entry).
    let show = std::env::var("SHOW").is_ok();
    let every = Duration::from_micros(
        std::env::var("EVERY_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    );
    let mark_every: u64 = std::env::var("MARK_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let sleepy = std::env::var("SLEEP").is_ok();
    let dir =
        tempfile::tempdir_in(std::env::var("DIR").unwrap_or("/var/tmp".into())).expect("temp dir");
    let mut config = LedgerConfig::default();
    if std::env::var("RINGLEDGER_PREFAULT").is_ok_and(|v| v == "0") {
        config.prefault = false;
    }
    if let Ok(v) = std::env::var("RINGLEDGER_STAGE_AT_LEAST") {
        config.stage_at_least = v.parse().expect("RINGLEDGER_STAGE_AT_LEAST: a byte count");
    }
    let ledger = Ledger::open(dir.path().join("ledger"), config).expect("open");
    let payload = Bytes::from(vec![7u8; 256]);
    let base = Instant::now();
    let now = || base.elapsed().as_nanos() as u64;
    let mut calls = Vec::with_capacity(count as usize);
    let mut lat = thread::scope(|s| {
        let reader: thread::ScopedJoinHandle<'_, Vec<Duration>> = if mode == "ledger" {
            let ledger = ledger.clone();
            s.spawn(move || {
                let mut out = Vec::new();
                let mut seen = 0;
                while seen < count {
                    let head = ledger.wait_for_head(seen + 1, Deadline::Forever).unwrap();
                    let t = now();
                    for seq in seen + 1..=head {
                        let e = ledger.read(seq, 1).unwrap().remove(0);
                        out.push(Duration::from_nanos(t.saturating_sub(e.timestamp)));
                    }
                    seen = head;
                }
                out
            })
        } else {
            let table = Arc::new(
                Table::open(dir.path().join("table"), TableConfig::default()).expect("table"),
            );
            let consumer = Consumer::open(
                ledger.clone(),
                table,
                ConsumerConfig::named("c").with_window(4096),
            )
            .unwrap();
            s.spawn(move || {
                (0..count)
                    .map(|n| {
                        let e = consumer.recv(Deadline::Forever).unwrap();
                        if mark_every > 0 && (n + 1) % mark_every == 0 {
                            drop(consumer.mark(e.sequence, true).unwrap());
                        }
                        let l = Duration::from_nanos(now().saturating_sub(e.timestamp));
                        if l > Duration::from_micros(500) && show {
                            eprintln!(
                                "slow {} {} {}",
                                e.sequence,
                                e.timestamp / 1_000_000,
                                l.as_micros()
                            );
                        }
                        l
                    })
                    .collect()
            })
        };
        let producer = (mode != "ledger").then(|| {
            Producer::new(
                ledger.clone(),
                ProducerConfig {
                    batch: 256,
                    queue: 4096,
                    ..ProducerConfig::default()
                },
            )
            .unwrap()
        });
        for i in 0..count {
            let due = every * i as u32;
            if sleepy {
                if let Some(d) = due.checked_sub(base.elapsed()) {
                    thread::sleep(d);
                }
            }
            while base.elapsed() < due {
                std::hint::spin_loop();
            }
            let mut e = Entry::new(i + 1, payload.clone());
            e.timestamp = now();
            let t = Instant::now();
            match &producer {
                Some(p) => drop(p.write(e, Deadline::Forever).unwrap()),
                None => ledger.write(&[e]).unwrap(),
            }
            calls.push(t.elapsed());
        }
        reader.join().unwrap()
    });
    for (name, v) in [("write call", &mut calls), ("write -> read", &mut lat)] {
        v.sort_unstable();
        let q = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
        println!(
            "{mode} {name}: p50 {:?} p90 {:?} p99 {:?} p99.9 {:?} max {:?}",
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            v[v.len() - 1]
        );
    }
}
