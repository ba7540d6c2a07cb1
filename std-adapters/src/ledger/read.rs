//! The read path: [`Ledger::read`], [`read_into`](Ledger::read_into),
//! [`visit`](Ledger::visit), the cursors' tagged reads and [`index`](Ledger::index).
//!
//! The rule it implements: readers never wait for the writer and never take its lock. They
//! load the segment list and a segment's published end (acquire), and read only the frames
//! below that end, checking every frame's checksums: damage is an error naming the segment
//! and offset, never skipped. Payloads are [`Bytes`] sharing the mapping (no copy).

use std::sync::Arc;

use bytes::Bytes;
use ringledger_core::segment::CorruptReason;

use super::segment::{Segment, TagRun};
use super::{Entry, EntryRef, Ledger, LedgerError, Scanned};

/// The most entries [`Ledger::read`] makes room for up front (a larger read grows its vector).
const READ_ROOM: usize = 1 << 16;

/// Entries of a segment's tag column a filtered read copies out at a time.
const TAG_RUN: usize = 1024;

/// The entry of `record`, a record of `records`, its payload shared with them (no copy).
fn shared_entry(records: &Bytes, record: &ringledger_core::segment::Record<'_>) -> Entry {
    let start = record.offset + ringledger_core::segment::FRAME_HEADER_LEN;
    Entry {
        sequence: record.seq,
        tag: record.tag,
        timestamp: record.timestamp,
        payload: records.slice(start..start + record.payload.len()),
    }
}

