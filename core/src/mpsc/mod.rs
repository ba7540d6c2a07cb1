//! A lock-free bounded multi-producer single-consumer ring.
//!
//! Each slot carries a *stamp* next to its item (Vyukov's bounded queue): producers claim a
//! position with one compare-and-swap on the shared tail, write the item, and publish it by
//! storing the stamp; the consumer sees an item is ready from the stamp in the same cache line
//! as the item, and frees the slot by storing the stamp again. The consumer never does a
//! read-modify-write, and its index is private to it, so popping moves no shared index line.
//!
//! A producer that stalls between claiming a slot and publishing it delays only the consumer
//! (which must take items in order); other producers keep pushing while there is room.
//!
//! # Closing
//!
//! [`Producer::close`] (or [`Consumer::close`]) sets a flag in the same word as the tail, so
//! that claiming a slot and seeing the ring closed are one compare-and-swap (as thingbuf
//! does): a push either claimed its slot before the close, and its item will be there for the
//! consumer, or fails with [`PushError::Closed`]. [`Consumer::is_finished`] says when every
//! item pushed before the close has been popped: a consumer that drains until then loses
//! nothing that a push reported as pushed. Positions run modulo 2^(`usize::BITS` − 1), the
//! low bit of the tail word being the flag.
//!
//! # Catching up
//!
//! A consumer that finds the oldest slot not ready after a run of pops (it caught up with
//! streaming producers) waits a moment, about a microsecond of spin hints, and
//! looks once more before it reports the ring empty: looking again at once keeps taking the
//! cache line a producer is filling (see [`spsc`](crate::spsc)'s *Catching up*). A consumer
//! taking items one at a time as they come never waits. Not on bare-metal targets.
//!
//! # A stalled producer
//!
//! A producer preempted between claiming its slot and writing it holds up the consumer, and
//! the ring fills up behind it: the other producers find their next slot still claimed, one
//! lap on. When they share its core (more producers than cores), reporting the ring full
//! makes a caller that retries spin away its time slice while the stalled producer waits for
//! the core: measured with two producers on one core, half the runs lost a 4 ms scheduler
//! tick that way. So a producer that finds its slot claimed and unwritten (not merely full)
//! waits for it once, a few spin hints and then a yield of its time slice (as crossbeam's
//! queues do), before it reports the ring full. Only with `std` (and not on ESP-IDF): on a
//! bare-metal target the producers are interrupts, which must never wait for the code they
//! interrupted.
//!
//! Like [`spsc`](crate::spsc), the ring lives inline in a [`Ring<T, N>`] (a `const fn new()`)
//! or on the heap through [`channel`] (feature `alloc`). On targets without compare-and-swap
//! (thumbv6m) it needs the `critical-section` or `portable-atomic-fallback` feature.
//!
//! # Examples
//!
//! ```
//! let (producer, mut consumer) = ringledger_core::mpsc::channel::<u64>(64);
//! let workers: Vec<_> = (0..4u64)
//!     .map(|w| {
//!         let producer = producer.clone();
//!         std::thread::spawn(move || {
//!             for i in 0..100 {
//!                 while producer.push(w * 1000 + i).is_err() {
//!                     std::hint::spin_loop();
//!                 }
//!             }
//!         })
//!     })
//!     .collect();
//! let mut received = 0;
//! while received < 400 {
//!     received += consumer.pop_many(usize::MAX, |_item| {});
//! }
//! for worker in workers {
//!     worker.join().unwrap();
//! }
//! ```
//!
//! A capacity below 2 or not a power of two does not compile:
//!
//! ```compile_fail
//! let ring = ringledger_core::mpsc::Ring::<u8, 1>::new();
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::buffer::{BufferRead, BufferWrite, Empty, Full};
use crate::sync::{atomic_usize, AtomicUsize, Ordering, UnsafeCell};

/// Pops in a row that make the consumer a streaming one (see [`Consumer::not_ready`]): a
/// cache line of 16-byte slots and more.
const STREAMING_RUN: usize = 4;

