//! [`ConsumerConfig`]: how a [`Consumer`](super::Consumer) reads, delivers and persists.

use std::time::Duration;

use super::ConsumerError;

/// How a [`Consumer`](super::Consumer) reads, delivers and persists.
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
        }
    }
}

impl ConsumerConfig {
    /// The default configuration for a persistent consumer named `name`.
    #[must_use]
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::default()
        }
    }

    /// The default configuration for a temporary consumer, which persists nothing.
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
