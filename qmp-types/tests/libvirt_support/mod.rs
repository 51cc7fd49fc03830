//! A throwaway libvirt domain for the live libvirt tests: defined from XML with a fixed
//! UUID (so a leftover from a crashed run is simply redefined), started, and destroyed
//! and undefined on drop; driven with `virsh`, as an administrator would.
//!
//! Never skipped: when libvirt is missing or not running, the test fails and names
//! `cargo xtask libvirt setup`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The URI every live libvirt test uses.
pub const URI: &str = "qemu:///system";

/// A domain under [`URI`], removed on drop.
pub struct TestDomain {
    /// Its name.
    pub name: String,
    /// Its UUID.
    pub uuid: String,
}

/// Runs `virsh -c URI ARGS`.
pub fn virsh(args: &[&str]) -> Output {
    Command::new("virsh")
        .args(["-c", URI])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run virsh ({e}): run `cargo xtask libvirt setup`"))
}

/// Runs `virsh`, panicking with its output when it fails.
pub fn virsh_ok(args: &[&str]) -> String {
    let out = virsh(args);
    assert!(
        out.status.success(),
        "virsh {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails the test, saying what to run, when libvirtd does not answer.
pub fn require_libvirt() {
    let out = virsh(&["version"]);
    assert!(
        out.status.success(),
        "libvirt does not answer at {URI} ({}): run `cargo xtask libvirt setup` (as root)",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// The `qemu+ssh://` URI of `cargo xtask libvirt setup`'s private sshd (root on
/// 127.0.0.1:2222 with the client key under `~/.cache/qapi-rs/libvirt-ssh/`).
pub fn ssh_uri() -> String {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let key = home.join(".cache/qapi-rs/libvirt-ssh/client_ed25519");
    assert!(
        key.is_file(),
        "no ssh key for the qemu+ssh:// test at {}: run `cargo xtask libvirt setup` (as root)",
        key.display()
    );
    format!(
        "qemu+ssh://root@127.0.0.1:2222/system?keyfile={}&no_verify=1&no_tty=1",
        key.display()
    )
}

/// `<target dir>/guest` (the rule of `cargo xtask guest build`).
pub fn guest_dir() -> PathBuf {
    target_dir().join("guest")
}

/// The workspace's target folder, as cargo chose it for this test.
fn target_dir() -> PathBuf {
    let workspace = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    }
}

impl TestDomain {
    /// A domain that needs no image (`pc`, 64 MiB, no USB, no balloon), started paused
    /// (QEMU in `prelaunch`).
    pub fn paused(name: &str, uuid: &str) -> TestDomain {
        TestDomain::start(name, uuid, 64, "", "", true)
    }

    /// The test guest of `cargo xtask guest build` (kernel and initrd, the agent inside)
    /// with the agent's channel, started running.
    pub fn guest(name: &str, uuid: &str) -> TestDomain {
        let dir = guest_dir();
        let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("initrd.gz"));
        assert!(
            kernel.is_file() && initrd.is_file(),
            "no test guest in {}: run `cargo xtask guest build` (or `cargo xtask prepare`)",
            dir.display()
        );
        let os = format!(
            "<kernel>{}</kernel><initrd>{}</initrd><cmdline>console=ttyS0 panic=-1</cmdline>",
            kernel.display(),
            initrd.display()
        );
        let channel =
            "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>";
        TestDomain::start(name, uuid, 128, &os, channel, false)
    }

    fn start(
        name: &str,
        uuid: &str,
        memory_mib: u32,
        os: &str,
        devices: &str,
        paused: bool,
    ) -> TestDomain {
        require_libvirt();
        // A leftover of a crashed run.
        let _ = virsh(&["destroy", name]);
        let _ = virsh(&["undefine", name]);
        let xml = format!(
            "<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid><memory unit='MiB'>{memory_mib}</memory>\
             <os><type arch='x86_64' machine='pc'>hvm</type>{os}</os>\
             <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>\
             <controller type='usb' model='none'/><memballoon model='none'/>{devices}</devices></domain>"
        );
        let file = std::env::temp_dir().join(format!("{name}-{}.xml", std::process::id()));
        std::fs::write(&file, xml).unwrap();
        virsh_ok(&["define", &file.to_string_lossy()]);
        let _ = std::fs::remove_file(&file);
        if paused {
            virsh_ok(&["start", "--paused", name]);
        } else {
            virsh_ok(&["start", name]);
        }
        TestDomain {
            name: name.to_owned(),
            uuid: uuid.to_owned(),
        }
    }
}

impl Drop for TestDomain {
    fn drop(&mut self) {
        let _ = virsh(&["destroy", &self.name]);
        let _ = virsh(&["undefine", &self.name]);
    }
}
