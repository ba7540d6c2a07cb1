//! How a [`DedupeBuffer`](super::DedupeBuffer) is configured ([`Config`], [`Overflow`]), how
//! its calls fail ([`PushError`], [`RecvError`]), and what it reports about its memory
//! ([`Stats`]).

use crate::wait::Deadline;

/// What a producer does when [`Config::max_pending`] distinct keys are already queued.
///
/// Changes that replace a queued entry, and statuses, always go through: only a change that
/// needs a new entry can overflow.
///
/// ```
/// use std::time::Duration;
/// use ringledger::dedupe::{Change, Config, DedupeBuffer, Overflow, PushError, Status};
/// use ringledger::wait::Deadline;
///
/// let config = Config::default().max_pending(1, Overflow::Reject);
/// let reject = DedupeBuffer::<u32, u32, Status>::with_config(config);
/// reject.push(Change::Upsert(1, 10))?;
/// reject.push(Change::Upsert(1, 11))?; // replaces the queued value: no overflow
/// assert_eq!(reject.push(Change::Upsert(2, 20)), Err(PushError::Full));
///
/// let patience = Overflow::Block(Deadline::Timeout(Duration::from_millis(5)));
/// let block = DedupeBuffer::<u32, u32, Status>::with_config(config.max_pending(1, patience));
/// block.push(Change::Upsert(1, 10))?;
/// assert_eq!(block.push(Change::Upsert(2, 20)), Err(PushError::TimedOut)); // nobody consumed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use ringledger::dedupe::{Change, Config, DedupeBuffer, Overflow, PushError, Status};
///
/// let config = Config::default().max_pending(1, Overflow::Reject);
/// let buffer = DedupeBuffer::<&str, u32, Status>::with_config(config);
/// buffer.push(Change::Upsert("a", 1))?;
/// let mut later = Vec::new();
/// match buffer.push(Change::Upsert("b", 2)) {
///     Ok(()) => {}
///     Err(PushError::Full) => later.push(("b", 2)), // push again once the consumer caught up
///     Err(other) => panic!("{other}"),
/// }
/// assert_eq!(later, [("b", 2)]);
/// buffer.stop();
/// assert_eq!(buffer.push(Change::Upsert("c", 3)), Err(PushError::Stopped));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use std::time::Duration;
/// use ringledger::dedupe::{Change, DedupeBuffer, RecvError, Status};
/// use ringledger::wait::Deadline;
///
/// let buffer = DedupeBuffer::<u32, u32, Status>::new();
/// buffer.push(Change::Upsert(1, 1))?;
/// buffer.stop_and_flush(); // no more pushes; what is queued is still delivered
/// let mut delivered = 0;
/// loop {
///     match buffer.next_batch(10, Deadline::Timeout(Duration::from_millis(5))) {
///         Ok(batch) => delivered += batch.len(),
///         Err(RecvError::TimedOut) => continue, // idle: wait again
///         Err(RecvError::Stopped) => break,
///         Err(other) => panic!("{other}"),
///     }
/// }
/// assert_eq!(delivered, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// use ringledger::dedupe::{Change, DedupeBuffer, Status};
/// use ringledger::wait::Deadline;
///
/// let buffer = DedupeBuffer::<u32, u32, Status>::new();
/// let mut changes: Vec<_> = (0..100).map(|i| Change::Upsert(i % 10, i)).collect();
/// buffer.push_updates(&mut changes)?;
/// let stats = buffer.stats();
/// assert_eq!((stats.pending_keys, stats.live_keys), (10, 0)); // 100 changes, 10 keys
/// buffer.next_batch(100, Deadline::IMMEDIATE)?;
/// let stats = buffer.stats();
/// assert_eq!((stats.pending_keys, stats.peak_pending_keys, stats.live_keys), (0, 10, 10));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
