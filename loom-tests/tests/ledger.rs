//! Loom models of the ledger's publication (`ringledger::ledger`), on the real ledger over
//! `SimStorage` with the background work run by hand (no threads of its own): the head that
//! readers follow, the durable point a synced write waits for, and the delete seqlock that
//! `index` reads the length and the tail through, and the newest segment's naming that a
//! roll and a sync share (`ledger::naming`). Payload bytes live in plain memory, which
//! loom does not track; what it checks is every interleaving (and every weak-memory outcome)
//! of the atomics and locks that publish them.
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use ringledger::ledger::{Durability, Entry, Ledger, LedgerConfig};
use ringledger::storage::sim::SimStorage;

fn config(durability: Durability) -> LedgerConfig {
    let mut config = LedgerConfig::default()
        .with_segment_size(8192)
        .with_durability(durability);
    config.index_interval = 1 << 20;
    config.prefault = false;
    config.manual_background = true;
    config
}

/// A fresh buffered ledger over its own simulated storage.
fn buffered_ledger() -> Ledger {
    Ledger::open_in(Arc::new(SimStorage::new()), config(Durability::Buffered)).unwrap()
}

fn entry(seq: u64) -> Entry {
    Entry::new(seq, vec![seq as u8; 8])
}

fn check(entries: &[Entry]) {
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.sequence, i as u64 + 1, "a dense prefix");
        assert_eq!(&e.payload[..], &[e.sequence as u8; 8], "whole payloads");
    }
}

/// A reader that sees head `h` reads every entry up to `h`, whole, and nothing that is not
/// there; after the writer is done it reads everything.
#[test]
fn a_reader_reads_everything_up_to_the_head_it_saw() {
    loom::model(|| {
        let ledger = buffered_ledger();
        let writer = {
            let ledger = ledger.clone();
            thread::spawn(move || {
                ledger.write(&[entry(1)]).unwrap();
                ledger.write(&[entry(2)]).unwrap();
            })
        };
        let head = ledger.head();
        let read = ledger.read(0, usize::MAX).unwrap();
        assert!(
            read.len() as u64 >= head,
            "head {head}, read {}",
            read.len()
        );
        check(&read);
        let len = ledger.len();
        assert!(len <= 2);
        writer.join().unwrap();
        let read = ledger.read(0, usize::MAX).unwrap();
        assert_eq!(read.len(), 2);
        check(&read);
    });
}

/// The head never runs ahead of durability for synced writes: a reader that sees head `h`
/// finds entries `1..=h` in what a power loss would leave at that moment.
#[test]
fn a_synced_entry_is_durable_before_a_reader_sees_it() {
    loom::model(|| {
        let storage = SimStorage::new();
        let ledger =
            Ledger::open_in(Arc::new(storage.clone()), config(Durability::Synced)).unwrap();
        let writer = {
            let ledger = ledger.clone();
            thread::spawn(move || ledger.write(&[entry(1)]).unwrap())
        };
        let head = ledger.head();
        let crashed = storage.crash(head);
        if head > 0 {
            let survivor =
                Ledger::open_in(Arc::new(crashed), config(Durability::Buffered)).unwrap();
            assert!(
                survivor.head() >= head,
                "saw {head}, durable {}",
                survivor.head()
            );
        }
        writer.join().unwrap();
        assert_eq!(ledger.head(), 1);
    });
}

/// `index` takes the length and the tail from the same side of a racing delete: the last
/// entry is the last entry whether the delete has happened or not (a torn pair would count
/// the old length from the new tail, or the reverse, and answer `None` or the entry before).
#[test]
fn index_is_consistent_with_a_racing_delete() {
    loom::model(|| {
        let ledger = buffered_ledger();
        ledger.write(&[entry(1), entry(2), entry(3)]).unwrap();
        let deleter = {
            let ledger = ledger.clone();
            thread::spawn(move || assert_eq!(ledger.delete(1).unwrap(), 1))
        };
        let last = ledger.index(-1).unwrap().map(|e| e.sequence);
        assert_eq!(last, Some(3));
        let first = ledger.index(0).unwrap().map(|e| e.sequence);
        assert!(matches!(first, Some(1 | 2)), "{first:?}");
        deleter.join().unwrap();
        assert_eq!(ledger.index(0).unwrap().map(|e| e.sequence), Some(2));
        assert_eq!((ledger.len(), ledger.tail()), (2, 1));
    });
}

