//! `cargo xtask qemu fetch [VERSION...]`: QEMU release sources (schemas, front ends, conformance
//! cases) from Debian's archive, verified by SHA-256 and cached under the target folder.
//!
//! Only the QAPI parts of each tarball are kept, in `<target>/qemu-releases/<VERSION>/`
//! (the tarball's top folder stripped). A release already in the cache costs no network.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, target_dir};
use crate::Result;

/// One release in Debian's pool: our version name, the tarball, its top folder, its SHA-256
/// (measured once).
struct Release {
    version: &'static str,
    tarball: &'static str,
    top: &'static str,
    sha256: &'static str,
}

/// Every release the project reads, oldest first.
const RELEASES: &[Release] = &[
    Release {
        version: "5.2",
        top: "qemu-5.2.0",
        tarball: "qemu_5.2+dfsg.orig.tar.xz",
        sha256: "be5ae7ddc88d68af81c7b2435b95c1cad4e9416c9a1426ee5a6a4b9a9c0bf87e",
    },
    Release {
        version: "7.2",
        top: "qemu-7.2.0",
        tarball: "qemu_7.2+dfsg.orig.tar.xz",
        sha256: "91aca71520040edc40b8d437aa3004dae614f58e286cf653ee8996c07af2962f",
    },
    Release {
        version: "10.0.2",
        top: "qemu-10.0.2",
        tarball: "qemu_10.0.2+ds.orig.tar.xz",
        sha256: "0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1",
    },
    Release {
        version: "10.2.2",
        top: "qemu-10.2.2",
        tarball: "qemu_10.2.2+ds.orig.tar.xz",
        sha256: "be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb",
    },
];

/// What is kept of each tarball (paths below its top folder; `tar` wildcards).
const KEEP: &[&str] = &[
    "qapi/*",
    "qga/*.json",
    "storage-daemon/qapi/*",
    "scripts/qapi/*",
    "tests/qapi-schema/*",
    // 5.2 still had the `.txt` version of the language reference.
    "docs/devel/qapi-code-gen.*",
];

/// Debian's pool folder of the qemu source package, below the mirror.
const POOL: &str = "pool/main/q/qemu";

/// The mirror used when the machine's apt sources name none.
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

const USAGE: &str =
    "usage: cargo xtask qemu fetch [VERSION...]   (default: every release: 5.2 7.2 10.0.2 10.2.2)
       cargo xtask qemu dir VERSION             (print the cache folder, fetching when missing)";

/// `cargo xtask qemu ...`.
pub(crate) fn run(args: &[String]) -> Result {
    match args.split_first() {
        Some((cmd, versions)) if cmd == "fetch" => {
            let versions: Vec<&str> = if versions.is_empty() {
                RELEASES.iter().map(|r| r.version).collect()
            } else {
                versions.iter().map(String::as_str).collect()
            };
            for version in versions {
                let dir = release_dir(version)?;
                println!("qemu: {version} in {}", dir.display());
            }
            Ok(())
        }
        Some((cmd, [version])) if cmd == "dir" => {
            println!("{}", release_dir(version)?.display());
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

/// Fetches every release when missing (for `cargo xtask prepare`).
pub(crate) fn fetch_all() -> Result {
    for release in RELEASES {
        release_dir(release.version)?;
    }
    println!(
        "qemu: releases {} in {}",
        RELEASES
            .iter()
            .map(|r| r.version)
            .collect::<Vec<_>>()
            .join(", "),
        cache_root().display()
    );
    Ok(())
}

/// The cache of every release: `<target>/qemu-releases/`.
pub(crate) fn cache_root() -> PathBuf {
    target_dir().join("qemu-releases")
}

/// The cached sources of `version` (one of [`RELEASES`]), fetched first when missing.
pub(crate) fn release_dir(version: &str) -> Result<PathBuf> {
    let release = RELEASES
        .iter()
        .find(|r| r.version == version)
        .ok_or_else(|| {
            let known: Vec<&str> = RELEASES.iter().map(|r| r.version).collect();
            format!(
                "unknown QEMU release `{version}` (known: {})",
                known.join(", ")
            )
        })?;
    let root = cache_root();
    let dir = root.join(release.version);
    if dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root)?;
    let tarball = root.join(release.tarball);
    if !tarball.is_file() || sha256(&tarball)? != release.sha256 {
        download(release, &tarball)?;
    }
    let actual = sha256(&tarball)?;
    if actual != release.sha256 {
        return Err(format!(
            "{}: SHA-256 is {actual}, expected {} (the tarball is left there to inspect)",
            tarball.display(),
            release.sha256
        )
        .into());
    }
    // Extract into a scratch folder and rename it: a cache folder is complete or absent.
    let scratch = root.join(format!(".{}.partial", release.version));
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    std::fs::create_dir_all(&scratch)?;
    let mut tar = Command::new("tar");
    tar.arg("xJf")
        .arg(&tarball)
        .arg("-C")
        .arg(&scratch)
        .args(["--strip-components=1", "--wildcards"]);
    for keep in KEEP {
        // Inclusion patterns are anchored, and `*` matches `/`: `TOP/qapi/*` is the whole
        // top-level `qapi/` and nothing else.
        tar.arg(format!("{}/{keep}", release.top));
    }
    util::run(&mut tar)?;
    std::fs::rename(&scratch, &dir)?;
    std::fs::remove_file(&tarball)?;
    Ok(dir)
}

/// Downloads `release`'s tarball from the machine's Debian mirror into `dest`.
fn download(release: &Release, dest: &Path) -> Result {
    let url = format!("{}/{POOL}/{}", mirror(), release.tarball);
    util::run(
        Command::new("curl")
            .args(["--fail", "--silent", "--show-error", "--location"])
            .args(["--retry", "3", "--connect-timeout", "20", "-o"])
            .arg(dest)
            .arg(&url),
    )
    .map_err(|err| format!("downloading QEMU {}: {err}", release.version).into())
}

/// The first `URIs:` of `/etc/apt/sources.list.d/debian.sources`, else Debian's default mirror.
fn mirror() -> String {
    let sources = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources");
    sources
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("URIs:"))
                .and_then(|uris| uris.split_whitespace().next())
                .map(|uri| uri.trim_end_matches('/').to_string())
        })
        .unwrap_or_else(|| DEFAULT_MIRROR.to_string())
}

/// The SHA-256 of `file` in hex, by `sha256sum` (fast on tens of megabytes, unlike a debug build).
fn sha256(file: &Path) -> Result<String> {
    let output = Command::new("sha256sum").arg(file).output()?;
    if !output.status.success() {
        return Err(format!("sha256sum {} failed", file.display()).into());
    }
    let text = String::from_utf8(output.stdout)?;
    Ok(text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_are_unique_and_tarballs_in_the_pool_shape() {
        let mut seen = std::collections::BTreeSet::new();
        for r in super::RELEASES {
            assert!(seen.insert(r.version), "{} twice", r.version);
            assert!(r.tarball.starts_with("qemu_") && r.tarball.ends_with(".orig.tar.xz"));
            assert_eq!(r.sha256.len(), 64);
        }
    }
}
