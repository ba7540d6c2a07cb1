//! The ledger's behaviour: quasar's pinned tests (`reference/quasar.md` §8), ported, and more.

use std::sync::Arc;
use std::time::Duration;

use ringledger::ledger::{Durability, Entry, Ledger, LedgerConfig, LedgerError};
use ringledger::storage::sim::SimStorage;
use ringledger::storage::Storage;
use ringledger::wait::{Deadline, WaitError};

mod support;
use support::sim_ledger;

fn config() -> LedgerConfig {
    LedgerConfig::default().with_segment_size(64 * 1024)
}

fn entries(seqs: impl IntoIterator<Item = u64>) -> Vec<Entry> {
    seqs.into_iter()
        .map(|s| Entry::new(s, format!("entry {s}").into_bytes()))
        .collect()
}

fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.sequence).collect()
}

#[test]
fn write_notify_read_delete() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    let notes = ledger.subscribe(10);
    ledger.write(&entries([1])).unwrap();
    assert_eq!(notes.try_recv(), Ok(1));
    ledger.write(&entries(2..=4)).unwrap();
    assert_eq!(notes.try_recv(), Ok(4));
    assert_eq!(seqs(&ledger.read(0, 10).unwrap()), [1, 2, 3, 4]);
    assert_eq!(seqs(&ledger.read(2, 10).unwrap()), [2, 3, 4]);
    assert_eq!(ledger.read(2, 10).unwrap()[0].payload, &b"entry 2"[..]);
    assert_eq!(ledger.delete(1).unwrap(), 1);
    assert_eq!((ledger.tail(), ledger.len()), (1, 3));
    assert_eq!(ledger.delete(3).unwrap(), 2);
    assert_eq!((ledger.tail(), ledger.len()), (3, 1));
    assert_eq!(seqs(&ledger.read(0, 10).unwrap()), [4]);
}

#[test]
fn delete_out_of_range() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    ledger.write(&entries(2..=5)).unwrap();
    assert_eq!(ledger.delete(1).unwrap(), 0);
    assert_eq!((ledger.len(), ledger.tail()), (4, 1));
    // Clamped to the head; nothing stored means nothing to do.
    assert_eq!(ledger.delete(100).unwrap(), 4);
    assert_eq!((ledger.len(), ledger.tail(), ledger.head()), (0, 5, 5));
    assert_eq!(ledger.delete(200).unwrap(), 0);
    assert_eq!(ledger.tail(), 5);
}

#[test]
fn index_from_both_ends() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    for i in [0, 2, -2] {
        assert!(ledger.index(i).unwrap().is_none());
    }
    ledger.write(&entries(1..=4)).unwrap();
    let at = |i| ledger.index(i).unwrap().map(|e| e.sequence);
    assert_eq!(at(0), Some(1));
    assert_eq!(at(2), Some(3));
    assert_eq!(at(-2), Some(3));
    assert_eq!(at(-1), Some(4));
    assert_eq!(at(4), None);
    assert_eq!(at(-5), None);
    ledger.delete(2).unwrap();
    assert_eq!(at(0), Some(3));
    assert_eq!(at(-2), Some(3));
    assert_eq!(at(-3), None);
}

#[test]
fn sequences_must_increase_and_nothing_is_written_otherwise() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    assert!(matches!(
        ledger.write(&entries([0])),
        Err(LedgerError::NotMonotonic { last: 0, seq: 0 })
    ));
    ledger.write(&entries([2])).unwrap();
    for bad in [vec![1], vec![2], vec![4, 3], vec![5, 6, 6]] {
        assert!(matches!(
            ledger.write(&entries(bad)),
            Err(LedgerError::NotMonotonic { .. })
        ));
    }
    assert_eq!(seqs(&ledger.read(0, 10).unwrap()), [2]);
    ledger.write(&entries([3])).unwrap();
    assert_eq!(ledger.len(), 2);
}

