//! Live tests of the QMP clients against real `qemu-system-x86_64` and
//! `qemu-storage-daemon` 10.0.2, started by the crate's own launcher; each runs on
//! both drivers (`NAME::blocking`, `NAME::tokio`).

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use qmp_types::client::{
    Endpoint, Error, ErrorClass, EventFilter, Launcher, OobPolicy, Options, Request,
};

dual_tests!(
    greeting_status_typed_and_raw,
    events_interleaved_with_replies_and_typed,
    bounded_event_queue_counts_drops,
    error_classes_keep_class_desc_and_command,
    out_of_band_query_yank,
    pretty_printed_monitor,
    oversize_reply_is_an_error_on_that_call_and_the_connection_survives,
    fd_passing_getfd_and_add_fd_with_real_files,
    accept_mode_over_tcp_and_unix_and_no_fds_on_tcp,
    hmp_helper,
    timeout_on_stopped_qemu_then_resync_discards_the_late_reply,
    qemu_killed_mid_command_is_outcome_unknown,
    second_client_on_a_busy_monitor_times_out_then_gets_in,
    device_del_waits_for_device_deleted,
    storage_daemon,
    tcp_endpoint_connect,
    from_an_fd_handed_to_qemu_with_add_client,
    partial_write_on_timeout_then_qemu_resyncs,
    generated_api_commands_and_events,
);

fn greeting_status_typed_and_raw(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let qmp = d.connect(&vm).unwrap();
    let g = qmp.greeting().unwrap();
    assert_eq!((g.version.major, g.version.minor), (10, 0));
    assert!(g.capabilities.iter().any(|c| c == "oob"));
    assert!(qmp.oob_enabled());
    let st = qmp.execute(&QueryStatus).unwrap();
    assert!(st.running);
    assert_eq!(st.status, "running");
    let raw = qmp.execute(Request::name("query-status")).unwrap();
    assert!(raw.get().contains("\"running\""));
}

fn events_interleaved_with_replies_and_typed(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let qmp = d.connect(&vm).unwrap();
    // STOP arrives before stop's reply: it must be queued, not taken for the reply.
    qmp.execute(&Stop).unwrap();
    let ev = qmp.poll_event().unwrap().expect("STOP queued during stop");
    assert_eq!(ev.name(), "STOP");
    assert!(matches!(ev.decode::<Ev>().unwrap(), Ev::Stop(ts) if ts.seconds > 0));
    assert!(qmp.poll_event().unwrap().is_none());
    // Armed before cont is written: RESUME is caught even though it precedes the reply.
    let (_, ev) = qmp
        .execute(
            Request::new(&Cont)
                .timeout(Duration::from_secs(5))
                .wait_for(EventFilter::name("RESUME")),
        )
        .unwrap();
    assert_eq!(ev.decode::<Ev>().unwrap(), Ev::Resume);
    assert_eq!(qmp.stats().dropped_events, 0);
}

fn bounded_event_queue_counts_drops(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let qmp = d
        .connect_with(&vm, &Options::new().event_capacity(2))
        .unwrap();
    for _ in 0..3 {
        qmp.execute(&Stop).unwrap();
        qmp.execute(&Cont).unwrap();
    }
    assert_eq!(qmp.dropped_events(), 4);
    let names: Vec<_> = qmp
        .drain_events()
        .iter()
        .map(|e| e.name().to_owned())
        .collect();
    assert_eq!(names, ["STOP", "RESUME"]);
    // wait_event leaves non-matching events queued.
    qmp.execute(&Stop).unwrap();
    qmp.execute(&Cont).unwrap();
    let ev = qmp
        .wait_event(&EventFilter::name("RESUME"), Duration::from_secs(1))
        .unwrap();
    assert_eq!(ev.name(), "RESUME");
    assert_eq!(qmp.poll_event().unwrap().unwrap().name(), "STOP");
    // next_event times out cleanly.
    assert!(qmp
        .next_event(Some(Duration::from_millis(50)))
        .unwrap()
        .is_none());
}

fn error_classes_keep_class_desc_and_command(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let qmp = d.connect(&vm).unwrap();
    let e = qmp.execute(Request::name("no-such-command")).unwrap_err();
    let q = e.qmp().expect("error reply");
    assert_eq!(q.class, ErrorClass::CommandNotFound);
    assert_eq!(q.command, "no-such-command");
    assert!(q.desc.contains("no-such-command"), "{}", q.desc);
    let e = qmp.execute(&DeviceDel { id: "nope".into() }).unwrap_err();
    assert_eq!(e.class(), Some(&ErrorClass::DeviceNotFound), "{e}");
    assert!(
        e.to_string()
            .starts_with("device_del failed: DeviceNotFound: "),
        "{e}"
    );
    let e = qmp
        .execute(Request::raw(
            "query-status",
            &args(serde_json::json!({"bogus": 1})),
        ))
        .unwrap_err();
    assert_eq!(e.class(), Some(&ErrorClass::GenericError), "{e}");
    // The connection is still fine.
    assert!(qmp.execute(&QueryStatus).is_ok());
}

