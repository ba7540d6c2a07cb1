//! The library's `tracing` events: what an operator sees of recovery, poisoning and segment
//! rolls. A small collecting subscriber stands in for the application's.

use std::sync::{Arc, Mutex};

use ringledger::ledger::{Durability, Entry, Ledger, LedgerConfig, LedgerError};
use ringledger::storage::sim::SimStorage;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Every event as `LEVEL message field=value ...`.
#[derive(Default, Clone)]
struct Collect(Arc<Mutex<Vec<(Level, String)>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), line.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Collect {
    fn take(&self) -> Vec<(Level, String)> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

fn config() -> LedgerConfig {
    let mut config = LedgerConfig::default().with_segment_size(16 * 1024);
    config.manual_background = true;
    config
}

fn entries(from: u64, n: u64) -> Vec<Entry> {
    (from..from + n)
        .map(|seq| Entry::new(seq, vec![seq as u8; 200]))
        .collect()
}

#[test]
fn a_failed_sync_poisons_the_ledger_once_at_error_level() {
    let events = Collect::default();
    tracing::subscriber::with_default(events.clone(), || {
        let storage = Arc::new(SimStorage::new());
        let ledger = Ledger::open_in(storage.clone(), config()).unwrap();
        storage.fail_syncs(true);
        let error = ledger
            .write_with(&entries(1, 1), Durability::Synced)
            .unwrap_err();
        assert!(matches!(error, LedgerError::Poisoned { .. }), "{error}");
        assert!(ledger
            .write_with(&entries(2, 1), Durability::Synced)
            .is_err());
    });
    let poisoned: Vec<_> = events
        .take()
        .into_iter()
        .filter(|(_, line)| line.contains("ledger poisoned"))
        .collect();
    assert_eq!(
        poisoned.len(),
        1,
        "one event, at the first failure: {poisoned:?}"
    );
    assert_eq!(poisoned[0].0, Level::ERROR);
    assert!(poisoned[0].1.contains("reason="), "{poisoned:?}");
}

#[test]
fn rolls_and_recovery_cuts_are_reported() {
    let events = Collect::default();
    let mut cuts_seen = 0;
    tracing::subscriber::with_default(events.clone(), || {
        for seed in 0..40 {
            let storage = Arc::new(SimStorage::new());
            let ledger = Ledger::open_in(storage.clone(), config()).unwrap();
            // About five segments: at least one roll.
            for from in (1..300).step_by(20) {
                ledger
                    .write_with(&entries(from, 20), Durability::Synced)
                    .unwrap();
            }
            for from in (301..350).step_by(10) {
                ledger.write(&entries(from, 10)).unwrap();
            }
            drop(ledger);
            let rolls = events
                .take()
                .iter()
                .filter(|(level, line)| *level == Level::DEBUG && line.contains("segment rolled"))
                .count();
            assert!(rolls >= 2, "seed {seed}: {rolls} roll events");

            let crashed = Arc::new(storage.crash(seed));
            let reopened = Ledger::open_in(crashed, config()).unwrap();
            let report = reopened.recovery().clone();
            let cut_events = events
                .take()
                .into_iter()
                .filter(|(_, line)| line.contains("cut"))
                .count();
            assert_eq!(cut_events, report.cut.len(), "seed {seed}: {report:?}");
            cuts_seen += report.cut.len();
        }
    });
    assert!(cuts_seen > 0, "no seed tore the unsynced tail");
}