#[test]
fn reopen_after_deleting_everything_keeps_head_and_tail() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    ledger.write(&entries([1])).unwrap();
    ledger.delete(1).unwrap();
    drop(ledger);
    let ledger = sim_ledger(&sim, config());
    assert_eq!((ledger.len(), ledger.head(), ledger.tail()), (0, 1, 1));
    // quasar's bug 1: the tail on reopen is what was deleted, not the first entry left.
    ledger.write(&entries([2, 3])).unwrap();
    ledger.delete(2).unwrap();
    drop(ledger);
    let ledger = sim_ledger(&sim, config());
    assert_eq!((ledger.len(), ledger.head(), ledger.tail()), (1, 3, 2));
    assert!(matches!(
        ledger.write(&entries([3])),
        Err(LedgerError::NotMonotonic { last: 3, .. })
    ));
}

#[test]
fn limit_is_checked_first() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config().with_limit(3));
    assert!(matches!(
        ledger.write(&entries(1..=4)),
        Err(LedgerError::LimitReached {
            limit: 3,
            len: 0,
            adding: 4
        })
    ));
    ledger.write(&entries(1..=2)).unwrap();
    assert!(matches!(
        ledger.write(&entries(3..=4)),
        Err(LedgerError::LimitReached { .. })
    ));
    ledger.write(&entries([3])).unwrap();
    // Limit first: even a non-monotonic write reports the limit.
    assert!(matches!(
        ledger.write(&entries([1])),
        Err(LedgerError::LimitReached { .. })
    ));
    ledger.delete(1).unwrap();
    ledger.write(&entries([4])).unwrap();
}

#[test]
fn many_segments_roll_seal_and_reopen() {
    let sim = SimStorage::new();
    let payload = vec![7u8; 1000];
    {
        let ledger = sim_ledger(&sim, config());
        for s in 1..=500u64 {
            ledger
                .write(&[Entry::new(s * 2, payload.clone()).with_tag(s as u32)])
                .unwrap();
        }
        let all = ledger.read(0, 1000).unwrap();
        assert_eq!(all.len(), 500);
        assert!(
            sim.file_names()
                .iter()
                .filter(|n| n.ends_with(".seg"))
                .count()
                > 5
        );
        assert_eq!(ledger.read(501, 1).unwrap()[0].sequence, 502);
        assert_eq!(ledger.read(502, 2).unwrap()[1].tag, 252);
        ledger.sync().unwrap();
    }
    let ledger = sim_ledger(&sim, config());
    assert!(ledger.recovery().cut.is_empty(), "{:?}", ledger.recovery());
    assert_eq!((ledger.len(), ledger.head()), (500, 1000));
    let all = ledger.read(0, 1000).unwrap();
    assert_eq!(seqs(&all), (1..=500).map(|s| s * 2).collect::<Vec<_>>());
    assert_eq!(ledger.verify().unwrap(), 500);
    // Deleting removes whole segments; payloads read before stay valid.
    let held = ledger.read(2, 1).unwrap();
    let before = sim.file_names().len();
    assert_eq!(ledger.delete(800).unwrap(), 400);
    assert!(sim.file_names().len() < before);
    assert_eq!(held[0].payload, payload);
    assert_eq!(ledger.index(0).unwrap().unwrap().sequence, 802);
    drop(ledger);
    let ledger = sim_ledger(&sim, config());
    assert_eq!(
        (ledger.len(), ledger.tail(), ledger.head()),
        (100, 800, 1000)
    );
    ledger.write(&entries([1001])).unwrap();
}

#[test]
fn a_second_writer_is_locked_out() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    assert!(matches!(
        Ledger::open_in(Arc::new(sim.clone()), config()),
        Err(LedgerError::Locked)
    ));
    drop(ledger);
    sim_ledger(&sim, config());
    let dir = tempfile::tempdir().unwrap();
    let first = Ledger::open(dir.path(), config()).unwrap();
    assert!(matches!(
        Ledger::open(dir.path(), config()),
        Err(LedgerError::Locked)
    ));
    drop(first);
    Ledger::open(dir.path(), config()).unwrap();
}

#[test]
fn too_large_writes_are_rejected_whole() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    assert!(matches!(
        ledger.write(&[Entry::new(1, vec![0u8; 70_000])]),
        Err(LedgerError::TooLarge { .. })
    ));
    let batch: Vec<Entry> = (1..=100).map(|s| Entry::new(s, vec![1u8; 1000])).collect();
    assert!(matches!(
        ledger.write(&batch),
        Err(LedgerError::TooLarge { .. })
    ));
    assert_eq!(ledger.len(), 0);
    ledger.write(&batch[..50]).unwrap();
    ledger.write(&batch[50..]).unwrap();
    assert_eq!(ledger.len(), 100);
}

