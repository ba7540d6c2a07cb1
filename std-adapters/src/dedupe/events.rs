//! What flows through a [`DedupeBuffer`](super::DedupeBuffer): the [`Change`]s producers
//! push, the [`Update`]s and [`Event`]s the consumer receives, the [`SyncStatus`] trait the
//! status type implements (with Calico's [`Status`] as a ready-made one), and the [`Sink`] that
//! [`run_to_sink`](super::DedupeBuffer::run_to_sink) delivers to.

/// A change a producer reports for a key.
///
/// ```
/// use ringledger::dedupe::{Change, DedupeBuffer, Event, Status, Update};
/// use ringledger::wait::Deadline;
///
/// let buffer = DedupeBuffer::<&str, u32, Status>::new();
/// for change in [Change::Upsert("a", 1), Change::Upsert("b", 2), Change::Delete("a")] {
///     assert!(["a", "b"].contains(change.key()));
///     buffer.push(change)?;
/// }
/// // "a" never reached the consumer: its upsert and delete cancel out.
/// assert_eq!(buffer.next_batch(10, Deadline::IMMEDIATE)?, [Event::Update(Update::New("b", 2))]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Change<K, V> {
    /// The key now has this value (created or modified).
    Upsert(K, V),
    /// The key is gone.
    Delete(K),
}

impl<K, V> Change<K, V> {
    /// The key this change is about.
    pub fn key(&self) -> &K {
        match self {
            Change::Upsert(k, _) | Change::Delete(k) => k,
        }
    }
}

/// An update as the consumer receives it, classified against the keys it has already seen.
///
/// ```
/// use ringledger::dedupe::{Change, DedupeBuffer, Event, Status, Update};
/// use ringledger::wait::Deadline;
///
/// let buffer = DedupeBuffer::<&str, u32, Status>::new();
/// let mut seen = Vec::new();
/// for change in [Change::Upsert("a", 1), Change::Upsert("a", 2), Change::Delete("a")] {
///     buffer.push(change)?;
///     for event in buffer.next_batch(10, Deadline::IMMEDIATE)? {
///         if let Event::Update(update) = event {
///             seen.push(match update {
///                 Update::New(key, value) => format!("new {key}={value}"),
///                 Update::Updated(key, value) => format!("updated {key}={value}"),
///                 Update::Deleted(key) => format!("deleted {key}"),
///             });
///         }
///     }
/// }
/// assert_eq!(seen, ["new a=1", "updated a=2", "deleted a"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Update<K, V> {
    /// A key the consumer has not seen (or saw deleted).
    New(K, V),
    /// A new value for a key the consumer has seen. The value may equal the last one sent.
    Updated(K, V),
    /// A key the consumer has seen is gone.
    Deleted(K),
}

impl<K, V> Update<K, V> {
    /// The key this update is about.
    pub fn key(&self) -> &K {
        match self {
            Update::New(k, _) | Update::Updated(k, _) | Update::Deleted(k) => k,
        }
    }

    /// The new value, or `None` for a deletion.
    pub fn value(&self) -> Option<&V> {
        match self {
            Update::New(_, v) | Update::Updated(_, v) => Some(v),
            Update::Deleted(_) => None,
        }
    }
}

/// One entry of a batch handed to the consumer.
///
/// ```
/// use ringledger::dedupe::{Change, DedupeBuffer, Event, Status};
/// use ringledger::wait::Deadline;
///
/// let buffer = DedupeBuffer::<u32, &str, Status>::new();
/// buffer.push_status(Status::ResyncInProgress)?;
/// buffer.push(Change::Upsert(7, "x"))?;
/// buffer.push_status(Status::InSync)?;
/// let (mut keys, mut in_sync) = (Vec::new(), false);
/// for event in buffer.next_batch(10, Deadline::IMMEDIATE)? {
///     match event {
///         Event::Update(update) => keys.push(*update.key()),
///         Event::Status(status) => in_sync = status == Status::InSync,
///     }
/// }
/// assert_eq!((keys, in_sync), (vec![7], true));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event<K, V, S> {
    /// A key changed.
    Update(Update<K, V>),
    /// The producer's sync status changed.
    Status(S),
}

