//! Byte scripts through the protocol core: what goes in, what must come out.

use std::time::Instant;

use super::*;
use crate::event::EventFilter;
use crate::request::Request;

const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n";

fn out(s: &mut Session) -> String {
    let mut text = String::new();
    while let Some(t) = s.poll_transmit() {
        text.push_str(&String::from_utf8_lossy(&t.bytes).replace('\u{fffd}', "<FF>"));
        text.push('|');
    }
    text
}

fn ready_qmp() -> Session {
    let mut s = Session::qmp(&Options::new());
    assert!(s.handshake().is_none());
    s.receive(GREETING);
    assert_eq!(
        out(&mut s),
        "{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]},\"id\":1}|"
    );
    s.receive(b"{\"return\": {}, \"id\": 1}\r\n");
    assert!(matches!(s.handshake(), Some(Ok(()))));
    s
}

fn call(s: &mut Session, name: &str) -> u64 {
    let mut r = Request::name(name);
    s.request(&mut r, Instant::now()).unwrap()
}

#[test]
fn negotiation_then_out_of_order_replies_and_events() {
    let mut s = ready_qmp();
    assert!(s.oob_enabled());
    let a = call(&mut s, "query-status");
    let b = call(&mut s, "query-name");
    assert_eq!(
        out(&mut s),
        "{\"execute\":\"query-status\",\"id\":2}|{\"execute\":\"query-name\",\"id\":3}|"
    );
    // Split anywhere; an event between; the replies in the other order.
    let script: &[u8] = b"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n{\"return\": {\"name\": \"vm\"}, \"id\": 3}\r\n{\"return\": {}, \"id\": 2}\r\n";
    for chunk in script.chunks(7) {
        s.receive(chunk);
    }
    assert_eq!(s.take(b).unwrap().unwrap().json, "{\"name\": \"vm\"}");
    assert_eq!(s.take(a).unwrap().unwrap().json, "{}");
    assert_eq!(s.pop_event().unwrap().name(), "STOP");
    assert_eq!(s.stats().messages, 5);
}

