//! The segment format against damaged images: every truncation, every bit flip, spliced and
//! duplicated frames, zero and garbage tails, frames from another segment. Also the writer,
//! recovery and the sealed-segment lookup through the public API.
//!
//! Under Miri the images are smaller so that the exhaustive loops stay fast.

use ringledger_core::crc32c::{crc32c, crc32c_append};
use ringledger_core::segment::{
    frame_len, recover, CorruptReason, Damage, FileHeader, Record, ScanEnd, Scanner, SealedSegment,
    WriteError, Writer, FILE_HEADER_LEN, FOOTER_LEN,
};

const SALT: u64 = 0x0123_4567_89AB_CDEF;

/// Step through offsets and bits: all of them natively, a sample under Miri (where one scan
/// costs milliseconds). The steps are odd, so the sample still hits every bit position.
const TRUNCATION_STEP: usize = if cfg!(miri) { 7 } else { 1 };
const BIT_STEP: usize = if cfg!(miri) { 61 } else { 1 };

/// An owned copy of a record, to compare scans of different images.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    offset: usize,
    seq: u64,
    timestamp: u64,
    tag: u32,
    payload: Vec<u8>,
}

impl From<Record<'_>> for Owned {
    fn from(r: Record<'_>) -> Self {
        Owned {
            offset: r.offset,
            seq: r.seq,
            timestamp: r.timestamp,
            tag: r.tag,
            payload: r.payload.to_vec(),
        }
    }
}

fn header(capacity: usize, salt: u64) -> FileHeader {
    FileHeader {
        base_seq: 100,
        ledger_id: 7,
        salt,
        capacity: capacity as u64,
        created_ns: 1_700_000_000_000_000_000,
    }
}

/// Payload lengths of the small image: an empty one, one needing padding, one aligned.
fn payload_lens() -> &'static [usize] {
    if cfg!(miri) {
        &[0, 5]
    } else {
        &[0, 5, 13, 16]
    }
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7 + 1) as u8).collect()
}

/// A small image with the records of `payload_lens`, sealed or not, with a zero gap before the
/// footer.
fn small_image(sealed: bool, salt: u64) -> (Vec<u8>, Vec<Owned>) {
    let capacity = if cfg!(miri) { 384 } else { 512 };
    let mut image = vec![0u8; capacity];
    let mut writer = Writer::create(&mut image, &header(capacity, salt), 0).unwrap();
    for (i, &len) in payload_lens().iter().enumerate() {
        writer
            .append(
                100 + 2 * i as u64,
                1_000 + i as u64,
                i as u32,
                &payload(i, len),
            )
            .unwrap();
    }
    if sealed {
        writer.seal().unwrap();
    }
    let records = scan(&image).0;
    assert_eq!(records.len(), payload_lens().len());
    (image, records)
}

fn scan(image: &[u8]) -> (Vec<Owned>, ScanEnd<'_>) {
    let mut scanner = Scanner::new(image).unwrap();
    let records = scanner.by_ref().map(Owned::from).collect();
    let end = *scanner.end().unwrap();
    (records, end)
}

fn frame_end(r: &Owned) -> usize {
    r.offset + frame_len(r.payload.len())
}

