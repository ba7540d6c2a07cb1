//! The producer: batches entries from many writers into few ledger writes.
//!
//! quasar's producer (`reference/quasar.md` §4). Writers hand single entries to
//! [`Producer::write`], which queues them (waiting while the queue is full: backpressure) and
//! returns an [`Ack`] at once. A worker thread collects up to
//! [`batch`](ProducerConfig::batch) entries, or what arrived within
//! [`timeout`](ProducerConfig::timeout) of the first one, and writes them with **one**
//! [`Ledger::write_with`] call: one sync per batch when the writes are
//! [`Synced`](crate::ledger::Durability::Synced), however many writers there are. Every
//! entry's [`Ack`] gets the batch's result.
//!
//! - **Filter** ([`ProducerConfig::filter`]): entries whose sequence is not above the ledger's
//!   head are dropped and acknowledged `Ok` (they are already there, say after a restart that
//!   replays a source). Within a batch, an entry not above the one kept before it is dropped
//!   too, so the outcome is the same whatever the batching (quasar's test writes 1..10 and
//!   then 1..20: the ledger ends with 20 entries and every ack is `Ok`). The filter is for
//!   replays of a source whose sequences only grow: an entry that arrives after a later one
//!   (3 after 5) is dropped too, and never written. Writers that share a producer and take
//!   their sequences from one counter must queue them in that order (take and write under
//!   one lock).
//! - **Retry**: a batch refused with [`LedgerError::LimitReached`] is tried again up to
//!   [`retry`](ProducerConfig::retry) times, [`delay`](ProducerConfig::delay) apart (a
//!   [cleaner](crate::cleaner) may make room meanwhile); then its acks get the error.
//! - **Errors are per batch**: the ledger writes a batch all or nothing, so any other error,
//!   such as [`LedgerError::NotMonotonic`] for one out-of-order entry, fails every entry of
//!   the batch with that same error ([`ProducerError::Ledger`], shared by all its acks).
//!   Entries of other batches are not affected.
//! - **Close** ([`Producer::close`], or dropping the producer): writes fail with
//!   [`ProducerError::Closed`] from then on; the batch being built and everything queued get
//!   `Closed`, as does a batch waiting for its retry delay; a batch already handed to the
//!   ledger gets the ledger's result. When `close` returns, every ack has its result.
//!
//! A [`Producer`] is `Send + Sync`: share it with an `Arc` among writer
//! threads (it is not `Clone`, so there is one obvious owner whose drop closes it).
//!
//! The worker writes to a [`BatchSink`]; [`Producer::new`] uses the [`Ledger`] itself, and
//! [`Producer::with_sink`] takes any other. The worker uses the crate's `sync` shim, so the
//! loom models in `loom-tests/tests/producer.rs` check the batching and close protocol of
//! this very code.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use ringledger::ledger::{Entry, Ledger, LedgerConfig};
//! use ringledger::producer::{Producer, ProducerConfig};
//! use ringledger::storage::sim::SimStorage;
//! use ringledger::wait::Deadline;
//!
//! let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default()).unwrap();
//! let config = ProducerConfig {
//!     batch: 10,
//!     timeout: Duration::from_millis(5),
//!     ..ProducerConfig::default()
//! };
//! let producer = Arc::new(Producer::new(ledger.clone(), config).unwrap());
//! let acks: Vec<_> = (1..=25)
//!     .map(|seq| producer.write(Entry::new(seq, "event"), Deadline::Forever).unwrap())
//!     .collect();
//! for ack in &acks {
//!     ack.wait(Deadline::Forever).unwrap();
//! }
//! assert_eq!(ledger.len(), 25);
//!
//! producer.close();
//! assert!(producer.write(Entry::new(26, "late"), Deadline::Forever).is_err());
//! ```

mod ack;
#[cfg(feature = "async")]
mod asynch;
mod sink;
mod worker;

use std::fmt;
use std::io;
use std::sync::Arc as StdArc;
use std::time::Duration;

