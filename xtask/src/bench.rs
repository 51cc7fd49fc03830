//! `cargo xtask bench [NAME] [OPTIONS]`: benchmarks, always measured in a release build.
//!
//! Each benchmark is a module under `bench/` with `pub(crate) fn run(args: &[String]) -> Result`
//! and one row in [`BENCHES`]; this module holds what they share: timing statistics, peak memory
//! of a child process, and the target-versus-measured lines.
//! Benchmarks print numbers and say whether each target is met; they are never timed tests.

mod baseline;
mod codegen;
mod fleet;
mod parser;
mod reach;
mod transport;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::util::{self, cargo};
use crate::Result;

/// One benchmark.
struct Bench {
    /// Its name on the command line.
    name: &'static str,
    /// One line saying what it measures.
    about: &'static str,
    /// Its entry point, given the arguments after its name.
    run: fn(&[String]) -> Result,
}

/// Every benchmark, in the order `cargo xtask bench` (with no name) runs them.
const BENCHES: &[Bench] = &[
    Bench {
        name: "parser",
        about: "load + check of the three QEMU 10.0.2 schemas; peak memory of `qapi check`",
        run: parser::run,
    },
    Bench {
        name: "codegen",
        about:
            "generation of the QMP API, typed decoding, cold build vs qapi-qmp, dependent rebuild",
        run: codegen::run,
    },
    Bench {
        name: "baseline",
        about: "generation, typed decode and cold build against an older commit built beside (default: before the supported range)",
        run: baseline::run,
    },
    Bench {
        name: "fleet",
        about: "1,000-10,000 monitors from one process (fake server, 100 storage daemons), event ingest, vs crates.io peers",
        run: fleet::run,
    },
    Bench {
        name: "transport",
        about: "QMP round trip, connect-to-ready and event ingest, each against a std-only floor",
        run: transport::run,
    },
    Bench {
        name: "reach",
        about: "libvirt round trip vs a direct socket and virsh; QMP over TLS vs plain TCP",
        run: reach::run,
    },
];

/// Argument by which the release build measures a child's peak memory (see [`peak_rss`]).
const PEAK_RSS_WRAPPER: &str = "--peak-rss-of";

/// Runs the benchmark named first in `args` (all of them when there is none).
pub(crate) fn run(args: &[String]) -> Result {
    if cfg!(debug_assertions) {
        // `cargo xtask` is a debug build; numbers only mean something from a release build.
        return util::run(
            cargo()
                .args(["run", "--release", "--quiet", "--package", "xtask", "--"])
                .arg("bench")
                .args(args),
        );
    }
    // `--markdown` (write BENCHMARKS.md's latest figures) and `--runs N` (run N times in a
    // row and check that every verdict agrees) apply to whatever is run.
    let mut args: Vec<String> = args.to_vec();
    let markdown = take_flag(&mut args, "--markdown");
    let runs = take_value(&mut args, "--runs")?.unwrap_or(1).max(1);
    if let Some(name) = args.first() {
        match name.as_str() {
            PEAK_RSS_WRAPPER => return peak_rss_wrapper(&args[1..]),
            "help" | "-h" | "--help" => {
                println!(
                    "usage: cargo xtask bench [NAME [OPTIONS]] [--runs N] [--markdown]  (no name: all of them)\n"
                );
                for bench in BENCHES {
                    println!("  {:<12} {}", bench.name, bench.about);
                }
                return Ok(());
            }
            _ => {}
        }
    }
    let selected: Vec<&Bench> = match args.first() {
        None => BENCHES.iter().collect(),
        Some(name) => vec![BENCHES
            .iter()
            .find(|bench| bench.name == name)
            .ok_or_else(|| {
                format!("no benchmark `{name}` (`cargo xtask bench help` lists them)")
            })?],
    };
    let rest = if args.is_empty() { &[][..] } else { &args[1..] };
    let mut per_run: Vec<Vec<Verdict>> = Vec::new();
    for run in 1..=runs {
        if runs > 1 {
            println!("\n## run {run} of {runs}");
        }
        VERDICTS.lock().map(|mut v| v.clear()).ok();
        for bench in &selected {
            if selected.len() > 1 {
                println!("\n### bench {}", bench.name);
            }
            *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = bench.name;
            (bench.run)(rest)?;
        }
        per_run.push(VERDICTS.lock().map(|v| v.clone()).unwrap_or_default());
    }
    // Written first: an unstable verdict is a finding worth keeping, not a lost run.
    if markdown {
        let ran: Vec<&str> = selected.iter().map(|b| b.name).collect();
        write_markdown(&per_run, &ran, !rest.is_empty())?;
    }
    if runs > 1 {
        stability(&per_run)?;
    }
    Ok(())
}

