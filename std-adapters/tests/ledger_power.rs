//! Simulated power loss: the ledger runs on [`SimStorage`], which at a crash applies, drops,
//! tears or garbles every page not synced, and applies a prefix of the directory operations
//! not synced, by seed. For every seed: everything up to the last acknowledged sync survives,
//! byte-identical; the recovered log is a dense prefix of what was written; deletes stay
//! deleted; and the ledger takes writes again, through a second crash.
//!
//! `RINGLEDGER_POWER_SEEDS` sets the number of seeds (default 1000); `RINGLEDGER_POWER_SEED`
//! runs one seed alone, to debug it.

use std::sync::Arc;

use ringledger::ledger::{Durability, Entry, Ledger, LedgerConfig};
use ringledger::storage::sim::SimStorage;

mod support;
use support::Rng;

/// The payload written for a sequence: derived from it, so any entry can be checked.
fn payload(seq: u64) -> Vec<u8> {
    let len = (seq.wrapping_mul(2_654_435_761) % 700) as usize;
    (0..len).map(|i| (seq as usize + i * 31) as u8).collect()
}

fn tag(seq: u64) -> u32 {
    (seq % 7) as u32
}

fn config() -> LedgerConfig {
    let mut config = LedgerConfig::default().with_segment_size(16 * 1024);
    config.index_interval = 512;
    config.manual_background = true;
    // Small writes through the mapping, larger ones staged: both paths meet power losses.
    config.stage_at_least = 2048;
    config
}

/// What the test knows the ledger must hold.
#[derive(Debug, Default, Clone)]
struct Model {
    /// Every sequence written and acknowledged, in order.
    written: Vec<u64>,
    /// How many of `written` a sync covered.
    durable: usize,
    /// Deleted up to (deletes are durable when they return).
    tail: u64,
}

/// Runs writes, syncs, deletes and background jobs on `ledger`, by `rng`.
fn work(ledger: &Ledger, rng: &mut Rng, model: &mut Model, next_seq: &mut u64, ops: usize) {
    for _ in 0..ops {
        match rng.below(20) {
            0..=13 => {
                let n = 1 + rng.below(6);
                let batch: Vec<Entry> = (0..n)
                    .map(|_| {
                        *next_seq += 1 + rng.below(3);
                        let mut e =
                            Entry::new(*next_seq, payload(*next_seq)).with_tag(tag(*next_seq));
                        e.timestamp = *next_seq;
                        e
                    })
                    .collect();
                let synced = rng.below(3) == 0;
                let durability = if synced {
                    Durability::Synced
                } else {
                    Durability::Buffered
                };
                ledger.write_with(&batch, durability).unwrap();
                model.written.extend(batch.iter().map(|e| e.sequence));
                if synced {
                    model.durable = model.written.len();
                }
            }
            14 => {
                ledger.sync().unwrap();
                model.durable = model.written.len();
            }
            15 | 16 => {
                ledger.run_background();
            }
            // Delete up to some synced sequence (a delete is durable when it returns; the
            // entries a delete past the synced prefix names could be lost, which would only
            // complicate the model).
            17 if model.durable > 0 && rng.below(4) == 0 => {
                let upto = model.written[rng.below(model.durable as u64) as usize];
                if upto > model.tail {
                    ledger.delete(upto).unwrap();
                    model.tail = upto;
                }
            }
            _ => {}
        }
    }
}