#[cfg(loom)]
use loom::thread;
#[cfg(not(loom))]
use std::thread;

pub use ack::Ack;
#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub use asynch::{AckFuture, EntrySink, Write};
pub use sink::BatchSink;

use crate::ledger::{Durability, Entry, Ledger, LedgerError};
use crate::sync::{lock, Arc, Mutex};
use crate::wait::Deadline;
use sink::LedgerSink;
use worker::{Settings, Shared};

/// How a [`Producer`] batches and retries.
///
/// ```
/// use std::time::Duration;
/// use ringledger::producer::ProducerConfig;
///
/// let config = ProducerConfig {
///     batch: 100,
///     timeout: Duration::from_millis(2),
///     retry: 3,
///     delay: Duration::from_millis(50),
///     ..ProducerConfig::default()
/// };
/// assert_eq!(config.queue, 0); // as large as a batch
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerConfig {
    /// The most entries in one ledger write. 0 is taken as 1 (quasar: "<= 0 means 1").
    /// Default 64.
    pub batch: usize,
    /// The longest the worker waits, after taking the first entry of a batch, for the batch
    /// to fill; then it writes what it has. Zero writes at once whatever is queued (entries
    /// that arrived during the previous write form the next batch). Default zero.
    pub timeout: Duration,
    /// How many times a batch refused with [`LedgerError::LimitReached`] is tried again.
    /// Default 0.
    pub retry: u32,
    /// The wait before each retry; must be more than zero when `retry` is.
    /// Default zero.
    pub delay: Duration,
    /// Drop entries whose sequence is not above the ledger's head (or above the entry kept
    /// before them in the batch), acknowledging them `Ok`, also when the ledger never held
    /// that sequence (see the [module documentation](self)). Default `false`.
    pub filter: bool,
    /// The durability of the producer's writes; `None` uses the ledger's configured one.
    /// Default `None`.
    pub durability: Option<Durability>,
    /// How many entries may wait in the producer's queue before [`Producer::write`] blocks;
    /// 0 means as many as a batch (quasar's choice). Default 0.
    pub queue: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            batch: 64,
            timeout: Duration::ZERO,
            retry: 0,
            delay: Duration::ZERO,
            filter: false,
            durability: None,
            queue: 0,
        }
    }
}

impl ProducerConfig {
    /// Checks the configuration and resolves its "0 means" rules.
    fn settings(&self) -> Result<(Settings, usize), ProducerError> {
        if self.retry > 0 && self.delay.is_zero() {
            return Err(ProducerError::Config(format!(
                "retry is {} but delay is zero: retries need a delay",
                self.retry
            )));
        }
        let batch = self.batch.max(1);
        let queue = if self.queue == 0 { batch } else { self.queue };
        let settings = Settings {
            batch,
            timeout: self.timeout,
            retry: self.retry,
            delay: self.delay,
            filter: self.filter,
        };
        Ok((settings, queue))
    }
}

