//! A soak of the whole queue: four writers, three persistent consumers marking in a seeded
//! random order and restarting at random moments, and a cleaner deleting behind them.
//!
//! Checked, per consumer:
//! - nothing is lost: every entry written is delivered, and its mark acknowledged, at least
//!   once (an entry skipped on a restart without having been marked never would be);
//! - nothing comes back once persisted done: a session never delivers an entry its stored
//!   positions (read when it opened) cover, nor one whose mark was acknowledged earlier;
//! - order: within a session, deliveries ascend; payloads are the entries written.
//!
//! The writing phase lasts `RINGLEDGER_SOAK_SECS` seconds (default 4), then the consumers
//! drain; the whole test stays well under 15 s in a debug build. `RINGLEDGER_SOAK_SEED`
//! picks the random choices (default: a fixed seed; the seed is printed).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringledger::cleaner::CleanerConfig;
use ringledger::consumer::{Ack, ConsumerConfig, ConsumerError};
use ringledger::ledger::{Entry, LedgerConfig};
use ringledger::producer::ProducerConfig;
use ringledger::queue::{Queue, QueueConfig};
use ringledger::table::Table;

mod support;
use support::{env_u64, Rng};

const WRITERS: usize = 4;
const CONSUMERS: usize = 3;
/// Writers pause while the ledger holds more than this.
const MAX_BACKLOG: u64 = 20_000;
/// How long the consumers may take to drain after the writers stop.
const DRAIN: Duration = Duration::from_secs(30);

/// Whether stored positions say `seq` is done.
fn covers(positions: &[u64], seq: u64) -> bool {
    match positions {
        [] => false,
        [first, rest @ ..] => seq <= *first || rest.contains(&seq),
    }
}

fn payload(seq: u64) -> Vec<u8> {
    let mut payload = seq.to_le_bytes().to_vec();
    payload.resize(8 + (seq % 64) as usize, (seq % 251) as u8);
    payload
}

/// What one consumer saw over all its sessions.
#[derive(Default)]
struct Seen {
    delivered: BTreeSet<u64>,
    /// Sequences whose marks were acknowledged (persisted).
    acknowledged: BTreeSet<u64>,
    sessions: u64,
    deliveries: u64,
}

/// Runs sessions of consumer `name` until it has seen `total` entries (once known).
fn consume(
    queue: &Queue,
    table: &Table,
    name: &str,
    seed: u64,
    total: &AtomicU64,
    writing: &AtomicBool,
) -> Seen {
    let mut rng = Rng(seed);
    let mut seen = Seen::default();
    let started = Instant::now();
    let finished = |seen: &Seen| {
        !writing.load(Ordering::Acquire)
            && seen.acknowledged.len() as u64 >= total.load(Ordering::Acquire)
    };
    loop {
        if finished(&seen) {
            return seen;
        }
        assert!(
            started.elapsed() < DRAIN * 2,
            "{name}: {} of {} entries never acknowledged",
            total.load(Ordering::Acquire) - seen.acknowledged.len() as u64,
            total.load(Ordering::Acquire)
        );
        seen.sessions += 1;
        let window = 8 + rng.below(248) as usize;
        let skip = rng.below(window.min(9) as u64) as usize;
        let timeout = Duration::from_millis(rng.below(3) * 5);
        let config = ConsumerConfig::named(name)
            .with_batch(1 + rng.below(64) as usize)
            .with_window(window)
            .with_skip(skip, timeout);
        let consumer = queue.consumer(config).unwrap();
        let stored = table.get(name).unwrap();
        // Close after this many deliveries (or when drained): sometimes soon, so that a
        // session ends before reaching the positions the one before marked out of order.
        let longest = if rng.chance(2) { 50 } else { 4000 };
        let length = 1 + rng.below(longest);
        // Sometimes mark each entry at once, else hold a few and mark them in any order.
        let most_held = if rng.chance(3) {
            0
        } else {
            1 + rng.below(window as u64 / 2) as usize
        };
        // Delivered, not marked: (sequence, delivery number in the session).
        let mut held: Vec<(u64, u64)> = Vec::new();
        let mut acks: Vec<(Ack, Vec<u64>)> = Vec::new();
        let mut last = None;
        for n in 0..length {
            let entry = match consumer.recv(Duration::from_millis(20)) {
                Ok(entry) => entry,
                Err(ConsumerError::TimedOut) => {
                    // At the head: mark what is held (always once the writers are done, so
                    // the drain ends), and end the session now and then.
                    if !writing.load(Ordering::Acquire) || rng.chance(2) {
                        for (seq, _) in held.drain(..) {
                            acks.push((consumer.mark(seq, false).unwrap(), vec![seq]));
                        }
                    }
                    if !writing.load(Ordering::Acquire) || rng.chance(4) {
                        break;
                    }
                    continue;
                }
                Err(e) => panic!("{name}: {e}"),
            };
            let seq = entry.sequence;
            assert!(last < Some(seq), "{name}: {seq} after {last:?}");
            last = Some(seq);
            assert_eq!(
                &entry.payload[..],
                &payload(seq)[..],
                "{name}: payload of {seq}"
            );
            assert!(
                !covers(&stored, seq),
                "{name}: {seq} again, stored {stored:?}"
            );
            assert!(
                !seen.acknowledged.contains(&seq),
                "{name}: {seq} again after its mark was acknowledged"
            );
            seen.delivered.insert(seq);
            seen.deliveries += 1;
            held.push((seq, n));
            // Mark in a scrambled order, but keep the oldest unmarked entry within half a
            // window: a window held open by one entry would stall this session.
            while held.len() > most_held
                || held
                    .first()
                    .is_some_and(|&(_, at)| n - at >= window as u64 / 2)
            {
                let pick = if held
                    .first()
                    .is_some_and(|&(_, at)| n - at >= window as u64 / 2)
                {
                    0
                } else {
                    rng.below(held.len() as u64) as usize
                };
                let (seq, _) = held[pick];
                let cumulative = rng.chance(8);
                let covered: Vec<u64> = if cumulative {
                    let covered = held.iter().map(|&(s, _)| s).filter(|&s| s <= seq).collect();
                    held.retain(|&(s, _)| s > seq);
                    covered
                } else {
                    held.remove(pick);
                    vec![seq]
                };
                acks.push((consumer.mark(seq, cumulative).unwrap(), covered));
            }
        }
        // Entries still held are left unmarked: the next session gets them again.
        consumer.close().unwrap();
        for (ack, covered) in acks {
            match ack.try_result() {
                Some(Ok(())) => seen.acknowledged.extend(covered),
                other => panic!("{name}: an ack after close: {other:?}"),
            }
        }
    }
}

