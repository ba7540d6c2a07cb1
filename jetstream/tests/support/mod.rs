//! The test clusters: `nats-server` processes on loopback ports, each with its own temporary
//! store, stopped (SIGKILL and wait) when the [`Cluster`] is dropped, also on a panic.
//!
//! Without `nats-server` on the PATH, [`Cluster::start`] returns `None` after one line on
//! stderr, unless `RINGLEDGER_REQUIRE_NATS=1` (set by `.ci/run`) makes that a failure.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use ringledger::ledger::{Entry, Ledger};

/// The `nats-server` binary on the `PATH` (Debian puts it in `/usr/sbin`), if any.
pub fn nats_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// The binary, or `None` after saying the test skips (a failure when the gate requires it).
pub fn require_nats(test: &str) -> Option<PathBuf> {
    match nats_server() {
        Some(binary) => Some(binary),
        None if std::env::var("RINGLEDGER_REQUIRE_NATS").as_deref() == Ok("1") => {
            panic!("{test}: nats-server is not installed and RINGLEDGER_REQUIRE_NATS=1")
        }
        None => {
            eprintln!(
                "{test}: skipped, nats-server is not on the PATH (apt-get install nats-server)"
            );
            None
        }
    }
}

/// A free loopback port (bound, read, released: another process could take it meanwhile, so
/// a cluster that does not come up is started again on new ports).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One server of a cluster.
struct Node {
    name: String,
    port: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// A JetStream cluster of `nats-server` processes on loopback.
pub struct Cluster {
    /// Credentials the servers require, used by the harness's own connections.
    auth: Option<(String, String)>,
    binary: PathBuf,
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

/// Extra server settings, for the bad-input tests.
#[derive(Default, Clone)]
pub struct Settings {
    /// `max_payload` in bytes.
    pub max_payload: Option<usize>,
    /// `user:password` required of clients.
    pub auth: Option<(String, String)>,
}

impl Cluster {
    /// Starts `size` servers (1 or 3) and waits until JetStream answers; `None` when
    /// nats-server is missing (see the module documentation).
    pub async fn start(test: &str, size: usize) -> Option<Cluster> {
        Self::start_with(test, size, Settings::default()).await
    }

    /// [`start`](Self::start) with settings.
    pub async fn start_with(test: &str, size: usize, settings: Settings) -> Option<Cluster> {
        let binary = require_nats(test)?;
        for attempt in 0..3 {
            let mut cluster = Cluster::spawn(&binary, size, &settings);
            if cluster.wait_ready(Duration::from_secs(30)).await {
                return Some(cluster);
            }
            eprintln!("{test}: the cluster did not come up (attempt {attempt}); trying new ports");
            cluster.dump_logs();
        }
        panic!("{test}: no cluster after 3 attempts");
    }

