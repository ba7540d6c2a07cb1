//! The write path: [`Ledger::write_with`], [`Ledger::sync`] and [`Ledger::delete`], and the
//! writer's state behind them.
//!
//! The rule it implements: a write is checked whole (limit, monotonic sequences, size) before
//! a byte is written; its frames go into the active segment (staged and written with one
//! `pwrite` when synced), then its end is published with release ordering, so a
//! reader sees a write whole or not at all. A segment that cannot take the next write is
//! sealed and the next one (prepared ahead by the background thread) takes over. A synced
//! write returns once a sync covering its ticket completed; concurrent synced writers share it
//! (group commit). Any failed sync poisons the ledger for good.
//!
//! Durable before visible: a synced write is published only once the sync that makes it
//! durable has completed, so nothing a reader, cursor or consumer was handed from a synced
//! write is ever taken back by a power loss (or lost to a failed sync). Publications happen in
//! write order: a buffered write behind a synced one still waiting for its sync waits with it
//! (a reader always sees a prefix of the writes). Buffered writes with nothing pending ahead
//! of them are published at once, as before.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::TrySendError;
use std::sync::Arc;

use ringledger_core::segment::{
    file_name, frame_len, Appender, FileHeader, WriteError, FILE_HEADER_LEN,
};

use crate::storage::{now_ns, random_u64, Durability};
use crate::sync::{lock, wait_on};

use super::meta::{Meta, META_FILE};
use super::naming::Unnamed;
use super::read::count_between;
use super::segment::{Counts, Mapping, Segment};
#[cfg(doc)]
use super::LedgerConfig;
use super::{background, Entry, Inner, Ledger, LedgerError};

/// A sync at least this slow is reported at `warn` level (a disk in trouble, or a full
/// writeback queue): every synced writer waited that long.
const SLOW_SYNC: std::time::Duration = std::time::Duration::from_millis(200);

/// The writer's state, under the writer lock.
pub(super) struct Writer {
    /// The segment being appended to; `None` before the first write or after its seal.
    active: Option<(Arc<Segment>, Appender)>,
    /// Segments written since the last sync.
    unsynced: Vec<Arc<Segment>>,
    /// Counts writes; a sync makes every write up to some ticket durable.
    ticket: u64,
    /// The last sequence written (the head, as the writer knows it).
    last_seq: u64,
    /// Where staged writes build their frames (reused).
    staging: Vec<u8>,
    /// How far the active segment's file has been written, zeros past the records included
    /// (see [`STAGE_PAD`]).
    padded_to: usize,
    /// Writes and seals not yet published, oldest first: synced writes waiting for their
    /// sync, and whatever was written after them.
    pending: VecDeque<Publication>,
    /// Entries in `pending` (the limit counts them).
    unpublished: u64,
    /// Synced writes since the last sync started: the writers that sync will release.
    synced_writes: u64,
}

/// Where group commit stands, under `Inner::synced`.
#[derive(Debug, Default)]
pub(super) struct SyncState {
    /// The newest write ticket known durable.
    synced: u64,
    /// Whether a caller is leading a sync now.
    syncing: bool,
}

/// A synced write on its way to the segment, counted in `Inner::synced_writes_in_flight`
/// until dropped (also on an error).
struct InFlight<'a>(&'a Inner);

impl<'a> InFlight<'a> {
    fn enter(inner: &'a Inner) -> Self {
        inner.synced_writes_in_flight.fetch_add(1, Ordering::AcqRel);
        // One of the writers the last sync released is back (or a newcomer: the count is
        // a hint, and the leader's wait is bounded either way).
        let _ =
            inner
                .synced_writers_returning
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        InFlight(inner)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .synced_writes_in_flight
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long a sync's leader waits at most for synced writes on their way, so that its sync
/// covers them rather than each waiting a whole sync of its own. A part of a sync (0.1–0.3 ms
/// here), and spent only while such writes exist: a lone writer never waits.
#[cfg(not(loom))]
const GATHER: std::time::Duration = std::time::Duration::from_micros(100);

/// The leader of a sync: ends its turn when dropped (also by a panic), waking the waiters.
struct Leading<'a>(&'a Inner);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        lock(&self.0.synced).syncing = false;
        self.0.sync_done.notify_all();
    }
}

/// What readers are shown, in write order.
enum Publication {
    /// A write's records, up to `end` of `segment`; the head becomes `head`.
    Records {
        ticket: u64,
        /// Whether it waits for a sync through `ticket` (a synced write).
        synced: bool,
        segment: Arc<Segment>,
        end: usize,
        counts: Counts,
        head: u64,
        added: u64,
    },
    /// A segment's seal: it takes no more records, and its footer may follow the seal.
    Sealed(Arc<Segment>),
}

