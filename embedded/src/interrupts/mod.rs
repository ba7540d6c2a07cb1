//! The rings between interrupt handlers and the main loop, the way firmware uses them.
//!
//! - [`spsc::systick_to_main`]: the SysTick handler produces 100 000 items into an SPSC ring in a
//!   `static`; the main loop consumes them and checks order and count. SysTick fires on its
//!   own clock, so it preempts the consumer anywhere in `pop`; the consumer pauses now and then
//!   so that the producer also meets a full ring.
//! - [`mpsc::two_priorities`]: two producers at two interrupt priorities push into one MPSC ring:
//!   a software-pended interrupt at low priority pushes until the ring is full, and SysTick at
//!   high priority preempts it (and the main loop) to push its own items. The main loop checks
//!   that each producer's items arrive complete and in order. On thumbv6m every slot claim is a
//!   compare-and-swap through the critical section.
//!
//! The firmware's `SysTick` and `DefaultHandler` call [`on_systick`] and [`on_software_irq`].
//! Handoff to the handlers uses `critical_section::Mutex` for the SPSC producer (the handler
//! needs it `&mut`) and a `&'static` to the MPSC producers (`push` takes `&self`, so the
//! handlers push outside any critical section and really race). The counters shared with the
//! handlers are atomics with one writer each, so loads and stores suffice on thumbv6m too.

#[cfg(any(target_has_atomic = "ptr", feature = "critical-section"))]
pub mod mpsc;
pub mod spsc;

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;

/// The device interrupt the low-priority producer runs in, pended by software: IRQ 20 is the
/// nRF51's software interrupt SWI0; on the LM3S6965 it belongs to a timer this firmware never
/// starts. Both boards' NVICs have at least 32 lines.
pub const SOFTWARE_IRQ: u16 = 20;

/// Processor cycles between SysTick interrupts.
const SYSTICK_RELOAD: u32 = 1_000;

/// Ticks without any item arriving after which a check gives up (a lost item would otherwise
/// keep the consumer waiting until the runner's timeout).
const STALL_TICKS: u32 = 2_000;

/// What the SysTick handler does now.
static JOB: AtomicU8 = AtomicU8::new(IDLE);
const IDLE: u8 = 0;
const SPSC_JOB: u8 = 1;
#[cfg(any(target_has_atomic = "ptr", feature = "critical-section"))]
const MPSC_JOB: u8 = 2;

/// SysTick interrupts so far (written by the SysTick handler only).
static TICKS: AtomicU32 = AtomicU32::new(0);

/// The SysTick handler's work.
pub fn on_systick() {
    TICKS.store(
        TICKS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
    match JOB.load(Ordering::Acquire) {
        SPSC_JOB => spsc::tick(),
        #[cfg(any(target_has_atomic = "ptr", feature = "critical-section"))]
        MPSC_JOB => mpsc::high_priority_push(),
        _ => {}
    }
}

/// The software interrupt's work.
pub fn on_software_irq() {
    #[cfg(any(target_has_atomic = "ptr", feature = "critical-section"))]
    if JOB.load(Ordering::Acquire) == MPSC_JOB {
        mpsc::low_priority_push();
    }
}

fn ticks() -> u32 {
    TICKS.load(Ordering::Relaxed)
}

/// Busy-waits until SysTick has fired `n` more times.
fn wait_ticks(n: u32) {
    let start = ticks();
    while ticks().wrapping_sub(start) < n {
        core::hint::spin_loop();
    }
}

fn start_systick(syst: &mut SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(SYSTICK_RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

fn stop_systick(syst: &mut SYST) {
    syst.disable_interrupt();
    syst.disable_counter();
}
