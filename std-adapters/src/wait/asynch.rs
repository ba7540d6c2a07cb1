//! Tasks that wait: the async side of [`Waiters`] (feature `async`).
//!
//! A task waits the way a thread does, with its waker where the thread has the condition
//! variable: under the parking lock it registers the waker and counts itself among the
//! sleepers, issues the same heavy barrier, re-checks its condition, and only then returns
//! `Pending`. [`Waiters::notify`] reads the same count: with nobody waiting it is still one
//! barrier and one load; with someone waiting it takes the wakers out (uncounting them) and
//! wakes them after the lock is released. The argument of the module documentation holds
//! unchanged (the registration is the sleeper's write, the re-check its read), so a task
//! never misses a notification, and `loom-tests/tests/asynch.rs` checks it.
//!
//! A registration lives in a [`TaskSlot`] that the future owns across polls. Completing
//! through [`Waiters::poll_until`] unregisters it; dropping the slot drops its waker at once
//! (the count it held is settled by the next notify or registration, which costs that notify
//! one turn of the lock). A [`CancelToken`] wakes registered tasks without unregistering them:
//! they see the cancellation when polled.

use std::fmt;
use std::task::{Context, Poll, Waker};

use super::{CancelToken, Notified, Parking, WaitError, Waiters};
use crate::sync::{lock, Arc, Ordering};

/// Wakers a notify takes out per turn of the parking lock; they are woken with the lock released.
const WAKE_BATCH: usize = 8;

/// The tasks registered with one [`Waiters`], guarded by its parking lock.
#[derive(Debug, Default)]
pub(super) struct Tasks {
    next_id: u64,
    /// Each registered task's id and waker. `None`: the task's slot was dropped; the entry
    /// still counts as a sleeper until a notify or a registration takes it out.
    entries: Vec<(u64, Option<Waker>)>,
}

impl Tasks {
    pub(super) fn empty() -> Self {
        Tasks::default()
    }

    /// Clones of the registered wakers, which stay registered: what a cancellation wakes.
    pub(super) fn wakers(&self) -> Vec<Waker> {
        self.entries.iter().filter_map(|(_, w)| w.clone()).collect()
    }

    fn position(&self, id: u64) -> Option<usize> {
        self.entries.iter().position(|(each, _)| *each == id)
    }
}

/// Where a future keeps its registration with a [`Waiters`] between polls.
///
/// A future that waits with [`Waiters::poll_until`] owns one slot for its whole life and
/// passes it to every poll. The slot is empty (no allocation, nothing registered) until a poll
/// finds the condition false; it is emptied again when a poll completes. Dropping it (the
/// future was dropped while waiting: cancelled) drops its waker at once, so a cancelled
/// future leaves no waker behind and loses nothing.
///
/// ```
/// use std::future::poll_fn;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use ringledger::wait::{TaskSlot, Waiters};
///
/// let ready = Arc::new(AtomicBool::new(false));
/// let waiters = Arc::new(Waiters::new());
/// let setter = {
///     let (ready, waiters) = (ready.clone(), waiters.clone());
///     std::thread::spawn(move || {
///         ready.store(true, Ordering::Release);
///         waiters.notify(); // wakes threads and tasks alike
///     })
/// };
/// let mut slot = TaskSlot::new();
/// let waited = poll_fn(|cx| {
///     waiters.poll_until(cx, &mut slot, None, || ready.load(Ordering::Acquire).then_some(()))
/// });
/// assert_eq!(futures::executor::block_on(waited), Ok(()));
/// assert!(!slot.is_registered());
/// setter.join().unwrap();
/// ```
#[derive(Default)]
pub struct TaskSlot {
    registered: Option<Registered>,
}

/// A task's entry in one [`Waiters`]' parking, and in its cancel token's registry.
struct Registered {
    parking: Arc<Parking>,
    id: u64,
    /// The token whose cancellation wakes the task, and the id it has there.
    cancel: Option<(CancelToken, u64)>,
}

impl Registered {
    /// Lets go of the registration where the sleeper count is not at hand: the waker goes
    /// now, the entry (and its count) at the next notify or registration.
    fn abandon(self) {
        let mut tasks = lock(&self.parking.lock);
        if let Some(i) = tasks.position(self.id) {
            tasks.entries[i].1 = None;
        }
        drop(tasks);
        if let Some((token, id)) = self.cancel {
            token.remove(id);
        }
    }
}

