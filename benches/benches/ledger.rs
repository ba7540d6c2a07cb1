//! The ledger against its physical baselines and against the `commitlog` crate, in one run.
//!
//! Run: `cargo bench -p ringledger-benches --bench ledger` (quick check: `-- --test`).
//!
//! Files go to fresh temporary directories under `RINGLEDGER_BENCH_DIR` (default: the system's
//! temporary directory). It must be a real disk: on a tmpfs every sync is free.
//!
//! Criterion reports throughput (or time); the ratios are ours divided by the baseline's.
//!
//! Groups:
//! - `ledger_append_256B`: unsynced appends of 256-byte payloads, one criterion iteration =
//!   100 records. `baseline_mmap_frames`: a 32-byte header (length, sequence, payload CRC-32C)
//!   and the payload copied into a pre-faulted shared mapping of a `posix_fallocate`d file
//!   (256 MiB, reused round-robin), with a release store of the tail after every record.
//!   `baseline_write64k_fallocated`: the same frames built into a 64 KiB buffer and written
//!   with `write(2)` into a fresh `posix_fallocate`d file (the limit of a growing log; target:
//!   ours ≥ 0.8× it in writes of 100, ≥ 0.5× one entry per write).
//!   `commitlog_batch100`: `commitlog` 0.2, a `MessageBuf` of 100 messages per `append`, no
//!   flush. `fjall_batch100`: `fjall` 2, quasar's design in Rust (the log as sequence-keyed
//!   values in an LSM, as quasar sits on pebble): a write batch of 100 inserts per commit, big-
//!   endian sequence keys, no fsync, a fresh keyspace per sample. `ringledger_batch100` / `ringledger_single`: `Ledger::write` with 100 entries per
//!   call, or one (by default writes of 100 are staged and written with `pwrite`, single entries
//!   go through the mapping); `ringledger_mapped_batch100`: writes of 100 through the mapping
//!   too (`LedgerConfig::stage_at_least = usize::MAX`). commitlog starts empty in a fresh directory for every sample, deleted after
//!   it; our ledger lives across samples (its background thread keeps a pre-faulted spare
//!   segment ready, as in real use) and everything in it is deleted after each sample
//!   (untimed), so sealed segments go away and dirty pages never pile up to the kernel's
//!   write-back thresholds. Segment rolls happen inside the timed region, so per-sample times
//!   are bimodal: read the slope/mean, not only the median. Targets: ours ≥ 0.7× the baseline,
//!   ≥ 2× commitlog, ≥ 3× fjall.
//! - `ledger_synced_1000x256B`: `Durability::Synced` writes of 1000 entries each, next to
//!   `pwrite4k_fdatasync`, a 4 KiB `pwrite` + `fdatasync` overwriting the same already-written
//!   block of a file in the same directory, counted as 1000 elements per sync so the two
//!   throughputs compare directly. Target: ours ≥ 0.8× it. `pwrite288000B_fdatasync` is the
//!   same with the bytes of 1000 frames (the floor for moving that much data per sync; ours
//!   also writes into freshly allocated blocks, which costs a journal commit per sync).
//!   `pwrite288000B_fdatasync_fresh` appends those bytes to a `posix_fallocate`d 64 MiB file
//!   instead, each write after the last (a fresh file, untimed, when one is full): the floor of
//!   a synced log that grows into new blocks, which pays that journal commit in every sync.
//! - `ledger_group_commit_10x256B`: synced writes of 10 entries, from 8 threads at once
//!   (each claims its sequences from a shared counter and claims again when a later claim
//!   wrote first) and from one thread; one iteration = 8 writes. Target: 8 threads ≥ 4× one.
//! - `ledger_read_seq`: reads a ledger of `RINGLEDGER_BENCH_READ_MB` MiB of 256-byte payloads
//!   (default 1024) from the first sequence to the last with `read(from, 4096)`, adding up the
//!   payload lengths and touching one byte of each payload, vs `memcpy` of the same number of
//!   payload bytes between two warm buffers. Target: ≥ 0.5× memcpy.
//! - `ledger_open`: `Ledger::open` of a ledger of `RINGLEDGER_BENCH_OPEN_ENTRIES` entries
//!   (default 10 million) with 16-byte payloads, closed between iterations.
//! - `ledger_wake`: round trips between two threads pinned to cores 0 and 1: A writes `n` to
//!   ledger 1, B (blocked in `wait_for_head(n, Deadline::Forever)`) wakes, writes `n` to ledger
//!   2, A waits for it the same way; vs the same shape with two `Mutex<u64>` + `Condvar` pairs.
//!   One iteration = one round trip. Target: ours ≤ 2× the Condvar time. `wait_for_head` spins
//!   a few microseconds before it parks, so a back-to-back ping-pong is mostly spin hand-offs.
//! - `ledger_wake_parked`: the wake-up of a waiter that really sleeps: A leaves B alone for
//!   `RINGLEDGER_BENCH_PARK_US` µs (default 100; B parks), then notes the time and writes (or
//!   sets the `Mutex` and notifies); B notes when its wait returns. One iteration = one
//!   wake-up, timed from before the write to the waiter's return. The idle time is not
//!   counted but is wall time: keep `--measurement-time` short. The result depends on how
//!   deeply the idle core sleeps (on the 2-vCPU VM: ~20-40 µs for both at 100 µs and 1 ms).
//!
//! In `--test` mode every case runs once on tiny data (8 MiB for reads, a few thousand entries
//! to open), so the whole check takes seconds.
#![allow(missing_docs)]

