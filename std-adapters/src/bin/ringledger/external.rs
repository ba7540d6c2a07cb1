//! `forward` and `import`: the NATS JetStream bridge's commands, run by the separate
//! `ringledger-jetstream` program, the way cargo runs `cargo-<name>` for a subcommand it does
//! not know.
//!
//! The bridge needs tokio and the `async-nats` client, which this crate (and its tool) must
//! not depend on, and its crate depends on this one, so a feature here could not pull it in.
//! The tool looks for `ringledger-jetstream` next to its own executable (where `cargo build`
//! and `cargo install` put it), then on the `PATH`, and replaces itself with it (`exec`), so
//! Ctrl-C, the exit status and the output are the bridge's own.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::Outcome;

/// The subcommands the bridge provides.
const BRIDGE_COMMANDS: [&str; 2] = ["forward", "import"];

/// The bridge's program name.
const BRIDGE: &str = "ringledger-jetstream";

/// Runs `ringledger-jetstream` with `args` (`args[0]` is the subcommand); returns only on
/// failure.
pub fn run(args: &[OsString]) -> Outcome {
    let name = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !BRIDGE_COMMANDS.contains(&name.as_str()) {
        return Err(format!(
            "unrecognized subcommand '{name}' (`ringledger --help` lists them)"
        ));
    }
    let Some(program) = find_bridge() else {
        return Err(format!(
            "`ringledger {name}` is provided by {BRIDGE}, which is not installed (looked next to \
             this program and on PATH): cargo install ringledger-jetstream, or in the source \
             tree: cargo build --release -p ringledger-jetstream"
        ));
    };
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new(&program).args(args).exec();
    Err(format!("running {}: {error}", program.display()))
}

/// `ringledger-jetstream` next to this executable, else the first on the `PATH`.
fn find_bridge() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(BRIDGE)));
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(BRIDGE))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path)
        .find(|candidate| candidate.is_file())
}
