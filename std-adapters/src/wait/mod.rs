//! Waiting: the one small set of primitives every blocking API in this crate is built from.
//!
//! - [`Deadline`]: how long a call may wait: [`Forever`](Deadline::Forever), a relative
//!   [`Timeout`](Deadline::Timeout), or an absolute [`At`](Deadline::At) instant.
//! - [`CancelToken`]: a cloneable flag that, when set, wakes every waiter registered with it.
//! - [`Waiters`]: the waiter-flag protocol that makes waiting free on the fast path. A side
//!   that changes shared state (pushes an item, closes) calls [`Waiters::notify`], which is one
//!   store-load barrier and one load of a sleeper count that nobody writes unless someone
//!   sleeps: no mutex, no system call, no yield storm. A side that must wait spins briefly,
//!   then registers as a sleeper, fences, re-checks its condition and only then parks on a
//!   condition variable.
//!
//! Why it cannot lose a wake-up: the notifier does *publish; fence; read sleepers* and the
//! sleeper does *write sleepers; fence; read state*. With two `SeqCst` fences, at least one of
//! the two reads sees the other side's write (the store-buffering litmus test is forbidden).
//! On Linux the notifier's fence is only a compiler barrier and the sleeper's a `membarrier`
//! system call, which orders the same way at no cost to the hot path (see `barrier.rs`).
//! That is [`Waiters<Frequent>`](Frequent), for conditions notified once per item. Waiters of
//! a condition notified once per write of many items ([`Waiters<Rare>`](Rare), made by
//! [`Waiters::parking`]: a ledger's head) use a full fence on both sides instead, since a
//! `membarrier` interrupts every other running thread of the process each time one parks.
//! If the notifier sees the sleeper it takes the sleeper's mutex, which the sleeper holds from
//! registering until the condition variable releases it, so the notification lands in the
//! wait; if it does not, the sleeper's re-check sees the published state and does not park.
//! `loom-tests/tests/blocking.rs` checks exactly this.
//!
//! [`blocking`](crate::blocking) endpoints and the [`dedupe`](crate::dedupe) buffer use these
//! pieces; so should every later blocking API (streams, sources, ledger notifications).
//!
//! With the `async` feature, tasks wait on the same [`Waiters`] as threads
//! (`Waiters::poll_until` with a `TaskSlot`): a task counts as a sleeper while its waker
//! is registered, so [`notify`](Waiters::notify) stays one barrier and one load when nobody
//! waits, and wakes threads and tasks alike when someone does.

use std::fmt;
use std::time::{Duration, Instant};

#[cfg(feature = "async")]
mod asynch;
mod barrier;

#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub use asynch::TaskSlot;
#[cfg(feature = "async")]
use asynch::Tasks;
#[cfg(feature = "async")]
pub(crate) use asynch::WakerSet;
/// Without the `async` feature nothing but threads waits: the parking lock guards nothing.
#[cfg(not(feature = "async"))]
#[derive(Debug)]
struct Tasks;

#[cfg(not(feature = "async"))]
impl Tasks {
    fn empty() -> Self {
        Tasks
    }
}

use crate::sync::{lock, wait_on, Arc, AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};

/// Rounds of exponential spinning (1, 2, 4, ... 512 `spin_loop` hints, re-checking after each
/// round) before a waiter parks: the other side is often about to act, and a hand-off without
/// a futex round trip is ~100x cheaper. A few microseconds in all; no `yield_now` storms.
#[cfg(not(loom))]
const SPIN_ROUNDS: u32 = 10;

/// How long a blocking call may wait.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ringledger::wait::Deadline;
///
/// assert_eq!(Deadline::Forever.instant(), None);
/// let soon = Deadline::Timeout(Duration::from_millis(5)).instant().unwrap();
/// assert!(soon > Instant::now() - Duration::from_secs(1));
/// assert!(Deadline::At(Instant::now()).has_passed());
/// assert!(!Deadline::Forever.has_passed());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Deadline {
    /// Wait as long as it takes.
    #[default]
    Forever,
    /// Wait at most this long, measured from the start of the call.
    Timeout(Duration),
    /// Wait until this instant at the latest.
    At(Instant),
}

