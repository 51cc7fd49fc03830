//! Server messages: one pass that frames a message and slices out its top-level
//! members on the read buffer (the fast path for what QEMU sends), serde over a flat
//! envelope for everything else, and the classification into replies, events,
//! greetings and the guest agent's delimiter.

use std::borrow::Cow;

use log::{log_enabled, trace, Level};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::conn::{Stats, WIRE_TARGET};
use crate::error::Error;
use crate::framing::{Frame, FrameError, Framer};
use crate::redact::redact;
use qapi_runtime::Timestamp;

/// The error member of a reply.
#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow)]
    class: Cow<'a, str>,
    #[serde(borrow, default)]
    desc: Cow<'a, str>,
}

/// The members of a server message that decide its kind, as JSON text slices.
#[derive(Default)]
pub(crate) struct Env<'a> {
    ret: Option<&'a str>,
    error: Option<&'a str>,
    event: Option<Cow<'a, str>>,
    data: Option<&'a str>,
    timestamp: Option<Timestamp>,
    id: Option<&'a str>,
    greeting: Option<&'a str>,
}

/// The general path: serde over a flat envelope (handles any valid JSON).
fn slow_envelope(text: &str) -> Result<Env<'_>, serde_json::Error> {
    let e: Envelope<'_> = serde_json::from_str(text)?;
    Ok(Env {
        ret: e.ret.map(RawValue::get),
        error: e.error.map(RawValue::get),
        event: e.event,
        data: e.data.map(RawValue::get),
        timestamp: e.timestamp,
        id: e.id.map(RawValue::get),
        greeting: e.greeting.map(RawValue::get),
    })
}

/// Byte ranges (within the message) of the members the fast path found.
#[derive(Default)]
struct Spans {
    ret: Option<(usize, usize)>,
    error: Option<(usize, usize)>,
    event: Option<(usize, usize)>,
    data: Option<(usize, usize)>,
    id: Option<(usize, usize)>,
    greeting: Option<(usize, usize)>,
    timestamp: Option<Timestamp>,
}

impl Spans {
    fn resolve(self, text: &str) -> Env<'_> {
        let s = |r: Option<(usize, usize)>| r.and_then(|(a, b)| text.get(a..b));
        Env {
            ret: s(self.ret),
            error: s(self.error),
            event: s(self.event).map(Cow::Borrowed),
            data: s(self.data),
            timestamp: self.timestamp,
            id: s(self.id),
            greeting: s(self.greeting),
        }
    }
}