use std::fs::File;
use std::hint::black_box;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use commitlog::message::MessageBuf;
use commitlog::{CommitLog, LogOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::storage::Durability;
use ringledger::wait::Deadline;
use ringledger_benches::setup::{env_u64, scratch_dir, test_mode};
use ringledger_benches::wake_latencies;
use ringledger_benches::{pin_to, Padded, SpinBarrier, CONSUMER_CORE, PRODUCER_CORE};
use ringledger_core::crc32c::crc32c;
use ringledger_core::segment::parse_file_name;
use tempfile::TempDir;

/// Payload bytes of an appended or read record.
const PAYLOAD: usize = 256;
/// Bytes of a frame header in the baseline (the ledger's frame header is as large).
const FRAME_HEADER: usize = 32;
/// Records per criterion iteration in `ledger_append_256B`, and per batched write.
const APPEND_BATCH: usize = 100;
/// Entries per synced write.
const SYNC_BATCH: usize = 1000;
/// Entries per `read` call.
const READ_MAX: usize = 4096;
/// Payload bytes of the entries of the ledger `ledger_open` opens.
const SMALL_PAYLOAD: usize = 16;

static PAYLOAD_256: [u8; PAYLOAD] = [0xA5; PAYLOAD];

/// A `posix_fallocate`d file mapped shared and writable, every page touched once.
struct PrefaultedMap {
    base: NonNull<u8>,
    len: usize,
    _file: File,
}

impl PrefaultedMap {
    fn new(dir: &Path, len: usize) -> Self {
        let file = tempfile::tempfile_in(dir).expect("temporary file");
        let fd = file.as_raw_fd();
        let size = libc::off_t::try_from(len).expect("mapping size fits off_t");
        // SAFETY: a plain system call on a file descriptor we own.
        let rc = unsafe { libc::posix_fallocate(fd, 0, size) };
        assert_eq!(
            rc,
            0,
            "posix_fallocate: {}",
            io::Error::from_raw_os_error(rc)
        );
        // SAFETY: a fresh shared mapping of `len` bytes of our own file; nothing else maps it.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        assert_ne!(
            addr,
            libc::MAP_FAILED,
            "mmap: {}",
            io::Error::last_os_error()
        );
        let base = NonNull::new(addr.cast::<u8>()).expect("mmap returned null");
        for offset in (0..len).step_by(4096) {
            // SAFETY: `offset < len`, inside the writable mapping.
            unsafe { base.as_ptr().add(offset).write_volatile(0) };
        }
        Self {
            base,
            len,
            _file: file,
        }
    }
}

impl Drop for PrefaultedMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no references into it remain.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// The framed-append baseline: header + payload copied into a [`PrefaultedMap`], the tail
/// published with a release store after each record. Wraps to the start when full.
struct FramedBaseline {
    map: PrefaultedMap,
    tail: Padded<AtomicUsize>,
    end: usize,
    seq: u64,
}

impl FramedBaseline {
    fn new(dir: &Path, len: usize) -> Self {
        Self {
            map: PrefaultedMap::new(dir, len),
            tail: Padded(AtomicUsize::new(0)),
            end: 0,
            seq: 0,
        }
    }

    #[inline(always)]
    fn append(&mut self, payload: &[u8]) {
        let frame = FRAME_HEADER + payload.len();
        if self.end + frame > self.map.len {
            self.end = 0;
        }
        self.seq += 1;
        let mut header = [0u8; FRAME_HEADER];
        header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        header[8..16].copy_from_slice(&self.seq.to_le_bytes());
        header[24..28].copy_from_slice(&crc32c(payload).to_le_bytes());
        // SAFETY: `end + frame <= len` (checked above): both copies stay inside the mapping,
        // which nothing else reads or writes.
        unsafe {
            let dst = self.map.base.as_ptr().add(self.end);
            ptr::copy_nonoverlapping(header.as_ptr(), dst, FRAME_HEADER);
            ptr::copy_nonoverlapping(payload.as_ptr(), dst.add(FRAME_HEADER), payload.len());
        }
        self.end += frame;
        self.tail.0.store(self.end, Ordering::Release);
    }
}

