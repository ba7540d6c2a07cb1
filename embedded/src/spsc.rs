//! The SPSC ring in `static`s on the device, driven from one context: push and pop at full and
//! empty, many laps around the slot array, the zero-copy chunks across the wrap, the slice
//! copies, the drain, and dropping what is left. [`interrupts`](crate::interrupts) runs it
//! between an interrupt handler and the main loop.

use core::cell::Cell;
use core::mem::MaybeUninit;

use ringledger_core::spsc::{Ring, TooFewSlots};
use ringledger_core::Full;

use crate::cell::TakeOnce;
use crate::harness::{Board, Outcome};
use crate::{attempt, ensure, ensure_eq, passed};

/// Push until full (the item comes back), pop until empty, with the counters agreeing.
pub fn push_pop_full_empty(_: &mut Board) -> Outcome {
    static RING: TakeOnce<Ring<u32, 8>> = TakeOnce::new(Ring::new());
    let (mut producer, mut consumer) = RING.take().split();
    ensure_eq!(producer.capacity(), 8);
    ensure_eq!(consumer.pop(), None);
    ensure!(consumer.is_empty() && producer.is_empty() && !producer.is_full());
    for i in 0..8 {
        ensure!(
            producer.push(i).is_ok(),
            "push {} of 8 into an 8-slot ring",
            i
        );
    }
    ensure!(producer.is_full() && consumer.is_full());
    ensure_eq!(producer.push(99), Err(Full(99)));
    ensure_eq!((producer.len(), producer.slots()), (8, 0));
    ensure_eq!(consumer.peek(), Some(&0));
    for i in 0..8 {
        ensure_eq!(consumer.pop(), Some(i));
    }
    ensure_eq!(consumer.pop(), None);
    ensure_eq!((consumer.len(), producer.slots()), (0, 8));
    passed!()
}

/// Many laps of an 8-slot ring in bursts of every size: order, counts and `len` on the way.
pub fn wrap_around(_: &mut Board) -> Outcome {
    static RING: TakeOnce<Ring<u32, 8>> = TakeOnce::new(Ring::new());
    let (mut producer, mut consumer) = RING.take().split();
    let (mut next_in, mut next_out) = (0u32, 0u32);
    for round in 0..2_000u32 {
        let burst = round % 8 + 1;
        for _ in 0..burst {
            ensure!(producer.push(next_in).is_ok(), "push {}", next_in);
            next_in += 1;
        }
        ensure_eq!(consumer.len(), burst as usize);
        for _ in 0..burst {
            ensure_eq!(consumer.pop(), Some(next_out));
            next_out += 1;
        }
    }
    ensure_eq!(consumer.pop(), None);
    passed!("{} items, {} laps", next_in, next_in / 8)
}

/// `write_chunk_uninit` and `read_chunk` split at the end of the slot array, commit once, and
/// refuse more than there is.
pub fn chunks_across_the_wrap(_: &mut Board) -> Outcome {
    static RING: TakeOnce<Ring<u32, 8>> = TakeOnce::new(Ring::new());
    let (mut producer, mut consumer) = RING.take().split();
    // Move both indices to slot 5, so that six slots run 5, 6, 7 | 0, 1, 2.
    ensure_eq!(producer.push_slice(&[0; 5]), 5);
    ensure_eq!(consumer.pop_slice(&mut [0; 5]), 5);

    let mut chunk = attempt!(producer.write_chunk_uninit(6));
    let (first, second) = chunk.as_mut_slices();
    ensure_eq!((first.len(), second.len()), (3, 3));
    for (slot, value) in first.iter_mut().chain(second.iter_mut()).zip(100..) {
        *slot = MaybeUninit::new(value);
    }
    // SAFETY: all six reserved slots were written just above.
    unsafe { chunk.commit_all() };
    ensure_eq!(consumer.len(), 6);

    let chunk = attempt!(consumer.read_chunk(6));
    ensure_eq!(
        chunk.as_slices(),
        (&[100, 101, 102][..], &[103, 104, 105][..])
    );
    chunk.commit(4);
    ensure_eq!(consumer.len(), 2);

    ensure_eq!(
        producer.write_chunk_uninit(7).map(|c| c.len()),
        Err(TooFewSlots { available: 6 })
    );
    let written = attempt!(producer.write_chunk_uninit(3)).fill_from_iter(200..);
    ensure_eq!(written, 3);
    ensure_eq!(
        consumer.read_chunk(6).map(|c| c.len()),
        Err(TooFewSlots { available: 5 })
    );
    let mut taken = [0u32; 5];
    for (out, value) in taken.iter_mut().zip(attempt!(consumer.read_chunk(5))) {
        *out = value;
    }
    ensure_eq!(taken, [104, 105, 200, 201, 202]);
    ensure!(consumer.is_empty());
    passed!()
}

/// `push_slice`/`pop_slice` across the wrap, and `drain` taking everything in order.
pub fn slices_and_drain(_: &mut Board) -> Outcome {
    static RING: TakeOnce<Ring<u16, 16>> = TakeOnce::new(Ring::new());
    let (mut producer, mut consumer) = RING.take().split();
    let mut next_in = 0u16;
    let mut next_out = 0u16;
    for round in 0..300u16 {
        let mut batch = [0u16; 20];
        for value in batch.iter_mut() {
            *value = next_in;
            next_in = next_in.wrapping_add(1);
        }
        // At most 16 fit; the rest is offered again next round.
        let pushed = producer.push_slice(&batch) as u16;
        ensure_eq!(pushed, 16);
        next_in = next_in.wrapping_sub(20 - pushed);
        let mut out = [0u16; 7];
        let popped = consumer.pop_slice(&mut out);
        ensure_eq!(popped, 7);
        for &value in &out[..popped] {
            ensure_eq!(value, next_out);
            next_out = next_out.wrapping_add(1);
        }
        for value in consumer.drain().take(usize::from(round % 10)) {
            ensure_eq!(value, next_out);
            next_out = next_out.wrapping_add(1);
        }
        for value in consumer.drain() {
            ensure_eq!(value, next_out);
            next_out = next_out.wrapping_add(1);
        }
        ensure!(consumer.is_empty());
    }
    ensure_eq!(next_out, next_in);
    passed!("{} items", 300 * 16)
}

/// Items left in a ring are dropped exactly once when the ring is; popped ones by their taker.
pub fn items_dropped_once(_: &mut Board) -> Outcome {
    struct Counted<'a>(&'a Cell<u32>);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Cell::new(0);
    {
        let mut ring: Ring<Counted<'_>, 4> = Ring::new();
        let (mut producer, mut consumer) = ring.split();
        for _ in 0..4 {
            ensure!(producer.push(Counted(&drops)).is_ok());
        }
        // The refused item comes back inside `Full` and is dropped here, once.
        ensure!(producer.push(Counted(&drops)).is_err());
        ensure_eq!(drops.get(), 1);
        drop(consumer.pop());
        ensure_eq!(drops.get(), 2);
        // A read chunk committed drops what it releases.
        attempt!(consumer.read_chunk(1)).commit_all();
        ensure_eq!(drops.get(), 3);
        // Two items stay in the ring and go with it.
    }
    ensure_eq!(drops.get(), 5);
    passed!()
}
