//! A client's life around its QEMU's, against real QEMU on both drivers
//! (`NAME::blocking`, `NAME::tokio`): the closed state after `quit`, the exit status,
//! connecting to an exited QEMU failing at once, and reconnecting to a QEMU started
//! again on the same socket path.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{start, Driver, QmpClient};
use qmp_types::client::{Error, Launcher, Request};

dual_tests!(lifecycle_exit_status_fast_failure_and_reconnect);

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