impl Deadline {
    /// Does not wait at all: the call tries once.
    pub const IMMEDIATE: Deadline = Deadline::Timeout(Duration::ZERO);

    /// The absolute instant this deadline ends, resolving a [`Timeout`](Deadline::Timeout)
    /// against now; `None` means never (also for a timeout too large to represent).
    ///
    /// Resolve once at the start of a call and wait against the result, so that spurious
    /// wake-ups do not extend the wait.
    #[must_use]
    pub fn instant(&self) -> Option<Instant> {
        match *self {
            Deadline::Forever => None,
            Deadline::Timeout(d) => Instant::now().checked_add(d),
            Deadline::At(at) => Some(at),
        }
    }

    /// Whether the deadline is already over (a zero timeout is over at once).
    #[must_use]
    pub fn has_passed(&self) -> bool {
        match *self {
            Deadline::Forever => false,
            Deadline::Timeout(d) => d.is_zero(),
            Deadline::At(at) => Instant::now() >= at,
        }
    }
}

impl From<Duration> for Deadline {
    fn from(timeout: Duration) -> Self {
        Deadline::Timeout(timeout)
    }
}

impl From<Instant> for Deadline {
    fn from(at: Instant) -> Self {
        Deadline::At(at)
    }
}

/// Why a wait ended without its condition becoming true.
///
/// ```
/// use std::time::Duration;
/// use ringledger::wait::{CancelToken, Deadline, WaitError, Waiters};
///
/// let waiters = Waiters::new();
/// let token = CancelToken::new();
/// let deadline = Deadline::Timeout(Duration::from_millis(5));
/// match waiters.wait_until::<()>(deadline, Some(&token), || None) {
///     Ok(()) => unreachable!("the condition never holds"),
///     Err(WaitError::TimedOut) => {} // try again, or give up
///     Err(WaitError::Cancelled) => unreachable!("nobody cancelled"),
///     Err(other) => panic!("{other}"),
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The deadline passed.
    #[error("the deadline passed")]
    TimedOut,
    /// The [`CancelToken`] was cancelled.
    #[error("the wait was cancelled")]
    Cancelled,
}

/// A mutex and condition variable that sleepers park on; shared with [`CancelToken`]s so that
/// cancelling can wake a sleeper without knowing what it waits for. With the `async` feature
/// the mutex also guards the wakers of the tasks that wait (see `asynch.rs`).
#[derive(Debug)]
struct Parking {
    lock: Mutex<Tasks>,
    cond: Condvar,
}

impl Parking {
    fn new() -> Self {
        Parking {
            lock: Mutex::new(Tasks::empty()),
            cond: Condvar::new(),
        }
    }

    /// Wakes every thread parked here (and, with the `async` feature, every task registered
    /// here, which stays registered: what a cancellation does).
    #[cold]
    fn wake_all(&self) {
        // Taking (and releasing) the lock orders this notification after the re-check of any
        // sleeper we saw registered: it holds the lock until the condvar wait releases it.
        // Notifying after the release spares the woken thread an immediate block on it.
        #[cfg(feature = "async")]
        let tasks = lock(&self.lock).wakers();
        #[cfg(not(feature = "async"))]
        drop(lock(&self.lock));
        self.cond.notify_all();
        #[cfg(feature = "async")]
        tasks.into_iter().for_each(std::task::Waker::wake);
    }
}

