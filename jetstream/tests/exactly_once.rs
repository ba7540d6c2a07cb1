//! Forwarding and importing against a real 3-node JetStream cluster (R3 streams): every
//! ledger entry lands in the stream once, in order, byte for byte, and a restart (with or
//! without the forwarder's positions) sends nothing twice.

mod support;

use std::sync::Arc;

use ringledger::ledger::{Durability, Ledger, LedgerConfig};
use ringledger::queue::{Queue, QueueConfig};
use ringledger_jetstream::{ForwardConfig, Forwarder, ImportConfig, Importer};
use support::{
    assert_ledger_is_stream, assert_stream_is_ledger, entries, read_ledger, read_stream, write,
    Cluster,
};

async fn forward(
    cluster: &Cluster,
    queue: &Queue,
    stream: &str,
    subject: &str,
) -> ringledger_jetstream::ForwardSummary {
    let client = ringledger_jetstream::connect(&cluster.urls())
        .await
        .unwrap();
    let forwarder = Forwarder::open(
        client,
        queue.ledger().clone(),
        Arc::clone(queue.table()),
        ForwardConfig::new(stream, subject),
    )
    .await
    .unwrap();
    forwarder.run(std::future::pending()).await.unwrap()
}

async fn import(
    cluster: &Cluster,
    ledger: &Ledger,
    stream: &str,
    consumer: &str,
) -> ringledger_jetstream::ImportSummary {
    let client = ringledger_jetstream::connect(&cluster.urls())
        .await
        .unwrap();
    let importer = Importer::open(
        client,
        ledger.clone(),
        ImportConfig::new(stream, consumer)
            .with_batch(500)
            .with_durability(Durability::Synced),
    )
    .await
    .unwrap();
    importer.run(std::future::pending()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_and_import_round_trip_exactly_once() {
    let Some(cluster) = Cluster::start("forward_and_import_round_trip_exactly_once", 3).await
    else {
        return;
    };
    cluster.create_stream("EVENTS", &["events.>"], 3).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(dir.path(), QueueConfig::default()).unwrap();
    let ledger_id = queue.ledger().id();

    // Two runs over a growing ledger: the second sends only what is new.
    write(queue.ledger(), &entries(1, 6_000, 256));
    let first = forward(&cluster, &queue, "EVENTS", "events.host1").await;
    assert_eq!(
        (first.forwarded, first.already_there, first.last_sequence),
        (6_000, 0, 6_000)
    );
    write(queue.ledger(), &entries(6_001, 10_000, 100));
    let second = forward(&cluster, &queue, "EVENTS", "events.host1").await;
    assert_eq!((second.forwarded, second.already_there), (4_000, 0));
    let idle = forward(&cluster, &queue, "EVENTS", "events.host1").await;
    assert_eq!(idle.forwarded, 0);

    let js = cluster.jetstream().await;
    let stored = read_stream(&js, "EVENTS").await;
    let local = read_ledger(queue.ledger());
    assert_stream_is_ledger(&stored, &local, ledger_id);

    // Import in two runs too: the durable consumer resumes, nothing twice.
    let target_dir = tempfile::tempdir().unwrap();
    let target = Ledger::open(target_dir.path(), LedgerConfig::default()).unwrap();
    let imported = import(&cluster, &target, "EVENTS", "archive").await;
    assert_eq!(
        (imported.imported, imported.last_sequence),
        (10_000, 10_000)
    );
    assert!(
        imported.batches >= 20,
        "batches of at most 500: {imported:?}"
    );
    let again = import(&cluster, &target, "EVENTS", "archive").await;
    assert_eq!(again.imported, 0);
    assert_ledger_is_stream(&read_ledger(&target), &stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_positions_resend_nothing_and_import_resumes_at_the_ledger_head() {
    let Some(cluster) = Cluster::start(
        "lost_positions_resend_nothing_and_import_resumes_at_the_ledger_head",
        3,
    )
    .await
    else {
        return;
    };
    cluster.create_stream("AUDIT", &["audit"], 3).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(dir.path(), QueueConfig::default()).unwrap();
    write(queue.ledger(), &entries(1, 3_000, 64));
    assert_eq!(
        forward(&cluster, &queue, "AUDIT", "audit").await.forwarded,
        3_000
    );

    // The positions are gone (a crash before the marks were persisted, at worst all of them):
    // the forwarder reads the stream's last message and marks instead of resending.
    queue.table().delete("jetstream").unwrap();
    write(queue.ledger(), &entries(3_001, 3_500, 64));
    let resumed = forward(&cluster, &queue, "AUDIT", "audit").await;
    assert_eq!((resumed.forwarded, resumed.already_there), (500, 3_000));

    let js = cluster.jetstream().await;
    let stored = read_stream(&js, "AUDIT").await;
    assert_stream_is_ledger(&stored, &read_ledger(queue.ledger()), queue.ledger().id());

    // An importer whose ledger already holds the first 1000 messages (a crash after the write,
    // before the acknowledgement) and whose consumer is new starts at the head + 1.
    let target_dir = tempfile::tempdir().unwrap();
    let target = Ledger::open(target_dir.path(), LedgerConfig::default()).unwrap();
    let head: Vec<_> = stored[..1_000]
        .iter()
        .map(|m| {
            ringledger::ledger::Entry::new(m.stream_sequence, m.payload.clone())
                .with_tag(m.tag.unwrap())
        })
        .collect();
    target.write(&head).unwrap();
    let imported = import(&cluster, &target, "AUDIT", "mirror").await;
    assert_eq!(imported.imported, 2_500);
    assert_ledger_is_stream(&read_ledger(&target), &stored);
}
