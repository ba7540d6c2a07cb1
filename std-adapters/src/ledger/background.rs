//! The ledger's background threads: one prepares the next segment file ahead of the writer
//! (allocated, its allocation synced, its pages faulted in) and faults in the active one; one
//! finishes sealed segments (syncs the seal, then writes the footer); in a buffered ledger, one
//! gives the newest segment its name once its header is synced (see `naming`; a synced
//! ledger's rolls do that themselves). Separate threads, so that a slow sync never holds up the
//! next file the writer needs, and a finish waiting for its time never holds up a name.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringledger_core::segment::encode_footer;

use super::naming::Naming;
use super::segment::Segment;
use super::LedgerConfig;
use crate::storage::{random_u64, Region, Storage};
use crate::sync::{lock, Mutex};

/// A segment file made ahead of time: its temporary name and its mapping.
pub(super) type Spare = (String, Box<dyn Region>);

enum Job {
    /// Create and pre-fault the next segment file, unless one is ready.
    Spare,
    /// Sync a sealed segment, then write its footer; not before the instant (buffered
    /// ledgers give the kernel's own writeback time to do most of the work first).
    Finish(Arc<Segment>, Instant),
    /// Fault in a segment's pages from this offset on.
    Prefault(Arc<Segment>, usize),
    /// Sync the newest segment and give it its name (see `naming`).
    Name,
}

/// The handle on the background threads; dropping it finishes the queued jobs and joins them.
pub(super) struct Background {
    /// To the preparing thread, to the syncing thread and (buffered ledgers) to the naming
    /// thread; `None` without threads.
    senders: Option<Queues>,
    spare: Arc<Mutex<Option<Spare>>>,
    threads: Vec<JoinHandle<()>>,
    storage: Arc<dyn Storage>,
    /// In manual mode (deterministic crash tests): the jobs not run yet, and who runs them.
    manual: Option<(Mutex<Vec<Job>>, Arc<Worker>)>,
    /// Set on drop: queued finishes run at once instead of waiting for their time.
    shutdown: Arc<AtomicBool>,
    finish_delay: Duration,
    /// A read-only ledger's: no threads, and every job is dropped (a reader never writes).
    inert: bool,
    /// The newest segment's name, given by the naming thread.
    naming: Arc<Naming>,
}

/// The background threads' job queues.
struct Queues {
    prepare: Sender<Job>,
    sync: Sender<Job>,
    /// None for a synced ledger, which has no naming thread: its rolls name each segment
    /// themselves.
    name: Option<Sender<Job>>,
}

