//! A lock-free single-producer single-consumer ring.
//!
//! One algorithm, three storages: [`Ring<T, N>`] keeps its slots inline (a `const fn new()`, so
//! it can live in a `static` on a microcontroller), [`channel`] (feature `alloc`) puts them on
//! the heap, and [`RegionLayout`] places the indices and slots in a region the caller provides
//! (memory shared between processes, say). Either way the ring is used through a [`Producer`]
//! and a [`Consumer`].
//!
//! # How it works
//!
//! Capacity is a power of two and every slot is usable. The producer owns the `tail` index and
//! the consumer owns `head`; both run freely (wrapping) and are masked into slot positions. The two
//! indices live on separate cache lines, and each handle keeps a private copy of the *other*
//! side's index, rereading the shared one only when its copy says the ring is full (producer) or
//! empty (consumer). Only atomic loads and stores are used, never a read-modify-write, so the ring
//! runs natively on targets without compare-and-swap such as thumbv6m.
//!
//! # Catching up
//!
//! When one side catches up with the other (a pop finds the ring empty, a push finds it
//! full) after streaming (a run of a cache line of items or more since it last did), it
//! waits about a microsecond (128 spin hints) and reads the other side's index once more
//! before it reports the ring empty or full. Looking again at once keeps taking the cache
//! lines the other side is writing, which hands them back and forth a few times per line,
//! and slows both sides: with the two threads ~100 ns apart, a stream of `u64`s ran at 0.6x
//! rtrb's speed near empty, and at 1.5x with the wait. A side that moves items one at a time
//! as they come (a request and its reply) never waits: its runs are short. Only the first
//! empty (or full) answer after a run waits, so a caller that polls, or parks after an empty
//! answer (the blocking buffers), pays it once per burst. Bare-metal targets (where the
//! handles read the indices every time) do not wait.
//!
//! # Examples
//!
//! On the heap:
//!
//! ```
//! let (mut producer, mut consumer) = ringledger_core::spsc::channel::<u32>(4);
//! std::thread::spawn(move || {
//!     for i in 0..100 {
//!         while producer.push(i).is_err() {
//!             std::hint::spin_loop();
//!         }
//!     }
//! });
//! let mut expected = 0;
//! while expected < 100 {
//!     if let Some(value) = consumer.pop() {
//!         assert_eq!(value, expected);
//!         expected += 1;
//!     }
//! }
//! ```
//!
//! Inline, without allocation. `new` is `const`, so a ring can be a `static`; split a
//! `&'static mut Ring` (from `static_cell::StaticCell`, `cortex_m::singleton!` or `Box::leak`)
//! and the handles are `'static`, ready to move into an interrupt handler or a thread:
//!
//! ```
//! use ringledger_core::spsc::Ring;
//!
//! // Evaluated at compile time.
//! static EMPTY: Ring<u8, 16> = Ring::new();
//! assert_eq!(EMPTY.capacity(), 16);
//!
//! let mut ring = Ring::<u8, 16>::new();
//! let (mut producer, mut consumer) = ring.split();
//! producer.push(7).unwrap();
//! assert_eq!(consumer.pop(), Some(7));
//! ```
//!
//! A capacity that is not a power of two does not compile:
//!
//! ```compile_fail
//! let ring = ringledger_core::spsc::Ring::<u8, 3>::new();
//! ```

mod chunks;

use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
#[cfg(not(loom))]
use core::ptr;
use core::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::buffer::{BufferRead, BufferWrite, Empty, Full};
use crate::sync::{load_store_usize, LoadStoreUsize, Ordering, UnsafeCell};

pub use chunks::{Drain, ReadChunk, ReadChunkIntoIter, TooFewSlots, WriteChunkUninit};

/// One slot of the ring: initialized exactly when its position lies in `head..tail`.
type Slot<T> = UnsafeCell<MaybeUninit<T>>;

/// The two shared indices, each alone on its cache line.
///
/// `tail` is written only by the producer and `head` only by the consumer; everything else a
/// handle needs (its own index, its copy of the other's, the mask) lives in the handle itself.
/// Whether each handle keeps a copy of the other side's index and reads the shared one only
/// when the copy says full (or empty). Between cores with caches that saves moving the other
/// side's line on most operations; a microcontroller (a bare-metal target) has no such
/// traffic to save, and there the copy only costs flash (30 bytes of push+pop on a
/// Cortex-M3, measured by `embedded/size-report`).
const CACHE_INDICES: bool = cfg!(not(target_os = "none"));

/// Items one side moves between two times it finds the ring full (producer) or empty
/// (consumer) that make it a streaming side: a cache line of `u64`s.
const STREAMING_RUN: usize = 8;

