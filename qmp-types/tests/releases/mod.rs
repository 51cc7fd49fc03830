//! The two QEMU releases the live tests run: the installed 10.0.2, and Debian 12's own
//! 7.2 that `cargo xtask prepare` unpacks into `<target dir>/qemu-7.2/root` (target dir:
//! `$CARGO_TARGET_DIR`, or `target/` in the workspace; the same rule as xtask's).
//! A missing 7.2 fails the test with the command to run: live tests never skip.

#![allow(dead_code)]

use std::path::PathBuf;

use qmp_types::client::{Instance, Launcher};

/// A QEMU release the tests start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Debian 12's own `qemu-system-x86` (greeting: 7.2.22), unpacked by `cargo xtask prepare`.
    V7_2,
    /// The installed bookworm-backports QEMU, whose schema the generated API is made from.
    V10_0_2,
}

impl Release {
    /// The version the greeting reports.
    pub fn greeting_version(self) -> &'static str {
        match self {
            Release::V7_2 => "7.2.22",
            Release::V10_0_2 => "10.0.2",
        }
    }

    /// A launcher for this release's `qemu-system-x86_64`, with the launcher's defaults.
    pub fn launcher(self) -> Launcher {
        match self {
            Release::V7_2 => Launcher::qemu().unpacked(qemu_7_2_root()),
            Release::V10_0_2 => Launcher::qemu(),
        }
    }
}

/// Cargo's target folder: `$CARGO_TARGET_DIR` (relative to the workspace when
/// relative), else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    let workspace = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    }
}

/// Where `cargo xtask prepare` unpacks QEMU 7.2; panics, saying how to get it, when
/// it is not there.
pub fn qemu_7_2_root() -> PathBuf {
    let root = target_dir().join("qemu-7.2").join("root");
    let binary = root.join("usr/bin/qemu-system-x86_64");
    assert!(
        binary.is_file(),
        "QEMU 7.2 is not unpacked at {}: run `cargo xtask prepare` (it downloads Debian 12's \
         qemu-system-x86 and qemu-system-common 7.2 with apt-get download and unpacks them there)",
        root.display()
    );
    root
}

/// Starts `launcher` or fails the test with the launcher's message.
pub fn start(release: Release, launcher: Launcher) -> Instance {
    match launcher.spawn() {
        Ok(i) => i,
        Err(e) => panic!(
            "live test needs real QEMU {}: {e}",
            release.greeting_version()
        ),
    }
}
