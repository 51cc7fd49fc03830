//! Helpers shared by the subcommands: where things are, running programs, timed steps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Result;

/// The QEMU version whose schema the project pins and tests against.
pub(crate) const UPSTREAM_VERSION: &str = "10.0.2";

/// The repository's root folder (the workspace root, parent of `xtask/`).
pub(crate) fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The read-only QEMU reference material: `$QAPI_SHARED_DIR`, else `../shared/qemu` beside the
/// repository when there, else `<target>/shared-qemu` (a bare clone's copy, assembled from
/// Debian's source packages by [`crate::releases::ensure_shared`]).
pub(crate) fn shared_qemu_dir() -> PathBuf {
    match std::env::var_os("QAPI_SHARED_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let beside = repo_root().join("../shared/qemu");
            if beside.is_dir() {
                beside
            } else {
                crate::releases::shared_cache()
            }
        }
    }
}

/// The upstream schema tree of [`UPSTREAM_VERSION`] in the shared material.
pub(crate) fn upstream_dir() -> PathBuf {
    shared_qemu_dir().join(UPSTREAM_VERSION)
}

/// A `cargo` command (the one running us, when known), started in the repository's root,
/// with `QAPI_SHARED_DIR` naming [`shared_qemu_dir`], so that the tests reading QEMU's
/// reference material find a bare clone's copy too.
pub(crate) fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.current_dir(repo_root());
    cmd.env("QAPI_SHARED_DIR", shared_qemu_dir());
    cmd
}

/// Cargo's target folder for this workspace (`$CARGO_TARGET_DIR` or `target/`).
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        _ => repo_root().join("target"),
    }
}

/// A command line as a shell would show it (for logs; no quoting of exotic characters).
pub(crate) fn display(cmd: &Command) -> String {
    let mut line = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            line += &format!("{}={} ", key.to_string_lossy(), value.to_string_lossy());
        }
    }
    line += &cmd.get_program().to_string_lossy();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(' ') {
            line += &format!(" '{arg}'");
        } else {
            line += &format!(" {arg}");
        }
    }
    line
}

/// Runs `cmd` with inherited stdio, echoing it first; a non-zero exit is an error.
pub(crate) fn run(cmd: &mut Command) -> Result {
    println!("$ {}", display(cmd));
    let status = cmd
        .status()
        .map_err(|err| format!("cannot run `{}`: {err}", display(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", display(cmd)).into())
    }
}

/// Whether `program` is found in a folder of `$PATH` (or in the `sbin` folders,
/// which are not on the `PATH` of ordinary users but hold `qemu-ga`).
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|file| file.is_file())
}

/// Formats a duration for humans, with three significant digits.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 100.0 {
        format!("{:.0} s", secs)
    } else if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 1e-3 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{:.1} µs", secs * 1e6)
    }
}

/// One timed step of a larger job, as printed and summarised by [`Steps`].
pub(crate) struct StepResult {
    /// The step's name.
    pub name: String,
    /// How long it took.
    pub time: Duration,
    /// `None` when it succeeded, else why it failed.
    pub error: Option<String>,
}

/// A sequence of named, timed steps with a summary at the end.
#[derive(Default)]
pub(crate) struct Steps {
    done: Vec<StepResult>,
    start: Option<Instant>,
}

impl Steps {
    /// Runs one step, printing its name before and its outcome and time after.
    /// Returns whether it succeeded; failures are remembered for [`Steps::finish`].
    pub(crate) fn step(&mut self, name: &str, body: impl FnOnce() -> Result) -> bool {
        let start = Instant::now();
        self.start.get_or_insert(start);
        println!("\n==> {name}");
        let result = body();
        let time = start.elapsed();
        let error = result.err().map(|err| err.to_string());
        match &error {
            None => println!("<== {name}: ok ({})", fmt_duration(time)),
            Some(err) => println!("<== {name}: FAILED ({}): {err}", fmt_duration(time)),
        }
        self.done.push(StepResult {
            name: name.to_string(),
            time,
            error,
        });
        self.done.last().is_some_and(|step| step.error.is_none())
    }

    /// Prints the summary table; an error names the failed steps.
    pub(crate) fn finish(self) -> Result {
        let total = self.start.map(|start| start.elapsed()).unwrap_or_default();
        println!("\nsummary:");
        for step in &self.done {
            let outcome = if step.error.is_some() { "FAILED" } else { "ok" };
            println!(
                "  {:<40} {:>6}  {:>9}",
                step.name,
                outcome,
                fmt_duration(step.time)
            );
        }
        println!("  {:<40} {:>6}  {:>9}", "total", "", fmt_duration(total));
        let failed: Vec<&str> = self
            .done
            .iter()
            .filter(|step| step.error.is_some())
            .map(|step| step.name.as_str())
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("failed: {}", failed.join(", ")).into())
        }
    }
}