/// Spin hints a streaming side waits, having caught up with the other, before it reads the
/// other's index again (about a microsecond on the project's machines). One long wait: reading
/// the index every cross-core transfer or two during it measured no better than not waiting.
const CAUGHT_UP_PAUSES: u32 = 128;

/// Waits [`CAUGHT_UP_PAUSES`] spin hints, then reads `index` (the other side's) again.
///
/// Out of line, and given the shared index rather than the handle: a handle whose address
/// reached a call in the caller's loop would have to live in memory there, and the hot path
/// would then load and store its own index through the stack on every item. (The echo round
/// trip in the mid placement, old and new builds interleaved: 0.91-0.95x rtrb with the handle
/// passed, 1.03-1.06x with the index.)
#[cold]
#[inline(never)]
fn read_after_waiting(index: &LoadStoreUsize) -> usize {
    for _ in 0..CAUGHT_UP_PAUSES {
        crate::sync::spin_hint();
    }
    index.load(Ordering::Acquire)
}

#[repr(C)]
pub(crate) struct Indices {
    /// The producer line: how many items were ever pushed (wrapping).
    tail: CachePadded<LoadStoreUsize>,
    /// The consumer line: how many items were ever popped (wrapping).
    head: CachePadded<LoadStoreUsize>,
}

impl Indices {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Self {
            tail: CachePadded::new(load_store_usize(0)),
            head: CachePadded::new(load_store_usize(0)),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Self {
            tail: CachePadded::new(load_store_usize(0)),
            head: CachePadded::new(load_store_usize(0)),
        }
    }
}

/// Drops the items in positions `head..tail` of `slots` exactly once, even when one of their
/// `Drop`s panics (the other items are still dropped while unwinding).
///
/// # Safety
/// The caller has exclusive access to `slots`, and exactly the positions `head..tail` are
/// initialized, with `tail - head <= slots.len()` and `slots.len()` a power of two.
unsafe fn drop_items<T>(slots: *mut Slot<T>, capacity: usize, head: usize, tail: usize) {
    if !core::mem::needs_drop::<T>() {
        return;
    }
    let (first, second) = ring_ranges(capacity, head, tail.wrapping_sub(head));
    // `UnsafeCell<MaybeUninit<T>>` has the layout of `T` outside loom; under loom it does not, so
    // go slot by slot there.
    #[cfg(not(loom))]
    {
        let as_items = |(start, len): (usize, usize)| {
            // SAFETY: `start + len <= capacity`, and the slots are `repr(transparent)` wrappers
            // of `T`, initialized in this range by the caller's contract.
            unsafe { ptr::slice_from_raw_parts_mut(slots.add(start).cast::<T>(), len) }
        };
        let _second = DropOnUnwind(as_items(second));
        // SAFETY: initialized, exclusively ours, and dropped only here (`_second` covers the
        // other range, which does not overlap).
        unsafe { ptr::drop_in_place(as_items(first)) };
    }
    #[cfg(loom)]
    for (start, len) in [first, second] {
        for i in start..start + len {
            // SAFETY: initialized and exclusively ours, by the caller's contract.
            unsafe { (*slots.add(i)).with_mut(|p| (*p).assume_init_drop()) };
        }
    }
}

/// Drops the items of a slice when dropped itself, so a panic in an earlier drop still drops them.
#[cfg(not(loom))]
struct DropOnUnwind<T>(*mut [T]);

#[cfg(not(loom))]
impl<T> Drop for DropOnUnwind<T> {
    fn drop(&mut self) {
        // SAFETY: constructed only over initialized items that nothing else drops.
        unsafe { ptr::drop_in_place(self.0) }
    }
}

/// Splits `len` positions starting at free-running index `start` into the (offset, length) of
/// the run up to the end of the slot array and the run that wraps to its start.
#[inline(always)]
fn ring_ranges(capacity: usize, start: usize, len: usize) -> ((usize, usize), (usize, usize)) {
    let offset = start & (capacity - 1);
    let first = len.min(capacity - offset);
    ((offset, first), (0, len - first))
}

/// An SPSC ring with `N` slots stored inline.
///
/// `N` must be a power of two (checked at compile time). `new` is `const`, so a `Ring` can be a
/// `static`; [`split`](Self::split) hands out the two endpoints. Items still in the ring when it
/// is dropped are dropped with it.
///
/// ```
/// use ringledger_core::spsc::Ring;
///
/// let mut ring: Ring<u32, 8> = Ring::new();
/// let (mut producer, mut consumer) = ring.split();
/// producer.push(1).unwrap();
/// assert_eq!(consumer.pop(), Some(1));
/// ```
pub struct Ring<T, const N: usize> {
    indices: Indices,
    slots: [Slot<T>; N],
}

// SAFETY: a shared `&Ring` only gives access to `capacity` and `len` (atomic loads); items move
// between threads only through the handles, which `split(&mut self)` hands out once per borrow.
unsafe impl<T: Send, const N: usize> Sync for Ring<T, N> {}

