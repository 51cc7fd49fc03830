//! The tokio clients against a scripted fake server, for the faults QEMU cannot be
//! made to produce (the blocking clients' versions are `qmp-types/tests/fake_server.rs`):
//! EOF mid-command, bad greetings, refused negotiation, garbage, oversize messages,
//! the guest agent's stale output and reply-less commands.

#![cfg(feature = "tokio")]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use qmp_client::tokio::{Qga, Qmp};
use qmp_client::{Endpoint, Error, Options, Request};

const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\r\n";

/// The server side of one connection.
struct Peer {
    s: UnixStream,
}

impl Peer {
    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    fn send_byte_by_byte(&mut self, bytes: &[u8]) {
        for b in bytes {
            // The client may hang up after the final `}` (before the CRLF).
            if self.s.write_all(std::slice::from_ref(b)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Reads one request object (skipping control bytes between objects).
    fn recv(&mut self) -> serde_json::Value {
        let mut out = Vec::new();
        let (mut depth, mut in_str, mut esc) = (0u32, false, false);
        let mut b = [0u8];
        loop {
            if self.s.read(&mut b).unwrap() == 0 {
                return serde_json::Value::Null;
            }
            let c = b[0];
            if depth == 0 && c != b'{' {
                continue;
            }
            out.push(c);
            if in_str {
                match (esc, c) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return serde_json::from_slice(&out).unwrap();
                    }
                }
                _ => {}
            }
        }
    }

    /// Greeting, then answers `qmp_capabilities`.
    fn handshake(&mut self) {
        self.send(GREETING);
        let caps = self.recv();
        assert_eq!(caps["execute"], "qmp_capabilities");
        self.reply(&caps, "{}");
    }

    fn reply(&mut self, req: &serde_json::Value, ret: &str) {
        let msg = format!("{{\"return\": {ret}, \"id\": {}}}\r\n", req["id"]);
        self.send(msg.as_bytes());
    }
}

/// Runs `script` as the server of one connection; returns the socket path.
fn serve(script: impl FnOnce(&mut Peer) + Send + 'static) -> (PathBuf, JoinHandle<()>) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "qmp-fake-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let h = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut peer = Peer { s };
        script(&mut peer);
        // Keep the socket open until the client hangs up.
        let mut sink = [0u8; 256];
        while matches!(peer.s.read(&mut sink), Ok(n) if n > 0) {}
        let _ = std::fs::remove_dir_all(&dir);
    });
    (path, h)
}

fn opts() -> Options {
    Options::new()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Some(Duration::from_secs(5)))
}

async fn connect(path: &std::path::Path) -> Qmp {
    Qmp::connect(Endpoint::Unix(path.to_owned()), &opts())
        .await
        .unwrap()
}

const STATUS: &str = "{\"status\": \"running\", \"running\": true}";

#[tokio::test]
async fn garbage_and_oversize_fail_the_oldest_call_then_it_recovers() {
    let (path, h) = serve(|p| {
        p.handshake();
        let q = p.recv();
        p.send(b"this is not json\r\n");
        p.reply(&q, STATUS);
        let q = p.recv();
        p.send(
            format!(
                "{{\"event\": \"BIG\", \"data\": {{\"x\": \"{}\"}}}}\r\n",
                "a".repeat(10_000)
            )
            .as_bytes(),
        );
        p.reply(&q, STATUS);
        let q = p.recv();
        p.reply(&q, STATUS);
    });
    let qmp = Qmp::connect(Endpoint::Unix(path), &opts().max_message(4096))
        .await
        .unwrap();
    let e = qmp
        .execute(Request::name("query-status"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e}");
    let e = qmp
        .execute(Request::name("query-status"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 4096 }), "{e}");
    let r = qmp.execute(Request::name("query-status")).await.unwrap();
    assert_eq!(r.get(), STATUS);
    assert_eq!(qmp.stats().discarded_replies, 2);
    drop(qmp);
    h.join().unwrap();
}

