//! The ledger's head future and cursors read as futures and `Stream`s.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::storage::sim::SimStorage;
use ringledger::stream::{EventStream, LedgerStream, MemoryStream, StreamError, TagSet};
use ringledger::wait::Deadline;

use super::support::sim_ledger;
use super::{counting_waker, runtime};

fn ledger() -> Ledger {
    sim_ledger(&SimStorage::new(), LedgerConfig::default())
}

/// Entries `from..=to`, tagged by sequence modulo 3.
fn entries(from: u64, to: u64) -> Vec<Entry> {
    (from..=to)
        .map(|seq| Entry::new(seq, seq.to_le_bytes().to_vec()).with_tag((seq % 3) as u32))
        .collect()
}

#[test]
fn every_task_waiting_for_the_head_wakes_on_the_write_that_gets_there() {
    let ledger = ledger();
    let heads = runtime().block_on(async {
        let waiting: Vec<_> = (1..=10)
            .map(|seq| tokio::spawn(ledger.wait_for_head_async(seq * 10)))
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        for batch in 0..10 {
            ledger
                .write(&entries(batch * 10 + 1, batch * 10 + 10))
                .unwrap();
        }
        let mut heads = Vec::new();
        for task in waiting {
            heads.push(task.await.unwrap());
        }
        heads
    });
    for (i, head) in heads.into_iter().enumerate() {
        assert!(head >= (i as u64 + 1) * 10);
    }
}

#[test]
fn a_head_future_dropped_while_waiting_is_not_woken() {
    let ledger = ledger();
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut reached = pin!(ledger.wait_for_head_async(1));
        assert_eq!(reached.as_mut().poll(&mut cx), Poll::Pending);
    }
    ledger.write(&entries(1, 1)).unwrap();
    assert_eq!(woken.count(), 0);
    let mut reached = pin!(ledger.wait_for_head_async(1));
    assert_eq!(reached.as_mut().poll(&mut cx), Poll::Ready(1));
    assert_eq!(
        reached.as_mut().poll(&mut cx),
        Poll::Ready(1),
        "polled after completion"
    );
}

#[test]
fn a_ledger_cursor_stream_follows_a_writer_task_with_the_blocking_cursors_filter() {
    const LAST: u64 = 3_000;
    let ledger = ledger();
    let stream = LedgerStream::new(ledger.clone());
    let filter = TagSet::of([0, 2]);
    let got = runtime().block_on(async {
        let entries_stream = stream.open(1, filter.clone()).unwrap().into_stream();
        let writer = {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                for batch in 0..(LAST / 30) {
                    ledger
                        .write(&entries(batch * 30 + 1, batch * 30 + 30))
                        .unwrap();
                    tokio::task::yield_now().await;
                }
            })
        };
        let got: Vec<u64> = entries_stream
            .take_while(|entry| std::future::ready(entry.as_ref().unwrap().sequence < LAST))
            .map(|entry| entry.unwrap().sequence)
            .collect()
            .await;
        writer.await.unwrap();
        got
    });
    // The blocking cursor on the same data returns the same entries.
    let mut cursor = stream.open(1, filter).unwrap();
    let mut want = Vec::new();
    while let Some(entry) = cursor.try_next().unwrap() {
        if entry.sequence >= LAST {
            break;
        }
        want.push(entry.sequence);
    }
    assert_eq!(got, want);
    assert!(got.iter().all(|seq| seq % 3 != 1));
}

#[test]
fn a_stream_reports_a_truncation_ahead_of_it_and_ends() {
    let ledger = ledger();
    ledger.write(&entries(1, 10)).unwrap();
    let stream = LedgerStream::new(ledger.clone());
    let mut entries_stream = stream.open(1, TagSet::all()).unwrap().into_stream();
    futures::executor::block_on(async {
        assert_eq!(entries_stream.next().await.unwrap().unwrap().sequence, 1);
        ledger.delete(5).unwrap(); // 2..=5 were read ahead but not returned: gone
        match entries_stream.next().await {
            Some(Err(StreamError::Truncated {
                requested: 2,
                first_available: 6,
            })) => {}
            other => panic!("{other:?}"),
        }
        assert!(entries_stream.next().await.is_none());
        assert_eq!(entries_stream.position(), 2);
    });
}

