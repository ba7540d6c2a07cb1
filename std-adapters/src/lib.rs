//! ringledger: event buffering and an append-only event ledger for servers and hosts.
//!
//! This is the std layer over [`ringledger_core`]: the rings are re-exported as they are, and
//! this crate adds what needs an operating system (waiting, files, threads).
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
pub mod source;
pub mod storage;
pub mod stream;
mod sync;
pub mod table;
pub mod wait;

pub use sequence::generate;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
