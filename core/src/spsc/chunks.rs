//! Zero-copy access to many slots at once: the chunk API and `drain`.
//!
//! A chunk is a view of up to two contiguous runs of slots (the second one when the run wraps
//! around the end of the slot array). Writing a chunk and reading one each cost a single index
//! publication however many items they move, which is what makes bulk transfer cheap.

use core::fmt;
#[cfg(not(loom))]
use core::{mem::MaybeUninit, slice};

#[cfg(not(loom))]
use super::{ring_ranges, DropOnUnwind};
use super::{Consumer, Producer};

/// Fewer slots (or items) than asked for were available; `available` is how many there were.
///
/// ```
/// use ringledger_core::spsc::{self, TooFewSlots};
///
/// let (mut producer, mut consumer) = spsc::channel::<u8>(4);
/// producer.push_slice(&[1, 2]);
/// match consumer.read_chunk(3) {
///     Err(TooFewSlots { available }) => assert_eq!(available, 2),
///     Ok(_) => unreachable!("only two items were pushed"),
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooFewSlots {
    /// How many slots (for a write chunk) or items (for a read chunk) were available.
    pub available: usize,
}

impl fmt::Display for TooFewSlots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "only {} slots available", self.available)
    }
}

impl core::error::Error for TooFewSlots {}

impl<'a, T> Producer<'a, T> {
    /// Reserves `n` free slots to write in place, or reports how many are free.
    ///
    /// Nothing is visible to the consumer until the chunk is committed; dropping it uncommitted
    /// leaves the ring as it was.
    ///
    /// ```
    /// let (mut producer, mut consumer) = ringledger_core::spsc::channel::<u32>(8);
    /// let chunk = producer.write_chunk_uninit(3).unwrap();
    /// assert_eq!(chunk.fill_from_iter(10..), 3);
    /// assert_eq!(consumer.pop(), Some(10));
    /// assert_eq!(producer.write_chunk_uninit(7).unwrap_err().available, 6);
    /// ```
    pub fn write_chunk_uninit(
        &mut self,
        n: usize,
    ) -> Result<WriteChunkUninit<'_, 'a, T>, TooFewSlots> {
        let available = self.free_slots(n);
        if available < n {
            return Err(TooFewSlots { available });
        }
        Ok(WriteChunkUninit {
            producer: self,
            len: n,
        })
    }
}

/// Free slots reserved by [`Producer::write_chunk_uninit`], to be written and then committed.
///
/// ```
/// use ringledger_core::spsc;
///
/// let (mut producer, mut consumer) = spsc::channel::<u32>(8);
/// let chunk = producer.write_chunk_uninit(3).unwrap();
/// assert_eq!(chunk.fill_from_iter([7, 8, 9]), 3); // one index publication for all three
/// assert_eq!(consumer.pop(), Some(7));
/// ```
pub struct WriteChunkUninit<'p, 'a, T> {
    producer: &'p mut Producer<'a, T>,
    len: usize,
}

impl<T> WriteChunkUninit<'_, '_, T> {
    /// The number of reserved slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no slot was reserved.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The reserved slots as two runs; the second is empty unless the chunk wraps around.
    #[cfg(not(loom))]
    pub fn as_mut_slices(&mut self) -> (&mut [MaybeUninit<T>], &mut [MaybeUninit<T>]) {
        let p = &*self.producer;
        let ((start1, len1), (start2, len2)) = ring_ranges(p.capacity(), p.tail(), self.len);
        let base = p.ring.slots.as_ptr();
        // SAFETY: the runs are in bounds, disjoint, and free (reserved from the consumer's
        // published head); we hold the producer mutably, so nobody else writes them. Outside
        // loom a slot is a `repr(transparent)` wrapper of `MaybeUninit<T>`.
        unsafe {
            (
                slice::from_raw_parts_mut(base.add(start1).cast::<MaybeUninit<T>>(), len1),
                slice::from_raw_parts_mut(base.add(start2).cast::<MaybeUninit<T>>(), len2),
            )
        }
    }

    /// Publishes the first `n` reserved slots to the consumer.
    ///
    /// # Safety
    /// The first `n` slots (in the order of [`as_mut_slices`](Self::as_mut_slices)) have been
    /// initialized.
    ///
    /// # Panics
    /// If `n` is larger than the chunk.
    pub unsafe fn commit(self, n: usize) {
        assert!(
            n <= self.len,
            "cannot commit {n} of {} reserved slots",
            self.len
        );
        self.producer.publish(n);
    }

    /// Publishes all reserved slots to the consumer.
    ///
    /// # Safety
    /// Every reserved slot has been initialized.
    pub unsafe fn commit_all(self) {
        let n = self.len;
        self.producer.publish(n);
    }

