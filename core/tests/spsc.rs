//! Behaviour of the SPSC ring through its public API: a model check against `VecDeque`,
//! cross-thread delivery, and drop accounting.

mod common;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{scaled, Tracked};
use proptest::prelude::*;
use ringledger_core::spsc::{self, Ring, TooFewSlots};
use ringledger_core::Full;

#[derive(Debug, Clone)]
enum Op {
    Push(u32),
    Pop,
    Peek,
    PushSlice(Vec<u32>),
    PopSlice(usize),
    WriteChunk(usize),
    ReadChunk(usize, usize),
    ReadChunkIter(usize, usize),
    Drain(usize),
    Len,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u32>().prop_map(Op::Push),
        4 => Just(Op::Pop),
        1 => Just(Op::Peek),
        1 => proptest::collection::vec(any::<u32>(), 0..12).prop_map(Op::PushSlice),
        1 => (0usize..12).prop_map(Op::PopSlice),
        1 => (0usize..12).prop_map(Op::WriteChunk),
        1 => (0usize..12, 0usize..12).prop_map(|(n, c)| Op::ReadChunk(n, c)),
        1 => (0usize..12, 0usize..12).prop_map(|(n, c)| Op::ReadChunkIter(n, c)),
        1 => (0usize..12).prop_map(Op::Drain),
        1 => Just(Op::Len),
    ]
}

fn run_model(capacity: usize, ops: &[Op]) {
    let (mut producer, mut consumer) = spsc::channel::<u32>(capacity);
    let mut model = VecDeque::new();
    let mut next = 0u32;
    for op in ops {
        match op {
            Op::Push(v) => {
                let result = producer.push(*v);
                if model.len() < capacity {
                    assert_eq!(result, Ok(()));
                    model.push_back(*v);
                } else {
                    assert_eq!(result, Err(Full(*v)));
                }
            }
            Op::Pop => assert_eq!(consumer.pop(), model.pop_front()),
            Op::Peek => assert_eq!(consumer.peek(), model.front()),
            Op::PushSlice(items) => {
                let pushed = producer.push_slice(items);
                assert_eq!(pushed, items.len().min(capacity - model.len()));
                model.extend(&items[..pushed]);
            }
            Op::PopSlice(n) => {
                let mut out = vec![0; *n];
                let popped = consumer.pop_slice(&mut out);
                assert_eq!(popped, (*n).min(model.len()));
                let expected: Vec<u32> = model.drain(..popped).collect();
                assert_eq!(out[..popped], expected[..]);
            }
            Op::WriteChunk(n) => match producer.write_chunk_uninit(*n) {
                Ok(chunk) => {
                    let values: Vec<u32> = (0..*n as u32).map(|i| next.wrapping_add(i)).collect();
                    next = next.wrapping_add(*n as u32);
                    assert_eq!(chunk.fill_from_iter(values.iter().copied()), *n);
                    model.extend(values);
                }
                Err(TooFewSlots { available }) => {
                    assert!(*n > capacity - model.len());
                    assert_eq!(available, capacity - model.len());
                }
            },
            Op::ReadChunk(n, commit) => match consumer.read_chunk(*n) {
                Ok(chunk) => {
                    let (a, b) = chunk.as_slices();
                    let seen: Vec<u32> = a.iter().chain(b).copied().collect();
                    let expected: Vec<u32> = model.iter().take(*n).copied().collect();
                    assert_eq!(seen, expected);
                    let commit = (*commit).min(*n);
                    chunk.commit(commit);
                    model.drain(..commit);
                }
                Err(TooFewSlots { available }) => {
                    assert!(*n > model.len());
                    assert_eq!(available, model.len());
                }
            },
            Op::ReadChunkIter(n, take) => {
                if let Ok(chunk) = consumer.read_chunk(*n) {
                    let taken: Vec<u32> = chunk.into_iter().take(*take).collect();
                    let expected: Vec<u32> = model.drain(..(*take).min(*n)).collect();
                    assert_eq!(taken, expected);
                }
            }
            Op::Drain(take) => {
                let taken: Vec<u32> = consumer.drain().take(*take).collect();
                let expected: Vec<u32> = model.drain(..(*take).min(model.len())).collect();
                assert_eq!(taken, expected);
            }
            Op::Len => {
                assert_eq!(producer.len(), model.len());
                assert_eq!(consumer.len(), model.len());
                assert_eq!(consumer.is_empty(), model.is_empty());
                assert_eq!(producer.is_full(), model.len() == capacity);
            }
        }
    }
}

proptest! {
    #![proptest_config(common::proptest_config(512))]

    #[test]
    fn behaves_like_a_vecdeque(capacity_log2 in 0u32..4, ops in proptest::collection::vec(op(), 0..common::max_ops(200))) {
        run_model(1 << capacity_log2, &ops);
    }
}

