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
//! Run: `cargo run --release -p ringledger-benches --example paired [-- ROUNDS [CASE...]]`
//! with CASE among `near_empty near_full chunk256 echo mpsc_1p mpsc_2p` (default: all).
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, TrySendError};
use std::time::Duration;

use ringbuf::traits::{Consumer as _, Producer as _, Split as _};
use ringledger_benches::{
    check_seq, chunked, copy_baseline, echo, fill_seq, mpsc, ping_pong, stream, Regime,
};

const CAP: usize = 1024;

/// One crate's run of `n` items; returns nanoseconds per item (or per round trip).
type Runner = (&'static str, fn(u64) -> f64);

fn per(n: u64, d: Duration) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn stream_runners(regime: Regime) -> Vec<Runner> {
    macro_rules! r {
        ($regime:expr) => {
            vec![
                ("ringledger", |n| {
                    per(
                        n,
                        stream(
                            n,
                            $regime,
                            ringledger_core::spsc::channel::<u64>(CAP),
                            |p, v| p.push(v).is_ok(),
                            |c| c.pop(),
                        ),
                    )
                }),
                ("rtrb", |n| {
                    per(
                        n,
                        stream(
                            n,
                            $regime,
                            rtrb::RingBuffer::<u64>::new(CAP),
                            |p, v| p.push(v).is_ok(),
                            |c| c.pop().ok(),
                        ),
                    )
                }),
                ("ringbuf", |n| {
                    per(
                        n,
                        stream(
                            n,
                            $regime,
                            ringbuf::HeapRb::<u64>::new(CAP).split(),
                            |p, v| p.try_push(v).is_ok(),
                            |c| c.try_pop(),
                        ),
                    )
                }),
                ("crossbeam_array_queue", |n| {
                    let q = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
                    per(
                        n,
                        stream(n, $regime, (&q, &q), |q, v| q.push(v).is_ok(), |q| q.pop()),
                    )
                }),
            ]
        };
    }
    match regime {
        Regime::NearEmpty => r!(Regime::NearEmpty),
        Regime::NearFull => r!(Regime::NearFull),
        Regime::Free => r!(Regime::Free),
    }
}

fn chunk_runners() -> Vec<Runner> {
    vec![
        ("ringledger", |n| {
            let n = n / 256 * 256;
            per(
                n,
                chunked(
                    n,
                    256,
                    ringledger_core::spsc::channel::<u64>(CAP),
                    |p, start, len| match p.write_chunk_uninit(len) {
                        Ok(mut chunk) => {
                            let (a, b) = chunk.as_mut_slices();
                            fill_seq(a, start);
                            let len_a = a.len() as u64;
                            fill_seq(b, start + len_a);
                            // SAFETY: both slices were fully initialized just above.
                            unsafe { chunk.commit_all() };
                            true
                        }
                        Err(_) => false,
                    },
                    |c, start, len| {
                        let chunk = c.read_chunk(len).ok()?;
                        let (a, b) = chunk.as_slices();
                        let sum =
                            check_seq(a, start).wrapping_add(check_seq(b, start + a.len() as u64));
                        chunk.commit_all();
                        Some(sum)
                    },
                ),
            )
        }),
        ("rtrb", |n| {
            let n = n / 256 * 256;
            per(
                n,
                chunked(
                    n,
                    256,
                    rtrb::RingBuffer::<u64>::new(CAP),
                    |p, start, len| match p.write_chunk_uninit(len) {
                        Ok(mut chunk) => {
                            let (a, b) = chunk.as_mut_slices();
                            fill_seq(a, start);
                            let len_a = a.len() as u64;
                            fill_seq(b, start + len_a);
                            // SAFETY: both slices were fully initialized just above.
                            unsafe { chunk.commit_all() };
                            true
                        }
                        Err(_) => false,
                    },
                    |c, start, len| {
                        let chunk = c.read_chunk(len).ok()?;
                        let (a, b) = chunk.as_slices();
                        let sum =
                            check_seq(a, start).wrapping_add(check_seq(b, start + a.len() as u64));
                        chunk.commit_all();
                        Some(sum)
                    },
                ),
            )
        }),
        ("baseline_copy_shared_buffer", |n| {
            let n = n / 256 * 256;
            per(n, copy_baseline(n, CAP, 256))
        }),
    ]
}

fn echo_runners() -> Vec<Runner> {
    vec![
        ("ringledger", |n| {
            per(
                n,
                echo(
                    n,
                    ringledger_core::spsc::channel::<u64>(CAP),
                    ringledger_core::spsc::channel::<u64>(CAP),
                    |p, v| p.push(v).is_ok(),
                    |c| c.pop(),
                ),
            )
        }),
        ("rtrb", |n| {
            per(
                n,
                echo(
                    n,
                    rtrb::RingBuffer::<u64>::new(CAP),
                    rtrb::RingBuffer::<u64>::new(CAP),
                    |p, v| p.push(v).is_ok(),
                    |c| c.pop().ok(),
                ),
            )
        }),
        ("crossbeam_array_queue", |n| {
            let qa = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
            let qb = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
            per(
                n,
                echo(
                    n,
                    (&qa, &qa),
                    (&qb, &qb),
                    |q, v| q.push(v).is_ok(),
                    |q| q.pop(),
                ),
            )
        }),
        ("baseline_atomic_ping_pong", |n| per(n, ping_pong(n))),
    ]
}

fn mpsc_runners(producers: usize) -> Vec<Runner> {
    macro_rules! r {
        ($k:expr) => {
            vec![
                ("ringledger", |n| {
                    let (p, c) = ringledger_core::mpsc::channel::<u64>(CAP);
                    per(
                        n,
                        mpsc(
                            n / $k,
                            vec![p; $k],
                            c,
                            |p, v| p.push(v).is_ok(),
                            |c| c.pop(),
                        ),
                    )
                }),
                ("crossbeam_array_queue", |n| {
                    let q = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
                    per(
                        n,
                        mpsc(
                            n / $k,
                            vec![&q; $k],
                            &q,
                            |q, v| q.push(v).is_ok(),
                            |q| q.pop(),
                        ),
                    )
                }),
                ("thingbuf", |n| {
                    let q = thingbuf::ThingBuf::<u64>::new(CAP);
                    per(
                        n,
                        mpsc(
                            n / $k,
                            vec![&q; $k],
                            &q,
                            |q, v| q.push(v).is_ok(),
                            |q| q.pop(),
                        ),
                    )
                }),
                ("std_sync_channel", |n| {
                    let (p, c) = sync_channel::<u64>(CAP);
                    per(
                        n,
                        mpsc(
                            n / $k,
                            vec![p; $k],
                            c,
                            |p, v| !matches!(p.try_send(v), Err(TrySendError::Full(_))),
                            |c| c.try_recv().ok(),
                        ),
                    )
                }),
            ]
        };
    }
    if producers == 1 {
        r!(1)
    } else {
        r!(2)
    }
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

fn run_case(name: &str, runners: &[Runner], n: u64, rounds: usize, per_item: &str) {
    // bucket -> crate -> samples (ns per item); bucket -> peer -> ours/peer speed ratios
    let mut times: BTreeMap<&str, BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
    let mut ratios: BTreeMap<&str, BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
    let mut dropped = 0;
    for round in 0..rounds {
        let before = canary();
        // Rotate the order so no crate always runs first.
        let results: Vec<(&str, f64)> = (0..runners.len())
            .map(|i| runners[(i + round) % runners.len()])
            .map(|(crate_name, run)| (crate_name, run(n)))
            .collect();
        let after = canary();
        if (after - before).abs() > 0.25 * before.min(after) {
            dropped += 1;
            continue;
        }
        let b = bucket((before + after) / 2.0);
        let ours = results.iter().find(|r| r.0 == "ringledger").map(|r| r.1);
        for &(crate_name, t) in &results {
            times
                .entry(b)
                .or_default()
                .entry(crate_name)
                .or_default()
                .push(t);
            if let (Some(o), true) = (ours, crate_name != "ringledger") {
                ratios
                    .entry(b)
                    .or_default()
                    .entry(crate_name)
                    .or_default()
                    .push(t / o);
            }
        }
    }
    println!("\n## {name} ({n} items a run, {rounds} rounds, {dropped} dropped: canary moved)");
    for (b, crates) in &mut times {
        let k = crates.values().next().map_or(0, Vec::len);
        println!("{b}: {k} rounds");
        for (crate_name, v) in crates.iter_mut() {
            let m = median(v);
            let shown = if per_item == "ns" {
                format!("{m:8.1} ns per round trip")
            } else {
                format!("{:8.1} M items/s", 1e3 / m)
            };
            let ratio = ratios
                .get_mut(b)
                .and_then(|r| r.get_mut(crate_name))
                .map(|r| format!("   ours/{crate_name} = {:.2}x", median(r)))
                .unwrap_or_default();
            println!("  {crate_name:30} {shown}{ratio}");
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds = args.first().and_then(|a| a.parse().ok()).unwrap_or(20);
    let wanted: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let want = |c: &str| wanted.is_empty() || wanted.contains(&c);
    if want("near_empty") {
        run_case(
            "spsc_u64_near_empty",
            &stream_runners(Regime::NearEmpty),
            1_000_000,
            rounds,
            "M",
        );
    }
    if want("near_full") {
        run_case(
            "spsc_u64_near_full",
            &stream_runners(Regime::NearFull),
            1_000_000,
            rounds,
            "M",
        );
    }
    if want("chunk256") {
        run_case("spsc_chunk256", &chunk_runners(), 2_048_000, rounds, "M");
    }
    if want("echo") {
        run_case("echo_rtt", &echo_runners(), 50_000, rounds, "ns");
    }
    if want("mpsc_1p") {
        run_case("mpsc_1p", &mpsc_runners(1), 500_000, rounds, "M");
    }
    if want("mpsc_2p") {
        run_case(
            "mpsc_2p_oversubscribed",
            &mpsc_runners(2),
            500_000,
            rounds,
            "M",
        );
    }
}