#[test]
fn writers_consumers_and_a_cleaner_lose_nothing_and_repeat_nothing_persisted() {
    let secs = env_u64("RINGLEDGER_SOAK_SECS").unwrap_or(4);
    let seed = env_u64("RINGLEDGER_SOAK_SEED").unwrap_or(0x5EED_50A4);
    eprintln!("soak: {secs} s of writing, seed {seed:#x}");
    let dir = tempfile::tempdir().unwrap();
    let config = QueueConfig {
        ledger: LedgerConfig::default().with_segment_size(1 << 20),
        cleaner: Some(CleanerConfig {
            retention: 1000,
            threshold: 0,
            interval: Duration::from_millis(2),
        }),
        ..QueueConfig::default()
    };
    let queue = Queue::open(dir.path(), config).unwrap();
    let table = Arc::clone(queue.table());
    // Register every consumer before anything is written: from then on the cleaner keeps
    // what each has not processed.
    for i in 0..CONSUMERS {
        queue
            .consumer(ConsumerConfig::named(format!("consumer-{i}")))
            .unwrap()
            .close()
            .unwrap();
    }
    let producer = queue
        .producer(ProducerConfig {
            batch: 128,
            timeout: Duration::from_micros(200),
            ..ProducerConfig::default()
        })
        .unwrap();
    let writing = AtomicBool::new(true);
    let total = AtomicU64::new(u64::MAX);
    // Sequences are taken and queued in one step, so that they reach the ledger in order.
    let order = Mutex::new(());
    let started = Instant::now();
    let (written, seen) = thread::scope(|s| {
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|i| {
                let (queue, table, total, writing) = (&queue, &*table, &total, &writing);
                s.spawn(move || {
                    let name = format!("consumer-{i}");
                    consume(
                        queue,
                        table,
                        &name,
                        seed ^ ((i as u64 + 1) << 32),
                        total,
                        writing,
                    )
                })
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (producer, order, queue) = (&producer, &order, &queue);
                s.spawn(move || {
                    let mut written = Vec::new();
                    let mut acks = Vec::new();
                    while started.elapsed() < Duration::from_secs(secs) {
                        if queue.ledger().len() > MAX_BACKLOG {
                            thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                        for _ in 0..64 {
                            let _order = order.lock().unwrap();
                            let seq = ringledger::generate(1).unwrap();
                            let entry = Entry::new(seq, payload(seq));
                            acks.push(producer.write(entry, Duration::from_secs(10)).unwrap());
                            written.push(seq);
                        }
                        if acks.len() >= 4096 {
                            for ack in acks.drain(..) {
                                ack.wait(Duration::from_secs(10)).unwrap();
                            }
                        }
                    }
                    for ack in acks {
                        ack.wait(Duration::from_secs(10)).unwrap();
                    }
                    written
                })
            })
            .collect();
        let mut written = BTreeSet::new();
        for writer in writers {
            written.extend(writer.join().unwrap());
        }
        total.store(written.len() as u64, Ordering::Release);
        writing.store(false, Ordering::Release);
        let seen: Vec<Seen> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        (written, seen)
    });
    producer.close();
    for (i, seen) in seen.iter().enumerate() {
        eprintln!(
            "consumer-{i}: {} sessions, {} deliveries of {} entries",
            seen.sessions,
            seen.deliveries,
            written.len()
        );
        assert!(
            seen.delivered == written,
            "consumer-{i} lost or invented entries"
        );
        assert!(
            seen.acknowledged == written,
            "consumer-{i}: acknowledged marks of other entries"
        );
    }
    eprintln!(
        "soak: {} entries in {:.1} s, ledger {:?}, cleaner errors {}",
        written.len(),
        started.elapsed().as_secs_f64(),
        queue.ledger(),
        queue.cleaner_errors()
    );
    assert_eq!(
        queue.cleaner_errors(),
        0,
        "{:?}",
        queue.take_cleaner_error()
    );
    assert!(
        queue.ledger().tail() > 0,
        "the cleaner never deleted anything"
    );
}
