//! `ringledger dump` and `ringledger tail`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ringledger::ledger::EntryRef;

use crate::{damage_cut, fmt, open_read_only, Format, Outcome};

pub fn dump(dir: &Path, from: u64, count: usize, format: Format) -> Outcome {
    let ledger = open_read_only(dir)?;
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    ledger
        .visit(from, count, |entry| {
            if failed.is_none() {
                failed = print(&mut out, &entry, format).err();
            }
        })
        .map_err(|e| fmt::chain(&e))?;
    finish(failed, &ledger)
}

pub fn tail(dir: &Path, lines: usize, follow: bool, format: Format) -> Outcome {
    let ledger = open_read_only(dir)?;
    let from = ledger
        .index(-(lines.min(i64::MAX as usize) as i64))
        .map_err(|e| fmt::chain(&e))?
        .map_or_else(|| ledger.tail() + 1, |e| e.sequence);
    let mut next = from;
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    print_from(&ledger, &mut next, &mut out, format, &mut failed)?;
    if !follow {
        return finish(failed, &ledger);
    }
    if let Some(cut) = damage_cut(&ledger) {
        eprintln!("ringledger: {cut}");
    }
    if let ringledger::ledger::FollowMode::Reopening(why) = ledger.follow_mode() {
        eprintln!("ringledger: following by reopening the ledger: {why}");
    }
    while failed.is_none() {
        // The read-only ledger follows the writer (parked on its live page; a new writer
        // after a crash, deletes, new segments): wake with each write it shows.
        match ledger.wait_for_head(next, Duration::from_secs(1)) {
            Ok(_) | Err(ringledger::wait::WaitError::TimedOut) => {}
            Err(e) => return Err(e.to_string()),
        }
        if ledger.tail() >= next {
            next = ledger.tail() + 1;
        }
        print_from(&ledger, &mut next, &mut out, format, &mut failed)?;
        if failed.is_none() {
            failed = out.flush().err();
        }
    }
    finish(failed, &ledger)
}

/// Prints every entry from `*next` on, and moves `*next` past them.
fn print_from(
    ledger: &ringledger::ledger::Ledger,
    next: &mut u64,
    out: &mut impl Write,
    format: Format,
    failed: &mut Option<std::io::Error>,
) -> Result<(), String> {
    ledger
        .visit(*next, usize::MAX, |entry| {
            if failed.is_none() {
                *failed = print(out, &entry, format).err();
            }
            *next = entry.sequence + 1;
        })
        .map(drop)
        .map_err(|e| fmt::chain(&e))
}

/// The end of a dump: a write error, or damage that cut the log, is the exit status.
fn finish(failed: Option<std::io::Error>, ledger: &ringledger::ledger::Ledger) -> Outcome {
    match failed {
        // The reader went away (`| head`): not an error.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Some(e) => Err(format!("writing: {}", fmt::chain(&e))),
        None => match damage_cut(ledger) {
            Some(cut) => Err(cut),
            None => Ok(ExitCode::SUCCESS),
        },
    }
}

fn print(out: &mut impl Write, e: &EntryRef<'_>, format: Format) -> std::io::Result<()> {
    match format {
        Format::Text => {
            let shown = &e.payload[..e.payload.len().min(64)];
            let more = if e.payload.len() > 64 { "…" } else { "" };
            writeln!(
                out,
                "{:>20}  tag {:<6} {:<30} {:>7} B  {}{more}",
                e.sequence,
                e.tag,
                fmt::timestamp(e.timestamp),
                e.payload.len(),
                shown.escape_ascii()
            )
        }
        Format::Json => {
            serde_json::to_writer(&mut *out, &JsonEntry::from(e)).map_err(std::io::Error::from)?;
            writeln!(out)
        }
        Format::Hex => {
            writeln!(
                out,
                "sequence {} tag {} timestamp {} length {}",
                e.sequence,
                e.tag,
                e.timestamp,
                e.payload.len()
            )?;
            for (i, line) in e.payload.chunks(16).enumerate() {
                let ascii: String = line
                    .iter()
                    .map(|&b| {
                        if b.is_ascii_graphic() || b == b' ' {
                            b as char
                        } else {
                            '.'
                        }
                    })
                    .collect();
                writeln!(out, "  {:08x}  {:<48} {ascii}", i * 16, spaced_hex(line))?;
            }
            Ok(())
        }
    }
}

fn spaced_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x} ")).collect()
}

/// One entry as `dump --format json` prints it, a line each. The payload is a string in
/// the named encoding: the text itself when it is UTF-8, else lowercase hex.
#[derive(serde::Serialize)]
struct JsonEntry<'a> {
    sequence: u64,
    tag: u32,
    /// Nanoseconds since the unix epoch, as written.
    timestamp: u64,
    /// The same instant in RFC 3339, UTC.
    time: String,
    length: usize,
    encoding: &'static str,
    payload: std::borrow::Cow<'a, str>,
}

impl<'a> From<&EntryRef<'a>> for JsonEntry<'a> {
    fn from(e: &EntryRef<'a>) -> Self {
        let (encoding, payload) = match std::str::from_utf8(e.payload) {
            Ok(text) => ("utf8", std::borrow::Cow::Borrowed(text)),
            Err(_) => {
                let hex = e.payload.iter().map(|b| format!("{b:02x}")).collect();
                ("hex", std::borrow::Cow::Owned(hex))
            }
        };
        JsonEntry {
            sequence: e.sequence,
            tag: e.tag,
            timestamp: e.timestamp,
            time: fmt::timestamp(e.timestamp),
            length: e.payload.len(),
            encoding,
            payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_print_in_every_format() {
        let e = EntryRef {
            sequence: 7,
            tag: 2,
            timestamp: 9,
            payload: b"hi\x00",
        };
        let mut out = Vec::new();
        for format in [Format::Text, Format::Json, Format::Hex] {
            print(&mut out, &e, format).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("hi\\x00"), "{text}");
        assert!(
            text.contains("\"encoding\":\"utf8\",\"payload\":\"hi\\u0000\""),
            "{text}"
        );
        assert!(text.contains("1970-01-01T00:00:00.000000009Z"), "{text}");
        let binary = EntryRef {
            payload: b"\xff\x01",
            ..e
        };
        let json: serde_json::Value = serde_json::to_value(JsonEntry::from(&binary)).unwrap();
        assert_eq!(json["encoding"], "hex");
        assert_eq!(json["payload"], "ff01");
        assert_eq!(json["length"], 2);
        assert!(text.contains("68 69 00"), "{text}");
    }
}
