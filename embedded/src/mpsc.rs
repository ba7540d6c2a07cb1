//! The MPSC ring in `static`s on the device, driven from one context: full and empty, laps with
//! two producer handles, `pop_many` and `drain`, and closing. On thumbv6m every claim is a
//! compare-and-swap through portable-atomic's critical-section backend (cortex-m's single-core
//! critical section); [`interrupts`](crate::interrupts) pushes from two interrupt priorities.

use ringledger_core::mpsc::{PushError, Ring};
use ringledger_core::Full;

use crate::cell::TakeOnce;
use crate::harness::{Board, Outcome};
use crate::{ensure, ensure_eq, passed};

/// Every slot usable, the item handed back when full, `None` when empty.
pub fn push_pop_full_empty(_: &mut Board) -> Outcome {
    static RING: TakeOnce<Ring<u32, 8>> = TakeOnce::new(Ring::new());
    let (producer, mut consumer) = RING.take().split();
    ensure_eq!(producer.capacity(), 8);
    ensure!(consumer.is_empty());
    ensure_eq!(consumer.pop(), None);
    for i in 0..8 {
        ensure!(
            producer.push(i).is_ok(),
            "push {} of 8 into an 8-slot ring",
            i
        );
    }
    ensure_eq!(consumer.len(), 8);
    ensure_eq!(producer.push(99), Err(Full(99)));
    ensure_eq!(producer.try_push(98), Err(PushError::Full(98)));
    for i in 0..8 {
        ensure_eq!(consumer.pop(), Some(i));
    }
    ensure_eq!(consumer.pop(), None);
    ensure!(consumer.is_empty());
    passed!()
}

/// Two clones of the producer take turns for many laps; one context, so the consumer sees the
/// exact order of the pushes.
pub fn wrap_around_two_producers(_: &mut Board) -> Outcome {
    static RING: TakeOnce<Ring<u32, 4>> = TakeOnce::new(Ring::new());
    let (producer, mut consumer) = RING.take().split();
    let producers = [producer.clone(), producer];
    let mut next_in = 0u32;
    let mut next_out = 0u32;
    for round in 0..3_000u32 {
        let burst = round % 4 + 1;
        for _ in 0..burst {
            let by = &producers[(next_in % 2) as usize];
            ensure!(by.push(next_in).is_ok(), "push {}", next_in);
            next_in += 1;
        }
        ensure_eq!(consumer.len(), burst as usize);
        for _ in 0..burst {
            ensure_eq!(consumer.pop(), Some(next_out));
            next_out += 1;
        }
    }
    ensure_eq!(consumer.pop(), None);
    passed!("{} items, {} laps", next_in, next_in / 4)
}

/// `pop_many` stops at its maximum and at empty; `drain` takes the rest in order.
pub fn pop_many_and_drain(_: &mut Board) -> Outcome {
    static RING: TakeOnce<Ring<u8, 16>> = TakeOnce::new(Ring::new());
    let (producer, mut consumer) = RING.take().split();
    for i in 0..16 {
        ensure!(producer.push(i).is_ok());
    }
    let mut seen = [0u8; 16];
    let mut count = 0;
    ensure_eq!(
        consumer.pop_many(5, |item| {
            seen[count] = item;
            count += 1;
        }),
        5
    );
    ensure_eq!(seen[..5], [0, 1, 2, 3, 4]);
    for (expected, item) in (5..).zip(consumer.drain().take(3)) {
        ensure_eq!(item, expected);
    }
    ensure_eq!(consumer.pop_many(usize::MAX, |_| {}), 8);
    ensure_eq!(consumer.drain().next(), None);
    ensure!(producer.push(42).is_ok());
    ensure_eq!(consumer.drain().next(), Some(42));
    passed!()
}

/// After a close, pushes fail with `Closed` (item handed back), items pushed before it are still
/// popped, and the consumer is finished once they are.
pub fn close(_: &mut Board) -> Outcome {
    static RING: TakeOnce<Ring<u32, 4>> = TakeOnce::new(Ring::new());
    let (producer, mut consumer) = RING.take().split();
    ensure!(producer.push(1).is_ok() && producer.push(2).is_ok());
    ensure!(producer.close(), "the first close reports that it closed");
    ensure!(!consumer.close(), "a second close reports nothing new");
    ensure!(producer.is_closed() && consumer.is_closed());
    ensure_eq!(producer.try_push(3), Err(PushError::Closed(3)));
    ensure!(!consumer.is_finished());
    ensure_eq!(consumer.pop(), Some(1));
    ensure_eq!(consumer.pop(), Some(2));
    ensure_eq!(consumer.pop(), None);
    ensure!(consumer.is_finished());
    passed!()
}
