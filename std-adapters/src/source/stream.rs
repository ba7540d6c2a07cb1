//! [`stream_source`]: a [`PullSource`] over an event stream's cursor.

use super::{NoEvent, PullSource, SourceOptions};
use crate::stream::{EventStream, StreamError, TagSet};

/// A [`PullSource`] of the entries of `stream` at offsets `>= offset` whose tag is in
/// `filter`, such as those of a [`LedgerStream`](crate::stream::LedgerStream): each event is an
/// entry's payload and timestamp.
///
/// The cursor waits on the source's token, so cancelling the source ends a wait for entries at
/// once; each pull waits until the batch deadline at most. A cursor error other than a timeout
/// or a cancellation (say [`StreamError::Truncated`] after a cleaner deleted entries the source
/// had not read) ends the source with [`SourceError::Failed`](super::SourceError::Failed).
/// Fails as [`EventStream::open_with`] does.
///
/// ```
/// use std::time::Duration;
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::source::{stream_source, Batch, BatchEnd, Source, SourceOptions};
/// use ringledger::stream::{LedgerStream, TagSet};
///
/// let dir = tempfile::tempdir().unwrap();
/// let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
/// ledger.write(&[Entry::new(1, "a").with_tag(7), Entry::new(2, "b").with_tag(8)]).unwrap();
/// let stream = LedgerStream::new(ledger);
/// let options = SourceOptions::new().with_timeout(Duration::from_millis(5));
/// let mut source = stream_source(&stream, 0, TagSet::of([8]), options).unwrap();
/// let mut batch = Batch::new();
/// assert_eq!(source.next_batch(&mut batch).unwrap(), BatchEnd::Timeout);
/// assert_eq!(batch.as_slice()[0].data, b"b");
/// ```
pub fn stream_source<S: EventStream + ?Sized>(
    stream: &S,
    offset: u64,
    filter: TagSet,
    options: SourceOptions,
) -> Result<PullSource, StreamError> {
    let mut cursor = stream.open_with(offset, filter, options.cancel_token().clone())?;
    Ok(PullSource::new(
        options,
        move |context, event| match cursor.next(context.deadline()) {
            Ok(entry) => {
                event.write(&entry.payload)?;
                event.set_timestamp(entry.timestamp);
                Ok(())
            }
            Err(StreamError::Timeout) => Err(NoEvent::Timeout),
            Err(StreamError::Cancelled | StreamError::Closed) => Err(NoEvent::Eof),
            Err(error) => Err(NoEvent::Failed(Box::new(error))),
        },
    ))
}
