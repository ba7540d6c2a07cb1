//! The ledger against damaged files and a full disk, through the public API.
//!
//! Each damage test builds a real ledger directory of three small segments with
//! [`Ledger::open`], drops it, damages one file with `std::fs` the way a disk, an operator or
//! another program might, and checks that opening (or reading) gives the error a caller can
//! act on, names the file, and, when it fails, leaves the directory exactly as it was. The
//! byte offsets come from `core/FORMAT.md`.
//!
//! The full-disk test mounts a 4 MiB tmpfs (root only; it says why when it skips) and checks
//! that running out of space is an `Io` error from `write`, never a `SIGBUS`, and that every
//! acknowledged entry survives a reopen.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ringledger::core::crc32c::crc32c;
use ringledger::core::segment::{file_name, CorruptReason, Damage};
use ringledger::ledger::{Durability, Entry, Ledger, LedgerConfig, LedgerError};

/// Small segments, so a few dozen entries make three of them.
const SEGMENT_SIZE: usize = 16 * 1024;
/// Bytes of a frame header; the payload follows it.
const FRAME_HEADER: usize = 40;
/// Bytes of a segment file header; the first frame follows it.
const FILE_HEADER: usize = 64;

fn config() -> LedgerConfig {
    LedgerConfig::default().with_segment_size(SEGMENT_SIZE)
}

/// The payload of entry `seq`: 700 bytes that differ from entry to entry.
fn payload(seq: u64) -> Vec<u8> {
    (0..700u64)
        .map(|i| (seq.wrapping_mul(31).wrapping_add(i * 7) % 251) as u8)
        .collect()
}

fn entry(seq: u64) -> Entry {
    Entry::new(seq, payload(seq)).with_tag(seq as u32 ^ 0xA5A5)
}

/// A ledger directory holding entries `1..=last` in exactly three segment files.
struct Made {
    dir: tempfile::TempDir,
    last: u64,
    /// The segment file names, oldest first.
    segments: Vec<String>,
}

impl Made {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn segment(&self, i: usize) -> PathBuf {
        self.path().join(&self.segments[i])
    }
}

/// Writes entries one by one until a third segment exists, a few more into it, syncs and drops
/// the ledger.
fn make_ledger() -> Made {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), config()).unwrap();
    let mut last = 0;
    while ledger.segments().len() < 3 {
        last += 1;
        ledger.write(&[entry(last)]).unwrap();
    }
    for _ in 0..3 {
        last += 1;
        ledger.write(&[entry(last)]).unwrap();
    }
    ledger.sync().unwrap();
    drop(ledger);
    let segments = segment_names(dir.path());
    assert_eq!(segments.len(), 3, "{segments:?}");
    let mut names: Vec<String> = snapshot(dir.path()).into_keys().collect();
    names.retain(|n| !n.ends_with(".seg"));
    assert_eq!(
        names,
        ["LOCK", "ledger.live", "ledger.meta"],
        "leftover files after a clean drop"
    );
    Made {
        dir,
        last,
        segments,
    }
}

fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = snapshot(dir)
        .into_keys()
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    names
}

/// Every file of the directory and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Opens the ledger, expecting an error; checks that the failed open left every file as it was.
fn open_fails(dir: &Path, config: LedgerConfig) -> LedgerError {
    let before = snapshot(dir);
    let error = match Ledger::open(dir, config) {
        Ok(ledger) => panic!("opened a damaged ledger: {ledger:?}"),
        Err(e) => e,
    };
    let after = snapshot(dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the failed open ({error}) changed the file list"
    );
    for (name, bytes) in &before {
        assert!(
            after[name] == *bytes,
            "the failed open ({error}) changed {name}"
        );
    }
    error
}

/// Checks that `entries` are entries `1..=n` for some n, each byte-identical; returns n.
fn assert_prefix(entries: &[Entry]) -> u64 {
    for (i, e) in entries.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(e.sequence, seq, "not a dense prefix at position {i}");
        assert_eq!(e.payload, payload(seq), "payload of {seq}");
        assert_eq!(e.tag, seq as u32 ^ 0xA5A5, "tag of {seq}");
    }
    entries.len() as u64
}

fn read_all(ledger: &Ledger) -> Vec<Entry> {
    ledger.read(0, usize::MAX).unwrap()
}

