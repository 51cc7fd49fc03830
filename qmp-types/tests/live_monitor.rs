//! Code written against the `Monitor` trait runs unchanged on a direct connection
//! (`&Qmp`), as it does on a libvirt domain (`live_libvirt.rs`): typed and raw
//! commands, HMP, and typed event subscriptions, against real QEMU. On both drivers
//! (`NAME::blocking`, `NAME::tokio`: the tokio client as a `Monitor` through the test
//! harness, which blocks on each call).

#[macro_use]
mod common;

use std::time::Duration;

use common::{Driver, QmpClient};

use qmp_types::client::monitor::{EventStream, Monitor};
use qmp_types::client::Launcher;
use qmp_types::qmp::{self, commands as c, events as ev};

dual_tests!(the_direct_client_is_a_monitor);

/// What a control plane would write once, for any route to a monitor.
fn pause_and_check<M: Monitor>(m: &M) -> Result<(), M::Error> {
    let stops = m.subscribe_to::<ev::Stop>()?;
    m.execute(&c::Stop)?;
    let status = m.execute(&c::QueryStatus)?;
    assert_eq!(status.status, qmp::RunState::Paused);
    let mut stops = stops;
    let (_, at) = stops
        .next(Duration::from_secs(5))?
        .expect("STOP within 5 s");
    assert!(at.seconds > 0);
    let raw = m.execute_raw("query-name", None)?;
    assert!(raw.get().starts_with('{'), "{}", raw.get());
    assert!(m.hmp("info status")?.contains("paused"));
    Ok(())
}

fn the_direct_client_is_a_monitor(d: &impl Driver) {
    let vm = Launcher::qemu()
        .spawn()
        .expect("QEMU (run `cargo xtask prepare`)");
    let qmp = d.connect(&vm).unwrap();
    pause_and_check(&qmp.monitor()).unwrap();
    // Raw events through the trait too.
    let mut all = Monitor::subscribe(&qmp.monitor(), None).unwrap();
    qmp.execute(&c::Cont).unwrap();
    let e = all
        .next_event(Duration::from_secs(5))
        .unwrap()
        .expect("RESUME");
    assert_eq!(e.name, "RESUME");
}