impl<T, const N: usize> Ring<T, N> {
    const CAPACITY_IS_A_POWER_OF_TWO: () = assert!(
        N.is_power_of_two(),
        "spsc::Ring capacity N must be a power of two greater than zero"
    );

    /// Creates an empty ring. Usable in a `static` or a `const`.
    ///
    /// ```
    /// use ringledger_core::spsc::Ring;
    ///
    /// let mut ring = Ring::<u16, 4>::new(); // on the stack; no allocation
    /// assert!(ring.is_empty());
    /// let (mut producer, mut consumer) = ring.split();
    /// producer.push(1).unwrap();
    /// assert_eq!(consumer.pop(), Some(1));
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_IS_A_POWER_OF_TWO;
        Self {
            indices: Indices::new(),
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; N],
        }
    }

    /// Creates an empty ring (not `const` under loom, whose atomics cannot be).
    #[cfg(loom)]
    pub fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_IS_A_POWER_OF_TWO;
        Self {
            indices: Indices::new(),
            slots: core::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
        }
    }

    /// The number of slots, `N`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The number of items in the ring right now.
    pub fn len(&self) -> usize {
        let head = self.indices.head.load(Ordering::Acquire);
        self.indices.tail.load(Ordering::Acquire).wrapping_sub(head)
    }

    /// Whether the ring holds no items right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Splits the ring into its producer and consumer.
    ///
    /// The handles borrow the ring; once both are dropped it can be split again, and the items
    /// left in it are still there.
    ///
    /// ```
    /// use ringledger_core::spsc::Ring;
    ///
    /// let mut ring: Ring<&str, 4> = Ring::new();
    /// {
    ///     let (mut producer, _) = ring.split();
    ///     producer.push("kept").unwrap();
    /// }
    /// let (_, mut consumer) = ring.split();
    /// assert_eq!(consumer.pop(), Some("kept"));
    /// ```
    pub fn split(&mut self) -> (Producer<'_, T>, Consumer<'_, T>) {
        let ring = RingRef {
            indices: NonNull::from(&self.indices),
            slots: NonNull::from(&mut self.slots).cast(),
            mask: N - 1,
            _owner: Owner::Borrowed(PhantomData),
        };
        // SAFETY: the ring outlives the handles (they borrow it mutably for '_), and this is the
        // only pair of handles while that borrow lasts.
        unsafe { ring.into_handles() }
    }
}

impl<T, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> fmt::Debug for Ring<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("spsc::Ring")
            .field("capacity", &N)
            .field("len", &self.len())
            .finish()
    }
}

impl<T, const N: usize> Drop for Ring<T, N> {
    fn drop(&mut self) {
        let head = self.indices.head.load(Ordering::Relaxed);
        let tail = self.indices.tail.load(Ordering::Relaxed);
        // SAFETY: `&mut self`: no handle is alive, and `head..tail` are the initialized slots.
        unsafe { drop_items(self.slots.as_mut_ptr(), N, head, tail) }
    }
}

/// The slots and indices of a ring stored on the heap, shared by its two handles.
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
struct HeapRing<T> {
    indices: Indices,
    slots: alloc::boxed::Box<[Slot<T>]>,
}

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
impl<T> Drop for HeapRing<T> {
    fn drop(&mut self) {
        let head = self.indices.head.load(Ordering::Relaxed);
        let tail = self.indices.tail.load(Ordering::Relaxed);
        let capacity = self.slots.len();
        // SAFETY: the last handle is gone, and `head..tail` are the initialized slots.
        unsafe { drop_items(self.slots.as_mut_ptr(), capacity, head, tail) }
    }
}

/// Creates an SPSC ring with `capacity` slots on the heap and returns its two endpoints.
///
/// The slots are freed, and items still in them dropped, when both endpoints are dropped.
///
/// # Panics
/// If `capacity` is zero or not a power of two.
///
/// # Examples
/// ```
/// let (mut producer, mut consumer) = ringledger_core::spsc::channel::<String>(2);
/// producer.push("a".to_string()).unwrap();
/// producer.push("b".to_string()).unwrap();
/// assert!(producer.push("c".to_string()).is_err());
/// assert_eq!(consumer.pop().as_deref(), Some("a"));
/// ```
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub fn channel<T>(capacity: usize) -> (Producer<'static, T>, Consumer<'static, T>) {
    assert!(
        capacity.is_power_of_two(),
        "spsc::channel capacity must be a power of two greater than zero, got {capacity}"
    );
    let slots = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let ring = crate::sync::Arc::new(HeapRing {
        indices: Indices::new(),
        slots,
    });
    let ring = RingRef {
        indices: NonNull::from(&ring.indices),
        slots: NonNull::new(ring.slots.as_ptr().cast_mut()).expect("a boxed slice is non-null"),
        mask: capacity - 1,
        _owner: Owner::Heap(ring),
    };
    // SAFETY: both handles keep the `Arc` alive, so the pointers stay valid; this is the only
    // pair of handles of this ring.
    unsafe { ring.into_handles() }
}

