//! Event sources: events handed to a host in batches (Falco's plugin `source` instances).
//!
//! A [`Source`] fills a reusable [`Batch`] with up to `batch_size` events per
//! [`next_batch`](Source::next_batch) call, within a per-batch timeout, and says how the batch
//! ended: [`BatchEnd::Full`], [`BatchEnd::Timeout`] (no more events came in time; the partial
//! batch is kept) or [`BatchEnd::Eof`] (the source is done; the partial batch is kept, and
//! every later call returns `Eof` with an empty batch). Two kinds:
//!
//! - [`PullSource`] calls a function for each event; [`stream_source`] is one that reads an
//!   [`EventStream`](crate::stream::EventStream), such as a
//!   [`LedgerStream`](crate::stream::LedgerStream), through a cursor;
//! - [`PushSource`] takes events that producers push into a
//!   [`blocking::mpsc`](crate::blocking::mpsc) buffer.
//!
//! Both take [`SourceOptions`]: batch size, maximum event size, batch timeout, a
//! [`CancelToken`], a callback run once on close and a progress callback. What differs from
//! Falco's Go SDK, on purpose:
//!
//! - the timeout is a deadline set at the start of each batch (no ticker that can fire stale
//!   into the next batch);
//! - cancellation wins deterministically: it is checked before the deadline and after every
//!   event, so a cancelled source reports `Eof`, never `Timeout` or `Full`, and keeps the events
//!   it already took;
//! - an event larger than the maximum is [`SourceError::Oversize`], naming its size;
//! - the close callback runs exactly once, on [`close`](Source::close) or on drop.
//!
//! ```
//! use std::time::Duration;
//! use ringledger::source::{Batch, BatchEnd, NoEvent, PullSource, Source, SourceOptions};
//!
//! let mut n = 0u32;
//! let options = SourceOptions::new().with_batch_size(4).with_timeout(Duration::from_secs(1));
//! let mut source = PullSource::new(options, move |_ctx, event| {
//!     n += 1;
//!     if n > 6 {
//!         return Err(NoEvent::Eof);
//!     }
//!     event.write(format!("event {n}").as_bytes())?;
//!     Ok(())
//! });
//! let mut batch = Batch::new();
//! assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Full);
//! assert_eq!(batch.len(), 4);
//! assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
//! assert_eq!(batch.iter().map(|e| &e.data[..]).collect::<Vec<_>>(), [b"event 5", b"event 6"]);
//! assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof); // sticky
//! assert!(batch.is_empty());
//! ```

mod pull;
mod push;
mod stream;

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use crate::wait::CancelToken;

pub use pull::{EventWriter, PullContext, PullSource};
pub use push::{PushEvent, PushSource};
pub use stream::stream_source;

/// The timestamp of an event that has none: the host stamps it.
pub const UNSET_TIMESTAMP: u64 = u64::MAX;

/// An event of a batch: bytes and a timestamp (nanoseconds since the epoch, or
/// [`UNSET_TIMESTAMP`]).
///
/// ```
/// use ringledger::blocking::mpsc;
/// use ringledger::source::{Batch, PushSource, Source, SourceEvent, SourceOptions};
/// use ringledger::wait::Deadline;
///
/// let (producer, events) = mpsc::channel(8);
/// let mut source = PushSource::new(SourceOptions::new(), events);
/// producer.push(Ok(SourceEvent::new("login").with_timestamp(42)), Deadline::Forever).unwrap();
/// drop(producer);
/// let mut batch = Batch::new();
/// source.next_batch(&mut batch)?;
/// let event: &SourceEvent = &batch.as_slice()[0];
/// assert_eq!((&event.data[..], event.timestamp), (&b"login"[..], 42));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SourceEvent {
    /// The event's bytes.
    pub data: Vec<u8>,
    /// When it happened, or [`UNSET_TIMESTAMP`].
    pub timestamp: u64,
}