/// Spin hints a streaming consumer waits, having caught up, before it looks again: about a
/// microsecond on the project's machines, as long as [`spsc`](crate::spsc)'s wait. (With the
/// two threads 80-250 ns apart, one or two producers streamed at 58-60 M items/s with 32
/// hints, 71-76 M with 128 and 74-77 M with 256: `paired 6 mpsc_1p mpsc_2p`, builds
/// interleaved. The longer wait is what an item that arrives just after the consumer caught
/// up can be delayed by; 128 keeps it at the SPSC ring's.)
const CAUGHT_UP_PAUSES: u32 = if cfg!(loom) { 1 } else { 128 };

/// Whether a streaming consumer waits when it catches up: on hosts, where the producers run on
/// other cores. On a bare-metal target they are interrupts, which preempt the consumer anyway
/// (and the code stays small).
const WAIT_WHEN_CAUGHT_UP: bool = cfg!(not(target_os = "none"));

/// Whether a producer that finds its slot still claimed by a producer of the previous lap
/// (claimed, not yet written) waits for that one before it reports the ring full: where the
/// waiting can hand it the core (std, and loom's model of it). On a bare-metal target the
/// producers are interrupts, and one that waited for the code it interrupted would wait forever;
/// so are they on ESP-IDF, which has `std` but where an interrupt handler must not yield.
const WAIT_FOR_STALLED_PRODUCER: bool =
    cfg!(all(any(feature = "std", loom), not(target_os = "espidf")));

/// Spin hints a producer waits for a stalled one (see [`wait_for_producer`]) before it yields.
const STALLED_SPINS: u32 = if cfg!(loom) { 1 } else { 64 };

/// Waits for the stamp at `stamp` to move on from `claimed`: a few spin hints, then the
/// thread's time slice, which the scheduler can hand to the stalled producer if it was
/// preempted on this core. Returns either way; the caller looks at the slot again.
#[cold]
#[inline(never)]
fn wait_for_producer(stamp: &AtomicUsize, claimed: usize) {
    #[cfg(all(test, not(loom)))]
    stalled_producer_tests::WAITS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    for _ in 0..STALLED_SPINS {
        crate::sync::spin_hint();
        if stamp.load(Ordering::Relaxed) != claimed {
            return;
        }
    }
    crate::sync::yield_now();
}

/// The tail word's flag: the ring is closed.
const CLOSED: usize = 1;
/// Positions (and stamps) run modulo 2^(`usize::BITS` − 1): the tail word is `position << 1`
/// plus the flag.
const POSITIONS: usize = usize::MAX >> 1;

/// `position + n`, modulo the positions.
#[inline(always)]
const fn advance(position: usize, n: usize) -> usize {
    position.wrapping_add(n) & POSITIONS
}

/// How far `stamp` is ahead of `position` (negative: behind), modulo the positions.
#[inline(always)]
const fn lag(stamp: usize, position: usize) -> isize {
    ((stamp.wrapping_sub(position) << 1) as isize) >> 1
}

/// Why [`Producer::try_push`] handed an item back.
///
/// ```
/// use ringledger_core::mpsc::{self, PushError};
///
/// let (producer, _consumer) = mpsc::channel(2);
/// for item in 1..=3 {
///     match producer.try_push(item) {
///         Ok(()) => {}
///         Err(PushError::Full(back)) => assert_eq!(back, 3), // retry later, or drop it
///         Err(PushError::Closed(_)) => unreachable!("nobody closed the ring"),
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PushError<T> {
    /// Every slot holds an item the consumer has not taken yet.
    Full(T),
    /// The ring was closed.
    Closed(T),
}

impl<T> PushError<T> {
    /// The item that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(item) | PushError::Closed(item) => item,
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "ring is full",
            PushError::Closed(_) => "ring is closed",
        })
    }
}

