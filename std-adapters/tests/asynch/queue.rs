//! The producer and consumer for tasks: `write_async`, the producer's `Sink`, acks as
//! futures, `recv_async` and the consumer's `Stream`.

use std::future::{Future, IntoFuture};
use std::pin::pin;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ringledger::consumer::{Consumer, ConsumerConfig, ConsumerError};
use ringledger::ledger::{Entry, Ledger, LedgerConfig, LedgerError};
use ringledger::producer::{BatchSink, Producer, ProducerConfig, ProducerError};
use ringledger::storage::sim::SimStorage;
use ringledger::table::{Table, TableConfig};

use super::support::sim_ledger;
use super::{counting_waker, runtime};

fn ledger() -> Ledger {
    sim_ledger(&SimStorage::new(), LedgerConfig::default())
}

fn table() -> Arc<Table> {
    Arc::new(Table::open_in(Arc::new(SimStorage::new()), TableConfig::default()).unwrap())
}

/// A sink that writes a batch only when the test lets it through the gate, and records it.
struct Gate {
    open: std_mpsc::Receiver<()>,
    written: Arc<Mutex<Vec<u64>>>,
}

impl BatchSink for Gate {
    fn head(&self) -> u64 {
        0
    }

    fn write_batch(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
        self.open.recv().ok();
        let mut written = self.written.lock().unwrap();
        written.extend(entries.iter().map(|e| e.sequence));
        Ok(())
    }
}

/// A producer writing through a [`Gate`] one entry per batch, with room for one queued entry.
fn gated() -> (Producer, std_mpsc::Sender<()>, Arc<Mutex<Vec<u64>>>) {
    let (open, gate) = std_mpsc::channel();
    let written = Arc::new(Mutex::new(Vec::new()));
    let sink = Gate {
        open: gate,
        written: written.clone(),
    };
    let config = ProducerConfig {
        batch: 1,
        queue: 1,
        ..ProducerConfig::default()
    };
    (Producer::with_sink(sink, config).unwrap(), open, written)
}

