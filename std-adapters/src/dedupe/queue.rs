//! The pending queue behind [`DedupeBuffer`](super::DedupeBuffer): FIFO order, at most one
//! entry per key, replace-in-place, and removal from the middle, all in O(1).
//!
//! Entries sit in a `VecDeque` addressed by a free-running *position* (`front` is the position
//! of `slots[0]`). A `HashTable` maps each queued key to its position; it stores only the
//! position, because the key itself is in the slot, so keys are neither cloned nor stored
//! twice. Hashes are computed by the caller (outside the buffer's lock) and passed in.
//!
//! Removing a key from the middle leaves a [`Slot::Vacant`]. Vacant slots at either end are
//! trimmed at once; when vacant slots in the middle outnumber the others the queue is
//! compacted (positions renumbered, index rebuilt), so the queue never holds more than about
//! twice as many slots as live entries: memory stays bounded by the number of distinct
//! pending keys however keys churn.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

/// One queue entry.
pub(super) enum Slot<K, V, S> {
    Upsert(K, V),
    Delete(K),
    Status(S),
    /// A key entry removed from the middle of the queue.
    Vacant,
}

impl<K, V, S> Slot<K, V, S> {
    fn key(&self) -> Option<&K> {
        match self {
            Slot::Upsert(k, _) | Slot::Delete(k) => Some(k),
            Slot::Status(_) | Slot::Vacant => None,
        }
    }
}

/// What applying a change did to the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Applied {
    /// The key's queued entry now holds the change, at its old position.
    Replaced,
    /// The change was appended: one more pending key.
    Appended,
    /// The key was queued but never seen by the consumer, and is now deleted: the entry is gone.
    Removed,
    /// A delete of a key that is neither queued nor live: nothing to tell the consumer.
    Dropped,
}

/// Below this many vacant slots the queue is never compacted.
const MIN_VACANT_TO_COMPACT: usize = 32;
/// Capacities below this are never shrunk.
const MIN_CAPACITY_TO_SHRINK: usize = 64;

pub(super) struct PendingQueue<K, V, S> {
    slots: VecDeque<Slot<K, V, S>>,
    front: u64,
    index: HashTable<u64>,
    vacant: usize,
    statuses: usize,
}

impl<K: Hash + Eq, V, S> PendingQueue<K, V, S> {
    pub(super) fn new() -> Self {
        PendingQueue {
            slots: VecDeque::new(),
            front: 0,
            index: HashTable::new(),
            vacant: 0,
            statuses: 0,
        }
    }

    /// Distinct keys queued.
    pub(super) fn pending_keys(&self) -> usize {
        self.index.len()
    }

    /// Slots in use, vacant ones included.
    pub(super) fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Slots allocated.
    pub(super) fn slot_capacity(&self) -> usize {
        self.slots.capacity()
    }

    pub(super) fn is_empty(&self) -> bool {
        // Both ends are never vacant, so any slot means a real entry.
        self.slots.is_empty()
    }

    /// Whether the last entry is a status.
    fn ends_with_status(&self) -> bool {
        matches!(self.slots.back(), Some(Slot::Status(_)))
    }

    fn position_of(&self, hash: u64, key: &K) -> Option<u64> {
        let (slots, front) = (&self.slots, self.front);
        self.index
            .find(hash, |&pos| {
                slots[(pos - front) as usize].key() == Some(key)
            })
            .copied()
    }

    /// Applies an upsert. `room` says whether a new entry may be appended; when it may not and
    /// the key is not queued, the change is handed back.
    pub(super) fn upsert(
        &mut self,
        hasher: &impl BuildHasher,
        hash: u64,
        key: K,
        value: V,
        room: bool,
    ) -> Result<Applied, (K, V)> {
        if let Some(pos) = self.position_of(hash, &key) {
            let slot = &mut self.slots[(pos - self.front) as usize];
            match slot {
                Slot::Upsert(_, queued) => *queued = value,
                _ => *slot = Slot::Upsert(key, value),
            }
            return Ok(Applied::Replaced);
        }
        if !room {
            return Err((key, value));
        }
        self.append(hasher, hash, Slot::Upsert(key, value));
        Ok(Applied::Appended)
    }

    /// Applies a delete; `live` says whether the consumer has seen the key.
    pub(super) fn delete(
        &mut self,
        hasher: &impl BuildHasher,
        hash: u64,
        key: K,
        live: bool,
        room: bool,
    ) -> Result<Applied, K> {
        if let Some(pos) = self.position_of(hash, &key) {
            let at = (pos - self.front) as usize;
            if live {
                self.slots[at] = Slot::Delete(key);
                return Ok(Applied::Replaced);
            }
            // Created and deleted before the consumer saw it: forget it entirely.
            self.slots[at] = Slot::Vacant;
            self.vacant += 1;
            self.remove_from_index(hash, pos);
            // The vacated slot may be at either end (the oldest entry, say).
            self.trim_front();
            self.trim_back();
            self.compact_if_sparse(hasher);
            return Ok(Applied::Removed);
        }
        if !live {
            return Ok(Applied::Dropped);
        }
        if !room {
            return Err(key);
        }
        self.append(hasher, hash, Slot::Delete(key));
        Ok(Applied::Appended)
    }