/// Where a ring of a given capacity lives in a caller-provided region: its indices first, then
/// its slots. The layout is fixed (`#[repr(C)]` indices, slots at the next multiple of `T`'s
/// alignment), so two programs built from this crate's version place a ring identically: a
/// producer in one process and a consumer in another can share a ring through a shared file
/// mapping (the `ringledger` crate's `shm` module does that, with a checked header).
///
/// ```
/// use ringledger_core::spsc::RegionLayout;
///
/// #[repr(C, align(128))]
/// struct Line([u8; 128]);
///
/// let layout = RegionLayout::new::<u64>(8).unwrap();
/// // Memory the ring may use: aligned and large enough (a `Vec` of cache lines here; shared
/// // memory in real use).
/// assert!(layout.align() <= 128);
/// let mut memory: Vec<Line> = (0..layout.size().div_ceil(128)).map(|_| Line([0; 128])).collect();
/// let region = core::ptr::NonNull::new(memory.as_mut_ptr().cast::<u8>()).unwrap();
/// // SAFETY: `region` is aligned and holds `layout.size()` bytes for the rest of this block,
/// // it is initialized once, and one producer and one consumer use it.
/// unsafe {
///     layout.init(region);
///     let mut producer = layout.producer::<u64>(region);
///     let mut consumer = layout.consumer::<u64>(region);
///     producer.push(42).unwrap();
///     assert_eq!(consumer.pop(), Some(42));
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionLayout {
    capacity: usize,
    slots_at: usize,
    size: usize,
    align: usize,
    item_size: usize,
}

impl RegionLayout {
    /// The layout of a ring of `capacity` slots of `T`; `None` when `capacity` is not a power
    /// of two or the size overflows.
    ///
    /// ```
    /// use ringledger_core::spsc::RegionLayout;
    ///
    /// // A `const fn`: the region can be sized at compile time (a linker section, a static).
    /// const LAYOUT: Option<RegionLayout> = RegionLayout::new::<u32>(1024);
    /// let layout = LAYOUT.unwrap();
    /// assert_eq!(layout.capacity(), 1024);
    /// // What to ask of an allocator or a mapping for the region:
    /// let region = std::alloc::Layout::from_size_align(layout.size(), layout.align()).unwrap();
    /// assert!(region.size() >= 1024 * 4);
    ///
    /// assert!(RegionLayout::new::<u32>(1000).is_none()); // not a power of two
    /// assert!(RegionLayout::new::<u64>(1 << (usize::BITS - 1)).is_none()); // the size overflows
    /// ```
    pub const fn new<T>(capacity: usize) -> Option<Self> {
        if !capacity.is_power_of_two() {
            return None;
        }
        let item_align = core::mem::align_of::<T>();
        let indices = core::mem::size_of::<Indices>();
        let slots_at = indices.div_ceil(item_align) * item_align;
        let Some(slots) = core::mem::size_of::<T>().checked_mul(capacity) else {
            return None;
        };
        let Some(size) = slots_at.checked_add(slots) else {
            return None;
        };
        let align = if item_align > core::mem::align_of::<Indices>() {
            item_align
        } else {
            core::mem::align_of::<Indices>()
        };
        Some(Self {
            capacity,
            slots_at,
            size,
            align,
            item_size: core::mem::size_of::<T>(),
        })
    }

    /// The bytes the ring needs.
    pub const fn size(&self) -> usize {
        self.size
    }

    /// The alignment the region must have (the indices' cache-line alignment at least).
    pub const fn align(&self) -> usize {
        self.align
    }

    /// The number of slots.
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Makes the region an empty ring: both indices zero. The slots are left as they are.
    ///
    /// # Safety
    /// `region` is aligned to [`align`](Self::align) and valid for writes of
    /// [`size`](Self::size) bytes, and no handle of a ring in it is in use.
    pub unsafe fn init(&self, region: NonNull<u8>) {
        // SAFETY: the caller gives an aligned region large enough for the indices, unused.
        unsafe { region.cast::<Indices>().as_ptr().write(Indices::new()) };
    }

