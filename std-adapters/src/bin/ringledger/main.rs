//! `ringledger`: run the demo, and inspect, verify, dump, tail and benchmark ledgers.
//!
//! ```text
//! cargo run --release -p ringledger --features cli -- demo
//! cargo run --release -p ringledger --features cli -- inspect /var/lib/app/queue
//! ```

#[cfg(not(unix))]
compile_error!(
    "the `ringledger` tool works on on-disk ledgers, which exist only on unix (mmap, flock, \
     directory fsync); build the library without the `cli` feature on this target"
);

#[cfg(not(unix))]
fn main() {}

/// `println!` for the tool's output: a closed stdout (`ringledger inspect DIR | head -1`) ends
/// the program quietly with status 0, as the reader asked; another write error ends it with a
/// one-line message and status 1. Never a panic.
#[cfg(unix)]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say_line(format_args!($($arg)*))
    };
}

#[cfg(unix)]
mod bench;
#[cfg(unix)]
mod demo;
#[cfg(unix)]
mod dump;
#[cfg(unix)]
mod external;
#[cfg(unix)]
mod fmt;
#[cfg(unix)]
mod inspect;
#[cfg(unix)]
mod verify;

#[cfg(unix)]
use std::ffi::OsString;
#[cfg(unix)]
use std::io::Write;
#[cfg(unix)]
use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::process::ExitCode;

#[cfg(unix)]
use clap::{Parser, Subcommand, ValueEnum};

#[cfg(unix)]
/// Buffer and log events: a demo of the ringledger queue, and tools for ledger directories.
#[derive(Debug, Parser)]
#[command(
    name = "ringledger",
    version,
    about,
    long_about = None,
    after_help = "More commands, from the separately installed ringledger-jetstream:\n  \
                  forward   Forward a ledger to a NATS JetStream stream, exactly once\n  \
                  import    Import a JetStream stream into a ledger, exactly once"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(unix)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Produce and consume entries through a queue, with a cleaner running, and report rates
    /// and latencies.
    #[command(
        after_help = "Example:\n  ringledger demo --entries 1000000 --size 256\n  \
                            ringledger demo --dir /tmp/q --sync   # keep it for `inspect`"
    )]
    Demo(demo::Args),
    /// Describe a ledger (or queue) directory: segments, head, tail, length, consumers.
    #[command(after_help = "Example:\n  ringledger inspect /tmp/q\n  \
                            ringledger inspect /tmp/q --format json | jq .head")]
    Inspect {
        /// The ledger or queue directory.
        dir: PathBuf,
        /// Text for people, or one JSON object for scripts and monitors.
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Check every record's checksums; exit 0 when clean, 1 naming the first problem.
    #[command(after_help = "Example:\n  ringledger verify /tmp/q\n  \
                            ringledger verify --repair /tmp/q   # cut a torn or damaged tail\n  \
                            ringledger verify /tmp/q --format json   # the verdict as JSON")]
    Verify {
        /// The ledger or queue directory.
        dir: PathBuf,
        /// Apply recovery and cut the log at damage, then check again.
        #[arg(long)]
        repair: bool,
        /// Text for people, or one JSON object for scripts and monitors (the exit status is
        /// the same).
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Print entries. Exits 1 (after printing what is readable) when damage cuts the log.
    #[command(
        after_help = "Example:\n  ringledger dump /tmp/q --from 100 --count 5 --format json"
    )]
    Dump {
        /// The ledger or queue directory.
        dir: PathBuf,
        /// The first sequence to print.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// How many entries to print.
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// How to print each entry.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the newest entries, and with --follow the ones appended after them. Exits 1
    /// (after printing what is readable) when damage cuts the log.
    #[command(after_help = "Example:\n  ringledger tail /tmp/q --follow")]
    Tail {
        /// The ledger or queue directory.
        dir: PathBuf,
        /// How many of the newest entries to print first.
        #[arg(long, short = 'n', default_value_t = 10)]
        lines: usize,
        /// Keep printing entries as a writer (in another process) appends them.
        #[arg(long, short = 'f')]
        follow: bool,
        /// How to print each entry.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// A quick built-in benchmark with ratios against baselines (criterion in `benches/` is
    /// the reference).
    #[command(after_help = "Example:\n  ringledger bench ledger")]
    Bench {
        /// What to measure.
        #[arg(value_enum, default_value_t = bench::Suite::All)]
        suite: bench::Suite,
    },
    /// `forward` and `import`, run by `ringledger-jetstream` (see `external.rs`).
    #[command(external_subcommand)]
    External(Vec<OsString>),
}

#[cfg(unix)]
/// How `dump` and `tail` print an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line: sequence, tag, time (RFC 3339, UTC), length, payload (escaped, cut at 64
    /// bytes).
    Text,
    /// One JSON object per line: sequence, tag, timestamp (ns) and time (RFC 3339), length,
    /// and the payload with its encoding (`utf8`, or `hex` when it is not UTF-8).
    Json,
    /// A header line, then the payload as a hex dump.
    Hex,
}

