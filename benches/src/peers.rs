//! The rings compared, one table per case: the single place where each crate's ring is built
//! and driven, shared by the criterion bench (`benches/rings.rs`) and the paired runner
//! (`examples/paired.rs`), so both measure exactly the same code.
//!
//! A [`Contender`] runs `n` items (round trips for [`echo_rtt`]) through one crate's ring with
//! the generic drivers of the crate root and returns the time its consumer (or echo initiator)
//! measured. Each closure is monomorphized for its crate, so the per-item path is inlined; the
//! only indirection is one call per run.

use std::sync::mpsc::{sync_channel, TrySendError};
use std::time::Duration;

use ringbuf::traits::{Consumer as _, Producer as _, Split as _};

use crate::{check_seq, chunked, copy_baseline, echo, fill_seq, mpsc, ping_pong, stream, Regime};

/// Capacity of every ring (heapless: `Queue<_, 1024>` holds 1023).
pub const CAP: usize = 1024;
/// Chunk size of [`spsc_chunk256`].
pub const CHUNK: usize = 256;

/// Our crate's name in every table; ratios are ours over each peer.
pub const OURS: &str = "ringledger";

/// One crate (or baseline) in a case.
pub struct Contender {
    /// The crate, or `baseline_…` for a baseline.
    pub name: &'static str,
    /// Runs `n` items and returns the measured time.
    pub run: Box<dyn Fn(u64) -> Duration + Sync>,
}

impl Contender {
    fn new(name: &'static str, run: impl Fn(u64) -> Duration + Sync + 'static) -> Self {
        Self {
            name,
            run: Box::new(run),
        }
    }
}

impl std::fmt::Debug for Contender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contender")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `u64` one at a time through capacity [`CAP`], in `regime`.
pub fn spsc_stream(regime: Regime) -> Vec<Contender> {
    vec![
        Contender::new(OURS, move |n| {
            stream(
                n,
                regime,
                ringledger_core::spsc::channel::<u64>(CAP),
                |p, v| p.push(v).is_ok(),
                |c| c.pop(),
            )
        }),
        Contender::new("rtrb", move |n| {
            stream(
                n,
                regime,
                rtrb::RingBuffer::<u64>::new(CAP),
                |p, v| p.push(v).is_ok(),
                |c| c.pop().ok(),
            )
        }),
        Contender::new("ringbuf", move |n| {
            stream(
                n,
                regime,
                ringbuf::HeapRb::<u64>::new(CAP).split(),
                |p, v| p.try_push(v).is_ok(),
                |c| c.try_pop(),
            )
        }),
        Contender::new("crossbeam_array_queue", move |n| {
            let q = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
            stream(n, regime, (&q, &q), |q, v| q.push(v).is_ok(), |q| q.pop())
        }),
        Contender::new("heapless_spsc", move |n| {
            let mut q = Box::new(heapless::spsc::Queue::<u64, CAP>::new());
            stream(
                n,
                regime,
                q.split(),
                |p, v| p.enqueue(v).is_ok(),
                |c| c.dequeue(),
            )
        }),
        Contender::new("std_sync_channel", move |n| {
            stream(
                n,
                regime,
                sync_channel::<u64>(CAP),
                |p, v| !matches!(p.try_send(v), Err(TrySendError::Full(_))),
                |c| c.try_recv().ok(),
            )
        }),
    ]
}