/// `batches` writes of [`APPEND_BATCH`] sequence-keyed values into a fresh `fjall` partition,
/// one write batch each: quasar's own design (a log kept as sequence-keyed values in an LSM, as
/// quasar sits on pebble) in Rust. No fsync, as in our unsynced writes; fjall's journal is
/// buffered. Returns their time; the keyspace closes (and flushes) after it.
fn fjall_append(batches: u64) -> Duration {
    let dir = scratch_dir();
    let keyspace = fjall::Config::new(dir.path()).open().expect("fjall");
    let ledger = keyspace
        .open_partition("ledger", fjall::PartitionCreateOptions::default())
        .expect("fjall partition");
    let mut seq = 0u64;
    let start = Instant::now();
    for _ in 0..batches {
        let mut batch = keyspace.batch();
        for _ in 0..APPEND_BATCH {
            seq += 1;
            batch.insert(&ledger, seq.to_be_bytes(), black_box(&PAYLOAD_256[..]));
        }
        batch.commit().expect("fjall commit");
    }
    let elapsed = start.elapsed();
    assert_eq!(seq, batches * APPEND_BATCH as u64);
    drop(ledger);
    drop(keyspace);
    drop(dir);
    elapsed
}

/// `batches` appends of [`APPEND_BATCH`] messages to a fresh `commitlog`; returns their time.
fn commitlog_append(batches: u64) -> Duration {
    let dir = scratch_dir();
    let mut log = CommitLog::new(LogOptions::new(dir.path())).expect("commitlog");
    let mut buf = MessageBuf::default();
    let start = Instant::now();
    for _ in 0..batches {
        for _ in 0..APPEND_BATCH {
            buf.push(black_box(&PAYLOAD_256[..])).expect("message size");
        }
        log.append(&mut buf).expect("commitlog append");
        buf.clear();
    }
    let elapsed = start.elapsed();
    assert_eq!(log.next_offset(), batches * APPEND_BATCH as u64);
    drop(log);
    drop(dir);
    elapsed
}

/// `batches` batches of [`APPEND_BATCH`] framed records (the baseline's 32-byte header with
/// the payload CRC, and the payload) built into a 64 KiB buffer and written with `write(2)`
/// whenever it is full, into a fresh file `posix_fallocate`d to the size (untimed): the limit
/// of a log that grows into new blocks.
fn write64k_append(batches: u64) -> Duration {
    const CHUNK: usize = 64 << 10;
    let dir = scratch_dir();
    let mut file = File::create(dir.path().join("write-baseline")).expect("baseline file");
    let total = batches as usize * APPEND_BATCH * (FRAME_HEADER + PAYLOAD);
    let size = libc::off_t::try_from(total.max(1)).expect("size fits off_t");
    // SAFETY: a plain system call on a file descriptor we own.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, size) };
    assert_eq!(
        rc,
        0,
        "posix_fallocate: {}",
        io::Error::from_raw_os_error(rc)
    );
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut seq = 0u64;
    let start = Instant::now();
    for _ in 0..batches * APPEND_BATCH as u64 {
        let payload = black_box(&PAYLOAD_256[..]);
        seq += 1;
        let mut header = [0u8; FRAME_HEADER];
        header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        header[8..16].copy_from_slice(&seq.to_le_bytes());
        header[24..28].copy_from_slice(&crc32c(payload).to_le_bytes());
        if chunk.len() + FRAME_HEADER + payload.len() > CHUNK {
            file.write_all(&chunk).expect("write");
            chunk.clear();
        }
        chunk.extend_from_slice(&header);
        chunk.extend_from_slice(payload);
    }
    file.write_all(&chunk).expect("write");
    let elapsed = start.elapsed();
    drop(file);
    drop(dir);
    elapsed
}

/// A ledger in its own temporary directory (dropped before the directory).
struct TempLedger {
    ledger: Ledger,
    _dir: TempDir,
}

impl TempLedger {
    fn open(config: LedgerConfig) -> Self {
        let dir = scratch_dir();
        let ledger = Ledger::open(dir.path(), config).expect("open ledger");
        Self { ledger, _dir: dir }
    }
}