#[test]
fn synced_writes_share_syncs_and_a_failed_sync_poisons_without_showing_the_write() {
    let sim = SimStorage::new();
    // No background threads: their syncs (of the next file, of sealed segments) would blur
    // the count.
    let mut config = config().with_durability(Durability::Synced);
    config.manual_background = true;
    let ledger = sim_ledger(&sim, config);
    let before = sim.syncs();
    let batch: Vec<Entry> = (1..=40).map(|s| Entry::new(s, vec![1u8; 100])).collect();
    ledger.write(&batch).unwrap();
    // The new segment's header, then one sync for the whole batch.
    assert!(sim.syncs() - before <= 2, "{} syncs", sim.syncs() - before);
    let before = sim.syncs();
    ledger.write(&entries([41])).unwrap();
    assert_eq!(sim.syncs() - before, 1);
    sim.fail_syncs(true);
    assert!(matches!(
        ledger.write(&entries([42])),
        Err(LedgerError::Poisoned { .. })
    ));
    sim.fail_syncs(false);
    assert!(matches!(
        ledger.write(&entries([43])),
        Err(LedgerError::Poisoned { .. })
    ));
    assert!(ledger.poisoned().is_some());
    // Durable before visible: the write whose sync failed was never shown.
    let seqs: Vec<u64> = ledger
        .read(41, 10)
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!((seqs, ledger.head(), ledger.len()), (vec![41], 41, 41));
}

/// Group commit: while one sync is in flight (slowed down here), the synced writes of other
/// threads pile up and the next sync covers them all; every write is acknowledged, and shown
/// to readers only once durable.
#[test]
fn concurrent_synced_writers_share_syncs() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let sim = SimStorage::new();
    let mut config = config().with_durability(Durability::Synced);
    config.manual_background = true;
    let ledger = sim_ledger(&sim, config);
    ledger.write(&entries([1])).unwrap();
    sim.before_sync(Some(Box::new(|| {
        std::thread::sleep(Duration::from_millis(5))
    })));
    let before = sim.syncs();
    let next = AtomicU64::new(2);
    let (threads, writes_each) = (8, 10);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut landed = 0;
                while landed < writes_each {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    match ledger.write(&entries([seq])) {
                        Ok(()) => {
                            landed += 1;
                            // Acknowledged, so durable and visible.
                            assert!(ledger.head() >= seq);
                        }
                        // A later claim wrote first: claim again.
                        Err(LedgerError::NotMonotonic { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
    });
    sim.before_sync(None);
    let syncs = sim.syncs() - before;
    let writes = threads * writes_each;
    assert_eq!(ledger.len(), writes as u64 + 1);
    assert!(
        syncs <= writes as u64 / 3,
        "{syncs} syncs for {writes} concurrent synced writes"
    );
}

#[test]
fn head_waiters_wake_and_time_out() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    assert_eq!(
        ledger.wait_for_head(1, Duration::from_millis(10)),
        Err(WaitError::TimedOut)
    );
    std::thread::scope(|s| {
        let waiters: Vec<_> = (0..3)
            .map(|_| s.spawn(|| ledger.wait_for_head(5, Deadline::Forever)))
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        ledger.write(&entries([3])).unwrap();
        ledger.write(&entries([5])).unwrap();
        for w in waiters {
            assert_eq!(w.join().unwrap(), Ok(5));
        }
    });
}

#[test]
fn full_subscribers_are_skipped_not_waited_for() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    let notes = ledger.subscribe(1);
    ledger.write(&entries([1])).unwrap();
    ledger.write(&entries([2])).unwrap();
    ledger.write(&[]).unwrap();
    assert_eq!(notes.try_recv(), Ok(1));
    assert!(notes.try_recv().is_err());
    ledger.write(&[]).unwrap();
    assert_eq!(notes.try_recv(), Ok(2));
    drop(notes);
    ledger.write(&entries([3])).unwrap();
}

