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

/// Close: a push after it fails with `Closed` (the item handed back), items pushed before it
/// are still popped, and the consumer is finished only once they all were.
#[test]
fn closing_refuses_pushes_and_finishes_after_the_drain() {
    let (producer, mut consumer) = mpsc::channel::<u32>(4);
    producer.try_push(1).unwrap();
    producer.try_push(2).unwrap();
    assert!(!consumer.is_closed());
    assert!(consumer.close());
    assert!(!producer.close(), "closed once");
    assert!(producer.is_closed());
    assert_eq!(producer.try_push(3), Err(mpsc::PushError::Closed(3)));
    assert_eq!(producer.push(4), Err(Full(4)));
    assert!(!consumer.is_finished());
    assert_eq!(consumer.pop(), Some(1));
    assert_eq!(consumer.pop(), Some(2));
    assert!(consumer.is_finished());
    assert_eq!(consumer.pop(), None);
    // A full ring is full, not closed, until it is closed.
    let (producer, _consumer) = mpsc::channel::<u32>(2);
    producer.try_push(1).unwrap();
    producer.try_push(2).unwrap();
    assert_eq!(producer.try_push(3), Err(mpsc::PushError::Full(3)));
}

/// A static ring split again after a close is open again.
#[test]
fn a_resplit_ring_is_open_again() {
    let mut ring = Ring::<u8, 2>::new();
    {
        let (producer, mut consumer) = ring.split();
        producer.push(1).unwrap();
        producer.close();
        assert_eq!(consumer.pop(), Some(1));
        assert!(consumer.is_finished());
    }
    let (producer, mut consumer) = ring.split();
    assert!(!producer.is_closed());
    producer.push(2).unwrap();
    assert_eq!(consumer.pop(), Some(2));
}

/// Pushes racing a close from another producer: every push that returned `Ok` is popped by a
/// consumer that drains until finished, and no other.
#[test]
fn every_push_that_succeeds_before_a_racing_close_is_delivered() {
    for round in 0..scaled(200) {
        let (producer, mut consumer) = mpsc::channel::<u64>(64);
        let pushed = std::thread::scope(|s| {
            let workers: Vec<_> = (0..3u64)
                .map(|w| {
                    let producer = producer.clone();
                    s.spawn(move || {
                        let mut ok = Vec::new();
                        for i in 0..scaled(1000) as u64 {
                            match producer.try_push(w << 32 | i) {
                                Ok(()) => ok.push(w << 32 | i),
                                Err(mpsc::PushError::Full(_)) => std::hint::spin_loop(),
                                Err(mpsc::PushError::Closed(_)) => break,
                            }
                        }
                        ok
                    })
                })
                .collect();
            let closer = producer.clone();
            s.spawn(move || {
                for _ in 0..round % 50 {
                    std::hint::spin_loop();
                }
                closer.close();
            });
            let mut got = Vec::new();
            while !consumer.is_finished() || !consumer.is_empty() {
                consumer.pop_many(usize::MAX, |item| got.push(item));
                if !consumer.is_closed() {
                    std::hint::spin_loop();
                }
                if got.len() > 3000 {
                    break;
                }
                if workers.iter().all(|w| w.is_finished()) && !consumer.is_closed() {
                    producer.close();
                }
            }
            let mut pushed: Vec<u64> = workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect();
            pushed.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, pushed, "round {round}");
            pushed.len()
        });
        let _ = pushed;
    }
}

/// A consumer that caught up after a stream waits a moment before it reports the ring empty
/// (see `Consumer::pop`): that wait never changes an answer.
#[test]
fn catching_up_after_a_stream_changes_no_answer() {
    let (producer, mut consumer) = ringledger_core::mpsc::channel::<u64>(16);
    for round in 0..3u64 {
        for i in 0..16 {
            producer.push(round * 100 + i).unwrap();
        }
        for i in 0..16 {
            assert_eq!(consumer.pop(), Some(round * 100 + i));
        }
        assert_eq!(consumer.pop(), None);
        assert_eq!(consumer.pop(), None);
        producer.push(7).unwrap();
        assert_eq!(consumer.pop(), Some(7));
        assert_eq!(consumer.pop(), None);
    }
}
