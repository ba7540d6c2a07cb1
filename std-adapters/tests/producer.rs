//! The producer's behaviour: quasar's pinned test (`reference/quasar.md` §8) and the rules of
//! §4 (batching, timeout, filter, retry, close, backpressure), through the public API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringledger::cleaner::{Cleaner, CleanerConfig};
use ringledger::ledger::{Durability, Entry, Ledger, LedgerConfig, LedgerError};
use ringledger::producer::{Ack, BatchSink, Producer, ProducerConfig, ProducerError};
use ringledger::storage::sim::SimStorage;
use ringledger::wait::Deadline;

/// Long enough that a test never gets there unless something hangs.
const PATIENCE: Duration = Duration::from_secs(10);
/// A batch timeout that never fires during a test.
const NEVER: Duration = Duration::from_secs(3600);

fn ledger_config() -> LedgerConfig {
    LedgerConfig::default().with_segment_size(64 * 1024)
}

fn sim_ledger(sim: &SimStorage, config: LedgerConfig) -> Ledger {
    Ledger::open_in(Arc::new(sim.clone()), config).unwrap()
}

fn ledger() -> Ledger {
    sim_ledger(&SimStorage::new(), ledger_config())
}

fn entry(seq: u64) -> Entry {
    Entry::new(seq, format!("entry {seq}").into_bytes())
}

fn write_all(producer: &Producer, seqs: impl IntoIterator<Item = u64>) -> Vec<Ack> {
    seqs.into_iter()
        .map(|seq| producer.write(entry(seq), PATIENCE).unwrap())
        .collect()
}

fn results(acks: &[Ack]) -> Vec<Result<(), ProducerError>> {
    acks.iter().map(|ack| ack.wait(PATIENCE)).collect()
}

fn assert_all_ok(acks: &[Ack]) {
    for (i, result) in results(acks).into_iter().enumerate() {
        assert!(result.is_ok(), "ack {i}: {result:?}");
    }
}

fn assert_all_closed(acks: &[Ack]) {
    for (i, result) in results(acks).into_iter().enumerate() {
        assert!(
            matches!(result, Err(ProducerError::Closed)),
            "ack {i}: {result:?}"
        );
    }
}

fn seqs(ledger: &Ledger) -> Vec<u64> {
    ledger
        .read(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect()
}

/// Polls `condition` until it holds; fails the test after [`PATIENCE`].
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// A sink over a ledger that reports each batch and then waits for a go-ahead: the test
/// decides when a batch "in the ledger" finishes.
struct GatedSink {
    ledger: Ledger,
    entered: Sender<Vec<u64>>,
    go: Receiver<()>,
}

impl BatchSink for GatedSink {
    fn head(&self) -> u64 {
        self.ledger.head()
    }

    fn write_batch(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
        let _ = self
            .entered
            .send(entries.iter().map(|e| e.sequence).collect());
        let _ = self.go.recv();
        self.ledger.write(entries)
    }
}

fn gated(ledger: &Ledger) -> (GatedSink, Receiver<Vec<u64>>, Sender<()>) {
    let (entered_tx, entered) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    let sink = GatedSink {
        ledger: ledger.clone(),
        entered: entered_tx,
        go: go_rx,
    };
    (sink, entered, go)
}

/// A sink over a ledger that counts its write calls.
struct CountingSink {
    ledger: Ledger,
    calls: Arc<AtomicUsize>,
}

impl BatchSink for CountingSink {
    fn head(&self) -> u64 {
        self.ledger.head()
    }

    fn write_batch(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.ledger.write(entries)
    }
}

#[test]
fn a_producer_is_send_and_sync_and_so_is_an_ack() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Producer>();
    shareable::<Ack>();
    shareable::<ProducerError>();
}