#[test]
fn readers_read_while_the_writer_appends() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    let n = 3000u64;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 1..=n {
                ledger.write(&entries([i])).unwrap();
            }
        });
        let mut next = 1;
        while next <= n {
            let got = ledger.read(next, 100).unwrap();
            for e in &got {
                assert_eq!(e.sequence, next);
                assert_eq!(e.payload, format!("entry {next}").into_bytes());
                next += 1;
            }
            if got.is_empty() {
                let _ = ledger.wait_for_head(next, Duration::from_millis(100));
            }
        }
    });
}

#[test]
fn storage_is_not_touched_by_a_failed_open() {
    let sim = SimStorage::new();
    sim.write("ledger.meta", b"garbage").unwrap();
    assert!(matches!(
        Ledger::open_in(Arc::new(sim.clone()), config()),
        Err(LedgerError::BadMeta { .. })
    ));
}

#[test]
fn a_read_only_open_changes_nothing_and_sees_what_recovery_would_keep() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    let big = vec![3u8; 900];
    for s in 1..=300u64 {
        ledger.write(&[Entry::new(s, big.clone())]).unwrap();
    }
    drop(ledger);
    let before: Vec<_> = sim
        .file_names()
        .into_iter()
        // The writer's page for live readers: each writer's open starts a new generation.
        .filter(|n| n != "ledger.live")
        .map(|n| (n.clone(), sim.contents(&n)))
        .collect();
    let ro = Ledger::open_in(Arc::new(sim.clone()), config().with_read_only(true)).unwrap();
    assert_eq!(ro.len(), 300);
    assert_eq!(seqs(&ro.read(298, 10).unwrap()), [298, 299, 300]);
    assert_eq!(ro.read(300, 1).unwrap()[0].payload, big);
    assert!(ro.segments().len() > 2);
    assert!(ro.segments().iter().rev().skip(1).all(|s| s.sealed));
    assert!(matches!(
        ro.write(&entries([301])),
        Err(LedgerError::ReadOnly)
    ));
    assert!(matches!(ro.delete(5), Err(LedgerError::ReadOnly)));
    // A writer can open alongside (no lock taken), and nothing changed on disk.
    let writer = sim_ledger(&sim, config());
    drop(writer);
    drop(ro);
    let after: Vec<_> = sim
        .file_names()
        .into_iter()
        // The writer's page for live readers: each writer's open starts a new generation.
        .filter(|n| n != "ledger.live")
        .map(|n| (n.clone(), sim.contents(&n)))
        .collect();
    assert_eq!(before, after);
    assert!(matches!(
        Ledger::open_in(Arc::new(SimStorage::new()), config().with_read_only(true)),
        Err(LedgerError::BadMeta { .. })
    ));
}

