//! [`Consumer`]: feeds a [`Handler`] from an [`EventStream`], restarting after any error.
//!
//! Dogma's consumer, without its bug: the failure count that sets the backoff is reset by the
//! first event handled after a restart, so one failure an hour never grows the delay to an
//! hour.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{EventStream, StreamError, TagSet};
use crate::ledger::Entry;
use crate::storage::random_u64;
use crate::wait::{CancelToken, Deadline, WaitError, Waiters};

/// An error a [`Handler`] reports; any error type will do.
///
/// ```
/// use ringledger::ledger::Entry;
/// use ringledger::stream::HandlerError;
///
/// fn quantity(event: &Entry) -> Result<u32, HandlerError> {
///     let text = std::str::from_utf8(&event.payload)?; // any error converts with `?`
///     if text.is_empty() {
///         return Err("an empty order".into()); // and so does a message
///     }
///     Ok(text.parse()?)
/// }
///
/// assert_eq!(quantity(&Entry::new(1, "42"))?, 42);
/// assert_eq!(quantity(&Entry::new(2, "")).unwrap_err().to_string(), "an empty order");
/// assert!(quantity(&Entry::new(3, "x")).is_err());
/// # Ok::<(), HandlerError>(())
/// ```
pub type HandlerError = Box<dyn Error + Send + Sync + 'static>;

/// What a [`Consumer`] feeds: the application's side of a stream, which keeps its own offset.
///
/// ```
/// use ringledger::ledger::Entry;
/// use ringledger::stream::{Consumer, Handler, HandlerError, MemoryStream, Stopped, TagSet};
///
/// /// Counts events, keeping its offset with its state.
/// struct Counter {
///     next: u64,
///     seen: Vec<u64>,
///     stop: ringledger::wait::CancelToken,
/// }
///
/// impl Handler for Counter {
///     fn tags(&self) -> TagSet {
///         TagSet::all()
///     }
///     fn next_offset(&mut self) -> Result<u64, HandlerError> {
///         Ok(self.next)
///     }
///     fn handle_event(&mut self, expected: u64, event: Entry) -> Result<(), HandlerError> {
///         assert_eq!(expected, self.next);
///         self.seen.push(event.sequence);
///         self.next = event.sequence + 1;
///         if self.seen.len() == 3 {
///             self.stop.cancel();
///         }
///         Ok(())
///     }
/// }
///
/// let stream = MemoryStream::new(100, TagSet::all());
/// stream.append(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(4, "c")]).unwrap();
/// let mut consumer = Consumer::new(stream);
/// let mut handler = Counter { next: 1, seen: Vec::new(), stop: consumer.cancel_token().clone() };
/// assert_eq!(consumer.run(&mut handler), Stopped::Cancelled);
/// assert_eq!(handler.seen, [1, 2, 4]);
/// ```
pub trait Handler {
    /// The tags it wants; the consumer reads the ones the stream carries among them.
    fn tags(&self) -> TagSet;

    /// The offset of the next event it needs, as stored with its state. Asked at every
    /// (re)start.
    fn next_offset(&mut self) -> Result<u64, HandlerError>;

    /// Handles `event`. `expected_offset` is the offset the handler's state is at: what
    /// [`next_offset`](Self::next_offset) returned, or one past the last event handled since
    /// (offsets need not be dense, so `event.sequence` may be higher). A handler that stores
    /// its offset with its state checks that it still equals `expected_offset` (optimistic
    /// concurrency) and stores `event.sequence + 1`.
    ///
    /// An error restarts the consumer from `next_offset`: events are delivered at least once.
    fn handle_event(&mut self, expected_offset: u64, event: Entry) -> Result<(), HandlerError>;
}

