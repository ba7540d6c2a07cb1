//! The forwarder: a named consumer of a ledger that publishes every entry to a JetStream
//! subject, many publishes in flight, and marks an entry only once the stream acknowledged it.
//!
//! # Exactly once, in order
//!
//! - **Nothing lost.** An entry is marked (its position persisted in the table) only after
//!   the stream's publish acknowledgement for it, or for a later entry (see the chain below),
//!   so every entry not marked is published again by this run or the next.
//! - **Nothing doubled, nothing reordered.** Each message carries its id
//!   ([`wire::message_id`]: ledger id and sequence) and names the
//!   message that must be the stream's last one before it (`Nats-Expected-Last-Msg-Id`: the
//!   entry before it). The stream refuses a message whose predecessor is not its last one, so
//!   when a publish is lost (a leader killed, a connection cut) every message pipelined after
//!   it is refused too instead of landing out of order; a message stored twice is dropped by
//!   the duplicate window. The stream's messages of this ledger are therefore always a prefix
//!   of the ledger in order, and a stored message implies all before it are stored.
//! - **Resuming** (at the start and after any failure) reads the stream's last message: if it
//!   is this ledger's entry `M`, the entries up to `M` are in the stream and are marked without
//!   being sent again; the next message expects the stream's last sequence
//!   (`Nats-Expected-Last-Sequence`), so nothing slips in between unnoticed. This does not
//!   depend on the duplicate window: a forwarder restarted a week later does not resend.
//!
//! The chain makes one forwarder the only writer of its stream (the stream's last message is
//! the stream's, not the subject's). To collect many hosts, give each host's ledger its own
//! stream and let a central stream `sources` them (JetStream keeps each source's order).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind};
use async_nats::HeaderMap;
use futures_util::stream::{FuturesOrdered, StreamExt};
use futures_util::FutureExt;
use ringledger::consumer::{Consumer, ConsumerConfig, ConsumerError};
use ringledger::ledger::{Entry, Ledger};
use ringledger::table::Table;

use crate::server::{self, Backoff, Failure};
use crate::{wire, Error};

/// How a [`Forwarder`] runs.
///
/// ```
/// use std::time::Duration;
/// use ringledger_jetstream::ForwardConfig;
///
/// let config = ForwardConfig::new("EVENTS", "events.host1")
///     .with_consumer("to-central")
///     .with_in_flight(1024)
///     .with_follow(true)
///     .with_patience(Duration::from_secs(300));
/// assert_eq!(config.consumer, "to-central");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardConfig {
    /// The stream that must take the messages.
    pub stream: String,
    /// The subject to publish to (the stream must take it).
    pub subject: String,
    /// The ledger consumer's name: its positions in the table say what was forwarded.
    /// Default `jetstream`.
    pub consumer: String,
    /// The most publishes waiting for their acknowledgement. Default 4096.
    pub in_flight: usize,
    /// Entries read from the ledger at once. Default 512.
    pub batch: usize,
    /// Keep waiting for new entries (`true`), or stop once every entry there is has been
    /// forwarded (`false`). Default `false`.
    pub follow: bool,
    /// How long failures (a server gone, no leader) may last before the forwarder gives up
    /// with [`Error::GaveUp`]. Default 60 s.
    pub patience: Duration,
}

impl ForwardConfig {
    /// The default configuration for forwarding to `subject`, taken by `stream`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringledger_jetstream::ForwardConfig;
    ///
    /// let config = ForwardConfig::new("EVENTS", "events.host1");
    /// assert_eq!((config.stream.as_str(), config.subject.as_str()), ("EVENTS", "events.host1"));
    /// // Positions under the consumer `jetstream`; stop once caught up; give up after a minute.
    /// assert_eq!((config.consumer.as_str(), config.follow), ("jetstream", false));
    /// assert_eq!((config.in_flight, config.patience), (4096, Duration::from_secs(60)));
    /// ```
    #[must_use]
    pub fn new(stream: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            subject: subject.into(),
            consumer: "jetstream".into(),
            in_flight: 4096,
            batch: 512,
            follow: false,
            patience: Duration::from_secs(60),
        }
    }

    /// The configuration with this consumer name.
    #[must_use]
    pub fn with_consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = name.into();
        self
    }

    /// The configuration with this many publishes in flight (at least 1).
    #[must_use]
    pub fn with_in_flight(mut self, in_flight: usize) -> Self {
        self.in_flight = in_flight.max(1);
        self
    }

    /// The configuration following the ledger, or stopping when caught up.
    #[must_use]
    pub fn with_follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// The configuration with this patience.
    #[must_use]
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }
}

