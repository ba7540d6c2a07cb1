//! Event streams through the public API, beyond the conformance suite (which the crate's unit
//! tests run on every implementation): bounds, the ledger specifics, and concurrency.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::storage::sim::SimStorage;
use ringledger::stream::{
    AppendError, EventStream, LedgerStream, MemoryStream, StreamError, TagSet,
};
use ringledger::wait::{CancelToken, Deadline};

fn sim_ledger(segment_size: usize) -> Ledger {
    Ledger::open_in(
        Arc::new(SimStorage::new()),
        LedgerConfig::default().with_segment_size(segment_size),
    )
    .unwrap()
}

fn tagged(seq: u64, tag: u32) -> Entry {
    Entry::new(seq, format!("entry {seq}").into_bytes()).with_tag(tag)
}

fn sequences(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.sequence).collect()
}

#[test]
fn memory_stream_drops_its_oldest_entries_beyond_capacity() {
    let stream = MemoryStream::new(3, TagSet::all());
    let mut early = stream.open(0, TagSet::all()).unwrap();
    let mut late = stream.open(0, TagSet::all()).unwrap();
    stream
        .append(&(1..=2).map(|s| tagged(s, 0)).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(late.next(Deadline::IMMEDIATE).unwrap().sequence, 1);
    stream
        .append(&(3..=5).map(|s| tagged(s * 10, 0)).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(
        (stream.len(), stream.truncated_to(), stream.head()),
        (3, 2, 50)
    );
    // `early` never read 1 and 2; `late` read 1 (and 2 ahead, which is gone now).
    assert!(matches!(
        early.try_next(),
        Err(StreamError::Truncated {
            requested: 1,
            first_available: 3
        })
    ));
    assert!(matches!(
        late.try_next(),
        Err(StreamError::Truncated {
            requested: 2,
            first_available: 3
        })
    ));
    let mut fresh = stream.open(3, TagSet::all()).unwrap();
    let got: Vec<u64> = std::iter::from_fn(|| fresh.try_next().unwrap())
        .map(|e| e.sequence)
        .collect();
    assert_eq!(got, [30, 40, 50]);
    assert_eq!(MemoryStream::new(0, TagSet::all()).capacity(), 1);
}

#[test]
fn memory_stream_appends_all_or_nothing() {
    let stream = MemoryStream::new(10, TagSet::of([1, 2]));
    stream.append(&[tagged(5, 1)]).unwrap();
    assert_eq!(
        stream.append(&[tagged(6, 1), tagged(6, 2)]),
        Err(AppendError::NotIncreasing { last: 6, offset: 6 })
    );
    assert_eq!(
        stream.append(&[tagged(7, 1), tagged(8, 3)]),
        Err(AppendError::TagNotCarried { tag: 3 })
    );
    assert_eq!(
        stream.append(&[tagged(5, 1)]),
        Err(AppendError::NotIncreasing { last: 5, offset: 5 })
    );
    assert_eq!(
        MemoryStream::new(10, TagSet::all()).append(&[tagged(0, 1)]),
        Err(AppendError::NotIncreasing { last: 0, offset: 0 })
    );
    assert_eq!((stream.len(), stream.head()), (1, 5));
    stream.append(&[]).unwrap();
    assert_eq!(stream.truncate(100), 1, "clamped to the head");
    assert_eq!((stream.truncate(5), stream.truncated_to()), (0, 5));
    assert!(stream.is_empty());
}

#[test]
fn ledger_stream_reports_truncated_once_a_cleaner_deleted_the_offset() {
    let ledger = sim_ledger(64 * 1024);
    ledger
        .write(&(1..=100).map(|s| tagged(s, 0)).collect::<Vec<_>>())
        .unwrap();
    let stream = LedgerStream::new(ledger.clone()).with_read_ahead(10);
    let mut cursor = stream.open(0, TagSet::all()).unwrap();
    for seq in 1..=5 {
        assert_eq!(cursor.next(Deadline::IMMEDIATE).unwrap().sequence, seq);
    }
    // Entries 6 to 10 are read ahead, but deleted: the cursor does not hand them out.
    ledger.delete(40).unwrap();
    match cursor.next(Deadline::Forever) {
        Err(StreamError::Truncated {
            requested,
            first_available,
        }) => assert_eq!((requested, first_available), (6, 41)),
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert!(matches!(
        stream.open(40, TagSet::all()),
        Err(StreamError::Truncated {
            requested: 40,
            first_available: 41
        })
    ));
    let mut resumed = stream.open(41, TagSet::all()).unwrap();
    assert_eq!(resumed.next(Deadline::IMMEDIATE).unwrap().sequence, 41);
}

#[test]
fn a_filtered_ledger_cursor_returns_what_reading_and_filtering_returns() {
    let ledger = sim_ledger(32 * 1024); // many segments
    let entries: Vec<Entry> = (1..=3000u64)
        .map(|s| {
            let payload = vec![s as u8; (s % 7) as usize * 500]; // some above the copy limit
            Entry::new(s * 3, payload).with_tag((s % 10) as u32)
        })
        .collect();
    for chunk in entries.chunks(3) {
        ledger.write(chunk).unwrap();
    }
    for (filter, read_ahead) in [
        (TagSet::of([3]), 512),
        (TagSet::of([3]), 4),
        (TagSet::of([0, 1, 2, 3, 4, 5, 6, 7]), 4),
        (TagSet::of([0, 1, 2, 3, 4, 5, 6, 7]), 100_000),
        (TagSet::all(), 7),
    ] {
        let stream = LedgerStream::new(ledger.clone()).with_read_ahead(read_ahead);
        let mut cursor = stream.open(100, filter.clone()).unwrap();
        let mut got = Vec::new();
        while let Some(entry) = cursor.try_next().unwrap() {
            got.push(entry);
        }
        let expected: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.sequence >= 100 && filter.contains(e.tag))
            .collect();
        assert_eq!(got.len(), expected.len(), "{filter:?} / {read_ahead}");
        for (got, expected) in got.iter().zip(expected) {
            assert_eq!(
                (got.sequence, got.tag, &got.payload),
                (expected.sequence, expected.tag, &expected.payload)
            );
        }
        assert_eq!(cursor.position(), got.last().unwrap().sequence + 1);
    }
}

#[test]
fn entries_the_filter_skips_do_not_extend_the_deadline() {
    let stream = MemoryStream::new(100_000, TagSet::all());
    let mut cursor = stream.open(0, TagSet::of([2])).unwrap();
    let stop = CancelToken::new();
    thread::scope(|s| {
        s.spawn(|| {
            let mut seq = 1;
            while !stop.is_cancelled() {
                stream.append(&[tagged(seq, 1)]).unwrap();
                seq += 1;
                thread::sleep(Duration::from_millis(1));
            }
        });
        let start = Instant::now();
        let got = cursor.next(Duration::from_millis(50));
        let took = start.elapsed();
        stop.cancel();
        assert!(matches!(got, Err(StreamError::Timeout)), "{got:?}");
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    });
    assert!(cursor.position() == 1, "nothing returned");
}

#[test]
fn a_closer_leaves_a_shared_token_alone_unless_it_must_wake_a_wait() {
    let stream = MemoryStream::new(10, TagSet::all());
    stream.append(&[tagged(1, 0)]).unwrap();
    let shared = CancelToken::new();
    let a = stream.open_with(0, TagSet::all(), shared.clone()).unwrap();
    let mut b = stream.open_with(0, TagSet::all(), shared.clone()).unwrap();
    a.closer().close().unwrap();
    assert!(!shared.is_cancelled());
    assert_eq!(b.next(Deadline::IMMEDIATE).unwrap().sequence, 1);
    // Waking a blocked cursor takes its token.
    let closer = b.closer();
    thread::scope(|s| {
        let waiter = s.spawn(move || b.next(Deadline::Forever));
        thread::sleep(Duration::from_millis(20));
        closer.close().unwrap();
        assert!(matches!(waiter.join().unwrap(), Err(StreamError::Closed)));
    });
}

/// How a test appends to a stream.
type Append<'a> = dyn Fn(&[Entry]) + Sync + 'a;

/// A writer appends while a reader follows with `next(Forever)`: everything arrives once, in
/// order, for both kinds of stream.
#[test]
fn a_reader_follows_a_concurrent_writer() {
    const N: u64 = 20_000;
    let memory = MemoryStream::new(1 << 16, TagSet::all());
    let ledger = LedgerStream::new(sim_ledger(256 * 1024));
    let append_memory = |entries: &[Entry]| memory.append(entries).unwrap();
    let append_ledger = |entries: &[Entry]| ledger.ledger().write(entries).unwrap();
    let cases: [(&dyn EventStream, &Append<'_>); 2] =
        [(&memory, &append_memory), (&ledger, &append_ledger)];
    for (stream, append) in cases {
        let mut all = stream.open(0, TagSet::all()).unwrap();
        let mut odd = stream.open(0, TagSet::of([1])).unwrap();
        thread::scope(|s| {
            s.spawn(|| {
                let mut seq = 0;
                while seq < N {
                    let n = 1 + seq % 13;
                    let batch: Vec<Entry> = (seq + 1..=(seq + n).min(N))
                        .map(|s| tagged(s * 2, (s % 2) as u32))
                        .collect();
                    seq += batch.len() as u64;
                    append(&batch);
                }
            });
            let follow_odd = s.spawn(move || {
                let mut got = Vec::new();
                while got.len() < (N / 2) as usize {
                    got.push(odd.next(Duration::from_secs(30)).unwrap());
                }
                got
            });
            let mut got = Vec::new();
            while got.len() < N as usize {
                got.push(all.next(Duration::from_secs(30)).unwrap());
            }
            assert_eq!(sequences(&got), (1..=N).map(|s| s * 2).collect::<Vec<_>>());
            let odd = follow_odd.join().unwrap();
            assert_eq!(
                sequences(&odd),
                (1..=N)
                    .filter(|s| s % 2 == 1)
                    .map(|s| s * 2)
                    .collect::<Vec<_>>()
            );
        });
        assert_eq!(all.try_next().unwrap(), None);
    }
}

#[test]
fn a_ledger_stream_on_disk_resumes_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let position = {
        let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
        ledger
            .write(
                &(1..=10)
                    .map(|s| tagged(s * 5, (s % 3) as u32))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        let stream = LedgerStream::new(ledger);
        let mut cursor = stream.open(0, TagSet::of([2])).unwrap();
        assert_eq!(cursor.next(Deadline::IMMEDIATE).unwrap().sequence, 10);
        cursor.position()
    };
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let stream = LedgerStream::new(ledger.clone());
    let mut cursor = stream.open(position, TagSet::of([2])).unwrap();
    let got: Vec<u64> = std::iter::from_fn(|| cursor.try_next().unwrap())
        .map(|e| e.sequence)
        .collect();
    assert_eq!(got, [25, 40]);
    thread::scope(|s| {
        let waiter = s.spawn(move || cursor.next(Duration::from_secs(10)));
        thread::sleep(Duration::from_millis(10));
        ledger.write(&[tagged(51, 1), tagged(52, 2)]).unwrap();
        assert_eq!(waiter.join().unwrap().unwrap().sequence, 52);
    });
}

/// After a crash the ledger's head can be above its last entry (a delete recorded the head,
/// the entries after it were lost): a cursor there waits for new entries instead of spinning.
#[test]
fn a_cursor_waits_past_a_head_whose_entries_were_lost_in_a_crash() {
    let config = || LedgerConfig::default().with_segment_size(64 * 1024);
    let sim = SimStorage::new();
    let ledger = Ledger::open_in(Arc::new(sim.clone()), config()).unwrap();
    ledger
        .write(&(1..=5).map(|s| tagged(s, 0)).collect::<Vec<_>>())
        .unwrap();
    ledger.sync().unwrap();
    ledger
        .write(&(6..=10).map(|s| tagged(s, 0)).collect::<Vec<_>>())
        .unwrap();
    ledger.delete(3).unwrap(); // records head 10
    let crashed = (0..1000)
        .map(|seed| sim.crash(seed))
        .find(|crashed| {
            let Ok(l) = Ledger::open_in(Arc::new(crashed.snapshot()), config()) else {
                return false;
            };
            l.head() == 10 && l.index(-1).unwrap().is_some_and(|e| e.sequence == 5)
        })
        .expect("a crash that loses 6 to 10");
    drop(ledger);
    let ledger = Ledger::open_in(Arc::new(crashed), config()).unwrap();
    let stream = LedgerStream::new(ledger.clone());
    for filter in [TagSet::all(), TagSet::of([0])] {
        let mut cursor = stream.open(4, filter).unwrap();
        assert_eq!(cursor.next(Deadline::IMMEDIATE).unwrap().sequence, 4);
        assert_eq!(cursor.next(Deadline::IMMEDIATE).unwrap().sequence, 5);
        let (done, answer) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let timed_out = cursor.next(Duration::from_millis(20));
            let _ = done.send((timed_out.map(|e| e.sequence), cursor));
        });
        let (timed_out, mut cursor) = answer
            .recv_timeout(Duration::from_secs(10))
            .expect("next returned");
        assert!(matches!(timed_out, Err(StreamError::Timeout)));
        assert_eq!(cursor.try_next().unwrap(), None);
    }
    ledger.write(&[tagged(11, 0)]).unwrap();
    let mut cursor = stream.open(6, TagSet::all()).unwrap();
    assert_eq!(cursor.next(Duration::from_secs(10)).unwrap().sequence, 11);
}

/// Declared tags are a description, not a promise the ledger checks: a cursor whose filter
/// covers the declared tags still skips an entry with an undeclared tag it does not want.
#[test]
fn a_cursor_filters_entries_whose_tag_was_not_declared() {
    let ledger = sim_ledger(64 * 1024);
    ledger
        .write(&[tagged(1, 1), tagged(2, 2), tagged(3, 1)])
        .unwrap();
    let stream = LedgerStream::new(ledger).with_tags(TagSet::of([1]));
    let mut cursor = stream.open(1, TagSet::of([1])).unwrap();
    let mut seen = Vec::new();
    while let Some(entry) = cursor.try_next().unwrap() {
        seen.push(entry);
    }
    assert_eq!(sequences(&seen), [1, 3]);
}
