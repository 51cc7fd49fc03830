//! Live tests of `qmp_types::client::libvirt` against the real libvirtd of
//! `cargo xtask libvirt setup` (libvirt 11.3 managing QEMU 10.0.2), with the generated
//! typed commands and events: each test defines a domain of its own that needs no image
//! (or boots the test guest, for the agent), and removes it at the end.
//!
//! Never skipped: without libvirt the tests fail and name the command to run.
//! Killing and restarting libvirtd is in `live_libvirt_daemon.rs`, a binary of its own,
//! so that it never runs beside these.

#![cfg(feature = "libvirt")]

mod libvirt_support;

use std::time::{Duration, Instant};

use libvirt_support::{ssh_uri, virsh_ok, TestDomain, URI};
use qmp_types::client::libvirt::{Domain, Error};
use qmp_types::client::monitor::{EventStream, Monitor};
use qmp_types::client::ErrorClass;
use qmp_types::qmp::{self, commands as c};

/// A remote URI: libvirt's ssh transport (to this machine's private sshd), by UUID,
/// typed commands, HMP and events as through `qemu:///system`.
#[test]
fn over_ssh() {
    let vm = TestDomain::paused("qapi-lv-ssh", "5e7a1c4e-0b4f-4d8e-9a51-3c1f0e6d7a04");
    let uri = ssh_uri();
    let dom = Domain::open(&uri, &vm.uuid).unwrap();
    assert_eq!(dom.uri(), uri);
    let status = dom.execute(&c::QueryStatus).unwrap();
    assert_eq!(status.status, qmp::RunState::Prelaunch);
    let hmp = dom.hmp("info status").unwrap();
    assert!(hmp.contains("prelaunch"), "{hmp:?}");
    let mut resumed = dom.subscribe_to::<qmp::events::Resume>().unwrap();
    virsh_ok(&["resume", &vm.name]);
    resumed
        .next(Duration::from_secs(10))
        .unwrap()
        .expect("RESUME over ssh");
    // QEMU's own error, through ssh.
    match dom.execute(&c::DeviceDel::new("nope")) {
        Err(Error::Qmp { class, .. }) => assert_eq!(class, ErrorClass::DeviceNotFound),
        other => panic!("{other:?}"),
    }
}

#[test]
fn typed_commands_hmp_and_events() {
    let vm = TestDomain::paused("qapi-lv-typed", "5e7a1c4e-0b4f-4d8e-9a51-3c1f0e6d7a01");
    let dom = Domain::open(URI, &vm.name).unwrap();
    let status = dom.execute(&c::QueryStatus).unwrap();
    assert_eq!(status.status, qmp::RunState::Prelaunch);
    assert!(!status.running);

    // By UUID, the same domain.
    let by_uuid = Domain::open(URI, &vm.uuid).unwrap();
    let name = by_uuid.execute(&c::QueryName).unwrap();
    assert_eq!(name.name.as_deref(), Some(vm.name.as_str()));

    // Raw, by name, with arguments: libvirt assigns the id.
    let args = serde_json::value::to_raw_value(&serde_json::json!({"path": "/machine"})).unwrap();
    let list = dom.execute_raw("qom-list", Some(&args)).unwrap();
    assert!(list.get().contains("\"name\""), "{}", list.get());

    let hmp = dom.hmp("info status").unwrap();
    assert!(hmp.contains("VM status: paused (prelaunch)"), "{hmp:?}");

    // Events: armed before the state changes, typed and raw, from virsh as an admin would.
    let mut resumed = dom.subscribe(Some("RESUME")).unwrap();
    let mut stops = dom.subscribe_to::<qmp::events::Stop>().unwrap();
    let mut every = dom.subscribe(None).unwrap();
    virsh_ok(&["resume", &vm.name]);
    let e = resumed
        .next_event(Duration::from_secs(10))
        .unwrap()
        .expect("RESUME");
    assert_eq!(e.name, "RESUME");
    assert!(e.timestamp.seconds > 1_600_000_000);
    assert!(dom.execute(&c::QueryStatus).unwrap().running);
    virsh_ok(&["suspend", &vm.name]);
    let (_, ts) = stops.next(Duration::from_secs(10)).unwrap().expect("STOP");
    assert!(ts.seconds >= e.timestamp.seconds);
    let names: Vec<String> = std::iter::from_fn(|| {
        every
            .next_event(Duration::from_millis(500))
            .unwrap()
            .map(|e| e.name)
    })
    .collect();
    assert_eq!(names, ["RESUME", "STOP"]);
    assert_eq!(
        dom.execute(&c::QueryStatus).unwrap().status,
        qmp::RunState::Paused
    );
}