/// `batch` entries sharing one static payload, sequences `1..=batch`. Building them once and
/// then only bumping the sequences keeps entry construction out of the measurements.
fn entries(batch: usize, payload: &'static [u8]) -> Vec<Entry> {
    let payload = Bytes::from_static(payload);
    (1..=batch as u64)
        .map(|seq| Entry::new(seq, payload.clone()))
        .collect()
}

/// Writes `records` entries `batch` at a time to `ledger` (its next sequences); returns their
/// time. Then deletes everything, untimed, so that full segments go away (the page cache never
/// holds more than a segment or two of dirty pages from earlier samples).
fn ledger_append(ledger: &Ledger, records: u64, batch: usize) -> Duration {
    let batches = records / batch as u64;
    assert_eq!(batches * batch as u64, records, "whole batches only");
    let mut batch_entries = entries(batch, &PAYLOAD_256);
    let first = ledger.head() + 1;
    for e in &mut batch_entries {
        e.sequence += first - 1;
    }
    let start = Instant::now();
    for _ in 0..batches {
        ledger.write(&batch_entries).expect("ledger write");
        for e in &mut batch_entries {
            e.sequence += batch as u64;
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(ledger.head(), first - 1 + records);
    ledger.delete(ledger.head()).expect("ledger delete");
    elapsed
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger_append_256B");
    g.throughput(Throughput::Elements(APPEND_BATCH as u64));
    let region = if test_mode() { 8 << 20 } else { 256 << 20 };
    let mut baseline: Option<(FramedBaseline, TempDir)> = None;
    g.bench_function("baseline_mmap_frames", |b| {
        let (baseline, _) = baseline.get_or_insert_with(|| {
            let dir = scratch_dir();
            (FramedBaseline::new(dir.path(), region), dir)
        });
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters * APPEND_BATCH as u64 {
                baseline.append(black_box(&PAYLOAD_256[..]));
            }
            start.elapsed()
        })
    });
    drop(baseline);
    g.bench_function("baseline_write64k_fallocated", |b| {
        b.iter_custom(write64k_append)
    });
    g.bench_function("commitlog_batch100", |b| b.iter_custom(commitlog_append));
    g.bench_function("fjall_batch100", |b| b.iter_custom(fjall_append));
    // The default (writes of 100 staged and written with `pwrite`, single entries through the
    // mapping, faulted in ahead by the background thread), and writes of 100 through the
    // mapping too (`LedgerConfig::stage_at_least = usize::MAX`).
    for (name, batch, mapped) in [
        ("ringledger_batch100", APPEND_BATCH, false),
        ("ringledger_mapped_batch100", APPEND_BATCH, true),
        ("ringledger_single", 1, false),
    ] {
        let mut ledger: Option<TempLedger> = None;
        g.bench_function(name, |b| {
            let ledger = ledger.get_or_insert_with(|| {
                let mut config = LedgerConfig::default();
                if mapped {
                    config.stage_at_least = usize::MAX;
                }
                TempLedger::open(config)
            });
            b.iter_custom(|iters| ledger_append(&ledger.ledger, iters * APPEND_BATCH as u64, batch))
        });
    }
    g.finish();
}

/// Synced writes of 1000 entries vs `pwrite` + `fdatasync` overwriting already written and
/// synced blocks: 4 KiB (the latency floor of a sync), and as many bytes as the 1000 frames
/// (the floor with the same bytes to move).
fn synced(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger_synced_1000x256B");
    g.throughput(Throughput::Elements(SYNC_BATCH as u64));
    let frames_len = SYNC_BATCH * (FRAME_HEADER + PAYLOAD);
    for (name, len) in [
        ("pwrite4k_fdatasync", 4096),
        ("pwrite288000B_fdatasync", frames_len),
    ] {
        let mut probe: Option<(File, TempDir)> = None;
        g.bench_function(name, |b| {
            let (file, _) = probe.get_or_insert_with(|| {
                let dir = scratch_dir();
                let mut file = File::create(dir.path().join("fdatasync-probe")).expect("probe");
                file.write_all(&vec![0x5A; len]).expect("probe write");
                file.sync_all().expect("probe sync");
                (file, dir)
            });
            let block = vec![0xA5u8; len];
            b.iter(|| {
                file.write_all_at(black_box(&block), 0).expect("pwrite");
                file.sync_data().expect("fdatasync");
            })
        });
    }
    let mut fresh: Option<FreshAppends> = None;
    g.bench_function("pwrite288000B_fdatasync_fresh", |b| {
        let fresh = fresh.get_or_insert_with(|| FreshAppends::new(frames_len));
        b.iter_custom(|iters| fresh.append(iters))
    });
    let mut ledger: Option<TempLedger> = None;
    g.bench_function("ringledger_synced_batch1000", |b| {
        let ledger = ledger.get_or_insert_with(|| {
            TempLedger::open(LedgerConfig::default().with_durability(Durability::Synced))
        });
        b.iter_custom(|iters| ledger_append(&ledger.ledger, iters * SYNC_BATCH as u64, SYNC_BATCH))
    });
    g.finish();
}