/// Why a [`Producer`] call, or an entry, failed.
///
/// It is `Clone`: one ledger error fails every entry of a batch, so it is shared behind an
/// `Arc`.
///
/// ```
/// use std::sync::Arc;
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig, LedgerError};
/// use ringledger::producer::{Producer, ProducerConfig, ProducerError};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::wait::Deadline;
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// ledger.write(&[Entry::new(5, "already there")])?;
/// let producer = Producer::new(ledger, ProducerConfig::default())?;
/// let ack = producer.write(Entry::new(3, "too old"), Deadline::Forever)?;
/// match ack.wait(Deadline::Forever) {
///     Err(ProducerError::Ledger(error)) => {
///         assert!(matches!(*error, LedgerError::NotMonotonic { last: 5, seq: 3 }));
///     }
///     other => panic!("{other:?}"),
/// }
/// producer.close();
/// let late = producer.write(Entry::new(6, "late"), Deadline::Forever);
/// assert!(matches!(late, Err(ProducerError::Closed)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    /// The producer was closed: [`write`](Producer::write) after [`close`](Producer::close),
    /// or an entry that was queued (or in the batch being built) when it closed.
    #[error("the producer is closed")]
    Closed,
    /// The ledger refused the entry's batch (after the configured retries, for
    /// [`LedgerError::LimitReached`]); every entry of that batch has this error.
    #[error("the ledger refused the batch")]
    Ledger(#[source] StdArc<LedgerError>),
    /// The [`ProducerConfig`] is invalid.
    #[error("invalid producer configuration: {0}")]
    Config(String),
    /// The deadline passed: [`write`](Producer::write) found the queue full until then, or
    /// [`Ack::wait`] did not see the result by then.
    #[error("the deadline passed")]
    Timeout,
    /// The worker thread could not be started.
    #[error("cannot start the producer's worker thread")]
    Spawn(#[source] StdArc<io::Error>),
}

impl ProducerError {
    /// The ledger's error, for [`ProducerError::Ledger`].
    #[must_use]
    pub fn ledger_error(&self) -> Option<&LedgerError> {
        match self {
            ProducerError::Ledger(error) => Some(error),
            _ => None,
        }
    }
}

/// Batches entries into ledger writes on a worker thread; see the
/// [module documentation](self).
///
/// Writers on several threads share one producer. Entries are written in the order they
/// were queued, so a sequence must be taken and queued under one lock: otherwise a smaller
/// sequence queued after a greater one fails its batch (or, with the
/// [`filter`](ProducerConfig::filter), is dropped).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::producer::{Producer, ProducerConfig};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::wait::Deadline;
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// let producer = Producer::new(ledger.clone(), ProducerConfig::default())?;
/// let last = Mutex::new(0u64);
/// std::thread::scope(|s| {
///     for _ in 0..2 {
///         s.spawn(|| {
///             for _ in 0..10 {
///                 let mut seq = last.lock().unwrap();
///                 *seq += 1;
///                 let ack = producer.write(Entry::new(*seq, "event"), Deadline::Forever);
///                 drop(seq);
///                 ack.unwrap().wait(Deadline::Forever).unwrap();
///             }
///         });
///     }
/// });
/// assert_eq!(ledger.len(), 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Producer {
    shared: Arc<Shared>,
    worker: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Producer {
    /// A producer writing to `ledger`; starts its worker thread.
    ///
    /// Fails with [`ProducerError::Config`] when `retry > 0` and `delay` is zero.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::producer::{Producer, ProducerConfig};
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::wait::Deadline;
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let producer = Producer::new(ledger.clone(), ProducerConfig::default())?;
    /// let acks: Vec<_> = (1..=3)
    ///     .map(|seq| producer.write(Entry::new(seq, "event"), Deadline::Forever))
    ///     .collect::<Result<_, _>>()?;
    /// for ack in acks {
    ///     ack.wait(Deadline::Forever)?;
    /// }
    /// assert_eq!(ledger.head(), 3);
    /// producer.close();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(ledger: Ledger, config: ProducerConfig) -> Result<Self, ProducerError> {
        let sink = LedgerSink {
            ledger,
            durability: config.durability,
        };
        Self::with_sink(sink, config)
    }

    /// A producer writing to `sink` instead of a ledger (its
    /// [`durability`](ProducerConfig::durability) is then the sink's business).
    ///
    /// ```
    /// use ringledger::ledger::{Entry, LedgerError};
    /// use ringledger::producer::{BatchSink, Producer, ProducerConfig};
    /// use ringledger::wait::Deadline;
    ///
    /// /// A sink that is down: every batch fails.
    /// struct Down;
    ///
    /// impl BatchSink for Down {
    ///     fn head(&self) -> u64 {
    ///         0
    ///     }
    ///     fn write_batch(&mut self, _: &[Entry]) -> Result<(), LedgerError> {
    ///         Err(LedgerError::ReadOnly)
    ///     }
    /// }
    ///
    /// let producer = Producer::with_sink(Down, ProducerConfig::default())?;
    /// let error = producer.write(Entry::new(1, "e"), Deadline::Forever)?.wait(Deadline::Forever);
    /// assert!(matches!(error.unwrap_err().ledger_error(), Some(LedgerError::ReadOnly)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_sink<S: BatchSink>(sink: S, config: ProducerConfig) -> Result<Self, ProducerError> {
        let (settings, queue) = config.settings()?;
        let shared = Arc::new(Shared::new(queue, settings.batch));
        let worker = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("ringledger-producer".into())
                .spawn(move || {
                    short_time_slice();
                    worker::run(&shared, sink, settings)
                })
                .map_err(|e| ProducerError::Spawn(StdArc::new(e)))?
        };
        Ok(Producer {
            shared,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Queues `entry` for the next batch and returns its [`Ack`]; waits while the queue is
    /// full, until `deadline`.
    ///
    /// Fails with [`ProducerError::Closed`] after [`close`](Self::close), and with
    /// [`ProducerError::Timeout`] when the queue stayed full until the deadline (the entry is
    /// not queued then; [`Deadline::IMMEDIATE`] never waits). Entries are written in the
    /// order their writes queued them.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::producer::{Producer, ProducerConfig};
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::wait::Deadline;
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let producer = Producer::new(ledger.clone(), ProducerConfig::default())?;
    /// let ack = producer.write(Entry::new(1, "event"), Deadline::Forever)?;
    /// // The ack resolves once the batch holding the entry is in the ledger.
    /// ack.wait(Deadline::Forever)?;
    /// assert_eq!(ledger.read(1, 1)?[0].payload, "event");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&self, entry: Entry, deadline: impl Into<Deadline>) -> Result<Ack, ProducerError> {
        self.shared.push(entry, deadline.into())
    }

    /// Queues `entries` as one write with one [`Ack`]: they go into the same ledger write (all
    /// or nothing, even when there are more than [`batch`](ProducerConfig::batch) of them),
    /// in order, after what was queued before. Costs one allocation for the ack, not one per
    /// entry. Waits until `deadline` for room for all of them (a group larger than the queue
    /// waits for the queue to empty). An empty `entries` is acknowledged `Ok` at once.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::producer::{Producer, ProducerConfig};
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::wait::Deadline;
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default()).unwrap();
    /// let producer = Producer::new(ledger.clone(), ProducerConfig::default()).unwrap();
    /// let entries: Vec<Entry> = (1..=500).map(|seq| Entry::new(seq, "event")).collect();
    /// producer.write_batch(entries, Deadline::Forever).unwrap().wait(Deadline::Forever).unwrap();
    /// assert_eq!(ledger.len(), 500);
    /// ```
    pub fn write_batch(
        &self,
        entries: Vec<Entry>,
        deadline: impl Into<Deadline>,
    ) -> Result<Ack, ProducerError> {
        if entries.is_empty() {
            if self.is_closed() {
                return Err(ProducerError::Closed);
            }
            return Ok(Ack::settled());
        }
        self.shared.push_group(entries, deadline.into())
    }

    /// Closes the producer and waits for its worker to stop.
    ///
    /// Writes fail with [`ProducerError::Closed`] from now on; queued entries and the batch
    /// being built get `Closed`; a batch the worker already handed to the ledger gets the
    /// ledger's result. When this returns (in every thread that calls it), every [`Ack`] has
    /// its result. Idempotent; dropping the producer does the same. A [`BatchSink`] calling
    /// it does not wait for its own worker.
    pub fn close(&self) {
        self.shared.close();
        // Joining under the lock makes a concurrent `close` wait for the worker too.
        let mut worker = lock(&self.worker);
        if let Some(handle) = worker.take() {
            if handle.thread().id() != thread::current().id() {
                // A panic in the sink is not the closer's to re-raise: the worker's exit
                // guard and the acks' drops have resolved every entry with `Closed`.
                let _ = handle.join();
            }
        }
    }

    /// Whether the producer is closed (by [`close`](Self::close), a drop, or because its
    /// worker ended with a panic in its sink).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// How many entries wait in the queue, not yet taken into a batch.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.shared.queued()
    }
}

