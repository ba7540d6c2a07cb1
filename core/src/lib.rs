//! The `no_std` core of ringledger.
//!
//! - [`spsc`]: a lock-free single-producer single-consumer ring, in a `static` or on the heap.
//! - [`mpsc`]: a lock-free bounded multi-producer single-consumer ring.
//! - [`buffer`]: the [`Buffer`] trait both rings' endpoints implement.
//! - [`sequence`]: the `u64` sequence numbers that order ledger entries (quasar-compatible), and
//!   a lock-free [`Generator`](sequence::Generator) for them.
//! - [`segment`]: the byte format of the on-disk segment log: frames, seals, the scanner and
//!   the recovery rule, as pure functions over byte slices.
//! - [`crc32c`]: the CRC-32C checksum of the segment format, hardware-accelerated where the CPU has it.
//!
//! Nothing here allocates unless the `alloc` feature is on, and nothing blocks: waiting,
//! deadlines and closing live in the std layer (`ringledger::blocking`).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `std` | yes | implies `alloc` |
//! | `alloc` | via `std` | heap rings, [`spsc::channel`] and [`mpsc::channel`] (on targets with pointer-sized compare-and-swap, which `Arc` needs) |
//! | `critical-section` | no | [`mpsc`] on targets without compare-and-swap (thumbv6m), through `portable-atomic`'s critical-section backend |
//! | `portable-atomic-fallback` | no | the same through a backend the firmware binary picks (for example `portable-atomic`'s `unsafe-assume-single-core`, enabled by the binary) |
//!
//! [`spsc`] only ever loads and stores atomics, so it runs natively on every target with atomic
//! loads and stores, thumbv6m included.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod sync;

pub mod buffer;
pub mod crc32c;
#[cfg(any(
    target_has_atomic = "ptr",
    feature = "critical-section",
    feature = "portable-atomic-fallback"
))]
pub mod mpsc;
pub mod segment;
pub mod sequence;
pub mod spsc;

pub use buffer::{Buffer, BufferRead, BufferWrite, Empty, Full};