/// A sync status, as the producer's upstream reports it.
///
/// Equality is used to drop repeated statuses; [`is_in_sync`](Self::is_in_sync) marks the
/// status that ends a snapshot, at which a resync's synthesized deletes are emitted.
///
/// ```
/// use ringledger::dedupe::{Change, DedupeBuffer, SyncStatus};
/// use ringledger::wait::Deadline;
///
/// /// Our upstream's own states.
/// #[derive(Clone, Debug, PartialEq)]
/// enum Feed {
///     Loading,
///     Live,
/// }
///
/// impl SyncStatus for Feed {
///     fn is_in_sync(&self) -> bool {
///         *self == Feed::Live
///     }
/// }
///
/// let buffer = DedupeBuffer::<&str, u32, Feed>::new();
/// buffer.push_status(Feed::Loading)?;
/// buffer.push(Change::Upsert("a", 1))?;
/// buffer.push_status(Feed::Live)?;
/// assert_eq!(buffer.next_batch(10, Deadline::IMMEDIATE)?.len(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SyncStatus: Clone + PartialEq {
    /// Whether this status means "the snapshot is complete".
    fn is_in_sync(&self) -> bool;
}

/// Calico's sync statuses, for callers without their own.
///
/// ```
/// use ringledger::dedupe::{DedupeBuffer, Event, Status, SyncStatus};
/// use ringledger::wait::Deadline;
///
/// let buffer = DedupeBuffer::<u32, u32, Status>::new();
/// buffer.push_status(Status::WaitForDatastore)?;
/// buffer.push_status(Status::WaitForDatastore)?; // equal to the last one: dropped
/// buffer.push_status(Status::ResyncInProgress)?; // right after a queued status: replaces it
/// let batch = buffer.next_batch(10, Deadline::IMMEDIATE)?;
/// assert_eq!(batch, [Event::Status(Status::ResyncInProgress)]);
/// assert!(Status::InSync.is_in_sync() && !Status::ResyncInProgress.is_in_sync());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Waiting for the datastore to be reachable.
    WaitForDatastore,
    /// A snapshot is being sent.
    ResyncInProgress,
    /// The snapshot is complete; updates from now on are live changes.
    InSync,
}

impl SyncStatus for Status {
    fn is_in_sync(&self) -> bool {
        *self == Status::InSync
    }
}

/// Receives batches from [`DedupeBuffer::run_to_sink`](super::DedupeBuffer::run_to_sink).
///
/// Runs of updates arrive together in one call; a status splits a batch. The buffer's lock is
/// not held during these calls, so a slow sink only delays the consumer.
///
/// ```
/// use ringledger::dedupe::{Change, DedupeBuffer, Sink, Status, Update};
///
/// #[derive(Default)]
/// struct Counter {
///     updates: usize,
///     statuses: Vec<Status>,
/// }
///
/// impl Sink<u32, u32, Status> for Counter {
///     fn on_updates(&mut self, updates: std::vec::Drain<'_, Update<u32, u32>>) {
///         self.updates += updates.len();
///     }
///     fn on_status(&mut self, status: Status) {
///         self.statuses.push(status);
///     }
/// }
///
/// let buffer = DedupeBuffer::new();
/// buffer.push(Change::Upsert(1, 1))?;
/// buffer.push(Change::Upsert(2, 2))?;
/// buffer.push_status(Status::InSync)?;
/// buffer.stop_and_flush(); // `run_to_sink` returns once everything is delivered
/// let mut sink = Counter::default();
/// buffer.run_to_sink(&mut sink);
/// assert_eq!((sink.updates, sink.statuses), (2, vec![Status::InSync]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Sink<K, V, S> {
    /// Consecutive updates, oldest first. Take what you need; the rest is dropped.
    fn on_updates(&mut self, updates: std::vec::Drain<'_, Update<K, V>>);
    /// A status change.
    fn on_status(&mut self, status: S);
}
