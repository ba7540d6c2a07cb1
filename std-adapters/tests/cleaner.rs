//! The cleaner's behaviour: quasar's pinned tests (`reference/quasar.md` §8), its rule (§6),
//! and the thread around it (errors reported, close prompt).

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringledger::cleaner::{Cleaner, CleanerConfig, CleanerError};
use ringledger::ledger::{Entry, Ledger, LedgerConfig, LedgerError};
use ringledger::storage::sim::SimStorage;
use ringledger::table::{Table, TableConfig};

mod support;
use support::eventually;

const HOUR: Duration = Duration::from_secs(3600);

fn sim_ledger(sim: &SimStorage) -> Ledger {
    let config = LedgerConfig::default().with_segment_size(64 * 1024);
    Ledger::open_in(Arc::new(sim.clone()), config).unwrap()
}

/// A ledger holding `seqs`.
fn ledger_with(seqs: impl IntoIterator<Item = u64>) -> Ledger {
    let ledger = sim_ledger(&SimStorage::new());
    write(&ledger, seqs);
    ledger
}

fn write(ledger: &Ledger, seqs: impl IntoIterator<Item = u64>) {
    let entries: Vec<Entry> = seqs.into_iter().map(|s| Entry::new(s, "event")).collect();
    ledger.write(&entries).unwrap();
}

fn table_with(positions: &[(&str, &[u64])]) -> Arc<Table> {
    let table = Table::open_in(Arc::new(SimStorage::new()), TableConfig::default()).unwrap();
    for (name, list) in positions {
        table.set(name, list).unwrap();
    }
    Arc::new(table)
}