#[test]
fn every_slot_is_usable() {
    let mut ring = Ring::<u8, 4>::new();
    let (mut producer, mut consumer) = ring.split();
    for round in 0..3u8 {
        for i in 0..4 {
            producer.push(round * 4 + i).unwrap();
        }
        assert!(producer.is_full());
        assert_eq!(producer.push(99), Err(Full(99)));
        for i in 0..4 {
            assert_eq!(consumer.pop(), Some(round * 4 + i));
        }
        assert_eq!(consumer.pop(), None);
    }
}

#[test]
fn static_ring_resplits_with_items_kept() {
    static EMPTY: Ring<u64, 8> = Ring::new();
    assert!(EMPTY.is_empty());
    assert_eq!(EMPTY.capacity(), 8);

    let mut ring = Ring::<String, 2>::new();
    {
        let (mut producer, _) = ring.split();
        producer.push("kept".into()).unwrap();
    }
    assert_eq!(ring.len(), 1);
    let (_, mut consumer) = ring.split();
    assert_eq!(consumer.pop().as_deref(), Some("kept"));
}

#[test]
#[should_panic(expected = "power of two")]
fn heap_capacity_must_be_a_power_of_two() {
    let _ = spsc::channel::<u8>(3);
}

#[test]
#[should_panic(expected = "power of two")]
fn heap_capacity_must_not_be_zero() {
    let _ = spsc::channel::<u8>(0);
}

#[test]
fn write_chunk_spans_the_wrap() {
    let (mut producer, mut consumer) = spsc::channel::<u32>(4);
    producer.push_slice(&[0, 1, 2]);
    let mut out = [0; 3];
    consumer.pop_slice(&mut out);
    let mut chunk = producer.write_chunk_uninit(4).unwrap();
    let (first, second) = chunk.as_mut_slices();
    assert_eq!((first.len(), second.len()), (1, 3));
    for (i, slot) in first.iter_mut().chain(second.iter_mut()).enumerate() {
        slot.write(10 + i as u32);
    }
    // SAFETY: all four slots were written just above.
    unsafe { chunk.commit_all() };
    let chunk = consumer.read_chunk(4).unwrap();
    let (a, b) = chunk.as_slices();
    assert_eq!((a, b), (&[10][..], &[11, 12, 13][..]));
    chunk.commit_all();
    assert!(consumer.is_empty());
}

#[test]
fn uncommitted_chunks_change_nothing() {
    let (mut producer, mut consumer) = spsc::channel::<u32>(4);
    let _ = producer.write_chunk_uninit(4).unwrap();
    assert!(consumer.is_empty());
    producer.push(5).unwrap();
    let _ = consumer.read_chunk(1).unwrap();
    assert_eq!(consumer.pop(), Some(5));
}

#[test]
fn items_cross_threads_in_order_exactly_once() {
    let count = scaled(200_000) as u64;
    for capacity in [1, 2, 64] {
        let (mut producer, mut consumer) = spsc::channel::<u64>(capacity);
        let writer = std::thread::spawn(move || {
            for i in 0..count {
                let mut item = i;
                while let Err(Full(back)) = producer.push(item) {
                    item = back;
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        while expected < count {
            match consumer.pop() {
                Some(v) => {
                    assert_eq!(v, expected);
                    expected += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        writer.join().unwrap();
        assert_eq!(consumer.pop(), None);
    }
}

#[test]
fn chunks_cross_threads_in_order() {
    let count = scaled(200_000) as u64;
    let (mut producer, mut consumer) = spsc::channel::<u64>(64);
    let writer = std::thread::spawn(move || {
        let mut next = 0;
        while next < count {
            let want = (count - next).min(1 + next % 17);
            match producer.write_chunk_uninit(want as usize) {
                Ok(chunk) => next += chunk.fill_from_iter(next..) as u64,
                Err(_) => std::thread::yield_now(),
            }
        }
    });
    let mut expected = 0;
    while expected < count {
        let available = consumer.len().min(23);
        if available == 0 {
            std::thread::yield_now();
            continue;
        }
        let chunk = consumer.read_chunk(available).unwrap();
        let (a, b) = chunk.as_slices();
        for &v in a.iter().chain(b) {
            assert_eq!(v, expected);
            expected += 1;
        }
        chunk.commit_all();
    }
    writer.join().unwrap();
}

#[test]
fn leftovers_are_dropped_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let (mut producer, mut consumer) = spsc::channel(8);
        for i in 0..6 {
            producer.push(Tracked::new(i, &drops)).unwrap();
        }
        drop(consumer.pop());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(producer);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "the consumer still holds the ring"
        );
    }
    assert_eq!(drops.load(Ordering::SeqCst), 6);

    let drops = Arc::new(AtomicUsize::new(0));
    {
        let mut ring = Ring::<Tracked, 4>::new();
        let (mut producer, mut consumer) = ring.split();
        // Wrap around so that the leftovers span the end of the slot array.
        for i in 0..3 {
            producer.push(Tracked::new(i, &drops)).unwrap();
        }
        consumer.drain().take(3).for_each(drop);
        for i in 3..7 {
            producer.push(Tracked::new(i, &drops)).unwrap();
        }
    }
    assert_eq!(drops.load(Ordering::SeqCst), 7);
}

#[test]
fn a_panicking_drop_in_commit_never_double_drops() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut producer, mut consumer) = spsc::channel(4);
    // Wrap so the committed range spans both runs.
    producer.push(Tracked::new(100, &drops)).unwrap();
    producer.push(Tracked::new(101, &drops)).unwrap();
    consumer.drain().for_each(drop);
    producer.push(Tracked::new(0, &drops)).unwrap();
    producer.push(Tracked::panicking(1, &drops)).unwrap();
    producer.push(Tracked::new(2, &drops)).unwrap();
    producer.push(Tracked::new(3, &drops)).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        consumer.read_chunk(3).unwrap().commit_all()
    }));
    assert!(result.is_err(), "the item's drop panicked");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2 + 3,
        "all three committed items dropped once"
    );
    assert_eq!(consumer.len(), 1, "the committed slots were released");
    assert_eq!(consumer.pop().map(|t| t.id), Some(3));
    drop((producer, consumer));
    assert_eq!(drops.load(Ordering::SeqCst), 6);
}

