//! The segment log on the device: a ledger segment in a RAM region the size of four flash
//! pages, written, scanned, sealed and looked up; a torn tail and a corrupt frame found by the
//! scanner and cut by recovery; and a sealed segment written by the host (`build.rs`) scanned in
//! place from flash.
//!
//! The format expects a region that reads as zeros where nothing was written (a fresh file
//! does). Erased NOR flash reads as `0xFF`, so a ledger kept in real flash zeroes its pages
//! before use; the RAM region here is zeroed by each check.

use ringledger_core::segment::{
    recover, recovery_plan, CorruptReason, Damage, FileHeader, Record, ScanEnd, Scanner,
    SealedSegment, WriteError, Writer, FRAME_HEADER_LEN,
};
use ringledger_core::sequence::join;

use crate::harness::{Board, Outcome, REGION_LEN};
use crate::{attempt, ensure, ensure_eq, passed};

/// A sealed segment written on the host by `build.rs`, kept in flash (`.rodata`).
pub static HOST_SEGMENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/segment.img"));

/// The unix second of every record the device writes.
const SECOND: u32 = 1_750_000_000;

/// The header of the segments the device writes into its region.
fn header() -> FileHeader {
    FileHeader {
        base_seq: join(SECOND, 1),
        ledger_id: 0x0E3B_EDDE,
        salt: 0xC0FF_EE00_1234_5678,
        capacity: REGION_LEN as u64,
        created_ns: 1_750_000_000_000_000_000,
    }
}

/// Record `i` the device writes: sequence, timestamp, tag, and its payload in `buf`.
fn record(i: u32, buf: &mut [u8; 64]) -> (u64, u64, u32, &[u8]) {
    let len = (i as usize * 7) % 61 + 1;
    for (k, byte) in buf[..len].iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(31).wrapping_add(k as u8);
    }
    (
        join(SECOND, i + 1),
        1_000_000 * u64::from(i),
        i % 5,
        &buf[..len],
    )
}

/// Whether `found` is record `i` as [`record`] makes it.
fn is_record(found: &Record<'_>, i: u32) -> bool {
    let mut buf = [0u8; 64];
    let (seq, timestamp, tag, payload) = record(i, &mut buf);
    found.seq == seq && found.timestamp == timestamp && found.tag == tag && found.payload == payload
}

/// Writes records `0..count` into a zeroed region; returns the offset each record starts at.
fn write_records(region: &mut [u8], count: u32, offsets: &mut [usize]) -> Result<(), WriteError> {
    region.fill(0);
    let mut writer = Writer::create(region, &header(), 512)?;
    let mut buf = [0u8; 64];
    for i in 0..count {
        offsets[i as usize] = writer.end();
        let (seq, timestamp, tag, payload) = record(i, &mut buf);
        writer.append(seq, timestamp, tag, payload)?;
    }
    Ok(())
}

/// Append until the region is full, scan it all back, seal it, scan the seal, and find every
/// record through the seal's index.
pub fn write_scan_seal(board: &mut Board) -> Outcome {
    let region = &mut board.region[..];
    region.fill(0);
    let mut writer = attempt!(Writer::create(region, &header(), 512));
    let mut buf = [0u8; 64];
    let mut count = 0u32;
    loop {
        let (seq, timestamp, tag, payload) = record(count, &mut buf);
        match writer.append(seq, timestamp, tag, payload) {
            Ok(_) => count += 1,
            Err(WriteError::Full { .. }) => break,
            Err(e) => return Err(unexpected(line!(), e)),
        }
    }
    let end = writer.end();
    ensure!(
        count > 20,
        "only {} records fit in {} bytes",
        count,
        REGION_LEN
    );

    let mut scanner = attempt!(Scanner::new(region));
    let mut seen = 0u32;
    for found in scanner.by_ref() {
        ensure!(
            is_record(&found, seen),
            "record {} differs: {:?}",
            seen,
            found
        );
        seen += 1;
    }
    ensure_eq!(seen, count);
    ensure_eq!(
        scanner.end(),
        Some(&ScanEnd::CleanEnd {
            offset: end,
            seal: None
        })
    );

    let seal_end = attempt!(attempt!(Writer::resume(region, 512)).seal());
    let scanned = attempt!(Scanner::new(region)).finish();
    let ScanEnd::CleanEnd {
        offset,
        seal: Some(seal),
    } = scanned
    else {
        return Err(unexpected(line!(), scanned));
    };
    ensure_eq!(offset, seal_end);
    ensure_eq!(seal.stats.count, u64::from(count));
    ensure_eq!(seal.stats.last_seq, join(SECOND, count));

    let sealed = attempt!(SealedSegment::open(region));
    for i in 0..count {
        let found = attempt!(sealed.find(join(SECOND, i + 1)));
        ensure!(
            found.is_some_and(|r| is_record(&r, i)),
            "find record {}: {:?}",
            i,
            found
        );
    }
    ensure_eq!(
        attempt!(sealed.find(join(SECOND, count + 1))).map(|r| r.seq),
        None
    );
    passed!(
        "{} records, {} bytes, {} index entries",
        count,
        seal_end,
        seal.index_len()
    )
}

