//! The consumer's behaviour: quasar's pinned consumer tests (`reference/quasar.md` §8), ported,
//! and what the Rust shape adds (deadlines, close, errors, several receiving threads).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringledger::consumer::{Consumer, ConsumerConfig, ConsumerError};
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::storage::sim::SimStorage;
use ringledger::storage::Durability;
use ringledger::table::{Table, TableConfig};
use ringledger::wait::Deadline;

/// Long enough never to pass in a working test; short enough to fail a hung one.
const PATIENCE: Duration = Duration::from_secs(10);

fn ledger() -> Ledger {
    let config = LedgerConfig::default().with_segment_size(64 * 1024);
    Ledger::open_in(Arc::new(SimStorage::new()), config).unwrap()
}

fn table() -> Arc<Table> {
    Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default()).unwrap())
}

fn write(ledger: &Ledger, seqs: impl IntoIterator<Item = u64>) {
    let entries: Vec<Entry> = seqs.into_iter().map(|s| Entry::new(s, "foo")).collect();
    ledger.write(&entries).unwrap();
}

fn recv(consumer: &Consumer) -> Entry {
    consumer.recv(PATIENCE).unwrap()
}

/// Receives `seqs` in order, marking and waiting for each mark.
fn consume(consumer: &Consumer, seqs: impl IntoIterator<Item = u64>) {
    for seq in seqs {
        let entry = recv(consumer);
        assert_eq!(entry.sequence, seq);
        assert_eq!(&entry.payload[..], b"foo");
        consumer.mark(seq, false).unwrap().wait(PATIENCE).unwrap();
    }
}

fn named(batch: usize, window: usize) -> ConsumerConfig {
    ConsumerConfig::named("foo")
        .with_batch(batch)
        .with_window(window)
}

/// quasar's TestConsumer and TestConsumerWindow: marks survive a restart.
#[test]
fn marks_persist_and_a_restart_resumes_after_them() {
    for (batch, window) in [(10, 1024), (5, 10), (1, 1)] {
        let (ledger, table) = (ledger(), table());
        write(&ledger, 1..=100);
        let consumer = Consumer::open(ledger.clone(), table.clone(), named(batch, window)).unwrap();
        consume(&consumer, 1..=50);
        consumer.close().unwrap();
        assert_eq!(table.get("foo").unwrap(), [50]);

        let consumer = Consumer::open(ledger.clone(), table.clone(), named(batch, window)).unwrap();
        consume(&consumer, 51..=100);
        consumer.close().unwrap();
        assert_eq!(
            table.get("foo").unwrap(),
            [100],
            "batch {batch} window {window}"
        );
    }
}

/// quasar's TestConsumerCumulativeMarks.
#[test]
fn cumulative_marks_cover_everything_below() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=100);
    let consumer = Consumer::open(ledger, table.clone(), named(10, 20)).unwrap();
    for seq in 1..=100 {
        assert_eq!(recv(&consumer).sequence, seq);
        if seq % 10 == 0 {
            consumer.mark(seq, true).unwrap().wait(PATIENCE).unwrap();
            assert_eq!(table.get("foo").unwrap(), [seq]);
        }
    }
    consumer.close().unwrap();
    assert_eq!(table.get("foo").unwrap(), [100]);
}

/// quasar's TestConsumerMissedMark: one unmarked entry fills the window, and the deadline
/// stops the consumer.
#[test]
fn a_missed_mark_deadlocks_the_window() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=100);
    let config = named(10, 20).with_deadline(Duration::from_millis(100));
    let consumer = Consumer::open(ledger, table.clone(), config).unwrap();
    let mut received = Vec::new();
    let error = loop {
        match consumer.recv(PATIENCE) {
            Ok(entry) => {
                if entry.sequence <= 5 {
                    let _ = consumer.mark(entry.sequence, false).unwrap();
                }
                received.push(entry.sequence);
            }
            Err(error) => break error,
        }
    };
    assert!(
        matches!(error, ConsumerError::Deadlock { window: 20, .. }),
        "{error:?}"
    );
    // 6 is never marked: the window holds 6..=25.
    assert_eq!(received, (1..=25).collect::<Vec<_>>());
    assert!(matches!(
        consumer.mark(6, false),
        Err(ConsumerError::Deadlock { .. })
    ));
    consumer.close().unwrap();
    assert_eq!(table.get("foo").unwrap(), [5]);
}

