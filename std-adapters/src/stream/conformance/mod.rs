//! Dogma's `streamtest` suite, ported: what every [`EventStream`] must do, as public code to
//! run against any implementation (feature `conformance`).
//!
//! Implement [`StreamFactory`] for your stream and call [`run_all`] from a test; it runs every
//! case of [`cases()`] and panics naming the ones that failed. The crate's unit tests run it
//! (also without the feature) against [`MemoryStream`](super::MemoryStream)
//! ([`MemoryFactory`]) and [`LedgerStream`](super::LedgerStream) ([`LedgerFactory`]: one
//! segment, entries spread over many segments, and a ledger reopened before it is read).
//!
//! The fixtures are Dogma's five events (`A1 B1 A2 B2 C1`, tags [`TAG_A`], [`TAG_B`],
//! [`TAG_C`]) at offsets 100 to 500: no case assumes dense offsets, and a factory may put
//! entries of other tags in the gaps. Cases 1 to 17 are Dogma's, in its order; the rest cover
//! truncation, persistence across a reopen and the resume-after-wait regression (Dogma's
//! issue 194).
//!
//! ```
//! use ringledger::stream::conformance::{run_all, MemoryFactory};
//!
//! run_all(&MemoryFactory::default());
//! ```

mod cases;
mod factories;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use super::EventStream;
use crate::ledger::Entry;

pub use cases::*;
pub use factories::{
    LedgerFactory, LedgerLayout, MemoryFactory, SimLedgerStream, FILLERS, FILLER_TAG,
};

/// The tag of Dogma's event type A.
pub const TAG_A: u32 = 1;
/// The tag of event type B.
pub const TAG_B: u32 = 2;
/// The tag of event type C.
pub const TAG_C: u32 = 3;

/// How long a case lets a thread block before it acts on the cursor: long enough that the
/// thread is usually asleep (the cases pass either way, but then test less).
const SETTLE: Duration = Duration::from_millis(20);
/// How long a case waits for what must happen: generous, for loaded machines.
const PATIENCE: Duration = Duration::from_secs(10);

/// Dogma's fixtures: `event0` to `event4` = A1, B1, A2, B2, C1 at offsets 100, 200, ... 500.
#[must_use]
pub fn fixtures() -> [Entry; 5] {
    let event = |i: u64, tag: u32, payload: &'static str| Entry {
        sequence: 100 * (i + 1),
        tag,
        timestamp: 1_000 + i,
        payload: payload.into(),
    };
    [
        event(0, TAG_A, "A1"),
        event(1, TAG_B, "B1"),
        event(2, TAG_A, "A2"),
        event(3, TAG_B, "B2"),
        event(4, TAG_C, "C1"),
    ]
}

/// Makes the streams the cases run on.
///
/// ```
/// use ringledger::ledger::Entry;
/// use ringledger::stream::conformance::{open_filters_by_tag, StreamFactory};
/// use ringledger::stream::{Cursor, EventStream, MemoryStream, StreamError, TagSet};
/// use ringledger::wait::CancelToken;
///
/// /// The stream under test: here a memory stream behind the application's own type.
/// struct MyStream(MemoryStream);
///
/// impl EventStream for MyStream {
///     fn tags(&self) -> TagSet {
///         self.0.tags()
///     }
///     fn open_with(
///         &self,
///         offset: u64,
///         filter: TagSet,
///         cancel: CancelToken,
///     ) -> Result<Cursor, StreamError> {
///         self.0.open_with(offset, filter, cancel)
///     }
/// }
///
/// struct MyFactory;
///
/// impl StreamFactory for MyFactory {
///     type Stream = MyStream;
///     fn create(&self, entries: &[Entry]) -> MyStream {
///         let stream = MyStream(MemoryStream::new(1024, TagSet::all()));
///         self.append(&stream, entries);
///         stream
///     }
///     fn append(&self, stream: &MyStream, entries: &[Entry]) {
///         stream.0.append(entries).unwrap();
///     }
///     fn truncate(&self, stream: &MyStream, up_to: u64) {
///         stream.0.truncate(up_to);
///     }
/// }
///
/// open_filters_by_tag(&MyFactory); // one case; `run_all(&MyFactory)` runs every one
/// ```
pub trait StreamFactory {
    /// The stream under test.
    type Stream: EventStream + 'static;

    /// A new stream carrying (at least) tags A, B and C, holding `entries`.
    ///
    /// ```
    /// use ringledger::stream::conformance::{fixtures, MemoryFactory, StreamFactory, TAG_C};
    /// use ringledger::stream::{EventStream, TagSet};
    ///
    /// let stream = MemoryFactory::default().create(&fixtures()); // A1 B1 A2 B2 C1
    /// assert_eq!(stream.len(), 5);
    /// let mut cursor = stream.open(0, TagSet::of([TAG_C])).unwrap();
    /// assert_eq!(cursor.try_next().unwrap().unwrap().payload, "C1");
    /// ```
    fn create(&self, entries: &[Entry]) -> Self::Stream;

