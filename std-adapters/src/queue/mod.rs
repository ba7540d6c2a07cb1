//! The queue: a ledger, its positions table and a cleaner, opened together, handing out
//! producers and consumers wired to them.
//!
//! quasar's queue (`reference/quasar.md` §7). quasar kept the ledger and the table in one
//! key space under two prefixes (`<P>:l`, `<P>:t`), where one prefix could collide with the
//! other's keys (bug 5). Here they never share anything: [`Queue::open`] keeps the ledger in
//! `<dir>/ledger` and the table in `<dir>/table`, and [`Queue::open_in`] takes two separate
//! [`Storage`]s. With a [`CleanerConfig`], a [`Cleaner`] deletes what every consumer has
//! processed (and what the retention does not keep) until the queue is closed.
//!
//! The [`Producer`]s and [`Consumer`]s a queue makes hold their own handles to the ledger and
//! the table: they keep working after [`close`](Queue::close), which only stops the cleaner,
//! and are closed by their owners.
//!
//! ```
//! use std::sync::Arc;
//! use ringledger::consumer::ConsumerConfig;
//! use ringledger::ledger::{Entry, LedgerConfig};
//! use ringledger::producer::ProducerConfig;
//! use ringledger::queue::{Queue, QueueConfig};
//! use ringledger::storage::sim::SimStorage;
//! use ringledger::wait::Deadline;
//!
//! let config = QueueConfig {
//!     ledger: LedgerConfig::default().with_segment_size(64 * 1024),
//!     ..QueueConfig::default()
//! };
//! let queue = Queue::open_in(Arc::new(SimStorage::new()), Arc::new(SimStorage::new()), config).unwrap();
//! let producer = queue.producer(ProducerConfig::default()).unwrap();
//! producer.write(Entry::new(1, "job"), Deadline::Forever).unwrap().wait(Deadline::Forever).unwrap();
//!
//! let consumer = queue.consumer(ConsumerConfig::named("worker")).unwrap();
//! let job = consumer.recv(Deadline::Forever).unwrap();
//! consumer.mark(job.sequence, false).unwrap().wait(Deadline::Forever).unwrap();
//! assert_eq!(queue.table().get("worker").unwrap(), [1]);
//! ```

use std::fmt;
#[cfg(unix)]
use std::path::Path;

use crate::cleaner::{Cleaner, CleanerConfig, CleanerError};
use crate::consumer::{Consumer, ConsumerConfig, ConsumerError};
use crate::ledger::{Ledger, LedgerConfig, LedgerError};
use crate::producer::{Producer, ProducerConfig, ProducerError};
#[cfg(unix)]
use crate::storage::DirStorage;
use crate::storage::Storage;
use crate::sync::{lock, Mutex};
use crate::table::{Table, TableConfig, TableError};

/// How a [`Queue`] opens its parts.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ringledger::cleaner::CleanerConfig;
/// use ringledger::consumer::ConsumerConfig;
/// use ringledger::ledger::{Entry, LedgerConfig};
/// use ringledger::queue::{Queue, QueueConfig};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::wait::Deadline;
///
/// let config = QueueConfig {
///     ledger: LedgerConfig::default().with_segment_size(64 << 10),
///     cleaner: Some(CleanerConfig { retention: 0, threshold: 0, interval: Duration::from_millis(1) }),
///     ..QueueConfig::default()
/// };
/// let queue = Queue::open_in(Arc::new(SimStorage::new()), Arc::new(SimStorage::new()), config)?;
/// queue.ledger().write(&[Entry::new(1, "job")])?;
/// let consumer = queue.consumer(ConsumerConfig::named("worker"))?;
/// let job = consumer.recv(Deadline::Forever)?;
/// consumer.mark(job.sequence, false)?.wait(Deadline::Forever)?;
/// while !queue.ledger().is_empty() {
///     std::thread::sleep(Duration::from_millis(1)); // the cleaner deletes the processed job
/// }
/// assert_eq!(queue.ledger().tail(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueConfig {
    /// The ledger's configuration.
    pub ledger: LedgerConfig,
    /// The positions table's configuration.
    pub table: TableConfig,
    /// The cleaner's configuration; `None` runs no cleaner (nothing is ever deleted unless
    /// the caller deletes it). Default `None`.
    pub cleaner: Option<CleanerConfig>,
}

