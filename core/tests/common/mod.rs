//! Helpers shared by the ring tests.
#![allow(missing_docs)]
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Scales an iteration count down under Miri, where everything is thousands of times slower.
pub fn scaled(n: usize) -> usize {
    if cfg!(miri) {
        (n / 2000).max(8)
    } else {
        n
    }
}

/// Counts its drops in a shared counter, and panics on drop when told to.
#[derive(Debug)]
pub struct Tracked {
    pub id: usize,
    drops: Arc<AtomicUsize>,
    panic_on_drop: bool,
}

impl Tracked {
    pub fn new(id: usize, drops: &Arc<AtomicUsize>) -> Self {
        Self {
            id,
            drops: drops.clone(),
            panic_on_drop: false,
        }
    }

    pub fn panicking(id: usize, drops: &Arc<AtomicUsize>) -> Self {
        Self {
            id,
            drops: drops.clone(),
            panic_on_drop: true,
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panic_on_drop && !std::thread::panicking() {
            panic!("drop of item {} panics", self.id);
        }
    }
}

/// Records the ids of dropped items, to check each is dropped exactly once.
#[derive(Debug)]
pub struct Logged(pub usize, pub Rc<RefCell<Vec<usize>>>);

impl Drop for Logged {
    fn drop(&mut self) {
        self.1.borrow_mut().push(self.0);
    }
}

/// Proptest settings: `cases` runs natively, a handful under Miri, and no failure files under
/// Miri (whose isolation forbids touching the file system).
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let mut config = proptest::test_runner::Config::with_cases(if cfg!(miri) { 4 } else { cases });
    if cfg!(miri) {
        config.failure_persistence = None;
    }
    config
}

/// The longest operation sequence a model test generates: shorter under Miri.
pub fn max_ops(native: usize) -> usize {
    if cfg!(miri) {
        native / 5
    } else {
        native
    }
}