#[test]
fn tasks_write_through_a_shared_producer_and_await_their_acks() {
    let ledger = ledger();
    let producer = Arc::new(Producer::new(ledger.clone(), ProducerConfig::default()).unwrap());
    runtime().block_on(async {
        // Sequences are taken and queued under one lock, as the producer asks of writers.
        let next = Arc::new(tokio::sync::Mutex::new(0u64));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (producer, next) = (producer.clone(), next.clone());
                tokio::spawn(async move {
                    for _ in 0..250 {
                        let ack = {
                            let mut next = next.lock().await;
                            *next += 1;
                            producer.write_async(Entry::new(*next, "event")).await
                        };
                        ack.unwrap().await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_eq!((ledger.len(), ledger.head()), (2000, 2000));
}

#[test]
fn the_producer_sink_queues_in_order_and_flush_waits_for_the_ledger() {
    let ledger = ledger();
    let config = ProducerConfig {
        batch: 16,
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::new(ledger.clone(), config).unwrap());
    runtime().block_on(async {
        let mut sink = Producer::sink(producer.clone());
        let mut entries = futures::stream::iter((1..=1000).map(|seq| Ok(Entry::new(seq, "e"))));
        sink.send_all(&mut entries).await.unwrap();
        assert_eq!(ledger.len(), 1000, "flushed: every entry is in the ledger");
        // A refused batch is reported by the flush.
        sink.send(Entry::new(5, "not monotonic")).await.unwrap_err();
    });
}

#[test]
fn a_write_cancelled_while_the_queue_is_full_queues_nothing() {
    let (producer, open, written) = gated();
    let first = producer
        .write(Entry::new(1, "a"), Duration::from_secs(5))
        .unwrap();
    // The worker holds 1 at the gate; 2 fills the queue.
    while producer.queued() != 0 {
        std::thread::yield_now();
    }
    let second = producer
        .write(Entry::new(2, "b"), Duration::from_secs(5))
        .unwrap();
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut third = pin!(producer.write_async(Entry::new(3, "c")));
        assert!(third.as_mut().poll(&mut cx).is_pending());
    } // cancelled at its await point
    open.send(()).unwrap();
    open.send(()).unwrap();
    futures::executor::block_on(async {
        first.await.unwrap();
        second.await.unwrap();
    });
    assert_eq!(woken.count(), 0, "a dropped future was woken");
    assert_eq!(*written.lock().unwrap(), [1, 2]);
    drop(open);
    producer.close();
}

#[test]
fn a_batch_write_waits_for_room_for_all_of_it_and_queues_nothing_when_cancelled() {
    let (producer, open, written) = gated();
    let _ = producer
        .write(Entry::new(1, "a"), Duration::from_secs(5))
        .unwrap();
    while producer.queued() != 0 {
        std::thread::yield_now();
    }
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    // A group of 2 in a queue of 1 waits for the queue to empty: it is, so it goes in.
    let group = {
        let mut group =
            pin!(producer.write_batch_async(vec![Entry::new(2, "b"), Entry::new(3, "c")]));
        match group.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(ack)) => ack,
            other => panic!("{other:?}"),
        }
    };
    {
        let mut late = pin!(producer.write_batch_async(vec![Entry::new(4, "d")]));
        assert!(
            late.as_mut().poll(&mut cx).is_pending(),
            "the queue holds the group"
        );
    } // cancelled
    let empty = futures::executor::block_on(producer.write_batch_async(Vec::new())).unwrap();
    futures::executor::block_on(empty.into_future()).unwrap();
    open.send(()).unwrap();
    open.send(()).unwrap();
    futures::executor::block_on(group.into_future()).unwrap();
    drop(open);
    producer.close();
    assert_eq!(woken.count(), 0, "a dropped future was woken");
    assert_eq!(*written.lock().unwrap(), [1, 2, 3]);
}

#[test]
fn a_write_waiting_for_room_is_woken_when_the_worker_takes_entries() {
    let (producer, open, written) = gated();
    let _ = producer
        .write(Entry::new(1, "a"), Duration::from_secs(5))
        .unwrap();
    while producer.queued() != 0 {
        std::thread::yield_now();
    }
    let _ = producer
        .write(Entry::new(2, "b"), Duration::from_secs(5))
        .unwrap();
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut third = pin!(producer.write_async(Entry::new(3, "c")));
    assert!(third.as_mut().poll(&mut cx).is_pending());
    open.send(()).unwrap(); // 1 written: the worker takes 2, making room
    while woken.count() == 0 {
        std::thread::yield_now();
    }
    let Poll::Ready(Ok(ack)) = third.as_mut().poll(&mut cx) else {
        panic!("woken without room");
    };
    assert!(
        matches!(third.as_mut().poll(&mut cx), Poll::Ready(Ok(_))),
        "polled again"
    );
    open.send(()).unwrap();
    open.send(()).unwrap();
    futures::executor::block_on(ack.into_future()).unwrap();
    assert_eq!(*written.lock().unwrap(), [1, 2, 3]);
}

#[test]
fn closing_the_producer_wakes_waiting_writers_and_resolves_awaited_acks() {
    let (producer, open, _) = gated();
    let producer = Arc::new(producer);
    runtime().block_on(async {
        let held = producer.write_async(Entry::new(1, "a")).await.unwrap();
        while producer.queued() != 0 {
            tokio::task::yield_now().await;
        }
        let queued = producer.write_async(Entry::new(2, "b")).await.unwrap();
        let waiting = {
            let producer = producer.clone();
            tokio::spawn(async move { producer.write_async(Entry::new(3, "c")).await.err() })
        };
        let awaited = tokio::spawn(queued.into_future());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let closer = {
            let producer = producer.clone();
            std::thread::spawn(move || producer.close())
        };
        assert!(matches!(
            waiting.await.unwrap(),
            Some(ProducerError::Closed)
        ));
        assert!(matches!(awaited.await.unwrap(), Err(ProducerError::Closed)));
        open.send(()).unwrap(); // let the batch at the gate finish
        held.await.unwrap();
        closer.join().unwrap();
    });
}

#[test]
fn a_consumer_stream_follows_the_ledger_and_its_acks_resolve() {
    let ledger = ledger();
    let table = table();
    let consumer = Consumer::open(
        ledger.clone(),
        table.clone(),
        ConsumerConfig::named("async"),
    )
    .unwrap();
    let seen = runtime().block_on(async {
        let writer = {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                for seq in 1..=300 {
                    ledger.write(&[Entry::new(seq, "e")]).unwrap();
                    if seq % 50 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            })
        };
        let mut seen = Vec::new();
        let mut entries = consumer.stream();
        while let Some(entry) = entries.next().await {
            let entry = entry.unwrap();
            seen.push(entry.sequence);
            let ack = consumer.mark(entry.sequence, false).unwrap();
            if entry.sequence == 300 {
                ack.await.unwrap();
                break;
            }
        }
        writer.await.unwrap();
        seen
    });
    assert_eq!(seen, (1..=300).collect::<Vec<_>>());
    assert_eq!(table.get("async").unwrap(), [300]);
}

#[test]
fn a_receiving_task_waits_for_room_in_the_window_and_wakes_on_the_persist() {
    let ledger = ledger();
    ledger
        .write(&(1..=3).map(|s| Entry::new(s, "e")).collect::<Vec<_>>())
        .unwrap();
    let consumer = Consumer::open(
        ledger,
        table(),
        ConsumerConfig::named("window").with_window(2),
    )
    .unwrap();
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    futures::executor::block_on(async {
        assert_eq!(consumer.recv_async().await.unwrap().sequence, 1);
        assert_eq!(consumer.recv_async().await.unwrap().sequence, 2);
    });
    let mut third = pin!(consumer.recv_async());
    assert!(
        third.as_mut().poll(&mut cx).is_pending(),
        "the window is full"
    );
    let ack = consumer.mark(2, true).unwrap();
    futures::executor::block_on(ack.into_future()).unwrap();
    while woken.count() == 0 {
        std::thread::yield_now();
    }
    assert!(matches!(third.as_mut().poll(&mut cx), Poll::Ready(Ok(e)) if e.sequence == 3));
}

#[test]
fn closing_a_consumer_ends_a_waiting_stream_and_recv() {
    let consumer =
        Arc::new(Consumer::open(ledger(), table(), ConsumerConfig::temporary()).unwrap());
    runtime().block_on(async {
        let streaming = {
            let consumer = consumer.clone();
            tokio::spawn(async move { consumer.stream().next().await.is_none() })
        };
        let receiving = {
            let consumer = consumer.clone();
            tokio::spawn(async move { consumer.recv_async().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        consumer.close().unwrap();
        assert!(streaming.await.unwrap());
        assert!(matches!(
            receiving.await.unwrap(),
            Err(ConsumerError::Closed)
        ));
    });
}

#[test]
fn a_recv_cancelled_at_the_head_loses_no_entry() {
    let ledger = ledger();
    let consumer = Consumer::open(ledger.clone(), table(), ConsumerConfig::temporary()).unwrap();
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut recv = pin!(consumer.recv_async());
        assert!(recv.as_mut().poll(&mut cx).is_pending());
    }
    ledger.write(&[Entry::new(1, "kept")]).unwrap();
    assert_eq!(woken.count(), 0, "a dropped future was woken");
    let entry = futures::executor::block_on(consumer.recv_async()).unwrap();
    assert_eq!(entry.payload, "kept");
}
