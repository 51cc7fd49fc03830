//! Live tests against a real Linux guest: the kernel and initrd `cargo xtask guest build`
//! caches in `<target dir>/guest/` (busybox and the host's `qemu-ga` inside), booted by
//! [`Launcher::guest`] under TCG. The QMP side and the agent inside the guest are both
//! driven with the generated typed commands.
//!
//! One guest boots per test (about 7 s to a working agent), so the scenarios that need
//! a running guest are steps of one test; the guest is shut down by its last step.
//! Never skipped: without the guest the test fails and says to run `cargo xtask prepare`.
//! On both drivers (`NAME::blocking`, `NAME::tokio`).

#![cfg(feature = "qga")]

#[macro_use]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Driver, QgaClient, QmpClient};
use qmp_types::client::{EventFilter, Instance, Launcher, Request};
use qmp_types::qga::{self, commands as g};
use qmp_types::qmp::{self, commands as c};

dual_tests!(
    a_real_guest_with_its_agent,
    native_pcie_hotplug,
    connect_agent_fails_fast_when_qemu_exits,
);

/// `<target dir>/guest` (the rule of `cargo xtask guest build`).
fn guest_dir() -> PathBuf {
    let workspace = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    };
    target.join("guest")
}

/// The guest's kernel, initrd and kernel release; panics, saying how to build them,
/// when they are missing.
fn guest_files() -> (PathBuf, PathBuf, String) {
    let dir = guest_dir();
    let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("initrd.gz"));
    let manifest = std::fs::read_to_string(dir.join("guest.txt")).unwrap_or_default();
    assert!(
        kernel.is_file() && initrd.is_file() && !manifest.is_empty(),
        "the test guest is not built in {}: run `cargo xtask prepare` (or `cargo xtask guest build`)",
        dir.display()
    );
    let release = manifest
        .lines()
        .find_map(|l| l.strip_prefix("kernel-release="))
        .expect("guest.txt names the kernel release")
        .to_owned();
    (kernel, initrd, release)
}

/// Boots the guest and connects both clients; prints how long the agent took.
fn boot<D: Driver>(d: &D) -> (Instance, D::Qmp, D::Qga, String) {
    let (kernel, initrd, release) = guest_files();
    let start = Instant::now();
    let vm = match Launcher::guest(kernel, initrd).spawn() {
        Ok(vm) => vm,
        Err(e) => panic!("live test needs real QEMU: {e}"),
    };
    let qmp = d.connect(&vm).unwrap();
    let qga = d.connect_agent(&vm).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("boot to a synchronised agent: {:?}", start.elapsed());
    (vm, qmp, qga, release)
}

