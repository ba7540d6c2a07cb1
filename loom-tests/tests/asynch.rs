//! Loom models of tasks waiting (feature `async`): the waker registration of
//! `Waiters::poll_until` and the blocking buffers' futures against pushes, notifies, closes
//! and cancellations, one property each. A lost wake-up leaves `loom::future::block_on`
//! blocked with no thread to run, which loom reports as a deadlock.
#![cfg(loom)]

use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use ringledger::blocking::{mpsc, spsc, PopError, PushError};
use ringledger::wait::{CancelToken, TaskSlot, WaitError, Waiters};

/// publish; notify never loses the wake-up of a task that registers its waker and re-checks.
#[test]
fn a_registered_task_is_never_missed_by_a_notify() {
    loom::model(|| {
        let ready = Arc::new(AtomicBool::new(false));
        let waiters = Arc::new(Waiters::new());
        let notifier = {
            let (ready, waiters) = (ready.clone(), waiters.clone());
            thread::spawn(move || {
                ready.store(true, Ordering::Relaxed);
                waiters.notify();
            })
        };
        let mut slot = TaskSlot::new();
        let got = loom::future::block_on(poll_fn(|cx| {
            waiters.poll_until(cx, &mut slot, None, || {
                ready.load(Ordering::Relaxed).then_some(())
            })
        }));
        assert_eq!(got, Ok(()));
        notifier.join().unwrap();
        assert!(!waiters.has_sleepers());
    });
}

/// A cancel wakes a registered task, which then reports `Cancelled`.
#[test]
fn cancel_wakes_a_registered_task() {
    loom::model(|| {
        let token = CancelToken::new();
        let waiters = Waiters::new();
        let canceller = {
            let token = token.clone();
            thread::spawn(move || token.cancel())
        };
        let mut slot = TaskSlot::new();
        let got = loom::future::block_on(poll_fn(|cx| {
            waiters.poll_until::<()>(cx, &mut slot, Some(&token), || None)
        }));
        assert_eq!(got, Err(WaitError::Cancelled));
        canceller.join().unwrap();
    });
}

/// A task that gives up its wait (drops its slot) while a notify runs leaves no sleeper once
/// a later notify has run: notifiers go back to the fast path.
#[test]
fn a_dropped_registration_racing_a_notify_leaves_no_sleeper() {
    loom::model(|| {
        let waiters = Arc::new(Waiters::new());
        let notifier = {
            let waiters = waiters.clone();
            thread::spawn(move || waiters.notify())
        };
        let mut slot = TaskSlot::new();
        let mut cx = Context::from_waker(Waker::noop());
        let polled = waiters.poll_until::<()>(&mut cx, &mut slot, None, || None);
        assert_eq!(polled, Poll::Pending);
        drop(slot); // cancelled
        notifier.join().unwrap();
        waiters.notify();
        assert!(!waiters.has_sleepers());
    });
}

#[test]
fn a_task_popping_is_woken_by_a_push() {
    loom::model(|| {
        let (mut producer, mut consumer) = spsc::channel::<u32>(1);
        let writer = thread::spawn(move || {
            producer.try_push(7).unwrap();
            producer // keep the buffer open until joined
        });
        assert_eq!(loom::future::block_on(consumer.pop_async()), Ok(7));
        drop(writer.join().unwrap());
    });
}

#[test]
fn a_task_pushing_is_woken_when_room_is_made() {
    loom::model(|| {
        let (producer, mut consumer) = mpsc::channel::<u32>(2);
        producer.try_push(1).unwrap();
        producer.try_push(2).unwrap();
        let reader = thread::spawn(move || {
            assert_eq!(consumer.try_pop(), Ok(1));
            consumer
        });
        assert_eq!(loom::future::block_on(producer.push_async(3)), Ok(()));
        let mut consumer = reader.join().unwrap();
        assert_eq!((consumer.try_pop(), consumer.try_pop()), (Ok(2), Ok(3)));
    });
}

#[test]
fn close_wakes_a_task_waiting_to_push() {
    loom::model(|| {
        let (producer, consumer) = mpsc::channel::<u32>(2);
        producer.try_push(1).unwrap();
        producer.try_push(2).unwrap();
        let closer = thread::spawn(move || consumer.close());
        assert_eq!(
            loom::future::block_on(producer.push_async(3)),
            Err(PushError::Closed(3))
        );
        closer.join().unwrap();
    });
}

#[test]
fn close_wakes_a_task_waiting_to_pop() {
    loom::model(|| {
        let (producer, mut consumer) = spsc::channel::<u32>(1);
        let closer = thread::spawn(move || producer.close());
        assert_eq!(
            loom::future::block_on(consumer.pop_async()),
            Err(PopError::Closed)
        );
        closer.join().unwrap();
    });
}
