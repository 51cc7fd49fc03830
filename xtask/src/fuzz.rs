//! `cargo xtask fuzz [--seconds N] [--target NAME] [-- LIBFUZZER-ARGS]`: a bounded cargo-fuzz run.
//!
//! The fuzz crate (`fuzz/`) is its own workspace, outside CI's build; this command installs
//! cargo-fuzz when missing, seeds the corpus (the `parse` target with QEMU's conformance cases, the
//! `decode` target with libvirt's recorded QMP messages; both read from the shared material at
//! run time, never committed) and runs libFuzzer for a fixed time.
//! cargo-fuzz passes nightly-only `-Z` flags (sanitizers, coverage instrumentation); on the
//! stable toolchain `RUSTC_BOOTSTRAP=1` lets them through.
//! Crashes, timeouts and out-of-memory inputs land in `fuzz/artifacts/NAME/`.

use std::path::Path;

use crate::util::{self, cargo, repo_root};
use crate::Result;

/// A short run by default: long enough to get past the seeds, short enough for a habit.
const DEFAULT_SECONDS: u64 = 60;

/// The fuzz target run by default.
const DEFAULT_TARGET: &str = "parse";

/// libFuzzer's limits: an input that takes longer than this is reported as a hang...
const TIMEOUT_SECONDS: u64 = 10;

/// ...and one that needs more memory than this as an out-of-memory bug.
const RSS_LIMIT_MB: u64 = 2048;

pub(crate) fn run(args: &[String]) -> Result {
    let mut seconds = DEFAULT_SECONDS;
    let mut target = DEFAULT_TARGET.to_string();
    let mut extra: Vec<String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args.next().ok_or("--seconds needs a value")?.parse()?;
            }
            "--target" => target = args.next().ok_or("--target needs a value")?.clone(),
            "--" => extra.extend(args.by_ref().cloned()),
            _ => {
                return Err(format!(
                    "unknown argument `{arg}` (usage: cargo xtask fuzz [--seconds N] [--target NAME] [-- LIBFUZZER-ARGS])"
                )
                .into())
            }
        }
    }
    ensure_cargo_fuzz()?;
    let root = repo_root();
    let corpus = root.join("fuzz/corpus").join(&target);
    let (seeds, from) = if target == "decode" {
        (seed_replies(&corpus)?, "libvirt's recorded QMP replies")
    } else {
        (seed(&corpus)?, "QEMU's conformance cases")
    };
    println!("corpus {}: {seeds} seed(s) from {from}", corpus.display());
    let mut cmd = cargo();
    cmd.env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", &target])
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={TIMEOUT_SECONDS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg("-print_final_stats=1");
    let dict = root.join("fuzz").join(format!("{target}.dict"));
    if dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    cmd.args(extra);
    util::run(&mut cmd)
}

/// Installs cargo-fuzz unless `cargo fuzz` already works.
fn ensure_cargo_fuzz() -> Result {
    let installed = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !installed {
        util::run(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Writes every message of libvirt's recorded QMP traffic, and the `return` member of
/// each reply, as a seed of the `decode` target. Returns how many seeds there are.
fn seed_replies(corpus: &Path) -> Result<usize> {
    std::fs::create_dir_all(corpus)?;
    let dir = util::shared_qemu_dir().join("replies");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).map_err(|err| {
        format!(
            "no recorded replies at {}: {err} (set QAPI_SHARED_DIR)",
            dir.display()
        )
    })? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        let stream = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
        for (i, message) in stream.enumerate() {
            let message = message?;
            let mut texts = vec![message.to_string()];
            if let Some(ret) = message.get("return") {
                texts.push(ret.to_string());
            }
            for (j, t) in texts.iter().enumerate() {
                let name = path.file_stem().unwrap_or_default().to_string_lossy();
                std::fs::write(corpus.join(format!("{name}-{i}-{j}")), t)?;
                count += 1;
            }
        }
    }
    Ok(count)
}

/// Copies QEMU's conformance cases (`*.json`) into `corpus`, keeping what is already there.
/// Returns how many seeds there are.
fn seed(corpus: &Path) -> Result<usize> {
    std::fs::create_dir_all(corpus)?;
    let cases = util::upstream_dir().join("tests/qapi-schema");
    let entries = std::fs::read_dir(&cases).map_err(|err| {
        format!(
            "no QEMU conformance cases at {}: {err} (set QAPI_SHARED_DIR)",
            cases.display()
        )
    })?;
    let mut count = 0;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let Some(name) = path.file_name() else {
            continue;
        };
        let dest = corpus.join(format!("qemu-{}", name.to_string_lossy()));
        if !dest.exists() {
            std::fs::copy(&path, dest)?;
        }
        count += 1;
    }
    Ok(count)
}
