//! The recovery rule for the last segment of a ledger.
//!
//! The rule (also in `core/FORMAT.md`):
//!
//! 1. Scan the segment from its first frame.
//! 2. The valid frames before the first invalid byte are the segment's content; appends
//!    continue right after the last one, at offset `E`.
//! 3. A torn tail (an interrupted append) and a corrupt frame are both cut at `E`: every
//!    non-zero byte from `E` on is zeroed, the footer included, and the caller syncs the file
//!    before accepting writes. After a power loss, pages the writer had not synced may come
//!    back in any order, so nothing after the first invalid frame can be trusted. The
//!    difference is what the caller reports: a torn tail is expected after a crash, a corrupt
//!    frame is logged as possible damage to synced data.
//!    A write of several records is atomic: when the last valid record still says that more
//!    of its write follow ([`FLAG_CONTINUES`](super::FLAG_CONTINUES)), `E` moves back to the
//!    end of the last complete write, and the interrupted write counts as a torn tail.
//! 4. A sealed segment that scans cleanly is left as it is (the ledger starts a new segment).
//!    When the seal matches the records but non-zero bytes follow it (in the gap or a footer
//!    that does not point at it), `E` is the seal's end: the bytes from there on are zeroed,
//!    the footer included, and the segment stays sealed (a scan accepts a zero footer).
//!
//! Sealed segments other than the last are not recovered: they are validated through their
//! seal ([`SealedSegment::open`](super::SealedSegment::open)), and damage there is an error for
//! the caller, never silently cut.
//!
//! Recovery is idempotent: running it again on its own output changes nothing.

use core::ops::Range;

use super::header::{HeaderError, FILE_HEADER_LEN};
use super::last_non_zero;
use super::scan::{CorruptReason, ScanEnd, Scanner, SegmentStats};

/// What recovery found after the valid frames.
///
/// ```
/// use ringledger_core::segment::{recover, CorruptReason, Damage, FileHeader, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// let first_end = writer.append(1, 0, 0, b"one").unwrap();
/// writer.append(2, 0, 0, b"two").unwrap();
/// writer.append(3, 0, 0, b"three").unwrap();
/// image[first_end + 40] ^= 1; // a flipped bit in the second payload, a frame after it
///
/// let recovered = recover(&mut image).unwrap();
/// let report = match recovered.damage {
///     None => "clean",
///     Some(Damage::TornTail) => "info: an interrupted append, expected after a crash",
///     Some(Damage::Corrupt(_)) => "warn: possible damage to synced data",
/// };
/// assert!(report.starts_with("warn"));
/// assert_eq!(recovered.damage, Some(Damage::Corrupt(CorruptReason::PayloadChecksum)));
/// assert_eq!(recovered.stats.count, 1); // what follows the damage is cut
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// An interrupted append.
    TornTail,
    /// An invalid frame that an interrupted append does not explain.
    Corrupt(CorruptReason),
}

/// The outcome of [`recover`].
///
/// ```
/// use ringledger_core::segment::{recover, FileHeader, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// let end = writer.append(1, 0, 0, b"synced").unwrap();
///
/// let recovered = recover(&mut image).unwrap(); // a clean segment: nothing to do
/// assert_eq!((recovered.end, recovered.stats.last_seq), (end, 1));
/// assert!(!recovered.sealed && recovered.damage.is_none());
/// assert!(recovered.zeroed.is_empty(), "nothing to sync");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// End of the valid frames: where appends continue (unless `sealed`).
    pub end: usize,
    /// The valid records.
    pub stats: SegmentStats,
    /// Whether the segment ends with a valid seal.
    pub sealed: bool,
    /// What was cut, if anything.
    pub damage: Option<Damage>,
    /// The bytes that were zeroed (empty when nothing was): the caller must sync them.
    pub zeroed: Range<usize>,
}

