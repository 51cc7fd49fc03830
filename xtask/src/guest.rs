//! `cargo xtask guest build`: a tiny Linux guest for the live tests and the demo, a
//! Debian cloud kernel and an initrd of busybox plus the host's own `qemu-ga`.
//!
//! The recipe is the one `../shared/qemu/peers.md` ("A real Linux guest with the guest
//! agent inside") describes:
//!
//! - `apt-get download` of the current bookworm-backports cloud kernel (the package
//!   `linux-image-cloud-amd64/bookworm-backports` depends on, as `apt-cache show` of it
//!   names it with its version: never a hard-coded version) and of `busybox-static`;
//! - `vmlinuz` from the kernel package, and the modules of [`MODULES`] (with their
//!   dependencies, decompressed by busybox's `xzcat`): the cloud kernel has virtio-pci,
//!   virtio-console and PCIe hot-plug (`pciehp`) built in, but `virtio_blk` is a module;
//! - an initrd (`newc` cpio made by busybox's `cpio`, compressed by its `gzip`: no cpio
//!   package needed) holding busybox and its links, `qemu-ga` with every library `ldd`
//!   lists at its own path, a `/sbin/shutdown` for the agent's `guest-shutdown`, and
//!   [`INIT`], which starts the agent on the virtio port named `org.qemu.guest_agent.0`
//!   and restarts it whenever it exits.
//!
//! The result is cached in `<target dir>/guest/` (`vmlinuz`, `initrd.gz`, `guest.txt`),
//! keyed by the kernel package's name and version and a digest of everything written
//! into the initrd by this module (init script, helper scripts, module list, the host's
//! `qemu-ga`): when the key matches, nothing is downloaded.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::schema::pin::sha256_hex;
use crate::util::{self, find_program};
use crate::Result;

/// The meta-package whose dependency is the current cloud kernel.
const KERNEL_META: &str = "linux-image-cloud-amd64";
/// The suite the kernel comes from (bookworm's own 6.1 lacks nothing, but backports is what
/// the project's QEMU comes from, and its kernel is the one peers.md measured).
const SUITE: &str = "bookworm-backports";
/// The busybox package (statically linked: it runs in the guest as is).
const BUSYBOX: &str = "busybox-static";

/// Kernel modules loaded by init, dependencies first (resolved from each module's
/// `depends=`). Everything else the tests need is built into the cloud kernel:
/// `CONFIG_VIRTIO_PCI`, `CONFIG_VIRTIO_CONSOLE`, `CONFIG_HOTPLUG_PCI_PCIE`, `CONFIG_DEVTMPFS`.
const MODULES: &[&str] = &["virtio_blk"];

/// The guest's `/init`. `@MODULES@` becomes one `insmod` line per module.
///
/// The agent runs in a loop, so a test can kill it (through `guest-exec`) and watch
/// the client reconnect.
const INIT: &str = r#"#!/bin/sh
# The qmp-types test guest's init, written by `cargo xtask guest build`.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec 0</dev/console 1>/dev/console 2>&1
hostname qmp-guest
ifconfig lo 127.0.0.1 up
@MODULES@
dev=
for i in $(seq 100); do
    for d in /sys/class/virtio-ports/*; do
        [ "$(cat "$d/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && dev=/dev/${d##*/}
    done
    [ -n "$dev" ] && break
    sleep 0.1
done
if [ -z "$dev" ]; then
    echo "init: no virtio port named org.qemu.guest_agent.0"
    exec sh
fi
echo "init: guest agent on $dev"
while :; do
    /bin/qemu-ga -m virtio-serial -p "$dev" -t /tmp
    echo "init: qemu-ga exited with status $?, restarting it"
    sleep 0.1
done
"#;

