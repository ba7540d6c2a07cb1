//! The queue's behaviour: quasar's pinned queue test (`reference/quasar.md` §8), ported, and
//! the separation of the ledger's and the table's storage (quasar's bug 5).

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ringledger::cleaner::{Cleaner, CleanerConfig};
use ringledger::consumer::ConsumerConfig;
use ringledger::ledger::{Entry, LedgerConfig};
use ringledger::producer::ProducerConfig;
use ringledger::queue::{Queue, QueueConfig};
use ringledger::storage::sim::SimStorage;
use ringledger::wait::Deadline;

const PATIENCE: Duration = Duration::from_secs(10);

fn ledger_config() -> LedgerConfig {
    LedgerConfig::default().with_segment_size(64 * 1024)
}

/// quasar's TestQueue: limit 30, retention 20; a producer writes 50 entries (retrying while
/// the ledger is full) while a consumer marks cumulatively up to 25; the cleaner makes room.
#[test]
fn producer_consumer_and_cleaner_share_the_ledger() {
    let cleaner = CleanerConfig {
        retention: 20,
        threshold: 0,
        interval: Duration::from_millis(5),
    };
    let config = QueueConfig {
        ledger: ledger_config().with_limit(30),
        cleaner: Some(cleaner),
        ..QueueConfig::default()
    };
    let queue = Queue::open_in(
        Arc::new(SimStorage::new()),
        Arc::new(SimStorage::new()),
        config,
    )
    .unwrap();
    let consumer = queue
        .consumer(ConsumerConfig::named("foo").with_batch(10).with_window(10))
        .unwrap();
    let producer = queue
        .producer(ProducerConfig {
            batch: 5,
            timeout: Duration::from_millis(1),
            retry: 100,
            delay: Duration::from_millis(10),
            ..ProducerConfig::default()
        })
        .unwrap();

    thread::scope(|s| {
        let writing = s.spawn(|| {
            let acks: Vec<_> = (1..=50)
                .map(|seq| producer.write(Entry::new(seq, "foo"), PATIENCE).unwrap())
                .collect();
            for ack in acks {
                ack.wait(PATIENCE).unwrap();
            }
        });
        for seq in 1..=25 {
            let entry = consumer.recv(PATIENCE).unwrap();
            assert_eq!(entry.sequence, seq);
            let _ = consumer.mark(seq, true).unwrap();
        }
        // The producer can only finish once the cleaner deleted what the consumer marked.
        writing.join().unwrap();
    });
    producer.close();
    consumer.close().unwrap();
    queue.close();
    // The cleaner's last run may have come before the last mark was persisted: one more.
    Cleaner::run_once(queue.ledger(), &[queue.table().clone()], &cleaner).unwrap();

    assert_eq!(queue.ledger().len(), 25);
    assert_eq!(queue.ledger().head(), 50);
    assert_eq!(queue.table().range().unwrap(), Some((25, 25)));
    assert_eq!(queue.cleaner_errors(), 0);
}

/// quasar's bug 5: the ledger and the table live apart, so neither sees the other's files.
#[test]
fn the_ledger_and_the_table_live_in_separate_directories() {
    let dir = tempfile::tempdir().unwrap();
    let config = QueueConfig {
        ledger: ledger_config(),
        ..QueueConfig::default()
    };
    {
        let queue = Queue::open(dir.path(), config.clone()).unwrap();
        let producer = queue.producer(ProducerConfig::default()).unwrap();
        let acks: Vec<_> = (1..=3)
            .map(|seq| producer.write(Entry::new(seq, "x"), PATIENCE).unwrap())
            .collect();
        for ack in acks {
            ack.wait(PATIENCE).unwrap();
        }
        producer.close();
        let consumer = queue.consumer(ConsumerConfig::named("ledger")).unwrap();
        let entry = consumer.recv(PATIENCE).unwrap();
        consumer
            .mark(entry.sequence, false)
            .unwrap()
            .wait(PATIENCE)
            .unwrap();
        consumer.close().unwrap();
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ledger", "table"]);

    // Reopened: everything is where it was.
    let queue = Queue::open(dir.path(), config).unwrap();
    assert_eq!((queue.ledger().head(), queue.ledger().len()), (3, 3));
    assert_eq!(queue.table().get("ledger").unwrap(), [1]);
    let consumer = queue.consumer(ConsumerConfig::named("ledger")).unwrap();
    assert_eq!(consumer.recv(Deadline::Forever).unwrap().sequence, 2);
}

/// Closing the queue stops its cleaner: nothing is deleted after that.
#[test]
fn close_stops_the_cleaner() {
    let config = QueueConfig {
        ledger: ledger_config(),
        cleaner: Some(CleanerConfig {
            retention: 0,
            threshold: 0,
            interval: Duration::from_millis(1),
        }),
        ..QueueConfig::default()
    };
    let queue = Queue::open_in(
        Arc::new(SimStorage::new()),
        Arc::new(SimStorage::new()),
        config,
    )
    .unwrap();
    let entries: Vec<_> = (1..=10).map(|seq| Entry::new(seq, "x")).collect();
    queue.ledger().write(&entries).unwrap();
    // Retention 0 and no consumer: the cleaner empties the ledger.
    queue.ledger().wait_for_head(10, PATIENCE).unwrap();
    let emptied = std::time::Instant::now();
    while !queue.ledger().is_empty() {
        assert!(emptied.elapsed() < PATIENCE, "the cleaner never ran");
        thread::sleep(Duration::from_millis(1));
    }
    queue.close();
    let entries: Vec<_> = (11..=20).map(|seq| Entry::new(seq, "x")).collect();
    queue.ledger().write(&entries).unwrap();
    thread::sleep(Duration::from_millis(20));
    assert_eq!(
        queue.ledger().len(),
        10,
        "a closed queue's cleaner deleted entries"
    );
}

#[test]
fn a_queue_is_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Queue>();
}

#[test]
fn an_error_shows_each_cause_once() {
    // A file where the queue's ledger directory should be: the queue error wraps the ledger's,
    // which wraps the io error. Each level's Display is its own part only.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ledger"), b"not a directory").unwrap();
    let error = Queue::open(dir.path(), QueueConfig::default()).unwrap_err();
    let mut parts = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    assert!(parts.len() >= 2, "a cause is handed out: {parts:?}");
    for pair in parts.windows(2) {
        assert!(
            !pair[0].contains(&pair[1]),
            "{:?} repeats its cause {:?}",
            pair[0],
            pair[1]
        );
    }
    assert_eq!(ringledger::error_chain(&error), parts.join(": "));
}
