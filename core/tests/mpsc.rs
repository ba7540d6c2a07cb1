//! Behaviour of the MPSC ring through its public API: a model check against `VecDeque`,
//! many producers delivering exactly once in per-producer order, and drop accounting.

mod common;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{scaled, Tracked};
use proptest::prelude::*;
use ringledger_core::mpsc::{self, Ring};
use ringledger_core::Full;

#[derive(Debug, Clone)]
enum Op {
    Push(u8, u32),
    Pop,
    PopMany(usize),
    Drain(usize),
    Len,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, any::<u32>()).prop_map(|(p, v)| Op::Push(p, v)),
        4 => Just(Op::Pop),
        1 => (0usize..12).prop_map(Op::PopMany),
        1 => (0usize..12).prop_map(Op::Drain),
        1 => Just(Op::Len),
    ]
}

proptest! {
    #![proptest_config(common::proptest_config(512))]

    #[test]
    fn behaves_like_a_vecdeque(capacity_log2 in 1u32..4, ops in proptest::collection::vec(op(), 0..common::max_ops(200))) {
        let capacity = 1 << capacity_log2;
        let (producer, mut consumer) = mpsc::channel::<u32>(capacity);
        let producers = [producer.clone(), producer.clone(), producer];
        let mut model = VecDeque::new();
        for op in ops {
            match op {
                Op::Push(p, v) => {
                    let result = producers[p as usize].push(v);
                    if model.len() < capacity {
                        prop_assert_eq!(result, Ok(()));
                        model.push_back(v);
                    } else {
                        prop_assert_eq!(result, Err(Full(v)));
                    }
                }
                Op::Pop => prop_assert_eq!(consumer.pop(), model.pop_front()),
                Op::PopMany(max) => {
                    let mut got = Vec::new();
                    let n = consumer.pop_many(max, |v| got.push(v));
                    let expected: Vec<u32> = model.drain(..max.min(model.len())).collect();
                    prop_assert_eq!(n, expected.len());
                    prop_assert_eq!(got, expected);
                }
                Op::Drain(take) => {
                    let got: Vec<u32> = consumer.drain().take(take).collect();
                    let expected: Vec<u32> = model.drain(..take.min(model.len())).collect();
                    prop_assert_eq!(got, expected);
                }
                Op::Len => {
                    prop_assert_eq!(consumer.len(), model.len());
                    prop_assert_eq!(consumer.is_empty(), model.is_empty());
                }
            }
        }
    }
}

#[test]
fn producers_deliver_exactly_once_in_their_own_order() {
    let per_producer = scaled(100_000);
    let producers = 3;
    let (producer, mut consumer) = mpsc::channel::<(usize, usize)>(16);
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let producer = producer.clone();
            std::thread::spawn(move || {
                for i in 0..per_producer {
                    let mut item = (p, i);
                    while let Err(Full(back)) = producer.push(item) {
                        item = back;
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    drop(producer);
    let mut next = vec![0; producers];
    let mut received = 0;
    while received < producers * per_producer {
        let n = consumer.pop_many(usize::MAX, |(p, i)| {
            assert_eq!(i, next[p], "producer {p} out of order");
            next[p] += 1;
        });
        if n == 0 {
            std::thread::yield_now();
        }
        received += n;
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(consumer.pop(), None);
    assert!(next.iter().all(|&n| n == per_producer));
}

#[test]
fn static_ring_works_and_resplits() {
    static EMPTY: Ring<u64, 8> = Ring::new();
    assert_eq!(EMPTY.capacity(), 8);

    let mut ring = Ring::<u32, 4>::new();
    {
        let (producer, mut consumer) = ring.split();
        for i in 0..4 {
            producer.push(i).unwrap();
        }
        assert_eq!(consumer.pop(), Some(0));
        producer.push(4).unwrap();
    }
    let (producer, mut consumer) = ring.split();
    assert_eq!(producer.push(9), Err(Full(9)));
    assert_eq!(consumer.drain().collect::<Vec<_>>(), [1, 2, 3, 4]);
}

#[test]
#[should_panic(expected = "power of two of at least 2")]
fn heap_capacity_must_be_at_least_two() {
    let _ = mpsc::channel::<u8>(1);
}

#[test]
#[should_panic(expected = "power of two of at least 2")]
fn heap_capacity_must_be_a_power_of_two() {
    let _ = mpsc::channel::<u8>(6);
}

#[test]
fn leftovers_are_dropped_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let (producer, mut consumer) = mpsc::channel(4);
        for i in 0..3 {
            producer.push(Tracked::new(i, &drops)).unwrap();
        }
        consumer.drain().take(2).for_each(drop);
        for i in 3..6 {
            producer.push(Tracked::new(i, &drops)).unwrap();
        }
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }
    assert_eq!(drops.load(Ordering::SeqCst), 6);
}

#[test]
fn a_leaked_consumer_does_not_cause_double_drops() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let mut ring = Ring::<Tracked, 4>::new();
        let (producer, mut consumer) = ring.split();
        for i in 0..3 {
            producer.push(Tracked::new(i, &drops)).unwrap();
        }
        drop(consumer.pop());
        // Leaking the consumer loses its private index; the ring finds its items by their stamps.
        std::mem::forget(consumer);
    }
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3,
        "each item dropped exactly once"
    );
}

#[test]
fn a_panicking_drop_among_leftovers_drops_the_rest() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (producer, consumer) = mpsc::channel(4);
    producer.push(Tracked::new(0, &drops)).unwrap();
    producer.push(Tracked::panicking(1, &drops)).unwrap();
    producer.push(Tracked::new(2, &drops)).unwrap();
    drop(consumer);
    let result = catch_unwind(AssertUnwindSafe(move || drop(producer)));
    assert!(result.is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}