impl SourceEvent {
    /// An event of these bytes without a timestamp.
    ///
    /// ```
    /// use ringledger::source::{SourceEvent, UNSET_TIMESTAMP};
    ///
    /// let event = SourceEvent::new("login");
    /// assert_eq!((&event.data[..], event.timestamp), (&b"login"[..], UNSET_TIMESTAMP));
    /// ```
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        SourceEvent {
            data: data.into(),
            timestamp: UNSET_TIMESTAMP,
        }
    }

    /// The event with this timestamp (0 means none, as in Falco: [`UNSET_TIMESTAMP`]).
    ///
    /// ```
    /// use ringledger::source::{SourceEvent, UNSET_TIMESTAMP};
    ///
    /// let stamped = SourceEvent::new("a").with_timestamp(1_700_000_000_000_000_000);
    /// assert_eq!(stamped.timestamp, 1_700_000_000_000_000_000);
    /// assert_eq!(SourceEvent::new("b").with_timestamp(0).timestamp, UNSET_TIMESTAMP);
    /// ```
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: u64) -> Self {
        self.timestamp = stamp(timestamp);
        self
    }
}

impl fmt::Debug for SourceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceEvent")
            .field("len", &self.data.len())
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// A timestamp of 0 is no timestamp.
fn stamp(timestamp: u64) -> u64 {
    if timestamp == 0 {
        UNSET_TIMESTAMP
    } else {
        timestamp
    }
}

/// The events of one [`next_batch`](Source::next_batch) call. Reuse it: the events' buffers
/// are kept for the next batch.
///
/// ```
/// use ringledger::source::{Batch, BatchEnd, NoEvent, PullSource, Source, SourceOptions};
///
/// let mut n = 0;
/// let options = SourceOptions::new().with_batch_size(2);
/// let mut source = PullSource::new(options, move |_ctx, event| {
///     n += 1;
///     if n > 3 {
///         return Err(NoEvent::Eof);
///     }
///     event.write(&[n])?;
///     Ok(())
/// });
/// let mut batch = Batch::new(); // one batch, reused
/// let mut seen = Vec::new();
/// loop {
///     let end = source.next_batch(&mut batch).unwrap();
///     seen.extend(batch.iter().map(|e| e.data[0]));
///     if end == BatchEnd::Eof {
///         break;
///     }
/// }
/// assert_eq!(seen, [1, 2, 3]);
/// ```
#[derive(Default)]
pub struct Batch {
    /// Slots `..len` are the batch; the rest keep their buffers for reuse.
    slots: Vec<SourceEvent>,
    len: usize,
}

impl Batch {
    /// An empty batch.
    ///
    /// ```
    /// use ringledger::source::{Batch, BatchEnd, PullSource, Source, SourceOptions};
    ///
    /// let options = SourceOptions::new().with_batch_size(3);
    /// let mut source = PullSource::new(options, |_ctx, event| Ok(event.write(b"tick")?));
    /// let mut batch = Batch::new();
    /// assert!(batch.is_empty());
    /// assert_eq!(source.next_batch(&mut batch)?, BatchEnd::Full);
    /// assert_eq!(batch.len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events the batch holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no event.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The events, oldest first.
    #[must_use]
    pub fn as_slice(&self) -> &[SourceEvent] {
        &self.slots[..self.len]
    }