    /// Appends `entries` (offsets above every offset in the stream).
    ///
    /// ```
    /// use ringledger::ledger::Entry;
    /// use ringledger::stream::conformance::{fixtures, MemoryFactory, StreamFactory, TAG_A};
    ///
    /// let factory = MemoryFactory::default();
    /// let stream = factory.create(&fixtures()); // offsets 100 to 500
    /// factory.append(&stream, &[Entry::new(600, "A3").with_tag(TAG_A)]);
    /// assert_eq!(stream.head(), 600);
    /// ```
    fn append(&self, stream: &Self::Stream, entries: &[Entry]);

    /// Deletes every entry at an offset `<= up_to`, as a cleaner would.
    fn truncate(&self, stream: &Self::Stream, up_to: u64);

    /// The stream after closing it and opening it again from its storage; `None` (the
    /// default) for a stream that does not persist.
    fn reopen(&self, stream: Self::Stream) -> Option<Self::Stream> {
        drop(stream);
        None
    }
}

/// One case of the suite.
///
/// ```
/// use ringledger::stream::conformance::{cases, Case, MemoryFactory};
///
/// let factory = MemoryFactory::default();
/// let filtering: Vec<(&str, Case<MemoryFactory>)> =
///     cases().into_iter().filter(|(name, _)| name.contains("filter")).collect();
/// assert!(filtering.len() >= 2);
/// for (_name, case) in filtering {
///     case(&factory); // panics, naming what broke, if the stream does not conform
/// }
/// ```
pub type Case<F> = fn(&F);

/// Every case, named.
#[must_use]
pub fn cases<F: StreamFactory>() -> Vec<(&'static str, Case<F>)> {
    vec![
        (
            "01_a_stream_reads_its_own_entries",
            a_stream_reads_its_own_entries,
        ),
        ("02_open_honours_the_offset", open_honours_the_offset),
        ("03_open_filters_by_tag", open_filters_by_tag),
        (
            "04_open_rejects_an_empty_filter",
            open_rejects_an_empty_filter,
        ),
        (
            "05_open_fails_when_already_cancelled",
            open_fails_when_already_cancelled,
        ),
        ("06_tags_cover_every_entry", tags_cover_every_entry),
        (
            "07_next_waits_on_an_empty_stream",
            next_waits_on_an_empty_stream,
        ),
        (
            "08_next_returns_entries_in_order",
            next_returns_entries_in_order,
        ),
        ("09_next_after_close_is_closed", next_after_close_is_closed),
        (
            "10_next_when_cancelled_is_cancelled",
            next_when_cancelled_is_cancelled,
        ),
        (
            "11_a_cursor_past_the_end_wakes_on_append",
            a_cursor_past_the_end_wakes_on_append,
        ),
        (
            "12_after_a_wait_next_does_not_repeat",
            after_a_wait_next_does_not_repeat,
        ),
        (
            "13_after_a_wait_a_filtered_next_does_not_repeat",
            after_a_wait_a_filtered_next_does_not_repeat,
        ),
        (
            "14_close_from_another_thread_wakes_next",
            close_from_another_thread_wakes_next,
        ),
        (
            "15_cancel_from_another_thread_wakes_next",
            cancel_from_another_thread_wakes_next,
        ),
        (
            "16_one_append_wakes_every_blocked_cursor",
            one_append_wakes_every_blocked_cursor,
        ),
        ("17_close_twice_is_an_error", close_twice_is_an_error),
        (
            "18_dropping_a_cursor_closes_it",
            dropping_a_cursor_closes_it,
        ),
        (
            "19_truncation_while_a_cursor_is_open",
            truncation_while_a_cursor_is_open,
        ),
        (
            "20_deleting_what_a_cursor_skipped_is_no_gap",
            deleting_what_a_cursor_skipped_is_no_gap,
        ),
        ("21_entries_survive_a_reopen", entries_survive_a_reopen),
        (
            "22_issue_194_resume_at_last_delivered_plus_one",
            issue_194_resume_at_last_delivered_plus_one,
        ),
    ]
}

/// Runs every case against `factory`, then panics naming each case that failed.
pub fn run_all<F: StreamFactory>(factory: &F) {
    let failed: Vec<String> = cases::<F>()
        .into_iter()
        .filter_map(|(name, case)| {
            let outcome = catch_unwind(AssertUnwindSafe(|| case(factory)));
            outcome.err().map(|panic| {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                format!("{name}: {why}")
            })
        })
        .collect();
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stream_conforms() {
        run_all(&MemoryFactory::default());
    }

    #[test]
    fn ledger_stream_conforms() {
        run_all(&LedgerFactory::new(LedgerLayout::OneSegment));
    }

    #[test]
    fn ledger_stream_over_many_segments_conforms() {
        run_all(&LedgerFactory::new(LedgerLayout::Spread));
    }

    #[test]
    fn reopened_ledger_stream_conforms() {
        run_all(&LedgerFactory::new(LedgerLayout::Reopened));
    }
}