/// Counters a forwarder updates as it runs, for progress displays.
///
/// ```
/// use ringledger_jetstream::ForwardProgress;
///
/// let progress = ForwardProgress::default();
/// assert_eq!((progress.forwarded(), progress.retries()), (0, 0));
/// ```
#[derive(Debug, Default)]
pub struct ForwardProgress {
    forwarded: AtomicU64,
    already_there: AtomicU64,
    retries: AtomicU64,
    last: AtomicU64,
}

impl ForwardProgress {
    /// Entries acknowledged by the stream in this run.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    /// Entries found already in the stream (sent by an earlier run) and marked.
    pub fn already_there(&self) -> u64 {
        self.already_there.load(Ordering::Relaxed)
    }

    /// Retries after failures.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The newest sequence known to be in the stream.
    pub fn last_sequence(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }
}

/// What a forwarder did, when it stopped.
///
/// ```no_run
/// // no_run: it needs a NATS server with JetStream, and a stream EVENTS taking events.host1.
/// use std::sync::Arc;
/// use ringledger::queue::{Queue, QueueConfig};
/// use ringledger_jetstream::{ForwardConfig, Forwarder};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = Queue::open("/var/lib/app/events", QueueConfig::default())?;
/// let client = ringledger_jetstream::connect("nats://127.0.0.1:4222").await?;
/// let config = ForwardConfig::new("EVENTS", "events.host1"); // stops once caught up
/// let ledger = queue.ledger().clone();
/// let forwarder = Forwarder::open(client, ledger, Arc::clone(queue.table()), config).await?;
/// let summary = forwarder.run(std::future::pending()).await?;
/// // A run after a crash sends nothing the stream holds already: that is `already_there`.
/// println!(
///     "{} forwarded, {} already in the stream, up to {} ({} retries, {:?})",
///     summary.forwarded, summary.already_there, summary.last_sequence, summary.retries,
///     summary.elapsed,
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardSummary {
    /// Entries acknowledged by the stream in this run.
    pub forwarded: u64,
    /// Entries found already in the stream and marked without sending.
    pub already_there: u64,
    /// Retries after failures.
    pub retries: u64,
    /// The newest sequence known to be in the stream (0 if none).
    pub last_sequence: u64,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Forwards a ledger to a JetStream subject; see the [module documentation](self).
///
/// ```no_run
/// use std::sync::Arc;
/// use ringledger::queue::{Queue, QueueConfig};
/// use ringledger_jetstream::{ForwardConfig, Forwarder};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = Queue::open("/var/lib/app/events", QueueConfig::default())?;
/// let client = ringledger_jetstream::connect("nats://127.0.0.1:4222").await?;
/// let config = ForwardConfig::new("EVENTS", "events.host1");
/// let forwarder =
///     Forwarder::open(client, queue.ledger().clone(), Arc::clone(queue.table()), config).await?;
/// let summary = forwarder.run(std::future::pending()).await?;
/// println!("{} entries forwarded", summary.forwarded);
/// # Ok(())
/// # }
/// ```
pub struct Forwarder {
    js: jetstream::Context,
    ledger: Ledger,
    table: Arc<Table>,
    consumer: Arc<Consumer>,
    config: ForwardConfig,
    /// The server's `max_payload`, and the stream's `max_msg_size` if it has one.
    max_payload: usize,
    max_msg_size: Option<usize>,
    progress: Arc<ForwardProgress>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An acknowledgement to wait for: the entry's sequence and the publish's outcome.
type AckFuture =
    Pin<Box<dyn Future<Output = (u64, Result<jetstream::publish::PublishAck, String>)> + Send>>;

/// What the next message must find as the stream's last one.
#[derive(Debug, Clone)]
enum Chain {
    /// The stream's last sequence, read when resuming.
    Sequence(u64),
    /// The id of the message published before it.
    MessageId(String),
}

/// What the reader thread hands the publishing task.
enum Feed {
    Entries(Vec<Entry>),
    /// Every entry there is has been delivered (only when not following).
    CaughtUp,
    Failed(ConsumerError),
}

impl Forwarder {
    /// Checks that the stream exists and takes the subject, and opens the ledger consumer
    /// `config.consumer` (its positions in `table`).
    ///
    /// Errors: [`Error::StreamMissing`], [`Error::SubjectNotInStream`],
    /// [`Error::NoJetStream`], [`Error::Consumer`] (the consumer name is in use, say).
    ///
    /// ```no_run
    /// // no_run: it needs a NATS server with JetStream.
    /// use std::sync::Arc;
    /// use ringledger::queue::{Queue, QueueConfig};
    /// use ringledger_jetstream::{Error, ForwardConfig, Forwarder};
    ///
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = Queue::open("/var/lib/app/events", QueueConfig::default())?;
    /// let client = ringledger_jetstream::connect("nats://127.0.0.1:4222").await?;
    /// let config = ForwardConfig::new("EVENTS", "events.host1").with_consumer("to-central");
    /// let ledger = queue.ledger().clone();
    /// match Forwarder::open(client, ledger, Arc::clone(queue.table()), config).await {
    ///     Ok(forwarder) => drop(forwarder.run(std::future::pending()).await?),
    ///     Err(Error::StreamMissing { stream }) => eprintln!("create the stream {stream} first"),
    ///     Err(Error::SubjectNotInStream { subject, stream, .. }) => {
    ///         eprintln!("add {subject} to the subjects of {stream}")
    ///     }
    ///     Err(error) => return Err(error.into()),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(
        client: async_nats::Client,
        ledger: Ledger,
        table: Arc<Table>,
        config: ForwardConfig,
    ) -> Result<Self, Error> {
        let max_payload = client.server_info().max_payload;
        let js = jetstream::new(client);
        let mut backoff = Backoff::new(config.patience);
        let stream = backoff
            .retry(|| server::stream(&js, &config.stream, true))
            .await?;
        let info = stream.cached_info();
        if !info
            .config
            .subjects
            .iter()
            .any(|pattern| server::subject_matches(pattern, &config.subject))
        {
            return Err(Error::SubjectNotInStream {
                subject: config.subject.clone(),
                stream: config.stream.clone(),
                subjects: info.config.subjects.join(", "),
            });
        }
        let max_msg_size = usize::try_from(info.config.max_message_size).ok();
        let consumer_config = ConsumerConfig::named(config.consumer.clone())
            .with_batch(config.batch)
            // Room for the publishes in flight, the acknowledged ones waiting for their mark
            // (a quarter of that) and a batch read ahead.
            .with_window(2 * config.in_flight + 2 * config.batch);
        let consumer = Consumer::open(ledger.clone(), Arc::clone(&table), consumer_config)?;
        Ok(Self {
            js,
            ledger,
            table,
            consumer: Arc::new(consumer),
            config,
            max_payload,
            max_msg_size,
            progress: Arc::new(ForwardProgress::default()),
        })
    }

    /// The counters this forwarder updates, for a progress display on another task.
    pub fn progress(&self) -> Arc<ForwardProgress> {
        Arc::clone(&self.progress)
    }

    /// Forwards until caught up (or, with [`follow`](ForwardConfig::follow), until `stop`
    /// completes), then waits for the acknowledgements in flight, persists the marks and
    /// closes the consumer.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing (marks follow acknowledgements), but leaves the
    /// consumer's reader thread to notice on its own; complete `stop` instead for a clean end.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<ForwardSummary, Error> {
        let started = Instant::now();
        let halt = Arc::new(AtomicBool::new(false));
        let (feed_tx, feed_rx) = tokio::sync::mpsc::channel(4);
        let reader = self.spawn_reader(feed_tx, Arc::clone(&halt))?;
        let mut run = Run {
            forwarder: &self,
            feed: feed_rx,
            feed_done: false,
            backlog: VecDeque::new(),
            unacked: VecDeque::new(),
            acks: FuturesOrdered::new(),
            chain: Chain::Sequence(0),
            in_stream: 0,
            done_through: 0,
            marked: 0,
            last_mark: Instant::now(),
            backoff: Backoff::new(self.config.patience),
            ledger_id: self.ledger.id(),
        };
        let outcome = run.run(stop).await;
        // Whatever happened, what the stream acknowledged is marked before the consumer closes.
        let marked = run.flush_marks();
        halt.store(true, Ordering::Relaxed);
        drop(run);
        let _ = reader.join();
        let closed = self.consumer.close();
        outcome?;
        marked?;
        closed?;
        Ok(ForwardSummary {
            forwarded: self.progress.forwarded(),
            already_there: self.progress.already_there(),
            retries: self.progress.retries(),
            last_sequence: self.progress.last_sequence(),
            elapsed: started.elapsed(),
        })
    }

    /// The thread reading the ledger (the consumer's API blocks) and feeding the publisher.
    fn spawn_reader(
        &self,
        feed: tokio::sync::mpsc::Sender<Feed>,
        halt: Arc<AtomicBool>,
    ) -> Result<std::thread::JoinHandle<()>, Error> {
        let consumer = Arc::clone(&self.consumer);
        let (ledger, table) = (self.ledger.clone(), Arc::clone(&self.table));
        let (name, batch, follow) = (
            self.config.consumer.clone(),
            self.config.batch,
            self.config.follow,
        );
        std::thread::Builder::new()
            .name("ringledger-forward".into())
            .spawn(move || {
                let mut last_delivered = 0;
                while !halt.load(Ordering::Relaxed) {
                    let mut entries = Vec::with_capacity(batch);
                    let item =
                        match consumer.recv_batch(batch, Duration::from_millis(50), &mut entries) {
                            Ok(_) => {
                                last_delivered =
                                    entries.last().map_or(last_delivered, |e| e.sequence);
                                Feed::Entries(entries)
                            }
                            Err(ConsumerError::TimedOut) => {
                                if follow {
                                    continue;
                                }
                                let head = ledger.head();
                                let persisted = table
                                    .get(&name)
                                    .ok()
                                    .and_then(|p| p.first().copied())
                                    .unwrap_or(0);
                                if last_delivered.max(persisted) < head {
                                    continue;
                                }
                                Feed::CaughtUp
                            }
                            Err(ConsumerError::Closed) => return,
                            Err(error) => Feed::Failed(error),
                        };
                    let last = !matches!(item, Feed::Entries(_));
                    if feed.blocking_send(item).is_err() || last {
                        return;
                    }
                }
            })
            .map_err(Error::Runtime)
    }
}

