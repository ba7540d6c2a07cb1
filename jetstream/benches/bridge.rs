//! The bridge against raw `async-nats` on the same 3-node loopback cluster (R3 streams), in the
//! same run:
//!
//! - `forward/ledger`: the forwarder publishing 256 B entries from a ledger, vs
//!   `forward/raw_publish`: the same payloads published from memory with as many acks in flight
//!   (4096), no headers, no ledger, no marks, and `forward/raw_publish_same_headers`: the
//!   forwarder's exact messages (its six headers, the chain) published from memory. The first
//!   ratio includes what the headers cost the servers; the second is the bridge's own cost.
//! - `import/ledger`: the importer writing a stream into a ledger (one write per batch of
//!   1024, buffered), vs `import/raw_pull`: a pull consumer of the same batch size that
//!   acknowledges each batch without writing anywhere. Both consumers are created before the
//!   clock starts.
//!
//! Without `nats-server` on the PATH it prints one line and measures nothing.
//!
//! ```text
//! cargo bench -p ringledger-jetstream --bench bridge
//! cargo bench -p ringledger-jetstream --bench bridge -- --test   # once each, as the gate runs it
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::stream::{FuturesOrdered, StreamExt};
use ringledger::ledger::{Durability, Ledger, LedgerConfig};
use ringledger::queue::{Queue, QueueConfig};
use ringledger_jetstream::{ForwardConfig, Forwarder, ImportConfig, Importer};

/// Messages per measured run.
const MESSAGES: u64 = 20_000;
const SIZE: usize = 256;
const IN_FLIGHT: usize = 4096;
const BATCH: usize = 1024;

fn payloads() -> Vec<Bytes> {
    support::entries(1, MESSAGES, SIZE)
        .into_iter()
        .map(|e| e.payload)
        .collect()
}

async fn purge(js: &jetstream::Context, stream: &str) {
    js.get_stream(stream)
        .await
        .expect("the stream")
        .purge()
        .await
        .expect("purge");
}

