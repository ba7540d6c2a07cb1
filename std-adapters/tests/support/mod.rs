//! What the integration tests share: a seeded generator, the environment knobs that size the
//! long runs, polling with a deadline, and ledgers over simulated storage. Each test file
//! takes what it needs (`mod support;`), so not every item is used by every file.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringledger::ledger::{Ledger, LedgerConfig};
use ringledger::storage::sim::SimStorage;
use ringledger::storage::{LockGuard, Region, Storage};

/// The splitmix64 finalizer: a well-mixed 64-bit function of `z`, for payloads and sequences
/// derived from a seed.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64: small, seedable (any seed, 0 included), good enough to pick operations. A
/// failing seed printed by a test replays the same run.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True once in `one_in` (on average).
    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// A number from the environment (`RINGLEDGER_POWER_SEEDS=50`), `None` when unset; a value
/// that is not a number fails the test with its name.
pub fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value}: {e}")),
    )
}

/// How long [`eventually`] waits: far above any healthy run, so a failure is a hang.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `condition` every millisecond until it holds; fails the test naming `what` after
/// [`PATIENCE`].
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A ledger over (a clone of) `sim`: the test keeps `sim` to crash, inspect or corrupt it.
pub fn sim_ledger(sim: &SimStorage, config: LedgerConfig) -> Ledger {
    Ledger::open_in(Arc::new(sim.clone()), config).unwrap()
}

/// Every regular file of `dir` with its bytes, by name.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Runs this test binary again as a child process: only the test `test` (which acts on the
/// environment `envs` and returns at once without it), its stdout piped.
pub fn spawn_self(
    test: &str,
    envs: &[(&str, &std::ffi::OsStr)],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = std::process::Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let lines = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    (child, lines)
}

/// A [`SimStorage`] seen through two hooks: `before_open` runs before every open (with the
/// file's name; an error fails the open), and `wrap` wraps every region created or opened.
/// The tests' way to make the storage misbehave at one chosen moment.
pub struct Hooked {
    pub sim: SimStorage,
    pub before_open: BeforeOpen,
    pub wrap: WrapRegion,
}

/// [`Hooked::before_open`].
pub type BeforeOpen = Box<dyn Fn(&str) -> std::io::Result<()> + Send + Sync>;
/// [`Hooked::wrap`].
pub type WrapRegion = Box<dyn Fn(Box<dyn Region>) -> Box<dyn Region> + Send + Sync>;

impl Hooked {
    /// `sim` with hooks that do nothing.
    pub fn new(sim: &SimStorage) -> Self {
        Self {
            sim: sim.clone(),
            before_open: Box::new(|_| Ok(())),
            wrap: Box::new(|region| region),
        }
    }
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooked").finish_non_exhaustive()
    }
}

impl Storage for Hooked {
    fn lock(&self) -> std::io::Result<Box<dyn LockGuard>> {
        self.sim.lock()
    }

    fn list(&self) -> std::io::Result<Vec<String>> {
        self.sim.list()
    }

    fn create(&self, name: &str, len: usize) -> std::io::Result<Box<dyn Region>> {
        Ok((self.wrap)(self.sim.create(name, len)?))
    }

    fn open(&self, name: &str, writable: bool) -> std::io::Result<Box<dyn Region>> {
        (self.before_open)(name)?;
        Ok((self.wrap)(self.sim.open(name, writable)?))
    }

    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        self.sim.rename(from, to)
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        self.sim.remove(name)
    }

    fn sync_dir(&self) -> std::io::Result<()> {
        self.sim.sync_dir()
    }

    fn read(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        self.sim.read(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.sim.write(name, bytes)
    }
}
