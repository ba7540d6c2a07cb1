//! The producer for tasks (feature `async`): [`Producer::write_async`], an [`Ack`] as a
//! future, and the producer as a [`Sink`] of entries.
//!
//! The queue and its worker thread are the blocking producer's: a task that finds room
//! queues its entry as [`write`](Producer::write) does (under the queue's lock, joining the
//! current run, no allocation of its own), and a task that finds the queue full registers its
//! waker under that lock, counted with the blocked writers, so the worker wakes it when it
//! takes entries out (and a close wakes it). Acks keep their results where threads wait for
//! them; a task's waker sits beside the condition variable and is woken by the same
//! resolution.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_sink::Sink;

use super::ack::{Ack, Slot};
use super::worker::{Shared, State};
use super::{Producer, ProducerError};
use crate::ledger::Entry;
use crate::sync::{lock, Arc, MutexGuard};

impl State {
    /// Wakes the tasks waiting for room, uncounting them from the blocked writers.
    pub(super) fn wake_room_tasks(&mut self) {
        if self.room_tasks.is_empty() {
            return;
        }
        let wakers = self.room_tasks.take();
        self.blocked_writers -= wakers.len();
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl Shared {
    /// The locked queue when it has room for `n` entries (a group larger than the queue: when
    /// it is empty); else, with a context, the task is registered under `id` to be woken when
    /// entries are taken out.
    fn poll_room(
        &self,
        cx: Option<&mut Context<'_>>,
        n: usize,
        id: &mut Option<u64>,
    ) -> Poll<Result<MutexGuard<'_, State>, ProducerError>> {
        let mut state = lock(&self.state);
        if state.closed || state.queued + n <= self.capacity || state.queued == 0 {
            if state.room_tasks.remove(id) {
                state.blocked_writers -= 1;
            }
            if state.closed {
                return Poll::Ready(Err(ProducerError::Closed));
            }
            return Poll::Ready(Ok(state));
        }
        if let Some(cx) = cx {
            if state.room_tasks.register(id, cx.waker()) {
                state.blocked_writers += 1;
            }
        }
        Poll::Pending
    }

    /// Takes the task registered under `id` out of the ones waiting for room.
    fn forget_room(&self, id: &mut Option<u64>) {
        if id.is_some() {
            let mut state = lock(&self.state);
            if state.room_tasks.remove(id) {
                state.blocked_writers -= 1;
            }
        }
    }
}

impl Producer {
    /// Queues `entry` for the next batch and returns its [`Ack`], waiting as long as it takes
    /// while the queue is full: the async form of [`write`](Self::write) (feature `async`).
    /// Fails with [`ProducerError::Closed`] once the producer is closed; a timeout is the
    /// runtime's.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped before it completes, the entry was not queued (it is dropped
    /// with the future) and no waker stays registered. An entry is queued only in the poll
    /// that returns its ack.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::producer::{Producer, ProducerConfig};
    /// use ringledger::storage::sim::SimStorage;
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let producer = Producer::new(ledger.clone(), ProducerConfig::default())?;
    /// futures::executor::block_on(async {
    ///     let ack = producer.write_async(Entry::new(1, "event")).await?;
    ///     ack.await // resolves once the entry's batch is in the ledger
    /// })?;
    /// assert_eq!(ledger.head(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_async(&self, entry: Entry) -> Write<'_> {
        Write {
            producer: self,
            entries: Some(Queued::One(entry)),
            id: None,
            done: None,
        }
    }

    /// Queues `entries` as one write with one [`Ack`], waiting as long as it takes for room
    /// for all of them: the async form of [`write_batch`](Self::write_batch) (feature
    /// `async`), with its rules (one ledger write, all or nothing; an empty `entries` is
    /// acknowledged `Ok` at once).
    ///
    /// # Cancel safety
    ///
    /// As [`write_async`](Self::write_async): dropped before it completes, it queued nothing.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::producer::{Producer, ProducerConfig};
    /// use ringledger::storage::sim::SimStorage;
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let producer = Producer::new(ledger.clone(), ProducerConfig::default())?;
    /// let entries: Vec<Entry> = (1..=500).map(|seq| Entry::new(seq, "event")).collect();
    /// futures::executor::block_on(async { producer.write_batch_async(entries).await?.await })?;
    /// assert_eq!(ledger.len(), 500);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_batch_async(&self, entries: Vec<Entry>) -> Write<'_> {
        Write {
            producer: self,
            entries: Some(Queued::Group(entries)),
            id: None,
            done: None,
        }
    }

    /// The producer as a [`Sink`] of entries (feature `async`), for any handle to it: `&Producer`
    /// or an `Arc<Producer>` a task owns.
    ///
    /// Sending queues the entry (waiting while the queue is full), in the order sent;
    /// flushing waits until every entry sent so far has its result and fails with the first
    /// error among them; closing the sink flushes it and leaves the producer open (close the
    /// producer itself, which joins its worker thread).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use futures::SinkExt;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::producer::{Producer, ProducerConfig};
    /// use ringledger::storage::sim::SimStorage;
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let producer = Arc::new(Producer::new(ledger.clone(), ProducerConfig::default())?);
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// runtime.block_on(async {
    ///     let mut sink = Producer::sink(producer.clone());
    ///     for seq in 1..=100 {
    ///         sink.feed(Entry::new(seq, "event")).await?;
    ///     }
    ///     sink.flush().await // every entry is in the ledger now
    /// })?;
    /// assert_eq!(ledger.len(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sink<P: Deref<Target = Producer>>(producer: P) -> EntrySink<P> {
        EntrySink {
            producer,
            id: None,
            acks: VecDeque::new(),
        }
    }
}

