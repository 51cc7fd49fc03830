//! Capabilities at run time against real QEMU 10.0.2 and Debian 12's 7.2: what
//! `Qmp::has_command`, `has_event` and `has_argument` report from the server's own
//! `query-qmp-schema`, and that the schema is fetched once per connection, lazily;
//! each on both drivers (`NAME::blocking`, `NAME::tokio`).
//!
//! The differences checked were found with `cargo xtask schema diff ../shared/qemu/7.2.0
//! ../shared/qemu/10.0.2`.

#[macro_use]
mod common;
mod releases;

use common::{Driver, QmpClient};
use qmp_types::client::Error;
use qmp_types::qmp::commands;
use releases::{start, Release};

dual_tests!(
    qemu_10_0_2_capabilities,
    qemu_7_2_capabilities,
    storage_daemon_capabilities,
    fetch_errors_are_typed,
);

/// What one release must report: (name, present on 7.2, present on 10.0.2).
const COMMANDS: &[(&str, bool, bool)] = &[
    ("query-status", true, true),
    ("blockdev-reopen", true, true),
    ("blockdev-set-active", false, true), // since 10.0
    ("query-audiodevs", false, true),     // since 8.0
    ("query-migrationthreads", false, true),
    ("x-query-rdma", true, false), // removed in 9.1 with RDMA migration
    ("no-such-command", false, false),
];

const EVENTS: &[(&str, bool, bool)] = &[
    ("DEVICE_DELETED", true, true),
    ("SHUTDOWN", true, true),
    ("NETDEV_VHOST_USER_CONNECTED", false, true), // since 10.0
    ("MEM_UNPLUG_ERROR", true, false),            // removed in 8.x
    ("device_deleted", false, false),
];

/// (command, argument, on 7.2, on 10.0.2).
const ARGUMENTS: &[(&str, &str, bool, bool)] = &[
    ("query-machines", "compat-props", false, true), // since 9.1
    ("migrate", "uri", true, true),
    ("migrate", "channels", false, true), // since 8.2
    ("migrate", "blk", true, false),      // removed in 9.1
    ("device_del", "id", true, true),
    ("query-status", "id", false, false),
    // blockdev-add's arguments are the BlockdevOptions union: base and branch members.
    ("blockdev-add", "driver", true, true),
    ("blockdev-add", "filename", true, true), // the file branch
    ("blockdev-add", "discard-no-unref", false, true), // the qcow2 branch, since 8.1
    ("blockdev-add", "min-cluster-size", false, true), // the copy-before-write branch, since 9.2
    ("blockdev-add", "no-such-member", false, false),
    ("no-such-command", "id", false, false),
];

fn check(release: Release, qmp: &impl QmpClient) {
    let v = release == Release::V10_0_2;
    let mut wrong = Vec::new();
    for &(name, old, new) in COMMANDS {
        if qmp.has_command(name).unwrap() != if v { new } else { old } {
            wrong.push(format!("command {name}"));
        }
    }
    for &(name, old, new) in EVENTS {
        if qmp.has_event(name).unwrap() != if v { new } else { old } {
            wrong.push(format!("event {name}"));
        }
    }
    for &(command, arg, old, new) in ARGUMENTS {
        if qmp.has_argument(command, arg).unwrap() != if v { new } else { old } {
            wrong.push(format!("argument {command} {arg}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "QEMU {} reports wrongly: {wrong:?}",
        release.greeting_version()
    );
    // Typed form, by the command type's wire name.
    assert_eq!(qmp.supports::<commands::QueryAudiodevs>().unwrap(), v);
    assert!(qmp.supports::<commands::BlockdevReopen>().unwrap());
}

fn run(d: &impl Driver, release: Release) {
    let vm = start(release, release.launcher().args(["-machine", "q35", "-S"]));
    let qmp = d.connect(&vm).unwrap();
    assert_eq!(
        qmp.greeting().unwrap().version.to_string(),
        release.greeting_version()
    );
    // Lazy: connecting fetches nothing (one request so far: qmp_capabilities).
    let before = qmp.stats().requests;
    assert_eq!(before, 1);
    check(release, &qmp);
    // Once: every question above cost one request in all.
    assert_eq!(
        qmp.stats().requests,
        before + 1,
        "query-qmp-schema fetched more than once"
    );
    check(release, &qmp);
    let schema = qmp.schema().unwrap();
    assert!(schema.commands().count() > 150);
    assert!(schema.events().count() > 40);
    let machines = schema.arguments("query-machines").unwrap();
    assert_eq!(machines.len(), usize::from(release == Release::V10_0_2));
    assert_eq!(
        qmp.stats().requests,
        before + 1,
        "query-qmp-schema fetched more than once"
    );
    // The cache belongs to the connection: a new one fetches its own.
    drop(qmp);
    let second = d.connect(&vm).unwrap();
    assert!(second.has_command("query-status").unwrap());
    assert_eq!(second.stats().requests, 2);
}

fn qemu_10_0_2_capabilities(d: &impl Driver) {
    run(d, Release::V10_0_2);
}

fn qemu_7_2_capabilities(d: &impl Driver) {
    run(d, Release::V7_2);
}

/// The storage daemon has its own, smaller schema: no `query-status`, and an error
/// from fetching the schema would be typed (here it succeeds).
fn storage_daemon_capabilities(d: &impl Driver) {
    let qsd = match qmp_types::client::Launcher::storage_daemon().spawn() {
        Ok(qsd) => qsd,
        Err(e) => panic!("live test needs real qemu-storage-daemon: {e}"),
    };
    let qmp = d.connect(&qsd).unwrap();
    assert!(qmp.has_command("blockdev-add").unwrap());
    assert!(!qmp.has_command("query-status").unwrap());
    assert!(qmp.has_argument("blockdev-add", "filename").unwrap());
    assert!(qmp.has_event("BLOCK_JOB_COMPLETED").unwrap());
}

/// A server that cannot answer (here: gone) gives the client's typed error, and
/// nothing is cached, so a later call tries again.
fn fetch_errors_are_typed(d: &impl Driver) {
    let mut vm = start(Release::V10_0_2, Release::V10_0_2.launcher());
    let qmp = d.connect(&vm).unwrap();
    vm.kill().unwrap();
    match qmp.has_command("query-status") {
        Err(Error::Disconnected { .. } | Error::Io { .. }) => {}
        other => panic!("expected a disconnect, got {other:?}"),
    }
    assert!(qmp.has_command("query-status").is_err());
}