impl Writer {
    /// The writer of a ledger just opened: `active` is the segment recovery left open for
    /// appends, if any, and `head` the last sequence written.
    pub(super) fn new(active: Option<(Arc<Segment>, Appender)>, head: u64) -> Self {
        Self {
            active,
            unsynced: Vec::new(),
            ticket: 0,
            last_seq: head,
            staging: Vec::new(),
            padded_to: 0,
            pending: VecDeque::new(),
            unpublished: 0,
            synced_writes: 0,
        }
    }
}

/// Why appending to the active segment failed.
enum AppendError {
    /// The segment format refused (full: time to roll).
    Format(WriteError),
    /// The file write failed; nothing was published and the bytes were zeroed again.
    Io(io::Error),
    /// The file write failed and so did zeroing what it left: the ledger is poisoned.
    Poison(String),
}

impl Ledger {
    /// Appends `entries` with the configured [`durability`](super::LedgerConfig::durability); see
    /// [`write_with`](Self::write_with).
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
    /// ledger.write(&[Entry::new(1, "one"), Entry::new(2, "two").with_tag(7)])?;
    /// assert_eq!(ledger.head(), 2);
    /// // Sequences must increase: nothing of a refused write is written.
    /// assert!(ledger.write(&[Entry::new(3, "three"), Entry::new(2, "again")]).is_err());
    /// assert_eq!(ledger.head(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&self, entries: &[Entry]) -> Result<(), LedgerError> {
        self.write_with(entries, self.inner.config.durability)
    }

    /// Appends `entries`, all or nothing, and returns once they are as durable as asked.
    ///
    /// Checks, in this order, and writes nothing if one fails: the
    /// [`limit`](super::LedgerConfig::limit) ([`LedgerError::LimitReached`]); every sequence greater
    /// than the one before it, the first greater than the head
    /// ([`LedgerError::NotMonotonic`]); the write fits in a segment
    /// ([`LedgerError::TooLarge`]). Subscribers and head waiters are notified, also of an
    /// empty write.
    ///
    /// ```
    /// use ringledger::ledger::{Durability, Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
    /// // Returns once the entry is on disk (group commit shares the fdatasync).
    /// ledger.write_with(&[Entry::new(1, "payment 42")], Durability::Synced)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_with(&self, entries: &[Entry], durability: Durability) -> Result<(), LedgerError> {
        let inner = &*self.inner;
        if inner.config.read_only {
            return Err(LedgerError::ReadOnly);
        }
        let in_flight = (durability == Durability::Synced).then(|| InFlight::enter(inner));
        let (ticket, published) = {
            let mut writer = lock(&inner.writer);
            inner.check_poison()?;
            let appended = inner.append(&mut writer, entries, durability)?;
            if durability == Durability::Synced {
                writer.synced_writes += 1;
            }
            appended
        };
        drop(in_flight);
        if published {
            inner.notify();
        }
        if durability == Durability::Synced {
            inner.sync_through(ticket)?;
        }
        Ok(())
    }

    /// Makes every write so far durable (one `fdatasync` per segment written since the last
    /// sync, shared with concurrent callers).
    pub fn sync(&self) -> Result<(), LedgerError> {
        if self.inner.config.read_only {
            return Err(LedgerError::ReadOnly);
        }
        let ticket = lock(&self.inner.writer).ticket;
        self.inner.sync_through(ticket)
    }

    /// Deletes every entry with a sequence `<= up_to` and returns how many there were.
    ///
    /// quasar's semantics: `up_to` is clamped to the [head](Self::head) (what readers can
    /// see; a synced write still waiting for its sync is not deleted); with nothing stored, or `up_to` at
    /// or below the tail, nothing happens and 0 is returned. Otherwise the tail becomes
    /// `up_to` (persisted in `ledger.meta`, so it survives a reopen) and segments holding only
    /// deleted entries are removed. Readers holding payloads of a removed segment keep them.
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
    /// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
    /// assert_eq!(ledger.delete(2)?, 2);
    /// assert_eq!((ledger.tail(), ledger.len()), (2, 1));
    /// assert_eq!(ledger.read(0, 10)?[0].sequence, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn delete(&self, up_to: u64) -> Result<usize, LedgerError> {
        let inner = &*self.inner;
        if inner.config.read_only {
            return Err(LedgerError::ReadOnly);
        }
        let writer = lock(&inner.writer);
        // The published head: the one in `ledger.meta` must never name an entry a crash
        // could still take back (a producer resuming after it would skip the lost entries).
        let head = inner.head.load(Ordering::Acquire);
        let up_to = up_to.min(head);
        let tail = inner.tail.load(Ordering::Acquire);
        if inner.len.load(Ordering::Acquire) == 0 || up_to <= tail {
            return Ok(0);
        }
        let segments = inner.segments();
        let deleted = count_between(&segments, tail, up_to)?;
        let meta = Meta {
            ledger_id: inner.ledger_id,
            tail: up_to,
            head,
        };
        inner
            .storage
            .replace(META_FILE, &meta.encode())
            .map_err(|e| LedgerError::io("writing ledger.meta", e))?;
        // A seqlock around the pair, so that `index` never counts one's old value from the
        // other's new one.
        inner.deletes.fetch_add(1, Ordering::AcqRel);
        inner.tail.store(up_to, Ordering::Release);
        inner.len.fetch_sub(deleted as u64, Ordering::AcqRel);
        inner.deletes.fetch_add(1, Ordering::Release);
        if let Some(live) = &inner.live {
            live.publish_tail(up_to);
        }
        // Remove sealed segments whose entries are all deleted (the active one stays).
        let active = writer.active.as_ref().map(|(s, _)| Arc::clone(s));
        let (gone, kept): (Vec<_>, Vec<_>) = segments.iter().cloned().partition(|s| {
            let counts = s.counts();
            s.is_sealed()
                && (counts.count == 0 || counts.last_seq <= up_to)
                && !active.as_ref().is_some_and(|a| Arc::ptr_eq(a, s))
        });
        let mut writer = writer;
        // Deleted segments need no sync, and must not be kept mapped by the sync list.
        writer
            .unsynced
            .retain(|s| !gone.iter().any(|g| Arc::ptr_eq(g, s)));
        drop(writer);
        if !gone.is_empty() {
            inner.set_segments(kept);
            for segment in &gone {
                inner
                    .storage
                    .remove(&segment.name)
                    .map_err(|e| LedgerError::io(format!("removing {}", segment.name), e))?;
                tracing::debug!(segment = %segment.name, tail = up_to, "segment removed");
            }
            inner
                .storage
                .sync_dir()
                .map_err(|e| LedgerError::io("syncing the ledger directory", e))?;
        }
        Ok(deleted)
    }
}

