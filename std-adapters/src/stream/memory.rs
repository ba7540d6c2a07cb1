//! [`MemoryStream`]: a bounded event stream in memory.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Cursor, EventStream, Reader, StreamError, TagSet};
use crate::ledger::Entry;
use crate::wait::{CancelToken, Deadline, WaitError, Waiters};

/// Matching entries a cursor takes per read.
const READ_AHEAD: usize = 256;
/// Entries a read scans at most (matching or not) while holding the lock.
const SCAN_LIMIT: usize = 4096;

/// An [`EventStream`] in memory holding at most `capacity` entries: an append that would pass
/// it drops the oldest entries, and cursors that had not read them get
/// [`StreamError::Truncated`].
///
/// Entries keep the offsets (sequences) they were appended with; like a ledger's, they must
/// increase and need not be dense. Clones share the stream.
///
/// ```
/// use ringledger::ledger::Entry;
/// use ringledger::stream::{EventStream, MemoryStream, StreamError, TagSet};
///
/// let stream = MemoryStream::new(2, TagSet::all());
/// stream.append(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")]).unwrap();
/// assert_eq!((stream.len(), stream.truncated_to()), (2, 1)); // 1 was dropped
/// assert!(matches!(
///     stream.open(1, TagSet::all()),
///     Err(StreamError::Truncated { requested: 1, first_available: 2 })
/// ));
/// ```
#[derive(Clone)]
pub struct MemoryStream {
    shared: Arc<Shared>,
}

struct Shared {
    capacity: usize,
    tags: TagSet,
    entries: Mutex<VecDeque<Entry>>,
    /// The newest offset appended (0 if none); published after the entries.
    head: AtomicU64,
    /// The offset entries were dropped up to (0 if none).
    truncated_to: AtomicU64,
    appended: Waiters,
}

/// Why [`MemoryStream::append`] appended nothing.
///
/// ```
/// use ringledger::ledger::Entry;
/// use ringledger::stream::{AppendError, MemoryStream, TagSet};
///
/// let stream = MemoryStream::new(10, TagSet::of([1, 2]));
/// stream.append(&[Entry::new(5, "a").with_tag(1)])?;
/// match stream.append(&[Entry::new(6, "b").with_tag(3)]) {
///     Err(AppendError::TagNotCarried { tag }) => assert_eq!(tag, 3),
///     other => panic!("{other:?}"),
/// }
/// let old = stream.append(&[Entry::new(4, "c").with_tag(1)]);
/// assert_eq!(old, Err(AppendError::NotIncreasing { last: 5, offset: 4 }));
/// assert_eq!(stream.len(), 1); // nothing of a refused append is kept
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// An offset not greater than the one before it (or than the newest in the stream).
    #[error("offset {offset} is not greater than {last}: offsets must increase")]
    NotIncreasing {
        /// The newest offset in the stream, or the previous entry's in the same append.
        last: u64,
        /// The rejected offset.
        offset: u64,
    },
    /// A tag the stream does not carry ([`MemoryStream::new`]'s `tags`).
    #[error("tag {tag} is not one the stream carries")]
    TagNotCarried {
        /// The rejected tag.
        tag: u32,
    },
}

impl MemoryStream {
    /// An empty stream of at most `capacity` entries (at least 1) whose entries carry `tags`.
    ///
    /// ```
    /// use ringledger::stream::{MemoryStream, TagSet};
    ///
    /// let stream = MemoryStream::new(1024, TagSet::all());
    /// assert_eq!(stream.len(), 0);
    /// ```
    #[must_use]
    pub fn new(capacity: usize, tags: TagSet) -> Self {
        let capacity = capacity.max(1);
        MemoryStream {
            shared: Arc::new(Shared {
                capacity,
                tags,
                entries: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
                head: AtomicU64::new(0),
                truncated_to: AtomicU64::new(0),
                appended: Waiters::new(),
            }),
        }
    }

