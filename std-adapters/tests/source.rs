//! Sources: Falco's plugin-sdk-go `source` tests, ported, and the fixes to its defects
//! (deterministic cancellation, per-batch deadlines, a close callback run once).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringledger::blocking::mpsc;
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::source::{
    stream_source, Batch, BatchEnd, NoEvent, Progress, PullSource, PushSource, Source, SourceError,
    SourceEvent, SourceOptions, UNSET_TIMESTAMP,
};
use ringledger::storage::sim::SimStorage;
use ringledger::stream::{LedgerStream, StreamError, TagSet};
use ringledger::wait::{CancelToken, Deadline};

fn data(batch: &Batch) -> Vec<&[u8]> {
    batch.iter().map(|e| &e.data[..]).collect()
}

fn counting_close() -> (Arc<AtomicUsize>, impl FnOnce() + Send + 'static) {
    let closes = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&closes);
    (closes, move || {
        counter.fetch_add(1, Ordering::SeqCst);
    })
}

/// Falco's `TestPullInstance`: a first pull slower than the timeout ends the batch with one
/// event and a timeout; then two events and EOF; close runs the callback; then EOF, empty.
#[test]
fn falco_pull_instance() {
    let timeout = Duration::from_millis(10);
    let (closes, on_close) = counting_close();
    let mut pulls = 0;
    let options = SourceOptions::new()
        .with_timeout(timeout)
        .on_close(on_close);
    let mut source = PullSource::new(options, move |_, event| {
        pulls += 1;
        match pulls {
            1 => thread::sleep(timeout * 10),
            4 => return Err(NoEvent::Eof),
            _ => {}
        }
        event.write(format!("event {pulls}").as_bytes())?;
        event.set_timestamp(pulls);
        Ok(())
    });
    let mut batch = Batch::new();
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Timeout);
    assert_eq!(data(&batch), [b"event 1"]);
    assert_eq!(batch.as_slice()[0].timestamp, 1);
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
    assert_eq!(data(&batch), [b"event 2", b"event 3"]);
    source.close();
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
    assert!(batch.is_empty());
    source.close();
    drop(source);
    assert_eq!(closes.load(Ordering::SeqCst), 1, "the callback runs once");
}

/// Falco's `TestPullInstanceCtxCanceling`: a cancelled context ends the source.
#[test]
fn falco_pull_instance_cancelled() {
    let cancel = CancelToken::new();
    let (closes, on_close) = counting_close();
    let options = SourceOptions::new()
        .with_cancel(cancel.clone())
        .on_close(on_close);
    let mut source = PullSource::new(options, |_, event| {
        event.write(b"x")?;
        Ok(())
    });
    cancel.cancel();
    let mut batch = Batch::new();
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
    assert!(batch.is_empty());
    drop(source);
    assert_eq!(closes.load(Ordering::SeqCst), 1, "dropping closes");
}

/// Falco's `TestPushInstance`: one event then a timeout; two events and an EOF error; then a
/// closed channel is EOF.
#[test]
fn falco_push_instance() {
    let (producer, events) = mpsc::channel(16);
    let options = SourceOptions::new().with_timeout(Duration::from_millis(100));
    let mut source = PushSource::new(options, events);
    let mut batch = Batch::new();
    producer
        .push(Ok(SourceEvent::new("one")), Deadline::Forever)
        .unwrap();
    let start = Instant::now();
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Timeout);
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(data(&batch), [b"one"]);
    for item in [
        Ok(SourceEvent::new("two").with_timestamp(7)),
        Ok(SourceEvent::new("three").with_timestamp(0)),
        Err(NoEvent::Eof),
    ] {
        producer.push(item, Deadline::Forever).unwrap();
    }
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
    assert_eq!(data(&batch), [&b"two"[..], b"three"]);
    assert_eq!(batch.as_slice()[0].timestamp, 7);
    assert_eq!(batch.as_slice()[1].timestamp, UNSET_TIMESTAMP);
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);

    let (producer, events) = mpsc::channel::<Result<SourceEvent, NoEvent>>(16);
    let mut source = PushSource::new(SourceOptions::new(), events);
    drop(producer);
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
    assert!(batch.is_empty());
}