/// quasar: write 1..10, then 1..20 with the filter on: length 20, every ack ok.
#[test]
fn the_filter_drops_entries_the_ledger_has() {
    let ledger = ledger();
    let config = ProducerConfig {
        batch: 5,
        timeout: Duration::from_millis(1),
        filter: true,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    let mut acks = write_all(&producer, 1..=10);
    acks.extend(write_all(&producer, 1..=20));
    assert_all_ok(&acks);
    assert_eq!(ledger.len(), 20);
    assert_eq!(seqs(&ledger), (1..=20).collect::<Vec<_>>());
}

/// The filter also drops duplicates within one batch, so the outcome does not depend on
/// how the entries were batched.
#[test]
fn the_filter_drops_duplicates_within_a_batch() {
    let ledger = ledger();
    let config = ProducerConfig {
        batch: 30,
        timeout: NEVER,
        filter: true,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    let mut acks = write_all(&producer, 1..=10);
    acks.extend(write_all(&producer, 1..=20)); // 30 entries: exactly one batch
    assert_all_ok(&acks);
    assert_eq!(seqs(&ledger), (1..=20).collect::<Vec<_>>());
}

#[test]
fn without_the_filter_old_sequences_fail_their_batch() {
    let ledger = ledger();
    ledger.write(&[entry(5)]).unwrap();
    let config = ProducerConfig {
        batch: 1,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    let ack = producer.write(entry(3), PATIENCE).unwrap();
    let error = ack.wait(PATIENCE).unwrap_err();
    assert!(
        matches!(
            error.ledger_error(),
            Some(LedgerError::NotMonotonic { last: 5, seq: 3 })
        ),
        "{error:?}"
    );
}

/// One ledger write per batch: one notification and, with synced writes, one sync each.
#[test]
fn a_batch_is_one_ledger_write_and_one_sync() {
    let sim = SimStorage::new();
    let mut config = ledger_config();
    config.manual_background = true;
    let ledger = sim_ledger(&sim, config);
    // The first write creates the segment (its own syncs); measure after it.
    ledger.write_with(&[entry(1)], Durability::Synced).unwrap();
    let notes = ledger.subscribe(100);
    let syncs = sim.syncs();

    let config = ProducerConfig {
        batch: 10,
        timeout: NEVER,
        durability: Some(Durability::Synced),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    let acks = write_all(&producer, 2..=31);
    assert_all_ok(&acks);

    assert_eq!(ledger.len(), 31);
    assert_eq!(notes.try_iter().collect::<Vec<_>>(), [11, 21, 31]);
    assert_eq!(sim.syncs() - syncs, 3, "one sync per batch of 10");
}

/// Entries written while the worker holds a partial batch fill that batch exactly: with no
/// timeout, a batch of 10 that holds 3 takes the next 7, and the entries after them start the
/// next batch (none is left waiting for a batch that will not fill).
#[test]
fn singles_written_while_a_batch_waits_complete_it() {
    let ledger = ledger();
    let notes = ledger.subscribe(100);
    let config = ProducerConfig {
        batch: 10,
        timeout: NEVER,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    let mut acks = write_all(&producer, 1..=3);
    // The worker has taken the three into its batch and waits for seven more.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while producer.queued() > 0 {
        assert!(
            std::time::Instant::now() < until,
            "the worker never took the entries"
        );
        std::thread::yield_now();
    }
    acks.extend(write_all(&producer, 4..=20));
    assert_all_ok(&acks);
    assert_eq!(notes.try_iter().collect::<Vec<_>>(), [10, 20]);
}

#[test]
fn the_timeout_flushes_a_partial_batch() {
    let ledger = ledger();
    let notes = ledger.subscribe(100);
    let config = ProducerConfig {
        batch: 100,
        timeout: Duration::from_millis(20),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    let start = Instant::now();
    let acks = write_all(&producer, 1..=3);
    assert_all_ok(&acks);
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(seqs(&ledger), [1, 2, 3]);
    assert_eq!(
        notes.try_iter().collect::<Vec<_>>(),
        [3],
        "one write of three"
    );
}

#[test]
fn a_zero_batch_is_a_batch_of_one() {
    let ledger = ledger();
    let notes = ledger.subscribe(100);
    let config = ProducerConfig {
        batch: 0,
        timeout: NEVER,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    assert_all_ok(&write_all(&producer, 1..=3));
    assert_eq!(notes.try_iter().collect::<Vec<_>>(), [1, 2, 3]);
}

#[test]
fn retries_without_a_delay_are_a_config_error() {
    let config = ProducerConfig {
        retry: 1,
        ..ProducerConfig::default()
    };
    let error = Producer::new(ledger(), config).unwrap_err();
    assert!(matches!(error, ProducerError::Config(_)), "{error:?}");
    assert!(error.to_string().contains("delay"), "{error}");
}

/// A batch refused with LimitReached goes in once a cleaner has made room.
#[test]
fn limit_reached_is_retried_until_a_cleaner_makes_room() {
    let ledger = sim_ledger(&SimStorage::new(), ledger_config().with_limit(5));
    ledger
        .write(&(1..=5).map(entry).collect::<Vec<_>>())
        .unwrap();
    let config = ProducerConfig {
        batch: 2,
        timeout: NEVER,
        retry: 1000,
        delay: Duration::from_millis(5),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    let acks = write_all(&producer, 6..=7);
    thread::sleep(Duration::from_millis(30));
    assert!(acks.iter().all(|ack| !ack.is_done()), "still retrying");

    let cleaner = CleanerConfig {
        retention: 3,
        threshold: 0,
        interval: NEVER,
    };
    assert_eq!(Cleaner::run_once(&ledger, &[], &cleaner).unwrap(), 2);
    assert_all_ok(&acks);
    assert_eq!(seqs(&ledger), [3, 4, 5, 6, 7]);
}

/// After `retry` retries (so `retry + 1` writes), the acks get the ledger's error.
#[test]
fn limit_reached_fails_after_the_retries() {
    let ledger = sim_ledger(&SimStorage::new(), ledger_config().with_limit(1));
    ledger.write(&[entry(1)]).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let sink = CountingSink {
        ledger: ledger.clone(),
        calls: Arc::clone(&calls),
    };
    let config = ProducerConfig {
        batch: 1,
        retry: 3,
        delay: Duration::from_millis(1),
        ..ProducerConfig::default()
    };
    let producer = Producer::with_sink(sink, config).unwrap();
    let error = producer
        .write(entry(2), PATIENCE)
        .unwrap()
        .wait(PATIENCE)
        .unwrap_err();
    assert!(
        matches!(error.ledger_error(), Some(LedgerError::LimitReached { .. })),
        "{error:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(ledger.len(), 1);
}

/// Close during a retry delay ends the delay at once: the batch gets `Closed`.
#[test]
fn close_interrupts_a_retry_delay() {
    let ledger = sim_ledger(&SimStorage::new(), ledger_config().with_limit(1));
    ledger.write(&[entry(1)]).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let sink = CountingSink {
        ledger: ledger.clone(),
        calls: Arc::clone(&calls),
    };
    let config = ProducerConfig {
        batch: 1,
        retry: 1,
        delay: NEVER,
        ..ProducerConfig::default()
    };
    let producer = Producer::with_sink(sink, config).unwrap();
    let ack = producer.write(entry(2), PATIENCE).unwrap();
    eventually("the first attempt", || calls.load(Ordering::SeqCst) == 1);
    let start = Instant::now();
    producer.close();
    assert!(start.elapsed() < PATIENCE);
    assert!(matches!(ack.try_result(), Some(Err(ProducerError::Closed))));
}

/// One out-of-order entry fails its whole batch with the ledger's error, shared by every
/// ack; the next batch is not affected.
#[test]
fn a_not_monotonic_batch_fails_every_entry() {
    let ledger = ledger();
    let config = ProducerConfig {
        batch: 3,
        timeout: NEVER,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    let bad = write_all(&producer, [5, 4, 6]);
    let good = write_all(&producer, [7, 8, 9]);
    for result in results(&bad) {
        let error = result.unwrap_err();
        assert!(
            matches!(
                error.ledger_error(),
                Some(LedgerError::NotMonotonic { last: 5, seq: 4 })
            ),
            "{error:?}"
        );
    }
    assert_all_ok(&good);
    assert_eq!(seqs(&ledger), [7, 8, 9]);
}

/// Close: the batch being built and the queued entries get `Closed`, later writes fail.
#[test]
fn close_fails_pending_entries() {
    let ledger = ledger();
    let config = ProducerConfig {
        batch: 4,
        timeout: NEVER,
        queue: 8,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    // Three in the batch being built (it waits for a fourth); then more queue up while the
    // worker may or may not have taken them.
    let acks = write_all(&producer, 1..=3);
    eventually("the worker to take the batch", || producer.queued() == 0);
    assert!(acks.iter().all(|ack| !ack.is_done()));
    producer.close();
    assert!(producer.is_closed());
    assert_all_closed(&acks);
    assert!(matches!(
        producer.write(entry(4), PATIENCE),
        Err(ProducerError::Closed)
    ));
    assert!(ledger.is_empty());
}

/// A batch already handed to the ledger gets the ledger's result; queued entries get
/// `Closed`.
#[test]
fn close_lets_a_batch_in_the_ledger_finish() {
    let ledger = ledger();
    let (sink, entered, go) = gated(&ledger);
    let config = ProducerConfig {
        batch: 1,
        queue: 4,
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::with_sink(sink, config).unwrap());
    let first = producer.write(entry(1), PATIENCE).unwrap();
    assert_eq!(entered.recv_timeout(PATIENCE).unwrap(), [1]);
    let queued = write_all(&producer, 2..=4);

    let closer = {
        let producer = Arc::clone(&producer);
        thread::spawn(move || producer.close())
    };
    eventually("the close", || producer.is_closed());
    // The close waits for the batch in the sink.
    assert!(!closer.is_finished());
    assert_all_closed(&queued);
    assert!(!first.is_done());
    go.send(()).unwrap();
    closer.join().unwrap();
    assert!(matches!(first.try_result(), Some(Ok(()))));
    assert_eq!(seqs(&ledger), [1]);
}

/// Backpressure: a write waits while the queue is full and fails at its deadline; room made
/// by the worker lets it in.
#[test]
fn a_write_waits_while_the_queue_is_full() {
    let ledger = ledger();
    let (sink, entered, go) = gated(&ledger);
    let config = ProducerConfig {
        batch: 1,
        queue: 2,
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::with_sink(sink, config).unwrap());
    let mut acks = write_all(&producer, [1]);
    assert_eq!(entered.recv_timeout(PATIENCE).unwrap(), [1]); // the worker is busy
    acks.extend(write_all(&producer, 2..=3)); // the queue is full

    let start = Instant::now();
    let timeout = Duration::from_millis(30);
    assert!(matches!(
        producer.write(entry(4), timeout),
        Err(ProducerError::Timeout)
    ));
    assert!(start.elapsed() >= timeout);
    assert!(matches!(
        producer.write(entry(4), Deadline::IMMEDIATE),
        Err(ProducerError::Timeout)
    ));

    let blocked = {
        let producer = Arc::clone(&producer);
        thread::spawn(move || producer.write(entry(4), Deadline::Forever))
    };
    thread::sleep(Duration::from_millis(20));
    assert!(!blocked.is_finished(), "the write waits for room");
    for _ in 1..=4 {
        go.send(()).unwrap();
    }
    acks.push(blocked.join().unwrap().unwrap());
    assert_all_ok(&acks);
    assert_eq!(seqs(&ledger), [1, 2, 3, 4]);
}

#[test]
fn close_wakes_a_blocked_writer() {
    let ledger = ledger();
    let (sink, entered, go) = gated(&ledger);
    let config = ProducerConfig {
        batch: 1,
        queue: 1,
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::with_sink(sink, config).unwrap());
    let first = producer.write(entry(1), PATIENCE).unwrap();
    assert_eq!(entered.recv_timeout(PATIENCE).unwrap(), [1]);
    let second = producer.write(entry(2), PATIENCE).unwrap();
    let blocked = {
        let producer = Arc::clone(&producer);
        thread::spawn(move || producer.write(entry(3), Deadline::Forever))
    };
    thread::sleep(Duration::from_millis(20));
    let closer = {
        let producer = Arc::clone(&producer);
        thread::spawn(move || producer.close())
    };
    assert!(matches!(
        blocked.join().unwrap(),
        Err(ProducerError::Closed)
    ));
    assert!(matches!(second.wait(PATIENCE), Err(ProducerError::Closed)));
    go.send(()).unwrap();
    closer.join().unwrap();
    assert!(matches!(first.try_result(), Some(Ok(()))));
}

#[test]
fn dropping_the_producer_closes_it() {
    let ledger = ledger();
    let config = ProducerConfig {
        batch: 10,
        timeout: NEVER,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    let acks = write_all(&producer, 1..=3);
    drop(producer);
    for ack in &acks {
        assert!(matches!(ack.try_result(), Some(Err(ProducerError::Closed))));
    }
}

#[test]
fn an_ack_wait_times_out_while_the_result_is_unknown() {
    let ledger = ledger();
    let config = ProducerConfig {
        batch: 10,
        timeout: NEVER,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger, config).unwrap();
    let ack = producer.write(entry(1), PATIENCE).unwrap();
    assert!(matches!(
        ack.wait(Duration::from_millis(10)),
        Err(ProducerError::Timeout)
    ));
    assert!(ack.try_result().is_none());
    producer.close();
    assert!(matches!(
        ack.wait(Deadline::Forever),
        Err(ProducerError::Closed)
    ));
}

/// A sink that panics ends the worker: its batch and the queue get `Closed`, and the
/// producer is closed for later writes.
#[test]
fn a_panicking_sink_closes_the_producer() {
    struct Panics;
    impl BatchSink for Panics {
        fn head(&self) -> u64 {
            0
        }
        fn write_batch(&mut self, _: &[Entry]) -> Result<(), LedgerError> {
            panic!("sink failure (expected by the test)");
        }
    }
    let producer = Producer::with_sink(Panics, ProducerConfig::default()).unwrap();
    let ack = producer.write(entry(1), PATIENCE).unwrap();
    assert!(matches!(ack.wait(PATIENCE), Err(ProducerError::Closed)));
    eventually("the producer to close", || producer.is_closed());
    assert!(matches!(
        producer.write(entry(2), PATIENCE),
        Err(ProducerError::Closed)
    ));
}

/// Many writers, one producer: every entry in, in fewer writes than entries.
#[test]
fn concurrent_writers_share_batches() {
    let ledger = ledger();
    let notes = ledger.subscribe(10_000);
    let config = ProducerConfig {
        batch: 32,
        timeout: Duration::from_millis(1),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ledger.clone(), config).unwrap();
    // Sequences are taken and queued under one lock, so the queue holds them in order.
    let next = Mutex::new(0u64);
    let acks = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..250 {
                    let mut next = next.lock().unwrap();
                    *next += 1;
                    let ack = producer.write(entry(*next), PATIENCE).unwrap();
                    drop(next);
                    acks.lock().unwrap().push(ack);
                }
            });
        }
    });
    assert_all_ok(&acks.into_inner().unwrap());
    assert_eq!(seqs(&ledger), (1..=1000).collect::<Vec<_>>());
    let writes = notes.try_iter().count();
    assert!(writes < 1000, "{writes} writes for 1000 entries");
}

/// `write_batch`: one ack for many entries, written in one ledger write even when larger than
/// a batch, in order with single writes around it; the filter drops its old entries and its
/// ack is `Ok` when nothing of it is new.
#[test]
fn a_batch_write_is_one_ledger_write_with_one_ack() {
    let ledger = ledger();
    let (sink, entered, go) = gated(&ledger);
    let config = ProducerConfig {
        batch: 4,
        queue: 64,
        filter: true,
        ..ProducerConfig::default()
    };
    let producer = Producer::with_sink(sink, config).unwrap();
    let first = producer.write(entry(1), Deadline::Forever).unwrap();
    let group = producer
        .write_batch((2..=11).map(entry).collect(), Deadline::Forever)
        .unwrap();
    let last = producer.write(entry(12), Deadline::Forever).unwrap();
    let mut writes = Vec::new();
    while writes.iter().map(Vec::len).sum::<usize>() < 12 {
        writes.push(entered.recv_timeout(Duration::from_secs(10)).unwrap());
        go.send(()).unwrap();
    }
    // The group is never split: it goes alone (it does not fit a batch of 4 with others).
    assert!(
        writes.contains(&(2..=11).collect::<Vec<u64>>()),
        "{writes:?}"
    );
    for ack in [&first, &group, &last] {
        ack.wait(Deadline::Forever).unwrap();
    }
    assert_eq!(seqs(&ledger), (1..=12).collect::<Vec<_>>());
    // Entries the ledger has are filtered; a group of only those is acknowledged Ok.
    let old = producer
        .write_batch((5..=8).map(entry).collect(), Deadline::Forever)
        .unwrap();
    let mixed = producer
        .write_batch((10..=14).map(entry).collect(), Deadline::Forever)
        .unwrap();
    thread::spawn(
        move || {
            while entered.recv().is_ok() && go.send(()).is_ok() {}
        },
    );
    old.wait(Deadline::Forever).unwrap();
    mixed.wait(Deadline::Forever).unwrap();
    assert_eq!(seqs(&ledger), (1..=14).collect::<Vec<_>>());
    assert!(producer
        .write_batch(Vec::new(), Deadline::Forever)
        .unwrap()
        .is_done());
    producer.close();
    assert!(matches!(
        producer.write_batch(vec![entry(20)], Deadline::Forever),
        Err(ProducerError::Closed)
    ));
}