/// Checks the recovered ledger against the model; returns the model of what it now holds.
fn check(ledger: &Ledger, model: &Model, seed: u64) -> Model {
    let got = ledger.read(0, usize::MAX).unwrap();
    let live: Vec<u64> = model
        .written
        .iter()
        .copied()
        .filter(|&s| s > model.tail)
        .collect();
    let durable_live: Vec<u64> = model.written[..model.durable]
        .iter()
        .copied()
        .filter(|&s| s > model.tail)
        .collect();
    let seqs: Vec<u64> = got.iter().map(|e| e.sequence).collect();
    // A dense prefix of what was written, with everything synced.
    assert!(
        live.starts_with(&seqs),
        "seed {seed}: recovered {seqs:?} is not a prefix of the written {live:?}"
    );
    assert!(
        seqs.len() >= durable_live.len(),
        "seed {seed}: lost synced entries: recovered {} of {} durable ({:?})",
        seqs.len(),
        durable_live.len(),
        ledger.recovery()
    );
    for e in &got {
        assert_eq!(
            e.payload,
            payload(e.sequence),
            "seed {seed}: payload of {}",
            e.sequence
        );
        assert_eq!(e.tag, tag(e.sequence), "seed {seed}");
        assert_eq!(e.timestamp, e.sequence, "seed {seed}");
    }
    assert_eq!(ledger.tail(), model.tail, "seed {seed}: tail");
    assert_eq!(ledger.len(), seqs.len() as u64, "seed {seed}: len");
    let durable_head = model.written[..model.durable].last().copied().unwrap_or(0);
    assert!(
        ledger.head() >= durable_head.max(model.tail),
        "seed {seed}: head"
    );
    assert_eq!(ledger.verify().unwrap(), ledger.verify().unwrap());
    // What the ledger holds now is durable (recovery synced what it changed).
    let mut now = Model {
        written: model
            .written
            .iter()
            .copied()
            .filter(|&s| s <= model.tail)
            .collect(),
        durable: 0,
        tail: model.tail,
    };
    now.written.extend(&seqs);
    now.durable = now.written.len();
    now
}

/// How often recovery did each thing, over all seeds: the test checks that the seeds reach
/// every path.
#[derive(Debug, Default)]
struct Coverage {
    torn: usize,
    corrupt: usize,
    resealed: usize,
    removed_segments: usize,
    removed_temporary: usize,
}

fn note(coverage: &mut Coverage, ledger: &Ledger) {
    let report = ledger.recovery();
    for (_, _, damage) in &report.cut {
        match damage {
            ringledger::core::segment::Damage::TornTail => coverage.torn += 1,
            ringledger::core::segment::Damage::Corrupt(_) => coverage.corrupt += 1,
        }
    }
    coverage.resealed += report.resealed.len();
    coverage.removed_segments += report.removed_segments.len();
    coverage.removed_temporary += report.removed_temporary.len();
}

fn run_seed(seed: u64, coverage: &mut Coverage) {
    let mut rng = Rng(seed);
    let sim = SimStorage::new();
    let mut model = Model::default();
    let mut next_seq = 0;
    for round in 0..2 {
        let ledger = Ledger::open_in(Arc::new(sim.clone()), config()).unwrap();
        if round > 0 {
            next_seq = next_seq.max(ledger.head());
        }
        let ops = 20 + rng.below(60) as usize;
        work(&ledger, &mut rng, &mut model, &mut next_seq, ops);
        let crashed = sim.crash(rng.next());
        drop(ledger);
        // A read-only open first: it must see exactly what recovery keeps, and change nothing.
        let seen: Vec<(u64, Vec<u8>)> = {
            let ro = Ledger::open_in(Arc::new(crashed.clone()), config().with_read_only(true))
                .unwrap_or_else(|e| panic!("seed {seed} round {round}: read-only open: {e}"));
            ro.read(0, usize::MAX)
                .unwrap()
                .into_iter()
                .map(|e| (e.sequence, e.payload.to_vec()))
                .collect()
        };
        let ledger = Ledger::open_in(Arc::new(crashed.clone()), config())
            .unwrap_or_else(|e| panic!("seed {seed} round {round}: reopen failed: {e}"));
        note(coverage, &ledger);
        let kept: Vec<(u64, Vec<u8>)> = ledger
            .read(0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| (e.sequence, e.payload.to_vec()))
            .collect();
        assert_eq!(
            seen, kept,
            "seed {seed} round {round}: read-only open disagrees"
        );
        model = check(&ledger, &model, seed);
        // Recovery is idempotent: opening again changes nothing.
        drop(ledger);
        let again = Ledger::open_in(Arc::new(crashed.clone()), config()).unwrap();
        assert_eq!(
            again.read(0, usize::MAX).unwrap().len() as u64,
            again.len(),
            "seed {seed}"
        );
        assert!(
            again.recovery().cut.is_empty(),
            "seed {seed}: {:?}",
            again.recovery()
        );
        drop(again);
        next_seq = next_seq.max(model.written.last().copied().unwrap_or(0));
        // Continue on the crashed storage.
        sim_replace(&sim, &crashed);
    }
}