    /// Queues a status: overwrites a status at the back, else appends. Returns whether the
    /// queue grew.
    pub(super) fn push_status(&mut self, status: S) -> bool {
        if self.ends_with_status() {
            if let Some(back) = self.slots.back_mut() {
                *back = Slot::Status(status);
            }
            return false;
        }
        self.slots.push_back(Slot::Status(status));
        self.statuses += 1;
        true
    }

    /// Takes the oldest entry (never a vacant one), with its key's hash (0 for a status), so
    /// the caller need not hash the key again.
    pub(super) fn pop_front(&mut self, hasher: &impl BuildHasher) -> Option<(Slot<K, V, S>, u64)> {
        // Both ends are kept free of vacant slots; skipping any here keeps that a matter of
        // memory, never of correctness.
        self.trim_front();
        let slot = self.slots.pop_front()?;
        let pos = self.front;
        self.front += 1;
        let mut hash = 0;
        match &slot {
            Slot::Upsert(k, _) | Slot::Delete(k) => {
                hash = hasher.hash_one(k);
                self.remove_from_index(hash, pos);
            }
            Slot::Status(_) => self.statuses -= 1,
            Slot::Vacant => {}
        }
        self.trim_front();
        Some((slot, hash))
    }

    /// Drops everything queued (positions keep running).
    pub(super) fn clear(&mut self) {
        self.front += self.slots.len() as u64;
        self.slots.clear();
        self.index.clear();
        self.vacant = 0;
        self.statuses = 0;
    }

    /// Gives memory back once a burst has drained: capacity is cut to twice the contents when
    /// it is more than four times them.
    pub(super) fn shrink_if_oversized(&mut self, hasher: &impl BuildHasher) {
        let len = self.slots.len();
        if self.slots.capacity() > MIN_CAPACITY_TO_SHRINK && self.slots.capacity() / 4 > len {
            self.slots.shrink_to(len * 2);
        }
        let keys = self.index.len();
        if self.index.capacity() > MIN_CAPACITY_TO_SHRINK && self.index.capacity() / 4 > keys {
            let (slots, front) = (&self.slots, self.front);
            self.index
                .shrink_to(keys * 2, |&pos| hash_at(hasher, slots, front, pos));
        }
    }

    fn append(&mut self, hasher: &impl BuildHasher, hash: u64, slot: Slot<K, V, S>) {
        let pos = self.front + self.slots.len() as u64;
        self.slots.push_back(slot);
        let (slots, front) = (&self.slots, self.front);
        self.index
            .insert_unique(hash, pos, |&p| hash_at(hasher, slots, front, p));
    }

    fn remove_from_index(&mut self, hash: u64, pos: u64) {
        if let Ok(entry) = self.index.find_entry(hash, |&p| p == pos) {
            entry.remove();
        }
    }

    fn trim_front(&mut self) {
        while let Some(Slot::Vacant) = self.slots.front() {
            self.slots.pop_front();
            self.front += 1;
            self.vacant -= 1;
        }
    }

    fn trim_back(&mut self) {
        while let Some(Slot::Vacant) = self.slots.back() {
            self.slots.pop_back();
            self.vacant -= 1;
        }
    }

    /// Removes vacant slots once they are the majority, renumbering positions from `front`.
    fn compact_if_sparse(&mut self, hasher: &impl BuildHasher) {
        if self.vacant < MIN_VACANT_TO_COMPACT || self.vacant * 2 <= self.slots.len() {
            return;
        }
        self.slots.retain(|slot| !matches!(slot, Slot::Vacant));
        self.vacant = 0;
        self.index.clear();
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some(key) = slot.key() {
                let pos = self.front + i as u64;
                let hash = hasher.hash_one(key);
                // The table was just cleared, so it only ever holds positions of keyed slots
                // below `i`; rehashing reads them from `slots`.
                let slots = &self.slots;
                let front = self.front;
                self.index
                    .insert_unique(hash, pos, |&p| hash_at(hasher, slots, front, p));
            }
        }
    }
}

