//! Readying a fresh machine: QEMU installed (as `../shared/qemu/README.md` shows), the pinned schema
//! imported, and (for `cargo xtask prepare` and `test`) the QEMU releases' sources fetched.
//!
//! Both steps do nothing when their result is already there, so every command that needs
//! them (`cargo xtask test`, `cargo xtask demo`) can run them unconditionally.

use std::process::Command;

use crate::util::{self, find_program, repo_root};
use crate::{Result, NOT_IMPLEMENTED};

/// The programs the tests and the demo start.
const QEMU_PROGRAMS: [&str; 4] = [
    "qemu-system-x86_64",
    "qemu-storage-daemon",
    "qemu-ga",
    "qemu-img",
];

/// Enables bookworm-backports, where QEMU 10.0.2 lives (a no-op once enabled).
const ENABLE_BACKPORTS: &str = "sed -i 's/^Suites: bookworm bookworm-updates$/Suites: bookworm bookworm-updates bookworm-backports/' /etc/apt/sources.list.d/debian.sources";

/// Installs QEMU 10.0.2 from bookworm-backports (plain bookworm has 7.2, which would replace qemu-utils 10.0.2).
const INSTALL_QEMU: &str = "apt-get update && apt-get install -y --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-utils qemu-guest-agent";

/// Where `cargo xtask schema import` puts QEMU's schema files (ignored by git).
pub(crate) const IMPORT_DIR: &str = crate::schema::IMPORT_DIR;

/// `cargo xtask prepare`: both steps, then the releases the parser's agreement tests read.
pub(crate) fn run(args: &[String]) -> Result {
    if let Some(arg) = args.first() {
        return Err(format!("unexpected argument `{arg}`").into());
    }
    all()?;
    crate::releases::fetch_all()
}

/// Installs QEMU and imports the schema, each only if missing.
pub(crate) fn all() -> Result {
    qemu()?;
    schema()
}

/// Installs QEMU when one of its programs is missing: as root with apt, otherwise
/// by failing with the exact commands to run.
pub(crate) fn qemu() -> Result {
    let missing: Vec<&str> = QEMU_PROGRAMS
        .into_iter()
        .filter(|program| find_program(program).is_none())
        .collect();
    if missing.is_empty() {
        report_qemu_version();
        return Ok(());
    }
    println!("QEMU: missing {}", missing.join(", "));
    if !is_root() {
        return Err(format!(
            "QEMU is not installed ({} missing); as root, run:\n\n    {ENABLE_BACKPORTS}\n    {INSTALL_QEMU}\n",
            missing.join(", ")
        )
        .into());
    }
    for script in [ENABLE_BACKPORTS, INSTALL_QEMU] {
        util::run(
            Command::new("sh")
                .args(["-c", script])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    let still_missing: Vec<&str> = QEMU_PROGRAMS
        .into_iter()
        .filter(|program| find_program(program).is_none())
        .collect();
    if !still_missing.is_empty() {
        return Err(format!(
            "QEMU installed, but {} still missing",
            still_missing.join(", ")
        )
        .into());
    }
    report_qemu_version();
    Ok(())
}

/// Prints the emulator's version, warning when it is not the one the tests expect.
fn report_qemu_version() {
    let output = Command::new("qemu-system-x86_64").arg("--version").output();
    let version = match &output {
        Ok(output) => String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        Err(err) => format!("(cannot run qemu-system-x86_64 --version: {err})"),
    };
    println!("QEMU: {version}");
    if !version.contains(&format!("version {}", util::UPSTREAM_VERSION)) {
        println!(
            "warning: the tests expect QEMU {}; to get it, as root:\n    {ENABLE_BACKPORTS}\n    {INSTALL_QEMU}",
            util::UPSTREAM_VERSION
        );
    }
}

/// Whether we run as root (and may therefore install packages).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Imports the pinned upstream schema when it is missing or differs from the pin, by running
/// `cargo xtask schema import DIR` (tolerating that subcommand not existing yet).
pub(crate) fn schema() -> Result {
    let dest = repo_root().join(IMPORT_DIR);
    let imported = std::fs::read_dir(&dest).is_ok_and(|mut entries| entries.next().is_some());
    if imported {
        match xtask(&["schema", "check"])? {
            Some(0) => return Ok(()),
            Some(code) if code == i32::from(NOT_IMPLEMENTED) => {
                println!("schema: already imported in {IMPORT_DIR}/");
                return Ok(());
            }
            _ => println!("schema: {IMPORT_DIR}/ does not match the pin; importing again"),
        }
    }
    let source = util::upstream_dir();
    if !source.is_dir() {
        return Err(format!(
            "no QEMU {} schema at {} (put the shared material at ../shared/qemu or set QAPI_SHARED_DIR)",
            util::UPSTREAM_VERSION,
            source.display()
        )
        .into());
    }
    let source = source.to_string_lossy();
    println!("$ cargo xtask schema import {source}");
    match xtask(&["schema", "import", &source])? {
        Some(0) => Ok(()),
        Some(code) if code == i32::from(NOT_IMPLEMENTED) => {
            println!("schema: import skipped, `cargo xtask schema` is not implemented yet");
            Ok(())
        }
        code => Err(format!("schema import failed (exit status {code:?})").into()),
    }
}

/// Runs this program with `args` in the repository's root; returns its exit code
/// (`None` if a signal killed it).
fn xtask(args: &[&str]) -> Result<Option<i32>> {
    let status = Command::new(std::env::current_exe()?)
        .current_dir(repo_root())
        .args(args)
        .status()?;
    Ok(status.code())
}
