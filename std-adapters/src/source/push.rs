//! [`PushSource`]: a source of events that producers push.

use std::fmt;

use super::{stamp, Batch, BatchEnd, Core, NoEvent, Progress, Source, SourceError};
use super::{SourceEvent, SourceOptions};
use crate::blocking::{mpsc, PopError};
use crate::wait::Deadline;

/// What producers push to a [`PushSource`]: an event, or why there is none (Falco's
/// `PushEvent` with its `Err`).
///
/// ```
/// use ringledger::blocking::mpsc;
/// use ringledger::source::{Batch, BatchEnd, NoEvent, PushEvent, PushSource, Source, SourceEvent};
/// use ringledger::source::SourceOptions;
/// use ringledger::wait::Deadline;
///
/// let (producer, events) = mpsc::channel::<PushEvent>(8);
/// producer.push(Ok(SourceEvent::new("a")), Deadline::Forever).unwrap();
/// producer.push(Err(NoEvent::Timeout), Deadline::Forever).unwrap(); // ends this batch now
/// producer.push(Err(NoEvent::Eof), Deadline::Forever).unwrap(); // ends the source
/// let mut source = PushSource::new(SourceOptions::new(), events);
/// let mut batch = Batch::new();
/// assert_eq!((source.next_batch(&mut batch)?, batch.len()), (BatchEnd::Timeout, 1));
/// assert_eq!((source.next_batch(&mut batch)?, batch.len()), (BatchEnd::Eof, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type PushEvent = Result<SourceEvent, NoEvent>;

/// A source of the events producers push into a [`blocking::mpsc`](crate::blocking::mpsc)
/// buffer (Falco's push instance).
///
/// Each batch takes events until it is full, its deadline passes ([`BatchEnd::Timeout`]), a
/// producer pushes [`NoEvent`], the buffer is closed and empty ([`BatchEnd::Eof`]) or the token
/// is cancelled ([`BatchEnd::Eof`]; a wait for an event ends at once). A timestamp of 0 becomes
/// [`UNSET_TIMESTAMP`](super::UNSET_TIMESTAMP).
///
/// ```
/// use std::time::Duration;
/// use ringledger::blocking::mpsc;
/// use ringledger::source::{Batch, BatchEnd, PushSource, Source, SourceEvent, SourceOptions};
/// use ringledger::wait::Deadline;
///
/// let (producer, events) = mpsc::channel(64);
/// let options = SourceOptions::new().with_timeout(Duration::from_millis(10));
/// let mut source = PushSource::new(options, events);
/// producer.push(Ok(SourceEvent::new("hello")), Deadline::Forever).unwrap();
/// let mut batch = Batch::new();
/// assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Timeout);
/// assert_eq!(batch.as_slice()[0].data, b"hello");
/// drop(producer); // closes the buffer
/// assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Eof);
/// ```
pub struct PushSource<'a> {
    events: mpsc::Consumer<'a, PushEvent>,
    core: Core,
}

impl<'a> PushSource<'a> {
    /// A source of the events pushed into `events`' buffer.
    ///
    /// ```
    /// use ringledger::blocking::mpsc;
    /// use ringledger::source::{PushSource, Source, SourceEvent, SourceOptions};
    /// use ringledger::wait::Deadline;
    ///
    /// let (producer, events) = mpsc::channel(256);
    /// let mut source = PushSource::new(SourceOptions::new().with_batch_size(10), events);
    /// let feeder = std::thread::spawn(move || {
    ///     for i in 0..25 {
    ///         producer.push(Ok(SourceEvent::new(format!("{i}"))), Deadline::Forever).unwrap();
    ///     } // dropping the producer closes the buffer: the source's end
    /// });
    /// let events: usize = source.batches().map(|batch| batch.unwrap().len()).sum();
    /// assert_eq!(events, 25);
    /// feeder.join().unwrap();
    /// ```
    pub fn new(options: SourceOptions, events: mpsc::Consumer<'a, PushEvent>) -> Self {
        PushSource {
            events,
            core: Core::new(options),
        }
    }

    /// The source's options.
    #[must_use]
    pub fn options(&self) -> &SourceOptions {
        &self.core.options
    }
}

impl Source for PushSource<'_> {
    fn next_batch(&mut self, batch: &mut Batch) -> Result<BatchEnd, SourceError> {
        let deadline = match self.core.begin(batch) {
            Ok(deadline) => deadline.map_or(Deadline::Forever, Deadline::At),
            Err(end) => return Ok(end),
        };
        let max = self.core.options.max_event_size;
        while batch.len() < self.core.options.batch_size {
            if self.core.done() {
                return Ok(BatchEnd::Eof);
            }
            // Takes a waiting event even after the deadline: only waiting is bounded by it.
            let popped = self
                .events
                .pop_cancellable(deadline, &self.core.options.cancel);
            match popped {
                Ok(Ok(mut event)) => {
                    let size = event.data.len();
                    if size > max {
                        return Err(self.core.fail(SourceError::Oversize { size, max }));
                    }
                    event.timestamp = stamp(event.timestamp);
                    batch.push(event);
                }
                Ok(Err(NoEvent::Timeout)) | Err(PopError::TimedOut) => {
                    return Ok(self.core.end(BatchEnd::Timeout))
                }
                Ok(Err(NoEvent::Eof)) | Err(PopError::Cancelled | PopError::Closed) => {
                    return Ok(self.core.end(BatchEnd::Eof))
                }
                Ok(Err(NoEvent::Failed(error))) => {
                    return Err(self.core.fail(SourceError::Failed(error)))
                }
            }
        }
        Ok(self.core.end(BatchEnd::Full))
    }

    fn close(&mut self) {
        self.core.close();
        self.events.close();
    }

    fn progress(&self) -> Option<Progress> {
        self.core.progress()
    }
}

impl Drop for PushSource<'_> {
    fn drop(&mut self) {
        self.core.close();
    }
}

impl fmt::Debug for PushSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushSource")
            .field("options", &self.core.options)
            .field("eof", &self.core.eof)
            .field("pending", &self.events.len())
            .finish()
    }
}