/// The fast path for what QEMU actually sends, run directly on the read buffer at an
/// object start: one pass that both frames the message and slices out its top-level
/// members (nested values are checked for balance; whoever decodes them validates
/// them fully). Returns the members and the message length. Anything unusual
/// (non-ASCII bytes, escaped keys or event names, duplicate members, odd timestamps,
/// an incomplete message) returns `None` and goes through the framer and serde.
fn fast_envelope(b: &[u8]) -> Option<(Spans, usize)> {
    let mut i = 0;
    let mut sp = Spans::default();
    expect(b, &mut i, b'{')?;
    skip_ws(b, &mut i);
    if b.get(i) == Some(&b'}') {
        return None;
    }
    loop {
        expect(b, &mut i, b'"')?;
        let ks = i;
        loop {
            let c = *b.get(i)?;
            if c == b'"' {
                break;
            }
            if c == b'\\' || !(0x20..0x80).contains(&c) {
                return None;
            }
            i += 1;
        }
        let key = &b[ks..i];
        i += 1;
        skip_ws(b, &mut i);
        expect(b, &mut i, b':')?;
        skip_ws(b, &mut i);
        if key == b"timestamp" {
            if sp.timestamp.replace(fast_timestamp(b, &mut i)?).is_some() {
                return None;
            }
        } else {
            let vs = i;
            skip_value(b, &mut i)?;
            let (slot, span) = match key {
                b"event" => {
                    if b[vs] != b'"' || b[vs + 1..i - 1].contains(&b'\\') {
                        return None;
                    }
                    (Some(&mut sp.event), (vs + 1, i - 1))
                }
                b"return" => (Some(&mut sp.ret), (vs, i)),
                b"error" => (Some(&mut sp.error), (vs, i)),
                b"data" => (Some(&mut sp.data), (vs, i)),
                b"id" => (Some(&mut sp.id), (vs, i)),
                b"QMP" => (Some(&mut sp.greeting), (vs, i)),
                _ => (None, (vs, i)),
            };
            if let Some(slot) = slot {
                if slot.replace(span).is_some() {
                    return None;
                }
            }
        }
        skip_ws(b, &mut i);
        match *b.get(i)? {
            b',' => {
                i += 1;
                skip_ws(b, &mut i);
            }
            b'}' => return Some((sp, i + 1)),
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && matches!(b[*i], b' ' | b'\n' | b'\r' | b'\t') {
        *i += 1;
    }
}

fn expect(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    (*b.get(*i)? == c).then(|| *i += 1)
}

/// Skips one value (a string, a balanced object/array, a number or a literal),
/// refusing non-ASCII bytes.
fn skip_value(b: &[u8], i: &mut usize) -> Option<()> {
    match *b.get(*i)? {
        b'"' => {
            *i += 1;
            loop {
                match *b.get(*i)? {
                    b'"' => {
                        *i += 1;
                        return Some(());
                    }
                    b'\\' => {
                        if *b.get(*i + 1)? >= 0x80 {
                            return None;
                        }
                        *i += 2;
                    }
                    c if !(0x20..0x80).contains(&c) => return None,
                    _ => *i += 1,
                }
            }
        }
        b'{' | b'[' => {
            let mut depth = 0u32;
            loop {
                match *b.get(*i)? {
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            *i += 1;
                            return Some(());
                        }
                    }
                    b'"' => {
                        skip_value(b, i)?;
                        continue;
                    }
                    c if c >= 0x80 => return None,
                    _ => {}
                }
                *i += 1;
            }
        }
        b'-' | b'0'..=b'9' => {
            let s = *i;
            while *i < b.len() && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                *i += 1;
            }
            // Plain integers only; anything else (and a number cut by the buffer end,
            // which the caller sees as an incomplete message) goes to serde.
            (*i < b.len() && b[s + 1..*i].iter().all(u8::is_ascii_digit)).then_some(())
        }
        _ => {
            for lit in [&b"true"[..], b"false", b"null"] {
                if b[*i..].starts_with(lit) {
                    *i += lit.len();
                    return Some(());
                }
            }
            None
        }
    }
}

/// A plain integer of at most 18 digits (no overflow possible).
fn fast_int(b: &[u8], i: &mut usize) -> Option<i64> {
    let neg = b.get(*i) == Some(&b'-');
    if neg {
        *i += 1;
    }
    let s = *i;
    let mut n: i64 = 0;
    while let Some(&c) = b.get(*i) {
        if !c.is_ascii_digit() {
            break;
        }
        n = n * 10 + i64::from(c - b'0');
        *i += 1;
    }
    let digits = *i - s;
    ((1..=18).contains(&digits) && (digits == 1 || b[s] != b'0')).then_some(if neg {
        -n
    } else {
        n
    })
}

/// `{"seconds": N, "microseconds": N}` in either order, plain integers only.
fn fast_timestamp(b: &[u8], i: &mut usize) -> Option<Timestamp> {
    let (mut secs, mut usecs) = (None, None);
    expect(b, i, b'{')?;
    loop {
        skip_ws(b, i);
        expect(b, i, b'"')?;
        let slot = if b[*i..].starts_with(b"seconds\"") {
            *i += 8;
            &mut secs
        } else if b[*i..].starts_with(b"microseconds\"") {
            *i += 13;
            &mut usecs
        } else {
            return None;
        };
        skip_ws(b, i);
        expect(b, i, b':')?;
        skip_ws(b, i);
        if slot.replace(fast_int(b, i)?).is_some() {
            return None;
        }
        skip_ws(b, i);
        match *b.get(*i)? {
            b',' => *i += 1,
            b'}' => {
                *i += 1;
                break;
            }
            _ => return None,
        }
    }
    Some(Timestamp {
        seconds: secs?,
        microseconds: usecs?,
    })
}

