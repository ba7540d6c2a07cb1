//! What the first touch of a fresh page costs on this machine: maps `N` MiB of anonymous
//! memory (default 1024), writes one byte to each 4 KiB page, and prints the median touch and
//! the touches slower than 50 µs (count, total, longest).
//!
//! A page the kernel hands out for the first time costs a fault and a clear, about a
//! microsecond. In a virtual machine whose free memory the host takes back (a balloon's free
//! page reporting: `/sys/module/page_reporting` exists), some first touches also wait for the
//! host to fault the page in again: on the 2-vCPU VM of 2026-12-07, 1 page in 120 to 530
//! (three runs), each 130-150 µs on average and up to 0.5 ms, with the vCPU stopped. Page cache pages of a fresh ledger segment come from the
//! same free memory, which is what puts millisecond stalls in a paced queue there (see the
//! README, "Where the time goes"). `cargo run --release -p ringledger-benches --example
//! fresh_pages -- 1024`
use std::time::{Duration, Instant};

const PAGE: usize = 4096;

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let len = mib << 20;
    // SAFETY: a fresh private anonymous mapping, checked below, unmapped at the end.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(ptr != libc::MAP_FAILED, "mmap of {mib} MiB failed");
    let base = ptr.cast::<u8>();
    let mut touches = Vec::with_capacity(len / PAGE);
    for page in 0..len / PAGE {
        let start = Instant::now();
        // SAFETY: inside the mapping made above.
        unsafe { base.add(page * PAGE).write_volatile(1) };
        touches.push(start.elapsed());
    }
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(ptr, len) };
    let slow: Vec<Duration> = touches
        .iter()
        .copied()
        .filter(|t| *t > Duration::from_micros(50))
        .collect();
    let longest = touches.iter().max().copied().unwrap_or_default();
    touches.sort_unstable();
    println!(
        "{} pages: median first touch {:?}; {} slower than 50 µs, {:?} in all, longest {:?}",
        touches.len(),
        touches[touches.len() / 2],
        slow.len(),
        slow.iter().sum::<Duration>(),
        longest
    );
}
