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
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use ringledger::ledger::{Entry, LedgerError};
/// use ringledger::producer::{BatchSink, Producer, ProducerConfig};
/// use ringledger::wait::Deadline;
///
/// /// Keeps the sequences in memory; the test's view shares them.
/// #[derive(Clone, Default)]
/// struct Memory(Arc<Mutex<Vec<u64>>>);
///
/// impl BatchSink for Memory {
///     fn head(&self) -> u64 {
///         self.0.lock().unwrap().last().copied().unwrap_or(0)
///     }
///     fn write_batch(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
///         self.0.lock().unwrap().extend(entries.iter().map(|e| e.sequence));
///         Ok(())
///     }
/// }
///
/// let memory = Memory::default();
/// let config = ProducerConfig { filter: true, ..ProducerConfig::default() };
/// let producer = Producer::with_sink(memory.clone(), config)?;
/// let acks: Vec<_> = [1, 2, 2, 3] // the filter drops the repeated 2
///     .into_iter()
///     .map(|seq| producer.write(Entry::new(seq, "e"), Deadline::Forever))
///     .collect::<Result<_, _>>()?;
/// acks.iter().try_for_each(|ack| ack.wait(Deadline::Forever))?;
/// assert_eq!(*memory.0.lock().unwrap(), [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait BatchSink: Send + 'static {
    /// The newest sequence the sink holds (0 if none): what the filter drops entries at or
    /// below.
    fn head(&self) -> u64;

    /// Writes `entries`, all or nothing (as [`Ledger::write`]). The worker retries a
    /// [`LedgerError::LimitReached`] as configured; any other error fails the batch.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig, LedgerError};
    /// use ringledger::producer::BatchSink;
    /// use ringledger::storage::sim::SimStorage;
    ///
    /// /// A ledger that only takes even sequences: a sink wrapping the real one.
    /// struct EvenOnly(Ledger);
    ///
    /// impl BatchSink for EvenOnly {
    ///     fn head(&self) -> u64 {
    ///         self.0.head()
    ///     }
    ///     fn write_batch(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
    ///         let even = entries.iter().filter(|e| e.sequence % 2 == 0).cloned();
    ///         self.0.write(&even.collect::<Vec<_>>()) // still all or nothing
    ///     }
    /// }
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let mut sink = EvenOnly(ledger.clone());
    /// sink.write_batch(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
    /// assert_eq!((ledger.len(), sink.head()), (1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
