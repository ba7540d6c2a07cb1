//! The one place the std layer's blocking primitives come from.
//!
//! Normally these are `std`'s; under `cfg(loom)` they are loom's, so that the waiting protocol
//! of [`wait`](crate::wait), the [`blocking`](crate::blocking) endpoints and the
//! [`dedupe`](crate::dedupe) buffer, and the ledger's publication (its head, tail and length,
//! the delete seqlock, each segment's published end and counts) are model-checked by
//! `loom-tests/` from the very same source. Nothing else in this crate names `std::sync` for these types.
#![allow(unused_imports)]

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard, RwLock,
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard, RwLock,
};

use std::time::Instant;

/// A spin-wait hint; under loom a yield, so that a model lets the thread being waited for run.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Locks `mutex`, ignoring poisoning: every structure guarded here is left consistent at each
/// point where user code (a sink, a drop) could panic, so a poisoned lock still holds valid state.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits on `condvar` until notified or until `until` (when given) passes.
///
/// Spurious wake-ups are possible: callers re-check their condition in a loop. Under loom,
/// which has no clock, a timed wait is an untimed one, so models use
/// [`Deadline::Forever`](crate::wait::Deadline::Forever) or notify explicitly.
pub(crate) fn wait_on<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    until: Option<Instant>,
) -> MutexGuard<'a, T> {
    match until {
        None => condvar
            .wait(guard)
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        Some(at) => {
            let remaining = at.saturating_duration_since(Instant::now());
            match condvar.wait_timeout(guard, remaining) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            }
        }
    }
}