/// What a [`Write`] queues.
enum Queued {
    One(Entry),
    Group(Vec<Entry>),
}

impl Queued {
    fn len(&self) -> usize {
        match self {
            Queued::One(_) => 1,
            Queued::Group(entries) => entries.len(),
        }
    }
}

/// The future of [`Producer::write_async`] and [`Producer::write_batch_async`]: the
/// [`Ack`] once the entries are queued. Polling it again after it completed returns the same
/// result.
///
/// ```
/// use std::sync::Arc;
/// use futures::executor::block_on;
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::producer::{Producer, ProducerConfig, ProducerError};
/// use ringledger::storage::sim::SimStorage;
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// let producer = Producer::new(ledger.clone(), ProducerConfig::default())?;
/// // A future that is never polled queues nothing.
/// drop(producer.write_async(Entry::new(1, "dropped")));
/// block_on(async { producer.write_async(Entry::new(2, "kept")).await?.await })?;
/// assert_eq!(ledger.read(1, 10)?.iter().map(|e| e.sequence).collect::<Vec<_>>(), [2]);
///
/// producer.close();
/// let closed = block_on(producer.write_async(Entry::new(3, "late")));
/// assert!(matches!(closed, Err(ProducerError::Closed)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled: the entries are queued by the poll that completes"]
pub struct Write<'p> {
    producer: &'p Producer,
    entries: Option<Queued>,
    /// The task's registration among those waiting for room.
    id: Option<u64>,
    done: Option<Result<Ack, ProducerError>>,
}

impl Future for Write<'_> {
    type Output = Result<Ack, ProducerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(done) = &this.done {
            return Poll::Ready(done.clone());
        }
        let shared = &this.producer.shared;
        if matches!(&this.entries, Some(Queued::Group(entries)) if entries.is_empty()) {
            // As `write_batch`: nothing to queue, so nothing to wait for.
            let result = match this.producer.is_closed() {
                true => Err(ProducerError::Closed),
                false => Ok(Ack::settled()),
            };
            this.entries = None;
            this.done = Some(result.clone());
            return Poll::Ready(result);
        }
        let n = this.entries.as_ref().map_or(0, Queued::len);
        let result = match shared.poll_room(Some(cx), n, &mut this.id) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(state)) => match this.entries.take() {
                Some(Queued::One(entry)) => Ok(shared.enqueue(state, entry)),
                Some(Queued::Group(entries)) => Ok(shared.enqueue_group(state, entries)),
                None => Err(ProducerError::Closed),
            },
            Poll::Ready(Err(error)) => Err(error),
        };
        this.done = Some(result.clone());
        Poll::Ready(result)
    }
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        self.producer.shared.forget_room(&mut self.id);
    }
}

impl fmt::Debug for Write<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Write")
            .field("queued", &self.done.is_some())
            .field("waiting", &self.id.is_some())
            .finish_non_exhaustive()
    }
}

/// An [`Ack`] awaited: the entry's result (feature `async`); from `ack.await` or
/// [`Ack::wait_async`]. Polling it again after it completed returns the same result.
///
/// # Cancel safety
///
/// Cancel-safe: it only looks at the result, and dropping it leaves no waker registered.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::producer::{Producer, ProducerConfig};
/// use ringledger::storage::sim::SimStorage;
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// let producer = Producer::new(ledger.clone(), ProducerConfig::default())?;
/// let runtime = tokio::runtime::Runtime::new()?;
/// runtime.block_on(async {
///     let ack = producer.write_async(Entry::new(1, "event")).await?;
///     // The future has no deadline of its own: the runtime's timeout bounds it.
///     tokio::time::timeout(Duration::from_secs(10), ack.wait_async()).await??;
///     Ok::<_, Box<dyn std::error::Error>>(())
/// })?;
/// assert_eq!(ledger.head(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct AckFuture {
    slot: Arc<Slot>,
    id: Option<u64>,
}

impl Ack {
    /// The entry's result, awaited: the async form of [`wait`](Self::wait) (feature
    /// `async`), without a deadline. `ack.await` does the same with the ack itself.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::producer::{Producer, ProducerConfig};
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::wait::Deadline;
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let producer = Producer::new(ledger, ProducerConfig::default())?;
    /// let ack = producer.write(Entry::new(1, "a"), Deadline::Forever)?;
    /// futures::executor::block_on(ack.wait_async())?;
    /// assert!(ack.is_done());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_async(&self) -> AckFuture {
        AckFuture {
            slot: Arc::clone(&self.slot),
            id: None,
        }
    }
}

