//! Shared-memory rings between processes: the test binary runs itself as the other process
//! (as the kill -9 harness does), as a producer or a consumer, by environment variables.
//!
//! - every item delivered once and in order across processes (1 M `u64`s; records too);
//! - a producer killed with SIGKILL mid-stream and started again: nothing torn, nothing lost
//!   or repeated, and its end free again at once;
//! - a consumer killed and the ring opened again: it resumes after what the dead one took;
//! - files that are not such rings, damaged headers, other versions, other item types.
#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use ringledger::shm::{
    ShmConsumer, ShmError, ShmProducer, ShmRecordConsumer, ShmRecordProducer, ShmRing,
};

/// The ring's file, for a child.
const CHILD_RING: &str = "RINGLEDGER_SHM_CHILD_RING";
/// The child's role and arguments: `produce FIRST COUNT`, `consume COUNT` (checks the order,
/// prints the first and last item), `consume-each COUNT` (prints every item), `records COUNT`.
const CHILD_ROLE: &str = "RINGLEDGER_SHM_CHILD_ROLE";
const CHILD_TEST: &str = "shm_child";

/// The tests run one at a time: an end's claim is briefly held by a process another test is
/// starting (see the `shm` module's documentation), which would make `Busy` checks flaky.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn items() -> u64 {
    support::env_u64("RINGLEDGER_SHM_ITEMS").unwrap_or(1_000_000)
}

/// The payload of record `i`: its length varies from 0 to 299 and every byte depends on `i`.
fn record(i: u64) -> Vec<u8> {
    let len = (i.wrapping_mul(0x9E37_79B9) % 300) as usize;
    (0..len)
        .map(|k| (i as usize ^ k.wrapping_mul(31)) as u8)
        .collect()
}

/// Not a test of its own: the child process's body (returns at once in a normal run).
#[test]
fn shm_child() {
    let (Some(ring), Ok(role)) = (std::env::var_os(CHILD_RING), std::env::var(CHILD_ROLE)) else {
        return;
    };
    let ring = PathBuf::from(ring);
    // libtest has written "test shm_child ... " without a newline: start on a line of our own.
    println!();
    let args: Vec<u64> = role
        .split_whitespace()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    match role.split_whitespace().next() {
        Some("produce") => {
            let mut producer = ShmProducer::<u64>::open(&ring).expect("producer");
            println!("READY");
            let (first, count) = (args[0], args[1]);
            for i in first..first.saturating_add(count) {
                while producer.push(i).is_err() {
                    std::hint::spin_loop();
                }
            }
            println!("DONE");
        }
        Some(role @ ("consume" | "consume-each")) => {
            let mut consumer = ShmConsumer::<u64>::open(&ring).expect("consumer");
            println!("READY");
            let mut expected = None;
            for _ in 0..args[0] {
                let item = loop {
                    if let Some(item) = consumer.pop() {
                        break item;
                    }
                    std::hint::spin_loop();
                };
                if let Some(expected) = expected {
                    assert_eq!(item, expected, "out of order");
                }
                if role == "consume-each" || expected.is_none() {
                    println!("GOT {item}");
                }
                expected = Some(item + 1);
            }
            if let Some(next) = expected.filter(|_| role == "consume") {
                println!("GOT {}", next - 1);
            }
            println!("DONE");
        }
        Some("records") => {
            let mut consumer = ShmRecordConsumer::open(&ring).expect("record consumer");
            println!("READY");
            let mut buffer = Vec::new();
            for i in 0..args[0] {
                let len = loop {
                    if let Some(len) = consumer.pop(&mut buffer).expect("a valid record") {
                        break len;
                    }
                    std::hint::spin_loop();
                };
                assert_eq!(len, buffer.len());
                assert!(buffer == record(i), "record {i} differs");
            }
            println!("DONE");
        }
        other => panic!("unknown child role {other:?}"),
    }
}

/// Starts this test binary as a child in `role` on `ring`, and waits for its `READY`.
fn spawn(ring: &Path, role: &str) -> (Child, BufReader<std::process::ChildStdout>) {
    let (child, mut lines) = support::spawn_self(
        CHILD_TEST,
        &[(CHILD_RING, ring.as_os_str()), (CHILD_ROLE, role.as_ref())],
    );
    wait_for(&mut lines, "READY");
    (child, lines)
}

/// Reads the child's lines until one equals `what`; returns the `GOT` values seen before it.
fn wait_for(lines: &mut impl BufRead, what: &str) -> Vec<u64> {
    let mut got = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = lines.read_line(&mut line).expect("the child's output");
        assert!(n > 0, "the child ended before {what}");
        let line = line.trim();
        if line == what {
            return got;
        }
        if let Some(value) = line.strip_prefix("GOT ") {
            got.push(value.parse().expect("a number"));
        }
    }
}

/// Reads what the child still writes (libtest's summary), so that it never meets a closed
/// pipe, and checks that it succeeded.
fn finish_reading(child: Child, mut lines: impl BufRead) {
    std::io::copy(&mut lines, &mut std::io::sink()).expect("the child's output");
    finish(child);
}