impl Background {
    pub(super) fn start(
        storage: Arc<dyn Storage>,
        config: &LedgerConfig,
        poison: Arc<OnceLock<String>>,
        naming: Arc<Naming>,
    ) -> Self {
        let spare: Arc<Mutex<Option<Spare>>> = Arc::new(Mutex::new(None));
        let shutdown = Arc::new(AtomicBool::new(false));
        let finish_delay = match config.durability {
            super::Durability::Buffered => Duration::from_secs(1),
            super::Durability::Synced => Duration::ZERO,
        };
        let worker = Arc::new(Worker {
            shutdown: Arc::clone(&shutdown),
            buffered: config.durability == super::Durability::Buffered,
            storage: Arc::clone(&storage),
            spare: Arc::clone(&spare),
            poison,
            segment_size: config.segment_size,
            prefault: config.prefault,
            naming: Arc::clone(&naming),
        });
        if config.read_only || config.manual_background {
            return Self {
                senders: None,
                spare,
                threads: Vec::new(),
                storage,
                manual: (!config.read_only).then(|| (Mutex::new(Vec::new()), worker)),
                shutdown,
                finish_delay,
                inert: config.read_only,
                naming,
            };
        }
        let spawn = |name: &str| {
            let (sender, receiver) = mpsc::channel::<Job>();
            let worker = Arc::clone(&worker);
            let idle = name == "ringledger-prepare";
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    if idle {
                        run_when_idle();
                    }
                    while let Ok(job) = receiver.recv() {
                        worker.run(job);
                    }
                })
                .ok()
                .map(|thread| (sender, thread))
        };
        let buffered = config.durability == super::Durability::Buffered;
        let (senders, threads) = match (
            spawn("ringledger-prepare"),
            spawn("ringledger-sync"),
            buffered.then(|| spawn("ringledger-name")),
        ) {
            (Some((prepare, t1)), Some((sync, t2)), naming_thread @ (None | Some(Some(_)))) => {
                let (name, t3) = naming_thread.flatten().unzip();
                let queues = Queues {
                    prepare,
                    sync,
                    name,
                };
                (Some(queues), [t1, t2].into_iter().chain(t3).collect())
            }
            // No threads (the system refused): the writer does the work inline.
            (a, b, c) => {
                let threads = [a, b, c.flatten()].into_iter().flatten().map(|(s, t)| {
                    drop(s);
                    t
                });
                for thread in threads {
                    let _ = thread.join();
                }
                (None, Vec::new())
            }
        };
        Self {
            senders,
            spare,
            threads,
            storage,
            manual: None,
            shutdown,
            finish_delay,
            inert: false,
            naming,
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
            // Deterministic: no waiting for a finish's time.
            let job = match job {
                Job::Finish(segment, _) => Job::Finish(segment, Instant::now()),
                other => other,
            };
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
        if self.inert {
            return;
        }
        let due = Instant::now() + self.finish_delay;
        if let Err(Job::Finish(segment, _)) = self.try_send(Job::Finish(segment, due)) {
            // No thread: do it here.
            let _ = finish(&segment);
        }
    }

    /// Asks for the newest segment to be synced and named; with no thread for it, names it
    /// here. An error names the segment in the poison reason.
    pub(super) fn name(&self) -> Result<(), String> {
        if self.try_send(Job::Name).is_err() {
            return self
                .naming
                .name()
                .map(drop)
                .map_err(|e| crate::error_chain(&e));
        }
        Ok(())
    }

    /// Asks for a segment's pages from `from` on to be faulted in, unless a job already
    /// follows the writer there.
    pub(super) fn prefault(&self, segment: Arc<Segment>, from: usize) {
        if segment.start_prefault_job() {
            self.send(Job::Prefault(segment, from));
        }
    }

    fn send(&self, job: Job) {
        let _ = self.try_send(job);
    }

    fn try_send(&self, job: Job) -> Result<(), Job> {
        if self.inert {
            return Ok(());
        }
        if let Some((pending, _)) = &self.manual {
            lock(pending).push(job);
            return Ok(());
        }
        match &self.senders {
            Some(Queues {
                prepare,
                sync,
                name,
            }) => {
                let sender = match job {
                    Job::Finish(..) => sync,
                    Job::Name => match name {
                        Some(name) => name,
                        None => return Err(job),
                    },
                    Job::Spare | Job::Prefault(..) => prepare,
                };
                sender.send(job).map_err(|e| e.0)
            }
            None => Err(job),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Release);
        drop(self.senders.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        // In manual mode (or after a failed job), the newest segment may still be unnamed: a
        // closed ledger leaves every segment under its name. (A failure leaves the file to
        // the next open, which adopts it.)
        if !self.inert {
            if let Err(e) = self.naming.name() {
                tracing::warn!(
                    error = %crate::error_chain(&e),
                    "closing the ledger: the newest segment keeps its temporary name (the next open adopts it)"
                );
            }
        }
        if let Some((name, region)) = lock(&self.spare).take() {
            drop(region);
            let _ = self.storage.remove(&name);
        }
    }
}

struct Worker {
    shutdown: Arc<AtomicBool>,
    /// Whether the ledger is buffered: pages are faulted in writable, and segment files only
    /// allocated. A synced ledger's pages are faulted in clean (its syncs must not write pages
    /// of zeros ahead of the data) and its files get their zeros written.
    buffered: bool,
    storage: Arc<dyn Storage>,
    spare: Arc<Mutex<Option<Spare>>>,
    poison: Arc<OnceLock<String>>,
    segment_size: usize,
    prefault: bool,
    naming: Arc<Naming>,
}

/// The start of a spare segment's temporary name: `spare-<16 hex digits>.tmp`.
pub(super) const SPARE_PREFIX: &str = "spare-";