impl IntoFuture for Ack {
    type Output = Result<(), ProducerError>;
    type IntoFuture = AckFuture;

    fn into_future(self) -> AckFuture {
        AckFuture {
            slot: self.slot,
            id: None,
        }
    }
}

impl AckFuture {
    /// The result, or `Pending` with the task registered (with a context).
    fn poll_result(&mut self, cx: Option<&mut Context<'_>>) -> Poll<Result<(), ProducerError>> {
        let mut state = lock(&self.slot.state);
        if let Some(result) = &state.result {
            let result = result.clone();
            state.tasks.remove(&mut self.id);
            return Poll::Ready(result);
        }
        if let Some(cx) = cx {
            state.tasks.register(&mut self.id, cx.waker());
        }
        Poll::Pending
    }

    fn same_ack(&self, ack: &Ack) -> bool {
        Arc::ptr_eq(&self.slot, &ack.slot)
    }
}

impl Future for AckFuture {
    type Output = Result<(), ProducerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_result(Some(cx))
    }
}

impl Drop for AckFuture {
    fn drop(&mut self) {
        if self.id.is_some() {
            lock(&self.slot.state).tasks.remove(&mut self.id);
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

/// A [`Producer`] as a [`Sink`] of entries, from [`Producer::sink`].
///
/// `poll_ready` waits for room in the queue and `start_send` queues the entry at once, so
/// entries are queued in the order they are sent, and an entry sent under a lock is queued
/// under it (the order the ledger's sequences need). Room is not reserved between the two:
/// when several writers race for the last place, the queue takes the entry anyway and holds
/// at most one more per sink that raced. The sink keeps the [`Ack`]s of what it queued (one
/// per run of entries that share one) until they resolve: `poll_flush` returns once all have,
/// with the first error among them, and `poll_ready` reports an error already known.
///
/// ```
/// use std::sync::Arc;
/// use futures::{stream, SinkExt, StreamExt};
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::producer::{Producer, ProducerConfig, ProducerError};
/// use ringledger::storage::sim::SimStorage;
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// let producer = Producer::new(ledger.clone(), ProducerConfig::default())?;
/// let mut sink = Producer::sink(&producer);
/// futures::executor::block_on(async {
///     let mut entries = stream::iter(1..=1000).map(|seq| Ok(Entry::new(seq, "event")));
///     sink.send_all(&mut entries).await?; // queued in order, then flushed
///     assert_eq!(sink.unresolved(), 0);
///     Ok::<_, ProducerError>(())
/// })?;
/// assert_eq!(ledger.len(), 1000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "sinks do nothing unless entries are sent into them"]
pub struct EntrySink<P: Deref<Target = Producer>> {
    producer: P,
    /// The task's registration among those waiting for room.
    id: Option<u64>,
    /// The acks of queued entries not known to be `Ok` yet, oldest first.
    acks: VecDeque<AckFuture>,
}

impl<P: Deref<Target = Producer>> EntrySink<P> {
    /// Acks of queued entries whose result is not known yet (a run of entries shares one).
    #[must_use]
    pub fn unresolved(&self) -> usize {
        self.acks.len()
    }

    /// Drops the resolved `Ok` acks from the front; returns the first error found (once).
    fn poll_acks(&mut self, mut cx: Option<&mut Context<'_>>) -> Poll<Result<(), ProducerError>> {
        while let Some(front) = self.acks.front_mut() {
            match front.poll_result(cx.as_deref_mut()) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    self.acks.pop_front();
                    result?;
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<P: Deref<Target = Producer>> Unpin for EntrySink<P> {}

impl<P: Deref<Target = Producer>> Sink<Entry> for EntrySink<P> {
    type Error = ProducerError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        // Report a failed batch at the next send, without waiting for pending ones.
        if let Poll::Ready(Err(error)) = this.poll_acks(None) {
            return Poll::Ready(Err(error));
        }
        this.producer
            .shared
            .poll_room(Some(cx), 1, &mut this.id)
            .map_ok(drop)
    }

    fn start_send(self: Pin<&mut Self>, entry: Entry) -> Result<(), Self::Error> {
        let this = self.get_mut();
        let shared = &this.producer.shared;
        let state = lock(&shared.state);
        if state.closed {
            return Err(ProducerError::Closed);
        }
        let ack = shared.enqueue(state, entry);
        if !this.acks.back().is_some_and(|last| last.same_ack(&ack)) {
            this.acks.push_back(ack.into_future());
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().poll_acks(Some(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_flush(cx)
    }
}

impl<P: Deref<Target = Producer>> Drop for EntrySink<P> {
    fn drop(&mut self) {
        self.producer.shared.forget_room(&mut self.id);
    }
}

impl<P: Deref<Target = Producer>> fmt::Debug for EntrySink<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntrySink")
            .field("unresolved_acks", &self.acks.len())
            .finish_non_exhaustive()
    }
}