/// The sleepers on one condition (say "not empty"), and the protocol that wakes them.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use ringledger::wait::{Deadline, Waiters};
///
/// let ready = Arc::new(AtomicBool::new(false));
/// let waiters = Arc::new(Waiters::new());
/// let (r, w) = (ready.clone(), waiters.clone());
/// let t = std::thread::spawn(move || {
///     r.store(true, Ordering::Release); // publish ...
///     w.notify(); // ... then notify: free when nobody sleeps
/// });
/// let got = waiters.wait_until(Deadline::Forever, None, || ready.load(Ordering::Acquire).then_some(7));
/// assert_eq!(got, Ok(7));
/// t.join().unwrap();
/// ```
pub struct Waiters<N: Notified = Frequent> {
    sleepers: AtomicUsize,
    parking: Arc<Parking>,
    notified: std::marker::PhantomData<N>,
}

/// How often a [`Waiters`]' condition is notified, which decides how its two sides fence and
/// whether a waiter spins before it parks: [`Frequent`] (the default, [`Waiters::new`]) or
/// [`Rare`] ([`Waiters::parking`]). Sealed: only those two implement it.
///
/// ```
/// use ringledger::wait::{Frequent, Notified, Rare, Waiters};
///
/// /// Whoever holds waiters of either kind notifies them the same way.
/// fn publish<N: Notified>(waiters: &Waiters<N>) {
///     waiters.notify();
/// }
/// let per_item: Waiters<Frequent> = Waiters::new();
/// let per_write: Waiters<Rare> = Waiters::parking();
/// publish(&per_item);
/// publish(&per_write);
/// assert!(!per_item.has_sleepers() && !per_write.has_sleepers());
/// ```
pub trait Notified: sealed::Sealed + Send + Sync + 'static {
    /// Whether a waiter spins for a moment before it parks (never under loom).
    #[doc(hidden)]
    const SPIN: bool;
    /// The notifier's store-load barrier, between publishing and reading the sleepers, and
    /// that read.
    #[doc(hidden)]
    fn notifier_load(sleepers: &AtomicUsize) -> usize;
    /// The sleeper's store-load barrier, between registering and re-checking.
    #[doc(hidden)]
    fn sleeper_fence();
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Frequent {}
    impl Sealed for super::Rare {}
}

/// A condition notified once per item (a ring's "not empty"): notifying costs a compiler
/// barrier and a load, the sleeper pays with a `membarrier` (see the module documentation),
/// and a waiter spins for a few microseconds before it parks.
///
/// ```
/// use ringledger::wait::{Frequent, Waiters};
///
/// let not_empty: Waiters<Frequent> = Waiters::new(); // also plain `Waiters`
/// not_empty.notify(); // nobody waits: a compiler barrier and a load
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Frequent;

/// A condition notified once per write of many items (a ledger's head): both sides use a full
/// fence and a waiter parks at once; see [`Waiters::parking`].
///
/// ```
/// use std::time::Duration;
/// use ringledger::wait::{Deadline, Rare, WaitError, Waiters};
///
/// let head: Waiters<Rare> = Waiters::parking();
/// let waited = head.wait_until::<()>(Deadline::Timeout(Duration::from_millis(1)), None, || None);
/// assert_eq!(waited, Err(WaitError::TimedOut));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rare;

impl Notified for Frequent {
    const SPIN: bool = true;
    #[inline]
    fn notifier_load(sleepers: &AtomicUsize) -> usize {
        barrier::light();
        sleepers.load(Ordering::Relaxed)
    }
    fn sleeper_fence() {
        barrier::heavy();
    }
}

impl Notified for Rare {
    const SPIN: bool = false;
    /// A read-modify-write that changes nothing: on the sleeper count itself it is the
    /// store-load barrier and the load in one instruction (`lock xadd`, cheaper than a fence
    /// and a load), and it orders against the sleeper's own increment of that count.
    #[inline]
    fn notifier_load(sleepers: &AtomicUsize) -> usize {
        sleepers.fetch_add(0, Ordering::SeqCst)
    }
    fn sleeper_fence() {
        barrier::full();
    }
}

