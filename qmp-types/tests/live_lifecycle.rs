//! A client's life around its QEMU's, against real QEMU on both drivers
//! (`NAME::blocking`, `NAME::tokio`): the closed state after `quit`, the exit status,
//! connecting to an exited QEMU failing at once, reconnecting to a QEMU started again
//! on the same socket path, and a call that timed out but was applied (`recovery`).

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{start, Driver, QmpClient};
use qmp_types::client::recovery::Created;
use qmp_types::client::{Error, Launcher, Request};
use serde_json::json;

dual_tests!(
    lifecycle_exit_status_fast_failure_and_reconnect,
    timed_out_but_applied_is_not_applied_twice,
);

fn lifecycle_exit_status_fast_failure_and_reconnect(d: &impl Driver) {
    let mut vm = start(Launcher::qemu());
    let mut qmp = d.connect(&vm).unwrap();
    let e = qmp.execute(Request::name("quit")).map(|_| ());
    assert!(e.is_ok() || matches!(e, Err(Error::Disconnected { .. })));
    let status = vm.wait_exit_status(Duration::from_secs(5)).unwrap();
    assert!(status.expect("exited").success());
    assert!(qmp.is_closed());
    let e = qmp.execute(Request::name("query-status")).unwrap_err();
    assert!(matches!(e, Error::Disconnected { .. }), "{e}");
    // Connecting to a QEMU that has exited fails at once, naming the exit status.
    let started = Instant::now();
    let e = d.connect(&vm).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "{e}");
    assert!(e.to_string().contains("exited"), "{e}");
    // A QEMU on the same socket path again: one call reconnects.
    let again = start(Launcher::qemu().arg("-S").socket(vm.socket_path()));
    // The socket file exists from QEMU's bind(); it accepts from its listen(). The
    // launcher's own connect waits out that window; then the old client reconnects.
    drop(d.connect(&again).unwrap());
    qmp.reconnect().unwrap();
    assert!(!qmp.is_closed());
    let st = qmp.execute(Request::name("query-status")).unwrap();
    assert!(st.get().contains("prelaunch"), "{}", st.get());
    drop(again);
}

fn timed_out_but_applied_is_not_applied_twice(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let qmp = d.connect(&vm).unwrap();
    let args = json!({"driver": "null-co", "node-name": "n0"});
    let add = || Request::raw("blockdev-add", &args).timeout(Duration::from_millis(200));
    // QEMU stopped: no reply before the deadline, the outcome is unknown...
    vm.signal(libc::SIGSTOP).unwrap();
    let e = qmp.execute(add()).unwrap_err();
    assert!(e.outcome_unknown(), "{e}");
    vm.signal(libc::SIGCONT).unwrap();
    // ...and the node was added all the same.
    assert!(qmp.block_node_exists("n0").unwrap());
    // Again with add_once, QEMU stopped for 500 ms: it checks before retrying, so no
    // "Duplicate node name" error.
    vm.signal(libc::SIGSTOP).unwrap();
    let pid = vm.pid() as libc::pid_t;
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill(2) on the test's own child.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    });
    let mut tries = 0;
    let applied = qmp
        .add_once(Created::BlockNode("n0"), || {
            tries += 1;
            add()
        })
        .unwrap();
    waker.join().unwrap();
    assert!(applied);
    assert_eq!(tries, 1);
}
