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

/// A producer a lap ahead of one stalled between claiming its slot and writing it waits for
/// it (once) and then takes the slot or reports full: whatever the interleaving, the items
/// popped are exactly those whose push returned `Ok`, each producer's in its order. (Every
/// operation is tried once, so that no retry loop spins the model.)
#[test]
fn a_push_behind_a_stalled_producer_loses_nothing() {
    loom::model(|| {
        let (producer, mut consumer) = mpsc::channel::<u32>(2);
        let other = producer.clone();
        let a = thread::spawn(move || other.try_push(10).is_ok());
        let b = thread::spawn(move || {
            [20, 21, 22]
                .into_iter()
                .filter(|&item| producer.try_push(item).is_ok())
                .collect::<Vec<u32>>()
        });
        let mut got: Vec<u32> = consumer.pop().into_iter().collect();
        let a_ok = a.join().unwrap();
        let b_ok = b.join().unwrap();
        while let Some(item) = consumer.pop() {
            got.push(item);
        }
        let b_got: Vec<u32> = got.iter().copied().filter(|&x| x != 10).collect();
        assert_eq!(b_got, b_ok, "producer b's accepted items, in order");
        assert_eq!(got.contains(&10), a_ok, "producer a's item iff accepted");
        assert_eq!(
            b_ok.first(),
            Some(&20),
            "the first push into a ring with room succeeds"
        );
    });
}
