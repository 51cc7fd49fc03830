//! The tokio clients against a scripted fake server, for the faults QEMU cannot be
//! made to produce (the blocking clients' versions are `qmp-types/tests/fake_server.rs`):
//! EOF mid-command, bad greetings, refused negotiation, garbage, oversize messages,
//! the guest agent's stale output and reply-less commands.

#![cfg(feature = "tokio")]

use std::io::Write;
use std::time::Duration;

#[path = "support/fake_peer.rs"]
mod fake_peer;

use fake_peer::*;
use qmp_client::tokio::{Qga, Qmp};
use qmp_client::{Endpoint, Error, Options, Request};

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