#[test]
fn a_closer_or_a_cancel_wakes_a_task_waiting_in_a_stream() {
    let ledger = ledger();
    let stream = LedgerStream::new(ledger.clone());
    runtime().block_on(async {
        let mut closed = stream.open(1, TagSet::all()).unwrap().into_stream();
        let closer = closed.closer();
        let waiting = tokio::spawn(async move { closed.next().await.is_none() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        closer.close().unwrap();
        assert!(waiting.await.unwrap(), "a closed stream ends");

        let mut cancelled = stream.open(1, TagSet::all()).unwrap();
        let token = cancelled.cancel_token().clone();
        let waiting = tokio::spawn(async move { cancelled.next_async().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        token.cancel();
        assert!(matches!(
            waiting.await.unwrap(),
            Err(StreamError::Cancelled)
        ));
    });
}

#[test]
fn next_async_cancelled_while_waiting_loses_nothing() {
    let stream = MemoryStream::new(100, TagSet::all());
    let mut cursor = stream.open(1, TagSet::all()).unwrap();
    let (woken, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut next = pin!(cursor.next_async());
        assert!(next.as_mut().poll(&mut cx).is_pending());
    }
    stream.append(&entries(1, 2)).unwrap();
    assert_eq!(woken.count(), 0, "a dropped future was woken");
    assert_eq!(cursor.position(), 1);
    // No longer waiting: closing does not cancel the cursor's token.
    cursor.closer().close().unwrap();
    assert!(!cursor.cancel_token().is_cancelled());

    let mut cursor = stream.open(1, TagSet::all()).unwrap();
    assert_eq!(cursor.next(Deadline::IMMEDIATE).unwrap().sequence, 1);
    let mut next = pin!(cursor.next_async());
    assert!(matches!(next.as_mut().poll(&mut cx), Poll::Ready(Ok(e)) if e.sequence == 2));
}

#[test]
fn a_memory_stream_cursor_under_a_local_executor() {
    let stream = MemoryStream::new(1000, TagSet::all());
    let mut pool = futures::executor::LocalPool::new();
    let appender = stream.clone();
    futures::task::LocalSpawnExt::spawn_local(&pool.spawner(), async move {
        for seq in 1..=100 {
            appender.append(&entries(seq, seq)).unwrap();
            futures::future::ready(()).await;
        }
    })
    .unwrap();
    let reader = stream.open(1, TagSet::of([1])).unwrap().into_stream();
    let got: Vec<u64> = pool.run_until(
        reader
            .take(33)
            .map(|entry| entry.unwrap().sequence)
            .collect(),
    );
    assert_eq!(got, (0..33).map(|i| i * 3 + 1).collect::<Vec<_>>());
}

/// Tasks waiting on a read-only ledger that follows a writer (as in another process: its own
/// mappings, the writer's live page) wake when the writer writes, through the head future and
/// a cursor's `Stream`, across new segments.
#[test]
fn tasks_on_a_read_only_follower_wake_when_the_writer_writes() {
    let storage = SimStorage::new();
    let config = LedgerConfig::default().with_segment_size(8192);
    let writer = sim_ledger(&storage, config.clone());
    let reader = sim_ledger(&storage, config.with_read_only(true));
    let got: Vec<u64> = runtime().block_on(async {
        let head = tokio::spawn(reader.wait_for_head_async(300));
        let stream = LedgerStream::new(reader.clone());
        let cursor = stream.open(1, TagSet::all()).unwrap();
        let read = tokio::spawn(async move {
            cursor
                .into_stream()
                .take(300)
                .map(|entry| entry.unwrap().sequence)
                .collect::<Vec<_>>()
                .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        for batch in 0..30 {
            writer
                .write(&entries(batch * 10 + 1, batch * 10 + 10))
                .unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(head.await.unwrap() >= 300);
        read.await.unwrap()
    });
    assert_eq!(got, (1..=300).collect::<Vec<_>>());
    assert!(
        reader.segments().len() >= 2,
        "the reader followed across segments"
    );
}
