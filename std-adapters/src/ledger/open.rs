//! Opening a ledger directory: the recovery rule of `core/FORMAT.md`, with files.
//!
//! 1. Lock the directory. Read `ledger.meta` (create it for a new ledger).
//! 2. Leftover `*.tmp` files: the newest segment, if the writer stopped before it gave it its
//!    name (see `naming`: a temporary file whose header is valid, of this ledger, and based
//!    after every named segment), is synced and named; the others are removed.
//!    Check every segment's header: the magic, the version, the checksum, the name, the
//!    ledger id, the size.
//! 3. Walk the segments in order. A segment with a footer must open through its seal (no
//!    scan); its last sequence must lead to the next segment's base (else one is missing).
//!    Damage there is an error, or with `repair` the log is cut there.
//! 4. A segment without a footer was being closed or written when the process stopped. It is
//!    scanned and recovered (a torn tail zeroed and synced). If a valid seal ends it, it is
//!    finished (footer); if its records are complete but the seal is missing, it is sealed
//!    again; otherwise the log ends in it, and later segments (which no sync can have
//!    covered: a sync makes every earlier segment durable first) are removed.
//! 5. The last segment, if unsealed, takes the appends.

use std::io;
use std::sync::Arc;

use ringledger_core::segment::{
    decode_footer, file_name, parse_file_name, recover, recovery_plan, Appender, FileHeader,
    Footer, OpenSealedError, Scanner, SealedSegment, FOOTER_LEN,
};

use super::meta::{Meta, META_FILE};
use super::segment::{Counts, Mapping, Segment};
use super::{live_in, LedgerConfig, LedgerError, RecoveryReport};
use crate::storage::{random_u64, LockGuard, Storage};

/// A recovered ledger, ready for [`Ledger`](super::Ledger) to take over.
pub(super) struct Opened {
    pub(super) lock: Box<dyn LockGuard>,
    pub(super) ledger_id: u64,
    pub(super) segments: Vec<Arc<Segment>>,
    pub(super) active: Option<(Arc<Segment>, Appender)>,
    /// Sealed segments whose footer is still to be written.
    pub(super) unfinished: Vec<Arc<Segment>>,
    pub(super) head: u64,
    pub(super) tail: u64,
    pub(super) len: u64,
    pub(super) report: RecoveryReport,
}

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> LedgerError {
    let context = context.into();
    move |source| LedgerError::io(context, source)
}

fn bad(segment: &str, reason: impl Into<String>) -> LedgerError {
    LedgerError::BadSegment {
        segment: segment.to_owned(),
        reason: reason.into(),
    }
}

/// A segment file, mapped, with its header checked.
struct Mapped {
    name: String,
    header: FileHeader,
    mapping: Arc<Mapping>,
}

