//! The cleaner: deletes ledger entries that are old enough and that no consumer still needs.
//!
//! quasar's cleaner (`reference/quasar.md` §6). Every [`interval`](CleanerConfig::interval),
//! a [`Cleaner`] applies [`Cleaner::run_once`] to its [`Ledger`] and positions
//! [`Table`]s; the rule is:
//!
//! 1. With at most [`retention`](CleanerConfig::retention) entries in the ledger, nothing
//!    happens. Otherwise the candidate is the sequence of the newest entry *not* retained,
//!    `index(-(retention + 1))`: the newest `retention` entries stay.
//! 2. Each table's [`range`](Table::range) lowers the candidate to its minimum when that is
//!    below: no consumer loses an entry it has not processed.
//! 3. With a [`threshold`](CleanerConfig::threshold) above 0 and more than `threshold`
//!    entries, the candidate is raised to `index(-(threshold + 1))` when below it: the
//!    ledger never keeps more than `threshold` entries, slow consumers or not.
//! 4. [`Ledger::delete`] of everything up to the candidate.
//!
//! Deleting *up to and including* a table's minimum is right because of what tables hold:
//! a consumer stores its marks compiled by quasar's `CompileSequences` (§1), whose first
//! position means "everything at or below this is done" (the others are done individually
//! above it). The minimum over all consumers' first positions is therefore done by every
//! consumer, and a consumer resumes at its first position + 1. Unlike quasar, a first
//! position of 0 counts (the table's range includes it), so a consumer that has processed
//! nothing keeps the whole ledger.
//!
//! Errors of a run (the ledger's or a table's) go to the `on_error` callback given to
//! [`Cleaner::start`]; the cleaner keeps running and tries again at the next interval.
//! [`Cleaner::close`] (or dropping the cleaner) stops it at once, also in the middle of an
//! interval.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use ringledger::cleaner::{Cleaner, CleanerConfig};
//! use ringledger::ledger::{Entry, Ledger, LedgerConfig};
//! use ringledger::storage::sim::SimStorage;
//!
//! let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default()).unwrap();
//! let entries: Vec<_> = (1..=10).map(|seq| Entry::new(seq, "event")).collect();
//! ledger.write(&entries).unwrap();
//!
//! let config = CleanerConfig { retention: 5, threshold: 0, interval: Duration::from_secs(60) };
//! assert_eq!(Cleaner::run_once(&ledger, &[], &config).unwrap(), 5);
//! assert_eq!((ledger.len(), ledger.tail()), (5, 5));
//!
//! // The same rule on a thread, every interval, until closed.
//! let cleaner = Cleaner::start(ledger.clone(), Vec::new(), config, |error| eprintln!("{error}"));
//! cleaner.close();
//! ```

use std::fmt;
use std::io;
// The cleaner is a plain thread that is not model-checked: std's locks, not the `sync` shim.
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::ledger::{Ledger, LedgerError};
use crate::table::{Table, TableError};
use crate::wait::{CancelToken, Deadline, WaitError, Waiters};

/// How much a [`Cleaner`] keeps, and how often it runs.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ringledger::cleaner::{Cleaner, CleanerConfig};
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::table::{Table, TableConfig};
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// ledger.write(&(1..=10).map(|s| Entry::new(s, "e")).collect::<Vec<_>>())?;
/// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default())?);
/// table.set("slow consumer", &[0])?; // has processed nothing yet
///
/// let patient = CleanerConfig { retention: 2, threshold: 0, interval: Duration::from_secs(60) };
/// assert_eq!(Cleaner::run_once(&ledger, &[table.clone()], &patient)?, 0); // it waits
/// let capped = CleanerConfig { threshold: 6, ..patient }; // but never more than 6 entries
/// assert_eq!(Cleaner::run_once(&ledger, &[table], &capped)?, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerConfig {
    /// The newest entries always kept (unless `threshold` says otherwise).
    pub retention: u64,
    /// When above 0, the most entries kept: entries beyond it are deleted even if a table
    /// still needs them.
    pub threshold: u64,
    /// The time between runs; the first run is one interval after the start. An interval
    /// below a millisecond is taken as one millisecond.
    pub interval: Duration,
}

