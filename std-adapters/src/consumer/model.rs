//! A model check of the mark / persist / acknowledge protocol.
//!
//! Every state change of a consumer happens under its one lock, through [`Marks`]: a delivery
//! (`offer`), a mark (plain or cumulative), a flush request (the timeout firing, or `recv`
//! finding the window full), and the committer's persist, split into `begin` and `finish`
//! (ok or failed) because the table write runs unlocked. So the interleavings of the threads
//! are exactly the orders of these operations, with anything allowed between a `begin` and its
//! `finish`. This explores all of them, up to a depth, from several stored starting points,
//! windows and skips, ending each run with `close` (persist what is deferred, each write ok or
//! failed) and a restart; `proptest` adds long random runs. (loom would add nothing here: it
//! explores orders of atomic accesses, and the consumer has none outside its mutex; the
//! waiting it does use is `wait`'s, which `loom-tests/` checks.)
//!
//! Checked after every step, against a reference that knows only what was delivered and
//! marked:
//! - a mark is refused exactly when its sequence is not delivered-and-held (or restored);
//! - at most `window` delivered entries are held, and deliveries ascend;
//! - the persisted positions never cover a sequence that was not marked when the persist
//!   began (or covered before the run), and never regress (what they cover only grows);
//! - a ticket acknowledged means everything its mark covered is persisted; every ticket is
//!   resolved once, never changes, and all are resolved after close;
//! - after close, a restart from the persisted positions delivers exactly the sequences not
//!   marked (all of them persisted), or, if a write failed, a superset of those that never
//!   includes anything covered before the run.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::marks::{Marks, Offer, Persist};

/// The ledger holds sequences `1..=LEDGER`.
const LEDGER: u64 = 4;

#[derive(Debug, Clone, Copy)]
enum Op {
    Deliver,
    Mark(u64, bool),
    Flush,
    Begin,
    Finish(bool),
}

/// Whether `positions` say `seq` is done.
fn covers(positions: &[u64], seq: u64) -> bool {
    match positions {
        [] => false,
        [first, rest @ ..] => seq <= *first || rest.contains(&seq),
    }
}

fn covered(positions: &[u64]) -> BTreeSet<u64> {
    (1..=LEDGER).filter(|&s| covers(positions, s)).collect()
}

#[derive(Debug, Clone)]
struct World {
    marks: Marks,
    window: usize,
    initial: Vec<u64>,
    /// The next sequence the reader offers.
    next: u64,
    first_offered: Option<u64>,
    delivered: Vec<u64>,
    /// Sequences marked done in this run (directly or cumulatively).
    marked: BTreeSet<u64>,
    /// For each ticket: the sequences its mark covered, and its resolution once known.
    tickets: Vec<(BTreeSet<u64>, Option<bool>)>,
    /// The persist under way, with what was marked when it began.
    in_flight: Option<(Persist, BTreeSet<u64>)>,
    /// The first position of the last successful persist: what the table compacted to.
    floor: u64,
    failed: bool,
}

impl World {
    fn new(initial: &[u64], window: usize, skip: usize) -> Self {
        Self {
            marks: Marks::resume(initial, window, skip),
            window,
            initial: initial.to_vec(),
            next: initial[0] + 1,
            first_offered: None,
            delivered: Vec::new(),
            marked: BTreeSet::new(),
            tickets: Vec::new(),
            in_flight: None,
            floor: initial[0],
            failed: false,
        }
    }

    /// Whether the table should hold `seq` (so a mark of it is valid).
    fn holds(&self, seq: u64) -> bool {
        let restored =
            self.initial[1..].contains(&seq) && self.first_offered.is_none_or(|first| seq >= first);
        (self.delivered.contains(&seq) || restored) && seq > self.floor
    }

    /// Applies `op` if it applies here; returns whether the state changed.
    fn apply(&mut self, op: Op) -> bool {
        match op {
            Op::Deliver => {
                if self.next > LEDGER {
                    return false;
                }
                let seq = self.next;
                match self.marks.offer(seq) {
                    Offer::Full => {
                        assert_eq!(self.marks.delivered(), self.window);
                        return false;
                    }
                    Offer::Skip => {
                        assert!(covers(&self.initial, seq), "skipped {seq} never marked");
                    }
                    Offer::Deliver => {
                        assert!(!covers(&self.initial, seq), "{seq} delivered again");
                        assert!(self.delivered.last().is_none_or(|&d| d < seq));
                        self.delivered.push(seq);
                    }
                }
                self.first_offered.get_or_insert(seq);
                self.next += 1;
                true
            }
            Op::Mark(seq, cumulative) => {
                let holds = self.holds(seq);
                let result = self.marks.mark(seq, cumulative);
                assert_eq!(result.is_ok(), holds, "mark {seq}: {result:?}");
                let Ok(ticket) = result else {
                    return false;
                };
                let mut covered: BTreeSet<u64> = [seq].into();
                if cumulative {
                    covered.extend(self.delivered.iter().filter(|&&d| d < seq));
                }
                self.marked.extend(&covered);
                assert_eq!(ticket as usize, self.tickets.len() + 1);
                self.tickets.push((covered, None));
                true
            }
            Op::Flush => {
                if self.marks.deferred() == 0 || self.marks.flush_due() {
                    return false;
                }
                self.marks.request_flush();
                assert!(self.marks.flush_due());
                true
            }
            Op::Begin => {
                let Some(persist) = self.marks.begin() else {
                    return false;
                };
                assert!(self.in_flight.is_none() && !self.failed);
                self.in_flight = Some((persist, self.marked.clone()));
                true
            }
            Op::Finish(ok) => {
                let Some((persist, marked_then)) = self.in_flight.take() else {
                    return false;
                };
                let before = self.marks.persisted().to_vec();
                // An unchanged (or empty: everything marked is compacted already) list is not
                // written; what the table holds stays.
                let written = if persist.unchanged {
                    before.clone()
                } else {
                    persist.list.clone()
                };
                if ok {
                    for seq in covered(&written) {
                        assert!(
                            marked_then.contains(&seq) || covers(&self.initial, seq),
                            "{written:?} claims {seq}, unmarked when it began"
                        );
                    }
                    assert!(covered(&before).is_subset(&covered(&written)));
                    assert!(written[0] >= before[0], "{written:?} after {before:?}");
                    self.floor = self.floor.max(written[0]);
                }
                let resolved = self.marks.finish(persist, ok);
                self.failed |= !ok;
                if ok {
                    assert!(!self.failed);
                } else {
                    assert_eq!(self.marks.persisted(), before);
                }
                for ticket in resolved {
                    let Some((covered, resolution)) = self.tickets.get_mut(ticket as usize - 1)
                    else {
                        continue;
                    };
                    assert_eq!(*resolution, None, "ticket {ticket} resolved twice");
                    *resolution = Some(ok);
                    if ok {
                        let persisted = self.marks.persisted();
                        assert!(covered.iter().all(|&s| covers(persisted, s)));
                    }
                }
                true
            }
        }
    }

