//! The shell through libvirt (`qmp --libvirt DOMAIN`, libvirt holding the monitor) and
//! over TLS (`qmp --tls-ca ... HOST:PORT`), end to end against real libvirtd and QEMU.
//! Never skipped: without libvirt the tests fail naming `cargo xtask libvirt setup`.

#![cfg(all(feature = "libvirt", feature = "tls"))]

mod common;
#[path = "../../qmp-types/tests/libvirt_support/mod.rs"]
mod libvirt_support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::qmp;
use libvirt_support::{virsh_ok, TestDomain, URI};

#[test]
fn through_libvirt_commands_errors_and_events() {
    let vm = TestDomain::paused("qapi-shell-lv", "5e7a1c4e-0b4f-4d8e-9a51-3c1f0e6d7a0f");
    let r = qmp(&["--json", "--libvirt", &vm.name, "-c", URI, "query-status"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\"status\":\"prelaunch\""), "{r:?}");
    // Arguments are typed against the domain's own `query-qmp-schema` before sending.
    let r = qmp(&[
        "--libvirt",
        &vm.name,
        "qom-list",
        "path=/machine",
        "bogus=1",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    // QEMU's error class survives libvirt.
    let r = qmp(&["--libvirt", &vm.name, "device_del", "id=nope"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("DeviceNotFound"), "{r:?}");
    // Events: RESUME from `virsh resume`, printed by `--events`.
    let mut events = Command::new(env!("CARGO_BIN_EXE_qmp"))
        .args([
            "--json",
            "--events",
            "--timeout",
            "8",
            "--libvirt",
            &vm.name,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run qmp");
    std::thread::sleep(Duration::from_secs(2));
    virsh_ok(&["resume", &vm.name]);
    let mut out = String::new();
    events
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    let _ = events.wait();
    assert!(out.contains("\"RESUME\""), "{out}");
}

#[test]
fn an_unknown_domain_is_a_connection_error() {
    libvirt_support::require_libvirt();
    let r = qmp(&["--libvirt", "qapi-no-such-domain", "query-status"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("qapi-no-such-domain"), "{r:?}");
}

#[test]
fn over_tls_and_a_wrong_ca_refused() {
    let vm = qmp_types::client::tls::launch(qmp_types::client::Launcher::qemu().args(["-S"]))
        .expect("QEMU with a TLS monitor");
    let dir = vm.certs.path();
    let file = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (ca, cert, key) = (
        file("ca-cert.pem"),
        file("client-cert.pem"),
        file("client-key.pem"),
    );
    let addr = vm.addr.to_string();
    let r = qmp(&[
        "--json",
        "--tls-ca",
        &ca,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        &addr,
        "query-status",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\"status\":\"prelaunch\""), "{r:?}");
    // Another CA: refused, as a connection error.
    let other = qmp_types::client::tls::CertDir::generate().expect("certificates");
    let other_ca = other
        .path()
        .join("ca-cert.pem")
        .to_string_lossy()
        .into_owned();
    let r = qmp(&[
        "--tls-ca",
        &other_ca,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        &addr,
        "query-status",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
}