/// quasar's TestConsumerTemporary: a temporary consumer persists nothing.
#[test]
fn a_temporary_consumer_persists_nothing() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=100);
    let config = ConsumerConfig::temporary().with_batch(10).with_window(1);
    let consumer = Consumer::open(ledger.clone(), table.clone(), config.clone()).unwrap();
    for seq in 1..=50 {
        assert_eq!(recv(&consumer).sequence, seq);
        // No window: nothing is held, marks are acknowledged at once, any sequence goes.
        let ack = consumer.mark(seq + 1000, false).unwrap();
        assert!(ack.is_done());
    }
    consumer.close().unwrap();

    let consumer = Consumer::open(ledger, table.clone(), config.with_start(51)).unwrap();
    for seq in 51..=100 {
        assert_eq!(recv(&consumer).sequence, seq);
    }
    consumer.close().unwrap();
    assert!(table.all().unwrap().is_empty());
}

/// quasar's TestConsumerUnorderedMarks: five threads share a consumer and mark in any order.
#[test]
fn threads_sharing_a_consumer_mark_in_any_order() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=100);
    let consumer = Consumer::open(ledger, table.clone(), named(5, 10)).unwrap();
    let seen = Mutex::new(Vec::new());
    let jitter = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    thread::scope(|s| {
        for _ in 0..5 {
            s.spawn(|| loop {
                let entry = match consumer.recv(Duration::from_millis(200)) {
                    Ok(entry) => entry,
                    Err(ConsumerError::TimedOut) => return,
                    Err(e) => panic!("{e:?}"),
                };
                // Finish in a scrambled order.
                let r = jitter.fetch_add(0x6A09_E667_F3BC_C909, Ordering::Relaxed);
                thread::sleep(Duration::from_micros(r % 2000));
                consumer
                    .mark(entry.sequence, false)
                    .unwrap()
                    .wait(PATIENCE)
                    .unwrap();
                seen.lock().unwrap().push(entry.sequence);
            });
        }
    });
    let mut seen = seen.into_inner().unwrap();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=100).collect::<Vec<_>>(),
        "each entry exactly once"
    );
    consumer.close().unwrap();
    assert_eq!(table.get("foo").unwrap(), [100]);
}

/// quasar's TestConsumerSlowLedger: entries arriving one by one.
#[test]
fn a_consumer_follows_a_slow_writer() {
    let (ledger, table) = (ledger(), table());
    let consumer = Consumer::open(ledger.clone(), table.clone(), named(5, 10)).unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            for seq in 1..=100 {
                thread::sleep(Duration::from_micros(seq * 37 % 1000));
                write(&ledger, [seq]);
            }
        });
        consume(&consumer, 1..=100);
    });
    consumer.close().unwrap();
    assert_eq!(table.get("foo").unwrap(), [100]);
}

/// quasar's TestConsumerSkipMark: two marks deferred, the third persists all three, close
/// persists the fourth.
#[test]
fn skip_defers_marks_until_the_next_one_or_close() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=100);
    let config = named(5, 10).with_skip(2, Duration::ZERO);
    let consumer = Consumer::open(ledger, table.clone(), config).unwrap();
    let mut acks = Vec::new();
    for seq in 1..=2 {
        assert_eq!(recv(&consumer).sequence, seq);
        acks.push(consumer.mark(seq, false).unwrap());
        assert_eq!(table.get("foo").unwrap(), [0]);
        assert!(!acks[0].is_done());
    }
    assert_eq!(recv(&consumer).sequence, 3);
    consumer.mark(3, false).unwrap().wait(PATIENCE).unwrap();
    assert_eq!(table.get("foo").unwrap(), [3]);
    for ack in &acks {
        assert_eq!(ack.try_result().unwrap().ok(), Some(()));
    }
    assert_eq!(recv(&consumer).sequence, 4);
    let ack = consumer.mark(4, false).unwrap();
    assert_eq!(table.get("foo").unwrap(), [3]);
    consumer.close().unwrap();
    assert_eq!(ack.try_result().unwrap().ok(), Some(()));
    assert_eq!(table.get("foo").unwrap(), [4]);
}