impl TaskSlot {
    /// An empty slot.
    ///
    /// ```
    /// use ringledger::wait::TaskSlot;
    ///
    /// let slot = TaskSlot::new();
    /// assert!(!slot.is_registered());
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        TaskSlot { registered: None }
    }

    /// Whether the slot holds a registration: the last poll returned `Pending`. (A notify may
    /// have taken its waker out since.)
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// use ringledger::wait::{TaskSlot, Waiters};
    ///
    /// let waiters = Waiters::new();
    /// let mut slot = TaskSlot::new();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let never = waiters.poll_until::<()>(&mut cx, &mut slot, None, || None);
    /// assert_eq!(never, Poll::Pending);
    /// assert!(slot.is_registered() && waiters.has_sleepers());
    /// waiters.notify(); // takes the waker out and wakes it
    /// assert!(!waiters.has_sleepers());
    /// ```
    #[must_use]
    pub fn is_registered(&self) -> bool {
        self.registered.is_some()
    }
}

impl Drop for TaskSlot {
    #[inline]
    fn drop(&mut self) {
        if self.registered.is_some() {
            self.abandon();
        }
    }
}

impl TaskSlot {
    #[cold]
    fn abandon(&mut self) {
        if let Some(registered) = self.registered.take() {
            registered.abandon();
        }
    }
}

impl fmt::Debug for TaskSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSlot")
            .field("registered", &self.is_registered())
            .finish()
    }
}

impl<N: Notified> Waiters<N> {
    /// Polls for `ready` to return `Some`: the async form of [`wait_until`](Self::wait_until),
    /// for a future's `poll` (feature `async`).
    ///
    /// Tries `ready`; if it returns `None` and `cancel` (when given) is not cancelled,
    /// registers the task's waker in `slot`, re-tries `ready`, and returns `Pending` if it
    /// still fails: the task is woken by the next [`notify`](Self::notify) or cancellation.
    /// A ready value wins over cancellation, as in `wait_until`. There is no deadline: a
    /// runtime's timer (`tokio::time::timeout`) drops the future instead, which is safe.
    ///
    /// `ready` runs without the parking lock held and must not notify other waiters itself.
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// use ringledger::wait::{CancelToken, TaskSlot, WaitError, Waiters};
    ///
    /// let waiters = Waiters::new();
    /// let token = CancelToken::new();
    /// let mut slot = TaskSlot::new();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let mut poll = || waiters.poll_until::<()>(&mut cx, &mut slot, Some(&token), || None);
    /// assert_eq!(poll(), Poll::Pending);
    /// token.cancel(); // wakes the task; its next poll says why
    /// assert_eq!(poll(), Poll::Ready(Err(WaitError::Cancelled)));
    /// assert!(!waiters.has_sleepers());
    /// ```
    #[inline]
    pub fn poll_until<R>(
        &self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
        cancel: Option<&CancelToken>,
        mut ready: impl FnMut() -> Option<R>,
    ) -> Poll<Result<R, WaitError>> {
        if let Some(done) = self.settle(slot, cancel, &mut ready) {
            return Poll::Ready(done);
        }
        self.register(cx.waker(), slot, cancel);
        // Registered, then re-check: a notifier that published before seeing the
        // registration is seen here; one that publishes later sees it (module documentation).
        match self.settle(slot, cancel, &mut ready) {
            Some(done) => Poll::Ready(done),
            None => Poll::Pending,
        }
    }

    /// Takes `slot`'s registration out of these waiters, if it is still there: for a future
    /// that completes on its own fast path, without [`poll_until`](Self::poll_until).
    #[inline]
    pub(crate) fn unregister(&self, slot: &mut TaskSlot) {
        if slot.registered.is_some() {
            self.unregister_registered(slot);
        }
    }

