//! `cargo xtask qemu fetch [VERSION...]`: QEMU release sources (schemas, front ends, conformance
//! cases) from Debian's archive, verified by SHA-256 and cached under the target folder; and
//! `cargo xtask qemu shared`: QEMU's reference material (`../shared/qemu`) assembled from them.
//!
//! Only the QAPI parts of each tarball are kept, in `<target>/qemu-releases/<VERSION>/`
//! (the tarball's top folder stripped). A release already in the cache costs no network.
//!
//! A bare clone has no `../shared/qemu`. Then `<target>/shared-qemu/` takes its place
//! ([`crate::util::shared_qemu_dir`]): the same layout, every file checked against
//! `schema/shared-qemu.pin` (a SHA-256 per file). Its files come from QEMU 10.0.2's and 7.2's
//! source packages and from libvirt 11.3.0's (the recorded replies), except four that QEMU's
//! tests make rather than ship: the dumps of the three real schemas (`10.0.2/golden/`) and the
//! conformance cases' table (`10.0.2/tests/ground-truth.tsv`). Those are made by the release's
//! own front end and `test-qapi.py`, through `xtask/scripts/shared_qemu.py` (python3), and must
//! come out byte for byte as pinned.

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

/// libvirt's source package (bookworm-backports' `11.3.0-2~bpo12+1` and trixie's `11.3.0-3`
/// share this tarball): its test data has QMP traffic recorded from real QEMU releases.
const LIBVIRT: Release = Release {
    version: "libvirt-11.3.0",
    top: "libvirt-11.3.0",
    tarball: "libvirt_11.3.0.orig.tar.xz",
    sha256: "6bcb0c42c4580436fea262ced56f68a6afe20f7390b1bea2116718cc034a0283",
};

/// What is kept of libvirt's tarball.
const LIBVIRT_KEEP: &[&str] = &["tests/qemucapabilitiesdata/caps_7.2.0_x86_64.replies"];

/// Debian's pool folder of the libvirt source package.
const LIBVIRT_POOL: &str = "pool/main/libv/libvirt";

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
    "docs/interop/qmp-spec.*",
];

/// Debian's pool folder of the qemu source package, below the mirror.
const POOL: &str = "pool/main/q/qemu";

/// The mirror used when the machine's apt sources name none.
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

const USAGE: &str =
    "usage: cargo xtask qemu fetch [VERSION...]   (default: every release: 5.2 7.2 10.0.2 10.2.2)
       cargo xtask qemu dir VERSION             (print the cache folder, fetching when missing)
       cargo xtask qemu shared                  (print the reference material's folder: ../shared/qemu,
                                                 else <target>/shared-qemu, assembled when missing)
       cargo xtask qemu shared --check          (assemble it into an empty cache, compare with the pin
                                                 and with ../shared/qemu when there)
       cargo xtask qemu shared --pin DIR        (write schema/shared-qemu.pin from the material in DIR)";

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
        Some((cmd, [])) if cmd == "shared" => {
            let dir = ensure_shared()?;
            println!("{}", dir.display());
            Ok(())
        }
        Some((cmd, [flag])) if cmd == "shared" && flag == "--check" => check_shared(),
        Some((cmd, [flag, dir])) if cmd == "shared" && flag == "--pin" => {
            write_shared_pin(Path::new(dir))
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
    release_dir_in(&cache_root(), version)
}

/// The sources of `version` in the release cache `root`, fetched first when missing.
fn release_dir_in(root: &Path, version: &str) -> Result<PathBuf> {
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
    unpacked(root, release, POOL, KEEP)
}

/// `release`'s parts named by `keep`, in `root/<version>/`: downloaded from Debian's `pool`
/// folder, checked and unpacked when missing, or when unpacked with another `keep`.
fn unpacked(root: &Path, release: &Release, pool: &str, keep: &[&str]) -> Result<PathBuf> {
    let dir = root.join(release.version);
    // What was kept, so that a longer KEEP list unpacks again rather than missing files.
    let stamp = keep.join("\n") + "\n";
    let stamp_file = dir.join(".kept");
    if dir.is_dir() && std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == stamp) {
        return Ok(dir);
    }
    std::fs::create_dir_all(root)?;
    let tarball = root.join(release.tarball);
    if !tarball.is_file() || sha256(&tarball)? != release.sha256 {
        download(release, pool, &tarball)?;
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
    for keep in keep {
        // Inclusion patterns are anchored, and `*` matches `/`: `TOP/qapi/*` is the whole
        // top-level `qapi/` and nothing else.
        tar.arg(format!("{}/{keep}", release.top));
    }
    util::run(&mut tar)?;
    std::fs::write(scratch.join(".kept"), stamp)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::rename(&scratch, &dir)?;
    std::fs::remove_file(&tarball)?;
    Ok(dir)
}

/// Where the pin of the reference material lives, relative to the repository root.
const SHARED_PIN: &str = "schema/shared-qemu.pin";