/// Why a [`Consumer`] restarted; handed to its [`on_restart`](Consumer::on_restart) callback.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use ringledger::ledger::Entry;
/// use ringledger::stream::{Backoff, Consumer, ConsumerError, Handler, HandlerError};
/// use ringledger::stream::{MemoryStream, TagSet};
/// use ringledger::wait::CancelToken;
///
/// /// Fails on its first event, then handles it and stops.
/// struct Flaky(bool, CancelToken);
///
/// impl Handler for Flaky {
///     fn tags(&self) -> TagSet {
///         TagSet::all()
///     }
///     fn next_offset(&mut self) -> Result<u64, HandlerError> {
///         Ok(1)
///     }
///     fn handle_event(&mut self, _: u64, _: Entry) -> Result<(), HandlerError> {
///         if std::mem::replace(&mut self.0, true) {
///             self.1.cancel();
///             return Ok(());
///         }
///         Err("database busy".into())
///     }
/// }
///
/// let stream = MemoryStream::new(10, TagSet::all());
/// stream.append(&[Entry::new(1, "a")])?;
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let quick = Backoff::new(Duration::from_millis(1), Duration::from_millis(1));
/// let mut consumer = Consumer::new(stream).with_backoff(quick).on_restart({
///     let log = Arc::clone(&log);
///     move |error, _delay| {
///         log.lock().unwrap().push(match error {
///             ConsumerError::Handle { offset, source } => format!("{offset}: {source}"),
///             other => other.to_string(), // a stream error, a truncation, ...
///         })
///     }
/// });
/// consumer.run(&mut Flaky(false, consumer.cancel_token().clone()));
/// assert_eq!(*log.lock().unwrap(), ["1: database busy"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// [`Handler::next_offset`] failed.
    #[error("the handler's next_offset failed")]
    NextOffset(#[source] HandlerError),
    /// The stream could not open a cursor at the handler's offset.
    #[error("opening a cursor at offset {offset} failed")]
    Open {
        /// The handler's offset.
        offset: u64,
        /// What the stream said.
        #[source]
        source: StreamError,
    },
    /// The cursor failed (say [`StreamError::Truncated`] after a cleaner ran).
    #[error("reading the stream failed")]
    Next(#[source] StreamError),
    /// The stream returned an event before the offset the handler expects.
    #[error("the stream returned offset {got}, before the expected {expected}")]
    OffsetBehind {
        /// The handler's offset.
        expected: u64,
        /// The event's offset.
        got: u64,
    },
    /// [`Handler::handle_event`] failed.
    #[error("the handler failed on offset {offset}")]
    Handle {
        /// The event's offset.
        offset: u64,
        /// The handler's error.
        #[source]
        source: HandlerError,
    },
}

/// Why [`Consumer::run`] returned.
///
/// ```
/// use ringledger::ledger::Entry;
/// use ringledger::stream::{Consumer, Handler, HandlerError, MemoryStream, Stopped, TagSet};
///
/// struct Refunds;
///
/// impl Handler for Refunds {
///     fn tags(&self) -> TagSet {
///         TagSet::of([2])
///     }
///     fn next_offset(&mut self) -> Result<u64, HandlerError> {
///         Ok(0)
///     }
///     fn handle_event(&mut self, _: u64, _: Entry) -> Result<(), HandlerError> {
///         unreachable!("no event of tag 2 is ever in the stream")
///     }
/// }
///
/// let mut consumer = Consumer::new(MemoryStream::new(10, TagSet::of([1])));
/// match consumer.run(&mut Refunds) {
///     Stopped::NothingToConsume => {} // a wiring mistake: nothing of tag 2 ever comes
///     Stopped::Cancelled => unreachable!("nobody cancelled"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stopped {
    /// The stream carries none of the tags the handler wants.
    NothingToConsume,
    /// The consumer's [`CancelToken`] was cancelled.
    Cancelled,
}