    /// Appends `entries`, all or nothing, dropping the oldest entries beyond the capacity,
    /// and wakes every cursor waiting for them.
    ///
    /// ```
    /// use ringledger::ledger::Entry;
    /// use ringledger::stream::{EventStream, MemoryStream, StreamError, TagSet};
    /// use ringledger::wait::Deadline;
    ///
    /// let stream = MemoryStream::new(100, TagSet::all());
    /// stream.append(&[Entry::new(5, "a"), Entry::new(9, "b")])?; // need not be dense
    /// assert!(stream.append(&[Entry::new(9, "again")]).is_err()); // must increase
    /// assert_eq!(stream.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append(&self, entries: &[Entry]) -> Result<(), AppendError> {
        let shared = &*self.shared;
        {
            let mut stored = shared.lock();
            let mut last = shared.head.load(Ordering::Relaxed);
            for entry in entries {
                if entry.sequence <= last {
                    return Err(AppendError::NotIncreasing {
                        last,
                        offset: entry.sequence,
                    });
                }
                if !shared.tags.contains(entry.tag) {
                    return Err(AppendError::TagNotCarried { tag: entry.tag });
                }
                last = entry.sequence;
            }
            if entries.is_empty() {
                return Ok(());
            }
            stored.extend(entries.iter().cloned());
            let excess = stored.len().saturating_sub(shared.capacity);
            if let Some(dropped) = stored.drain(..excess).last() {
                shared
                    .truncated_to
                    .store(dropped.sequence, Ordering::Release);
            }
            shared.head.store(last, Ordering::Release);
        }
        shared.appended.notify();
        Ok(())
    }

    /// Drops every entry at an offset `<= up_to` (a cleaner's delete) and returns how many.
    pub fn truncate(&self, up_to: u64) -> usize {
        let shared = &*self.shared;
        let mut stored = shared.lock();
        let up_to = up_to.min(shared.head.load(Ordering::Relaxed));
        if up_to <= shared.truncated_to.load(Ordering::Relaxed) {
            return 0;
        }
        let dropped = stored.partition_point(|e| e.sequence <= up_to);
        stored.drain(..dropped);
        shared.truncated_to.store(up_to, Ordering::Release);
        dropped
    }

    /// The newest offset ever appended; 0 if none.
    #[must_use]
    pub fn head(&self) -> u64 {
        self.shared.head.load(Ordering::Acquire)
    }

    /// The offset entries were dropped up to; 0 if none was.
    #[must_use]
    pub fn truncated_to(&self) -> u64 {
        self.shared.truncated_to.load(Ordering::Acquire)
    }

    /// How many entries the stream holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shared.lock().len()
    }

    /// Whether the stream holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries the stream holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Entry>> {
        // Every critical section leaves the queue consistent before anything can panic.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl EventStream for MemoryStream {
    fn tags(&self) -> TagSet {
        self.shared.tags.clone()
    }

    fn open_with(
        &self,
        offset: u64,
        filter: TagSet,
        cancel: CancelToken,
    ) -> Result<Cursor, StreamError> {
        let reader = MemoryReader {
            shared: Arc::clone(&self.shared),
            filter: filter.clone(),
        };
        Cursor::new(Box::new(reader), offset, filter, cancel)
    }
}

impl fmt::Debug for MemoryStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStream")
            .field("capacity", &self.shared.capacity)
            .field("tags", &self.shared.tags)
            .field("head", &self.head())
            .field("truncated_to", &self.truncated_to())
            .finish_non_exhaustive()
    }
}

/// A cursor's view of a [`MemoryStream`].
struct MemoryReader {
    shared: Arc<Shared>,
    filter: TagSet,
}

impl Reader for MemoryReader {
    fn truncated_to(&self) -> u64 {
        self.shared.truncated_to.load(Ordering::Acquire)
    }

    fn read(&mut self, from: u64, out: &mut Vec<Entry>) -> Result<u64, StreamError> {
        let stored = self.shared.lock();
        // Under the lock, so that no truncation slips between this check and the scan.
        let truncated_to = self.shared.truncated_to.load(Ordering::Acquire);
        if truncated_to >= from {
            return Err(StreamError::Truncated {
                requested: from,
                first_available: truncated_to.saturating_add(1),
            });
        }
        let start = stored.partition_point(|e| e.sequence < from);
        let mut next = from;
        let mut taken = 0;
        for entry in stored.range(start..).take(SCAN_LIMIT) {
            next = entry.sequence.saturating_add(1);
            if self.filter.contains(entry.tag) {
                out.push(entry.clone());
                taken += 1;
                if taken == READ_AHEAD {
                    break;
                }
            }
        }
        Ok(next)
    }

    fn wait(&self, from: u64, deadline: Deadline, cancel: &CancelToken) -> Result<(), WaitError> {
        let head = &self.shared.head;
        self.shared.appended.wait_until(deadline, Some(cancel), || {
            (head.load(Ordering::Acquire) >= from).then_some(())
        })
    }

    #[cfg(feature = "async")]
    fn poll_wait(
        &self,
        from: u64,
        cx: &mut std::task::Context<'_>,
        slot: &mut crate::wait::TaskSlot,
        cancel: &CancelToken,
    ) -> std::task::Poll<Result<(), WaitError>> {
        let head = &self.shared.head;
        self.shared.appended.poll_until(cx, slot, Some(cancel), || {
            (head.load(Ordering::Acquire) >= from).then_some(())
        })
    }
}
