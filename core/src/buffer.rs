//! The [`Buffer`] trait: Ensign's event buffer, made generic and non-blocking.
//!
//! Ensign's `Buffer` was a FIFO of events with `Write` and `Read` that fail when the buffer is
//! full or empty. Here it is generic over the item type, hands a rejected item back instead of
//! dropping it, and never blocks: the endpoints of [`spsc`](crate::spsc) and
//! [`mpsc`](crate::mpsc) implement it, and `ringledger::blocking` adds waiting with deadlines
//! and closing on top.

use core::fmt;

/// The buffer was full; the item that did not fit is handed back.
///
/// ```
/// use ringledger_core::{spsc, Full};
///
/// let (mut producer, _consumer) = spsc::channel::<String>(1);
/// producer.push("kept".into()).unwrap();
/// let Full(back) = producer.push("handed back".into()).unwrap_err();
/// assert_eq!(back, "handed back");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> Full<T> {
    /// Returns the item that could not be written.
    #[inline]
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot write: buffer is full")
    }
}

impl<T> core::error::Error for Full<T> {}

/// The buffer was empty.
///
/// ```
/// use ringledger_core::{spsc, BufferRead, Empty};
///
/// let (_producer, mut consumer) = spsc::channel::<u8>(2);
/// assert_eq!(consumer.try_read(), Err(Empty));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Empty;

impl fmt::Display for Empty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot read: buffer is empty")
    }
}

impl core::error::Error for Empty {}

/// A FIFO buffer: write to the back, read from the front, never blocking.
///
/// A ring's endpoints each implement the half they can do: producers [`BufferWrite`], consumers
/// [`BufferRead`]. `Buffer` is both halves together, as Ensign used it (one owner writing and
/// reading): it is implemented for anything that has both, such as a `(Producer, Consumer)` pair.
///
/// ```
/// use ringledger_core::{spsc, Buffer, BufferRead, BufferWrite, Empty, Full};
///
/// fn roundtrip(buffer: &mut impl Buffer<u32>) {
///     buffer.try_write(1).unwrap();
///     assert_eq!(buffer.try_write(2), Err(Full(2)));
///     assert_eq!(buffer.try_read(), Ok(1));
///     assert_eq!(buffer.try_read(), Err(Empty));
/// }
///
/// let mut ring = spsc::Ring::<u32, 1>::new();
/// let mut pair = ring.split();
/// roundtrip(&mut pair);
/// ```
pub trait Buffer<T>: BufferWrite<T> + BufferRead<T> {}

impl<T, B: BufferWrite<T> + BufferRead<T> + ?Sized> Buffer<T> for B {}

/// The writing half of a [`Buffer`].
///
/// Code that only fills a buffer takes `impl BufferWrite`, so either ring's producer fits:
///
/// ```
/// use ringledger_core::{mpsc, spsc, BufferWrite};
///
/// fn fill(out: &mut impl BufferWrite<u8>, items: &[u8]) -> usize {
///     items.iter().take_while(|&&item| out.try_write(item).is_ok()).count()
/// }
///
/// let (mut spsc_producer, _c) = spsc::channel(2);
/// assert_eq!(fill(&mut spsc_producer, &[1, 2, 3]), 2);
/// let (mut mpsc_producer, _c) = mpsc::channel(4);
/// assert_eq!(fill(&mut mpsc_producer, &[1, 2, 3]), 3);
/// ```
pub trait BufferWrite<T> {
    /// Pushes `item` to the back, or hands it back in [`Full`] when there is no room.
    ///
    /// ```
    /// use ringledger_core::{spsc, BufferWrite, Full};
    ///
    /// let (mut producer, _consumer) = spsc::channel(1);
    /// assert_eq!(producer.try_write('a'), Ok(()));
    /// assert_eq!(producer.try_write('b'), Err(Full('b')));
    /// ```
    fn try_write(&mut self, item: T) -> Result<(), Full<T>>;
}

/// The reading half of a [`Buffer`].
///
/// Code that only empties a buffer takes `impl BufferRead`:
///
/// ```
/// use ringledger_core::{spsc, BufferRead};
///
/// fn sum(input: &mut impl BufferRead<u32>) -> u32 {
///     core::iter::from_fn(|| input.try_read().ok()).sum()
/// }
///
/// let (mut producer, mut consumer) = spsc::channel(4);
/// producer.push_slice(&[1, 2, 3]);
/// assert_eq!(sum(&mut consumer), 6);
/// ```
pub trait BufferRead<T> {
    /// Pops the item at the front, or reports [`Empty`].
    ///
    /// ```
    /// use ringledger_core::{spsc, BufferRead, Empty};
    ///
    /// let (mut producer, mut consumer) = spsc::channel(2);
    /// producer.push(7).unwrap();
    /// assert_eq!(consumer.try_read(), Ok(7));
    /// assert_eq!(consumer.try_read(), Err(Empty));
    /// ```
    fn try_read(&mut self) -> Result<T, Empty>;
}

impl<T, W: BufferWrite<T>, R> BufferWrite<T> for (W, R) {
    #[inline]
    fn try_write(&mut self, item: T) -> Result<(), Full<T>> {
        self.0.try_write(item)
    }
}

impl<T, W, R: BufferRead<T>> BufferRead<T> for (W, R) {
    #[inline]
    fn try_read(&mut self) -> Result<T, Empty> {
        self.1.try_read()
    }
}
