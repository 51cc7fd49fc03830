//! `cargo xtask`: the project's automation (tests as CI runs them, demo, benchmarks, fuzzing, schema import).
//!
//! Every subcommand is one row of [`TASKS`].
//! To add one, write a module with `pub(crate) fn run(args: &[String]) -> Result` and add its row.
//! A row whose `run` is `None` is reserved: it exits with [`NOT_IMPLEMENTED`], which callers
//! such as `cargo xtask test` treat as "not there yet" rather than as a failure.

mod bench;
mod demo;
mod fuzz;
mod guest;
mod libvirt;
mod prepare;
mod releases;
mod schema;
mod test;
mod tidy;
mod util;

use std::process::ExitCode;

/// What subcommands return; errors are printed by `main`, which then exits with status 1.
pub(crate) type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Exit status of a reserved subcommand whose module has not landed yet.
pub(crate) const NOT_IMPLEMENTED: u8 = 3;

/// What a subcommand needs in place before it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Nothing: it runs as is.
    Nothing,
    /// QEMU installed and the pinned upstream schema imported (see [`prepare`]).
    QemuAndSchema,
}

/// One `cargo xtask` subcommand.
struct Task {
    /// The subcommand's name.
    name: &'static str,
    /// Its arguments, for the usage text.
    args: &'static str,
    /// One line saying what it does.
    about: &'static str,
    /// What is prepared before `run` is called.
    needs: Needs,
    /// Its entry point; `None` while the module that implements it has not landed.
    run: Option<fn(&[String]) -> Result>,
}

/// Every subcommand, in the order `cargo xtask help` lists them.
const TASKS: &[Task] = &[
    Task {
        name: "test",
        args: "[STEP...]",
        about:
            "what CI runs: install QEMU and import the schema if missing, fmt, clippy, test, doc",
        needs: Needs::Nothing, // `test` prepares itself, as timed steps.
        run: Some(test::run),
    },
    Task {
        name: "demo",
        args: "",
        about: "start QEMU and run typed commands against it, printing a transcript",
        needs: Needs::QemuAndSchema,
        run: Some(demo::run),
    },
    Task {
        name: "schema",
        args: "import DIR | diff OLD NEW | ...",
        about: "import QEMU's schema files (pinned by digest) and compare schema versions",
        needs: Needs::Nothing,
        run: Some(schema::run),
    },
    Task {
        name: "qemu",
        args: "fetch [VERSION...]",
        about: "fetch QEMU releases' QAPI sources from Debian's archive into the target folder",
        needs: Needs::Nothing,
        run: Some(releases::run),
    },
    Task {
        name: "bench",
        args: "[parser|...] [OPTIONS]",
        about: "benchmarks, in a release build (`cargo xtask bench help` lists them)",
        needs: Needs::Nothing,
        run: Some(bench::run),
    },
    Task {
        name: "fuzz",
        args: "[--seconds N] [--target NAME]",
        about: "a bounded cargo-fuzz run of the parser, seeded with QEMU's test cases",
        needs: Needs::Nothing,
        run: Some(fuzz::run),
    },
    Task {
        name: "tidy",
        args: "",
        about: "the repository's invariants (also run by `cargo test` as xtask's unit tests)",
        needs: Needs::Nothing,
        run: Some(tidy::run),
    },
    Task {
        name: "guest",
        args: "build",
        about: "build (or find cached) the tiny Linux guest of the live tests and the demo",
        needs: Needs::Nothing,
        run: Some(guest::run),
    },
    Task {
        name: "libvirt",
        args: "setup",
        about: "install libvirt 11.3 (as root), configure it and start its daemons, when missing",
        needs: Needs::Nothing,
        run: Some(libvirt::run),
    },
    Task {
        name: "prepare",
        args: "",
        about:
            "install QEMU and libvirt (as root), build the test guest, import the pinned schemas, fetch the QEMU releases, when missing",
        needs: Needs::Nothing,
        run: Some(prepare::run),
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        usage();
        return ExitCode::from(2);
    };
    if matches!(name.as_str(), "help" | "-h" | "--help") {
        usage();
        return ExitCode::SUCCESS;
    }
    let Some(task) = TASKS.iter().find(|task| task.name == name) else {
        eprintln!("xtask: unknown subcommand `{name}`");
        usage();
        return ExitCode::from(2);
    };
    let Some(run) = task.run else {
        eprintln!("xtask: `cargo xtask {name}` is not implemented yet");
        return ExitCode::from(NOT_IMPLEMENTED);
    };
    let result = match task.needs {
        Needs::Nothing => Ok(()),
        Needs::QemuAndSchema => prepare::all(),
    }
    .and_then(|()| run(&args[1..]));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask {name}: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn usage() {
    eprintln!("usage: cargo xtask <subcommand> [args]\n");
    for task in TASKS {
        let call = format!("{} {}", task.name, task.args);
        let status = if task.run.is_some() {
            ""
        } else {
            " (not implemented yet)"
        };
        eprintln!("  {call:<40} {}{status}", task.about);
    }
}
