//! `cargo xtask bench codegen [gen|decode|build|rebuild]`: the code generator's targets.
//!
//! - `gen`: load + generate + format the full QMP API of QEMU 10.0.2 (target < 300 ms),
//!   with the time of each stage.
//! - `decode`: typed decoding of the live `query-qmp-schema` reply against parsing it into
//!   `serde_json::Value` (target: typed at least as fast), via `qmp-types/benches/decode.rs`,
//!   which alternates the two run by run; the verdict is on the median per-run ratio.
//! - `build`: cold release builds of `qmp-types` and of `qapi-qmp` 0.15 (crates.io), side
//!   by side in the same run, each in a fresh target folder (target: at most half).
//! - `rebuild`: rebuild of a small binary executing typed commands after a one-line edit
//!   (target < 2 s).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{measure, verdict, Budget};
use crate::util::{self, cargo, fmt_duration, repo_root};
use crate::Result;

pub(crate) fn run(args: &[String]) -> Result {
    let all = ["gen", "decode", "build", "rebuild"];
    let parts: Vec<&str> = if args.is_empty() {
        all.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    for p in parts {
        match p {
            "gen" => generation()?,
            "decode" => decode()?,
            "build" => build()?,
            "rebuild" => rebuild()?,
            other => {
                return Err(format!("unknown part `{other}` (parts: {})", all.join(", ")).into())
            }
        }
    }
    Ok(())
}

fn generation() -> Result {
    let schema = util::upstream_dir().join("qapi/qapi-schema.json");
    let opts = qapi_parser::Options::default();
    let cfg = qapi_codegen::Config::new();
    let budget = Budget {
        min_iterations: 10,
        min_time: Duration::from_secs(3),
        max_iterations: 200,
    };
    let loaded = qapi_parser::load(&schema, &opts)?;
    let text = cfg.generate(&loaded, "qapi-schema.json");
    let load = measure(budget, || qapi_parser::load(&schema, &opts).unwrap());
    let lower = measure(budget, || cfg.lower(&loaded, "qapi-schema.json"));
    let gen = measure(budget, || cfg.generate(&loaded, "qapi-schema.json"));
    let total = measure(budget, || {
        let s = qapi_parser::load(&schema, &opts).unwrap();
        cfg.generate(&s, "qapi-schema.json")
    });
    println!(
        "generation of the QMP API ({} of formatted source, docs included), median of {}:",
        super::fmt_bytes(text.len() as u64),
        total.iterations
    );
    println!("    load + check      {}", fmt_duration(load.median));
    println!("    lower to IR       {}", fmt_duration(lower.median));
    println!(
        "    tokens + format   {}",
        fmt_duration(gen.median.saturating_sub(lower.median))
    );
    // CPU time of the whole pipeline (all threads), less sensitive to a busy machine.
    let runs = 5;
    let before = cpu_time();
    for _ in 0..runs {
        let s = qapi_parser::load(&schema, &opts)?;
        std::hint::black_box(cfg.generate(&s, "qapi-schema.json"));
    }
    let cpu = (cpu_time().saturating_sub(before)) / runs;
    println!(
        "    CPU time per run  {} (all threads; wall time below)",
        fmt_duration(cpu)
    );
    // The fastest run: generation uses threads (thread CPU time would miss them), and
    // the median follows whatever else this shared machine runs.
    println!(
        "    wall time         {} median, {} fastest of {}",
        fmt_duration(total.median),
        fmt_duration(total.min),
        total.iterations
    );
    verdict(
        "parse to formatted source (QMP), fastest run",
        "300 ms",
        &fmt_duration(total.min),
        total.min <= Duration::from_millis(300),
    );
    range_cost(&schema)
}

/// What the supported range costs the build script: load + generate with QEMU 7.2's
/// schema loaded and analysed (min 6.2) against without, runs interleaved pair by pair.
fn range_cost(schema: &std::path::Path) -> Result {
    let older_path = util::shared_qemu_dir().join("7.2.0/qapi/qapi-schema.json");
    let plain = qapi_codegen::Config::new();
    let mut ranged = qapi_codegen::Config::new();
    ranged
        .min_qemu(qapi_codegen::QemuVersion::new(6, 2))
        .older_schema(qapi_codegen::QemuVersion::new(7, 2), &older_path);
    let run_plain = || {
        std::hint::black_box(plain.generate_file(schema).0.unwrap());
    };
    let run_ranged = || {
        std::hint::black_box(ranged.generate_file(schema).0.unwrap());
    };
    let pairs = 25;
    let (med, lo, hi) = super::interleaved_ratio(pairs, &run_plain, &run_ranged);
    println!(
        "    with the supported range (older schemas on threads of their own, analysed) / without: median {med:.3} (10-90%: {lo:.3}-{hi:.3}, {pairs} interleaved pairs)"
    );
    Ok(())
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a pointer to a live local of the right type.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn decode() -> Result {
    let out = cargo()
        .args(["bench", "--quiet", "-p", "qmp-types", "--bench", "decode"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("decode "))
        .ok_or_else(|| {
            format!(
                "decode bench failed: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let n: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let [typed, value, bytes, ratio, lo, hi] = n[..] else {
        return Err(format!("bad decode output: {line}").into());
    };
    println!(
        "query-qmp-schema reply ({}): typed {}, serde_json::Value {} (medians of alternating runs); typed / Value per run {ratio:.2} ({lo:.2}-{hi:.2})",
        super::fmt_bytes(bytes as u64),
        fmt_duration(Duration::from_nanos(typed as u64)),
        fmt_duration(Duration::from_nanos(value as u64))
    );
    verdict(
        "typed decode / Value parse",
        "<= 1.00",
        &format!("{ratio:.2}"),
        ratio <= 1.0,
    );
    Ok(())
}

/// Writes a scratch crate under the target folder and returns its path.
fn scratch(name: &str, deps: &str, main: &str) -> Result<PathBuf> {
    let dir = util::target_dir().join("bench-codegen").join(name);
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n{deps}\n[workspace]\n"),
    )?;
    std::fs::write(dir.join("src/main.rs"), main)?;
    Ok(dir)
}

fn timed(cmd: &mut Command) -> Result<Duration> {
    let t = Instant::now();
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{} failed:\n{}",
            util::display(cmd),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(t.elapsed())
}

/// `cargo` in `dir` with the target folder `target`.
pub(super) fn cargo_in(dir: &Path, target: &Path) -> Command {
    let mut c = cargo();
    c.current_dir(dir).env("CARGO_TARGET_DIR", target);
    c
}

fn build() -> Result {
    let root = repo_root();
    let ours = scratch(
        "cold-qmp-types",
        &format!("qmp-types = {{ path = \"{}\" }}\n", root.join("qmp-types").display()),
        "fn main() { println!(\"{}\", <qmp_types::qmp::commands::QueryStatus as qmp_types::Command>::NAME); }\n",
    )?;
    let theirs = scratch(
        "cold-qapi-qmp",
        "qapi-qmp = \"0.15\"\n",
        "fn main() { println!(\"{:?}\", qapi_qmp::query_status {}); }\n",
    )?;
    // Fetch first (a network step), so only compilation is timed.
    for dir in [&ours, &theirs] {
        util::run(cargo_in(dir, &dir.join("target")).arg("fetch"))?;
    }
    let mut results = Vec::new();
    for (label, dir) in [("qmp-types", &ours), ("qapi-qmp 0.15", &theirs)] {
        let target = dir.join("target");
        let _ = std::fs::remove_dir_all(&target);
        // Dependencies first, so the crate's own build is timed separately too.
        let all = timed(cargo_in(dir, &target).args(["build", "--release", "--offline"]))?;
        let krate = if label == "qmp-types" {
            "qmp-types"
        } else {
            "qapi-qmp"
        };
        timed(cargo_in(dir, &target).args(["clean", "--release", "-p", krate]))?;
        let own = timed(cargo_in(dir, &target).args(["build", "--release", "--offline"]))?;
        println!(
            "  {label:<16} cold release build {:>8}   the crate alone {:>8}",
            fmt_duration(all),
            fmt_duration(own)
        );
        results.push((all, own));
    }
    let (ours_own, theirs_own) = (results[0].1, results[1].1);
    verdict(
        "qmp-types / qapi-qmp (crate alone)",
        "<= 0.50",
        &format!("{:.2}", ours_own.as_secs_f64() / theirs_own.as_secs_f64()),
        ours_own.as_secs_f64() <= 0.5 * theirs_own.as_secs_f64(),
    );
    Ok(())
}

fn rebuild() -> Result {
    let root = repo_root();
    let main = |n: u32| {
        format!(
            "use qmp_types::client::Launcher;\nuse qmp_types::qmp::commands::{{QueryStatus, QueryVersion, Stop, Cont}};\n\n\
             fn main() {{\n    let vm = Launcher::qemu().spawn().unwrap();\n    let mut q = vm.connect().unwrap();\n    \
             let status = q.execute(&QueryStatus).unwrap();\n    let version = q.execute(&QueryVersion).unwrap();\n    \
             q.execute(&Stop).unwrap();\n    q.execute(&Cont).unwrap();\n    println!(\"{{:?}} {{}} edit {n}\", status.status, version.qemu.major);\n}}\n"
        )
    };
    let dir = scratch(
        "rebuild-dependent",
        &format!(
            "qmp-types = {{ path = \"{}\" }}\n",
            root.join("qmp-types").display()
        ),
        &main(0),
    )?;
    let target = dir.join("target");
    timed(cargo_in(&dir, &target).args(["build", "--offline"]))?;
    let mut times = Vec::new();
    for n in 1..=3 {
        std::fs::write(dir.join("src/main.rs"), main(n))?;
        times.push(timed(cargo_in(&dir, &target).args(["build", "--offline"]))?);
    }
    times.sort();
    // The fastest of three: a rebuild is one process tree, slowed by whatever else runs.
    println!(
        "  rebuilds after a one-line edit: {}",
        times
            .iter()
            .map(|t| fmt_duration(*t))
            .collect::<Vec<_>>()
            .join(", ")
    );
    verdict(
        "dependent binary rebuild after a one-line edit, fastest of 3",
        "2 s",
        &fmt_duration(times[0]),
        times[0] <= Duration::from_secs(2),
    );
    Ok(())
}