fn out_of_band_query_yank(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let qmp = d.connect(&vm).unwrap();
    let yank = qmp.execute(Request::new(&QueryYank).oob()).unwrap();
    assert!(yank.iter().any(|i| i["type"] == "chardev"), "{yank:?}");
    // QEMU refuses exec-oob for a command that does not allow it...
    let e = qmp
        .execute(Request::name("query-status").oob())
        .unwrap_err();
    assert_eq!(e.class(), Some(&ErrorClass::GenericError), "{e}");
    // ...and the typed path refuses before sending.
    let e = qmp.execute(Request::new(&QueryStatus).oob()).unwrap_err();
    assert!(matches!(e, Error::OobUnavailable { .. }), "{e}");
    // Without negotiation: fails fast.
    let vm2 = start(Launcher::qemu());
    let plain = d
        .connect_with(&vm2, &Options::new().oob(OobPolicy::Never))
        .unwrap();
    assert!(!plain.oob_enabled());
    let e = plain.execute(Request::new(&QueryYank).oob()).unwrap_err();
    assert!(matches!(e, Error::OobUnavailable { .. }), "{e}");
    assert!(plain.execute(Request::new(&QueryYank)).is_ok());
}

fn pretty_printed_monitor(d: &impl Driver) {
    let vm = start(Launcher::qemu().pretty(true));
    let qmp = d.connect(&vm).unwrap();
    assert_eq!(qmp.greeting().unwrap().version.major, 10);
    assert!(
        qmp.greeting().unwrap().json.contains('\n'),
        "greeting is multi-line"
    );
    qmp.execute(&Stop).unwrap();
    assert_eq!(qmp.execute(&QueryStatus).unwrap().status, "paused");
    assert_eq!(qmp.poll_event().unwrap().unwrap().name(), "STOP");
    let schema = qmp.execute(Request::name("query-qmp-schema")).unwrap();
    assert!(schema.get().len() > 200_000);
}

fn oversize_reply_is_an_error_on_that_call_and_the_connection_survives(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let qmp = d
        .connect_with(&vm, &Options::new().max_message(64 * 1024))
        .unwrap();
    let e = qmp.execute(Request::name("query-qmp-schema")).unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 65536 }), "{e}");
    assert_eq!(qmp.execute(&QueryStatus).unwrap().status, "running");
    // The default 10 MiB limit reads the ~240 KB schema.
    let qmp = {
        drop(qmp);
        d.connect(&vm).unwrap()
    };
    assert!(
        qmp.execute(Request::name("query-qmp-schema"))
            .unwrap()
            .get()
            .len()
            > 200_000
    );
}

