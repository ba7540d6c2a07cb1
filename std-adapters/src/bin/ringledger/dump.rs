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
    drop(ledger);
    while failed.is_none() {
        // A read-only ledger does not see another process's appends: look again.
        std::thread::sleep(Duration::from_millis(200));
        let ledger = open_read_only(dir)?;
        if ledger.tail() >= next {
            next = ledger.tail() + 1;
        }
        print_from(&ledger, &mut next, &mut out, format, &mut failed)?;
    }
    Ok(ExitCode::SUCCESS)
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
                "{:>20}  tag {:<6} ts {:<20} {:>7} B  {}{more}",
                e.sequence,
                e.tag,
                e.timestamp,
                e.payload.len(),
                shown.escape_ascii()
            )
        }
        Format::Json => {
            write!(
                out,
                "{{\"sequence\":{},\"tag\":{},\"timestamp\":{},\"length\":{},",
                e.sequence,
                e.tag,
                e.timestamp,
                e.payload.len()
            )?;
            match std::str::from_utf8(e.payload) {
                Ok(text) => writeln!(out, "\"payload\":\"{}\"}}", json_escape(text)),
                Err(_) => writeln!(out, "\"payload_hex\":\"{}\"}}", hex(e.payload)),
            }
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn spaced_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x} ")).collect()
}

fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_escape("a\"b\\c\n\u{1}"), "a\\\"b\\\\c\\n\\u0001");
    }

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
        assert!(text.contains("\"payload\":\"hi\\u0000\""), "{text}");
        assert!(text.contains("68 69 00"), "{text}");
    }
}
