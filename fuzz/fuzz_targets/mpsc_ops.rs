//! MPSC ring operations in arbitrary order, from any number of cloned producers, against a
//! `VecDeque` model (single-threaded, so the order is the push order). Items carry a drop
//! counter: every item is dropped exactly once, also those left in the ring at the end.
#![no_main]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringledger_core::mpsc;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// An item that counts how many of its kind are alive.
#[derive(Debug, PartialEq, Eq)]
struct Tracked(u32);

impl Tracked {
    fn new(value: u32) -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        Tracked(value)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Push(u8),
    Clone(u8),
    DropProducer(u8),
    Pop,
    PopMany(u8),
    Drain(u8),
}

#[derive(Debug, Arbitrary)]
struct Input {
    capacity_log2: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    LIVE.store(0, Ordering::Relaxed);
    let capacity = 2usize << (input.capacity_log2 % 6);
    {
        let (producer, mut consumer) = mpsc::channel::<Tracked>(capacity);
        let mut producers = vec![producer];
        let mut model: VecDeque<u32> = VecDeque::new();
        let mut next = 0u32;
        for op in input.ops {
            match op {
                Op::Push(who) => {
                    if producers.is_empty() {
                        continue;
                    }
                    let producer = &producers[usize::from(who) % producers.len()];
                    let value = next;
                    next += 1;
                    match producer.push(Tracked::new(value)) {
                        Ok(()) => {
                            assert!(model.len() < capacity);
                            model.push_back(value);
                        }
                        Err(full) => {
                            assert_eq!(model.len(), capacity);
                            assert_eq!(full.into_inner().0, value);
                        }
                    }
                }
                Op::Clone(who) => {
                    if let Some(producer) = producers.get(usize::from(who) % producers.len().max(1))
                    {
                        if producers.len() < 8 {
                            producers.push(producer.clone());
                        }
                    }
                }
                Op::DropProducer(who) => {
                    if !producers.is_empty() {
                        let i = usize::from(who) % producers.len();
                        producers.swap_remove(i);
                    }
                }
                Op::Pop => assert_eq!(consumer.pop().map(|t| t.0), model.pop_front()),
                Op::PopMany(max) => {
                    let max = usize::from(max % 80);
                    let mut taken = Vec::new();
                    let n = consumer.pop_many(max, |t| taken.push(t.0));
                    assert_eq!(n, taken.len());
                    let expected: Vec<u32> = model.drain(..n.min(model.len())).collect();
                    assert_eq!(taken, expected);
                    assert!(n == max || model.is_empty());
                }
                Op::Drain(max) => {
                    let max = usize::from(max % 80);
                    let taken: Vec<u32> = consumer.drain().take(max).map(|t| t.0).collect();
                    let expected: Vec<u32> = model.drain(..taken.len().min(model.len())).collect();
                    assert_eq!(taken, expected);
                    assert!(taken.len() == max || model.is_empty());
                }
            }
            assert_eq!(consumer.len(), model.len());
            assert_eq!(consumer.is_empty(), model.is_empty());
            assert_eq!(
                LIVE.load(Ordering::Relaxed),
                model.len(),
                "items alive = items queued"
            );
        }
        // Handles dropped here with items possibly left in the ring.
    }
    assert_eq!(
        LIVE.load(Ordering::Relaxed),
        0,
        "an item leaked or was dropped twice"
    );
});