#[test]
fn errors_are_typed_apart() {
    // An unknown domain, by name and by UUID.
    for missing in [
        "qapi-lv-no-such-domain",
        "00000000-0000-4000-8000-00000000dead",
    ] {
        match Domain::open(URI, missing) {
            Err(Error::NoDomain { domain, .. }) => assert_eq!(domain, missing),
            other => panic!("{missing}: {other:?}"),
        }
    }
    // No libvirt at all at that URI: a connection error.
    assert!(matches!(
        Domain::open("qemu+unix:///system?socket=/nonexistent/sock", "x"),
        Err(Error::Connect { .. })
    ));

    let vm = TestDomain::paused("qapi-lv-errors", "5e7a1c4e-0b4f-4d8e-9a51-3c1f0e6d7a02");
    let dom = Domain::open(URI, &vm.name).unwrap();
    // QEMU's error replies keep their class and description.
    match dom.execute_raw("no-such-command", None) {
        Err(Error::Qmp {
            command,
            class,
            desc,
        }) => {
            assert_eq!(command, "no-such-command");
            assert_eq!(class, ErrorClass::CommandNotFound);
            assert_eq!(desc, "The command no-such-command has not been found");
        }
        other => panic!("{other:?}"),
    }
    match dom.execute(&c::DeviceDel::new("nothing")) {
        Err(Error::Qmp { class, desc, .. }) => {
            assert_eq!(class, ErrorClass::DeviceNotFound);
            assert!(desc.contains("nothing"), "{desc}");
        }
        other => panic!("{other:?}"),
    }
    // No agent channel: libvirt's own refusal (once running; paused, it refuses that).
    virsh_ok(&["resume", &vm.name]);
    let ping = dom.agent_execute_raw("guest-ping", None, Duration::from_secs(2));
    let error = ping.as_ref().err().and_then(Error::libvirt).cloned();
    assert_eq!(
        error.map(|e| e.code),
        Some("ArgumentUnsupported".to_owned()),
        "{ping:?}"
    );
    // A domain that is not running: libvirt refuses, QEMU is never asked.
    virsh_ok(&["destroy", &vm.name]);
    match dom.execute(&c::QueryStatus) {
        Err(Error::Libvirt { operation, error }) => {
            assert_eq!(operation, "query-status");
            assert_eq!(error.code, "OperationInvalid", "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "qga")]
#[test]
fn guest_agent_through_libvirt() {
    use qmp_types::qga::commands as g;
    let vm = TestDomain::guest("qapi-lv-guest", "5e7a1c4e-0b4f-4d8e-9a51-3c1f0e6d7a03");
    let dom = Domain::open(URI, &vm.name).unwrap();
    // The agent answers once the guest has booted (about 7 s under TCG); before that
    // libvirt says it is not connected.
    let start = Instant::now();
    loop {
        match dom.agent_execute(&g::GuestPing, Duration::from_secs(2)) {
            Ok(()) => break,
            Err(e) if start.elapsed() < Duration::from_secs(90) => {
                let code = e.libvirt().map(|l| l.code.clone()).unwrap_or_default();
                assert!(
                    ["AgentUnresponsive", "AgentCommandTimeout"].contains(&code.as_str()),
                    "{e}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("the agent never answered: {e}"),
        }
    }
    let info = dom
        .agent_execute(&g::GuestInfo, Duration::from_secs(5))
        .unwrap();
    assert!(!info.version.is_empty());
    assert!(info
        .supported_commands
        .iter()
        .any(|c| c.name == "guest-ping"));
    // The agent's own error: libvirt keeps its description, not its class.
    match dom.agent_execute_raw("guest-no-such-command", None, Duration::from_secs(5)) {
        Err(Error::Libvirt { error, .. }) => {
            assert_eq!(error.code, "AgentCommandFailed", "{error}");
            assert!(error.message.contains("guest-no-such-command"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // An agent that stops answering while its port stays open (frozen inside the
    // guest): libvirt's own timeout, typed, within the deadline, never a hang.
    dom.agent_execute(
        &g::GuestExec {
            arg: Some(vec![
                "-c".into(),
                "sleep 0.5; kill -STOP $(pidof qemu-ga)".into(),
            ]),
            ..g::GuestExec::new("/bin/sh")
        },
        Duration::from_secs(5),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    match dom.agent_execute(&g::GuestInfo, Duration::from_secs(2)) {
        Err(e) => {
            let code = e.libvirt().map(|l| l.code.clone()).unwrap_or_default();
            assert!(
                matches!(e, Error::Timeout { .. })
                    || ["AgentUnresponsive", "AgentCommandTimeout"].contains(&code.as_str()),
                "{e}"
            );
            eprintln!("a frozen agent: {e} ({code})");
        }
        Ok(info) => panic!("a frozen agent answered: {info:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    eprintln!("a frozen agent: refused after {:?}", t.elapsed());
}
