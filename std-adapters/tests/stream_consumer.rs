//! `stream::Consumer`: delivery, each cause of a restart, the backoff and its reset,
//! cancellation and the concurrency limit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::storage::sim::SimStorage;
use ringledger::stream::{
    Backoff, ConcurrencyLimit, Consumer, ConsumerError, Cursor, EventStream, Handler, HandlerError,
    LedgerStream, MemoryStream, Reader, Stopped, StreamError, TagSet,
};
use ringledger::wait::{CancelToken, Deadline, WaitError};

/// A backoff short enough for tests, without jitter so that delays can be compared.
fn quick() -> Backoff {
    Backoff::new(Duration::from_millis(2), Duration::from_millis(50)).with_jitter(0.0)
}

fn tagged(seq: u64, tag: u32) -> Entry {
    Entry::new(seq, format!("entry {seq}").into_bytes()).with_tag(tag)
}

/// What each restart reported: the error's kind and the delay.
type Restarts = Arc<Mutex<Vec<(String, Duration)>>>;

fn kind(error: &ConsumerError) -> String {
    match error {
        ConsumerError::NextOffset(_) => "next_offset".into(),
        ConsumerError::Open { source, .. } => format!("open: {source}"),
        ConsumerError::Next(source) => format!("next: {source}"),
        ConsumerError::OffsetBehind { .. } => "behind".into(),
        ConsumerError::Handle { offset, .. } => format!("handle {offset}"),
        other => format!("{other}"),
    }
}

fn consumer<S: EventStream>(stream: S) -> (Consumer<S>, Restarts) {
    let restarts = Restarts::default();
    let log = Arc::clone(&restarts);
    let consumer = Consumer::new(stream)
        .with_backoff(quick())
        .on_restart(move |error, delay| log.lock().unwrap().push((kind(error), delay)));
    (consumer, restarts)
}

fn kinds(restarts: &Restarts) -> Vec<String> {
    restarts
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect()
}

/// A handler that stores its offset like an application would, with scripted failures.
struct Script {
    tags: TagSet,
    /// The stored offset.
    next: u64,
    /// `(expected_offset, sequence)` of each event handled.
    handled: Vec<(u64, u64)>,
    /// `next_offset` fails while this is above zero (counting down).
    next_offset_failures: u32,
    /// Offsets `next_offset` returns first (instead of the stored one), one per call.
    offsets: VecDeque<u64>,
    /// Sequences whose first delivery fails.
    fail_once: Vec<u64>,
    /// Called after each event handled.
    after: Option<Box<dyn FnMut(u64) + Send>>,
    /// Cancelled once `stop_after` events were handled.
    stop: CancelToken,
    stop_after: usize,
}

impl Script {
    fn new(tags: TagSet, stop: &CancelToken, stop_after: usize) -> Self {
        Script {
            tags,
            next: 0,
            handled: Vec::new(),
            next_offset_failures: 0,
            offsets: VecDeque::new(),
            fail_once: Vec::new(),
            after: None,
            stop: stop.clone(),
            stop_after,
        }
    }

    fn sequences(&self) -> Vec<u64> {
        self.handled.iter().map(|(_, s)| *s).collect()
    }
}

impl Handler for Script {
    fn tags(&self) -> TagSet {
        self.tags.clone()
    }

    fn next_offset(&mut self) -> Result<u64, HandlerError> {
        if self.next_offset_failures > 0 {
            self.next_offset_failures -= 1;
            return Err("state store unavailable".into());
        }
        Ok(self.offsets.pop_front().unwrap_or(self.next))
    }

    fn handle_event(&mut self, expected: u64, event: Entry) -> Result<(), HandlerError> {
        if let Some(i) = self.fail_once.iter().position(|s| *s == event.sequence) {
            self.fail_once.swap_remove(i);
            return Err(format!("cannot handle {}", event.sequence).into());
        }
        self.handled.push((expected, event.sequence));
        self.next = event.sequence + 1;
        if let Some(after) = &mut self.after {
            after(event.sequence);
        }
        if self.handled.len() >= self.stop_after {
            self.stop.cancel();
        }
        Ok(())
    }
}

fn memory_with(entries: &[Entry]) -> MemoryStream {
    let stream = MemoryStream::new(1000, TagSet::all());
    stream.append(entries).unwrap();
    stream
}

#[test]
fn delivers_the_wanted_tags_the_stream_carries_with_expected_offsets() {
    let stream = MemoryStream::new(100, TagSet::of([1, 2]));
    stream
        .append(&[tagged(3, 1), tagged(5, 2), tagged(9, 1), tagged(12, 2)])
        .unwrap();
    let (mut consumer, restarts) = consumer(stream);
    let stop = consumer.cancel_token().clone();
    let mut handler = Script::new(TagSet::of([2, 3]), &stop, 2);
    assert_eq!(consumer.run(&mut handler), Stopped::Cancelled);
    assert_eq!(handler.handled, [(0, 5), (6, 12)]);
    assert!(kinds(&restarts).is_empty());
}