/// Power fails in the middle of an append: the scanner yields the records before it and
/// reports a torn tail where the interrupted frame starts (also when the region itself ends
/// inside it); recovery zeroes it and appends resume there.
pub fn torn_tail(board: &mut Board) -> Outcome {
    let region = &mut board.region[..];
    let mut offsets = [0usize; 6];
    attempt!(write_records(region, 6, &mut offsets));
    let kept_end = offsets[5];
    let torn_end =
        offsets[5] + ringledger_core::segment::frame_len(record(5, &mut [0; 64]).3.len());
    // Only the frame's header and the first bytes of its payload reached the region.
    region[kept_end + FRAME_HEADER_LEN + 4..torn_end].fill(0);

    let mut scanner = attempt!(Scanner::new(region));
    let mut seen = 0u32;
    for found in scanner.by_ref() {
        ensure!(
            is_record(&found, seen),
            "record {} differs: {:?}",
            seen,
            found
        );
        seen += 1;
    }
    ensure_eq!(seen, 5);
    ensure_eq!(scanner.end(), Some(&ScanEnd::TornTail { offset: kept_end }));

    // A region (or file) that ends inside the frame header is a torn tail too.
    let cut = attempt!(Scanner::new(&region[..kept_end + 20])).finish();
    ensure_eq!(cut, ScanEnd::TornTail { offset: kept_end });

    let recovered = attempt!(recover(region));
    ensure_eq!(recovered.end, kept_end);
    ensure_eq!(recovered.stats.count, 5);
    ensure_eq!(recovered.damage, Some(Damage::TornTail));
    ensure!(!recovered.sealed);
    ensure_eq!(recovered.zeroed.start, kept_end);
    ensure!(
        region[kept_end..].iter().all(|&b| b == 0),
        "bytes after the torn frame were not zeroed"
    );

    let mut writer = attempt!(Writer::resume(region, 512));
    ensure_eq!(writer.end(), kept_end);
    let mut buf = [0u8; 64];
    let (seq, timestamp, tag, payload) = record(5, &mut buf);
    attempt!(writer.append(seq, timestamp, tag, payload));
    let mut scanner = attempt!(Scanner::new(region));
    ensure_eq!(scanner.by_ref().count(), 6);
    ensure!(matches!(scanner.end(), Some(ScanEnd::CleanEnd { .. })));
    passed!("torn at offset {}", kept_end)
}

/// A flipped bit in a frame with frames after it is corruption, not a torn tail, and the
/// scanner never returns the changed frame.
pub fn corrupt_frame(board: &mut Board) -> Outcome {
    let region = &mut board.region[..];
    let mut offsets = [0usize; 6];
    attempt!(write_records(region, 6, &mut offsets));

    // A payload bit of record 2.
    region[offsets[2] + FRAME_HEADER_LEN] ^= 0x10;
    let mut scanner = attempt!(Scanner::new(region));
    ensure_eq!(scanner.by_ref().count(), 2);
    ensure_eq!(
        scanner.end(),
        Some(&ScanEnd::Corrupt {
            offset: offsets[2],
            reason: CorruptReason::PayloadChecksum
        })
    );
    let plan = attempt!(recovery_plan(region));
    ensure_eq!(plan.end, offsets[2]);
    ensure_eq!(
        plan.damage,
        Some(Damage::Corrupt(CorruptReason::PayloadChecksum))
    );
    region[offsets[2] + FRAME_HEADER_LEN] ^= 0x10;

    // A bit of record 4's sequence field, in its header.
    region[offsets[4] + 16] ^= 0x01;
    let scanned = attempt!(Scanner::new(region)).finish();
    ensure_eq!(
        scanned,
        ScanEnd::Corrupt {
            offset: offsets[4],
            reason: CorruptReason::HeaderChecksum
        }
    );
    passed!()
}

/// The host's sealed segment, read in place from flash: every record, the seal, the index.
pub fn host_image_in_flash(_: &mut Board) -> Outcome {
    let records: u32 = attempt!(env!("RINGLEDGER_HOST_RECORDS").parse::<u32>());
    let second: u32 = attempt!(env!("RINGLEDGER_HOST_SECOND").parse::<u32>());
    let image = HOST_SEGMENT;
    ensure!(
        (image.as_ptr() as usize) < 0x2000_0000,
        "the host image is not in flash but at {:p}",
        image.as_ptr()
    );
    let host_record = |r: &Record<'_>, i: u32| {
        r.seq == join(second, i + 1)
            && r.tag == i % 3
            && r.timestamp == 1_000 * u64::from(i)
            && r.payload.len() == (i % 17 + 1) as usize
            && r.payload.iter().all(|&b| b == i as u8)
    };
    let mut scanner = attempt!(Scanner::new(image));
    let mut seen = 0u32;
    for found in scanner.by_ref() {
        ensure!(host_record(&found, seen), "record {}: {:?}", seen, found);
        seen += 1;
    }
    ensure_eq!(seen, records);
    let Some(&ScanEnd::CleanEnd {
        seal: Some(seal), ..
    }) = scanner.end()
    else {
        return Err(unexpected(line!(), scanner.end()));
    };
    ensure_eq!(seal.stats.count, u64::from(records));

    let sealed = attempt!(SealedSegment::open(image));
    let middle = records / 2;
    let found = attempt!(sealed.find(join(second, middle + 1)));
    ensure!(
        found.is_some_and(|r| host_record(&r, middle)),
        "find record {}: {:?}",
        middle,
        found
    );
    let mut from_middle = 0;
    for (i, found) in (middle..).zip(sealed.records_from(join(second, middle + 1))) {
        let found = attempt!(found);
        ensure!(host_record(&found, i), "record {}: {:?}", i, found);
        from_middle += 1;
    }
    ensure_eq!(from_middle, records - middle);
    passed!("{} records, {} index entries", records, seal.index_len())
}

/// A failure for a value that should not have come out.
fn unexpected(line: u32, what: impl core::fmt::Debug) -> crate::harness::Failure {
    crate::harness::Failure::new(file!(), line, format_args!("unexpected {:?}", what))
}