impl Inner {
    /// Checks and appends one write; returns its ticket, and whether it was published (else
    /// it waits in `pending`).
    fn append(
        &self,
        writer: &mut Writer,
        entries: &[Entry],
        durability: Durability,
    ) -> Result<(u64, bool), LedgerError> {
        let adding = entries.len() as u64;
        if let Some(limit) = self.config.limit {
            let len = self.len.load(Ordering::Acquire) + writer.unpublished;
            if len.saturating_add(adding) > limit {
                return Err(LedgerError::LimitReached { limit, len, adding });
            }
        }
        let mut last = writer.last_seq;
        for entry in entries {
            if entry.sequence <= last {
                return Err(LedgerError::NotMonotonic {
                    last,
                    seq: entry.sequence,
                });
            }
            last = entry.sequence;
        }
        if entries.is_empty() {
            return Ok((writer.ticket, true));
        }
        let bytes = entries.iter().fold(0usize, |sum, e| {
            sum.saturating_add(frame_len(e.payload.len()))
        });
        let fits_empty = Appender::max_payload_in(self.config.segment_size)
            .saturating_add(ringledger_core::segment::FRAME_HEADER_LEN);
        if bytes > fits_empty {
            return Err(LedgerError::TooLarge {
                bytes,
                segment_size: self.config.segment_size,
            });
        }
        let synced = durability == Durability::Synced;
        // Synced and large writes are staged, small buffered ones go through the mapping (see
        // `append_to_active`).
        let path = if !synced && bytes < self.config.stage_at_least {
            WritePath::Mapped
        } else if !synced && self.config.durability == Durability::Buffered {
            WritePath::StagedPadded
        } else {
            WritePath::Staged
        };
        let mut rolled = false;
        let (segment, end, counts) = loop {
            if writer.active.is_none() {
                self.roll(writer)?;
                rolled = true;
            }
            match self.append_to_active(writer, entries, path) {
                Ok(written) => break written,
                // A write that does not fit in an empty segment never will.
                Err(AppendError::Format(WriteError::Full { .. }))
                    if !rolled
                        && writer
                            .active
                            .as_ref()
                            .is_some_and(|(_, a)| a.stats().count > 0) =>
                {
                    self.roll(writer)?;
                    rolled = true;
                }
                Err(AppendError::Format(WriteError::Full { .. })) => {
                    return Err(LedgerError::TooLarge {
                        bytes,
                        segment_size: self.config.segment_size,
                    })
                }
                Err(AppendError::Format(other)) => {
                    return Err(LedgerError::BadSegment {
                        segment: writer
                            .active
                            .as_ref()
                            .map_or_else(String::new, |(s, _)| s.name.clone()),
                        reason: other.to_string(),
                    })
                }
                Err(AppendError::Io(e)) => {
                    return Err(LedgerError::io("writing to the active segment", e))
                }
                Err(AppendError::Poison(reason)) => return Err(self.poison(reason)),
            }
        };
        writer.last_seq = last;
        writer.ticket += 1;
        let publication = Publication::Records {
            ticket: writer.ticket,
            synced,
            segment,
            end,
            counts,
            head: last,
            added: adding,
        };
        let published = self.publish_or_queue(writer, publication, synced);
        Ok((writer.ticket, published))
    }