impl Ledger {
    /// Up to `max` entries with a sequence `>= from`, oldest first.
    ///
    /// Payloads share the segment mappings. A record that fails its checksums is an error
    /// naming the segment and the offset, never skipped.
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
    /// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
    /// let entries = ledger.read(2, 10)?;
    /// let seqs: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
    /// assert_eq!(seqs, [2, 3]);
    /// assert_eq!(entries[0].payload, "b");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<Entry>, LedgerError> {
        // Room for every entry that can be there (sequences from `from` to the head), so that
        // the vector never grows (and moves) while it fills; bounded, for a `max` of millions.
        let at_most = self
            .head()
            .saturating_sub(from.max(self.tail().saturating_add(1)))
            .saturating_add(1);
        let room = usize::try_from(at_most).unwrap_or(usize::MAX).min(max);
        let mut out = Vec::with_capacity(room.min(READ_ROOM));
        self.read_into(from, max, &mut out)?;
        Ok(out)
    }

    /// [`read`](Self::read) into `out` (appended; returns how many), for a reader that reuses
    /// one vector across calls.
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
    /// ledger.write(&(1..=5).map(|s| Entry::new(s, "x")).collect::<Vec<_>>())?;
    /// let (mut batch, mut from, mut batches) = (Vec::with_capacity(2), 1, 0);
    /// while ledger.read_into(from, 2, &mut batch)? > 0 {
    ///     from = batch.last().unwrap().sequence + 1;
    ///     batches += 1;
    ///     batch.clear(); // the same allocation serves the next batch
    /// }
    /// assert_eq!((batches, from), (3, 6));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_into(
        &self,
        from: u64,
        max: usize,
        out: &mut Vec<Entry>,
    ) -> Result<usize, LedgerError> {
        let before = out.len();
        self.read_with(from, max, |segment_records, record| {
            out.push(shared_entry(segment_records, &record));
        })?;
        Ok(out.len() - before)
    }

    /// Calls `f` on up to `max` entries with a sequence `>= from`, oldest first, with the
    /// payload borrowed from the mapping: no allocation and no reference count per entry.
    /// Returns how many entries it saw.
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    /// ledger.write(&[Entry::new(1, "ab"), Entry::new(2, "cde")]).unwrap();
    /// let mut bytes = 0;
    /// let seen = ledger.visit(0, 10, |entry| bytes += entry.payload.len()).unwrap();
    /// assert_eq!((seen, bytes), (2, 5));
    /// ```
    pub fn visit(
        &self,
        from: u64,
        max: usize,
        mut f: impl FnMut(EntryRef<'_>),
    ) -> Result<usize, LedgerError> {
        self.read_with(from, max, |_, record| {
            f(EntryRef {
                sequence: record.seq,
                tag: record.tag,
                timestamp: record.timestamp,
                payload: record.payload,
            });
        })
    }

    /// Scans up to `scan` entries with a sequence `>= from` and appends to `out` those whose
    /// tag `wanted` accepts, up to `take` of them (the scan stops at the last one taken).
    ///
    /// For the entries it skips only the frame header is checked (its checksum covers the
    /// length, tag, sequence and timestamp): their payloads are never read, which is what makes
    /// a filter over a rare tag cheap. The tags come from a column of the segment's tags and
    /// record offsets that the first filtered read of a segment builds (8 bytes per record,
    /// from headers whose checksum holds), so a later scan tests tags in a dense array. The entries it keeps are checked whole, as by
    /// [`read`](Self::read), and shared with the mapping. Damage inside a skipped payload is
    /// left for the readers that want it (and for [`verify`](Self::verify)) to report.
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    /// let entries: Vec<Entry> = (1..=10).map(|s| Entry::new(s, "x").with_tag(s as u32 % 3)).collect();
    /// ledger.write(&entries).unwrap();
    /// let mut out = Vec::new();
    /// let scanned = ledger.read_tagged_into(1, 100, 100, |tag| tag == 0, &mut out).unwrap();
    /// assert_eq!(out.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3, 6, 9]);
    /// assert_eq!((scanned.scanned, scanned.next), (10, 11));
    /// ```
    pub fn read_tagged_into(
        &self,
        from: u64,
        scan: usize,
        take: usize,
        mut wanted: impl FnMut(u32) -> bool,
        out: &mut Vec<Entry>,
    ) -> Result<Scanned, LedgerError> {
        let from = from.max(self.tail().saturating_add(1));
        let mut result = Scanned {
            scanned: 0,
            next: from,
        };
        if scan == 0 || take == 0 {
            return Ok(result);
        }
        let mut taken = 0;
        let segments = self.inner.segments();
        let start = segments
            .partition_point(|s| s.base() <= from)
            .saturating_sub(1);
        let mut run = TagRun::default();
        'segments: for segment in &segments[start..] {
            let counts = segment.counts();
            if counts.count == 0 || counts.last_seq < from {
                continue;
            }
            let records = segment.records();
            let corrupt = |offset: usize, reason| LedgerError::Corrupt {
                segment: segment.name.clone(),
                offset,
                reason,
            };
            // The first record at or after `from`: from the sparse index, a few headers on.
            let mut at = segment.seek(from);
            while at < records.len() {
                let record = segment.skim_at(&records, at).map_err(|r| corrupt(at, r))?;
                if record.seq >= from {
                    break;
                }
                at = record.end();
            }
            // Then the tags from the segment's column, in runs; the headers of the records
            // taken, and of the last one scanned, are read again (checked) from the image.
            while at < records.len() {
                let column = segment
                    .tag_run(&records, at, TAG_RUN, &mut run)
                    .map_err(|(offset, reason)| corrupt(offset, reason))?;
                if column.is_none() {
                    // A segment too large for the column: header by header.
                    let record = segment.skim_at(&records, at).map_err(|r| corrupt(at, r))?;
                    run.tags.clear();
                    run.tags.push(record.tag);
                    run.offsets.clear();
                    run.offsets.push(0);
                    run.to_end = record.end() >= records.len();
                }
                let mut last = at;
                for (i, &tag) in run.tags.iter().enumerate() {
                    let offset = if column.is_some() {
                        run.offsets[i] as usize
                    } else {
                        at
                    };
                    last = offset;
                    result.scanned += 1;
                    if wanted(tag) {
                        let record = segment
                            .record_at(&records, offset)
                            .map_err(|r| corrupt(offset, r))?;
                        out.push(shared_entry(&records, &record));
                        taken += 1;
                    }
                    if taken == take || result.scanned == scan {
                        let record = segment
                            .skim_at(&records, offset)
                            .map_err(|r| corrupt(offset, r))?;
                        result.next = record.seq.saturating_add(1);
                        break 'segments;
                    }
                }
                let record = segment
                    .skim_at(&records, last)
                    .map_err(|r| corrupt(last, r))?;
                result.next = record.seq.saturating_add(1);
                if run.to_end || run.tags.is_empty() {
                    break;
                }
                at = record.end();
            }
        }
        Ok(result)
    }

    /// Walks the records `>= from` (at most `max`), handing each with its segment's bytes.
    fn read_with(
        &self,
        from: u64,
        max: usize,
        mut f: impl FnMut(&Bytes, ringledger_core::segment::Record<'_>),
    ) -> Result<usize, LedgerError> {
        let mut seen = 0;
        if max == 0 {
            return Ok(0);
        }
        let from = from.max(self.tail().saturating_add(1));
        let segments = self.inner.segments();
        // The last segment whose base is <= from holds `from` if anything does.
        let start = segments
            .partition_point(|s| s.base() <= from)
            .saturating_sub(1);
        for segment in &segments[start..] {
            seen += read_segment(segment, from, max - seen, &mut f)?;
            if seen >= max {
                break;
            }
        }
        Ok(seen)
    }

    /// The entry at position `i`: 0 is the oldest, -1 the newest. `None` when out of range.
    ///
    /// Walks the frame headers of one segment (a cost in proportion to a segment's entries,
    /// a header's worth of reading each) and checks the record it returns whole: a damaged
    /// payload is an error when its entry is asked for, not when it is walked over.
    ///
    /// ```
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
    /// ledger.write(&[Entry::new(10, "a"), Entry::new(20, "b"), Entry::new(30, "c")])?;
    /// assert_eq!(ledger.index(0)?.map(|e| e.sequence), Some(10));
    /// assert_eq!(ledger.index(-1)?.map(|e| e.sequence), Some(30));
    /// assert!(ledger.index(3)?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn index(&self, i: i64) -> Result<Option<Entry>, LedgerError> {
        // The length and the tail it counts from must belong together: a delete between the
        // two loads would count the old length from the new tail.
        let (len, tail) = self.inner.len_and_tail();
        let k = if i >= 0 {
            i as u64
        } else {
            match len.checked_sub(i.unsigned_abs()) {
                Some(k) => k,
                None => return Ok(None),
            }
        };
        if k >= len {
            return Ok(None);
        }
        let mut k = k;
        for segment in self.inner.segments().iter() {
            let live = live_in(segment, tail)?;
            if k < live {
                // Headers lead to the record; only the record handed out is checked whole.
                let records = segment.records();
                let mut found = None;
                walk_records(segment, &records, tail.saturating_add(1), false, |record| {
                    if k == 0 {
                        found = Some(record.offset);
                        return false;
                    }
                    k -= 1;
                    true
                })?;
                let Some(offset) = found else {
                    return Ok(None);
                };
                let record =
                    segment
                        .record_at(&records, offset)
                        .map_err(|reason| LedgerError::Corrupt {
                            segment: segment.name.clone(),
                            offset,
                            reason,
                        })?;
                return Ok(Some(shared_entry(&records, &record)));
            }
            k -= live;
        }
        Ok(None)
    }
}

