//! libvirtd stopping under a live `qmp_types::client::libvirt::Domain`: hung (SIGSTOP)
//! and killed (SIGKILL), then restarted. Each failure must be a typed error within the
//! deadline, never a hang, and the domain must work again after a reconnect.
//!
//! A binary of its own: test binaries run one at a time, so no other libvirt test sees
//! the daemon go away. Never skipped: without libvirt the test fails and names the
//! command to run.

#![cfg(feature = "libvirt")]

mod libvirt_support;

use std::process::Command;
use std::time::{Duration, Instant};

use libvirt_support::{require_libvirt, virsh_ok, TestDomain, URI};
use qmp_types::client::libvirt::{Domain, Error};
use qmp_types::client::monitor::Monitor;
use qmp_types::qmp::{self, commands as c};

/// libvirtd's pid, from its pid file.
fn libvirtd_pid() -> i32 {
    let text = std::fs::read_to_string("/run/libvirtd.pid").expect("/run/libvirtd.pid");
    text.trim().parse().expect("a pid")
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: a plain signal to libvirtd's pid.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

/// Starts libvirtd again (as `cargo xtask libvirt setup` does) and waits for it.
fn restart_libvirtd() {
    let status = Command::new("libvirtd")
        .arg("-d")
        .status()
        .expect("libvirtd -d");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !libvirt_support::virsh(&["version"]).status.success() {
        assert!(Instant::now() < deadline, "libvirtd did not come back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn libvirtd_hung_then_killed_then_back() {
    require_libvirt();
    let vm = TestDomain::paused("qapi-lv-daemon", "5e7a1c4e-0b4f-4d8e-9a51-3c1f0e6d7a04");
    let deadline = Duration::from_secs(2);
    let dom = Domain::open_within(URI, &vm.name, deadline).unwrap();
    assert!(dom.is_connected());
    assert_eq!(
        dom.execute(&c::QueryStatus).unwrap().status,
        qmp::RunState::Prelaunch
    );

    // Hung: the call times out at the deadline; after SIGCONT the next call works.
    let pid = libvirtd_pid();
    signal(pid, libc::SIGSTOP);
    let start = Instant::now();
    let hung = dom.execute(&c::QueryStatus);
    let took = start.elapsed();
    signal(pid, libc::SIGCONT);
    match hung {
        Err(Error::Timeout { operation, after }) => {
            assert_eq!(operation, "query-status");
            assert_eq!(after, deadline);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        took >= deadline && took < deadline + Duration::from_millis(500),
        "{took:?}"
    );
    assert_eq!(
        dom.execute(&c::QueryStatus).unwrap().status,
        qmp::RunState::Prelaunch
    );

    // Killed: every call and the subscription fail with Disconnected, within the deadline.
    let mut stops = dom.subscribe_to::<qmp::events::Stop>().unwrap();
    signal(pid, libc::SIGKILL);
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let start = Instant::now();
    match dom.execute(&c::QueryStatus) {
        Err(Error::Disconnected { uri, .. }) => assert_eq!(uri, URI),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < deadline, "{:?}", start.elapsed());
    assert!(!dom.is_connected());
    assert!(matches!(
        dom.hmp("info status"),
        Err(Error::Disconnected { .. })
    ));
    assert!(matches!(
        stops.next(Duration::from_secs(1)),
        Err(Error::Disconnected { .. })
    ));
    // Reconnecting with no daemon fails (typed), within the deadline.
    let start = Instant::now();
    assert!(matches!(dom.reconnect(), Err(Error::Connect { .. })));
    assert!(start.elapsed() < deadline + Duration::from_millis(500));

    // Back: libvirtd reattaches to the still running QEMU; the old subscription works.
    restart_libvirtd();
    dom.reconnect().unwrap();
    assert!(dom.is_connected());
    assert_eq!(
        dom.execute(&c::QueryStatus).unwrap().status,
        qmp::RunState::Prelaunch
    );
    virsh_ok(&["resume", &vm.name]);
    virsh_ok(&["suspend", &vm.name]);
    let (_, ts) = stops.next(Duration::from_secs(10)).unwrap().expect("STOP");
    assert!(ts.seconds > 1_600_000_000);
}