/// Removes `flag` from `args`; whether it was there.
fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != flag);
    args.len() != before
}

/// Removes `flag VALUE` from `args` and parses the value.
fn take_value(args: &mut Vec<String>, flag: &str) -> Result<Option<usize>> {
    let Some(i) = args.iter().position(|a| a == flag) else {
        return Ok(None);
    };
    let value = args
        .get(i + 1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} needs a number"))?;
    args.drain(i..=i + 1);
    Ok(Some(value))
}

/// One printed verdict, kept for `--runs` and `--markdown`.
#[derive(Clone, Debug, PartialEq)]
struct Verdict {
    bench: &'static str,
    what: String,
    target: String,
    measured: String,
    met: bool,
}

/// The verdicts printed so far in this run.
static VERDICTS: Mutex<Vec<Verdict>> = Mutex::new(Vec::new());
/// The benchmark running now.
static CURRENT: Mutex<&str> = Mutex::new("");

/// Checks that every verdict came out the same in every run, and says so.
fn stability(runs: &[Vec<Verdict>]) -> Result {
    let first = &runs[0];
    let mut unstable = Vec::new();
    for (i, v) in first.iter().enumerate() {
        let outcomes: Vec<bool> = runs
            .iter()
            .filter_map(|r| r.get(i).map(|w| w.met))
            .collect();
        let measured: Vec<&str> = runs
            .iter()
            .filter_map(|r| r.get(i).map(|w| w.measured.as_str()))
            .collect();
        let agree = outcomes.len() == runs.len() && outcomes.iter().all(|&m| m == outcomes[0]);
        println!(
            "  {:<44} {} in {} runs: {}",
            v.what,
            if agree { "agrees" } else { "DIFFERS" },
            runs.len(),
            measured.join(", ")
        );
        if !agree {
            unstable.push(v.what.clone());
        }
    }
    if unstable.is_empty() {
        println!("every verdict agreed in {} runs", runs.len());
        Ok(())
    } else {
        Err(format!("verdicts differ between runs: {}", unstable.join("; ")).into())
    }
}

/// Start of the part of BENCHMARKS.md that `--markdown` rewrites, and its end.
const LATEST_BEGIN: &str = "<!-- latest: written by `cargo xtask bench --markdown` -->";
const LATEST_END: &str = "<!-- end of latest -->";

/// Writes the verdicts of the last run into BENCHMARKS.md's "Latest figures", each row
/// with how many runs agreed and the commit and machine load it was measured at. Rows of
/// benchmarks that did not run are kept, so benchmarks can be run (and rerun) one by one,
/// and after a run of some parts, the rows of the others; the rest of the file is kept.
fn write_markdown(per_run: &[Vec<Verdict>], ran: &[&str], partial: bool) -> Result {
    let path = util::repo_root().join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(util::repo_root())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let at = format!("`{commit}`, {}", machine_load());
    let last = per_run.last().map(Vec::as_slice).unwrap_or_default();
    let rows: Vec<(String, String)> = last
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let outcomes: Vec<&Verdict> = per_run.iter().filter_map(|r| r.get(i)).collect();
            let agree = outcomes.iter().filter(|w| w.met == v.met).count();
            let runs = if per_run.len() > 1 {
                let values: Vec<&str> = outcomes.iter().map(|w| w.measured.as_str()).collect();
                format!("{agree} of {} agree ({})", per_run.len(), values.join(", "))
            } else {
                "1".to_owned()
            };
            let verdict = if v.met { "met" } else { "MISSED" };
            let row = format!(
                "| {} | {} | {} | {} | {verdict} | {runs} | {at} |",
                v.bench, v.what, v.target, v.measured
            );
            (v.bench.to_owned(), row)
        })
        .collect();
    let new = with_latest(&old, rows, ran, partial);
    std::fs::write(&path, new)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `old` with its latest-figures table made of `rows` and the old rows of benchmarks not
