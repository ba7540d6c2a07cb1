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
///
/// ```
/// use std::sync::Arc;
/// use ringledger::consumer::{Consumer, ConsumerConfig};
/// use ringledger::ledger::{Entry, Ledger, LedgerConfig};
/// use ringledger::storage::sim::SimStorage;
/// use ringledger::table::{Table, TableConfig};
/// use ringledger::wait::Deadline;
///
/// let ledger = Ledger::open_in(Arc::new(SimStorage::new()), LedgerConfig::default())?;
/// let table = Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default())?);
/// ledger.write(&[Entry::new(1, "a"), Entry::new(2, "b"), Entry::new(3, "c")])?;
/// let consumer = Consumer::open(ledger, table.clone(), ConsumerConfig::named("audit"))?;
/// let entry = consumer.recv(Deadline::Forever)?;
/// let ack = consumer.mark(entry.sequence, false)?; // returns at once
/// ack.wait(std::time::Duration::from_secs(10))?; // the mark is in the table now
/// assert!(ack.is_done() && matches!(ack.try_result(), Some(Ok(()))));
/// assert_eq!(table.get("audit")?, [1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use = "dropping an ack throws away the result of the mark: `wait` for it, or `let _ =` to say so"]
pub struct Ack {
    /// `None`: acknowledged from the start (temporary consumer).
    pub(super) pending: Option<(Arc<Shared>, u64)>,
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