/// The floor of a synced log that grows: `pwrite` + `fdatasync` of `len` bytes appended to a
/// `posix_fallocate`d file of [`FRESH_FILE`] bytes, each write after the last, so that every
/// sync also commits the conversion of the blocks it wrote from unwritten to written (the
/// journal commit that an overwrite of written blocks does not pay). A full file is replaced
/// by a fresh one, untimed.
struct FreshAppends {
    dir: TempDir,
    file: File,
    files: u64,
    at: u64,
    block: Vec<u8>,
}

/// Bytes of each file [`FreshAppends`] appends to (a default segment's size).
const FRESH_FILE: u64 = 64 << 20;

impl FreshAppends {
    fn new(len: usize) -> Self {
        let dir = scratch_dir();
        let file = Self::fresh_file(&dir, 0);
        Self {
            dir,
            file,
            files: 1,
            at: 0,
            block: vec![0xA5; len],
        }
    }

    fn fresh_file(dir: &TempDir, n: u64) -> File {
        let path = dir.path().join(format!("fresh-{n}"));
        let file = File::create(&path).expect("fresh file");
        let len = libc::off_t::try_from(FRESH_FILE).expect("size fits off_t");
        // SAFETY: a plain system call on a file descriptor we own.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        assert_eq!(
            rc,
            0,
            "posix_fallocate: {}",
            io::Error::from_raw_os_error(rc)
        );
        file.sync_all().expect("fresh file sync");
        file
    }

    /// `iters` appends; returns their time (replacing full files is not counted).
    fn append(&mut self, iters: u64) -> Duration {
        let mut elapsed = Duration::ZERO;
        for _ in 0..iters {
            if self.at + self.block.len() as u64 > FRESH_FILE {
                let old = self.files.saturating_sub(1);
                let _ = std::fs::remove_file(self.dir.path().join(format!("fresh-{old}")));
                // The full file closed (its blocks freed) and the freeing synced before the
                // next timed sync, which would otherwise commit it.
                drop(std::mem::replace(
                    &mut self.file,
                    Self::fresh_file(&self.dir, self.files),
                ));
                File::open(self.dir.path())
                    .and_then(|dir| dir.sync_all())
                    .expect("scratch directory sync");
                self.files += 1;
                self.at = 0;
            }
            let start = Instant::now();
            self.file
                .write_all_at(black_box(&self.block), self.at)
                .expect("pwrite");
            self.file.sync_data().expect("fdatasync");
            elapsed += start.elapsed();
            self.at += self.block.len() as u64;
        }
        elapsed
    }
}

/// Writers per iteration of `ledger_group_commit_10x256B`, and entries per write.
const GROUP_WRITERS: usize = 8;
const GROUP_BATCH: usize = 10;