/// in `ran`, in [`BENCHES`]' order. After a `partial` run (some parts of a benchmark),
/// the rows of its measurements not taken again are kept too.
fn with_latest(old: &str, rows: Vec<(String, String)>, ran: &[&str], partial: bool) -> String {
    use std::fmt::Write as _;
    let span = match (old.find(LATEST_BEGIN), old.find(LATEST_END)) {
        (Some(a), Some(b)) if a < b => Some((a, b + LATEST_END.len())),
        _ => None,
    };
    // A row's benchmark and measurement.
    let key = |l: &str| -> Option<(String, String)> {
        let mut cells = l.strip_prefix("| ")?.split(" | ");
        Some((
            cells.next()?.trim().to_owned(),
            cells.next()?.trim().to_owned(),
        ))
    };
    let mut rows: Vec<Option<(String, String)>> = rows.into_iter().map(Some).collect();
    let mut all: Vec<(String, String)> = Vec::new();
    for l in span
        .map(|(a, b)| &old[a..b])
        .into_iter()
        .flat_map(str::lines)
        .filter(|l| l.starts_with("| ") && !l.starts_with("| benchmark |"))
    {
        let Some((bench, what)) = key(l) else {
            continue;
        };
        if !ran.contains(&bench.as_str()) {
            all.push((bench, l.to_owned()));
        } else if partial {
            // Measured again: the new row in the old one's place; else the old row.
            let new = rows.iter_mut().find(|r| {
                r.as_ref().and_then(|(_, n)| key(n)) == Some((bench.clone(), what.clone()))
            });
            match new.and_then(Option::take) {
                Some(r) => all.push(r),
                None => all.push((bench, l.to_owned())),
            }
        }
    }
    all.extend(rows.into_iter().flatten());
    let order = |b: &str| {
        BENCHES
            .iter()
            .position(|x| x.name == b)
            .unwrap_or(usize::MAX)
    };
    all.sort_by_key(|(b, _)| order(b));
    let mut table = String::new();
    let _ = writeln!(table, "{LATEST_BEGIN}\n");
    let _ = writeln!(
        table,
        "| benchmark | measurement | target | measured | verdict | runs (`--runs N`) | measured at |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|---|---|");
    for (_, row) in &all {
        let _ = writeln!(table, "{row}");
    }
    let _ = write!(table, "\n{LATEST_END}");
    match span {
        Some((a, b)) => format!("{}{table}{}", &old[..a], &old[b..]),
        None => match old.find("\n## ") {
            Some(at) => format!(
                "{}\n## Latest figures\n\n{table}\n{}",
                &old[..at],
                &old[at..]
            ),
            None => format!("{old}\n## Latest figures\n\n{table}\n"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_figures_keep_the_rows_of_benchmarks_not_run() {
        let row = |b: &str, m: &str| (b.to_owned(), format!("| {b} | {m} | t | v | met | 1 | x |"));
        let first = with_latest(
            "# B\n\n## History\n",
            vec![row("fleet", "a"), row("reach", "b")],
            &["fleet", "reach"],
            false,
        );
        assert!(first.starts_with("# B\n\n## Latest figures\n\n"), "{first}");
        assert!(first.ends_with("## History\n"), "{first}");
        let second = with_latest(
            &first,
            vec![row("parser", "c"), row("reach", "d")],
            &["parser", "reach"],
            false,
        );
        let rows: Vec<&str> = second
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| benchmark"))
            .collect();
        assert_eq!(
            rows,
            [
                "| parser | c | t | v | met | 1 | x |",
                "| fleet | a | t | v | met | 1 | x |",
                "| reach | d | t | v | met | 1 | x |"
            ]
        );
        assert_eq!(second.matches(LATEST_BEGIN).count(), 1);
    }

    #[test]
    fn a_partial_run_replaces_only_what_it_measured() {
        let row = |b: &str, m: &str, v: &str| {
            (
                b.to_owned(),
                format!("| {b} | {m} | t | {v} | met | 1 | x |"),
            )
        };
        let first = with_latest(
            "# B\n",
            vec![
                row("fleet", "a", "1"),
                row("fleet", "b", "1"),
                row("fleet", "c", "1"),
            ],
            &["fleet"],
            false,
        );
        let second = with_latest(
            &first,
            vec![row("fleet", "b", "2"), row("fleet", "d", "2")],
            &["fleet"],
            true,
        );
        let rows: Vec<&str> = second
            .lines()
            .filter(|l| l.starts_with("| fleet"))
            .collect();
        assert_eq!(
            rows,
            [
                "| fleet | a | t | 1 | met | 1 | x |",
                "| fleet | b | t | 2 | met | 1 | x |",
                "| fleet | c | t | 1 | met | 1 | x |",
                "| fleet | d | t | 2 | met | 1 | x |"
            ]
        );
    }
}

/// How long to measure something.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    /// Run at least this many iterations...
    pub min_iterations: usize,
    /// ...and keep going until this much time has passed...
    pub min_time: Duration,
    /// ...but never more than this many.
    pub max_iterations: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            min_iterations: 20,
            min_time: Duration::from_secs(2),
            max_iterations: 2000,
        }
    }
}