/// One forwarder run over a fresh ledger of `MESSAGES` entries; the time of the run alone.
async fn forward_once(cluster: &support::Cluster, js: &jetstream::Context) -> Duration {
    purge(js, "FWD").await;
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(dir.path(), QueueConfig::default()).unwrap();
    support::write(queue.ledger(), &support::entries(1, MESSAGES, SIZE));
    let client = ringledger_jetstream::connect(&cluster.urls())
        .await
        .unwrap();
    let forwarder = Forwarder::open(
        client,
        queue.ledger().clone(),
        Arc::clone(queue.table()),
        ForwardConfig::new("FWD", "fwd").with_in_flight(IN_FLIGHT),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let summary = forwarder.run(std::future::pending()).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(summary.forwarded, MESSAGES);
    elapsed
}

/// The same messages published from memory, `IN_FLIGHT` acknowledgements pending at most.
async fn raw_publish_once(js: &jetstream::Context, payloads: &[Bytes]) -> Duration {
    purge(js, "FWD").await;
    let started = Instant::now();
    let mut acks: FuturesOrdered<<PublishAckFuture as IntoFuture>::IntoFuture> =
        FuturesOrdered::new();
    for payload in payloads {
        if acks.len() >= IN_FLIGHT {
            acks.next().await.unwrap().unwrap();
        }
        let ack = js.publish("fwd", payload.clone()).await.unwrap();
        acks.push_back(ack.into_future());
    }
    while let Some(ack) = acks.next().await {
        ack.unwrap();
    }
    started.elapsed()
}

/// The durable pull consumer both importers use, created before the clock starts (creating an
/// R3 consumer is a round of consensus, not import work).
async fn durable(js: &jetstream::Context, name: &str) {
    js.get_stream("IMP")
        .await
        .unwrap()
        .create_consumer(pull::Config {
            durable_name: Some(name.to_owned()),
            ack_policy: AckPolicy::All,
            max_ack_pending: 4 * BATCH as i64,
            ..pull::Config::default()
        })
        .await
        .unwrap();
}

/// The forwarder's messages exactly (its headers: message id, sequence, tag, timestamp,
/// expected stream, the expected predecessor), published from memory the same way.
async fn raw_publish_headers_once(js: &jetstream::Context, payloads: &[Bytes]) -> Duration {
    use async_nats::header;
    use ringledger_jetstream::wire;
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    purge(js, "FWD").await;
    // A purge keeps the sequence; each run's ids are new (the duplicate window remembers).
    let last = js
        .get_stream("FWD")
        .await
        .unwrap()
        .cached_info()
        .state
        .last_sequence;
    let ledger_id = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let mut acks: FuturesOrdered<<PublishAckFuture as IntoFuture>::IntoFuture> =
        FuturesOrdered::new();
    let mut previous: Option<String> = None;
    for (i, payload) in payloads.iter().enumerate() {
        if acks.len() >= IN_FLIGHT {
            acks.next().await.unwrap().unwrap();
        }
        let sequence = i as u64 + 1;
        let id = wire::message_id(ledger_id, sequence);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(wire::SEQUENCE, sequence.to_string().as_str());
        headers.insert(wire::TAG, "0");
        headers.insert(wire::TIMESTAMP, "1796593686794810094");
        headers.insert(header::NATS_MESSAGE_ID, id.as_str());
        headers.insert(header::NATS_EXPECTED_STREAM, "FWD");
        match &previous {
            Some(previous) => {
                headers.insert(header::NATS_EXPECTED_LAST_MESSAGE_ID, previous.as_str())
            }
            None => headers.insert(
                header::NATS_EXPECTED_LAST_SEQUENCE,
                last.to_string().as_str(),
            ),
        }
        previous = Some(id);
        let ack = js
            .publish_with_headers("fwd", headers, payload.clone())
            .await
            .unwrap();
        acks.push_back(ack.into_future());
    }
    while let Some(ack) = acks.next().await {
        ack.unwrap();
    }
    started.elapsed()
}

/// One importer run of the whole `IMP` stream into a fresh ledger.
async fn import_once(cluster: &support::Cluster, js: &jetstream::Context, run: usize) -> Duration {
    durable(js, &format!("bench-import-{run}")).await;
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let client = ringledger_jetstream::connect(&cluster.urls())
        .await
        .unwrap();
    let config = ImportConfig::new("IMP", format!("bench-import-{run}"))
        .with_batch(BATCH)
        .with_durability(Durability::Buffered);
    let importer = Importer::open(client, ledger, config).await.unwrap();
    let started = Instant::now();
    let summary = importer.run(std::future::pending()).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(summary.imported, MESSAGES);
    elapsed
}

/// A pull consumer reading the whole stream, acknowledging each batch, writing nothing.
async fn raw_pull_once(js: &jetstream::Context, run: usize) -> Duration {
    let name = format!("bench-raw-{run}");
    durable(js, &name).await;
    let started = Instant::now();
    let stream = js.get_stream("IMP").await.unwrap();
    let consumer: jetstream::consumer::Consumer<pull::Config> =
        stream.get_consumer(&name).await.unwrap();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .messages()
        .await
        .unwrap();
    let mut seen = 0;
    while seen < MESSAGES {
        let first = messages.next().await.unwrap().unwrap();
        let mut last = first;
        seen += 1;
        let mut taken = 1;
        while taken < BATCH && seen < MESSAGES {
            match futures_util::FutureExt::now_or_never(messages.next()) {
                Some(Some(Ok(message))) => {
                    last = message;
                    seen += 1;
                    taken += 1;
                }
                _ => break,
            }
        }
        last.ack().await.unwrap();
    }
    started.elapsed()
}

fn bridge(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(cluster) = runtime.block_on(support::Cluster::start("bench bridge", 3)) else {
        return;
    };
    runtime.block_on(async {
        cluster.create_stream("FWD", &["fwd"], 3).await;
        cluster.create_stream("IMP", &["imp"], 3).await;
        let js = cluster.jetstream().await;
        let mut acks: FuturesOrdered<<PublishAckFuture as IntoFuture>::IntoFuture> =
            FuturesOrdered::new();
        for payload in payloads() {
            if acks.len() >= IN_FLIGHT {
                acks.next().await.unwrap().unwrap();
            }
            acks.push_back(js.publish("imp", payload).await.unwrap().into_future());
        }
        while let Some(ack) = acks.next().await {
            ack.unwrap();
        }
    });
    let js = runtime.block_on(cluster.jetstream());
    let payloads = payloads();

    let mut group = c.benchmark_group("forward_256B");
    group
        .throughput(Throughput::Elements(MESSAGES))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("ledger", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += forward_once(&cluster, &js).await;
                }
                total
            })
        })
    });
    group.bench_function("raw_publish", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += raw_publish_once(&js, &payloads).await;
                }
                total
            })
        })
    });
    group.bench_function("raw_publish_same_headers", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += raw_publish_headers_once(&js, &payloads).await;
                }
                total
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("import_256B");
    group
        .throughput(Throughput::Elements(MESSAGES))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    let mut run = 0;
    group.bench_function("ledger", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    run += 1;
                    total += import_once(&cluster, &js, run).await;
                }
                total
            })
        })
    });
    group.bench_function("raw_pull", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    run += 1;
                    total += raw_pull_once(&js, run).await;
                }
                total
            })
        })
    });
    group.finish();
    drop(cluster);
}

criterion_group!(benches, bridge);
criterion_main!(benches);
