//! Loom models of the waiting protocol (`ringledger::wait`) and the blocking buffers built on
//! it (`ringledger::blocking`), one property each. Every wait here is `Deadline::Forever`:
//! loom has no clock, and a lost wake-up shows up as a deadlock loom reports.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use ringledger::blocking::{mpsc, spsc, PopError, PushError};
use ringledger::wait::{CancelToken, Deadline, Notified, WaitError, Waiters};

/// publish; notify (fence, check sleepers) never loses the wake-up of a sleeper that
/// registers, fences and re-checks, for waiters made by `make`.
fn never_loses_a_wakeup<N: Notified>(make: fn() -> Waiters<N>) {
    loom::model(move || {
        let ready = Arc::new(AtomicBool::new(false));
        let waiters = Arc::new(make());
        let notifier = {
            let (ready, waiters) = (ready.clone(), waiters.clone());
            thread::spawn(move || {
                ready.store(true, Ordering::Relaxed);
                waiters.notify();
            })
        };
        let got = waiters.wait_until(Deadline::Forever, None, || {
            ready.load(Ordering::Relaxed).then_some(())
        });
        assert_eq!(got, Ok(()));
        notifier.join().unwrap();
    });
}

#[test]
fn waiter_flag_protocol_never_loses_a_wakeup() {
    never_loses_a_wakeup(Waiters::new);
}

/// The same for waiters of a rarely notified condition (`Waiters::parking`, a ledger's head):
/// a read-modify-write of the sleeper count and a full fence instead of the light/heavy pair.
#[test]
fn rare_waiters_never_lose_a_wakeup() {
    never_loses_a_wakeup(Waiters::parking);
}

#[test]
fn cancel_wakes_a_registered_waiter() {
    loom::model(|| {
        let token = CancelToken::new();
        let waiters = Waiters::new();
        let canceller = {
            let token = token.clone();
            thread::spawn(move || token.cancel())
        };
        let got: Result<(), _> = waiters.wait_until(Deadline::Forever, Some(&token), || None);
        assert_eq!(got, Err(WaitError::Cancelled));
        canceller.join().unwrap();
    });
}

#[test]
fn spsc_pop_wakes_when_an_item_is_pushed() {
    loom::model(|| {
        let (mut producer, mut consumer) = spsc::channel::<u32>(1);
        let writer = thread::spawn(move || {
            producer.push(7, Deadline::Forever).unwrap();
            producer // keep the buffer open until joined
        });
        assert_eq!(consumer.pop(Deadline::Forever), Ok(7));
        drop(writer.join().unwrap());
    });
}

#[test]
fn spsc_push_wakes_when_room_is_made() {
    loom::model(|| {
        let (mut producer, mut consumer) = spsc::channel::<u32>(1);
        producer.try_push(1).unwrap();
        let writer = thread::spawn(move || {
            producer.push(2, Deadline::Forever).unwrap();
            producer
        });
        assert_eq!(consumer.pop(Deadline::Forever), Ok(1));
        assert_eq!(consumer.pop(Deadline::Forever), Ok(2));
        drop(writer.join().unwrap());
    });
}

#[test]
fn close_after_push_drains_then_reports_closed() {
    loom::model(|| {
        let (mut producer, mut consumer) = spsc::channel::<u32>(2);
        let writer = thread::spawn(move || {
            producer.push(1, Deadline::Forever).unwrap();
            drop(producer); // closes
        });
        assert_eq!(consumer.pop(Deadline::Forever), Ok(1));
        assert_eq!(consumer.pop(Deadline::Forever), Err(PopError::Closed));
        writer.join().unwrap();
    });
}

#[test]
fn close_wakes_a_producer_waiting_for_room() {
    loom::model(|| {
        let (producer, consumer) = mpsc::channel::<u32>(2);
        producer.try_push(1).unwrap();
        producer.try_push(2).unwrap();
        let closer = thread::spawn(move || consumer.close());
        assert_eq!(
            producer.push(3, Deadline::Forever),
            Err(PushError::Closed(3))
        );
        closer.join().unwrap();
    });
}

#[test]
fn mpsc_pop_wakes_for_either_producer() {
    loom::model(|| {
        let (producer, mut consumer) = mpsc::channel::<u32>(2);
        let second = producer.clone();
        let a = thread::spawn(move || producer.push(1, Deadline::Forever).unwrap());
        let b = thread::spawn(move || second.push(2, Deadline::Forever).unwrap());
        let mut sum = consumer.pop(Deadline::Forever).unwrap();
        sum += consumer.pop(Deadline::Forever).unwrap();
        assert_eq!(sum, 3);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(consumer.pop(Deadline::Forever), Err(PopError::Closed));
    });
}

/// The close race on the blocking MPSC buffer: a push racing a close by another producer
/// returns `Ok` only if the consumer, popping until `Closed`, receives the item.
#[test]
fn mpsc_ok_push_racing_close_reaches_the_consumer() {
    loom::model(|| {
        let (producer, mut consumer) = mpsc::channel::<u32>(2);
        let closer = producer.clone();
        let pusher = thread::spawn(move || producer.try_push(7).is_ok());
        let close = thread::spawn(move || closer.close());
        let mut got = Vec::new();
        while let Ok(item) = consumer.pop(Deadline::Forever) {
            got.push(item);
        }
        close.join().unwrap();
        let pushed = pusher.join().unwrap();
        assert_eq!(got, if pushed { vec![7] } else { vec![] });
    });
}

/// The SPSC buffer closed by its producer after a push: the consumer gets the item, then
/// `Closed` (the producer is one thread, so its close is ordered after its pushes).
#[test]
fn spsc_close_by_the_producer_after_a_push_loses_nothing() {
    loom::model(|| {
        let (mut producer, mut consumer) = spsc::channel::<u32>(2);
        let writer = thread::spawn(move || {
            let ok = producer.try_push(1).is_ok();
            producer.close();
            ok
        });
        let mut got = Vec::new();
        while let Ok(item) = consumer.pop(Deadline::Forever) {
            got.push(item);
        }
        assert!(writer.join().unwrap());
        assert_eq!(got, [1]);
    });
}
