//! A kill -9 harness: a child process appends to a ledger, the parent kills it at a random
//! moment, reopens the ledger and checks the recovery promise of `core/FORMAT.md`.
//!
//! The test binary is its own child. [`crash_child_writer`] does nothing unless
//! `RINGLEDGER_CRASH_CHILD` names a directory; then it opens the ledger there, prints `READY`,
//! and appends until it is killed, printing `ACK <seq>` after each write that returned `Ok`.
//! The parent kills it 5 to 60 ms after `READY` (one round in four, after the spawn, so some
//! kills land in the child's own recovery). What it writes is a
//! function of the sequence (payload, tag, timestamp, the next sequence) and of a seed (how
//! many entries per write, which writes are synced), so the parent recomputes it exactly, and
//! after each kill checks that:
//!
//! - every acknowledged entry is there, byte-identical;
//! - the entries are exactly the sequences of the chain in `(tail, head]`: a dense prefix of
//!   what was written, nothing invented, nothing after a hole;
//! - the head is the end of one of the child's writes (a write is all or nothing);
//! - writes after recovery work, and deletes (every tenth round) survive later kills;
//! - before that, a read-only open (what `ringledger verify`, `inspect` and `dump` do) sees
//!   the same entries, verifies, and changes no byte of any file.
//!
//! A killed process leaves the page cache behind, so buffered writes must survive too. It
//! says nothing about missing syncs: power loss is what the simulated-storage tests are for.
//!
//! `RINGLEDGER_CRASH_KILLS` sets the number of kills (default 50), `RINGLEDGER_CRASH_SEED`
//! replays a run (the seed is printed on stderr).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ringledger::core::segment::Damage;
use ringledger::ledger::{Durability, Entry, Ledger, LedgerConfig};

mod support;
use support::{env_u64, files, mix, Rng};

/// The directory the child writes to; its presence makes [`crash_child_writer`] the writer.
const CHILD_DIR: &str = "RINGLEDGER_CRASH_CHILD";
/// The child's seed: its batch sizes and durabilities.
const CHILD_SEED: &str = "RINGLEDGER_CRASH_CHILD_SEED";
/// How many times to kill the child.
const KILLS: &str = "RINGLEDGER_CRASH_KILLS";
/// The parent's seed.
const SEED: &str = "RINGLEDGER_CRASH_SEED";
/// The child's acknowledgement line: this, then the write's last sequence.
const ACK: &str = "ACK ";
/// The line the child prints once it has opened (recovered) the ledger.
const READY: &str = "READY";
/// The test the parent runs as its child.
const CHILD_TEST: &str = "crash_child_writer";

/// Small segments, so the child rolls (and seals) segments every few writes; writes of more
/// than 8 KiB staged, smaller ones through the mapping, so that kills meet both.
fn config() -> LedgerConfig {
    let mut config = LedgerConfig::default().with_segment_size(256 * 1024);
    config.stage_at_least = 8 << 10;
    config
}

/// The sequence written after `prev`: the ledger's sequences form one chain from 0, skipping
/// 0 to 2 numbers each step, so a hole in what was recovered cannot hide.
fn next_seq(prev: u64) -> u64 {
    prev + 1 + mix(prev ^ 0x5E9) % 3
}

/// The payload length of entry `seq`: 0 to 1999 bytes.
fn entry_len(seq: u64) -> usize {
    (mix(seq ^ 0x1E4) % 2000) as usize
}

fn entry_tag(seq: u64) -> u32 {
    mix(seq ^ 0x7A6) as u32
}

fn entry_timestamp(seq: u64) -> u64 {
    seq.wrapping_mul(1000)
}

/// The only entry ever written with sequence `seq`.
fn entry_for(seq: u64) -> Entry {
    let len = entry_len(seq);
    let mut rng = Rng(seq);
    let mut payload = Vec::with_capacity(len + 8);
    while payload.len() < len {
        payload.extend_from_slice(&rng.next().to_le_bytes());
    }
    payload.truncate(len);
    let mut entry = Entry::new(seq, payload).with_tag(entry_tag(seq));
    entry.timestamp = entry_timestamp(seq);
    entry
}

