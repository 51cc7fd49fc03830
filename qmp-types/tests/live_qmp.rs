//! Live tests of the QMP client against real `qemu-system-x86_64` and
//! `qemu-storage-daemon` 10.0.2, started by the crate's own launcher.

mod common;

use std::time::Duration;

use common::*;
use qmp_types::client::{Call, Error, ErrorClass, EventFilter, Launcher, OobPolicy, Options, Qmp};

#[test]
fn greeting_status_typed_and_raw() {
    let vm = start(Launcher::qemu());
    let mut qmp = vm.connect().unwrap();
    let g = qmp.greeting().unwrap();
    assert_eq!((g.version.major, g.version.minor), (10, 0));
    assert!(g.capabilities.iter().any(|c| c == "oob"));
    assert!(qmp.oob_enabled());
    let st = qmp.execute(&QueryStatus).unwrap();
    assert!(st.running);
    assert_eq!(st.status, "running");
    let raw = qmp.execute_raw("query-status", None).unwrap();
    assert!(raw.get().contains("\"running\""));
}
