//! The ledger's background thread: prepares the next segment file (allocated and pre-faulted)
//! ahead of the writer, and finishes sealed segments (syncs the seal, then writes the footer).

use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use ringledger_core::segment::encode_footer;

use super::segment::Segment;
use super::{lock, LedgerConfig};
use crate::storage::{random_u64, Region, Storage};

/// A segment file made ahead of time: its temporary name and its mapping.
pub(super) type Spare = (String, Box<dyn Region>);

enum Job {
    /// Create and pre-fault the next segment file, unless one is ready.
    Spare,
    /// Sync a sealed segment, then write its footer.
    Finish(Arc<Segment>),
    /// Fault in a segment's pages from this offset on.
    Prefault(Arc<Segment>, usize),
}

/// The handle on the background thread; dropping it finishes the queued jobs and joins it.
pub(super) struct Background {
    sender: Option<Sender<Job>>,
    spare: Arc<Mutex<Option<Spare>>>,
    thread: Option<JoinHandle<()>>,
    storage: Arc<dyn Storage>,
    /// In manual mode (deterministic crash tests): the jobs not run yet, and who runs them.
    manual: Option<(Mutex<Vec<Job>>, Worker)>,
}

impl Background {
    pub(super) fn start(
        storage: Arc<dyn Storage>,
        config: &LedgerConfig,
        poison: Arc<OnceLock<String>>,
    ) -> Self {
        let (sender, receiver) = mpsc::channel::<Job>();
        let spare: Arc<Mutex<Option<Spare>>> = Arc::new(Mutex::new(None));
        let worker = Worker {
            storage: Arc::clone(&storage),
            spare: Arc::clone(&spare),
            poison,
            segment_size: config.segment_size,
            prefault: config.prefault,
        };
        if config.manual_background {
            return Self {
                sender: None,
                spare,
                thread: None,
                storage,
                manual: Some((Mutex::new(Vec::new()), worker)),
            };
        }
        let thread = std::thread::Builder::new()
            .name("ringledger-ledger".into())
            .spawn(move || {
                while let Ok(job) = receiver.recv() {
                    worker.run(job);
                }
            })
            .ok();
        Self {
            sender: thread.is_some().then_some(sender),
            spare,
            thread,
            storage,
            manual: None,
        }
    }

    /// In manual mode, runs the jobs queued so far (and returns how many); otherwise 0.
    pub(super) fn run_pending(&self) -> usize {
        let Some((pending, worker)) = &self.manual else {
            return 0;
        };
        let jobs = std::mem::take(&mut *lock(pending));
        let n = jobs.len();
        for job in jobs {
            worker.run(job);
        }
        n
    }

    /// The prepared segment file, if one is ready.
    pub(super) fn take_spare(&self) -> Option<Spare> {
        lock(&self.spare).take()
    }

    /// Asks for the next segment file to be prepared.
    pub(super) fn prepare_spare(&self) {
        self.send(Job::Spare);
    }

    /// Asks for a sealed segment's seal to be synced and its footer written.
    pub(super) fn finish(&self, segment: Arc<Segment>) {
        if let Err(Job::Finish(segment)) = self.try_send(Job::Finish(segment)) {
            // No thread: do it here.
            let _ = finish(&segment);
        }
    }

    /// Asks for a segment's pages from `from` on to be faulted in.
    pub(super) fn prefault(&self, segment: Arc<Segment>, from: usize) {
        self.send(Job::Prefault(segment, from));
    }

    fn send(&self, job: Job) {
        let _ = self.try_send(job);
    }

    fn try_send(&self, job: Job) -> Result<(), Job> {
        if let Some((pending, _)) = &self.manual {
            lock(pending).push(job);
            return Ok(());
        }
        match &self.sender {
            Some(sender) => sender.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some((name, region)) = lock(&self.spare).take() {
            drop(region);
            let _ = self.storage.remove(&name);
        }
    }
}

struct Worker {
    storage: Arc<dyn Storage>,
    spare: Arc<Mutex<Option<Spare>>>,
    poison: Arc<OnceLock<String>>,
    segment_size: usize,
    prefault: bool,
}

impl Worker {
    fn run(&self, job: Job) {
        match job {
            Job::Spare => {
                if lock(&self.spare).is_some() {
                    return;
                }
                let name = format!("spare-{:016x}.tmp", random_u64());
                // A failure (a full disk) leaves no spare: the writer then creates the file
                // itself and reports the error to its caller.
                if let Ok(region) = self.storage.create(&name, self.segment_size) {
                    if self.prefault {
                        region.prefault(0..region.len());
                    }
                    *lock(&self.spare) = Some((name, region));
                }
            }
            Job::Finish(segment) => {
                if let Err(e) = finish(&segment) {
                    let _ = self
                        .poison
                        .set(format!("syncing sealed segment {}: {e}", segment.name));
                }
            }
            Job::Prefault(segment, from) => {
                if self.prefault {
                    segment
                        .mapping
                        .region()
                        .prefault(from..segment.mapping.len());
                }
            }
        }
    }
}

/// Syncs a sealed segment, then writes its footer (left for the next sync or writeback: a
/// footer that never reaches the disk only costs the next open a scan).
pub(super) fn finish(segment: &Segment) -> std::io::Result<()> {
    segment.mapping.region().sync()?;
    // SAFETY: the footer is past the seal; readers never read it and the writer has moved
    // on to the next segment.
    unsafe {
        segment
            .mapping
            .write_footer(encode_footer(segment.header.salt, segment.data_end()))
    };
    Ok(())
}
