//! The dedupe buffer through its public API: Calico's test cases ported (SyncNoDupes,
//! SyncWithDupes, the Typha resync cases, Async with a blocking sink), plus the memory bound,
//! stop semantics and the lost wake-up Calico's resync could have.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ringledger::dedupe::{
    Change, Config, DedupeBuffer, Event, Overflow, PushError, RecvError, Sink, Status, Update,
};
use ringledger::wait::Deadline;

type Buffer = DedupeBuffer<String, String, Status>;

/// Calico's `Receiver`: applies what it gets and records it as text.
#[derive(Default)]
struct Receiver {
    values: BTreeMap<String, String>,
    seen: Vec<String>,
    status: Option<Status>,
}

impl Receiver {
    fn apply(&mut self, update: Update<String, String>) {
        let line = match &update {
            Update::New(k, v) => format!("{k}={v} (new)"),
            Update::Updated(k, v) => format!("{k}={v} (updated)"),
            Update::Deleted(k) => format!("{k}= (deleted)"),
        };
        match update {
            Update::New(k, v) | Update::Updated(k, v) => {
                self.values.insert(k, v);
            }
            Update::Deleted(k) => {
                self.values.remove(&k);
            }
        }
        self.seen.push(line);
    }

    fn status(&mut self, status: Status) {
        self.seen.push(format!("{status:?}"));
        self.status = Some(status);
    }

    fn take_seen(&mut self) -> Vec<String> {
        std::mem::take(&mut self.seen)
    }

