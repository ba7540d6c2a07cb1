//! The ledger for tasks (feature `async`): a future that resolves when the head reaches a
//! sequence, the async twin of [`Ledger::wait_for_head`].
//!
//! It waits on the same [`Waiters`](crate::wait::Waiters) as the blocking call, so every
//! write that publishes a head wakes waiting tasks and threads alike, and a write with
//! nobody waiting pays nothing more for it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Ledger;
use crate::sync::Ordering;
use crate::wait::{CancelToken, TaskSlot, WaitError};

impl Ledger {
    /// A future that resolves to the head once it is at least `seq`: the async form of
    /// [`wait_for_head`](Self::wait_for_head) (feature `async`). Every waiting task wakes on
    /// the write that gets there. It holds a clone of the ledger, so it can be spawned.
    ///
    /// There is no deadline: wrap the future in the runtime's timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: it only looks at the head, and dropping it leaves no waker registered.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    /// use ringledger::storage::sim::SimStorage;
    ///
    /// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let head = runtime.block_on(async {
    ///     let reached = tokio::spawn(ledger.wait_for_head_async(2));
    ///     ledger.write(&[Entry::new(1, "a")])?;
    ///     ledger.write(&[Entry::new(2, "b"), Entry::new(3, "c")])?;
    ///     Ok::<_, Box<dyn std::error::Error>>(reached.await?)
    /// })?;
    /// assert!(head >= 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_head_async(&self, seq: u64) -> WaitForHead {
        WaitForHead {
            ledger: self.clone(),
            seq,
            slot: TaskSlot::new(),
        }
    }

    /// Polls for the head to reach `seq`, registering the task in `slot` (cursors' streams
    /// wait with it, with their cancel token).
    pub(crate) fn poll_head(
        &self,
        cx: &mut Context<'_>,
        slot: &mut TaskSlot,
        seq: u64,
        cancel: Option<&CancelToken>,
    ) -> Poll<Result<u64, WaitError>> {
        if self.inner.follow.is_some() {
            // A read-only ledger learns of new entries by refreshing: a thread of its own
            // does that for tasks, and wakes them through the same waiters.
            self.follow_for_tasks();
            let _ = self.refresh();
        }
        let head = &self.inner.head;
        self.inner.waiters.poll_until(cx, slot, cancel, || {
            let now = head.load(Ordering::Acquire);
            (now >= seq).then_some(now)
        })
    }
}

/// The future of [`Ledger::wait_for_head_async`]: the head, once it is at least the
/// sequence asked for. Polling it again after it completed returns the head again.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// let runtime = tokio::runtime::Runtime::new()?;
/// runtime.block_on(async {
///     // No deadline of its own: a head that does not come is the runtime's timeout.
///     let waited = tokio::time::timeout(Duration::from_millis(20), ledger.wait_for_head_async(1));
///     assert!(waited.await.is_err());
///
///     ledger.write(&[Entry::new(7, "a")])?;
///     assert_eq!(ledger.wait_for_head_async(1).await, 7); // already there: ready at once
///     Ok::<_, Box<dyn std::error::Error>>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct WaitForHead {
    ledger: Ledger,
    seq: u64,
    slot: TaskSlot,
}

impl Future for WaitForHead {
    type Output = u64;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let this = self.get_mut();
        match this.ledger.poll_head(cx, &mut this.slot, this.seq, None) {
            Poll::Ready(Ok(head)) => Poll::Ready(head),
            // Without a cancel token the wait cannot end otherwise.
            Poll::Ready(Err(_)) | Poll::Pending => Poll::Pending,
        }
    }
}

impl fmt::Debug for WaitForHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForHead")
            .field("seq", &self.seq)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}