    #[cold]
    fn unregister_registered(&self, slot: &mut TaskSlot) {
        let Some(registered) = slot.registered.take() else {
            return;
        };
        if !Arc::ptr_eq(&registered.parking, &self.parking) {
            registered.abandon(); // the slot waited somewhere else
            return;
        }
        let mut tasks = lock(&self.parking.lock);
        if let Some(i) = tasks.position(registered.id) {
            tasks.entries.swap_remove(i);
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
        drop(tasks);
        if let Some((token, id)) = registered.cancel {
            token.remove(id);
        }
    }

    /// The outcome if the wait is over (`ready`, or cancelled), with `slot` unregistered.
    #[inline]
    fn settle<R>(
        &self,
        slot: &mut TaskSlot,
        cancel: Option<&CancelToken>,
        ready: &mut impl FnMut() -> Option<R>,
    ) -> Option<Result<R, WaitError>> {
        let outcome = match ready() {
            Some(value) => Ok(value),
            None if cancel.is_some_and(CancelToken::is_cancelled) => Err(WaitError::Cancelled),
            None => return None,
        };
        self.unregister(slot);
        Some(outcome)
    }

    /// Puts `waker` in `slot`'s registration here, creating it (counted as a sleeper, with
    /// the heavy barrier) unless it is still registered from an earlier poll.
    #[cold]
    fn register(&self, waker: &Waker, slot: &mut TaskSlot, cancel: Option<&CancelToken>) {
        if let Some(elsewhere) = slot
            .registered
            .take_if(|r| !Arc::ptr_eq(&r.parking, &self.parking))
        {
            elsewhere.abandon();
        }
        let mut tasks = lock(&self.parking.lock);
        if let Some(registered) = &slot.registered {
            if let Some(i) = tasks.position(registered.id) {
                // Polled again before a notify: still counted, only the waker may change.
                if let Some(old) = &mut tasks.entries[i].1 {
                    if !old.will_wake(waker) {
                        old.clone_from(waker);
                    }
                }
                return;
            }
        }
        // Entries of dropped slots go now, so that they never pile up.
        let before = tasks.entries.len();
        tasks.entries.retain(|(_, waker)| waker.is_some());
        let dropped = before - tasks.entries.len();
        let id = tasks.next_id;
        tasks.next_id += 1;
        tasks.entries.push((id, Some(waker.clone())));
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if dropped > 0 {
            self.sleepers.fetch_sub(dropped, Ordering::Relaxed);
        }
        drop(tasks);
        // A registration taken out by a notify keeps its place with the cancel token.
        let cancel = match slot.registered.take() {
            Some(Registered {
                cancel: Some(kept), ..
            }) => Some(kept),
            _ => cancel.map(|token| (token.clone(), token.add(&self.parking))),
        };
        slot.registered = Some(Registered {
            parking: Arc::clone(&self.parking),
            id,
            cancel,
        });
        N::sleeper_fence();
    }

    /// [`notify`](Self::notify)'s slow path: wakes the threads parked here, and takes out and
    /// wakes the registered tasks (a few at a time, never waking under the lock).
    #[cold]
    pub(super) fn wake_threads_and_tasks(&self) {
        let mut batch: [Option<Waker>; WAKE_BATCH] = Default::default();
        let mut tasks = lock(&self.parking.lock);
        let mut first = true;
        loop {
            let mut taken = 0;
            let mut woken = 0;
            while woken < WAKE_BATCH {
                let Some((_, waker)) = tasks.entries.pop() else {
                    break;
                };
                taken += 1;
                if let Some(waker) = waker {
                    batch[woken] = Some(waker);
                    woken += 1;
                }
            }
            if taken > 0 {
                self.sleepers.fetch_sub(taken, Ordering::Relaxed);
            }
            let more = !tasks.entries.is_empty();
            drop(tasks);
            if first {
                // As `Parking::wake_all`: after the lock was taken and released.
                self.parking.cond.notify_all();
                first = false;
            }
            batch[..woken]
                .iter_mut()
                .filter_map(Option::take)
                .for_each(Waker::wake);
            if !more {
                return;
            }
            tasks = lock(&self.parking.lock);
        }
    }
}

/// Wakers of tasks waiting for something a lock guards (a persist, an ack's result, room in
/// a queue): the async twin of a condition variable, for the pieces that wait under a mutex
/// rather than on [`Waiters`]. The owner keeps it under its lock, registers a task after
/// checking its condition under that lock, and wakes the set after changing the state under
/// it: the lock orders the two, so no wake-up is lost.
#[derive(Debug, Default)]
pub(crate) struct WakerSet {
    next_id: u64,
    entries: Vec<(u64, Waker)>,
}

impl WakerSet {
    /// Registers `waker` under `id` (a new id when `id` is `None` or was taken out by
    /// [`take`](Self::take)); returns whether the registration is new.
    pub(crate) fn register(&mut self, id: &mut Option<u64>, waker: &Waker) -> bool {
        if let Some(i) = id.and_then(|id| self.entries.iter().position(|(e, _)| *e == id)) {
            if !self.entries[i].1.will_wake(waker) {
                self.entries[i].1.clone_from(waker);
            }
            return false;
        }
        let new = self.next_id;
        self.next_id += 1;
        self.entries.push((new, waker.clone()));
        *id = Some(new);
        true
    }