/// Timing statistics of repeated runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stats {
    /// How many runs were timed (after one untimed warm-up run).
    pub iterations: usize,
    /// The median run.
    pub median: Duration,
    /// The fastest run.
    pub min: Duration,
    /// The median CPU time of the calling thread per run: what a single-threaded
    /// workload costs, whatever else the machine runs (time spent descheduled is not
    /// counted).
    pub cpu_median: Duration,
}

/// CPU time the calling thread has used.
pub(crate) fn thread_cpu() -> Duration {
    // SAFETY: an all-zero `timespec` is valid; clock_gettime writes into a live local.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: see above; CLOCK_THREAD_CPUTIME_ID is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Stats {
    /// Throughput in MB/s (10^6 bytes) of `bytes` processed in the median time.
    pub(crate) fn mb_per_s(&self, bytes: u64) -> f64 {
        bytes as f64 / 1e6 / self.median.as_secs_f64().max(1e-12)
    }
}

/// Times `f` repeatedly within `budget`, after one warm-up call.
pub(crate) fn measure<T>(budget: Budget, mut f: impl FnMut() -> T) -> Stats {
    std::hint::black_box(f());
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let start = Instant::now();
    while times.len() < budget.max_iterations
        && (times.len() < budget.min_iterations || start.elapsed() < budget.min_time)
    {
        let (t, c) = (Instant::now(), thread_cpu());
        std::hint::black_box(f());
        cpu.push(thread_cpu().saturating_sub(c));
        times.push(t.elapsed());
    }
    times.sort();
    cpu.sort();
    Stats {
        iterations: times.len(),
        median: times[times.len() / 2],
        min: times[0],
        cpu_median: cpu[cpu.len() / 2],
    }
}

/// Prints one "target versus measured" line; returns whether the target is met.
pub(crate) fn verdict(what: &str, target: &str, measured: &str, met: bool) -> bool {
    let outcome = if met { "met" } else { "MISSED" };
    println!("  {what:<44} target {target:>9}   measured {measured:>9}   {outcome}");
    record_verdict(what, target, measured, met)
}

