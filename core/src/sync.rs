//! The one place atomics and interior-mutable cells come from.
//!
//! Normally they are `portable-atomic`'s (so the same code runs on targets without
//! compare-and-swap); under `cfg(loom)` they are loom's, so the very same algorithms are
//! model-checked by `loom-tests/`. The [`UnsafeCell`] wrapper gives the std cell loom's
//! closure-based API, so that every access to a slot is visible to loom.
#![allow(unused_imports)]

#[cfg(not(loom))]
pub(crate) use portable_atomic::{fence, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU64;
/// 64-bit atomics (the sequence generator's state), where the target or a
/// `portable-atomic` backend provides compare-and-swap on them.
#[cfg(all(
    not(loom),
    any(
        target_has_atomic = "64",
        feature = "critical-section",
        feature = "portable-atomic-fallback"
    )
))]
pub(crate) use portable_atomic::AtomicU64;

#[cfg(all(feature = "alloc", target_has_atomic = "ptr", not(loom)))]
pub(crate) use alloc::sync::Arc;
#[cfg(all(feature = "alloc", loom))]
pub(crate) use loom::sync::Arc;

/// Tells the processor (or loom's scheduler) that this thread is spinning.
#[inline]
#[allow(dead_code)]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// Offers the rest of this thread's time slice to the other runnable threads (loom: lets
/// its scheduler switch); nothing without `std`.
#[inline]
#[allow(dead_code)]
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(all(not(loom), feature = "std"))]
    std::thread::yield_now();
}

/// A `core::cell::UnsafeCell` with loom's access API.
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[inline]
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// An `AtomicUsize` constructor that is `const` outside loom (loom's atomics are not).
/// (Unused where the MPSC ring is not built: targets without compare-and-swap and without a
/// `critical-section` backend.)
#[cfg(not(loom))]
#[inline]
#[allow(dead_code)]
pub(crate) const fn atomic_usize(value: usize) -> AtomicUsize {
    AtomicUsize::new(value)
}

/// An `AtomicUsize` constructor that is `const` outside loom (loom's atomics are not).
#[cfg(loom)]
#[inline]
pub(crate) fn atomic_usize(value: usize) -> AtomicUsize {
    AtomicUsize::new(value)
}

/// An `AtomicUsize` used only with loads and stores (the SPSC ring's indices): the target's
/// own on bare-metal Arm, where targets without compare-and-swap (thumbv6m) have plain atomic
/// loads and stores but portable-atomic's `critical-section` backend masks interrupts around
/// each (as it must for the read-modify-writes it emulates, which these never see).
#[cfg(all(not(loom), target_arch = "arm", target_os = "none"))]
pub(crate) use core::sync::atomic::AtomicUsize as LoadStoreUsize;

/// An `AtomicUsize` used only with loads and stores (the SPSC ring's indices).
#[cfg(not(all(not(loom), target_arch = "arm", target_os = "none")))]
pub(crate) use AtomicUsize as LoadStoreUsize;

/// A [`LoadStoreUsize`] constructor that is `const` outside loom.
#[cfg(not(loom))]
#[inline]
pub(crate) const fn load_store_usize(value: usize) -> LoadStoreUsize {
    LoadStoreUsize::new(value)
}

/// A [`LoadStoreUsize`] constructor (not `const` under loom).
#[cfg(loom)]
#[inline]
pub(crate) fn load_store_usize(value: usize) -> LoadStoreUsize {
    LoadStoreUsize::new(value)
}

/// Asks the processor to start fetching the cache line at `ptr` for reading. Only a hint: it
/// reads nothing in the language's sense, so it cannot race, and it is a no-op where there is
/// no such instruction (and under loom and Miri).
#[inline(always)]
pub(crate) fn prefetch_read<T>(ptr: *const T) {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch never faults and has no effect on memory, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.cast()) }
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
    let _ = ptr;
}
