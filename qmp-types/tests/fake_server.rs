//! Transport tests against a scripted fake server, only for what real QEMU cannot be
//! made to send: garbage, oversize and invalid messages, frames split byte by byte,
//! unknown events and members, id-less errors, stale guest agent output. Each runs on
//! both drivers (`NAME::blocking`, `NAME::tokio`).

#[macro_use]
mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::fake_peer::*;
use common::*;
use qmp_types::client::{Endpoint, Error, ErrorClass, Options, Request};

dual_tests!(
    frames_split_byte_by_byte_and_pretty,
    compact_requests_without_empty_arguments,
    garbage_and_malformed_messages_are_errors_not_panics,
    oversize_message_fails_the_call_that_hit_it,
    unknown_events_members_and_idless_errors,
    eof_mid_command_and_bad_greetings,
    random_input_never_panics,
    guest_agent_resync_skips_stale_output_and_refuses_oob_and_fds,
    wire_tracing_through_log,
    guest_agent_command_without_success_response,
);

fn opts() -> Options {
    Options::new()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Some(Duration::from_secs(5)))
}

fn connect<D: Driver>(d: &D, path: &std::path::Path) -> D::Qmp {
    d.connect_to(Endpoint::Unix(path.to_owned()), &opts())
        .unwrap()
}

fn frames_split_byte_by_byte_and_pretty(d: &impl Driver) {
    let (path, h) = serve(|p| {
        let pretty_greeting = b"{\r\n    \"QMP\": {\r\n        \"version\": {\r\n            \"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10},\r\n            \"package\": \"\"\r\n        },\r\n        \"capabilities\": []\r\n    }\r\n}\r\n";
        p.send_byte_by_byte(pretty_greeting);
        let caps = p.recv();
        // Without "oob" offered the client must not ask for it.
        assert!(caps.get("arguments").is_none(), "{caps}");
        p.send_byte_by_byte(format!("{{\"return\": {{}}, \"id\": {}}}\r\n", caps["id"]).as_bytes());
        let q = p.recv();
        assert_eq!(q, serde_json::json!({"execute": "query-status", "id": 2}));
        let ev = "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\r\n";
        let rep = format!(
            "{{\"return\": {{\"status\": \"paused\", \"running\": false, \"future\": [1]}}, \"id\": {}}}\r\n",
            q["id"]
        );
        p.send_byte_by_byte(format!("{ev}{rep}").as_bytes());
    });
    let qmp = connect(d, &path);
    assert!(!qmp.oob_enabled());
    let st = qmp.execute(&QueryStatus).unwrap();
    assert_eq!(
        st,
        StatusInfo {
            running: false,
            status: "paused".into()
        }
    );
    let ev = qmp.poll_event().unwrap().unwrap();
    assert_eq!(
        ev.decode::<Ev>().unwrap(),
        Ev::Stop(qmp_types::Timestamp {
            seconds: 1,
            microseconds: 2
        })
    );
    drop(qmp);
    h.join().unwrap();
}

fn compact_requests_without_empty_arguments(d: &impl Driver) {
    /// Reads the exact bytes of one request that contains `closing` `}` bytes.
    fn exact(p: &mut Peer, closing: usize) -> String {
        let mut raw = Vec::new();
        let mut b = [0u8];
        while raw.iter().filter(|&&c| c == b'}').count() < closing {
            p.s.read_exact(&mut b).unwrap();
            raw.push(b[0]);
        }
        String::from_utf8(raw).unwrap()
    }
    let (path, h) = serve(|p| {
        p.handshake();
        assert_eq!(exact(p, 1), "{\"execute\":\"query-status\",\"id\":2}");
        p.send(b"{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": 2}\r\n");
        assert_eq!(
            exact(p, 2),
            "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"d\"},\"id\":3}"
        );
        p.send(b"{\"return\": {}, \"id\": 3}\r\n");
        // Empty arguments are left out entirely.
        assert_eq!(exact(p, 1), "{\"execute\":\"query-status\",\"id\":4}");
        p.send(b"{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": 4}\r\n");
    });
    let qmp = connect(d, &path);
    qmp.execute(&QueryStatus).unwrap();
    qmp.execute(&DeviceDel { id: "d".into() }).unwrap();
    qmp.execute(Request::raw("query-status", &args(serde_json::json!({}))))
        .unwrap();
    drop(qmp);
    h.join().unwrap();
}