#[tokio::test]
async fn eof_mid_command_and_bad_greetings() {
    let (path, h) = serve(|p| {
        p.handshake();
        let _ = p.recv();
        p.s.shutdown(std::net::Shutdown::Both).unwrap();
    });
    let qmp = connect(&path).await;
    let e = qmp
        .execute(Request::name("query-status"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Disconnected { command: Some(c) } if c == "query-status"),
        "{e}"
    );
    qmp.closed().await;
    h.join().unwrap();

    let (path, h) = serve(|p| p.send(b"{\"QMP\": {\"version\": 5}}\r\n"));
    let e = Qmp::connect(Endpoint::Unix(path), &opts())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Greeting(_)), "{e}");
    h.join().unwrap();

    let (path, h) = serve(|p| {
        p.send(GREETING);
        let caps = p.recv();
        p.send(format!("{{\"error\": {{\"class\": \"CommandNotFound\", \"desc\": \"no\"}}, \"id\": {}}}\r\n", caps["id"]).as_bytes());
    });
    let e = Qmp::connect(Endpoint::Unix(path), &opts())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Negotiation(_)), "{e}");
    h.join().unwrap();

    let (path, h) = serve(|p| p.s.shutdown(std::net::Shutdown::Both).unwrap());
    let e = Qmp::connect(Endpoint::Unix(path), &opts())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Disconnected { command: None }), "{e}");
    h.join().unwrap();
}

/// Answers one guest-sync-delimited request read from `p`.
fn answer_sync(p: &mut Peer) {
    let sync = p.recv();
    assert_eq!(sync["execute"], "guest-sync-delimited", "{sync}");
    let mut msg = vec![0xFF];
    msg.extend_from_slice(format!("{{\"return\": {}}}\n", sync["arguments"]["id"]).as_bytes());
    let _ = p.s.write_all(&msg);
}

#[tokio::test]
async fn guest_agent_resync_skips_stale_output_and_refuses_oob_and_fds() {
    let (path, h) = serve(|p| {
        p.send(b"{\"return\": 42}\n{\"return\": {\"stale\": tr");
        answer_sync(p);
        let ping = p.recv();
        assert_eq!(ping["execute"], "guest-ping");
        p.send(format!("{{\"return\": {{}}, \"id\": {}}}\n", ping["id"]).as_bytes());
    });
    let qga = Qga::connect(Endpoint::Unix(path), &opts()).await.unwrap();
    qga.execute(Request::name("guest-ping")).await.unwrap();
    let e = qga
        .execute(Request::name("guest-ping").oob())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::OobUnavailable { .. }), "{e}");
    let file = std::fs::File::open("/dev/null").unwrap();
    let fds = [std::os::fd::AsFd::as_fd(&file)];
    let e = qga
        .execute(Request::name("guest-ping").fds(&fds))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::FdPassingUnsupported { .. }), "{e}");
    drop(qga);
    h.join().unwrap();
}

#[tokio::test]
async fn frames_split_byte_by_byte_and_pretty() {
    let (path, h) = serve(|p| {
        p.send_byte_by_byte(GREETING);
        let caps = p.recv();
        p.send_byte_by_byte(format!("{{\"return\": {{}}, \"id\": {}}}\r\n", caps["id"]).as_bytes());
        let q = p.recv();
        let pretty = format!(
            "{{\r\n    \"return\": {{\r\n        \"status\": \"running\"\r\n    }},\r\n    \"id\": {}\r\n}}\r\n",
            q["id"]
        );
        p.send_byte_by_byte(pretty.as_bytes());
    });
    let qmp = connect(&path).await;
    assert_eq!(qmp.greeting().unwrap().package, "fake");
    let r = qmp.execute(Request::name("query-status")).await.unwrap();
    assert!(r.get().contains("running"), "{}", r.get());
    drop(qmp);
    h.join().unwrap();
}