    /// Takes `id`'s registration out, if it is still there; returns whether it was.
    pub(crate) fn remove(&mut self, id: &mut Option<u64>) -> bool {
        let Some(id) = id.take() else {
            return false;
        };
        match self.entries.iter().position(|(e, _)| *e == id) {
            Some(i) => {
                self.entries.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Takes every waker out, to wake once the lock is released.
    pub(crate) fn take(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.entries)
            .into_iter()
            .map(|(_, waker)| waker)
            .collect()
    }

    /// Whether no task is registered.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::future::poll_fn;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (std::sync::Arc<Counter>, Waker) {
        let counter = std::sync::Arc::new(Counter(AtomicUsize::new(0)));
        (counter.clone(), Waker::from(counter))
    }

    #[test]
    fn a_notify_wakes_every_registered_task_once_and_uncounts_it() {
        let waiters = Waiters::new();
        let (counter, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut slots: Vec<TaskSlot> = (0..20).map(|_| TaskSlot::new()).collect();
        for slot in &mut slots {
            assert!(waiters
                .poll_until::<()>(&mut cx, slot, None, || None)
                .is_pending());
        }
        assert_eq!(waiters.sleepers.load(Ordering::SeqCst), 20);
        waiters.notify();
        waiters.notify(); // nobody left: free again
        assert_eq!(counter.0.load(Ordering::SeqCst), 20);
        assert_eq!(waiters.sleepers.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn polling_again_before_a_notify_keeps_one_registration() {
        let waiters = Waiters::new();
        let (_, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut slot = TaskSlot::new();
        for _ in 0..3 {
            assert!(waiters
                .poll_until::<()>(&mut cx, &mut slot, None, || None)
                .is_pending());
        }
        assert_eq!(waiters.sleepers.load(Ordering::SeqCst), 1);
        assert_eq!(lock(&waiters.parking.lock).entries.len(), 1);
    }

    #[test]
    fn a_dropped_slot_leaves_no_waker_and_its_count_is_settled() {
        let waiters = Waiters::new();
        let (counter, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..5 {
            let mut slot = TaskSlot::new();
            assert!(waiters
                .poll_until::<()>(&mut cx, &mut slot, None, || None)
                .is_pending());
            drop(slot); // a cancelled future
            let tasks = lock(&waiters.parking.lock);
            assert!(tasks.entries.iter().all(|(_, w)| w.is_none()));
            assert!(
                tasks.entries.len() <= 1,
                "a registration purges the dropped ones"
            );
        }
        waiters.notify();
        assert_eq!(waiters.sleepers.load(Ordering::SeqCst), 0);
        assert_eq!(counter.0.load(Ordering::SeqCst), 0, "nobody to wake");
        assert!(lock(&waiters.parking.lock).entries.is_empty());
    }

    #[test]
    fn a_ready_poll_unregisters_and_a_cancel_unregisters_from_the_token() {
        let waiters = Waiters::new();
        let token = CancelToken::new();
        let ready = AtomicBool::new(false);
        let mut slot = TaskSlot::new();
        let mut cx = Context::from_waker(Waker::noop());
        let mut poll = |slot: &mut TaskSlot| {
            waiters.poll_until(&mut cx, slot, Some(&token), || {
                ready.load(Ordering::SeqCst).then_some(1)
            })
        };
        assert!(poll(&mut slot).is_pending());
        assert_eq!(lock(&token.inner.registry).parked.len(), 1);
        ready.store(true, Ordering::SeqCst);
        assert_eq!(poll(&mut slot), Poll::Ready(Ok(1)));
        assert!(!slot.is_registered());
        assert!(lock(&token.inner.registry).parked.is_empty());
        assert_eq!(waiters.sleepers.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn threads_and_tasks_wait_on_the_same_waiters() {
        let ready = std::sync::Arc::new(AtomicBool::new(false));
        let waiters = std::sync::Arc::new(Waiters::new());
        let thread = {
            let (ready, waiters) = (ready.clone(), waiters.clone());
            std::thread::spawn(move || {
                waiters.wait_until(super::super::Deadline::Forever, None, || {
                    ready.load(Ordering::Acquire).then_some(())
                })
            })
        };
        let task = {
            let (ready, waiters) = (ready.clone(), waiters.clone());
            std::thread::spawn(move || {
                let mut slot = TaskSlot::new();
                futures::executor::block_on(poll_fn(|cx| {
                    waiters.poll_until(cx, &mut slot, None, || {
                        ready.load(Ordering::Acquire).then_some(())
                    })
                }))
            })
        };
        while waiters.sleepers.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        ready.store(true, Ordering::Release);
        waiters.notify();
        assert_eq!(thread.join().unwrap(), Ok(()));
        assert_eq!(task.join().unwrap(), Ok(()));
    }
}
