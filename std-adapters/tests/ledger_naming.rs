//! The newest segment's name: a buffered ledger's roll writes the new segment's header and
//! goes on writing; the sync of that header and the rename to the segment's name come later
//! (the background, the next roll, a sync, the drop). Meanwhile the file has a temporary
//! name, and readers in other processes, open after a kill and open after a power loss must
//! all find (or rightly drop) it.
//!
//! Every ledger here runs its background jobs by hand (`manual_background`), so the test
//! decides when the name is given.

use std::sync::Arc;

use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::storage::sim::SimStorage;
use ringledger::storage::Storage;

mod support;

/// Small segments: about 25 entries each.
const SEGMENT_SIZE: usize = 16 * 1024;

fn config() -> LedgerConfig {
    let mut config = LedgerConfig::default().with_segment_size(SEGMENT_SIZE);
    config.manual_background = true;
    config
}

fn entry(seq: u64) -> Entry {
    Entry::new(seq, vec![seq as u8; 500])
}

fn open(sim: &SimStorage, config: LedgerConfig) -> Ledger {
    Ledger::open_in(Arc::new(sim.clone()), config).unwrap()
}

/// The segment files with a name, and the temporary files.
fn files(sim: &SimStorage) -> (Vec<String>, Vec<String>) {
    let names = sim.file_names();
    (
        names
            .iter()
            .filter(|n| n.ends_with(".seg"))
            .cloned()
            .collect(),
        names
            .iter()
            .filter(|n| n.ends_with(".tmp"))
            .cloned()
            .collect(),
    )
}

/// Every file of `sim` and its bytes.
fn image(sim: &SimStorage) -> Vec<(String, Vec<u8>)> {
    sim.file_names()
        .into_iter()
        .map(|n| (n.clone(), sim.contents(&n).unwrap()))
        .collect()
}

/// Writes entries one at a time from `last + 1` until the ledger has `segments` segments;
/// returns the last sequence written.
fn write_until(ledger: &Ledger, mut last: u64, segments: usize) -> u64 {
    while ledger.segments().len() < segments {
        last += 1;
        ledger.write(&[entry(last)]).unwrap();
    }
    last
}

/// Checks that `ledger` holds exactly `1..=last`, byte for byte.
fn assert_holds(ledger: &Ledger, last: u64) {
    let all = ledger.read(1, usize::MAX).unwrap();
    let seqs: Vec<u64> = all.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    for e in &all {
        assert_eq!(e.payload, entry(e.sequence).payload);
    }
}

/// A ledger whose second segment the writer rolled to and has not named: its first segment
/// named (the background ran after the first roll), the second under its temporary name.
/// Returns the ledger and the last sequence written.
fn unnamed_second(sim: &SimStorage) -> (Ledger, u64) {
    let ledger = open(sim, config());
    let last = write_until(&ledger, 0, 1);
    ledger.run_background();
    let last = write_until(&ledger, last, 2);
    let last = last + 3;
    for seq in last - 2..=last {
        ledger.write(&[entry(seq)]).unwrap();
    }
    (ledger, last)
}

#[test]
fn a_roll_does_not_sync_and_the_background_names_the_segment() {
    let sim = SimStorage::new();
    let ledger = open(&sim, config());
    ledger.write(&[entry(1)]).unwrap();
    // The first segment exists only under a temporary name, and is read all the same.
    let (named, temporary) = files(&sim);
    assert!(named.is_empty(), "{named:?}");
    assert_eq!(temporary.len(), 1, "{temporary:?}");
    assert_holds(&ledger, 1);

    let syncs = sim.syncs();
    ledger.run_background();
    assert!(sim.syncs() > syncs, "naming syncs the header first");
    let (named, _) = files(&sim);
    assert_eq!(named, [ledger.segments()[0].name.clone()]);

    // With the first segment named and a spare ready, the roll to the second syncs nothing.
    let syncs = sim.syncs();
    let last = write_until(&ledger, 1, 2);
    assert_eq!(sim.syncs(), syncs, "a roll waited for a sync");
    let (named, _) = files(&sim);
    assert_eq!(named.len(), 1, "{named:?}");
    assert_holds(&ledger, last);

    // A sync gives the name, and the directory entry is synced with it. The two segments
    // written since the last sync are synced once each (the new one by its naming).
    let (syncs, dir_syncs) = (sim.syncs(), sim.dir_syncs());
    ledger.sync().unwrap();
    assert_eq!(sim.syncs() - syncs, 2);
    assert!(sim.dir_syncs() > dir_syncs);
    let (named, _) = files(&sim);
    let expected: Vec<String> = ledger.segments().into_iter().map(|s| s.name).collect();
    assert_eq!(named, expected);
}

