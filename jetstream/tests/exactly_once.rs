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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_forwards_until_ctrl_c_and_imports_with_a_summary() {
    let test = "the_cli_forwards_until_ctrl_c_and_imports_with_a_summary";
    let Some(cluster) = Cluster::start(test, 1).await else {
        return;
    };
    cluster.create_stream("CLI", &["cli.>"], 1).await;
    let dir = tempfile::tempdir().unwrap();
    {
        let queue = Queue::open(dir.path(), QueueConfig::default()).unwrap();
        write(queue.ledger(), &entries(1, 1_000, 64));
    }
    let bridge = env!("CARGO_BIN_EXE_ringledger-jetstream");
    let urls = cluster.urls();
    let child = std::process::Command::new(bridge)
        .arg("forward")
        .arg(dir.path())
        .args([
            "--server",
            &urls,
            "--stream",
            "CLI",
            "--subject",
            "cli.a",
            "--follow",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let js = cluster.jetstream().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let stored = js
            .get_stream("CLI")
            .await
            .unwrap()
            .cached_info()
            .state
            .messages;
        if stored == 1_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stored} of 1000 forwarded in 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Ctrl-C: a clean stop with a summary, status 0.
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("forwarded 1000 entries to stream CLI (subject cli.a)"),
        "{stdout}"
    );

    let target = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bridge)
        .arg("import")
        .arg(target.path())
        .args([
            "--server",
            &urls,
            "--stream",
            "CLI",
            "--consumer",
            "copy",
            "--quiet",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("imported 1000 messages from stream CLI"),
        "{stdout}"
    );
    let queue = Queue::open(target.path(), QueueConfig::default()).unwrap();
    assert_ledger_is_stream(&read_ledger(queue.ledger()), &read_stream(&js, "CLI").await);
}
