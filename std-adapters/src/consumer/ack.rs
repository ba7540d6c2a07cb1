//! [`Ack`]: the result of one [`Consumer::mark`](super::Consumer::mark).

use std::fmt;
use std::time::Instant;

use super::{ConsumerError, Shared};
use crate::sync::{lock, wait_on, Arc};
use crate::wait::Deadline;

/// The result of one [`Consumer::mark`](super::Consumer::mark): `Ok(())` once the mark is persisted (at once for a
/// temporary consumer), or the table's error if persisting failed.
///
/// A mark is a ticket number, not an allocation: the consumer resolves tickets in order, so
/// an `Ack` looks up whether its ticket is below the acknowledged one. Clones share the
/// result; dropping an `Ack` does not undo the mark.
#[derive(Clone)]
#[must_use = "dropping an ack throws away the result of the mark: `wait` for it, or `let _ =` to say so"]
pub struct Ack {
    /// `None`: acknowledged from the start (temporary consumer).
    pending: Option<(Arc<Shared>, u64)>,
}

impl Ack {
    /// An `Ack` resolved from the start (a temporary consumer's).
    pub(super) fn settled() -> Self {
        Self { pending: None }
    }

    /// The `Ack` of ticket `ticket`.
    pub(super) fn pending(shared: Arc<Shared>, ticket: u64) -> Self {
        Self {
            pending: Some((shared, ticket)),
        }
    }

    /// Waits until the mark's result is known, or until `deadline`, and returns it.
    ///
    /// [`ConsumerError::TimedOut`] means the deadline passed first: waiting again is fine.
    pub fn wait(&self, deadline: impl Into<Deadline>) -> Result<(), ConsumerError> {
        let Some((shared, ticket)) = &self.pending else {
            return Ok(());
        };
        let deadline = deadline.into();
        let until = deadline.instant();
        let mut state = lock(&shared.state);
        loop {
            if let Some(result) = state.resolution(*ticket) {
                return result;
            }
            if deadline.has_passed() || until.is_some_and(|at| Instant::now() >= at) {
                return Err(ConsumerError::TimedOut);
            }
            state.ack_waiters += 1;
            state = wait_on(&shared.settled, state, until);
            state.ack_waiters -= 1;
        }
    }

    /// The mark's result if it is known; never waits.
    #[must_use]
    pub fn try_result(&self) -> Option<Result<(), ConsumerError>> {
        match &self.pending {
            None => Some(Ok(())),
            Some((shared, ticket)) => lock(&shared.state).resolution(*ticket),
        }
    }

    /// Whether the mark's result is known.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.try_result().is_some()
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ack")
            .field("result", &self.try_result())
            .finish()
    }
}