/// Synced writes of [`GROUP_BATCH`] entries by `threads` threads sharing `ledger`, until
/// `iters * GROUP_WRITERS` writes have landed; returns their time. Each thread claims the next
/// sequences from a shared counter and writes them; a write that lost the race to a later
/// claim (`NotMonotonic`, refused before anything is written) claims again.
fn group_commit(ledger: &Ledger, iters: u64, threads: usize) -> Duration {
    use std::sync::atomic::AtomicU64;
    let writes = iters * GROUP_WRITERS as u64;
    let next = AtomicU64::new(ledger.head() + 1);
    let landed = AtomicU64::new(0);
    let payload = Bytes::from_static(&PAYLOAD_256);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut batch: Vec<Entry> = (0..GROUP_BATCH)
                    .map(|_| Entry::new(1, payload.clone()))
                    .collect();
                while landed.load(Ordering::Relaxed) < writes {
                    let first = next.fetch_add(GROUP_BATCH as u64, Ordering::Relaxed);
                    for (i, e) in batch.iter_mut().enumerate() {
                        e.sequence = first + i as u64;
                    }
                    match ledger.write(&batch) {
                        Ok(()) => {
                            landed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(ringledger::ledger::LedgerError::NotMonotonic { .. }) => {}
                        Err(e) => panic!("ledger write: {e}"),
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed();
    ledger.delete(ledger.head()).expect("ledger delete");
    elapsed
}

/// Group commit: synced writes of 10 entries from 8 threads at once against one thread
/// writing them alone; one iteration = 8 writes (80 entries). Target: 8 threads ≥ 4× one.
fn group(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger_group_commit_10x256B");
    g.throughput(Throughput::Elements((GROUP_WRITERS * GROUP_BATCH) as u64));
    for (name, threads) in [("ringledger_1_thread", 1), ("ringledger_8_threads", 8)] {
        let mut ledger: Option<TempLedger> = None;
        g.bench_function(name, |b| {
            let ledger = ledger.get_or_insert_with(|| {
                TempLedger::open(LedgerConfig::default().with_durability(Durability::Synced))
            });
            b.iter_custom(|iters| group_commit(&ledger.ledger, iters, threads))
        });
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let mb = env_u64("RINGLEDGER_BENCH_READ_MB", 1024, 8);
    let bytes = usize::try_from(mb << 20).expect("read size fits usize");
    let mut g = c.benchmark_group("ledger_read_seq");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes as u64));
    let mut buffers: Option<(Vec<u8>, Vec<u8>)> = None;
    g.bench_function("memcpy", |b| {
        let (src, dst) = buffers.get_or_insert_with(|| {
            let src = vec![0x5Au8; bytes];
            let mut dst = vec![0u8; bytes];
            dst.copy_from_slice(&src);
            (src, dst)
        });
        b.iter(|| {
            dst.copy_from_slice(black_box(src));
            black_box(&dst);
        })
    });
    drop(buffers);
    let entries_total = (bytes / PAYLOAD) as u64;
    let mut ledger: Option<TempLedger> = None;
    g.bench_function("ringledger_read_4096", |b| {
        let ledger = ledger.get_or_insert_with(|| {
            let ledger = TempLedger::open(LedgerConfig::default());
            fill(&ledger.ledger, entries_total, &PAYLOAD_256);
            ledger
        });
        b.iter(|| read_all(&ledger.ledger, entries_total))
    });
    g.bench_function("ringledger_read_into_4096", |b| {
        let ledger = ledger.get_or_insert_with(|| {
            let ledger = TempLedger::open(LedgerConfig::default());
            fill(&ledger.ledger, entries_total, &PAYLOAD_256);
            ledger
        });
        let mut out = Vec::with_capacity(READ_MAX);
        b.iter(|| read_all_into(&ledger.ledger, entries_total, &mut out))
    });
    g.bench_function("ringledger_visit_4096", |b| {
        let ledger = ledger.get_or_insert_with(|| {
            let ledger = TempLedger::open(LedgerConfig::default());
            fill(&ledger.ledger, entries_total, &PAYLOAD_256);
            ledger
        });
        b.iter(|| visit_all(&ledger.ledger, entries_total))
    });
    g.finish();
}

/// Writes entries `1..=n` with `payload`, 1000 per write.
fn fill(ledger: &Ledger, n: u64, payload: &'static [u8]) {
    const BATCH: u64 = 1000;
    let mut batch = entries(BATCH as usize, payload);
    let mut written = 0;
    while written < n {
        let k = (n - written).min(BATCH) as usize;
        ledger.write(&batch[..k]).expect("ledger write");
        written += k as u64;
        for e in &mut batch {
            e.sequence += BATCH;
        }
    }
    assert_eq!(ledger.head(), n);
}

/// Reads entries `1..=n` with `read(from, 4096)`: adds up the payload lengths and touches the
/// first byte of each payload. Returns the payload bytes.
fn read_all(ledger: &Ledger, n: u64) -> u64 {
    let (mut from, mut count, mut bytes, mut touched) = (1, 0u64, 0u64, 0u64);
    while count < n {
        let entries = ledger.read(from, READ_MAX).expect("ledger read");
        let Some(last) = entries.last() else { break };
        from = last.sequence + 1;
        count += entries.len() as u64;
        for e in &entries {
            bytes += e.payload.len() as u64;
            touched += u64::from(e.payload[0]);
        }
    }
    assert_eq!(count, n, "entries read");
    black_box(touched);
    bytes
}

/// [`read_all`] with `read_into` and one reused vector.
fn read_all_into(ledger: &Ledger, n: u64, out: &mut Vec<Entry>) -> u64 {
    let (mut from, mut count, mut bytes, mut touched) = (1, 0u64, 0u64, 0u64);
    while count < n {
        out.clear();
        ledger.read_into(from, READ_MAX, out).expect("ledger read");
        let Some(last) = out.last() else { break };
        from = last.sequence + 1;
        count += out.len() as u64;
        for e in out.iter() {
            bytes += e.payload.len() as u64;
            touched += u64::from(e.payload[0]);
        }
    }
    assert_eq!(count, n, "entries read");
    black_box(touched);
    bytes
}

/// [`read_all`] with `visit`: payloads borrowed, nothing allocated or counted per entry.
fn visit_all(ledger: &Ledger, n: u64) -> u64 {
    let (mut from, mut count, mut bytes, mut touched) = (1, 0u64, 0u64, 0u64);
    while count < n {
        let mut last = None;
        let seen = ledger
            .visit(from, READ_MAX, |e| {
                bytes += e.payload.len() as u64;
                touched += u64::from(e.payload[0]);
                last = Some(e.sequence);
            })
            .expect("ledger visit");
        let Some(last) = last else { break };
        from = last + 1;
        count += seen as u64;
    }
    assert_eq!(count, n, "entries read");
    black_box(touched);
    bytes
}

/// The configuration of the ledgers `ledger_open` opens: 64 MiB segments, or 256 KiB ones in
/// `--test` mode (so that the few entries there still fill several sealed segments).
fn open_config() -> LedgerConfig {
    let segment = if test_mode() { 256 << 10 } else { 64 << 20 };
    LedgerConfig::default().with_segment_size(segment)
}

/// Times `iters` opens of the ledger in `dir`, each closed again before the next (untimed).
fn time_opens(dir: &Path, iters: u64, expect_len: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let ledger = Ledger::open(dir, open_config()).expect("open ledger");
        total += start.elapsed();
        assert_eq!(ledger.len(), expect_len);
        drop(ledger);
    }
    total
}

/// Builds a closed ledger of `n` small entries; returns its directory and the number of
/// entries in its last segment.
fn build_closed(n: u64) -> (TempDir, u64) {
    let ledger = TempLedger::open(open_config());
    fill(&ledger.ledger, n, &PAYLOAD_256[..SMALL_PAYLOAD]);
    let TempLedger { ledger, _dir: dir } = ledger;
    drop(ledger);
    let last_base = std::fs::read_dir(dir.path())
        .expect("list ledger directory")
        .filter_map(|e| parse_file_name(e.ok()?.file_name().to_str()?).ok())
        .max()
        .expect("a segment file");
    (dir, n - last_base + 1)
}

fn open(c: &mut Criterion) {
    let n = env_u64("RINGLEDGER_BENCH_OPEN_ENTRIES", 10_000_000, 20_000);
    let mut g = c.benchmark_group("ledger_open");
    g.sample_size(10);
    let mut last_segment_entries = None;
    let mut full: Option<TempDir> = None;
    g.bench_function(format!("ringledger_{n}_entries"), |b| {
        let dir = full.get_or_insert_with(|| {
            let (dir, last) = build_closed(n);
            last_segment_entries = Some(last);
            dir
        });
        b.iter_custom(|iters| time_opens(dir.path(), iters, n))
    });
    drop(full);
    // The same number of entries as the last (unsealed, scanned) segment above, alone: open's
    // fixed cost plus the scan of that segment. Built only when this case runs (a filter that
    // skips it skips building 10 M entries too).
    let mut alone: Option<(TempDir, u64)> = None;
    g.bench_function("ringledger_last_segment_alone", |b| {
        let (dir, last) = alone.get_or_insert_with(|| {
            let last = last_segment_entries.unwrap_or_else(|| build_closed(n).1);
            (build_closed(last).0, last)
        });
        b.iter_custom(|iters| time_opens(dir.path(), iters, *last))
    });
    g.finish();
}

/// `n` round trips through two `Mutex<u64>` + `Condvar` pairs; returns the initiator's time.
fn condvar_ping_pong(n: u64) -> Duration {
    #[derive(Default)]
    struct Slot {
        value: Mutex<u64>,
        changed: Condvar,
    }
    impl Slot {
        fn set(&self, v: u64) {
            *self.value.lock().expect("poisoned") = v;
            self.changed.notify_one();
        }
        fn wait_for(&self, v: u64) {
            let guard = self.value.lock().expect("poisoned");
            let guard = self
                .changed
                .wait_while(guard, |cur| *cur < v)
                .expect("poisoned");
            assert_eq!(*guard, v, "condvar ping-pong order");
        }
    }
    let (ping, pong) = (Padded(Slot::default()), Padded(Slot::default()));
    let barrier = SpinBarrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_to(CONSUMER_CORE);
            barrier.wait();
            for i in 1..=n {
                ping.0.wait_for(i);
                pong.0.set(i);
            }
        });
        let initiator = s.spawn(|| {
            pin_to(PRODUCER_CORE);
            barrier.wait();
            let start = Instant::now();
            for i in 1..=n {
                ping.0.set(i);
                pong.0.wait_for(i);
            }
            start.elapsed()
        });
        initiator.join().expect("initiator panicked")
    })
}