    /// Publishes `publication` now, or queues it behind the pending ones (always, when it
    /// waits for a sync). Returns whether it was published.
    fn publish_or_queue(
        &self,
        writer: &mut Writer,
        publication: Publication,
        waits_for_sync: bool,
    ) -> bool {
        if waits_for_sync || !writer.pending.is_empty() {
            if let Publication::Records { added, .. } = &publication {
                writer.unpublished += added;
            }
            writer.pending.push_back(publication);
            false
        } else {
            self.show(publication);
            true
        }
    }

    /// Publishes the pending writes that may be shown once every write up to `synced` is
    /// durable, in order, up to the first that still waits; returns whether any was.
    fn publish_ready(&self, writer: &mut Writer, synced: u64) -> bool {
        let mut any = false;
        while let Some(front) = writer.pending.front() {
            if let Publication::Records {
                ticket,
                synced: true,
                ..
            } = front
            {
                if *ticket > synced {
                    break;
                }
            }
            let Some(publication) = writer.pending.pop_front() else {
                break;
            };
            if let Publication::Records { added, .. } = &publication {
                writer.unpublished -= added;
            }
            self.show(publication);
            any = true;
        }
        any
    }

    /// Makes a publication visible to readers (under the writer lock).
    fn show(&self, publication: Publication) {
        match publication {
            Publication::Records {
                segment,
                end,
                counts,
                head,
                added,
                ..
            } => {
                segment.publish(end, counts);
                self.len.fetch_add(added, Ordering::AcqRel);
                self.head.store(head, Ordering::Release);
                if let Some(live) = &self.live {
                    live.publish_head(head);
                }
            }
            Publication::Sealed(segment) => {
                segment.publish_sealed();
                // Sync the seal, then write the footer: a footer on disk always points at a
                // seal on disk.
                self.background.finish(segment);
            }
        }
    }

