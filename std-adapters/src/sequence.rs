//! Sequence numbers over the system clock.
//!
//! Everything of [`ringledger_core::sequence`] is re-exported here; this module adds
//! [`generate`], quasar's `GenerateSequence`: one process-wide [`Generator`] fed with the
//! current unix second from [`SystemTime`]. The generator never goes backwards when the clock
//! does, and an ordinal overflow carries into the next second instead of repeating values.

use std::time::{SystemTime, UNIX_EPOCH};

pub use ringledger_core::sequence::*;

/// The process-wide generator behind [`generate`].
fn generator() -> &'static Generator {
    #[cfg(not(loom))]
    {
        static GENERATOR: Generator = Generator::new();
        &GENERATOR
    }
    // loom's atomics have no `const` constructor (and only work inside a model anyway).
    #[cfg(loom)]
    {
        static GENERATOR: std::sync::OnceLock<Generator> = std::sync::OnceLock::new();
        GENERATOR.get_or_init(Generator::new)
    }
}

/// Reserves `n` consecutive sequences (at least one) and returns the first.
///
/// The sequences are unique and increasing within the process: the first of every call is
/// greater than every sequence an earlier call returned, even if the system clock stepped back.
/// A clock before 1970 counts as second 0 and one past 2106 as the last second.
///
/// # Errors
///
/// [`GenerateError::Exhausted`] once the sequence space is used up (second `u32::MAX` reached).
///
/// # Examples
///
/// ```
/// let first = ringledger::generate(10).unwrap(); // first..first + 10 are ours
/// let next = ringledger::generate(1).unwrap();
/// assert!(next >= first + 10);
/// ```
pub fn generate(n: u32) -> Result<u64, GenerateError> {
    generator().next(unix_seconds(SystemTime::now()), n)
}

/// Seconds since the unix epoch, clamped to `u32`.
fn unix_seconds(now: SystemTime) -> u32 {
    now.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u32::try_from(since.as_secs()).unwrap_or(u32::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn generated_sequences_carry_the_current_second() {
        let before = unix_seconds(SystemTime::now());
        let seq = generate(1).unwrap();
        let (secs, ordinal) = split(seq);
        assert!(secs >= before);
        assert!(ordinal >= 1);
    }

    #[test]
    fn blocks_do_not_overlap() {
        let a = generate(5).unwrap();
        let b = generate(1).unwrap();
        assert!(b >= a + 5);
    }

    #[test]
    fn clock_clamping() {
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(42)), 42);
        assert_eq!(
            unix_seconds(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) + 9)),
            u32::MAX
        );
    }
}