    /// The events, oldest first.
    pub fn iter(&self) -> std::slice::Iter<'_, SourceEvent> {
        self.as_slice().iter()
    }

    /// Empties the batch, keeping the buffers.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The events, taken out of the batch (which is left empty).
    pub fn take(&mut self) -> Vec<SourceEvent> {
        let mut events = std::mem::take(&mut self.slots);
        events.truncate(self.len);
        self.len = 0;
        events
    }

    /// The next slot, emptied, for an event to be written in; [`commit`](Self::commit) adds
    /// it to the batch.
    fn slot(&mut self) -> &mut SourceEvent {
        if self.slots.len() == self.len {
            self.slots.push(SourceEvent::new(Vec::new()));
        }
        let slot = &mut self.slots[self.len];
        slot.data.clear();
        slot.timestamp = UNSET_TIMESTAMP;
        slot
    }

    /// Adds the slot [`slot`](Self::slot) returned to the batch.
    fn commit(&mut self) {
        self.len += 1;
    }

    /// Adds `event` to the batch.
    fn push(&mut self, event: SourceEvent) {
        *self.slot() = event;
        self.commit();
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = &'a SourceEvent;
    type IntoIter = std::slice::Iter<'a, SourceEvent>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// How a [`next_batch`](Source::next_batch) call ended. The batch holds what came before.
///
/// ```
/// use ringledger::source::{Batch, BatchEnd, NoEvent, PullSource, Source, SourceOptions};
///
/// let mut n = 0;
/// let options = SourceOptions::new().with_batch_size(2);
/// let mut source = PullSource::new(options, move |_ctx, event| {
///     n += 1;
///     match n {
///         1..=3 => Ok(event.write(b"e")?),
///         4 => Err(NoEvent::Timeout), // nothing ready right now
///         _ => Err(NoEvent::Eof),
///     }
/// });
/// let (mut batch, mut ends) = (Batch::new(), Vec::new());
/// loop {
///     let end = source.next_batch(&mut batch)?;
///     ends.push((end, batch.len())); // a host hands the batch on here
///     match end {
///         BatchEnd::Full | BatchEnd::Timeout => continue,
///         BatchEnd::Eof => break,
///     }
/// }
/// assert_eq!(ends, [(BatchEnd::Full, 2), (BatchEnd::Timeout, 1), (BatchEnd::Eof, 0)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchEnd {
    /// The batch holds `batch_size` events.
    Full,
    /// The batch timeout passed (or the source said no event is ready); call again.
    Timeout,
    /// The source is done (its end, a failure before, its close or its cancellation); every
    /// later call returns `Eof` with an empty batch.
    Eof,
}

/// Why a pull function (or a pushed item) has no event: the end of a batch or of the source.
///
/// ```
/// use ringledger::source::{Batch, BatchEnd, NoEvent, PullSource, Source, SourceError};
/// use ringledger::source::SourceOptions;
///
/// let mut source = PullSource::new(SourceOptions::new(), |_ctx, _event| {
///     Err(NoEvent::Failed("device unplugged".into()))
/// });
/// let mut batch = Batch::new();
/// match source.next_batch(&mut batch) {
///     Err(SourceError::Failed(cause)) => assert_eq!(cause.to_string(), "device unplugged"),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(source.next_batch(&mut batch)?, BatchEnd::Eof); // a failed source is done
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub enum NoEvent {
    /// No event right now: the batch ends with [`BatchEnd::Timeout`].
    #[error("no event is ready")]
    Timeout,
    /// The source is done: the batch ends with [`BatchEnd::Eof`], and so do all later ones.
    #[error("the source is done")]
    Eof,
    /// The source failed: [`SourceError::Failed`], and the source is done.
    #[error("the source failed")]
    Failed(#[source] Box<dyn Error + Send + Sync + 'static>),
}

/// An event too large for the source's maximum event size.
///
/// ```
/// use ringledger::source::{Batch, Oversize, PullSource, Source, SourceError, SourceOptions};
///
/// let options = SourceOptions::new().with_max_event_size(4);
/// let mut source = PullSource::new(options, |_ctx, event| {
///     let refused: Oversize = event.write(b"too long").unwrap_err();
///     assert_eq!((refused.size, refused.max), (8, 4));
///     Err(refused.into()) // the source fails with `SourceError::Oversize` anyway
/// });
/// let failed = source.next_batch(&mut Batch::new());
/// assert!(matches!(failed, Err(SourceError::Oversize { size: 8, max: 4 })));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("an event of {size} bytes is larger than the maximum of {max}")]
pub struct Oversize {
    /// The event's size (at least): the bytes written to it, the refused ones included.
    pub size: usize,
    /// The maximum event size.
    pub max: usize,
}

impl From<Oversize> for NoEvent {
    fn from(oversize: Oversize) -> Self {
        NoEvent::Failed(Box::new(oversize))
    }
}

/// Why [`next_batch`](Source::next_batch) failed. After an error the source is done (Falco's
/// rule: any error other than a timeout ends the source); the batch holds the events taken
/// before it, which a host usually drops.
///
/// ```
/// use ringledger::source::{Batch, PullSource, Source, SourceError, SourceOptions};
///
/// let options = SourceOptions::new().with_max_event_size(1024);
/// let mut source = PullSource::new(options, |_ctx, event| Ok(event.write(&[0; 2048])?));
/// match source.next_batch(&mut Batch::new()) {
///     Err(SourceError::Oversize { size, max }) => assert_eq!((size, max), (2048, 1024)),
///     Err(SourceError::Failed(cause)) => panic!("the pull function failed: {cause}"),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// An event was larger than [`SourceOptions::with_max_event_size`].
    #[error("an event of {size} bytes is larger than the maximum of {max}")]
    Oversize {
        /// The event's size.
        size: usize,
        /// The maximum event size.
        max: usize,
    },
    /// The pull function or the producer reported a failure.
    #[error("the source failed")]
    Failed(#[source] Box<dyn Error + Send + Sync + 'static>),
}

/// How far a source has come, as its progress callback reports it.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use ringledger::source::{Batch, Progress, PullSource, Source, SourceOptions};
///
/// let read = Arc::new(AtomicU32::new(0));
/// let options = SourceOptions::new().with_batch_size(25).on_progress({
///     let read = Arc::clone(&read);
///     move || {
///         let read = read.load(Ordering::Relaxed);
///         Progress { fraction: f64::from(read) / 100.0, text: format!("{read} of 100 lines") }
///     }
/// });
/// let mut source = PullSource::new(options, move |_ctx, event| {
///     read.fetch_add(1, Ordering::Relaxed);
///     Ok(event.write(b"line")?)
/// });
/// source.next_batch(&mut Batch::new())?;
/// let progress = source.progress().unwrap();
/// assert_eq!((progress.fraction, progress.text.as_str()), (0.25, "25 of 100 lines"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// From 0 to 1.
    pub fraction: f64,
    /// For people.
    pub text: String,
}