/// The writes of one writer: from the head it started at, batches of 1 to 20 entries along the
/// chain, one in four synced.
struct Plan {
    rng: Rng,
    last: u64,
}

impl Plan {
    fn new(seed: u64, start: u64) -> Self {
        Self {
            rng: Rng(seed),
            last: start,
        }
    }

    /// The next write's sequences and durability.
    fn next_write(&mut self) -> (Vec<u64>, Durability) {
        let n = 1 + self.rng.below(20);
        let durability = if self.rng.below(4) == 0 {
            Durability::Synced
        } else {
            Durability::Buffered
        };
        let seqs = (0..n)
            .map(|_| {
                self.last = next_seq(self.last);
                self.last
            })
            .collect();
        (seqs, durability)
    }
}

/// The writer, when run as the child; a no-op test otherwise.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let seed = env_u64(CHILD_SEED).expect("the child needs a seed");
    let ledger = Ledger::open(&dir, config()).expect("child: opening the ledger");
    let mut plan = Plan::new(seed, ledger.head());
    let stdout = std::io::stdout();
    {
        let mut out = stdout.lock();
        // On a line of its own: libtest has printed `test crash_child_writer ... ` unended.
        if writeln!(out, "\n{READY}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
    // Never outlive a parent that died without killing us.
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        let (seqs, durability) = plan.next_write();
        let entries: Vec<Entry> = seqs.iter().map(|&s| entry_for(s)).collect();
        ledger
            .write_with(&entries, durability)
            .expect("child: writing");
        let mut out = stdout.lock();
        if writeln!(out, "{ACK}{}", plan.last)
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

/// When the kill's delay starts.
#[derive(Debug, Clone, Copy)]
enum KillFrom {
    /// The spawn: the kill may come while the child is still opening (recovering) the ledger.
    Spawn,
    /// The child's `READY`: the kill comes while it writes.
    Ready,
}

/// Runs the child writer on `dir`, kills it (SIGKILL) `delay` after `from`, and returns the
/// sequences it acknowledged.
fn run_child(dir: &Path, seed: u64, from: KillFrom, delay: Duration) -> Vec<u64> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_SEED, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the child writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (ready_tx, ready) = mpsc::channel();
    let acks = thread::spawn(move || {
        let mut acked = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        // Only whole lines: the kill may cut the last one.
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            match line.strip_suffix('\n') {
                Some(READY) => {
                    let _ = ready_tx.send(());
                }
                Some(l) => {
                    if let Some(seq) = l.strip_prefix(ACK) {
                        acked.push(seq.parse::<u64>().expect("an ACK line"));
                    }
                }
                None => {}
            }
            line.clear();
        }
        acked
    });
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    if let KillFrom::Ready = from {
        // A child that dies before it is ready closes the channel; `wait` below says why.
        let _ = ready.recv_timeout(Duration::from_secs(30));
    }
    thread::sleep(delay);
    let _ = child.kill();
    let status = child.wait().expect("waiting for the child");
    let acked = acks.join().expect("the stdout reader");
    let errors = errors.join().expect("the stderr reader");
    assert_eq!(
        status.signal(),
        Some(9),
        "the child writer ended by itself ({status}) instead of being killed; its stderr:\n{errors}"
    );
    assert!(
        acked.windows(2).all(|w| w[0] < w[1]),
        "acknowledgements out of order"
    );
    acked
}

/// What the parent knows the ledger must hold.
struct Expected {
    head: u64,
    tail: u64,
}

/// The chain's sequences in `(tail, head]`.
fn chain(tail: u64, head: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut seq = 0;
    while seq < head {
        seq = next_seq(seq);
        if seq > tail && seq <= head {
            out.push(seq);
        }
    }
    assert_eq!(seq, head, "{head} is not a sequence of the chain");
    out
}