/// Every server message in one flat shape: which members are present decides the kind.
#[derive(Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(rename = "return", borrow, default)]
    ret: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(rename = "QMP", borrow, default)]
    greeting: Option<&'a RawValue>,
}

/// A received message, borrowing the read buffer.
pub(crate) enum Msg<'a> {
    /// A reply: `id` is `None` when absent or not one of our integer ids.
    Reply {
        id: Option<u64>,
        result: Result<&'a str, (Cow<'a, str>, Cow<'a, str>)>,
    },
    /// An event: the whole message text, the name, the data text and the timestamp.
    Event {
        text: &'a str,
        name: Cow<'a, str>,
        data: Option<&'a str>,
        timestamp: Timestamp,
    },
    /// The QMP greeting's inner object.
    Greeting(&'a str),
    /// The guest agent's 0xFF delimiter.
    Sentinel,
}

/// Takes the next complete message out of `framer`; `Ok(None)` when more input is
/// needed. Errors are stream errors (garbage, oversize, malformed): the framer has
/// already skipped the offending bytes, so the next call goes on after them.
pub(crate) fn next_msg<'f>(
    framer: &'f mut Framer,
    stats: &mut Stats,
    max_message: usize,
) -> Result<Option<Msg<'f>>, Error> {
    if let Some(at) = framer.object_start() {
        if let Some((spans, len)) = fast_envelope(&framer.bytes()[at..]) {
            if len <= max_message {
                framer.consume_to(at + len);
                let bytes = &framer.bytes()[at..at + len];
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| Error::protocol("message is not valid UTF-8", bytes))?;
                let env = spans.resolve(text);
                return finish_msg(stats, text, env).map(Some);
            }
        }
    }
    let (a, b) = match framer.next_frame() {
        Ok(Some(Frame::Object(a, b))) => (a, b),
        Ok(Some(Frame::Sentinel)) => {
            trace!(target: WIRE_TARGET, "<< <0xFF>");
            return Ok(Some(Msg::Sentinel));
        }
        Err(FrameError::Garbage(g)) => {
            return Err(Error::protocol("bytes outside any JSON object", &g))
        }
        Err(FrameError::TooLarge) => return Err(Error::TooLarge { limit: max_message }),
        Ok(None) => return Ok(None),
    };
    let bytes = &framer.bytes()[a..b];
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::protocol("message is not valid UTF-8", bytes))?;
    let env = slow_envelope(text)
        .map_err(|e| Error::protocol(format!("malformed message: {e}"), bytes))?;
    finish_msg(stats, text, env).map(Some)
}

