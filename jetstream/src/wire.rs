//! What an entry looks like on the wire: the headers the forwarder sets and the importer
//! reads, and the message id that names one entry of one ledger.
//!
//! The payload travels as it is; everything else of the entry travels as headers, in decimal
//! text (NATS headers are text):
//!
//! | header | value |
//! |---|---|
//! | `Nats-Msg-Id` | [`message_id`]: the ledger's id in 16 hex digits, `:`, the sequence (`async_nats::header::NATS_MESSAGE_ID`) |
//! | [`SEQUENCE`] | the entry's sequence in its ledger |
//! | [`TAG`] | the entry's tag |
//! | [`TIMESTAMP`] | the entry's timestamp (nanoseconds since the unix epoch) |
//!
//! The message id is what JetStream's duplicate window compares, and what the forwarder
//! reads back from the stream's last message to learn how far an earlier run got.

use async_nats::HeaderMap;
use ringledger::ledger::Entry;

/// The header carrying the entry's sequence in its ledger.
pub const SEQUENCE: &str = "Ringledger-Sequence";
/// The header carrying the entry's tag.
pub const TAG: &str = "Ringledger-Tag";
/// The header carrying the entry's timestamp, in nanoseconds since the unix epoch.
pub const TIMESTAMP: &str = "Ringledger-Timestamp";

/// The message id of entry `sequence` of the ledger `ledger_id`.
///
/// ```
/// use ringledger_jetstream::wire::{message_id, parse_message_id};
///
/// let id = message_id(0xfeed, 42);
/// assert_eq!(id, "000000000000feed:42");
/// assert_eq!(parse_message_id(&id), Some((0xfeed, 42)));
/// ```
pub fn message_id(ledger_id: u64, sequence: u64) -> String {
    format!("{ledger_id:016x}:{sequence}")
}

/// The ledger id and sequence of a [`message_id`]; `None` for any other text.
///
/// ```
/// use ringledger_jetstream::wire::parse_message_id;
///
/// assert_eq!(parse_message_id("00000000000000ff:7"), Some((255, 7)));
/// assert_eq!(parse_message_id("order-7"), None);
/// ```
pub fn parse_message_id(id: &str) -> Option<(u64, u64)> {
    let (ledger, sequence) = id.split_once(':')?;
    if ledger.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(ledger, 16).ok()?,
        sequence.parse().ok()?,
    ))
}

/// The headers of `entry` of ledger `ledger_id` except the message id (which the publish
/// builder sets).
pub(crate) fn entry_headers(entry: &Entry) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SEQUENCE, entry.sequence.to_string().as_str());
    headers.insert(TAG, entry.tag.to_string().as_str());
    headers.insert(TIMESTAMP, entry.timestamp.to_string().as_str());
    headers
}

/// A numeric header's value, if present and well formed.
pub(crate) fn number<T: std::str::FromStr>(headers: Option<&HeaderMap>, name: &str) -> Option<T> {
    headers?.get(name)?.as_str().parse().ok()
}