fn fd_passing_getfd_and_add_fd_with_real_files(d: &impl Driver) {
    use std::os::fd::AsFd;
    let vm = start(Launcher::qemu());
    let qmp = d.connect(&vm).unwrap();
    // getfd, then use the fd: migrate the (empty) machine into it.
    let mig = std::fs::File::create(vm.dir().join("migration.bin")).unwrap();
    qmp.getfd("migfd", mig.as_fd()).unwrap();
    drop(mig);
    qmp.execute(Request::raw(
        "migrate",
        &args(serde_json::json!({"uri": "fd:migfd"})),
    ))
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let st = qmp.execute(Request::name("query-migrate")).unwrap();
        let v: serde_json::Value = serde_json::from_str(st.get()).unwrap();
        if v["status"] == "completed" {
            break;
        }
        assert_ne!(v["status"], "failed", "{v}");
        assert!(
            std::time::Instant::now() < deadline,
            "migration did not complete: {v}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let written = std::fs::metadata(vm.dir().join("migration.bin"))
        .unwrap()
        .len();
    assert!(
        written > 0,
        "QEMU wrote the migration stream into the passed fd"
    );
    // getfd without an fd is QEMU's GenericError.
    let e = qmp
        .execute(Request::raw(
            "getfd",
            &args(serde_json::json!({"fdname": "x"})),
        ))
        .unwrap_err();
    assert_eq!(e.class(), Some(&ErrorClass::GenericError), "{e}");

    // add-fd, then open the fd set as a block node and check its size.
    let path = vm.dir().join("disk.raw");
    // QEMU matches the open flags: the fd must be read-write for a read-write node.
    let disk = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    disk.set_len(1 << 20).unwrap();
    let info = qmp.add_fd(None, Some("disk"), disk.as_fd()).unwrap();
    drop(disk);
    qmp.execute(Request::raw(
        "blockdev-add",
        &args(serde_json::json!({
            "driver": "file", "node-name": "fdnode", "read-only": false,
            "filename": format!("/dev/fdset/{}", info.fdset_id)
        })),
    ))
    .unwrap();
    let nodes = qmp
        .execute(Request::name("query-named-block-nodes"))
        .unwrap();
    let nodes: serde_json::Value = serde_json::from_str(nodes.get()).unwrap();
    let node = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node-name"] == "fdnode")
        .expect("fdnode");
    assert_eq!(node["image"]["virtual-size"], 1 << 20);
}

fn accept_mode_over_tcp_and_unix_and_no_fds_on_tcp(d: &impl Driver) {
    use std::os::fd::AsFd;
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("qmp-accept-{}-{}", std::process::id(), d.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let upath = dir.join("listen.sock");
    let _ = std::fs::remove_file(&upath);
    let unix = std::os::unix::net::UnixListener::bind(&upath).unwrap();
    let vm = start(Launcher::qemu().args([
        "-qmp".to_owned(),
        format!("tcp:127.0.0.1:{port},server=off"),
        "-qmp".to_owned(),
        format!("unix:{},server=off", upath.display()),
    ]));
    let t = d.accept_tcp(&tcp, &Options::new()).unwrap();
    let u = d.accept(&unix, &Options::new()).unwrap();
    assert_eq!(t.execute(&QueryStatus).unwrap().status, "running");
    assert_eq!(u.execute(&QueryStatus).unwrap().status, "running");
    let f = std::fs::File::open("/dev/null").unwrap();
    let e = t.getfd("x", f.as_fd()).unwrap_err();
    assert!(matches!(e, Error::FdPassingUnsupported { .. }), "{e}");
    assert!(e.to_string().contains("TCP"), "{e}");
    drop(vm);
    let _ = std::fs::remove_dir_all(&dir);
}

fn hmp_helper(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let qmp = d.connect(&vm).unwrap();
    let out = qmp.hmp("info version").unwrap();
    assert!(out.starts_with("10.0.2"), "{out:?}");
    let out = qmp.hmp("info status").unwrap();
    assert!(out.contains("running"), "{out:?}");
}

fn timeout_on_stopped_qemu_then_resync_discards_the_late_reply(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let qmp = d.connect(&vm).unwrap();
    vm.signal(libc::SIGSTOP).unwrap();
    let e = qmp
        .execute(Request::new(&QueryStatus).timeout(Duration::from_millis(300)))
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.outcome_unknown());
    vm.signal(libc::SIGCONT).unwrap();
    // The late reply to the timed-out call comes first and is discarded by id.
    qmp.execute(&Stop).unwrap();
    assert_eq!(qmp.execute(&QueryStatus).unwrap().status, "paused");
    assert_eq!(qmp.stats().discarded_replies, 1);
}

fn qemu_killed_mid_command_is_outcome_unknown(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let qmp = d.connect(&vm).unwrap();
    vm.signal(libc::SIGSTOP).unwrap();
    let pid = vm.pid() as libc::pid_t;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: kill(2) on the test's own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let e = qmp
        .execute(Request::new(&QueryStatus).timeout(Duration::from_secs(10)))
        .unwrap_err();
    killer.join().unwrap();
    assert!(
        matches!(&e, Error::Disconnected { command: Some(c) } if c == "query-status"),
        "{e}"
    );
    assert!(e.outcome_unknown());
    assert!(e.to_string().contains("outcome unknown"), "{e}");
}

fn second_client_on_a_busy_monitor_times_out_then_gets_in(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let first = d.connect(&vm).unwrap();
    let e = d
        .connect_with(
            &vm,
            &Options::new().connect_timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("another client"), "{e}");
    // Fill the listen backlog with idle connections: connecting still honours the
    // deadline instead of blocking in connect(2).
    let idle: Vec<_> = (0..4)
        .filter_map(|_| nonblocking_connect(vm.socket_path()))
        .collect();
    let t = std::time::Instant::now();
    let e = d
        .connect_with(
            &vm,
            &Options::new().connect_timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(
        e.outcome_unknown() || matches!(e, Error::Connect { .. }),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    drop(idle);
    drop(first);
    let second = d.connect(&vm).unwrap();
    assert!(second.execute(&QueryStatus).is_ok());
}

fn device_del_waits_for_device_deleted(d: &impl Driver) {
    let vm = start(Launcher::qemu().args([
        "-machine",
        "q35",
        "-S",
        "-device",
        "virtio-scsi-pci,id=scsi0",
    ]));
    let qmp = d.connect(&vm).unwrap();
    qmp.execute(Request::raw(
        "blockdev-add",
        &args(serde_json::json!({"driver": "null-co", "node-name": "null0"})),
    ))
    .unwrap();
    qmp.execute(Request::raw("device_add", &args(serde_json::json!({"driver": "scsi-hd", "id": "disk0", "drive": "null0", "bus": "scsi0.0"}))))
    .unwrap();
    let filter =
        EventFilter::name("DEVICE_DELETED").matching(|e| e.data_value()["device"] == "disk0");
    let (_, ev) = qmp
        .execute(
            Request::new(&DeviceDel { id: "disk0".into() })
                .timeout(Duration::from_secs(5))
                .wait_for(filter),
        )
        .unwrap();
    match ev.decode::<Ev>().unwrap() {
        Ev::DeviceDeleted { device, path } => {
            assert_eq!(device.as_deref(), Some("disk0"));
            assert!(path.contains("disk0"), "{path}");
        }
        other => panic!("{other:?}"),
    }
}

fn storage_daemon(d: &impl Driver) {
    let qsd = start(Launcher::storage_daemon());
    let qmp = d.connect(&qsd).unwrap();
    assert_eq!(qmp.greeting().unwrap().version.major, 10);
    qmp.execute(Request::raw(
        "blockdev-add",
        &args(serde_json::json!({"driver": "null-co", "node-name": "n0", "size": 4096})),
    ))
    .unwrap();
    let nodes = qmp
        .execute(Request::name("query-named-block-nodes"))
        .unwrap();
    assert!(nodes.get().contains("\"n0\""));
    // qemu-storage-daemon has no runstate: query-status is not there.
    let e = qmp.execute(&QueryStatus).unwrap_err();
    assert_eq!(e.class(), Some(&ErrorClass::CommandNotFound), "{e}");
}

#[test]
fn missing_binary_says_how_to_install() {
    let e = Launcher::qemu()
        .binary("/nonexistent/qemu-system-x86_64")
        .spawn()
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::MissingBinary { .. }), "{msg}");
    assert!(msg.contains("apt-get install -y --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-utils qemu-guest-agent"), "{msg}");
}

#[test]
fn qemu_that_exits_at_start_reports_its_stderr() {
    let e = Launcher::qemu().arg("-no-such-option").spawn().unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Launch { .. }), "{msg}");
    assert!(
        msg.contains("exited early") && msg.contains("no-such-option"),
        "{msg}"
    );
}