#[test]
fn tagged_reads_skip_payloads_they_do_not_want_and_check_those_they_keep() {
    let sim = SimStorage::new();
    let ledger = sim_ledger(&sim, config());
    // Payloads of 24 bytes: frames of 64 bytes from offset 64.
    let batch: Vec<Entry> = (1..=20)
        .map(|s| Entry::new(s, vec![s as u8; 24]).with_tag(s as u32 % 2))
        .collect();
    ledger.write(&batch).unwrap();
    ledger.sync().unwrap();
    // Damage the payload of entry 5 (tag 1).
    let segment = sim
        .file_names()
        .into_iter()
        .find(|n| n.ends_with(".seg"))
        .unwrap();
    sim.corrupt(&segment, 64 + 64 * 4 + 40 + 3, &[0xEE]);

    let mut out = Vec::new();
    let scanned = ledger
        .read_tagged_into(1, 100, 100, |tag| tag == 0, &mut out)
        .unwrap();
    assert_eq!(seqs(&out), [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
    assert_eq!((scanned.scanned, scanned.next), (20, 21));
    assert!(out
        .iter()
        .all(|e| e.payload[..] == [e.sequence as u8; 24][..]));

    // The damaged entry is wanted now: reported, never handed out.
    out.clear();
    assert!(matches!(
        ledger.read_tagged_into(1, 100, 100, |tag| tag == 1, &mut out),
        Err(LedgerError::Corrupt { offset: 320, .. })
    ));
    // Taking stops the scan at the last entry taken.
    out.clear();
    let scanned = ledger
        .read_tagged_into(6, 100, 2, |tag| tag == 0, &mut out)
        .unwrap();
    assert_eq!((seqs(&out), scanned.next), (vec![6, 8], 9));
}

/// Filtered reads, whose tags come from a column each segment builds on the first filtered
/// read and extends as it grows, agree with filtering a plain read: across segments, with
/// gaps in the sequences, from any start, with scan and take limits, while the ledger grows
/// and after deletes.
#[test]
fn tagged_reads_agree_with_filtering_a_plain_read_as_the_ledger_grows() {
    let mut rng = support::Rng(7);
    let ledger = sim_ledger(&SimStorage::new(), config());
    let mut seq = 0;
    for round in 0..40 {
        let batch: Vec<Entry> = (0..1 + rng.below(60))
            .map(|_| {
                seq += 1 + rng.below(3);
                let len = rng.below(200) as usize;
                Entry::new(seq, vec![seq as u8; len]).with_tag(rng.below(5) as u32)
            })
            .collect();
        ledger.write(&batch).unwrap();
        if round % 13 == 12 {
            ledger.delete(seq / 3).unwrap();
        }
        for _ in 0..5 {
            let from = rng.below(seq + 2);
            let (scan, take) = (1 + rng.below(300) as usize, 1 + rng.below(100) as usize);
            let want = rng.below(5) as u32;
            let mut got = Vec::new();
            let scanned = ledger
                .read_tagged_into(from, scan, take, |t| t == want, &mut got)
                .unwrap();
            // What a plain read says: the first `scan` entries from `from`, stopping at the
            // `take`-th wanted one.
            let all = ledger.read(from, usize::MAX).unwrap();
            let mut expected = Vec::new();
            let mut count = 0;
            let mut next = from.max(ledger.tail() + 1);
            for entry in &all {
                count += 1;
                next = entry.sequence + 1;
                if entry.tag == want {
                    expected.push(entry.clone());
                }
                if expected.len() == take || count == scan {
                    break;
                }
            }
            assert_eq!(
                got, expected,
                "round {round} from {from} scan {scan} take {take}"
            );
            assert_eq!((scanned.scanned, scanned.next), (count, next));
        }
    }
    assert!(ledger.segments().len() > 3, "the run crossed segments");
}

/// A [`SimStorage`] whose regions' staged writes (`write_at`) can be made to fail once, part
/// way: the first half of the bytes lands, then `ENOSPC`, as a full disk would; or fail from
/// an offset on (`full_at`): what lies before it lands, then `ENOSPC`.
#[derive(Debug, Clone)]
struct FailingWrites {
    sim: SimStorage,
    fail_next: Arc<std::sync::atomic::AtomicBool>,
    full_at: Arc<std::sync::atomic::AtomicUsize>,
}

impl FailingWrites {
    /// Reopens what the storage holds (without the failures) and checks recovery cut nothing.
    fn reopen_clean(&self, config: LedgerConfig) -> Ledger {
        let reopened = Ledger::open_in(Arc::new(self.sim.clone()), config).unwrap();
        assert!(
            reopened.recovery().cut.is_empty(),
            "{:?}",
            reopened.recovery()
        );
        reopened
    }

    fn new() -> Self {
        Self {
            sim: SimStorage::new(),
            fail_next: Arc::default(),
            full_at: Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX)),
        }
    }
}

#[derive(Debug)]
struct FailingRegion {
    inner: Box<dyn ringledger::storage::Region>,
    fail_next: Arc<std::sync::atomic::AtomicBool>,
    full_at: Arc<std::sync::atomic::AtomicUsize>,
}

// SAFETY: every call goes to the wrapped region, which keeps its own promises.
unsafe impl ringledger::storage::Region for FailingRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.inner.as_ptr()
    }

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn write_at(&self, offset: usize, bytes: &[u8]) -> std::io::Result<()> {
        if self
            .fail_next
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.inner.write_at(offset, &bytes[..bytes.len() / 2])?;
            return Err(std::io::Error::from_raw_os_error(28));
        }
        let full_at = self.full_at.load(std::sync::atomic::Ordering::SeqCst);
        if offset + bytes.len() > full_at {
            let room = full_at.saturating_sub(offset).min(bytes.len());
            self.inner.write_at(offset, &bytes[..room])?;
            return Err(std::io::Error::from_raw_os_error(28));
        }
        self.inner.write_at(offset, bytes)
    }

    fn sync(&self) -> std::io::Result<()> {
        self.inner.sync()
    }
}

