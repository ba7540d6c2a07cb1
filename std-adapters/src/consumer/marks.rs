//! The mark table and its persistence protocol: the consumer's state, with no threads, no
//! locks and no clock, so that `model.rs` can drive it through every interleaving.
//!
//! The table holds, in sequence order, every entry the consumer has handed out and not yet
//! covered by the persisted first position, each pending or done, plus the positions a previous
//! run had marked out of order ("restored", done). [`compile`] turns it into the list the table
//! stores: the first item means "everything up to here is done", the rest are done
//! individually above it.
//!
//! Marks are counted by tickets (1, 2, ...). A persist is split in two, [`begin`] and
//! [`finish`](Marks::finish), because the consumer writes the table without holding its lock:
//! marks and deliveries go on in between. A persist covers every ticket issued before it
//! began; its success resolves them (and compacts the table), its failure resolves them and
//! every later ticket as failed, and nothing persists after that. So a ticket's result is a
//! threshold test ([`resolution`](Marks::resolution)): no per-mark allocation, and a ticket
//! is resolved once and for all.
//!
//! [`compile`]: ringledger_core::sequence::compile
//! [`begin`]: Marks::begin

use std::collections::VecDeque;

use ringledger_core::sequence::compile;

/// The state of one sequence in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Delivered, not marked yet.
    Pending,
    /// Delivered and marked.
    Done,
    /// Marked by a previous run (stored above its first position): done, never delivered.
    Restored,
}

impl Mark {
    fn is_done(self) -> bool {
        self != Mark::Pending
    }

    fn is_delivered(self) -> bool {
        self != Mark::Restored
    }
}

/// What the consumer should do with an entry it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Hand it out: it is now pending in the table.
    Deliver,
    /// A previous run marked it: skip it.
    Skip,
    /// The window is full: keep it until a persist makes room.
    Full,
}

/// A mark of a sequence the table does not hold (never delivered, or already compacted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnknownSequence;

/// One write of the positions, from [`Marks::begin`] to [`Marks::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Persist {
    /// The compiled positions to store.
    pub(crate) list: Vec<u64>,
    /// The last ticket this write acknowledges.
    through: u64,
    /// The list is what the table already holds: nothing needs writing.
    pub(crate) unchanged: bool,
}

/// The mark table, the persisted positions and the tickets; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Marks {
    /// Ascending by sequence.
    table: VecDeque<(u64, Mark)>,
    /// Entries of `table` that were delivered (pending or done): what the window bounds.
    delivered: usize,
    /// How many entries at the front of `table` are done: a cumulative mark only walks the
    /// ones after them.
    leading_done: usize,
    window: usize,
    skip: usize,
    /// Whether an entry was offered yet (restored positions below the first are dropped then).
    offered: bool,
    /// Everything up to here is done and gone from the table: the greatest first position
    /// persisted (or found stored). Restored positions can fall below it before they are read.
    floor: u64,
    /// The greatest sequence offered (delivered or skipped), or `floor` before any. Up to
    /// here the table has every entry of the ledger above `floor`; above it only restored
    /// positions, with unread entries between them.
    frontier: u64,
    /// What the table holds, as far as this consumer knows.
    persisted: Vec<u64>,
    /// The last ticket issued (0: none).
    issued: u64,
    /// The last ticket of the persist under way.
    in_flight: Option<u64>,
    /// Every ticket up to this one is acknowledged.
    acked: u64,
    /// Every ticket from this one on failed (a persist failed; nothing persists after it).
    failed_from: Option<u64>,
    /// Persist deferred marks now, without waiting for `skip` more (timeout, full window).
    flush_requested: bool,
}

impl Marks {
    /// The state of a consumer whose table entry is `stored` (non-empty: the consumer stores
    /// its start position before it builds this). Delivery resumes after `stored[0]`; the
    /// other positions are skipped when read.
    pub(crate) fn resume(stored: &[u64], window: usize, skip: usize) -> Self {
        let base = stored.first().copied().unwrap_or(0);
        let mut restored: Vec<u64> = stored.iter().copied().filter(|&s| s > base).collect();
        restored.sort_unstable();
        restored.dedup();
        Self {
            leading_done: restored.len(),
            table: restored.into_iter().map(|s| (s, Mark::Restored)).collect(),
            delivered: 0,
            window,
            skip,
            offered: false,
            floor: base,
            frontier: base,
            persisted: stored.to_vec(),
            issued: 0,
            in_flight: None,
            acked: 0,
            failed_from: None,
            flush_requested: false,
        }
    }