/// A callback run when a source closes.
type OnClose = Box<dyn FnOnce() + Send>;
/// A callback reporting a source's progress.
type OnProgress = Box<dyn Fn() -> Progress + Send + Sync>;

/// A source's settings (Falco's instance options), built with the `with_*` methods.
///
/// ```
/// use std::time::Duration;
/// use ringledger::source::SourceOptions;
///
/// let options = SourceOptions::new();
/// assert_eq!(options.batch_size(), 128);
/// assert_eq!(options.max_event_size(), 256 * 1024);
/// assert_eq!(options.timeout(), Duration::from_millis(30));
/// assert_eq!(options.with_batch_size(0).batch_size(), 1); // at least one
/// ```
pub struct SourceOptions {
    batch_size: usize,
    max_event_size: usize,
    timeout: Duration,
    cancel: CancelToken,
    on_close: Option<OnClose>,
    on_progress: Option<OnProgress>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            batch_size: 128,
            max_event_size: 256 * 1024,
            timeout: Duration::from_millis(30),
            cancel: CancelToken::new(),
            on_close: None,
            on_progress: None,
        }
    }
}

impl SourceOptions {
    /// Falco's defaults: batches of 128 events of at most 256 KiB, a 30 ms batch timeout, a
    /// token of the source's own, no callbacks.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use ringledger::source::{NoEvent, PullSource, Source, SourceOptions};
    ///
    /// let closed = Arc::new(AtomicU32::new(0));
    /// let options = SourceOptions::new()
    ///     .with_batch_size(64)
    ///     .with_max_event_size(4096)
    ///     .with_timeout(Duration::from_millis(100))
    ///     .on_close({
    ///         let closed = Arc::clone(&closed);
    ///         move || drop(closed.fetch_add(1, Ordering::Relaxed))
    ///     });
    /// let mut source = PullSource::new(options, |_ctx, _event| Err(NoEvent::Eof));
    /// assert_eq!(source.options().batch_size(), 64);
    /// source.close();
    /// drop(source); // the close callback ran already: not again
    /// assert_eq!(closed.load(Ordering::Relaxed), 1);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The most events per batch (at least 1; 0 is taken as 1).
    #[must_use]
    pub fn with_batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }

    /// The most bytes per event.
    #[must_use]
    pub fn with_max_event_size(mut self, bytes: usize) -> Self {
        self.max_event_size = bytes;
        self
    }

    /// How long a batch may take to fill, from the start of each
    /// [`next_batch`](Source::next_batch) call.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The token that ends the source: once cancelled, batches end with [`BatchEnd::Eof`].
    #[must_use]
    pub fn with_cancel(mut self, cancel: CancelToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// A callback run once when the source is closed (or dropped).
    #[must_use]
    pub fn on_close(mut self, f: impl FnOnce() + Send + 'static) -> Self {
        self.on_close = Some(Box::new(f));
        self
    }

    /// A callback that reports the source's progress.
    #[must_use]
    pub fn on_progress(mut self, f: impl Fn() -> Progress + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Box::new(f));
        self
    }

    /// The most events per batch.
    #[must_use]
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The most bytes per event.
    #[must_use]
    pub fn max_event_size(&self) -> usize {
        self.max_event_size
    }

    /// The batch timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The source's token.
    #[must_use]
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }
}

