//! Paired, interleaved comparison of ringledger with its peers, robust to placement drift.
//!
//! On the project's 2-vCPU KVM guests the host moves the two vCPUs between physical cores
//! while a benchmark runs: an `AtomicU64` ping-pong round trip between cores 0 and 1 jumps
//! between ~46 ns and ~400 ns within seconds. Criterion measures one crate after another, so
//! two crates of one group can be measured on different placements. This tool instead runs
//! every crate of a case back to back in short batches, brackets each round with a ping-pong
//! canary, drops rounds whose canary moved, and reports per placement bucket the median
//! throughput (or round trip) of each crate and the median of ours/peer ratios within rounds.
//!
//! Every placement bucket the rounds fell in is reported with its own medians and ratios, and
//! a closing Markdown table gives, per case and placement, the rounds it had and ours/peer
//! for each peer (what the README's ring table shows). The crates and how each is driven come
//! from `ringledger_benches::peers`, the same tables the criterion bench runs.
//!
//! Run: `cargo run --release -p ringledger-benches --example paired [-- ROUNDS [CASE...]]`
//! with CASE among `near_empty near_full chunk256 echo mpsc_1p mpsc_2p` (default: all).
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use ringledger_benches::peers::{self, Contender, OURS};
use ringledger_benches::{ping_pong, Regime};

fn per(n: u64, d: Duration) -> f64 {
    d.as_nanos() as f64 / n as f64
}

/// Ping-pong round trip in ns, the placement canary.
fn canary() -> f64 {
    per(20_000, ping_pong(20_000))
}

fn bucket(rtt: f64) -> &'static str {
    if rtt < 80.0 {
        "near (RTT < 80 ns)"
    } else if rtt < 250.0 {
        "mid (80-250 ns)"
    } else {
        "far (RTT >= 250 ns)"
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// One case's result in one placement: its rounds and ours/peer per peer (median of the
/// per-round ratios), for the closing table.
struct Row {
    case: &'static str,
    placement: &'static str,
    rounds: usize,
    ours: String,
    ratios: Vec<(&'static str, f64)>,
}

fn run_case(
    name: &'static str,
    contenders: &[Contender],
    n: u64,
    rounds: usize,
    round_trips: bool,
) -> Vec<Row> {
    // bucket -> crate -> samples (ns per item); bucket -> peer -> ours/peer speed ratios
    let mut times: BTreeMap<&str, BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
    let mut ratios: BTreeMap<&str, BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
    let mut dropped = 0;
    for round in 0..rounds {
        let before = canary();
        // Rotate the order so no crate always runs first.
        let results: Vec<(&str, f64)> = (0..contenders.len())
            .map(|i| &contenders[(i + round) % contenders.len()])
            .map(|c| (c.name, per(n, (c.run)(n))))
            .collect();
        let after = canary();
        if (after - before).abs() > 0.25 * before.min(after) {
            dropped += 1;
            continue;
        }
        let b = bucket((before + after) / 2.0);
        let ours = results.iter().find(|r| r.0 == OURS).map(|r| r.1);
        for &(crate_name, t) in &results {
            times
                .entry(b)
                .or_default()
                .entry(crate_name)
                .or_default()
                .push(t);
            if let (Some(o), true) = (ours, crate_name != OURS) {
                ratios
                    .entry(b)
                    .or_default()
                    .entry(crate_name)
                    .or_default()
                    .push(t / o);
            }
        }
    }
    let show = |ns: f64| {
        if round_trips {
            format!("{ns:.1} ns")
        } else {
            format!("{:.1} M/s", 1e3 / ns)
        }
    };
    println!("\n## {name} ({n} items a run, {rounds} rounds, {dropped} dropped: canary moved)");
    let mut rows = Vec::new();
    for (b, crates) in &mut times {
        let k = crates.values().next().map_or(0, Vec::len);
        println!("{b}: {k} rounds");
        let mut row = Row {
            case: name,
            placement: b,
            rounds: k,
            ours: String::new(),
            ratios: Vec::new(),
        };
        for (crate_name, v) in crates.iter_mut() {
            let m = median(v);
            let shown = if round_trips {
                format!("{m:8.1} ns per round trip")
            } else {
                format!("{:8.1} M items/s", 1e3 / m)
            };
            let ratio = ratios
                .get_mut(b)
                .and_then(|r| r.get_mut(crate_name))
                .map(|r| median(r));
            if *crate_name == OURS {
                row.ours = show(m);
            }
            if let Some(r) = ratio {
                row.ratios.push((crate_name, r));
            }
            let ratio = ratio
                .map(|r| format!("   ours/{crate_name} = {r:.2}x"))
                .unwrap_or_default();
            println!("  {crate_name:30} {shown}{ratio}");
        }
        rows.push(row);
    }
    rows
}

/// The closing table: a row per case and placement, our speed over each peer's (above 1:
/// ours is faster; for round trips, the inverse of the time ratio, so the same reading).
fn print_table(rows: &[Row]) {
    println!("\n| case | placement | rounds | ours | ours/peer (speed) |");
    println!("|---|---|---|---|---|");
    for row in rows {
        let ratios: Vec<String> = row
            .ratios
            .iter()
            .map(|(peer, r)| format!("{peer} {r:.2}x"))
            .collect();
        println!(
            "| {} | {} | {} | {} | {} |",
            row.case,
            row.placement,
            row.rounds,
            row.ours,
            ratios.join(", ")
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds = args.first().and_then(|a| a.parse().ok()).unwrap_or(20);
    let wanted: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let want = |c: &str| wanted.is_empty() || wanted.contains(&c);
    type Table = fn() -> Vec<Contender>;
    let cases: [(&str, &'static str, Table, u64, bool); 6] = [
        (
            "near_empty",
            "spsc_u64_near_empty",
            || peers::spsc_stream(Regime::NearEmpty),
            1_000_000,
            false,
        ),
        (
            "near_full",
            "spsc_u64_near_full",
            || peers::spsc_stream(Regime::NearFull),
            1_000_000,
            false,
        ),
        (
            "chunk256",
            "spsc_chunk256",
            peers::spsc_chunk256,
            2_048_000,
            false,
        ),
        ("echo", "echo_rtt", peers::echo_rtt, 50_000, true),
        ("mpsc_1p", "mpsc_1p", || peers::mpsc_many(1), 500_000, false),
        (
            "mpsc_2p",
            "mpsc_2p_oversubscribed",
            || peers::mpsc_many(2),
            500_000,
            false,
        ),
    ];
    let mut rows = Vec::new();
    for (arg, name, table, n, round_trips) in cases {
        if want(arg) {
            rows.extend(run_case(name, &table(), n, rounds, round_trips));
        }
    }
    print_table(&rows);
}
