//! Summaries and verdicts of the fleet benchmark: medians over rounds, ratios taken
//! within a round against each peer, and the targets they meet or miss.

use super::super::verdict;
use super::{fmt_us, Fleet, Kind, Runs, Sample, PEERS};

/// Median and the lowest and highest of `v` (NaNs left out); `None` when empty.
pub(in crate::bench) fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((median, v[0], v[n - 1]))
}

/// The good samples of `driver`, by round.
fn good<'a>(runs: &'a Runs, driver: &str) -> Vec<Option<&'a Sample>> {
    runs.get(driver).map_or_else(Vec::new, |v| {
        v.iter()
            .map(|s| {
                s.as_ref()
                    .filter(|s| s.error.is_none() && s.get("errors") == 0.0)
            })
            .collect()
    })
}

/// `a / b` of `key`, round by round (both sides measured in the same round).
fn ratios(runs: &Runs, a: &str, b: &str, key: &str) -> Vec<f64> {
    good(runs, a)
        .iter()
        .zip(good(runs, b))
        .filter_map(|(x, y)| Some(x.as_ref()?.get(key) / y?.get(key)))
        .collect()
}

/// Memory per idle connection as each model holds it: a thread-per-connection client
/// with its thread, an async client with its connection (and reader task) alone.
fn memory_key(driver: &str) -> &'static str {
    if matches!(driver, "ours-blocking" | "floor") {
        "idle_bytes"
    } else {
        "conn_bytes"
    }
}

/// Prints the summary of one fleet and its targets.
pub(super) fn judge_fleet(fleet: &Fleet<'_>, runs: &Runs) {
    println!(
        "  medians over rounds (memory: KB per idle connection, with its thread for thread-per-connection drivers):"
    );
    for driver in fleet.drivers {
        let samples: Vec<&Sample> = good(runs, driver).into_iter().flatten().collect();
        if samples.is_empty() {
            println!("    {driver:<14} not measured");
            continue;
        }
        let med = |key: &str| {
            spread(samples.iter().map(|s| s.get(key)).collect()).map_or(f64::NAN, |m| m.0)
        };
        println!(
            "    {driver:<14} {:>8.0} calls/s  p50 {:>9}  p99 {:>9}  CPU/call {:>6.2} µs (server {:>5.2})  memory {:>9}",
            med("rate"),
            fmt_us(med("p50_us")),
            fmt_us(med("p99_us")),
            med("cpu_us_per_call"),
            med("server_us_per_call"),
            // One connection: the process's own memory swamps it.
            if fleet.kind == Kind::Single {
                "-".to_owned()
            } else {
                format!("{:.1} KB", med(memory_key(driver)) / 1e3)
            },
        );
    }
    if fleet.kind == Kind::Single {
        // Separate processes see different machine states: the verdict is `round_trip`'s.
        if let Some((median, lo, hi)) =
            spread(ratios(runs, "ours-tokio", "ours-blocking", "p50_us"))
        {
            println!("  tokio / blocking p50 in these separate runs: {median:.2} ({lo:.2}-{hi:.2}), for information: the target is judged on interleaved batches against qemu-storage-daemon");
        }
        return;
    }
    println!("  targets (the tokio client's):");
    let who = "tokio";
    let measured = good(runs, "ours-tokio").iter().any(Option::is_some);
    if fleet.kind == Kind::Big {
        let conns = format!("{}", fleet.conns);
        verdict(
            &format!("{who}: {conns} connections, one process"),
            &conns,
            if measured { "all served" } else { "n/a" },
            measured,
        );
        let mem = spread(
            good(runs, "ours-tokio")
                .into_iter()
                .flatten()
                .map(|s| s.get(memory_key("ours-tokio")))
                .collect(),
        );
        verdict(
            &format!("{who}: memory per idle connection"),
            "8.0 KiB",
            &mem.map_or("n/a".into(), |m| format!("{:.1} KiB", m.0 / 1024.0)),
            mem.is_some_and(|m| m.0 <= 8192.0),
        );
    }
    for (peer, name) in PEERS {
        for (key, what, ahead) in TARGETS {
            let ratios = ratios(runs, "ours-tokio", peer, key);
            if key == "cpu_us_per_call" && fleet.kind == Kind::Daemons {
                // Decided by instruction counts (`instructions_per_call`).
                reference(&format!("{who} / {name} {what} (wall)"), ratios);
            } else {
                ratio_verdict(
                    &format!("{}: {who} / {name} {what}", fleet.label),
                    ratios,
                    ahead,
                );
            }
        }
    }
    // The blocking client is a thread per connection: no target, for comparison only.
    if good(runs, "ours-blocking").iter().any(Option::is_some) {
        println!("  for reference, the blocking client (a thread per connection):");
        for (peer, name) in PEERS {
            for (key, what, _) in TARGETS {
                reference(
                    &format!("blocking / {name} {what}"),
                    ratios(runs, "ours-blocking", peer, key),
                );
            }
        }
    }
}

/// The ratios judged against each peer: key, name, and which way is ahead.
const TARGETS: [(&str, &str, Ahead); 3] = [
    ("rate", "throughput", Ahead::Higher),
    ("p99_us", "p99 latency", Ahead::Lower),
    ("cpu_us_per_call", "CPU per call", Ahead::Lower),
];

/// A ratio printed without a verdict: its median and spread.
pub(super) fn reference(what: &str, ratios: Vec<f64>) {
    let n = ratios.len();
    match spread(ratios) {
        Some((median, lo, hi)) => {
            println!("  {what:<44} {median:>6.2}   ({lo:.2}-{hi:.2} over {n} rounds)")
        }
        None => println!("  {what:<44}    n/a"),
    }
}

/// What a ratio must be for its target to be met.
#[derive(Clone, Copy)]
pub(super) enum Ahead {
    /// Above 1 (throughput).
    Higher,
    /// Below 1 (latency, CPU).
    Lower,
    /// At most 1.05.
    Within5,
}

pub(super) fn ratio_verdict(what: &str, ratios: Vec<f64>, ahead: Ahead) {
    let n = ratios.len();
    let (target, limit) = match ahead {
        Ahead::Higher => ("> 1.00", 1.0),
        Ahead::Lower => ("< 1.00", 1.0),
        Ahead::Within5 => ("<= 1.05", 1.05),
    };
    let Some((median, lo, hi)) = spread(ratios) else {
        verdict(what, target, "n/a", false);
        return;
    };
    let met = match ahead {
        Ahead::Higher => median > limit,
        Ahead::Lower => median < limit,
        Ahead::Within5 => median <= limit,
    };
    let range = if n > 1 {
        format!("   ({lo:.2}-{hi:.2} over {n} rounds)")
    } else {
        String::new()
    };
    verdict(what, target, &format!("{median:.2}"), met);
    if !range.is_empty() {
        println!("  {:<44} {range}", "");
    }
}
