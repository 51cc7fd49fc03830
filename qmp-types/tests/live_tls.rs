//! QMP over TLS against real QEMU (`qmp_types::client::tls`): a QEMU launched with a
//! `tls-creds-x509` monitor (`verify-peer=on`) and certificates made per instance by
//! `openssl`; the success path with the generated typed commands, and each refusal, every
//! one a typed error within the deadline.
//!
//! QEMU refuses to start with an expired certificate of its own, so the expired case
//! runs against `openssl s_server` presenting one signed by the same CA.
//!
//! The success path runs on both drivers (`NAME::blocking`, `NAME::tokio`: the relay's
//! plain socket serves either client); the refusals happen before any client exists.

#![cfg(feature = "tls")]

#[macro_use]
mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Driver, QmpClient};
use qmp_types::client::tls::{self, CertDir, Credentials, Error};
use qmp_types::client::{Launcher, Options};
use qmp_types::qmp::{self, commands as c};

const DEADLINE: Duration = Duration::from_secs(3);

dual_tests!(typed_commands_over_tls);

fn tls_qemu() -> tls::TlsQemu {
    tls::launch(Launcher::qemu().args(["-S"])).expect("QEMU with a TLS monitor")
}

/// Runs `f`, checking it returns within the deadline (plus scheduling slack: a loaded
/// 2-core machine can lose a second; a hang would take far longer).
fn timed<T>(f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let r = f();
    assert!(
        start.elapsed() < DEADLINE + Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    r
}

fn typed_commands_over_tls(d: &impl Driver) {
    let vm = tls_qemu();
    let stream = vm.connect_tls(DEADLINE).unwrap();
    let qmp = d
        .connect_to(stream.relay().unwrap().into(), &Options::new())
        .unwrap();
    assert_eq!(qmp.greeting().unwrap().version.major, 10);
    let status = qmp.execute(&c::QueryStatus).unwrap();
    assert_eq!(status.status, qmp::RunState::Prelaunch);
    qmp.execute(&c::Cont).unwrap();
    assert!(qmp.execute(&c::QueryStatus).unwrap().running);

    // By name too ("localhost" is in the certificate), and read as a plain stream, once
    // the first connection is closed (a QEMU chardev serves one client at a time).
    drop(qmp);
    let creds = vm.certs.credentials().unwrap();
    let mut direct = tls::connect(&vm.addr.to_string(), "localhost", &creds, DEADLINE).unwrap();
    let mut greeting = [0u8; 7];
    direct.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, br#"{"QMP":"#);
}

#[test]
fn refuses_a_server_signed_by_another_ca() {
    let vm = tls_qemu();
    let other = CertDir::generate().unwrap();
    let creds = other.credentials().unwrap();
    match timed(|| tls::connect(&vm.addr.to_string(), "127.0.0.1", &creds, DEADLINE)) {
        Err(Error::Untrusted { reason, .. }) => {
            assert!(reason.contains("UnknownIssuer"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn refuses_a_wrong_name_or_ip() {
    let vm = tls_qemu();
    let creds = vm.certs.credentials().unwrap();
    for name in ["qemu.example", "127.0.0.2"] {
        match timed(|| tls::connect(&vm.addr.to_string(), name, &creds, DEADLINE)) {
            Err(Error::WrongName { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// `openssl s_server` presenting `NAME-cert.pem` of `certs`; killed on drop.
struct SServer(Child, u16);

impl SServer {
    fn start(certs: &CertDir, name: &str) -> SServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-accept",
                &format!("127.0.0.1:{port}"),
            ])
            .args([
                "-cert",
                &format!("{name}-cert.pem"),
                "-key",
                &format!("{name}-key.pem"),
            ])
            .current_dir(certs.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s_server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        SServer(child, port)
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn refuses_an_expired_certificate() {
    let certs = CertDir::generate().unwrap();
    certs.issue("expired", "serverAuth", -1).unwrap();
    // QEMU itself will not use it as its own.
    let old = CertDir::generate().unwrap();
    old.issue("server", "serverAuth", -1).unwrap();
    let creds_arg = format!(
        "tls-creds-x509,id=old,dir={},endpoint=server,verify-peer=on",
        old.path().display()
    );
    let refused = Launcher::qemu()
        .args(["-object", &creds_arg])
        .args([
            "-chardev",
            "socket,id=m,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=old",
        ])
        .args(["-mon", "chardev=m,mode=control"])
        .spawn();
    let message = refused.map(|_| ()).unwrap_err().to_string();
    assert!(message.contains("expired"), "{message}");
    let server = SServer::start(&certs, "expired");
    let creds = certs.credentials().unwrap();
    match timed(|| {
        tls::connect(
            &format!("127.0.0.1:{}", server.1),
            "127.0.0.1",
            &creds,
            DEADLINE,
        )
    }) {
        Err(Error::Expired { reason, .. }) => assert!(reason.contains("Expired"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // The same server with a valid certificate is accepted up to the greeting, which
    // s_server never sends: the deadline is the greeting's.
    let valid = SServer::start(&certs, "server");
    match timed(|| {
        tls::connect(
            &format!("127.0.0.1:{}", valid.1),
            "127.0.0.1",
            &creds,
            DEADLINE,
        )
    }) {
        Err(Error::Timeout { stage, .. }) => assert_eq!(stage, "greeting"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn refuses_a_plain_text_server() {
    let vm = Launcher::qemu()
        .args([
            "-chardev",
            "socket,id=plain0,host=127.0.0.1,port=0,server=on,wait=off",
        ])
        .args(["-mon", "chardev=plain0,mode=control"])
        .spawn()
        .unwrap();
    let list = vm
        .connect()
        .unwrap()
        .execute(qmp_types::client::Request::name("query-chardev"))
        .unwrap();
    let list: serde_json::Value = serde_json::from_str(list.get()).unwrap();
    let file = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == "plain0")
        .unwrap()["filename"]
        .as_str()
        .unwrap()
        .to_owned();
    let addr = file
        .split("tcp:")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let certs = CertDir::generate().unwrap();
    let creds = certs.credentials().unwrap();
    match timed(|| tls::connect(&addr, "127.0.0.1", &creds, DEADLINE)) {
        Err(Error::NotTls { .. }) => {}
        other => panic!("{other:?}"),
    }
    // A server that accepts and says nothing: the handshake's deadline.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    match timed(|| tls::connect(&addr, "127.0.0.1", &creds, DEADLINE)) {
        Err(Error::Timeout { stage, after, .. }) => {
            assert_eq!((stage, after), ("handshake", DEADLINE));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_server_refuses_a_client_certificate_of_another_ca() {
    let vm = tls_qemu();
    let other = CertDir::generate().unwrap();
    let creds = Credentials::from_pem_files(
        vm.certs.path().join("ca-cert.pem"),
        other.path().join("client-cert.pem"),
        other.path().join("client-key.pem"),
    )
    .unwrap();
    match timed(|| tls::connect(&vm.addr.to_string(), "127.0.0.1", &creds, DEADLINE)) {
        Err(Error::Rejected { .. }) => {}
        other => panic!("{other:?}"),
    }
}
