//! A lock-free source of unique, strictly increasing sequences.
//!
//! The core has no clock, so the caller passes the current unix second (`ringledger::generate`
//! does so from the system clock). The state is one 64-bit word, the last sequence handed out
//! (0 before the first), advanced by compare-and-swap; that is what makes it better than quasar's mutex-guarded pair:
//!
//! - it never goes backwards: a clock that steps back only means the ordinal keeps counting
//!   in the last second seen;
//! - an ordinal that would overflow carries into the next second instead of wrapping around to
//!   values already handed out;
//! - a request for `n = 0` sequences still reserves one, so every call returns a fresh value.
//!
//! Ordinal 0 is never handed out, as in quasar: the first sequence of a second has ordinal 1.

use super::{join, split};
use crate::sync::{AtomicU64, Ordering};

/// Hands out sequences: the unix second in the high half, an ordinal within it in the low half.
///
/// ```
/// use ringledger_core::sequence::{split, Generator};
///
/// static SEQUENCES: Generator = Generator::new();
///
/// let a = SEQUENCES.next(1_700_000_000, 3).unwrap(); // a, a + 1, a + 2 are ours
/// assert_eq!(split(a), (1_700_000_000, 1));
/// let b = SEQUENCES.next(1_699_999_990, 1).unwrap(); // the clock stepped back
/// assert_eq!(b, a + 3);
/// ```
#[derive(Debug)]
pub struct Generator {
    /// The last sequence handed out; 0 before the first (0 is never handed out).
    last: AtomicU64,
}

/// The generator cannot hand out more sequences: the second would pass `u32::MAX` (the year
/// 2106), which only a wrong clock or about four billion sequences a second for decades reach.
///
/// ```
/// use ringledger_core::sequence::{join, GenerateError, Generator};
///
/// let generator = Generator::starting_after(join(u32::MAX, u32::MAX)); // the very last one
/// match generator.next(1_700_000_000, 1) {
///     Ok(seq) => unreachable!("{seq} cannot exist"),
///     Err(GenerateError::Exhausted) => {} // stop writing: the clock is wrong
///     Err(other) => panic!("{other}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// No sequence after the last one handed out fits in 64 bits.
    #[error("sequence space exhausted: the next second would pass the year 2106")]
    Exhausted,
}

impl Generator {
    /// A generator that has handed out nothing yet.
    ///
    /// ```
    /// use ringledger_core::sequence::Generator;
    ///
    /// static SEQUENCES: Generator = Generator::new(); // `const`: no lazy initialisation
    /// assert_eq!(SEQUENCES.last(), 0);
    /// assert!(SEQUENCES.next(1_700_000_000, 1).unwrap() > 0);
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
        }
    }

    /// A generator that has handed out nothing yet.
    #[cfg(loom)]
    pub fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
        }
    }

    /// A generator that continues after `last`, for example the head of a reopened ledger, so
    /// that a process restarted under a clock that stepped back still never repeats a sequence.
    ///
    /// ```
    /// use ringledger_core::sequence::{join, Generator};
    ///
    /// let head = join(1_700_000_100, 7); // the last sequence the ledger holds
    /// let generator = Generator::starting_after(head);
    /// // The clock now says an earlier second; the sequences still go up.
    /// assert_eq!(generator.next(1_700_000_000, 1).unwrap(), head + 1);
    /// ```
    pub fn starting_after(last: u64) -> Self {
        Self {
            last: AtomicU64::new(last),
        }
    }

    /// Reserves `n` consecutive sequences (at least one) at second `now_secs` or later, and
    /// returns the first.
    ///
    /// The result is greater than every sequence returned before, whatever `now_secs` says.
    /// The block `first..first + n` never crosses a second boundary and never uses ordinal 0.
    ///
    /// ```
    /// use ringledger_core::sequence::{join, Generator};
    ///
    /// let generator = Generator::new();
    /// let first = generator.next(1_700_000_000, 3).unwrap(); // first, first + 1, first + 2
    /// assert_eq!(first, join(1_700_000_000, 1));
    /// assert_eq!(generator.last(), first + 2);
    /// assert_eq!(generator.next(1_700_000_000, 0).unwrap(), first + 3); // 0 still reserves one
    /// ```
    pub fn next(&self, now_secs: u32, n: u32) -> Result<u64, GenerateError> {
        let n = u64::from(n.max(1));
        let floor = join(now_secs, 1);
        let mut current = self.last.load(Ordering::Relaxed);
        loop {
            let after = current.checked_add(1).ok_or(GenerateError::Exhausted)?;
            let first = block_start(after.max(floor), n)?;
            let last = first + (n - 1); // `block_start` checked that the block fits in its second
            match self.last.compare_exchange_weak(
                current,
                last,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(first),
                Err(actual) => current = actual,
            }
        }
    }

    /// The last sequence handed out (0 if none): later calls return greater ones.
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }
}

