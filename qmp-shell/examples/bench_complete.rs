//! Benchmark (not a test): Tab completion latency for every prefix over the full QMP
//! schema of a live QEMU, and the wall time of one-shot `qmp SOCKET query-status` as
//! a whole process. Run: `cargo run --release -p qmp-shell --example bench_complete`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qmp_shell::complete::complete;
use qmp_shell::schema::Schema;
use qmp_types::client::Launcher;

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration, Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9), at(0.99), v[v.len() - 1])
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The `qmp` binary of the same profile, built when missing.
fn qmp_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir");
    let bin = dir.join("qmp");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "qmp-shell", "--bin", "qmp"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building qmp failed");
    }
    bin
}

fn main() {
    let vm = Launcher::qemu().spawn().expect("start QEMU");
    let qmp = vm.connect().expect("connect");
    let t = Instant::now();
    let reply = qmp
        .execute(qmp_types::client::Request::name("query-qmp-schema"))
        .expect("schema");
    let fetch = t.elapsed();
    let value: serde_json::Value = serde_json::from_str(reply.get()).expect("json");
    let t = Instant::now();
    let schema = Schema::from_introspection(&value).expect("schema");
    let build = t.elapsed();
    println!(
        "schema: {} commands, {} types; query-qmp-schema {} ({} KB), model built in {}",
        schema.commands.len(),
        schema.types.len(),
        ms(fetch),
        reply.get().len() / 1024,
        ms(build)
    );

    // Every prefix of every command name, plus argument, nested-argument and value
    // completions of the largest commands.
    let mut lines: Vec<String> = Vec::new();
    for name in schema.command_names() {
        for end in 0..=name.len() {
            lines.push(name[..end].to_owned());
        }
        lines.push(format!("{name} "));
    }
    for stem in [
        "blockdev-add driver=qcow2 file.driver=file file.",
        "blockdev-add driver=",
        "blockdev-add ",
        "blockdev-add driver=qcow2 file.driver=file file.aio=",
        "object-add qom-type=",
        "object-add ",
        "transaction( ",
        "transaction( block-dirty-bitmap-add ",
        "migrate-set-parameters ",
        "device_add ",
    ] {
        for end in 0..=stem.len() {
            if stem.is_char_boundary(end) {
                lines.push(stem[..end].to_owned());
            }
        }
    }
    // One untimed pass: first-touch page faults are not completion's cost.
    for line in &lines {
        std::hint::black_box(complete(&schema, "", line, line.len()));
    }
    let mut times = Vec::with_capacity(lines.len());
    let mut worst = (Duration::ZERO, String::new());
    let mut total_candidates = 0usize;
    for _ in 0..3 {
        for line in &lines {
            let t = Instant::now();
            let c = complete(&schema, "", line, line.len());
            let d = t.elapsed();
            total_candidates += c.candidates.len();
            if d > worst.0 {
                worst = (d, line.clone());
            }
            times.push(d);
        }
    }
    let n = times.len();
    // Per prefix the fastest of the 3 runs: its cost without scheduler noise (the
    // machine is shared); the slowest of those is the worst prefix.
    let per_prefix: Vec<Duration> = (0..lines.len())
        .map(|i| {
            (0..3)
                .map(|r| times[r * lines.len() + i])
                .min()
                .unwrap_or_default()
        })
        .collect();
    let (worst_i, worst_prefix) = per_prefix
        .iter()
        .enumerate()
        .max_by_key(|(_, d)| **d)
        .map(|(i, d)| (i, *d))
        .unwrap_or_default();
    println!(
        "completion, worst prefix (best of 3 runs each): {} for {:?}",
        us(worst_prefix),
        lines[worst_i]
    );
    let (p50, p90, p99, max) = percentiles(times);
    println!(
        "completion: {n} calls over {} prefixes ({} candidates): p50 {}, p90 {}, p99 {}, max {} (for {:?}); target < 10 ms",
        lines.len(),
        total_candidates / 3,
        us(p50),
        us(p90),
        us(p99),
        us(max),
        worst.1
    );
    drop(qmp);

    // One-shot wall time: process start to exit, QEMU's time included.
    let bin = qmp_binary();
    let sock = vm.socket_path().to_owned();
    let run_args = |args: &[&str]| {
        let t = Instant::now();
        let out = Command::new(&bin)
            .arg(&sock)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run qmp");
        let d = t.elapsed();
        assert!(out.status.success(), "{out:?}");
        d
    };
    let run = || run_args(&["query-status"]);
    for _ in 0..5 {
        run();
    }
    let walls: Vec<Duration> = (0..100).map(|_| run()).collect();
    let (p50, p90, p99, max) = percentiles(walls);
    println!(
        "one-shot `qmp SOCKET query-status` (100 runs): p50 {}, p90 {}, p99 {}, max {}; target < 30 ms",
        ms(p50),
        ms(p90),
        ms(p99),
        ms(max)
    );
    // With arguments the schema is needed for validation (cached per QEMU build).
    let with_args = ["qom-get", "path=/machine", "property=type"];
    let walls: Vec<Duration> = (0..30).map(|_| run_args(&with_args)).collect();
    let (p50, p90, p99, max) = percentiles(walls);
    println!(
        "one-shot `qmp SOCKET qom-get path=/machine property=type` (30 runs, validated): p50 {}, p90 {}, p99 {}, max {}",
        ms(p50),
        ms(p90),
        ms(p99),
        ms(max)
    );
}