/// The hash of the key at `pos` (which must be a keyed slot: the index holds no other).
fn hash_at<K: Hash, V, S>(
    hasher: &impl BuildHasher,
    slots: &VecDeque<Slot<K, V, S>>,
    front: u64,
    pos: u64,
) -> u64 {
    match slots[(pos - front) as usize].key() {
        Some(key) => hasher.hash_one(key),
        None => 0,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;

    type Q = PendingQueue<u32, &'static str, char>;

    fn drain(q: &mut Q, h: &RandomState) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((slot, _)) = q.pop_front(h) {
            out.push(match slot {
                Slot::Upsert(k, v) => format!("{k}={v}"),
                Slot::Delete(k) => format!("{k}-"),
                Slot::Status(s) => format!("{s}"),
                Slot::Vacant => unreachable!(),
            });
        }
        out
    }

    #[test]
    fn replace_keeps_position_and_remove_leaves_no_trace() {
        let h = RandomState::new();
        let mut q = Q::new();
        for (k, v) in [(1, "a"), (2, "b"), (3, "c")] {
            q.upsert(&h, h.hash_one(k), k, v, true).unwrap();
        }
        assert_eq!(
            q.upsert(&h, h.hash_one(1), 1, "a2", true),
            Ok(Applied::Replaced)
        );
        assert_eq!(
            q.delete(&h, h.hash_one(2), 2, false, true),
            Ok(Applied::Removed)
        );
        assert_eq!(
            q.delete(&h, h.hash_one(3), 3, true, true),
            Ok(Applied::Replaced)
        );
        assert_eq!(
            q.delete(&h, h.hash_one(9), 9, false, true),
            Ok(Applied::Dropped)
        );
        assert_eq!(q.pending_keys(), 2);
        assert_eq!(drain(&mut q, &h), ["1=a2", "3-"]);
        assert!(q.is_empty());
    }

    /// The audit's case: the oldest entry is deleted unseen with entries behind it.
    #[test]
    fn removing_the_oldest_entry_leaves_the_rest_in_order() {
        let h = RandomState::new();
        let mut q = Q::new();
        q.upsert(&h, h.hash_one(1), 1, "a", true).unwrap();
        q.upsert(&h, h.hash_one(2), 2, "x", true).unwrap();
        q.delete(&h, h.hash_one(1), 1, false, true).unwrap();
        assert_eq!(drain(&mut q, &h), ["2=x"]);
        // With a status behind it, and several removed from the front in a row.
        for k in 1..=3 {
            q.upsert(&h, h.hash_one(k), k, "v", true).unwrap();
        }
        q.push_status('s');
        for k in [2, 1, 3] {
            q.delete(&h, h.hash_one(k), k, false, true).unwrap();
        }
        assert_eq!(drain(&mut q, &h), ["s"]);
        assert!(q.is_empty());
        assert_eq!(q.vacant, 0);
    }

    #[test]
    fn no_room_hands_the_change_back_unless_it_replaces() {
        let h = RandomState::new();
        let mut q = Q::new();
        q.upsert(&h, h.hash_one(1), 1, "a", true).unwrap();
        assert_eq!(q.upsert(&h, h.hash_one(2), 2, "b", false), Err((2, "b")));
        assert_eq!(
            q.upsert(&h, h.hash_one(1), 1, "c", false),
            Ok(Applied::Replaced)
        );
        assert_eq!(q.delete(&h, h.hash_one(3), 3, true, false), Err(3));
    }

    #[test]
    fn statuses_collapse_at_the_back_only() {
        let h = RandomState::new();
        let mut q = Q::new();
        assert!(q.push_status('a'));
        assert!(!q.push_status('b'));
        q.upsert(&h, h.hash_one(1), 1, "x", true).unwrap();
        assert!(q.push_status('c'));
        // A vacated key entry at the back is trimmed, so the next status overwrites 'c'.
        q.upsert(&h, h.hash_one(2), 2, "y", true).unwrap();
        q.delete(&h, h.hash_one(2), 2, false, true).unwrap();
        assert!(!q.push_status('d'));
        assert_eq!(drain(&mut q, &h), ["b", "1=x", "d"]);
    }

    #[test]
    fn churn_in_the_middle_stays_bounded() {
        let h = RandomState::new();
        let mut q = Q::new();
        q.upsert(&h, h.hash_one(0), 0, "head", true).unwrap();
        for round in 0..if cfg!(miri) { 500 } else { 10_000u32 } {
            let k = 1 + round % 7;
            q.upsert(&h, h.hash_one(k), k, "v", true).unwrap();
            q.upsert(&h, h.hash_one(1000), 1000, "tail", true).unwrap();
            q.delete(&h, h.hash_one(k), k, false, true).unwrap();
            assert!(q.slots() <= 2 * q.pending_keys() + MIN_VACANT_TO_COMPACT + 2);
        }
        assert_eq!(drain(&mut q, &h), ["0=head", "1000=tail"]);
    }

    #[test]
    fn memory_is_given_back_after_a_burst() {
        let h = RandomState::new();
        let mut q = Q::new();
        for k in 0..if cfg!(miri) { 1_000 } else { 10_000 } {
            q.upsert(&h, h.hash_one(k), k, "v", true).unwrap();
        }
        let big = q.slot_capacity();
        while q.slots() > 10 {
            q.pop_front(&h);
        }
        q.shrink_if_oversized(&h);
        assert!(q.slot_capacity() <= 64, "{} of {big}", q.slot_capacity());
        assert!(q.index.capacity() < 100);
        assert_eq!(drain(&mut q, &h).len(), 10);
    }
}