/// Classifies a parsed message.
fn finish_msg<'a>(stats: &mut Stats, text: &'a str, env: Env<'a>) -> Result<Msg<'a>, Error> {
    stats.messages += 1;
    stats.max_message = stats.max_message.max(text.len());
    if log_enabled!(target: WIRE_TARGET, Level::Trace) {
        trace!(target: WIRE_TARGET, "<< {}", redact(text));
    }
    let bytes = text.as_bytes();
    if let Some(name) = env.event {
        stats.events += 1;
        return Ok(Msg::Event {
            text,
            name,
            data: env.data,
            timestamp: env.timestamp.unwrap_or(Timestamp {
                seconds: -1,
                microseconds: -1,
            }),
        });
    }
    let id = env.id.and_then(|v| v.parse::<u64>().ok());
    if let Some(e) = env.error {
        let body: ErrorBody<'_> = serde_json::from_str(e)
            .map_err(|e| Error::protocol(format!("malformed error member: {e}"), bytes))?;
        return Ok(Msg::Reply {
            id,
            result: Err((body.class, body.desc)),
        });
    }
    if let Some(r) = env.ret {
        return Ok(Msg::Reply { id, result: Ok(r) });
    }
    if let Some(g) = env.greeting {
        return Ok(Msg::Greeting(g));
    }
    Err(Error::protocol(
        "message is neither a reply, an event nor a greeting",
        bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders what an envelope found, for comparing the two paths.
    fn render(env: &Env<'_>) -> String {
        format!(
            "ret={:?} error={:?} event={:?} data={:?} ts={:?} id={:?} qmp={:?}",
            env.ret, env.error, env.event, env.data, env.timestamp, env.id, env.greeting
        )
    }

    /// The fast path agrees with serde whenever it answers, and frames the whole text.
    fn check(text: &str, fast_expected: bool) {
        let slow = slow_envelope(text).map(|e| render(&e));
        match fast_envelope(text.as_bytes()) {
            Some((spans, len)) => {
                assert!(fast_expected, "fast path took {text}");
                assert_eq!(len, text.len(), "{text}");
                assert_eq!(
                    Ok(render(&spans.resolve(text))),
                    slow.map_err(|e| e.to_string()),
                    "{text}"
                );
            }
            None => assert!(!fast_expected, "fast path refused {text}"),
        }
    }

    #[test]
    fn fast_envelope_never_panics_and_agrees_on_valid_json() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let pieces: [&[u8]; 24] = [
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"",
            b":",
            b",",
            b" ",
            b"\\",
            b"1",
            b"-",
            b".5",
            b"\"event\"",
            b"\"data\"",
            b"\"return\"",
            b"\"id\"",
            b"\"timestamp\"",
            b"\"seconds\"",
            b"\"microseconds\"",
            b"true",
            b"nul",
            b"\xff",
            b"\xc3\xa9",
            b"\r\n",
        ];
        let templates: [&[u8]; 4] = [
            br#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#,
            br#"{"event": "X", "data": {"a": [1, {"b": "}\""}], "c": null}, "timestamp": {"microseconds": 3, "seconds": 4}}"#,
            br#"{"return": {"status": "running", "running": true}, "id": 12}"#,
            br#"{"id": 3, "error": {"class": "GenericError", "desc": "x"}}"#,
        ];
        let (mut fast_ok, mut agreed) = (0, 0);
        for _ in 0..20_000 {
            // A valid message with one or two random mutations.
            let mut msg = templates[(next() % 4) as usize].to_vec();
            for _ in 0..1 + next() % 2 {
                let at = (next() % msg.len() as u64) as usize;
                let piece = pieces[(next() % 24) as usize];
                match next() % 3 {
                    0 => {
                        msg.splice(at..at + 1, piece.iter().copied());
                    }
                    1 => {
                        msg.remove(at);
                    }
                    _ => msg.truncate(at.max(1)),
                }
                if msg.is_empty() {
                    msg.push(b'{');
                }
            }
            if let Some((spans, len)) = fast_envelope(&msg) {
                fast_ok += 1;
                if let Ok(text) = std::str::from_utf8(&msg[..len]) {
                    let fast = render(&spans.resolve(text));
                    // Where serde accepts the message, both must agree.
                    if let Ok(slow) = slow_envelope(text) {
                        assert_eq!(fast, render(&slow), "{text}");
                        agreed += 1;
                    }
                }
            }
        }
        assert!(fast_ok > 1000 && agreed > 1000, "{fast_ok} {agreed}");
    }

    #[test]
    fn fast_envelope_matches_serde() {
        check(
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#,
            true,
        );
        check(
            r#"{"event":"X","data":{"a":[1,{"b":"}\""}],"c":-1.5e3},"timestamp":{"microseconds":-1,"seconds":-1}}"#,
            true,
        );
        check(
            r#"{"return": {"status": "running", "running": true}, "id": 12}"#,
            true,
        );
        check(
            r#"{"id": 3, "error": {"class": "GenericError", "desc": "x \"y\""}}"#,
            true,
        );
        check(
            r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": ""}, "capabilities": ["oob"]}}"#,
            true,
        );
        check("{\r\n    \"return\": [\r\n        1,\r\n        null, true, false\r\n    ],\r\n    \"id\": 7\r\n}", true);
        check(r#"{"return": 1.5, "id": 1}"#, false);
        check(r#"{"event": "A\u0042"}"#, false);
        check(r#"{"return": {}, "return": {}}"#, false);
        check(r#"{"return": }"#, false);
        check(r#"{"return": {}"#, false);
        check("{\"return\": \"\u{e9}\"}", false);
        check(
            r#"{"timestamp": {"seconds": 1.0, "microseconds": 2}, "event": "S"}"#,
            false,
        );
    }
}