/// `/sbin/shutdown` for the agent's `guest-shutdown`, which runs
/// `/sbin/shutdown -h -P|-H|-r +0 MESSAGE`; busybox has no `shutdown`, and its
/// `poweroff` without `-f` would signal init, which is a shell script here.
const SHUTDOWN: &str = r#"#!/bin/sh
# guest-shutdown's helper, written by `cargo xtask guest build`.
sync
case " $* " in
    *" -r "*) exec /bin/busybox reboot -f ;;
    *" -H "*) exec /bin/busybox halt -f ;;
    *) exec /bin/busybox poweroff -f ;;
esac
"#;

/// `/etc/os-release`, what `guest-get-osinfo` reports.
const OS_RELEASE: &str = r#"ID=qmp-types-guest
NAME="qmp-types test guest"
PRETTY_NAME="qmp-types test guest (busybox and qemu-ga)"
VERSION_ID=1
"#;

/// The cached files, relative to [`dir`].
pub(crate) const KERNEL_FILE: &str = "vmlinuz";
/// The initrd, relative to [`dir`].
pub(crate) const INITRD_FILE: &str = "initrd.gz";
/// What was built from what: `key=`, `kernel-release=`, `package=`, `version=` lines.
pub(crate) const MANIFEST_FILE: &str = "guest.txt";

/// Where the guest is cached: `<target dir>/guest` (the tests use the same rule).
pub(crate) fn dir() -> PathBuf {
    util::target_dir().join("guest")
}

/// `cargo xtask guest [build]`.
pub(crate) fn run(args: &[String]) -> Result {
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["build"] => build(),
        [other, ..] => {
            Err(format!("unknown argument `{other}` (usage: cargo xtask guest build)").into())
        }
    }
}

/// Builds the guest unless the cache already holds it for the current key.
pub(crate) fn build() -> Result {
    let start = Instant::now();
    let dir = dir();
    let cached = read_manifest(&dir);
    let kernel = match kernel_package() {
        Ok(kernel) => kernel,
        Err(err) => {
            // No apt metadata (or no apt): a guest built earlier still serves.
            if cached.is_some()
                && dir.join(KERNEL_FILE).is_file()
                && dir.join(INITRD_FILE).is_file()
            {
                println!(
                    "guest: cannot check for a newer kernel ({err}); using the one in {}",
                    dir.display()
                );
                return Ok(());
            }
            return Err(err);
        }
    };
    let qemu_ga = find_program("qemu-ga")
        .ok_or("qemu-ga is not installed (run `cargo xtask prepare` as root)")?;
    let key = format!(
        "{} {} {}",
        kernel.name,
        kernel.version,
        content_digest(&qemu_ga)?
    );
    if let Some(manifest) = &cached {
        if manifest_value(manifest, "key") == Some(key.as_str())
            && dir.join(KERNEL_FILE).is_file()
            && dir.join(INITRD_FILE).is_file()
        {
            println!(
                "guest: up to date in {} ({} {})",
                dir.display(),
                kernel.name,
                kernel.version
            );
            return Ok(());
        }
    }
    println!("guest: building in {} ({key})", dir.display());
    let work = dir.join("build.partial");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let result = build_in(&work, &dir, &kernel, &qemu_ga, &key);
    let _ = fs::remove_dir_all(&work);
    result?;
    println!(
        "guest: built in {} ({})",
        util::fmt_duration(start.elapsed()),
        dir.display()
    );
    Ok(())
}

/// A Debian kernel package: its name (which carries the kernel's ABI) and version.
struct KernelPackage {
    name: String,
    version: String,
}

/// The cloud kernel `linux-image-cloud-amd64` currently depends on in backports, from
/// apt's local metadata (no network). One `apt-cache show` of the meta-package names it
/// with its exact version (`Depends: linux-image-X (= V)`), which `apt-cache depends`
/// would name without one.
fn kernel_package() -> Result<KernelPackage> {
    let meta = format!("{KERNEL_META}/{SUITE}");
    let hint = "is bookworm-backports enabled and `apt-get update` run? `cargo xtask prepare` as root does both";
    let show = output(Command::new("apt-cache").args(["show", &meta]))
        .map_err(|err| format!("{err} ({hint})"))?;
    kernel_from_show(&show).ok_or_else(|| {
        format!("`apt-cache show {meta}` names no linux-image package ({hint}):\n{show}").into()
    })
}