    /// Writes items from `iter` into the reserved slots until either runs out, publishes them,
    /// and returns how many were written.
    ///
    /// If the iterator panics, the items written so far are published (not leaked).
    pub fn fill_from_iter<I: IntoIterator<Item = T>>(self, iter: I) -> usize {
        let len = self.len;
        // Publish whatever was written, also when `iter.next()` panics.
        let mut guard = PublishOnDrop {
            producer: self.producer,
            written: 0,
        };
        for item in iter.into_iter().take(len) {
            let position = guard.producer.tail().wrapping_add(guard.written);
            // SAFETY: one of the reserved free slots, written once.
            guard
                .producer
                .ring
                .slot(position)
                .with_mut(|p| unsafe { (*p).write(item) });
            guard.written += 1;
        }
        guard.written
    }
}

struct PublishOnDrop<'p, 'a, T> {
    producer: &'p mut Producer<'a, T>,
    written: usize,
}

impl<T> Drop for PublishOnDrop<'_, '_, T> {
    fn drop(&mut self) {
        self.producer.publish(self.written);
    }
}

impl<T> fmt::Debug for WriteChunkUninit<'_, '_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteChunkUninit")
            .field("len", &self.len)
            .finish()
    }
}

impl<'a, T> Consumer<'a, T> {
    /// Gives access to the `n` items at the front of the ring in place, or reports how many
    /// there are.
    ///
    /// The items stay in the ring until the chunk is committed.
    ///
    /// ```
    /// let (mut producer, mut consumer) = ringledger_core::spsc::channel::<u32>(4);
    /// producer.push_slice(&[1, 2, 3]);
    /// let chunk = consumer.read_chunk(2).unwrap();
    /// let (first, second) = chunk.as_slices();
    /// assert_eq!([first, second].concat(), [1, 2]);
    /// chunk.commit_all();
    /// assert_eq!(consumer.pop(), Some(3));
    /// ```
    pub fn read_chunk(&mut self, n: usize) -> Result<ReadChunk<'_, 'a, T>, TooFewSlots> {
        let available = self.ready_items(n);
        if available < n {
            return Err(TooFewSlots { available });
        }
        Ok(ReadChunk {
            consumer: self,
            len: n,
        })
    }

    /// An iterator that pops items until the ring is empty.
    ///
    /// Each item is released to the producer as it is taken; dropping the iterator early leaves
    /// the remaining items in the ring.
    ///
    /// ```
    /// let (mut producer, mut consumer) = ringledger_core::spsc::channel::<u32>(4);
    /// producer.push_slice(&[1, 2, 3]);
    /// assert_eq!(consumer.drain().sum::<u32>(), 6);
    /// assert!(consumer.is_empty());
    /// ```
    pub fn drain(&mut self) -> Drain<'_, 'a, T> {
        Drain { consumer: self }
    }
}

/// Items at the front of the ring, readable in place, from [`Consumer::read_chunk`].
///
/// ```
/// use ringledger_core::spsc;
///
/// let (mut producer, mut consumer) = spsc::channel::<u32>(4);
/// producer.push_slice(&[1, 2, 3]);
/// let chunk = consumer.read_chunk(2).unwrap();
/// let (first, second) = chunk.as_slices();
/// assert_eq!([first, second].concat(), [1, 2]);
/// chunk.commit_all(); // releases both slots at once
/// assert_eq!(consumer.pop(), Some(3));
/// ```
pub struct ReadChunk<'c, 'a, T> {
    consumer: &'c mut Consumer<'a, T>,
    len: usize,
}

impl<T> ReadChunk<'_, '_, T> {
    /// The number of items in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the chunk holds no item.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[cfg(not(loom))]
    fn runs(&self) -> ((usize, usize), (usize, usize)) {
        ring_ranges(self.consumer.capacity(), self.consumer.head(), self.len)
    }

    /// The items as two runs; the second is empty unless the chunk wraps around.
    #[cfg(not(loom))]
    pub fn as_slices(&self) -> (&[T], &[T]) {
        let ((start1, len1), (start2, len2)) = self.runs();
        let base = self.consumer.ring.slots.as_ptr();
        // SAFETY: the runs are in bounds and hold items the producer published (acquire load of
        // its tail); it will not touch them before we release them. Outside loom a slot is a
        // `repr(transparent)` wrapper of `T`.
        unsafe {
            (
                slice::from_raw_parts(base.add(start1).cast::<T>(), len1),
                slice::from_raw_parts(base.add(start2).cast::<T>(), len2),
            )
        }
    }

