//! MPSC: a low-priority software interrupt and SysTick produce, the main loop consumes.

use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::scb::SystemHandler;
use cortex_m::peripheral::NVIC;
use critical_section::Mutex;
use ringledger_core::mpsc;

use super::{start_systick, stop_systick, ticks, IDLE, JOB, MPSC_JOB, SOFTWARE_IRQ, STALL_TICKS};
use crate::cell::TakeOnce;
use crate::harness::{Board, Failure, Outcome};
use crate::{ensure, ensure_eq, passed};

/// [`SOFTWARE_IRQ`] for the `cortex_m` NVIC API.
#[derive(Clone, Copy)]
struct SoftwareIrq;

// SAFETY: `SOFTWARE_IRQ` is a valid device interrupt number on both boards (see its docs).
unsafe impl InterruptNumber for SoftwareIrq {
    fn number(self) -> u16 {
        SOFTWARE_IRQ
    }
}

/// The low producer pushes at least this many items...
const LOW_MIN_ITEMS: u32 = 100_000;
/// ...and goes on until SysTick has pushed this many items in the middle of its push loop
/// (three full bursts). On the Cortex-M3 under QEMU a SysTick mostly lands while the ring is
/// full, so such pushes come at about 100 per 2 million items, and how many depends on the
/// host's speed: 100 made the check fail on a quiet machine.
const PREEMPTING_PUSHES_WANTED: u32 = 24;
/// but never more than this many (the check fails if that was not enough).
const LOW_MAX_ITEMS: u32 = 3_000_000;
/// The most items SysTick pushes per tick.
const HIGH_BURST: u32 = 8;
/// Items carry their producer in the top byte and their number in the rest.
const PRODUCER_SHIFT: u32 = 24;
const LOW_ID: u32 = 1;
const HIGH_ID: u32 = 2;

/// Hardware priorities (lower is more urgent); the top two bits, which both cores implement.
const HIGH_PRIORITY: u8 = 0x40;
const LOW_PRIORITY: u8 = 0xC0;

/// The two producers, handed to the handlers once the check has split the ring.
static MPSC_PRODUCERS: Mutex<Cell<Option<&'static [mpsc::Producer<'static, u32>; 2]>>> =
    Mutex::new(Cell::new(None));
/// The low producer's next item number (written by the software interrupt only).
static LOW_NEXT: AtomicU32 = AtomicU32::new(0);
/// The low producer has pushed its last item (set by the software interrupt).
static LOW_DONE: AtomicBool = AtomicBool::new(false);
/// The high producer's next item number (written by SysTick only).
static HIGH_NEXT: AtomicU32 = AtomicU32::new(0);
/// The high producer has stopped too, after the low one (set by SysTick).
static HIGH_DONE: AtomicBool = AtomicBool::new(false);
/// Whether the low-priority handler is in its push loop.
static LOW_PUSHING: AtomicBool = AtomicBool::new(false);
/// SysTick pushes that landed while the low-priority handler was pushing (SysTick only).
static PREEMPTING_PUSHES: AtomicU32 = AtomicU32::new(0);
/// Pushes SysTick found the ring full for (SysTick only).
static HIGH_FULL: AtomicU32 = AtomicU32::new(0);

fn mpsc_producers() -> Option<&'static [mpsc::Producer<'static, u32>; 2]> {
    critical_section::with(|cs| MPSC_PRODUCERS.borrow(cs).get())
}

/// Runs at low priority: pushes until the ring is full or it is done.
pub(super) fn low_priority_push() {
    let Some([producer, _]) = mpsc_producers() else {
        return;
    };
    if LOW_DONE.load(Ordering::Relaxed) {
        return;
    }
    LOW_PUSHING.store(true, Ordering::Relaxed);
    let mut next = LOW_NEXT.load(Ordering::Relaxed);
    loop {
        let enough = next >= LOW_MIN_ITEMS
            && PREEMPTING_PUSHES.load(Ordering::Relaxed) >= PREEMPTING_PUSHES_WANTED;
        if enough || next == LOW_MAX_ITEMS {
            LOW_DONE.store(true, Ordering::Release);
            break;
        }
        if producer.push((LOW_ID << PRODUCER_SHIFT) | next).is_err() {
            break;
        }
        next += 1;
        LOW_NEXT.store(next, Ordering::Relaxed);
    }
    LOW_PUSHING.store(false, Ordering::Relaxed);
}