/// quasar's "skip 5, timeout 50 ms": deferred marks are persisted when the timeout fires.
#[test]
fn deferred_marks_are_persisted_after_the_timeout() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=100);
    let timeout = Duration::from_millis(50);
    let config = named(5, 10).with_skip(5, timeout);
    let consumer = Consumer::open(ledger, table.clone(), config).unwrap();
    let start = Instant::now();
    recv(&consumer);
    let first = consumer.mark(1, false).unwrap();
    recv(&consumer);
    let second = consumer.mark(2, false).unwrap();
    let early = table.get("foo").unwrap();
    if start.elapsed() < timeout {
        assert_eq!(early, [0]);
    }
    second.wait(PATIENCE).unwrap();
    assert!(start.elapsed() >= timeout);
    assert!(first.is_done());
    assert_eq!(table.get("foo").unwrap(), [2]);
    consumer.close().unwrap();
}

/// quasar's TestConsumerUnblock: a consumer whose position is the head waits for the next
/// write.
#[test]
fn a_consumer_at_the_head_wakes_on_the_next_write() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, [1]);
    table.set("foo", &[1]).unwrap();
    let consumer = Consumer::open(ledger.clone(), table, named(1, 10)).unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            write(&ledger, [2]);
        });
        assert_eq!(recv(&consumer).sequence, 2);
    });
}

/// quasar's TestConsumerResumeOutOfRange: a cleaner deleted past the stored position.
#[test]
fn a_restart_after_a_delete_resumes_at_the_first_entry_left() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=100);
    let consumer = Consumer::open(ledger.clone(), table.clone(), named(10, 1024)).unwrap();
    consume(&consumer, 1..=50);
    consumer.close().unwrap();
    assert_eq!(table.get("foo").unwrap(), [50]);

    ledger.delete(60).unwrap();
    let consumer = Consumer::open(ledger, table.clone(), named(10, 1024)).unwrap();
    consume(&consumer, 61..=90);
    consumer.close().unwrap();
    assert_eq!(table.get("foo").unwrap(), [90]);
}

/// quasar's TestConsumerInvalidSequence: a bad mark is refused and the consumer carries on.
#[test]
fn a_mark_of_an_unknown_sequence_is_refused_and_the_consumer_carries_on() {
    let (ledger, table) = (ledger(), table());
    let consumer = Consumer::open(ledger.clone(), table.clone(), named(1, 10)).unwrap();
    write(&ledger, [1]);
    assert!(matches!(
        consumer.mark(2, false),
        Err(ConsumerError::InvalidSequence { sequence: 2 })
    ));
    assert!(matches!(
        consumer.mark(1, false),
        Err(ConsumerError::InvalidSequence { sequence: 1 })
    ));
    consume(&consumer, [1]);
    // Compacted now: marking it again is refused too.
    assert!(matches!(
        consumer.mark(1, false),
        Err(ConsumerError::InvalidSequence { .. })
    ));
    consumer.close().unwrap();
    assert_eq!(table.get("foo").unwrap(), [1]);
}

/// quasar's bug 4, fixed: `start` is inclusive on the first run and on a restart without marks.
#[test]
fn start_is_inclusive_on_the_first_run_and_on_a_restart_without_marks() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=10);
    let config = named(10, 100).with_start(5);
    let consumer = Consumer::open(ledger.clone(), table.clone(), config.clone()).unwrap();
    assert_eq!(table.get("foo").unwrap(), [4]);
    assert_eq!(recv(&consumer).sequence, 5);
    consumer.close().unwrap();
    let consumer = Consumer::open(ledger, table.clone(), config.with_start(8)).unwrap();
    assert_eq!(
        recv(&consumer).sequence,
        5,
        "the stored position wins over start"
    );
    consumer.close().unwrap();
    assert_eq!(table.get("foo").unwrap(), [4]);
}