/// Opens and recovers the ledger in `storage`. A read-only open with a `limit` (the head a
/// live writer has shown) shows nothing past it: no record above it, no segment after it.
pub(super) fn open(
    storage: &dyn Storage,
    config: &LedgerConfig,
    limit: Option<u64>,
) -> Result<Opened, LedgerError> {
    // Read-only: no lock (a writer may be at work), and nothing on disk changes: what
    // recovery would do is reported, and the ledger reads what it would keep.
    let ro = config.read_only;
    let limit = limit.filter(|_| ro);
    let lock: Box<dyn LockGuard> = if ro {
        Box::new(NoLock)
    } else {
        storage.lock().map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                LedgerError::Locked
            } else {
                LedgerError::Io {
                    context: "locking the ledger directory".into(),
                    source: e,
                }
            }
        })?
    };
    let mut report = RecoveryReport::default();
    let names = storage
        .list()
        .map_err(io_error("listing the ledger directory"))?;
    let mut files = Vec::new();
    for name in names.iter().filter(|n| n.ends_with(".seg")) {
        let base = parse_file_name(name).map_err(|e| {
            bad(
                name,
                format!("not a segment file name: {}", crate::error_chain(&e)),
            )
        })?;
        if limit.is_some_and(|limit| base > limit) {
            // Made by the writer after the head it showed: not part of the view yet.
            continue;
        }
        files.push((base, name.clone()));
    }
    files.sort();

    let meta = match storage
        .read(META_FILE)
        .map_err(io_error("reading ledger.meta"))?
    {
        Some(bytes) => match Meta::decode(&bytes) {
            Ok(meta) => meta,
            Err(reason) if config.repair && !ro && !files.is_empty() => {
                rebuild_meta(storage, &files, &reason, &mut report)?
            }
            Err(reason) => return Err(LedgerError::BadMeta { reason }),
        },
        None if config.repair && !ro && !files.is_empty() => {
            rebuild_meta(storage, &files, "ledger.meta is missing", &mut report)?
        }
        None if files.is_empty() && ro => {
            return Err(LedgerError::BadMeta {
                reason: "no ledger here (ledger.meta is missing)".into(),
            })
        }
        None if files.is_empty() => {
            let meta = Meta {
                ledger_id: random_u64(),
                tail: 0,
                head: 0,
            };
            storage
                .replace(META_FILE, &meta.encode())
                .map_err(io_error("creating ledger.meta"))?;
            meta
        }
        None => {
            return Err(LedgerError::BadMeta {
                reason: format!(
                    "ledger.meta is missing while {} segment files exist",
                    files.len()
                ),
            })
        }
    };

    temporary_files(storage, &names, &meta, &mut files, limit, &mut report, ro)?;

    // Map every segment and check its header.
    let mut mapped = Vec::with_capacity(files.len());
    for (i, (base, name)) in files.iter().enumerate() {
        let found = map_segment(storage, name, *base, meta.ledger_id, !ro).or_else(|e| {
            // Read-only, with a live writer: it may have named the newest segment since.
            if ro && name.ends_with(".tmp") {
                map_segment(
                    storage,
                    file_name(*base).as_str(),
                    *base,
                    meta.ledger_id,
                    false,
                )
                .map_err(|_| e)
            } else {
                Err(e)
            }
        });
        match found {
            Ok(m) => mapped.push(m),
            Err(e) if !config.repair => return Err(e),
            Err(_) => {
                // Repair: the log ends before this segment.
                for (_, later) in &files[i..] {
                    remove(storage, later, &mut report, ro)?;
                }
                sync_dir(storage, ro)?;
                break;
            }
        }
    }

    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(mapped.len());
    let mut unfinished = Vec::new();
    let mut active = None;
    let interval = config.index_interval;
    let mut i = 0;
    while i < mapped.len() {
        let next = mapped
            .get(i + 1)
            .map(|m| (m.header.base_seq, m.name.clone()));
        let m = &mapped[i];
        let len = m.mapping.len();
        // SAFETY: nothing else has the mapping yet (the directory is locked, no ledger
        // exists); no mutable slice of it is alive.
        let image = unsafe { m.mapping.slice(0, len) };
        // A footer is written only once its seal is on disk: a valid one means the seal must
        // be intact. Zeros, or bytes that are no footer (a page that never reached the disk
        // whole), mean the segment was still being closed: scan it.
        let footer = decode_footer(m.header.salt, &image[len - FOOTER_LEN..]);

        if let Footer::Sealed(_) = footer {
            match SealedSegment::open(image) {
                Ok(sealed) => {
                    let segment = sealed_segment(m, &sealed, config);
                    let last = sealed.seal().stats.last_seq;
                    let keep = check_chain(storage, config, &mut mapped, i, last, &mut report)?;
                    segments.push(segment);
                    if !keep {
                        break;
                    }
                    i += 1;
                    continue;
                }
                Err(e) if !config.repair => {
                    let (offset, reason) = match e {
                        OpenSealedError::Corrupt(c) => (c.offset, c.reason),
                        OpenSealedError::Header(h) => return Err(bad(&m.name, h.to_string())),
                        other => return Err(bad(&m.name, other.to_string())),
                    };
                    return Err(LedgerError::Corrupt {
                        segment: m.name.clone(),
                        offset,
                        reason,
                    });
                }
                // Repair: scan it like a segment without a footer.
                Err(_) => {}
            }
        }

        // No footer (or repair): scan and recover (read-only: only work out what recovery
        // would keep).
        let recovered = if ro {
            recovery_plan(image).map_err(|e| bad(&m.name, crate::error_chain(&e)))?
        } else {
            // SAFETY: as above; the shared `image` is not used past this point.
            let whole = unsafe { m.mapping.tail_mut(0) };
            recover(whole).map_err(|e| bad(&m.name, crate::error_chain(&e)))?
        };
        if !recovered.zeroed.is_empty() && !ro {
            m.mapping
                .region()
                .sync()
                .map_err(io_error(format!("syncing recovered segment {}", m.name)))?;
        }
        if let Some(damage) = recovered.damage {
            report.cut.push((m.name.clone(), recovered.end, damage));
        }
        if recovered.sealed {
            let segment = scanned_segment(m, config, true, recovered.end, u64::MAX)?;
            let keep = check_chain(
                storage,
                config,
                &mut mapped,
                i,
                recovered.stats.last_seq,
                &mut report,
            )?;
            // A read-only open leaves the footer to the next writer: it never writes.
            if !ro {
                unfinished.push(Arc::clone(&segment));
            }
            segments.push(segment);
            if !keep {
                break;
            }
            i += 1;
            continue;
        }
        if let Some((next_base, _)) = next {
            let complete = recovered.stats.count > 0
                && recovered.stats.last_seq.checked_add(1) == Some(next_base);
            if complete {
                // The records are all there; only the seal did not reach the disk.
                if !ro {
                    reseal(m, interval)?;
                }
                report.resealed.push(m.name.clone());
                let segment = scanned_segment(m, config, !ro, recovered.end, u64::MAX)?;
                if !ro {
                    unfinished.push(Arc::clone(&segment));
                }
                segments.push(segment);
                i += 1;
                continue;
            }
            // The log ends in this segment: what follows was never synced.
            for later in mapped.drain(i + 1..) {
                let name = later.name.clone();
                drop(later);
                remove(storage, &name, &mut report, ro)?;
            }
            sync_dir(storage, ro)?;
        }
        let m = &mapped[i];
        let segment = scanned_segment(m, config, false, recovered.end, u64::MAX)?;
        if !ro {
            // SAFETY: as above.
            let appender = Appender::resume(unsafe { m.mapping.slice(0, len) }, interval)
                .map_err(|e| bad(&m.name, crate::error_chain(&e)))?;
            active = Some((Arc::clone(&segment), appender));
        }
        segments.push(segment);
        i += 1;
    }

    if let Some(limit) = limit {
        // Records past the writer's head (a write not yet shown, or synced but not yet
        // durable) stay out of the view.
        for segment in &mut segments {
            if segment.counts().last_seq > limit {
                let m = Mapped {
                    name: segment.name.clone(),
                    header: segment.header,
                    mapping: Arc::clone(&segment.mapping),
                };
                *segment = scanned_segment(&m, config, false, usize::MAX, limit)?;
            }
        }
    }
    let tail = meta.tail;
    let last_written = segments
        .iter()
        .rev()
        .map(|s| s.counts())
        .find(|c| c.count > 0)
        .map_or(0, |c| c.last_seq);
    let head = match limit {
        Some(limit) => limit,
        None => meta.head.max(last_written),
    };

    // Sealed segments holding only deleted entries (a crash between writing ledger.meta and
    // removing them): remove them now.
    let mut kept = Vec::with_capacity(segments.len());
    let mut removed_any = false;
    for segment in segments {
        let counts = segment.counts();
        let is_active = active
            .as_ref()
            .is_some_and(|(a, _): &(Arc<Segment>, Appender)| Arc::ptr_eq(a, &segment));
        if !ro && segment.is_sealed() && !is_active && counts.count > 0 && counts.last_seq <= tail {
            let name = segment.name.clone();
            unfinished.retain(|u: &Arc<Segment>| !Arc::ptr_eq(u, &segment));
            drop(segment);
            remove(storage, &name, &mut report, ro)?;
            removed_any = true;
        } else {
            kept.push(segment);
        }
    }
    if removed_any {
        sync_dir(storage, ro)?;
    }
    let mut len = 0;
    for segment in &kept {
        len += live_in(segment, tail)?;
    }
    Ok(Opened {
        lock,
        ledger_id: meta.ledger_id,
        segments: kept,
        active,
        unfinished,
        head,
        tail,
        len,
        report,
    })
}