    fn values(&self) -> Vec<(&str, &str)> {
        self.values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// Calico's `sendNextBatchToSinkNoBlock`: delivers everything queued, synchronously.
fn send_next_batch_sync(buffer: &Buffer, rec: &mut Receiver) {
    let mut delivered = 0;
    while let Ok(batch) = buffer.next_batch(100, Deadline::IMMEDIATE) {
        delivered += batch.len();
        for event in batch {
            match event {
                Event::Update(u) => rec.apply(u),
                Event::Status(s) => rec.status(s),
            }
        }
    }
    assert!(delivered > 0, "nothing was queued");
}

fn kv(key: &str, value: &str) -> Change<String, String> {
    if value.is_empty() {
        Change::Delete(key.to_owned())
    } else {
        Change::Upsert(key.to_owned(), value.to_owned())
    }
}

fn on_updates(buffer: &Buffer, changes: &[(&str, &str)]) {
    let mut batch: Vec<_> = changes.iter().map(|(k, v)| kv(k, v)).collect();
    buffer.push_updates(&mut batch).unwrap();
    assert!(batch.is_empty());
}

fn status(buffer: &Buffer, status: Status) {
    buffer.push_status(status).unwrap();
}

use Status::{InSync, ResyncInProgress, WaitForDatastore};

#[test]
fn sync_no_dupes() {
    let d = Buffer::new();
    let mut rec = Receiver::default();
    status(&d, WaitForDatastore);
    status(&d, ResyncInProgress);
    on_updates(&d, &[("foo", "bar")]);
    on_updates(&d, &[("foo2", "bar2")]);
    status(&d, InSync);
    send_next_batch_sync(&d, &mut rec);
    assert_eq!(rec.values(), [("foo", "bar"), ("foo2", "bar2")]);
    assert_eq!(rec.status, Some(InSync));
    assert_eq!(
        rec.take_seen(),
        [
            "ResyncInProgress",
            "foo=bar (new)",
            "foo2=bar2 (new)",
            "InSync"
        ]
    );

    // A deletion of a live key is sent.
    on_updates(&d, &[("foo", "")]);
    send_next_batch_sync(&d, &mut rec);
    assert_eq!(rec.values(), [("foo2", "bar2")]);
    assert_eq!(rec.take_seen(), ["foo= (deleted)"]);

    // A deletion reverted before being sent: only the new value goes out.
    on_updates(&d, &[("foo2", "")]);
    on_updates(&d, &[("foo2", "bar3")]);
    send_next_batch_sync(&d, &mut rec);
    assert_eq!(rec.values(), [("foo2", "bar3")]);
    assert_eq!(rec.take_seen(), ["foo2=bar3 (updated)"]);

    // Re-adding a deleted key makes it new again.
    on_updates(&d, &[("foo", "bar")]);
    on_updates(&d, &[("foo2", "bar2")]);
    send_next_batch_sync(&d, &mut rec);
    assert_eq!(rec.values(), [("foo", "bar"), ("foo2", "bar2")]);
    assert_eq!(rec.take_seen(), ["foo=bar (new)", "foo2=bar2 (updated)"]);
    assert_eq!(rec.status, Some(InSync));
}

#[test]
fn sync_with_dupes() {
    let d = Buffer::new();
    let mut rec = Receiver::default();
    status(&d, WaitForDatastore);
    status(&d, ResyncInProgress);
    on_updates(&d, &[("foo", "bar")]);
    on_updates(&d, &[("foo2", "bar2")]);
    on_updates(&d, &[("foo3", "bar3")]);
    on_updates(&d, &[("foo", "bar3")]);
    on_updates(&d, &[("foo2", "")]);
    status(&d, InSync);
    status(&d, ResyncInProgress);
    status(&d, ResyncInProgress);
    status(&d, InSync);
    send_next_batch_sync(&d, &mut rec);
    assert_eq!(rec.values(), [("foo", "bar3"), ("foo3", "bar3")]);
    assert_eq!(rec.status, Some(InSync));
    assert_eq!(
        rec.take_seen(),
        // foo=bar3 takes foo's slot; foo2 was created and deleted unseen.
        [
            "ResyncInProgress",
            "foo=bar3 (new)",
            "foo3=bar3 (new)",
            "InSync"
        ]
    );
}

/// The initial snapshot of the resync cases: key1..key3 sent and in sync.
fn initial_snapshot(d: &Buffer, rec: &mut Receiver, keys: &[(&str, &str)]) {
    status(d, WaitForDatastore);
    status(d, ResyncInProgress);
    for &(k, v) in keys {
        on_updates(d, &[(k, v)]);
    }
    status(d, InSync);
    send_next_batch_sync(d, rec);
    let mut expected = vec!["ResyncInProgress".to_owned()];
    expected.extend(keys.iter().map(|(k, v)| format!("{k}={v} (new)")));
    expected.push("InSync".to_owned());
    assert_eq!(rec.take_seen(), expected);
}

fn reconnect(d: &Buffer) {
    d.restart_snapshot();
    status(d, WaitForDatastore);
    status(d, ResyncInProgress);
}

#[test]
fn resync_mainline() {
    let d = Buffer::new();
    let mut rec = Receiver::default();
    initial_snapshot(
        &d,
        &mut rec,
        &[("key1", "v1"), ("key2", "v2"), ("key3", "v3")],
    );
    reconnect(&d);
    on_updates(&d, &[("key1", "v1")]); // same
    on_updates(&d, &[("key2", "v2b")]); // changed
    on_updates(&d, &[("key4", "v4")]); // key3 deleted during the disconnection
    status(&d, InSync);
    send_next_batch_sync(&d, &mut rec);
    assert_eq!(
        rec.values(),
        [("key1", "v1"), ("key2", "v2b"), ("key4", "v4")]
    );
    assert_eq!(
        rec.take_seen(),
        [
            "ResyncInProgress",
            "key1=v1 (updated)",
            "key2=v2b (updated)",
            "key4=v4 (new)",
            "key3= (deleted)",
            "InSync"
        ]
    );
}

#[test]
fn double_resync_without_flush_throws_the_first_away() {
    let d = Buffer::new();
    let mut rec = Receiver::default();
    initial_snapshot(
        &d,
        &mut rec,
        &[("key1", "v1"), ("key2", "v2"), ("key3", "v3")],
    );
    reconnect(&d);
    on_updates(&d, &[("key1", "v1")]);
    on_updates(&d, &[("key2", "v2b")]);
    on_updates(&d, &[("key4", "v4")]);
    reconnect(&d);
    on_updates(&d, &[("key1", "v1b")]);
    on_updates(&d, &[("key2", "v2")]);
    on_updates(&d, &[("key4", "v4")]);
    status(&d, InSync);
    send_next_batch_sync(&d, &mut rec);
    assert_eq!(
        rec.values(),
        [("key1", "v1b"), ("key2", "v2"), ("key4", "v4")]
    );
    assert_eq!(
        rec.take_seen(),
        [
            "ResyncInProgress",
            "key1=v1b (updated)",
            "key2=v2 (updated)",
            "key4=v4 (new)",
            "key3= (deleted)",
            "InSync"
        ]
    );
}

#[test]
fn double_resync_after_flush() {
    let d = Buffer::new();
    let mut rec = Receiver::default();
    initial_snapshot(
        &d,
        &mut rec,
        &[("key1", "v1"), ("key2", "v2"), ("key3", "v3")],
    );
    reconnect(&d);
    on_updates(&d, &[("key1", "v1")]);
    on_updates(&d, &[("key2", "v2b")]);
    on_updates(&d, &[("key4", "v4")]);
    send_next_batch_sync(&d, &mut rec); // flushed before the in-sync
    on_updates(&d, &[("key5", "v5")]); // thrown away by the restart
    reconnect(&d);
    on_updates(&d, &[("key1", "v1b")]);
    on_updates(&d, &[("key2", "v2")]);
    on_updates(&d, &[("key4", "v4")]);
    status(&d, InSync);
    send_next_batch_sync(&d, &mut rec);
    assert_eq!(
        rec.values(),
        [("key1", "v1b"), ("key2", "v2"), ("key4", "v4")]
    );
    assert_eq!(
        rec.take_seen(),
        [
            "ResyncInProgress",
            "key1=v1 (updated)",
            "key2=v2b (updated)",
            "key4=v4 (new)",
            "ResyncInProgress",
            "key1=v1b (updated)",
            "key2=v2 (updated)",
            "key4=v4 (updated)",
            "key3= (deleted)", // only deleted at the in-sync
            "InSync"
        ]
    );
}

#[test]
fn resync_with_nothing_to_delete() {
    let d = Buffer::new();
    let mut rec = Receiver::default();
    initial_snapshot(&d, &mut rec, &[("key1", "v1"), ("key2", "v2")]);
    reconnect(&d);
    on_updates(&d, &[("key1", "v1")]);
    on_updates(&d, &[("key2", "v2b")]);
    status(&d, InSync);
    send_next_batch_sync(&d, &mut rec);
    assert_eq!(
        rec.take_seen(),
        [
            "ResyncInProgress",
            "key1=v1 (updated)",
            "key2=v2b (updated)",
            "InSync"
        ]
    );
}

/// Calico's version could drop the in-sync that ends a resync when it equals the status before
/// the restart, leaving the consumer waiting forever for the reconciling deletes.
#[test]
fn in_sync_right_after_a_restart_is_not_lost() {
    let d = Arc::new(Buffer::new());
    let mut rec = Receiver::default();
    initial_snapshot(&d, &mut rec, &[("keep", "v1"), ("drop", "v2")]);
    let consumer = {
        let d = d.clone();
        thread::spawn(move || d.next_batch(100, Deadline::Timeout(Duration::from_secs(10))))
    };
    thread::sleep(Duration::from_millis(20)); // let the consumer park
    d.restart_snapshot();
    on_updates(&d, &[("keep", "v1-updated")]);
    status(&d, InSync); // equals the last status before the restart
    let mut batch = consumer.join().unwrap().unwrap();
    if batch.len() < 3 {
        batch.extend(d.next_batch(100, Deadline::IMMEDIATE).unwrap());
    }
    assert_eq!(
        batch,
        [
            Event::Update(Update::Updated("keep".into(), "v1-updated".into())),
            Event::Update(Update::Deleted("drop".into())),
            Event::Status(InSync),
        ]
    );
}

#[test]
fn delete_of_a_key_never_seen_is_dropped() {
    let d = Buffer::new();
    let mut rec = Receiver::default();
    status(&d, ResyncInProgress);
    on_updates(&d, &[("never-existed", "")]);
    status(&d, InSync);
    send_next_batch_sync(&d, &mut rec);
    assert!(rec.values().is_empty());
    // Nothing separates the two statuses any more, so the second overwrites the first
    // (Calico forwards the delete instead; with a live-key set there is nothing to delete).
    assert_eq!(rec.take_seen(), ["InSync"]);
}

#[test]
fn statuses_pass_through_in_steady_state() {
    let d = Buffer::new();
    let mut rec = Receiver::default();
    status(&d, ResyncInProgress);
    send_next_batch_sync(&d, &mut rec);
    on_updates(&d, &[("foo", "bar")]);
    status(&d, InSync);
    send_next_batch_sync(&d, &mut rec);
    assert_eq!(
        rec.take_seen(),
        ["ResyncInProgress", "foo=bar (new)", "InSync"]
    );
}

/// A sink that records like [`Receiver`] and can be made to block after its next call.
#[derive(Default)]
struct BlockingSink {
    state: Mutex<(Receiver, bool)>,
    unblocked: Condvar,
}

impl BlockingSink {
    fn block_after_next_update(&self) {
        self.state.lock().unwrap().1 = true;
    }
    fn unblock(&self) {
        self.state.lock().unwrap().1 = false;
        self.unblocked.notify_all();
    }
    fn eventually<T: PartialEq + std::fmt::Debug>(&self, f: impl Fn(&Receiver) -> T, want: T) {
        let start = Instant::now();
        loop {
            let got = f(&self.state.lock().unwrap().0);
            if got == want {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{got:?} != {want:?}"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Sink<String, String, Status> for &BlockingSink {
    fn on_updates(&mut self, updates: std::vec::Drain<'_, Update<String, String>>) {
        let mut state = self.state.lock().unwrap();
        for u in updates {
            state.0.apply(u);
        }
        while state.1 {
            state = self.unblocked.wait(state).unwrap();
        }
    }
    fn on_status(&mut self, status: Status) {
        self.state.lock().unwrap().0.status(status);
    }
}

#[test]
fn async_with_a_blocking_sink() {
    let d = Buffer::new();
    let sink = BlockingSink::default();
    thread::scope(|s| {
        s.spawn(|| d.run_to_sink(&mut &sink));
        sink.block_after_next_update();
        on_updates(
            &d,
            &[
                ("key1", "1a"),
                ("key2", "2a"),
                ("key3", "3a"),
                ("key4", "4a"),
            ],
        );
        let all4 = vec![
            ("key1".into(), "1a".into()),
            ("key2".into(), "2a".into()),
            ("key3".into(), "3a".into()),
            ("key4".into(), "4a".into()),
        ];
        sink.eventually(|r| r.values.clone().into_iter().collect::<Vec<_>>(), all4);
        sink.state.lock().unwrap().0.take_seen();

        // The sink is blocked now.
        on_updates(
            &d,
            &[
                ("key1", "1a"), // no-op update
                ("key2", "2b"), // genuine change
                ("key3", "3b"), // genuine change, twice
                ("key4", ""),   // delete
                ("key5", "5a"), // add
                ("key6", "6a"), // add
                ("key7", "7a"), // add
            ],
        );
        status(&d, InSync);
        status(&d, ResyncInProgress);
        status(&d, ResyncInProgress);
        on_updates(
            &d,
            &[
                ("key1", "1a"), // no-op update
                ("key3", "3c"), // replaces 3b
                ("key5", ""),   // deleted before ever being sent
                ("key7", "7b"), // updated before ever being sent
                ("key8", "8a"), // add
            ],
        );
        status(&d, InSync);
        status(&d, ResyncInProgress);
        status(&d, InSync);
        sink.unblock();

        sink.eventually(|r| r.status, Some(InSync));
        let state = sink.state.lock().unwrap();
        assert_eq!(
            state.0.values(),
            [
                ("key1", "1a"),
                ("key2", "2b"),
                ("key3", "3c"),
                ("key6", "6a"),
                ("key7", "7b"),
                ("key8", "8a")
            ]
        );
        assert_eq!(
            state.0.seen,
            [
                "key1=1a (updated)", // only queued entries are deduplicated
                "key2=2b (updated)",
                "key3=3c (updated)",
                "key4= (deleted)",
                "key6=6a (new)",
                "key7=7b (new)",
                "ResyncInProgress",
                "key8=8a (new)",
                "InSync",
            ]
        );
        drop(state);
        d.stop();
    });
}

#[test]
fn max_pending_rejects_only_new_keys_and_hands_them_back() {
    let d = Buffer::with_config(Config::default().max_pending(2, Overflow::Reject));
    let mut changes = vec![kv("a", "1"), kv("b", "1"), kv("c", "1"), kv("a", "2")];
    assert_eq!(d.push_updates(&mut changes), Err(PushError::Full));
    assert_eq!(changes, [kv("c", "1"), kv("a", "2")]);
    assert_eq!(d.push(kv("a", "3")), Ok(())); // replaces: always fits
    assert_eq!(d.push(kv("c", "1")), Err(PushError::Full));
    assert_eq!(d.push_status(InSync), Ok(())); // statuses always fit
    assert_eq!(d.stats().pending_keys, 2);
    let batch = d.next_batch(100, Deadline::IMMEDIATE).unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(d.push(kv("c", "1")), Ok(()));
}

#[test]
fn max_pending_blocks_until_the_consumer_makes_room_or_the_deadline() {
    let timeout = Overflow::Block(Deadline::Timeout(Duration::from_millis(30)));
    let d = Buffer::with_config(Config::default().max_pending(1, timeout));
    d.push(kv("a", "1")).unwrap();
    let start = Instant::now();
    assert_eq!(d.push(kv("b", "1")), Err(PushError::TimedOut));
    assert!(start.elapsed() >= Duration::from_millis(30));

    let forever = Overflow::Block(Deadline::Forever);
    let d = Buffer::with_config(Config::default().max_pending(1, forever));
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..100 {
                d.push(kv(&format!("k{i}"), "v")).unwrap();
            }
            d.stop_and_flush();
        });
        let mut got = 0;
        while let Ok(batch) = d.next_batch(100, Deadline::Forever) {
            assert_eq!(batch.len(), 1);
            got += 1;
        }
        assert_eq!(got, 100);
    });
}

#[test]
fn stop_drops_the_queue_and_wakes_everyone() {
    let d =
        Buffer::with_config(Config::default().max_pending(1, Overflow::Block(Deadline::Forever)));
    d.push(kv("a", "1")).unwrap();
    thread::scope(|s| {
        let producer = s.spawn(|| d.push(kv("b", "1")));
        thread::sleep(Duration::from_millis(20));
        d.stop();
        assert_eq!(producer.join().unwrap(), Err(PushError::Stopped));
    });
    assert_eq!(
        d.next_batch(100, Deadline::Forever),
        Err(RecvError::Stopped)
    );
    assert_eq!(d.stats().pending_keys, 0);

    let d = Buffer::new();
    thread::scope(|s| {
        let consumer = s.spawn(|| d.next_batch(100, Deadline::Forever));
        thread::sleep(Duration::from_millis(20));
        d.stop();
        assert_eq!(consumer.join().unwrap(), Err(RecvError::Stopped));
    });
}

#[test]
fn stop_and_flush_delivers_everything_queued_first() {
    let d = Buffer::new();
    on_updates(&d, &[("a", "1"), ("b", "1")]);
    d.stop_and_flush();
    assert_eq!(d.push(kv("c", "1")), Err(PushError::Stopped));
    assert_eq!(d.push_status(InSync), Err(PushError::Stopped));
    assert_eq!(d.next_batch(1, Deadline::Forever).unwrap().len(), 1);
    assert_eq!(d.next_batch(1, Deadline::Forever).unwrap().len(), 1);
    assert_eq!(d.next_batch(1, Deadline::Forever), Err(RecvError::Stopped));
}

/// Four producers write 10 rounds over 1,000 keys each into a sink slower than they are; the
/// queue never holds more than the distinct keys, and the sink ends with every last value.
#[test]
fn stress_four_producers_slow_sink_memory_bound() {
    const KEYS: usize = if cfg!(miri) { 40 } else { 1_000 };
    const ROUNDS: usize = if cfg!(miri) { 3 } else { 10 };
    let d = DedupeBuffer::<usize, usize, Status>::new();
    #[derive(Default)]
    struct Slow {
        values: BTreeMap<usize, usize>,
        calls: usize,
    }
    impl Sink<usize, usize, Status> for Slow {
        fn on_updates(&mut self, updates: std::vec::Drain<'_, Update<usize, usize>>) {
            self.calls += 1;
            thread::sleep(Duration::from_micros(200));
            for u in updates {
                match u {
                    Update::New(k, v) | Update::Updated(k, v) => {
                        self.values.insert(k, v);
                    }
                    Update::Deleted(k) => {
                        self.values.remove(&k);
                    }
                }
            }
        }
        fn on_status(&mut self, _: Status) {}
    }
    let mut sink = Slow::default();
    thread::scope(|s| {
        let consumer = s.spawn(|| d.run_to_sink(&mut sink));
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let d = &d;
                s.spawn(move || {
                    let mut batch = Vec::with_capacity(50);
                    for round in 0..ROUNDS {
                        for k in (p..KEYS).step_by(4) {
                            batch.push(Change::Upsert(k, round));
                            if batch.len() == 50 {
                                d.push_updates(&mut batch).unwrap();
                            }
                        }
                    }
                    d.push_updates(&mut batch).unwrap();
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let stats = d.stats();
        assert!(stats.peak_pending_keys <= KEYS, "{stats:?}");
        assert!(
            stats.queued_slots <= 2 * stats.pending_keys + 64,
            "{stats:?}"
        );
        d.stop_and_flush();
        consumer.join().unwrap();
    });
    assert_eq!(sink.values.len(), KEYS);
    assert!(sink.values.values().all(|&v| v == ROUNDS - 1));
    if !cfg!(miri) {
        let calls = sink.calls;
        assert!(
            calls < KEYS * ROUNDS / 100,
            "dedupe must collapse updates: {calls}"
        );
    }
}

#[test]
fn memory_is_given_back_after_a_burst() {
    let d = DedupeBuffer::<u32, u32, Status>::new();
    let keys: u32 = if cfg!(miri) { 2_000 } else { 50_000 };
    let mut burst: Vec<_> = (0..keys).map(|k| Change::Upsert(k, k)).collect();
    d.push_updates(&mut burst).unwrap();
    let peak = d.stats();
    assert_eq!(peak.pending_keys, keys as usize);
    while d.next_batch(1000, Deadline::IMMEDIATE).is_ok() {}
    let after = d.stats();
    assert_eq!(after.pending_keys, 0);
    assert!(
        after.slot_capacity < peak.slot_capacity / 100,
        "{after:?} vs {peak:?}"
    );
    // Deleting every key gives the live set's memory back too.
    let mut deletes: Vec<_> = (0..keys).map(Change::Delete).collect();
    d.push_updates(&mut deletes).unwrap();
    while d.next_batch(1000, Deadline::IMMEDIATE).is_ok() {}
    assert_eq!(d.stats().live_keys, 0);
}

#[test]
fn bounded_buffer_with_blocked_producers_hands_the_rest_back_on_timeout() {
    let timeout = Overflow::Block(Deadline::Timeout(Duration::from_millis(5)));
    let d =
        DedupeBuffer::<u32, u32, Status>::with_config(Config::default().max_pending(10, timeout));
    let mut changes: Vec<_> = (0..25).map(|k| Change::Upsert(k, k)).collect();
    assert_eq!(d.push_updates(&mut changes), Err(PushError::TimedOut));
    assert_eq!(changes.len(), 15);
    assert_eq!(changes[0], Change::Upsert(10, 10));
    assert_eq!(d.next_batch(100, Deadline::IMMEDIATE).unwrap().len(), 10);
    assert_eq!(d.push_updates(&mut changes), Err(PushError::TimedOut));
    assert_eq!(changes.len(), 5);
    assert_eq!(
        RecvError::TimedOut.to_string(),
        "timed out waiting for updates"
    );
}

/// The audit's repro through the public API, also through `run_to_sink`'s code path: push `a`,
/// push `x`, delete `a` (never seen: it must vanish), then take a batch.
#[test]
fn a_deleted_oldest_key_vanishes_without_a_panic() {
    let buffer = DedupeBuffer::<&str, u32, Status>::new();
    buffer.push(Change::Upsert("a", 1)).unwrap();
    buffer.push(Change::Upsert("x", 2)).unwrap();
    buffer.push(Change::Delete("a")).unwrap();
    buffer.push_status(Status::InSync).unwrap();
    buffer.push(Change::Upsert("b", 3)).unwrap();
    buffer.push(Change::Delete("x")).unwrap();
    let batch = buffer.next_batch(10, Deadline::IMMEDIATE).unwrap();
    assert_eq!(
        batch,
        [
            Event::Status(Status::InSync),
            Event::Update(Update::New("b", 3))
        ]
    );
}
