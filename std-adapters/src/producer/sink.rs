//! [`BatchSink`]: where a producer's worker writes its batches; the [`Ledger`] is the real one.
//!
//! The worker only needs two things from a ledger: its head (for the
//! [`filter`](super::ProducerConfig::filter)) and an all-or-nothing write of a batch. Naming
//! them in a trait lets tests hand the worker a sink that blocks, fails or counts, and lets
//! the loom models in `loom-tests/tests/producer.rs` run the very same worker against an
//! in-memory sink.

use crate::ledger::{Durability, Entry, Ledger, LedgerError};

/// What a [`Producer`](super::Producer)'s worker writes batches to.
///
/// Implement it to put a producer in front of something other than a [`Ledger`] (or in front
/// of a ledger with extra behaviour); [`Producer::with_sink`](super::Producer::with_sink)
/// takes it. The worker calls it from its own thread only, one call at a time.
pub trait BatchSink: Send + 'static {
    /// The newest sequence the sink holds (0 if none): what the filter drops entries at or
    /// below.
    fn head(&self) -> u64;

    /// Writes `entries`, all or nothing (as [`Ledger::write`]). The worker retries a
    /// [`LedgerError::LimitReached`] as configured; any other error fails the batch.
    fn write_batch(&mut self, entries: &[Entry]) -> Result<(), LedgerError>;
}

/// A [`Ledger`] as a sink: one [`Ledger::write_with`] per batch.
pub(super) struct LedgerSink {
    pub(super) ledger: Ledger,
    /// `None`: the ledger's configured durability.
    pub(super) durability: Option<Durability>,
}

impl BatchSink for LedgerSink {
    fn head(&self) -> u64 {
        self.ledger.head()
    }

    fn write_batch(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
        match self.durability {
            Some(durability) => self.ledger.write_with(entries, durability),
            None => self.ledger.write(entries),
        }
    }
}
