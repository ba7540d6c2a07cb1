//! The async forms (feature `async`) through the public API: under a multi-threaded tokio
//! runtime, under `futures::executor`, and polled by hand where a test must stop a future at
//! an exact await point (cancellation, polling after completion).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

mod buffers;
mod queue;
mod streams;
#[path = "../support/mod.rs"]
mod support;

/// A waker that counts how often it was woken.
pub struct CountingWaker(pub AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl CountingWaker {
    /// How often it was woken.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A waker that counts its wake-ups, and the counter.
pub fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    (counter.clone(), Waker::from(counter))
}

/// An item that counts its drops: a lost item shows up as a drop nobody expected.
pub struct Tracked(pub u32, pub Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

/// A multi-threaded runtime with two workers, as a server would run.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}