    /// The producer of the ring in `region`, starting from the indices found there.
    ///
    /// # Safety
    /// `region` holds a ring of this layout (made by [`init`](Self::init), here or in another
    /// process, with the same `T`), stays valid and aligned for `'a`, and no other producer of
    /// it exists anywhere while this one lives. Every bit pattern a consumer may read must be
    /// a valid `T` (a plain-data type), since the memory may be shared with other programs.
    pub unsafe fn producer<'a, T: Copy>(&self, region: NonNull<u8>) -> Producer<'a, T> {
        // SAFETY: the caller's promises, passed on.
        let ring = unsafe { self.ring_ref::<T>(region) };
        let tail = ring.indices().tail.load(Ordering::Acquire);
        let head = ring.indices().head.load(Ordering::Acquire);
        Producer {
            ring,
            tail,
            cached_head: head,
            full_at: tail,
        }
    }

    /// The consumer of the ring in `region`, starting from the indices found there.
    ///
    /// # Safety
    /// As for [`producer`](Self::producer), with no other consumer.
    pub unsafe fn consumer<'a, T: Copy>(&self, region: NonNull<u8>) -> Consumer<'a, T> {
        // SAFETY: the caller's promises, passed on.
        let ring = unsafe { self.ring_ref::<T>(region) };
        let head = ring.indices().head.load(Ordering::Acquire);
        let tail = ring.indices().tail.load(Ordering::Acquire);
        Consumer {
            ring,
            head,
            cached_tail: tail,
            empty_at: head,
            streaming: false,
        }
    }

    /// # Safety
    /// See [`producer`](Self::producer).
    unsafe fn ring_ref<'a, T>(&self, region: NonNull<u8>) -> RingRef<'a, T> {
        debug_assert_eq!(
            self.item_size,
            core::mem::size_of::<T>(),
            "the layout's item type"
        );
        debug_assert_eq!(
            region.as_ptr() as usize % self.align,
            0,
            "a misaligned region"
        );
        RingRef {
            indices: region.cast(),
            // SAFETY: `slots_at < size`, inside the caller's region.
            slots: unsafe { region.add(self.slots_at) }.cast(),
            mask: self.capacity - 1,
            _owner: Owner::Borrowed(PhantomData),
        }
    }
}

/// What keeps a handle's ring alive: a borrow of a [`Ring`], or a share of a heap ring.
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

/// The storage-independent view of a ring that both handles work on: where its indices and
/// slots are, its mask, and what keeps them alive.
struct RingRef<'a, T> {
    indices: NonNull<Indices>,
    slots: NonNull<Slot<T>>,
    mask: usize,
    _owner: Owner<'a, T>,
}

impl<'a, T> RingRef<'a, T> {
    /// # Safety
    /// `indices` and `mask + 1` slots at `slots` stay valid while the owner lives, and no other
    /// handle of this ring exists.
    unsafe fn into_handles(self) -> (Producer<'a, T>, Consumer<'a, T>) {
        let head = self.indices().head.load(Ordering::Acquire);
        let tail = self.indices().tail.load(Ordering::Acquire);
        let consumer_ring = RingRef {
            indices: self.indices,
            slots: self.slots,
            mask: self.mask,
            _owner: self._owner.clone(),
        };
        let producer = Producer {
            ring: self,
            tail,
            cached_head: head,
            full_at: tail,
        };
        let consumer = Consumer {
            ring: consumer_ring,
            head,
            cached_tail: tail,
            empty_at: head,
            streaming: false,
        };
        (producer, consumer)
    }

    #[inline(always)]
    fn indices(&self) -> &Indices {
        // SAFETY: the owner keeps the indices alive as long as the handle.
        unsafe { self.indices.as_ref() }
    }

    #[inline(always)]
    fn slot(&self, position: usize) -> &Slot<T> {
        // SAFETY: masked into `0..capacity`; the owner keeps the slots alive.
        unsafe { &*self.slots.as_ptr().add(position & self.mask) }
    }

    #[inline(always)]
    fn capacity(&self) -> usize {
        self.mask + 1
    }
}

/// The writing end of an SPSC ring.
///
/// `Send` when `T` is, so it can move to the producing thread; not `Sync` (every write needs
/// `&mut self` anyway).
///
/// ```
/// use ringledger_core::spsc::Ring;
///
/// let mut ring: Ring<u64, 64> = Ring::new();
/// let (mut producer, mut consumer) = ring.split();
/// std::thread::scope(|s| {
///     s.spawn(move || (0..10).for_each(|i| while producer.push(i).is_err() {}));
///     let mut next = 0;
///     while next < 10 {
///         if let Some(i) = consumer.pop() {
///             assert_eq!(i, next);
///             next += 1;
///         }
///     }
/// });
/// ```
pub struct Producer<'a, T> {
    ring: RingRef<'a, T>,
    /// Our own index, as last published.
    tail: usize,
    /// The consumer's index as we last read it: a lower bound of the real one.
    cached_head: usize,
    /// Our index when a push last found the ring full (see [`Producer::caught_up`]).
    full_at: usize,
}