#[test]
fn nothing_to_consume_returns_at_once() {
    let stream = MemoryStream::new(100, TagSet::of([1, 2]));
    let (mut consumer, _) = consumer(stream);
    let stop = CancelToken::new();
    let mut handler = Script::new(TagSet::of([3]), &stop, 1);
    assert_eq!(consumer.run(&mut handler), Stopped::NothingToConsume);
}

#[test]
fn restarts_when_next_offset_fails() {
    let (mut consumer, restarts) = consumer(memory_with(&[tagged(1, 0), tagged(2, 0)]));
    let stop = consumer.cancel_token().clone();
    let mut handler = Script::new(TagSet::all(), &stop, 2);
    handler.next_offset_failures = 2;
    assert_eq!(consumer.run(&mut handler), Stopped::Cancelled);
    assert_eq!(handler.sequences(), [1, 2]);
    assert_eq!(kinds(&restarts), ["next_offset", "next_offset"]);
}

#[test]
fn restarts_when_the_stream_cannot_open_at_the_offset() {
    let stream = memory_with(&[tagged(1, 0), tagged(2, 0), tagged(3, 0)]);
    stream.truncate(1);
    let (mut consumer, restarts) = consumer(stream);
    let stop = consumer.cancel_token().clone();
    let mut handler = Script::new(TagSet::all(), &stop, 2);
    // The stored offset was deleted; the application then moves past the gap.
    handler.offsets = VecDeque::from([1]);
    handler.next = 2;
    assert_eq!(consumer.run(&mut handler), Stopped::Cancelled);
    assert_eq!(handler.sequences(), [2, 3]);
    assert_eq!(
        kinds(&restarts),
        ["open: offset 1 was deleted; the stream now starts at 2"]
    );
}

#[test]
fn restarts_when_the_cursor_fails() {
    let ledger = Ledger::open_in(
        Arc::new(SimStorage::new()),
        LedgerConfig::default().with_segment_size(64 * 1024),
    )
    .unwrap();
    ledger
        .write(&(1..=10).map(|s| tagged(s, 0)).collect::<Vec<_>>())
        .unwrap();
    let (mut consumer, restarts) = consumer(LedgerStream::new(ledger.clone()));
    let stop = consumer.cancel_token().clone();
    let mut handler = Script::new(TagSet::all(), &stop, 4);
    // A cleaner deletes up to 5 while the consumer handles 2: the cursor reports the gap.
    let cleaner = ledger.clone();
    handler.after = Some(Box::new(move |seq| {
        if seq == 2 {
            cleaner.delete(5).unwrap();
        }
    }));
    handler.offsets = VecDeque::from([0, 0, 6]); // first run, then after the gap
    assert_eq!(consumer.run(&mut handler), Stopped::Cancelled);
    assert_eq!(handler.sequences(), [1, 2, 6, 7]);
    assert_eq!(
        kinds(&restarts),
        [
            "next: offset 3 was deleted; the stream now starts at 6",
            "open: offset 1 was deleted; the stream now starts at 6",
        ]
    );
}

/// A stream that misbehaves: its cursors return an entry before the offset asked for.
struct Rewinding;

struct RewindingReader;

impl Reader for RewindingReader {
    fn truncated_to(&self) -> u64 {
        0
    }

    fn read(&mut self, from: u64, out: &mut Vec<Entry>) -> Result<u64, StreamError> {
        out.push(tagged(from.saturating_sub(1).max(1), 0));
        Ok(from + 1)
    }

    fn wait(&self, _: u64, _: Deadline, _: &CancelToken) -> Result<(), WaitError> {
        Ok(())
    }
}

impl EventStream for Rewinding {
    fn tags(&self) -> TagSet {
        TagSet::all()
    }

    fn open_with(
        &self,
        offset: u64,
        filter: TagSet,
        cancel: CancelToken,
    ) -> Result<Cursor, StreamError> {
        Cursor::new(Box::new(RewindingReader), offset, filter, cancel)
    }
}

#[test]
fn restarts_when_the_stream_returns_an_offset_behind_the_handler() {
    let (consumer, restarts) = consumer(Rewinding);
    let stop = consumer.cancel_token().clone();
    let mut handler = Script::new(TagSet::all(), &stop, 1);
    handler.next = 5;
    let log = Arc::clone(&restarts);
    let canceller = stop.clone();
    let mut consumer = consumer.on_restart(move |error, delay| {
        log.lock().unwrap().push((kind(error), delay));
        if log.lock().unwrap().len() == 3 {
            canceller.cancel();
        }
    });
    assert_eq!(consumer.run(&mut handler), Stopped::Cancelled);
    assert!(handler.handled.is_empty());
    assert_eq!(kinds(&restarts), ["behind", "behind", "behind"]);
}