#[cfg(unix)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    log_to_stderr();
    let outcome = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Inspect { dir, format } => inspect::run(&dir, format),
        Command::Verify {
            dir,
            repair,
            format,
        } => verify::run(&dir, repair, format),
        Command::Dump {
            dir,
            from,
            count,
            format,
        } => dump::dump(&dir, from, count, format),
        Command::Tail {
            dir,
            lines,
            follow,
            format,
        } => dump::tail(&dir, lines, follow, format),
        Command::Bench { suite } => bench::run(suite),
        Command::External(args) => external::run(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ringledger: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The library's `tracing` events (recovery cuts, poisoning, slow syncs, cleaner errors) go to
/// stderr, at the level `RINGLEDGER_LOG` names (`error`, `warn`, `info`, `debug`, `trace`;
/// `warn` when unset, `off` for none).
#[cfg(unix)]
fn log_to_stderr() {
    use tracing_subscriber::filter::LevelFilter;
    let level = std::env::var("RINGLEDGER_LOG")
        .ok()
        .and_then(|level| level.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::WARN);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .init();
}

#[cfg(unix)]
/// Writes one line to stdout for [`say!`].
fn say_line(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("ringledger: writing to stdout: {e}");
        std::process::exit(1);
    }
}

#[cfg(unix)]
/// What a command returns: an exit code, or one line saying what went wrong.
type Outcome = Result<ExitCode, String>;

#[cfg(unix)]
/// How `inspect` and `verify` print their report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// Lines for people.
    Text,
    /// One JSON object on one line, for scripts and monitors.
    Json,
}

#[cfg(unix)]
/// A subcommand's report: the same facts as text or as JSON.
trait Report: serde::Serialize {
    /// Prints the report for people.
    fn text(&self);

    fn print(&self, format: ReportFormat) -> Result<(), String> {
        match format {
            ReportFormat::Text => self.text(),
            ReportFormat::Json => {
                let json = serde_json::to_string(self).map_err(|e| fmt::chain(&e))?;
                say!("{json}");
            }
        }
        Ok(())
    }
}

#[cfg(unix)]
/// The ledger directory of `dir`: `dir/ledger` for a queue directory, else `dir` itself.
fn ledger_dir(dir: &Path) -> Result<PathBuf, String> {
    if !dir.is_dir() {
        return Err(format!("{}: no such directory", dir.display()));
    }
    let queue_ledger = dir.join("ledger");
    if queue_ledger.join("ledger.meta").is_file() {
        return Ok(queue_ledger);
    }
    if dir.join("ledger.meta").is_file() {
        return Ok(dir.to_path_buf());
    }
    Err(format!(
        "{}: not a ledger or queue directory (no ledger.meta)",
        dir.display()
    ))
}

#[cfg(unix)]
/// What recovery found at a cut, in words.
fn describe_damage(damage: &ringledger::core::segment::Damage) -> String {
    match damage {
        ringledger::core::segment::Damage::TornTail => "torn tail (an interrupted write)".into(),
        ringledger::core::segment::Damage::Corrupt(reason) => format!("corrupt data ({reason})"),
    }
}

#[cfg(unix)]
/// Where a reader of `ledger` stops short of what was written: damage (not a torn tail, the
/// ordinary trace of a killed or still-running writer) that recovery would cut, and segments
/// it would drop after it. `None` when the log reads whole.
fn damage_cut(ledger: &ringledger::ledger::Ledger) -> Option<String> {
    let report = ledger.recovery();
    let corrupt = report
        .cut
        .iter()
        .find(|(_, _, damage)| matches!(damage, ringledger::core::segment::Damage::Corrupt(_)));
    match (corrupt, report.removed_segments.is_empty()) {
        (None, true) => None,
        (Some((segment, offset, damage)), _) => Some(format!(
            "the log is cut at segment {segment}, offset {offset}: {}; entries after it \
             (head {}) are unreadable (`ringledger verify` for details)",
            describe_damage(damage),
            ledger.head()
        )),
        (None, false) => Some(format!(
            "segments {} are unreadable after a cut; entries in them are not shown \
             (`ringledger verify` for details)",
            report.removed_segments.join(", ")
        )),
    }
}

#[cfg(unix)]
/// Opens the consumers' table in `table_dir` read-only: no lock (a live queue holds it),
/// nothing written.
fn open_table_read_only(table_dir: &Path) -> Result<ringledger::table::Table, String> {
    let storage = ringledger::storage::DirStorage::new(table_dir)
        .map_err(|e| format!("{}: {}", table_dir.display(), fmt::chain(&e)))?;
    ringledger::table::Table::open_read_only(std::sync::Arc::new(storage))
        .map_err(|e| format!("{}: {}", table_dir.display(), fmt::chain(&e)))
}

#[cfg(unix)]
/// Opens the ledger under `dir` read-only: no lock, nothing written.
fn open_read_only(dir: &Path) -> Result<ringledger::ledger::Ledger, String> {
    let path = ledger_dir(dir)?;
    ringledger::ledger::Ledger::open(
        &path,
        ringledger::ledger::LedgerConfig::default().with_read_only(true),
    )
    .map_err(|e| format!("{}: {}", path.display(), fmt::chain(&e)))
}