fn finish(mut child: Child) {
    let status = child.wait().expect("wait for the child");
    assert!(status.success(), "the child failed: {status}");
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL the child");
    let _ = child.wait();
}

/// Pops one item, waiting for it (bounded).
fn pop_wait(consumer: &mut ShmConsumer<u64>) -> u64 {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(item) = consumer.pop() {
            return item;
        }
        assert!(Instant::now() < until, "no item within 30 s");
        std::hint::spin_loop();
    }
}

#[test]
fn a_million_items_cross_processes_once_and_in_order() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    ShmRing::create::<u64>(&ring, 1024).unwrap();
    let count = items();
    // This process produces; the child consumes and checks the order of every item.
    let mut producer = ShmProducer::<u64>::open(&ring).unwrap();
    let (child, mut lines) = spawn(&ring, &format!("consume {count}"));
    let reader = std::thread::spawn(move || {
        let got = wait_for(&mut lines, "DONE");
        std::io::copy(&mut lines, &mut std::io::sink()).expect("the child's output");
        (got.len(), got.first().copied(), got.last().copied())
    });
    for i in 0..count {
        while producer.push(i).is_err() {
            std::hint::spin_loop();
        }
    }
    let (n, first, last) = reader.join().unwrap();
    finish(child);
    // The child checked that every item followed the one before it.
    assert_eq!((n, first, last), (2, Some(0), Some(count - 1)));
    assert!(producer.is_empty());
}

#[test]
fn records_cross_processes_whole() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("records");
    ShmRing::create_records(&ring, 4096).unwrap();
    let count = items() / 10;
    let mut producer = ShmRecordProducer::open(&ring).unwrap();
    let (child, mut lines) = spawn(&ring, &format!("records {count}"));
    for i in 0..count {
        let record = record(i);
        loop {
            match producer.push(&record) {
                Ok(()) => break,
                Err(ringledger::shm::RecordError::Full) => std::hint::spin_loop(),
                Err(e) => panic!("record {i}: {e}"),
            }
        }
    }
    wait_for(&mut lines, "DONE");
    finish_reading(child, lines);
}

/// Record ends move to other threads like the item ends: a record producer thread and a
/// record consumer thread in one process.
#[test]
fn record_ends_move_to_other_threads() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("records");
    ShmRing::create_records(&ring, 4096).unwrap();
    let mut producer = ShmRecordProducer::open(&ring).unwrap();
    let mut consumer = ShmRecordConsumer::open(&ring).unwrap();
    let count = 10_000;
    let writer = std::thread::spawn(move || {
        for i in 0..count {
            let record = record(i);
            while let Err(ringledger::shm::RecordError::Full) = producer.push(&record) {
                std::hint::spin_loop();
            }
        }
    });
    let reader = std::thread::spawn(move || {
        let (mut i, mut got) = (0, Vec::new());
        while i < count {
            got.clear();
            match consumer.pop(&mut got).unwrap() {
                Some(_) => {
                    assert_eq!(got, record(i), "record {i}");
                    i += 1;
                }
                None => std::hint::spin_loop(),
            }
        }
    });
    writer.join().unwrap();
    reader.join().unwrap();
}

#[test]
fn a_killed_producer_is_replaced_and_nothing_is_torn_lost_or_repeated() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    ShmRing::create::<u64>(&ring, 256).unwrap();
    let mut consumer = ShmConsumer::<u64>::open(&ring).unwrap();
    let mut next = 0u64;
    for round in 0..5 {
        // The producer pushes "forever" from `next`; we take some, then kill it mid-stream.
        let (child, _lines) = spawn(&ring, &format!("produce {next} {}", u64::MAX / 2));
        for _ in 0..(1000 + round * 3000) {
            assert_eq!(pop_wait(&mut consumer), next, "round {round}");
            next += 1;
        }
        kill(child);
        // What it pushed before dying is whole and in order.
        while let Some(item) = consumer.pop() {
            assert_eq!(item, next, "round {round}, after the kill");
            next += 1;
        }
        // Its end is free at once (the kernel dropped the claim with the process).
        drop(ShmProducer::<u64>::open(&ring).expect("the producer's end after a kill"));
    }
    assert!(next > 5 * 1000);
}

#[test]
fn a_killed_consumer_is_replaced_and_resumes_after_what_it_took() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    ShmRing::create::<u64>(&ring, 64).unwrap();
    let mut producer = ShmProducer::<u64>::open(&ring).unwrap();
    let mut pushed = 0u64;
    let mut push_some = |producer: &mut ShmProducer<u64>, n: u64| {
        for _ in 0..n {
            while producer.push(pushed).is_err() {
                std::thread::yield_now();
            }
            pushed += 1;
        }
    };
    let (child, mut lines) = spawn(&ring, "consume-each 100");
    push_some(&mut producer, 100);
    let got = wait_for(&mut lines, "DONE");
    finish_reading(child, lines);
    assert_eq!(got, (0..100).collect::<Vec<_>>());

    // A consumer killed while it waits: its claim goes with it.
    let (child, mut lines) = spawn(&ring, "consume-each 1000000");
    push_some(&mut producer, 10);
    let mut seen = Vec::new();
    while seen.len() < 10 {
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        if let Some(v) = line.trim().strip_prefix("GOT ") {
            seen.push(v.parse::<u64>().unwrap());
        }
    }
    kill(child);
    assert_eq!(seen, (100..110).collect::<Vec<_>>());
    let mut consumer = ShmConsumer::<u64>::open(&ring).expect("the consumer's end after a kill");
    push_some(&mut producer, 5);
    let resumed: Vec<u64> = std::iter::from_fn(|| consumer.pop()).collect();
    assert_eq!(resumed, (110..115).collect::<Vec<_>>());
}

