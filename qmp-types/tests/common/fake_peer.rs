//! A scripted fake QMP server for the faults real QEMU cannot be made to produce:
//! one connection, bytes sent as the script says (`fake_server.rs` runs each script
//! against both drivers); std only.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

pub const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\r\n";

/// The server side of one connection.
pub struct Peer {
    pub s: UnixStream,
}

impl Peer {
    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    pub fn send_byte_by_byte(&mut self, bytes: &[u8]) {
        for b in bytes {
            // The client may hang up after the final `}` (before the CRLF).
            if self.s.write_all(std::slice::from_ref(b)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Reads one request object (skipping control bytes between objects).
    pub fn recv(&mut self) -> serde_json::Value {
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
    pub fn handshake(&mut self) {
        self.send(GREETING);
        let caps = self.recv();
        assert_eq!(caps["execute"], "qmp_capabilities");
        self.reply(&caps, "{}");
    }

    pub fn reply(&mut self, req: &serde_json::Value, ret: &str) {
        let msg = format!("{{\"return\": {ret}, \"id\": {}}}\r\n", req["id"]);
        self.send(msg.as_bytes());
    }
}

/// Runs `script` as the server of one connection; returns the socket path.
pub fn serve(script: impl FnOnce(&mut Peer) + Send + 'static) -> (PathBuf, JoinHandle<()>) {
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
