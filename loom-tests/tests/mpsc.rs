//! Loom models of the MPSC ring, one property each.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use ringledger_core::mpsc;

/// Pops one item, yielding while the ring is empty.
fn pop<T>(consumer: &mut mpsc::Consumer<'_, T>) -> T {
    loop {
        if let Some(item) = consumer.pop() {
            return item;
        }
        thread::yield_now();
    }
}

#[test]
fn two_producers_never_fail_while_there_is_room() {
    loom::model(|| {
        let (producer, mut consumer) = mpsc::channel::<u32>(2);
        let other = producer.clone();
        let a = thread::spawn(move || other.push(1).is_ok());
        let b_ok = producer.push(2).is_ok();
        let mut got = [pop(&mut consumer), pop(&mut consumer)];
        got.sort_unstable();
        assert!(
            a.join().unwrap() && b_ok,
            "a push failed with room in the ring"
        );
        assert_eq!(got, [1, 2]);
        assert_eq!(consumer.pop(), None);
    });
}

#[test]
fn full_ring_rejects_then_accepts_after_a_pop() {
    loom::model(|| {
        let (producer, mut consumer) = mpsc::channel::<u32>(2);
        producer.push(0).unwrap();
        producer.push(1).unwrap();
        let other = producer.clone();
        let pusher = thread::spawn(move || {
            let mut item = 2;
            loop {
                match other.push(item) {
                    Ok(()) => return,
                    Err(full) => item = full.into_inner(),
                }
                thread::yield_now();
            }
        });
        assert_eq!(pop(&mut consumer), 0);
        pusher.join().unwrap();
        assert!(producer.push(3).is_err(), "two items in a ring of two");
        assert_eq!(pop(&mut consumer), 1);
        assert_eq!(pop(&mut consumer), 2);
    });
}

#[test]
fn wrap_around_hands_second_lap_slots_to_producers() {
    loom::model(|| {
        let (producer, mut consumer) = mpsc::channel::<u32>(2);
        // Move both indices one slot on, so the two pushes below wrap into the next lap.
        producer.push(0).unwrap();
        assert_eq!(consumer.pop(), Some(0));
        let other = producer.clone();
        let a = thread::spawn(move || other.push(1).is_ok());
        let b = thread::spawn(move || producer.push(2).is_ok());
        let mut got = [pop(&mut consumer), pop(&mut consumer)];
        assert!(
            a.join().unwrap() && b.join().unwrap(),
            "a push failed with room in the ring"
        );
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn leftovers_are_dropped_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (producer, mut consumer) = mpsc::channel::<Counted>(2);
        let other = producer.clone();
        let counter = drops.clone();
        let a = thread::spawn(move || {
            let _ = other.push(Counted(counter));
        });
        let _ = producer.push(Counted(drops.clone()));
        drop(producer);
        drop(consumer.pop());
        a.join().unwrap();
        drop(consumer);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// A push racing a close from another producer: it either fails `Closed` (its item handed
/// back) or its item is popped before the consumer is finished; nothing else.
#[test]
fn a_push_racing_close_is_delivered_or_refused() {
    loom::model(|| {
        let (producer, mut consumer) = mpsc::channel::<u32>(2);
        let closer = producer.clone();
        let pusher = thread::spawn(move || producer.try_push(7));
        let close = thread::spawn(move || closer.close());
        let mut got = None;
        while !consumer.is_finished() {
            match consumer.pop() {
                Some(item) => got = Some(item),
                None => thread::yield_now(),
            }
        }
        assert!(close.join().unwrap());
        match pusher.join().unwrap() {
            Ok(()) => assert_eq!(got, Some(7), "an Ok push was not delivered"),
            Err(mpsc::PushError::Closed(7)) => assert_eq!(got, None),
            Err(other) => panic!("{other:?}"),
        }
    });
}