/// Runs a program in the guest through `guest-exec` and waits for it: (exit code, stdout).
fn exec(qga: &mut impl QgaClient, path: &str, args: &[&str]) -> (i64, String) {
    let started = qga
        .execute(&g::GuestExec {
            path: path.into(),
            arg: Some(args.iter().map(|a| a.to_string()).collect()),
            env: None,
            input_data: None,
            capture_output: Some(qga::GuestExecCaptureOutput::Flag(true)),
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = qga
            .execute(&g::GuestExecStatus { pid: started.pid })
            .unwrap();
        if status.exited {
            let out = status
                .out_data
                .as_deref()
                .map(base64_decode)
                .unwrap_or_default();
            return (
                status.exitcode.unwrap_or(-1),
                String::from_utf8_lossy(&out).into_owned(),
            );
        }
        assert!(Instant::now() < deadline, "{path} {args:?} did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads a whole guest file through `guest-file-open`/`read`/`close`.
fn read_file(qga: &mut impl QgaClient, path: &str) -> Vec<u8> {
    let handle = qga
        .execute(&g::GuestFileOpen {
            path: path.into(),
            mode: Some("r".into()),
        })
        .unwrap();
    let mut data = Vec::new();
    loop {
        let chunk = qga
            .execute(&g::GuestFileRead {
                handle,
                count: Some(4096),
            })
            .unwrap();
        let bytes = base64_decode(&chunk.buf_b64);
        assert_eq!(chunk.count as usize, bytes.len(), "{chunk:?}");
        data.extend(bytes);
        if chunk.eof || chunk.count == 0 {
            break;
        }
    }
    qga.execute(&g::GuestFileClose { handle }).unwrap();
    data
}

fn a_real_guest_with_its_agent(d: &impl Driver) {
    let (mut vm, mut qmp, mut qga, release) = boot(d);
    let step = |name: &str| eprintln!("--- {name}");

    step("guest-info");
    let info = qga.execute(&g::GuestInfo).unwrap();
    assert!(info.version.starts_with("10.0.2"), "{info:?}");
    let enabled = |name: &str| {
        info.supported_commands
            .iter()
            .any(|cmd| cmd.name == name && cmd.enabled)
    };
    assert!(
        enabled("guest-exec") && enabled("guest-file-open"),
        "{info:?}"
    );

    step("guest-exec with captured output");
    let (code, out) = exec(&mut qga, "/bin/busybox", &["echo", "hi"]);
    assert_eq!((code, out.as_str()), (0, "hi\n"));
    let (code, version) = exec(&mut qga, "/bin/cat", &["/proc/version"]);
    assert_eq!(code, 0);
    assert!(version.contains(&release), "{version}");
    let (code, _) = exec(&mut qga, "/bin/sh", &["-c", "exit 3"]);
    assert_eq!(code, 3);

    step("guest-file-open/write/read/close round trip");
    let text = b"written through the agent\n\x00\xff binary too";
    let handle = qga
        .execute(&g::GuestFileOpen {
            path: "/tmp/roundtrip".into(),
            mode: Some("w".into()),
        })
        .unwrap();
    let wrote = qga
        .execute(&g::GuestFileWrite {
            handle,
            buf_b64: base64_encode(text),
            count: None,
        })
        .unwrap();
    assert_eq!(wrote.count as usize, text.len());
    qga.execute(&g::GuestFileClose { handle }).unwrap();
    assert_eq!(read_file(&mut qga, "/tmp/roundtrip"), text);
    let (_, size) = exec(&mut qga, "/bin/sh", &["-c", "wc -c < /tmp/roundtrip"]);
    assert_eq!(size.trim(), text.len().to_string());

    step("guest-get-osinfo");
    let os = qga.execute(&g::GuestGetOsinfo).unwrap();
    assert_eq!(os.id.as_deref(), Some("qmp-types-guest"), "{os:?}");
    assert_eq!(os.kernel_release.as_deref(), Some(release.as_str()));
    assert_eq!(os.machine.as_deref(), Some("x86_64"));

    step("guest-network-get-interfaces");
    let interfaces = qga.execute(&g::GuestNetworkGetInterfaces).unwrap();
    let lo = interfaces
        .iter()
        .find(|i| i.name == "lo")
        .unwrap_or_else(|| panic!("no lo in {interfaces:?}"));
    assert!(
        lo.ip_addresses
            .iter()
            .flatten()
            .any(|a| a.ip_address == "127.0.0.1"),
        "{lo:?}"
    );

    step("PCI hot-plug with the guest's cooperation (ACPI, q35's default)");
    hotplug_round_trip(&vm, &mut qmp, &mut qga);

    step("reconnect after the agent restarts");
    let (_, pid_before) = exec(&mut qga, "/bin/pidof", &["qemu-ga"]);
    // The agent answers guest-exec before the child kills it; init starts a new one.
    exec_detached(&mut qga, "sleep 0.3; killall qemu-ga");
    std::thread::sleep(Duration::from_secs(1));
    drop(qga);
    let restarted = Instant::now();
    let mut qga = d
        .connect_agent_within(&vm, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("new agent synchronised after {:?}", restarted.elapsed());
    let (_, pid_after) = exec(&mut qga, "/bin/pidof", &["qemu-ga"]);
    assert!(!pid_before.trim().is_empty());
    assert_ne!(pid_before.trim(), pid_after.trim());
    qga.execute(&g::GuestPing).unwrap();

    step("guest-shutdown and QMP's SHUTDOWN event");
    let shutdown = EventFilter::name("SHUTDOWN");
    // No reply on success: the client proves the command was consumed with a sync,
    // which the powered-off guest never answers (or QEMU's exit ends early).
    let _ =
        qga.execute(Request::new(&g::GuestShutdown { mode: None }).timeout(Duration::from_secs(5)));
    let event = qmp
        .wait_event(&shutdown, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}; console:\n{}", vm.console()));
    match event.decode::<qmp::Event>().unwrap() {
        qmp::Event::Shutdown(s, _) => {
            assert!(s.guest, "{s:?}");
            assert_eq!(s.reason, qmp::ShutdownCause::GuestShutdown);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        vm.wait_exit(Duration::from_secs(10)).unwrap(),
        "QEMU still runs"
    );
}

/// Plugs a 1 MiB virtio disk into `rp1`, sees it from inside, unplugs it (waiting for
/// the `DEVICE_DELETED` that follows the guest's eject) and sees it gone; returns
/// how long the unplug took.
fn hotplug_round_trip(
    vm: &Instance,
    qmp: &mut impl QmpClient,
    qga: &mut impl QgaClient,
) -> Duration {
    qmp.execute(&c::BlockdevAdd(
        serde_json::from_value(serde_json::json!({
            "driver": "null-co", "node-name": "n1", "size": 1048576
        }))
        .unwrap(),
    ))
    .unwrap();
    let props =
        serde_json::json!({"driver": "virtio-blk-pci", "drive": "n1", "id": "vb1", "bus": "rp1"});
    qmp.execute(Request::raw(
        "device_add",
        &serde_json::value::to_raw_value(&props).unwrap(),
    ))
    .unwrap();
    let plugged = Instant::now();
    let sectors = wait_for(qga, "vda to appear in the guest", |qga| {
        let (_, out) = exec(
            qga,
            "/bin/sh",
            &["-c", "cat /sys/block/vda/size 2>/dev/null"],
        );
        (!out.trim().is_empty()).then(|| out.trim().to_owned())
    });
    eprintln!("vda seen by the guest after {:?}", plugged.elapsed());
    assert_eq!(sectors, "2048"); // 1 MiB in 512-byte sectors
    let (_, blocks) = exec(qga, "/bin/ls", &["/sys/block"]);
    assert!(blocks.split_whitespace().any(|b| b == "vda"), "{blocks}");

    let deleted = EventFilter::of::<qmp::events::DeviceDeleted>()
        .matching(|(d, _)| d.device.as_deref() == Some("vb1"));
    let unplug = Instant::now();
    let (_, event) = qmp
        .execute(
            Request::new(&c::DeviceDel { id: "vb1".into() })
                .timeout(Duration::from_secs(30))
                .wait_for(deleted),
        )
        .unwrap_or_else(|e| panic!("{e}; console:\n{}", vm.console()));
    let took = unplug.elapsed();
    eprintln!("DEVICE_DELETED for vb1 after {took:?}");
    let (d, _) = event;
    assert_eq!(d.path, "/machine/peripheral/vb1");
    let (_, blocks) = exec(qga, "/bin/ls", &["/sys/block"]);
    assert!(!blocks.split_whitespace().any(|b| b == "vda"), "{blocks}");
    qmp.execute(&c::BlockdevDel {
        node_name: "n1".into(),
    })
    .unwrap();
    took
}

/// With QEMU's ACPI hot-plug off for the root ports, the guest's native PCIe hot-plug
/// driver (`pciehp`, built into the cloud kernel) handles the slot: the unplug is an
/// attention-button press, which Linux acts on after its 5 s cancel window.
fn native_pcie_hotplug(d: &impl Driver) {
    let (kernel, initrd, _) = guest_files();
    let vm = Launcher::guest(kernel, initrd)
        .args([
            "-global",
            "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
        ])
        .spawn()
        .unwrap();
    let mut qmp = d.connect(&vm).unwrap();
    let mut qga = d.connect_agent(&vm).unwrap_or_else(|e| panic!("{e}"));
    let took = hotplug_round_trip(&vm, &mut qmp, &mut qga);
    let (_, log) = exec(&mut qga, "/bin/sh", &["-c", "dmesg | grep pciehp"]);
    assert!(log.contains("pciehp"), "{log}");
    assert!(
        took >= Duration::from_secs(4),
        "{took:?}: not pciehp's button press?"
    );
}

/// Starts `script` with `sh -c` in the guest without waiting for it.
fn exec_detached(qga: &mut impl QgaClient, script: &str) {
    qga.execute(&g::GuestExec {
        path: "/bin/sh".into(),
        arg: Some(vec!["-c".into(), script.into()]),
        env: None,
        input_data: None,
        capture_output: None,
    })
    .unwrap();
}

/// Polls `probe` every 100 ms for up to 30 s.
fn wait_for<T, Q: QgaClient>(
    qga: &mut Q,
    what: &str,
    mut probe: impl FnMut(&mut Q) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe(qga) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The agent's connect retries while the guest boots (the other tests connect right after
/// `spawn`), but a QEMU that exits during the wait is reported at once, with the
/// console's last lines, instead of after the 60 s boot timeout.
fn connect_agent_fails_fast_when_qemu_exits(d: &impl Driver) {
    let (kernel, _, _) = guest_files();
    // The kernel as initrd too: it boots and panics (no init), and -no-reboot ends QEMU.
    let vm = Launcher::guest(&kernel, &kernel).spawn().unwrap();
    let start = Instant::now();
    let err = d.connect_agent(&vm).unwrap_err().to_string();
    assert!(
        start.elapsed() < Duration::from_secs(45),
        "{:?}",
        start.elapsed()
    );
    assert!(err.contains("QEMU exited"), "{err}");
    assert!(err.contains("panic"), "{err}");
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (the agent's `buf-b64` and `out-data`).
fn base64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The inverse of [`base64_encode`].
fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
    {
        let v = B64.iter().position(|b| *b == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn base64_round_trips() {
    for data in [&b""[..], b"a", b"ab", b"abc", b"\x00\xff\x10binary"] {
        assert_eq!(base64_decode(&base64_encode(data)), data);
    }
    assert_eq!(base64_encode(b"hi\n"), "aGkK");
    assert_eq!(base64_encode(b"h"), "aA==");
}