// SAFETY: the producer only writes items into slots the consumer has released, and hands them
// over with a release store; moving it to another thread moves `T`s across threads.
unsafe impl<T: Send> Send for Producer<'_, T> {}

/// The reading end of an SPSC ring.
///
/// `Send` when `T` is, so it can move to the consuming thread; not `Sync` (every read needs
/// `&mut self` except [`peek`](Self::peek), whose reference must stay on one thread).
///
/// ```
/// use ringledger_core::spsc;
///
/// let (mut producer, mut consumer) = spsc::channel::<u8>(4);
/// producer.push_slice(&[1, 2, 3]);
/// assert_eq!(consumer.peek(), Some(&1));
/// let mut out = [0; 3];
/// assert_eq!(consumer.pop_slice(&mut out), 3);
/// assert_eq!(out, [1, 2, 3]);
/// ```
pub struct Consumer<'a, T> {
    ring: RingRef<'a, T>,
    /// Our own index, as last published.
    head: usize,
    /// The producer's index as we last read it: a lower bound of the real one.
    cached_tail: usize,
    /// Our index when a pop last found the ring empty (see [`Consumer::caught_up`]).
    empty_at: usize,
    /// Whether the run of pops before the ring last ran empty was a stream.
    streaming: bool,
}

// SAFETY: see `Producer`; the consumer takes items written by another thread.
unsafe impl<T: Send> Send for Consumer<'_, T> {}

impl<T> Producer<'_, T> {
    /// The number of slots of the ring.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Our own index: the handle's copy, or on a bare-metal target the shared one (only this
    /// end writes it; reading it there spares the handle a store per push).
    #[inline(always)]
    fn tail(&self) -> usize {
        if CACHE_INDICES {
            self.tail
        } else {
            self.ring.indices().tail.load(Ordering::Relaxed)
        }
    }

    /// Free slots, from the cached head if that shows at least `wanted`, else from a fresh read.
    /// On a bare-metal target, always from a fresh read (see [`CACHE_INDICES`]).
    #[inline(always)]
    fn free_slots(&mut self, wanted: usize) -> usize {
        if !CACHE_INDICES {
            let head = self.ring.indices().head.load(Ordering::Acquire);
            return self.capacity() - self.tail().wrapping_sub(head);
        }
        let free = self.capacity() - self.tail.wrapping_sub(self.cached_head);
        if free >= wanted {
            return free;
        }
        self.cached_head = self.ring.indices().head.load(Ordering::Acquire);
        self.capacity() - self.tail.wrapping_sub(self.cached_head)
    }

    /// Makes `count` newly written items visible to the consumer.
    #[inline(always)]
    fn publish(&mut self, count: usize) {
        let tail = self.tail().wrapping_add(count);
        if CACHE_INDICES {
            self.tail = tail;
        }
        self.ring.indices().tail.store(tail, Ordering::Release);
    }

    /// Pushes `item` to the back of the ring, or hands it back in [`Full`] when there is no room.
    ///
    /// ```
    /// use ringledger_core::{spsc, Full};
    /// let (mut producer, _consumer) = spsc::channel(1);
    /// assert_eq!(producer.push(1), Ok(()));
    /// assert_eq!(producer.push(2), Err(Full(2)));
    /// ```
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), Full<T>> {
        // Bare metal: what the push needs is read before the acquire load, so that it is not
        // read again after the fence, and fullness is one comparison with the mask (smaller
        // code on Cortex-M0 and M3, see `embedded/size-report`).
        if !CACHE_INDICES {
            let (mask, indices) = (self.ring.mask, self.ring.indices);
            // SAFETY: the owner keeps the indices alive as long as the handle.
            let indices = unsafe { indices.as_ref() };
            let tail = indices.tail.load(Ordering::Relaxed);
            let slot: *const Slot<T> = self.ring.slot(tail);
            // Negative when the ring holds `mask + 1` items: one register for the test.
            let free = mask.wrapping_sub(tail.wrapping_sub(indices.head.load(Ordering::Acquire)));
            if (free as isize) < 0 {
                return Err(Full(item));
            }
            // SAFETY: as below: the slot at `tail` is free, and only the producer writes it.
            unsafe { &*slot }.with_mut(|p| unsafe { (*p).write(item) });
            indices.tail.store(tail.wrapping_add(1), Ordering::Release);
            return Ok(());
        }
        if self.free_slots(1) == 0 && !self.caught_up() {
            return Err(Full(item));
        }
        // SAFETY: the slot at `tail` is free (the consumer released it: checked above with an
        // acquire load of `head`), and only the producer writes slots.
        self.ring
            .slot(self.tail())
            .with_mut(|p| unsafe { (*p).write(item) });
        self.publish(1);
        Ok(())
    }

    /// A push found the ring full. A producer that had been streaming (at least
    /// [`STREAMING_RUN`] pushes since it last found it full) waits [`CAUGHT_UP_PAUSES`] spin
    /// hints and reads the consumer's index once more (see the module's *Catching up*);
    /// returns whether there is room now.
    #[inline(always)]
    fn caught_up(&mut self) -> bool {
        let streaming = self.tail.wrapping_sub(self.full_at) >= STREAMING_RUN;
        self.full_at = self.tail;
        if !streaming {
            return false;
        }
        self.cached_head = read_after_waiting(&self.ring.indices().head);
        self.tail.wrapping_sub(self.cached_head) < self.capacity()
    }

    /// The number of free slots right now (a fresh read of the consumer's index).
    pub fn slots(&self) -> usize {
        self.capacity() - self.len()
    }

    /// The number of items in the ring right now (a fresh read of the consumer's index).
    pub fn len(&self) -> usize {
        self.tail()
            .wrapping_sub(self.ring.indices().head.load(Ordering::Acquire))
    }

    /// Whether the ring is empty right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring is full right now (a push would fail).
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }
}