impl<N: Notified> fmt::Debug for Waiters<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiters")
            .field("sleepers", &self.sleepers.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for Waiters {
    fn default() -> Self {
        Self::new()
    }
}

impl Waiters {
    /// An empty set of waiters.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use ringledger::wait::{Deadline, Waiters};
    ///
    /// let ready = Arc::new(AtomicBool::new(false));
    /// let waiters = Arc::new(Waiters::new());
    /// let setter = {
    ///     let (ready, waiters) = (ready.clone(), waiters.clone());
    ///     std::thread::spawn(move || {
    ///         ready.store(true, Ordering::Release);
    ///         waiters.notify(); // after publishing the condition
    ///     })
    /// };
    /// let got = waiters.wait_until(Deadline::Forever, None, || ready.load(Ordering::Acquire).then_some(()));
    /// assert_eq!(got, Ok(()));
    /// setter.join().unwrap();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        barrier::prepare();
        Waiters::empty()
    }

    /// Waiters that park at once instead of spinning first. For a condition another thread
    /// changes only after its own wake-up (a ledger written by a producer's worker): there the
    /// spin holds a core the writer needs, and on two cores it doubles the median latency of
    /// a paced queue (`cargo run --release -p ringledger-benches --example paced`).
    ///
    /// Their two sides also fence alike (a read-modify-write of the sleeper count in
    /// [`notify`](Self::notify), a full fence before parking) instead of the asymmetric pair
    /// where the sleeper issues a `membarrier`: such
    /// a condition is notified once per write, not once per item, so the notifier's fence
    /// costs nothing worth saving, while a sleeper that parks after every write would
    /// interrupt the writer's core with the barrier each time.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use ringledger::wait::{Deadline, Waiters};
    ///
    /// let head = AtomicU64::new(0);
    /// let waiters = Waiters::parking(); // the writer needs the core more than the reader
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         head.store(1, Ordering::Release);
    ///         waiters.notify();
    ///     });
    ///     let ready = || (head.load(Ordering::Acquire) > 0).then_some(());
    ///     assert_eq!(waiters.wait_until(Deadline::Forever, None, ready), Ok(()));
    /// });
    /// ```
    #[must_use]
    pub fn parking() -> Waiters<Rare> {
        Waiters::empty()
    }
}

impl<N: Notified> Waiters<N> {
    /// No sleepers yet (the `membarrier` registration, where `N` needs it, is the caller's).
    fn empty() -> Self {
        Waiters {
            sleepers: AtomicUsize::new(0),
            parking: Arc::new(Parking::new()),
            notified: std::marker::PhantomData,
        }
    }

    /// Wakes every sleeper, if there is one. Call it *after* publishing the change sleepers
    /// wait for. With nobody asleep it costs a load of a line nobody writes, after a compiler
    /// barrier ([`Frequent`]) or as a read-modify-write ([`Rare`]).
    #[inline]
    pub fn notify(&self) {
        if N::notifier_load(&self.sleepers) != 0 {
            #[cfg(not(feature = "async"))]
            self.parking.wake_all();
            #[cfg(feature = "async")]
            self.wake_threads_and_tasks();
        }
    }

    /// Whether some thread is (about to be) asleep here. Only a hint: it can change at once.
    #[must_use]
    pub fn has_sleepers(&self) -> bool {
        self.sleepers.load(Ordering::Relaxed) != 0
    }

