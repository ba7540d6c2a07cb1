//! [`PullSource`]: a source that calls a function for each event.

use std::fmt;
use std::time::Instant;

use super::{stamp, Batch, BatchEnd, Core, NoEvent, Oversize, Progress, Source, SourceError};
use super::{SourceEvent, SourceOptions};
use crate::wait::{CancelToken, Deadline};

/// What a pull function knows about the batch it fills.
///
/// A pull function that waits for its event waits until the batch's deadline at most, on the
/// source's token:
///
/// ```
/// use std::time::Duration;
/// use ringledger::source::{Batch, BatchEnd, NoEvent, PullSource, Source, SourceOptions};
/// use ringledger::wait::{CancelToken, WaitError, Waiters};
///
/// let shutdown = CancelToken::new();
/// let options = SourceOptions::new()
///     .with_timeout(Duration::from_secs(60))
///     .with_cancel(shutdown.clone());
/// let mut source = PullSource::new(options, |ctx, _event| {
///     // Nothing ever arrives here.
///     let nothing = || None::<()>;
///     let waited = Waiters::new().wait_until(ctx.deadline(), Some(ctx.cancel_token()), nothing);
///     assert_eq!(waited, Err(WaitError::Cancelled));
///     Err(NoEvent::Timeout)
/// });
/// std::thread::scope(|s| {
///     s.spawn(|| shutdown.cancel()); // the host shuts down
///     assert_eq!(source.next_batch(&mut Batch::new()).unwrap(), BatchEnd::Eof); // at once
/// });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PullContext<'a> {
    cancel: &'a CancelToken,
    deadline: Option<Instant>,
}

impl PullContext<'_> {
    /// The source's token: a pull that waits should wait on it too (cancelling it ends the
    /// source anyway, but the wait would only notice after it ended).
    #[must_use]
    pub fn cancel_token(&self) -> &CancelToken {
        self.cancel
    }

    /// Whether the source was cancelled.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The end of this batch's timeout: a pull that waits for an event should wait no longer
    /// (and return [`NoEvent::Timeout`] then).
    #[must_use]
    pub fn deadline(&self) -> Deadline {
        self.deadline.map_or(Deadline::Forever, Deadline::At)
    }
}

/// Where a pull function writes its event: bytes up to the maximum event size, and a
/// timestamp.
///
/// ```
/// use ringledger::source::{Batch, BatchEnd, PullSource, Source, SourceOptions};
///
/// let options = SourceOptions::new().with_batch_size(1).with_max_event_size(64);
/// let mut source = PullSource::new(options, |_ctx, event| {
///     event.write(b"GET ")?;
///     event.write(b"/index.html")?; // an event may be written in pieces
///     event.set_timestamp(1_700_000_000_000_000_000);
///     assert_eq!((event.len(), event.max_size()), (15, 64));
///     Ok(())
/// });
/// let mut batch = Batch::new();
/// assert_eq!(source.next_batch(&mut batch)?, BatchEnd::Full);
/// assert_eq!(batch.as_slice()[0].data, b"GET /index.html");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventWriter<'a> {
    event: &'a mut SourceEvent,
    max: usize,
    /// The size the event would have had when a write was refused.
    refused: Option<usize>,
}

impl EventWriter<'_> {
    /// Appends `bytes` to the event, or refuses them all if the event would pass the maximum
    /// event size; the source then fails with [`SourceError::Oversize`] whatever the pull
    /// function returns.
    ///
    /// ```
    /// use ringledger::source::{Batch, PullSource, Source, SourceError, SourceOptions};
    ///
    /// let options = SourceOptions::new().with_max_event_size(8);
    /// let mut source = PullSource::new(options, |_ctx, event| {
    ///     event.write(b"12345")?;
    ///     let refused = event.write(b"6789").unwrap_err(); // 9 bytes would pass the maximum
    ///     assert_eq!((refused.size, refused.max), (9, 8));
    ///     assert_eq!(event.len(), 5); // nothing of the refused write was appended
    ///     Ok(()) // the source fails anyway
    /// });
    /// let failed = source.next_batch(&mut Batch::new());
    /// assert!(matches!(failed, Err(SourceError::Oversize { size: 9, max: 8 })));
    /// ```
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Oversize> {
        let size = self.event.data.len().saturating_add(bytes.len());
        if size > self.max {
            let size = self.refused.map_or(size, |r| r.max(size));
            self.refused = Some(size);
            return Err(Oversize {
                size,
                max: self.max,
            });
        }
        self.event.data.extend_from_slice(bytes);
        Ok(())
    }

    /// Sets the event's timestamp (nanoseconds since the epoch; 0 means none).
    pub fn set_timestamp(&mut self, timestamp: u64) {
        self.event.timestamp = stamp(timestamp);
    }

    /// The bytes written so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.event.data.len()
    }

    /// Whether nothing was written yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.event.data.is_empty()
    }

    /// The most bytes the event may have.
    #[must_use]
    pub fn max_size(&self) -> usize {
        self.max
    }
}