fn config(retention: u64, threshold: u64) -> CleanerConfig {
    CleanerConfig {
        retention,
        threshold,
        interval: HOUR,
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

/// quasar: retention 0 empties the ledger.
#[test]
fn retention_zero_deletes_everything() {
    let ledger = ledger_with(1..=10);
    assert_eq!(Cleaner::run_once(&ledger, &[], &config(0, 0)).unwrap(), 10);
    assert_eq!((ledger.len(), ledger.tail(), ledger.head()), (0, 10, 10));
}

/// quasar: 10 entries, retention 5 -> 5 left.
#[test]
fn retention_keeps_the_newest_entries() {
    let ledger = ledger_with(1..=10);
    assert_eq!(Cleaner::run_once(&ledger, &[], &config(5, 0)).unwrap(), 5);
    assert_eq!(seqs(&ledger), [6, 7, 8, 9, 10]);
    // Nothing more to do at the retention.
    assert_eq!(Cleaner::run_once(&ledger, &[], &config(5, 0)).unwrap(), 0);
    assert_eq!(ledger.len(), 5);
}

/// quasar: 20 entries, retention 10, threshold 5 -> 5 left (the threshold is a maximum).
#[test]
fn the_threshold_caps_the_retention() {
    let ledger = ledger_with(1..=20);
    assert_eq!(Cleaner::run_once(&ledger, &[], &config(10, 5)).unwrap(), 15);
    assert_eq!(seqs(&ledger), [16, 17, 18, 19, 20]);
}

/// quasar: 20 entries, retention 5, threshold 15, a table at [10, 12] -> 10 left.
#[test]
fn a_table_holds_entries_a_consumer_has_not_processed() {
    let ledger = ledger_with(1..=20);
    let table = table_with(&[("billing", &[10, 12])]);
    assert_eq!(
        Cleaner::run_once(&ledger, &[table], &config(5, 15)).unwrap(),
        10
    );
    assert_eq!(ledger.len(), 10);
    assert_eq!(ledger.tail(), 10);
    assert_eq!(seqs(&ledger).first(), Some(&11));
}

/// The slowest consumer over all tables and names decides; a threshold still wins over it.
#[test]
fn the_slowest_consumer_decides_up_to_the_threshold() {
    let ledger = ledger_with(1..=20);
    let fast = table_with(&[("a", &[18])]);
    let slow = table_with(&[("b", &[15, 17]), ("c", &[7])]);
    let tables = [fast, slow];
    assert_eq!(
        Cleaner::run_once(&ledger, &tables, &config(0, 0)).unwrap(),
        7
    );
    assert_eq!(ledger.tail(), 7);
    // With a threshold of 10 the ledger keeps at most 10 entries, consumer "c" or not.
    assert_eq!(
        Cleaner::run_once(&ledger, &tables, &config(0, 10)).unwrap(),
        3
    );
    assert_eq!(seqs(&ledger), (11..=20).collect::<Vec<_>>());
}

/// A consumer that has processed nothing stores 0: it keeps everything (quasar took 0 for
/// "no minimum" and deleted unread entries).
#[test]
fn a_table_at_zero_keeps_everything() {
    let ledger = ledger_with(1..=10);
    let table = table_with(&[("new", &[0])]);
    assert_eq!(
        Cleaner::run_once(&ledger, &[table], &config(0, 0)).unwrap(),
        0
    );
    assert_eq!(ledger.len(), 10);
}

/// A table ahead of the retention does not make the cleaner delete more.
#[test]
fn a_table_ahead_of_the_retention_changes_nothing() {
    let ledger = ledger_with(1..=10);
    let table = table_with(&[("ahead", &[10])]);
    assert_eq!(
        Cleaner::run_once(&ledger, &[table], &config(4, 0)).unwrap(),
        6
    );
    assert_eq!(seqs(&ledger), [7, 8, 9, 10]);
}

/// With no more entries than the threshold, the threshold does not force anything.
#[test]
fn a_threshold_above_the_length_forces_nothing() {
    let ledger = ledger_with(1..=10);
    let table = table_with(&[("slow", &[3])]);
    assert_eq!(
        Cleaner::run_once(&ledger, &[table], &config(2, 15)).unwrap(),
        3
    );
    assert_eq!(ledger.len(), 7);
}

#[test]
fn an_empty_ledger_is_left_alone() {
    let ledger = ledger_with([]);
    assert_eq!(Cleaner::run_once(&ledger, &[], &config(0, 0)).unwrap(), 0);
    assert_eq!((ledger.len(), ledger.tail()), (0, 0));
}

/// The thread runs the rule every interval, also on entries written after it started.
#[test]
fn the_cleaner_runs_every_interval() {
    let ledger = ledger_with(1..=10);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let cleaner = {
        let errors = Arc::clone(&errors);
        let config = CleanerConfig {
            retention: 3,
            threshold: 0,
            interval: Duration::from_millis(2),
        };
        Cleaner::start(ledger.clone(), Vec::new(), config, move |e| {
            errors.lock().unwrap().push(e.to_string());
        })
    };
    eventually("the first clean", || ledger.len() == 3);
    write(&ledger, 11..=20);
    eventually("the next clean", || {
        ledger.len() == 3 && ledger.tail() == 17
    });
    cleaner.close();
    assert!(cleaner.is_closed());
    write(&ledger, 21..=30);
    thread::sleep(Duration::from_millis(20));
    assert_eq!(ledger.len(), 13, "a closed cleaner does not run");
    assert!(errors.lock().unwrap().is_empty());
}

/// A failed run goes to `on_error` and the cleaner keeps going; the next run succeeds once
/// the storage works again.
#[test]
fn errors_are_reported_and_the_cleaner_keeps_running() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim);
    write(&ledger, 1..=10);
    let table = table_with(&[("consumer", &[6])]);
    let errors: Arc<Mutex<Vec<CleanerError>>> = Arc::new(Mutex::new(Vec::new()));
    sim.fail_syncs(true); // deleting writes ledger.meta durably: that fails now
    let cleaner = {
        let errors = Arc::clone(&errors);
        let config = CleanerConfig {
            retention: 0,
            threshold: 0,
            interval: Duration::from_millis(2),
        };
        Cleaner::start(ledger.clone(), vec![table], config, move |e| {
            errors.lock().unwrap().push(e);
        })
    };
    eventually("two failed runs", || errors.lock().unwrap().len() >= 2);
    assert_eq!(ledger.len(), 10);
    sim.fail_syncs(false);
    eventually("a successful run", || ledger.len() == 4);
    cleaner.close();
    let errors = errors.lock().unwrap();
    for error in errors.iter() {
        assert!(
            matches!(error, CleanerError::Ledger(LedgerError::Io { .. })),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with("cleaning the ledger"),
            "{error}"
        );
    }
    assert_eq!(seqs(&ledger), [7, 8, 9, 10]);
}

/// Close does not wait for the interval to end.
#[test]
fn close_is_prompt() {
    let ledger = ledger_with(1..=10);
    let cleaner = Cleaner::start(ledger.clone(), Vec::new(), config(0, 0), |e| {
        panic!("unexpected error: {e}")
    });
    thread::sleep(Duration::from_millis(10));
    let start = Instant::now();
    cleaner.close();
    cleaner.close(); // idempotent
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(ledger.len(), 10, "the first run is one interval away");

    let cleaner = Cleaner::start(ledger, Vec::new(), config(0, 0), |_| {});
    let start = Instant::now();
    drop(cleaner);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_cleaner_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Cleaner>();
    fn sendable<T: Send>() {}
    sendable::<CleanerError>();
}
