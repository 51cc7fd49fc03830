//! Readying a fresh machine: QEMU installed (as `../shared/qemu/README.md` shows), Debian 12's
//! own QEMU 7.2 unpacked beside it (as `../shared/qemu/peers.md` shows), the test guest built
//! ([`crate::guest`]), the pinned schemas imported, and the QEMU releases' sources fetched.
//!
//! In a bare clone (no `../shared/qemu`, no `QAPI_SHARED_DIR`) the schema step first assembles
//! QEMU's reference material from Debian's source packages ([`crate::releases::ensure_shared`]).
//!
//! Every step does nothing when their result is already there, so every command that needs
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
pub(crate) const ENABLE_BACKPORTS: &str = "sed -i 's/^Suites: bookworm bookworm-updates$/Suites: bookworm bookworm-updates bookworm-backports/' /etc/apt/sources.list.d/debian.sources";

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

/// Installs QEMU and libvirt and imports the schema, each only if missing.
pub(crate) fn all() -> Result {
    qemu()?;
    crate::libvirt::setup()?;
    schema()?;
    older_schemas()
}

/// Older (and newer) QEMU releases whose schemas `qmp-types` reads for its supported
/// range (`X.Y`), and the release of the fetch cache ([`crate::releases`]) they come from.
const OLDER: [(&str, &str); 3] = [("5.2", "5.2"), ("7.2", "7.2"), ("10.2", "10.2.2")];

/// Imports each older release's schema when missing or not matching its pin, from the
/// release sources fetched from Debian's archive.
pub(crate) fn older_schemas() -> Result {
    for (short, release) in OLDER {
        // A bare clone has none: import without first printing the check's "missing" list.
        let imported = repo_root()
            .join(crate::schema::OLDER_DIR)
            .join(short)
            .exists();
        if imported && xtask(&["schema", "check", short])? == Some(0) {
            continue;
        }
        let source = crate::releases::release_dir(release)?;
        let source = source.to_string_lossy();
        let version = format!(
            "{release}{}",
            if release.matches('.').count() == 1 {
                ".0"
            } else {
                ""
            }
        );
        println!("$ cargo xtask schema import {source} --older --version {version}");
        if xtask(&[
            "schema",
            "import",
            &source,
            "--older",
            "--version",
            &version,
        ])? != Some(0)
        {
            return Err(format!("importing QEMU {release}'s schema failed").into());
        }
    }
    Ok(())
}

/// Installs QEMU when one of its programs is missing: as root with apt, otherwise
/// by failing with the exact commands to run. Then unpacks QEMU 7.2 beside it ([`qemu_7_2`])
/// and builds the test guest ([`crate::guest`]), each only when missing.
pub(crate) fn qemu() -> Result {
    qemu_10()?;
    qemu_7_2()?;
    crate::guest::build()
}