/// `n` round trips through two ledgers (sequences `first..first + n`): the initiator writes to
/// `ping` and waits for the responder's write to `pong`, both blocked in `wait_for_head`.
fn ledger_ping_pong(ping: &Ledger, pong: &Ledger, n: u64) -> Duration {
    let first = ping.head() + 1;
    assert_eq!(pong.head() + 1, first, "ping and pong in step");
    let barrier = SpinBarrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_to(CONSUMER_CORE);
            let mut entry = entries(1, &PAYLOAD_256[..8]);
            barrier.wait();
            for seq in first..first + n {
                let head = ping.wait_for_head(seq, Deadline::Forever).expect("wait");
                assert_eq!(head, seq, "ledger ping-pong order");
                entry[0].sequence = seq;
                pong.write(&entry).expect("ledger write");
            }
        });
        let initiator = s.spawn(|| {
            pin_to(PRODUCER_CORE);
            let mut entry = entries(1, &PAYLOAD_256[..8]);
            barrier.wait();
            let start = Instant::now();
            for seq in first..first + n {
                entry[0].sequence = seq;
                ping.write(&entry).expect("ledger write");
                pong.wait_for_head(seq, Deadline::Forever).expect("wait");
            }
            start.elapsed()
        });
        initiator.join().expect("initiator panicked")
    })
}

