//! The importer: a durable JetStream pull consumer writing a stream into a local ledger, a
//! batch per ledger write (and per sync, when the write is synced), acknowledging a batch only
//! after its write.
//!
//! # Exactly once
//!
//! The stream sequence is the ledger sequence. The ledger's head is therefore exactly "the
//! last message imported", persisted atomically with the entries (a ledger write is all or
//! nothing), and a message at or below the head (a redelivery after a crash between the write
//! and the acknowledgement) is skipped and acknowledged again. Acknowledging only after the
//! write means the server redelivers anything not written.
//!
//! What must not happen is a message delivered *after* one that was lost: a later message would
//! move the head past the lost one, and the lost one's redelivery would then be skipped. So
//! the importer checks that the consumer's delivery sequences arrive without a gap, and
//! resumes the consumer when they do not (or when anything else fails): the durable consumer
//! is used as it is when it has nothing pending and stands at the ledger's head, and is
//! otherwise created again to start at the head + 1, which is the ack floor or past it (the
//! acknowledgement follows the write).
//!
//! The ledger must have one writer, the importer; it stops with [`Error::ForeignWrite`]
//! when the head moves under it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, context::ConsumerInfoErrorKind};
use futures_util::{FutureExt, StreamExt};
use ringledger::ledger::{Durability, Entry, Ledger};

use crate::server::{self, Backoff, Failure};
use crate::{wire, Error};

/// How long a batch waits for more messages after its first, at most.
const LINGER: Duration = Duration::from_millis(2);

/// How an [`Importer`] runs.
///
/// ```
/// use ringledger::ledger::Durability;
/// use ringledger_jetstream::ImportConfig;
///
/// let config = ImportConfig::new("EVENTS", "central-archive")
///     .with_batch(4096)
///     .with_durability(Durability::Synced)
///     .with_follow(true);
/// assert_eq!(config.batch, 4096);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportConfig {
    /// The stream to import.
    pub stream: String,
    /// The durable pull consumer's name (created when missing).
    pub consumer: String,
    /// The most messages per ledger write. Default 1024.
    pub batch: usize,
    /// How each batch is written; `None` uses the ledger's configured durability. Default
    /// `None`.
    pub durability: Option<Durability>,
    /// Keep waiting for new messages (`true`), or stop once the ledger holds the stream's
    /// last message as of the start (`false`). Default `false`.
    pub follow: bool,
    /// How long failures may last before the importer gives up with [`Error::GaveUp`].
    /// Default 60 s.
    pub patience: Duration,
}

impl ImportConfig {
    /// The default configuration for importing `stream` through the durable `consumer`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringledger_jetstream::ImportConfig;
    ///
    /// let config = ImportConfig::new("EVENTS", "archive");
    /// assert_eq!((config.stream.as_str(), config.consumer.as_str()), ("EVENTS", "archive"));
    /// // Batches of 1024 at the ledger's durability; stop once caught up; give up after a minute.
    /// assert_eq!((config.batch, config.durability, config.follow), (1024, None, false));
    /// assert_eq!(config.patience, Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn new(stream: impl Into<String>, consumer: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            consumer: consumer.into(),
            batch: 1024,
            durability: None,
            follow: false,
            patience: Duration::from_secs(60),
        }
    }

    /// The configuration with this batch size (at least 1).
    #[must_use]
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The configuration writing with this durability.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = Some(durability);
        self
    }

    /// The configuration following the stream, or stopping when caught up.
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

/// Counters an importer updates as it runs, for progress displays.
///
/// ```
/// use ringledger_jetstream::ImportProgress;
///
/// assert_eq!(ImportProgress::default().imported(), 0);
/// ```
#[derive(Debug, Default)]
pub struct ImportProgress {
    imported: AtomicU64,
    skipped: AtomicU64,
    retries: AtomicU64,
    last: AtomicU64,
}

impl ImportProgress {
    /// Messages written to the ledger in this run.
    pub fn imported(&self) -> u64 {
        self.imported.load(Ordering::Relaxed)
    }