#[test]
fn a_batch_fills_up_to_the_batch_size_and_is_reused() {
    let mut n = 0u8;
    let options = SourceOptions::new().with_batch_size(3);
    let mut source = PullSource::new(options, move |_, event| {
        n += 1;
        event.write(&[n; 100])?;
        Ok(())
    });
    let mut batch = Batch::new();
    for round in 0..3u8 {
        assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Full);
        assert_eq!(batch.len(), 3);
        let firsts: Vec<u8> = batch.iter().map(|e| e.data[0]).collect();
        assert_eq!(firsts, [round * 3 + 1, round * 3 + 2, round * 3 + 3]);
        assert!(batch.iter().all(|e| e.data.len() == 100));
    }
    let options = SourceOptions::new().with_batch_size(0);
    let mut single = PullSource::new(options, |_, event| {
        event.write(b"x")?;
        Ok(())
    });
    assert_eq!(single.next_batch(&mut batch).unwrap(), BatchEnd::Full);
    assert_eq!(batch.len(), 1, "a batch size of 0 is 1");
}

#[test]
fn an_oversize_event_is_an_error_naming_its_size() {
    let mut n = 0;
    let options = SourceOptions::new().with_max_event_size(10);
    let mut source = PullSource::new(options, move |_, event| {
        n += 1;
        if n == 1 {
            event.write(b"small")?;
            return Ok(());
        }
        event.write(b"0123456")?;
        let refused = event.write(b"89AB");
        assert!(refused.is_err());
        let _ = event.write(b"CDEFGH");
        Ok(()) // the writer remembers the refusal anyway
    });
    let mut batch = Batch::new();
    match source.next_batch(&mut batch) {
        Err(SourceError::Oversize { size, max }) => assert_eq!((size, max), (13, 10)),
        other => panic!("expected Oversize, got {other:?}"),
    }
    assert_eq!(data(&batch), [b"small"], "the partial batch is kept");
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);

    let (producer, events) = mpsc::channel(4);
    let options = SourceOptions::new().with_max_event_size(10);
    let mut source = PushSource::new(options, events);
    producer
        .push(Ok(SourceEvent::new(vec![0; 11])), Deadline::Forever)
        .unwrap();
    let error = source.next_batch(&mut batch).unwrap_err();
    assert!(matches!(error, SourceError::Oversize { size: 11, max: 10 }));
    assert_eq!(
        error.to_string(),
        "an event of 11 bytes is larger than the maximum of 10"
    );
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
}

#[test]
fn a_failure_ends_the_source_and_a_timeout_passes_through() {
    let mut n = 0;
    let mut source = PullSource::new(SourceOptions::new(), move |_, event| {
        n += 1;
        match n {
            2 => Err(NoEvent::Timeout),
            4 => Err(NoEvent::Failed("device gone".into())),
            _ => Ok(event.write(b"e")?),
        }
    });
    let mut batch = Batch::new();
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Timeout);
    assert_eq!(batch.len(), 1);
    match source.next_batch(&mut batch) {
        Err(SourceError::Failed(e)) => assert_eq!(e.to_string(), "device gone"),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(batch.len(), 1);
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);

    let (producer, events) = mpsc::channel(4);
    let mut source = PushSource::new(SourceOptions::new(), events);
    producer
        .push(Err(NoEvent::Timeout), Deadline::Forever)
        .unwrap();
    producer
        .push(Err(NoEvent::Failed("lost".into())), Deadline::Forever)
        .unwrap();
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Timeout);
    assert!(matches!(
        source.next_batch(&mut batch),
        Err(SourceError::Failed(_))
    ));
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
}