#[test]
fn clean_images_scan_back_exactly() {
    for sealed in [false, true] {
        let (image, records) = small_image(sealed, SALT);
        let (again, end) = scan(&image);
        assert_eq!(again, records);
        let last_end = frame_end(records.last().unwrap());
        match end {
            ScanEnd::CleanEnd { offset, seal: None } => {
                assert!(!sealed);
                assert_eq!(offset, last_end);
            }
            ScanEnd::CleanEnd {
                seal: Some(seal), ..
            } => {
                assert!(sealed);
                assert_eq!(seal.data_end as usize, last_end);
                assert_eq!(seal.stats.count, records.len() as u64);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn truncation_at_every_offset_keeps_exactly_the_complete_frames() {
    for sealed in [false, true] {
        let (image, records) = small_image(sealed, SALT);
        let data_end = frame_end(records.last().unwrap());
        let seal_end = if sealed {
            scan(&image).1.offset()
        } else {
            data_end
        };
        for len in (0..=image.len()).step_by(TRUNCATION_STEP) {
            let cut = &image[..len];
            if len < FILE_HEADER_LEN {
                assert!(Scanner::new(cut).is_err(), "len {len}");
                continue;
            }
            let (got, end) = scan(cut);
            let complete: Vec<Owned> = records
                .iter()
                .filter(|r| frame_end(r) <= len)
                .cloned()
                .collect();
            assert_eq!(got, complete, "len {len}");
            let boundary = complete.last().map_or(FILE_HEADER_LEN, frame_end);
            // A frame cut short, unless only zero bytes of it made it (that is nothing written).
            let partial_frame =
                len > boundary && len < seal_end && image[boundary..len].iter().any(|&b| b != 0);
            match end {
                ScanEnd::TornTail { offset } => {
                    assert!(partial_frame, "len {len}: unexpected torn tail");
                    assert_eq!(offset, boundary, "len {len}");
                }
                ScanEnd::CleanEnd { offset, seal } => {
                    assert!(!partial_frame, "len {len}: partial frame not reported");
                    assert_eq!(seal.is_some(), sealed && len >= seal_end, "len {len}");
                    assert_eq!(offset, if seal.is_some() { seal_end } else { boundary });
                }
                other => panic!("len {len}: {other:?}"),
            }
        }
    }
}

#[test]
fn every_single_bit_flip_is_detected_and_no_changed_frame_is_returned() {
    for sealed in [false, true] {
        let (image, records) = small_image(sealed, SALT);
        for bit in (0..image.len() * 8).step_by(BIT_STEP) {
            let mut flipped = image.clone();
            let byte = bit / 8;
            flipped[byte] ^= 1 << (bit % 8);
            let Ok(mut scanner) = Scanner::new(&flipped) else {
                assert!(
                    byte < FILE_HEADER_LEN,
                    "bit {bit}: header error outside the header"
                );
                continue;
            };
            let got: Vec<Owned> = scanner.by_ref().map(Owned::from).collect();
            let end = *scanner.end().unwrap();
            // Only untouched frames come back, and they come back unchanged.
            let untouched = records.iter().take_while(|r| frame_end(r) <= byte).count();
            assert!(
                got.len() <= untouched,
                "bit {bit}: a changed frame was returned"
            );
            assert_eq!(got[..], records[..got.len()], "bit {bit}");
            assert!(
                !matches!(end, ScanEnd::CleanEnd { .. }),
                "bit {bit}: flip in byte {byte} went unnoticed ({end:?})"
            );
            // Only the last frame of an open segment, or bytes after it, can look like an
            // interrupted append; a flip anywhere before (a length bit included) is corruption.
            if let ScanEnd::TornTail { offset } = end {
                let last = records.last().unwrap();
                let in_last = offset == last.offset && byte < frame_end(last);
                let after_last = offset == frame_end(last) && byte >= offset;
                assert!(
                    !sealed && (in_last || after_last),
                    "bit {bit}: flip in byte {byte} reported as a torn tail at {offset}"
                );
            }
        }
    }
}

#[test]
fn a_flipped_length_bit_before_intact_frames_is_corruption_not_a_torn_tail() {
    // Regression: the first record's length grown by 256 claims an end in the zero gap after
    // the last record; the unverified length made the scan call it a torn tail, and recovery
    // would have cut the intact records after it as an expected crash artefact.
    let (image, records) = small_image(false, SALT);
    let mut flipped = image.clone();
    flipped[records[0].offset + 1] ^= 1;
    let (got, end) = scan(&flipped);
    assert!(got.is_empty());
    assert_eq!(
        end,
        ScanEnd::Corrupt {
            offset: records[0].offset,
            reason: CorruptReason::HeaderChecksum
        }
    );
    let recovered = recover(&mut flipped).unwrap();
    assert_eq!(
        recovered.damage,
        Some(Damage::Corrupt(CorruptReason::HeaderChecksum))
    );
}

#[test]
fn duplicated_and_spliced_frames_are_corrupt() {
    let (image, records) = small_image(false, SALT);
    let data_end = frame_end(records.last().unwrap());

    // The last frame written again after itself.
    let last = records.last().unwrap();
    let mut duplicated = image.clone();
    let (start, end) = (last.offset, frame_end(last));
    duplicated.copy_within(start..end, data_end);
    let (got, scan_end) = scan(&duplicated);
    assert_eq!(got, records);
    assert!(matches!(
        scan_end,
        ScanEnd::Corrupt { offset, reason: CorruptReason::SequenceNotIncreasing { .. } } if offset == data_end
    ));

    // The first frame spliced in after the last.
    let first = &records[0];
    let mut spliced = image.clone();
    spliced.copy_within(first.offset..frame_end(first), data_end);
    let (got, scan_end) = scan(&spliced);
    assert_eq!(got, records);
    assert!(matches!(
        scan_end,
        ScanEnd::Corrupt {
            reason: CorruptReason::SequenceNotIncreasing { .. },
            ..
        }
    ));

    // Two frames of equal length swapped: the second position's sequence goes backwards.
    let mut capacity_image = vec![0u8; 512];
    let mut writer = Writer::create(&mut capacity_image, &header(512, SALT), 0).unwrap();
    for i in 0..3u64 {
        writer.append(100 + i, i, 0, b"same len").unwrap();
    }
    let (records, _) = scan(&capacity_image);
    let (a, b) = (records[0].offset, records[1].offset);
    let len = frame_end(&records[0]) - a;
    let mut swapped = capacity_image.clone();
    swapped.copy_within(b..b + len, a);
    swapped[b..b + len].copy_from_slice(&capacity_image[a..a + len]);
    let (got, scan_end) = scan(&swapped);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 101);
    assert!(matches!(
        scan_end,
        ScanEnd::Corrupt {
            reason: CorruptReason::SequenceNotIncreasing {
                prev: 101,
                seq: 100
            },
            ..
        }
    ));
}

#[test]
fn a_frame_from_a_segment_with_another_salt_never_validates() {
    let (mine, records) = small_image(false, SALT);
    let (theirs, _) = small_image(false, SALT ^ 1);
    // Same sequences, payloads and offsets; only the salt differs. The frame replaced has
    // another after it, so the failed checksum is corruption, not a torn tail.
    let target = &records[records.len() - 2];
    let mut mixed = mine.clone();
    mixed[target.offset..frame_end(target)]
        .copy_from_slice(&theirs[target.offset..frame_end(target)]);
    let (got, end) = scan(&mixed);
    assert_eq!(got, records[..records.len() - 2]);
    assert!(
        matches!(end, ScanEnd::Corrupt { reason: CorruptReason::HeaderChecksum, offset } if offset == target.offset)
    );
}

#[test]
fn zero_tails_end_cleanly_and_garbage_tails_do_not() {
    let (image, records) = small_image(false, SALT);
    let data_end = frame_end(records.last().unwrap());
    // Zero tails of every length (the image is shorter than its capacity).
    for len in (data_end..=image.len()).step_by(TRUNCATION_STEP) {
        let (got, end) = scan(&image[..len]);
        assert_eq!(got, records);
        assert_eq!(
            end,
            ScanEnd::CleanEnd {
                offset: data_end,
                seal: None
            },
            "len {len}"
        );
    }
    // Garbage tails: never a clean end, all valid frames still returned.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let rounds = if cfg!(miri) { 4 } else { 200 };
    for round in 0..rounds {
        let mut garbage = image.clone();
        let start = data_end + (round % 5) * 8;
        let stop = (start + 8 + round * 13 % 200).min(image.len());
        for byte in &mut garbage[start..stop] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8 | 1;
        }
        let (got, end) = scan(&garbage);
        assert_eq!(got, records, "round {round}");
        assert!(
            !matches!(end, ScanEnd::CleanEnd { .. }),
            "round {round}: {end:?}"
        );
        assert_eq!(end.offset(), data_end, "round {round}");
    }
}

#[test]
fn recovery_zeroes_the_tail_and_appends_continue() {
    let (image, records) = small_image(false, SALT);
    let data_end = frame_end(records.last().unwrap());

    // A torn append: the next frame's header written, its payload half written.
    let mut torn = image.clone();
    {
        let mut writer = Writer::resume(&mut torn, 0).unwrap();
        writer.append(900, 9, 9, &[0xEE; 24]).unwrap();
    }
    torn[data_end + 40 + 12..data_end + 40 + 24].fill(0);
    let recovered = recover(&mut torn).unwrap();
    assert_eq!(recovered.damage, Some(Damage::TornTail));
    assert_eq!(recovered.end, data_end);
    assert_eq!(recovered.stats.count, records.len() as u64);
    assert_eq!(torn, image, "recovery restores the clean image");

    // Idempotent, and appends continue at the end of the valid frames.
    let again = recover(&mut torn).unwrap();
    assert_eq!((again.damage, again.zeroed.len()), (None, 0));
    let mut writer = Writer::resume(&mut torn, 0).unwrap();
    assert_eq!(
        writer.append(records.last().unwrap().seq, 0, 0, b"x"),
        Err(WriteError::NotIncreasing {
            last: records.last().unwrap().seq,
            seq: records.last().unwrap().seq
        })
    );
    writer.append(1_000, 5, 1, b"after recovery").unwrap();
    let (got, end) = scan(&torn);
    assert_eq!(got[..records.len()], records[..]);
    assert_eq!(got.last().unwrap().payload, b"after recovery");
    assert!(matches!(end, ScanEnd::CleanEnd { .. }));

    // A damaged image refuses to resume until recovered.
    let mut garbage = image.clone();
    garbage[data_end + 100] = 1;
    assert!(
        matches!(Writer::resume(&mut garbage, 0), Err(WriteError::NeedsRecovery { offset }) if offset == data_end)
    );
    let recovered = recover(&mut garbage).unwrap();
    assert!(matches!(
        recovered.damage,
        Some(Damage::Corrupt(CorruptReason::DataAfterEnd { .. }))
    ));
    assert_eq!(recovered.zeroed, data_end..data_end + 101);
    assert_eq!(garbage, image);
}

#[test]
fn writer_keeps_room_for_the_seal_and_reports_full() {
    let capacity = 1024;
    let mut image = vec![0u8; capacity];
    let mut writer = Writer::create(&mut image, &header(capacity, SALT), 64).unwrap();
    let mut seq = 100;
    loop {
        match writer.append(seq, seq, 0, &[seq as u8; 30]) {
            Ok(_) => seq += 1,
            Err(WriteError::Full { needed, available }) => {
                assert!(needed > available);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(writer.max_payload().is_none_or(|max| max < 30));
    let written = seq - 100;
    let seal_end = writer.seal().unwrap();
    assert!(seal_end <= capacity - FOOTER_LEN);
    let sealed = SealedSegment::open(&image).unwrap();
    assert_eq!(sealed.seal().stats.count, written);
    let (_, end) = scan(&image);
    assert!(matches!(end, ScanEnd::CleanEnd { seal: Some(_), .. }));
    let mut image2 = image.clone();
    assert_eq!(
        Writer::resume(&mut image2, 64).err(),
        Some(WriteError::Sealed)
    );
}

#[test]
fn sealed_segment_finds_every_sequence_through_its_index() {
    let capacity = if cfg!(miri) { 2048 } else { 64 * 1024 };
    let mut image = vec![0u8; capacity];
    let mut writer = Writer::create(&mut image, &header(capacity, SALT), 256).unwrap();
    let mut seqs = Vec::new();
    let mut seq = 100u64;
    while writer
        .append(
            seq,
            seq * 10,
            (seq % 3) as u32,
            &payload(seq as usize, (seq % 50) as usize),
        )
        .is_ok()
    {
        seqs.push(seq);
        seq += 1 + seq % 4; // gaps between sequences
    }
    writer.seal().unwrap();
    let sealed = SealedSegment::open(&image).unwrap();
    let seal = sealed.seal();
    assert_eq!(seal.stats.first_seq, seqs[0]);
    assert_eq!(seal.stats.last_seq, *seqs.last().unwrap());
    assert!(seal.index_len() > 1 && seal.index_len() < seqs.len());
    for &s in &seqs {
        let record = sealed.find(s).unwrap().unwrap();
        assert_eq!(record.seq, s);
        assert_eq!(record.payload, &payload(s as usize, (s % 50) as usize)[..]);
        assert_eq!(record.timestamp, s * 10);
        // A sequence in a gap finds nothing, and seek finds the next one.
        if let Some(next) = seqs.iter().find(|&&n| n > s + 1) {
            if !seqs.contains(&(s + 1)) {
                assert_eq!(sealed.find(s + 1).unwrap(), None);
                assert_eq!(sealed.seek(s + 1).unwrap().unwrap().seq, *next);
            }
        }
    }
    assert_eq!(sealed.seek(0).unwrap().unwrap().seq, seqs[0]);
    assert_eq!(sealed.seek(u64::MAX).unwrap(), None);
    let tail: Vec<u64> = sealed
        .records_from(seqs[seqs.len() / 2])
        .map(|r| r.unwrap().seq)
        .collect();
    assert_eq!(tail, seqs[seqs.len() / 2..]);

    // A damaged record is reported by the lookup, not returned.
    let target = sealed.find(seqs[seqs.len() / 2]).unwrap().unwrap();
    let mut damaged = image.clone();
    damaged[target.offset + 20] ^= 0x10; // in the sequence field
    let damaged_open = SealedSegment::open(&damaged).unwrap();
    assert!(damaged_open.find(target.seq).is_err());
    // An unsealed image is not opened as sealed.
    let (small, _) = small_image(false, SALT);
    assert!(SealedSegment::open(&small).is_err());
}

#[test]
fn damage_after_a_valid_seal_is_cut_and_the_segment_stays_sealed() {
    // Regression: recovery reported such a segment as unsealed, with appends continuing after
    // the seal (or at the footer), and a second run disagreed with the first.
    let (image, records) = small_image(true, SALT);
    let seal_end = scan(&image).1.offset();
    let footer_at = image.len() - FOOTER_LEN;
    let mut gap = image.clone();
    gap[seal_end + 8] = 7;
    let mut footer = image.clone();
    footer[footer_at] ^= 0x40;
    for (damaged, reason) in [(gap, "gap"), (footer, "footer")] {
        let mut damaged = damaged;
        let recovered = recover(&mut damaged).unwrap();
        assert!(recovered.sealed, "{reason}");
        assert_eq!(recovered.end, seal_end, "{reason}");
        assert_eq!(recovered.stats.count, records.len() as u64, "{reason}");
        assert!(
            matches!(recovered.damage, Some(Damage::Corrupt(_))),
            "{reason}"
        );
        assert!(damaged[seal_end..].iter().all(|&b| b == 0), "{reason}");
        assert_eq!(damaged[..seal_end], image[..seal_end], "{reason}");
        let again = recover(&mut damaged).unwrap();
        assert_eq!(
            (again.end, again.sealed, again.damage, again.zeroed.len()),
            (seal_end, true, None, 0),
            "{reason}"
        );
        assert_eq!(
            Writer::resume(&mut damaged, 0).err(),
            Some(WriteError::Sealed),
            "{reason}"
        );
    }
}

#[test]
fn a_seal_index_out_of_order_is_rejected_by_the_scan_too() {
    // Regression: the scan accepted a seal whose (checksummed) index was out of order, which
    // `SealedSegment::open` and its binary search reject.
    let (mut image, _) = small_image(true, SALT);
    let seal_at = scan(&image).1.offset() - frame_len(56 + 16 * payload_lens().len());
    let seal = SealedSegment::open(&image).unwrap();
    assert_eq!(seal.seal().index_len(), payload_lens().len());
    // Swap index entries 0 and 1, then re-checksum the payload and the header.
    let payload_at = seal_at + 40;
    let len = 56 + 16 * payload_lens().len();
    let (e0, e1) = (payload_at + 56, payload_at + 72);
    let entry0: Vec<u8> = image[e0..e0 + 16].to_vec();
    image.copy_within(e1..e1 + 16, e0);
    image[e1..e1 + 16].copy_from_slice(&entry0);
    let payload_crc = crc32c(&image[payload_at..payload_at + len]);
    image[seal_at + 12..seal_at + 16].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc =
        crc32c_append(crc32c(&SALT.to_le_bytes()), &image[seal_at..seal_at + 36]) ^ 0xA282_EAD8;
    image[seal_at + 36..seal_at + 40].copy_from_slice(&header_crc.to_le_bytes());
    assert!(SealedSegment::open(&image).is_err());
    assert_eq!(
        scan(&image).1,
        ScanEnd::Corrupt {
            offset: seal_at,
            reason: CorruptReason::SealIndex { entry: 1 }
        }
    );
}

#[test]
fn an_interrupted_write_of_several_records_is_cut_whole() {
    let h = header(4096, 0xB47C);
    let mut image = vec![0u8; 4096];
    let mut w = Writer::create(&mut image, &h, 0).unwrap();
    // One complete write of two records, then a write of three cut after its second record.
    w.append_in_write(101, 0, 0, b"a1", true).unwrap();
    let complete = w.append_in_write(102, 0, 0, b"a2", false).unwrap();
    w.append_in_write(103, 0, 0, b"b1", true).unwrap();
    w.append_in_write(104, 0, 0, b"b2", true).unwrap();
    let _ = w;
    assert!(matches!(
        Writer::resume(&mut image.clone(), 0),
        Err(WriteError::NeedsRecovery { .. })
    ));
    let got = recover(&mut image).unwrap();
    assert_eq!(got.end, complete);
    assert_eq!(got.damage, Some(Damage::TornTail));
    assert_eq!((got.stats.count, got.stats.last_seq), (2, 102));
    assert!(image[complete..].iter().all(|&b| b == 0));
    // Idempotent, and appends continue after the complete write.
    let again = recover(&mut image).unwrap();
    assert_eq!((again.end, again.damage), (complete, None));
    let mut w = Writer::resume(&mut image, 0).unwrap();
    w.append(103, 0, 0, b"c").unwrap();
    let (records, end) = scan(&image);
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [101, 102, 103]
    );
    assert!(matches!(end, ScanEnd::CleanEnd { seal: None, .. }));
}

#[test]
fn unknown_frame_flags_are_corrupt() {
    let (mut image, records) = small_image(false, 0xF1A6);
    // Set an unknown flag bit in the first frame and fix up its header checksum.
    image[64 + 5] = 0x80;
    let seed = crc32c(&h_salt(&image).to_le_bytes());
    let crc = crc32c_append(seed, &image[64..64 + 36]) ^ 0xA282_EAD8;
    image[64 + 36..64 + 40].copy_from_slice(&crc.to_le_bytes());
    let (got, end) = scan(&image);
    assert!(got.is_empty() && !records.is_empty());
    assert!(matches!(
        end,
        ScanEnd::Corrupt {
            reason: CorruptReason::NonZeroReserved,
            ..
        }
    ));
}

fn h_salt(image: &[u8]) -> u64 {
    FileHeader::decode(image).unwrap().salt
}

/// Asking for a record where the seal is names the seal's kind, not an unknown one.
#[test]
fn a_record_asked_for_at_the_seal_is_not_a_record() {
    use ringledger_core::segment::{CorruptReason, FileHeader, FrameKind, RecordReader, Writer};
    let header = FileHeader {
        base_seq: 1,
        ledger_id: 7,
        salt: 99,
        capacity: 4096,
        created_ns: 0,
    };
    let mut image = vec![0u8; 4096];
    let mut writer = Writer::create(&mut image, &header, 1024).unwrap();
    let seal_at = writer.append(5, 0, 2, b"hello").unwrap();
    let sealed_end = writer.seal().unwrap();
    let reader = RecordReader::new(&header);
    assert_eq!(
        reader.record_at(&image[..sealed_end], seal_at).unwrap_err(),
        CorruptReason::NotARecord {
            kind: FrameKind::Seal as u8
        }
    );
}
