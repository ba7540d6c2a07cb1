//! How a [`DedupeBuffer`](super::DedupeBuffer) is configured ([`Config`], [`Overflow`]), how
//! its calls fail ([`PushError`], [`RecvError`]), and what it reports about its memory
//! ([`Stats`]).

use crate::wait::Deadline;

/// What a producer does when [`Config::max_pending`] distinct keys are already queued.
///
/// Changes that replace a queued entry, and statuses, always go through: only a change that
/// needs a new entry can overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Fail with [`PushError::Full`].
    #[default]
    Reject,
    /// Wait for the consumer to make room, until the deadline (a
    /// [`Timeout`](Deadline::Timeout) counts from the start of each push), then fail with
    /// [`PushError::TimedOut`].
    Block(Deadline),
}

/// How a [`DedupeBuffer`](super::DedupeBuffer) behaves.
///
/// ```
/// use ringledger::dedupe::{Config, Overflow};
/// let config = Config::default().batch_size(500).max_pending(10_000, Overflow::Reject);
/// assert_eq!(config.batch_size, 500);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Most entries [`run_to_sink`](super::DedupeBuffer::run_to_sink) takes at once (default 100).
    pub batch_size: usize,
    /// Most distinct keys queued at once (default: unbounded).
    pub max_pending: Option<usize>,
    /// What producers do beyond `max_pending`.
    pub overflow: Overflow,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            batch_size: 100,
            max_pending: None,
            overflow: Overflow::Reject,
        }
    }
}

impl Config {
    /// Sets [`batch_size`](Self::batch_size) (at least 1).
    #[must_use]
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Bounds the queue to `max_pending` distinct keys (at least 1), with `overflow` beyond.
    #[must_use]
    pub fn max_pending(mut self, max_pending: usize, overflow: Overflow) -> Self {
        self.max_pending = Some(max_pending.max(1));
        self.overflow = overflow;
        self
    }
}

/// Why a push was not (wholly) accepted. Changes not accepted stay with the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// `max_pending` keys are queued and the policy is [`Overflow::Reject`].
    #[error("dedupe buffer is full")]
    Full,
    /// `max_pending` keys stayed queued until the [`Overflow::Block`] deadline.
    #[error("timed out waiting for room in the dedupe buffer")]
    TimedOut,
    /// The buffer was stopped.
    #[error("dedupe buffer is stopped")]
    Stopped,
}

/// Why [`next_batch`](super::DedupeBuffer::next_batch) returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing was queued before the deadline.
    #[error("timed out waiting for updates")]
    TimedOut,
    /// The buffer was stopped (and, after `stop_and_flush`, everything was delivered).
    #[error("dedupe buffer is stopped")]
    Stopped,
}

/// Counters describing the buffer's current memory use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stats {
    /// Distinct keys queued now.
    pub pending_keys: usize,
    /// The most distinct keys ever queued at once.
    pub peak_pending_keys: usize,
    /// Queue slots in use (keys, statuses and not yet compacted holes).
    pub queued_slots: usize,
    /// Queue slots allocated.
    pub slot_capacity: usize,
    /// Keys the consumer has seen and not seen deleted.
    pub live_keys: usize,
}
