//! Read-only ledgers following a writer, in this process and in others: the test binary runs
//! itself as the writer or a reader (as the kill -9 harness does), by environment variables.
//!
//! - every entry delivered once and in order to readers in other processes (1 M entries,
//!   many segments);
//! - the writer killed with SIGKILL mid-stream and a new one started: the reader sees exactly
//!   the entries the recovery kept, nothing it was handed is taken back (buffered and synced);
//! - a reader killed and another opened: it reads everything;
//! - deletes reach the reader (tail, length, `Truncated` for a cursor behind the tail);
//! - a synced write that did not become durable is never shown, and a power loss takes back
//!   nothing a reader was shown;
//! - a missing or garbage `ledger.live`: the reader says so and follows by reopening;
//! - a second writer still gets `Locked`.
#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringledger::ledger::{Durability, Entry, FollowMode, Ledger, LedgerConfig, LedgerError};
use ringledger::storage::sim::SimStorage;
use ringledger::stream::{EventStream, LedgerStream, StreamError, TagSet};
use ringledger::wait::Deadline;

const CHILD_DIR: &str = "RINGLEDGER_FOLLOW_CHILD_DIR";
/// `write FIRST LAST SYNCED` (from the ledger's head + 1 when FIRST is 0), `read LAST`.
const CHILD_ROLE: &str = "RINGLEDGER_FOLLOW_CHILD_ROLE";
const CHILD_TEST: &str = "follow_child";
const SEGMENT: usize = 256 * 1024;
const PATIENCE: Duration = Duration::from_secs(60);

fn entries() -> u64 {
    support::env_u64("RINGLEDGER_FOLLOW_ENTRIES").unwrap_or(1_000_000)
}

/// Entry `seq`'s payload: 0 to 40 bytes, each depending on `seq`.
fn payload(seq: u64) -> Vec<u8> {
    let len = (support::mix(seq) % 41) as usize;
    (0..len).map(|k| (seq as usize ^ (k * 7)) as u8).collect()
}

fn config() -> LedgerConfig {
    LedgerConfig::default().with_segment_size(SEGMENT)
}

fn read_only() -> LedgerConfig {
    config().with_read_only(true)
}

/// Writes `first..=last` in batches of 1 to 64 entries.
fn write_range(ledger: &Ledger, first: u64, last: u64, durability: Durability) {
    let mut seq = first;
    let mut batch = Vec::new();
    while seq <= last {
        let n = 1 + support::mix(seq ^ 0xba7c4) % 64;
        batch.clear();
        batch.extend((seq..=last.min(seq + n - 1)).map(|s| Entry::new(s, payload(s))));
        ledger.write_with(&batch, durability).expect("write");
        seq += batch.len() as u64;
    }
}

/// Follows `ledger` from `*next` to `last` (or until `stop` says so), checking that the
/// entries come once, in order, with their payloads.
fn follow(ledger: &Ledger, next: &mut u64, last: u64, mut stop: impl FnMut(u64) -> bool) {
    let until = Instant::now() + PATIENCE;
    while *next <= last && !stop(*next) {
        assert!(Instant::now() < until, "stuck at {next}");
        let _ = ledger.wait_for_head(*next, Duration::from_millis(200));
        for entry in ledger.read(*next, 4096).expect("read") {
            assert_eq!(entry.sequence, *next, "out of order or missing");
            assert!(entry.payload == payload(*next), "payload of {next}");
            *next += 1;
        }
    }
}

/// Not a test of its own: the child process's body (returns at once in a normal run).
#[test]
fn follow_child() {
    let (Some(dir), Ok(role)) = (std::env::var_os(CHILD_DIR), std::env::var(CHILD_ROLE)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    // libtest has written "test follow_child ... " without a newline.
    println!();
    let args: Vec<&str> = role.split_whitespace().collect();
    let number = |i: usize| args[i].parse::<u64>().expect("a number");
    match args[0] {
        "write" => {
            let ledger = Ledger::open(&dir, config()).expect("the writer's open");
            let first = match number(1) {
                0 => ledger.head() + 1,
                first => first,
            };
            let durability = if number(3) == 1 {
                Durability::Synced
            } else {
                Durability::Buffered
            };
            println!("READY {first}");
            write_range(&ledger, first, number(2), durability);
            println!("DONE");
        }
        "read" => {
            let ledger = Ledger::open(&dir, read_only()).expect("the reader's open");
            // Live, or Idle when no writer has started yet.
            assert!(!matches!(ledger.follow_mode(), FollowMode::Reopening(_)));
            println!("READY");
            let (mut next, mut said) = (1, 0);
            follow(&ledger, &mut next, number(1), |seq| {
                if seq / 10_000 > said {
                    said = seq / 10_000;
                    println!("AT {seq}");
                }
                false
            });
            println!("DONE");
        }
        other => panic!("unknown child role {other:?}"),
    }
}

/// Starts this test binary as a child in `role` on `dir`; returns it once it printed a line
/// starting with `READY` (and that line).
fn spawn(dir: &Path, role: &str) -> (Child, BufReader<std::process::ChildStdout>, String) {
    let (child, mut lines) = support::spawn_self(
        CHILD_TEST,
        &[(CHILD_DIR, dir.as_os_str()), (CHILD_ROLE, role.as_ref())],
    );
    let ready = wait_for(&mut lines, "READY");
    (child, lines, ready)
}

/// Reads the child's lines until one starting with `what`; returns it.
fn wait_for(lines: &mut impl BufRead, what: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = lines.read_line(&mut line).expect("the child's output");
        assert!(n > 0, "the child ended before {what}");
        if line.trim().starts_with(what) {
            return line.trim().to_owned();
        }
    }
}