    fn spawn(binary: &Path, size: usize, settings: &Settings) -> Cluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, cluster)| format!("nats-route://127.0.0.1:{cluster}"))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, cluster_port)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let store = dir.path().join(&name);
            std::fs::create_dir_all(&store).expect("store dir");
            let mut text = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{port}\n\
                 jetstream {{ store_dir: \"{}\", max_memory_store: 64MB, max_file_store: 4GB }}\n",
                store.display()
            );
            if size > 1 {
                text.push_str(&format!(
                    "cluster {{ name: ringledger, listen: 127.0.0.1:{cluster_port}, routes: [{}] }}\n",
                    routes.join(", ")
                ));
            }
            if let Some(max) = settings.max_payload {
                text.push_str(&format!("max_payload: {max}\n"));
            }
            if let Some((user, password)) = &settings.auth {
                text.push_str(&format!(
                    "authorization {{ user: {user}, password: {password} }}\n"
                ));
            }
            let config = dir.path().join(format!("{name}.conf"));
            std::fs::write(&config, text).expect("write the server config");
            nodes.push(Node {
                name,
                port: *port,
                config,
                child: None,
            });
        }
        let mut cluster = Cluster {
            auth: settings.auth.clone(),
            binary: binary.to_path_buf(),
            nodes,
            dir,
        };
        for i in 0..size {
            cluster.start_node(i);
        }
        cluster
    }

    /// Starts node `i` again (same ports, same store).
    pub fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} is running", node.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", node.name)))
            .expect("server log");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        node.child = Some(child);
    }

    /// Stops node `i` with SIGKILL and waits for it.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The node index of a server name (`n2` is 1).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Every running server's URL, comma separated.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URLs with credentials.
    pub fn urls_with(&self, user: &str, password: &str) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://{user}:{password}@127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URLs the harness connects to (with the credentials, if the servers want them).
    fn harness_urls(&self) -> String {
        match &self.auth {
            Some((user, password)) => self.urls_with(user, password),
            None => self.urls(),
        }
    }

    /// A JetStream context on a fresh connection.
    pub async fn jetstream(&self) -> jetstream::Context {
        let client = ringledger_jetstream::connect(&self.harness_urls())
            .await
            .expect("connect to the test cluster");
        jetstream::new(client)
    }

    async fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(client) = ringledger_jetstream::connect(&self.harness_urls()).await {
                let js = jetstream::new(client);
                // The meta leader answers a stream lookup (here: "not found") once elected.
                for _ in 0..60 {
                    if answers(&js).await {
                        return true;
                    }
                    if Instant::now() > deadline {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Waits (bounded) until JetStream answers again, after nodes were restarted.
    pub async fn wait_until_ready(&mut self) {
        assert!(
            self.wait_ready(Duration::from_secs(60)).await,
            "the cluster did not come back"
        );
    }

    /// Creates a stream with `replicas` replicas taking `subjects`, retrying while the
    /// cluster settles.
    pub async fn create_stream(&self, name: &str, subjects: &[&str], replicas: usize) {
        self.create_stream_with(stream::Config {
            name: name.into(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            num_replicas: replicas,
            duplicate_window: Duration::from_secs(120),
            ..stream::Config::default()
        })
        .await;
    }

    /// Creates a stream from a full configuration, retrying (bounded) while the cluster settles.
    pub async fn create_stream_with(&self, config: stream::Config) {
        let js = self.jetstream().await;
        let mut last = None;
        for _ in 0..40 {
            match js.create_stream(config.clone()).await {
                Ok(_) => return,
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("creating stream {}: {last:?}", config.name);
    }

    /// The server name of the stream's leader, asked (bounded) until there is one.
    pub async fn stream_leader(&self, name: &str) -> usize {
        let js = self.jetstream().await;
        for _ in 0..40 {
            if let Ok(mut stream) = js.get_stream(name).await {
                if let Ok(info) = stream.info().await {
                    if let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone()) {
                        if let Some(i) = self.index_of(&leader) {
                            return i;
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("stream {name} has no leader");
    }

    /// Prints the servers' logs (for a failing start).
    pub fn dump_logs(&self) {
        for node in &self.nodes {
            let log = self.dir.path().join(format!("{}.log", node.name));
            if let Ok(text) = std::fs::read_to_string(log) {
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                eprintln!(
                    "--- {} ---\n{}",
                    node.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
    }
}

/// Whether JetStream answers a stream lookup (the probe stream does not exist; an account
/// without JetStream answers too).
async fn answers(js: &jetstream::Context) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind;
    match js.get_stream("ringledger_probe").await {
        Ok(_) => true,
        Err(e) => matches!(e.kind(), GetStreamErrorKind::JetStream(ref e)
            if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                || e.error_code() == jetstream::ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT),
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
    }
}

/// One stored message, as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub stream_sequence: u64,
    pub message_id: Option<String>,
    pub ledger_sequence: Option<u64>,
    pub tag: Option<u32>,
    pub payload: bytes::Bytes,
}

/// Polls the stream's info (bounded: 60 s) until `done` holds; panics saying `what` with the
/// last info seen.
async fn until_info(
    js: &jetstream::Context,
    name: &str,
    what: &str,
    done: impl Fn(&stream::Info) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(mut stream) = js.get_stream(name).await {
            if let Ok(info) = stream.info().await {
                if done(info) {
                    return;
                }
                last = format!(
                    "{} messages, cluster {:?}",
                    info.state.messages, info.cluster
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stream {name}: {what} within 60 s: {last}");
}

/// Whether the stream has a leader and every replica it lists is current with no lag.
fn all_current(cluster: &async_nats::jetstream::stream::ClusterInfo) -> bool {
    cluster.leader.is_some()
        && cluster
            .replicas
            .iter()
            .all(|r| r.current && !r.offline && r.lag.unwrap_or(0) == 0)
}

/// Waits (bounded) until the stream's leader reports `messages`, whatever its replicas say
/// (one may be down).
pub async fn leader_holds(js: &jetstream::Context, name: &str, messages: u64) {
    until_info(
        js,
        name,
        &format!("the leader did not hold {messages} messages"),
        |info| {
            info.cluster.as_ref().is_none_or(|c| c.leader.is_some())
                && info.state.messages == messages
        },
    )
    .await;
}

/// Waits (bounded) until the stream's leader reports `messages` and every replica is current
/// with no lag: after a node was killed, a replica catching up would serve a short read.
pub async fn settle(js: &jetstream::Context, name: &str, messages: u64) {
    until_info(
        js,
        name,
        &format!("did not settle at {messages} messages"),
        |info| info.state.messages == messages && info.cluster.as_ref().is_none_or(all_current),
    )
    .await;
}

/// Waits (bounded) until the stream has a leader and every replica is current with no lag:
/// a node restarted after a kill has caught up. (nats-server 2.9.10 was seen to lose
/// acknowledged messages when a leader was killed while a replica was still catching up.)
pub async fn replicas_current(js: &jetstream::Context, name: &str) {
    until_info(js, name, "replicas not current", |info| {
        info.cluster
            .as_ref()
            .is_some_and(|c| !c.replicas.is_empty() && all_current(c))
    })
    .await;
}

/// Every message of the stream, read with an ordered consumer (bounded in time). A consumer
/// that stalls (seen after leader kills) is replaced by one starting after the last message
/// read, at most 5 times.
pub async fn read_stream(js: &jetstream::Context, name: &str) -> Vec<Stored> {
    use async_nats::jetstream::consumer::{pull, DeliverPolicy};
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut stream = loop {
        match js.get_stream(name).await {
            Ok(stream) => break stream,
            Err(e) if Instant::now() < deadline => {
                eprintln!("read_stream: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("stream {name}: {e}"),
        }
    };
    let total = stream.info().await.expect("stream info").state.messages;
    let mut out: Vec<Stored> = Vec::with_capacity(total as usize);
    let mut stalls = 0;
    'consumers: while (out.len() as u64) < total {
        let after = out.last().map_or(0, |m| m.stream_sequence);
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: if after == 0 {
                    DeliverPolicy::All
                } else {
                    DeliverPolicy::ByStartSequence {
                        start_sequence: after + 1,
                    }
                },
                ..pull::OrderedConfig::default()
            })
            .await
            .expect("an ordered consumer");
        let mut messages = consumer.messages().await.expect("messages");
        while (out.len() as u64) < total {
            assert!(
                Instant::now() < deadline,
                "reading the stream took over 90 s"
            );
            let next = match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
                Ok(Some(Ok(next))) => next,
                stalled => {
                    stalls += 1;
                    assert!(
                        stalls <= 5,
                        "read {} of {total} messages, then: {stalled:?}",
                        out.len()
                    );
                    continue 'consumers;
                }
            };
            let info = next.info().expect("info");
            let headers = next.headers.as_ref();
            let header = |name: &str| {
                headers
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_owned())
            };
            out.push(Stored {
                stream_sequence: info.stream_sequence,
                message_id: headers
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                    .map(|v| v.as_str().to_owned()),
                ledger_sequence: header("Ringledger-Sequence").and_then(|s| s.parse().ok()),
                tag: header("Ringledger-Tag").and_then(|s| s.parse().ok()),
                payload: next.payload.clone(),
            });
        }
    }
    out
}

/// Entries `first..=last` with varied payloads (size from the sequence) and tags.
pub fn entries(first: u64, last: u64, size: usize) -> Vec<Entry> {
    (first..=last)
        .map(|s| {
            let mut payload = format!("entry {s} ").into_bytes();
            payload.resize(size.max(payload.len()), (s % 251) as u8);
            Entry::new(s, payload).with_tag((s % 7) as u32)
        })
        .collect()
}

/// Writes `entries` in batches of 1000.
pub fn write(ledger: &Ledger, entries: &[Entry]) {
    for chunk in entries.chunks(1000) {
        ledger.write(chunk).expect("write the ledger");
    }
}

/// Every entry of the ledger.
pub fn read_ledger(ledger: &Ledger) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let batch = ledger.read(from, 4096).expect("read the ledger");
        let Some(last) = batch.last() else {
            return out;
        };
        from = last.sequence + 1;
        out.extend(batch);
    }
}

/// Asserts the stream holds exactly the ledger's entries, once each, in order, byte for byte.
pub fn assert_stream_is_ledger(stream: &[Stored], ledger: &[Entry], ledger_id: u64) {
    assert_eq!(
        stream.len(),
        ledger.len(),
        "message count vs ledger entries"
    );
    for (stored, entry) in stream.iter().zip(ledger) {
        assert_eq!(
            stored.ledger_sequence,
            Some(entry.sequence),
            "order at stream sequence {}",
            stored.stream_sequence
        );
        assert_eq!(
            stored.message_id.as_deref(),
            Some(ringledger_jetstream::wire::message_id(ledger_id, entry.sequence).as_str())
        );
        assert_eq!(stored.tag, Some(entry.tag));
        assert!(
            stored.payload == entry.payload,
            "payload of entry {}",
            entry.sequence
        );
    }
}

/// Asserts the importer's ledger holds the stream: stream sequence as ledger sequence, the
/// payload and the tag.
pub fn assert_ledger_is_stream(imported: &[Entry], stream: &[Stored]) {
    assert_eq!(
        imported.len(),
        stream.len(),
        "imported entries vs stream messages"
    );
    for (entry, stored) in imported.iter().zip(stream) {
        assert_eq!(entry.sequence, stored.stream_sequence);
        assert_eq!(Some(entry.tag), stored.tag.or(Some(0)));
        assert!(
            entry.payload == stored.payload,
            "payload at {}",
            entry.sequence
        );
    }
}