    /// Whether another entry may be delivered.
    pub(crate) fn has_room(&self) -> bool {
        self.delivered < self.window
    }

    /// Entries delivered and not yet covered by the persisted first position.
    pub(crate) fn delivered(&self) -> usize {
        self.delivered
    }

    /// The positions last persisted (or found stored).
    pub(crate) fn persisted(&self) -> &[u64] {
        &self.persisted
    }

    /// Decides about the entry `seq`, read from the ledger in ascending order.
    pub(crate) fn offer(&mut self, seq: u64) -> Offer {
        if !self.offered {
            // Restored positions below the first entry read were deleted from the ledger.
            self.offered = true;
            self.table.retain(|&(s, _)| s >= seq);
            self.leading_done = self.table.len();
        }
        // Past the last position restored, entries arrive after everything in the table.
        let at = match self.table.back() {
            Some(&(last, _)) if last >= seq => self.table.partition_point(|&(s, _)| s < seq),
            _ => self.table.len(),
        };
        if seq <= self.floor || self.table.get(at).is_some_and(|&(s, _)| s == seq) {
            self.frontier = self.frontier.max(seq);
            return Offer::Skip;
        }
        if !self.has_room() {
            return Offer::Full;
        }
        self.table.insert(at, (seq, Mark::Pending));
        self.leading_done = self.leading_done.min(at);
        self.delivered += 1;
        self.frontier = self.frontier.max(seq);
        Offer::Deliver
    }

    /// Marks `seq` done (and, if `cumulative`, every sequence below it); returns the mark's
    /// ticket.
    pub(crate) fn mark(&mut self, seq: u64, cumulative: bool) -> Result<u64, UnknownSequence> {
        debug_assert!(self.failed_from.is_none(), "a mark after a failed persist");
        let at = self.table.partition_point(|&(s, _)| s < seq);
        let Some((_, mark)) = self.table.get_mut(at).filter(|(s, _)| *s == seq) else {
            return Err(UnknownSequence);
        };
        if *mark == Mark::Pending {
            *mark = Mark::Done;
        }
        if cumulative && at > self.leading_done {
            for (_, mark) in self.table.range_mut(self.leading_done..at) {
                if *mark == Mark::Pending {
                    *mark = Mark::Done;
                }
            }
            self.leading_done = at;
        }
        while self
            .table
            .get(self.leading_done)
            .is_some_and(|&(_, mark)| mark.is_done())
        {
            self.leading_done += 1;
        }
        self.issued += 1;
        Ok(self.issued)
    }

    /// Tickets issued and not part of any persist yet.
    pub(crate) fn deferred(&self) -> u64 {
        self.issued - self.in_flight.unwrap_or(self.acked).max(self.acked)
    }

    /// Whether the deferred marks should be persisted now: more than `skip` of them, or a
    /// flush was requested.
    pub(crate) fn flush_due(&self) -> bool {
        let deferred = self.deferred();
        deferred > 0 && (deferred > self.skip as u64 || self.flush_requested)
    }

    /// Asks for the deferred marks to be persisted without waiting for more.
    pub(crate) fn request_flush(&mut self) {
        self.flush_requested = true;
    }

    /// Whether a persist failed: no more marks, no more persists.
    pub(crate) fn failed(&self) -> bool {
        self.failed_from.is_some()
    }

    /// Whether every ticket issued is resolved.
    pub(crate) fn settled(&self) -> bool {
        self.in_flight.is_none() && (self.failed() || self.acked == self.issued)
    }

    /// Starts persisting every deferred mark; `None` if there is none, a persist is under way
    /// or one failed.
    pub(crate) fn begin(&mut self) -> Option<Persist> {
        if self.in_flight.is_some() || self.failed() || self.deferred() == 0 {
            return None;
        }
        // Compile what was read; restored positions above it stay individual positions: a
        // run of done marks may not collapse over entries not read yet (quasar's markers
        // would, and a restart would then skip them unprocessed).
        let read = self.table.partition_point(|&(s, _)| s <= self.frontier);
        let mut list: Vec<u64> =
            compile(self.table.range(..read).map(|&(s, m)| (s, m.is_done()))).collect();
        if list.is_empty() {
            list.push(self.floor);
        }
        let mut above = self.table.range(read..).map(|&(s, mark)| {
            debug_assert_eq!(mark, Mark::Restored);
            s
        });
        let mut next = above.next();
        // A restored position right after "everything up to here" joins it: no entry can sit
        // between consecutive sequences.
        if list.len() == 1 {
            while let Some(s) = next.filter(|&s| Some(s) == list[0].checked_add(1)) {
                list[0] = s;
                next = above.next();
            }
        }
        list.extend(next);
        list.extend(above);
        self.in_flight = Some(self.issued);
        self.flush_requested = false;
        Some(Persist {
            unchanged: list == self.persisted,
            list,
            through: self.issued,
        })
    }