/// Waits for `DONE`, reads the rest (libtest's summary) and checks the child succeeded.
fn finish(mut child: Child, mut lines: impl BufRead) {
    wait_for(&mut lines, "DONE");
    std::io::copy(&mut lines, &mut std::io::sink()).expect("the child's output");
    let status = child.wait().expect("wait for the child");
    assert!(status.success(), "the child failed: {status}");
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

/// A ledger directory with a created ledger (a read-only open needs one).
fn new_ledger() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Ledger::open(dir.path(), config()).expect("create"));
    dir
}

#[test]
fn readers_in_other_processes_get_every_entry_once_in_order() {
    let dir = new_ledger();
    let last = entries();
    let readers: Vec<_> = (0..2)
        .map(|_| spawn(dir.path(), &format!("read {last}")))
        .collect();
    let (writer, lines, _) = spawn(dir.path(), &format!("write 1 {last} 0"));
    finish(writer, lines);
    for (reader, lines, _) in readers {
        finish(reader, lines);
    }
    let ledger = Ledger::open(dir.path(), read_only()).unwrap();
    assert_eq!((ledger.head(), ledger.len()), (last, last));
    assert!(ledger.segments().len() > 3, "the run crossed segments");
}

/// A writer killed with SIGKILL mid-stream, then a new writer resuming after the head it
/// recovered: the reader, in this process, follows both.
fn writer_killed_and_replaced(synced: bool, last: u64) {
    let dir = new_ledger();
    let reader = Ledger::open(dir.path(), read_only()).unwrap();
    assert_eq!(reader.follow_mode(), FollowMode::Idle, "no writer yet");
    let (writer, _lines, _) = spawn(dir.path(), &format!("write 1 {last} {}", u8::from(synced)));
    let mut next = 1;
    follow(&reader, &mut next, last, |next| next > last / 3);
    kill(writer);
    let seen = next - 1;

    let (writer, lines, ready) = spawn(dir.path(), &format!("write 0 {last} {}", u8::from(synced)));
    let resumed: u64 = ready["READY ".len()..].parse().unwrap();
    assert!(
        resumed > seen,
        "the new writer resumed at {resumed}, the reader had {seen}"
    );
    follow(&reader, &mut next, last, |_| {
        // Live until the new writer ends (then Idle).
        assert!(!matches!(reader.follow_mode(), FollowMode::Reopening(_)));
        false
    });
    finish(writer, lines);
    // A writer that shows nothing new is asked after within a tenth of a second.
    let until = Instant::now() + PATIENCE;
    while reader.follow_mode() != FollowMode::Idle {
        assert!(Instant::now() < until, "the reader never saw the writer go");
        std::thread::sleep(Duration::from_millis(10));
        reader.refresh().unwrap();
    }
    assert_eq!(reader.read(1, 1).unwrap()[0].sequence, 1);
    assert_eq!(reader.len(), last);
}

#[test]
fn a_writer_killed_mid_stream_and_replaced_takes_back_nothing_shown() {
    writer_killed_and_replaced(false, entries() / 4);
}

#[test]
fn a_synced_writer_killed_mid_stream_and_replaced_takes_back_nothing_shown() {
    writer_killed_and_replaced(true, 20_000);
}

#[test]
fn a_reader_killed_and_reopened_reads_everything() {
    let dir = new_ledger();
    let last = entries() / 4;
    let writer = Ledger::open(dir.path(), config()).unwrap();
    let (reader, mut lines, _) = spawn(dir.path(), &format!("read {last}"));
    std::thread::scope(|s| {
        s.spawn(|| write_range(&writer, 1, last, Durability::Buffered));
        wait_for(&mut lines, "AT");
        kill(reader);
        let (reader, lines, _) = spawn(dir.path(), &format!("read {last}"));
        finish(reader, lines);
    });
}