/// One slot: the stamp says whose turn it is, the item is valid when it is the consumer's.
///
/// For the position `p` mapping to this slot, the stamp is `p` when the slot is free for the
/// producer of `p`, and `p + 1` once that producer has written it. The consumer then sets it to
/// `p + capacity`, the free stamp of the next lap.
struct Slot<T> {
    stamp: AtomicUsize,
    item: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    #[cfg(not(loom))]
    const fn new(position: usize) -> Self {
        Self {
            stamp: atomic_usize(position),
            item: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    #[cfg(loom)]
    fn new(position: usize) -> Self {
        Self {
            stamp: atomic_usize(position),
            item: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

/// Drops the items still in `slots`, found from their stamps, so that it is right whatever the
/// consumer did (even if it was leaked). If an item's `Drop` panics, the rest are still dropped
/// while unwinding.
///
/// # Safety
/// Exclusive access to the slots: no producer or consumer is alive.
unsafe fn drop_items<T>(slots: &mut [Slot<T>]) {
    if core::mem::needs_drop::<T>() {
        // SAFETY: forwarded from the caller.
        unsafe { drop_items_from(slots, 0) }
    }
}

/// # Safety
/// As for [`drop_items`]; slots below `start` are already handled.
unsafe fn drop_items_from<T>(slots: *mut [Slot<T>], start: usize) {
    /// Continues with the next slot if dropping the current item unwinds.
    struct Continue<T> {
        slots: *mut [Slot<T>],
        next: usize,
    }
    impl<T> Drop for Continue<T> {
        fn drop(&mut self) {
            // SAFETY: the same exclusive slots, from the slot after the one that panicked.
            unsafe { drop_items_from(self.slots, self.next) }
        }
    }
    let len = slots.len();
    let mask = len - 1;
    for index in start..len {
        let guard = Continue {
            slots,
            next: index + 1,
        };
        // SAFETY: in bounds, and exclusive by the caller's contract.
        let slot = unsafe { &mut *slots.cast::<Slot<T>>().add(index) };
        // With no producer alive every claimed slot was written, so a slot holds an item exactly
        // when its stamp is `p + 1` for a position `p` of this slot; capacity >= 2 keeps that
        // apart from the free stamp `p`.
        let stamp = slot.stamp.load(Ordering::Relaxed);
        if stamp.wrapping_sub(1) & mask == index {
            // SAFETY: written and never read, by the stamp.
            slot.item.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
        core::mem::forget(guard);
    }
}

/// Shared state of one ring: the producers' claim index and the slots.
struct Shared {
    /// The next position a producer will claim, shifted left by one, plus [`CLOSED`].
    tail: CachePadded<AtomicUsize>,
}

/// An MPSC ring with `N` slots stored inline.
///
/// `N` must be a power of two of at least 2 (checked at compile time).
///
/// ```
/// use ringledger_core::mpsc::Ring;
///
/// let mut ring: Ring<u32, 16> = Ring::new();
/// let (producer, mut consumer) = ring.split();
/// std::thread::scope(|s| {
///     for t in 0..2 {
///         let producer = producer.clone();
///         s.spawn(move || producer.push(t).unwrap());
///     }
/// });
/// let mut got = [consumer.pop().unwrap(), consumer.pop().unwrap()];
/// got.sort();
/// assert_eq!(got, [0, 1]);
/// ```
pub struct Ring<T, const N: usize> {
    shared: Shared,
    slots: [Slot<T>; N],
}

// SAFETY: a shared `&Ring` only gives `capacity`; items move through the handles.
unsafe impl<T: Send, const N: usize> Sync for Ring<T, N> {}

impl<T, const N: usize> Ring<T, N> {
    const CAPACITY_IS_VALID: () = assert!(
        N.is_power_of_two() && N >= 2,
        "mpsc::Ring capacity N must be a power of two of at least 2"
    );

    /// Creates an empty ring. Usable in a `static` or a `const`.
    ///
    /// ```
    /// use ringledger_core::mpsc::Ring;
    ///
    /// let mut ring = Ring::<u16, 4>::new(); // on the stack; no allocation
    /// assert_eq!(ring.capacity(), 4);
    /// let (producer, mut consumer) = ring.split();
    /// producer.push(1).unwrap();
    /// assert_eq!(consumer.pop(), Some(1));
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_IS_VALID;
        let mut slots = [const { Slot::new(0) }; N];
        let mut i = 0;
        while i < N {
            slots[i] = Slot::new(i);
            i += 1;
        }
        Self {
            shared: Shared {
                tail: CachePadded::new(atomic_usize(0)),
            },
            slots,
        }
    }

    /// Creates an empty ring (not `const` under loom, whose atomics cannot be).
    #[cfg(loom)]
    pub fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_IS_VALID;
        Self {
            shared: Shared {
                tail: CachePadded::new(atomic_usize(0)),
            },
            slots: core::array::from_fn(Slot::new),
        }
    }

    /// The number of slots, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Splits the ring into a producer (clone it for more) and the consumer.
    ///
    /// ```
    /// use ringledger_core::mpsc::Ring;
    ///
    /// let mut ring: Ring<char, 4> = Ring::new();
    /// let (producer, mut consumer) = ring.split();
    /// let second = producer.clone();
    /// producer.push('a').unwrap();
    /// second.push('b').unwrap();
    /// assert_eq!((consumer.pop(), consumer.pop()), (Some('a'), Some('b')));
    /// ```
    pub fn split(&mut self) -> (Producer<'_, T>, Consumer<'_, T>) {
        let raw = RawRing {
            shared: NonNull::from(&self.shared),
            slots: NonNull::from(&mut self.slots).cast(),
            capacity: N,
        };
        // SAFETY: the ring outlives the handles, which borrow it mutably.
        unsafe { raw.into_handles(Owner::Borrowed(PhantomData)) }
    }
}

impl<T, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> fmt::Debug for Ring<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Ring")
            .field("capacity", &N)
            .finish_non_exhaustive()
    }
}

impl<T, const N: usize> Drop for Ring<T, N> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no handle is alive.
        unsafe { drop_items(&mut self.slots) }
    }
}

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
struct HeapRing<T> {
    shared: Shared,
    slots: alloc::boxed::Box<[Slot<T>]>,
}

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
impl<T> Drop for HeapRing<T> {
    fn drop(&mut self) {
        // SAFETY: the last handle is gone.
        unsafe { drop_items(&mut self.slots) }
    }
}

