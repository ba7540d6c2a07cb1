//! What this machine's disk and page cache give a log, without the ledger: the experiments
//! behind the README's "Where the time goes" for unsynced and synced appends.
//!
//! - `writes [MiB]` (default 1024): `pwrite`s into a fresh `posix_fallocate`d file, three
//!   rounds, the page cache dropped before each (as root; else it says so): writes of 29,600
//!   bytes (100 frames of 296) as they are, with the zeros up to the next 32 KiB written too
//!   (the ledger's way), extended to whole pages, into pages already in the cache, and 64 KiB
//!   aligned chunks (the `write(2)` baseline's). Prints GB/s of data.
//! - `syncs [files]` (default 4): `pwrite` + `fdatasync` of 288,000 bytes (1000 frames) appended
//!   to 64 MiB files, written back to back: files only `posix_fallocate`d, files whose zeros were
//!   written and synced first, and both again with the next file made by a second thread
//!   meanwhile (as the ledger's synced spares are); and the same bytes overwritten in place.
//!   Prints µs per sync.
//!
//! `cargo run --release -p ringledger-benches --example disk_floors -- writes` (files go to
//! `RINGLEDGER_BENCH_DIR`, default the system's temporary directory: it must be a real disk).
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use ringledger_benches::setup::scratch_dir;

const WRITE: usize = 29_600;
const PAD: usize = 32 << 10;
const SYNC: usize = 288_000;
const SEGMENT: usize = 64 << 20;

/// Makes a 64 MiB file at a path, one way or another.
type MakeFile = fn(&Path) -> File;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "writes".into());
    let n: Option<usize> = args.next().and_then(|a| a.parse().ok());
    let dir = scratch_dir();
    match mode.as_str() {
        "writes" => writes(dir.path(), n.unwrap_or(1024).max(1) << 20),
        "syncs" => syncs(dir.path(), n.unwrap_or(4).max(1)),
        other => {
            eprintln!("unknown mode {other:?}: writes [MiB] or syncs [files]");
            std::process::exit(2);
        }
    }
}

/// A fresh file of `len` bytes, allocated (`posix_fallocate`), not written.
fn fallocated(path: &Path, len: usize) -> File {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .expect("create");
    let len = libc::off_t::try_from(len).expect("size fits off_t");
    // SAFETY: a plain system call on a file descriptor we own.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    assert_eq!(
        rc,
        0,
        "posix_fallocate: {}",
        std::io::Error::from_raw_os_error(rc)
    );
    file
}

/// Writes `len` bytes of zeros into `file` in 1 MiB steps.
fn zero(file: &File, len: usize) {
    let zeros = vec![0u8; 1 << 20];
    for at in (0..len).step_by(zeros.len()) {
        let n = zeros.len().min(len - at);
        file.write_all_at(&zeros[..n], at as u64).expect("zeros");
    }
}

fn drop_caches() -> bool {
    // SAFETY: sync(2) takes no arguments.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok()
}

