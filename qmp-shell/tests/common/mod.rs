//! Test helpers: a private QEMU started on demand and a minimal std-only QMP exchange
//! to fetch its `query-qmp-schema` reply (QEMU-derived data is never committed).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A QEMU process (or storage daemon, or guest agent) killed and reaped on drop.
pub struct Peer {
    /// The process.
    pub child: Child,
    /// Its private directory.
    pub dir: PathBuf,
    /// The socket it listens on.
    pub sock: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh private directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "qmp-shell-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn require(binary: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(binary).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{binary} is not installed: this live test needs QEMU 10.0.2 \
         (Debian: apt-get install qemu-system-x86 qemu-utils qemu-guest-agent)"
    );
}

fn wait_for_socket(child: &mut Child, sock: &Path, greets: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    // The file appears before the peer listens: wait until a connection succeeds and,
    // for a QMP monitor, until it greets (the monitor is then fully up). The probe
    // connection is closed at once.
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("peer exited early: {status}");
        }
        assert!(Instant::now() < deadline, "no socket at {}", sock.display());
        if let Ok(probe) = UnixStream::connect(sock) {
            if !greets {
                return;
            }
            let _ = probe.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            if BufReader::new(&probe).read_line(&mut line).is_ok() && line.contains("QMP") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts `qemu-system-x86_64 -machine none` with a QMP socket (`extra` appended).
pub fn qemu(extra: &[&str]) -> Peer {
    require("qemu-system-x86_64");
    let dir = temp_dir("qemu");
    let sock = dir.join("qmp.sock");
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-qmp",
        ])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start qemu-system-x86_64");
    wait_for_socket(&mut child, &sock, true);
    Peer { child, dir, sock }
}

/// Starts `qemu-storage-daemon` with a QMP monitor.
pub fn storage_daemon() -> Peer {
    require("qemu-storage-daemon");
    let dir = temp_dir("qsd");
    let sock = dir.join("qmp.sock");
    let mut child = Command::new("qemu-storage-daemon")
        .arg("--chardev")
        .arg(format!(
            "socket,id=m,path={},server=on,wait=off",
            sock.display()
        ))
        .args(["--monitor", "chardev=m"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start qemu-storage-daemon");
    wait_for_socket(&mut child, &sock, true);
    Peer { child, dir, sock }
}

/// Starts `qemu-ga` on the host listening on a unix socket.
pub fn guest_agent() -> Peer {
    require("qemu-ga");
    let dir = temp_dir("qga");
    let sock = dir.join("qga.sock");
    let mut child = Command::new("qemu-ga")
        .args(["-m", "unix-listen", "-p"])
        .arg(&sock)
        .arg("-t")
        .arg(&dir)
        .arg("--allow-rpcs=guest-sync,guest-sync-delimited,guest-ping,guest-info,guest-get-time")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start qemu-ga");
    wait_for_socket(&mut child, &sock, false);
    Peer { child, dir, sock }
}

/// Sends `requests` after negotiating and returns the non-event reply lines.
pub fn exchange(sock: &Path, requests: &[&str]) -> Vec<String> {
    let stream = UnixStream::connect(sock).expect("connect to QMP");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    let mut replies = Vec::new();
    for req in std::iter::once(&r#"{"execute":"qmp_capabilities"}"#).chain(requests) {
        writer.write_all(req.as_bytes()).expect("write");
        writer.write_all(b"\n").expect("write");
        loop {
            line.clear();
            if let Err(e) = reader.read_line(&mut line) {
                panic!("no reply to {req}: {e}; got {line:?}");
            }
            if !line.starts_with("{\"event\"") {
                break;
            }
        }
        replies.push(line.trim_end().to_owned());
    }
    replies.remove(0);
    replies
}

/// The live `query-qmp-schema` reply of QEMU 10.0.2 (`return` value), fetched once.
pub fn introspection() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let peer = qemu(&[]);
        let reply = exchange(&peer.sock, &[r#"{"execute":"query-qmp-schema"}"#]);
        let mut v: serde_json::Value = serde_json::from_str(&reply[0]).expect("schema JSON");
        v["return"].take()
    })
}

/// The shell's schema built from the live reply.
pub fn schema() -> &'static qmp_shell::schema::Schema {
    static SCHEMA: OnceLock<qmp_shell::schema::Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        qmp_shell::schema::Schema::from_introspection(introspection()).expect("valid schema")
    })
}

/// The fixture folder `tests/data/<name>`.
pub fn data_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The `*.qmp` fixture files of a folder, sorted.
pub fn fixtures(name: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir(name))
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "qmp"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {name}");
    files
}

/// The cases of a fixture: one per line, `\` at the end of a line continues it on the
/// next (joined with a newline); blank lines and `#` comments are skipped.
pub fn cases(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if cur.is_empty() && (line.trim().is_empty() || line.starts_with('#')) {
            continue;
        }
        if let Some(l) = line.strip_suffix('\\') {
            cur.push_str(l);
            cur.push('\n');
        } else {
            cur.push_str(line);
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

/// What a run of the `qmp` binary produced.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `qmp` with `args` (and extra setup of the command), killing it after 20 s.
pub fn qmp_with(args: &[&str], setup: impl FnOnce(&mut Command)) -> Run {
    let home = temp_dir("home");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qmp"));
    cmd.args(args)
        .env("HOME", &home)
        .env("QMP_HISTORY", home.join("history"))
        .env_remove("QMP_SCHEMA")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    setup(&mut cmd);
    let child = cmd.spawn().expect("run qmp");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(Duration::from_secs(20)).is_err() {
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
        panic!("qmp {args:?} did not finish within 20 s");
    }
    let out = waiter.join().expect("waiter").expect("output");
    let _ = std::fs::remove_dir_all(&home);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `qmp` with `args`.
pub fn qmp(args: &[&str]) -> Run {
    qmp_with(args, |_| {})
}

/// The QAPI schema of QEMU 10.0.2 from the shared reference folder
/// (`$QAPI_SHARED_DIR`, default `../shared/qemu` beside the repository).
pub fn shared_schema(sub: &str) -> PathBuf {
    let base = std::env::var_os("QAPI_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/qemu"));
    let p = base.join("10.0.2").join(sub).join("qapi-schema.json");
    assert!(p.is_file(), "QEMU's schema is not at {}", p.display());
    p
}