/// Creates an MPSC ring with `capacity` slots on the heap and returns a producer (clone it for
/// more) and the consumer.
///
/// # Panics
/// If `capacity` is not a power of two of at least 2.
///
/// # Examples
/// ```
/// let (producer, mut consumer) = ringledger_core::mpsc::channel(2);
/// let second = producer.clone();
/// producer.push(1).unwrap();
/// second.push(2).unwrap();
/// assert!(producer.push(3).is_err());
/// assert_eq!(consumer.pop(), Some(1));
/// ```
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub fn channel<T>(capacity: usize) -> (Producer<'static, T>, Consumer<'static, T>) {
    assert!(
        capacity.is_power_of_two() && capacity >= 2,
        "mpsc::channel capacity must be a power of two of at least 2, got {capacity}"
    );
    let ring = crate::sync::Arc::new(HeapRing {
        shared: Shared {
            tail: CachePadded::new(atomic_usize(0)),
        },
        slots: (0..capacity).map(Slot::new).collect(),
    });
    let raw = RawRing {
        shared: NonNull::from(&ring.shared),
        slots: NonNull::new(ring.slots.as_ptr().cast_mut()).expect("a boxed slice is non-null"),
        capacity,
    };
    // SAFETY: every handle keeps the `Arc` alive.
    unsafe { raw.into_handles(Owner::Heap(ring)) }
}

enum Owner<'a, T> {
    Borrowed(PhantomData<&'a mut [T]>),
    #[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
    Heap(#[allow(dead_code)] crate::sync::Arc<HeapRing<T>>),
}

impl<T> Clone for Owner<'_, T> {
    fn clone(&self) -> Self {
        match self {
            Owner::Borrowed(p) => Owner::Borrowed(*p),
            #[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
            Owner::Heap(ring) => Owner::Heap(ring.clone()),
        }
    }
}

struct RawRing<T> {
    shared: NonNull<Shared>,
    slots: NonNull<Slot<T>>,
    capacity: usize,
}

impl<T> RawRing<T> {
    /// # Safety
    /// The pointers stay valid while `owner` (or a clone) lives; no consumer of this ring exists.
    unsafe fn into_handles<'a>(self, owner: Owner<'a, T>) -> (Producer<'a, T>, Consumer<'a, T>) {
        // Positions are free-running; the consumer starts at the oldest unread position, which
        // with no consumer alive is the lowest position whose slot is written, or the tail.
        // SAFETY: valid by the caller's contract.
        let tail_word = &unsafe { self.shared.as_ref() }.tail;
        // New handles open the ring again (no handle of it is alive to disagree).
        let tail = tail_word.fetch_and(!CLOSED, Ordering::AcqRel) >> 1;
        let mask = self.capacity - 1;
        let mut head = tail;
        for back in 1..=self.capacity {
            let position = tail.wrapping_sub(back) & POSITIONS;
            // SAFETY: masked in bounds; valid by the caller's contract.
            let slot = unsafe { &*self.slots.as_ptr().add(position & mask) };
            if slot.stamp.load(Ordering::Acquire) != advance(position, 1) {
                break;
            }
            head = position;
        }
        let producer = Producer {
            shared: self.shared,
            slots: self.slots,
            mask,
            _owner: owner.clone(),
        };
        let consumer = Consumer {
            shared: self.shared,
            slots: self.slots,
            mask,
            head,
            not_ready_at: head,
            _owner: owner,
        };
        (producer, consumer)
    }
}

