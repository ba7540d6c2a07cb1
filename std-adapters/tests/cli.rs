//! The `ringledger` binary, run as a user would (built with `--features cli`).

use std::path::Path;
use std::process::{Command, Output};

fn ringledger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringledger"))
        .args(args)
        .output()
        .expect("run ringledger")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn demo(dir: &Path, entries: &str) {
    let out = ringledger(&[
        "demo",
        "--dir",
        dir.to_str().unwrap(),
        "--entries",
        entries,
        "--size",
        "100",
        "--quiet",
    ]);
    assert!(out.status.success(), "demo failed: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("latency, append to consume: p50"),
        "{stdout}"
    );
}

#[test]
fn demo_leaves_a_ledger_that_verify_accepts_and_inspect_describes() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "20000");
    let d = dir.path().to_str().unwrap();

    let out = ringledger(&["verify", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("clean"));

    let out = ringledger(&["inspect", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("head 20000"), "{stdout}");
    assert!(stdout.contains("00000000000000000001.seg"), "{stdout}");
    assert!(stdout.contains("demo"), "{stdout}");

    let out = ringledger(&[
        "dump", d, "--from", "19999", "--count", "5", "--format", "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.starts_with("{\"sequence\":19999,"), "{stdout}");

    let out = ringledger(&["tail", d, "-n", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 3);
}

#[test]
fn verify_names_a_corrupted_byte_and_repair_cuts_there() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "3000");
    let segment = dir.path().join("ledger/00000000000000000001.seg");
    let mut image = std::fs::read(&segment).unwrap();
    // A payload byte of a record in the middle: frames of 100-byte payloads are 144 bytes.
    let at = 64 + 144 * 2000 + 40 + 7;
    image[at] ^= 0x10;
    std::fs::write(&segment, &image).unwrap();
    let d = dir.path().to_str().unwrap();

    let out = ringledger(&["verify", d]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("00000000000000000001.seg"), "{stderr}");
    // The damaged record's whole write goes (writes are atomic): the cut is at its start,
    // at or before the damaged frame.
    let offset: usize = stderr
        .split("offset ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {stderr}"));
    assert!(
        offset <= 64 + 144 * 2000 && (offset - 64) % 144 == 0,
        "{stderr}"
    );
    assert!(stderr.contains("corrupt"), "{stderr}");

    let out = ringledger(&["verify", "--repair", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ringledger(&["verify", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn bad_arguments_and_missing_directories_are_one_line_errors() {
    let out = ringledger(&["inspect", "/definitely/not/here"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no such directory"), "{stderr}");

    let empty = tempfile::tempdir().unwrap();
    let out = ringledger(&["verify", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a ledger"));

    let out = ringledger(&["demo", "--entries", "many"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .lines()
            .next()
            .unwrap()
            .contains("invalid value 'many'"),
        "{stderr}"
    );

    let out = ringledger(&["dump"]);
    assert!(!out.status.success());

    for command in ["demo", "inspect", "verify", "dump", "tail", "bench"] {
        let out = ringledger(&[command, "--help"]);
        assert!(out.status.success());
        assert!(
            text(&out.stdout).contains("Example:"),
            "{command} --help has no example"
        );
    }
}

/// An operator's first steps after a crash: `demo` (a buffered writer) killed with SIGKILL
/// mid-run, then `verify`, `inspect` and `dump` on what it left. Each must run to its end (exit
/// 0, or 1 with a message), never die of a signal: they once crashed with SIGSEGV writing the
/// footer of a segment the killed writer had sealed but not finished.
#[test]
fn the_tools_run_to_completion_on_a_ledger_left_by_a_killed_writer() {
    use std::os::unix::process::ExitStatusExt;
    for (round, delay_ms) in [700u64, 1200, 1800].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringledger"))
            .args(["demo", "--dir", d, "--entries", "20000000", "--size", "100"])
            .arg("--quiet")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run ringledger demo");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: demo ended by itself"
        );
        for args in [
            vec!["verify", d],
            vec!["inspect", d],
            vec!["dump", d, "--count", "1000"],
            vec!["dump", d, "--format", "json"],
            vec!["tail", d],
        ] {
            let out = ringledger(&args);
            assert_eq!(
                out.status.signal(),
                None,
                "round {round}: `ringledger {}` died of a signal: {}",
                args.join(" "),
                text(&out.stderr)
            );
            assert!(
                out.status.code().is_some_and(|c| c <= 1),
                "round {round}: {args:?}: {}",
                text(&out.stderr)
            );
        }
    }
}

/// `ringledger inspect DIR | head -1`: a reader that goes away is a normal end for every
/// subcommand that prints (status 0, nothing on stderr), never a panic.
#[test]
fn a_closed_stdout_is_a_normal_end() {
    use std::io::Read;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "5000");
    let d = dir.path().to_str().unwrap();
    let runs: [&[&str]; 5] = [
        &["inspect", d],
        &["verify", d],
        &["dump", d, "--count", "5000"],
        &["tail", d, "-n", "5000"],
        &["dump", d, "--count", "5000", "--format", "json"],
    ];
    for args in runs {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringledger"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader takes nothing and goes away, as `head -0` would.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{args:?}: {status:?}, stderr {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// `dump` and `tail` on a ledger damaged in the middle: they print what is readable, then say
/// on stderr where the log is cut and that what follows is unreadable, and exit 1; also when
/// `--from` starts past the damage (nothing printed, but the cut still said).
#[test]
fn readers_of_a_damaged_ledger_say_where_it_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "3000");
    let segment = dir.path().join("ledger/00000000000000000001.seg");
    let mut image = std::fs::read(&segment).unwrap();
    image[64 + 144 * 2000 + 40 + 7] ^= 0x10;
    std::fs::write(&segment, &image).unwrap();
    let d = dir.path().to_str().unwrap();
    for args in [
        &["dump", d, "--count", "5000"][..],
        &["dump", d, "--from", "2900"],
        &["tail", d, "-n", "10"],
    ] {
        let out = ringledger(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("cut at segment 00000000000000000001.seg")
                && stderr.contains("unreadable"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    let printed = text(&ringledger(&["dump", d, "--count", "5000"]).stdout);
    // Up to the start of the damaged record's write (writes are all or nothing).
    let lines = printed.lines().count();
    assert!((1000..=2000).contains(&lines), "{lines}");
}

/// `verify` on a queue checks the consumers' table too: a garbage table log is reported
/// (exit 1, naming it), and `inspect` reads the table without taking its lock.
#[test]
fn verify_checks_the_consumers_table() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "2000");
    let d = dir.path().to_str().unwrap();
    let out = ringledger(&["verify", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("consumers"),
        "{}",
        text(&out.stdout)
    );
    let table = std::fs::read_dir(dir.path().join("table"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a table log");
    std::fs::write(&table, vec![0x5Au8; 8192]).unwrap();
    let out = ringledger(&["verify", d]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("table"), "{stderr}");
    let out = ringledger(&["inspect", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("consumers:"),
        "{}",
        text(&out.stdout)
    );
}

/// `demo --dir D` run again on the same queue resumes it: the new entries follow the old
/// head, and what the earlier run left unmarked is delivered again and taken.
#[test]
fn demo_resumes_an_existing_queue() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "3000");
    let d = dir.path().to_str().unwrap();
    let out = ringledger(&["demo", "--dir", d, "--entries", "2000", "--size", "100"]);
    assert!(out.status.success(), "second run: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("resuming the queue"), "{stdout}");
    assert!(stdout.contains("head 5000"), "{stdout}");
    let out = ringledger(&["verify", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Entries the ledger ignores are reported by `verify` (exit 1): a directory and a FIFO
/// named like segments, and a stray file.
#[test]
fn verify_reports_foreign_entries_in_a_ledger_directory() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "1000");
    let ledger = dir.path().join("ledger");
    std::fs::create_dir(ledger.join("00000000000099999999.seg")).unwrap();
    let fifo = ledger.join("00000000000088888888.seg");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    std::fs::write(ledger.join("notes.txt"), "hello").unwrap();
    let out = ringledger(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for needle in [
        "00000000000099999999.seg: a directory named like a ledger file",
        "00000000000088888888.seg: not a regular file",
        "notes.txt: a foreign entry",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
}

/// What a killed writer leaves behind (its spare segment, a segment or meta file being
/// created) is the ledger's own: `verify` does not call it foreign, and the next writable
/// open removes it.
#[test]
fn verify_knows_the_leftovers_of_a_killed_writer() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "1000");
    let ledger = dir.path().join("ledger");
    for name in [
        "spare-0123456789abcdef.tmp",
        "00000000000000099999.seg.tmp",
        "ledger.meta.tmp",
    ] {
        std::fs::write(ledger.join(name), "").unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let out = ringledger(&["verify", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("foreign"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(ledger.join("spare-xyz.tmp"), "").unwrap();
    let out = ringledger(&["verify", d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("spare-xyz.tmp: a foreign entry"));
}

/// A garbled or empty `ledger.meta` next to intact segments: `verify` advises `--repair`,
/// and `--repair` rebuilds it from the segments (saying so), after which the ledger is clean
/// and holds its entries.
#[test]
fn repair_rebuilds_a_garbled_or_empty_meta_file() {
    for garbage in [&b""[..], b"not a meta file at all, definitely garbled"] {
        let dir = tempfile::tempdir().unwrap();
        demo(dir.path(), "2000");
        let d = dir.path().to_str().unwrap();
        let before = text(&ringledger(&["dump", d, "--count", "100000"]).stdout);
        std::fs::write(dir.path().join("ledger/ledger.meta"), garbage).unwrap();
        let out = ringledger(&["verify", d]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("--repair"),
            "{}",
            text(&out.stderr)
        );
        let out = ringledger(&["verify", "--repair", d]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("rebuilt from the segments"),
            "{}",
            text(&out.stdout)
        );
        let out = ringledger(&["verify", d]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let after = text(&ringledger(&["dump", d, "--count", "100000"]).stdout);
        // Every entry is still there; entries deleted inside the oldest segment may be back.
        assert!(
            !before.is_empty() && after.ends_with(&before),
            "the entries changed"
        );
    }
}

/// `demo --rate N` paces the producer (the run lasts about entries / N) and reports the
/// paced figure only; the default run reports a burst and a paced pass.
#[test]
fn demo_paces_the_producer_when_asked() {
    let started = std::time::Instant::now();
    let out = ringledger(&[
        "demo",
        "--entries",
        "2000",
        "--rate",
        "10000",
        "--size",
        "64",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(190),
        "2000 entries at 10 k/s took {:?}",
        started.elapsed()
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("paced: 2000 entries at 10.0 k/s"),
        "{stdout}"
    );
    assert!(!stdout.contains("burst"), "{stdout}");

    let out = ringledger(&["demo", "--entries", "5000", "--quiet"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("burst: 4500 entries"), "{stdout}");
    assert!(
        stdout.contains("paced: 500 entries at 100.0 k/s"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("latency, append to consume").count(), 2);

    let out = ringledger(&["demo", "--rate", "0"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--rate"),
        "{}",
        text(&out.stderr)
    );
}

/// `inspect --format json` and `verify --format json` print one JSON object with the facts the
/// text shows, and `verify` keeps its exit status; `dump --format json` names the payload's
/// encoding and gives the time in RFC 3339.
#[test]
fn reports_are_json_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "3000");
    let d = dir.path().to_str().unwrap();
    let json = |args: &[&str]| -> (Option<i32>, serde_json::Value) {
        let out = ringledger(args);
        let stdout = text(&out.stdout);
        assert_eq!(stdout.lines().count(), 1, "{args:?}: {stdout}");
        let value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        (out.status.code(), value)
    };

    let (code, inspect) = json(&["inspect", d, "--format", "json"]);
    assert_eq!(code, Some(0));
    assert_eq!(inspect["head"], 3000, "{inspect}");
    assert!(inspect["segments"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    assert!(inspect["consumers"]["positions"].is_object(), "{inspect}");

    let (code, verdict) = json(&["verify", d, "--format", "json"]);
    assert_eq!(code, Some(0));
    assert_eq!(verdict["status"], "clean", "{verdict}");
    assert_eq!(verdict["table"]["status"], "clean", "{verdict}");

    let (_, entry) = json(&["dump", d, "--from", "7", "--count", "1", "--format", "json"]);
    assert_eq!(entry["sequence"], 7);
    assert_eq!(entry["length"], 100);
    assert!(
        entry["encoding"] == "utf8" || entry["encoding"] == "hex",
        "{entry}"
    );
    let time = entry["time"].as_str().unwrap();
    assert!(time.starts_with("20") && time.ends_with('Z'), "{time}");

    let segment = dir.path().join("ledger/00000000000000000001.seg");
    let mut image = std::fs::read(&segment).unwrap();
    image[64 + 144 * 2000 + 40 + 7] ^= 0x10;
    std::fs::write(&segment, &image).unwrap();
    let (code, verdict) = json(&["verify", d, "--format", "json"]);
    assert_eq!(code, Some(1));
    assert_eq!(verdict["status"], "damaged", "{verdict}");
    assert!(
        verdict["problem"].as_str().unwrap().contains("corrupt"),
        "{verdict}"
    );
    let (_, inspect) = json(&["inspect", d, "--format", "json"]);
    assert_eq!(
        inspect["recovery"]["cut"][0]["segment"],
        "00000000000000000001.seg"
    );
    let (code, verdict) = json(&["verify", d, "--repair", "--format", "json"]);
    assert_eq!(code, Some(0), "{verdict}");
    assert_eq!(verdict["status"], "repaired", "{verdict}");
    assert!(
        !verdict["repairs"].as_array().unwrap().is_empty(),
        "{verdict}"
    );
}

/// `tail --follow` prints what a writer in another process appends, including across a new
/// segment and after the writer is replaced, without reopening the ledger.
#[test]
fn tail_follow_prints_what_a_writer_appends() {
    use ringledger::ledger::{Entry, Ledger, LedgerConfig};
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig::default().with_segment_size(8192);
    let writer = Ledger::open(dir.path(), config.clone()).unwrap();
    writer.write(&[Entry::new(1, "before")]).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringledger"))
        .args(["tail", dir.path().to_str().unwrap(), "--follow", "-n", "1"])
        .args(["--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run ringledger tail --follow");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = || lines.next().expect("a line").expect("readable");
    assert!(next_line().starts_with("{\"sequence\":1,"));
    // Enough to fill several 8 KiB segments.
    for seq in 2..=200 {
        writer
            .write(&[Entry::new(seq, format!("entry {seq} {}", "x".repeat(100)))])
            .unwrap();
    }
    for seq in 2..=200 {
        let line = next_line();
        assert!(
            line.starts_with(&format!("{{\"sequence\":{seq},")),
            "{line}"
        );
    }
    // A new writer (the old one gone): followed too.
    drop(writer);
    let writer = Ledger::open(dir.path(), config).unwrap();
    writer.write(&[Entry::new(201, "after")]).unwrap();
    assert!(next_line().starts_with("{\"sequence\":201,"));
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A copy of the `ringledger` binary alone in a directory, so that what sits next to it is
/// up to the test.
fn lone_ringledger() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("ringledger");
    std::fs::copy(env!("CARGO_BIN_EXE_ringledger"), &copy).unwrap();
    (dir, copy)
}

#[test]
fn forward_and_import_without_the_bridge_say_how_to_install_it() {
    let (_dir, ringledger) = lone_ringledger();
    let empty = tempfile::tempdir().unwrap();
    for command in ["forward", "import"] {
        let out = Command::new(&ringledger)
            .args([command, "/tmp/q", "--server", "nats://127.0.0.1:4222"])
            .env("PATH", empty.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("ringledger-jetstream, which is not installed"),
            "{stderr}"
        );
        assert!(
            stderr.contains("cargo install ringledger-jetstream"),
            "{stderr}"
        );
    }
    let out = Command::new(&ringledger)
        .arg("frobnicate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unrecognized subcommand 'frobnicate'"));
}

#[test]
fn forward_and_import_run_the_bridge_beside_the_tool_with_every_argument() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, ringledger) = lone_ringledger();
    // A stand-in bridge that prints its arguments and exits with status 3.
    let bridge = dir.path().join("ringledger-jetstream");
    std::fs::write(&bridge, "#!/bin/sh\necho \"bridge: $*\"\nexit 3\n").unwrap();
    std::fs::set_permissions(&bridge, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = || {
        Command::new(&ringledger)
            .args([
                "import",
                "/tmp/q",
                "--stream",
                "EVENTS",
                "--consumer",
                "a b",
            ])
            .output()
            .unwrap()
    };
    // A process another test forks while the script is open for writing holds it busy for a
    // moment (ETXTBSY): try again, a few times.
    let mut out = run();
    for _ in 0..20 {
        if !text(&out.stderr).contains("Text file busy") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        out = run();
    }
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "bridge: import /tmp/q --stream EVENTS --consumer a b\n"
    );
}
