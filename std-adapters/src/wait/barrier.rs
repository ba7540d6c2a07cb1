//! Asymmetric memory barriers for the waiter-flag protocol.
//!
//! The protocol needs a store-load barrier on both sides: the notifier between publishing
//! (a ring index, a closed flag) and reading the sleeper count, the sleeper between raising
//! the sleeper count and re-reading the state. A `fence(SeqCst)` on the notifier's side is
//! expensive exactly when it matters: it waits for the just-published line to be owned
//! exclusively, which on a busy ring means a cross-core transfer on every item.
//!
//! So on Linux the two sides are made unequal: the notifier (hot path) issues [`light`], a
//! compiler-only barrier, and the sleeper (cold path, about to make a futex system call
//! anyway) issues [`heavy`], `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every
//! running thread of the process execute a full barrier before it returns. A light barrier
//! paired with a heavy one orders like two `SeqCst` fences (the pairing liburcu and folly's
//! `asymmetric_thread_fence_*` rely on). Where `membarrier` is unavailable (other systems, old
//! kernels, seccomp), under Miri, and under loom (which models the symmetric protocol) both
//! sides use `fence(SeqCst)`.

#[cfg(all(target_os = "linux", not(loom), not(miri)))]
mod imp {
    use std::sync::atomic::{compiler_fence, fence, AtomicU8, Ordering};

    const UNKNOWN: u8 = 0;
    const EXPEDITED: u8 = 1;
    const UNAVAILABLE: u8 = 2;

    /// Whether this process registered for expedited private membarriers. Set once by the
    /// first sleeper, never changed after: notifiers only go light once every sleeper goes heavy.
    static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    fn membarrier(cmd: libc::c_int) -> libc::c_long {
        // SAFETY: membarrier takes plain integers (command, flags, cpu id) and touches no
        // memory of ours; an unsupported command just returns -1.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_uint,
                0 as libc::c_int,
            )
        }
    }

    #[inline]
    pub(crate) fn light() {
        if STATE.load(Ordering::Relaxed) == EXPEDITED {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// Registers the process for expedited membarriers (once), so that notifiers can go
    /// light from the start. Called when a set of waiters is created.
    pub(crate) fn prepare() -> u8 {
        let mut state = STATE.load(Ordering::Acquire);
        if state == UNKNOWN {
            state = if membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 {
                EXPEDITED
            } else {
                UNAVAILABLE
            };
            STATE.store(state, Ordering::Release);
        }
        state
    }

    #[cold]
    pub(crate) fn heavy() {
        let state = prepare();
        if state != EXPEDITED || membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 {
            // Registration failed (then no notifier ever went light), or the call failed
            // after a successful registration (not expected): a full fence is still right
            // against notifiers that read the state before it was set.
            fence(Ordering::SeqCst);
        }
    }
}

#[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
mod imp {
    use crate::sync::{fence, Ordering};

    #[inline]
    pub(crate) fn light() {
        fence(Ordering::SeqCst);
    }

    pub(crate) fn prepare() {}

    pub(crate) fn heavy() {
        fence(Ordering::SeqCst);
    }
}

pub(crate) use imp::{heavy, light, prepare};

/// A full `SeqCst` fence: the sleeper's side for waiters whose notifier is not hot (one
/// notification per ledger write, not per item), where it is cheaper than a `membarrier`,
/// which interrupts every other running thread of the process each time one parks.
#[inline]
pub(crate) fn full() {
    crate::sync::fence(crate::sync::Ordering::SeqCst);
}
