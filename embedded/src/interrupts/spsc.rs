//! SPSC: the SysTick handler produces, the main loop consumes.

use core::cell::RefCell;
use core::sync::atomic::Ordering;

use critical_section::Mutex;
use ringledger_core::spsc;

use super::{start_systick, stop_systick, ticks, wait_ticks, IDLE, JOB, SPSC_JOB, STALL_TICKS};
use crate::cell::TakeOnce;
use crate::harness::{Board, Failure, Outcome};
use crate::{ensure, ensure_eq, passed};

/// Items the SysTick handler produces.
const SPSC_ITEMS: u32 = 100_000;

/// The producer's side, owned by the SysTick handler while the check runs.
struct SpscProducer {
    producer: spsc::Producer<'static, u32>,
    next: u32,
    /// Ticks that met a full ring.
    full: u32,
}

static SPSC_PRODUCER: Mutex<RefCell<Option<SpscProducer>>> = Mutex::new(RefCell::new(None));

/// Pushes the next items until the ring is full or all are out.
pub(super) fn tick() {
    critical_section::with(|cs| {
        if let Some(side) = SPSC_PRODUCER.borrow_ref_mut(cs).as_mut() {
            while side.next < SPSC_ITEMS {
                if side.producer.push(side.next).is_err() {
                    side.full += 1;
                    break;
                }
                side.next += 1;
            }
        }
    });
}

/// SysTick pushes 100 000 items into a 16-slot SPSC ring; the main loop pops them in order.
pub fn systick_to_main(board: &mut Board) -> Outcome {
    static RING: TakeOnce<spsc::Ring<u32, 16>> = TakeOnce::new(spsc::Ring::new());
    let (producer, mut consumer) = RING.take().split();
    critical_section::with(|cs| {
        SPSC_PRODUCER.borrow(cs).replace(Some(SpscProducer {
            producer,
            next: 0,
            full: 0,
        }))
    });
    JOB.store(SPSC_JOB, Ordering::Release);
    let started = ticks();
    start_systick(&mut board.syst);

    let consumed = consume_spsc(&mut consumer);

    stop_systick(&mut board.syst);
    JOB.store(IDLE, Ordering::Release);
    let elapsed = ticks().wrapping_sub(started);
    let side = critical_section::with(|cs| SPSC_PRODUCER.borrow(cs).take());
    let pauses = consumed?;
    let Some(side) = side else {
        return Err(Failure::new(
            file!(),
            line!(),
            format_args!("the producer went missing"),
        ));
    };
    ensure_eq!(side.next, SPSC_ITEMS);
    ensure_eq!(consumer.pop(), None);
    ensure!(side.full > 0, "the producer never met a full ring");
    passed!(
        "{} items in {} interrupts, the producer filled the ring in {} of them, the consumer paused {} times",
        SPSC_ITEMS,
        elapsed,
        side.full,
        pauses
    )
}

/// Pops until every item arrived in order; returns how many times it paused.
fn consume_spsc(consumer: &mut spsc::Consumer<'static, u32>) -> Result<u32, Failure> {
    let mut expected = 0u32;
    let mut pauses = 0u32;
    let mut last_progress = ticks();
    while expected < SPSC_ITEMS {
        match consumer.pop() {
            Some(item) => {
                ensure_eq!(item, expected);
                expected += 1;
                if expected.is_multiple_of(2_048) {
                    // Let the producer run into a full ring.
                    wait_ticks(3);
                    pauses += 1;
                }
                last_progress = ticks();
            }
            None => ensure!(
                ticks().wrapping_sub(last_progress) < STALL_TICKS,
                "stalled after {} of {} items",
                expected,
                SPSC_ITEMS
            ),
        }
    }
    Ok(pauses)
}