fn writes(dir: &Path, total: usize) {
    let data = vec![0xA5u8; WRITE + 2 * PAD];
    let modes = [
        "as they are",
        "zeros to 32 KiB",
        "whole pages",
        "pages cached",
        "64 KiB aligned",
    ];
    if !drop_caches() {
        println!("(not root: the page cache is not dropped between runs)");
    }
    for round in 1..=3 {
        for mode in modes {
            let path = dir.join("writes");
            drop_caches();
            let file = fallocated(&path, total + (1 << 20));
            if mode == "pages cached" {
                // Zeros written (dirty, in the cache) and left there.
                zero(&file, total);
            }
            let mut padded = 0;
            let start = Instant::now();
            if mode == "64 KiB aligned" {
                for at in (0..total).step_by(64 << 10) {
                    let n = (64 << 10).min(total - at);
                    file.write_all_at(&data[..n], at as u64).expect("pwrite");
                }
            } else {
                for at in (0..total - WRITE).step_by(WRITE) {
                    let (mut from, mut to) = (at, at + WRITE);
                    if mode == "whole pages" {
                        from &= !4095;
                        to = to.next_multiple_of(4096);
                    }
                    if mode == "zeros to 32 KiB" && to > padded {
                        to = to.next_multiple_of(PAD);
                        padded = to;
                    }
                    file.write_all_at(&data[..to - from], from as u64)
                        .expect("pwrite");
                }
            }
            let rate = total as f64 / start.elapsed().as_secs_f64() / 1e9;
            println!("round {round}: {mode:>16}: {rate:.2} GB/s of data");
            drop(file);
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// `pwrite` + `fdatasync` of `SYNC` bytes, back to back, until `file` (64 MiB) is full;
/// returns their time and count.
fn fill(file: &File) -> (Duration, u32) {
    let block = vec![0xA5u8; SYNC];
    let count = SEGMENT / SYNC - 1;
    let mut elapsed = Duration::ZERO;
    for i in 0..count {
        let start = Instant::now();
        file.write_all_at(&block, (i * SYNC) as u64)
            .expect("pwrite");
        file.sync_data().expect("fdatasync");
        elapsed += start.elapsed();
    }
    (elapsed, count as u32)
}

/// Fills `files` 64 MiB files made by `make`, each made before its turn (untimed), or with
/// `ahead` on a second thread while the writer fills the one before (as the ledger's spares);
/// returns the average time per sync.
fn appends(dir: &Path, files: usize, ahead: bool, make: MakeFile) -> Duration {
    let (mut elapsed, mut count) = (Duration::ZERO, 0);
    if !ahead {
        for i in 0..files {
            let (t, n) = fill(&make(&dir.join(format!("segment-{i}"))));
            (elapsed, count) = (elapsed + t, count + n);
        }
        return elapsed / count;
    }
    // A rendezvous channel: the maker makes the next file while the writer fills this one.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<File>(0);
    let dir = dir.to_path_buf();
    let maker = std::thread::spawn(move || {
        for i in 0..files {
            if sender
                .send(make(&dir.join(format!("segment-{i}"))))
                .is_err()
            {
                return;
            }
        }
    });
    for _ in 0..files {
        let (t, n) = fill(&receiver.recv().expect("a file"));
        (elapsed, count) = (elapsed + t, count + n);
    }
    let _ = maker.join();
    elapsed / count
}

fn syncs(dir: &Path, files: usize) {
    fn only_allocated(path: &Path) -> File {
        let file = fallocated(path, SEGMENT);
        file.sync_all().expect("sync");
        file
    }
    fn zeroed(path: &Path) -> File {
        let file = fallocated(path, SEGMENT);
        zero(&file, SEGMENT);
        file.sync_all().expect("sync");
        file
    }
    for round in 1..=2 {
        let rows: [(&str, bool, MakeFile); 4] = [
            ("into fallocated files", false, only_allocated),
            ("into zeroed files", false, zeroed),
            (
                "into fallocated files, the next made meanwhile",
                true,
                only_allocated,
            ),
            ("into zeroed files, the next zeroed meanwhile", true, zeroed),
        ];
        for (name, ahead, make) in rows {
            let per = appends(dir, files, ahead, make);
            println!(
                "round {round}: append {name:>46}: {:.0} µs per sync",
                per.as_secs_f64() * 1e6
            );
        }
        let file = zeroed(&dir.join("overwrite"));
        let block = vec![0xA5u8; SYNC];
        let n = 200;
        let start = Instant::now();
        for _ in 0..n {
            file.write_all_at(&block, 0).expect("pwrite");
            file.sync_data().expect("fdatasync");
        }
        let per = start.elapsed() / n;
        println!(
            "round {round}: {:>53}: {:.0} µs per sync",
            "overwrite in place",
            per.as_secs_f64() * 1e6
        );
    }
}
