//! A plain reference implementation of the dedupe rules, and a checker that runs the same
//! operations on it and on a [`DedupeBuffer`]: the model test (proptest) and the `dedupe_ops`
//! fuzz target both drive [`check`]. Not part of the API.
//!
//! The model is the rules of the [module documentation](super) written the slow, obvious
//! way: a `Vec` of queued entries searched linearly, a set of live keys.

use std::collections::BTreeSet;

use super::{Change, DedupeBuffer, Event, RecvError, Status, SyncStatus, Update};
use crate::wait::Deadline;

/// One operation, decoded from bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `push(Change::Upsert(key, value))`.
    Upsert(u8, u8),
    /// `push(Change::Delete(key))`.
    Delete(u8),
    /// `push_status`.
    Status(Status),
    /// `restart_snapshot`.
    Restart,
    /// `next_batch(max)`, not waiting.
    NextBatch(usize),
}

/// Decodes operations from bytes, two per operation, over a few keys (so that keys collide).
pub fn decode(bytes: &[u8]) -> Vec<Op> {
    bytes
        .chunks_exact(2)
        .map(|pair| {
            let (op, arg) = (pair[0], pair[1]);
            let key = arg % 8;
            match op % 16 {
                0..=5 => Op::Upsert(key, arg / 8),
                6..=8 => Op::Delete(key),
                9 => Op::Status(Status::WaitForDatastore),
                10 => Op::Status(Status::ResyncInProgress),
                11 => Op::Status(Status::InSync),
                12 => Op::Restart,
                _ => Op::NextBatch(1 + arg as usize % 6),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queued {
    Upsert(u8, u8),
    Delete(u8),
    Status(Status),
}

impl Queued {
    fn key(&self) -> Option<u8> {
        match *self {
            Queued::Upsert(k, _) | Queued::Delete(k) => Some(k),
            Queued::Status(_) => None,
        }
    }
}

/// The reference: the rules, applied literally.
#[derive(Debug, Default)]
struct Model {
    /// The queue; an entry a resync synthesized carries the resync's number (its place among
    /// the others of that resync is the buffer's choice; replacing it keeps the place).
    queue: Vec<(Queued, Option<u32>)>,
    resyncs: u32,
    live: BTreeSet<u8>,
    unseen: Option<BTreeSet<u8>>,
    last_status: Option<Status>,
}

impl Model {
    fn position(&self, key: u8) -> Option<usize> {
        self.queue.iter().position(|(q, _)| q.key() == Some(key))
    }

    fn upsert(&mut self, key: u8, value: u8) {
        if let Some(unseen) = &mut self.unseen {
            unseen.remove(&key);
        }
        match self.position(key) {
            Some(at) => self.queue[at].0 = Queued::Upsert(key, value),
            None => self.queue.push((Queued::Upsert(key, value), None)),
        }
    }

    fn delete(&mut self, key: u8) {
        if let Some(unseen) = &mut self.unseen {
            unseen.remove(&key);
        }
        let live = self.live.contains(&key);
        match (self.position(key), live) {
            (Some(at), true) => self.queue[at].0 = Queued::Delete(key),
            (Some(at), false) => {
                self.queue.remove(at);
            }
            (None, true) => self.queue.push((Queued::Delete(key), None)),
            (None, false) => {}
        }
    }

    /// Returns how many deletes it synthesized.
    fn status(&mut self, status: Status) -> usize {
        let mut synthesized = 0;
        if self.last_status == Some(status) {
            return 0;
        }
        self.last_status = Some(status);
        if status.is_in_sync() {
            if let Some(unseen) = self.unseen.take() {
                self.resyncs += 1;
                for key in unseen {
                    // Never queued: pushing a key takes it out of `unseen`.
                    if self.live.contains(&key) {
                        self.queue.push((Queued::Delete(key), Some(self.resyncs)));
                        synthesized += 1;
                    }
                }
            }
        }
        match self.queue.last_mut() {
            Some((Queued::Status(last), _)) => *last = status,
            _ => self.queue.push((Queued::Status(status), None)),
        }
        synthesized
    }

    fn restart(&mut self) {
        self.queue.clear();
        self.last_status = None;
        self.unseen = Some(self.live.clone());
    }

    /// Up to `max` events, each with the resync that synthesized its entry, if one did.
    fn next_batch(&mut self, max: usize) -> Vec<(Event<u8, u8, Status>, Option<u32>)> {
        let mut out = Vec::new();
        while out.len() < max && !self.queue.is_empty() {
            let (queued, resync) = self.queue.remove(0);
            let event = match queued {
                Queued::Upsert(k, v) if self.live.insert(k) => Event::Update(Update::New(k, v)),
                Queued::Upsert(k, v) => Event::Update(Update::Updated(k, v)),
                Queued::Delete(k) if self.live.remove(&k) => Event::Update(Update::Deleted(k)),
                Queued::Delete(_) => continue,
                Queued::Status(s) => Event::Status(s),
            };
            out.push((event, resync));
        }
        out
    }
}

/// Sorts, in both streams, the events of each resync's synthesized entries (a contiguous run
/// in the model's stream): the buffer emits them in the order of a hash table, which the rules
/// leave open.
fn normalize(
    got: &mut [Event<u8, u8, Status>],
    want: &mut [Event<u8, u8, Status>],
    resyncs: &[Option<u32>],
) {
    let key = |e: &Event<u8, u8, Status>| match e {
        Event::Update(update) => *update.key(),
        Event::Status(_) => u8::MAX,
    };
    let mut start = 0;
    while start < resyncs.len() {
        let mut end = start + 1;
        while end < resyncs.len() && resyncs[start].is_some() && resyncs[end] == resyncs[start] {
            end += 1;
        }
        if resyncs[start].is_some() && end <= got.len() {
            got[start..end].sort_by_key(key);
            want[start..end].sort_by_key(key);
        }
        start = end;
    }
}

/// Takes everything queued from both, onto the streams.
fn drain(
    buffer: &DedupeBuffer<u8, u8, Status>,
    model: &mut Model,
    got: &mut Vec<Event<u8, u8, Status>>,
    want: &mut Vec<Event<u8, u8, Status>>,
    resyncs: &mut Vec<Option<u32>>,
) {
    loop {
        let batch = buffer
            .next_batch(usize::MAX, Deadline::IMMEDIATE)
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        got.extend(batch);
    }
    for (event, resync) in model.next_batch(usize::MAX) {
        want.push(event);
        resyncs.push(resync);
    }
}

/// Runs `ops` on a fresh buffer and on the model; panics where they disagree: what every
/// `next_batch` returns (as one stream), and, at the end, what is left after draining both.
pub fn check(ops: &[Op]) {
    let buffer = DedupeBuffer::<u8, u8, Status>::new();
    let mut model = Model::default();
    let (mut got, mut want, mut resyncs) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &op) in ops.iter().enumerate() {
        match op {
            Op::Upsert(k, v) => {
                buffer.push(Change::Upsert(k, v)).expect("push");
                model.upsert(k, v);
            }
            Op::Delete(k) => {
                buffer.push(Change::Delete(k)).expect("push");
                model.delete(k);
            }
            Op::Status(s) => {
                buffer.push_status(s).expect("push_status");
                // The order of a resync's deletes is the buffer's choice, and once later
                // changes replace some of them or batches split them, which were delivered
                // depends on it: compare what is queued now, whole, before going on.
                if model.status(s) > 1 {
                    drain(&buffer, &mut model, &mut got, &mut want, &mut resyncs);
                }
            }
            Op::Restart => {
                buffer.restart_snapshot();
                model.restart();
            }
            Op::NextBatch(max) => {
                let batch = match buffer.next_batch(max, Deadline::IMMEDIATE) {
                    Ok(batch) => batch,
                    Err(RecvError::TimedOut) => Vec::new(),
                    Err(e) => panic!("op {i} {op:?}: next_batch: {e:?}"),
                };
                let expected = model.next_batch(max);
                assert_eq!(
                    batch.len(),
                    expected.len(),
                    "op {i} {op:?}: batch {batch:?}, model {expected:?}"
                );
                got.extend(batch);
                for (event, resync) in expected {
                    want.push(event);
                    resyncs.push(resync);
                }
            }
        }
    }
    drain(&buffer, &mut model, &mut got, &mut want, &mut resyncs);
    normalize(&mut got, &mut want, &resyncs);
    assert_eq!(got, want, "ops {ops:?}");
}