fn garbage_and_malformed_messages_are_errors_not_panics(d: &impl Driver) {
    let (path, h) = serve(|p| {
        p.handshake();
        let q = p.recv();
        p.send(b"this is not json\r\n");
        p.reply(&q, "{\"status\": \"running\", \"running\": true}");
        let q = p.recv();
        p.send(b"{\"return\": }\r\n");
        p.reply(&q, "{\"status\": \"running\", \"running\": true}");
        let q = p.recv();
        p.send(b"{\"return\": \"\xff\xfe\"}\r\n");
        p.reply(&q, "{\"status\": \"running\", \"running\": true}");
        let q = p.recv();
        p.send(b"{\"neither\": 1}\r\n");
        p.reply(&q, "{\"status\": \"running\", \"running\": true}");
        let q = p.recv();
        p.reply(&q, "{\"status\": 5}");
    });
    let qmp = connect(d, &path);
    for expect in [
        "bytes outside any JSON object",
        "malformed message",
        "",
        "neither a reply",
    ] {
        let e = qmp.execute(&QueryStatus).unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e}");
        assert!(e.to_string().contains(expect), "{e}");
    }
    // A reply that does not fit the typed result names the command.
    let e = qmp.execute(&QueryStatus).unwrap_err();
    assert!(
        matches!(&e, Error::Decode { command, .. } if command == "query-status"),
        "{e}"
    );
    // Each garbage reply left the real one behind: discarded by id, 4 of them.
    assert_eq!(qmp.stats().discarded_replies, 4);
    drop(qmp);
    h.join().unwrap();
}

fn oversize_message_fails_the_call_that_hit_it(d: &impl Driver) {
    let (path, h) = serve(|p| {
        p.handshake();
        let q = p.recv();
        let big = format!(
            "{{\"event\": \"BIG\", \"data\": {{\"x\": \"{}\"}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 1}}}}\r\n",
            "a".repeat(100_000)
        );
        p.send(big.as_bytes());
        p.reply(&q, "{\"status\": \"running\", \"running\": true}");
        let q = p.recv();
        p.reply(&q, "{\"status\": \"running\", \"running\": true}");
    });
    let qmp = d
        .connect_to(Endpoint::Unix(path), &opts().max_message(4096))
        .unwrap();
    let e = qmp.execute(&QueryStatus).unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 4096 }), "{e}");
    assert!(qmp.execute(&QueryStatus).unwrap().running);
    drop(qmp);
    h.join().unwrap();
}

