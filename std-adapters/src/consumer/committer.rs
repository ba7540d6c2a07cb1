//! The committer: the one thread of a persistent consumer, which writes its positions to the
//! table.
//!
//! It is the only persister, so persists never overlap and the stored list never goes back.
//! It writes the table without holding the consumer's lock ([`Marks::begin`] and
//! [`Marks::finish`] around the write), so `recv` and `mark` never wait for the disk and the
//! marks made meanwhile share the next write. It persists when marks are due (more than
//! `skip`, or a flush was requested), when the oldest deferred mark is older than the
//! timeout, and once more when the consumer stops; then it exits.
//!
//! It waits on a [`Waiters`](crate::wait::Waiters) for a flag the marks set, parking at once
//! ([`Waiters::parking`](crate::wait::Waiters::parking): a spin here only took CPU from the
//! consumer and the producer, 6% of a queue's samples): a mark that finds it awake pays a
//! fence and a load, not the system call a condition variable's notify costs whether or not
//! anyone waits.
//!
//! [`Marks::begin`]: super::marks::Marks::begin
//! [`Marks::finish`]: super::marks::Marks::finish

use std::time::{Duration, Instant};

use super::{ConsumerError, Shared};
use crate::sync::{lock, Ordering};
use crate::table::Table;
use crate::wait::Deadline;

/// Asks the scheduler not to let the committer preempt the thread running where it wakes
/// (`SCHED_BATCH`: its share of the CPU and its nice value stay as they were; only a wake-up no
/// longer takes the core at once), for a consumer with
/// [`relaxed_acks`](super::ConsumerConfig::relaxed_acks). Best effort: a refusal leaves the
/// thread as it was. A committer that inherited another policy (real-time, idle) is left
/// alone.
pub(super) fn no_wakeup_preemption() {
    #[cfg(all(target_os = "linux", not(loom)))]
    {
        // SAFETY: plain calls on this thread's own scheduling state.
        unsafe {
            if libc::sched_getscheduler(0) == libc::SCHED_OTHER {
                let param = libc::sched_param { sched_priority: 0 };
                let _ = libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
            }
        }
    }
}

/// Runs the committer of the consumer `name` until the consumer stops and its marks are
/// settled. `timeout`: how long deferred marks may wait.
pub(super) fn run(shared: &Shared, table: &Table, name: &str, timeout: Option<Duration>) {
    // Should this thread unwind, the marks it would have persisted fail instead of leaving
    // their acks waiting forever.
    let _abandon = Abandon(shared);
    let mut state = lock(&shared.state);
    loop {
        let stopping = state.stopped.is_some();
        let timer_due = timeout
            .zip(state.deferred_since)
            .is_some_and(|(timeout, since)| since.elapsed() >= timeout);
        let Some(marks) = state.marks.as_mut() else {
            return;
        };
        if marks.failed() {
            return;
        }
        if marks.flush_due() || stopping || timer_due {
            let Some(persist) = marks.begin() else {
                // Nothing deferred (the timer outlived its marks): at rest.
                debug_assert!(marks.settled());
                state.deferred_since = None;
                if stopping {
                    return;
                }
                continue;
            };
            state.deferred_since = None;
            drop(state);
            let written = if persist.unchanged {
                Ok(())
            } else {
                table.set(name, &persist.list)
            };
            state = lock(&shared.state);
            let Some(marks) = state.marks.as_mut() else {
                return;
            };
            let mut wake_room = false;
            match written {
                Ok(()) => {
                    marks.finish(persist, true);
                    state.progress = Instant::now();
                    wake_room = state.room_waiters > 0;
                }
                Err(e) => {
                    marks.finish(persist, false);
                    let error = ConsumerError::Table(std::sync::Arc::new(e));
                    state.persist_error = Some(error.clone());
                    state.stopped.get_or_insert(error);
                    shared.wake_all();
                }
            }
            let wake_settled = state.ack_waiters > 0;
            #[cfg(feature = "async")]
            shared.wake_tasks();
            if wake_room || wake_settled {
                // Woken once the lock is free: a thread woken under it would find it taken
                // and sleep until the unlock woke it a second time (see the producer's
                // worker). The loop looks at the state afresh after.
                drop(state);
                if wake_room {
                    shared.room.notify_all();
                }
                if wake_settled {
                    shared.settled.notify_all();
                }
                state = lock(&shared.state);
            }
            continue;
        }
        let wake = timeout
            .zip(state.deferred_since)
            .and_then(|(timeout, since)| since.checked_add(timeout));
        drop(state);
        // A timeout only means the timer is due: the loop looks at the state either way.
        let _ = shared
            .work
            .wait_until(wake.map_or(Deadline::Forever, Deadline::At), None, || {
                let flagged = shared.work_flag.load(Ordering::Acquire)
                    && shared.work_flag.swap(false, Ordering::AcqRel);
                flagged.then_some(())
            });
        state = lock(&shared.state);
    }
}

/// Fails the unpersisted marks when dropped by an unwind.
struct Abandon<'a>(&'a Shared);

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut state = lock(&self.0.state);
        if let Some(marks) = state.marks.as_mut() {
            marks.abandon();
        }
        state.stopped.get_or_insert(ConsumerError::Closed);
        drop(state);
        self.0.wake_all();
    }
}