/// The `linux-image-...` package and version in the meta-package's `apt-cache show`
/// output (its first stanza: the candidate).
fn kernel_from_show(show: &str) -> Option<KernelPackage> {
    let stanza = show.split("\n\n").next()?;
    let depends = stanza.lines().find_map(|l| l.strip_prefix("Depends: "))?;
    depends.split(',').find_map(|dep| {
        let dep = dep.trim();
        let (name, version) = match dep.split_once(" (= ") {
            Some((name, rest)) => (name.trim(), rest.strip_suffix(')')?.trim()),
            None => (
                dep,
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix("Version: "))?
                    .trim(),
            ),
        };
        (name.starts_with("linux-image-") && name != KERNEL_META).then(|| KernelPackage {
            name: name.to_owned(),
            version: version.to_owned(),
        })
    })
}

/// A digest of everything this module writes into the initrd besides the packages.
fn content_digest(qemu_ga: &Path) -> Result<String> {
    let mut text = String::new();
    for part in [INIT, SHUTDOWN, OS_RELEASE] {
        text += part;
        text += "\0";
    }
    text += &MODULES.join(",");
    let meta = fs::metadata(qemu_ga)?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    write!(text, "\0{} {} {modified}", qemu_ga.display(), meta.len())?;
    Ok(sha256_hex(text.as_bytes())[..16].to_string())
}

/// Downloads, unpacks and assembles the guest in `work`, then moves the results into `dir`.
fn build_in(work: &Path, dir: &Path, kernel: &KernelPackage, qemu_ga: &Path, key: &str) -> Result {
    let debs = work.join("debs");
    fs::create_dir_all(&debs)?;
    let t = Instant::now();
    util::run(
        Command::new("apt-get")
            .arg("download")
            .arg(format!("{}={}", kernel.name, kernel.version))
            .arg(BUSYBOX)
            .current_dir(&debs),
    )
    .map_err(|err| format!("{err} (as root, run `apt-get update` and try again)"))?;
    println!("guest: downloaded in {}", util::fmt_duration(t.elapsed()));
    let find_deb = |prefix: &str| -> Result<PathBuf> {
        fs::read_dir(&debs)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .find(|path| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with(&format!("{prefix}_")) && name.ends_with(".deb")
            })
            .ok_or_else(|| format!("apt-get download left no {prefix}_*.deb").into())
    };
    let unpacked = work.join("unpacked");
    for deb in [find_deb(&kernel.name)?, find_deb(BUSYBOX)?] {
        util::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    }
    let busybox = unpacked.join("bin/busybox");
    if !busybox.is_file() {
        return Err(format!("{BUSYBOX} has no bin/busybox").into());
    }
    let vmlinuz = only_entry(&unpacked.join("boot"), "vmlinuz-")?;
    let release = vmlinuz
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_string();
    let modules_dir = unpacked.join("lib/modules").join(&release);

    let rd = work.join("rd");
    for sub in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "lib/modules",
    ] {
        fs::create_dir_all(rd.join(sub))?;
    }
    fs::copy(&busybox, rd.join("bin/busybox"))?;
    let applets = output(Command::new(&busybox).arg("--list-full"))?;
    for applet in applets.lines().map(str::trim) {
        // `/init` and `/sbin/shutdown` are ours; `linuxrc` would shadow nothing useful.
        if applet.is_empty() || applet == "bin/busybox" || applet == "linuxrc" {
            continue;
        }
        let link = rd.join(applet);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        if !link.exists() {
            std::os::unix::fs::symlink("/bin/busybox", &link)?;
        }
    }
    fs::copy(qemu_ga, rd.join("bin/qemu-ga"))?;
    for lib in libraries(qemu_ga)? {
        let dest = rd.join(lib.strip_prefix("/").unwrap_or(&lib));
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(&lib, &dest).map_err(|err| format!("copying {}: {err}", lib.display()))?;
    }
    let mut insmod = String::new();
    for module in module_order(&modules_dir, &busybox)? {
        let file = format!("/lib/modules/{}.ko", module.name);
        fs::write(rd.join(file.trim_start_matches('/')), &module.bytes)?;
        insmod += &format!("insmod {file}\n");
    }
    write_executable(&rd.join("init"), &INIT.replace("@MODULES@\n", &insmod))?;
    write_executable(&rd.join("sbin/shutdown"), SHUTDOWN)?;
    fs::write(rd.join("etc/os-release"), OS_RELEASE)?;
    fs::write(rd.join("etc/hostname"), "qmp-guest\n")?;

    // busybox's own find, sort, cpio and gzip: the initrd needs no host tools beyond sh.
    let initrd = work.join(INITRD_FILE);
    let archive = fs::File::create(&initrd)?;
    let script = r#""$BB" find . | "$BB" sort | "$BB" cpio -o -H newc 2>/dev/null | "$BB" gzip -6"#;
    let status = Command::new("sh")
        .args(["-c", script])
        .env("BB", &busybox)
        .current_dir(&rd)
        .stdout(Stdio::from(archive))
        .status()?;
    if !status.success() {
        return Err(format!("making the initrd failed ({status})").into());
    }

    fs::create_dir_all(dir)?;
    fs::rename(&initrd, dir.join(INITRD_FILE))?;
    fs::copy(&vmlinuz, dir.join(KERNEL_FILE))?;
    let manifest = format!(
        "key={key}\nkernel-release={release}\npackage={}\nversion={}\ninitrd-bytes={}\n",
        kernel.name,
        kernel.version,
        fs::metadata(dir.join(INITRD_FILE))?.len()
    );
    fs::write(dir.join(MANIFEST_FILE), manifest)?;
    Ok(())
}