#[test]
fn timeout_discards_the_late_reply_and_a_cut_write_resyncs() {
    let mut s = ready_qmp();
    let a = call(&mut s, "slow");
    out(&mut s);
    s.expire(a, Instant::now());
    assert!(matches!(s.take(a), Some(Err(Error::Timeout { .. }))));
    s.receive(b"{\"return\": {}, \"id\": 2}\r\n");
    assert_eq!(s.stats().discarded_replies, 1);
    // A write cut short: the next request starts with a control byte, and the
    // id-less parse error QEMU answers it with is swallowed.
    let b = call(&mut s, "x");
    out(&mut s);
    s.write_failed(Some(b), true, Error::Disconnected { command: None });
    let c = call(&mut s, "query-status");
    assert_eq!(
        out(&mut s),
        "\u{1b}{\"execute\":\"query-status\",\"id\":4}|"
    );
    s.receive(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n{\"return\": {}, \"id\": 4}\r\n");
    assert!(s.take(c).unwrap().is_ok());
    assert_eq!(s.stats().discarded_replies, 2);
}

#[test]
fn idless_errors_and_garbage_fail_the_oldest_call() {
    let mut s = ready_qmp();
    let a = call(&mut s, "one");
    let b = call(&mut s, "two");
    s.receive(b"garbage\r\n{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n");
    assert!(matches!(s.take(a), Some(Err(Error::Protocol { .. }))));
    let e = s.take(b).unwrap().err().unwrap();
    assert_eq!(e.qmp().unwrap().command, "two");
}

#[test]
fn wait_for_an_event_before_or_after_the_reply() {
    let mut s = ready_qmp();
    let mut r = Request::name("device_del").wait_for(EventFilter::name("DEVICE_DELETED"));
    let id = s.request(&mut r, Instant::now()).unwrap();
    s.receive(b"{\"event\": \"OTHER\"}\r\n{\"return\": {}, \"id\": 2}\r\n");
    assert!(s.take(id).is_none(), "the reply alone does not complete it");
    s.receive(b"{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"d\"}}\r\n");
    let done = s.take(id).unwrap().unwrap();
    let (_, ev) = (r.decode)(&done.json, done.event).unwrap();
    assert_eq!(ev.data(), Some("{\"device\": \"d\"}"));
    // The other event went to the queue, the awaited one did not.
    assert_eq!(s.drain_events().len(), 1);
}

#[test]
fn subscriptions_have_their_own_bounded_queues() {
    let mut s = ready_qmp();
    let (_, all) = s.subscribe(&[], 2);
    let (_, stops) = s.subscribe(&["STOP".to_owned()], 10);
    for _ in 0..3 {
        s.receive(b"{\"event\": \"STOP\"}\r\n{\"event\": \"RESUME\"}\r\n");
    }
    assert_eq!((all.dropped(), stops.dropped()), (4, 0));
    let mut n = 0;
    while stops.pop().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn a_subscription_queue_is_taken_whole_and_says_when_the_connection_closed() {
    let mut s = ready_qmp();
    let (_, queue) = s.subscribe(&[], 10);
    s.receive(b"{\"event\": \"STOP\"}\r\n{\"event\": \"RESUME\"}\r\n");
    let mut batch = std::collections::VecDeque::new();
    assert!(!queue.take_all(&mut batch), "open");
    assert_eq!(batch.len(), 2);
    batch.clear();
    s.receive(b"{\"event\": \"STOP\"}\r\n");
    s.eof();
    // The last event still comes, with the news that no more will.
    assert!(queue.take_all(&mut batch));
    assert_eq!(batch.len(), 1);
    // A subscription made after the close is closed from the start.
    let (_, late) = s.subscribe(&[], 10);
    batch.clear();
    assert!(late.take_all(&mut batch));
}

#[test]
fn eof_fails_pending_calls_as_outcome_unknown() {
    let mut s = ready_qmp();
    let a = call(&mut s, "quit");
    s.eof();
    let e = s.take(a).unwrap().err().unwrap();
    assert!(e.outcome_unknown(), "{e}");
    let mut r = Request::name("x");
    assert!(s.request(&mut r, Instant::now()).is_err());
}

#[test]
fn bad_greeting_and_refused_negotiation() {
    let mut s = Session::qmp(&Options::new());
    s.receive(b"{\"QMP\": {\"version\": 5}}\r\n");
    assert!(matches!(s.handshake(), Some(Err(Error::Greeting(_)))));
    let mut s = Session::qmp(&Options::new());
    s.receive(GREETING);
    out(&mut s);
    s.receive(b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no\"}, \"id\": 1}\r\n");
    assert!(matches!(s.handshake(), Some(Err(Error::Negotiation(_)))));
}

#[test]
fn guest_agent_handshake_skips_stale_output() {
    let mut s = Session::qga(&Options::new());
    let sent = out(&mut s);
    assert!(
        sent.starts_with("<FF>{\"execute\":\"guest-sync-delimited\""),
        "{sent}"
    );
    let token: u64 = sent
        .split("\"id\":")
        .nth(1)
        .and_then(|t| t.split('}').next())
        .and_then(|t| t.parse().ok())
        .unwrap();
    // Stale replies, a partial line, a parse error, then the delimiter and the reply.
    s.receive(b"{\"return\": 42}\n{\"return\": {\"stale\": tr");
    s.receive(&[0xFF]);
    s.receive(format!("{{\"return\": {token}}}\n").as_bytes());
    assert!(matches!(s.handshake(), Some(Ok(()))));
    // Oob and fds are refused, not ignored.
    let mut r = Request::name("guest-ping").oob();
    assert!(matches!(
        s.request(&mut r, Instant::now()),
        Err(Error::OobUnavailable { .. })
    ));
}

#[test]
fn guest_agent_timeout_resyncs_before_the_next_command() {
    let mut s = Session::qga(&Options::new());
    let sent = out(&mut s);
    let token = sent
        .split("\"id\":")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    s.receive(&[0xFF]);
    s.receive(format!("{{\"return\": {token}}}\n").as_bytes());
    assert!(matches!(s.handshake(), Some(Ok(()))));
    let a = call(&mut s, "guest-slow");
    out(&mut s);
    s.expire(a, Instant::now());
    let _b = call(&mut s, "guest-ping");
    let sent = out(&mut s);
    assert!(
        sent.starts_with("<FF>{\"execute\":\"guest-sync-delimited\""),
        "{sent}"
    );
    assert!(sent.contains("guest-ping"), "{sent}");
}