/// How long a [`Consumer`] waits before a restart: exponential in the failures since the last
/// event handled, capped, with jitter.
///
/// ```
/// use std::time::Duration;
/// use ringledger::stream::Backoff;
///
/// let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5)).with_jitter(0.0);
/// let delays: Vec<u64> = (1..=5).map(|n| backoff.delay(n, 0).as_secs()).collect();
/// assert_eq!(delays, [1, 2, 4, 5, 5]);
/// // Full jitter: anywhere from zero to the nominal delay.
/// let full = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
/// assert!(full.delay(3, 12345) <= Duration::from_secs(4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
}

impl Default for Backoff {
    /// Dogma's: from 3 seconds, doubling, capped at an hour, full jitter.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(3),
            max: Duration::from_secs(3600),
            jitter: 1.0,
        }
    }
}

impl Backoff {
    /// A backoff from `initial`, doubling after each failure, capped at `max`, with full
    /// jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringledger::stream::Backoff;
    ///
    /// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    /// assert_eq!(backoff.nominal(1), Duration::from_millis(100));
    /// assert_eq!(backoff.nominal(8), Duration::from_secs(10)); // 12.8 s, capped
    /// assert!(backoff.delay(3, 0x5eed) <= Duration::from_millis(400)); // jittered below
    /// ```
    #[must_use]
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            jitter: 1.0,
        }
    }

    /// The backoff with this much jitter, from 0 (none: the nominal delay) to 1 (full: a
    /// uniform delay from zero to the nominal one). Clamped to that range.
    #[must_use]
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() {
            1.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// The delay without jitter after `failures` failures in a row (0 for none): `initial`
    /// doubled `failures - 1` times, at most `max`.
    #[must_use]
    pub fn nominal(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max)
    }

    /// The delay after `failures` failures in a row, jittered by `random` (any value; a
    /// uniformly random one gives a uniform jitter).
    #[must_use]
    pub fn delay(&self, failures: u32, random: u64) -> Duration {
        let nominal = self.nominal(failures);
        // 53 random bits make a uniform fraction in [0, 1).
        let unit = (random >> 11) as f64 / (1u64 << 53) as f64;
        let nanos = u64::try_from(nominal.as_nanos()).unwrap_or(u64::MAX);
        // In whole nanoseconds, so that no jitter gives exactly the nominal delay.
        let cut = (nanos as f64 * self.jitter * unit) as u64;
        nominal.saturating_sub(Duration::from_nanos(cut.min(nanos)))
    }
}

/// A limit on how many handlers run at once, shared by the [`Consumer`]s given a clone.
///
/// ```
/// use ringledger::stream::ConcurrencyLimit;
/// use ringledger::wait::Deadline;
///
/// let limit = ConcurrencyLimit::new(1);
/// let permit = limit.try_acquire().unwrap();
/// assert!(limit.try_acquire().is_none());
/// drop(permit);
/// assert!(limit.acquire(Deadline::IMMEDIATE, None).is_ok());
/// ```
#[derive(Clone)]
pub struct ConcurrencyLimit {
    inner: Arc<LimitInner>,
}

struct LimitInner {
    max: usize,
    in_use: AtomicUsize,
    released: Waiters,
}

/// One of a [`ConcurrencyLimit`]'s places, given back when dropped.
///
/// ```
/// use ringledger::stream::ConcurrencyLimit;
/// use ringledger::wait::Deadline;
///
/// let limit = ConcurrencyLimit::new(1);
/// let permit = limit.try_acquire().unwrap();
/// std::thread::scope(|s| {
///     let waiter = s.spawn(|| limit.acquire(Deadline::Forever, None).map(drop));
///     drop(permit); // gives the place back, and wakes the waiter
///     assert!(waiter.join().unwrap().is_ok());
/// });
/// assert_eq!(limit.in_use(), 0);
/// ```
#[must_use = "the place is given back as soon as the permit is dropped"]
pub struct Permit<'a> {
    limit: &'a LimitInner,
}