/// quasar's recovery example: stored [2,4,5,7] resumes with 3 and 6.
#[test]
fn marks_made_out_of_order_are_skipped_after_a_restart() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=8);
    table.set("foo", &[2, 4, 5, 7]).unwrap();
    let consumer = Consumer::open(ledger, table.clone(), named(10, 100)).unwrap();
    let got: Vec<u64> = (0..3).map(|_| recv(&consumer).sequence).collect();
    assert_eq!(got, [3, 6, 8]);
    consumer.mark(3, false).unwrap().wait(PATIENCE).unwrap();
    assert_eq!(table.get("foo").unwrap(), [5, 7]);
    consumer.mark(8, false).unwrap().wait(PATIENCE).unwrap();
    assert_eq!(table.get("foo").unwrap(), [5, 7, 8]);
    consumer.mark(6, false).unwrap().wait(PATIENCE).unwrap();
    assert_eq!(table.get("foo").unwrap(), [8]);
    consumer.close().unwrap();
}

/// A failed table write fails the marks it carried, stops the consumer, and `recv`, `mark`
/// and `close` report it.
#[test]
fn a_failed_persist_fails_the_acks_and_stops_the_consumer() {
    let ledger = ledger();
    write(&ledger, 1..=10);
    let storage = SimStorage::new();
    let config = TableConfig {
        durability: Durability::Synced,
        ..TableConfig::default()
    };
    let table = Arc::new(Table::open_in(Arc::new(storage.clone()), config).unwrap());
    let consumer = Consumer::open(ledger, table.clone(), named(10, 100)).unwrap();
    consume(&consumer, 1..=2);
    storage.fail_syncs(true);
    assert_eq!(recv(&consumer).sequence, 3);
    let ack = consumer.mark(3, false).unwrap();
    assert!(matches!(ack.wait(PATIENCE), Err(ConsumerError::Table(_))));
    assert!(matches!(
        consumer.recv(PATIENCE),
        Err(ConsumerError::Table(_))
    ));
    assert!(matches!(
        consumer.mark(2, false),
        Err(ConsumerError::Table(_))
    ));
    assert!(matches!(consumer.close(), Err(ConsumerError::Table(_))));
    storage.fail_syncs(false);
}

/// `recv` at the head times out and the consumer carries on; `close` from another thread
/// ends a `recv` waiting forever, and the iterator with it.
#[test]
fn recv_deadlines_and_close() {
    let (ledger, table) = (ledger(), table());
    let consumer = Consumer::open(ledger.clone(), table, named(10, 100)).unwrap();
    let start = Instant::now();
    assert!(matches!(
        consumer.recv(Duration::from_millis(30)),
        Err(ConsumerError::TimedOut)
    ));
    assert!(start.elapsed() >= Duration::from_millis(30));
    write(&ledger, [1, 2]);
    let (sent, received) = std::sync::mpsc::channel();
    let consumer = &consumer;
    thread::scope(|s| {
        let iterating = s.spawn(move || {
            for entry in consumer {
                sent.send(entry.unwrap().sequence).unwrap();
            }
        });
        assert_eq!(received.recv().unwrap(), 1);
        assert_eq!(received.recv().unwrap(), 2);
        consumer.close().unwrap();
        iterating.join().unwrap();
    });
    assert!(received.try_recv().is_err(), "the iterator ended");
    assert!(matches!(
        consumer.recv(Deadline::Forever),
        Err(ConsumerError::Closed)
    ));
    assert!(matches!(
        consumer.mark(1, false),
        Err(ConsumerError::Closed)
    ));
}

