//! The `checks` firmware: boots on the emulated board, runs every check of
//! [`ringledger_embedded::CHECKS`], prints one line each and the `end` line, and exits through
//! semihosting with the verdict (QEMU's exit code).
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use cortex_m_rt::{entry, exception, ExceptionFrame};
use ringledger_embedded::cell::TakeOnce;
use ringledger_embedded::harness::{self, Board, REGION_LEN};
use ringledger_embedded::{interrupts, stack, CHECKS};

#[entry]
fn main() -> ! {
    static REGION: TakeOnce<[u8; REGION_LEN]> = TakeOnce::new([0; REGION_LEN]);
    let Some(core) = cortex_m::Peripherals::take() else {
        harness::print(format_args!(
            "FAIL boot: the core peripherals were taken already"
        ));
        harness::exit(false);
    };
    let mut board = Board {
        syst: core.SYST,
        nvic: core.NVIC,
        scb: core.SCB,
        region: REGION.take(),
    };
    let summary = harness::run_all(CHECKS, &mut board);
    harness::print(format_args!(
        "end {} {} stack {}",
        summary.passed,
        summary.failed,
        stack::high_water()
    ));
    harness::exit(summary.failed == 0)
}

#[exception]
fn SysTick() {
    interrupts::on_systick();
}

/// The software interrupt of the MPSC check; anything else is a failure.
///
/// cortex-m-rt makes this an `unsafe fn` because it would also catch a non-maskable interrupt,
/// which may preempt a critical section; neither board has an NMI source this firmware enables.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == interrupts::SOFTWARE_IRQ as i16 {
        interrupts::on_software_irq();
    } else {
        harness::print(format_args!(
            "FAIL {}: unexpected exception or interrupt {}",
            harness::running(),
            irqn
        ));
        harness::exit(false);
    }
}

/// A fault ends the run as a failure of the check that was running.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    harness::print(format_args!(
        "FAIL {}: hard fault at pc {:#010x}, lr {:#010x}",
        harness::running(),
        frame.pc(),
        frame.lr()
    ));
    harness::exit(false)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    // One line: the location, then the message.
    match info.location() {
        Some(at) => harness::print(format_args!(
            "FAIL {}: {}:{}: panicked: {}",
            harness::running(),
            at.file(),
            at.line(),
            info.message()
        )),
        None => harness::print(format_args!(
            "FAIL {}: panicked: {}",
            harness::running(),
            info.message()
        )),
    }
    harness::exit(false)
}
