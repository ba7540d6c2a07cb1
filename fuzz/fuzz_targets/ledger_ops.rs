//! Ledger operations in arbitrary order against a model, on simulated storage: writes (some
//! invalid), reads, deletes, index lookups, syncs, reopens (a process crash: everything
//! survives) and power losses (the recovered log must be a dense prefix of what was written
//! that holds everything synced). Small segments, so rolls, seals and segment removal happen
//! often.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ringledger::ledger::{Durability, Entry, Ledger, LedgerConfig, LedgerError};
use ringledger::storage::sim::SimStorage;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Entries whose sequences step by `1 + step % 4` from the head (0 makes it invalid).
    Write {
        steps: Vec<u8>,
        len: u16,
        synced: bool,
        invalid: bool,
    },
    Read {
        from: u8,
        max: u8,
    },
    Delete {
        back: u8,
    },
    Index(i8),
    Sync,
    Background,
    Reopen,
    PowerLoss(u64),
}

fn payload(seq: u64, len: u16) -> Vec<u8> {
    (0..len as usize % 3000)
        .map(|i| (seq as usize ^ i) as u8)
        .collect()
}

fn config() -> LedgerConfig {
    let mut config = LedgerConfig::default().with_segment_size(8192);
    config.index_interval = 256;
    config.manual_background = true;
    config.prefault = false;
    // Writes of more than a few entries are staged, smaller ones go through the mapping.
    config.stage_at_least = 512;
    config
}

#[derive(Default)]
struct Model {
    /// (sequence, payload length) of every live or deleted entry written, in order.
    written: Vec<(u64, u16)>,
    durable: usize,
    tail: u64,
    head: u64,
}

impl Model {
    fn live(&self) -> Vec<(u64, u16)> {
        self.written
            .iter()
            .copied()
            .filter(|&(s, _)| s > self.tail)
            .collect()
    }
}

fn open(sim: &SimStorage) -> Ledger {
    Ledger::open_in(Arc::new(sim.clone()), config()).expect("reopen")
}

fuzz_target!(|ops: Vec<Op>| {
    let mut sim = SimStorage::new();
    let mut ledger = open(&sim);
    let mut model = Model::default();
    for op in ops.into_iter().take(200) {
        match op {
            Op::Write {
                steps,
                len,
                synced,
                invalid,
            } => {
                let mut seq = model.head;
                let mut batch = Vec::new();
                for (i, step) in steps.iter().take(8).enumerate() {
                    seq += if invalid && i == steps.len().min(8) - 1 {
                        0
                    } else {
                        1 + u64::from(step % 4)
                    };
                    batch.push(Entry::new(seq, payload(seq, len)));
                }
                let durability = if synced {
                    Durability::Synced
                } else {
                    Durability::Buffered
                };
                match ledger.write_with(&batch, durability) {
                    Ok(()) => {
                        assert!(!invalid || batch.is_empty());
                        model
                            .written
                            .extend(batch.iter().map(|e| (e.sequence, len)));
                        model.head = model.head.max(seq);
                        if synced {
                            model.durable = model.written.len();
                        }
                    }
                    Err(LedgerError::NotMonotonic { .. }) => assert!(invalid),
                    Err(LedgerError::TooLarge { .. }) => {
                        let bytes: usize = batch.iter().map(|e| 40 + e.payload.len() + 8).sum();
                        assert!(bytes > 4096, "{bytes}");
                    }
                    Err(e) => panic!("write: {e}"),
                }
            }
            Op::Read { from, max } => {
                let live = model.live();
                let from = live.first().map_or(0, |&(s, _)| s) + u64::from(from);
                let got = ledger.read(from, usize::from(max)).unwrap();
                let want: Vec<_> = live
                    .iter()
                    .filter(|&&(s, _)| s >= from)
                    .take(usize::from(max))
                    .collect();
                assert_eq!(got.len(), want.len());
                for (e, &&(s, len)) in got.iter().zip(&want) {
                    assert_eq!(e.sequence, s);
                    assert_eq!(e.payload, payload(s, len));
                }
            }
            Op::Delete { back } => {
                let live = model.live();
                let upto = model.head.saturating_sub(u64::from(back));
                let expect = if live.is_empty() || upto <= model.tail {
                    0
                } else {
                    live.iter().filter(|&&(s, _)| s <= upto).count()
                };
                assert_eq!(ledger.delete(upto).unwrap(), expect);
                if expect > 0 || (!live.is_empty() && upto > model.tail) {
                    model.tail = upto;
                    // A delete is durable, and so is what it covers being gone.
                }
            }
            Op::Index(i) => {
                let live = model.live();
                let k = if i >= 0 {
                    Some(i as usize)
                } else {
                    live.len().checked_sub(i.unsigned_abs() as usize)
                };
                let want = k.and_then(|k| live.get(k)).map(|&(s, _)| s);
                assert_eq!(
                    ledger.index(i64::from(i)).unwrap().map(|e| e.sequence),
                    want
                );
            }
            Op::Sync => {
                ledger.sync().unwrap();
                model.durable = model.written.len();
            }
            Op::Background => {
                ledger.run_background();
            }
            Op::Reopen => {
                let snapshot = sim.snapshot();
                drop(ledger);
                sim = snapshot;
                ledger = open(&sim);
            }
            Op::PowerLoss(seed) => {
                let crashed = sim.crash(seed);
                drop(ledger);
                sim = crashed;
                ledger = open(&sim);
                let got: Vec<u64> = ledger
                    .read(0, usize::MAX)
                    .unwrap()
                    .iter()
                    .map(|e| e.sequence)
                    .collect();
                let live: Vec<u64> = model.live().iter().map(|&(s, _)| s).collect();
                assert!(live.starts_with(&got), "not a prefix");
                let durable_live = model.written[..model.durable]
                    .iter()
                    .filter(|&&(s, _)| s > model.tail)
                    .count();
                assert!(got.len() >= durable_live, "lost synced entries");
                // The model becomes what survived.
                let kept = model
                    .written
                    .iter()
                    .filter(|&&(s, _)| s <= model.tail)
                    .count()
                    + got.len();
                model.written.truncate(kept);
                model.durable = model.written.len();
                model.head = ledger.head();
            }
        }
        assert_eq!(ledger.len(), model.live().len() as u64);
        assert_eq!(ledger.tail(), model.tail);
    }
});
