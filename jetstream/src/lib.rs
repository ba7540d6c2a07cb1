//! ringledger-jetstream: a [`ringledger`] ledger as the durable edge buffer in front
//! of a NATS JetStream cluster, with nothing lost and nothing duplicated.
//!
//! - The [`Forwarder`] publishes a ledger's entries to a JetStream subject, pipelined, and
//!   marks each entry (in the ledger's positions table) only after the stream acknowledged it.
//!   Message ids and a chain of expected predecessors keep the stream exactly once and in
//!   order across crashes, failovers and restarts; see [`forward`].
//! - The [`Importer`] reads a stream through a durable pull consumer into a local ledger, a
//!   batch per write (and per sync, on a synced ledger), acknowledging after the write; the
//!   stream sequence is the ledger sequence, so a restart never writes a message twice; see
//!   [`import`].
//! - The `ringledger-jetstream` binary runs both (`forward`, `import`); the `ringledger` tool
//!   hands its `forward` and `import` subcommands to it.
//!
//! The crate needs a tokio runtime (the `async-nats` client does); the ledger's blocking
//! calls run on a thread of their own or in `spawn_blocking`.
#![warn(missing_docs)]

mod error;
pub mod forward;
pub mod import;
mod server;
pub mod wire;

pub use error::Error;
pub use forward::{ForwardConfig, ForwardProgress, ForwardSummary, Forwarder};
pub use import::{ImportConfig, ImportProgress, ImportSummary, Importer};
pub use server::{connect, connect_with_creds, subject_matches};