    /// Appends every entry to the active segment, or (when they do not all fit, or the file
    /// write fails) writes nothing. Returns the segment, its new end and its counts, for
    /// publication.
    ///
    /// Buffered writes store their frames through the mapping, into pages a background job
    /// faults in ahead of the writer (on the other core), unless they are at least
    /// [`LedgerConfig::stage_at_least`] bytes. Synced writes (and those) build the frames in a
    /// staging buffer and write them with one `pwrite`: after a sync cleaned the pages, a
    /// write through the mapping would fault again on every page it touches, and pages the
    /// writer never mapped need no TLB flush when written back.
    fn append_to_active(
        &self,
        writer: &mut Writer,
        entries: &[Entry],
        path: WritePath,
    ) -> Result<(Arc<Segment>, usize, Counts), AppendError> {
        let Writer {
            active,
            staging,
            padded_to,
            ..
        } = writer;
        let Some((segment, appender)) = active.as_mut() else {
            return Err(AppendError::Format(WriteError::Sealed));
        };
        let start = appender.end();
        let saved = appender.clone();
        let last = entries.len() - 1;
        if path != WritePath::Mapped {
            let bytes = entries
                .iter()
                .map(|e| frame_len(e.payload.len()))
                .sum::<usize>();
            let end = start + bytes;
            // An unsynced write that reaches past what the file has been written to also
            // writes the zeros after it up to the next `STAGE_PAD` boundary (past the records
            // the file is zeros: nothing there changes). The next writes then land in pages
            // the cache already holds, dirty and in larger folios, instead of pages the
            // kernel must allocate, reserve and zero part of.
            let mut padded = if path == WritePath::StagedPadded && end > *padded_to {
                end.next_multiple_of(STAGE_PAD).min(segment.mapping.len())
            } else {
                end
            };
            let pad = padded.saturating_sub(end);
            // The buffer is not cleared between writes: a frame writes every byte of its own
            // (the padding after the payload included), and the zeros after them are written
            // afresh.
            let image = bytes + pad;
            if staging.len() < image {
                staging.resize(image, 0);
            }
            staging[bytes..image].fill(0);
            let mut at = 0;
            for (i, entry) in entries.iter().enumerate() {
                let appended = appender.append_staged(
                    &mut staging[at..bytes],
                    entry.sequence,
                    entry.timestamp,
                    entry.tag,
                    &entry.payload,
                    i != last,
                );
                if let Err(e) = appended {
                    *appender = saved;
                    return Err(AppendError::Format(e));
                }
                at += frame_len(entry.payload.len());
            }
            let region = segment.mapping.region();
            let mut written = region.write_at(start, &staging[..image]);
            if written.is_err() && pad > 0 {
                // The zeros are there for speed only: a disk that refuses them (full) gets the
                // frames alone. (What landed of them went over zeros.)
                written = region.write_at(start, &staging[..bytes]);
                padded = end;
            }
            if let Err(e) = written {
                *appender = saved;
                // A write that failed part way may have left frames past the end: zero them,
                // so the image stays "frames, then zeros" (the zeros after them went over
                // zeros: a disk that refused them is not asked again). If even that fails,
                // the file can no longer be trusted to end where the ledger thinks.
                let frames = &mut staging[..bytes];
                frames.fill(0);
                if let Err(zeroing) = segment.mapping.region().write_at(start, frames) {
                    return Err(AppendError::Poison(format!(
                        "writing {}: {e}; then zeroing it: {zeroing}",
                        segment.name
                    )));
                }
                return Err(AppendError::Io(e));
            }
            *padded_to = (*padded_to).max(padded);
        } else {
            for (i, entry) in entries.iter().enumerate() {
                let at = appender.end();
                // SAFETY: bytes at and above the committed end are touched by the writer
                // alone, and we hold the writer lock.
                let tail = unsafe { segment.mapping.tail_mut(at) };
                let appended = appender.append_in_write(
                    tail,
                    entry.sequence,
                    entry.timestamp,
                    entry.tag,
                    &entry.payload,
                    i != last,
                );
                if let Err(e) = appended {
                    // Undo: zero what this write put down, so the image stays "frames, then
                    // zeros", and forget it.
                    let end = appender.end();
                    // SAFETY: as above.
                    let written = unsafe { segment.mapping.tail_mut(start) };
                    // From the back, so that a kill meanwhile leaves complete frames of an
                    // unfinished write followed by zeros: a torn tail to recovery.
                    for chunk in written[..end - start].rchunks_mut(4096) {
                        chunk.fill(0);
                        std::sync::atomic::compiler_fence(Ordering::Release);
                    }
                    *appender = saved;
                    return Err(AppendError::Format(e));
                }
            }
        }
        // Index after the whole write went in (a failed write leaves no entries behind).
        let mut at = start;
        for entry in entries {
            segment.maybe_index(entry.sequence, at);
            at += frame_len(entry.payload.len());
        }
        let stats = appender.stats();
        let counts = Counts {
            count: stats.count,
            first_seq: stats.first_seq,
            last_seq: stats.last_seq,
        };
        if !writer.unsynced.iter().any(|s| Arc::ptr_eq(s, segment)) {
            writer.unsynced.push(Arc::clone(segment));
        }
        // Pages faulted in ahead of a writer through the mapping: a job follows it through the
        // segment, and one that ended while the writer paused is restarted once the writer
        // has used half of what lies ahead. Staged writes need none: prefaulting for them
        // would zero pages a full-page `pwrite` does not need zeroed, and map them, which
        // makes writeback flush TLBs for them.
        if path == WritePath::Mapped
            && self.config.prefault
            && appender.end() + background::PREFAULT_WINDOW / 2 > segment.prefaulted()
            && segment.prefaulted() < segment.mapping.len()
        {
            self.background.prefault(
                Arc::clone(segment),
                segment.prefaulted().max(appender.end()),
            );
        }
        Ok((Arc::clone(segment), appender.end(), counts))
    }

