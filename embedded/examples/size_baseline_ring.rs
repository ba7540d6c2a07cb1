//! The size report's baseline for the ring cases: the same skeleton (a value in a `static`, two
//! measured calls, the report) with trivial calls. A ring case's flash is its image's
//! `.text + .rodata` minus this one's.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use ringledger_embedded::cell::TakeOnce;
use ringledger_embedded::stack;

static SLOT: TakeOnce<u32> = TakeOnce::new(0);

/// Stands in for a push: stores the value.
#[inline(never)]
#[no_mangle]
fn baseline_push(slot: &mut u32, value: u32) -> bool {
    *slot = value;
    true
}

/// Stands in for a pop: loads the value.
#[inline(never)]
#[no_mangle]
fn baseline_pop(slot: &mut u32) -> Option<u32> {
    Some(*slot)
}

#[entry]
fn main() -> ! {
    let slot = SLOT.take();
    let value = core::hint::black_box(7u32);
    let (pushed, push_stack) = stack::measure(|| baseline_push(slot, value));
    let (popped, pop_stack) = stack::measure(|| baseline_pop(slot));
    stack::report(
        pushed && popped == Some(value),
        &[("stack.push", push_stack), ("stack.pop", pop_stack)],
    )
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    ringledger_embedded::harness::exit(false)
}
