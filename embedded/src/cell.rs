//! A value in a `static`, handed out once as `&'static mut`: how the checks give a ring that
//! lives in a `static` to `split`, so that its handles are `'static` and can go to an interrupt
//! handler.
//!
//! static_cell's `ConstStaticCell` does the same with a compare-and-swap, which thumbv6m has
//! only through portable-atomic's `critical-section` feature; that feature would turn every
//! atomic of the build into a critical section, the SPSC ring's indices included, and the size
//! report measures the ring without it. A critical section around one flag does the job here.

use core::cell::{Cell, UnsafeCell};

use critical_section::Mutex;

/// A value that [`take`](Self::take) hands out once, as `&'static mut`.
pub struct TakeOnce<T> {
    taken: Mutex<Cell<bool>>,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reachable only through `take`, which hands it out once, so no two
// contexts ever share it; handing it to another context moves it there, hence `T: Send`.
unsafe impl<T: Send> Sync for TakeOnce<T> {}

impl<T> TakeOnce<T> {
    /// Holds `value` until it is taken. Usable in a `static`.
    pub const fn new(value: T) -> Self {
        Self {
            taken: Mutex::new(Cell::new(false)),
            value: UnsafeCell::new(value),
        }
    }

    /// The value.
    ///
    /// # Panics
    /// When it was taken before (a check that runs twice).
    // Handing out `&mut` from `&self` once, guarded by the flag, is the point of the type.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> &'static mut T {
        let first = critical_section::with(|cs| !self.taken.borrow(cs).replace(true));
        assert!(first, "a TakeOnce was taken twice");
        // SAFETY: `taken` flipped from false to true inside the critical section exactly once,
        // in this call, so this is the only reference to the value there will ever be.
        unsafe { &mut *self.value.get() }
    }
}