    /// Seals the active segment (if any) and starts a new one after the head.
    fn roll(&self, writer: &mut Writer) -> Result<(), LedgerError> {
        // The previous segment gets its name first: only the newest may be without one (the
        // recovery rule), and a roll rarely finds it so (its naming took a whole segment).
        if let Err(e) = self.naming.name() {
            return Err(self.poison(format!(
                "naming the newest segment: {}",
                crate::error_chain(&e)
            )));
        }
        // The base chains to the previous segment (its last sequence + 1), which lets open
        // notice a missing segment. The head can be above that last sequence (entries lost
        // in a crash after a delete recorded the head), so it is not used while a previous
        // segment exists.
        // The active segment's own counts: the published ones lag behind while a synced write
        // waits for its sync.
        let previous_last = match &writer.active {
            Some((_, appender)) => Some(appender.stats())
                .filter(|stats| stats.count > 0)
                .map(|stats| stats.last_seq),
            None => self
                .segments()
                .last()
                .map(|s| s.counts())
                .filter(|c| c.count > 0)
                .map(|c| c.last_seq),
        };
        let base = previous_last.unwrap_or(writer.last_seq).saturating_add(1);
        let name = file_name(base).as_str().to_owned();
        let header = FileHeader {
            base_seq: base,
            ledger_id: self.ledger_id,
            salt: random_u64(),
            capacity: self.config.segment_size as u64,
            created_ns: now_ns(),
        };
        let (spare_name, region) = match self.background.take_spare() {
            Some(spare) => spare,
            None => {
                let tmp = format!("{name}.tmp");
                let region = self
                    .storage
                    .create(&tmp, self.config.segment_size)
                    .map_err(|e| LedgerError::io(format!("creating segment {tmp}"), e))?;
                (tmp, region)
            }
        };
        let mapping = Mapping::new(region);
        let mut image = [0u8; FILE_HEADER_LEN];
        header
            .encode(&mut image)
            .map_err(|e| LedgerError::Config(crate::error_chain(&e)))?;
        // Written with `pwrite`, not through the mapping: a store there would fault the page
        // in, and the fault reads ahead (zeroing) pages the writer then overwrites.
        if let Err(e) = mapping.region().write_at(0, &image) {
            let _ = self.storage.remove(&spare_name);
            return Err(LedgerError::io(format!("writing the header of {name}"), e));
        }
        // The header (and the file's allocation) must be durable before the name is: a
        // segment name on disk always has a valid header behind it. A buffered ledger leaves
        // the sync and the rename to the naming thread (see `naming`); a synced one, whose
        // next write syncs anyway, does both here.
        let defer = self.config.durability == Durability::Buffered;
        if !defer {
            if let Err(e) = mapping.region().sync() {
                let _ = self.storage.remove(&spare_name);
                return Err(self.poison(format!(
                    "syncing new segment {name}: {}",
                    crate::error_chain(&e)
                )));
            }
            self.storage
                .rename(&spare_name, &name)
                .map_err(|e| LedgerError::io(format!("renaming {spare_name} to {name}"), e))?;
            // The name durable before the next segment can be made: only the newest segment
            // is ever found under a temporary name (open adopts one), as with `naming`.
            if let Err(e) = self.storage.sync_dir() {
                return Err(self.poison(format!(
                    "syncing the ledger directory after naming {name}: {}",
                    crate::error_chain(&e)
                )));
            }
        }
        tracing::debug!(segment = %name, base, deferred_name = defer, "segment rolled");
        let appender = Appender::create(&header, self.config.index_interval).map_err(|e| {
            if defer {
                // Not this ledger's segment after all: no valid header left behind to adopt.
                let _ = self.storage.remove(&spare_name);
            }
            LedgerError::BadSegment {
                segment: name.clone(),
                reason: crate::error_chain(&e),
            }
        })?;
        let segment = Arc::new(Segment::new(
            name,
            header,
            mapping,
            self.config.index_interval as usize,
        ));
        if defer {
            self.naming.defer(Unnamed {
                tmp: spare_name,
                segment: Arc::clone(&segment),
            });
        }

        if let Some((old, appender)) = writer.active.take() {
            let end = appender.end();
            // The index the segment kept while appending is the seal's; should it ever
            // disagree, build the seal's from the records instead. Staged and written with
            // one `pwrite`, like the records.
            let seal = &mut writer.staging;
            seal.clear();
            seal.resize(appender.seal_len(), 0);
            appender
                .clone()
                .seal_frame_staged(old.seal_index(), seal)
                .or_else(|e| {
                    debug_assert!(false, "the segment's index disagrees with the seal's: {e}");
                    // SAFETY: below the committed end nobody writes.
                    let records = unsafe { old.mapping.slice(0, end) };
                    let index = appender.index_from(records);
                    appender.clone().seal_frame_staged(index, seal)
                })
                .map_err(
                    |e: ringledger_core::segment::WriteError| LedgerError::BadSegment {
                        segment: old.name.clone(),
                        reason: format!("sealing: {}", crate::error_chain(&e)),
                    },
                )?;
            if let Err(e) = old.mapping.region().write_at(end, seal) {
                // Part of a seal may be in the file now: the ledger can no longer say where
                // the segment ends.
                return Err(self.poison(format!(
                    "writing the seal of {}: {}",
                    old.name,
                    crate::error_chain(&e)
                )));
            }
            // Nobody writes the records and the seal again: write-protect them, so that
            // writing them back does not have to flush a TLB entry per page.
            old.mapping.region().protect(0..end);
            if !writer.unsynced.iter().any(|s| Arc::ptr_eq(s, &old)) {
                writer.unsynced.push(Arc::clone(&old));
            }
            // Sealed once the records before it are shown (its footer is written then).
            self.publish_or_queue(writer, Publication::Sealed(old), false);
        }
        let mut segments = Vec::clone(&self.segments());
        segments.push(Arc::clone(&segment));
        self.set_segments(segments);
        if defer {
            self.background
                .name()
                .map_err(|reason| self.poison(format!("naming the newest segment: {reason}")))?;
        }
        // Make the next file. This one's pages are faulted in ahead of the writer once it
        // writes through the mapping (see `append_to_active`).
        self.background.prepare_spare();
        writer.active = Some((segment, appender));
        writer.padded_to = 0;
        Ok(())
    }

