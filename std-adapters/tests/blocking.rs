//! The blocking buffers through their public API: Ensign's ring cases ported, deadlines,
//! cancellation, close semantics, and multi-threaded stress with both sides blocking.

use std::thread;
use std::time::{Duration, Instant};

use ringledger::blocking::{mpsc, spsc, PopError, PushError, TryPopError, TryPushError};
use ringledger::wait::{CancelToken, Deadline};

const SHORT: Duration = Duration::from_millis(30);

/// Ensign: a size-1 ring is empty, takes one write, rejects the second, reads it back, is
/// empty again; 10,000 times.
#[test]
fn ensign_size_one_ring() {
    let (mut producer, mut consumer) = spsc::channel::<u64>(1);
    for i in 0..10_000 {
        assert_eq!(consumer.try_pop(), Err(TryPopError::Empty));
        producer.try_push(i).unwrap();
        assert_eq!(producer.try_push(i + 1), Err(TryPushError::Full(i + 1)));
        assert_eq!(consumer.try_pop(), Ok(i));
        assert_eq!(consumer.try_pop(), Err(TryPopError::Empty));
    }
}

/// Ensign's size-10 case at the nearest power of two: fill it, the next write is full, reads
/// come back in order, then empty.
#[test]
fn ensign_fill_then_drain_in_order() {
    let (mut producer, mut consumer) = spsc::channel::<u32>(8);
    for i in 0..8 {
        producer.try_push(i).unwrap();
    }
    assert!(producer.is_full());
    assert_eq!(
        producer.try_push(8).map_err(TryPushError::into_inner),
        Err(8)
    );
    for i in 0..8 {
        assert_eq!(consumer.try_pop(), Ok(i));
    }
    assert_eq!(consumer.try_pop(), Err(TryPopError::Empty));

    let (producer, mut consumer) = mpsc::channel::<u32>(8);
    for i in 0..8 {
        producer.try_push(i).unwrap();
    }
    assert_eq!(producer.try_push(8), Err(TryPushError::Full(8)));
    for i in 0..8 {
        assert_eq!(consumer.try_pop(), Ok(i));
    }
    assert_eq!(consumer.try_pop(), Err(TryPopError::Empty));
}

/// Ensign's `NewRing(0)` panicked on the first write; here the bad capacity is refused up front.
#[test]
#[should_panic(expected = "power of two")]
fn a_zero_capacity_is_refused_at_creation() {
    let _ = spsc::channel::<u8>(0);
}

#[test]
fn deadlines_bound_the_wait() {
    let (mut producer, mut consumer) = spsc::channel::<u8>(1);
    let start = Instant::now();
    assert_eq!(
        consumer.pop(Deadline::Timeout(SHORT)),
        Err(PopError::TimedOut)
    );
    assert!(start.elapsed() >= SHORT);
    assert_eq!(consumer.pop(Deadline::IMMEDIATE), Err(PopError::TimedOut));

    producer.push(1, Deadline::IMMEDIATE).unwrap();
    let start = Instant::now();
    let at = Deadline::At(start + SHORT);
    assert_eq!(producer.push(2, at), Err(PushError::TimedOut(2)));
    assert!(start.elapsed() >= SHORT);

    let (producer, mut consumer) = mpsc::channel::<u8>(2);
    assert_eq!(
        consumer.pop(Deadline::Timeout(SHORT)),
        Err(PopError::TimedOut)
    );
    producer.push(1, Deadline::IMMEDIATE).unwrap();
    producer.push(2, Deadline::IMMEDIATE).unwrap();
    assert_eq!(
        producer.push(3, Deadline::Timeout(SHORT)),
        Err(PushError::TimedOut(3))
    );
}

#[test]
fn close_wakes_a_waiting_consumer_which_drains_then_sees_closed() {
    let (mut producer, mut consumer) = spsc::channel::<u32>(4);
    thread::scope(|s| {
        let waiter = s.spawn(move || {
            let first = consumer.pop(Deadline::Forever);
            let rest: Vec<_> =
                std::iter::from_fn(|| consumer.pop(Deadline::Forever).ok()).collect();
            (first, rest, consumer.pop(Deadline::Forever))
        });
        thread::sleep(SHORT);
        producer.push(1, Deadline::Forever).unwrap();
        producer.push(2, Deadline::Forever).unwrap();
        producer.push(3, Deadline::Forever).unwrap();
        producer.close();
        assert_eq!(
            producer.push(4, Deadline::Forever),
            Err(PushError::Closed(4))
        );
        assert_eq!(producer.try_push(4), Err(TryPushError::Closed(4)));
        let (first, rest, last) = waiter.join().unwrap();
        assert_eq!(first, Ok(1));
        assert_eq!(rest, [2, 3]);
        assert_eq!(last, Err(PopError::Closed));
    });
}

#[test]
fn close_wakes_waiting_producers_and_hands_their_items_back() {
    let (producer, consumer) = mpsc::channel::<String>(2);
    producer.try_push("a".into()).unwrap();
    producer.try_push("b".into()).unwrap();
    thread::scope(|s| {
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let producer = producer.clone();
                s.spawn(move || producer.push(format!("w{i}"), Deadline::Forever))
            })
            .collect();
        thread::sleep(SHORT);
        consumer.close();
        for (i, w) in waiters.into_iter().enumerate() {
            match w.join().unwrap() {
                Err(PushError::Closed(item)) => assert_eq!(item, format!("w{i}")),
                other => panic!("expected Closed, got {other:?}"),
            }
        }
    });
    let mut consumer = consumer;
    assert_eq!(consumer.pop(Deadline::Forever).as_deref(), Ok("a"));
    assert_eq!(consumer.pop(Deadline::Forever).as_deref(), Ok("b"));
    assert_eq!(consumer.pop(Deadline::Forever), Err(PopError::Closed));
}