#[test]
fn an_end_has_one_handle_at_a_time() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    ShmRing::create::<u32>(&ring, 8).unwrap();
    let producer = ShmProducer::<u32>::open(&ring).unwrap();
    let busy = ShmProducer::<u32>::open(&ring).err().unwrap();
    assert!(
        matches!(
            busy,
            ShmError::Busy {
                role: "producer",
                ..
            }
        ),
        "{busy}"
    );
    // The other end is free.
    let consumer = ShmConsumer::<u32>::open(&ring).unwrap();
    assert!(matches!(
        ShmConsumer::<u32>::open(&ring),
        Err(ShmError::Busy {
            role: "consumer",
            ..
        })
    ));
    drop((producer, consumer));
    ShmProducer::<u32>::open(&ring).expect("free again once dropped");
    // Creating over an existing ring is refused.
    assert!(ShmRing::create::<u32>(&ring, 8).is_err());
}

#[test]
fn files_that_are_not_such_rings_are_clear_errors() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    ShmRing::create::<u64>(&ring, 16).unwrap();
    let pristine = std::fs::read(&ring).unwrap();

    // Another item type, another capacity's worth of bytes, records.
    let error = ShmConsumer::<u32>::open(&ring).err().unwrap();
    assert!(matches!(error, ShmError::Mismatch { .. }), "{error}");
    assert!(error.to_string().contains("items of 8 bytes"), "{error}");
    let error = ShmRecordConsumer::open(&ring).err().unwrap();
    assert!(matches!(error, ShmError::Mismatch { .. }), "{error}");

    // A flipped bit anywhere in the checked header.
    for byte in [9, 13, 17, 25, 33] {
        let mut damaged = pristine.clone();
        damaged[byte] ^= 0x10;
        std::fs::write(&ring, &damaged).unwrap();
        let error = ShmConsumer::<u64>::open(&ring).err().unwrap();
        assert!(
            matches!(error, ShmError::Corrupt { .. }),
            "byte {byte}: {error}"
        );
    }
    // A foreign file, an empty one, a short one.
    for foreign in [&b"hello, not a ring at all"[..], b"", &pristine[..100]] {
        std::fs::write(&ring, foreign).unwrap();
        let error = ShmConsumer::<u64>::open(&ring).err().unwrap();
        assert!(matches!(error, ShmError::NotARing { .. }), "{error}");
    }
    // A ring cut short after its header.
    std::fs::write(&ring, &pristine[..pristine.len() - 8]).unwrap();
    let error = ShmProducer::<u64>::open(&ring).err().unwrap();
    assert!(matches!(error, ShmError::NotARing { .. }), "{error}");
    // A record of impossible length in the memory is an error, not a panic.
    let records = dir.path().join("records");
    ShmRing::create_records(&records, 64).unwrap();
    let mut bytes = std::fs::read(&records).unwrap();
    // The producer's index says 8 bytes were written; the record there claims 1000.
    let tail_at = 128;
    bytes[tail_at..tail_at + 8].copy_from_slice(&8u64.to_le_bytes());
    let slots_at = 128 + bytes.len() - 128 - 64;
    bytes[slots_at..slots_at + 4].copy_from_slice(&1000u32.to_le_bytes());
    std::fs::write(&records, &bytes).unwrap();
    let mut consumer = ShmRecordConsumer::open(&records).unwrap();
    let error = consumer.pop(&mut Vec::new()).unwrap_err();
    assert!(
        matches!(error, ShmError::BadRecord { len: 1000, .. }),
        "{error}"
    );
    // No such file.
    let error = ShmProducer::<u64>::open(dir.path().join("missing"))
        .err()
        .unwrap();
    assert!(matches!(error, ShmError::Io { .. }), "{error}");
    // Nor such a directory: an error, and nothing created.
    let error = ShmProducer::<u64>::open(dir.path().join("no/such/dir/ring"))
        .err()
        .unwrap();
    assert!(matches!(error, ShmError::Io { .. }), "{error}");
    assert!(
        !dir.path().join("no").exists(),
        "opening created a directory"
    );
    // Capacities that are not powers of two.
    assert!(matches!(
        ShmRing::create::<u64>(dir.path().join("odd"), 3),
        Err(ShmError::Capacity(3))
    ));
    assert!(matches!(
        ShmRing::create_records(dir.path().join("tiny"), 4),
        Err(ShmError::Capacity(4))
    ));
}
