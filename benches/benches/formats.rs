//! The formats against their physical baselines, measured in the same run:
//!
//! - sequence encoding vs `itoa` formatting the same `u64`s;
//! - writing 256-byte record frames into a 64 MiB segment, and scanning that segment (CRC-32C
//!   of every header and payload included), vs `memcpy` of 64 MiB.
//!
//! Criterion reports throughput; the ratios are ours divided by the baseline's.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringledger_core::segment::{FileHeader, Scanner, Writer};
use ringledger_core::sequence::{self, ENCODED_LEN};

const SEGMENT: usize = 64 << 20;
const PAYLOAD: usize = 256;

/// Sequences as a generator produces them: the current second and growing ordinals.
fn sequences() -> Vec<u64> {
    (0..1024u32)
        .map(|i| sequence::join(1_763_900_000 + i / 100, 1 + i * 37))
        .collect()
}

fn encode(c: &mut Criterion) {
    let seqs = sequences();
    let mut group = c.benchmark_group("sequence_encode");
    group.throughput(Throughput::Elements(seqs.len() as u64));
    group.bench_function("itoa", |b| {
        let mut buf = itoa::Buffer::new();
        b.iter(|| {
            let mut total = 0;
            for &seq in &seqs {
                total += black_box(buf.format(black_box(seq))).len();
            }
            total
        })
    });
    for compact in [true, false] {
        let name = if compact { "compact" } else { "padded" };
        group.bench_function(BenchmarkId::new("ringledger", name), |b| {
            let mut buf = [0u8; ENCODED_LEN];
            b.iter(|| {
                let mut total = 0;
                for &seq in &seqs {
                    total += black_box(sequence::encode(black_box(seq), compact, &mut buf)).len();
                }
                total
            })
        });
    }
    group.finish();
}

fn header() -> FileHeader {
    FileHeader {
        base_seq: 1,
        ledger_id: 1,
        salt: 0x5EED,
        capacity: SEGMENT as u64,
        created_ns: 0,
    }
}

/// Fills `image` with 256-byte records; returns the bytes of frames written.
fn fill(image: &mut [u8]) -> usize {
    let payload = [0xA5u8; PAYLOAD];
    let mut writer = Writer::create(image, &header(), 4096).expect("valid segment");
    let mut seq = 1;
    while writer.append(seq, seq, 0, &payload).is_ok() {
        seq += 1;
    }
    writer.end()
}

fn segment(c: &mut Criterion) {
    let source = vec![0x5Au8; SEGMENT];
    let mut target = vec![0u8; SEGMENT];
    // Touch every page before measuring anything.
    target.copy_from_slice(&source);

    let mut group = c.benchmark_group("segment_64MiB");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(SEGMENT as u64));
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            target.copy_from_slice(black_box(&source));
            black_box(&target);
        })
    });
    group.bench_function("write_256B_frames", |b| {
        b.iter(|| black_box(fill(&mut target)))
    });
    // A segment as the ledger leaves it: frames, then zeros.
    target.fill(0);
    fill(&mut target);
    group.bench_function("scan", |b| {
        b.iter(|| {
            let scanner = Scanner::new(black_box(&target)).expect("valid segment");
            scanner.map(|record| record.payload.len()).sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, encode, segment);
criterion_main!(benches);