impl ConcurrencyLimit {
    /// A limit of `max` at once (at least 1).
    ///
    /// ```
    /// use ringledger::stream::ConcurrencyLimit;
    ///
    /// let limit = ConcurrencyLimit::new(4);
    /// let shared = limit.clone(); // for another consumer: the same four places
    /// let _permit = shared.try_acquire().unwrap();
    /// assert_eq!((limit.max(), limit.in_use()), (4, 1));
    /// assert_eq!(ConcurrencyLimit::new(0).max(), 1);
    /// ```
    #[must_use]
    pub fn new(max: usize) -> Self {
        ConcurrencyLimit {
            inner: Arc::new(LimitInner {
                max: max.max(1),
                in_use: AtomicUsize::new(0),
                released: Waiters::new(),
            }),
        }
    }

    /// The most permits out at once.
    #[must_use]
    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// How many permits are out now.
    #[must_use]
    pub fn in_use(&self) -> usize {
        self.inner.in_use.load(Ordering::Acquire)
    }

    /// A permit if one is free now.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let limit = &*self.inner;
        limit
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit { limit })
    }

    /// A permit, waiting until `deadline` (or until `cancel` is cancelled) for one.
    pub fn acquire(
        &self,
        deadline: impl Into<Deadline>,
        cancel: Option<&CancelToken>,
    ) -> Result<Permit<'_>, WaitError> {
        self.inner
            .released
            .wait_until(deadline.into(), cancel, || self.try_acquire())
    }
}

impl fmt::Debug for ConcurrencyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimit")
            .field("max", &self.max())
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.limit.in_use.fetch_sub(1, Ordering::AcqRel);
        self.limit.released.notify();
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

/// A callback told of each restart: the error and the delay before it.
type OnRestart = Box<dyn FnMut(&ConsumerError, Duration) + Send>;

/// Runs a [`Handler`] over an [`EventStream`] (Dogma's consumer).
///
/// [`run`](Self::run) reads the entries whose tags both the stream carries and the handler
/// wants, from the handler's [`next_offset`](Handler::next_offset) on, and hands each to
/// [`handle_event`](Handler::handle_event) (within the [`ConcurrencyLimit`], if one was given).
/// After any error it closes the cursor, waits a [`Backoff`] and starts again from
/// `next_offset`; it returns only when its [`CancelToken`] is cancelled (which also ends the
/// backoff and any wait for events at once) or when there is nothing to consume.
///
/// ```
/// use ringledger::ledger::Entry;
/// use ringledger::stream::{Consumer, Handler, HandlerError, MemoryStream, Stopped, TagSet};
/// use ringledger::wait::CancelToken;
///
/// struct Collect { next: u64, seen: Vec<u64>, stop: CancelToken }
/// impl Handler for Collect {
///     fn tags(&self) -> TagSet { TagSet::of([1]) }
///     fn next_offset(&mut self) -> Result<u64, HandlerError> { Ok(self.next) }
///     fn handle_event(&mut self, expected: u64, event: Entry) -> Result<(), HandlerError> {
///         assert_eq!(expected, self.next);
///         self.seen.push(event.sequence);
///         self.next = event.sequence + 1;
///         if event.sequence == 9 {
///             self.stop.cancel(); // enough for this example
///         }
///         Ok(())
///     }
/// }
///
/// let stream = MemoryStream::new(100, TagSet::all());
/// stream.append(&[
///     Entry::new(5, "a").with_tag(1),
///     Entry::new(6, "b").with_tag(2),
///     Entry::new(9, "c").with_tag(1),
/// ]).unwrap();
/// let mut consumer = Consumer::new(stream);
/// let stop = consumer.cancel_token().clone();
/// let mut handler = Collect { next: 0, seen: Vec::new(), stop };
/// assert_eq!(consumer.run(&mut handler), Stopped::Cancelled);
/// assert_eq!((handler.seen, handler.next), (vec![5, 9], 10));
/// ```
pub struct Consumer<S> {
    stream: S,
    backoff: Backoff,
    limit: Option<ConcurrencyLimit>,
    cancel: CancelToken,
    on_restart: Option<OnRestart>,
    /// Where the backoff sleeps: nobody notifies it, only the token wakes it early.
    pause: Waiters,
}