/// A writing end of an MPSC ring: `Clone`, `Send` and `Sync`, so any number of threads push.
///
/// ```
/// let (producer, mut consumer) = ringledger_core::mpsc::channel::<u32>(4);
/// std::thread::scope(|s| {
///     s.spawn(|| producer.push(1).unwrap()); // shared by reference
///     let clone = producer.clone();
///     s.spawn(move || clone.push(2).unwrap()); // or cloned and moved
/// });
/// let mut got = [consumer.pop().unwrap(), consumer.pop().unwrap()];
/// got.sort();
/// assert_eq!(got, [1, 2]);
/// ```
pub struct Producer<'a, T> {
    shared: NonNull<Shared>,
    slots: NonNull<Slot<T>>,
    mask: usize,
    _owner: Owner<'a, T>,
}

// SAFETY: pushing through `&Producer` from many threads is the point of the algorithm: slots are
// claimed with a CAS and handed over with release stores; `T: Send` because items cross threads.
unsafe impl<T: Send> Send for Producer<'_, T> {}
// SAFETY: as above; `push` takes `&self`.
unsafe impl<T: Send> Sync for Producer<'_, T> {}

impl<T> Clone for Producer<'_, T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared,
            slots: self.slots,
            mask: self.mask,
            _owner: self._owner.clone(),
        }
    }
}