    /// Waits until `ready` returns `Some`, the deadline passes, or `cancel` is cancelled.
    ///
    /// `ready` is tried once without any locking; if that fails the caller registers as a
    /// sleeper and `ready` is re-tried under the parking lock before each sleep. It must not
    /// notify other [`Waiters`] itself (notify after this returns instead), or two sides
    /// waiting on each other's locks could deadlock. A ready value wins over cancellation
    /// and timeout.
    pub fn wait_until<R>(
        &self,
        deadline: Deadline,
        cancel: Option<&CancelToken>,
        mut ready: impl FnMut() -> Option<R>,
    ) -> Result<R, WaitError> {
        if let Some(value) = ready() {
            return Ok(value);
        }
        #[cfg(not(loom))]
        if N::SPIN && !deadline.has_passed() {
            for round in 0..SPIN_ROUNDS {
                for _ in 0..1u32 << round {
                    std::hint::spin_loop();
                }
                if let Some(value) = ready() {
                    return Ok(value);
                }
            }
        }
        let until = deadline.instant();
        let _registration = cancel.map(|token| token.register(&self.parking));
        let mut guard = lock(&self.parking.lock);
        loop {
            if let Some(value) = ready() {
                return Ok(value);
            }
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(WaitError::Cancelled);
            }
            if deadline.has_passed() || until.is_some_and(|at| Instant::now() >= at) {
                return Err(WaitError::TimedOut);
            }
            // Register, then re-check: a notifier that published before seeing us is seen
            // here; one that publishes later sees us (see the module documentation).
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            N::sleeper_fence();
            let value = ready();
            if value.is_none() && !cancel.is_some_and(CancelToken::is_cancelled) {
                guard = wait_on(&self.parking.cond, guard, until);
            }
            // Unregister at once, so that notifiers stop paying for a wake-up already given.
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
            if let Some(value) = value {
                return Ok(value);
            }
        }
    }
}

/// A cancellation flag shared by clones; cancelling wakes every waiter registered with it.
///
/// Pass it to [`Waiters::wait_until`] (or to the `*_cancellable` calls of
/// [`blocking`](crate::blocking)); cancelling from any thread ends those waits with
/// [`WaitError::Cancelled`]. Cancellation is permanent.
///
/// ```
/// use ringledger::wait::{CancelToken, Deadline, WaitError, Waiters};
///
/// let token = CancelToken::new();
/// let waiters = Waiters::new();
/// std::thread::scope(|s| {
///     s.spawn(|| token.cancel());
///     let never: Result<(), _> = waiters.wait_until(Deadline::Forever, Some(&token), || None);
///     assert_eq!(never, Err(WaitError::Cancelled));
/// });
/// assert!(token.is_cancelled());
/// ```
#[derive(Clone)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

struct CancelInner {
    cancelled: AtomicBool,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    parked: Vec<(u64, Arc<Parking>)>,
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    ///
    /// ```
    /// use ringledger::wait::{CancelToken, Deadline, WaitError, Waiters};
    ///
    /// let token = CancelToken::new();
    /// let waiters = Waiters::new();
    /// token.cancel();
    /// // A cancelled wait ends at once, whatever the deadline.
    /// let got = waiters.wait_until::<()>(Deadline::Forever, Some(&token), || None);
    /// assert_eq!(got, Err(WaitError::Cancelled));
    /// assert!(token.is_cancelled());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        CancelToken {
            inner: Arc::new(CancelInner {
                cancelled: AtomicBool::new(false),
                registry: Mutex::new(Registry::default()),
            }),
        }
    }

    /// Cancels the token and wakes every waiter registered with it. Idempotent.
    pub fn cancel(&self) {
        if self.inner.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        // Snapshot under the registry lock, wake outside it: no lock is ever held while
        // taking another one.
        let parked: Vec<Arc<Parking>> = lock(&self.inner.registry)
            .parked
            .iter()
            .map(|(_, parking)| Arc::clone(parking))
            .collect();
        for parking in parked {
            parking.wake_all();
        }
    }

    /// Whether [`cancel`](Self::cancel) was called on this token or a clone.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    fn register(&self, parking: &Arc<Parking>) -> Registration<'_> {
        Registration {
            token: self,
            id: self.add(parking),
        }
    }

    /// Adds `parking` to the places a cancel wakes; returns the id [`remove`](Self::remove) takes.
    fn add(&self, parking: &Arc<Parking>) -> u64 {
        let mut registry = lock(&self.inner.registry);
        let id = registry.next_id;
        registry.next_id += 1;
        registry.parked.push((id, Arc::clone(parking)));
        id
    }

    fn remove(&self, id: u64) {
        let mut registry = lock(&self.inner.registry);
        if let Some(i) = registry.parked.iter().position(|(each, _)| *each == id) {
            registry.parked.swap_remove(i);
        }
    }
}