impl<T: Copy> Producer<'_, T> {
    /// Copies as many items from the front of `items` as fit, and returns how many that was.
    ///
    /// ```
    /// let (mut producer, mut consumer) = ringledger_core::spsc::channel(4);
    /// assert_eq!(producer.push_slice(&[1, 2, 3, 4, 5, 6]), 4);
    /// let mut out = [0; 8];
    /// assert_eq!(consumer.pop_slice(&mut out), 4);
    /// assert_eq!(out[..4], [1, 2, 3, 4]);
    /// ```
    pub fn push_slice(&mut self, items: &[T]) -> usize {
        let count = items.len().min(self.free_slots(items.len()));
        let (first, second) = ring_ranges(self.capacity(), self.tail(), count);
        for (dst, src) in [(first, &items[..first.1]), (second, &items[first.1..count])] {
            for (i, item) in src.iter().enumerate() {
                // SAFETY: these `count` slots are free (see `push`), in bounds by `ring_ranges`.
                self.ring
                    .slot(dst.0 + i)
                    .with_mut(|p| unsafe { (*p).write(*item) });
            }
        }
        self.publish(count);
        count
    }
}

impl<T> Consumer<'_, T> {
    /// The number of slots of the ring.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Our own index: the handle's copy, or on a bare-metal target the shared one (see
    /// `Producer::tail`).
    #[inline(always)]
    fn head(&self) -> usize {
        if CACHE_INDICES {
            self.head
        } else {
            self.ring.indices().head.load(Ordering::Relaxed)
        }
    }

    /// Items ready to read, from the cached tail if that shows at least `wanted`, else from a
    /// fresh read.
    #[inline(always)]
    fn ready_items(&mut self, wanted: usize) -> usize {
        if !CACHE_INDICES {
            let tail = self.ring.indices().tail.load(Ordering::Acquire);
            return tail.wrapping_sub(self.head());
        }
        let ready = self.cached_tail.wrapping_sub(self.head);
        if ready >= wanted {
            return ready;
        }
        self.cached_tail = self.ring.indices().tail.load(Ordering::Acquire);
        self.cached_tail.wrapping_sub(self.head)
    }

    /// Releases `count` read slots to the producer.
    #[inline(always)]
    fn release(&mut self, count: usize) {
        let head = self.head().wrapping_add(count);
        if CACHE_INDICES {
            self.head = head;
        }
        self.ring.indices().head.store(head, Ordering::Release);
    }

    /// Pops the item at the front of the ring, or `None` when it is empty.
    ///
    /// ```
    /// let (mut producer, mut consumer) = ringledger_core::spsc::channel(2);
    /// assert_eq!(consumer.pop(), None);
    /// producer.push('x').unwrap();
    /// assert_eq!(consumer.pop(), Some('x'));
    /// ```
    #[inline]
    #[must_use = "the popped item is dropped unless used"]
    pub fn pop(&mut self) -> Option<T> {
        if !CACHE_INDICES {
            // Bare metal: the handle's fields read before the acquire load (see
            // `Producer::push`); on every core.
            // SAFETY: the owner keeps the indices alive as long as the handle.
            let indices = unsafe { self.ring.indices.as_ref() };
            let head = indices.head.load(Ordering::Relaxed);
            let slot: *const Slot<T> = self.ring.slot(head);
            if indices.tail.load(Ordering::Acquire) == head {
                return None;
            }
            // SAFETY: as below: written and published by the producer, released right after.
            let item = unsafe { &*slot }.with(|p| unsafe { (*p).assume_init_read() });
            indices.head.store(head.wrapping_add(1), Ordering::Release);
            return Some(item);
        }
        if self.ready_items(1) == 0 && !self.caught_up() {
            return None;
        }
        // SAFETY: the slot at `head` was written and published by the producer (acquire load of
        // `tail` above); we move the item out and release the slot right after.
        let item = self
            .ring
            .slot(self.head())
            .with(|p| unsafe { (*p).assume_init_read() });
        self.release(1);
        Some(item)
    }

    /// A pop found the ring empty. A consumer that had been streaming (at least
    /// [`STREAMING_RUN`] pops since it last found it empty) waits [`CAUGHT_UP_PAUSES`] spin
    /// hints and reads the producer's index once more (see the module's *Catching up*);
    /// returns whether there is an item now.
    #[inline(always)]
    fn caught_up(&mut self) -> bool {
        let run = self.head.wrapping_sub(self.empty_at);
        if run != 0 {
            // The first empty pop after a run: what kind of consumer are we now?
            self.empty_at = self.head;
            self.streaming = run >= STREAMING_RUN;
            if self.streaming {
                self.cached_tail = read_after_waiting(&self.ring.indices().tail);
                return self.cached_tail != self.head;
            }
        }
        if !self.streaming {
            // One at a time: the next item and the tail will come from the producer's core
            // together; start fetching the item's line now so that the two misses overlap.
            // (Not while streaming: it would take lines the producer is filling.)
            crate::sync::prefetch_read(self.ring.slot(self.head));
        }
        false
    }

    /// The item at the front of the ring, without removing it.
    pub fn peek(&mut self) -> Option<&T> {
        if self.ready_items(1) == 0 {
            return None;
        }
        // SAFETY: initialized (see `pop`), and the producer does not touch it until we release
        // it, which needs `&mut self` and so ends this borrow first.
        Some(
            self.ring
                .slot(self.head())
                .with(|p| unsafe { (*p).assume_init_ref() }),
        )
    }

    /// The number of items in the ring right now (a fresh read of the producer's index).
    pub fn len(&self) -> usize {
        self.ring
            .indices()
            .tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head())
    }

    /// Whether the ring is empty right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring is full right now.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }
}