impl FailingWrites {
    /// The storage a ledger under test opens: the simulated one, its regions failing.
    fn storage(&self) -> Arc<support::Hooked> {
        let (fail_next, full_at) = (Arc::clone(&self.fail_next), Arc::clone(&self.full_at));
        let mut hooked = support::Hooked::new(&self.sim);
        hooked.wrap = Box::new(move |inner| {
            Box::new(FailingRegion {
                inner,
                fail_next: Arc::clone(&fail_next),
                full_at: Arc::clone(&full_at),
            })
        });
        Arc::new(hooked)
    }
}

/// A staged write the disk refuses part way (a full disk) is an error from `write`: nothing of
/// it is published or left in the file, nothing acknowledged is lost, the ledger is not
/// poisoned, and the next write goes on from the same head. For both durabilities.
#[test]
fn a_staged_write_that_fails_part_way_is_an_error_and_loses_nothing() {
    for durability in [Durability::Buffered, Durability::Synced] {
        let storage = FailingWrites::new();
        let mut config = config().with_durability(durability);
        config.stage_at_least = 512;
        let ledger = Ledger::open_in(storage.storage(), config.clone()).unwrap();
        // Writes of 4 entries of 200 bytes: staged in both modes (over `stage_at_least`).
        let batch = |first: u64| -> Vec<Entry> {
            (first..first + 4)
                .map(|seq| Entry::new(seq, vec![seq as u8; 200]))
                .collect()
        };
        ledger.write(&batch(1)).unwrap();
        storage
            .fail_next
            .store(true, std::sync::atomic::Ordering::SeqCst);
        match ledger.write(&batch(5)) {
            Err(LedgerError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(28)),
            other => panic!("{durability:?}: expected Io(ENOSPC), got {other:?}"),
        }
        assert!(ledger.poisoned().is_none(), "{durability:?}");
        assert_eq!((ledger.head(), ledger.len()), (4, 4), "{durability:?}");
        ledger.write(&batch(5)).unwrap();
        ledger.sync().unwrap();
        let seqs = |ledger: &Ledger| -> Vec<u64> {
            let entries = ledger.read(0, 100).unwrap();
            for e in &entries {
                assert_eq!(e.payload, vec![e.sequence as u8; 200]);
            }
            entries.iter().map(|e| e.sequence).collect()
        };
        assert_eq!(seqs(&ledger), (1..=8).collect::<Vec<_>>(), "{durability:?}");
        drop(ledger);
        let reopened = storage.reopen_clean(config);
        assert_eq!(
            seqs(&reopened),
            (1..=8).collect::<Vec<_>>(),
            "{durability:?}"
        );
        assert_eq!(reopened.verify().unwrap(), 8, "{durability:?}");
    }
}

/// A buffered staged write also writes the zeros after its records up to the next 32 KiB (for
/// speed). A disk that is full inside those zeros but has room for the records is no error:
/// the write lands without them, and nothing is lost or poisoned.
#[test]
fn a_disk_full_only_inside_the_zeros_after_a_write_is_no_error() {
    let storage = FailingWrites::new();
    let mut config = config();
    config.stage_at_least = 0;
    let ledger = Ledger::open_in(storage.storage(), config.clone()).unwrap();
    ledger.write(&[Entry::new(1, vec![1u8; 200])]).unwrap();
    // The next write's records end short of 40 KiB, its zeros would reach 64 KiB.
    storage
        .full_at
        .store(40 << 10, std::sync::atomic::Ordering::SeqCst);
    ledger.write(&[Entry::new(2, vec![2u8; 34 << 10])]).unwrap();
    assert!(ledger.poisoned().is_none());
    assert_eq!(ledger.head(), 2);
    storage
        .full_at
        .store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    ledger.write(&[Entry::new(3, vec![3u8; 8 << 10])]).unwrap();
    ledger.sync().unwrap();
    drop(ledger);
    let reopened = storage.reopen_clean(config);
    let entries = reopened.read(0, 10).unwrap();
    let lens: Vec<_> = entries
        .iter()
        .map(|e| (e.sequence, e.payload.len()))
        .collect();
    assert_eq!(lens, [(1, 200), (2, 34 << 10), (3, 8 << 10)]);
    assert_eq!(reopened.verify().unwrap(), 3);
}