    /// Ends the persist `persist` began: on success its tickets are acknowledged and the
    /// table drops what the first position covers; on failure its tickets and every later one
    /// fail. Returns the tickets resolved.
    pub(crate) fn finish(&mut self, persist: Persist, ok: bool) -> std::ops::RangeInclusive<u64> {
        debug_assert_eq!(self.in_flight, Some(persist.through));
        self.in_flight = None;
        let first = self.acked + 1;
        if !ok {
            self.failed_from = Some(first);
            return first..=self.issued;
        }
        self.acked = persist.through;
        if let Some(&floor) = persist.list.first() {
            // Everything at or below the first position was done when the list was compiled,
            // and stays done; entries delivered since are above it.
            self.floor = self.floor.max(floor);
            while let Some(&(s, mark)) = self.table.front() {
                if s > floor {
                    break;
                }
                debug_assert!(mark.is_done());
                if mark.is_delivered() {
                    self.delivered -= 1;
                }
                self.table.pop_front();
                self.leading_done -= 1;
            }
        }
        if !persist.unchanged {
            self.persisted = persist.list;
        }
        first..=persist.through
    }

    /// Gives up on the marks not persisted yet (the persister is gone): they fail.
    pub(crate) fn abandon(&mut self) {
        self.in_flight = None;
        if self.failed_from.is_none() {
            self.failed_from = Some(self.acked + 1);
        }
    }