/// A mark made before close is persisted by close, and its ack resolves.
#[test]
fn close_persists_deferred_marks_and_resolves_their_acks() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=5);
    let config = named(10, 100).with_skip(50, Duration::from_secs(3600));
    let consumer = Consumer::open(ledger, table.clone(), config).unwrap();
    let acks: Vec<_> = (1..=5)
        .map(|seq| {
            assert_eq!(recv(&consumer).sequence, seq);
            consumer.mark(seq, false).unwrap()
        })
        .collect();
    assert!(acks.iter().all(|a| !a.is_done()));
    drop(consumer);
    assert!(acks.iter().all(|a| a.try_result().unwrap().is_ok()));
    assert_eq!(table.get("foo").unwrap(), [5]);
}

/// The deferred marks are all that can free a full window: a full window flushes them.
#[test]
fn a_full_window_flushes_deferred_marks() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=20);
    let config = named(10, 4).with_skip(3, Duration::ZERO);
    let consumer = Consumer::open(ledger, table.clone(), config).unwrap();
    for seq in 1..=20 {
        assert_eq!(recv(&consumer).sequence, seq);
        let _ = consumer.mark(seq, false).unwrap();
    }
    consumer.close().unwrap();
    assert_eq!(table.get("foo").unwrap(), [20]);
}

/// A consumer waiting past a head whose entries were all deleted sleeps instead of spinning
/// (quasar's bug 3).
#[cfg(target_os = "linux")]
#[test]
fn a_consumer_waiting_over_deleted_entries_does_not_spin() {
    let (ledger, table) = (ledger(), table());
    write(&ledger, 1..=100);
    ledger.delete(100).unwrap();
    table.set("foo", &[50]).unwrap();
    let consumer = Consumer::open(ledger, table, named(10, 100)).unwrap();
    let cpu = thread_cpu_time();
    let wait = Duration::from_millis(200);
    assert!(matches!(consumer.recv(wait), Err(ConsumerError::TimedOut)));
    let used = thread_cpu_time() - cpu;
    assert!(used < wait / 4, "{used:?} of CPU in a {wait:?} wait");
}

#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn bad_configurations_are_refused() {
    let (ledger, table) = (ledger(), table());
    for config in [
        named(0, 10),
        named(10, 0),
        named(10, 10).with_skip(10, Duration::ZERO),
        ConsumerConfig::named(""),
    ] {
        let opened = Consumer::open(ledger.clone(), table.clone(), config.clone());
        assert!(
            matches!(opened, Err(ConsumerError::Config(_))),
            "{config:?}"
        );
    }
}

#[test]
fn consumers_and_acks_are_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Consumer>();
    send_sync::<ringledger::consumer::Ack>();
    send_sync::<ConsumerError>();
}

/// `recv_batch` takes what is read ahead in one go, in order, and respects the window.
#[test]
fn recv_batch_takes_what_is_ready_within_the_window() {
    let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default()).unwrap();
    let table =
        Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default()).unwrap());
    let entries: Vec<Entry> = (1..=50).map(|s| Entry::new(s, "e")).collect();
    ledger.write(&entries).unwrap();
    let consumer =
        Consumer::open(ledger, table, ConsumerConfig::named("b").with_window(16)).unwrap();
    let mut out = Vec::new();
    let n = consumer
        .recv_batch(100, Duration::from_secs(5), &mut out)
        .unwrap();
    assert!((1..=16).contains(&n), "{n}");
    assert_eq!(
        out.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=n as u64).collect::<Vec<_>>()
    );
    // The window is full until marks free it.
    assert!(matches!(
        consumer.recv_batch(100, Duration::from_millis(20), &mut out),
        Err(ConsumerError::TimedOut)
    ));
    let _ = consumer.mark(n as u64, true).unwrap();
    let mut all = out.len();
    while all < 50 {
        let before = out.len();
        consumer
            .recv_batch(7, Duration::from_secs(5), &mut out)
            .unwrap();
        assert!(out.len() - before <= 7);
        all = out.len();
        let _ = consumer.mark(out[all - 1].sequence, true).unwrap();
    }
    assert_eq!(
        out.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<_>>()
    );
}
