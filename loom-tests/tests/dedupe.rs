//! Loom models of the dedupe buffer's enqueue / dequeue / stop protocol
//! (`ringledger::dedupe`), one property each, through loom's `Mutex` and `Condvar`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use ringledger::dedupe::{
    Change, Config, DedupeBuffer, Event, Overflow, RecvError, Status, Update,
};
use ringledger::wait::Deadline;

type Buffer = DedupeBuffer<u8, u8, Status>;

#[test]
fn a_waiting_consumer_wakes_on_push() {
    loom::model(|| {
        let buffer = Arc::new(Buffer::new());
        let producer = {
            let buffer = buffer.clone();
            thread::spawn(move || buffer.push(Change::Upsert(1, 1)).unwrap())
        };
        let batch = buffer.next_batch(10, Deadline::Forever).unwrap();
        assert_eq!(batch, [Event::Update(Update::New(1, 1))]);
        producer.join().unwrap();
    });
}

#[test]
fn stop_wakes_a_waiting_consumer() {
    loom::model(|| {
        let buffer = Arc::new(Buffer::new());
        let stopper = {
            let buffer = buffer.clone();
            thread::spawn(move || buffer.stop())
        };
        assert_eq!(
            buffer.next_batch(10, Deadline::Forever),
            Err(RecvError::Stopped)
        );
        stopper.join().unwrap();
    });
}

#[test]
fn stop_and_flush_delivers_what_was_pushed_first() {
    loom::model(|| {
        let buffer = Arc::new(Buffer::new());
        let producer = {
            let buffer = buffer.clone();
            thread::spawn(move || {
                buffer.push(Change::Upsert(1, 1)).unwrap();
                buffer.push(Change::Upsert(1, 2)).unwrap();
                buffer.stop_and_flush();
            })
        };
        let mut last = None;
        while let Ok(batch) = buffer.next_batch(10, Deadline::Forever) {
            for event in batch {
                if let Event::Update(update) = event {
                    last = update.value().copied();
                }
            }
        }
        assert_eq!(last, Some(2), "the final value is always delivered");
        producer.join().unwrap();
    });
}

#[test]
fn a_producer_blocked_on_max_pending_wakes_when_the_consumer_takes() {
    loom::model(|| {
        let config = Config::default().max_pending(1, Overflow::Block(Deadline::Forever));
        let buffer = Arc::new(Buffer::with_config(config));
        buffer.push(Change::Upsert(1, 1)).unwrap();
        let producer = {
            let buffer = buffer.clone();
            thread::spawn(move || buffer.push(Change::Upsert(2, 2)).unwrap())
        };
        let first = buffer.next_batch(10, Deadline::Forever).unwrap();
        assert_eq!(first, [Event::Update(Update::New(1, 1))]);
        let second = buffer.next_batch(10, Deadline::Forever).unwrap();
        assert_eq!(second, [Event::Update(Update::New(2, 2))]);
        producer.join().unwrap();
    });
}