/// One run's state: entries waiting to be published, published and waiting for their
/// acknowledgement, and what the stream is known to hold.
struct Run<'a> {
    forwarder: &'a Forwarder,
    feed: tokio::sync::mpsc::Receiver<Feed>,
    feed_done: bool,
    /// Delivered by the consumer, not published yet (or to publish again), in order.
    backlog: VecDeque<Entry>,
    /// Published, acknowledgement pending, in order (the same order as `acks`).
    unacked: VecDeque<Entry>,
    acks: FuturesOrdered<AckFuture>,
    /// What the next publish expects of the stream.
    chain: Chain,
    /// Entries up to this sequence are in the stream (read when resuming).
    in_stream: u64,
    /// Entries up to this sequence are in the stream and delivered: to be marked.
    done_through: u64,
    /// What was marked so far, and when.
    marked: u64,
    last_mark: Instant,
    backoff: Backoff,
    ledger_id: u64,
}

impl Run<'_> {
    async fn run(&mut self, stop: impl Future<Output = ()>) -> Result<(), Error> {
        self.resume().await?;
        let mut stop = std::pin::pin!(stop);
        let in_flight = self.forwarder.config.in_flight;
        loop {
            if self.feed_done && self.backlog.is_empty() && self.unacked.is_empty() {
                return Ok(());
            }
            tokio::select! {
                biased;
                () = &mut stop => {
                    self.drain_acks().await;
                    return Ok(());
                }
                Some((sequence, outcome)) = self.acks.next(), if !self.acks.is_empty() => {
                    match outcome {
                        Ok(_) => {
                            self.acknowledged(sequence);
                            // And whatever else has been acknowledged meanwhile.
                            while let Some(Some((sequence, outcome))) =
                                self.acks.next().now_or_never()
                            {
                                match outcome {
                                    Ok(_) => self.acknowledged(sequence),
                                    Err(failure) => {
                                        self.fail(sequence, failure).await?;
                                        break;
                                    }
                                }
                            }
                        }
                        Err(failure) => {
                            self.fail(sequence, failure).await?;
                        }
                    }
                }
                item = self.feed.recv(), if self.backlog.is_empty() && !self.feed_done
                    && self.unacked.len() < in_flight => {
                    match item {
                        Some(Feed::Entries(entries)) => self.backlog.extend(entries),
                        Some(Feed::CaughtUp) | None => self.feed_done = true,
                        Some(Feed::Failed(error)) => {
                            self.drain_acks().await;
                            return Err(error.into());
                        }
                    }
                }
            }
            self.publish_backlog().await?;
            // A mark costs a table write (shared by the marks made meanwhile): one per quarter
            // of the window in flight, or per 50 ms, is plenty.
            if self.done_through - self.marked >= (in_flight as u64 / 4).max(1)
                || self.last_mark.elapsed() >= Duration::from_millis(50)
                || self.unacked.is_empty()
            {
                self.flush_marks()?;
            }
        }
    }

    /// Publishes from the backlog while there is room in flight.
    async fn publish_backlog(&mut self) -> Result<(), Error> {
        while self.unacked.len() < self.forwarder.config.in_flight {
            let Some(entry) = self.backlog.pop_front() else {
                return Ok(());
            };
            if entry.sequence <= self.in_stream {
                // Sent by an earlier run (or before a failure) and stored.
                self.done_through = entry.sequence;
                self.forwarder
                    .progress
                    .already_there
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let message_id = wire::message_id(self.ledger_id, entry.sequence);
            let (headers, size) = self.headers(&entry, &message_id);
            if let Some(limit) = self.too_large(size) {
                self.drain_acks().await;
                return Err(Error::TooLarge {
                    sequence: entry.sequence,
                    size,
                    limit: limit.0,
                    which: limit.1,
                });
            }
            let publish = jetstream::message::PublishMessage::build()
                .payload(entry.payload.clone())
                .headers(headers);
            match self
                .forwarder
                .js
                .send_publish(self.forwarder.config.subject.clone(), publish)
                .await
            {
                Ok(ack) => {
                    let sequence = entry.sequence;
                    self.unacked.push_back(entry);
                    self.chain = Chain::MessageId(message_id);
                    self.acks.push_back(Box::pin(async move {
                        (sequence, ack.await.map_err(|e| describe(&e)))
                    }));
                }
                Err(error) => {
                    self.backlog.push_front(entry);
                    self.recover(format!("publishing: {error}")).await?;
                }
            }
        }
        Ok(())
    }

    /// The headers of `entry` with the chain's expectation, and the message's size as the
    /// server counts it (payload and headers).
    fn headers(&self, entry: &Entry, message_id: &str) -> (HeaderMap, usize) {
        let mut headers = wire::entry_headers(entry);
        headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id);
        headers.insert(
            async_nats::header::NATS_EXPECTED_STREAM,
            self.forwarder.config.stream.as_str(),
        );
        match &self.chain {
            Chain::MessageId(id) => {
                headers.insert(
                    async_nats::header::NATS_EXPECTED_LAST_MESSAGE_ID,
                    id.as_str(),
                );
            }
            Chain::Sequence(s) => {
                headers.insert(
                    async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
                    s.to_string().as_str(),
                );
            }
        }
        let mut size = "NATS/1.0\r\n\r\n".len() + entry.payload.len();
        for (name, values) in headers.iter() {
            for value in values {
                size += AsRef::<str>::as_ref(name).len() + ": \r\n".len() + value.as_str().len();
            }
        }
        (headers, size)
    }

    /// The limit a message of `size` bytes passes, if any.
    fn too_large(&self, size: usize) -> Option<(usize, &'static str)> {
        if size > self.forwarder.max_payload {
            return Some((self.forwarder.max_payload, "the server's max_payload"));
        }
        match self.forwarder.max_msg_size {
            Some(limit) if size > limit => Some((limit, "the stream's max_msg_size")),
            _ => None,
        }
    }

    /// The stream acknowledged `sequence` (and, by the chain, everything before it).
    fn acknowledged(&mut self, sequence: u64) {
        while self.unacked.front().is_some_and(|e| e.sequence <= sequence) {
            self.unacked.pop_front();
            self.forwarder
                .progress
                .forwarded
                .fetch_add(1, Ordering::Relaxed);
        }
        self.done_through = self.done_through.max(sequence);
        self.in_stream = self.in_stream.max(sequence);
        self.forwarder
            .progress
            .last
            .store(sequence, Ordering::Relaxed);
        self.backoff.reset();
    }

    /// A publish of `sequence` failed: stop at an error retrying does not fix, else recover.
    async fn fail(&mut self, sequence: u64, failure: String) -> Result<(), Error> {
        if let Some(fatal) = fatal_refusal(&failure) {
            self.drain_acks().await;
            return Err(Error::Refused(format!("entry {sequence}: {fatal}")));
        }
        self.recover(format!("entry {sequence}: {failure}")).await
    }

    /// Waits for every acknowledgement in flight; what succeeded counts, what failed goes
    /// back to the front of the backlog (in order).
    async fn drain_acks(&mut self) {
        while let Some((sequence, outcome)) = self.acks.next().await {
            if outcome.is_ok() {
                self.acknowledged(sequence);
            }
        }
        while let Some(entry) = self.unacked.pop_back() {
            self.backlog.push_front(entry);
        }
    }

    /// After a failure: lets the publishes in flight settle, then resumes from what the stream
    /// holds, retrying with backoff.
    async fn recover(&mut self, failure: String) -> Result<(), Error> {
        self.drain_acks().await;
        self.flush_marks()?;
        self.backoff.wait(failure).await?;
        self.forwarder
            .progress
            .retries
            .store(self.backoff.retries, Ordering::Relaxed);
        self.resume().await
    }

    /// Reads the stream's last message and sets what the next publish expects; entries up to
    /// this ledger's last entry there are known to be stored.
    async fn resume(&mut self) -> Result<(), Error> {
        let forwarder = self.forwarder;
        let ledger_id = self.ledger_id;
        let (last_sequence, ours) = self
            .backoff
            .retry(|| last_message(&forwarder.js, &forwarder.config.stream, ledger_id))
            .await?;
        self.forwarder
            .progress
            .retries
            .store(self.backoff.retries, Ordering::Relaxed);
        if let Some(ours) = ours {
            self.in_stream = self.in_stream.max(ours);
            self.forwarder.progress.last.store(ours, Ordering::Relaxed);
        }
        self.chain = Chain::Sequence(last_sequence);
        // What is in the backlog and already stored is marked as the backlog is published.
        Ok(())
    }

    /// Marks everything up to `done_through` (one cumulative mark), if it moved.
    fn flush_marks(&mut self) -> Result<(), Error> {
        if self.done_through > self.marked {
            // Persisted in the background; `close` reports a table that failed.
            let _persisting = self.forwarder.consumer.mark(self.done_through, true)?;
            self.marked = self.done_through;
        }
        self.last_mark = Instant::now();
        Ok(())
    }
}