impl fmt::Debug for EventWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWriter")
            .field("len", &self.len())
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// The function a [`PullSource`] calls for each event.
type Pull = Box<dyn FnMut(&PullContext<'_>, &mut EventWriter<'_>) -> Result<(), NoEvent> + Send>;

/// A source that calls a function for each event (Falco's pull instance).
///
/// The function writes one event into the [`EventWriter`] and returns `Ok`, or says why
/// there is none ([`NoEvent`]). Before each call but a batch's first, the source checks its
/// token (cancelled: [`BatchEnd::Eof`]) and then the batch deadline (passed:
/// [`BatchEnd::Timeout`]); a function that may wait should wait until
/// [`PullContext::deadline`] at most, on [`PullContext::cancel_token`].
///
/// ```
/// use std::sync::mpsc::{channel, RecvTimeoutError};
/// use std::time::{Duration, Instant};
/// use ringledger::source::{Batch, BatchEnd, NoEvent, PullSource, Source, SourceOptions};
///
/// let (lines, received) = channel::<String>();
/// let options = SourceOptions::new().with_timeout(Duration::from_millis(20));
/// let mut source = PullSource::new(options, move |ctx, event| {
///     let until = ctx.deadline().instant(); // this batch's end
///     let wait = until.map_or(Duration::MAX, |at| at.saturating_duration_since(Instant::now()));
///     match received.recv_timeout(wait) {
///         Ok(line) => Ok(event.write(line.as_bytes())?),
///         Err(RecvTimeoutError::Timeout) => Err(NoEvent::Timeout),
///         Err(RecvTimeoutError::Disconnected) => Err(NoEvent::Eof),
///     }
/// });
/// lines.send("one".into())?;
/// let mut batch = Batch::new();
/// assert_eq!(source.next_batch(&mut batch)?, BatchEnd::Timeout);
/// assert_eq!(batch.len(), 1);
/// drop(lines);
/// assert_eq!(source.next_batch(&mut batch)?, BatchEnd::Eof);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PullSource {
    pull: Pull,
    core: Core,
}

impl PullSource {
    /// A source calling `pull` for each event.
    ///
    /// ```
    /// use ringledger::source::{Batch, BatchEnd, NoEvent, PullSource, Source, SourceOptions};
    ///
    /// let mut lines = vec!["b", "a"];
    /// let mut source = PullSource::new(SourceOptions::new(), move |_ctx, event| {
    ///     let line = lines.pop().ok_or(NoEvent::Eof)?;
    ///     event.write(line.as_bytes())?;
    ///     Ok(())
    /// });
    /// let mut batch = Batch::new();
    /// assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
    /// assert_eq!(batch.len(), 2);
    /// ```
    pub fn new(
        options: SourceOptions,
        pull: impl FnMut(&PullContext<'_>, &mut EventWriter<'_>) -> Result<(), NoEvent> + Send + 'static,
    ) -> Self {
        PullSource {
            pull: Box::new(pull),
            core: Core::new(options),
        }
    }

    /// The source's options.
    #[must_use]
    pub fn options(&self) -> &SourceOptions {
        &self.core.options
    }
}

impl Source for PullSource {
    fn next_batch(&mut self, batch: &mut Batch) -> Result<BatchEnd, SourceError> {
        let deadline = match self.core.begin(batch) {
            Ok(deadline) => deadline,
            Err(end) => return Ok(end),
        };
        let max = self.core.options.max_event_size;
        while batch.len() < self.core.options.batch_size {
            if self.core.done() {
                return Ok(BatchEnd::Eof);
            }
            // Not before the first pull: a batch always gets a chance at one event.
            if !batch.is_empty() && deadline.is_some_and(|at| Instant::now() >= at) {
                return Ok(self.core.end(BatchEnd::Timeout));
            }
            let context = PullContext {
                cancel: &self.core.options.cancel,
                deadline,
            };
            let mut writer = EventWriter {
                event: batch.slot(),
                max,
                refused: None,
            };
            let pulled = (self.pull)(&context, &mut writer);
            if let Some(size) = writer.refused {
                return Err(self.core.fail(SourceError::Oversize { size, max }));
            }
            match pulled {
                Ok(()) => batch.commit(),
                Err(NoEvent::Timeout) => return Ok(self.core.end(BatchEnd::Timeout)),
                Err(NoEvent::Eof) => return Ok(self.core.end(BatchEnd::Eof)),
                Err(NoEvent::Failed(error)) => {
                    return Err(self.core.fail(SourceError::Failed(error)))
                }
            }
        }
        Ok(self.core.end(BatchEnd::Full))
    }

    fn close(&mut self) {
        self.core.close();
    }

    fn progress(&self) -> Option<Progress> {
        self.core.progress()
    }
}

impl Drop for PullSource {
    fn drop(&mut self) {
        self.core.close();
    }
}

impl fmt::Debug for PullSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullSource")
            .field("options", &self.core.options)
            .field("eof", &self.core.eof)
            .finish_non_exhaustive()
    }
}