impl<T> Producer<'_, T> {
    /// The number of slots of the ring.
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Pushes `item` to the back of the ring, or hands it back in [`Full`] when every slot holds
    /// an item the consumer has not taken yet, or the ring is closed
    /// ([`try_push`](Self::try_push) tells the two apart).
    ///
    /// Lock-free: it fails only when the ring is full, never because another producer is
    /// halfway through its own push. With `std`, a push that finds its slot claimed a lap ago
    /// by a producer that has not written it yet waits for that one once (64 spin hints, then
    /// a yield of its time slice) before it reports the ring full (see *A stalled producer*).
    ///
    /// ```
    /// use ringledger_core::{mpsc, Full};
    ///
    /// let (producer, _consumer) = mpsc::channel::<u8>(2);
    /// producer.push(1).unwrap();
    /// producer.push(2).unwrap();
    /// assert_eq!(producer.push(3), Err(Full(3)));
    /// ```
    #[inline]
    pub fn push(&self, item: T) -> Result<(), Full<T>> {
        self.try_push(item).map_err(|e| Full(e.into_inner()))
    }

    /// Pushes `item`, or hands it back saying why: the ring is full, or closed. A push that
    /// returns `Ok` claimed its slot before any close, so its item reaches a consumer that
    /// pops until [`Consumer::is_finished`].
    ///
    /// ```
    /// use ringledger_core::mpsc::{channel, PushError};
    ///
    /// let (producer, mut consumer) = channel(2);
    /// producer.try_push(1).unwrap();
    /// producer.close();
    /// assert_eq!(producer.try_push(2), Err(PushError::Closed(2)));
    /// assert!(!consumer.is_finished());
    /// assert_eq!(consumer.pop(), Some(1));
    /// assert!(consumer.is_finished());
    /// ```
    #[inline]
    pub fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        // SAFETY: the owner keeps the shared state alive.
        let tail = &unsafe { self.shared.as_ref() }.tail;
        let mut word = tail.load(Ordering::Relaxed);
        let mut waited = false;
        loop {
            if word & CLOSED != 0 {
                return Err(PushError::Closed(item));
            }
            let position = word >> 1;
            // SAFETY: masked in bounds; the owner keeps the slots alive.
            let slot = unsafe { &*self.slots.as_ptr().add(position & self.mask) };
            let stamp = slot.stamp.load(Ordering::Acquire);
            let lag = lag(stamp, position);
            if lag == 0 {
                // Claiming the slot fails if the ring was closed meanwhile: the flag is in
                // the word compared.
                match tail.compare_exchange_weak(
                    word,
                    word.wrapping_add(2),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the CAS made position ours, and its stamp (acquired above)
                        // says the consumer is done with the slot's previous item.
                        slot.item.with_mut(|p| unsafe { (*p).write(item) });
                        slot.stamp.store(advance(position, 1), Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => word = current,
                }
            } else if lag < 0 {
                // The slot still holds the item from one lap ago: the ring is full, unless
                // that item's producer claimed the slot and has not written it yet (the stamp
                // is still the one it claimed), stalled between the two: then it is worth
                // waiting for once (see *A stalled producer*).
                let stalled = lag == -((self.mask + 1) as isize);
                if !(WAIT_FOR_STALLED_PRODUCER && stalled && !waited) {
                    return Err(PushError::Full(item));
                }
                waited = true;
                wait_for_producer(&slot.stamp, stamp);
                word = tail.load(Ordering::Relaxed);
            } else {
                // Another producer claimed `position` already; catch up.
                word = tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Closes the ring: every push from now on fails with [`PushError::Closed`]. Returns
    /// whether this call closed it (`false`: it was closed already). Handles made by a new
    /// [`Ring::split`] open it again.
    pub fn close(&self) -> bool {
        // SAFETY: the owner keeps the shared state alive.
        close(unsafe { self.shared.as_ref() })
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        // SAFETY: the owner keeps the shared state alive.
        unsafe { self.shared.as_ref() }.tail.load(Ordering::Acquire) & CLOSED != 0
    }
}

fn close(shared: &Shared) -> bool {
    shared.tail.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED == 0
}

/// The reading end of an MPSC ring.
///
/// There is one, and popping takes `&mut self`; it can be moved to another thread. Drain until
/// [`is_finished`](Self::is_finished) to take everything pushed before a close:
///
/// ```
/// let (producer, mut consumer) = ringledger_core::mpsc::channel::<u32>(4);
/// producer.push(1).unwrap();
/// producer.push(2).unwrap();
/// assert!(producer.close()); // pushes fail from now on
/// let mut got = Vec::new();
/// while !consumer.is_finished() {
///     got.extend(consumer.pop());
/// }
/// assert_eq!(got, [1, 2]);
/// ```
pub struct Consumer<'a, T> {
    shared: NonNull<Shared>,
    slots: NonNull<Slot<T>>,
    mask: usize,
    /// The next position to read; private, since producers go by the stamps.
    head: usize,
    /// Our position when a pop last found the oldest slot not ready (see
    /// [`Consumer::not_ready`]).
    not_ready_at: usize,
    _owner: Owner<'a, T>,
}

// SAFETY: the consumer takes items written by other threads; `T: Send`.
unsafe impl<T: Send> Send for Consumer<'_, T> {}

impl<'a, T> Consumer<'a, T> {
    /// The number of slots of the ring.
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline(always)]
    fn slot(&self, position: usize) -> &Slot<T> {
        // SAFETY: masked in bounds; the owner keeps the slots alive.
        unsafe { &*self.slots.as_ptr().add(position & self.mask) }
    }

    /// Pops the oldest item, or `None` when the ring is empty (or the oldest item's producer has
    /// claimed its slot but not finished writing it).
    ///
    /// ```
    /// use ringledger_core::mpsc;
    ///
    /// let (producer, mut consumer) = mpsc::channel::<u8>(2);
    /// assert_eq!(consumer.pop(), None);
    /// producer.push(9).unwrap();
    /// assert_eq!(consumer.pop(), Some(9));
    /// ```
    #[inline]
    #[must_use = "the popped item is dropped unless used"]
    pub fn pop(&mut self) -> Option<T> {
        let position = self.head;
        let slot = self.slot(position);
        if slot.stamp.load(Ordering::Acquire) != advance(position, 1)
            && !(WAIT_WHEN_CAUGHT_UP && self.not_ready())
        {
            return None;
        }
        let slot = self.slot(position);
        // SAFETY: the stamp (acquired) says the producer of `position` wrote the item.
        let item = slot.item.with(|p| unsafe { (*p).assume_init_read() });
        slot.stamp
            .store(advance(position, self.mask + 1), Ordering::Release);
        self.head = advance(position, 1);
        Some(item)
    }

    /// The oldest slot was not ready. A consumer that had been streaming (a run of at least
    /// [`STREAMING_RUN`] items) waits [`CAUGHT_UP_PAUSES`] spin hints and looks once more;
    /// any other returns at once. Returns whether the slot is ready now.
    ///
    /// A consumer that catches up with a streaming producer and looks again at once keeps
    /// taking the cache line the producer is filling, which hands it back and forth a few
    /// times per line: with the two threads ~100 ns apart, one producer streamed at half
    /// crossbeam's speed, the consumer finding the slot not ready about once every three
    /// items. Waiting about a microsecond lets the producer fill the line first. A consumer
    /// taking items one by one as they come (a request and its reply, say) never waits here.
    #[cold]
    fn not_ready(&mut self) -> bool {
        let streaming = self.head.wrapping_sub(self.not_ready_at) & POSITIONS >= STREAMING_RUN;
        self.not_ready_at = self.head;
        if !streaming {
            return false;
        }
        for _ in 0..CAUGHT_UP_PAUSES {
            crate::sync::spin_hint();
        }
        let position = self.head;
        self.slot(position).stamp.load(Ordering::Acquire) == advance(position, 1)
    }

    /// Closes the ring from the consumer's side: pushes fail from now on; what was pushed
    /// before can still be popped. Returns whether this call closed it.
    pub fn close(&self) -> bool {
        // SAFETY: the owner keeps the shared state alive.
        close(unsafe { self.shared.as_ref() })
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        // SAFETY: the owner keeps the shared state alive.
        unsafe { self.shared.as_ref() }.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Whether the ring is closed and every item pushed before the close has been popped:
    /// nothing will ever arrive again. (Closed but not finished: a producer that claimed its
    /// slot before the close is still writing its item, or items wait to be popped.)
    pub fn is_finished(&self) -> bool {
        // SAFETY: the owner keeps the shared state alive.
        let word = unsafe { self.shared.as_ref() }.tail.load(Ordering::Acquire);
        word & CLOSED != 0 && word >> 1 == self.head
    }

    /// Pops up to `max` items in order, handing each to `f`, and returns how many it popped.
    ///
    /// ```
    /// let (producer, mut consumer) = ringledger_core::mpsc::channel(8);
    /// for i in 0..5 {
    ///     producer.push(i).unwrap();
    /// }
    /// let mut taken = Vec::new();
    /// assert_eq!(consumer.pop_many(3, |item| taken.push(item)), 3);
    /// assert_eq!(taken, [0, 1, 2]);
    /// ```
    pub fn pop_many(&mut self, max: usize, mut f: impl FnMut(T)) -> usize {
        let mut count = 0;
        while count < max {
            let Some(item) = self.pop() else { break };
            count += 1;
            f(item);
        }
        count
    }

    /// An iterator that pops items until the ring is empty; items not taken stay in the ring.
    pub fn drain(&mut self) -> Drain<'_, 'a, T> {
        Drain { consumer: self }
    }

    /// Whether the oldest item is not ready yet (the ring is empty, or its producer is still
    /// writing it).
    pub fn is_empty(&self) -> bool {
        self.slot(self.head).stamp.load(Ordering::Acquire) != advance(self.head, 1)
    }

    /// The number of items ready to pop in order right now (at most the capacity).
    pub fn len(&self) -> usize {
        (0..self.capacity())
            .take_while(|&i| {
                let position = advance(self.head, i);
                self.slot(position).stamp.load(Ordering::Acquire) == advance(position, 1)
            })
            .count()
    }
}

/// Pops items until the ring is empty; from [`Consumer::drain`].
///
/// ```
/// use ringledger_core::mpsc;
///
/// let (producer, mut consumer) = mpsc::channel::<u8>(4);
/// producer.push(1).unwrap();
/// producer.push(2).unwrap();
/// assert_eq!(consumer.drain().sum::<u8>(), 3);
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

impl<T> BufferWrite<T> for Producer<'_, T> {
    #[inline]
    fn try_write(&mut self, item: T) -> Result<(), Full<T>> {
        self.push(item)
    }
}

