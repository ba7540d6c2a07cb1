//! Size case: push and pop of a `u32` through heapless's `spsc::Queue`, in a `static`, through
//! its handles (what firmware that hands them to an interrupt handler compiles).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use heapless::spsc::{Consumer, Producer, Queue};
use ringledger_embedded::cell::TakeOnce;
use ringledger_embedded::stack;

static QUEUE: TakeOnce<Queue<u32, 16>> = TakeOnce::new(Queue::new());

/// One push; whether it went in.
#[inline(never)]
#[no_mangle]
fn heapless_spsc_push(producer: &mut Producer<'static, u32>, value: u32) -> bool {
    producer.enqueue(value).is_ok()
}

/// One pop.
#[inline(never)]
#[no_mangle]
fn heapless_spsc_pop(consumer: &mut Consumer<'static, u32>) -> Option<u32> {
    consumer.dequeue()
}

#[entry]
fn main() -> ! {
    let (mut producer, mut consumer) = QUEUE.take().split();
    let value = core::hint::black_box(7u32);
    let (pushed, push_stack) = stack::measure(|| heapless_spsc_push(&mut producer, value));
    let (popped, pop_stack) = stack::measure(|| heapless_spsc_pop(&mut consumer));
    stack::report(
        pushed && popped == Some(value),
        &[("stack.push", push_stack), ("stack.pop", pop_stack)],
    )
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    ringledger_embedded::harness::exit(false)
}
