//! SPSC ring operations in arbitrary order against a `VecDeque` model: every call returns what
//! the model says, items come out in order and unchanged, and the lengths always agree.
#![no_main]

use std::collections::VecDeque;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringledger_core::spsc;

#[derive(Debug, Arbitrary)]
enum Op {
    Push,
    PushSlice(u8),
    WriteChunk(u8),
    Pop,
    Peek,
    PopSlice(u8),
    ReadChunk { n: u8, commit: u8 },
    Drain(u8),
}

#[derive(Debug, Arbitrary)]
struct Input {
    capacity_log2: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let capacity = 1usize << (input.capacity_log2 % 7);
    let (mut producer, mut consumer) = spsc::channel::<u32>(capacity);
    let mut model = VecDeque::new();
    let mut next = 0u32;
    let mut fresh = |n: usize| -> Vec<u32> {
        let items = (next..next + n as u32).collect();
        next += n as u32;
        items
    };
    for op in input.ops {
        let free = capacity - model.len();
        match op {
            Op::Push => {
                let item = fresh(1)[0];
                match producer.push(item) {
                    Ok(()) => {
                        assert!(free > 0);
                        model.push_back(item);
                    }
                    Err(full) => {
                        assert_eq!(free, 0);
                        assert_eq!(full.into_inner(), item);
                    }
                }
            }
            Op::PushSlice(n) => {
                let items = fresh(usize::from(n % 80));
                let pushed = producer.push_slice(&items);
                assert_eq!(pushed, items.len().min(free));
                model.extend(&items[..pushed]);
            }
            Op::WriteChunk(n) => {
                let n = usize::from(n % 80);
                match producer.write_chunk_uninit(n) {
                    Ok(chunk) => {
                        assert!(n <= free);
                        let items = fresh(n);
                        assert_eq!(chunk.fill_from_iter(items.iter().copied()), n);
                        model.extend(items);
                    }
                    Err(too_few) => {
                        assert!(n > free);
                        assert_eq!(too_few.available, free);
                    }
                }
            }
            Op::Pop => assert_eq!(consumer.pop(), model.pop_front()),
            Op::Peek => assert_eq!(consumer.peek().copied(), model.front().copied()),
            Op::PopSlice(n) => {
                let mut out = vec![0u32; usize::from(n % 80)];
                let popped = consumer.pop_slice(&mut out);
                assert_eq!(popped, out.len().min(model.len()));
                let expected: Vec<u32> = model.drain(..popped).collect();
                assert_eq!(out[..popped], expected[..]);
            }
            Op::ReadChunk { n, commit } => {
                let n = usize::from(n % 80);
                match consumer.read_chunk(n) {
                    Ok(chunk) => {
                        assert!(n <= model.len());
                        let (first, second) = chunk.as_slices();
                        let seen: Vec<u32> = first.iter().chain(second).copied().collect();
                        let expected: Vec<u32> = model.iter().take(n).copied().collect();
                        assert_eq!(seen, expected);
                        let commit = usize::from(commit) % (n + 1);
                        chunk.commit(commit);
                        model.drain(..commit);
                    }
                    Err(too_few) => {
                        assert!(n > model.len());
                        assert_eq!(too_few.available, model.len());
                    }
                }
            }
            Op::Drain(max) => {
                let taken: Vec<u32> = consumer.drain().take(usize::from(max % 80)).collect();
                let expected: Vec<u32> = model.drain(..taken.len()).collect();
                assert_eq!(taken, expected);
                assert!(taken.len() == usize::from(max % 80) || model.is_empty());
            }
        }
        assert_eq!(producer.len(), model.len());
        assert_eq!(consumer.len(), model.len());
        assert_eq!(producer.is_full(), model.len() == capacity);
        assert_eq!(consumer.is_empty(), model.is_empty());
        assert_eq!(producer.capacity(), capacity);
    }
    let rest: Vec<u32> = consumer.drain().collect();
    assert_eq!(rest, Vec::from(model));
});