/// Keeps a verdict printed in another form (by a benchmark program of its own).
pub(crate) fn record_verdict(what: &str, target: &str, measured: &str, met: bool) -> bool {
    let bench = *CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(mut v) = VERDICTS.lock() {
        v.push(Verdict {
            bench,
            what: what.to_owned(),
            target: target.to_owned(),
            measured: measured.to_owned(),
            met,
        });
    }
    met
}

/// Runs `a` and `b` alternately `pairs` times (which goes first alternates too, so drift
/// hits both sides) and returns the ratios b/a: median and the 10th and 90th percentiles.
pub(crate) fn interleaved_ratio(pairs: usize, a: &dyn Fn(), b: &dyn Fn()) -> (f64, f64, f64) {
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let mut ratios: Vec<f64> = (0..pairs.max(1))
        .map(|i| {
            let (ta, tb) = if i % 2 == 0 {
                let ta = time(a);
                (ta, time(b))
            } else {
                let tb = time(b);
                (time(a), tb)
            };
            tb / ta.max(1e-12)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    (ratios[n / 2], ratios[n / 10], ratios[n - 1 - n / 10])
}

/// The machine's load average and core count, to print beside numbers measured on it.
pub(crate) fn machine_load() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("load average {load} on {cores} cores")
}

/// Formats a byte count in MB (10^6 bytes), or KB below one MB.
pub(crate) fn fmt_bytes(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.0} KB", bytes as f64 / 1e3)
    }
}

/// Runs `cmd` to completion (stdout discarded) and returns its exit status code and its peak
/// resident memory in bytes (`ru_maxrss` from `wait4`).
///
/// The child is started by a fresh copy of this program, not by us: Linux starts a child's
/// `ru_maxrss` at its parent's high-water mark when the child is spawned with `vfork` (as std
/// does), so a parent that has loaded schemas a thousand times would inflate the number.
/// The fresh copy's own high-water mark (a few MB) is printed as the floor of the measurement.
pub(crate) fn peak_rss(cmd: &Command) -> Result<(i32, u64)> {
    let mut wrapper = Command::new(std::env::current_exe()?);
    wrapper.args(["bench", PEAK_RSS_WRAPPER]);
    if let Some(dir) = cmd.get_current_dir() {
        wrapper.arg(format!("--cwd={}", dir.display()));
    }
    wrapper
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stderr(Stdio::inherit());
    let output = wrapper.output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<i64> = text
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    match fields[..] {
        [code, rss_kb, floor_kb] if output.status.success() => {
            println!(
                "    ({} exited {code}; peak RSS {}, measurement floor {})",
                util::display(cmd),
                fmt_bytes(rss_kb as u64 * 1024),
                fmt_bytes(floor_kb as u64 * 1024)
            );
            Ok((code as i32, rss_kb as u64 * 1024))
        }
        _ => Err(format!("peak-RSS wrapper failed ({}): {text}", output.status).into()),
    }
}

/// The wrapper side of [`peak_rss`]: runs `[--cwd=DIR] -- PROGRAM ARGS...` and prints its exit
/// code, its `ru_maxrss` in KiB and our own high-water mark in KiB before spawning it.
fn peak_rss_wrapper(args: &[String]) -> Result {
    let mut args = args.iter();
    let mut cwd = None;
    for arg in args.by_ref() {
        if arg == "--" {
            break;
        }
        cwd = Some(arg.strip_prefix("--cwd=").ok_or("bad wrapper argument")?);
    }
    let program = args.next().ok_or("no program")?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(Stdio::null());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let floor_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    let child = cmd.spawn()?;
    let pid = libc::pid_t::try_from(child.id())?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet reaped (`child` is never waited on through std),
    // and both pointers are to live locals of the right types.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if reaped != pid {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()).into());
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    println!("{code} {} {floor_kb}", usage.ru_maxrss);
    Ok(())
}