/// Removes a waiter from its token's registry when the wait ends.
struct Registration<'a> {
    token: &'a CancelToken,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.token.remove(self.id);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_ends_the_wait() {
        let waiters = Waiters::new();
        let start = Instant::now();
        let got: Result<(), _> =
            waiters.wait_until(Deadline::Timeout(Duration::from_millis(20)), None, || None);
        assert_eq!(got, Err(WaitError::TimedOut));
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(!waiters.has_sleepers());
    }

    #[test]
    fn an_immediate_deadline_tries_once() {
        let waiters = Waiters::new();
        let mut tries = 0;
        let got: Result<(), _> = waiters.wait_until(Deadline::IMMEDIATE, None, || {
            tries += 1;
            None
        });
        assert_eq!(got, Err(WaitError::TimedOut));
        assert_eq!(tries, 2, "once unlocked, once registered");
    }

    #[test]
    fn a_ready_value_wins_over_cancellation() {
        let token = CancelToken::new();
        token.cancel();
        let waiters = Waiters::new();
        assert_eq!(
            waiters.wait_until(Deadline::Forever, Some(&token), || Some(1)),
            Ok(1)
        );
    }

    #[test]
    fn cancel_wakes_every_registered_waiter_and_unregisters() {
        let token = CancelToken::new();
        let a = Waiters::new();
        let b = Waiters::new();
        std::thread::scope(|s| {
            let ha = s.spawn(|| a.wait_until::<()>(Deadline::Forever, Some(&token), || None));
            let hb = s.spawn(|| b.wait_until::<()>(Deadline::Forever, Some(&token), || None));
            while lock(&token.inner.registry).parked.len() < 2 {
                std::thread::yield_now();
            }
            token.cancel();
            assert_eq!(ha.join().unwrap(), Err(WaitError::Cancelled));
            assert_eq!(hb.join().unwrap(), Err(WaitError::Cancelled));
        });
        assert!(lock(&token.inner.registry).parked.is_empty());
        token.cancel(); // idempotent
    }

    /// Two threads hand a turn back and forth through two sets of waiters, each parking
    /// until its turn comes: a lost wake-up would hang here (the deadline turns that into a
    /// failure instead).
    fn ping_pong<N: Notified>(make: fn() -> Waiters<N>) {
        const ROUNDS: u64 = 2_000;
        let turn = AtomicUsize::new(0);
        let (ping, pong) = (make(), make());
        let deadline = Deadline::Timeout(Duration::from_secs(30));
        std::thread::scope(|s| {
            s.spawn(|| {
                for round in 0..ROUNDS as usize {
                    let mine = || (turn.load(Ordering::Acquire) == 2 * round + 1).then_some(());
                    assert_eq!(pong.wait_until(deadline, None, mine), Ok(()));
                    turn.store(2 * round + 2, Ordering::Release);
                    ping.notify();
                }
            });
            for round in 0..ROUNDS as usize {
                turn.store(2 * round + 1, Ordering::Release);
                pong.notify();
                let mine = || (turn.load(Ordering::Acquire) == 2 * round + 2).then_some(());
                assert_eq!(ping.wait_until(deadline, None, mine), Ok(()));
            }
        });
        assert!(!ping.has_sleepers() && !pong.has_sleepers());
    }

    #[test]
    fn frequent_waiters_hand_a_turn_back_and_forth_without_losing_one() {
        ping_pong(Waiters::new);
    }

    #[test]
    fn rare_waiters_hand_a_turn_back_and_forth_without_losing_one() {
        ping_pong(Waiters::parking);
    }

    #[test]
    fn a_huge_timeout_means_forever() {
        assert_eq!(Deadline::Timeout(Duration::MAX).instant(), None);
    }
}
