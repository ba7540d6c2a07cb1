//! How much stack a call really uses, measured on the (emulated) device: paint the free stack
//! below the current stack pointer with a pattern, make the call, and find the lowest word the
//! pattern no longer holds.
//!
//! cortex-m-rt's `paint-stack` feature paints the whole stack at reset, so [`high_water`] also
//! tells the deepest the program has gone since it started.
//!
//! Measurements are only right with interrupts that use the same stack masked (an exception
//! frame below the stack pointer scrubs the paint); the size examples enable none.

use core::ptr;

/// The word the free stack is painted with (cortex-m-rt's `STACK_PAINT_VALUE`).
pub const PAINT: u32 = 0xCCCC_CCCC;

extern "C" {
    /// The lowest address of the stack (cortex-m-rt's linker script: the end of `.bss`/`.uninit`).
    static _stack_end: u32;
    /// The initial stack pointer: the top of the stack.
    static _stack_start: u32;
}

/// The lowest and highest address of the stack.
#[inline(always)]
fn bounds() -> (usize, usize) {
    // Only the addresses of the linker symbols are taken, never their contents.
    (
        ptr::addr_of!(_stack_end) as usize,
        ptr::addr_of!(_stack_start) as usize,
    )
}

/// The lowest painted-over word at or above `bottom`, below `top`: how deep the stack went.
///
/// Always inlined: a call would put its own frame below the stack pointer, where it measures.
#[inline(always)]
fn lowest_used(bottom: usize, top: usize) -> usize {
    let mut at = bottom;
    while at < top {
        // SAFETY: `bottom..top` lies in the stack region (RAM), word-aligned.
        if unsafe { ptr::read_volatile(at as *const u32) } != PAINT {
            break;
        }
        at += 4;
    }
    at
}

/// The most stack the program has used since reset (cortex-m-rt painted it then), in bytes.
pub fn high_water() -> usize {
    let (bottom, top) = bounds();
    top - lowest_used(bottom, top)
}

/// Calls `f` and returns its result and the bytes of stack it used below the caller's frame.
///
/// `f` should be an `#[inline(never)]` function (or go through `core::hint::black_box`), so that
/// its frame is its own.
#[inline(always)]
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let (bottom, _) = bounds();
    let sp = cortex_m::register::msp::read() as usize;
    // Paint everything below the stack pointer. The loop keeps to registers and to the frame
    // this function is inlined into, which lies above `sp`.
    let mut at = bottom;
    while at < sp {
        // SAFETY: `bottom..sp` is the free part of the stack region: nothing lives there, and
        // with no interrupt using this stack (see the module docs) nothing writes it meanwhile.
        unsafe { ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
    let result = f();
    (result, sp - lowest_used(bottom, sp))
}

/// Writes `n` in decimal to the host's standard output, without `core::fmt` (so that the size
/// examples carry no formatting code of their own).
pub fn print_decimal(n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    crate::harness::write_host(&digits[at..]);
}

/// Prints `<name> <value>` for each measurement, then exits with `ok` as the verdict: what
/// the size-report examples end with (no `core::fmt`, see [`print_decimal`]).
pub fn report(ok: bool, measurements: &[(&str, usize)]) -> ! {
    for (name, value) in measurements {
        crate::harness::write_host(name.as_bytes());
        crate::harness::write_host(b" ");
        print_decimal(*value);
        crate::harness::write_host(b"\n");
    }
    crate::harness::exit(ok)
}
