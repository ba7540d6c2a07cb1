//! Bad input and bad servers: one clear error each, retries where a retry can help, and never
//! an entry lost or doubled.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::stream;
use ringledger::ledger::{Entry, Ledger, LedgerConfig};
use ringledger::queue::{Queue, QueueConfig};
use ringledger_jetstream::{Error, ForwardConfig, Forwarder, ImportConfig, Importer};
use support::{
    assert_stream_is_ledger, entries, read_ledger, read_stream, write, Cluster, Settings,
};

fn bridge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ringledger-jetstream"))
        .args(args)
        .output()
        .expect("run ringledger-jetstream")
}

/// Asserts a failed run printed exactly one line, containing `expected`.
fn one_line_error(out: &std::process::Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("ringledger-jetstream: "), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
}

#[tokio::test]
async fn an_unreachable_server_is_one_clear_error_at_once() {
    let port = support::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let started = Instant::now();
    match ringledger_jetstream::connect(&url).await {
        Err(Error::Unreachable { server, .. }) => assert_eq!(server, url),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));

    let dir = tempfile::tempdir().unwrap();
    drop(Queue::open(dir.path(), QueueConfig::default()).unwrap());
    let d = dir.path().to_str().unwrap();
    let out = bridge(&[
        "forward",
        d,
        "--server",
        &url,
        "--stream",
        "S",
        "--subject",
        "s",
    ]);
    one_line_error(&out, &format!("cannot connect to {url}"));
    let out = bridge(&[
        "import",
        d,
        "--server",
        &url,
        "--stream",
        "S",
        "--consumer",
        "c",
    ]);
    one_line_error(&out, "cannot connect to");
    let out = bridge(&[
        "forward",
        "/nonexistent",
        "--server",
        &url,
        "--stream",
        "S",
        "--subject",
        "s",
    ]);
    one_line_error(&out, "not a ledger or queue directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_or_a_subject_it_does_not_take_is_refused_before_sending() {
    let test = "a_missing_stream_or_a_subject_it_does_not_take_is_refused_before_sending";
    let Some(cluster) = Cluster::start(test, 1).await else {
        return;
    };
    cluster.create_stream("EVENTS", &["events.*"], 1).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(dir.path(), QueueConfig::default()).unwrap();
    write(queue.ledger(), &entries(1, 10, 16));
    let open = |stream: &str, subject: &str| {
        let config = ForwardConfig::new(stream, subject);
        let (ledger, table) = (queue.ledger().clone(), Arc::clone(queue.table()));
        let urls = cluster.urls();
        async move {
            let client = ringledger_jetstream::connect(&urls).await.unwrap();
            Forwarder::open(client, ledger, table, config).await
        }
    };
    match open("NOPE", "events.a").await {
        Err(Error::StreamMissing { stream }) => assert_eq!(stream, "NOPE"),
        other => panic!("{other:?}"),
    }
    match open("EVENTS", "events.a.b").await {
        Err(error @ Error::SubjectNotInStream { .. }) => {
            assert_eq!(
                error.to_string(),
                "stream EVENTS does not take subject events.a.b (its subjects: events.*)"
            );
        }
        other => panic!("{other:?}"),
    }
    let client = ringledger_jetstream::connect(&cluster.urls())
        .await
        .unwrap();
    let target = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(target.path(), LedgerConfig::default()).unwrap();
    match Importer::open(client, ledger, ImportConfig::new("NOPE", "c")).await {
        Err(Error::StreamMissing { .. }) => {}
        other => panic!("{other:?}"),
    }
    drop(queue);

    let d = dir.path().to_str().unwrap();
    let urls = cluster.urls();
    let out = bridge(&[
        "forward",
        d,
        "--server",
        &urls,
        "--stream",
        "NOPE",
        "--subject",
        "events.a",
    ]);
    one_line_error(&out, "stream NOPE does not exist on the server");
    let out = bridge(&[
        "forward",
        d,
        "--server",
        &urls,
        "--stream",
        "EVENTS",
        "--subject",
        "orders",
    ]);
    one_line_error(&out, "does not take subject orders");
    // Nothing was sent by any of them.
    let js = cluster.jetstream().await;
    assert!(read_stream(&js, "EVENTS").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_over_the_size_limits_stops_the_forwarder_right_before_it() {
    let test = "an_entry_over_the_size_limits_stops_the_forwarder_right_before_it";
    let settings = Settings {
        max_payload: Some(64 * 1024),
        ..Settings::default()
    };
    let Some(cluster) = Cluster::start_with(test, 1, settings).await else {
        return;
    };
    cluster.create_stream("BIG", &["big"], 1).await;
    cluster
        .create_stream_with(stream::Config {
            name: "SMALL".into(),
            subjects: vec!["small".into()],
            max_message_size: 1024,
            ..stream::Config::default()
        })
        .await;
    for (stream, subject, big, which) in [
        ("BIG", "big", 100 * 1024, "max_payload"),
        ("SMALL", "small", 2000, "max_msg_size"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path(), QueueConfig::default()).unwrap();
        write(queue.ledger(), &entries(1, 100, 100));
        queue
            .ledger()
            .write(&[Entry::new(101, vec![7u8; big])])
            .unwrap();
        write(queue.ledger(), &entries(102, 110, 100));
        for run in 0..2 {
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
            match forwarder.run(std::future::pending()).await {
                Err(error @ Error::TooLarge { sequence: 101, .. }) => {
                    assert!(error.to_string().contains(which), "{error}");
                }
                other => panic!("run {run}: {other:?}"),
            }
            // Everything before it is in the stream once and marked; it and what follows are not.
            assert_eq!(queue.table().get("jetstream").unwrap(), [100], "run {run}");
        }
        let js = cluster.jetstream().await;
        let stored = read_stream(&js, stream).await;
        assert_stream_is_ledger(
            &stored,
            &read_ledger(queue.ledger())[..100],
            queue.ledger().id(),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_one_line() {
    let test = "refused_credentials_are_one_line";
    let settings = Settings {
        auth: Some(("ops".into(), "s3cret".into())),
        ..Settings::default()
    };
    let Some(cluster) = Cluster::start_with(test, 1, settings).await else {
        return;
    };
    match ringledger_jetstream::connect(&cluster.urls_with("ops", "wrong")).await {
        Err(Error::Auth { .. }) => {}
        other => panic!("{other:?}"),
    }
    let good = ringledger_jetstream::connect(&cluster.urls_with("ops", "s3cret")).await;
    assert!(good.is_ok(), "{good:?}");
    let dir = tempfile::tempdir().unwrap();
    drop(Queue::open(dir.path(), QueueConfig::default()).unwrap());
    let out = bridge(&[
        "forward",
        dir.path().to_str().unwrap(),
        "--server",
        &cluster.urls(),
        "--stream",
        "S",
        "--subject",
        "s",
    ]);
    one_line_error(&out, "refused the credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_mid_run_is_retried_then_given_up_and_a_rerun_completes_exactly_once() {
    let test = "a_server_gone_mid_run_is_retried_then_given_up_and_a_rerun_completes_exactly_once";
    let Some(mut cluster) = Cluster::start(test, 1).await else {
        return;
    };
    cluster.create_stream("JOBS", &["jobs"], 1).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(dir.path(), QueueConfig::default()).unwrap();
    let total = 30_000;
    write(queue.ledger(), &entries(1, total, 256));
    let client = ringledger_jetstream::connect(&cluster.urls())
        .await
        .unwrap();
    let forwarder = Forwarder::open(
        client,
        queue.ledger().clone(),
        Arc::clone(queue.table()),
        ForwardConfig::new("JOBS", "jobs").with_patience(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let progress = forwarder.progress();
    let running = tokio::spawn(forwarder.run(std::future::pending()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while progress.forwarded() < 3_000 {
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.kill_node(0);
    let outcome = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the forwarder gives up within 60 s")
        .unwrap();
    match outcome {
        Err(error @ Error::GaveUp { .. }) => eprintln!("{test}: {error}"),
        Ok(summary) if summary.forwarded + summary.already_there == total => {
            // It finished before the kill took effect: still exactly once below.
        }
        other => panic!("{other:?}"),
    }
    assert!(progress.retries() > 0 || progress.forwarded() == total);

    cluster.start_node(0);
    cluster.wait_until_ready().await;
    let client = ringledger_jetstream::connect(&cluster.urls())
        .await
        .unwrap();
    let forwarder = Forwarder::open(
        client,
        queue.ledger().clone(),
        Arc::clone(queue.table()),
        ForwardConfig::new("JOBS", "jobs"),
    )
    .await
    .unwrap();
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        forwarder.run(std::future::pending()),
    )
    .await
    .expect("the rerun within 60 s")
    .unwrap();
    assert_eq!(summary.last_sequence, total);
    let js = cluster.jetstream().await;
    let stored = read_stream(&js, "JOBS").await;
    assert_stream_is_ledger(&stored, &read_ledger(queue.ledger()), queue.ledger().id());
}