/// Makes `sim` the storage `crashed` (a process crash of it keeps everything).
fn sim_replace(sim: &SimStorage, crashed: &SimStorage) {
    // SimStorage handles share state; rebuild `sim` by copying every file over.
    for name in sim.file_names() {
        use ringledger::storage::Storage;
        sim.remove(&name).unwrap();
    }
    for name in crashed.file_names() {
        use ringledger::storage::Storage;
        let bytes = crashed.contents(&name).unwrap();
        sim.write(&name, &bytes).unwrap();
    }
    use ringledger::storage::Storage;
    sim.sync_dir().unwrap();
}

#[test]
fn every_synced_entry_survives_a_power_loss_and_the_log_stays_a_dense_prefix() {
    if let Some(seed) = std::env::var("RINGLEDGER_POWER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let mut coverage = Coverage::default();
        run_seed(seed, &mut coverage);
        eprintln!("{coverage:?}");
        return;
    }
    let seeds: u64 = std::env::var("RINGLEDGER_POWER_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut coverage = Coverage::default();
    for seed in 0..seeds {
        run_seed(seed, &mut coverage);
    }
    eprintln!("recovery paths over {seeds} seeds: {coverage:?}");
    if seeds >= 1000 {
        assert!(
            coverage.torn > 0
                && coverage.corrupt > 0
                && coverage.resealed > 0
                && coverage.removed_segments > 0
                && coverage.removed_temporary > 0,
            "some recovery path was never taken: {coverage:?}"
        );
    }
}

/// Durable before visible. At the start of every sync (when a synced write is written but not
/// yet durable) a reader reads the ledger and a power loss is taken: everything the reader was
/// handed is in the ledger recovered from that power loss, however the loss fell.
#[test]
fn nothing_a_reader_was_handed_from_a_synced_write_is_taken_back_by_a_power_loss() {
    use std::sync::Mutex;

    type Observed = Arc<Mutex<Vec<(Vec<u64>, SimStorage)>>>;
    let seeds: u64 = std::env::var("RINGLEDGER_POWER_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(100, |n: u64| (n / 10).max(1));
    let mut observations = 0;
    for seed in 0..seeds {
        let mut rng = Rng(seed ^ 0x5EED);
        let sim = SimStorage::new();
        let config = config().with_durability(Durability::Synced);
        let ledger = Ledger::open_in(Arc::new(sim.clone()), config.clone()).unwrap();
        let observed: Observed = Arc::default();
        {
            let (reader, sim, observed) = (ledger.clone(), sim.clone(), Arc::clone(&observed));
            let crash_seed = std::sync::atomic::AtomicU64::new(seed << 32);
            sim.clone().before_sync(Some(Box::new(move || {
                let seen = reader
                    .read(0, usize::MAX)
                    .unwrap()
                    .iter()
                    .map(|e| e.sequence)
                    .collect();
                let n = crash_seed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let crashed = sim.crash(n);
                observed.lock().unwrap().push((seen, crashed));
            })));
        }
        let mut next_seq = 0;
        for _ in 0..40 {
            match rng.below(10) {
                0..=6 => {
                    let batch: Vec<Entry> = (0..1 + rng.below(5))
                        .map(|_| {
                            next_seq += 1 + rng.below(3);
                            Entry::new(next_seq, payload(next_seq)).with_tag(tag(next_seq))
                        })
                        .collect();
                    ledger.write(&batch).unwrap();
                }
                7 => ledger.sync().unwrap(),
                8 => {
                    ledger.run_background();
                }
                _ => {
                    ledger.delete(ledger.head().saturating_sub(20)).unwrap();
                }
            }
        }
        // The hook holds a clone of the ledger: drop it, or the storage keeps it alive.
        sim.before_sync(None);
        drop(ledger);
        for (seen, crashed) in observed.lock().unwrap().drain(..) {
            observations += 1;
            let recovered = Ledger::open_in(Arc::new(crashed), config.clone())
                .unwrap_or_else(|e| panic!("seed {seed}: reopen failed: {e}"));
            let kept: Vec<u64> = recovered
                .read(0, usize::MAX)
                .unwrap()
                .iter()
                .map(|e| e.sequence)
                .collect();
            assert!(
                kept.starts_with(&seen),
                "seed {seed}: a reader was handed {seen:?}, the power loss kept {kept:?}"
            );
        }
    }
    assert!(observations > seeds * 10, "{observations} observations");
}
