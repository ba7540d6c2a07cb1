//! The consumer: reads a [`Ledger`] in order, hands entries out, and persists what was
//! processed in a [`Table`] so that a restart resumes where it left off.
//!
//! quasar's consumer (`reference/quasar.md` §5) in Rust's shape. Entries are pulled, not
//! pushed: [`recv`](Consumer::recv) returns the next one (waiting until a [`Deadline`]), and
//! [`iter`](Consumer::iter) wraps it as an iterator. quasar sends entries into a channel the
//! caller made; pulling needs no channel and no reader thread, and the caller's own call is
//! the backpressure: `recv` reads the ledger on the caller's thread, a `batch` at a time,
//! and blocks (in [`Ledger::wait_for_head_cancellable`], never spinning: quasar's bug 3)
//! when it is at the head. `Consumer` is `Sync`, so several threads may share one and
//! process entries in parallel; each entry goes to one of them.
//!
//! # Marks
//!
//! A processed entry is marked with [`mark`](Consumer::mark) (a `cumulative` mark also
//! covers every delivered entry below it). The consumer keeps a mark table of the entries it
//! delivered (pending or done), compiles it with [`compile`](crate::sequence::compile) into
//! "everything up to `positions[0]` is done, and `positions[1..]` too", and stores that list
//! under the consumer's name. `mark` returns at
//! once with an [`Ack`] that resolves once the mark is in the table (quasar calls a callback;
//! a handle can be waited on with a deadline, polled or dropped, and runs no user code on the
//! consumer's thread). A background thread writes the table, so neither `recv` nor `mark`
//! waits for the disk, and marks made while a write is under way share the next one. With
//! [`skip`](ConsumerConfig::skip) > 0, up to `skip` marks are deferred and persisted with the
//! next one, or after [`timeout`](ConsumerConfig::timeout), or when the window is full, or at
//! [`close`](Consumer::close).
//!
//! # Where a consumer starts
//!
//! [`start`](ConsumerConfig::start) is the first sequence to deliver, inclusive. A consumer
//! that finds no positions under its name stores `[start - 1]` ("everything before `start`
//! is done") before delivering anything, and always resumes at `positions[0] + 1`, skipping
//! `positions[1..]`. So a restart without any mark resumes at `start` again: quasar stored
//! `[start]`, delivered `start` on the first run and skipped it on a restart (bug 4). Entries
//! deleted from the ledger meanwhile (by a [`cleaner`](crate::cleaner)) are passed over: the
//! consumer resumes at the first entry there is.
//!
//! The positions `positions[1..]` a restart skips stay individual positions until the
//! consumer has read up to them: quasar compiled them together with the new marks, so that a
//! run of done marks could swallow entries not read yet (stored `[0, 2, 4]`, 1 marked, 3 not
//! read: quasar stored `[4]`, and a restart skipped 3 unprocessed). The model check in
//! `consumer/model.rs` found that one.
//!
//! # Window and deadline
//!
//! At most [`window`](ConsumerConfig::window) delivered entries are held in the mark table:
//! an entry leaves it when the persisted `positions[0]` covers it, that is once it and every
//! entry before it are marked and persisted. `recv` waits while the table is full, so one
//! entry left unmarked stalls delivery `window` entries later. With a
//! [`deadline`](ConsumerConfig::deadline), a `recv` that waited that long on a full window
//! without a single mark fails with [`ConsumerError::Deadlock`] and stops the consumer.
//!
//! # Stopping
//!
//! A consumer stops when it is closed (or dropped), when the window deadlocks, when reading
//! the ledger fails, or when writing the table fails. Then every call fails with the reason,
//! deferred marks are persisted one last time (unless the table failed), and every [`Ack`] is
//! resolved: acknowledged, or failed with the table's error. A mark is applied to the mark
//! table before `mark` returns, so there is no queue of marks that closing could drop (quasar
//! answered those with `ConsumerClosed`): a mark after the stop fails at once.
//!
//! A temporary consumer ([`name`](ConsumerConfig::name) `None`) persists nothing and has no
//! window: its marks are acknowledged at once.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use ringledger::consumer::{Consumer, ConsumerConfig};
//! use ringledger::ledger::{Entry, Ledger, LedgerConfig};
//! use ringledger::storage::sim::SimStorage;
//! use ringledger::table::{Table, TableConfig};
//! use ringledger::wait::Deadline;
//!
//! let config = LedgerConfig::default().with_segment_size(64 * 1024);
//! let ledger = Ledger::open_in(Arc::new(SimStorage::new()), config).unwrap();
//! let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default()).unwrap());
//! ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")]).unwrap();
//!
//! let consumer = Consumer::open(ledger.clone(), table.clone(), ConsumerConfig::named("audit")).unwrap();
//! let entry = consumer.recv(Deadline::Forever).unwrap();
//! assert_eq!(&entry.payload[..], b"a");
//! consumer.mark(entry.sequence, false).unwrap().wait(Deadline::Forever).unwrap();
//! assert_eq!(table.get("audit").unwrap(), [1]);
//! consumer.close().unwrap();
//!
//! // A restart resumes after what was marked.
//! let consumer = Consumer::open(ledger, table, ConsumerConfig::named("audit")).unwrap();
//! assert_eq!(consumer.recv(Deadline::Forever).unwrap().sequence, 2);
//! ```