/// Why a cleaner run failed.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ringledger::cleaner::{Cleaner, CleanerConfig, CleanerError};
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig, LedgerError};
/// use ringledger::storage::sim::SimStorage;
///
/// let storage = Arc::new(SimStorage::new());
/// Ledger::open_in(storage.clone(), LedgerConfig::default())?.write(&[Entry::new(1, "e")])?;
/// let reader = Ledger::open_in(storage, LedgerConfig::default().with_read_only(true))?;
/// let config = CleanerConfig { retention: 0, threshold: 0, interval: Duration::from_secs(1) };
/// match Cleaner::run_once(&reader, &[], &config) {
///     Err(CleanerError::Ledger(LedgerError::ReadOnly)) => {} // a reader cannot delete
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CleanerError {
    /// Reading positions from the ledger, or deleting, failed.
    #[error("cleaning the ledger")]
    Ledger(#[from] LedgerError),
    /// Reading a table's range failed.
    #[error("reading a positions table")]
    Table(#[from] TableError),
    /// The cleaner's thread could not be started; the cleaner does not run.
    #[error("cannot start the cleaner thread")]
    Spawn(#[source] io::Error),
}

/// Deletes ledger entries every interval on a thread of its own; see the
/// [module documentation](self).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ringledger::cleaner::{Cleaner, CleanerConfig};
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// ledger.write(&(1..=10).map(|s| Entry::new(s, "e")).collect::<Vec<_>>())?;
/// let config = CleanerConfig { retention: 3, threshold: 0, interval: Duration::from_millis(5) };
/// let cleaner = Cleaner::start(ledger.clone(), Vec::new(), config, |e| eprintln!("{e}"));
/// while ledger.len() > 3 {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// cleaner.close();
/// assert_eq!(ledger.tail(), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Cleaner {
    cancel: CancelToken,
    worker: Mutex<Option<thread::JoinHandle<()>>>,
}

/// The shortest interval between runs.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

impl Cleaner {
    /// Starts cleaning `ledger` every [`interval`](CleanerConfig::interval), honouring the
    /// positions in `tables`; errors go to `on_error`, on the cleaner's thread.
    ///
    /// If the thread cannot be started, `on_error` gets [`CleanerError::Spawn`] here, on the
    /// caller's thread, and the returned cleaner does nothing. A panic in `on_error` stops
    /// the cleaner.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use ringledger::cleaner::{Cleaner, CleanerConfig, CleanerError};
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::storage::sim::SimStorage;
    ///
    /// let storage = SimStorage::new();
    /// let ledger = Ledger::open_in(Arc::new(storage.clone()), LedgerConfig::default())?;
    /// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b")])?;
    /// storage.fail_syncs(true); // deleting rewrites ledger.meta: it fails from now on
    /// let (errors, failed) = std::sync::mpsc::channel();
    /// let config = CleanerConfig { retention: 1, threshold: 0, interval: Duration::from_millis(1) };
    /// let cleaner = Cleaner::start(ledger.clone(), Vec::new(), config, move |error| {
    ///     let _ = errors.send(error); // on the cleaner's thread; it tries again next interval
    /// });
    /// assert!(matches!(failed.recv()?, CleanerError::Ledger(_)));
    /// cleaner.close();
    /// assert_eq!(ledger.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(
        ledger: Ledger,
        tables: Vec<Arc<Table>>,
        config: CleanerConfig,
        on_error: impl Fn(CleanerError) + Send + 'static,
    ) -> Cleaner {
        let cancel = CancelToken::new();
        // The callback moves to the thread through this slot, so that it is still at hand
        // for reporting a failed spawn.
        let slot = Arc::new(Mutex::new(Some(on_error)));
        let spawned = {
            let (cancel, slot) = (cancel.clone(), Arc::clone(&slot));
            thread::Builder::new()
                .name("ringledger-cleaner".into())
                .spawn(move || {
                    let on_error = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
                    drop(slot);
                    if let Some(on_error) = on_error {
                        run(&ledger, &tables, &config, &cancel, on_error);
                    }
                })
        };
        let worker = match spawned {
            Ok(handle) => Some(handle),
            Err(error) => {
                let on_error = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(on_error) = on_error {
                    on_error(CleanerError::Spawn(error));
                }
                None
            }
        };
        Cleaner {
            cancel,
            worker: Mutex::new(worker),
        }
    }

    /// One run of the cleaning rule (see the [module documentation](self)); returns how many
    /// entries were deleted.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use ringledger::cleaner::{Cleaner, CleanerConfig};
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::table::{Table, TableConfig};
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default()).unwrap();
    /// let entries: Vec<_> = (1..=20).map(|seq| Entry::new(seq, "event")).collect();
    /// ledger.write(&entries).unwrap();
    /// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default()).unwrap());
    /// table.set("billing", &[10, 12]).unwrap(); // done: everything <= 10, and 12
    ///
    /// // Retention alone would delete up to 15; the table holds the cleaner at 10; the
    /// // threshold (keep at most 15) only insists on deleting up to 5.
    /// let config = CleanerConfig { retention: 5, threshold: 15, interval: Duration::from_secs(1) };
    /// assert_eq!(Cleaner::run_once(&ledger, &[table], &config).unwrap(), 10);
    /// assert_eq!((ledger.len(), ledger.tail()), (10, 10));
    /// ```
    pub fn run_once(
        ledger: &Ledger,
        tables: &[Arc<Table>],
        config: &CleanerConfig,
    ) -> Result<usize, CleanerError> {
        if ledger.len() <= config.retention {
            return Ok(0);
        }
        let Some(mut position) = nth_newest(ledger, config.retention)? else {
            // Deleted by someone else meanwhile.
            return Ok(0);
        };
        let threshold = match config.threshold {
            0 => None,
            threshold => nth_newest(ledger, threshold)?,
        };
        for table in tables {
            if let Some((min, _)) = table.range()? {
                position = position.min(min);
            }
        }
        if let Some(threshold) = threshold {
            position = position.max(threshold);
        }
        Ok(ledger.delete(position)?)
    }

    /// Stops the cleaner: wakes it if it waits for the next interval and waits for a run in
    /// progress to end. Idempotent; dropping the cleaner does the same. Called from
    /// `on_error`, it does not wait for its own thread.
    pub fn close(&self) {
        self.cancel.cancel();
        let mut worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = worker.take() {
            if handle.thread().id() != thread::current().id() {
                // A panic in `on_error` ended the thread; nothing is left to clean up.
                let _ = handle.join();
            }
        }
    }

    /// Whether [`close`](Self::close) was called (or the cleaner was dropped).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

impl Drop for Cleaner {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Cleaner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cleaner")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// The cleaner thread: a run every interval until cancelled.
fn run(
    ledger: &Ledger,
    tables: &[Arc<Table>],
    config: &CleanerConfig,
    cancel: &CancelToken,
    on_error: impl Fn(CleanerError),
) {
    // Nobody notifies these waiters: the wait ends at the interval or when cancelled. Parking
    // ones: no spin and no `membarrier` before each wait.
    let waiters = Waiters::parking();
    let interval = config.interval.max(MIN_INTERVAL);
    loop {
        let waited = waiters.wait_until::<()>(Deadline::Timeout(interval), Some(cancel), || None);
        if waited == Err(WaitError::Cancelled) {
            return;
        }
        match Cleaner::run_once(ledger, tables, config) {
            Ok(0) => tracing::trace!("cleaner run: nothing to delete"),
            Ok(deleted) => tracing::debug!(deleted, tail = ledger.tail(), "cleaner run"),
            Err(error) => {
                tracing::warn!(error = %crate::error_chain(&error), "cleaner run failed");
                on_error(error);
            }
        }
    }
}

/// The sequence of the entry with `n` newer entries after it (`index(-(n + 1))`), if any.
fn nth_newest(ledger: &Ledger, n: u64) -> Result<Option<u64>, LedgerError> {
    let Ok(back) = i64::try_from(n.saturating_add(1)) else {
        return Ok(None);
    };
    Ok(ledger.index(-back)?.map(|entry| entry.sequence))
}