/// Go's `select` picks at random between a fired ticker and a cancelled context; here
/// cancellation always wins, and the events already taken stay in the batch.
#[test]
fn cancellation_wins_over_the_timeout_deterministically() {
    for _ in 0..20 {
        let cancel = CancelToken::new();
        let token = cancel.clone();
        let options = SourceOptions::new()
            .with_timeout(Duration::ZERO)
            .with_cancel(cancel.clone());
        let mut source = PullSource::new(options, move |_, event| {
            event.write(b"taken")?;
            token.cancel(); // both the deadline has passed and the token is cancelled now
            Ok(())
        });
        let mut batch = Batch::new();
        assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
        assert_eq!(data(&batch), [b"taken"]);
    }
    let cancel = CancelToken::new();
    let (producer, events) = mpsc::channel(4);
    let options = SourceOptions::new()
        .with_timeout(Duration::ZERO)
        .with_cancel(cancel.clone());
    let mut source = PushSource::new(options, events);
    producer
        .push(Ok(SourceEvent::new("taken")), Deadline::Forever)
        .unwrap();
    cancel.cancel();
    let mut batch = Batch::new();
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
    assert!(batch.is_empty(), "cancelled before the batch began");
}

#[test]
fn cancelling_wakes_a_push_source_waiting_for_events() {
    let cancel = CancelToken::new();
    let (_producer, events) = mpsc::channel::<Result<SourceEvent, NoEvent>>(4);
    let options = SourceOptions::new()
        .with_timeout(Duration::from_secs(3600))
        .with_cancel(cancel.clone());
    let mut source = PushSource::new(options, events);
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            cancel.cancel();
        });
        let start = Instant::now();
        let mut batch = Batch::new();
        assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
        assert!(start.elapsed() < Duration::from_secs(60));
    });
}

/// Go's ticker keeps running between batches, so a slow batch could leave a stale tick that
/// ends the next batch at once. Here every batch gets its whole timeout.
#[test]
fn the_deadline_is_per_batch() {
    let timeout = Duration::from_millis(60);
    let mut n = 0;
    let options = SourceOptions::new()
        .with_batch_size(3)
        .with_timeout(timeout);
    let mut source = PullSource::new(options, move |context, event| {
        n += 1;
        if n == 1 {
            // A slow first batch: the pull ignores the deadline.
            thread::sleep(timeout * 3);
        } else if n == 2 {
            // A pull that honours the deadline waits until it, then times out.
            let wait = context.deadline();
            let Deadline::At(at) = wait else {
                panic!("a batch has a deadline");
            };
            thread::sleep(at.saturating_duration_since(Instant::now()));
            return Err(NoEvent::Timeout);
        }
        event.write(b"e")?;
        Ok(())
    });
    let mut batch = Batch::new();
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Timeout);
    assert_eq!(batch.len(), 1);
    let start = Instant::now();
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Timeout);
    assert!(
        start.elapsed() >= timeout,
        "the second batch got its whole timeout"
    );
    assert!(batch.is_empty());
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Full);
    assert_eq!(
        batch.len(),
        3,
        "no stale deadline ends the third batch early"
    );
}

#[test]
fn progress_reports_through_the_callback() {
    let done = Arc::new(Mutex::new(0.25));
    let reported = Arc::clone(&done);
    let options = SourceOptions::new().on_progress(move || Progress {
        fraction: *reported.lock().unwrap(),
        text: "reading".into(),
    });
    let source = PullSource::new(options, |_, _| Err(NoEvent::Eof));
    assert_eq!(source.progress().unwrap().fraction, 0.25);
    *done.lock().unwrap() = 0.5;
    assert_eq!(
        source.progress(),
        Some(Progress {
            fraction: 0.5,
            text: "reading".into()
        })
    );
    let silent = PullSource::new(SourceOptions::new(), |_, _| Err(NoEvent::Eof));
    assert_eq!(silent.progress(), None);
}

