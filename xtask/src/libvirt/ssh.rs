//! Step 5 of `cargo xtask libvirt setup`: libvirt's `qemu+ssh://` transport on this
//! machine, for the live test of a remote URI. A private `sshd` listens on 127.0.0.1
//! port [`PORT`] with its own host key, configuration and authorized key under
//! `~/.cache/qapi-rs/libvirt-ssh/` (one per machine, shared by every checkout and target
//! folder, as the port is); the system's sshd and `~/.ssh` are left alone.
//! The tests reach it as [`uri`] says (libvirt runs `ssh`, which runs `virt-ssh-helper`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util;
use crate::Result;

/// The private sshd's port (on 127.0.0.1 only).
pub(crate) const PORT: u16 = 2222;

const SSHD: &str = "/usr/sbin/sshd";

/// Where its files live.
pub(crate) fn dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/qapi-rs/libvirt-ssh")
}

/// The URI the live test opens: root over the private sshd, with its client key.
pub(crate) fn uri() -> String {
    format!(
        "qemu+ssh://root@127.0.0.1:{PORT}/system?keyfile={}&no_verify=1&no_tty=1",
        dir().join("client_ed25519").display()
    )
}

/// Installs openssh-server if needed, writes the keys and configuration once, starts the
/// private sshd unless it runs, and waits until `virsh` answers through it.
pub(crate) fn setup(is_root: bool) -> Result {
    if !Path::new(SSHD).exists() {
        if !is_root {
            return Err(format!(
                "{SSHD} is missing (libvirt's qemu+ssh:// test needs it); as root, run:\n\n    \
                 apt-get install -y --no-install-recommends openssh-server\n"
            )
            .into());
        }
        println!("libvirt: installing openssh-server (for the qemu+ssh:// test)");
        util::run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "openssh-server"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    let d = dir();
    std::fs::create_dir_all(&d)?;
    for key in ["host_ed25519", "client_ed25519"] {
        if !d.join(key).exists() {
            util::run(
                Command::new("ssh-keygen")
                    .args([
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-C",
                        "qapi-libvirt-test",
                        "-f",
                    ])
                    .arg(d.join(key)),
            )?;
        }
    }
    std::fs::copy(d.join("client_ed25519.pub"), d.join("authorized_keys"))?;
    let config = format!(
        "Port {PORT}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
        d = d.display()
    );
    std::fs::write(d.join("sshd_config"), config)?;
    if !running(&d) {
        // The privilege separation directory a package install makes only under systemd.
        std::fs::create_dir_all("/run/sshd")?;
        util::run(Command::new(SSHD).arg("-f").arg(d.join("sshd_config")))?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("virsh")
            .args(["-c", &uri(), "version"])
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "`virsh -c {} version` fails: {}",
                uri(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether the private sshd of `d` runs (its pid file names a live `sshd`).
fn running(d: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(d.join("sshd.pid")) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return false;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    comm.trim() == "sshd"
}
