//! The consumer for tasks (feature `async`): [`Consumer::recv_async`], the consumer as a
//! [`Stream`] of entries, and an [`Ack`] as a future.
//!
//! `recv_async` reads as [`recv`](Consumer::recv) does (the same read-ahead, window and
//! stop rules, on the caller's task); where `recv` parks, the task waits: for the ledger's
//! head on the ledger's [`Waiters`](crate::wait::Waiters), with the consumer's cancel token
//! (a stop wakes it), and for room in the window or an ack's result with its waker beside the
//! condition variables, in `Shared::tasks`. The committer wakes those tasks after each
//! persist, as it notifies the threads, and a stop wakes them all. `tasks` is locked after
//! `state`, never before it, and a task registers only after checking its condition under the
//! `state` lock that the committer changes it under: no wake-up is lost.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures_core::{FusedStream, Stream};

use super::{next_ready, Ack, Consumer, ConsumerError, Ready, Shared};
use crate::ledger::Entry;
use crate::sync::{lock, Arc};
use crate::wait::{TaskSlot, WakerSet};

/// The tasks waiting on a consumer, besides those waiting for the ledger's head.
#[derive(Debug, Default)]
pub(super) struct Tasks {
    /// `recv_async` calls waiting for room in the window.
    room: WakerSet,
    /// Acks awaited.
    acks: WakerSet,
}

impl Shared {
    /// Wakes every waiting task (they look at the state again when polled).
    pub(super) fn wake_tasks(&self) {
        let mut tasks = lock(&self.tasks);
        if tasks.room.is_empty() && tasks.acks.is_empty() {
            return;
        }
        let mut wakers = tasks.room.take();
        wakers.extend(tasks.acks.take());
        drop(tasks);
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Where a receiving task waits between polls.
#[derive(Debug, Default)]
struct Waiting {
    /// Its registration with the ledger's head.
    head: TaskSlot,
    /// Its registration among the tasks waiting for room.
    room: Option<u64>,
    /// When it first found the window full (for the window's deadline).
    full_since: Option<Instant>,
}

impl Consumer {
    /// The next entry, waiting as long as it takes (for one, and for room in the window): the
    /// async form of [`recv`](Self::recv) (feature `async`). It never returns
    /// [`ConsumerError::TimedOut`]; any error means the consumer stopped.
    ///
    /// The window's [`deadline`](super::ConsumerConfig::deadline) is checked whenever the task
    /// is woken or polled, but no timer wakes it for that: a full window that nobody marks
    /// waits until the runtime's timeout drops the future.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: an entry is delivered (taken into the window) only in the poll that
    /// returns it, so dropping the future loses no entry, and it leaves no waker registered.
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
    /// let consumer = Consumer::open(ledger.clone(), table.clone(), ConsumerConfig::named("audit"))?;
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// runtime.block_on(async {
    ///     let writer = ledger.clone();
    ///     tokio::spawn(async move { writer.write(&[Entry::new(1, "late")]) });
    ///     let entry = consumer.recv_async().await?; // waits for the write
    ///     consumer.mark(entry.sequence, false)?.await // the mark is in the table
    /// })?;
    /// assert_eq!(table.get("audit")?, [1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_async(&self) -> Recv<'_> {
        Recv {
            consumer: self,
            waiting: Waiting::default(),
        }
    }

    /// The entries as a [`Stream`] (feature `async`): each item is
    /// [`recv_async`](Self::recv_async). It ends when the consumer is closed; an error that
    /// stopped the consumer is its last item (as [`iter`](Self::iter)).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use futures::StreamExt;
    /// use ringledger::consumer::{Consumer, ConsumerConfig};
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::table::{Table, TableConfig};
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default())?);
    /// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
    /// let consumer = Consumer::open(ledger, table, ConsumerConfig::temporary())?;
    /// let seen = futures::executor::block_on(async {
    ///     let mut seen = Vec::new();
    ///     let mut entries = consumer.stream();
    ///     while let Some(entry) = entries.next().await {
    ///         let entry = entry?;
    ///         seen.push(entry.sequence);
    ///         if entry.sequence == 3 {
    ///             consumer.close()?; // the stream ends at the close (else it waits for more)
    ///         }
    ///     }
    ///     Ok::<_, ringledger::consumer::ConsumerError>(seen)
    /// })?;
    /// assert_eq!(seen, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stream(&self) -> RecvStream<'_> {
        RecvStream {
            consumer: self,
            waiting: Waiting::default(),
            done: false,
        }
    }

    /// The next entry, or `Pending` with the task registered where `recv` would wait.
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        waiting: &mut Waiting,
    ) -> Poll<Result<Entry, ConsumerError>> {
        loop {
            let mut reader = lock(&self.reader);
            if reader.ahead.is_empty() {
                match self.read_ahead(&mut reader) {
                    Err(error) => return self.settled(waiting, Err(error)),
                    Ok(None) => {}
                    Ok(Some(head)) => {
                        drop(reader);
                        let cancel = Some(&self.shared.cancel);
                        match self.ledger.poll_head(cx, &mut waiting.head, head, cancel) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(Ok(_)) => continue,
                            Poll::Ready(Err(_)) => {
                                let stopped = lock(&self.shared.state).stopped.clone();
                                let reason = stopped.unwrap_or(ConsumerError::Closed);
                                return self.settled(waiting, Err(reason));
                            }
                        }
                    }
                }
            }
            let mut state = lock(&self.shared.state);
            if let Some(reason) = &state.stopped {
                let reason = reason.clone();
                drop(state);
                return self.settled(waiting, Err(reason));
            }
            match next_ready(&mut reader.ahead, &mut state.marks) {
                Ready::Entry(entry) => {
                    drop(state);
                    return self.settled(waiting, Ok(entry));
                }
                // Everything read ahead was skipped: read on.
                Ready::Empty => {}
                Ready::Full => {
                    // As `wait_for_room`: deferred marks are all that can make room.
                    let progress = state.progress;
                    if let Some(marks) = state.marks.as_mut() {
                        if marks.deferred() > 0 && !marks.flush_due() {
                            marks.request_flush();
                            self.shared.wake_committer();
                        }
                    }
                    if let Some(limit) = self.deadline {
                        let now = Instant::now();
                        let started = *waiting.full_since.get_or_insert(now);
                        if progress
                            .max(started)
                            .checked_add(limit)
                            .is_some_and(|at| now >= at)
                        {
                            drop(state);
                            drop(reader);
                            let stopped = self.stop(ConsumerError::Deadlock {
                                window: self.window,
                                deadline: limit,
                            });
                            return self.settled(waiting, Err(stopped));
                        }
                    }
                    // Under the state lock, which a persist that makes room holds too.
                    lock(&self.shared.tasks)
                        .room
                        .register(&mut waiting.room, cx.waker());
                    return Poll::Pending;
                }
            }
        }
    }

    /// `result`, with the task's room registration taken out.
    fn settled<R>(&self, waiting: &mut Waiting, result: R) -> Poll<R> {
        self.forget_room(waiting);
        waiting.full_since = None;
        Poll::Ready(result)
    }

    fn forget_room(&self, waiting: &mut Waiting) {
        if waiting.room.is_some() {
            lock(&self.shared.tasks).room.remove(&mut waiting.room);
        }
    }
}

