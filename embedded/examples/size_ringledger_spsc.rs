//! Size case: push and pop of a `u32` through ringledger's SPSC ring, in a `static`, through
//! its handles (what firmware that hands them to an interrupt handler compiles).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use ringledger_core::spsc::{Consumer, Producer, Ring};
use ringledger_embedded::cell::TakeOnce;
use ringledger_embedded::stack;

static RING: TakeOnce<Ring<u32, 16>> = TakeOnce::new(Ring::new());

/// One push; whether it went in.
#[inline(never)]
#[no_mangle]
fn ringledger_spsc_push(producer: &mut Producer<'static, u32>, value: u32) -> bool {
    producer.push(value).is_ok()
}

/// One pop.
#[inline(never)]
#[no_mangle]
fn ringledger_spsc_pop(consumer: &mut Consumer<'static, u32>) -> Option<u32> {
    consumer.pop()
}

#[entry]
fn main() -> ! {
    let (mut producer, mut consumer) = RING.take().split();
    let value = core::hint::black_box(7u32);
    let (pushed, push_stack) = stack::measure(|| ringledger_spsc_push(&mut producer, value));
    let (popped, pop_stack) = stack::measure(|| ringledger_spsc_pop(&mut consumer));
    stack::report(
        pushed && popped == Some(value),
        &[("stack.push", push_stack), ("stack.pop", pop_stack)],
    )
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    ringledger_embedded::harness::exit(false)
}