impl Default for Generator {
    fn default() -> Self {
        Self::new()
    }
}

/// The first sequence at or after `candidate` that starts a block of `n` (1..=u32::MAX) within
/// one second and with no ordinal 0.
fn block_start(candidate: u64, n: u64) -> Result<u64, GenerateError> {
    let (secs, ordinal) = split(candidate);
    if ordinal != 0 && u64::from(ordinal) + n - 1 <= u64::from(u32::MAX) {
        return Ok(candidate);
    }
    // Ordinal 0, or the block would overflow the ordinal: carry into the next second.
    let next_secs = if ordinal == 0 {
        Some(secs)
    } else {
        secs.checked_add(1)
    };
    match next_secs {
        Some(secs) => Ok(join(secs, 1)),
        None => Err(GenerateError::Exhausted),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn new_second_starts_at_ordinal_one() {
        let g = Generator::new();
        assert_eq!(g.next(100, 1), Ok(join(100, 1)));
        assert_eq!(g.next(100, 2), Ok(join(100, 2)));
        assert_eq!(g.next(100, 1), Ok(join(100, 4)));
        assert_eq!(g.next(101, 1), Ok(join(101, 1)));
    }

    #[test]
    fn clock_stepping_back_never_goes_backwards() {
        let g = Generator::new();
        let a = g.next(200, 1).unwrap();
        let b = g.next(150, 1).unwrap();
        let c = g.next(0, 5).unwrap();
        assert!(a < b && b < c);
        assert_eq!(split(c), (200, 3));
    }

    #[test]
    fn ordinal_overflow_carries_into_the_next_second() {
        let g = Generator::starting_after(join(7, u32::MAX - 2));
        assert_eq!(g.next(7, 2), Ok(join(7, u32::MAX - 1)));
        // One ordinal left in second 7, but three are asked for: the block moves to second 8.
        assert_eq!(g.next(7, 3), Ok(join(8, 1)));
        assert_eq!(g.next(7, 1), Ok(join(8, 4)));
    }

    #[test]
    fn zero_still_reserves_one() {
        let g = Generator::new();
        let a = g.next(9, 0).unwrap();
        let b = g.next(9, 0).unwrap();
        assert_eq!(b, a + 1);
    }

    #[test]
    fn the_largest_block_fits_in_one_second() {
        let g = Generator::new();
        assert_eq!(g.next(3, u32::MAX), Ok(join(3, 1)));
        assert_eq!(g.next(3, 1), Ok(join(4, 1)));
    }

    #[test]
    fn exhaustion_is_an_error_not_a_repeat() {
        let g = Generator::starting_after(join(u32::MAX, u32::MAX - 1));
        assert_eq!(g.next(u32::MAX, 1), Ok(u64::MAX));
        assert_eq!(g.next(u32::MAX, 1), Err(GenerateError::Exhausted));
        assert_eq!(g.next(5, 1), Err(GenerateError::Exhausted));
    }

    #[cfg(feature = "std")]
    #[test]
    fn threads_get_disjoint_increasing_blocks() {
        extern crate std;
        use std::vec::Vec;

        static G: Generator = Generator::new();
        let per_thread = if cfg!(miri) { 20 } else { 10_000 };
        let handles: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..per_thread {
                        // A clock that jitters between two seconds.
                        let now = 1_000 + ((i + t) % 2) as u32;
                        let first = G.next(now, 2).unwrap();
                        got.push(first);
                    }
                    got
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            let got = h.join().unwrap();
            assert!(got.windows(2).all(|w| w[0] < w[1]), "per-thread order");
            all.extend(got);
        }
        all.sort_unstable();
        assert!(all.windows(2).all(|w| w[1] - w[0] >= 2), "blocks overlap");
    }
}
