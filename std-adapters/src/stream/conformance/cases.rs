//! The cases of the suite, each a function of a [`StreamFactory`].

use std::thread;
use std::time::{Duration, Instant};

use super::{fixtures, StreamFactory, PATIENCE, SETTLE, TAG_A, TAG_B, TAG_C};
use crate::ledger::Entry;
use crate::stream::{Cursor, EventStream, StreamError, TagSet};
use crate::wait::{CancelToken, Deadline};

pub(super) fn abc() -> TagSet {
    TagSet::of([TAG_A, TAG_B, TAG_C])
}

fn open<S: EventStream>(stream: &S, offset: u64, filter: TagSet) -> Cursor {
    match stream.open(offset, filter) {
        Ok(cursor) => cursor,
        Err(e) => panic!("open at {offset}: {e}"),
    }
}

#[track_caller]
fn assert_is(entry: &Entry, expected: &Entry) {
    assert_eq!(
        (entry.sequence, entry.tag, &entry.payload[..]),
        (expected.sequence, expected.tag, &expected.payload[..]),
        "wrong entry"
    );
    assert_eq!(entry.timestamp, expected.timestamp, "wrong timestamp");
}

#[track_caller]
fn next_is(cursor: &mut Cursor, expected: &Entry) {
    match cursor.next(PATIENCE) {
        Ok(entry) => assert_is(&entry, expected),
        Err(e) => panic!("expected offset {}, got {e}", expected.sequence),
    }
    assert_eq!(cursor.position(), expected.sequence + 1, "position");
}