/// Rebuilds `ledger.meta` from the segments (repair only): the ledger id from the oldest
/// segment's header, the tail just below its base (what the chain of segments says was
/// deleted), the head from the records (worked out by the caller). What the segments cannot
/// tell is said in the report: deletes inside the oldest segment are undone.
fn rebuild_meta(
    storage: &dyn Storage,
    files: &[(u64, String)],
    why: &str,
    report: &mut RecoveryReport,
) -> Result<Meta, LedgerError> {
    let (base, name) = &files[0];
    let region = storage
        .open(name, false)
        .map_err(|e| bad(name, format!("cannot map: {}", crate::error_chain(&e))))?;
    // SAFETY: a read-only mapping of `len()` bytes, alive for this borrow.
    let image = unsafe { std::slice::from_raw_parts(region.as_ptr(), region.len()) };
    let header = FileHeader::decode(image).map_err(|e| {
        bad(
            name,
            format!(
                "{}; and ledger.meta cannot be rebuilt without it ({why})",
                crate::error_chain(&e)
            ),
        )
    })?;
    let meta = Meta {
        ledger_id: header.ledger_id,
        tail: base.saturating_sub(1),
        head: 0,
    };
    drop(region);
    storage
        .replace(META_FILE, &meta.encode())
        .map_err(io_error("rebuilding ledger.meta"))?;
    report.rebuilt_meta = Some(format!(
        "{why}: rebuilt from the segments (ledger id {:#x} from {name}, tail {}); entries \
         deleted inside {name} before the damage, if any, are back",
        meta.ledger_id, meta.tail
    ));
    Ok(meta)
}

