//! [`ConsumerConfig`]: how a [`Consumer`](super::Consumer) reads, delivers and persists.

use std::time::Duration;

use super::ConsumerError;

/// How a [`Consumer`](super::Consumer) reads, delivers and persists.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ringledger::consumer::{Consumer, ConsumerConfig, ConsumerError};
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::table::{Table, TableConfig};
/// use ringledger::wait::Deadline;
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default())?);
/// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
/// let config = ConsumerConfig::named("billing")
///     .with_start(2) // a new consumer skips what came before 2
///     .with_batch(64)
///     .with_window(256)
///     .with_skip(16, Duration::from_millis(50)); // persist every 17th mark, or after 50 ms
/// let consumer = Consumer::open(ledger.clone(), table.clone(), config)?;
/// assert_eq!(consumer.recv(Deadline::Forever)?.sequence, 2);
/// let invalid = ConsumerConfig::named("x").with_window(8).with_skip(8, Duration::ZERO);
/// assert!(matches!(Consumer::open(ledger, table, invalid), Err(ConsumerError::Config(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The name the consumer's positions are stored under; `None` for a temporary consumer
    /// that persists nothing (its marks are acknowledged at once). One consumer per name at a
    /// time. Default `None`.
    pub name: Option<String>,
    /// The first sequence to deliver (inclusive) when the table has no positions for the
    /// name; see [where a consumer starts](super#where-a-consumer-starts). Default 0 (from the oldest entry).
    pub start: u64,
    /// Entries read from the ledger at once (> 0). Default 256.
    pub batch: usize,
    /// The most delivered entries not yet covered by the persisted first position (> 0).
    /// Default 1024.
    pub window: usize,
    /// Marks whose persisting may be deferred (< `window`); 0 persists every mark (marks made
    /// during a table write still share the next one). Default 0.
    pub skip: usize,
    /// How long deferred marks may wait before they are persisted anyway; zero for no time
    /// limit (they wait for more marks, a full window or close). Default zero.
    pub timeout: Duration,
    /// How long `recv` may wait on a full window without any mark before the consumer stops
    /// with [`ConsumerError::Deadlock`]; `None` waits as long as `recv`'s own deadline.
    /// Default `None`.
    pub deadline: Option<Duration>,
    /// Whether the committer (the thread that persists marks) waits for a core instead of
    /// preempting the thread running where it wakes. `true` asks Linux for `SCHED_BATCH` for
    /// that thread: its share of the CPU and its nice value stay as they were, but a wake-up
    /// no longer takes the core of the consumer that just marked, one context switch less per
    /// persisted mark (the queue benchmark: 0.90-0.92 M context switches a run instead of
    /// 1.20-1.44 M). The price is the ack's latency when every core is busy: a persist then
    /// waits for a core to free up, for the running thread to block or for its time slice to
    /// end (`cargo run --release -p ringledger-benches --example ack_wait` next to two CPU hogs
    /// on two cores, four runs each: 34-78 µs a round on average and up to 54 ms, against
    /// 4.9-6.4 µs and at most 2.6-6.3 ms with `false`). For pipelines that want throughput
    /// and do not wait on each ack. Ignored off Linux and for a temporary consumer.
    /// Default `false`.
    pub relaxed_acks: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            name: None,
            start: 0,
            batch: 256,
            window: 1024,
            skip: 0,
            timeout: Duration::ZERO,
            deadline: None,
            relaxed_acks: false,
        }
    }
}

impl ConsumerConfig {
    /// The default configuration for a persistent consumer named `name`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::consumer::{Consumer, ConsumerConfig};
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::table::{Table, TableConfig};
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default())?);
    /// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
    /// let consumer = Consumer::open(ledger, table.clone(), ConsumerConfig::named("audit"))?;
    /// assert_eq!(consumer.name(), Some("audit"));
    /// // Before delivering anything it stored where it starts: everything up to 0 is done.
    /// assert_eq!(table.get("audit")?, [0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::default()
        }
    }

    /// The default configuration for a temporary consumer, which persists nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::consumer::{Consumer, ConsumerConfig};
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::table::{Table, TableConfig};
    /// use ringledger::wait::Deadline;
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default())?);
    /// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
    /// let consumer = Consumer::open(ledger, table.clone(), ConsumerConfig::temporary())?;
    /// let entry = consumer.recv(Deadline::Forever)?;
    /// assert!(consumer.mark(entry.sequence, false)?.is_done()); // acknowledged at once
    /// assert!(table.all()?.is_empty()); // and nothing stored
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn temporary() -> Self {
        Self::default()
    }

    /// The configuration with this start sequence.
    #[must_use]
    pub fn with_start(mut self, start: u64) -> Self {
        self.start = start;
        self
    }

    /// The configuration with this batch size.
    #[must_use]
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// The configuration with this window.
    #[must_use]
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window;
        self
    }

    /// The configuration deferring up to `skip` marks, for at most `timeout` (zero: no limit).
    #[must_use]
    pub fn with_skip(mut self, skip: usize, timeout: Duration) -> Self {
        self.skip = skip;
        self.timeout = timeout;
        self
    }

    /// The configuration with this deadlock deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The configuration whose committer waits for a core instead of preempting (see
    /// [`relaxed_acks`](Self::relaxed_acks)).
    #[must_use]
    pub fn with_relaxed_acks(mut self, relaxed: bool) -> Self {
        self.relaxed_acks = relaxed;
        self
    }

    pub(super) fn validate(&self) -> Result<(), ConsumerError> {
        let invalid = |reason: &str| Err(ConsumerError::Config(reason.to_owned()));
        if self.name.as_deref() == Some("") {
            return invalid("a consumer name must not be empty (use None for a temporary one)");
        }
        if self.batch == 0 {
            return invalid("batch must be at least 1");
        }
        if self.window == 0 {
            return invalid("window must be at least 1");
        }
        if self.skip >= self.window {
            return invalid("skip must be less than window");
        }
        Ok(())
    }
}
