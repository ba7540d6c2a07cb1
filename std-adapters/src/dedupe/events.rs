//! What flows through a [`DedupeBuffer`](super::DedupeBuffer): the [`Change`]s producers
//! push, the [`Update`]s and [`Event`]s the consumer receives, the [`SyncStatus`] trait the
//! status type implements (with Calico's [`Status`] as a ready-made one), and the [`Sink`] that
//! [`run_to_sink`](super::DedupeBuffer::run_to_sink) delivers to.

/// A change a producer reports for a key.
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
pub trait SyncStatus: Clone + PartialEq {
    /// Whether this status means "the snapshot is complete".
    fn is_in_sync(&self) -> bool;
}

/// Calico's sync statuses, for callers without their own.
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
pub trait Sink<K, V, S> {
    /// Consecutive updates, oldest first. Take what you need; the rest is dropped.
    fn on_updates(&mut self, updates: std::vec::Drain<'_, Update<K, V>>);
    /// A status change.
    fn on_status(&mut self, status: S);
}