/// A reader parked in `wait_for_head` is woken by the write that reaches its sequence (a lost
/// wake-up would be a deadlock loom reports), and what it then reads is there.
#[test]
fn wait_for_head_wakes_on_the_write_that_reaches_it() {
    loom::model(|| {
        let ledger = buffered_ledger();
        let writer = {
            let ledger = ledger.clone();
            thread::spawn(move || ledger.write(&[entry(1)]).unwrap())
        };
        let head = ledger
            .wait_for_head(1, ringledger::wait::Deadline::Forever)
            .unwrap();
        assert!(head >= 1);
        check(&ledger.read(0, usize::MAX).unwrap());
        assert_eq!(ledger.read(0, usize::MAX).unwrap().len(), 1);
        writer.join().unwrap();
    });
}

/// Two writers racing: each write is all or nothing and the sequences stay increasing. The
/// later sequences always land; the earlier ones only if they came first (else they are
/// refused as out of order, and nothing of them is written).
#[test]
fn racing_writers_publish_whole_writes_in_order() {
    loom::model(|| {
        let ledger = buffered_ledger();
        let later = {
            let ledger = ledger.clone();
            thread::spawn(move || ledger.write(&[entry(3), entry(4)]).is_ok())
        };
        let earlier = ledger.write(&[entry(1), entry(2)]).is_ok();
        let seen: Vec<u64> = ledger
            .read(0, usize::MAX)
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert!(later.join().unwrap(), "3, 4 follow anything");
        let all: Vec<u64> = ledger
            .read(0, usize::MAX)
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        let want: &[u64] = if earlier { &[1, 2, 3, 4] } else { &[3, 4] };
        assert_eq!(all, want);
        assert!(want.starts_with(&seen), "seen {seen:?} of {want:?}");
        assert!(seen.len() % 2 == 0, "never half a write: {seen:?}");
    });
}

/// A sync racing a writer whose writes roll to new segments. A roll names the segment before
/// it (waiting for a naming under way), a sync names the one it finds: whoever comes first
/// does it and the other waits, with the writer's lock and the naming's taken in one order
/// (loom would report a deadlock). A power loss right after the sync returns keeps the entry
/// written before it, and what it leaves opens as a dense prefix, wherever the writer is.
#[test]
fn a_sync_and_a_roll_share_the_naming() {
    // Payloads too large for two to share a segment of 8 KiB: every write rolls.
    let big = |seq: u64| Entry::new(seq, vec![seq as u8; 5000]);
    loom::model(move || {
        let storage = SimStorage::new();
        let ledger =
            Ledger::open_in(Arc::new(storage.clone()), config(Durability::Buffered)).unwrap();
        ledger.write(&[big(1)]).unwrap();
        let writer = {
            let ledger = ledger.clone();
            thread::spawn(move || {
                ledger.write(&[big(2)]).unwrap();
                ledger.write(&[big(3)]).unwrap();
            })
        };
        ledger.sync().unwrap();
        // A power loss right after the sync returned, wherever the writer is.
        for seed in 0..3 {
            let survivor =
                Ledger::open_in(Arc::new(storage.crash(seed)), config(Durability::Buffered))
                    .unwrap();
            assert!(survivor.head() >= 1, "the synced entry was lost");
            let read = survivor.read(0, usize::MAX).unwrap();
            assert_eq!(read.len() as u64, survivor.head());
            for (i, e) in read.iter().enumerate() {
                assert_eq!(e.sequence, i as u64 + 1, "a dense prefix");
                assert_eq!(&e.payload[..], &[e.sequence as u8; 5000][..]);
            }
        }
        writer.join().unwrap();
    });
}