/// Offsets of the frames of a segment image, from the first up to the first zero header: each
/// `(offset, payload length, kind)`.
fn frames(image: &[u8]) -> Vec<(usize, usize, u8)> {
    let mut out = Vec::new();
    let mut at = FILE_HEADER;
    while at + FRAME_HEADER <= image.len() - 8 {
        let header = &image[at..at + FRAME_HEADER];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
        out.push((at, len, header[4]));
        at += FRAME_HEADER + len.div_ceil(8) * 8;
    }
    out
}

fn flip_bit(path: &Path, offset: usize, bit: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 1 << bit;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_cut_segment_header_is_a_bad_segment() {
    let made = make_ledger();
    let file = fs::OpenOptions::new()
        .write(true)
        .open(made.segment(1))
        .unwrap();
    file.set_len(30).unwrap();
    drop(file);
    match open_fails(made.path(), config()) {
        LedgerError::BadSegment { segment, reason } => {
            assert_eq!(segment, made.segments[1]);
            assert!(reason.contains("truncated"), "{reason}");
        }
        other => panic!("expected BadSegment, got {other:?}"),
    }
    // Repair cuts the log before the unreadable segment: what is left is a prefix.
    let ledger = Ledger::open(made.path(), config().with_repair(true)).unwrap();
    let kept = assert_prefix(&read_all(&ledger));
    assert!(kept > 0 && kept < made.last, "kept {kept} of {}", made.last);
    assert_eq!(segment_names(made.path()), made.segments[..1]);
    ledger.write(&[entry(kept + 1)]).unwrap();
}

#[test]
fn a_wrong_magic_is_a_bad_segment() {
    let made = make_ledger();
    let mut bytes = fs::read(made.segment(0)).unwrap();
    bytes[0..8].copy_from_slice(b"NOTASEGM");
    fs::write(made.segment(0), bytes).unwrap();
    match open_fails(made.path(), config()) {
        LedgerError::BadSegment { segment, reason } => {
            assert_eq!(segment, made.segments[0]);
            assert!(reason.contains("magic"), "{reason}");
        }
        other => panic!("expected BadSegment, got {other:?}"),
    }
}

#[test]
fn a_future_version_is_a_bad_segment() {
    let made = make_ledger();
    let mut bytes = fs::read(made.segment(1)).unwrap();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    // A valid header of version 2: the version check, not the checksum, must reject it.
    let crc = crc32c(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    fs::write(made.segment(1), bytes).unwrap();
    match open_fails(made.path(), config()) {
        LedgerError::BadSegment { segment, reason } => {
            assert_eq!(segment, made.segments[1]);
            assert!(reason.contains("unsupported segment version 2"), "{reason}");
        }
        other => panic!("expected BadSegment, got {other:?}"),
    }
}

#[test]
fn a_renamed_segment_is_a_bad_segment() {
    let made = make_ledger();
    let base = ringledger::core::segment::parse_file_name(&made.segments[1]).unwrap();
    let renamed = file_name(base + 1).as_str().to_owned();
    fs::rename(made.segment(1), made.path().join(&renamed)).unwrap();
    match open_fails(made.path(), config()) {
        LedgerError::BadSegment { segment, reason } => {
            assert_eq!(segment, renamed);
            assert!(reason.contains("base sequence"), "{reason}");
        }
        other => panic!("expected BadSegment, got {other:?}"),
    }
}

#[test]
fn a_missing_middle_segment_is_reported() {
    let made = make_ledger();
    fs::remove_file(made.segment(1)).unwrap();
    match open_fails(made.path(), config()) {
        LedgerError::MissingSegment { before, after } => {
            assert_eq!(
                (before, after),
                (made.segments[0].clone(), made.segments[2].clone())
            );
        }
        other => panic!("expected MissingSegment, got {other:?}"),
    }
    // Repair keeps what is before the gap, and nothing after it.
    let ledger = Ledger::open(made.path(), config().with_repair(true)).unwrap();
    let kept = assert_prefix(&read_all(&ledger));
    assert!(kept > 0 && kept < made.last, "kept {kept} of {}", made.last);
    assert_eq!(ledger.head(), kept);
    assert_eq!(segment_names(made.path()), made.segments[..1]);
}

#[test]
fn a_missing_meta_with_segments_is_bad_meta() {
    let made = make_ledger();
    fs::remove_file(made.path().join("ledger.meta")).unwrap();
    match open_fails(made.path(), config()) {
        LedgerError::BadMeta { reason } => assert!(reason.contains("missing"), "{reason}"),
        other => panic!("expected BadMeta, got {other:?}"),
    }
}

#[test]
fn a_garbled_meta_is_bad_meta() {
    let made = make_ledger();
    let meta = made.path().join("ledger.meta");
    let good = fs::read(&meta).unwrap();
    flip_bit(&meta, 26, 3);
    match open_fails(made.path(), config()) {
        LedgerError::BadMeta { reason } => assert!(reason.contains("checksum"), "{reason}"),
        other => panic!("expected BadMeta, got {other:?}"),
    }
    fs::write(&meta, b"garbage").unwrap();
    assert!(matches!(
        open_fails(made.path(), config()),
        LedgerError::BadMeta { .. }
    ));
    // Put back, it opens: nothing else was touched.
    fs::write(&meta, good).unwrap();
    let ledger = Ledger::open(made.path(), config()).unwrap();
    assert_eq!(assert_prefix(&read_all(&ledger)), made.last);
}

#[test]
fn a_flipped_bit_in_sealed_records_is_found_by_read_and_verify() {
    let made = make_ledger();
    let image = fs::read(made.segment(0)).unwrap();
    let records = frames(&image);
    let (damaged_at, _, kind) = records[5];
    assert_eq!(kind, 1, "the sixth frame of a full segment is a record");
    flip_bit(&made.segment(0), damaged_at + FRAME_HEADER + 100, 2);

    // Sealed segments are opened through their seal, not scanned.
    let ledger = Ledger::open(made.path(), config()).unwrap();
    assert_eq!(ledger.len(), made.last);
    let expected = |e: LedgerError| match e {
        LedgerError::Corrupt {
            segment,
            offset,
            reason,
        } => {
            assert_eq!(segment, made.segments[0]);
            assert_eq!(offset, damaged_at);
            assert_eq!(reason, CorruptReason::PayloadChecksum);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    };
    expected(ledger.read(0, usize::MAX).unwrap_err());
    expected(ledger.verify().unwrap_err());
    // The damage is contained: the records before it, and later segments, read fine.
    assert_eq!(assert_prefix(&ledger.read(0, 5).unwrap()), 5);
    let second = ringledger::core::segment::parse_file_name(&made.segments[1]).unwrap();
    let rest = ledger.read(second, usize::MAX).unwrap();
    assert_eq!(rest.len() as u64, made.last - second + 1);
    // `index` finds its record from the headers and checks the one it hands out whole: the
    // damaged record is an error, a later one is found over it.
    expected(ledger.index(5).unwrap_err());
    let sixth = ledger.index(6).unwrap().expect("the seventh entry");
    assert_eq!(sixth.sequence, 7);
}

#[test]
fn a_flipped_bit_in_a_seal_fails_open_and_repair_cuts_the_log() {
    let made = make_ledger();
    let image = fs::read(made.segment(0)).unwrap();
    // The footer's first 4 bytes are the seal's offset / 8 (then a checksum).
    let slot = &image[image.len() - 8..image.len() - 4];
    let footer = u32::from_le_bytes(slot.try_into().unwrap()) as usize * 8;
    let seal = *frames(&image).last().unwrap();
    assert_eq!(
        (seal.0, seal.2),
        (footer, 2),
        "the footer points at the seal"
    );
    // The seal's `count` field.
    flip_bit(&made.segment(0), footer + FRAME_HEADER, 0);
    match open_fails(made.path(), config()) {
        LedgerError::Corrupt {
            segment,
            offset,
            reason,
        } => {
            assert_eq!(segment, made.segments[0]);
            assert_eq!(offset, footer);
            assert_eq!(reason, CorruptReason::PayloadChecksum);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }

    let ledger = Ledger::open(made.path(), config().with_repair(true)).unwrap();
    let report = ledger.recovery().clone();
    assert!(
        report.cut.iter().any(|(s, at, d)| *s == made.segments[0]
            && *at == footer
            && matches!(d, Damage::Corrupt(_))),
        "{report:?}"
    );
    let kept = assert_prefix(&read_all(&ledger));
    // The damage was after the records: repair cut at the seal, so no record is lost.
    assert_eq!(kept, made.last, "{report:?}");
    assert_eq!(ledger.verify().unwrap(), made.last);
    ledger
        .write_with(&[entry(kept + 1)], Durability::Synced)
        .unwrap();
    drop(ledger);
    // Repaired for good: a plain open works and finds the same log.
    let ledger = Ledger::open(made.path(), config()).unwrap();
    assert_eq!(assert_prefix(&read_all(&ledger)), made.last + 1);
}

/// `write_frame` (core/src/segment/frame.rs) copies the payload before it writes the header,
/// so a process killed between the two leaves a zero frame header followed by payload bytes.
/// That is an interrupted append, the expected trace of a crash, and recovery should say
/// `TornTail`; a `Corrupt` cut means "possible damage to data that had been synced".
#[test]
fn an_append_killed_while_copying_its_payload_is_a_torn_tail() {
    let made = make_ledger();
    let last = made.segment(2);
    let mut image = fs::read(&last).unwrap();
    // The writer puts a frame's header down first, then its payload: a kill in between
    // leaves a valid header and a payload cut short, with zeros after it.
    let &(at, len, _) = frames(&image).last().unwrap();
    let payload_at = at + FRAME_HEADER;
    image[payload_at + len / 2..payload_at + len].fill(0);
    fs::write(&last, image).unwrap();

    let ledger = Ledger::open(made.path(), config()).unwrap();
    assert_eq!(assert_prefix(&read_all(&ledger)), made.last - 1);
    let report = ledger.recovery().clone();
    assert_eq!(
        report.cut,
        [(made.segments[2].clone(), at, Damage::TornTail)],
        "a crash while copying a payload is a torn tail, not corruption"
    );
    ledger.write(&[entry(made.last)]).unwrap();
    assert_eq!(assert_prefix(&read_all(&ledger)), made.last);
}

/// Whether this process runs as root (the effective uid in /proc/self/status, else `id -u`).
fn is_root() -> bool {
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) {
            return line.split_whitespace().nth(2) == Some("0");
        }
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A tmpfs mounted on a directory, unmounted when dropped (also when a test panics).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Self, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self {
            path: path.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds it (a panicking test's mapping): detach it lazily.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// A 1 KiB entry.
fn kib_entry(seq: u64) -> Entry {
    let payload: Vec<u8> = (0..1024u64)
        .map(|i| (seq ^ i.wrapping_mul(13)) as u8)
        .collect();
    Entry::new(seq, payload)
}

fn assert_kib_entries(ledger: &Ledger, from: u64, to: u64) {
    let entries = ledger.read(from, usize::MAX).unwrap();
    assert_eq!(entries.len() as u64, to - from + 1);
    for (e, seq) in entries.iter().zip(from..=to) {
        assert_eq!(e.sequence, seq);
        assert!(e.payload == kib_entry(seq).payload, "payload of {seq}");
    }
}

/// Writes 1 KiB entries after `last` until one fails; returns the last acknowledged
/// sequence and the error.
fn fill(ledger: &Ledger, mut last: u64) -> (u64, LedgerError) {
    loop {
        match ledger.write(&[kib_entry(last + 1)]) {
            Ok(()) => last += 1,
            Err(e) => return (last, e),
        }
        assert!(last < 100_000, "4 MiB never filled up");
    }
}

fn assert_no_space(error: &LedgerError) {
    match error {
        LedgerError::Io { source, .. } => {
            assert_eq!(source.raw_os_error(), Some(28), "ENOSPC expected: {error}");
        }
        other => panic!("expected Io(ENOSPC), got {other:?}"),
    }
}

#[test]
fn a_full_disk_is_an_error_and_loses_nothing() {
    full_disk(Durability::Synced);
}

/// The same with buffered writes: 1 KiB entries are staged (`pwrite`), as synced ones are.
#[test]
fn a_full_disk_under_buffered_staged_writes_is_an_error_and_loses_nothing() {
    full_disk(Durability::Buffered);
}

/// Fills a 4 MiB tmpfs with `durability` writes: the write that finds no room fails with
/// `ENOSPC`, every acknowledged entry reads back (also after a reopen), and deleting makes
/// room for more.
///
/// The background jobs run only when the test runs them: a spare segment file prepared on
/// the background thread races the writer for the last megabyte, and whichever gets it decides
/// whether a roll fails now or a later write succeeds in the spare (and at the drop the spare
/// is removed, so a reopened ledger found room again: 3 runs in 24 failed so).
fn full_disk(durability: Durability) {
    if !is_root() {
        eprintln!("skipping: mounting a 4 MiB tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _tmpfs = match Tmpfs::mount(dir.path(), "4m") {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    let path = dir.path().join("ledger");
    let mut config = LedgerConfig::default()
        .with_segment_size(1 << 20)
        .with_durability(durability);
    config.stage_at_least = 1024;
    config.manual_background = true;
    assert!(
        ringledger::core::segment::FRAME_HEADER_LEN + 1024 >= config.stage_at_least,
        "these writes are staged"
    );

    let ledger = Ledger::open(&path, config.clone()).unwrap();
    let (acked, error) = fill(&ledger, 0);
    eprintln!("the disk filled after {acked} entries: {error}");
    assert!(acked > 1000, "only {acked} entries fit in 4 MiB");
    assert_no_space(&error);
    // The jobs queued meanwhile (preparing a spare file, finishing sealed segments) find no
    // room either: that is not a failure of anything acknowledged.
    ledger.run_background();
    assert!(
        ledger.poisoned().is_none(),
        "a full disk is not a failed sync"
    );
    // Still full: the next write fails the same way; the ledger still reads.
    assert_no_space(&ledger.write(&[kib_entry(acked + 1)]).unwrap_err());
    assert_eq!((ledger.head(), ledger.len()), (acked, acked));
    assert_kib_entries(&ledger, 1, acked);
    drop(ledger);

    let ledger = Ledger::open(&path, config.clone()).unwrap();
    assert_eq!((ledger.head(), ledger.len()), (acked, acked));
    assert!(ledger.recovery().cut.is_empty(), "{:?}", ledger.recovery());
    assert_kib_entries(&ledger, 1, acked);
    assert_eq!(ledger.verify().unwrap(), acked);
    assert_no_space(&ledger.write(&[kib_entry(acked + 1)]).unwrap_err());

    // Deleting frees whole segments (nothing may hold their payloads), and writes go on.
    let deleted = ledger.delete(acked / 2).unwrap();
    assert_eq!(deleted as u64, acked / 2);
    let (refilled, error) = fill(&ledger, acked);
    eprintln!(
        "after deleting {deleted}: {} more entries until: {error}",
        refilled - acked
    );
    assert!(refilled > acked, "no write succeeded after the delete");
    assert_no_space(&error);
    drop(ledger);

    let ledger = Ledger::open(&path, config).unwrap();
    assert_eq!(
        (ledger.tail(), ledger.head(), ledger.len()),
        (acked / 2, refilled, refilled - acked / 2)
    );
    assert_kib_entries(&ledger, acked / 2 + 1, refilled);
}

/// A writer killed after sealing a segment but before its background thread wrote the footer
/// leaves a sealed segment without one. A read-only open must read it as it is: writing the
/// footer itself (as it once did, through a read-only mapping) killed the process with SIGSEGV.
#[test]
fn a_read_only_open_of_a_segment_sealed_without_footer_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer_config = config();
    // The finishing jobs wait for `run_background`, which never comes: like a kill.
    writer_config.manual_background = true;
    let ledger = Ledger::open(dir.path(), writer_config).unwrap();
    let mut last = 0;
    while ledger.segments().len() < 3 {
        last += 1;
        ledger.write(&[entry(last)]).unwrap();
    }
    drop(ledger);
    let before = snapshot(dir.path());

    for _ in 0..2 {
        let reader = Ledger::open(dir.path(), config().with_read_only(true)).unwrap();
        assert_eq!(reader.head(), last);
        assert_eq!(assert_prefix(&read_all(&reader)), last);
        assert_eq!(reader.verify().unwrap(), last);
        assert_eq!(reader.segments().len(), 3);
        assert!(reader.segments()[..2].iter().all(|s| s.sealed));
        drop(reader);
        assert!(
            snapshot(dir.path()) == before,
            "a read-only open changed the ledger's files"
        );
    }

    // The writable open finishes the segments, and keeps everything.
    let ledger = Ledger::open(dir.path(), config()).unwrap();
    assert_eq!(assert_prefix(&read_all(&ledger)), last);
}
