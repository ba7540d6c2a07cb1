//! [`TagSet`]: the tags a stream may carry and the tags a cursor wants.

use std::fmt;

/// Tags below this are kept in a bitmap: the test of the hot path is one shift and a mask.
const BITMAP_TAGS: u32 = 256;

/// A set of entry tags: what an [`EventStream`](super::EventStream) may carry, what a
/// [`Cursor`](super::Cursor) wants, what a [`Handler`](super::Handler) handles.
///
/// Either every tag ([`all`](Self::all)) or a finite set. Membership is a bitmap test for
/// tags below 256 and a binary search above, so a cursor can decide on an entry from its frame
/// alone.
///
/// ```
/// use ringledger::stream::TagSet;
///
/// let wanted = TagSet::of([1, 7, 1000]);
/// assert!(wanted.contains(7) && wanted.contains(1000) && !wanted.contains(2));
/// let carried = TagSet::of([1, 2, 3]);
/// assert_eq!(carried.intersection(&wanted), TagSet::of([1]));
/// assert!(TagSet::all().contains(u32::MAX));
/// assert!(TagSet::of([]).is_empty());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TagSet {
    repr: Repr,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    All,
    Finite {
        /// Bit `t` set: tag `t` (< 256) is in the set.
        low: [u64; 4],
        /// Tags of 256 and above, sorted, without duplicates.
        high: Vec<u32>,
    },
}

impl TagSet {
    /// The set of every tag: a filter that lets everything through.
    ///
    /// ```
    /// use ringledger::ledger::Entry;
    /// use ringledger::stream::{EventStream, MemoryStream, TagSet};
    ///
    /// let stream = MemoryStream::new(10, TagSet::all()); // carries any tag
    /// stream.append(&[Entry::new(1, "a").with_tag(u32::MAX)])?;
    /// let mut cursor = stream.open(0, TagSet::all())?; // wants any tag
    /// assert_eq!(cursor.try_next()?.map(|e| e.tag), Some(u32::MAX));
    /// assert!(TagSet::all().is_all() && TagSet::all().to_vec().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn all() -> Self {
        Self { repr: Repr::All }
    }

    /// The empty set. As a filter it is rejected ([`StreamError::EmptyFilter`]).
    ///
    /// [`StreamError::EmptyFilter`]: super::StreamError::EmptyFilter
    ///
    /// ```
    /// use ringledger::stream::{EventStream, MemoryStream, StreamError, TagSet};
    ///
    /// let stream = MemoryStream::new(10, TagSet::all());
    /// let mut wanted = TagSet::empty();
    /// assert!(matches!(stream.open(0, wanted.clone()), Err(StreamError::EmptyFilter)));
    /// wanted.insert(3); // built up from the handlers' tags, say
    /// assert!(stream.open(0, wanted).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn empty() -> Self {
        Self {
            repr: Repr::Finite {
                low: [0; 4],
                high: Vec::new(),
            },
        }
    }

    /// The set of these tags.
    ///
    /// ```
    /// use ringledger::stream::TagSet;
    ///
    /// let tags = TagSet::of([300, 2, 2, 7]);
    /// assert_eq!(tags.to_vec(), Some(vec![2, 7, 300])); // sorted, without duplicates
    /// assert!(tags.contains(300) && !tags.contains(3));
    /// ```
    #[must_use]
    pub fn of(tags: impl IntoIterator<Item = u32>) -> Self {
        let mut set = Self::empty();
        for tag in tags {
            set.insert(tag);
        }
        set
    }

    /// Adds `tag` (nothing changes for [`all`](Self::all)).
    pub fn insert(&mut self, tag: u32) {
        if let Repr::Finite { low, high } = &mut self.repr {
            if tag < BITMAP_TAGS {
                low[(tag / 64) as usize] |= 1 << (tag % 64);
            } else if let Err(at) = high.binary_search(&tag) {
                high.insert(at, tag);
            }
        }
    }

    /// Whether `tag` is in the set.
    #[inline]
    #[must_use]
    pub fn contains(&self, tag: u32) -> bool {
        match &self.repr {
            Repr::All => true,
            Repr::Finite { low, high } => {
                if tag < BITMAP_TAGS {
                    low[(tag / 64) as usize] & (1 << (tag % 64)) != 0
                } else {
                    high.binary_search(&tag).is_ok()
                }
            }
        }
    }

    /// Whether this is the set of every tag.
    #[must_use]
    pub fn is_all(&self) -> bool {
        matches!(self.repr, Repr::All)
    }

    /// Whether the set holds no tag.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::All => false,
            Repr::Finite { low, high } => low.iter().all(|w| *w == 0) && high.is_empty(),
        }
    }

    /// The tags in both sets.
    #[must_use]
    pub fn intersection(&self, other: &TagSet) -> TagSet {
        match (&self.repr, &other.repr) {
            (Repr::All, _) => other.clone(),
            (_, Repr::All) => self.clone(),
            (Repr::Finite { low: a, high: ha }, Repr::Finite { low: b, high: hb }) => TagSet {
                repr: Repr::Finite {
                    low: [a[0] & b[0], a[1] & b[1], a[2] & b[2], a[3] & b[3]],
                    high: ha
                        .iter()
                        .copied()
                        .filter(|t| hb.binary_search(t).is_ok())
                        .collect(),
                },
            },
        }
    }

    /// Whether every tag of `other` is in this set.
    #[must_use]
    pub fn is_superset(&self, other: &TagSet) -> bool {
        match (&self.repr, &other.repr) {
            (Repr::All, _) => true,
            (_, Repr::All) => false,
            (Repr::Finite { .. }, Repr::Finite { .. }) => self.intersection(other) == *other,
        }
    }

    /// The tags in ascending order; `None` for [`all`](Self::all).
    #[must_use]
    pub fn to_vec(&self) -> Option<Vec<u32>> {
        match &self.repr {
            Repr::All => None,
            Repr::Finite { low, high } => {
                let mut tags: Vec<u32> = (0..BITMAP_TAGS)
                    .filter(|t| low[(t / 64) as usize] & (1 << (t % 64)) != 0)
                    .collect();
                tags.extend_from_slice(high);
                Some(tags)
            }
        }
    }
}