#[test]
fn a_panicking_drop_among_leftovers_drops_the_rest() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut producer, consumer) = spsc::channel(4);
    producer.push(Tracked::panicking(0, &drops)).unwrap();
    producer.push(Tracked::new(1, &drops)).unwrap();
    producer.push(Tracked::new(2, &drops)).unwrap();
    drop(consumer);
    let result = catch_unwind(AssertUnwindSafe(move || drop(producer)));
    assert!(result.is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn a_panicking_iterator_in_fill_publishes_what_it_wrote() {
    let (mut producer, mut consumer) = spsc::channel::<u32>(8);
    let chunk = producer.write_chunk_uninit(5).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        chunk.fill_from_iter((0..5).map(|i| if i == 3 { panic!("iterator fails") } else { i }))
    }));
    assert!(result.is_err());
    assert_eq!(consumer.drain().collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn peek_does_not_consume() {
    let (mut producer, mut consumer) = spsc::channel(2);
    producer.push(1).unwrap();
    assert_eq!(consumer.peek(), Some(&1));
    assert_eq!(consumer.peek(), Some(&1));
    assert_eq!(consumer.pop(), Some(1));
    assert_eq!(consumer.peek(), None);
}

/// Memory for a ring in a region: cache-line aligned.
#[repr(C, align(128))]
#[derive(Clone, Copy)]
struct Line([u8; 128]);

/// A ring placed in a caller's region: the layout's checks, then items across two threads and
/// many laps, and handles taken again from the indices left in the region.
#[test]
fn a_ring_in_a_region_works_like_the_others() {
    use ringledger_core::spsc::RegionLayout;
    assert!(RegionLayout::new::<u64>(3).is_none(), "not a power of two");
    assert!(
        RegionLayout::new::<u64>(usize::MAX / 2 + 1).is_none(),
        "overflow"
    );
    let layout = RegionLayout::new::<u64>(8).unwrap();
    assert_eq!(layout.capacity(), 8);
    assert!(layout.align() >= core::mem::align_of::<u64>());
    let mut memory = vec![Line([0xAB; 128]); layout.size().div_ceil(128)];
    let region = core::ptr::NonNull::new(memory.as_mut_ptr().cast::<u8>()).unwrap();
    let count: u64 = if cfg!(miri) { 50 } else { 100_000 };
    // SAFETY: `memory` is aligned to 128 (at least `layout.align()` for u64), large enough,
    // outlives both handles, and there is one producer and one consumer at a time.
    unsafe {
        layout.init(region);
        let mut producer = layout.producer::<u64>(region);
        let mut consumer = layout.consumer::<u64>(region);
        let region_addr = region.as_ptr() as usize;
        std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..count {
                    while producer.push(i).is_err() {
                        std::thread::yield_now();
                    }
                }
            });
            let mut next = 0;
            while next < count {
                match consumer.pop() {
                    Some(i) => {
                        assert_eq!(i, next);
                        next += 1;
                    }
                    None => std::thread::yield_now(),
                }
            }
        });
        assert_eq!(region_addr, region.as_ptr() as usize);
        // New handles pick up where the indices are: an item pushed before is still there.
        let mut producer = layout.producer::<u64>(region);
        producer.push(7).unwrap();
        drop(producer);
        let mut consumer = layout.consumer::<u64>(region);
        assert_eq!(consumer.len(), 1);
        assert_eq!(consumer.pop(), Some(7));
        assert_eq!(consumer.pop(), None);
    }
}

/// A side that caught up after a stream waits a moment before it reports the ring empty or
/// full (see the module's *Catching up*): that wait never changes an answer. Empty still means
/// empty, full still means full, and a pop right after frees a slot for the next push.
#[test]
fn catching_up_after_a_stream_changes_no_answer() {
    let (mut producer, mut consumer) = ringledger_core::spsc::channel::<u64>(16);
    for round in 0..3u64 {
        for i in 0..16 {
            producer.push(round * 100 + i).unwrap();
        }
        assert_eq!(producer.push(999), Err(ringledger_core::Full(999)));
        assert_eq!(producer.push(999), Err(ringledger_core::Full(999)));
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
