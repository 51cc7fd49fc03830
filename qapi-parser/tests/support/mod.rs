//! Shared by the integration tests: where `cargo xtask qemu fetch` caches QEMU releases.

use std::path::PathBuf;

/// The cached sources of QEMU `version` (as `cargo xtask qemu fetch` names them: `5.2`,
/// `7.2`, `10.0.2`, `10.2.2`): `$QAPI_RELEASES_DIR/<version>`, else
/// `<target>/qemu-releases/<version>` with the target folder from `$CARGO_TARGET_DIR` or
/// from this test's own path. Panics, naming the command to run, when it is missing:
/// these tests never skip.
pub fn release_dir(version: &str) -> PathBuf {
    let root = match std::env::var_os("QAPI_RELEASES_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => target_dir().join("qemu-releases"),
    };
    let dir = root.join(version);
    assert!(
        dir.join("scripts/qapi").is_dir(),
        "QEMU {version}'s sources are not in {}: run `cargo xtask qemu fetch` \
         (or `cargo xtask prepare`) first",
        dir.display()
    );
    dir
}

/// `$CARGO_TARGET_DIR` (relative to the workspace), else the folder three levels above
/// the test binary (`<target>/debug/deps/<test>`).
fn target_dir() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
            .unwrap_or_else(|| workspace.join("target")),
    }
}
