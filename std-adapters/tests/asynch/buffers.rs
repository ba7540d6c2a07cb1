//! The blocking buffers' async forms: futures, the consumer's `Stream`, the producer's `Sink`.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Sink, SinkExt, StreamExt};
use ringledger::blocking::{mpsc, spsc, PopError, PushError};

use super::{counting_waker, runtime, Tracked};

#[test]
fn mpsc_tasks_hand_every_item_to_a_stream_in_order_per_producer() {
    const PRODUCERS: u32 = 8;
    const EACH: u32 = 5_000;
    let got = runtime().block_on(async {
        let (producer, consumer) = mpsc::channel::<(u32, u32)>(16);
        for p in 0..PRODUCERS {
            let producer = producer.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    producer.push_async((p, i)).await.unwrap();
                }
            });
        }
        drop(producer);
        consumer.into_stream().collect::<Vec<_>>().await
    });
    assert_eq!(got.len(), (PRODUCERS * EACH) as usize);
    let mut next = [0; PRODUCERS as usize];
    for (p, i) in got {
        assert_eq!(next[p as usize], i, "producer {p} out of order");
        next[p as usize] += 1;
    }
}

#[test]
fn spsc_tasks_hand_off_through_a_tiny_buffer() {
    let got = runtime().block_on(async {
        let (mut producer, mut consumer) = spsc::channel::<u32>(2);
        let writer = tokio::spawn(async move {
            for i in 0..20_000 {
                producer.push_async(i).await.unwrap();
            }
        });
        let mut got = Vec::new();
        while let Ok(item) = consumer.pop_async().await {
            got.push(item);
        }
        writer.await.unwrap();
        got
    });
    assert_eq!(got, (0..20_000).collect::<Vec<_>>());
}