/// The future of [`Consumer::recv_async`]: the next entry. Polling it again after it
/// completed receives the entry after that.
///
/// ```
/// use std::sync::Arc;
/// use futures::FutureExt;
/// use ringledger::consumer::{Consumer, ConsumerConfig};
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::table::{Table, TableConfig};
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default())?);
/// let consumer = Consumer::open(ledger.clone(), table, ConsumerConfig::temporary())?;
/// // Nothing to receive: the future is pending, and dropping it (a timeout, a `select!`)
/// // loses nothing.
/// assert!(consumer.recv_async().now_or_never().is_none());
///
/// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b")])?;
/// let mut recv = consumer.recv_async();
/// let first = futures::executor::block_on(&mut recv)?;
/// let second = futures::executor::block_on(&mut recv)?; // the same future, the next entry
/// assert_eq!((first.sequence, second.sequence), (1, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'c> {
    consumer: &'c Consumer,
    waiting: Waiting,
}

impl Future for Recv<'_> {
    type Output = Result<Entry, ConsumerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.consumer.poll_recv(cx, &mut this.waiting)
    }
}

impl Drop for Recv<'_> {
    fn drop(&mut self) {
        self.consumer.forget_room(&mut self.waiting);
    }
}

impl fmt::Debug for Recv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv")
            .field("waiting", &self.waiting)
            .finish_non_exhaustive()
    }
}