    /// The items as two mutable runs; the second is empty unless the chunk wraps around.
    #[cfg(not(loom))]
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        let ((start1, len1), (start2, len2)) = self.runs();
        let base = self.consumer.ring.slots.as_ptr();
        // SAFETY: as in `as_slices`, and `&mut self` makes the access exclusive.
        unsafe {
            (
                slice::from_raw_parts_mut(base.add(start1).cast::<T>(), len1),
                slice::from_raw_parts_mut(base.add(start2).cast::<T>(), len2),
            )
        }
    }

    /// Drops the first `n` items of the chunk and releases their slots to the producer.
    ///
    /// The slots are released even if an item's `Drop` panics, and no item is dropped twice.
    ///
    /// # Panics
    /// If `n` is larger than the chunk.
    pub fn commit(self, n: usize) {
        assert!(n <= self.len, "cannot commit {n} of {} items", self.len);
        // Release the slots last, after every drop, including on unwind.
        let release = ReleaseOnDrop {
            consumer: self.consumer,
            count: n,
        };
        if !core::mem::needs_drop::<T>() {
            return;
        }
        #[cfg(not(loom))]
        {
            let c = &*release.consumer;
            let ((start1, len1), (start2, len2)) = ring_ranges(c.capacity(), c.head(), n);
            let base = c.ring.slots.as_ptr();
            // SAFETY: in bounds, initialized, ours until released, dropped only here.
            let (run1, run2) = unsafe {
                (
                    core::ptr::slice_from_raw_parts_mut(base.add(start1).cast::<T>(), len1),
                    core::ptr::slice_from_raw_parts_mut(base.add(start2).cast::<T>(), len2),
                )
            };
            let _second = DropOnUnwind(run2);
            // SAFETY: see above; `_second` covers the other, disjoint run.
            unsafe { core::ptr::drop_in_place(run1) };
        }
        #[cfg(loom)]
        for i in 0..n {
            let position = release.consumer.head().wrapping_add(i);
            // SAFETY: initialized and ours until released.
            release
                .consumer
                .ring
                .slot(position)
                .with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }

    /// Drops all items of the chunk and releases their slots to the producer.
    pub fn commit_all(self) {
        let n = self.len;
        self.commit(n);
    }
}

struct ReleaseOnDrop<'c, 'a, T> {
    consumer: &'c mut Consumer<'a, T>,
    count: usize,
}

impl<T> Drop for ReleaseOnDrop<'_, '_, T> {
    fn drop(&mut self) {
        self.consumer.release(self.count);
    }
}

impl<T> fmt::Debug for ReadChunk<'_, '_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadChunk").field("len", &self.len).finish()
    }
}

impl<'c, 'a, T> IntoIterator for ReadChunk<'c, 'a, T> {
    type Item = T;
    type IntoIter = ReadChunkIntoIter<'c, 'a, T>;

    /// Moves the chunk's items out one by one, releasing each slot as its item is taken.
    fn into_iter(self) -> Self::IntoIter {
        ReadChunkIntoIter {
            consumer: self.consumer,
            remaining: self.len,
        }
    }
}

/// The items of a [`ReadChunk`], moved out one by one; items not taken stay in the ring.
///
/// ```
/// use ringledger_core::spsc;
///
/// let (mut producer, mut consumer) = spsc::channel::<String>(4);
/// producer.push("a".into()).unwrap();
/// producer.push("b".into()).unwrap();
/// let mut items = consumer.read_chunk(2).unwrap().into_iter();
/// assert_eq!(items.next().as_deref(), Some("a"));
/// drop(items); // "b" was not taken: it stays in the ring
/// assert_eq!(consumer.pop().as_deref(), Some("b"));
/// ```
#[must_use = "items not taken stay in the ring"]
pub struct ReadChunkIntoIter<'c, 'a, T> {
    consumer: &'c mut Consumer<'a, T>,
    remaining: usize,
}

impl<T> fmt::Debug for ReadChunkIntoIter<'_, '_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadChunkIntoIter")
            .field("consumer", &self.consumer)
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl<T> Iterator for ReadChunkIntoIter<'_, '_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Published (the chunk counted it), so this pops it without rereading the tail.
        self.consumer.pop()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for ReadChunkIntoIter<'_, '_, T> {}

/// Pops items until the ring is empty; from [`Consumer::drain`].
///
/// ```
/// use ringledger_core::spsc;
///
/// let (mut producer, mut consumer) = spsc::channel::<u8>(4);
/// producer.push_slice(&[1, 2]);
/// assert_eq!(consumer.drain().collect::<Vec<_>>(), [1, 2]);
/// ```
#[must_use = "a drain pops nothing unless iterated"]
pub struct Drain<'c, 'a, T> {
    consumer: &'c mut Consumer<'a, T>,
}

impl<T> fmt::Debug for Drain<'_, '_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("consumer", &self.consumer)
            .finish()
    }
}

impl<T> Iterator for Drain<'_, '_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        self.consumer.pop()
    }
}
