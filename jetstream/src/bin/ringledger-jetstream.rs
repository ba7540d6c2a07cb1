//! `ringledger-jetstream`: forward a ledger to NATS JetStream, or import a stream into a
//! ledger. The `ringledger` tool runs it for its `forward` and `import` subcommands.
//!
//! ```text
//! ringledger-jetstream forward /var/lib/app/events --server nats://central:4222 \
//!     --stream EVENTS --subject events.host1
//! ringledger-jetstream import /var/lib/central/events --server nats://central:4222 \
//!     --stream EVENTS --consumer archive
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use ringledger::ledger::{Durability, Ledger, LedgerConfig};
use ringledger::queue::{Queue, QueueConfig};
use ringledger::table::{Table, TableConfig};
use ringledger_jetstream::{ForwardConfig, Forwarder, ImportConfig, Importer};

/// Forward a ringledger ledger to NATS JetStream, or import a JetStream stream into a ledger,
/// exactly once.
#[derive(Debug, Parser)]
#[command(name = "ringledger-jetstream", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish a ledger's entries to a JetStream subject; a restart resumes after the last
    /// entry the stream acknowledged.
    #[command(after_help = "Example:\n  ringledger forward /var/lib/app/events \
                            --server nats://central:4222 --stream EVENTS --subject events.host1")]
    Forward(ForwardArgs),
    /// Write a JetStream stream into a local ledger through a durable pull consumer; the
    /// stream sequence becomes the ledger sequence.
    #[command(after_help = "Example:\n  ringledger import /var/lib/central/events \
                            --server nats://central:4222 --stream EVENTS --consumer archive")]
    Import(ImportArgs),
}

#[derive(Debug, Args)]
struct Common {
    /// The server URL (several, comma separated, for a cluster); credentials as
    /// nats://user:password@host:port.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    server: String,
    /// A NATS credentials file (JWT and seed), for servers that want one.
    #[arg(long)]
    creds: Option<PathBuf>,
    /// The JetStream stream.
    #[arg(long)]
    stream: String,
    /// Keep running and follow new entries until Ctrl-C (default: stop when caught up).
    #[arg(long)]
    follow: bool,
    /// How long to keep retrying while the server is unreachable or has no leader, in
    /// seconds.
    #[arg(long, default_value_t = 60)]
    patience: u64,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct ForwardArgs {
    /// The queue directory (with `ledger/` and `table/`), or a ledger directory with --table.
    dir: PathBuf,
    #[command(flatten)]
    common: Common,
    /// The subject to publish to; the stream must take it.
    #[arg(long)]
    subject: String,
    /// The ledger consumer whose positions record what was forwarded.
    #[arg(long, default_value = "jetstream")]
    consumer: String,
    /// The positions table's directory, for a bare ledger directory.
    #[arg(long)]
    table: Option<PathBuf>,
    /// Publishes waiting for their acknowledgement at most.
    #[arg(long, default_value_t = 4096)]
    in_flight: usize,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The queue directory to write (created if missing), or an existing ledger directory.
    dir: PathBuf,
    #[command(flatten)]
    common: Common,
    /// The durable pull consumer (created when missing).
    #[arg(long)]
    consumer: String,
    /// Messages per ledger write.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Write without syncing each batch (survives a crash of this process, not a power loss;
    /// then the server's redelivery is lost for what was acknowledged).
    #[arg(long)]
    buffered: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Errors end the program with one line of their own; the log (the bridge's retries, the
    // client's reconnects) is for when RINGLEDGER_LOG asks for it.
    if let Some(level) = std::env::var("RINGLEDGER_LOG")
        .ok()
        .and_then(|level| level.parse::<tracing::Level>().ok())
    {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(level)
            .with_target(false)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("starting the runtime: {e}")),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Forward(args) => forward(args).await,
            Command::Import(args) => import(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("ringledger-jetstream: {message}");
    ExitCode::FAILURE
}

/// An error and its causes as one line.
fn line(error: &ringledger_jetstream::Error) -> String {
    ringledger::error_chain(error)
}

/// Completes on Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
    eprintln!("ringledger-jetstream: stopping (waiting for the acknowledgements in flight)");
}

/// Prints `label` and the counter's rate to stderr once a second until dropped.
fn progress_task(
    label: &'static str,
    quiet: bool,
    count: impl Fn() -> (u64, u64) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if quiet {
            return;
        }
        let started = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let (done, retries) = count();
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
            eprintln!("{label} {done} ({rate:.0}/s), {retries} retries");
        }
    })
}