/// The stream's last sequence, and the sequence of this ledger's entry if the last message is
/// one.
async fn last_message(
    js: &jetstream::Context,
    stream: &str,
    ledger_id: u64,
) -> Result<(u64, Option<u64>), Failure> {
    let stream = server::stream(js, stream, false).await?;
    let last = stream.cached_info().state.last_sequence;
    if last == 0 {
        return Ok((0, None));
    }
    match server::bounded(
        "reading the stream's last message",
        stream.get_raw_message(last),
    )
    .await?
    {
        Ok(message) => {
            let ours = message
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .and_then(|id| wire::parse_message_id(id.as_str()))
                .filter(|(id, _)| *id == ledger_id)
                .map(|(_, sequence)| sequence);
            Ok((last, ours))
        }
        Err(error) => {
            use async_nats::jetstream::stream::LastRawMessageErrorKind as Kind;
            if matches!(error.kind(), Kind::NoMessageFound) {
                // Deleted: not ours to build on; the sequence check still holds.
                Ok((last, None))
            } else {
                Err(Failure::Transient(format!(
                    "reading the stream's last message: {error}"
                )))
            }
        }
    }
}

/// A publish error as one line, with its cause.
fn describe(error: &async_nats::jetstream::context::PublishError) -> String {
    let kind = match error.kind() {
        PublishErrorKind::StreamNotFound => "no stream answered (a leader election?)",
        PublishErrorKind::TimedOut => "no acknowledgement in time",
        PublishErrorKind::WrongLastMessageId | PublishErrorKind::WrongLastSequence => {
            "refused: not the next message (an earlier one was lost)"
        }
        _ => "",
    };
    let cause = std::error::Error::source(error).map(|e| e.to_string());
    match (kind, cause) {
        ("", Some(cause)) => format!("{error}: {cause}"),
        ("", None) => error.to_string(),
        (kind, _) => kind.to_owned(),
    }
}

/// The server's refusals retrying does not fix, from the failure's text: the stream's size
/// limit, a stream other than the one named taking the subject.
fn fatal_refusal(failure: &str) -> Option<&str> {
    const FATAL: [&str; 4] = [
        "message size exceeds maximum allowed",
        "expected stream does not match",
        "header size exceeds maximum allowed",
        "maximum payload exceeded",
    ];
    FATAL
        .iter()
        .any(|pattern| failure.to_ascii_lowercase().contains(pattern))
        .then_some(failure)
}