impl Worker {
    fn run(&self, job: Job) {
        match job {
            Job::Spare => {
                if lock(&self.spare).is_some() {
                    return;
                }
                let name = format!("{SPARE_PREFIX}{:016x}.tmp", random_u64());
                // A failure (a full disk) leaves no spare: the writer then creates the file
                // itself and reports the error to its caller.
                // A synced ledger's files get their zeros written: its syncs then commit no
                // metadata (see `Storage::create_written`).
                let created = if self.buffered {
                    self.storage.create(&name, self.segment_size)
                } else {
                    self.storage.create_written(&name, self.segment_size)
                };
                if let Ok(region) = created {
                    // A buffered ledger's file gets its first page written (zeros), so that
                    // the writer's header there at the roll is an overwrite: its sync then
                    // converts no unwritten extent (a roll's sync 0.7-1.4 ms -> 0.6 ms here).
                    // A failure leaves that to the roll.
                    if self.buffered {
                        let _ = region.write_at(0, &[0u8; HEADER_PAGE]);
                    }
                    // Make the allocation durable now, so that the writer's sync of the new
                    // header at the roll has a single page to write. (A failure here is not
                    // a lost write: the writer's own sync will report it.)
                    let _ = region.sync();
                    // No pages are faulted in here: a staged write (`pwrite`) fills the page
                    // cache without them, and a write through the mapping asks for them
                    // once the segment is in use.
                    *lock(&self.spare) = Some((name, region));
                }
            }
            Job::Finish(segment, due) => {
                while !self.shutdown.load(Ordering::Acquire) {
                    let now = Instant::now();
                    if now >= due {
                        break;
                    }
                    std::thread::sleep((due - now).min(Duration::from_millis(20)));
                }
                if Arc::strong_count(&segment) == 1 && !self.shutdown.load(Ordering::Acquire) {
                    // Deleted meanwhile, and nobody reads it: nothing to finish.
                    return;
                }
                if let Err(e) = finish(&segment) {
                    super::poison(
                        &self.poison,
                        format!(
                            "syncing sealed segment {}: {}",
                            segment.name,
                            crate::error_chain(&e)
                        ),
                    );
                }
            }
            Job::Name => {
                if let Err(e) = self.naming.name() {
                    super::poison(
                        &self.poison,
                        format!("naming the newest segment: {}", crate::error_chain(&e)),
                    );
                }
            }
            Job::Prefault(segment, from) => {
                if !self.prefault {
                    return;
                }
                let len = segment.mapping.len();
                let mut at = from;
                if !self.buffered {
                    // Clean pages cost nothing to keep around: all of them, in steps.
                    while at < len && !self.shutdown.load(Ordering::Acquire) {
                        let to = (at + PREFAULT_STEP).min(len);
                        segment.mapping.region().prefault(at..to, false);
                        at = to;
                    }
                    segment.set_prefaulted(len);
                    return;
                }
                // Dirty pages only a window ahead of the writer: pages of zeros dirty for
                // long would be written back for nothing, and a writer meeting a page under
                // writeback waits for the disk.
                // When the writer pauses, the job ends (after a short wait) and the writer
                // asks for a new one once it has used half the window: no polling while idle.
                let mut idle = 0;
                while at < len && !segment.is_sealed() && !self.shutdown.load(Ordering::Acquire) {
                    let end = segment.data_end();
                    let target = (end + PREFAULT_WINDOW).min(len);
                    // A writer that caught up faults its own next pages: a page this job is
                    // reading in stays locked until it is filled, and a writer faulting on it
                    // sleeps until then (and then waits to be woken), which cost writes of
                    // one entry a third of their time. So the job leaps ahead of it.
                    at = at
                        .max((end + PREFAULT_LEAD) & !(PREFAULT_STEP - 1))
                        .min(len);
                    if at < target {
                        let to = (at + PREFAULT_STEP).min(target);
                        segment.mapping.region().prefault(at..to, true);
                        segment.set_prefaulted(to);
                        at = to;
                        idle = 0;
                    } else if idle < IDLE_POLLS {
                        idle += 1;
                        std::thread::sleep(Duration::from_micros(200));
                    } else {
                        break;
                    }
                }
                segment.end_prefault_job();
            }
        }
    }
}

