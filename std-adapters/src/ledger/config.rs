//! How a ledger is set up: [`LedgerConfig`], its defaults and the limits [`Ledger::open`]
//! checks before it touches a file.

use super::{Durability, LedgerError};

/// How a [`Ledger`](super::Ledger) is set up.
///
/// ```
/// use ringledger::ledger::{Durability, LedgerConfig};
///
/// let config = LedgerConfig::default()
///     .with_segment_size(16 << 20)
///     .with_durability(Durability::Synced)
///     .with_limit(1_000_000);
/// assert_eq!(config.segment_size, 16 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerConfig {
    /// Size of each segment file in bytes: a multiple of 4096, from 8192 to 32 GiB. An entry must
    /// fit in one segment, and so must every write (all of its entries). Default 64 MiB.
    pub segment_size: usize,
    /// What [`Ledger::write`](super::Ledger::write) waits for. Default [`Durability::Buffered`].
    pub durability: Durability,
    /// The most entries the ledger holds; a write that would pass it fails with
    /// [`LedgerError::LimitReached`]. Default `None` (no limit).
    pub limit: Option<u64>,
    /// Bytes between entries of a segment's sparse index (in memory, and in the seal), from
    /// 64 to 2^30. Smaller finds a sequence faster and costs more memory. Default 4096.
    pub index_interval: u32,
    /// When recovery finds damage inside sealed data (or a missing segment), cut the log at
    /// the damage instead of failing to open. Default `false`.
    pub repair: bool,
    /// Fault in the active segment's pages on a background thread, ahead of a writer that
    /// writes through the mapping (buffered writes, unless
    /// [`stage_at_least`](Self::stage_at_least) stages them). Staged writes need no pages mapped and never
    /// start it. Default `true`.
    pub prefault: bool,
    /// Buffered writes of at least this many bytes (of frames: 40 bytes of header and the
    /// payload rounded up to 8, per entry) are staged, their frames built in a buffer and
    /// written with one `pwrite`; smaller ones are stored through the mapping. Synced writes
    /// are always staged. Default 2048: a write of eight 256-byte entries or more is staged.
    ///
    /// A `pwrite` fills whole pages without the kernel zeroing them first, which a fault on a
    /// page of a fresh segment file must do (on the background thread, with
    /// [`prefault`](Self::prefault)), but it is a system call per write. Measured on ext4 on 2
    /// cores, 256 B entries (`cargo run --release -p ringledger-benches --example
    /// ledger_write` with `RINGLEDGER_BATCH` and `RINGLEDGER_STAGE_AT_LEAST`), in M entries/s
    /// through the mapping and staged: single entries 7.1-7.4 and (staged) lower; writes of 2
    /// at 7.6 and 3.7; of 4 at 7.3 and 5.7; of 6 at 7.6 and 6.8; of 8 at 6.8 and 7.5; of 10
    /// at 7.5 and 7.9; of 30 at 7.5 and 9.7; of 100 at 7.3 and 10.5. A producer-to-consumer
    /// pipeline (`cargo bench -p ringledger-benches --bench queue`) ran at 4.4-4.5 M with the
    /// threshold at 512 or 2048 alike.
    /// `usize::MAX` sends every buffered write through the mapping; `0` stages every write.
    pub stage_at_least: usize,
    /// Open without the lock and change nothing on disk: for inspecting a ledger, also one a
    /// writer (in another process) has open. Recovery is worked out, not applied: the report
    /// says what opening for writing would do, and reads see the records it would keep.
    /// Writes, deletes and syncs fail with [`LedgerError::ReadOnly`]. A read-only ledger does
    /// not see what a writer in another process appends after the open: open it again.
    /// Default `false`.
    pub read_only: bool,
    /// For deterministic crash tests: no background thread; its jobs (finishing sealed
    /// segments, preparing the next file) wait for [`Ledger::run_background`](super::Ledger::run_background). Default
    /// `false`.
    #[doc(hidden)]
    pub manual_background: bool,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            durability: Durability::Buffered,
            limit: None,
            index_interval: 4096,
            repair: false,
            prefault: true,
            stage_at_least: 2048,
            read_only: false,
            manual_background: false,
        }
    }
}

impl LedgerConfig {
    /// This configuration with segments of `bytes` bytes.
    #[must_use]
    pub fn with_segment_size(mut self, bytes: usize) -> Self {
        self.segment_size = bytes;
        self
    }

    /// The configuration with this default durability.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The configuration with this limit on the number of entries.
    #[must_use]
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The configuration with repair on or off.
    #[must_use]
    pub fn with_repair(mut self, repair: bool) -> Self {
        self.repair = repair;
        self
    }

    /// The configuration opening read-only; see [`read_only`](Self::read_only).
    #[must_use]
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    pub(super) fn validate(&self) -> Result<(), LedgerError> {
        if self.read_only && self.repair {
            return Err(LedgerError::Config(
                "repair changes the files: it needs a writable open".into(),
            ));
        }
        if !(64..=1 << 30).contains(&self.index_interval) {
            return Err(LedgerError::Config(format!(
                "index_interval {} must be from 64 to 2^30 bytes",
                self.index_interval
            )));
        }
        if self.segment_size < 8192
            || self.segment_size % 4096 != 0
            || self.segment_size as u64 > 32 << 30
        {
            return Err(LedgerError::Config(format!(
                "segment_size {} must be a multiple of 4096, at least 8192 and at most 32 GiB",
                self.segment_size
            )));
        }
        Ok(())
    }
}