/// The one file in `dir` whose name starts with `prefix`.
fn only_entry(dir: &Path, prefix: &str) -> Result<PathBuf> {
    let found: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .starts_with(prefix)
        })
        .collect();
    match &found[..] {
        [one] => Ok(one.clone()),
        _ => Err(format!(
            "expected one {prefix}* in {}, found {found:?}",
            dir.display()
        )
        .into()),
    }
}

/// The libraries `ldd` lists for `program`, by their paths on the host.
fn libraries(program: &Path) -> Result<Vec<PathBuf>> {
    let text = output(Command::new("ldd").arg(program))?;
    Ok(ldd_paths(&text))
}

/// The absolute paths in `ldd` output (`name => /path (addr)` or `/path (addr)`).
fn ldd_paths(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.trim(),
                None => line,
            };
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A kernel module, decompressed.
struct Module {
    name: String,
    bytes: Vec<u8>,
}

/// [`MODULES`] and what they depend on, dependencies first, each once.
fn module_order(modules_dir: &Path, busybox: &Path) -> Result<Vec<Module>> {
    let mut files = Vec::new();
    collect_files(modules_dir, &mut files)?;
    let mut order: Vec<Module> = Vec::new();
    let mut pending: Vec<(String, bool)> = MODULES
        .iter()
        .rev()
        .map(|m| (m.to_string(), false))
        .collect();
    while let Some((name, deps_done)) = pending.pop() {
        let name = name.replace('-', "_");
        if order.iter().any(|m| m.name == name) {
            continue;
        }
        let module = load_module(&files, &name, busybox)?;
        let deps = module_depends(&module.bytes);
        if deps_done || deps.iter().all(|d| order.iter().any(|m| &m.name == d)) {
            order.push(module);
        } else {
            pending.push((name, true));
            pending.extend(deps.into_iter().map(|d| (d, false)));
        }
    }
    Ok(order)
}