impl fmt::Debug for SourceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceOptions")
            .field("batch_size", &self.batch_size)
            .field("max_event_size", &self.max_event_size)
            .field("timeout", &self.timeout)
            .field("cancelled", &self.cancel.is_cancelled())
            .field("on_close", &self.on_close.is_some())
            .field("on_progress", &self.on_progress.is_some())
            .finish()
    }
}

/// What every source shares: its options, the sticky end, the close callback.
struct Core {
    options: SourceOptions,
    /// Set once the source reported (or will report) `Eof`: every later batch is `Eof`.
    eof: bool,
}

impl Core {
    fn new(options: SourceOptions) -> Self {
        Core {
            options,
            eof: false,
        }
    }

    /// The start of a batch: empties it and says whether the source is done (cancellation
    /// makes it so). Otherwise returns the batch's deadline (`None`: too far to represent).
    fn begin(&mut self, batch: &mut Batch) -> Result<Option<Instant>, BatchEnd> {
        batch.clear();
        if self.done() {
            return Err(BatchEnd::Eof);
        }
        Ok(Instant::now().checked_add(self.options.timeout))
    }

    /// Whether the source is done; a cancelled token makes it done for good.
    fn done(&mut self) -> bool {
        if !self.eof && self.options.cancel.is_cancelled() {
            self.eof = true;
        }
        self.eof
    }

    /// How a batch that stopped for `end` ends: `Eof` instead if the source was cancelled
    /// meanwhile (cancellation wins).
    fn end(&mut self, end: BatchEnd) -> BatchEnd {
        if end == BatchEnd::Eof || self.done() {
            self.eof = true;
            return BatchEnd::Eof;
        }
        end
    }

    /// Ends the source with `error`.
    fn fail(&mut self, error: SourceError) -> SourceError {
        self.eof = true;
        error
    }

    fn close(&mut self) {
        self.eof = true;
        if let Some(on_close) = self.options.on_close.take() {
            on_close();
        }
    }

    fn progress(&self) -> Option<Progress> {
        self.options.on_progress.as_ref().map(|f| f())
    }
}

