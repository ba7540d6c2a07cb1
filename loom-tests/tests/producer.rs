//! Loom models of the producer's batching and close protocol (`ringledger::producer`), run
//! on the real worker through [`Producer::with_sink`] and an in-memory sink, one property
//! each. Every ack and write waits `Deadline::Forever`, and the batch timeouts and retry
//! delays are zero or effectively infinite: loom has no clock, so an ack that is never
//! resolved or a writer that is never woken shows up as a deadlock loom reports.
#![cfg(loom)]

use std::time::Duration;

use loom::sync::{Arc, Mutex};
use loom::thread;
use ringledger::ledger::{Entry, LedgerError};
use ringledger::producer::{BatchSink, Producer, ProducerConfig, ProducerError};
use ringledger::wait::Deadline;

/// A batch timeout or retry delay that never passes within a model.
const NEVER: Duration = Duration::MAX;
const HOUR: Duration = Duration::from_secs(3600);

/// A sink that records the sequences of each write, or refuses every write as full.
struct Recorder {
    writes: Writes,
    full: bool,
}

impl BatchSink for Recorder {
    fn head(&self) -> u64 {
        0
    }

    fn write_batch(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
        if self.full {
            return Err(LedgerError::LimitReached {
                limit: 0,
                len: 0,
                adding: entries.len() as u64,
            });
        }
        let seqs = entries.iter().map(|e| e.sequence).collect();
        self.writes.lock().unwrap().push(seqs);
        Ok(())
    }
}

/// The sequences of each write the sink took, in order.
type Writes = Arc<Mutex<Vec<Vec<u64>>>>;

fn producer(config: ProducerConfig, full: bool) -> (Arc<Producer>, Writes) {
    let writes = Arc::new(Mutex::new(Vec::new()));
    let sink = Recorder {
        writes: writes.clone(),
        full,
    };
    let producer = Producer::with_sink(sink, config).unwrap();
    (Arc::new(producer), writes)
}

fn entry(seq: u64) -> Entry {
    Entry::new(seq, "e")
}

/// A write racing close either fails with `Closed`, or its ack resolves: `Ok` exactly when
/// the entry was written, `Closed` exactly when it was not.
#[test]
fn a_write_racing_close_is_written_or_closed() {
    loom::model(|| {
        let config = ProducerConfig {
            batch: 1,
            timeout: Duration::ZERO,
            ..ProducerConfig::default()
        };
        let (producer, writes) = producer(config, false);
        let writer = {
            let producer = producer.clone();
            thread::spawn(move || {
                producer
                    .write(entry(1), Deadline::Forever)
                    .map(|ack| ack.wait(Deadline::Forever))
            })
        };
        producer.close();
        let outcome = writer.join().unwrap();
        let writes = writes.lock().unwrap().clone();
        match outcome {
            Ok(Ok(())) => assert_eq!(writes, [vec![1]]),
            Ok(Err(ProducerError::Closed)) | Err(ProducerError::Closed) => {
                assert!(writes.is_empty(), "{writes:?}")
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    });
}

/// An entry in a batch that never fills gets `Closed`, and is never written.
#[test]
fn close_fails_the_batch_being_built() {
    loom::model(|| {
        let config = ProducerConfig {
            batch: 2,
            timeout: NEVER,
            ..ProducerConfig::default()
        };
        let (producer, writes) = producer(config, false);
        let writer = {
            let producer = producer.clone();
            thread::spawn(move || match producer.write(entry(1), Deadline::Forever) {
                Ok(ack) => ack.wait(Deadline::Forever),
                Err(error) => Err(error),
            })
        };
        producer.close();
        assert!(matches!(writer.join().unwrap(), Err(ProducerError::Closed)));
        assert!(writes.lock().unwrap().is_empty());
    });
}

/// Two writers filling one batch: one write of both entries, both acks `Ok`.
#[test]
fn a_full_batch_is_one_write() {
    loom::model(|| {
        let config = ProducerConfig {
            batch: 2,
            timeout: NEVER,
            ..ProducerConfig::default()
        };
        let (producer, writes) = producer(config, false);
        let writers: Vec<_> = [1, 2]
            .into_iter()
            .map(|seq| {
                let producer = producer.clone();
                thread::spawn(move || {
                    let ack = producer.write(entry(seq), Deadline::Forever).unwrap();
                    ack.wait(Deadline::Forever)
                })
            })
            .collect();
        for writer in writers {
            assert!(writer.join().unwrap().is_ok());
        }
        producer.close();
        let writes = writes.lock().unwrap();
        assert_eq!(writes.len(), 1, "{writes:?}");
        let mut batch = writes[0].clone();
        batch.sort_unstable();
        assert_eq!(batch, [1, 2]);
    });
}

/// A writer blocked on a full queue wakes when the worker takes an entry.
#[test]
fn a_blocked_writer_wakes_when_the_worker_takes_an_entry() {
    loom::model(|| {
        let config = ProducerConfig {
            batch: 1,
            timeout: Duration::ZERO,
            queue: 1,
            ..ProducerConfig::default()
        };
        let (producer, writes) = producer(config, false);
        let writer = {
            let producer = producer.clone();
            thread::spawn(move || {
                let first = producer.write(entry(1), Deadline::Forever).unwrap();
                let second = producer.write(entry(2), Deadline::Forever).unwrap();
                (
                    first.wait(Deadline::Forever),
                    second.wait(Deadline::Forever),
                )
            })
        };
        let (first, second) = writer.join().unwrap();
        assert!(first.is_ok() && second.is_ok());
        producer.close();
        assert_eq!(*writes.lock().unwrap(), [vec![1], vec![2]]);
    });
}

/// Close wakes a worker waiting out a retry delay and a writer waiting for room; every ack
/// resolves with `Closed` (the sink refuses everything, the retries never run out).
#[test]
fn close_wakes_a_retrying_worker_and_a_blocked_writer() {
    loom::model(|| {
        let config = ProducerConfig {
            batch: 1,
            timeout: Duration::ZERO,
            retry: 1,
            delay: HOUR,
            queue: 1,
            ..ProducerConfig::default()
        };
        let (producer, _) = producer(config, true);
        let writer = {
            let producer = producer.clone();
            thread::spawn(move || {
                // The first entry keeps the worker retrying, the second fills the queue and
                // the third waits for room, unless the close comes first.
                let mut acks = Vec::new();
                let mut results = Vec::new();
                for seq in 1..=3 {
                    match producer.write(entry(seq), Deadline::Forever) {
                        Ok(ack) => acks.push(ack),
                        Err(error) => {
                            results.push(Err(error));
                            break;
                        }
                    }
                }
                results.extend(acks.iter().map(|ack| ack.wait(Deadline::Forever)));
                results
            })
        };
        producer.close();
        for result in writer.join().unwrap() {
            assert!(matches!(result, Err(ProducerError::Closed)), "{result:?}");
        }
    });
}