/// Finds `<name>.ko`, `.ko.xz` or `.ko.zst` among `files` and decompresses it.
fn load_module(files: &[PathBuf], name: &str, busybox: &Path) -> Result<Module> {
    let file = files
        .iter()
        .find(|path| {
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            let stem = file
                .split(".ko")
                .next()
                .unwrap_or_default()
                .replace('-', "_");
            stem == name && file.contains(".ko")
        })
        .ok_or_else(|| format!("the kernel package has no module {name}"))?;
    let bytes = match file.extension().and_then(|e| e.to_str()) {
        Some("ko") => fs::read(file)?,
        Some("xz") => {
            let out = Command::new(busybox).arg("xzcat").arg(file).output()?;
            if !out.status.success() {
                return Err(format!("busybox xzcat {} failed", file.display()).into());
            }
            out.stdout
        }
        _ => return Err(format!("cannot decompress {}", file.display()).into()),
    };
    Ok(Module {
        name: name.to_string(),
        bytes,
    })
}

/// The `depends=` list of a module's `.modinfo` section.
fn module_depends(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .find_map(|field| field.strip_prefix(b"depends="))
        .map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(|d| d.replace('-', "_"))
                .collect()
        })
        .unwrap_or_default()
}

/// Every file under `dir`, recursively.
fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// Writes `text` to `path` with mode 0755.
fn write_executable(path: &Path, text: &str) -> Result {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The manifest of a guest built earlier, if any.
fn read_manifest(dir: &Path) -> Option<String> {
    fs::read_to_string(dir.join(MANIFEST_FILE)).ok()
}

/// One `name=value` line of a manifest.
fn manifest_value<'a>(manifest: &'a str, name: &str) -> Option<&'a str> {
    manifest
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
}

/// A command's standard output; a failure to start or a non-zero exit is an error.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|err| format!("cannot run `{}`: {err}", util::display(cmd)))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed ({}): {}",
            util::display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_kernel_in_apt_cache_show() {
        let show = "Package: linux-image-cloud-amd64
Source: linux-signed-amd64 (6.12.95+1~bpo12+1)
Version: 6.12.95-1~bpo12+1
Depends: linux-image-6.12.95+deb12-cloud-amd64 (= 6.12.95-1~bpo12+1)
Description-en: Linux for x86-64 cloud (meta-package)

Package: linux-image-cloud-amd64
Version: 6.1.140-1
Depends: linux-image-6.1.0-37-cloud-amd64 (= 6.1.140-1)
";
        let k = kernel_from_show(show).unwrap();
        assert_eq!(k.name, "linux-image-6.12.95+deb12-cloud-amd64");
        assert_eq!(k.version, "6.12.95-1~bpo12+1");
        let unversioned = "Version: 7\nDepends: initramfs-tools, linux-image-7-cloud-amd64\n";
        let k = kernel_from_show(unversioned).unwrap();
        assert_eq!(
            (k.name.as_str(), k.version.as_str()),
            ("linux-image-7-cloud-amd64", "7")
        );
        assert!(kernel_from_show("Package: linux-image-cloud-amd64\n").is_none());
    }

    #[test]
    fn reads_ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007f99f75e4000)
\tlibudev.so.1 => /lib/x86_64-linux-gnu/libudev.so.1 (0x00007f99f74a2000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f99f75e6000)
";
        assert_eq!(
            ldd_paths(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libudev.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[test]
    fn reads_module_dependencies() {
        let modinfo = b"\0license=GPL\0depends=virtio_ring,fail-over\0vermagic=6.12\0";
        assert_eq!(module_depends(modinfo), ["virtio_ring", "fail_over"]);
        assert!(module_depends(b"\0depends=\0").is_empty());
    }

    #[test]
    fn reads_manifest_lines() {
        let manifest = "key=a b c\nkernel-release=6.12\n";
        assert_eq!(manifest_value(manifest, "key"), Some("a b c"));
        assert_eq!(manifest_value(manifest, "kernel-release"), Some("6.12"));
        assert_eq!(manifest_value(manifest, "kernel"), None);
    }
}
