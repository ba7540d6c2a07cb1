//! Size case: the segment scanner over the host's sealed segment in flash (`build.rs`): every
//! record, the seal, the end.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use ringledger_core::segment::Scanner;
use ringledger_embedded::segment::HOST_SEGMENT;
use ringledger_embedded::stack;

/// Scans the whole image: the number of valid records and where they end (0, 0 when the header
/// is bad).
#[inline(never)]
#[no_mangle]
fn segment_scan(image: &[u8]) -> (usize, usize) {
    let Ok(mut scanner) = Scanner::new(image) else {
        return (0, 0);
    };
    let records = scanner.by_ref().count();
    (records, scanner.finish().offset())
}

#[entry]
fn main() -> ! {
    let image = core::hint::black_box(HOST_SEGMENT);
    let ((records, end), scan_stack) = stack::measure(|| segment_scan(image));
    let expected: usize = env!("RINGLEDGER_HOST_RECORDS").parse().unwrap_or(0);
    stack::report(
        records == expected && end > 0,
        &[("stack.scan", scan_stack), ("records", records)],
    )
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    ringledger_embedded::harness::exit(false)
}