/// Runs at high priority (SysTick): pushes a burst, preempting the low producer when it is in
/// its push loop; stops once the low producer is done.
pub(super) fn high_priority_push() {
    let Some([_, producer]) = mpsc_producers() else {
        return;
    };
    if HIGH_DONE.load(Ordering::Relaxed) {
        return;
    }
    if LOW_DONE.load(Ordering::Relaxed) {
        HIGH_DONE.store(true, Ordering::Release);
        return;
    }
    let preempting = LOW_PUSHING.load(Ordering::Relaxed);
    let mut next = HIGH_NEXT.load(Ordering::Relaxed);
    let mut pushed = 0;
    while pushed < HIGH_BURST {
        if producer.push((HIGH_ID << PRODUCER_SHIFT) | next).is_err() {
            HIGH_FULL.store(HIGH_FULL.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            break;
        }
        next += 1;
        pushed += 1;
    }
    HIGH_NEXT.store(next, Ordering::Relaxed);
    if preempting && pushed > 0 {
        let count = PREEMPTING_PUSHES.load(Ordering::Relaxed);
        PREEMPTING_PUSHES.store(count + pushed, Ordering::Relaxed);
    }
}

/// A low-priority software interrupt and SysTick push into one 32-slot MPSC ring; the main loop
/// checks that each producer's items arrive complete and in order. The low producer goes on
/// until SysTick has pushed in the middle of its push loop often enough to mean something.
pub fn two_priorities(board: &mut Board) -> Outcome {
    static RING: TakeOnce<mpsc::Ring<u32, 32>> = TakeOnce::new(mpsc::Ring::new());
    static PRODUCERS: TakeOnce<Option<[mpsc::Producer<'static, u32>; 2]>> = TakeOnce::new(None);
    let (producer, mut consumer) = RING.take().split();
    let producers: &'static _ = PRODUCERS.take().insert([producer.clone(), producer]);
    critical_section::with(|cs| MPSC_PRODUCERS.borrow(cs).set(Some(producers)));

    // SAFETY: no code here relies on a priority-based critical section (the critical sections
    // mask all interrupts), so changing the priorities cannot break one.
    unsafe {
        board
            .scb
            .set_priority(SystemHandler::SysTick, HIGH_PRIORITY);
        board.nvic.set_priority(SoftwareIrq, LOW_PRIORITY);
        NVIC::unmask(SoftwareIrq);
    }
    JOB.store(MPSC_JOB, Ordering::Release);
    let started = ticks();
    start_systick(&mut board.syst);

    let consumed = consume_mpsc(&mut consumer);

    stop_systick(&mut board.syst);
    NVIC::mask(SoftwareIrq);
    JOB.store(IDLE, Ordering::Release);
    critical_section::with(|cs| MPSC_PRODUCERS.borrow(cs).set(None));
    // SAFETY: as above; SysTick goes back to the most urgent priority.
    unsafe { board.scb.set_priority(SystemHandler::SysTick, 0) };
    let elapsed = ticks().wrapping_sub(started);
    let (low, high) = consumed?;

    ensure_eq!(consumer.pop(), None);
    let preempting = PREEMPTING_PUSHES.load(Ordering::Relaxed);
    ensure!(
        preempting >= PREEMPTING_PUSHES_WANTED,
        "SysTick pushed only {} times while the low-priority handler was pushing ({} items)",
        preempting,
        low
    );
    passed!(
        "{} + {} items in {} interrupts, {} pushed preempting the low producer, high found it full {} times",
        low,
        high,
        elapsed,
        preempting,
        HIGH_FULL.load(Ordering::Relaxed)
    )
}

/// Pends the low producer until it is done and pops everything, checking each producer's
/// sequence, until both producers stopped and all their items arrived; returns the counts.
fn consume_mpsc(consumer: &mut mpsc::Consumer<'static, u32>) -> Result<(u32, u32), Failure> {
    let mut next_low = 0u32;
    let mut next_high = 0u32;
    let mut last_progress = ticks();
    loop {
        // Read before popping: once both are done, this round's pops see every item.
        let finished = LOW_DONE.load(Ordering::Acquire) && HIGH_DONE.load(Ordering::Acquire);
        if !LOW_DONE.load(Ordering::Relaxed) {
            // Runs right here (it outranks the main loop), until the ring is full.
            NVIC::pend(SoftwareIrq);
        }
        let mut progress = false;
        while let Some(item) = consumer.pop() {
            let number = item & ((1 << PRODUCER_SHIFT) - 1);
            match item >> PRODUCER_SHIFT {
                LOW_ID => {
                    ensure_eq!(number, next_low);
                    next_low += 1;
                }
                HIGH_ID => {
                    ensure_eq!(number, next_high);
                    next_high += 1;
                }
                _ => ensure!(false, "item {:#x} from no producer", item),
            }
            progress = true;
        }
        if finished {
            break;
        }
        if progress {
            last_progress = ticks();
        }
        ensure!(
            ticks().wrapping_sub(last_progress) < STALL_TICKS,
            "stalled after {} + {} items",
            next_low,
            next_high
        );
    }
    ensure_eq!(next_low, LOW_NEXT.load(Ordering::Relaxed));
    ensure_eq!(next_high, HIGH_NEXT.load(Ordering::Relaxed));
    Ok((next_low, next_high))
}