/// Asks the scheduler for short time slices for the calling thread (the worker), so that a
/// wake-up preempts whatever runs on its core at once instead of waiting for that thread's
/// slice to end (EEVDF, Linux 6.12+: a waking task with a shorter slice preempts). On two
/// cores, a paced writer spinning on the core the worker was woken on held it up ~4 ms at a
/// time (`perf sched timehist` over `cargo run --release -p ringledger-benches --example
/// paced`). Only when to run changes, not how much: the worker's share of the CPU is its nice
/// value's, which stays what it was. Best effort: older kernels refuse or ignore it.
fn short_time_slice() {
    #[cfg(all(target_os = "linux", not(loom)))]
    {
        /// `struct sched_attr` as of Linux 3.14 (`SCHED_ATTR_SIZE_VER0`).
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            policy: u32,
            flags: u64,
            nice: i32,
            priority: u32,
            runtime: u64,
            deadline: u64,
            period: u64,
        }
        /// The slice asked for: the shortest the kernel takes is 100 µs.
        const SLICE_NS: u64 = 100_000;
        // SAFETY: plain getters of this thread's scheduling state.
        let policy = unsafe { libc::sched_getscheduler(0) };
        if policy != libc::SCHED_OTHER {
            return; // a real-time or idle worker was set up so on purpose: leave it
        }
        // SAFETY: as above; errno tells a nice of -1 from an error.
        let nice = unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, 0)
        };
        // SAFETY: reading errno right after the call.
        if nice == -1 && unsafe { *libc::__errno_location() } != 0 {
            return;
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: libc::SCHED_OTHER as u32,
            flags: 0,
            nice,
            priority: 0,
            runtime: SLICE_NS,
            deadline: 0,
            period: 0,
        };
        // SAFETY: `attr` is a valid `sched_attr` of the size it states; pid 0 is this thread.
        let _ = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("closed", &self.is_closed())
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, target_os = "linux", not(loom)))]
mod tests {
    use super::*;
    use crate::storage::sim::SimStorage;

