//! Two things the firmware needs from the host:
//!
//! - `memory.x`, the memory map cortex-m-rt's linker script includes: the emulated board's
//!   flash and RAM, picked by target (thumbv7m: QEMU's `lm3s6965evb`, thumbv6m: its `microbit`).
//! - `segment.img`, a sealed segment written here by `ringledger-core` on the host. The firmware
//!   scans it in place from flash: the format a server writes is the format a device reads.

use std::env;
use std::fs;
use std::path::PathBuf;

use ringledger_core::segment::{FileHeader, Writer};
use ringledger_core::sequence;

/// The host segment: its capacity (one flash sector's worth), and what it holds.
const SEGMENT_CAPACITY: usize = 2048;
/// Records in the host segment; the firmware checks each one (see `src/segment.rs`).
const HOST_RECORDS: u32 = 24;
/// The unix second of the host segment's first record.
const HOST_SECOND: u32 = 1_700_000_000;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = env::var("TARGET").expect("cargo sets TARGET");

    // (flash, RAM) of the board QEMU emulates for each target.
    let (flash_kib, ram_kib) = match target.as_str() {
        // Stellaris LM3S6965: 256 KiB flash, 64 KiB SRAM.
        "thumbv7m-none-eabi" => (256, 64),
        // nRF51822 of the BBC micro:bit: 256 KiB flash, 16 KiB SRAM.
        "thumbv6m-none-eabi" => (256, 16),
        // Host builds (`cargo fmt`, a stray `cargo check`) link nothing; give the smaller map.
        _ => (256, 16),
    };
    let memory = format!(
        "MEMORY\n{{\n  FLASH : ORIGIN = 0x00000000, LENGTH = {flash_kib}K\n  \
         RAM : ORIGIN = 0x20000000, LENGTH = {ram_kib}K\n}}\n"
    );
    fs::write(out.join("memory.x"), memory).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());

    fs::write(out.join("segment.img"), host_segment()).expect("write segment.img");
    println!("cargo:rustc-env=RINGLEDGER_HOST_RECORDS={HOST_RECORDS}");
    println!("cargo:rustc-env=RINGLEDGER_HOST_SECOND={HOST_SECOND}");
    println!("cargo:rerun-if-changed=build.rs");
}

/// A sealed segment of `HOST_RECORDS` records: record `i` has sequence `join(HOST_SECOND, i + 1)`,
/// tag `i % 3`, timestamp `1_000 * i` and the payload `i` repeated `i % 17 + 1` times.
fn host_segment() -> Vec<u8> {
    let header = FileHeader {
        base_seq: sequence::join(HOST_SECOND, 1),
        ledger_id: 0x00E5_B0DE,
        salt: 0x5A17_F00D_0BAD_CAFE,
        capacity: SEGMENT_CAPACITY as u64,
        created_ns: 1_700_000_000_000_000_000,
    };
    let mut image = vec![0u8; SEGMENT_CAPACITY];
    let mut writer = Writer::create(&mut image, &header, 256).expect("a valid header");
    for i in 0..HOST_RECORDS {
        let payload = vec![i as u8; (i % 17 + 1) as usize];
        writer
            .append(
                sequence::join(HOST_SECOND, i + 1),
                1_000 * u64::from(i),
                i % 3,
                &payload,
            )
            .expect("the host segment has room for its records");
    }
    writer.seal().expect("the host segment seals");
    image
}
