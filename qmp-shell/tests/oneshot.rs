//! End-to-end tests of one-shot use (`qmp SOCKET COMMAND ...`) against live QEMU
//! 10.0.2 (`qemu-system-x86_64 -machine none`), `qemu-storage-daemon` and `qemu-ga`,
//! including a regression test for each qmp-shell bug in `shared/qemu/clients.md`.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{qmp, qmp_with};

fn sock(peer: &common::Peer) -> &str {
    peer.sock.to_str().expect("utf-8 path")
}

#[test]
fn query_status_table_pretty_and_json() {
    let vm = common::qemu(&[]);
    let r = qmp(&[sock(&vm), "query-status"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("status   running"), "{r:?}");
    let r = qmp(&["--json", sock(&vm), "query-status"]);
    assert_eq!(r.stdout, "{\"running\":true,\"status\":\"running\"}\n");
    let r = qmp(&["-p", sock(&vm), "query-status"]);
    assert!(r.stdout.starts_with("{\n  \"running\": true"), "{r:?}");
    // A raw JSON request passes through.
    let r = qmp(&["--json", sock(&vm), r#"{"execute": "query-kvm"}"#]);
    assert_eq!(r.stdout, "{\"enabled\":false,\"present\":true}\n", "{r:?}");
}

#[test]
fn error_reply_class_and_desc_exit_1() {
    let vm = common::qemu(&[]);
    let r = qmp(&[sock(&vm), "device_del", "id=nope"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("error: DeviceNotFound: "), "{r:?}");
    // Unknown command: QEMU's class, and a close name.
    let r = qmp(&[sock(&vm), "query-stauts"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("error: CommandNotFound"), "{r:?}");
    assert!(r.stderr.contains("did you mean 'query-status'?"), "{r:?}");
}

#[test]
fn validation_before_sending() {
    let vm = common::qemu(&[]);
    let r = qmp(&[sock(&vm), "blockdev-add", "driver=null-co", "node-nam=n1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        r.stderr,
        "qmp: node-nam: unknown argument; did you mean 'node-name'?\nqmp: nothing sent\n"
    );
    let r = qmp(&[
        sock(&vm),
        "blockdev-add",
        "driver=null-co",
        "node-name=n1",
        "size=big",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("size: expected int, found 'big'"),
        "{r:?}"
    );
    // Nothing reached QEMU.
    let r = qmp(&["--json", sock(&vm), "query-named-block-nodes"]);
    assert_eq!(r.stdout, "[]\n", "{r:?}");
}

/// qmp-shell nested every argument after a dotted key into the last object:
/// `driver=raw file.driver=null-co node-name=r2` sent node-name inside `file`.
#[test]
fn regression_dotted_keys_nest_from_the_top() {
    let vm = common::qemu(&[]);
    let r = qmp(&[
        "-v",
        sock(&vm),
        "blockdev-add",
        "driver=raw",
        "file.driver=null-co",
        "file.size=4096",
        "node-name=r2",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stderr,
        "{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"raw\",\"file\":{\"driver\":\"null-co\",\"size\":4096},\"node-name\":\"r2\"}}\n"
    );
    let r = qmp(&["--json", sock(&vm), "query-named-block-nodes"]);
    let nodes: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let r2 = nodes
        .as_array()
        .and_then(|a| a.iter().find(|n| n["node-name"] == "r2"))
        .expect("node r2 at the top level");
    assert_eq!(r2["drv"], "raw");
    assert_eq!(r2["image"]["virtual-size"], 4096);
}

/// qmp-shell kept floats and `null` as strings.
#[test]
fn regression_floats_and_null_are_typed() {
    let vm = common::qemu(&[]);
    // `any` member: the value keeps its look (a float, null).
    let r = qmp(&[
        "-v",
        sock(&vm),
        "qom-set",
        "path=/machine",
        "property=x",
        "value=1.5",
    ]);
    assert!(
        r.stderr.starts_with("{\"execute\":\"qom-set\",\"arguments\":{\"path\":\"/machine\",\"property\":\"x\",\"value\":1.5}}\n"),
        "{r:?}"
    );
    // A `str` or `null` alternate member: null is JSON null, a word is a string.
    let r = qmp(&["-v", sock(&vm), "migrate-set-parameters", "tls-creds=null"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("{\"tls-creds\":null}"), "{r:?}");
    let r = qmp(&["-v", sock(&vm), "migrate-set-parameters", "tls-authz=1234"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("{\"tls-authz\":\"1234\"}"), "{r:?}");
    let r = qmp(&["--json", sock(&vm), "query-migrate-parameters"]);
    assert!(r.stdout.contains("\"tls-authz\":\"1234\""), "{r:?}");
}

/// qmp-shell `-H` crashed (`KeyError: 'return'`) when CPU 0 does not exist.
#[test]
fn regression_hmp_without_cpu() {
    let vm = common::qemu(&[]);
    let r = qmp(&["-H", sock(&vm), "info", "version"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("10.0.2"), "{r:?}");
    let r = qmp(&["-H", sock(&vm), "info", "cpus"]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// qmp-shell `-l LOG` listened on the QMP path and unlinked QEMU's socket.
#[test]
fn regression_log_file_never_touches_the_socket() {
    let vm = common::qemu(&[]);
    let log = vm.dir.join("transcript.log");
    let r = qmp(&["-l", log.to_str().expect("path"), sock(&vm), "query-status"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(vm.sock.exists(), "the QMP socket is still there");
    let text = std::fs::read_to_string(&log).expect("transcript");
    assert_eq!(
        text,
        "-> {\"execute\":\"query-status\"}\n<- {\"return\":{\"status\": \"running\", \"running\": true}}\n"
    );
    // QEMU is still reachable.
    let r = qmp(&[sock(&vm), "query-status"]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// Events are printed with timestamps as they arrive (qmp-shell showed them only on
/// an empty Enter). A second monitor drives `stop`/`cont` until the stream shows them.
#[test]
fn events_stream_as_they_arrive() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let dir = common::temp_dir("events");
    let second = dir.join("second.sock");
    let vm = common::qemu(&[
        "-qmp",
        &format!("unix:{},server=on,wait=off", second.display()),
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_qmp"))
        .args(["--events", sock(&vm)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("qmp --events");
    let mut stdout = child.stdout.take().expect("stdout");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = seen.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        })
    };
    let second = second.to_str().expect("path").to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    // Until the watcher has connected, its events are not ours to see: repeat.
    let both = |s: &str| s.contains(" STOP\n") && s.contains(" RESUME\n");
    while !both(&seen.lock().expect("lock")) {
        assert!(Instant::now() < deadline, "no events: {:?}", seen.lock());
        assert_eq!(qmp(&[&second, "stop"]).code, 0);
        assert_eq!(qmp(&[&second, "cont"]).code, 0);
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let text = seen.lock().expect("lock").clone();
    // `YYYY-MM-DD HH:MM:SS.uuuuuu NAME` (the watcher may have connected mid-pair).
    let first = text
        .lines()
        .find(|l| l.ends_with(" STOP"))
        .expect("a STOP line");
    let (when, name) = first.split_at(26);
    assert_eq!(name, " STOP", "{text}");
    assert!(
        when.as_bytes()[4] == b'-' && when.as_bytes()[10] == b' ' && when.as_bytes()[19] == b'.',
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `--events --timeout` ends by itself (exit 0).
#[test]
fn events_until_timeout() {
    let vm = common::qemu(&[]);
    let start = Instant::now();
    let r = qmp(&["--events", "--timeout", "1", sock(&vm)]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:?}");
    assert!(start.elapsed() >= Duration::from_secs(1));
}

#[test]
fn busy_monitor_says_so_after_a_second() {
    let vm = common::qemu(&[]);
    let holder = UnixStream::connect(&vm.sock).expect("first client");
    let mut line = String::new();
    BufReader::new(&holder)
        .read_line(&mut line)
        .expect("greeting for the first client");
    let start = Instant::now();
    let r = qmp(&["--timeout", "2.5", sock(&vm), "query-status"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .contains("monitor is probably busy with another client"),
        "{r:?}"
    );
    assert!(start.elapsed() >= Duration::from_secs(2), "{r:?}");
    drop(holder);
}

#[test]
fn oob_per_command() {
    let vm = common::qemu(&[]);
    let r = qmp(&["-v", "--oob", sock(&vm), "query-status"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with("{\"exec-oob\":\"query-status\"}\n"),
        "{r:?}"
    );
    assert!(r.stderr.contains("does not support OOB"), "{r:?}");
    // migrate-pause allows OOB: QEMU runs it and answers about the migration state.
    let r = qmp(&["--oob", sock(&vm), "migrate-pause"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("postcopy"), "{r:?}");
}

#[test]
fn fd_passing() {
    use std::os::unix::process::CommandExt;
    let vm = common::qemu(&[]);
    let file = std::fs::File::create(vm.dir.join("passed")).expect("file");
    let raw = std::os::fd::AsRawFd::as_raw_fd(&file);
    let r = qmp_with(
        &[
            "--json",
            "--fd",
            "5",
            sock(&vm),
            "add-fd",
            "opaque=from-qmp",
        ],
        |cmd| {
            // SAFETY: dup2 and fcntl in the child before exec, async-signal-safe. When the
            // file already is fd 5, dup2 keeps its close-on-exec flag: clear it.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(raw, 5) < 0 || libc::fcntl(5, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        },
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert!(v["fdset-id"].is_i64() && v["fd"].is_i64(), "{r:?}");
    // Without the fd QEMU refuses.
    let r = qmp(&[sock(&vm), "add-fd"]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = qmp(&["--fd", "99", sock(&vm), "add-fd"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not an open file descriptor"), "{r:?}");
}

#[test]
fn tcp_endpoint() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let vm = common::qemu(&["-qmp", &format!("tcp:127.0.0.1:{port},server=on,wait=off")]);
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = qmp(&["--json", &addr, "query-status"]);
        if r.code == 0 {
            assert_eq!(r.stdout, "{\"running\":true,\"status\":\"running\"}\n");
            break;
        }
        assert!(Instant::now() < deadline, "{r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(vm);
}

#[test]
fn skip_negotiation() {
    let vm = common::qemu(&[]);
    let r = qmp(&["-N", "--json", sock(&vm), "qmp_capabilities"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "{}\n");
}

#[test]
fn transaction_one_line() {
    let vm = common::qemu(&[]);
    let r = qmp(&[sock(&vm), "blockdev-add", "driver=null-co", "node-name=d"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = qmp(&[
        sock(&vm),
        "transaction(",
        "block-dirty-bitmap-add",
        "node=d",
        "name=b1",
        ";",
        "block-dirty-bitmap-add",
        "node=d",
        "name=b2",
        "persistent=false",
        ")",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = qmp(&["--json", sock(&vm), "query-named-block-nodes"]);
    assert!(
        r.stdout.contains("\"name\":\"b1\"") && r.stdout.contains("\"name\":\"b2\""),
        "{r:?}"
    );
}

#[test]
fn help_from_qemu_docs() {
    let vm = common::qemu(&[]);
    let schema = common::shared_schema("qapi");
    let r = qmp(&[
        "--schema",
        schema.to_str().expect("path"),
        sock(&vm),
        "help",
        "query-status",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.starts_with("query-status -> StatusInfo\n"),
        "{r:?}"
    );
    assert!(r.stdout.contains("Query the run status of the VM"), "{r:?}");
    // Without documentation: the live schema's view.
    let r = qmp(&[sock(&vm), "help", "device_del"]);
    assert!(r.stdout.contains("id: str"), "{r:?}");
}

/// A command that QEMU documents but that this peer does not have (the storage
/// daemon has no `query-status`) is reported as such.
#[test]
fn storage_daemon_missing_command() {
    let qsd = common::storage_daemon();
    let schema = common::shared_schema("qapi");
    let r = qmp(&["--json", sock(&qsd), "query-block-exports"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "[]\n"), "{r:?}");
    let r = qmp(&[
        "--schema",
        schema.to_str().expect("path"),
        sock(&qsd),
        "query-status",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("documented by QEMU, but the connected QEMU does not have it"),
        "{r:?}"
    );
    let r = qmp(&[
        "--schema",
        schema.to_str().expect("path"),
        sock(&qsd),
        "stop",
        "x=1",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("command 'stop' is documented but the connected QEMU does not have it"),
        "{r:?}"
    );
}

#[test]
fn guest_agent() {
    let ga = common::guest_agent();
    let r = qmp(&["--qga", "--json", sock(&ga), "guest-ping"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "{}\n"), "{r:?}");
    let r = qmp(&["--qga", sock(&ga), "guest-info"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\"version\": \"10.0.2"), "{r:?}");
    // Validation from QEMU's guest agent schema, limited to what the agent enables.
    let schema = common::shared_schema("qga");
    let r = qmp(&[
        "--qga",
        "--schema",
        schema.to_str().expect("path"),
        sock(&ga),
        "guest-pnig",
        "x=1",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("did you mean 'guest-ping'?"), "{r:?}");
    let r = qmp(&[
        "--qga",
        "--schema",
        schema.to_str().expect("path"),
        sock(&ga),
        "guest-sync",
        "id=abc",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("id: expected int, found 'abc'"), "{r:?}");
    let r = qmp(&[
        "--qga",
        "--schema",
        schema.to_str().expect("path"),
        "--json",
        sock(&ga),
        "guest-sync",
        "id=42",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "42\n"), "{r:?}");
}

/// The introspection is cached per QEMU build (by greeting); a stale cache that
/// rejects a command is re-checked against the live schema before reporting.
#[test]
fn schema_cache_and_stale_cache() {
    let vm = common::qemu(&[]);
    let cache = vm.dir.join("cache");
    let cache_s = cache.to_str().expect("path").to_owned();
    let run = |args: &[&str]| {
        common::qmp_with(args, |c| {
            c.env("QMP_CACHE_DIR", &cache_s);
        })
    };
    let r = run(&[sock(&vm), "device_del", "id=x"]);
    assert_eq!(r.code, 1, "{r:?}");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache dir")
        .flatten()
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // A cache from "another build" that lacks the command: the live schema decides.
    std::fs::write(files[0].path(), "[]").expect("overwrite");
    let r = run(&[sock(&vm), "device_del", "id=x"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("DeviceNotFound"), "{r:?}");
    // And the cache was refreshed.
    assert!(std::fs::metadata(files[0].path()).expect("file").len() > 100_000);
    let r = run(&[sock(&vm), "device_del", "idd=x"]);
    assert_eq!(r.code, 2, "{r:?}");
}

/// No client blocks forever: a stopped QEMU accepts the connection but never greets.
#[test]
fn timeout_against_a_stopped_qemu() {
    let vm = common::qemu(&[]);
    let pid = vm.child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let start = Instant::now();
    let r = qmp(&["--timeout", "1.5", sock(&vm), "query-status"]);
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("timed out"), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(5), "{r:?}");
    let r = qmp(&[sock(&vm), "query-status"]);
    assert_eq!(r.code, 0, "{r:?}");
}