/// Checks the reopened ledger against what the parent knows and what the child acknowledged.
fn check_recovered(ledger: &Ledger, round: u64, known: &Expected, seed: u64, acked: &[u64]) {
    let head = ledger.head();
    let last_ack = acked.last().copied().unwrap_or(known.head);
    assert!(
        head >= last_ack,
        "round {round}: head {head} is below the acknowledged {last_ack}"
    );
    // The head is where the child started or the end of one of its writes.
    let mut plan = Plan::new(seed, known.head);
    let mut end = known.head;
    while end < head {
        end = plan.next_write().0.last().copied().unwrap_or(end);
    }
    assert_eq!(
        end, head,
        "round {round}: head {head} is inside a write (the write ending at {end})"
    );
    assert_eq!(ledger.tail(), known.tail, "round {round}: tail");

    let entries = ledger.read(0, usize::MAX).unwrap_or_else(|e| {
        panic!("round {round}: reading the recovered ledger: {e}");
    });
    let expected = chain(known.tail, head);
    assert_eq!(
        entries.len(),
        expected.len(),
        "round {round}: {} entries recovered, {} written in (tail {}, head {head}]",
        entries.len(),
        expected.len(),
        known.tail
    );
    for (i, (got, &seq)) in entries.iter().zip(&expected).enumerate() {
        assert_eq!(got.sequence, seq, "round {round}: a hole or a stray entry");
        // Entries up to the old head were compared byte for byte in an earlier round (and
        // `verify` below checks their checksums): compare one in 16 of them again.
        if seq > known.head || i % 16 == 0 {
            assert!(
                *got == entry_for(seq),
                "round {round}: entry {seq} differs from what was written: {got:?}"
            );
        } else {
            assert_eq!(
                (got.tag, got.timestamp, got.payload.len()),
                (entry_tag(seq), entry_timestamp(seq), entry_len(seq)),
                "round {round}: entry {seq} differs from what was written"
            );
        }
    }
    assert_eq!(ledger.len(), entries.len() as u64, "round {round}: len");
    // `read` checked every live record's checksums; `verify` also walks the deleted ones left
    // in partly deleted segments. It costs as much again, so one round in five.
    if round % 5 == 0 {
        ledger
            .verify()
            .unwrap_or_else(|e| panic!("round {round}: verify: {e}"));
    }
}

/// What an operator does first after a crash, before any writer reopens the ledger: a
/// read-only open, `verify`, `inspect` (the segment list) and `dump` (every entry). Each runs
/// to completion, sees exactly what the writable recovery will keep, and leaves every byte of
/// every file as it was (a reader never writes, not even the footer of a segment the killed
/// writer sealed but did not finish).
fn read_only_after_kill(dir: &Path, round: u64, known: &Expected, seed: u64, acked: &[u64]) {
    let before = files(dir);
    let reader = Ledger::open(dir, config().with_read_only(true))
        .unwrap_or_else(|e| panic!("round {round}: read-only open after the kill: {e}"));
    check_recovered(&reader, round, known, seed, acked);
    reader
        .verify()
        .unwrap_or_else(|e| panic!("round {round}: read-only verify: {e}"));
    let segments = reader.segments();
    let listed: u64 = segments.iter().map(|s| s.count).sum();
    assert!(
        listed >= reader.len(),
        "round {round}: the segments list {listed} records, the ledger holds {}",
        reader.len()
    );
    drop(reader);
    assert!(
        files(dir) == before,
        "round {round}: a read-only open changed the ledger's files"
    );
}

/// A few writes by the parent after recovery, read back.
fn write_after_recovery(ledger: &Ledger, rng: &mut Rng) {
    let before = ledger.head();
    let mut plan = Plan::new(rng.next(), before);
    for i in 0..3 {
        let (seqs, _) = plan.next_write();
        let entries: Vec<Entry> = seqs.iter().map(|&s| entry_for(s)).collect();
        let durability = if i == 2 {
            Durability::Synced
        } else {
            Durability::Buffered
        };
        ledger
            .write_with(&entries, durability)
            .unwrap_or_else(|e| panic!("writing after recovery: {e}"));
    }
    assert_eq!(ledger.head(), plan.last);
    let read = ledger.read(before + 1, usize::MAX).unwrap();
    let written = chain(before, plan.last);
    assert_eq!(read.len(), written.len());
    for (got, seq) in read.iter().zip(written) {
        assert!(*got == entry_for(seq), "entry {seq} written after recovery");
    }
}

