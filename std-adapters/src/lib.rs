//! ringledger: event buffering and an append-only event ledger for servers and hosts.
//!
//! This is the std layer over [`ringledger_core`]: the rings are re-exported as they are, and
//! this crate adds what needs an operating system (waiting, files, threads).
//!
//! # Observability
//!
//! The crate emits [`tracing`](https://docs.rs/tracing) events (never spans, nothing per
//! entry): recovery cuts, reseals and meta rebuilds when a ledger or table opens (`warn` for
//! damage, `info` for a torn tail), poisoning (`error`), syncs slower than 200 ms (`warn`),
//! segment rolls and removals (`debug`), cleaner runs (`debug`) and errors (`warn`), stream
//! consumer restarts (`warn`), producer retries (`debug`) and refused batches (`warn`). Install
//! any subscriber to see them; the `ringledger` tool prints them to stderr at the level
//! `RINGLEDGER_LOG` names (default `warn`).
//!
//! # Platforms
//!
//! Everything builds on every std target except the on-disk pieces: [`ledger::Ledger::open`],
//! [`storage::DirStorage`], [`table::Table::open`] and [`queue::Queue`] need `mmap`, `flock`
//! and a directory `fsync`, and exist only on unix (Linux is tested). The ledger itself runs
//! anywhere over [`storage::sim::SimStorage`] with [`ledger::Ledger::open_in`]. The
//! `ringledger` tool (feature `cli`) is unix-only and says so with one `compile_error!`.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use ringledger_core as core;

pub mod blocking;
pub mod cleaner;
pub mod consumer;
pub mod dedupe;
pub mod ledger;
pub mod producer;
pub mod queue;
pub mod sequence;
// Not under loom: the core's chunk slices, which records use, are not modelled there.
#[cfg(all(unix, not(loom)))]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub mod shm;
pub mod source;
pub mod storage;
pub mod stream;
mod sync;
pub mod table;
pub mod wait;

/// An error and its sources as one line, `outer: inner: innermost`.
///
/// The crate's errors follow the API guidelines: `Display` shows only the error's own part and
/// the cause is handed out by [`source()`](std::error::Error::source), so a report that walks the
/// chain (this function, `anyhow`, `eyre`) shows each part once.
///
/// # Examples
///
/// ```
/// use ringledger::ledger::{Ledger, LedgerConfig};
///
/// let file = tempfile::NamedTempFile::new()?;
/// // A file is not a ledger directory.
/// let error = Ledger::open(file.path(), LedgerConfig::default()).unwrap_err();
/// let report = ringledger::error_chain(&error);
/// assert!(report.starts_with(&error.to_string()));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub use sequence::generate;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
