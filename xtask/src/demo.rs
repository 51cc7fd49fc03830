//! `cargo xtask demo`: the project's main job. After `prepare` has made sure QEMU and
//! the pinned schema are there, it builds and runs `qmp-types`' demo example, which
//! starts QEMU and the guest agent itself and prints a transcript (with the `qga`
//! feature, so the guest agent part is typed too), and boots the test guest of
//! [`crate::guest`] (its folder passed as `QMP_TYPES_GUEST_DIR`).
//!
//! The demo lives in `qmp-types/examples/demo.rs` rather than in xtask so that xtask
//! does not depend on `qmp-types` (whose build script needs the imported schema that
//! xtask itself imports on a fresh machine).

use crate::util::{self, cargo};
use crate::Result;

/// Runs the demo; extra arguments are passed to it.
pub(crate) fn run(args: &[String]) -> Result {
    util::run(
        cargo()
            .args([
                "run",
                "--quiet",
                "--package",
                "qmp-types",
                "--features",
                "qga",
            ])
            .env("QMP_TYPES_GUEST_DIR", crate::guest::dir())
            .args(["--example", "demo", "--"])
            .args(args),
    )
}
