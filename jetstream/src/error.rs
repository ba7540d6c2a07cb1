//! [`Error`]: why a forwarder or an importer stopped, one variant per case a caller (or a
//! person reading the one-line message) can act on.

use std::time::Duration;

use ringledger::consumer::ConsumerError;
use ringledger::ledger::LedgerError;
use ringledger::table::TableError;

/// Why the bridge stopped. Its `Display` is one line; [`ringledger::error_chain`] adds the
/// causes.
///
/// ```
/// use ringledger_jetstream::Error;
///
/// let runtime = tokio::runtime::Runtime::new()?;
/// // Nothing listens on port 1: the connection is refused at once.
/// match runtime.block_on(ringledger_jetstream::connect("nats://app:secret@127.0.0.1:1")) {
///     // The address as given, without the credentials: safe to log.
///     Err(Error::Unreachable { server, .. }) => assert_eq!(server, "nats://127.0.0.1:1"),
///     Err(other) => panic!("{other}"),
///     Ok(_) => unreachable!("no server there"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not be reached (or refused the connection) at the start.
    #[error("cannot connect to {server}: {reason}")]
    Unreachable {
        /// The server address as given.
        server: String,
        /// The client's error, as one line.
        reason: String,
    },
    /// The server refused the credentials.
    #[error("{server} refused the credentials: {reason}")]
    Auth {
        /// The server address as given.
        server: String,
        /// The client's error, as one line.
        reason: String,
    },
    /// The server has JetStream turned off, or the account has no JetStream.
    #[error("JetStream is not available on the server: {0}")]
    NoJetStream(String),
    /// The stream does not exist.
    #[error("stream {stream} does not exist on the server")]
    StreamMissing {
        /// The stream's name.
        stream: String,
    },
    /// The stream does not take the subject.
    #[error("stream {stream} does not take subject {subject} (its subjects: {subjects})")]
    SubjectNotInStream {
        /// The subject.
        subject: String,
        /// The stream.
        stream: String,
        /// The stream's subjects, comma separated.
        subjects: String,
    },
    /// An entry is larger than the server (or the stream) takes. Every entry before it was
    /// forwarded; the entry stays in the ledger, unmarked.
    #[error("entry {sequence} is {size} bytes with its headers, over the limit of {limit} bytes ({which})")]
    TooLarge {
        /// The entry's sequence.
        sequence: u64,
        /// The message's size with its headers.
        size: usize,
        /// The limit.
        limit: usize,
        /// Whose limit: the server's `max_payload` or the stream's `max_msg_size`.
        which: &'static str,
    },
    /// The server kept failing for longer than the configured patience; nothing was lost
    /// (entries not acknowledged stay unmarked, messages not written stay unacknowledged).
    #[error("gave up after {after:?} of failures; the last: {last}")]
    GaveUp {
        /// How long it tried.
        after: Duration,
        /// The last failure, as one line.
        last: String,
    },
    /// The server answered with an error that retrying does not fix.
    #[error("the server refused: {0}")]
    Refused(String),
    /// The local ledger failed.
    #[error("the local ledger")]
    Ledger(#[from] LedgerError),
    /// The ledger consumer (the forwarder's positions) failed.
    #[error("the ledger consumer")]
    Consumer(#[from] ConsumerError),
    /// The positions table failed.
    #[error("the positions table")]
    Table(#[from] TableError),
    /// The ledger was written by someone else while importing into it.
    #[error("the ledger's head moved from {expected} to {found} under the importer: one writer per ledger")]
    ForeignWrite {
        /// The head the importer left.
        expected: u64,
        /// The head it found.
        found: u64,
    },
    /// A thread or the runtime could not be started.
    #[error("starting a thread or the runtime")]
    Runtime(#[source] std::io::Error),
}