/// A source of event batches: [`PullSource`] or [`PushSource`].
///
/// A host written against the trait takes either kind:
///
/// ```
/// use ringledger::blocking::mpsc;
/// use ringledger::source::{Batch, BatchEnd, NoEvent, PullSource, PushSource, Source};
/// use ringledger::source::{SourceError, SourceEvent, SourceOptions};
/// use ringledger::wait::Deadline;
///
/// fn count_events(source: &mut impl Source) -> Result<usize, SourceError> {
///     let (mut batch, mut events) = (Batch::new(), 0);
///     while source.next_batch(&mut batch)? != BatchEnd::Eof {
///         events += batch.len();
///     }
///     source.close();
///     Ok(events + batch.len()) // the last, partial batch counts too
/// }
///
/// let mut lines = vec!["c", "b", "a"];
/// let mut pull = PullSource::new(SourceOptions::new(), move |_ctx, event| {
///     Ok(event.write(lines.pop().ok_or(NoEvent::Eof)?.as_bytes())?)
/// });
/// assert_eq!(count_events(&mut pull)?, 3);
///
/// let (producer, events) = mpsc::channel(8);
/// producer.push(Ok(SourceEvent::new("x")), Deadline::Forever).unwrap();
/// drop(producer);
/// assert_eq!(count_events(&mut PushSource::new(SourceOptions::new(), events))?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Source {
    /// Fills `batch` (emptied first) with up to `batch_size` events and says why it stopped;
    /// see the [module documentation](self).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringledger::blocking::mpsc;
    /// use ringledger::source::{Batch, BatchEnd, NoEvent, PushSource, Source, SourceEvent};
    /// use ringledger::source::SourceOptions;
    /// use ringledger::wait::Deadline;
    ///
    /// let (producer, events) = mpsc::channel(8);
    /// let options = SourceOptions::new().with_timeout(Duration::from_millis(5));
    /// let mut source = PushSource::new(options, events);
    /// let mut batch = Batch::new();
    /// assert_eq!(source.next_batch(&mut batch)?, BatchEnd::Timeout); // nothing came in 5 ms
    /// assert!(batch.is_empty());
    /// producer.push(Ok(SourceEvent::new("a")), Deadline::Forever).unwrap();
    /// producer.push(Err(NoEvent::Eof), Deadline::Forever).unwrap(); // the producer is done
    /// assert_eq!(source.next_batch(&mut batch)?, BatchEnd::Eof);
    /// assert_eq!(batch.len(), 1); // the partial batch is kept
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn next_batch(&mut self, batch: &mut Batch) -> Result<BatchEnd, SourceError>;

    /// Ends the source: runs the close callback (once; dropping the source runs it if this
    /// did not), and every later batch is [`BatchEnd::Eof`].
    fn close(&mut self);

    /// What the progress callback reports; `None` without one.
    fn progress(&self) -> Option<Progress>;

    /// The batches, until the source is done: each call waits until at least one event came
    /// (timeouts with no event are skipped), or the source ends; an error is the last item.
    fn batches(&mut self) -> Batches<'_, Self>
    where
        Self: Sized,
    {
        Batches {
            source: self,
            batch: Batch::new(),
            done: false,
        }
    }
}

/// The iterator of [`Source::batches`]: each item is a batch's events.
///
/// ```
/// use ringledger::source::{NoEvent, PullSource, Source, SourceOptions};
///
/// let mut n = 0;
/// let options = SourceOptions::new().with_batch_size(2);
/// let mut source = PullSource::new(options, move |_ctx, event| {
///     n += 1;
///     if n > 5 {
///         return Err(NoEvent::Eof);
///     }
///     Ok(event.write(&[n])?)
/// });
/// let mut sizes = Vec::new();
/// for batch in source.batches() {
///     sizes.push(batch?.len()); // an error would be the last item
/// }
/// assert_eq!(sizes, [2, 2, 1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Batches<'a, S> {
    source: &'a mut S,
    batch: Batch,
    done: bool,
}

impl<S: Source> Iterator for Batches<'_, S> {
    type Item = Result<Vec<SourceEvent>, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.source.next_batch(&mut self.batch) {
                Ok(BatchEnd::Timeout) if self.batch.is_empty() => {}
                Ok(BatchEnd::Full | BatchEnd::Timeout) => return Some(Ok(self.batch.take())),
                Ok(BatchEnd::Eof) => {
                    self.done = true;
                    if !self.batch.is_empty() {
                        return Some(Ok(self.batch.take()));
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}