/// The ledger and the positions table `forward` works on.
fn open_forward_dir(
    dir: &Path,
    table: Option<&Path>,
) -> Result<(Ledger, Arc<Table>, Option<Queue>), String> {
    let shown = dir.display();
    if dir.join("ledger").join("ledger.meta").is_file() && table.is_none() {
        let queue = Queue::open(dir, QueueConfig::default())
            .map_err(|e| format!("{shown}: {}", ringledger::error_chain(&e)))?;
        let (ledger, table) = (queue.ledger().clone(), Arc::clone(queue.table()));
        return Ok((ledger, table, Some(queue)));
    }
    let ledger_dir = if dir.join("ledger.meta").is_file() {
        dir.to_path_buf()
    } else if dir.join("ledger").join("ledger.meta").is_file() {
        dir.join("ledger")
    } else {
        return Err(format!(
            "{shown}: not a ledger or queue directory (no ledger.meta)"
        ));
    };
    let Some(table) = table else {
        return Err(format!(
            "{shown} is a ledger directory: give --table DIR for the forwarder's positions"
        ));
    };
    let ledger = Ledger::open(&ledger_dir, LedgerConfig::default())
        .map_err(|e| format!("{}: {}", ledger_dir.display(), ringledger::error_chain(&e)))?;
    let table = Table::open(table, TableConfig::default())
        .map_err(|e| format!("{}: {}", table.display(), ringledger::error_chain(&e)))?;
    Ok((ledger, Arc::new(table), None))
}

async fn forward(args: ForwardArgs) -> Result<(), String> {
    let (ledger, table, _queue) = open_forward_dir(&args.dir, args.table.as_deref())?;
    let client =
        ringledger_jetstream::connect_with_creds(&args.common.server, args.common.creds.as_deref())
            .await
            .map_err(|e| line(&e))?;
    let config = ForwardConfig::new(&args.common.stream, &args.subject)
        .with_consumer(&args.consumer)
        .with_in_flight(args.in_flight)
        .with_follow(args.common.follow)
        .with_patience(Duration::from_secs(args.common.patience));
    let forwarder = Forwarder::open(client, ledger, table, config)
        .await
        .map_err(|e| line(&e))?;
    let progress = forwarder.progress();
    let shown = progress_task("forwarded", args.common.quiet, move || {
        (progress.forwarded(), progress.retries())
    });
    let outcome = forwarder.run(interrupted()).await;
    shown.abort();
    let summary = outcome.map_err(|e| line(&e))?;
    println!(
        "forwarded {} entries to stream {} (subject {}), {} already there, last sequence {}, \
         in {:.1} s ({:.0} entries/s), {} retries",
        summary.forwarded,
        args.common.stream,
        args.subject,
        summary.already_there,
        summary.last_sequence,
        summary.elapsed.as_secs_f64(),
        summary.forwarded as f64 / summary.elapsed.as_secs_f64().max(1e-9),
        summary.retries
    );
    Ok(())
}

async fn import(args: ImportArgs) -> Result<(), String> {
    let shown = args.dir.display();
    let durability = if args.buffered {
        Durability::Buffered
    } else {
        Durability::Synced
    };
    let (ledger, _queue) = if args.dir.join("ledger.meta").is_file() {
        let ledger = Ledger::open(&args.dir, LedgerConfig::default())
            .map_err(|e| format!("{shown}: {}", ringledger::error_chain(&e)))?;
        (ledger, None)
    } else {
        let queue = Queue::open(&args.dir, QueueConfig::default())
            .map_err(|e| format!("{shown}: {}", ringledger::error_chain(&e)))?;
        (queue.ledger().clone(), Some(queue))
    };
    let client =
        ringledger_jetstream::connect_with_creds(&args.common.server, args.common.creds.as_deref())
            .await
            .map_err(|e| line(&e))?;
    let config = ImportConfig::new(&args.common.stream, &args.consumer)
        .with_batch(args.batch)
        .with_durability(durability)
        .with_follow(args.common.follow)
        .with_patience(Duration::from_secs(args.common.patience));
    let importer = Importer::open(client, ledger, config)
        .await
        .map_err(|e| line(&e))?;
    let progress = importer.progress();
    let shown = progress_task("imported", args.common.quiet, move || {
        (progress.imported(), progress.retries())
    });
    let outcome = importer.run(interrupted()).await;
    shown.abort();
    let summary = outcome.map_err(|e| line(&e))?;
    println!(
        "imported {} messages from stream {} in {} writes, {} redeliveries skipped, ledger head {}, \
         in {:.1} s ({:.0} messages/s), {} retries",
        summary.imported,
        args.common.stream,
        summary.batches,
        summary.skipped,
        summary.last_sequence,
        summary.elapsed.as_secs_f64(),
        summary.imported as f64 / summary.elapsed.as_secs_f64().max(1e-9),
        summary.retries
    );
    Ok(())
}
