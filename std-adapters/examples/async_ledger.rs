//! Many tokio tasks append events to a ledger through one producer, and another task reads
//! them back as a `Stream` of a cursor, as they are written.
//!
//! ```sh
//! cargo run --release -p ringledger --features async --example async_ledger -- 8 10000
//! ```
//!
//! Arguments: writer tasks (default 8) and events per task (default 10 000). The ledger lives
//! in a temporary directory.

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use futures::{SinkExt, StreamExt};
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::producer::{Producer, ProducerConfig};
use ringledger::stream::{EventStream, LedgerStream, TagSet};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let tasks: u32 = args.next().map_or(Ok(8), |a| a.parse())?;
    let per_task: u64 = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let total = u64::from(tasks) * per_task;

    let dir = tempfile::tempdir()?;
    let ledger = Ledger::open(dir.path(), LedgerConfig::default())?;
    let producer = Arc::new(Producer::new(ledger.clone(), ProducerConfig::default())?);
    let started = Instant::now();

    // The reader: a cursor from the start, as a Stream; it waits (without a thread) at the head.
    let reader = {
        let stream = LedgerStream::new(ledger.clone());
        let entries = stream.open(1, TagSet::all())?.into_stream();
        tokio::spawn(async move {
            let mut per_writer = vec![0u64; tasks as usize];
            let mut entries = entries.take(total as usize);
            while let Some(entry) = entries.next().await {
                let entry = entry?;
                per_writer[entry.tag as usize] += 1;
            }
            Ok::<_, ringledger::stream::StreamError>(per_writer)
        })
    };

    // The writers: sequences are taken and queued under one lock (the ledger wants them in
    // order); the producer batches what the tasks queue into few ledger writes.
    let next = Arc::new(tokio::sync::Mutex::new(0u64));
    let writers: Vec<_> = (0..tasks)
        .map(|task| {
            let (producer, next) = (Arc::clone(&producer), Arc::clone(&next));
            tokio::spawn(async move {
                let mut sink = Producer::sink(producer);
                for i in 0..per_task {
                    let mut seq = next.lock().await;
                    *seq += 1;
                    let event =
                        Entry::new(*seq, format!("event {i} of task {task}")).with_tag(task);
                    sink.feed(event).await?; // queued now, in order
                }
                sink.flush().await // every event of this task is in the ledger
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    let written = started.elapsed();
    let per_writer = reader.await??;
    let read = started.elapsed();

    assert_eq!(ledger.len(), total);
    assert!(per_writer.iter().all(|&n| n == per_task));
    println!(
        "{tasks} tasks wrote {total} events in {written:.2?} ({:.0} events/s); \
         the stream read them all by {read:.2?}",
        total as f64 / written.as_secs_f64()
    );
    Ok(())
}