/// The files of the reference material that QEMU's tests make rather than ship, made by
/// `xtask/scripts/shared_qemu.py` with QEMU 10.0.2's own front end.
const GENERATED: [&str; 4] = [
    "10.0.2/golden/q10-qapi.out",
    "10.0.2/golden/q10-qga.out",
    "10.0.2/golden/q10-storage-daemon.out",
    "10.0.2/tests/ground-truth.tsv",
];

/// The stand-in for `../shared/qemu` in a bare clone: `<target>/shared-qemu/`.
pub(crate) fn shared_cache() -> PathBuf {
    target_dir().join("shared-qemu")
}

/// The reference material's folder ([`util::shared_qemu_dir`]), assembled into
/// [`shared_cache`] first when that is where it is and it is missing or not as pinned.
pub(crate) fn ensure_shared() -> Result<PathBuf> {
    let dir = util::shared_qemu_dir();
    if dir != shared_cache() {
        return Ok(dir);
    }
    let pin = read_shared_pin()?;
    if dir.is_dir() && compare_with_pin(&dir, &pin)?.is_empty() {
        return Ok(dir);
    }
    println!(
        "shared: no {} (nor QAPI_SHARED_DIR): assembling QEMU's reference material from Debian's source packages into {}",
        util::repo_root().join("../shared/qemu").display(),
        dir.display()
    );
    let start = std::time::Instant::now();
    assemble(&cache_root(), &dir, &pin).map_err(|err| {
        format!(
            "{err}\n\nWithout Debian's archive: put QEMU's reference material at ../shared/qemu or name it in \
             QAPI_SHARED_DIR, or import the schema from a QEMU 10.0.2 source tree \
             (`tar xJf qemu-10.0.2.tar.xz`, then `cargo xtask schema import qemu-10.0.2`); the tests that read the \
             conformance cases and recorded replies need the material itself"
        )
    })?;
    println!(
        "shared: {} files assembled and as pinned in {}",
        pin.len(),
        util::fmt_duration(start.elapsed())
    );
    Ok(dir)
}

/// `cargo xtask qemu shared --check`: assembles the reference material from nothing (an
/// empty release cache) and compares it with the pin and with `../shared/qemu` when there.
fn check_shared() -> Result {
    let scratch = target_dir().join("shared-qemu-check");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    let pin = read_shared_pin()?;
    let dest = scratch.join("shared-qemu");
    let start = std::time::Instant::now();
    assemble(&scratch.join("qemu-releases"), &dest, &pin)?;
    println!(
        "shared: assembled from an empty cache in {}: {} files, each as pinned in {SHARED_PIN}",
        util::fmt_duration(start.elapsed()),
        pin.len()
    );
    let reference = util::repo_root().join("../shared/qemu");
    if reference.is_dir() {
        let problems = compare_with_pin(&reference, &pin)?;
        if !problems.is_empty() {
            return Err(format!(
                "{} differs from {SHARED_PIN}:\n  {}",
                reference.display(),
                problems.join("\n  ")
            )
            .into());
        }
        for (_, path) in &pin {
            if std::fs::read(reference.join(path))? != std::fs::read(dest.join(path))? {
                return Err(format!(
                    "{path}: the assembled file differs from {}",
                    reference.display()
                )
                .into());
            }
        }
        println!(
            "shared: identical to {}, file for file",
            reference.display()
        );
    } else {
        println!("shared: no {} to compare with", reference.display());
    }
    std::fs::remove_dir_all(&scratch)?;
    Ok(())
}

/// `cargo xtask qemu shared --pin DIR`: writes [`SHARED_PIN`] from the material in `dir`.
fn write_shared_pin(dir: &Path) -> Result {
    let mut files = Vec::new();
    for top in shared_tops() {
        walk(dir, Path::new(top), &mut files)?;
    }
    files.sort();
    let mut text = String::from(
        "# Every file of QEMU's reference material (../shared/qemu), as `cargo xtask qemu shared` assembles it from\n\
         # Debian's source packages of QEMU 10.0.2 and 7.2 and libvirt 11.3.0 when ../shared/qemu is absent.\n\
         # SHA-256 and path, one file a line; the folders hold no other file. Do not edit: see CONTRIBUTING.md.\n",
    );
    for file in &files {
        let bytes = std::fs::read(dir.join(file))?;
        text += &format!("{}  {file}\n", crate::schema::pin::sha256_hex(&bytes));
    }
    std::fs::write(util::repo_root().join(SHARED_PIN), text)?;
    println!("shared: {} files pinned in {SHARED_PIN}", files.len());
    Ok(())
}

/// The top folders of the reference material that the pin covers (the notes beside them
/// are the project's, not QEMU's).
fn shared_tops() -> [&'static str; 3] {
    ["10.0.2", "7.2.0", "replies"]
}

/// Every file below `root/rel`, as paths relative to `root` with `/` separators.
fn walk(root: &Path, rel: &Path, files: &mut Vec<String>) -> Result {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let rel = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            walk(root, &rel, files)?;
        } else {
            files.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// The pin's `(sha256, path)` lines.
fn read_shared_pin() -> Result<Vec<(String, String)>> {
    let path = util::repo_root().join(SHARED_PIN);
    let text =
        std::fs::read_to_string(&path).map_err(|err| format!("{}: {err}", path.display()))?;
    Ok(parse_shared_pin(&text))
}

/// Parses the pin's text: `SHA256  PATH` lines, `#` comments.
fn parse_shared_pin(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split_once("  "))
        .map(|(sha, path)| (sha.to_string(), path.to_string()))
        .collect()
}