    /// Checks the bookkeeping against the table (for the model check).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        assert!(self
            .table
            .iter()
            .zip(self.table.iter().skip(1))
            .all(|(a, b)| a.0 < b.0));
        let leading = self.table.iter().take_while(|(_, m)| m.is_done()).count();
        assert_eq!(self.leading_done, leading, "{self:?}");
        let delivered = self.table.iter().filter(|(_, m)| m.is_delivered()).count();
        assert_eq!(self.delivered, delivered, "{self:?}");
        assert!(self.table.iter().all(|&(s, _)| s > self.floor), "{self:?}");
    }

    /// The result of ticket `ticket`: `Some(true)` acknowledged, `Some(false)` failed, `None`
    /// not yet known.
    pub(crate) fn resolution(&self, ticket: u64) -> Option<bool> {
        if ticket <= self.acked {
            Some(true)
        } else if self.failed_from.is_some_and(|from| ticket >= from) {
            Some(false)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver_all(marks: &mut Marks, seqs: impl IntoIterator<Item = u64>) -> Vec<u64> {
        seqs.into_iter()
            .filter(|&s| marks.offer(s) == Offer::Deliver)
            .collect()
    }

    fn persist(marks: &mut Marks) -> Vec<u64> {
        let p = marks.begin().expect("something to persist");
        let list = p.list.clone();
        marks.finish(p, true);
        list
    }

    #[test]
    fn stored_out_of_order_marks_are_skipped_on_resume() {
        // quasar: stored [2,4,5,7] resumes with 3 and 6.
        let mut marks = Marks::resume(&[2, 4, 5, 7], 10, 0);
        assert_eq!(deliver_all(&mut marks, 3..=8), [3, 6, 8]);
        assert_eq!(marks.delivered(), 3);
        marks.mark(3, false).unwrap();
        assert_eq!(persist(&mut marks), [5, 7]);
        marks.mark(6, false).unwrap();
        assert_eq!(persist(&mut marks), [7]);
        assert_eq!(marks.delivered(), 1);
    }

    #[test]
    fn restored_positions_compacted_before_they_are_read_are_still_skipped() {
        let mut marks = Marks::resume(&[1, 3], 10, 0);
        assert_eq!(marks.offer(2), Offer::Deliver);
        marks.mark(2, false).unwrap();
        assert_eq!(persist(&mut marks), [3]);
        assert_eq!(marks.offer(3), Offer::Skip);
        assert_eq!(marks.offer(4), Offer::Deliver);
    }

    #[test]
    fn done_runs_do_not_collapse_over_entries_not_read_yet() {
        // The window is full before 3 is read: [4] would claim 3.
        let mut marks = Marks::resume(&[0, 2, 4], 1, 0);
        assert_eq!(marks.offer(1), Offer::Deliver);
        marks.mark(1, false).unwrap();
        assert_eq!(marks.offer(2), Offer::Skip);
        assert_eq!(marks.offer(3), Offer::Full);
        assert_eq!(persist(&mut marks), [2, 4]);
        assert_eq!(marks.offer(3), Offer::Deliver);
        marks.mark(3, false).unwrap();
        assert_eq!(persist(&mut marks), [4]);
    }

    #[test]
    fn restored_positions_below_the_first_entry_are_dropped() {
        let mut marks = Marks::resume(&[50, 55], 10, 0);
        assert_eq!(deliver_all(&mut marks, 61..=62), [61, 62]);
        marks.mark(61, false).unwrap();
        assert_eq!(persist(&mut marks), [61]);
    }

    #[test]
    fn the_window_counts_delivered_entries_until_compacted() {
        let mut marks = Marks::resume(&[0], 2, 0);
        assert_eq!(deliver_all(&mut marks, 1..=3), [1, 2]);
        assert_eq!(marks.offer(3), Offer::Full);
        marks.mark(2, false).unwrap();
        assert_eq!(persist(&mut marks), [0, 2]);
        assert_eq!(marks.offer(3), Offer::Full, "1 is still pending");
        marks.mark(1, false).unwrap();
        assert_eq!(persist(&mut marks), [2]);
        assert_eq!(marks.offer(3), Offer::Deliver);
    }

    #[test]
    fn cumulative_marks_cover_everything_below() {
        let mut marks = Marks::resume(&[0], 10, 0);
        deliver_all(&mut marks, 1..=5);
        marks.mark(4, true).unwrap();
        assert_eq!(persist(&mut marks), [4]);
        assert_eq!(marks.mark(3, false), Err(UnknownSequence), "compacted");
        assert_eq!(
            marks.mark(9, false),
            Err(UnknownSequence),
            "never delivered"
        );
    }

    #[test]
    fn skip_defers_acknowledgements() {
        let mut marks = Marks::resume(&[0], 10, 2);
        deliver_all(&mut marks, 1..=4);
        let t1 = marks.mark(1, false).unwrap();
        let t2 = marks.mark(2, false).unwrap();
        assert!(!marks.flush_due());
        assert_eq!(marks.resolution(t1), None);
        let t3 = marks.mark(3, false).unwrap();
        assert!(marks.flush_due());
        let p = marks.begin().unwrap();
        assert_eq!(p.list, [3]);
        // A mark while the persist is under way belongs to the next one.
        let t4 = marks.mark(4, false).unwrap();
        assert_eq!(marks.finish(p, true), t1..=t3);
        assert_eq!(marks.resolution(t2), Some(true));
        assert_eq!(marks.resolution(t4), None);
        assert_eq!(marks.deferred(), 1);
        marks.request_flush();
        assert!(marks.flush_due());
        assert_eq!(persist(&mut marks), [4]);
        assert!(marks.settled());
    }

    #[test]
    fn a_failed_persist_fails_its_tickets_and_every_later_one() {
        let mut marks = Marks::resume(&[0], 10, 0);
        deliver_all(&mut marks, 1..=3);
        let t1 = marks.mark(1, false).unwrap();
        let p = marks.begin().unwrap();
        let t2 = marks.mark(2, false).unwrap();
        marks.finish(p, false);
        assert_eq!(marks.resolution(t1), Some(false));
        assert_eq!(marks.resolution(t2), Some(false));
        assert!(marks.begin().is_none());
        assert!(marks.settled());
        assert_eq!(marks.persisted(), [0]);
    }

    #[test]
    fn an_unchanged_list_needs_no_write() {
        let mut marks = Marks::resume(&[0], 10, 0);
        deliver_all(&mut marks, 1..=2);
        marks.mark(2, false).unwrap();
        assert_eq!(persist(&mut marks), [0, 2]);
        let again = marks.mark(2, false).unwrap();
        let p = marks.begin().unwrap();
        assert!(p.unchanged);
        marks.finish(p, true);
        assert_eq!(marks.resolution(again), Some(true));
        marks.mark(1, false).unwrap();
        assert_eq!(persist(&mut marks), [2]);
        assert_eq!(marks.mark(2, false), Err(UnknownSequence), "compacted");
    }
}