#[track_caller]
fn nothing_more(cursor: &mut Cursor) {
    match cursor.try_next() {
        Ok(None) => {}
        Ok(Some(entry)) => panic!("unexpected entry at {}", entry.sequence),
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// 1 (Dogma: the stream's application): a cursor reads its own stream's entries only.
pub fn a_stream_reads_its_own_entries<F: StreamFactory>(factory: &F) {
    let [e0, e1, e2, e3, e4] = fixtures();
    let first = factory.create(&[e0.clone(), e1.clone()]);
    let second = factory.create(&[e2.clone(), e3.clone(), e4.clone()]);
    let mut cursor = open(&first, 0, abc());
    next_is(&mut cursor, &e0);
    next_is(&mut cursor, &e1);
    nothing_more(&mut cursor);
    let mut cursor = open(&second, 0, abc());
    for event in [&e2, &e3, &e4] {
        next_is(&mut cursor, event);
    }
    nothing_more(&mut cursor);
}

/// 2: a cursor starts at the offset it was opened at, also one between entries.
pub fn open_honours_the_offset<F: StreamFactory>(factory: &F) {
    let [e0, e1, e2, ..] = fixtures();
    let stream = factory.create(&fixtures());
    next_is(&mut open(&stream, e2.sequence, abc()), &e2);
    next_is(&mut open(&stream, e1.sequence + 1, abc()), &e2);
    next_is(&mut open(&stream, 0, abc()), &e0);
    next_is(&mut open(&stream, 1, abc()), &e0);
}

/// 3: a cursor returns only the entries whose tag is in its filter.
pub fn open_filters_by_tag<F: StreamFactory>(factory: &F) {
    let [e0, _, e2, ..] = fixtures();
    let stream = factory.create(&fixtures());
    let mut cursor = open(&stream, 0, TagSet::of([TAG_A]));
    next_is(&mut cursor, &e0);
    next_is(&mut cursor, &e2);
    nothing_more(&mut cursor);
    assert_eq!(cursor.filter(), &TagSet::of([TAG_A]));
}

/// 4: an empty filter is rejected.
pub fn open_rejects_an_empty_filter<F: StreamFactory>(factory: &F) {
    let stream = factory.create(&fixtures());
    assert!(matches!(
        stream.open(0, TagSet::empty()),
        Err(StreamError::EmptyFilter)
    ));
}

/// 5: opening with a token already cancelled fails.
pub fn open_fails_when_already_cancelled<F: StreamFactory>(factory: &F) {
    let stream = factory.create(&fixtures());
    let cancel = CancelToken::new();
    cancel.cancel();
    assert!(matches!(
        stream.open_with(0, abc(), cancel),
        Err(StreamError::Cancelled)
    ));
}

/// 6: the stream's tags cover every entry it holds.
pub fn tags_cover_every_entry<F: StreamFactory>(factory: &F) {
    let stream = factory.create(&fixtures());
    let tags = stream.tags();
    assert!(tags.is_superset(&abc()), "tags {tags:?} miss A, B or C");
    let mut cursor = open(&stream, 0, tags.clone());
    let mut seen = 0;
    while let Some(entry) = cursor.try_next().expect("reading every entry") {
        assert!(
            tags.contains(entry.tag),
            "tag {} not in {tags:?}",
            entry.tag
        );
        seen += 1;
    }
    assert!(seen >= 5, "saw {seen} entries");
}

/// 7: on an empty stream `next` waits until its deadline; `try_next` does not wait.
pub fn next_waits_on_an_empty_stream<F: StreamFactory>(factory: &F) {
    let stream = factory.create(&[]);
    let mut cursor = open(&stream, 0, abc());
    let start = Instant::now();
    assert!(matches!(
        cursor.next(Duration::from_millis(10)),
        Err(StreamError::Timeout)
    ));
    assert!(start.elapsed() >= Duration::from_millis(10));
    let at = Instant::now() + Duration::from_millis(5);
    assert!(matches!(
        cursor.next(Deadline::At(at)),
        Err(StreamError::Timeout)
    ));
    assert!(Instant::now() >= at);
    nothing_more(&mut cursor);
}

/// 8: `next` returns the entries in offset order.
pub fn next_returns_entries_in_order<F: StreamFactory>(factory: &F) {
    let stream = factory.create(&fixtures());
    let mut cursor = open(&stream, 0, abc());
    for event in &fixtures() {
        next_is(&mut cursor, event);
    }
    nothing_more(&mut cursor);
}

/// 9: after `close`, `next` and `try_next` report `Closed`.
pub fn next_after_close_is_closed<F: StreamFactory>(factory: &F) {
    let stream = factory.create(&fixtures());
    let mut cursor = open(&stream, 0, abc());
    cursor.close().expect("first close");
    assert!(matches!(cursor.next(PATIENCE), Err(StreamError::Closed)));
    assert!(matches!(cursor.try_next(), Err(StreamError::Closed)));
    assert!(cursor.is_closed());
}

/// 10: once its token is cancelled a cursor reports `Cancelled`, even with entries ready.
pub fn next_when_cancelled_is_cancelled<F: StreamFactory>(factory: &F) {
    let stream = factory.create(&fixtures());
    let mut cursor = open(&stream, 0, abc());
    cursor.cancel_token().cancel();
    assert!(matches!(cursor.next(PATIENCE), Err(StreamError::Cancelled)));
    assert!(matches!(cursor.try_next(), Err(StreamError::Cancelled)));
    // A shared token interrupts every cursor opened with it.
    let shared = CancelToken::new();
    let mut a = stream.open_with(0, abc(), shared.clone()).expect("open a");
    let mut b = stream.open_with(0, abc(), shared.clone()).expect("open b");
    shared.cancel();
    assert!(matches!(a.next(PATIENCE), Err(StreamError::Cancelled)));
    assert!(matches!(b.next(PATIENCE), Err(StreamError::Cancelled)));
}

/// 11: a cursor past the last entry wakes when a matching entry is appended.
pub fn a_cursor_past_the_end_wakes_on_append<F: StreamFactory>(factory: &F) {
    let [e0, e1, e2, e3, e4] = fixtures();
    let stream = factory.create(&[e0, e1, e2, e3.clone()]);
    let mut cursor = open(&stream, e3.sequence + 1, abc());
    thread::scope(|s| {
        let reader = s.spawn(move || cursor.next(PATIENCE));
        thread::sleep(SETTLE);
        factory.append(&stream, std::slice::from_ref(&e4));
        let got = reader.join().expect("reader thread");
        assert_is(&got.expect("woken by the append"), &e4);
    });
}

/// 12 (issue 194): after returning the last entry and waiting, a cursor returns the appended
/// entry, not the last one again.
pub fn after_a_wait_next_does_not_repeat<F: StreamFactory>(factory: &F) {
    let [e0, e1, e2, e3, e4] = fixtures();
    let stream = factory.create(&[e0, e1, e2, e3.clone()]);
    let mut cursor = open(&stream, e3.sequence, abc());
    next_is(&mut cursor, &e3);
    thread::scope(|s| {
        let reader = s.spawn(move || (cursor.next(PATIENCE), cursor));
        thread::sleep(SETTLE);
        factory.append(&stream, std::slice::from_ref(&e4));
        let (got, mut cursor) = reader.join().expect("reader thread");
        assert_is(&got.expect("woken by the append"), &e4);
        nothing_more(&mut cursor);
    });
}

/// 13 (issue 194, filtered): the same with a filter that skipped entries before the wait.
pub fn after_a_wait_a_filtered_next_does_not_repeat<F: StreamFactory>(factory: &F) {
    let [e0, e1, e2, e3, e4] = fixtures();
    let stream = factory.create(&[e0, e1, e2.clone(), e3.clone()]);
    let mut cursor = open(&stream, e2.sequence, TagSet::of([TAG_B, TAG_C]));
    next_is(&mut cursor, &e3);
    thread::scope(|s| {
        let reader = s.spawn(move || (cursor.next(PATIENCE), cursor));
        thread::sleep(SETTLE);
        factory.append(&stream, std::slice::from_ref(&e4));
        let (got, mut cursor) = reader.join().expect("reader thread");
        assert_is(&got.expect("woken by the append"), &e4);
        nothing_more(&mut cursor);
    });
}

/// 14: closing from another thread ends a blocked `next` with `Closed`.
pub fn close_from_another_thread_wakes_next<F: StreamFactory>(factory: &F) {
    let stream = factory.create(&[]);
    let mut cursor = open(&stream, 0, abc());
    let closer = cursor.closer();
    thread::scope(|s| {
        let reader = s.spawn(move || cursor.next(Deadline::Forever));
        thread::sleep(SETTLE);
        closer.close().expect("first close");
        let got = reader.join().expect("reader thread");
        assert!(matches!(got, Err(StreamError::Closed)), "{got:?}");
    });
    assert!(closer.is_closed());
}

/// 15: cancelling from another thread ends a blocked `next` with `Cancelled`.
pub fn cancel_from_another_thread_wakes_next<F: StreamFactory>(factory: &F) {
    let stream = factory.create(&[]);
    let mut cursor = open(&stream, 0, abc());
    let cancel = cursor.cancel_token().clone();
    thread::scope(|s| {
        let reader = s.spawn(move || cursor.next(Deadline::Forever));
        thread::sleep(SETTLE);
        cancel.cancel();
        let got = reader.join().expect("reader thread");
        assert!(matches!(got, Err(StreamError::Cancelled)), "{got:?}");
    });
}

/// 16: one append wakes every cursor blocked on it (a broadcast).
pub fn one_append_wakes_every_blocked_cursor<F: StreamFactory>(factory: &F) {
    let [e0, e1, e2, e3, e4] = fixtures();
    let stream = factory.create(&[e0, e1, e2, e3.clone()]);
    let cursors: Vec<Cursor> = (0..3)
        .map(|_| open(&stream, e3.sequence + 1, abc()))
        .collect();
    thread::scope(|s| {
        let readers: Vec<_> = cursors
            .into_iter()
            .map(|mut cursor| s.spawn(move || cursor.next(PATIENCE)))
            .collect();
        thread::sleep(SETTLE);
        factory.append(&stream, std::slice::from_ref(&e4));
        for reader in readers {
            let got = reader.join().expect("reader thread");
            assert_is(&got.expect("woken by the append"), &e4);
        }
    });
}

/// 17: closing twice: the first close succeeds, the second reports `Closed`.
pub fn close_twice_is_an_error<F: StreamFactory>(factory: &F) {
    let stream = factory.create(&[]);
    let mut cursor = open(&stream, fixtures()[4].sequence, abc());
    let closer = cursor.closer();
    assert!(cursor.close().is_ok());
    assert!(matches!(cursor.close(), Err(StreamError::Closed)));
    assert!(matches!(closer.close(), Err(StreamError::Closed)));
    let mut cursor = open(&stream, 0, abc());
    let closer = cursor.closer();
    assert!(closer.close().is_ok());
    assert!(matches!(cursor.close(), Err(StreamError::Closed)));
}

/// Dropping a cursor closes it.
pub fn dropping_a_cursor_closes_it<F: StreamFactory>(factory: &F) {
    let stream = factory.create(&fixtures());
    let cursor = open(&stream, 0, abc());
    let closer = cursor.closer();
    assert!(!closer.is_closed());
    drop(cursor);
    assert!(closer.is_closed());
    assert!(matches!(closer.close(), Err(StreamError::Closed)));
}

/// Deleting entries a cursor has not read makes it report `Truncated` (and keep doing so);
/// opening at a deleted offset fails the same way; opening after the gap works.
pub fn truncation_while_a_cursor_is_open<F: StreamFactory>(factory: &F) {
    let [e0, e1, e2, e3, _] = fixtures();
    let stream = factory.create(&fixtures());
    let mut cursor = open(&stream, 0, abc());
    next_is(&mut cursor, &e0);
    factory.truncate(&stream, e2.sequence);
    for _ in 0..2 {
        match cursor.next(PATIENCE) {
            Err(StreamError::Truncated {
                requested,
                first_available,
            }) => {
                assert!(
                    requested > e0.sequence && requested <= e1.sequence,
                    "requested {requested}"
                );
                assert_eq!(first_available, e2.sequence + 1);
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    }
    assert_eq!(cursor.position(), e0.sequence + 1);
    match stream.open(e1.sequence, abc()) {
        Err(StreamError::Truncated {
            requested,
            first_available,
        }) => assert_eq!((requested, first_available), (e1.sequence, e2.sequence + 1)),
        other => panic!("expected Truncated, got {other:?}"),
    }
    next_is(&mut open(&stream, e2.sequence + 1, abc()), &e3);
}

/// Deleting only entries a filtered cursor already scanned past is no gap for it.
pub fn deleting_what_a_cursor_skipped_is_no_gap<F: StreamFactory>(factory: &F) {
    let [.., e3, e4] = fixtures();
    let stream = factory.create(&fixtures());
    let mut cursor = open(&stream, 0, TagSet::of([TAG_C]));
    next_is(&mut cursor, &e4);
    factory.truncate(&stream, e3.sequence);
    nothing_more(&mut cursor);
    let e5 = Entry {
        sequence: 600,
        tag: TAG_C,
        timestamp: 1_005,
        payload: "C2".into(),
    };
    factory.append(&stream, std::slice::from_ref(&e5));
    next_is(&mut cursor, &e5);
}

/// Entries, their offsets and the truncation survive closing and reopening the stream (for
/// a stream that persists).
pub fn entries_survive_a_reopen<F: StreamFactory>(factory: &F) {
    let [e0, rest @ ..] = fixtures();
    let stream = factory.create(&fixtures());
    factory.truncate(&stream, e0.sequence);
    let Some(stream) = factory.reopen(stream) else {
        return;
    };
    assert!(matches!(
        stream.open(0, abc()),
        Err(StreamError::Truncated { first_available, .. }) if first_available == e0.sequence + 1
    ));
    let mut cursor = open(&stream, e0.sequence + 1, abc());
    for event in &rest {
        next_is(&mut cursor, event);
    }
    nothing_more(&mut cursor);
    let e5 = Entry {
        sequence: 600,
        tag: TAG_A,
        timestamp: 1_005,
        payload: "A3".into(),
    };
    factory.append(&stream, std::slice::from_ref(&e5));
    next_is(&mut cursor, &e5);
}

/// Dogma's issue 194: after a wait, a filtered cursor resumes at the last entry it returned
/// plus one; it neither repeats that entry nor returns one its filter skipped, and a cursor
/// reopened at its position starts where it stopped.
pub fn issue_194_resume_at_last_delivered_plus_one<F: StreamFactory>(factory: &F) {
    let [e0, _, e2, ..] = fixtures();
    let stream = factory.create(&fixtures());
    let mut cursor = open(&stream, 0, TagSet::of([TAG_A]));
    next_is(&mut cursor, &e0);
    next_is(&mut cursor, &e2);
    let b3 = Entry {
        sequence: 600,
        tag: TAG_B,
        timestamp: 1_005,
        payload: "B3".into(),
    };
    let a3 = Entry {
        sequence: 700,
        tag: TAG_A,
        timestamp: 1_006,
        payload: "A3".into(),
    };
    thread::scope(|s| {
        let reader = s.spawn(move || (cursor.next(PATIENCE), cursor));
        thread::sleep(SETTLE);
        factory.append(&stream, std::slice::from_ref(&b3));
        thread::sleep(SETTLE);
        factory.append(&stream, std::slice::from_ref(&a3));
        let (got, mut cursor) = reader.join().expect("reader thread");
        assert_is(&got.expect("woken by the append"), &a3);
        assert_eq!(cursor.position(), a3.sequence + 1);
        nothing_more(&mut cursor);
        nothing_more(&mut open(&stream, cursor.position(), TagSet::of([TAG_A])));
    });
}