impl<T: Copy> Consumer<'_, T> {
    /// Copies items from the front of the ring into `out` until it is full or the ring is
    /// empty, and returns how many it copied.
    ///
    /// ```
    /// let (mut producer, mut consumer) = ringledger_core::spsc::channel::<u8>(8);
    /// producer.push_slice(b"hello");
    /// let mut out = [0; 4];
    /// assert_eq!(consumer.pop_slice(&mut out), 4);
    /// assert_eq!(&out, b"hell");
    /// assert_eq!(consumer.pop_slice(&mut out), 1); // only "o" was left
    /// ```
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize {
        let count = out.len().min(self.ready_items(out.len()));
        let (first, second) = ring_ranges(self.capacity(), self.head(), count);
        let (out_first, out_second) = out[..count].split_at_mut(first.1);
        for (src, dst) in [(first, out_first), (second, out_second)] {
            for (i, item) in dst.iter_mut().enumerate() {
                // SAFETY: these `count` slots hold published items (see `pop`); `T: Copy`.
                *item = self
                    .ring
                    .slot(src.0 + i)
                    .with(|p| unsafe { (*p).assume_init_read() });
            }
        }
        self.release(count);
        count
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
        f.debug_struct("spsc::Producer")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Consumer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("spsc::Consumer")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

#[cfg(not(loom))]
mod layout {
    use super::*;
    use static_assertions::{assert_impl_all, assert_not_impl_any, const_assert};

    assert_impl_all!(Producer<'static, u64>: Send);
    assert_impl_all!(Consumer<'static, u64>: Send);
    assert_not_impl_any!(Producer<'static, u64>: Sync, Clone);
    assert_not_impl_any!(Consumer<'static, u64>: Sync, Clone);
    assert_not_impl_any!(Producer<'static, core::cell::Cell<u8>>: Sync);
    assert_not_impl_any!(Producer<'static, *const u8>: Send);
    assert_not_impl_any!(Consumer<'static, *const u8>: Send);
    assert_impl_all!(Ring<u64, 4>: Send, Sync);
    assert_not_impl_any!(Ring<*const u8, 4>: Send, Sync);

    // The producer line and the consumer line never share a cache line (128 bytes covers the
    // adjacent-line prefetcher on x86_64 and the 128-byte lines of Apple and other aarch64 parts).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    const_assert!(core::mem::align_of::<CachePadded<LoadStoreUsize>>() == 128);
    const_assert!(
        core::mem::offset_of!(Indices, head).abs_diff(core::mem::offset_of!(Indices, tail))
            >= core::mem::align_of::<CachePadded<LoadStoreUsize>>()
    );
    const_assert!(
        core::mem::size_of::<CachePadded<LoadStoreUsize>>()
            >= core::mem::align_of::<CachePadded<LoadStoreUsize>>()
    );
}
