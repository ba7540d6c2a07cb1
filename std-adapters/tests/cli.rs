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
