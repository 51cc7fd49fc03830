//! `cargo xtask libvirt setup`: libvirt 11.3 from bookworm-backports managing the installed
//! QEMU 10.0.2, as `../shared/qemu/peers.md` shows, for qmp-client's `libvirt` feature (its
//! build needs `libvirt-dev` through pkg-config) and its live tests.
//!
//! Steps, each skipped when already done, so a prepared machine answers in milliseconds:
//!
//! 1. the four packages, each named with its suite (`-t bookworm-backports` would pull
//!    systemd 254 along);
//! 2. `user = "root"` and `group = "root"` in `/etc/libvirt/qemu.conf`, once (without them
//!    libvirt throws its QEMU capability cache away on every lookup: it probed KVM as root but
//!    the `libvirt-qemu` user cannot open `/dev/kvm`, and `virsh define` takes 30-40 s);
//! 3. `virtlogd -d` and `libvirtd -d` when their pid files name no live process (there is no
//!    systemd here); a libvirtd that started before step 2 wrote the file is restarted;
//! 4. waiting until `virsh -c qemu:///system version` answers;
//! 5. a private sshd on 127.0.0.1 for the `qemu+ssh://` test ([`ssh`]).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util;
use crate::Result;

mod ssh;

/// The packages, each from bookworm-backports by name.
pub(crate) const PACKAGES: [&str; 4] = [
    "libvirt-daemon",
    "libvirt-daemon-driver-qemu",
    "libvirt-clients",
    "libvirt-dev",
];

/// The suite the packages come from (QEMU 10.0.2 comes from there too).
const SUITE: &str = "bookworm-backports";

/// The release the packages must be (the backports version starts with it).
const VERSION: &str = "11.3";

/// libvirt's QEMU driver configuration.
const QEMU_CONF: &str = "/etc/libvirt/qemu.conf";

/// What step 2 appends to [`QEMU_CONF`].
const QEMU_CONF_LINES: &str = "user = \"root\"\ngroup = \"root\"\n";

/// The URI the tests use.
pub(crate) const URI: &str = "qemu:///system";

/// `cargo xtask libvirt setup`.
pub(crate) fn run(args: &[String]) -> Result {
    match args.first().map(String::as_str) {
        Some("setup") if args.len() == 1 => setup(),
        _ => Err("usage: cargo xtask libvirt setup".into()),
    }
}

/// All five steps, each only when needed.
pub(crate) fn setup() -> Result {
    let start = Instant::now();
    install()?;
    let conf_written = configure()?;
    daemons(conf_written)?;
    wait_ready(Duration::from_secs(30))?;
    ssh::setup(is_root())?;
    println!(
        "libvirt: {} answers at {URI} ({})",
        installed_version("libvirt-daemon").unwrap_or_default(),
        util::fmt_duration(start.elapsed())
    );
    Ok(())
}

/// The installed version of `package`, if it is installed.
fn installed_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}\t${Version}", package])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (status, version) = text.split_once('\t')?;
    (status == "install ok installed").then(|| version.to_owned())
}

/// Step 1: installs the packages that are missing or not 11.3.
fn install() -> Result {
    let missing: Vec<&str> = PACKAGES
        .into_iter()
        .filter(|p| !installed_version(p).is_some_and(|v| v.starts_with(VERSION)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("libvirt: installing {}", missing.join(", "));
    if !is_root() {
        return Err(format!(
            "libvirt {VERSION} is not installed ({} missing); as root, run:\n\n    {}\n",
            missing.join(", "),
            install_line(&missing)
        )
        .into());
    }
    let apt = |script: &str| {
        util::run(
            Command::new("sh")
                .args(["-c", script])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    // The package lists are usually there (QEMU came from the same suite); refresh them
    // only when the install fails without.
    if apt(&install_line(&missing)).is_err() {
        apt(crate::prepare::ENABLE_BACKPORTS)?;
        apt(&format!("apt-get update && {}", install_line(&missing)))?;
    }
    for p in PACKAGES {
        match installed_version(p) {
            Some(v) if v.starts_with(VERSION) => {}
            other => {
                return Err(format!("{p}: installed {other:?}, expected {VERSION}.x").into());
            }
        }
    }
    Ok(())
}

/// The apt command line for `packages`, each named with its suite.
fn install_line(packages: &[&str]) -> String {
    let mut line = "apt-get install -y --no-install-recommends".to_owned();
    for p in packages {
        line += &format!(" {p}/{SUITE}");
    }
    line
}

/// Step 2: appends the user and group lines once; returns whether it wrote them.
fn configure() -> Result<bool> {
    let text =
        std::fs::read_to_string(QEMU_CONF).map_err(|e| format!("cannot read {QEMU_CONF}: {e}"))?;
    if has_root_user(&text) {
        return Ok(false);
    }
    println!("libvirt: appending user/group root to {QEMU_CONF}");
    let mut text = text;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(QEMU_CONF_LINES);
    std::fs::write(QEMU_CONF, text).map_err(|e| format!("cannot write {QEMU_CONF}: {e}"))?;
    Ok(true)
}

/// Whether the configuration already sets `user = "root"` (on an uncommented line).
fn has_root_user(conf: &str) -> bool {
    conf.lines().any(|line| {
        let line: String = line.split_whitespace().collect();
        line == "user=\"root\""
    })
}

/// The pid of a running daemon, from its pid file in `/run`.
pub(crate) fn daemon_pid(name: &str) -> Option<i32> {
    let text = std::fs::read_to_string(Path::new("/run").join(format!("{name}.pid"))).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    // A pid reused by another program: check its name too.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    (alive && comm.trim() == name).then_some(pid)
}

/// Step 3: starts the daemons that are not running (libvirtd again after a configuration
/// change).
fn daemons(restart_libvirtd: bool) -> Result {
    if restart_libvirtd {
        if let Some(pid) = daemon_pid("libvirtd") {
            println!("libvirt: restarting libvirtd (pid {pid}) for the new configuration");
            // SAFETY: plain signal to a process we checked by name.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while daemon_pid("libvirtd").is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    for name in ["virtlogd", "libvirtd"] {
        if daemon_pid(name).is_none() {
            util::run(Command::new(name).arg("-d"))?;
        }
    }
    Ok(())
}

/// Step 4: waits until `virsh version` answers.
fn wait_ready(limit: Duration) -> Result {
    let deadline = Instant::now() + limit;
    loop {
        let out = Command::new("virsh")
            .args(["-c", URI, "version"])
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "`virsh -c {URI} version` still fails after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether we run as root (and may therefore install packages).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::{has_root_user, install_line};

    #[test]
    fn names_each_package_with_its_suite() {
        assert_eq!(
            install_line(&["libvirt-dev", "libvirt-clients"]),
            "apt-get install -y --no-install-recommends libvirt-dev/bookworm-backports libvirt-clients/bookworm-backports"
        );
    }

    #[test]
    fn sees_the_user_line_only_uncommented() {
        assert!(!has_root_user("#user = \"root\"\n"));
        assert!(has_root_user("# x\nuser = \"root\"\ngroup = \"root\"\n"));
        assert!(has_root_user("user=\"root\""));
    }
}