    /// The checks that hold in every state.
    fn check(&self) {
        self.marks.check_invariants();
        assert!(self.marks.delivered() <= self.window);
        for (ticket, (_, resolution)) in self.tickets.iter().enumerate() {
            assert_eq!(
                self.marks.resolution(ticket as u64 + 1),
                *resolution,
                "ticket {}",
                ticket + 1
            );
        }
    }

    /// Every operation worth trying from here. None after a failed write: the consumer has
    /// stopped, all that is left is closing.
    fn ops(&self) -> Vec<Op> {
        if self.failed {
            return Vec::new();
        }
        let mut ops = vec![Op::Deliver, Op::Flush, Op::Begin];
        if self.in_flight.is_some() {
            ops.extend([Op::Finish(true), Op::Finish(false)]);
        }
        for seq in 1..=LEDGER {
            ops.extend([Op::Mark(seq, false), Op::Mark(seq, true)]);
        }
        ops
    }

    /// Closes (each remaining write ok or failed as `outcomes` says, then ok) and checks the
    /// final state and a restart.
    fn close(mut self, outcomes: &mut impl Iterator<Item = bool>) {
        loop {
            if self.in_flight.is_none() && !self.apply(Op::Begin) {
                break;
            }
            self.apply(Op::Finish(outcomes.next().unwrap_or(true)));
            self.check();
        }
        assert!(self.marks.settled());
        assert!(self.tickets.iter().all(|(_, r)| r.is_some()));
        // Restart from what was persisted, with room for everything.
        let persisted = self.marks.persisted().to_vec();
        let mut restarted = Marks::resume(&persisted, LEDGER as usize + 1, 0);
        let redelivered: BTreeSet<u64> = (persisted[0] + 1..=LEDGER)
            .filter(|&s| restarted.offer(s) == Offer::Deliver)
            .collect();
        let unmarked: BTreeSet<u64> = (1..=LEDGER)
            .filter(|&s| !self.marked.contains(&s) && !covers(&self.initial, s))
            .collect();
        if self.failed {
            assert!(redelivered.is_superset(&unmarked));
            assert!(redelivered.iter().all(|&s| !covers(&self.initial, s)));
        } else {
            assert_eq!(redelivered, unmarked, "persisted {persisted:?}");
        }
    }
}

/// Explores every sequence of up to `depth` operations from `world`, closing after each.
fn explore(world: &World, depth: usize, runs: &mut u64) {
    for outcomes in [[true, true], [false, true], [true, false]] {
        world.clone().close(&mut outcomes.into_iter());
    }
    *runs += 1;
    if depth == 0 {
        return;
    }
    for op in world.ops() {
        let mut next = world.clone();
        if next.apply(op) {
            next.check();
            explore(&next, depth - 1, runs);
        }
    }
}

const STARTS: [&[u64]; 4] = [&[0], &[2], &[1, 3], &[0, 2, 4]];

/// Depth 5 (72 k runs) takes about a second in a debug build; `RINGLEDGER_MODEL_DEPTH=7`
/// (about 4 M runs) is for a release build.
#[test]
fn every_interleaving_up_to_five_steps() {
    let depth = std::env::var("RINGLEDGER_MODEL_DEPTH")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(5);
    let mut runs = 0;
    for start in STARTS {
        for (window, skip) in [(1, 0), (2, 0), (2, 1), (3, 2)] {
            explore(&World::new(start, window, skip), depth, &mut runs);
        }
    }
    eprintln!("explored {runs} runs, up to {depth} steps each");
    assert!(runs > 50_000, "explored only {runs} runs");
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Deliver),
        1 => Just(Op::Flush),
        2 => Just(Op::Begin),
        2 => any::<bool>().prop_map(Op::Finish),
        4 => (1..=LEDGER, any::<bool>()).prop_map(|(s, c)| Op::Mark(s, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn long_random_runs(
        start in 0..STARTS.len(),
        window in 1..=4usize,
        skip in 0..4usize,
        ops in proptest::collection::vec(op(), 0..60),
        outcomes in proptest::collection::vec(any::<bool>(), 0..4),
    ) {
        let mut world = World::new(STARTS[start], window, skip.min(window - 1));
        for op in ops {
            if world.failed {
                break;
            }
            world.apply(op);
            world.check();
        }
        world.close(&mut outcomes.into_iter());
    }
}