#[test]
fn close_wakes_every_waiting_producer_task_with_its_item() {
    runtime().block_on(async {
        let (producer, consumer) = mpsc::channel::<u32>(2);
        producer.push_async(0).await.unwrap();
        producer.push_async(1).await.unwrap(); // full from now on
        let waiting: Vec<_> = (10..16)
            .map(|i| {
                let producer = producer.clone();
                tokio::spawn(async move { producer.push_async(i).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await; // let them register
        consumer.close();
        let mut refused = Vec::new();
        for task in waiting {
            match task.await.unwrap() {
                Err(PushError::Closed(item)) => refused.push(item),
                other => panic!("a waiting push ended with {other:?}"),
            }
        }
        refused.sort();
        assert_eq!(refused, [10, 11, 12, 13, 14, 15]);
    });
}

#[test]
fn close_wakes_a_waiting_consumer_task_after_the_last_item() {
    runtime().block_on(async {
        let (producer, mut consumer) = spsc::channel::<u32>(4);
        let reader = tokio::spawn(async move {
            let first = consumer.pop_async().await;
            let second = consumer.pop_async().await;
            (first, second)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        producer.close();
        assert_eq!(
            reader.await.unwrap(),
            (Err(PopError::Closed), Err(PopError::Closed))
        );
    });
}

#[test]
fn a_pop_cancelled_while_waiting_leaves_no_waker_and_loses_no_item() {
    let (mut producer, mut consumer) = spsc::channel::<u32>(4);
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut pop = pin!(consumer.pop_async());
        assert_eq!(pop.as_mut().poll(&mut cx), Poll::Pending); // the await point
    } // cancelled: dropped there
    producer.try_push(1).unwrap();
    assert_eq!(
        woken.0.load(Ordering::SeqCst),
        0,
        "a dropped future was woken"
    );
    // The item is still there for the next pop.
    let mut pop = pin!(consumer.pop_async());
    assert_eq!(pop.as_mut().poll(&mut cx), Poll::Ready(Ok(1)));
}

#[test]
fn a_push_cancelled_while_waiting_pushes_nothing_and_drops_its_item_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (producer, mut consumer) = mpsc::channel::<Tracked>(2);
    producer.try_push(Tracked(0, drops.clone())).ok().unwrap();
    producer.try_push(Tracked(1, drops.clone())).ok().unwrap();
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut push = pin!(producer.push_async(Tracked(2, drops.clone())));
        assert!(push.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the cancelled push's item");
    assert_eq!(consumer.try_pop().unwrap().0, 0);
    assert_eq!(
        woken.0.load(Ordering::SeqCst),
        0,
        "a dropped future was woken"
    );
    assert_eq!(consumer.try_pop().unwrap().0, 1);
    assert!(consumer.try_pop().is_err(), "the cancelled item was pushed");
    drop(producer);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn a_waiting_pop_is_woken_by_a_push_and_a_waiting_push_by_a_pop() {
    let (mut producer, mut consumer) = spsc::channel::<u32>(1);
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut pop = pin!(consumer.pop_async());
    assert!(pop.as_mut().poll(&mut cx).is_pending());
    assert!(pop.as_mut().poll(&mut cx).is_pending(), "a spurious poll");
    producer.try_push(4).unwrap();
    assert_eq!(woken.0.load(Ordering::SeqCst), 1);
    assert_eq!(pop.as_mut().poll(&mut cx), Poll::Ready(Ok(4)));

    producer.try_push(5).unwrap();
    let mut push = pin!(producer.push_async(6));
    assert!(push.as_mut().poll(&mut cx).is_pending());
    assert_eq!(
        pop.as_mut().poll(&mut cx),
        Poll::Ready(Ok(5)),
        "polled after completion: pops on"
    );
    assert_eq!(woken.0.load(Ordering::SeqCst), 2);
    assert_eq!(push.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
    assert_eq!(
        push.as_mut().poll(&mut cx),
        Poll::Ready(Ok(())),
        "polled after completion"
    );
    assert_eq!(pop.as_mut().poll(&mut cx), Poll::Ready(Ok(6)));
}

#[test]
fn timeouts_around_every_await_lose_no_item() {
    // A consumer that gives up on most of its waits (cancelling the pop at its await point)
    // while producer tasks push through a small buffer: every item arrives exactly once.
    const PRODUCERS: u32 = 4;
    const EACH: u32 = 2_000;
    let got = runtime().block_on(async {
        let (producer, mut consumer) = mpsc::channel::<u32>(4);
        for p in 0..PRODUCERS {
            let producer = producer.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    loop {
                        // Producers cancel too: a timed-out push is retried with a new item.
                        let push = producer.push_async(p * EACH + i);
                        match tokio::time::timeout(Duration::from_micros(50), push).await {
                            Ok(pushed) => break pushed.unwrap(),
                            Err(_) => continue,
                        }
                    }
                }
            });
        }
        drop(producer);
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_micros(20), consumer.pop_async()).await {
                Ok(Ok(item)) => got.push(item),
                Ok(Err(PopError::Closed)) => break got,
                Ok(Err(other)) => panic!("{other}"),
                Err(_) => tokio::task::yield_now().await,
            }
        }
    });
    let mut got = got;
    got.sort();
    assert_eq!(got, (0..PRODUCERS * EACH).collect::<Vec<_>>());
}

#[test]
fn a_sink_waits_for_room_and_pushes_in_order() {
    futures::executor::block_on(async {
        let (producer, mut consumer) = spsc::channel::<u32>(2);
        let mut sink = producer.into_sink();
        sink.send(0).await.unwrap();
        sink.send(1).await.unwrap();
        assert_eq!(sink.held(), 0);
        // Full: the send completes once the pop made room.
        let (sent, popped) = futures::join!(sink.send(2), consumer.pop_async());
        assert_eq!((sent, popped), (Ok(()), Ok(0)));
        assert_eq!(consumer.try_pop(), Ok(1));
        assert_eq!(consumer.try_pop(), Ok(2));
        sink.close().await.unwrap();
        assert_eq!(consumer.pop_async().await, Err(PopError::Closed));
    });
}

#[test]
fn a_sink_hands_back_the_item_it_holds_when_the_buffer_closes() {
    let (producer, consumer) = mpsc::channel::<u32>(2);
    let mut sink = producer.into_sink();
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    for i in 0..3 {
        assert!(std::pin::Pin::new(&mut sink).start_send(i).is_ok());
    }
    assert_eq!(sink.held(), 1);
    assert!(std::pin::Pin::new(&mut sink)
        .poll_flush(&mut cx)
        .is_pending());
    drop(consumer);
    match std::pin::Pin::new(&mut sink).poll_flush(&mut cx) {
        Poll::Ready(Err(PushError::Closed(2))) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn stream_and_sink_under_a_local_executor() {
    let mut pool = futures::executor::LocalPool::new();
    let (producer, consumer) = mpsc::channel::<u32>(4);
    let spawner = pool.spawner();
    for task in 0..3 {
        let mut sink = producer.clone().into_sink();
        futures::task::LocalSpawnExt::spawn_local(&spawner, async move {
            for i in 0..100 {
                sink.send(task * 100 + i).await.unwrap();
            }
        })
        .unwrap();
    }
    drop(producer);
    let mut got = pool.run_until(consumer.into_stream().collect::<Vec<_>>());
    got.sort();
    assert_eq!(got, (0..300).collect::<Vec<_>>());
}

#[test]
fn a_runtime_shut_down_with_waiting_tasks_loses_nothing() {
    let (producer, mut consumer) = mpsc::channel::<u32>(2);
    let (stuck_producer, stuck_consumer) = spsc::channel::<u32>(1);
    {
        let runtime = runtime();
        let producer = producer.clone();
        runtime.spawn(async move {
            producer.push_async(1).await.unwrap();
            producer.push_async(2).await.unwrap();
            producer.push_async(3).await // waits: full
        });
        let mut stuck_consumer = stuck_consumer;
        runtime.spawn(async move { stuck_consumer.pop_async().await });
        std::thread::sleep(Duration::from_millis(50));
    } // dropping the runtime drops the waiting futures
    assert_eq!(consumer.try_pop(), Ok(1)); // notifies with no task left: no panic
    producer.try_push(4).unwrap();
    assert_eq!((consumer.try_pop(), consumer.try_pop()), (Ok(2), Ok(4)));
    drop(stuck_producer);
}

#[test]
fn pop_many_async_takes_batches_from_producer_tasks_and_loses_none_when_cancelled() {
    let (producer, mut consumer) = mpsc::channel::<u32>(8);
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut batch = pin!(consumer.pop_many_async(4, |_| panic!("nothing to pop")));
        assert!(batch.as_mut().poll(&mut cx).is_pending());
    }
    producer.try_push(0).unwrap();
    assert_eq!(woken.count(), 0, "a dropped future was woken");
    let got = runtime().block_on(async move {
        for task in 0..4 {
            let producer = producer.clone();
            tokio::spawn(async move {
                for i in 0..500 {
                    producer.push_async(1 + task * 500 + i).await.unwrap();
                }
            });
        }
        drop(producer);
        let mut got = Vec::new();
        while let Ok(n) = consumer.pop_many_async(16, |item| got.push(item)).await {
            assert!((1..=16).contains(&n));
        }
        got
    });
    let mut got = got;
    got.sort();
    assert_eq!(got, (0..=2000).collect::<Vec<_>>());
}