fn tcp_endpoint_connect(d: &impl Driver) {
    // Find a free port, then let QEMU listen on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let vm = start(Launcher::qemu().args([
        "-qmp".to_owned(),
        format!("tcp:127.0.0.1:{port},server=on,wait=off"),
    ]));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let qmp = loop {
        match d.connect_to(Endpoint::Tcp(format!("127.0.0.1:{port}")), &Options::new()) {
            Ok(q) => break q,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(qmp.execute(&QueryStatus).unwrap().status, "running");
    drop(vm);
}

fn from_an_fd_handed_to_qemu_with_add_client(d: &impl Driver) {
    use std::os::fd::AsFd;
    // A socketpair: one end goes to QEMU (getfd + add_client onto a spare monitor
    // chardev), the other becomes a client through Endpoint::Fd / from_stream.
    let spare = "spare";
    let vm = start(Launcher::qemu().args([
        "-chardev".to_owned(),
        format!("socket,id={spare},path=spare.sock,server=on,wait=off"),
        "-mon".to_owned(),
        format!("chardev={spare},mode=control"),
    ]));
    let qmp = d.connect(&vm).unwrap();
    qmp.execute(&QueryStatus).unwrap(); // QEMU is past its start-up: all chardevs exist
    assert!(
        vm.dir().join("spare.sock").exists(),
        "relative paths land in the private dir"
    );
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    qmp.getfd("pair", theirs.as_fd()).unwrap();
    drop(theirs);
    qmp.execute(Request::raw(
        "add_client",
        &args(serde_json::json!({"protocol": spare, "fdname": "pair"})),
    ))
    .unwrap();
    let second = d.connect_to(ours.into(), &Options::new()).unwrap();
    assert_eq!(second.greeting().unwrap().version.major, 10);
    assert_eq!(second.execute(&QueryStatus).unwrap().status, "running");
}

fn partial_write_on_timeout_then_qemu_resyncs(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let qmp = d.connect(&vm).unwrap();
    vm.signal(libc::SIGSTOP).unwrap();
    // Bigger than the socket buffer: the write itself times out half-way.
    let big = "x".repeat(600_000);
    let e = qmp
        .execute(
            Request::raw(
                "human-monitor-command",
                &args(serde_json::json!({"command-line": big})),
            )
            .timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    vm.signal(libc::SIGCONT).unwrap();
    // The next request starts with a control byte, so QEMU drops the partial one
    // (answering with an id-less parse error, which is discarded).
    let st = qmp
        .execute(Request::new(&QueryStatus).timeout(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(st.status, "running");
    assert!(qmp.stats().discarded_replies >= 1);
}

/// A non-blocking connect (a blocking one would hang on a full backlog).
fn nonblocking_connect(path: &std::path::Path) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain libc socket calls on a sockaddr_un built here; fd checked.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
        assert!(fd >= 0);
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(path.as_os_str().as_bytes()) {
            *d = *s as libc::c_char;
        }
        let r = libc::connect(
            fd,
            (&addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        );
        (r == 0).then_some(owned)
    }
}

fn generated_api_commands_and_events(d: &impl Driver) {
    use qmp_types::qmp::{self, commands as c};
    let vm = start(Launcher::qemu().args([
        "-machine",
        "q35",
        "-S",
        "-device",
        "virtio-scsi-pci,id=scsi0",
    ]));
    let qmp = d.connect(&vm).unwrap();
    let v = qmp.execute(&c::QueryVersion).unwrap();
    assert_eq!((v.qemu.major, v.qemu.minor), (10, 0));
    assert_eq!(
        qmp.execute(&c::QueryStatus).unwrap().status,
        qmp::RunState::Prelaunch
    );
    // Typed execute-then-wait on a typed event.
    let resumed = EventFilter::of::<qmp::events::Resume>();
    qmp.execute(
        Request::new(&c::Cont)
            .timeout(Duration::from_secs(5))
            .wait_for(resumed),
    )
    .unwrap();
    qmp.execute(&c::Stop).unwrap();
    let stop = qmp
        .poll_event()
        .unwrap()
        .unwrap()
        .decode::<qmp::Event>()
        .unwrap();
    assert!(matches!(stop, qmp::Event::Stop(..)), "{stop:?}");
    // Out-of-band with the generated command (allow-oob in the schema).
    let yank = qmp.execute(Request::new(&c::QueryYank).oob()).unwrap();
    assert!(!yank.is_empty());
    // Typed errors.
    let e = qmp
        .execute(&c::DeviceDel { id: "nope".into() })
        .unwrap_err();
    assert_eq!(e.class(), Some(&ErrorClass::DeviceNotFound));
    // Hot-unplug with the typed DEVICE_DELETED.
    qmp.execute(&c::BlockdevAdd(
        serde_json::from_value(serde_json::json!({"driver": "null-co", "node-name": "n0"}))
            .unwrap(),
    ))
    .unwrap();
    qmp.execute(Request::raw(
        "device_add",
        &args(serde_json::json!({"driver": "scsi-hd", "id": "sd0", "drive": "n0"})),
    ))
    .unwrap();
    // Typed: subscribed by type, decoded once, handed out with its timestamp.
    let deleted = EventFilter::of::<qmp::events::DeviceDeleted>()
        .matching(|(d, _)| d.device.as_deref() == Some("sd0"));
    let (_, (d, ts)) = qmp
        .execute(
            Request::new(&c::DeviceDel { id: "sd0".into() })
                .timeout(Duration::from_secs(5))
                .wait_for(deleted),
        )
        .unwrap();
    assert!(d.path.ends_with("sd0"), "{}", d.path);
    assert!(ts.seconds > 0);
    let hmp = qmp
        .execute(&c::HumanMonitorCommand {
            command_line: "info status".into(),
            cpu_index: None,
        })
        .unwrap();
    assert!(hmp.contains("paused"), "{hmp:?}");
}

#[test]
fn launcher_kills_and_reaps_on_drop_and_removes_its_dir() {
    let vm = start(Launcher::qemu());
    let pid = vm.pid() as libc::pid_t;
    let dir = vm.dir().to_owned();
    assert!(dir.exists());
    drop(vm);
    // Reaped (not a zombie): the pid is gone.
    // SAFETY: signal 0 only checks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "QEMU {pid} still exists after drop");
    assert!(!dir.exists(), "{} not removed", dir.display());
}