    /// The `se.slice` of thread `tid`, in nanoseconds, where the kernel shows one.
    fn slice_of(tid: &str) -> Option<u64> {
        let sched = std::fs::read_to_string(format!("/proc/self/task/{tid}/sched")).ok()?;
        let line = sched.lines().find(|l| l.starts_with("se.slice"))?;
        line.split(':').nth(1)?.trim().parse().ok()
    }

    #[test]
    fn the_worker_asks_for_short_time_slices() {
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() }.to_string();
        let Some(default) = slice_of(&me) else {
            println!("skipped: this kernel shows no se.slice in /proc (needs Linux 6.12+ with sched debug)");
            return;
        };
        let ledger = Ledger::open_in(Arc::new(SimStorage::new()), Default::default()).unwrap();
        let producer = Producer::new(ledger, ProducerConfig::default()).unwrap();
        // The worker sets its slice as it starts: one write through it proves it started.
        producer
            .write(Entry::new(1, "e"), Deadline::Forever)
            .unwrap()
            .wait(Deadline::Forever)
            .unwrap();
        let workers: Vec<u64> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| {
                let tid = task.ok()?.file_name().into_string().ok()?;
                let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
                (comm.trim() == "ringledger-prod").then(|| slice_of(&tid))?
            })
            .collect();
        // Other tests' workers may be starting right now: ours is one that has started.
        assert!(
            workers.iter().any(|&slice| slice < default),
            "worker slices {workers:?} ns, the default {default} ns"
        );
    }
}