/// The first page of a segment file, which holds its header.
const HEADER_PAGE: usize = 4096;

/// How far ahead of the writer a buffered ledger's pages are faulted in writable.
pub(super) const PREFAULT_WINDOW: usize = 16 << 20;

/// How far ahead of the writer a prefault job resumes when the writer has caught up with it:
/// the pages in between are the writer's to fault (see `Worker::run`'s prefault loop).
const PREFAULT_LEAD: usize = 4 * PREFAULT_STEP;

/// How many 200 µs naps a prefault job waits for an idle writer before it ends (10 ms).
const IDLE_POLLS: u32 = 50;

/// How much a prefault job faults in per call. Small: the kernel here may not preempt a
/// thread inside a call (`PREEMPT_NONE`), and a fault on a shared file mapping can zero a
/// whole readahead window at once; between calls, a waking thread gets the core.
const PREFAULT_STEP: usize = 64 << 10;

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

/// Lowers the calling thread to `SCHED_IDLE` where there is one: the prepare thread's work
/// (creating, preallocating and prefaulting the next segment) is never urgent, since the
/// writer creates a segment itself when no spare is ready (and faults its own pages when the
/// prefault lags), while at normal priority the prefault takes whole time slices from the
/// threads a paced queue waits on: 4-15 ms stalls, several per second, on two cores
/// (`perf sched timehist` over `cargo run --release -p ringledger-benches --example paced`).
/// Best effort: a refusal leaves the thread as it was.
fn run_when_idle() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid `sched_param` for the call; pid 0 is this thread.
        let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::ledger::{Entry, Ledger, LedgerConfig};

    #[test]
    fn only_a_buffered_ledger_has_a_naming_thread() {
        use crate::storage::Durability;
        for (durability, threads) in [(Durability::Buffered, 3), (Durability::Synced, 2)] {
            let dir = tempfile::tempdir().unwrap();
            let config = LedgerConfig::default()
                .with_durability(durability)
                .with_segment_size(64 << 10);
            let ledger = Ledger::open(dir.path(), config).unwrap();
            let background = &ledger.inner.background;
            assert_eq!(background.threads.len(), threads, "{durability:?}");
            let names: Vec<_> = background
                .threads
                .iter()
                .map(|t| t.thread().name().unwrap_or_default().to_owned())
                .collect();
            assert_eq!(
                names.iter().any(|n| n == "ringledger-name"),
                durability == Durability::Buffered,
                "{names:?}"
            );
            // Rolls still name every segment: each file is under its own name once written.
            let payload = vec![3u8; 1000];
            for seq in 1..=300 {
                ledger.write(&[Entry::new(seq, payload.clone())]).unwrap();
            }
            assert!(ledger.segments().len() > 2);
            ledger.sync().unwrap();
            drop(ledger);
            let temporary = std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                .count();
            assert_eq!(temporary, 0, "{durability:?}");
            let reopened = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
            assert_eq!(reopened.head(), 300);
        }
    }

    #[test]
    fn a_prefault_job_leaves_the_pages_next_to_the_writer_to_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let config = LedgerConfig {
            manual_background: true,
            ..LedgerConfig::default()
        };
        let ledger = Ledger::open(dir.path(), config).unwrap();
        // One entry goes through the mapping, which asks for a prefault job.
        ledger.write(&[Entry::new(1, vec![7u8; 100])]).unwrap();
        let segment = Arc::clone(ledger.inner.segments().last().unwrap());
        let end = segment.data_end();
        assert!(ledger.run_background() > 0);
        let leap = (end + PREFAULT_LEAD) & !(PREFAULT_STEP - 1);
        assert!(leap > end + PREFAULT_STEP);
        // The writer's next pages are left to it: the job never locks a page it is about to
        // fault on; from the leap on, a window of pages is in.
        assert!(!segment.resident(end + 4096));
        assert!(!segment.resident(leap - 1));
        assert!(segment.resident(leap));
        let target = (end + PREFAULT_WINDOW).min(segment.mapping.len());
        assert!(segment.resident(target - 1));
        assert_eq!(segment.prefaulted(), target);
    }
}