/// Why a queue did not open.
///
/// ```
/// use std::sync::Arc;
/// use ringledger::ledger::LedgerError;
/// use ringledger::queue::{Queue, QueueConfig, QueueError};
/// use ringledger::storage::sim::SimStorage;
///
/// let (ledger, table) = (Arc::new(SimStorage::new()), Arc::new(SimStorage::new()));
/// let _serving = Queue::open_in(ledger.clone(), table.clone(), QueueConfig::default())?;
/// match Queue::open_in(ledger, table, QueueConfig::default()) {
///     Err(QueueError::Ledger(LedgerError::Locked)) => {} // someone else serves this queue
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The ledger did not open.
    #[error("opening the queue's ledger")]
    Ledger(#[from] LedgerError),
    /// The positions table did not open.
    #[error("opening the queue's table")]
    Table(#[from] TableError),
    /// A directory could not be opened or created.
    #[error("opening {path}")]
    Dir {
        /// The directory.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A ledger, its positions table and its cleaner; see the [module documentation](self).
///
/// ```
/// use ringledger::queue::{Queue, QueueConfig};
///
/// let dir = tempfile::tempdir()?;
/// let queue = Queue::open(dir.path(), QueueConfig::default())?;
/// assert!(queue.ledger().is_empty());
/// assert!(dir.path().join("ledger").is_dir() && dir.path().join("table").is_dir());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue {
    ledger: Ledger,
    table: std::sync::Arc<Table>,
    cleaner: Option<Cleaner>,
    cleaner_errors: std::sync::Arc<Mutex<CleanerErrors>>,
}

/// What the cleaner reported.
#[derive(Default)]
struct CleanerErrors {
    count: u64,
    last: Option<CleanerError>,
}

impl Queue {
    /// Opens (or creates) the queue in `dir`: the ledger in `<dir>/ledger`, the table in
    /// `<dir>/table`. Starts the cleaner if configured.
    ///
    /// ```
    /// use ringledger::consumer::ConsumerConfig;
    /// use ringledger::ledger::Entry;
    /// use ringledger::producer::ProducerConfig;
    /// use ringledger::queue::{Queue, QueueConfig};
    /// use ringledger::wait::Deadline;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let queue = Queue::open(dir.path(), QueueConfig::default())?;
    /// let producer = queue.producer(ProducerConfig::default())?;
    /// producer.write(Entry::new(1, "job"), Deadline::Forever)?.wait(Deadline::Forever)?;
    /// producer.close();
    /// queue.close();
    /// drop(queue);
    ///
    /// // The queue survives a restart, with what was not marked.
    /// let queue = Queue::open(dir.path(), QueueConfig::default())?;
    /// let consumer = queue.consumer(ConsumerConfig::named("worker"))?;
    /// assert_eq!(consumer.recv(Deadline::Forever)?.payload, "job");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(unix)]
    pub fn open(dir: impl AsRef<Path>, config: QueueConfig) -> Result<Self, QueueError> {
        let dir = dir.as_ref();
        let storage = |name: &str| {
            let path = dir.join(name);
            DirStorage::new(&path)
                .map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn Storage>)
                .map_err(|source| QueueError::Dir {
                    path: path.display().to_string(),
                    source,
                })
        };
        Self::open_in(storage("ledger")?, storage("table")?, config)
    }

    /// Opens (or creates) the queue with its ledger in `ledger_storage` and its table in
    /// `table_storage` (two storages: they share no names). Starts the cleaner if configured.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::consumer::ConsumerConfig;
    /// use ringledger::queue::{Queue, QueueConfig};
    /// use ringledger::storage::sim::SimStorage;
    ///
    /// let (ledger_files, table_files) = (SimStorage::new(), SimStorage::new());
    /// let queue = Queue::open_in(
    ///     Arc::new(ledger_files.clone()),
    ///     Arc::new(table_files.clone()),
    ///     QueueConfig::default(),
    /// )?;
    /// let _consumer = queue.consumer(ConsumerConfig::named("worker"))?; // stores its start
    /// assert!(ledger_files.file_names().contains(&"ledger.meta".to_string()));
    /// assert!(!table_files.file_names().is_empty());
    /// assert_eq!(queue.table().get("worker")?, [0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_in(
        ledger_storage: std::sync::Arc<dyn Storage>,
        table_storage: std::sync::Arc<dyn Storage>,
        config: QueueConfig,
    ) -> Result<Self, QueueError> {
        let ledger = Ledger::open_in(ledger_storage, config.ledger)?;
        let table = std::sync::Arc::new(Table::open_in(table_storage, config.table)?);
        let cleaner_errors = std::sync::Arc::new(Mutex::new(CleanerErrors::default()));
        let cleaner = config.cleaner.map(|cleaner| {
            let errors = std::sync::Arc::clone(&cleaner_errors);
            Cleaner::start(
                ledger.clone(),
                vec![std::sync::Arc::clone(&table)],
                cleaner,
                move |error| {
                    let mut errors = lock(&errors);
                    errors.count += 1;
                    errors.last = Some(error);
                },
            )
        });
        Ok(Self {
            ledger,
            table,
            cleaner,
            cleaner_errors,
        })
    }

    /// A producer writing to the queue's ledger.
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer, ProducerError> {
        Producer::new(self.ledger.clone(), config)
    }

    /// A consumer of the queue's ledger, with its positions in the queue's table.
    pub fn consumer(&self, config: ConsumerConfig) -> Result<Consumer, ConsumerError> {
        Consumer::open(
            self.ledger.clone(),
            std::sync::Arc::clone(&self.table),
            config,
        )
    }

    /// The queue's ledger.
    #[must_use]
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The queue's positions table.
    #[must_use]
    pub fn table(&self) -> &std::sync::Arc<Table> {
        &self.table
    }

    /// How many cleaner runs failed so far.
    #[must_use]
    pub fn cleaner_errors(&self) -> u64 {
        lock(&self.cleaner_errors).count
    }

    /// The latest error of a cleaner run not taken yet (the cleaner keeps running after one).
    pub fn take_cleaner_error(&self) -> Option<CleanerError> {
        lock(&self.cleaner_errors).last.take()
    }

    /// Stops the cleaner (waiting for a run in progress). Idempotent; dropping the queue does
    /// the same.
    pub fn close(&self) {
        if let Some(cleaner) = &self.cleaner {
            cleaner.close();
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("ledger", &self.ledger)
            .field("table", &self.table)
            .field("cleaner", &self.cleaner)
            .finish_non_exhaustive()
    }
}