/// How long the initiator of [`parked_wake`] leaves the waiter alone before each signal:
/// `RINGLEDGER_BENCH_PARK_US` microseconds (default 100), far longer than `Waiters`' spin
/// phase (a few microseconds), so the waiter is parked.
fn park_delay() -> Duration {
    Duration::from_micros(env_u64("RINGLEDGER_BENCH_PARK_US", 100, 100))
}

/// `n` one-way wake-ups of a parked waiter, summed: the initiator (core 0) waits
/// [`park_delay`], notes the time and calls `signal(seq)`; the waiter (core 1), blocked in
/// `wait(seq)`, notes the time it returns. Then it acknowledges through a spinning atomic
/// (untimed), the same for every mechanism. Sequences start at `first`.
fn parked_wake(
    n: u64,
    first: u64,
    signal: impl FnMut(u64) + Send,
    wait: impl FnMut(u64) + Send,
) -> Duration {
    wake_latencies(n, first, park_delay(), signal, wait)
        .into_iter()
        .sum()
}

fn wake(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger_wake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("condvar_ping_pong", |b| b.iter_custom(condvar_ping_pong));
    // The ledgers live across samples: their first segment's background prefault is over
    // after the warm-up, not competing for the two cores inside the measurements.
    let mut ledgers: Option<(TempLedger, TempLedger)> = None;
    g.bench_function("ringledger_ping_pong", |b| {
        let (ping, pong) = ledgers.get_or_insert_with(|| {
            (
                TempLedger::open(LedgerConfig::default()),
                TempLedger::open(LedgerConfig::default()),
            )
        });
        b.iter_custom(|iters| ledger_ping_pong(&ping.ledger, &pong.ledger, iters))
    });
    drop(ledgers);
    g.finish();

    // One-way wake-up of a waiter that has been parked for `park_delay()`. Wall time per
    // iteration is PARK_DELAY plus the wake-up, so keep the measurement time short.
    let mut g = c.benchmark_group("ledger_wake_parked");
    g.throughput(Throughput::Elements(1));
    g.bench_function("condvar", |b| {
        b.iter_custom(|iters| {
            let (value, changed) = (&Mutex::new(0u64), &Condvar::new());
            parked_wake(
                iters,
                1,
                |seq| {
                    *value.lock().expect("poisoned") = seq;
                    changed.notify_one();
                },
                |seq| {
                    let guard = value.lock().expect("poisoned");
                    drop(changed.wait_while(guard, |v| *v < seq).expect("poisoned"));
                },
            )
        })
    });
    let mut ledger: Option<TempLedger> = None;
    g.bench_function("ringledger_wait_for_head", |b| {
        let ledger = &ledger
            .get_or_insert_with(|| TempLedger::open(LedgerConfig::default()))
            .ledger;
        b.iter_custom(|iters| {
            let mut entry = entries(1, &PAYLOAD_256[..8]);
            parked_wake(
                iters,
                ledger.head() + 1,
                |seq| {
                    entry[0].sequence = seq;
                    ledger.write(&entry).expect("ledger write");
                },
                |seq| {
                    ledger.wait_for_head(seq, Deadline::Forever).expect("wait");
                },
            )
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    append(c);
    synced(c);
    group(c);
    read(c);
    open(c);
    wake(c);
}

criterion_group!(ledger_benches, benches);
criterion_main!(ledger_benches);