/// How one attempt ended.
enum Ended {
    Cancelled,
    Failed(ConsumerError),
}

impl<S: EventStream> Consumer<S> {
    /// A consumer of `stream` with the default [`Backoff`], no concurrency limit and a
    /// [`CancelToken`] of its own.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use ringledger::ledger::{Ledger, LedgerConfig};
    /// use ringledger::storage::sim::SimStorage;
    /// use ringledger::stream::{Backoff, ConcurrencyLimit, Consumer, LedgerStream};
    /// use ringledger::wait::CancelToken;
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let shutdown = CancelToken::new();
    /// let consumer = Consumer::new(LedgerStream::new(ledger))
    ///     .with_backoff(Backoff::new(Duration::from_millis(100), Duration::from_secs(60)))
    ///     .with_limit(ConcurrencyLimit::new(4)) // shared with the process's other consumers
    ///     .with_cancel(shutdown.clone());
    /// assert!(consumer.stream().ledger().is_empty());
    /// shutdown.cancel(); // `run` would return at once now
    /// assert!(consumer.cancel_token().is_cancelled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(stream: S) -> Self {
        Consumer {
            stream,
            backoff: Backoff::default(),
            limit: None,
            cancel: CancelToken::new(),
            on_restart: None,
            pause: Waiters::new(),
        }
    }

    /// The consumer with this backoff between restarts.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The consumer handling events only within `limit`.
    #[must_use]
    pub fn with_limit(mut self, limit: ConcurrencyLimit) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The consumer stopping when `cancel` is cancelled.
    #[must_use]
    pub fn with_cancel(mut self, cancel: CancelToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// The consumer calling `f` before each restart with the error and the backoff delay
    /// (for logs and metrics).
    #[must_use]
    pub fn on_restart(mut self, f: impl FnMut(&ConsumerError, Duration) + Send + 'static) -> Self {
        self.on_restart = Some(Box::new(f));
        self
    }

    /// The token that stops [`run`](Self::run).
    #[must_use]
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// The stream consumed.
    #[must_use]
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Feeds `handler` until the token is cancelled; see the [type documentation](Self).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use ringledger::ledger::Entry;
    /// use ringledger::stream::{Consumer, Handler, HandlerError, MemoryStream, Stopped, TagSet};
    ///
    /// /// Counts events; its offset lives with the count.
    /// struct Tally(u64, Arc<AtomicU64>);
    ///
    /// impl Handler for Tally {
    ///     fn tags(&self) -> TagSet {
    ///         TagSet::all()
    ///     }
    ///     fn next_offset(&mut self) -> Result<u64, HandlerError> {
    ///         Ok(self.0)
    ///     }
    ///     fn handle_event(&mut self, _: u64, event: Entry) -> Result<(), HandlerError> {
    ///         self.0 = event.sequence + 1;
    ///         self.1.fetch_add(1, Ordering::Release);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let stream = MemoryStream::new(100, TagSet::all());
    /// let handled = Arc::new(AtomicU64::new(0));
    /// let mut consumer = Consumer::new(stream.clone());
    /// let stop = consumer.cancel_token().clone();
    /// let mut handler = Tally(1, Arc::clone(&handled));
    /// let worker = std::thread::spawn(move || consumer.run(&mut handler)); // waits for events
    /// stream.append(&[Entry::new(1, "a"), Entry::new(2, "b")])?;
    /// while handled.load(Ordering::Acquire) < 2 {
    ///     std::thread::yield_now();
    /// }
    /// stop.cancel();
    /// assert_eq!(worker.join().unwrap(), Stopped::Cancelled);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run<H: Handler + ?Sized>(&mut self, handler: &mut H) -> Stopped {
        let tags = self.stream.tags().intersection(&handler.tags());
        if tags.is_empty() {
            return Stopped::NothingToConsume;
        }
        // Failures since the last event handled: the backoff's exponent.
        let mut failures = 0u32;
        loop {
            let error = match self.attempt(handler, &tags, &mut failures) {
                Ended::Cancelled => return Stopped::Cancelled,
                Ended::Failed(error) => error,
            };
            if self.cancel.is_cancelled() {
                return Stopped::Cancelled;
            }
            failures = failures.saturating_add(1);
            let delay = self.backoff.delay(failures, random_u64());
            tracing::warn!(
                error = %crate::error_chain(&error),
                ?delay,
                failures,
                "stream consumer restarting"
            );
            if let Some(on_restart) = &mut self.on_restart {
                on_restart(&error, delay);
            }
            let paused: Result<(), _> =
                self.pause
                    .wait_until(Deadline::Timeout(delay), Some(&self.cancel), || None);
            if paused == Err(WaitError::Cancelled) {
                return Stopped::Cancelled;
            }
        }
    }

    /// Opens a cursor at the handler's offset and handles events until something fails.
    fn attempt<H: Handler + ?Sized>(
        &self,
        handler: &mut H,
        tags: &TagSet,
        failures: &mut u32,
    ) -> Ended {
        let mut offset = match handler.next_offset() {
            Ok(offset) => offset,
            Err(e) => return Ended::Failed(ConsumerError::NextOffset(e)),
        };
        let opened = self
            .stream
            .open_with(offset, tags.clone(), self.cancel.clone());
        let mut cursor = match opened {
            Ok(cursor) => cursor,
            Err(StreamError::Cancelled) => return Ended::Cancelled,
            Err(source) => return Ended::Failed(ConsumerError::Open { offset, source }),
        };
        loop {
            let event = match cursor.next(Deadline::Forever) {
                Ok(event) => event,
                Err(StreamError::Cancelled) => return Ended::Cancelled,
                Err(e) => return Ended::Failed(ConsumerError::Next(e)),
            };
            let sequence = event.sequence;
            if sequence < offset {
                return Ended::Failed(ConsumerError::OffsetBehind {
                    expected: offset,
                    got: sequence,
                });
            }
            let _permit = match &self.limit {
                None => None,
                Some(limit) => match limit.acquire(Deadline::Forever, Some(&self.cancel)) {
                    Ok(permit) => Some(permit),
                    Err(_) => return Ended::Cancelled,
                },
            };
            if let Err(source) = handler.handle_event(offset, event) {
                return Ended::Failed(ConsumerError::Handle {
                    offset: sequence,
                    source,
                });
            }
            // Handled: the next failure starts the backoff from the beginning again.
            *failures = 0;
            offset = sequence.saturating_add(1);
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Consumer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("stream", &self.stream)
            .field("backoff", &self.backoff)
            .field("limit", &self.limit)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_range() {
        let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(70));
        assert_eq!(backoff.nominal(0), Duration::ZERO);
        assert_eq!(backoff.nominal(1), Duration::from_millis(10));
        assert_eq!(backoff.nominal(3), Duration::from_millis(40));
        assert_eq!(backoff.nominal(4), Duration::from_millis(70));
        assert_eq!(backoff.nominal(u32::MAX), Duration::from_millis(70));
        assert_eq!(backoff.delay(2, 0), Duration::from_millis(20));
        assert!(backoff.delay(2, u64::MAX) < Duration::from_micros(1));
        let half = backoff.with_jitter(0.5);
        for r in [0, 1 << 40, u64::MAX / 3, u64::MAX] {
            let d = half.delay(2, r);
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
        }
        assert_eq!(backoff.with_jitter(f64::NAN).jitter, 1.0);
        assert_eq!(backoff.with_jitter(7.0).jitter, 1.0);
    }
}
