//! Loom models of the SPSC ring, one property each.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use ringledger_core::spsc;

/// Pushes `item`, yielding to the model scheduler while the ring is full.
fn push<T>(producer: &mut spsc::Producer<'_, T>, mut item: T) {
    while let Err(full) = producer.push(item) {
        item = full.into_inner();
        thread::yield_now();
    }
}

/// Pops one item, yielding while the ring is empty.
fn pop<T>(consumer: &mut spsc::Consumer<'_, T>) -> T {
    loop {
        if let Some(item) = consumer.pop() {
            return item;
        }
        thread::yield_now();
    }
}

#[test]
fn items_cross_threads_in_order() {
    loom::model(|| {
        let (mut producer, mut consumer) = spsc::channel::<u32>(2);
        let writer = thread::spawn(move || {
            for i in 0..2 {
                push(&mut producer, i);
            }
        });
        for i in 0..2 {
            assert_eq!(pop(&mut consumer), i);
        }
        writer.join().unwrap();
    });
}

#[test]
fn wrap_around_reuses_slots_safely() {
    loom::model(|| {
        let (mut producer, mut consumer) = spsc::channel::<u32>(1);
        let writer = thread::spawn(move || {
            for i in 0..3 {
                push(&mut producer, i);
            }
        });
        for i in 0..3 {
            assert_eq!(pop(&mut consumer), i);
        }
        writer.join().unwrap();
    });
}

#[test]
fn chunks_publish_whole_and_release_whole() {
    loom::model(|| {
        let (mut producer, mut consumer) = spsc::channel::<u32>(2);
        let writer = thread::spawn(move || {
            for round in 0..2 {
                loop {
                    if let Ok(chunk) = producer.write_chunk_uninit(2) {
                        assert_eq!(chunk.fill_from_iter([round * 2, round * 2 + 1]), 2);
                        break;
                    }
                    thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        while expected < 4 {
            match consumer.read_chunk(1) {
                Ok(chunk) => {
                    for item in chunk {
                        assert_eq!(item, expected);
                        expected += 1;
                    }
                }
                Err(_) => thread::yield_now(),
            }
        }
        writer.join().unwrap();
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
fn leftovers_are_dropped_once_whichever_side_goes_last() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut producer, mut consumer) = spsc::channel::<Counted>(2);
        let counter = drops.clone();
        let writer = thread::spawn(move || {
            push(&mut producer, Counted(counter.clone()));
            push(&mut producer, Counted(counter));
        });
        let reader = thread::spawn(move || {
            drop(pop(&mut consumer));
        });
        writer.join().unwrap();
        reader.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn consumer_dropped_early_leaves_producer_working() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut producer, consumer) = spsc::channel::<Counted>(2);
        let reader = thread::spawn(move || drop(consumer));
        let _ = producer.push(Counted(drops.clone()));
        let _ = producer.push(Counted(drops.clone()));
        assert!(producer.push(Counted(drops.clone())).is_err());
        reader.join().unwrap();
        drop(producer);
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    });
}
