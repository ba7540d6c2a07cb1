//! The segment scanner on arbitrary images: it never panics; the valid prefix it reports
//! re-scans to the same records and a clean end; recovery keeps exactly those records and is
//! idempotent; a sealed segment's lookups agree with the scan.
//!
//! The first input byte picks how the rest becomes an image, so the fuzzer reaches past the
//! header checksum: raw bytes; a valid header in front of raw frame bytes; or a segment
//! written by the `Writer` from input-chosen records, then damaged at input-chosen bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringledger_core::segment::{
    frame_len, recover, FileHeader, ScanEnd, Scanner, SealedSegment, Writer, FILE_HEADER_LEN,
    FOOTER_LEN,
};

const SALT: u64 = 0x5A17_5A17_5A17_5A17;

fn header(capacity: usize) -> FileHeader {
    FileHeader {
        base_seq: 1_000,
        ledger_id: 1,
        salt: SALT,
        capacity: capacity as u64,
        created_ns: 0,
    }
}

/// A valid header followed by the input as the frame area.
fn with_header(rest: &[u8]) -> Vec<u8> {
    let capacity = FILE_HEADER_LEN + rest.len().div_ceil(8) * 8 + FOOTER_LEN;
    let mut image = vec![0u8; capacity];
    header(capacity).encode(&mut image).expect("valid header");
    image[FILE_HEADER_LEN..FILE_HEADER_LEN + rest.len()].copy_from_slice(rest);
    image
}

/// A segment written from input-chosen records, optionally sealed, then damaged.
fn written(rest: &[u8]) -> Vec<u8> {
    let (&control, rest) = rest.split_first().unwrap_or((&0, &[]));
    let capacity = 512 + usize::from(control & 0x0F) * 64;
    let mut image = vec![0u8; capacity];
    let mut input = rest;
    {
        let mut writer =
            Writer::create(&mut image, &header(capacity), u32::from(control >> 4) * 32)
                .expect("valid writer");
        let mut seq = 1_000u64;
        while let [len, gap, tail @ ..] = input {
            if *len == 0xFF {
                input = tail;
                break; // the rest of the input is damage
            }
            let len = usize::from(*len % 64).min(tail.len());
            let (payload, tail) = tail.split_at(len);
            seq += u64::from(*gap);
            if writer.append(seq, seq, u32::from(*gap), payload).is_err() {
                break;
            }
            seq += 1;
            input = tail;
        }
        if control & 0x80 != 0 {
            let _ = writer.seal();
        }
    }
    // Damage: (offset u16, xor) pairs.
    for chunk in input.chunks_exact(3) {
        let offset = usize::from(u16::from_le_bytes([chunk[0], chunk[1]])) % capacity;
        image[offset] ^= chunk[2];
    }
    image
}

#[derive(Debug, PartialEq, Eq)]
struct Owned {
    offset: usize,
    seq: u64,
    timestamp: u64,
    tag: u32,
    payload: Vec<u8>,
}

fn scan(image: &[u8]) -> Option<(Vec<Owned>, ScanEnd<'_>)> {
    let mut scanner = Scanner::new(image).ok()?;
    let records = scanner
        .by_ref()
        .map(|r| Owned {
            offset: r.offset,
            seq: r.seq,
            timestamp: r.timestamp,
            tag: r.tag,
            payload: r.payload.to_vec(),
        })
        .collect();
    let end = *scanner.end().expect("the scan has ended");
    Some((records, end))
}

fn check(image: &[u8]) {
    let _ = SealedSegment::open(image).map(|sealed| {
        let _ = sealed.seek(1_000);
        let _ = sealed.find(u64::MAX);
    });
    let Some((records, end)) = scan(image) else {
        return;
    };

    // Records are in order, aligned, inside the image, and do not overlap.
    for pair in records.windows(2) {
        assert!(pair[0].seq < pair[1].seq);
        assert_eq!(
            pair[0].offset + frame_len(pair[0].payload.len()),
            pair[1].offset
        );
    }

    // The valid prefix re-scans identically and ends cleanly.
    let prefix = &image[..end.offset().min(image.len())];
    let (again, prefix_end) = scan(prefix).expect("the prefix keeps the header");
    assert_eq!(again, records);
    assert!(
        matches!(prefix_end, ScanEnd::CleanEnd { .. }),
        "{prefix_end:?} after {end:?}"
    );

    // A sealed segment that opens finds every record through its index.
    if let (ScanEnd::CleanEnd { seal: Some(_), .. }, Ok(sealed)) = (end, SealedSegment::open(image))
    {
        for record in &records {
            let found = sealed
                .find(record.seq)
                .expect("valid record")
                .expect("present");
            assert_eq!(found.offset, record.offset);
        }
    }

    // Recovery keeps exactly the valid records, and a second run changes nothing.
    let mut recovered = image.to_vec();
    let outcome = recover(&mut recovered).expect("header was valid");
    let (kept, kept_end) = scan(&recovered).expect("header kept");
    assert_eq!(kept, records);
    assert!(matches!(kept_end, ScanEnd::CleanEnd { .. }), "{kept_end:?}");
    assert_eq!(outcome.stats.count, records.len() as u64);
    let snapshot = recovered.clone();
    let again = recover(&mut recovered).expect("header kept");
    assert!(again.damage.is_none() && again.zeroed.is_empty());
    assert_eq!(recovered, snapshot);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => check(rest),
        1 => check(&with_header(rest)),
        _ => check(&written(rest)),
    }
});