/// Adopts the newest segment if a crash left it under its temporary name (see the module's
/// step 2), adding it to `files`, and removes every other `*.tmp` file.
fn temporary_files(
    storage: &dyn Storage,
    names: &[String],
    meta: &Meta,
    files: &mut Vec<(u64, String)>,
    limit: Option<u64>,
    report: &mut RecoveryReport,
    ro: bool,
) -> Result<(), LedgerError> {
    let newest = files.last().map_or(0, |(base, _)| *base);
    let wanted = |base: u64| base > newest && limit.is_none_or(|limit| base <= limit);
    let temporary: Vec<&String> = names.iter().filter(|n| n.ends_with(".tmp")).collect();
    let mut vanished = Vec::new();
    let mut candidates = Vec::new();
    for name in &temporary {
        match unnamed_base(storage, name, meta.ledger_id) {
            Unnamed::Base(base) if wanted(base) => candidates.push((base, *name)),
            Unnamed::Base(_) | Unnamed::Not => {}
            Unnamed::Vanished => vanished.push(*name),
            // Not knowing whether it is the newest segment, open cannot remove it.
            Unnamed::Error(e) => return Err(LedgerError::io(format!("reading {name}"), e)),
        }
    }
    let adopt = candidates.into_iter().max();
    if !vanished.is_empty() && ro {
        // A live writer named its newest segment between the listing and now: it is there
        // under its name.
        let again = storage
            .list()
            .map_err(io_error("listing the ledger directory"))?;
        for name in again {
            if let Ok(base) = parse_file_name(&name) {
                if wanted(base) && !files.iter().any(|(_, known)| *known == name) {
                    files.push((base, name));
                }
            }
        }
        files.sort();
    }
    for name in &temporary {
        if adopt.is_some_and(|(_, adopted)| adopted == *name) || vanished.contains(name) {
            continue;
        }
        if !ro {
            storage
                .remove(name)
                .map_err(io_error(format!("removing {name}")))?;
        }
        report.removed_temporary.push((*name).clone());
    }
    if let Some((base, tmp)) = adopt {
        let name = file_name(base).as_str().to_owned();
        if ro {
            // Read where it is: a read-only open changes nothing.
            files.push((base, tmp.clone()));
        } else {
            // Its header on disk before its name, as the naming thread would have done.
            storage
                .open(tmp, true)
                .and_then(|region| region.sync())
                .map_err(io_error(format!("syncing {tmp}")))?;
            storage
                .rename(tmp, &name)
                .map_err(io_error(format!("renaming {tmp} to {name}")))?;
            files.push((base, name.clone()));
        }
        report.adopted.push(name);
    }
    if !temporary.is_empty() {
        sync_dir(storage, ro)?;
    }
    Ok(())
}

/// What a temporary file holds.
enum Unnamed {
    /// A segment whose name was not given yet, based here: its header is valid, of this
    /// ledger, and fits the file.
    Base(u64),
    /// Nothing that can be read: a spare not used yet (its first page is zeros), a header
    /// that never reached the disk whole, a file that cannot be mapped.
    Not,
    /// Nothing any more: a live writer renamed (or removed) it since the listing.
    Vanished,
    /// It could not be read (too many open files, no memory to map it...): it may be the
    /// newest segment.
    Error(io::Error),
}

fn unnamed_base(storage: &dyn Storage, name: &str, ledger_id: u64) -> Unnamed {
    let region = match storage.open(name, false) {
        Ok(region) => region,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Unnamed::Vanished,
        // Empty, or too large to map: no segment of this ledger.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
            ) =>
        {
            return Unnamed::Not
        }
        Err(e) => return Unnamed::Error(e),
    };
    let mapping = Mapping::new(region);
    // SAFETY: a fresh mapping nobody else uses; a live writer (for a read-only open) wrote
    // the header before anything else, and a torn read of it does not decode.
    let image = unsafe { mapping.slice(0, mapping.len()) };
    match FileHeader::decode(image) {
        Ok(header) if header.ledger_id == ledger_id && header.capacity == mapping.len() as u64 => {
            Unnamed::Base(header.base_seq)
        }
        _ => Unnamed::Not,
    }
}