/// Hands the records `>= from` of one segment to `f`, up to `max`; returns how many.
fn read_segment(
    segment: &Segment,
    from: u64,
    max: usize,
    f: &mut impl FnMut(&Bytes, ringledger_core::segment::Record<'_>),
) -> Result<usize, LedgerError> {
    let counts = segment.counts();
    if counts.count == 0 || counts.last_seq < from {
        return Ok(0);
    }
    let records = segment.records();
    let mut at = segment.seek(from);
    let mut seen = 0;
    let mut ahead = Prefetch::new(at);
    while at < records.len() && seen < max {
        ahead.up_to(&records, at);
        let record = segment
            .record_at(&records, at)
            .map_err(|reason| LedgerError::Corrupt {
                segment: segment.name.clone(),
                offset: at,
                reason,
            })?;
        at = record.end();
        if record.seq >= from {
            f(&records, record);
            seen += 1;
        }
    }
    Ok(seen)
}

/// Bytes a sequential read asks the CPU for ahead of the record it checks.
///
/// A segment is read through a mapping of 4 KiB pages, and the hardware prefetchers stop at
/// each page's end: without a hint every page starts with misses (and a TLB walk), which made
/// a 1 GiB `visit` run at 0.55x `memcpy` while the same read of 8 MiB in cache ran at 0.95x
/// (the checksums are not the limit).
const PREFETCH_AHEAD: usize = 4096;

/// How far ahead a sequential read has asked for its bytes.
struct Prefetch {
    until: usize,
}

impl Prefetch {
    fn new(at: usize) -> Self {
        Prefetch { until: at }
    }

    /// Asks for the cache lines up to [`PREFETCH_AHEAD`] past `at` that were not asked for yet.
    #[inline(always)]
    fn up_to(&mut self, records: &[u8], at: usize) {
        let end = (at + PREFETCH_AHEAD).min(records.len());
        while self.until < end {
            prefetch(&records[self.until]);
            self.until += 64;
        }
    }
}

/// A hint to load the cache line holding `byte`; nothing on targets without one here.
#[inline(always)]
fn prefetch(byte: &u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache; it never faults and reads nothing into the
    // program (and the address is a live reference's anyway). SSE is part of x86_64.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (byte as *const u8).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = byte;
}

/// Calls `f` on each entry `>= from` of `segment`, in order, until it returns `false`.
pub(super) fn walk(
    segment: &Segment,
    from: u64,
    mut f: impl FnMut(Entry) -> bool,
) -> Result<(), LedgerError> {
    let records = segment.records();
    walk_records(segment, &records, from, true, |record| {
        f(shared_entry(&records, record))
    })
}

/// Calls `f` on each record `>= from` of `segment` (whose image is `records`), in order, until
/// it returns `false`, checking that sequences increase. `whole`: every record's checksums;
/// otherwise only the headers' (for walks that count records or look for one, and never hand
/// out a payload they did not check: see [`Ledger::index`]). A failed check is an error naming
/// the segment and the offset.
fn walk_records(
    segment: &Segment,
    records: &Bytes,
    from: u64,
    whole: bool,
    mut f: impl FnMut(&ringledger_core::segment::Record<'_>) -> bool,
) -> Result<(), LedgerError> {
    let mut at = segment.seek(from);
    let mut prev: Option<u64> = None;
    let mut ahead = Prefetch::new(at);
    while at < records.len() {
        let corrupt = |offset, reason| LedgerError::Corrupt {
            segment: segment.name.clone(),
            offset,
            reason,
        };
        ahead.up_to(records, at);
        let record = if whole {
            segment.record_at(records, at)
        } else {
            segment.skim_at(records, at)
        }
        .map_err(|reason| corrupt(at, reason))?;
        if let Some(prev) = prev.filter(|&p| record.seq <= p) {
            return Err(corrupt(
                at,
                CorruptReason::SequenceNotIncreasing {
                    prev,
                    seq: record.seq,
                },
            ));
        }
        prev = Some(record.seq);
        at = record.end();
        if record.seq >= from && !f(&record) {
            break;
        }
    }
    Ok(())
}

/// How many records `>= from` of `segment` satisfy `keep` (stopping at the first that
/// does not), from their headers: see [`walk_records`].
fn count_from(
    segment: &Segment,
    from: u64,
    mut keep: impl FnMut(u64) -> bool,
) -> Result<u64, LedgerError> {
    let records = segment.records();
    let mut n = 0;
    walk_records(segment, &records, from, false, |record| {
        let kept = keep(record.seq);
        n += u64::from(kept);
        kept
    })?;
    Ok(n)
}

/// Entries of `segment` with a sequence above `tail`.
pub(super) fn live_in(segment: &Segment, tail: u64) -> Result<u64, LedgerError> {
    let counts = segment.counts();
    if counts.count == 0 || counts.last_seq <= tail {
        return Ok(0);
    }
    if counts.first_seq > tail {
        return Ok(counts.count);
    }
    count_from(segment, tail.saturating_add(1), |_| true)
}

/// Entries with a sequence in `(low, high]`.
pub(super) fn count_between(
    segments: &[Arc<Segment>],
    low: u64,
    high: u64,
) -> Result<usize, LedgerError> {
    let mut n = 0u64;
    for segment in segments {
        let counts = segment.counts();
        if counts.count == 0 || counts.last_seq <= low || counts.first_seq > high {
            continue;
        }
        if counts.first_seq > low && counts.last_seq <= high {
            n += counts.count;
            continue;
        }
        n += count_from(segment, low.saturating_add(1), |seq| seq <= high)?;
    }
    Ok(n as usize)
}