/// Installs QEMU 10.0.2 when one of its programs is missing.
fn qemu_10() -> Result {
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

/// Where the tests look for QEMU 7.2 (the same rule as `qmp-types/tests/common`):
/// `<target dir>/qemu-7.2/root`, the two Debian packages unpacked with `dpkg-deb -x`.
pub(crate) fn qemu_7_2_root() -> std::path::PathBuf {
    util::target_dir().join("qemu-7.2").join("root")
}

/// The Debian 12 (bookworm) packages that make up its own QEMU 7.2 system emulator.
const QEMU_7_2_PACKAGES: [&str; 2] = ["qemu-system-x86", "qemu-system-common"];

/// Downloads Debian 12's own QEMU 7.2 (`apt-get download`, no installation: the
/// installed 10.0.2 stays) and unpacks it into [`qemu_7_2_root`], once. The version is
/// bookworm's own `1:7.2...` candidate from `apt-cache policy`.
pub(crate) fn qemu_7_2() -> Result {
    let root = qemu_7_2_root();
    let binary = root.join("usr/bin/qemu-system-x86_64");
    if binary.is_file() {
        println!("QEMU 7.2: unpacked in {}", root.display());
        return Ok(());
    }
    let policy = Command::new("apt-cache")
        .args(["policy", QEMU_7_2_PACKAGES[0]])
        .output()
        .map_err(|err| {
            format!("cannot run apt-cache (QEMU 7.2 comes from Debian 12's archive): {err}")
        })?;
    let policy = String::from_utf8_lossy(&policy.stdout);
    let Some(version) = qemu_7_2_version(&policy) else {
        return Err(format!(
            "apt-cache policy {} lists no 1:7.2 version (is this Debian 12 with its bookworm sources? as root, run `apt-get update`):\n{policy}",
            QEMU_7_2_PACKAGES[0]
        )
        .into());
    };
    let cache = root.parent().unwrap_or(&root).to_path_buf();
    let download = cache.join("debs");
    std::fs::create_dir_all(&download)?;
    let mut get = Command::new("apt-get");
    get.arg("download").current_dir(&download);
    for package in QEMU_7_2_PACKAGES {
        get.arg(format!("{package}={version}"));
    }
    if let Err(err) = util::run(&mut get) {
        let hint = if is_root() {
            "run `apt-get update` and try again"
        } else {
            "as root, run `apt-get update`, then `cargo xtask prepare` again"
        };
        return Err(format!("{err}: {hint}").into());
    }
    // Unpack into a fresh folder, renamed into place only when complete.
    let partial = cache.join("root.partial");
    let _ = std::fs::remove_dir_all(&partial);
    let mut debs: Vec<_> = std::fs::read_dir(&download)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(".deb")
                && QEMU_7_2_PACKAGES
                    .iter()
                    .any(|p| name.starts_with(&format!("{p}_")))
        })
        .collect();
    debs.sort();
    for deb in &debs {
        util::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&partial))?;
    }
    if !partial.join("usr/bin/qemu-system-x86_64").is_file() {
        return Err(format!(
            "unpacking {} gave no usr/bin/qemu-system-x86_64",
            download.display()
        )
        .into());
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&partial, &root)?;
    let _ = std::fs::remove_dir_all(&download);
    println!("QEMU 7.2: {version} unpacked in {}", root.display());
    Ok(())
}

/// The first `1:7.2...` version in `apt-cache policy` output (bookworm's own, before
/// the security archive's older build).
fn qemu_7_2_version(policy: &str) -> Option<&str> {
    policy
        .lines()
        .filter_map(|line| line.split_whitespace().find(|w| *w != "***"))
        .find(|word| word.starts_with("1:7.2"))
}

/// Whether we run as root (and may therefore install packages).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Imports the pinned upstream schema when it is missing or differs from the pin, by running
/// `cargo xtask schema import DIR` (tolerating that subcommand not existing yet); in a bare
/// clone, QEMU's reference material is assembled first ([`crate::releases::ensure_shared`]).
pub(crate) fn schema() -> Result {
    crate::releases::ensure_shared()?;
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

#[cfg(test)]
mod tests {
    use super::qemu_7_2_version;

    #[test]
    fn finds_bookworms_own_7_2_in_apt_cache_policy() {
        let policy = "qemu-system-x86:
  Installed: 1:10.0.2+ds-2+deb13u1~bpo12+1
  Candidate: 1:10.0.2+ds-2+deb13u1~bpo12+1
  Version table:
 *** 1:10.0.2+ds-2+deb13u1~bpo12+1 100
        100 http://deb.debian.org/debian bookworm-backports/main amd64 Packages
     1:7.2+dfsg-7+deb12u18+b3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
     1:7.2+dfsg-7+deb12u15 500
";
        assert_eq!(qemu_7_2_version(policy), Some("1:7.2+dfsg-7+deb12u18+b3"));
        assert_eq!(
            qemu_7_2_version("qemu-system-x86:\n  Installed: (none)\n"),
            None
        );
    }
}