/// A [`Consumer`]'s entries as a [`Stream`], from [`Consumer::stream`].
///
/// Entries are delivered only in the poll that yields them, so dropping the stream (or a
/// `next()` future on it) loses none.
///
/// ```
/// use std::sync::Arc;
/// use futures::executor::block_on;
/// use futures::stream::{FusedStream, StreamExt};
/// use ringledger::consumer::{Consumer, ConsumerConfig};
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::table::{Table, TableConfig};
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default())?);
/// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
/// let consumer = Consumer::open(ledger, table, ConsumerConfig::temporary())?;
///
/// let mut entries = consumer.stream();
/// let first_two = (&mut entries).take(2).map(|entry| entry.unwrap().sequence);
/// assert_eq!(block_on(first_two.collect::<Vec<_>>()), [1, 2]);
/// consumer.close()?; // a closed consumer ends the stream: `None`, not an error
/// assert!(block_on(entries.next()).is_none());
/// assert!(entries.is_terminated());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct RecvStream<'c> {
    consumer: &'c Consumer,
    waiting: Waiting,
    done: bool,
}

impl Stream for RecvStream<'_> {
    type Item = Result<Entry, ConsumerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.consumer.poll_recv(cx, &mut this.waiting) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(entry)) => Poll::Ready(Some(Ok(entry))),
            Poll::Ready(Err(ConsumerError::Closed)) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Err(error)) => {
                this.done = true;
                Poll::Ready(Some(Err(error)))
            }
        }
    }
}

impl FusedStream for RecvStream<'_> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl Drop for RecvStream<'_> {
    fn drop(&mut self) {
        self.consumer.forget_room(&mut self.waiting);
    }
}

impl fmt::Debug for RecvStream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvStream")
            .field("waiting", &self.waiting)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// A consumer's [`Ack`] awaited: the mark's result (feature `async`); from `ack.await` or
/// [`Ack::wait_async`]. Polling it again after it completed returns the same result.
///
/// # Cancel safety
///
/// Cancel-safe: it only looks at the result (dropping it does not undo the mark), and it
/// leaves no waker registered.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ringledger::consumer::{Consumer, ConsumerConfig};
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::table::{Table, TableConfig};
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default())?);
/// ledger.write(&[Entry::new(1, "a")])?;
/// let consumer = Consumer::open(ledger, table.clone(), ConsumerConfig::named("audit"))?;
/// let runtime = tokio::runtime::Runtime::new()?;
/// runtime.block_on(async {
///     let entry = consumer.recv_async().await?;
///     let ack = consumer.mark(entry.sequence, false)?;
///     // The future has no deadline of its own: the runtime's timeout bounds it.
///     tokio::time::timeout(Duration::from_secs(10), ack.wait_async()).await??;
///     Ok::<_, Box<dyn std::error::Error>>(())
/// })?;
/// assert_eq!(table.get("audit")?, [1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct AckFuture {
    pending: Option<(Arc<Shared>, u64)>,
    id: Option<u64>,
}

impl Ack {
    /// The mark's result, awaited: the async form of [`wait`](Self::wait) (feature
    /// `async`), without a deadline. `ack.await` does the same with the ack itself.
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
    /// ledger.write(&[Entry::new(1, "a")])?;
    /// let consumer = Consumer::open(ledger, table.clone(), ConsumerConfig::named("audit"))?;
    /// let ack = futures::executor::block_on(async {
    ///     let entry = consumer.recv_async().await?;
    ///     let ack = consumer.mark(entry.sequence, false)?;
    ///     ack.wait_async().await?;
    ///     Ok::<_, ringledger::consumer::ConsumerError>(ack)
    /// })?;
    /// assert!(ack.is_done());
    /// assert_eq!(table.get("audit")?, [1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_async(&self) -> AckFuture {
        AckFuture {
            pending: self.pending.clone(),
            id: None,
        }
    }
}

impl IntoFuture for Ack {
    type Output = Result<(), ConsumerError>;
    type IntoFuture = AckFuture;

    fn into_future(self) -> AckFuture {
        AckFuture {
            pending: self.pending,
            id: None,
        }
    }
}

impl Future for AckFuture {
    type Output = Result<(), ConsumerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some((shared, ticket)) = &this.pending else {
            return Poll::Ready(Ok(()));
        };
        let state = lock(&shared.state);
        let resolved = state.resolution(*ticket);
        let mut tasks = lock(&shared.tasks);
        match resolved {
            Some(result) => {
                tasks.acks.remove(&mut this.id);
                Poll::Ready(result)
            }
            None => {
                // Under the state lock, which the persist that resolves the ticket holds too.
                tasks.acks.register(&mut this.id, cx.waker());
                Poll::Pending
            }
        }
    }
}

impl Drop for AckFuture {
    fn drop(&mut self) {
        if let (Some((shared, _)), Some(_)) = (&self.pending, self.id) {
            lock(&shared.tasks).acks.remove(&mut self.id);
        }
    }
}

impl fmt::Debug for AckFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckFuture")
            .field("waiting", &self.id.is_some())
            .finish_non_exhaustive()
    }
}