/// Chunks of [`CHUNK`] through the chunk APIs (`n` rounded down to a multiple of it), and the
/// raw copy through a shared buffer.
pub fn spsc_chunk256() -> Vec<Contender> {
    /// Writes and reads chunks through an rtrb-style chunk API: the same code for both crates.
    macro_rules! chunks {
        ($ring:expr) => {
            |n: u64| {
                chunked(
                    n / CHUNK as u64 * CHUNK as u64,
                    CHUNK,
                    $ring,
                    |p, start, len| match p.write_chunk_uninit(len) {
                        Ok(mut chunk) => {
                            let (a, b) = chunk.as_mut_slices();
                            fill_seq(a, start);
                            let len_a = a.len() as u64;
                            fill_seq(b, start + len_a);
                            // SAFETY: both slices were fully initialized just above.
                            unsafe { chunk.commit_all() };
                            true
                        }
                        Err(_) => false,
                    },
                    |c, start, len| {
                        let chunk = c.read_chunk(len).ok()?;
                        let (a, b) = chunk.as_slices();
                        let sum =
                            check_seq(a, start).wrapping_add(check_seq(b, start + a.len() as u64));
                        chunk.commit_all();
                        Some(sum)
                    },
                )
            }
        };
    }
    vec![
        Contender::new(OURS, chunks!(ringledger_core::spsc::channel::<u64>(CAP))),
        Contender::new("rtrb", chunks!(rtrb::RingBuffer::<u64>::new(CAP))),
        Contender::new("baseline_copy_shared_buffer", |n| {
            copy_baseline(n / CHUNK as u64 * CHUNK as u64, CAP, CHUNK)
        }),
    ]
}

/// One item there and back over two rings, `n` round trips; the baseline bounces one
/// `AtomicU64`.
pub fn echo_rtt() -> Vec<Contender> {
    vec![
        Contender::new(OURS, |n| {
            echo(
                n,
                ringledger_core::spsc::channel::<u64>(CAP),
                ringledger_core::spsc::channel::<u64>(CAP),
                |p, v| p.push(v).is_ok(),
                |c| c.pop(),
            )
        }),
        Contender::new("rtrb", |n| {
            echo(
                n,
                rtrb::RingBuffer::<u64>::new(CAP),
                rtrb::RingBuffer::<u64>::new(CAP),
                |p, v| p.push(v).is_ok(),
                |c| c.pop().ok(),
            )
        }),
        Contender::new("crossbeam_array_queue", |n| {
            let (qa, qb) = (
                crossbeam_queue::ArrayQueue::<u64>::new(CAP),
                crossbeam_queue::ArrayQueue::<u64>::new(CAP),
            );
            echo(
                n,
                (&qa, &qa),
                (&qb, &qb),
                |q, v| q.push(v).is_ok(),
                |q| q.pop(),
            )
        }),
        Contender::new("baseline_atomic_ping_pong", ping_pong),
    ]
}

/// Runs [`mpsc`] over a queue that every producer and the consumer share by reference
/// (`push(v) -> Result`, `pop() -> Option`): crossbeam's and thingbuf's.
macro_rules! shared_queue {
    ($queue:expr, $each:expr, $producers:expr) => {{
        let q = $queue;
        mpsc(
            $each,
            vec![&q; $producers],
            &q,
            |q, v| q.push(v).is_ok(),
            |q| q.pop(),
        )
    }};
}

/// `n` items in all from `producers` producers (`n / producers` each) to one consumer,
/// capacity [`CAP`].
pub fn mpsc_many(producers: usize) -> Vec<Contender> {
    let each = move |n: u64| n / producers as u64;
    vec![
        Contender::new(OURS, move |n| {
            let (p, c) = ringledger_core::mpsc::channel::<u64>(CAP);
            mpsc(
                each(n),
                vec![p; producers],
                c,
                |p, v| p.push(v).is_ok(),
                |c| c.pop(),
            )
        }),
        Contender::new("crossbeam_array_queue", move |n| {
            shared_queue!(
                crossbeam_queue::ArrayQueue::<u64>::new(CAP),
                each(n),
                producers
            )
        }),
        Contender::new("thingbuf", move |n| {
            shared_queue!(thingbuf::ThingBuf::<u64>::new(CAP), each(n), producers)
        }),
        Contender::new("std_sync_channel", move |n| {
            let (p, c) = sync_channel::<u64>(CAP);
            mpsc(
                each(n),
                vec![p; producers],
                c,
                |p, v| !matches!(p.try_send(v), Err(TrySendError::Full(_))),
                |c| c.try_recv().ok(),
            )
        }),
    ]
}