fn unknown_events_members_and_idless_errors(d: &impl Driver) {
    let (path, h) = serve(|p| {
        p.handshake();
        let q = p.recv();
        p.send(b"{\"event\": \"FROM_THE_FUTURE\", \"data\": {\"x\": [1, {\"y\": \"}\"}]}, \"timestamp\": {\"seconds\": 5, \"microseconds\": 6}, \"extra\": true}\r\n");
        p.send(b"{\"event\": \"NO_TIMESTAMP\"}\r\n");
        p.send(b"{\"return\": {}, \"id\": \"somebody-else\"}\r\n");
        // QEMU's answer to input it could not parse carries no id: it fails the call.
        p.send(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\u001b'\"}}\r\n");
        p.send(format!("{{\"id\": {}, \"error\": {{\"class\": \"GenericError\", \"desc\": \"late\"}}}}\r\n", q["id"]).as_bytes());
        let q = p.recv();
        p.send(format!("{{\"id\": {}, \"error\": {{\"class\": \"DownstreamClass\", \"desc\": \"nope\", \"more\": 1}}}}\r\n", q["id"]).as_bytes());
    });
    let qmp = connect(d, &path);
    let e = qmp.execute(&QueryStatus).unwrap_err();
    let q = e.qmp().unwrap();
    assert_eq!(
        (&q.class, q.command.as_str()),
        (&ErrorClass::GenericError, "query-status")
    );
    assert!(q.desc.starts_with("JSON parse error"), "{e}");
    let e = qmp.execute(&QueryStatus).unwrap_err();
    let q = e.qmp().unwrap();
    assert_eq!(q.class, ErrorClass::Other("DownstreamClass".into()));
    assert_eq!(q.desc, "nope");
    let ev = qmp.poll_event().unwrap().unwrap();
    assert_eq!(
        ev.decode::<Ev>().unwrap(),
        Ev::Other("FROM_THE_FUTURE".into())
    );
    assert_eq!(ev.data(), Some("{\"x\": [1, {\"y\": \"}\"}]}"));
    let ev = qmp.poll_event().unwrap().unwrap();
    assert_eq!(
        (ev.name(), ev.data(), ev.timestamp().seconds),
        ("NO_TIMESTAMP", None, -1)
    );
    // The foreign id and the late reply were discarded.
    assert_eq!(qmp.stats().discarded_replies, 2);
    drop(qmp);
    h.join().unwrap();
}

fn eof_mid_command_and_bad_greetings(d: &impl Driver) {
    let (path, h) = serve(|p| {
        p.handshake();
        let _ = p.recv();
        p.s.shutdown(std::net::Shutdown::Both).unwrap();
    });
    let qmp = connect(d, &path);
    let e = qmp.execute(&QueryStatus).unwrap_err();
    assert!(
        matches!(&e, Error::Disconnected { command: Some(c) } if c == "query-status"),
        "{e}"
    );
    h.join().unwrap();

    let (path, h) = serve(|p| p.send(b"{\"QMP\": {\"version\": 5}}\r\n"));
    let e = d.connect_to(Endpoint::Unix(path), &opts()).unwrap_err();
    assert!(matches!(e, Error::Greeting(_)), "{e}");
    h.join().unwrap();

    let (path, h) = serve(|p| {
        p.send(GREETING);
        let caps = p.recv();
        p.send(format!("{{\"error\": {{\"class\": \"CommandNotFound\", \"desc\": \"no\"}}, \"id\": {}}}\r\n", caps["id"]).as_bytes());
    });
    let e = d.connect_to(Endpoint::Unix(path), &opts()).unwrap_err();
    assert!(matches!(e, Error::Negotiation(_)), "{e}");
    h.join().unwrap();

    let (path, h) = serve(|p| p.s.shutdown(std::net::Shutdown::Both).unwrap());
    let e = d.connect_to(Endpoint::Unix(path), &opts()).unwrap_err();
    assert!(matches!(e, Error::Disconnected { command: None }), "{e}");
    h.join().unwrap();
}

fn random_input_never_panics(d: &impl Driver) {
    // A fixed-seed generator over JSON-ish bytes: errors are fine, panics are not.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"{}[]\":,\\ \r\n\xffa1-eE.truefalsnul";
    for _ in 0..30 {
        let mut junk = Vec::new();
        for _ in 0..(next() % 400) {
            junk.push(alphabet[(next() % alphabet.len() as u64) as usize]);
        }
        let (path, h) = serve(move |p| {
            p.handshake();
            p.send(&junk);
        });
        let qmp = connect(d, &path);
        let _ = qmp.execute(Request::new(&QueryStatus).timeout(Duration::from_millis(20)));
        for _ in 0..5 {
            let _ = qmp.next_event(Some(Duration::from_millis(5)));
        }
        drop(qmp);
        h.join().unwrap();
    }
}

fn guest_agent_resync_skips_stale_output_and_refuses_oob_and_fds(d: &impl Driver) {
    let (path, h) = serve(|p| {
        // Stale output from a previous client, including a partial line.
        p.send(b"{\"return\": 42}\n{\"return\": {\"stale\": tr");
        let sync = p.recv();
        assert_eq!(sync["execute"], "guest-sync-delimited");
        let id = sync["arguments"]["id"].as_u64().unwrap();
        p.send(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\n");
        p.send(b"\x00{\"return\": 1}\n");
        let mut msg = vec![0xFF];
        msg.extend_from_slice(format!("{{\"return\": {id}}}\n").as_bytes());
        p.send(&msg);
        let ping = p.recv();
        assert_eq!(ping["execute"], "guest-ping");
        p.send(format!("{{\"return\": {{}}, \"id\": {}}}\n", ping["id"]).as_bytes());
    });
    let qga = d.connect_qga_to(Endpoint::Unix(path), &opts()).unwrap();
    qga.execute(Request::name("guest-ping")).unwrap();
    // The agent has no out-of-band execution and takes no fds: refused before sending.
    let e = qga.execute(Request::name("guest-ping").oob()).unwrap_err();
    assert!(matches!(e, Error::OobUnavailable { .. }), "{e}");
    let file = std::fs::File::open("/dev/null").unwrap();
    let fds = [std::os::fd::AsFd::as_fd(&file)];
    let e = qga
        .execute(Request::name("guest-ping").fds(&fds))
        .unwrap_err();
    assert!(matches!(e, Error::FdPassingUnsupported { .. }), "{e}");
    drop(qga);
    h.join().unwrap();
}

/// Collects wire trace lines (the logger is process-wide, so filter by content).
struct Collect(std::sync::Mutex<Vec<String>>);

impl log::Log for Collect {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == qmp_types::client::WIRE_TARGET
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            self.0.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

static COLLECT: Collect = Collect(std::sync::Mutex::new(Vec::new()));

fn wire_tracing_through_log(d: &impl Driver) {
    // The logger is process-wide and both halves run at once: install it once, and
    // leave tracing on (each half looks for its own command).
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&COLLECT).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
    let command = format!("traced-command-{}", d.name());
    let (path, h) = serve(|p| {
        p.handshake();
        let q = p.recv();
        p.send(b"{\"event\": \"TRACED_EVENT\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 1}}\r\n");
        p.reply(&q, "{\"traced\": true}");
    });
    let qmp = connect(d, &path);
    qmp.execute(Request::name(&command)).unwrap();
    drop(qmp);
    h.join().unwrap();
    let lines = COLLECT.0.lock().unwrap().clone();
    let has = |s: &str| lines.iter().any(|l| l.contains(s));
    let sent = format!(">> {{\"execute\":\"{command}\"");
    assert!(has(&sent), "{lines:#?}");
    assert!(has("<< {\"event\": \"TRACED_EVENT\""), "{lines:#?}");
    assert!(has("<< {\"return\": {\"traced\": true}"), "{lines:#?}");
}

/// A guest agent command with `success-response: false` (like `guest-shutdown`).
struct NoReply;

impl qmp_types::Command for NoReply {
    const NAME: &'static str = "guest-no-reply";
    const HAS_ARGUMENTS: bool = false;
    const ALLOW_OOB: bool = false;
    const SUCCESS_RESPONSE: bool = false;
    type Returns = ();
    fn write_arguments(&self, _: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        Ok(())
    }
    fn decode_return(_: &str) -> Result<(), serde_json::Error> {
        Ok(())
    }
}

/// Answers one guest-sync-delimited request read from `p`.
fn answer_sync(p: &mut Peer) {
    let sync = p.recv();
    assert_eq!(sync["execute"], "guest-sync-delimited", "{sync}");
    let mut msg = vec![0xFF];
    msg.extend_from_slice(format!("{{\"return\": {}}}\n", sync["arguments"]["id"]).as_bytes());
    // After an error reply the client returns without waiting for this (its next call
    // resyncs), and may already have hung up.
    let _ = p.s.write_all(&msg);
}

fn guest_agent_command_without_success_response(d: &impl Driver) {
    let (path, h) = serve(|p| {
        answer_sync(p);
        // Success: nothing comes back; the client proves it with a sync.
        let cmd = p.recv();
        assert_eq!(cmd["execute"], "guest-no-reply");
        answer_sync(p);
        // Failure: the error reply precedes the sync.
        let cmd = p.recv();
        p.send(
            format!(
                "{{\"error\": {{\"class\": \"GenericError\", \"desc\": \"refused\"}}, \"id\": {}}}\n",
                cmd["id"]
            )
            .as_bytes(),
        );
        answer_sync(p);
    });
    let qga = d.connect_qga_to(Endpoint::Unix(path), &opts()).unwrap();
    qga.execute(&NoReply).unwrap();
    let e = qga.execute(&NoReply).unwrap_err();
    assert_eq!(e.qmp().map(|q| q.desc.as_str()), Some("refused"), "{e}");
    drop(qga);
    h.join().unwrap();
}