    /// Redelivered messages the ledger already held, skipped.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Retries after failures (and consumer resumes).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The ledger's head: the last stream sequence imported.
    pub fn last_sequence(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }
}

/// What an importer did, when it stopped.
///
/// ```no_run
/// // no_run: it needs a NATS server with JetStream and a stream EVENTS.
/// use ringledger::ledger::{Ledger, LedgerConfig};
/// use ringledger_jetstream::{ImportConfig, Importer};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let ledger = Ledger::open("/var/lib/central/events", LedgerConfig::default())?;
/// let client = ringledger_jetstream::connect("nats://127.0.0.1:4222").await?;
/// let config = ImportConfig::new("EVENTS", "archive"); // stops once caught up
/// let summary = Importer::open(client, ledger, config).await?.run(std::future::pending()).await?;
/// // Messages redelivered after a crash that the ledger held already are `skipped`.
/// println!(
///     "{} imported in {} writes, {} skipped, head {} ({} retries, {:?})",
///     summary.imported, summary.batches, summary.skipped, summary.last_sequence,
///     summary.retries, summary.elapsed,
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportSummary {
    /// Messages written to the ledger in this run.
    pub imported: u64,
    /// Redelivered messages the ledger already held.
    pub skipped: u64,
    /// Ledger writes.
    pub batches: u64,
    /// Retries after failures.
    pub retries: u64,
    /// The ledger's head at the end.
    pub last_sequence: u64,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Imports a JetStream stream into a ledger; see the [module documentation](self).
///
/// ```no_run
/// use ringledger::ledger::{Ledger, LedgerConfig};
/// use ringledger_jetstream::{ImportConfig, Importer};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let ledger = Ledger::open("/var/lib/central/events", LedgerConfig::default())?;
/// let client = ringledger_jetstream::connect("nats://127.0.0.1:4222").await?;
/// let importer = Importer::open(client, ledger, ImportConfig::new("EVENTS", "archive")).await?;
/// let summary = importer.run(std::future::pending()).await?;
/// println!("{} messages imported", summary.imported);
/// # Ok(())
/// # }
/// ```
pub struct Importer {
    js: jetstream::Context,
    ledger: Ledger,
    config: ImportConfig,
    progress: Arc<ImportProgress>,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A batch being collected: the entries to write and the message to acknowledge for all.
struct Batch {
    entries: Vec<Entry>,
    /// The message with the highest stream sequence (acknowledging it acknowledges all
    /// below: the consumer's policy is `AckPolicy::All`).
    ack: Option<jetstream::Message>,
    ack_sequence: u64,
    skipped: u64,
}

impl Importer {
    /// Checks that the stream exists; the consumer is set up when [`run`](Self::run) starts.
    ///
    /// Errors: [`Error::StreamMissing`], [`Error::NoJetStream`].
    ///
    /// ```no_run
    /// // no_run: it needs a NATS server with JetStream.
    /// use ringledger::ledger::{Ledger, LedgerConfig};
    /// use ringledger_jetstream::{Error, ImportConfig, Importer};
    ///
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let ledger = Ledger::open("/var/lib/central/events", LedgerConfig::default())?;
    /// let client = ringledger_jetstream::connect("nats://127.0.0.1:4222").await?;
    /// let config = ImportConfig::new("EVENTS", "archive").with_follow(true);
    /// match Importer::open(client, ledger, config).await {
    ///     Ok(importer) => drop(importer.run(std::future::pending()).await?),
    ///     Err(Error::StreamMissing { stream }) => eprintln!("no stream {stream} to import yet"),
    ///     Err(Error::NoJetStream(reason)) => eprintln!("enable JetStream: {reason}"),
    ///     Err(error) => return Err(error.into()),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(
        client: async_nats::Client,
        ledger: Ledger,
        config: ImportConfig,
    ) -> Result<Self, Error> {
        let js = jetstream::new(client);
        Backoff::new(config.patience)
            .retry(|| server::stream(&js, &config.stream, true))
            .await?;
        Ok(Self {
            js,
            ledger,
            config,
            progress: Arc::new(ImportProgress::default()),
        })
    }

    /// The counters this importer updates, for a progress display on another task.
    pub fn progress(&self) -> Arc<ImportProgress> {
        Arc::clone(&self.progress)
    }

    /// Imports until the ledger holds the stream's last message as of the start (or, with
    /// [`follow`](ImportConfig::follow), until `stop` completes).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future loses nothing: a batch is acknowledged after its write, and what
    /// was not acknowledged is delivered again (and skipped if the write happened).
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<ImportSummary, Error> {
        let started = Instant::now();
        let mut stop = std::pin::pin!(stop);
        let mut backoff = Backoff::new(self.config.patience);
        let mut head = self.ledger.head();
        self.progress.last.store(head, Ordering::Relaxed);
        let mut batches = 0;
        let mut caught_up_at = None;
        // Idle spells in a row while messages wait, and whether the consumer must be created
        // again at the next resume.
        let (mut stalls, mut recreate) = (0, false);
        'resume: loop {
            let (mut messages, mut next_delivery, last) =
                match self.resume(head, std::mem::take(&mut recreate)).await {
                    Ok(found) => found,
                    Err(Failure::Fatal(error)) => return Err(error),
                    Err(Failure::Transient(failure)) => {
                        backoff.wait(failure).await?;
                        self.note_retries(&backoff);
                        continue;
                    }
                };
            // Stream info comes from the stream's leader (a consumer's pending count was seen
            // to be wrong after a leader change).
            let target = *caught_up_at.get_or_insert(last);
            if head >= target && !self.config.follow {
                break;
            }
            loop {
                // The first message of a batch: wait for it (or for the stop, or idle).
                let idle = Duration::from_millis(if self.config.follow { 1000 } else { 300 });
                let first = tokio::select! {
                    biased;
                    () = &mut stop => break 'resume,
                    next = tokio::time::timeout(idle, messages.next()) => next,
                };
                let first = match first {
                    Err(_idle) => {
                        if self.nothing_left(head).await {
                            if !self.config.follow {
                                break 'resume;
                            }
                        } else {
                            // Messages wait and none come: after a failover a consumer was
                            // seen to stall (its replica short of messages). Start it again.
                            stalls += 1;
                            if stalls >= 3 {
                                stalls = 0;
                                recreate = true;
                                backoff
                                    .wait(
                                        "the consumer delivers nothing while messages wait".into(),
                                    )
                                    .await?;
                                self.note_retries(&backoff);
                                continue 'resume;
                            }
                        }
                        continue;
                    }
                    Ok(None) => {
                        backoff
                            .wait("the consumer's message stream ended".into())
                            .await?;
                        self.note_retries(&backoff);
                        continue 'resume;
                    }
                    Ok(Some(first)) => {
                        stalls = 0;
                        first
                    }
                };
                let mut batch = Batch {
                    entries: Vec::with_capacity(self.config.batch),
                    ack: None,
                    ack_sequence: 0,
                    skipped: 0,
                };
                let mut broken = None;
                let linger_until = tokio::time::Instant::now() + LINGER;
                let mut item = Some(first);
                let mut taken = 0;
                while let Some(message) = item.take() {
                    taken += 1;
                    match message {
                        Ok(message) => {
                            if let Err(why) =
                                self.take(message, head, &mut next_delivery, &mut batch)
                            {
                                broken = Some(why);
                                break;
                            }
                        }
                        Err(error) => {
                            broken = Some(format!("receiving: {error}"));
                            break;
                        }
                    }
                    if taken < self.config.batch {
                        // What else has arrived, or arrives within the linger: a ledger
                        // write (and its trip to a blocking thread) per few messages would
                        // cost more than the messages.
                        item = match messages.next().now_or_never() {
                            Some(next) => next,
                            None => tokio::time::timeout_at(linger_until, messages.next())
                                .await
                                .ok()
                                .flatten(),
                        };
                    }
                }
                let new_head = self.write(head, &mut batch).await?;
                if new_head != head || batch.skipped > 0 {
                    batches += u64::from(new_head != head);
                    backoff.reset();
                }
                head = new_head;
                if let Some(failure) = broken {
                    backoff.wait(failure).await?;
                    self.note_retries(&backoff);
                    continue 'resume;
                }
                if head >= target && !self.config.follow {
                    break 'resume;
                }
            }
        }
        Ok(ImportSummary {
            imported: self.progress.imported(),
            skipped: self.progress.skipped(),
            batches,
            retries: self.progress.retries(),
            last_sequence: head,
            elapsed: started.elapsed(),
        })
    }

    fn note_retries(&self, backoff: &Backoff) {
        self.progress
            .retries
            .store(backoff.retries, Ordering::Relaxed);
    }

    /// Adds `message` to `batch`, or says why the delivery order broke.
    fn take(
        &self,
        message: jetstream::Message,
        head: u64,
        next_delivery: &mut u64,
        batch: &mut Batch,
    ) -> Result<(), String> {
        let info = message
            .info()
            .map_err(|e| format!("a message without its JetStream reply: {e}"))?;
        if info.consumer_sequence != *next_delivery {
            return Err(format!(
                "delivery {} came where {} was due (a delivery was lost or the consumer moved)",
                info.consumer_sequence, *next_delivery
            ));
        }
        *next_delivery += 1;
        let sequence = info.stream_sequence;
        let newest = batch.entries.last().map_or(head, |e| e.sequence);
        if sequence <= newest {
            // Written already (a redelivery): acknowledged again with the batch.
            batch.skipped += 1;
        } else {
            let headers = message.headers.as_ref();
            let timestamp = wire::number(headers, wire::TIMESTAMP).unwrap_or_else(|| {
                u64::try_from(info.published.unix_timestamp_nanos()).unwrap_or(0)
            });
            let mut entry = Entry::new(sequence, message.payload.clone())
                .with_tag(wire::number(headers, wire::TAG).unwrap_or(0));
            entry.timestamp = timestamp;
            batch.entries.push(entry);
        }
        if sequence >= batch.ack_sequence {
            batch.ack_sequence = sequence;
            batch.ack = Some(message);
        }
        Ok(())
    }

    /// Writes the batch (one ledger write), then acknowledges it; returns the new head.
    async fn write(&self, head: u64, batch: &mut Batch) -> Result<u64, Error> {
        let mut new_head = head;
        if !batch.entries.is_empty() {
            let found = self.ledger.head();
            if found != head {
                return Err(Error::ForeignWrite {
                    expected: head,
                    found,
                });
            }
            let entries = std::mem::take(&mut batch.entries);
            let count = entries.len() as u64;
            new_head = entries.last().map_or(head, |e| e.sequence);
            let ledger = self.ledger.clone();
            let durability = self.config.durability;
            tokio::task::spawn_blocking(move || match durability {
                Some(durability) => ledger.write_with(&entries, durability),
                None => ledger.write(&entries),
            })
            .await
            .map_err(|e| Error::Runtime(std::io::Error::other(e)))??;
            self.progress.imported.fetch_add(count, Ordering::Relaxed);
            self.progress.last.store(new_head, Ordering::Relaxed);
        }
        self.progress
            .skipped
            .fetch_add(batch.skipped, Ordering::Relaxed);
        if let Some(message) = batch.ack.take() {
            // A lost acknowledgement only means a redelivery, which is skipped.
            match tokio::time::timeout(server::REQUEST_TIMEOUT, message.ack()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::debug!("acknowledging up to {}: {error}", batch.ack_sequence);
                }
                Err(_) => tracing::debug!("acknowledging up to {}: timed out", batch.ack_sequence),
            }
        }
        Ok(new_head)
    }

    /// After a quiet spell: whether nothing is left to import: the stream's last message (as
    /// its leader says) is at or below the head, or (the last messages were deleted) the
    /// consumer delivered it and nothing waits for an acknowledgement. A consumer's pending
    /// count alone was seen to be wrong after a leader change.
    async fn nothing_left(&self, head: u64) -> bool {
        let Ok(stream) = server::stream(&self.js, &self.config.stream, false).await else {
            return false;
        };
        let last = stream.cached_info().state.last_sequence;
        if last <= head {
            return true;
        }
        match server::bounded("consumer info", stream.consumer_info(&self.config.consumer)).await {
            Ok(Ok(info)) => info.delivered.stream_sequence >= last && info.num_ack_pending == 0,
            _ => false,
        }
    }

    /// Sets up the durable consumer at the ledger's head and starts its message stream;
    /// returns the message stream, the next delivery sequence and the stream's last sequence.
    async fn resume(&self, head: u64, recreate: bool) -> Result<(pull::Stream, u64, u64), Failure> {
        let stream = server::stream(&self.js, &self.config.stream, false).await?;
        let name = &self.config.consumer;
        let existing = match server::bounded("consumer info", stream.consumer_info(name)).await? {
            Ok(info) => Some(info),
            Err(error) if matches!(error.kind(), ConsumerInfoErrorKind::NotFound) => None,
            Err(error) => {
                return Err(Failure::Transient(format!("consumer {name}: {error}")));
            }
        };
        if let Some(info) = &existing {
            if info.config.ack_policy != AckPolicy::All || !info.config.filter_subject.is_empty() {
                // Not one the importer made: someone else's to keep.
                return Err(Failure::Fatal(Error::Refused(format!(
                    "consumer {name} of stream {} exists with another configuration (ack policy \
                     {:?}, filter {:?}); the importer needs its own consumer name",
                    self.config.stream, info.config.ack_policy, info.config.filter_subject
                ))));
            }
        }
        let usable = !recreate
            && existing.as_ref().is_some_and(|info| {
                info.num_ack_pending == 0 && info.delivered.stream_sequence == head
            });
        let info = match existing {
            Some(info) if usable => info,
            existing => {
                if existing.is_some() {
                    tracing::info!(
                        "consumer {name} does not stand at the ledger's head {head} with nothing \
                         pending: creating it again from {}",
                        head + 1
                    );
                    if let Err(error) =
                        server::bounded("deleting the consumer", stream.delete_consumer(name))
                            .await?
                    {
                        return Err(Failure::Transient(format!(
                            "deleting consumer {name}: {error}"
                        )));
                    }
                }
                let deliver_policy = if head == 0 {
                    DeliverPolicy::All
                } else {
                    DeliverPolicy::ByStartSequence {
                        start_sequence: head + 1,
                    }
                };
                let config = pull::Config {
                    durable_name: Some(name.clone()),
                    ack_policy: AckPolicy::All,
                    deliver_policy,
                    max_ack_pending: i64::try_from(4 * self.config.batch)
                        .unwrap_or(i64::MAX)
                        .max(1024),
                    ack_wait: Duration::from_secs(30),
                    ..pull::Config::default()
                };
                let mut consumer =
                    server::bounded("creating the consumer", stream.create_consumer(config))
                        .await?
                        .map_err(|e| {
                            Failure::Transient(format!("creating consumer {name}: {e}"))
                        })?;
                server::bounded("consumer info", consumer.info())
                    .await?
                    .map_err(|e| Failure::Transient(format!("consumer {name}: {e}")))?
                    .clone()
            }
        };
        let consumer: jetstream::consumer::Consumer<pull::Config> =
            server::bounded("looking up the consumer", stream.get_consumer(name))
                .await?
                .map_err(|e| Failure::Transient(format!("consumer {name}: {e}")))?;
        let pull = consumer
            .stream()
            .max_messages_per_batch(self.config.batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages();
        let messages = server::bounded("pulling", pull)
            .await?
            .map_err(|e| Failure::Transient(format!("pulling from consumer {name}: {e}")))?;
        let last = stream.cached_info().state.last_sequence;
        Ok((messages, info.delivered.consumer_sequence + 1, last))
    }
}