/// Deletes up to the middle entry, checks head and tail, and that they survive a reopen.
fn delete_half(dir: &Path, ledger: Ledger, known: &mut Expected) -> Ledger {
    let len = ledger.len();
    if len < 2 {
        return ledger;
    }
    let middle = ledger.index((len / 2) as i64).unwrap().unwrap().sequence;
    let deleted = ledger.delete(middle).unwrap() as u64;
    assert_eq!(deleted, len / 2 + 1);
    known.tail = middle;
    let state = (known.tail, known.head, len - deleted);
    assert_eq!((ledger.tail(), ledger.head(), ledger.len()), state);
    drop(ledger);
    let ledger = Ledger::open(dir, config()).unwrap();
    assert_eq!((ledger.tail(), ledger.head(), ledger.len()), state);
    let first = ledger.read(0, 1).unwrap();
    assert_eq!(first[0].sequence, next_seq(middle));
    ledger
}

/// What the run saw, printed at the end. A killed process leaves torn tails, never
/// corruption: a corrupt cut fails the run.
#[derive(Default, Debug)]
struct Tally {
    rounds_with_acks: u64,
    acks: u64,
    torn_tails: u64,
    resealed: u64,
    removed_temporary: u64,
    removed_segments: u64,
    /// Wall time spent running children, and reopening and checking.
    in_children: Duration,
    in_checks: Duration,
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let kills = env_u64(KILLS).unwrap_or(50);
    let seed = env_u64(SEED).unwrap_or_else(|| mix(ringledger::storage::now_ns()));
    eprintln!("crash harness: {kills} kills, {SEED}={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut known = Expected { head: 0, tail: 0 };
    let mut tally = Tally::default();

    for round in 0..kills {
        let child_seed = rng.next();
        // One kill in four may land in the child's open (a crash during recovery).
        let from = if rng.below(4) == 0 {
            KillFrom::Spawn
        } else {
            KillFrom::Ready
        };
        let delay = Duration::from_millis(5 + rng.below(56));
        let child_started = Instant::now();
        let acked = run_child(dir.path(), child_seed, from, delay);
        let check_started = Instant::now();
        tally.in_children += check_started - child_started;
        if !acked.is_empty() {
            tally.rounds_with_acks += 1;
            tally.acks += acked.len() as u64;
        }

        read_only_after_kill(dir.path(), round, &known, child_seed, &acked);
        let ledger = Ledger::open(dir.path(), config())
            .unwrap_or_else(|e| panic!("round {round}: reopening after the kill: {e}"));
        let report = ledger.recovery();
        for (segment, offset, damage) in &report.cut {
            match damage {
                Damage::TornTail => tally.torn_tails += 1,
                Damage::Corrupt(reason) => {
                    panic!("round {round}: a kill left corruption: {segment} at {offset}: {reason}")
                }
            }
        }
        tally.resealed += report.resealed.len() as u64;
        tally.removed_temporary += report.removed_temporary.len() as u64;
        tally.removed_segments += report.removed_segments.len() as u64;
        check_recovered(&ledger, round, &known, child_seed, &acked);

        write_after_recovery(&ledger, &mut rng);
        known.head = ledger.head();
        let ledger = if round % 10 == 9 {
            delete_half(dir.path(), ledger, &mut known)
        } else {
            ledger
        };
        drop(ledger);
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: left {leftovers:?}");
        tally.in_checks += check_started.elapsed();
    }

    eprintln!(
        "crash harness: {kills} kills in {:.1?}, head {}, tail {}; {tally:?}",
        started.elapsed(),
        known.head,
        known.tail
    );
    assert!(
        tally.rounds_with_acks * 4 >= kills,
        "the child acknowledged writes in only {} of {kills} rounds: the harness tests little",
        tally.rounds_with_acks
    );
}