fn map_segment(
    storage: &dyn Storage,
    name: &str,
    base: u64,
    ledger_id: u64,
    writable: bool,
) -> Result<Mapped, LedgerError> {
    let region = storage
        .open(name, writable)
        .map_err(|e| bad(name, format!("cannot map: {}", crate::error_chain(&e))))?;
    let mapping = Mapping::new(region);
    // SAFETY: a fresh mapping nobody else uses.
    let image = unsafe { mapping.slice(0, mapping.len()) };
    let header = FileHeader::decode(image).map_err(|e| bad(name, crate::error_chain(&e)))?;
    if header.base_seq != base {
        return Err(bad(
            name,
            format!(
                "the header says base sequence {}, the name says {base}",
                header.base_seq
            ),
        ));
    }
    if header.ledger_id != ledger_id {
        return Err(bad(
            name,
            format!(
                "belongs to ledger {:#x}, not to this ledger ({ledger_id:#x})",
                header.ledger_id
            ),
        ));
    }
    if header.capacity != mapping.len() as u64 {
        return Err(bad(
            name,
            format!(
                "the file is {} bytes, the header says {}",
                mapping.len(),
                header.capacity
            ),
        ));
    }
    Ok(Mapped {
        name: name.to_owned(),
        header,
        mapping,
    })
}

/// Checks that segment `i`, whose last sequence is `last`, leads to the next one. Returns
/// whether to go on (false: repair cut the log after segment `i`).
fn check_chain(
    storage: &dyn Storage,
    config: &LedgerConfig,
    mapped: &mut Vec<Mapped>,
    i: usize,
    last: u64,
    report: &mut RecoveryReport,
) -> Result<bool, LedgerError> {
    let Some(next) = mapped.get(i + 1) else {
        return Ok(true);
    };
    if last.checked_add(1) == Some(next.header.base_seq) {
        return Ok(true);
    }
    if !config.repair {
        return Err(LedgerError::MissingSegment {
            before: mapped[i].name.clone(),
            after: next.name.clone(),
        });
    }
    for later in mapped.drain(i + 1..) {
        let name = later.name.clone();
        drop(later);
        remove(storage, &name, report, config.read_only)?;
    }
    sync_dir(storage, config.read_only)?;
    Ok(false)
}

/// A segment opened through its seal.
fn sealed_segment(m: &Mapped, sealed: &SealedSegment<'_>, config: &LedgerConfig) -> Arc<Segment> {
    let segment = Segment::new(
        m.name.clone(),
        m.header,
        Arc::clone(&m.mapping),
        config.index_interval as usize,
    );
    let seal = sealed.seal();
    for entry in seal.entries() {
        segment.index_record(
            m.header.base_seq.wrapping_add(entry.relative_seq),
            entry.offset as usize,
        );
    }
    segment.publish(
        seal.data_end as usize,
        Counts {
            count: seal.stats.count,
            first_seq: seal.stats.first_seq,
            last_seq: seal.stats.last_seq,
        },
    );
    segment.publish_sealed();
    Arc::new(segment)
}

/// A segment whose records were scanned (after recovery), sealed or not.
fn scanned_segment(
    m: &Mapped,
    config: &LedgerConfig,
    sealed: bool,
    limit: usize,
    seq_limit: u64,
) -> Result<Arc<Segment>, LedgerError> {
    let segment = Segment::new(
        m.name.clone(),
        m.header,
        Arc::clone(&m.mapping),
        config.index_interval as usize,
    );
    // SAFETY: nobody writes the mapping during open.
    let image = unsafe { m.mapping.slice(0, m.mapping.len()) };
    let mut scanner = Scanner::new(image).map_err(|e| bad(&m.name, crate::error_chain(&e)))?;
    let mut end = ringledger_core::segment::FILE_HEADER_LEN;
    let mut stats = ringledger_core::segment::SegmentStats::default();
    while let Some(record) = scanner.next() {
        // Only what recovery keeps (a read-only open has not cut an unfinished write).
        if record.end() > limit || record.seq > seq_limit {
            break;
        }
        segment.maybe_index(record.seq, record.offset);
        stats = *scanner.stats();
        end = record.end();
    }
    segment.publish(
        end,
        Counts {
            count: stats.count,
            first_seq: stats.first_seq,
            last_seq: stats.last_seq,
        },
    );
    if sealed {
        segment.publish_sealed();
    }
    Ok(Arc::new(segment))
}