/// What in `dir` differs from `pin`: files missing, of another digest, or not pinned.
fn compare_with_pin(dir: &Path, pin: &[(String, String)]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (want, path) in pin {
        match std::fs::read(dir.join(path)) {
            Ok(bytes) => {
                let got = crate::schema::pin::sha256_hex(&bytes);
                if &got != want {
                    problems.push(format!("{path}: SHA-256 {got}, pinned {want}"));
                }
            }
            Err(err) => problems.push(format!("{path}: {err}")),
        }
    }
    let pinned: std::collections::BTreeSet<&str> = pin.iter().map(|(_, p)| p.as_str()).collect();
    let mut present = Vec::new();
    for top in shared_tops() {
        if dir.join(top).is_dir() {
            walk(dir, Path::new(top), &mut present)?;
        }
    }
    for path in present {
        if !pinned.contains(path.as_str()) {
            problems.push(format!("{path}: not in the pin"));
        }
    }
    Ok(problems)
}

/// Where a pinned file of the reference material comes from: a release folder and the path in it.
fn source_of(path: &str) -> Option<(&'static str, String)> {
    let (top, rest) = path.split_once('/')?;
    let release = match top {
        "10.0.2" => "10.0.2",
        "7.2.0" => "7.2",
        "replies" => {
            return Some((
                LIBVIRT.version,
                format!("tests/qemucapabilitiesdata/{rest}"),
            ))
        }
        _ => return None,
    };
    let rest = match rest {
        "docs/qapi-code-gen.rst" => "docs/devel/qapi-code-gen.rst",
        "docs/qmp-spec.rst" => "docs/interop/qmp-spec.rst",
        other => other,
    };
    Some((release, rest.to_string()))
}

/// Assembles the reference material into `dest` from the releases in the cache `releases`
/// (fetched there when missing): copies each pinned file, makes the generated ones, checks
/// every file against `pin`; `dest` is complete and as pinned, or left as it was.
fn assemble(releases: &Path, dest: &Path, pin: &[(String, String)]) -> Result {
    let q10 = release_dir_in(releases, "10.0.2")?;
    release_dir_in(releases, "7.2")?;
    unpacked(releases, &LIBVIRT, LIBVIRT_POOL, LIBVIRT_KEEP)?;
    let partial = dest.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    for (_, path) in pin {
        if GENERATED.contains(&path.as_str()) {
            continue;
        }
        let (release, from) =
            source_of(path).ok_or_else(|| format!("{SHARED_PIN}: no source known for {path}"))?;
        let from = releases.join(release).join(from);
        let to = partial.join(path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&from, &to).map_err(|err| format!("{}: {err}", from.display()))?;
    }
    let script = util::repo_root().join("xtask/scripts/shared_qemu.py");
    util::run(
        Command::new("python3")
            .arg(&script)
            .arg(&q10)
            .arg(partial.join("10.0.2")),
    )
    .map_err(|err| format!("{err} (QEMU's front end needs python3: `apt-get install python3`)"))?;
    let problems = compare_with_pin(&partial, pin)?;
    if !problems.is_empty() {
        return Err(format!(
            "the material assembled in {} differs from {SHARED_PIN}:\n  {}",
            partial.display(),
            problems.join("\n  ")
        )
        .into());
    }
    if dest.exists() {
        std::fs::remove_dir_all(dest)?;
    }
    std::fs::rename(&partial, dest)?;
    Ok(())
}

/// Downloads `release`'s tarball from the machine's Debian mirror into `dest`.
fn download(release: &Release, pool: &str, dest: &Path) -> Result {
    let url = format!("{}/{pool}/{}", mirror(), release.tarball);
    util::run(
        Command::new("curl")
            .args(["--fail", "--silent", "--show-error", "--location"])
            .args(["--retry", "3", "--connect-timeout", "20", "-o"])
            .arg(dest)
            .arg(&url),
    )
    .map_err(|err| format!("downloading {}: {err}", release.tarball).into())
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

    #[test]
    fn every_pinned_shared_file_has_a_source() {
        let pin = super::read_shared_pin().unwrap();
        assert!(pin.len() > 500, "{} files", pin.len());
        for (sha, path) in &pin {
            assert_eq!(sha.len(), 64, "{path}");
            assert!(
                super::GENERATED.contains(&path.as_str()) || super::source_of(path).is_some(),
                "{path}"
            );
        }
        assert_eq!(
            super::source_of("replies/caps_7.2.0_x86_64.replies"),
            Some((
                "libvirt-11.3.0",
                "tests/qemucapabilitiesdata/caps_7.2.0_x86_64.replies".to_string()
            ))
        );
        assert_eq!(
            super::source_of("7.2.0/docs/qapi-code-gen.rst"),
            Some(("7.2", "docs/devel/qapi-code-gen.rst".to_string()))
        );
    }
}
