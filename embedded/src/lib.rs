//! ringledger-core on a microcontroller: the checks the `checks` firmware runs under QEMU, and the
//! pieces the size-report examples share.
//!
//! The firmware (`src/main.rs`) boots on an emulated Cortex-M3 (`lm3s6965evb`, thumbv7m) or
//! Cortex-M0 (`microbit`, thumbv6m), runs every check listed in [`CHECKS`], prints one line per
//! check through semihosting and exits through semihosting with the verdict, which QEMU turns
//! into its exit code. `embedded/run` builds and boots both.
//!
//! - [`cell`]: a value in a `static`, handed out once (the rings' home).
//! - [`harness`]: the check type, the `ensure!` macros, the output, the exit.
//! - [`spsc`], [`mpsc`]: the rings in `static`s, driven from one context.
//! - [`interrupts`]: the rings between interrupt handlers and the main loop.
//! - [`sequence`], [`segment`]: sequence numbers and the segment log over a RAM region.
//! - [`stack`]: painting the stack and reading its high-water mark (the size report).
#![no_std]
// A check's failure carries its message in a fixed buffer (no heap here); returning it by value
// is the point, and happens once per failed check.
#![allow(clippy::result_large_err)]

pub mod cell;
pub mod harness;
pub mod interrupts;
#[cfg(any(target_has_atomic = "ptr", feature = "critical-section"))]
pub mod mpsc;
pub mod segment;
pub mod sequence;
pub mod spsc;
pub mod stack;

use harness::Check;

/// Every check the firmware runs, in order.
pub const CHECKS: &[Check] = &[
    Check::new("spsc::push_pop_full_empty", spsc::push_pop_full_empty),
    Check::new("spsc::wrap_around", spsc::wrap_around),
    Check::new("spsc::chunks_across_the_wrap", spsc::chunks_across_the_wrap),
    Check::new("spsc::slices_and_drain", spsc::slices_and_drain),
    Check::new("spsc::items_dropped_once", spsc::items_dropped_once),
    #[cfg(any(target_has_atomic = "ptr", feature = "critical-section"))]
    Check::new("mpsc::push_pop_full_empty", mpsc::push_pop_full_empty),
    #[cfg(any(target_has_atomic = "ptr", feature = "critical-section"))]
    Check::new(
        "mpsc::wrap_around_two_producers",
        mpsc::wrap_around_two_producers,
    ),
    #[cfg(any(target_has_atomic = "ptr", feature = "critical-section"))]
    Check::new("mpsc::pop_many_and_drain", mpsc::pop_many_and_drain),
    #[cfg(any(target_has_atomic = "ptr", feature = "critical-section"))]
    Check::new("mpsc::close", mpsc::close),
    Check::new("sequence::join_split", sequence::join_split),
    Check::new("sequence::encode_decode", sequence::encode_decode),
    Check::new("sequence::decode_errors", sequence::decode_errors),
    Check::new("sequence::lists", sequence::lists),
    Check::new("sequence::compile", sequence::compile),
    #[cfg(any(target_has_atomic = "64", feature = "critical-section"))]
    Check::new("sequence::generator", sequence::generator),
    Check::new("segment::write_scan_seal", segment::write_scan_seal),
    Check::new("segment::torn_tail", segment::torn_tail),
    Check::new("segment::corrupt_frame", segment::corrupt_frame),
    Check::new("segment::host_image_in_flash", segment::host_image_in_flash),
    Check::new(
        "interrupts::spsc::systick_to_main",
        interrupts::spsc::systick_to_main,
    ),
    #[cfg(any(target_has_atomic = "ptr", feature = "critical-section"))]
    Check::new(
        "interrupts::mpsc::two_priorities",
        interrupts::mpsc::two_priorities,
    ),
];