impl Default for TagSet {
    /// The empty set.
    fn default() -> Self {
        Self::empty()
    }
}

impl FromIterator<u32> for TagSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        Self::of(iter)
    }
}

impl fmt::Debug for TagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_vec() {
            None => f.write_str("TagSet(all)"),
            Some(tags) => f.debug_set().entries(tags).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_low_and_high() {
        let mut set = TagSet::of([0, 63, 64, 255, 256, u32::MAX]);
        set.insert(256); // duplicate
        for tag in [0, 63, 64, 255, 256, u32::MAX] {
            assert!(set.contains(tag), "{tag}");
        }
        for tag in [1, 62, 65, 254, 257, u32::MAX - 1] {
            assert!(!set.contains(tag), "{tag}");
        }
        assert_eq!(set.to_vec().unwrap(), [0, 63, 64, 255, 256, u32::MAX]);
    }

    #[test]
    fn intersection_and_superset() {
        let a = TagSet::of([1, 2, 300, 400]);
        let b = TagSet::of([2, 3, 400]);
        assert_eq!(a.intersection(&b), TagSet::of([2, 400]));
        assert_eq!(TagSet::all().intersection(&b), b);
        assert_eq!(a.intersection(&TagSet::all()), a);
        assert!(a.intersection(&TagSet::of([9])).is_empty());
        assert!(a.is_superset(&TagSet::of([1, 400])));
        assert!(!a.is_superset(&b));
        assert!(TagSet::all().is_superset(&a) && !a.is_superset(&TagSet::all()));
        assert!(!TagSet::all().is_empty() && TagSet::all().to_vec().is_none());
        assert_eq!(format!("{:?}", TagSet::of([2, 1])), "{1, 2}");
    }
}
