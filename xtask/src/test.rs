//! `cargo xtask test`: everything CI checks, as timed steps, on a fresh machine too.
//!
//! The steps are: QEMU installed, the pinned schema imported and the QEMU releases fetched when
//! missing (see [`crate::prepare`], [`crate::releases`]),
//! then `cargo fmt --check`, `cargo clippy -D warnings`, `cargo test` and `cargo doc -D warnings`
//! over the whole workspace with every feature.
//! Every step runs even after one has failed, so one run shows every problem; the exit status
//! is non-zero if any failed.
//! Clippy runs before the tests and the docs after them, in the same target folder: the docs
//! reuse the dependencies' metadata that clippy produced, so nothing is compiled twice in the
//! same mode.

use std::process::Command;

use crate::util::{self, cargo, Steps};
use crate::{prepare, Result};

/// Cargo flags shared by clippy, test and doc: the same feature set everywhere, so that their
/// builds can share artifacts, and `--locked`, so that a stale `Cargo.lock` fails CI.
const CARGO_FLAGS: [&str; 3] = ["--workspace", "--all-features", "--locked"];

/// The steps, by the names that select them on the command line.
const STEPS: [&str; 8] = [
    "qemu", "libvirt", "schema", "releases", "fmt", "clippy", "test", "doc",
];

/// Runs the steps named in `args` (all of them when there are none).
pub(crate) fn run(args: &[String]) -> Result {
    for arg in args {
        if !STEPS.contains(&arg.as_str()) {
            return Err(format!(
                "unknown step `{arg}` (steps: {}; none means all)",
                STEPS.join(" ")
            )
            .into());
        }
    }
    let wanted = |step: &str| args.is_empty() || args.iter().any(|arg| arg == step);
    let mut steps = Steps::default();
    if wanted("qemu") {
        steps.step("prepare QEMU, 7.2 and the test guest", prepare::qemu);
    }
    if wanted("libvirt") {
        steps.step(
            "install and start libvirt if missing",
            crate::libvirt::setup,
        );
    }
    if wanted("schema") {
        steps.step("import the pinned schema if missing", prepare::schema);
        steps.step(
            "import the older releases' schemas if missing",
            prepare::older_schemas,
        );
    }
    if wanted("releases") {
        steps.step(
            "fetch the QEMU releases if missing",
            crate::releases::fetch_all,
        );
    }
    if wanted("fmt") {
        steps.step("cargo fmt --check", || {
            ensure_component("fmt", "rustfmt")?;
            fmt()
        });
    }
    if wanted("clippy") {
        steps.step("cargo clippy -D warnings", || {
            ensure_component("clippy", "clippy")?;
            util::run(
                cargo()
                    .arg("clippy")
                    .args(CARGO_FLAGS)
                    .arg("--all-targets")
                    .args(["--", "-D", "warnings"]),
            )?;
            // What most users build: the client without its optional drivers, whose
            // dead code the all-features run cannot see.
            util::run(
                cargo()
                    .args(["clippy", "--locked", "-p", "qmp-client", "--lib"])
                    .args(["--", "-D", "warnings"]),
            )
        });
    }
    if wanted("test") {
        steps.step("cargo test", || {
            util::run(cargo().arg("test").args(CARGO_FLAGS).arg("--no-fail-fast"))
        });
    }
    if wanted("doc") {
        steps.step("cargo doc -D warnings", || {
            let mut flags = std::env::var("RUSTDOCFLAGS").unwrap_or_default();
            flags.push_str(" -D warnings");
            util::run(
                cargo()
                    .env("RUSTDOCFLAGS", flags.trim())
                    .arg("doc")
                    .args(CARGO_FLAGS)
                    .arg("--no-deps"),
            )
        });
    }
    steps.finish()
}

/// Installs a rustup component when `cargo SUBCOMMAND` does not work (a minimal toolchain).
fn ensure_component(subcommand: &str, component: &str) -> Result {
    let works = cargo()
        .args([subcommand, "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if works {
        return Ok(());
    }
    util::run(Command::new("rustup").args(["component", "add", component]))
}

/// Checks the formatting of the workspace and of the fuzz crate, which is outside it.
fn fmt() -> Result {
    util::run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // rustfmt itself, not `cargo fmt`: the fuzz crate's own dependencies need not be resolved.
    let targets = util::repo_root().join("fuzz/fuzz_targets");
    let mut files: Vec<_> = std::fs::read_dir(&targets)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
                .collect()
        })
        .unwrap_or_default();
    if files.is_empty() {
        return Ok(());
    }
    files.sort();
    util::run(
        Command::new("rustfmt")
            .args(["--check", "--edition", "2021"])
            .args(files),
    )
}