mod ack;
#[cfg(feature = "async")]
mod asynch;
mod committer;
mod config;
mod marks;
#[cfg(test)]
mod model;

pub use ack::Ack;
#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub use asynch::{AckFuture, Recv, RecvStream};
pub use config::ConsumerConfig;

use std::fmt;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ledger::{Entry, Ledger, LedgerError};
use crate::sync::{lock, wait_on, Arc, AtomicBool, Condvar, Mutex, Ordering};
use crate::table::{Table, TableError};
use crate::wait::{CancelToken, Deadline, Rare, WaitError, Waiters};

use marks::{Marks, Offer};

/// Why a consumer call failed. Clones share the underlying error.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ringledger::consumer::{Consumer, ConsumerConfig, ConsumerError};
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::table::{Table, TableConfig};
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default())?);
/// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
/// let consumer = Consumer::open(ledger, table, ConsumerConfig::named("audit"))?;
/// let mut done = Vec::new();
/// loop {
///     match consumer.recv(Duration::from_millis(10)) {
///         Ok(entry) => {
///             done.push(entry.sequence);
///             let _ack = consumer.mark(entry.sequence, false)?;
///         }
///         Err(ConsumerError::TimedOut) => break, // idle: nothing new for now
///         Err(stopped) => return Err(stopped.into()), // closed, or the ledger or table failed
///     }
/// }
/// assert_eq!(done, [1, 2, 3]);
/// match consumer.mark(99, false) {
///     Err(ConsumerError::InvalidSequence { sequence: 99 }) => {} // never delivered; carry on
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The configuration is invalid.
    #[error("invalid consumer configuration: {0}")]
    Config(String),
    /// A mark of a sequence the consumer does not hold: never delivered, or already covered by
    /// the persisted first position. The consumer carries on.
    #[error("sequence {sequence} is not a delivered entry waiting for its mark")]
    InvalidSequence {
        /// The sequence marked.
        sequence: u64,
    },
    /// The deadline passed first. The consumer carries on; calling again is fine.
    #[error("the deadline passed")]
    TimedOut,
    /// The consumer was closed.
    #[error("the consumer is closed")]
    Closed,
    /// The window stayed full for the configured deadline without a mark; the consumer
    /// stopped.
    #[error("consumer deadlock: the window of {window} entries stayed full for {deadline:?} without a mark")]
    Deadlock {
        /// The configured window.
        window: usize,
        /// The configured deadline.
        deadline: Duration,
    },
    /// Reading or writing the positions table failed; the consumer stopped (or, at
    /// [`open`](Consumer::open), did not start).
    #[error("consumer positions table")]
    Table(#[source] std::sync::Arc<TableError>),
    /// Reading the ledger failed; the consumer stopped.
    #[error("consumer reading the ledger")]
    Ledger(#[source] std::sync::Arc<LedgerError>),
    /// The consumer's background thread could not be started.
    #[error("starting the consumer's thread")]
    Spawn(#[source] std::sync::Arc<std::io::Error>),
}

/// What the read-ahead entries offer the caller of [`next_ready`].
enum Ready {
    /// The next entry to deliver (now pending in the window, for a persistent consumer).
    Entry(Entry),
    /// Nothing read ahead (or all of it skipped, as marked by an earlier run).
    Empty,
    /// The window is full: the next entry waits for a persist to make room.
    Full,
}

/// Takes the next entry of `ahead` (kept newest first) that `marks` lets through, dropping
/// the ones an earlier run marked; `recv` and `recv_batch` share it.
fn next_ready(ahead: &mut Vec<Entry>, marks: &mut Option<Marks>) -> Ready {
    while let Some(entry) = ahead.last() {
        let offer = match marks {
            None => Offer::Deliver,
            Some(marks) => marks.offer(entry.sequence),
        };
        match offer {
            Offer::Deliver => {
                if let Some(entry) = ahead.pop() {
                    return Ready::Entry(entry);
                }
            }
            Offer::Skip => {
                ahead.pop();
            }
            Offer::Full => return Ready::Full,
        }
    }
    Ready::Empty
}

/// A consumer of a [`Ledger`]; see the [module documentation](self).
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
/// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b")])?;
/// let consumer = Consumer::open(ledger, table, ConsumerConfig::named("audit"))?;
/// for entry in consumer.iter().take(2) {
///     let entry = entry?;
///     consumer.mark(entry.sequence, false)?.wait(Deadline::Forever)?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Consumer {
    ledger: Ledger,
    shared: Arc<Shared>,
    reader: Mutex<Reader>,
    batch: usize,
    window: usize,
    deadline: Option<Duration>,
    /// Whether deferred marks have a time limit (then marks note when deferring began).
    timed: bool,
    name: Option<String>,
    committer: Mutex<Option<JoinHandle<()>>>,
}

/// What `recv`, `mark`, the committer thread and [`Ack`]s share.
struct Shared {
    state: Mutex<State>,
    /// `recv` waits here for room in the window.
    room: Condvar,
    /// Set (then `work` notified) when the committer has something to do: marks due, a
    /// timer to start, a stop. A mark that sets it pays a fence, not a system call.
    work_flag: AtomicBool,
    /// The committer waits here: it spins a little before it parks, so a stream of marks
    /// rarely has to wake it.
    work: Waiters<Rare>,
    /// [`Ack`]s wait here for their tickets to resolve.
    settled: Condvar,
    /// Cancelled when the consumer stops: ends waits for the ledger's head.
    cancel: CancelToken,
    /// Tasks waiting for room and for acks (feature `async`); locked after `state`, never
    /// before it.
    #[cfg(feature = "async")]
    tasks: Mutex<asynch::Tasks>,
}

struct State {
    /// The mark table; `None` for a temporary consumer.
    marks: Option<Marks>,
    /// Why the consumer stopped; `None` while it runs.
    stopped: Option<ConsumerError>,
    /// The error failed tickets resolve with.
    persist_error: Option<ConsumerError>,
    /// When the oldest deferred mark was made (only with a timeout).
    deferred_since: Option<Instant>,
    /// The last mark or persist (only with a deadline).
    progress: Instant,
    /// How many threads wait on `room` and on `settled`: a condition variable's notify is a
    /// system call even when nobody waits.
    room_waiters: usize,
    ack_waiters: usize,
}

impl State {
    /// The result of ticket `ticket`, if known.
    fn resolution(&self, ticket: u64) -> Option<Result<(), ConsumerError>> {
        let ok = self
            .marks
            .as_ref()
            .map_or(Some(true), |m| m.resolution(ticket))?;
        Some(if ok {
            Ok(())
        } else {
            Err(self.persist_error.clone().unwrap_or(ConsumerError::Closed))
        })
    }
}

impl Shared {
    /// Tells the committer to look at the state.
    fn wake_committer(&self) {
        if !self.work_flag.load(Ordering::Relaxed) {
            self.work_flag.store(true, Ordering::SeqCst);
        }
        self.work.notify();
    }

    /// Wakes every waiter: after the consumer stopped.
    fn wake_all(&self) {
        self.cancel.cancel();
        self.room.notify_all();
        self.wake_committer();
        self.settled.notify_all();
        #[cfg(feature = "async")]
        self.wake_tasks();
    }
}

/// The entries read ahead of delivery.
struct Reader {
    /// The next sequence to read from the ledger.
    next: u64,
    /// Read, not delivered yet; newest first (delivery pops from the back).
    ahead: Vec<Entry>,
}

impl Consumer {
    /// Opens the consumer `config.name` of `ledger`, with its positions in `table` (unused by
    /// a temporary consumer), and starts its background thread (a persistent one only).
    ///
    /// Reads the stored positions, storing `[start - 1]` when there are none; see the
    /// [module documentation](self).
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
    /// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b")])?;
    /// let consumer = Consumer::open(ledger, table.clone(), ConsumerConfig::named("billing"))?;
    /// assert_eq!(consumer.recv(Deadline::Forever)?.sequence, 1);
    /// consumer.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(
        ledger: Ledger,
        table: std::sync::Arc<Table>,
        config: ConsumerConfig,
    ) -> Result<Self, ConsumerError> {
        config.validate()?;
        let table_error = |e| ConsumerError::Table(std::sync::Arc::new(e));
        let (marks, next) = match &config.name {
            None => (None, config.start),
            Some(name) => {
                let mut stored = table.get(name).map_err(table_error)?;
                if stored.is_empty() {
                    stored = vec![config.start.saturating_sub(1)];
                    table.set(name, &stored).map_err(table_error)?;
                }
                let next = stored[0].saturating_add(1);
                (
                    Some(Marks::resume(&stored, config.window, config.skip)),
                    next,
                )
            }
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                marks,
                stopped: None,
                persist_error: None,
                deferred_since: None,
                progress: Instant::now(),
                room_waiters: 0,
                ack_waiters: 0,
            }),
            room: Condvar::new(),
            work_flag: AtomicBool::new(false),
            work: Waiters::parking(),
            settled: Condvar::new(),
            cancel: CancelToken::new(),
            #[cfg(feature = "async")]
            tasks: Mutex::new(asynch::Tasks::default()),
        });
        let committer = match &config.name {
            None => None,
            Some(name) => {
                let (shared, name) = (Arc::clone(&shared), name.clone());
                let timeout = Some(config.timeout).filter(|t| !t.is_zero());
                let relaxed = config.relaxed_acks;
                let handle = std::thread::Builder::new()
                    .name("ringledger-consumer".into())
                    .spawn(move || {
                        if relaxed {
                            committer::no_wakeup_preemption();
                        }
                        committer::run(&shared, &table, &name, timeout)
                    })
                    .map_err(|e| ConsumerError::Spawn(std::sync::Arc::new(e)))?;
                Some(handle)
            }
        };
        Ok(Self {
            ledger,
            shared,
            reader: Mutex::new(Reader {
                next,
                ahead: Vec::with_capacity(config.batch),
            }),
            batch: config.batch,
            window: config.window,
            deadline: config.deadline,
            timed: !config.timeout.is_zero(),
            name: config.name,
            committer: Mutex::new(committer),
        })
    }

    /// The consumer's name; `None` for a temporary consumer.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The next entry, waiting until `deadline` for one (and for room in the window).
    ///
    /// [`ConsumerError::TimedOut`] leaves the consumer running; any other error means it
    /// stopped (and every later call returns the same error).
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
    /// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b")])?;
    /// let consumer = Consumer::open(ledger, table, ConsumerConfig::temporary())?;
    /// assert_eq!(consumer.recv(Deadline::Forever)?.payload, "a");
    /// assert_eq!(consumer.recv(std::time::Duration::from_secs(1))?.payload, "b");
    /// // Nothing more: the deadline passes and the consumer carries on.
    /// assert!(consumer.recv(std::time::Duration::from_millis(10)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv(&self, deadline: impl Into<Deadline>) -> Result<Entry, ConsumerError> {
        // Resolved once, so that waiting in several steps does not extend it.
        let deadline = deadline.into();
        let deadline = match deadline.instant() {
            Some(at) => Deadline::At(at),
            None => Deadline::Forever,
        };
        loop {
            let mut reader = lock(&self.reader);
            if reader.ahead.is_empty() {
                if let Some(head) = self.read_ahead(&mut reader)? {
                    drop(reader);
                    self.wait_for_head(head, deadline)?;
                    continue;
                }
            }
            let mut state = lock(&self.shared.state);
            if let Some(reason) = &state.stopped {
                return Err(reason.clone());
            }
            match next_ready(&mut reader.ahead, &mut state.marks) {
                Ready::Entry(entry) => return Ok(entry),
                // Everything read ahead was skipped: read on.
                Ready::Empty => {}
                Ready::Full => {
                    drop(state);
                    drop(reader);
                    self.wait_for_room(deadline)?;
                }
            }
        }
    }

    /// Appends to `out` the next entries, up to `max` (at least one): waits until `deadline`
    /// for the first as [`recv`](Self::recv) does, then takes what else is read ahead and fits
    /// in the window without waiting, under one lock. Returns how many it appended.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use ringledger::consumer::{Consumer, ConsumerConfig};
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::table::{Table, TableConfig};
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default()).unwrap();
    /// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default()).unwrap());
    /// ledger.write(&(1..=10).map(|s| Entry::new(s, "e")).collect::<Vec<_>>()).unwrap();
    /// let consumer = Consumer::open(ledger, table, ConsumerConfig::named("batch")).unwrap();
    /// let mut out = Vec::new();
    /// let n = consumer.recv_batch(100, Duration::from_secs(1), &mut out).unwrap();
    /// assert_eq!((n, out[0].sequence), (10, 1));
    /// consumer.mark(10, true).unwrap();
    /// ```
    pub fn recv_batch(
        &self,
        max: usize,
        deadline: impl Into<Deadline>,
        out: &mut Vec<Entry>,
    ) -> Result<usize, ConsumerError> {
        out.push(self.recv(deadline)?);
        let mut taken = 1;
        // The same order of locks as `recv`.
        let mut reader = lock(&self.reader);
        let mut state = lock(&self.shared.state);
        while taken < max && state.stopped.is_none() {
            match next_ready(&mut reader.ahead, &mut state.marks) {
                Ready::Entry(entry) => {
                    out.push(entry);
                    taken += 1;
                }
                Ready::Empty | Ready::Full => break,
            }
        }
        Ok(taken)
    }

    /// The entries as an iterator: each item is [`recv`](Self::recv) without a deadline. It
    /// ends when the consumer is closed; an error that stopped the consumer is its last item.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            consumer: self,
            done: false,
        }
    }

    /// Marks the delivered entry `sequence` as processed; with `cumulative`, every delivered
    /// entry below it too. Returns at once: the [`Ack`] resolves once the mark is persisted.
    ///
    /// [`ConsumerError::InvalidSequence`] for a sequence the consumer does not hold (the
    /// consumer carries on); the stop reason once the consumer stopped.
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
    /// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b")])?;
    /// let consumer = Consumer::open(ledger, table.clone(), ConsumerConfig::named("billing"))?;
    /// let first = consumer.recv(Deadline::Forever)?;
    /// let second = consumer.recv(Deadline::Forever)?;
    /// // Cumulative: 2 and everything delivered before it.
    /// consumer.mark(second.sequence, true)?.wait(Deadline::Forever)?;
    /// assert_eq!(table.get("billing")?, [2]);
    /// # let _ = first;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mark(&self, sequence: u64, cumulative: bool) -> Result<Ack, ConsumerError> {
        let mut state = lock(&self.shared.state);
        if let Some(reason) = &state.stopped {
            return Err(reason.clone());
        }
        let Some(marks) = state.marks.as_mut() else {
            return Ok(Ack::settled());
        };
        let ticket = marks
            .mark(sequence, cumulative)
            .map_err(|_| ConsumerError::InvalidSequence { sequence })?;
        let due = marks.flush_due();
        let mut timer_started = false;
        if self.deadline.is_some() || self.timed {
            let now = Instant::now();
            state.progress = now;
            if self.timed && state.deferred_since.is_none() {
                state.deferred_since = Some(now);
                timer_started = true;
            }
        }
        drop(state);
        if due || timer_started {
            self.shared.wake_committer();
        }
        Ok(Ack::pending(Arc::clone(&self.shared), ticket))
    }

    /// Closes the consumer: persists deferred marks, resolves every [`Ack`] and stops the
    /// background thread. Waiting `recv` calls return [`ConsumerError::Closed`].
    ///
    /// Returns the table's error if marks could not be persisted (now or earlier); calling it
    /// again returns the same.
    pub fn close(&self) -> Result<(), ConsumerError> {
        {
            let mut state = lock(&self.shared.state);
            state.stopped.get_or_insert(ConsumerError::Closed);
        }
        self.shared.wake_all();
        // Joined under the lock: a concurrent `close` returns only once the thread is gone too.
        let mut committer = lock(&self.committer);
        if let Some(handle) = committer.take() {
            // A panic on that thread has already failed every pending ticket.
            let _ = handle.join();
        }
        drop(committer);
        let state = lock(&self.shared.state);
        match &state.persist_error {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Stops the consumer for `reason` (unless it stopped already) and returns why it stopped.
    fn stop(&self, reason: ConsumerError) -> ConsumerError {
        let reason = lock(&self.shared.state)
            .stopped
            .get_or_insert(reason)
            .clone();
        self.shared.wake_all();
        reason
    }

    /// Waits until the window has room (always, for a temporary consumer), `deadline`
    /// passes, or the consumer stops.
    fn wait_for_room(&self, deadline: Deadline) -> Result<(), ConsumerError> {
        let until = deadline.instant();
        let mut state = lock(&self.shared.state);
        let mut started = None;
        loop {
            if let Some(reason) = &state.stopped {
                return Err(reason.clone());
            }
            let progress = state.progress;
            let Some(marks) = state.marks.as_mut() else {
                return Ok(());
            };
            if marks.has_room() {
                return Ok(());
            }
            // Deferred marks are all that can make room: persist them now.
            if marks.deferred() > 0 && !marks.flush_due() {
                marks.request_flush();
                self.shared.wake_committer();
            }
            let now = Instant::now();
            let started = *started.get_or_insert(now);
            let mut wake = until;
            if let Some(limit) = self.deadline {
                if let Some(at) = progress.max(started).checked_add(limit) {
                    if now >= at {
                        drop(state);
                        return Err(self.stop(ConsumerError::Deadlock {
                            window: self.window,
                            deadline: limit,
                        }));
                    }
                    wake = Some(wake.map_or(at, |w| w.min(at)));
                }
            }
            if until.is_some_and(|at| now >= at) {
                return Err(ConsumerError::TimedOut);
            }
            state.room_waiters += 1;
            state = wait_on(&self.shared.room, state, wake);
            state.room_waiters -= 1;
        }
    }

    /// Reads the next batch into `reader.ahead`; when there is nothing, returns the head to
    /// wait for.
    fn read_ahead(&self, reader: &mut Reader) -> Result<Option<u64>, ConsumerError> {
        let head = self.ledger.head();
        if head >= reader.next {
            let read = self
                .ledger
                .read_into(reader.next, self.batch, &mut reader.ahead);
            match read {
                Err(e) => return Err(self.stop(ConsumerError::Ledger(std::sync::Arc::new(e)))),
                Ok(0) => {}
                Ok(_) => {
                    if let Some(last) = reader.ahead.last() {
                        reader.next = last.sequence.saturating_add(1);
                    }
                    reader.ahead.reverse();
                    return Ok(None);
                }
            }
        }
        // Nothing from `next` up to `head` (not written yet, or deleted): wait for a write
        // past `head`. Waiting for `next` alone would spin over deleted entries.
        reader.next = reader.next.max(head.saturating_add(1));
        Ok(Some(reader.next))
    }

    /// Waits for the ledger's head to reach `head`.
    fn wait_for_head(&self, head: u64, deadline: Deadline) -> Result<(), ConsumerError> {
        let waited =
            self.ledger
                .wait_for_head_cancellable(head, deadline, Some(&self.shared.cancel));
        match waited {
            Ok(_) => Ok(()),
            Err(WaitError::TimedOut) => Err(ConsumerError::TimedOut),
            Err(WaitError::Cancelled) => Err(lock(&self.shared.state)
                .stopped
                .clone()
                .unwrap_or(ConsumerError::Closed)),
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("delivered", &state.marks.as_ref().map(Marks::delivered))
            .field("persisted", &state.marks.as_ref().map(Marks::persisted))
            .field("stopped", &state.stopped)
            .finish_non_exhaustive()
    }
}

/// The entries of a [`Consumer`], from [`Consumer::iter`].
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
/// let consumer = Consumer::open(ledger, table, ConsumerConfig::temporary())?;
/// let mut seen = Vec::new();
/// for entry in consumer.iter() {
///     let entry = entry?; // an error that stopped the consumer
///     seen.push(entry.sequence);
///     if entry.sequence == 3 {
///         consumer.close()?; // the iterator ends at the close (else it waits for more)
///     }
/// }
/// assert_eq!(seen, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Iter<'a> {
    consumer: &'a Consumer,
    done: bool,
}

impl Iterator for Iter<'_> {
    type Item = Result<Entry, ConsumerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.consumer.recv(Deadline::Forever) {
            Ok(entry) => Some(Ok(entry)),
            Err(ConsumerError::Closed) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

impl<'a> IntoIterator for &'a Consumer {
    type Item = Result<Entry, ConsumerError>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod scheduling_tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::ledger::{Ledger, LedgerConfig};
    use crate::storage::sim::SimStorage;
    use crate::table::{Table, TableConfig};

    /// The scheduling policies of this process's committer threads (named
    /// "ringledger-consumer", which reads "ringledger-cons" cut to 15 bytes), from the kernel
    /// (glibc's `pthread_getschedparam` caches what it read first).
    fn committer_policies() -> Vec<libc::c_int> {
        let mut policies = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() != "ringledger-cons" {
                continue;
            }
            let Ok(tid) = task.file_name().to_string_lossy().parse::<libc::pid_t>() else {
                continue;
            };
            // SAFETY: a getter of another thread's policy; -1 if it has exited meanwhile.
            let policy = unsafe { libc::sched_getscheduler(tid) };
            if policy != -1 {
                policies.push(policy);
            }
        }
        policies
    }

    fn open(config: ConsumerConfig) -> Consumer {
        let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default()).unwrap();
        let table = Table::open_in(Arc::new(SimStorage::new()), TableConfig::default()).unwrap();
        Consumer::open(ledger, Arc::new(table), config).unwrap()
    }

    /// With relaxed acks the committer asks not to preempt on wake-up (`SCHED_BATCH`); by
    /// default it keeps the policy it inherited. (No other test asks for relaxed acks, so a
    /// committer in `SCHED_BATCH` is this test's.)
    #[test]
    fn a_relaxed_committer_yields_on_wake_up() {
        // SAFETY: a getter of this thread's own policy.
        let ours = unsafe { libc::sched_getscheduler(0) };
        let allowed = std::thread::spawn(|| {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: this scratch thread's own policy.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0 }
        })
        .join()
        .unwrap();
        if ours != libc::SCHED_OTHER || !allowed {
            eprintln!("skipped: this thread is not SCHED_OTHER, or SCHED_BATCH is refused here");
            return;
        }
        let relaxed = open(ConsumerConfig::named("relaxed").with_relaxed_acks(true));
        let start = Instant::now();
        while !committer_policies().contains(&libc::SCHED_BATCH) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no committer in SCHED_BATCH"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        relaxed.close().unwrap();
        let default = open(ConsumerConfig::named("default"));
        for _ in 0..50 {
            let policies = committer_policies();
            assert!(!policies.contains(&libc::SCHED_BATCH), "{policies:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
        default.close().unwrap();
    }
}