#[test]
fn a_name_once_given_survives_any_power_loss() {
    // Naming syncs the directory: only the newest segment can ever be found under a
    // temporary name, so open never has two to choose from.
    for seed in 0..100 {
        let sim = SimStorage::new();
        let (ledger, _) = unnamed_second(&sim);
        let first = ledger.segments()[0].name.clone();
        let crashed = sim.crash(seed);
        drop(ledger);
        assert!(
            crashed.file_names().contains(&first),
            "seed {seed}: {first} lost its name: {:?}",
            crashed.file_names()
        );
        Ledger::open_in(Arc::new(crashed), config()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

#[test]
fn a_synced_ledger_that_writes_unsynced_never_leaves_two_unnamed_segments() {
    // A synced ledger names each segment at its roll; buffered writes to it never sync.
    // Each name must be durable before the next roll, or a power loss could find two
    // segments under temporary names (open adopts one and the chain breaks). The simulated
    // disk keeps directory operations in order, so it cannot reorder two renames the way
    // some filesystems may; this checks that open copes with every prefix it does produce.
    use ringledger::ledger::Durability;
    for seed in 0..100 {
        let sim = SimStorage::new();
        let ledger = open(&sim, config().with_durability(Durability::Synced));
        let mut last = 0;
        while ledger.segments().len() < 4 {
            last += 1;
            ledger
                .write_with(&[entry(last)], Durability::Buffered)
                .unwrap();
            ledger.run_background();
        }
        let crashed = sim.crash(seed);
        drop(ledger);
        let ledger = Ledger::open_in(Arc::new(crashed), config())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_holds(&ledger, ledger.head());
    }
}

#[test]
fn the_next_roll_and_the_drop_name_a_segment_the_background_has_not() {
    let sim = SimStorage::new();
    let ledger = open(&sim, config());
    // No background run at all: each roll names the segment before it.
    let last = write_until(&ledger, 0, 3);
    let (named, _) = files(&sim);
    let segments: Vec<String> = ledger.segments().into_iter().map(|s| s.name).collect();
    assert_eq!(named, segments[..2]);
    drop(ledger);
    let (named, temporary) = files(&sim);
    assert_eq!(named, segments);
    assert!(temporary.is_empty(), "{temporary:?}");
    let ledger = open(&sim, config());
    assert!(ledger.recovery().adopted.is_empty());
    assert_holds(&ledger, last);
}

#[test]
fn open_after_a_kill_adopts_the_unnamed_segment() {
    let sim = SimStorage::new();
    let (ledger, last) = unnamed_second(&sim);
    let unnamed = ledger.segments()[1].name.clone();
    // A kill: the page cache (every byte written) survives, the background's work does not.
    let killed = sim.snapshot();
    drop(ledger);

    // A read-only open (what `ringledger verify` does) reads it where it is, changing nothing.
    let before = image(&killed);
    let reader = open(&killed, config().with_read_only(true));
    assert_eq!(reader.head(), last);
    assert_holds(&reader, last);
    assert_eq!(reader.verify().unwrap(), last);
    assert_eq!(reader.recovery().adopted, std::slice::from_ref(&unnamed));
    drop(reader);
    assert!(
        image(&killed) == before,
        "a read-only open changed the files"
    );

    let ledger = open(&killed, config());
    assert_eq!(ledger.recovery().adopted, std::slice::from_ref(&unnamed));
    assert_eq!(ledger.head(), last);
    assert_holds(&ledger, last);
    let (named, temporary) = files(&killed);
    assert_eq!(named.last(), Some(&unnamed));
    assert!(temporary.is_empty(), "{temporary:?}");
    // And the adopted segment takes the next writes.
    ledger.write(&[entry(last + 1)]).unwrap();
    drop(ledger);
    assert_holds(&open(&killed, config()), last + 1);
}

#[test]
fn after_a_power_loss_the_unnamed_segment_is_adopted_or_dropped_never_half() {
    let mut adopted = 0;
    let mut dropped = 0;
    for seed in 0..300 {
        let sim = SimStorage::new();
        let (ledger, last) = unnamed_second(&sim);
        let first_last = ledger.segments()[0].last_seq;
        ledger.sync().unwrap();
        // Synced: every entry so far survives. Then more, unsynced, into a third segment that
        // has no name yet.
        let synced = last;
        let last = write_until(&ledger, last, 3);
        let crashed = sim.crash(seed);
        drop(ledger);

        let ledger = Ledger::open_in(Arc::new(crashed), config())
            .unwrap_or_else(|e| panic!("seed {seed}: open after a power loss: {e}"));
        let head = ledger.head();
        assert!(
            (synced..=last).contains(&head),
            "seed {seed}: head {head}, synced {synced}, written {last} (first segment to {first_last})"
        );
        assert_holds(&ledger, head);
        if ledger.recovery().adopted.is_empty() {
            dropped += 1;
        } else {
            adopted += 1;
        }
    }
    // Both outcomes happen: the header on disk, or not (zeros, a torn or garbled page).
    assert!(
        adopted > 0 && dropped > 0,
        "adopted {adopted}, dropped {dropped}"
    );
}

#[test]
fn a_sync_covers_the_entries_of_the_unnamed_segment() {
    for seed in 0..100 {
        let sim = SimStorage::new();
        let (ledger, last) = unnamed_second(&sim);
        ledger.sync().unwrap();
        let crashed = sim.crash(seed);
        drop(ledger);
        let ledger = Ledger::open_in(Arc::new(crashed), config()).unwrap();
        assert_eq!(ledger.head(), last, "seed {seed}");
        assert_holds(&ledger, last);
    }
}

#[test]
fn a_reader_in_another_process_reads_the_unnamed_segment() {
    let sim = SimStorage::new();
    let (writer, last) = unnamed_second(&sim);
    let reader = open(&sim, config().with_read_only(true));
    assert_eq!(reader.head(), last);
    assert_holds(&reader, last);

    // More into the unnamed segment, then a roll to a third (which names the second).
    writer.write(&[entry(last + 1)]).unwrap();
    reader.refresh().unwrap();
    assert_holds(&reader, last + 1);
    let last = write_until(&writer, last + 1, 3);
    let last = last + 1;
    writer.write(&[entry(last)]).unwrap();
    reader.refresh().unwrap();
    assert_eq!(reader.head(), last);
    assert_holds(&reader, last);
    assert_eq!(reader.segments().len(), 3);
}

/// When the writer's naming thread renames the unnamed segment (the second), as a reader
/// sees it: the temporary name, the name, and the reader's opens of temporary files left
/// before the rename (its header check is the first, its mapping the second).
type Armed = Arc<std::sync::Mutex<Option<(String, String, usize)>>>;

/// A view of `sim` that renames as [`arm`] says.
fn renamed_underfoot(sim: &SimStorage) -> (Arc<support::Hooked>, Armed) {
    let armed: Armed = Arc::default();
    let mut hooked = support::Hooked::new(sim);
    let (renamer, inner) = (Arc::clone(&armed), sim.clone());
    hooked.before_open = Box::new(move |name| {
        if name.ends_with(".tmp") {
            let mut armed = renamer.lock().unwrap();
            if let Some((tmp, to, left)) = armed.as_mut() {
                *left -= 1;
                if *left == 0 {
                    inner.rename(tmp, to)?;
                    *armed = None;
                }
            }
        }
        Ok(())
    });
    (Arc::new(hooked), armed)
}

/// Arms the rename of `writer`'s unnamed segment before the `nth` open of a temporary file.
fn arm(armed: &Armed, sim: &SimStorage, writer: &Ledger, nth: usize) {
    let name = writer.segments()[1].name.clone();
    let tmp = files(sim)
        .1
        .into_iter()
        .find(|t| {
            sim.contents(t)
                .is_some_and(|bytes| bytes.len() > 8 && bytes[..8] != [0; 8])
        })
        .expect("the unnamed segment's file");
    *armed.lock().unwrap() = Some((tmp, name, nth));
}

#[test]
fn readers_find_the_segment_renamed_while_they_look() {
    // The rename lands before the header check (1) or before the mapping (2).
    for nth in [1, 2] {
        // A reader opening the directory.
        let sim = SimStorage::new();
        let (writer, last) = unnamed_second(&sim);
        let (storage, armed) = renamed_underfoot(&sim);
        arm(&armed, &sim, &writer, nth);
        let reader = Ledger::open_in(storage, config().with_read_only(true))
            .unwrap_or_else(|e| panic!("open, renamed before open {nth}: {e}"));
        assert_eq!(reader.head(), last);
        assert_holds(&reader, last);
        drop(reader);
        drop(writer);

        // A reader following a writer that rolls after it opened.
        let sim = SimStorage::new();
        let writer = open(&sim, config());
        let last = write_until(&writer, 0, 1);
        writer.run_background();
        let (storage, armed) = renamed_underfoot(&sim);
        let reader = Ledger::open_in(storage, config().with_read_only(true)).unwrap();
        assert_eq!(reader.head(), last);
        let last = write_until(&writer, last, 2);
        arm(&armed, &sim, &writer, nth);
        reader
            .refresh()
            .unwrap_or_else(|e| panic!("refresh, renamed before open {nth}: {e}"));
        assert_eq!(reader.head(), last);
        assert_holds(&reader, last);
    }
}