/// Applies the recovery rule to the last segment's image, zeroing whatever follows the valid
/// frames. Fails only when the file header itself is invalid.
///
/// ```
/// use ringledger_core::segment::{recover, FileHeader, Writer};
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 4096, created_ns: 0 };
/// let mut image = vec![0u8; 4096];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// writer.append(1, 0, 0, b"durable").unwrap();
/// let end = writer.end();
/// writer.append(2, 0, 0, b"half-written").unwrap();
/// image[end + 30..end + 40].fill(0); // a crash tore the second frame
///
/// let recovered = recover(&mut image).unwrap();
/// assert_eq!((recovered.end, recovered.stats.count), (end, 1));
/// assert!(recovered.damage.is_some());
/// assert!(image[end..].iter().all(|&b| b == 0), "what follows is zeroed");
/// ```
pub fn recover(image: &mut [u8]) -> Result<Recovered, HeaderError> {
    let plan = recovery_plan(image)?;
    image[plan.zeroed.clone()].fill(0);
    Ok(plan)
}

/// What [`recover`] would do to `image`, without changing it: `zeroed` is the range it would
/// zero. A reader that must not write (a read-only inspection) uses this, and trusts the
/// records below `end`.
///
/// ```
/// use ringledger_core::segment::{recovery_plan, Damage, FileHeader, Writer};
///
/// let header = FileHeader { base_seq: 1, ledger_id: 7, salt: 0xFEED, capacity: 1024, created_ns: 0 };
/// let mut image = vec![0u8; 1024];
/// let mut writer = Writer::create(&mut image, &header, 0).unwrap();
/// let end = writer.append(1, 0, 0, b"kept").unwrap();
/// writer.append(2, 0, 0, b"torn").unwrap();
/// image[end + 40] ^= 1; // the last frame's payload is damaged: an interrupted append
///
/// let before = image.clone();
/// let plan = recovery_plan(&image).unwrap();
/// assert_eq!(image, before, "a plan changes nothing");
/// assert_eq!((plan.end, plan.damage), (end, Some(Damage::TornTail)));
/// assert_eq!(plan.zeroed.start, end); // what `recover` would zero
/// ```
pub fn recovery_plan(image: &[u8]) -> Result<Recovered, HeaderError> {
    let (end, stats, sealed, damage, tail_end) = {
        let mut scanner = Scanner::new(image)?;
        // The end and the records of the last complete write: a trailing group of records whose
        // last one continues is an interrupted write, and goes.
        let mut complete = (FILE_HEADER_LEN, *scanner.stats());
        let mut open_write = false;
        while let Some(record) = scanner.next() {
            open_write = record.continues;
            if !record.continues {
                complete = (record.end(), *scanner.stats());
            }
        }
        let stats = *scanner.stats();
        let tail_end =
            usize::try_from(scanner.header().capacity).map_or(image.len(), |c| c.min(image.len()));
        let outcome = match scanner.end() {
            Some(&ScanEnd::CleanEnd { offset, seal }) => {
                (offset, stats, seal.is_some(), None, tail_end)
            }
            Some(&ScanEnd::TornTail { offset }) => {
                (offset, stats, false, Some(Damage::TornTail), tail_end)
            }
            Some(&ScanEnd::Corrupt { offset, reason }) => match scanner.seal_end() {
                // A valid seal followed by damage (a non-zero gap, a bad footer): the records
                // and the seal stand, the segment stays sealed, only what follows is cut.
                Some(seal_end) => (
                    seal_end,
                    stats,
                    true,
                    Some(Damage::Corrupt(reason)),
                    tail_end,
                ),
                None => (
                    offset,
                    stats,
                    false,
                    Some(Damage::Corrupt(reason)),
                    tail_end,
                ),
            },
            None => (image.len(), stats, false, None, tail_end),
        };
        match outcome {
            // A valid seal never follows an open write (the writer seals between writes); an
            // open write before any other end is cut back to the last complete one.
            (_, _, false, damage, tail_end) if open_write => (
                complete.0,
                complete.1,
                false,
                damage.or(Some(Damage::TornTail)),
                tail_end,
            ),
            outcome => outcome,
        }
    };
    let mut zeroed = end..end;
    if damage.is_some() {
        // Zero up to the last non-zero byte only, so a mostly empty segment is not rewritten.
        if let Some(last) = last_non_zero(&image[end..tail_end]) {
            zeroed = end..end + last + 1;
        }
    }
    Ok(Recovered {
        end,
        stats,
        sealed,
        damage,
        zeroed,
    })
}
