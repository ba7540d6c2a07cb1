//! The size report's baseline for the scanner case: the same skeleton and the same image in
//! flash, with a trivial call in place of the scan.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use ringledger_embedded::segment::HOST_SEGMENT;
use ringledger_embedded::stack;

/// Stands in for the scan: the image's length and first byte.
#[inline(never)]
#[no_mangle]
fn segment_baseline(image: &[u8]) -> (usize, usize) {
    (image.len(), image.first().map_or(0, |&b| usize::from(b)))
}

#[entry]
fn main() -> ! {
    let image = core::hint::black_box(HOST_SEGMENT);
    let ((len, _), scan_stack) = stack::measure(|| segment_baseline(image));
    stack::report(len > 0, &[("stack.scan", scan_stack), ("records", 0)])
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    ringledger_embedded::harness::exit(false)
}
