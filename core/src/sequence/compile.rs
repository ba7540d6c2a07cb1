//! Compiling a consumer's mark table into the list of positions it persists.
//!
//! A consumer marks each delivered sequence done (`true`) or pending (`false`). What it stores
//! is quasar's compaction of that table: the first item means "everything up to here is done",
//! the rest are sequences done individually above it. A run of done sequences at the start
//! collapses to its last one; when the table starts with a pending sequence, a "fake positive"
//! one below it (`first - 1`) is put in front, so that the first item keeps its meaning.
//! On restart the consumer resumes at `list[0] + 1` and skips the other listed sequences.

/// Compiles a mark table, given in ascending sequence order, into the persisted positions.
///
/// `marks` must be sorted by sequence with no duplicates (a `BTreeMap<u64, bool>` iterated in
/// order is). Unsorted input gives a meaningless list but never panics. The fake positive below
/// sequence 0 would be `u64::MAX` in quasar (it wraps); here it saturates at 0, which never
/// names a real entry since ledger sequences are positive.
///
/// ```
/// use ringledger_core::sequence::compile;
///
/// let marks = [(1, true), (2, true), (3, false), (4, true), (5, true), (6, false), (7, true)];
/// assert!(compile(marks).eq([2, 4, 5, 7]));
/// let marks = [(2, false), (3, true), (4, false), (5, true)];
/// assert!(compile(marks).eq([1, 3, 5]));
/// ```
pub fn compile<I>(marks: I) -> Compiled<I::IntoIter>
where
    I: IntoIterator<Item = (u64, bool)>,
{
    Compiled {
        marks: marks.into_iter(),
        state: State::Start,
    }
}

/// [`compile`] into a vector.
#[cfg(feature = "alloc")]
pub fn compile_to_vec<I>(marks: I) -> alloc::vec::Vec<u64>
where
    I: IntoIterator<Item = (u64, bool)>,
{
    compile(marks).collect()
}

/// The iterator returned by [`compile`]: the persisted positions, in order.
///
/// ```
/// use ringledger_core::sequence::compile;
///
/// let mut positions = compile([(1, true), (2, false), (3, true)]);
/// assert_eq!(positions.next(), Some(1)); // everything up to 1 is done
/// assert_eq!(positions.next(), Some(3)); // 3 is done on its own; 2 is not
/// assert_eq!(positions.next(), None);
/// ```
#[derive(Debug, Clone)]
pub struct Compiled<I> {
    marks: I,
    state: State,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Nothing read yet.
    Start,
    /// A position decided but not yet yielded, then the remaining done marks.
    Pending(u64),
    /// Yielding the remaining done marks.
    Rest,
    /// Exhausted.
    Done,
}

impl<I: Iterator<Item = (u64, bool)>> Iterator for Compiled<I> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        match self.state {
            State::Start => {
                let Some((first, done)) = self.marks.next() else {
                    self.state = State::Done;
                    return None;
                };
                if done {
                    // A leading run of done marks collapses to its last one.
                    let mut last = first;
                    loop {
                        match self.marks.next() {
                            Some((seq, true)) => last = seq,
                            Some((_, false)) => {
                                self.state = State::Rest;
                                break;
                            }
                            None => {
                                self.state = State::Done;
                                break;
                            }
                        }
                    }
                    Some(last)
                } else {
                    // Pending first: the fake positive below it, if anything is done at all.
                    match self.marks.find(|&(_, done)| done) {
                        Some((seq, _)) => {
                            self.state = State::Pending(seq);
                            Some(first.saturating_sub(1))
                        }
                        None => {
                            self.state = State::Done;
                            None
                        }
                    }
                }
            }
            State::Pending(seq) => {
                self.state = State::Rest;
                Some(seq)
            }
            State::Rest => match self.marks.find(|&(_, done)| done) {
                Some((seq, _)) => Some(seq),
                None => {
                    self.state = State::Done;
                    None
                }
            },
            State::Done => None,
        }
    }
}

impl<I: Iterator<Item = (u64, bool)>> core::iter::FusedIterator for Compiled<I> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(marks: &[(u64, bool)], expected: &[u64]) {
        let mut got = [0u64; 16];
        let mut n = 0;
        for seq in compile(marks.iter().copied()) {
            got[n] = seq;
            n += 1;
        }
        assert_eq!(&got[..n], expected, "marks {marks:?}");
    }

    #[test]
    fn quasar_compile_vectors() {
        let (t, f) = (true, false);
        check(
            &[(1, t), (2, f), (3, t), (4, f), (5, t), (6, f), (7, t)],
            &[1, 3, 5, 7],
        );
        check(
            &[(1, t), (2, t), (3, f), (4, t), (5, t), (6, f), (7, t)],
            &[2, 4, 5, 7],
        );
        check(&[(2, f), (3, t), (4, f), (5, t)], &[1, 3, 5]);
        check(&[(1, f), (2, t), (3, f), (4, t)], &[0, 2, 4]);
        check(&[], &[]);
        check(&[(5, f)], &[]);
        check(&[(1, t), (2, t), (3, t)], &[3]);
        check(&[(1, t), (5, t), (9, f)], &[5]);
        check(&[(1, f), (2, t), (3, t)], &[0, 2, 3]);
        check(&[(3, t), (4, t), (5, f), (6, t)], &[4, 6]);
    }

    #[test]
    fn fake_positive_below_zero_saturates() {
        check(&[(0, false), (1, true)], &[0, 1]);
    }

    /// quasar's algorithm written out literally, to compare against on generated tables.
    fn literal(marks: &[(u64, bool)], out: &mut [u64; 16]) -> usize {
        let all: [u64; 16] = core::array::from_fn(|i| marks.get(i).map_or(0, |m| m.0));
        let mut all = &all[..marks.len()];
        let mut set_buf = [0u64; 16];
        let mut n = 0;
        for &(seq, done) in marks {
            if done {
                set_buf[n] = seq;
                n += 1;
            }
        }
        let mut set = &set_buf[..n];
        while set.len() >= 2 && set[0] == all[0] && set[1] == all[1] {
            set = &set[1..];
            all = &all[1..];
        }
        let mut len = 0;
        if !set.is_empty() && set[0] != all[0] {
            out[0] = all[0].saturating_sub(1);
            len = 1;
        }
        out[len..len + set.len()].copy_from_slice(set);
        len + set.len()
    }

    #[test]
    fn matches_the_literal_algorithm_on_every_small_table() {
        // Every done/pending pattern over up to 8 consecutive sequences starting at 10.
        for len in 0..=8u32 {
            for pattern in 0..(1u32 << len) {
                let mut marks = [(0u64, false); 8];
                for (i, mark) in marks.iter_mut().enumerate().take(len as usize) {
                    *mark = (10 + i as u64, pattern & (1 << i) != 0);
                }
                let marks = &marks[..len as usize];
                let mut expected = [0u64; 16];
                let n = literal(marks, &mut expected);
                check(marks, &expected[..n]);
            }
        }
    }
}