#[test]
fn batches_iterate_until_the_end() {
    let mut n = 0;
    let options = SourceOptions::new().with_batch_size(4);
    let mut source = PullSource::new(options, move |_, event| {
        n += 1;
        match n {
            3 | 4 => Err(NoEvent::Timeout), // an empty timeout is skipped (the 4th)
            11 => Err(NoEvent::Eof),
            _ => Ok(event.write(&[n])?),
        }
    });
    let batches: Vec<Vec<u8>> = source
        .batches()
        .map(|batch| batch.unwrap().iter().map(|e| e.data[0]).collect())
        .collect();
    assert_eq!(batches, [vec![1, 2], vec![5, 6, 7, 8], vec![9, 10]]);
    assert_eq!(source.batches().count(), 0);

    let mut source = PullSource::new(SourceOptions::new(), |_, _| {
        Err(NoEvent::Failed("x".into()))
    });
    let items: Vec<_> = source.batches().collect();
    assert!(matches!(items[..], [Err(SourceError::Failed(_))]));
}

fn sim_ledger() -> Ledger {
    Ledger::open_in(
        Arc::new(SimStorage::new()),
        LedgerConfig::default().with_segment_size(64 * 1024),
    )
    .unwrap()
}

#[test]
fn a_stream_source_reads_a_ledger_stream() {
    let ledger = sim_ledger();
    let entries: Vec<Entry> = (1..=10)
        .map(|s| Entry::new(s * 2, vec![s as u8; 8]).with_tag((s % 2) as u32))
        .collect();
    ledger.write(&entries).unwrap();
    let stream = LedgerStream::new(ledger.clone());
    let options = SourceOptions::new()
        .with_batch_size(3)
        .with_timeout(Duration::from_millis(20));
    let mut source = stream_source(&stream, 5, TagSet::of([1]), options).unwrap();
    let mut batch = Batch::new();
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Full);
    assert_eq!(
        batch.iter().map(|e| e.data[0]).collect::<Vec<_>>(),
        [3, 5, 7]
    );
    assert_eq!(batch.as_slice()[0].timestamp, entries[2].timestamp);
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Timeout);
    assert_eq!(batch.iter().map(|e| e.data[0]).collect::<Vec<_>>(), [9]);
    // A writer appends while the source waits in a batch.
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(5));
            ledger
                .write(&[Entry::new(31, vec![31; 8]).with_tag(1)])
                .unwrap();
        });
        let options = SourceOptions::new()
            .with_timeout(Duration::from_secs(10))
            .with_batch_size(1);
        let mut follower = stream_source(&stream, 21, TagSet::of([1]), options).unwrap();
        assert_eq!(follower.next_batch(&mut batch).unwrap(), BatchEnd::Full);
        assert_eq!(batch.as_slice()[0].data[0], 31);
    });
}

#[test]
fn a_stream_source_fails_on_truncation_and_ends_on_cancel() {
    let ledger = sim_ledger();
    ledger
        .write(&(1..=10).map(|s| Entry::new(s, "e")).collect::<Vec<_>>())
        .unwrap();
    let stream = LedgerStream::new(ledger.clone()).with_read_ahead(2);
    let options = SourceOptions::new().with_batch_size(2);
    let mut source = stream_source(&stream, 0, TagSet::all(), options).unwrap();
    let mut batch = Batch::new();
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Full);
    ledger.delete(6).unwrap();
    match source.next_batch(&mut batch) {
        Err(SourceError::Failed(e)) => assert!(
            matches!(
                e.downcast_ref::<StreamError>(),
                Some(StreamError::Truncated {
                    requested: 3,
                    first_available: 7
                })
            ),
            "{e}"
        ),
        other => panic!("expected a truncation, got {other:?}"),
    }
    assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);

    let cancel = CancelToken::new();
    let options = SourceOptions::new()
        .with_timeout(Duration::from_secs(3600))
        .with_cancel(cancel.clone());
    let mut waiting = stream_source(&stream, 100, TagSet::all(), options).unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(20));
            cancel.cancel();
        });
        let start = Instant::now();
        assert_eq!(waiting.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
        assert!(start.elapsed() < Duration::from_secs(60));
    });
    assert!(matches!(
        stream_source(
            &stream,
            100,
            TagSet::all(),
            SourceOptions::new().with_cancel(cancel)
        ),
        Err(StreamError::Cancelled)
    ));
}