impl<T> BufferRead<T> for Consumer<'_, T> {
    #[inline]
    fn try_read(&mut self) -> Result<T, Empty> {
        self.pop().ok_or(Empty)
    }
}

impl<T> fmt::Debug for Producer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Producer")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Consumer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Consumer")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

#[cfg(not(loom))]
mod layout {
    use super::*;
    use static_assertions::{assert_impl_all, assert_not_impl_any};

    assert_impl_all!(Producer<'static, u64>: Send, Sync, Clone);
    assert_impl_all!(Consumer<'static, u64>: Send);
    assert_not_impl_any!(Consumer<'static, u64>: Sync, Clone);
    assert_not_impl_any!(Producer<'static, *const u8>: Send, Sync);
    assert_not_impl_any!(Consumer<'static, *const u8>: Send);
    assert_impl_all!(Ring<u64, 4>: Send, Sync);
}

#[cfg(all(test, feature = "std", not(loom)))]
mod stalled_producer_tests {
    use super::*;
    use std::vec::Vec;

    /// How many times a push waited for a stalled producer (in this test binary).
    pub(super) static WAITS: core::sync::atomic::AtomicUsize =
        core::sync::atomic::AtomicUsize::new(0);

    /// Claims the next position the way a producer does, without writing it: a producer
    /// stalled between the claim and the write.
    fn claim_and_stall(producer: &Producer<'_, u32>) -> usize {
        // SAFETY: the producer keeps the shared state alive.
        let tail = &unsafe { producer.shared.as_ref() }.tail;
        tail.fetch_add(2, Ordering::Relaxed) >> 1
    }

    /// Writes and publishes `position`, as the stalled producer would when it runs again.
    fn finish(producer: &Producer<'_, u32>, position: usize, item: u32) {
        // SAFETY: masked in bounds; the producer keeps the slots alive.
        let slot = unsafe { &*producer.slots.as_ptr().add(position & producer.mask) };
        // SAFETY: `position` was claimed by `claim_and_stall` and nobody else writes it.
        slot.item.with_mut(|p| unsafe { (*p).write(item) });
        slot.stamp.store(advance(position, 1), Ordering::Release);
    }

    #[test]
    fn a_push_behind_a_stalled_producer_reports_full_and_loses_nothing() {
        let (producer, mut consumer) = channel::<u32>(2);
        let stalled = claim_and_stall(&producer);
        producer.push(1).unwrap();
        // The next position is the stalled one's slot, a lap on: the push waits for it once,
        // then hands the item back.
        let waits = WAITS.load(core::sync::atomic::Ordering::Relaxed);
        assert_eq!(producer.try_push(2), Err(PushError::Full(2)));
        assert!(
            WAITS.load(core::sync::atomic::Ordering::Relaxed) > waits,
            "it did not wait"
        );
        assert_eq!(consumer.pop(), None, "the stalled slot is not ready");
        finish(&producer, stalled, 0);
        assert_eq!(
            producer.try_push(2),
            Err(PushError::Full(2)),
            "full for real now"
        );
        assert_eq!((consumer.pop(), consumer.pop()), (Some(0), Some(1)));
        producer.push(2).unwrap();
        assert_eq!(consumer.pop(), Some(2));
    }

    #[test]
    fn a_push_that_waits_gets_the_slot_once_the_stalled_producer_is_popped() {
        let (producer, mut consumer) = channel::<u32>(2);
        let stalled = claim_and_stall(&producer);
        producer.push(1).unwrap();
        std::thread::scope(|s| {
            let pusher = s.spawn(|| {
                let mut item = 2;
                loop {
                    match producer.try_push(item) {
                        Ok(()) => return,
                        Err(PushError::Full(back)) => item = back,
                        Err(PushError::Closed(_)) => unreachable!("nobody closes the ring"),
                    }
                    std::thread::yield_now();
                }
            });
            finish(&producer, stalled, 0);
            let mut got = Vec::new();
            while got.len() < 3 {
                got.extend(consumer.pop());
            }
            pusher.join().unwrap();
            assert_eq!(got, [0, 1, 2]);
        });
    }
}
