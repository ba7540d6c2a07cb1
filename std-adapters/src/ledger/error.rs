//! What can go wrong: [`LedgerError`], one variant per case a caller can act on.

use std::io;

use ringledger_core::segment::CorruptReason;

/// What went wrong.
///
/// The `Display` text is the error's own part; the cause (an I/O error, say) is its
/// [`source`](std::error::Error::source): print the chain with [`error_chain`](crate::error_chain).
///
/// ```
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig, LedgerError};
///
/// let dir = tempfile::tempdir()?;
/// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
/// ledger.write(&[Entry::new(5, "e")])?;
/// match ledger.write(&[Entry::new(5, "again")]) {
///     Err(LedgerError::NotMonotonic { .. }) => {} // nothing was written
///     other => panic!("{other:?}"),
/// }
/// // One writer per directory.
/// assert!(matches!(Ledger::open(dir.path(), LedgerConfig::default()), Err(LedgerError::Locked)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Another [`Ledger`](super::Ledger) (in this process or another) has the directory open
    /// (a holder that lets go within about 50 ms is waited for: see
    /// [`DirStorage`](crate::storage::DirStorage)).
    #[error("the ledger directory is locked by another writer")]
    Locked,
    /// The file system failed.
    #[error("{context}")]
    Io {
        /// What the ledger was doing.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A sequence not greater than the one before it (or than the head); nothing was written.
    #[error("sequence {seq} is not greater than {last}: sequences must increase")]
    NotMonotonic {
        /// The head, or the previous entry's sequence in the same write.
        last: u64,
        /// The rejected sequence.
        seq: u64,
    },
    /// The write would take the ledger past its limit; nothing was written.
    #[error("limit of {limit} entries reached: {len} stored, {adding} more would not fit")]
    LimitReached {
        /// The configured limit.
        limit: u64,
        /// Entries stored.
        len: u64,
        /// Entries in the write.
        adding: u64,
    },
    /// A write's entries together do not fit in one segment; nothing was written.
    #[error("a write of {bytes} bytes does not fit in a segment of {segment_size} bytes")]
    TooLarge {
        /// The write's size as frames.
        bytes: usize,
        /// The configured segment size.
        segment_size: usize,
    },
    /// An earlier sync failed, so data the kernel had may be lost; the ledger takes no more
    /// writes. Reads keep working; reopening runs recovery.
    #[error("the ledger is poisoned by an earlier failed sync ({reason}); it stays readable")]
    Poisoned {
        /// The failure that poisoned it.
        reason: String,
    },
    /// Damaged data where the ledger had complete data.
    #[error("segment {segment}: corrupt data at offset {offset}: {reason}")]
    Corrupt {
        /// The segment's file name.
        segment: String,
        /// Offset of the damage in the file.
        offset: usize,
        /// What is wrong there.
        reason: CorruptReason,
    },
    /// A segment file that is not a valid segment of this ledger.
    #[error("segment {segment}: {reason}")]
    BadSegment {
        /// The file's name.
        segment: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A segment is missing from the middle of the ledger.
    #[error("a segment is missing between {before} and {after}")]
    MissingSegment {
        /// The segment before the gap.
        before: String,
        /// The segment after the gap.
        after: String,
    },
    /// `ledger.meta` is missing (while segments exist) or damaged.
    #[error("ledger metadata: {reason}")]
    BadMeta {
        /// What is wrong.
        reason: String,
    },
    /// The ledger was opened read-only.
    #[error("the ledger is open read-only")]
    ReadOnly,
    /// The configuration is invalid.
    #[error("invalid ledger configuration: {0}")]
    Config(String),
}

impl LedgerError {
    pub(super) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