#[test]
fn restarts_when_the_handler_fails_and_redelivers_at_least_once() {
    let (mut consumer, restarts) =
        consumer(memory_with(&[tagged(10, 0), tagged(20, 0), tagged(30, 0)]));
    let stop = consumer.cancel_token().clone();
    let mut handler = Script::new(TagSet::all(), &stop, 3);
    handler.fail_once = vec![20];
    assert_eq!(consumer.run(&mut handler), Stopped::Cancelled);
    // 20 failed, so the consumer restarted from the stored offset (11) and delivered it again.
    assert_eq!(handler.handled, [(0, 10), (11, 20), (21, 30)]);
    assert_eq!(kinds(&restarts), ["handle 20"]);
}

#[test]
fn the_backoff_grows_with_failures_in_a_row_and_resets_after_a_success() {
    let (mut consumer, restarts) = consumer(memory_with(
        &(1..=4).map(|s| tagged(s, 0)).collect::<Vec<_>>(),
    ));
    let stop = consumer.cancel_token().clone();
    let mut handler = Script::new(TagSet::all(), &stop, 4);
    handler.next_offset_failures = 3; // three failures in a row
    handler.fail_once = vec![3]; // then a success (1, 2), then one failure
    assert_eq!(consumer.run(&mut handler), Stopped::Cancelled);
    let delays: Vec<u64> = restarts
        .lock()
        .unwrap()
        .iter()
        .map(|(_, d)| d.as_millis() as u64)
        .collect();
    // Dogma never reset its failure flag, so the last delay would have been 16 ms.
    assert_eq!(delays, [2, 4, 8, 2]);
    assert_eq!(handler.sequences(), [1, 2, 3, 4]);
}

#[test]
fn cancelling_ends_the_backoff_at_once() {
    let (consumer, restarts) = consumer(memory_with(&[tagged(1, 0)]));
    let mut consumer = consumer.with_backoff(Backoff::new(
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    ));
    let stop = consumer.cancel_token().clone();
    let mut handler = Script::new(TagSet::all(), &stop, 100);
    handler.next_offset_failures = 1;
    thread::scope(|s| {
        let canceller = s.spawn(|| {
            while restarts.lock().unwrap().is_empty() {
                thread::sleep(Duration::from_millis(1));
            }
            thread::sleep(Duration::from_millis(10));
            stop.cancel();
        });
        let start = Instant::now();
        assert_eq!(consumer.run(&mut handler), Stopped::Cancelled);
        assert!(start.elapsed() < Duration::from_secs(10));
        canceller.join().unwrap();
    });
    assert!(handler.handled.is_empty());
}

#[test]
fn cancelling_ends_a_wait_for_events_at_once() {
    let stream = MemoryStream::new(100, TagSet::all());
    let cancel = CancelToken::new();
    let mut consumer = Consumer::new(stream.clone()).with_cancel(cancel.clone());
    let mut handler = Script::new(TagSet::all(), &cancel, 100);
    let (handled, seen) = std::sync::mpsc::channel();
    handler.after = Some(Box::new(move |seq| handled.send(seq).unwrap()));
    thread::scope(|s| {
        let run = s.spawn(move || (consumer.run(&mut handler), handler.sequences()));
        stream.append(&[tagged(1, 0)]).unwrap();
        assert_eq!(seen.recv_timeout(Duration::from_secs(10)), Ok(1));
        thread::sleep(Duration::from_millis(20)); // waiting for the next event by now
        cancel.cancel();
        let (stopped, handled) = run.join().unwrap();
        assert_eq!(stopped, Stopped::Cancelled);
        assert_eq!(handled, [1]);
    });
}

#[test]
fn the_concurrency_limit_bounds_handlers_across_consumers() {
    struct Slow {
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        next: u64,
        stop: CancelToken,
    }
    impl Handler for Slow {
        fn tags(&self) -> TagSet {
            TagSet::all()
        }
        fn next_offset(&mut self) -> Result<u64, HandlerError> {
            Ok(self.next)
        }
        fn handle_event(&mut self, _: u64, event: Entry) -> Result<(), HandlerError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(3));
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.next = event.sequence + 1;
            if self.next > 10 {
                self.stop.cancel();
            }
            Ok(())
        }
    }
    let stream = memory_with(&(1..=10).map(|s| tagged(s, 0)).collect::<Vec<_>>());
    let limit = ConcurrencyLimit::new(2);
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    thread::scope(|s| {
        for _ in 0..4 {
            let mut consumer = Consumer::new(&stream).with_limit(limit.clone());
            let mut handler = Slow {
                running: Arc::clone(&running),
                most: Arc::clone(&most),
                next: 0,
                stop: consumer.cancel_token().clone(),
            };
            s.spawn(move || assert_eq!(consumer.run(&mut handler), Stopped::Cancelled));
        }
    });
    assert_eq!(most.load(Ordering::SeqCst), 2);
    assert_eq!(limit.in_use(), 0);
}