#[test]
fn dropping_an_end_closes_the_buffer() {
    let (mut producer, consumer) = spsc::channel::<u8>(2);
    drop(consumer);
    assert_eq!(
        producer.push(1, Deadline::Forever),
        Err(PushError::Closed(1))
    );

    let (producer, mut consumer) = mpsc::channel::<u8>(2);
    let second = producer.clone();
    producer.push(7, Deadline::Forever).unwrap();
    drop(producer);
    assert!(!consumer.is_closed(), "a producer is left");
    drop(second);
    assert_eq!(consumer.pop(Deadline::Forever), Ok(7));
    assert_eq!(consumer.try_pop(), Err(TryPopError::Closed));
}

#[test]
fn a_cancel_token_ends_waits_on_both_sides() {
    let token = CancelToken::new();
    let (mut producer, mut consumer) = spsc::channel::<u8>(1);
    thread::scope(|s| {
        let popper = s.spawn(|| consumer.pop_cancellable(Deadline::Forever, &token));
        thread::sleep(SHORT);
        token.cancel();
        assert_eq!(popper.join().unwrap(), Err(PopError::Cancelled));
    });
    producer.push(1, Deadline::Forever).unwrap();
    assert_eq!(
        producer.push_cancellable(2, Deadline::Forever, &token),
        Err(PushError::Cancelled(2))
    );
    let (producer, mut consumer) = mpsc::channel::<u8>(2);
    assert_eq!(
        consumer.pop_cancellable(Deadline::Forever, &token),
        Err(PopError::Cancelled)
    );
    producer.push(1, Deadline::Forever).unwrap();
    assert_eq!(
        consumer.pop_cancellable(Deadline::Forever, &token),
        Ok(1),
        "data wins"
    );
}

/// Both sides block constantly: a 2-slot ring between a producer and a consumer that each
/// pause now and then, so each side sleeps on the other many times.
#[test]
fn spsc_stress_with_both_sides_sleeping() {
    let n: u64 = if cfg!(miri) { 200 } else { 100_000 };
    let (mut producer, mut consumer) = spsc::channel::<u64>(2);
    thread::scope(|s| {
        s.spawn(move || {
            for i in 0..n {
                producer.push(i, Deadline::Forever).unwrap();
                if i % 10_007 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
        });
        for i in 0..n {
            assert_eq!(consumer.pop(Deadline::Forever), Ok(i));
            if i % 9_973 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(consumer.pop(Deadline::Forever), Err(PopError::Closed));
    });
}

/// Four producers push through a 4-slot ring; every item arrives once, each producer's in order.
#[test]
fn mpsc_stress_four_producers_in_order() {
    let per: u64 = if cfg!(miri) { 100 } else { 50_000 };
    let (producer, mut consumer) = mpsc::channel::<(u64, u64)>(4);
    thread::scope(|s| {
        for p in 0..4 {
            let producer = producer.clone();
            s.spawn(move || {
                for i in 0..per {
                    producer.push((p, i), Deadline::Forever).unwrap();
                }
            });
        }
        drop(producer);
        let mut next = [0u64; 4];
        let mut total = 0;
        loop {
            let got = consumer.pop_many(16, Deadline::Forever, |(p, i)| {
                assert_eq!(next[p as usize], i);
                next[p as usize] += 1;
            });
            match got {
                Ok(n) => total += n as u64,
                Err(PopError::Closed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(total, 4 * per);
        assert_eq!(next, [per; 4]);
    });
}

#[test]
fn errors_read_well_without_debug_items() {
    struct Opaque;
    let e: PushError<Opaque> = PushError::Closed(Opaque);
    assert_eq!(format!("{e:?}"), "Closed(..)");
    assert_eq!(e.to_string(), "buffer is closed");
    assert_eq!(
        PopError::TimedOut.to_string(),
        "timed out waiting for an item"
    );
}

/// The close race: producers push while another producer closes. Every push that returned
/// `Ok` is popped by a consumer that pops until `Closed`; every later push fails `Closed` with
/// its item.
#[test]
fn every_ok_push_reaches_a_consumer_that_pops_until_closed() {
    for round in 0..300u64 {
        let (producer, mut consumer) = mpsc::channel::<u64>(16);
        let (pushed, got) = std::thread::scope(|s| {
            let workers: Vec<_> = (0..3u64)
                .map(|w| {
                    let producer = producer.clone();
                    s.spawn(move || {
                        let mut ok = Vec::new();
                        for i in 0..200 {
                            match producer.push(w << 32 | i, Deadline::Forever) {
                                Ok(()) => ok.push(w << 32 | i),
                                Err(PushError::Closed(item)) => {
                                    assert_eq!(item, w << 32 | i);
                                    break;
                                }
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                        ok
                    })
                })
                .collect();
            let closer = producer.clone();
            s.spawn(move || {
                for _ in 0..round % 64 {
                    std::thread::yield_now();
                }
                closer.close();
            });
            drop(producer);
            let mut got = Vec::new();
            loop {
                match consumer.pop(Deadline::Forever) {
                    Ok(item) => got.push(item),
                    Err(PopError::Closed) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            let pushed: Vec<u64> = workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect();
            (pushed, got)
        });
        let (mut pushed, mut got) = (pushed, got);
        pushed.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, pushed, "round {round}: an Ok push was not received");
    }
}