#[test]
fn deletes_reach_the_reader_and_a_cursor_behind_the_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Ledger::open(dir.path(), config()).unwrap();
    let reader = Ledger::open(dir.path(), read_only()).unwrap();
    assert!(matches!(
        Ledger::open(dir.path(), config()),
        Err(LedgerError::Locked)
    ));
    write_range(&writer, 1, 20_000, Durability::Buffered);
    let stream = LedgerStream::new(reader.clone());
    let mut cursor = stream.open(1, TagSet::all()).unwrap();
    assert_eq!(cursor.next(Deadline::Forever).unwrap().sequence, 1);
    assert_eq!(reader.head(), 20_000, "the cursor refreshed the reader");
    let segments = reader.segments().len();
    assert!(segments > 2);

    writer.delete(15_000).unwrap();
    assert!(reader.refresh().unwrap());
    assert_eq!((reader.tail(), reader.len()), (15_000, 5_000));
    assert!(
        reader.segments().len() < segments,
        "emptied segments left the view"
    );
    assert_eq!(reader.read(0, 1).unwrap()[0].sequence, 15_001);
    // The cursor stood at 2, now deleted (it may have read a little ahead first).
    let truncated = (0..1000).find_map(|_| cursor.next(Deadline::Forever).err());
    assert!(
        matches!(truncated, Some(StreamError::Truncated { .. })),
        "{truncated:?}"
    );
    assert!(!reader.refresh().unwrap(), "nothing new");
}

#[test]
fn a_synced_write_not_yet_durable_is_never_shown_and_a_power_loss_takes_back_nothing_shown() {
    let storage = SimStorage::new();
    let writer = Ledger::open_in(Arc::new(storage.clone()), config()).unwrap();
    let reader = Ledger::open_in(Arc::new(storage.clone()), read_only()).unwrap();
    assert_eq!(reader.follow_mode(), FollowMode::Live);
    write_range(&writer, 1, 500, Durability::Synced);
    reader.refresh().unwrap();
    assert_eq!(reader.head(), 500);

    // The records of this write reach the pages, but its sync fails: never shown.
    storage.fail_syncs(true);
    let batch: Vec<Entry> = (501..=600).map(|s| Entry::new(s, payload(s))).collect();
    assert!(writer.write_with(&batch, Durability::Synced).is_err());
    assert!(!reader.refresh().unwrap());
    assert_eq!(reader.head(), 500);
    assert!(reader.read(501, 10).unwrap().is_empty());
    let shown = reader.read(1, 1000).unwrap();

    for seed in 0..20 {
        let after = storage.crash(seed);
        let ledger = Ledger::open_in(Arc::new(after), config()).unwrap();
        assert!(ledger.head() >= 500, "seed {seed}: head {}", ledger.head());
        assert_eq!(ledger.read(1, 500).unwrap(), shown, "seed {seed}");
    }
}

#[test]
fn a_garbage_or_missing_live_page_falls_back_to_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Ledger::open(dir.path(), config()).unwrap();
    write_range(&writer, 1, 100, Durability::Buffered);
    // Garbage over the magic, written in place (the writer's mapping stays valid).
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("ledger.live"))
            .unwrap();
        file.write_all_at(b"not a live page", 0).unwrap();
    }
    let reader = Ledger::open(dir.path(), read_only()).unwrap();
    assert!(
        matches!(reader.follow_mode(), FollowMode::Reopening(ref why) if why.contains("ledger.live")),
        "{:?}",
        reader.follow_mode()
    );
    assert_eq!(reader.head(), 100);
    std::thread::scope(|s| {
        s.spawn(|| write_range(&writer, 101, 300, Durability::Buffered));
        let mut next = 101;
        follow(&reader, &mut next, 300, |_| false);
    });

    std::fs::remove_file(dir.path().join("ledger.live")).unwrap();
    let reader = Ledger::open(dir.path(), read_only()).unwrap();
    assert!(matches!(reader.follow_mode(), FollowMode::Reopening(_)));
    write_range(&writer, 301, 400, Durability::Buffered);
    reader.wait_for_head(400, PATIENCE).unwrap();
    assert_eq!(reader.len(), 400);
}

#[test]
fn a_reader_of_a_ledger_without_a_writer_waits_for_one() {
    let dir = new_ledger();
    let reader = Ledger::open(dir.path(), read_only()).unwrap();
    assert_eq!(reader.follow_mode(), FollowMode::Idle);
    std::thread::scope(|s| {
        let waiting = s.spawn(|| reader.wait_for_head(10, PATIENCE));
        std::thread::sleep(Duration::from_millis(50));
        let writer = Ledger::open(dir.path(), config()).unwrap();
        write_range(&writer, 1, 10, Durability::Buffered);
        assert_eq!(waiting.join().unwrap(), Ok(10));
    });
    assert_eq!(reader.follow_mode(), FollowMode::Live);
}