    /// Makes every write up to `ticket` durable, sharing the sync with concurrent callers.
    ///
    /// Group commit: one caller at a time leads a sync, of everything written when it
    /// starts; callers arriving meanwhile wait for it on a condition variable, and when it
    /// ends all those it covered return at once while one of the others leads the next. (A
    /// plain mutex around the sync would hand over one waiter at a time, and a covered waiter
    /// queued behind the next leader would wait a whole extra sync.)
    fn sync_through(&self, ticket: u64) -> Result<(), LedgerError> {
        let mut state = lock(&self.synced);
        loop {
            self.check_poison()?;
            if state.synced >= ticket {
                return Ok(());
            }
            if !state.syncing {
                break;
            }
            state = wait_on(&self.sync_done, state, None);
        }
        state.syncing = true;
        drop(state);
        let leading = Leading(self);
        self.gather_synced_writes();
        let synced = self.sync_all_written();
        if let Ok((upto, _)) = synced {
            let mut state = lock(&self.synced);
            state.synced = state.synced.max(upto);
        }
        // Then the turn ends and the waiters wake (covered, or to lead the next sync).
        drop(leading);
        let (_, published) = synced?;
        if published {
            self.notify();
        }
        Ok(())
    }

    /// A leader's short wait (at most [`GATHER`]) for the synced writes that are on their way:
    /// those started but not yet in the segment, and those of the writers the last sync
    /// released that have not written again yet. Without it, writers split into two cohorts
    /// that take turns: the ones a sync releases write again while the next sync (led by a
    /// writer that arrived during the last one) runs without them, so each sync covers about
    /// half of them (measured: 4.7 writes per `fdatasync` with 8 writers). This is
    /// PostgreSQL's `commit_delay`, taken only when there is someone to wait for; a lone
    /// writer never waits. Not modelled under loom: it changes when a sync starts, never what
    /// it covers.
    fn gather_synced_writes(&self) {
        #[cfg(not(loom))]
        {
            let on_their_way = || {
                self.synced_writes_in_flight.load(Ordering::Acquire) > 0
                    || self.synced_writers_returning.load(Ordering::Acquire) > 0
            };
            if !on_their_way() {
                return;
            }
            let started = std::time::Instant::now();
            while on_their_way() && started.elapsed() < GATHER {
                std::thread::yield_now();
            }
            // Those still away are not waited for again.
            self.synced_writers_returning.store(0, Ordering::Release);
        }
    }

    /// Syncs every write so far and publishes those that waited for it; returns the ticket it
    /// covered and whether anything was published. A failure poisons the ledger.
    fn sync_all_written(&self) -> Result<(u64, bool), LedgerError> {
        // No directory sync here: a segment's name is synced when it is given (see `naming`).
        let (mut segments, upto, released) = {
            let mut writer = lock(&self.writer);
            (
                std::mem::take(&mut writer.unsynced),
                writer.ticket,
                std::mem::take(&mut writer.synced_writes),
            )
        };
        let started = std::time::Instant::now();
        // A segment still without its name gets it now (or this waits for the naming thread
        // to give it): its records may be among those this sync makes durable. If this call
        // synced it, every write this sync covers is durable there already (they were all
        // written before it started), so it is not synced again.
        match self.naming.name() {
            Ok(Some(named)) => segments.retain(|s| !Arc::ptr_eq(s, &named)),
            Ok(None) => {}
            Err(e) => {
                return Err(self.poison(format!(
                    "naming the newest segment: {}",
                    crate::error_chain(&e)
                )))
            }
        }
        for segment in &segments {
            if let Err(e) = segment.mapping.region().sync() {
                return Err(self.poison(format!(
                    "syncing segment {}: {}",
                    segment.name,
                    crate::error_chain(&e)
                )));
            }
        }
        let took = started.elapsed();
        if took >= SLOW_SYNC {
            tracing::warn!(
                ?took,
                segments = segments.len(),
                "a ledger sync took longer than {SLOW_SYNC:?}"
            );
        }
        // Durable, so visible: published before any caller this sync covers returns (they
        // return once `SyncState::synced` covers them, which the leader sets after this).
        let published = self.publish_ready(&mut lock(&self.writer), upto);
        // The writers this sync releases, for the next leader to wait for.
        self.synced_writers_returning
            .store(released, Ordering::Release);
        Ok((upto, published))
    }

    fn notify(&self) {
        let head = self.head.load(Ordering::Acquire);
        self.waiters.notify();
        if let Some(live) = &self.live {
            live.wake();
        }
        if !self.has_subscribers.load(Ordering::Acquire) {
            return;
        }
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|s| !matches!(s.try_send(head), Err(TrySendError::Disconnected(_))));
        if subscribers.is_empty() {
            self.has_subscribers.store(false, Ordering::Release);
        }
    }
}

/// How a write reaches the segment file (see `Inner::append_to_active`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WritePath {
    /// Stored through the mapping (small buffered writes).
    Mapped,
    /// Built in the staging buffer and written with one `pwrite` (synced writes, and those of
    /// a synced ledger).
    Staged,
    /// Staged, with the zeros after the records up to the next [`STAGE_PAD`] written too
    /// (large unsynced writes of a buffered ledger).
    StagedPadded,
}

