//! Human-readable sizes, rates and durations.

use std::time::Duration;

/// An error and its sources, `outer: inner: innermost`.
pub use ringledger::error_chain as chain;

/// `1536` -> `1.5 KiB` (binary units, by `bytesize`).
pub fn bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

/// `2_500_000.0` -> `2.50 M`.
pub fn count(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2} G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2} M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// Nanoseconds since the unix epoch as RFC 3339 in UTC, `2026-12-06T12:40:01.123456789Z`.
pub fn timestamp(ns: u64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_nanos(ns);
    humantime::format_rfc3339_nanos(time).to_string()
}

/// A per-second rate of `n` things (or bytes) over `elapsed`.
pub fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// `Duration` as `850 ns`, `12.3 µs`, `4.56 ms` or `1.23 s`.
pub fn duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(count(2_500_000.0), "2.50 M");
        assert_eq!(duration(Duration::from_nanos(850)), "850 ns");
        assert_eq!(duration(Duration::from_micros(1500)), "1.50 ms");
    }
}