/// The segment after the one based at `after` (the first if `None`), if its base is at most
/// `head`: a segment a live writer has put records in that a reader's view lacks. Mapped
/// read-only, with nothing read yet.
pub(super) fn next_segment(
    storage: &dyn Storage,
    config: &LedgerConfig,
    ledger_id: u64,
    after: Option<u64>,
    head: u64,
) -> Result<Option<Arc<Segment>>, LedgerError> {
    let wanted = |base: u64| after.is_none_or(|after| base > after) && base <= head;
    // A few times at most: a segment found under its temporary name (the newest, which the
    // writer has not named yet: see `naming`) may be renamed before it is mapped.
    for _ in 0..3 {
        let names = storage
            .list()
            .map_err(io_error("listing the ledger directory"))?;
        let named = names
            .iter()
            .filter_map(|name| Some((parse_file_name(name).ok()?, name)))
            .filter(|(base, _)| wanted(*base))
            .min();
        let mut vanished = false;
        let mut failed = None;
        let next = named.or_else(|| {
            names
                .iter()
                .filter(|name| name.ends_with(".tmp"))
                .filter_map(|name| match unnamed_base(storage, name, ledger_id) {
                    Unnamed::Base(base) => Some((base, name)),
                    Unnamed::Vanished => {
                        vanished = true;
                        None
                    }
                    Unnamed::Not => None,
                    Unnamed::Error(e) => {
                        failed.get_or_insert(e);
                        None
                    }
                })
                .filter(|(base, _)| wanted(*base))
                .min()
        });
        if let (None, Some(e)) = (&next, failed) {
            // It may have been the next segment: not knowing is an error, not an end.
            return Err(LedgerError::io("reading a temporary file of the ledger", e));
        }
        let Some((base, name)) = next else {
            if vanished {
                // Renamed (or removed) since the listing: look again.
                continue;
            }
            return Ok(None);
        };
        match map_segment(storage, name, base, ledger_id, false) {
            Ok(m) => {
                return Ok(Some(Arc::new(Segment::new(
                    m.name,
                    m.header,
                    m.mapping,
                    config.index_interval as usize,
                ))))
            }
            // Renamed meanwhile: it is there under its name now.
            Err(_) if name.ends_with(".tmp") => continue,
            Err(e) => return Err(e),
        }
    }
    // Not `Ok(None)`: that would let the head pass records the view does not have.
    Err(LedgerError::io(
        "finding the segment after the last one read",
        io::Error::other("it was renamed while being looked for, three times in a row"),
    ))
}

/// Seals a segment whose records are complete but whose seal was lost, durably.
fn reseal(m: &Mapped, interval: u32) -> Result<(), LedgerError> {
    // SAFETY: nobody else uses the mapping during open; the shared slice ends before the
    // mutable one starts.
    let appender = Appender::resume(unsafe { m.mapping.slice(0, m.mapping.len()) }, interval)
        .map_err(|e| bad(&m.name, crate::error_chain(&e)))?;
    let end = appender.end();
    // SAFETY: as above.
    let (records, tail) = unsafe { (m.mapping.slice(0, end), m.mapping.tail_mut(end)) };
    appender.seal_frame(records, tail).map_err(|e| {
        bad(
            &m.name,
            format!("sealing again: {}", crate::error_chain(&e)),
        )
    })?;
    m.mapping
        .region()
        .sync()
        .map_err(io_error(format!("syncing the new seal of {}", m.name)))?;
    Ok(())
}

fn remove(
    storage: &dyn Storage,
    name: &str,
    report: &mut RecoveryReport,
    ro: bool,
) -> Result<(), LedgerError> {
    if !ro {
        storage
            .remove(name)
            .map_err(io_error(format!("removing {name}")))?;
    }
    report.removed_segments.push(name.to_owned());
    Ok(())
}

fn sync_dir(storage: &dyn Storage, ro: bool) -> Result<(), LedgerError> {
    if ro {
        return Ok(());
    }
    storage
        .sync_dir()
        .map_err(io_error("syncing the ledger directory"))
}

/// The lock of a read-only open: none.
#[derive(Debug)]
struct NoLock;

impl LockGuard for NoLock {}