/// The granule up to which a buffered staged write also writes the zeros after its records.
///
/// A page a write fills only in part costs the kernel an allocation, a delayed-allocation
/// reservation and the zeroing of the rest, and the next write pays again for the same page;
/// a page written before is an overwrite, and a run of pages written at once comes in larger
/// folios. Measured on ext4 (Linux 6.18, 2 vCPUs), `pwrite`s of 28,800 bytes one after
/// another into a fresh preallocated file: 3.4 GB/s as they are, 4.4-4.5 GB/s with the zeros
/// up to the next 16 KiB written too, 4.6-4.9 GB/s up to 32 KiB, 4.0-4.1 GB/s up to 64 KiB;
/// the ledger's writes of 100 × 256 B (`cargo run --release -p ringledger-benches --example
/// ledger_write`) 8.2-8.7 M entries/s without, 10.4-10.7 M with 32 KiB, and writes of 10
/// 5.5 → 7.8 M.
pub(super) const STAGE_PAD: usize = 32 << 10;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::ledger::{Entry, Ledger, LedgerConfig};

    /// A buffered ledger in a new directory that stages every write, with no background
    /// thread (no spare file, no prefault): what is in the page cache is the writer's doing.
    /// (The directory is on the disk, where a preallocated file has no pages cached; on
    /// tmpfs, preallocation caches them all and the tests' "not resident" checks would fail.)
    fn staging_ledger(segment_size: usize) -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let config = LedgerConfig {
            manual_background: true,
            stage_at_least: 0,
            ..LedgerConfig::default().with_segment_size(segment_size)
        };
        let ledger = Ledger::open(dir.path(), config).unwrap();
        (dir, ledger)
    }

    #[test]
    fn a_buffered_staged_write_also_writes_the_zeros_up_to_the_next_pad_boundary() {
        let (dir, ledger) = staging_ledger(64 << 20);
        ledger.write(&[Entry::new(1, vec![7u8; 1000])]).unwrap();
        let segment = Arc::clone(ledger.inner.segments().last().unwrap());
        let end = segment.data_end();
        let padded = end.next_multiple_of(STAGE_PAD);
        assert!(padded - end > 4096);
        // The pages up to the boundary are in the cache, written; the next one is not.
        assert!(segment.resident(end + 4096));
        assert!(segment.resident(padded - 1));
        assert!(!segment.resident(padded));
        // A write inside the padded pages writes no zeros again; one past them pads again.
        ledger.write(&[Entry::new(2, vec![7u8; 1000])]).unwrap();
        assert!(!segment.resident(padded));
        let big = vec![7u8; STAGE_PAD];
        ledger.write(&[Entry::new(3, big)]).unwrap();
        let end = segment.data_end();
        assert!(end > padded);
        assert!(segment.resident(end.next_multiple_of(STAGE_PAD) - 1));
        // The file is still frames, then zeros, and reads back.
        ledger.sync().unwrap();
        let file = std::fs::read(dir.path().join(&segment.name)).unwrap();
        assert!(file[end..].iter().all(|&b| b == 0));
        let entries = ledger.read(1, 10).unwrap();
        assert_eq!(
            entries.iter().map(|e| e.payload.len()).collect::<Vec<_>>(),
            [1000, 1000, STAGE_PAD]
        );
        drop(ledger);
        let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
        assert_eq!(ledger.head(), 3);
    }

    #[test]
    fn a_synced_write_writes_no_zeros_after_it() {
        let (_dir, ledger) = staging_ledger(64 << 20);
        // Its sync would write them too: only unsynced writes pad.
        ledger
            .write_with(&[Entry::new(1, vec![7u8; 1000])], Durability::Synced)
            .unwrap();
        let segment = Arc::clone(ledger.inner.segments().last().unwrap());
        let end = segment.data_end();
        assert!(segment.resident(end - 1));
        assert!(!segment.resident(end.next_multiple_of(4096)));
    }

    #[test]
    fn the_zeros_after_a_staged_write_stop_at_the_end_of_the_segment() {
        // Not a multiple of the pad: a write past 32 KiB pads up to the file's end, no further.
        let segment_size = 40 << 10;
        let (_dir, ledger) = staging_ledger(segment_size);
        ledger.write(&[Entry::new(1, vec![1u8; 3000])]).unwrap();
        let segment = Arc::clone(ledger.inner.segments().last().unwrap());
        let mut seq = 1;
        while segment.data_end() <= STAGE_PAD {
            seq += 1;
            ledger.write(&[Entry::new(seq, vec![1u8; 3000])]).unwrap();
        }
        // (A pad past the end would fail and the write would go in without it.)
        assert!(segment.resident(segment_size - 1));
        while ledger.inner.segments().len() < 2 {
            seq += 1;
            ledger.write(&[Entry::new(seq, vec![1u8; 3000])]).unwrap();
        }
        assert_eq!(ledger.read(1, 1000).unwrap().len() as u64, seq);
    }
}
