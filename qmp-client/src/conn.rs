//! The connection core shared by the QMP and guest agent clients: the socket, the
//! single buffered reader, request encoding, message envelopes and deadlines.

use std::borrow::Cow;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use log::{log_enabled, trace, Level};

use super::redact::redact;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::{Error, ErrorClass, QmpError};
use super::fd;
use super::framing::{Frame, FrameError, Framer};
use qapi_runtime::Timestamp;

/// The `log` target of wire tracing (every message in and out at `trace` level).
pub const WIRE_TARGET: &str = "qmp_client::wire";

/// Where to connect.
#[derive(Debug)]
pub enum Endpoint {
    /// A Unix socket path (`-qmp unix:PATH,server=on,wait=off`).
    Unix(PathBuf),
    /// A TCP address such as `127.0.0.1:4444` (no fd passing over TCP).
    Tcp(String),
    /// An already-connected socket (socketpair, inherited fd, ...).
    Fd(OwnedFd),
}

impl Endpoint {
    pub(crate) fn describe(&self) -> String {
        match self {
            Endpoint::Unix(p) => format!("unix:{}", p.display()),
            Endpoint::Tcp(a) => format!("tcp:{a}"),
            Endpoint::Fd(f) => format!("fd {}", f.as_raw_fd()),
        }
    }

    /// Opens the socket, bounded by `deadline` for TCP.
    pub(crate) fn open(self, deadline: Instant) -> Result<(OwnedFd, bool), Error> {
        let endpoint = self.describe();
        let connect_err = |source| Error::Connect {
            endpoint: endpoint.clone(),
            source,
        };
        match self {
            Endpoint::Unix(path) => {
                let fd = fd::connect_unix(&path, deadline).map_err(connect_err)?;
                Ok((fd, true))
            }
            Endpoint::Tcp(addr) => {
                use std::net::ToSocketAddrs;
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
                for a in addr.to_socket_addrs().map_err(connect_err)? {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                        break;
                    }
                    match TcpStream::connect_timeout(&a, left) {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            return Ok((s.into(), false));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(connect_err(last))
            }
            Endpoint::Fd(f) => {
                let unix = fd::is_unix_socket(f.as_raw_fd());
                Ok((f, unix))
            }
        }
    }
}

impl From<UnixStream> for Endpoint {
    fn from(s: UnixStream) -> Endpoint {
        Endpoint::Fd(s.into())
    }
}

impl From<TcpStream> for Endpoint {
    fn from(s: TcpStream) -> Endpoint {
        let _ = s.set_nodelay(true);
        Endpoint::Fd(s.into())
    }
}

/// Counters kept by a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests written.
    pub requests: u64,
    /// Messages (objects) received.
    pub messages: u64,
    /// Events received.
    pub events: u64,
    /// Events dropped because the queue was full.
    pub dropped_events: u64,
    /// Replies discarded because their request had timed out (or carried no id).
    pub discarded_replies: u64,
    /// Largest message received, in bytes.
    pub max_message: usize,
}

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
struct Env<'a> {
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
struct Envelope<'a> {
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

/// The connection core.
pub(crate) struct Core {
    fd: OwnedFd,
    pub(crate) unix: bool,
    framer: Framer,
    next_id: u64,
    /// Request being built (kept to reuse its allocation).
    wbuf: Vec<u8>,
    pub(crate) stats: Stats,
    /// A write was cut short: the peer's parser holds a partial request.
    pub(crate) partial_write: bool,
    /// Id-less parse errors still expected because we sent a resync control byte.
    pub(crate) resyncs_pending: u32,
    pub(crate) default_timeout: Option<Duration>,
    max_message: usize,
    /// Nothing can have arrived yet (just connected, or a request just sent): the next
    /// read waits before it tries, saving the `recv` that would only say "not yet".
    expect_wait: bool,
}

impl Core {
    pub(crate) fn new(
        fd: OwnedFd,
        unix: bool,
        max_message: usize,
        default_timeout: Option<Duration>,
    ) -> Core {
        Core {
            fd,
            unix,
            framer: Framer::new(max_message),
            next_id: 1,
            wbuf: Vec::with_capacity(256),
            expect_wait: true,
            stats: Stats::default(),
            partial_write: false,
            resyncs_pending: 0,
            default_timeout,
            max_message,
        }
    }

    pub(crate) fn deadline(&self, timeout: Option<Option<Duration>>) -> Option<Instant> {
        timeout
            .unwrap_or(self.default_timeout)
            .map(|t| Instant::now() + t)
    }

    /// Starts a request: `{"execute":"NAME"` (or `exec-oob`). Returns the buffer to
    /// append `,"arguments":...` to; hand it back to [`Core::send_request`].
    pub(crate) fn begin_request(&mut self, name: &str, oob: bool) -> Vec<u8> {
        let mut w = std::mem::take(&mut self.wbuf);
        w.clear();
        w.extend_from_slice(if oob {
            b"{\"exec-oob\":"
        } else {
            b"{\"execute\":"
        });
        if name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            w.push(b'"');
            w.extend_from_slice(name.as_bytes());
            w.push(b'"');
        } else {
            // Infallible for a &str into a Vec.
            let _ = serde_json::to_writer(&mut w, name);
        }
        w
    }

    /// Appends `,"arguments":` and the arguments written by `write`, dropping them
    /// again when they are the empty object.
    pub(crate) fn push_arguments(
        w: &mut Vec<u8>,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>,
    ) -> Result<(), serde_json::Error> {
        let mark = w.len();
        w.extend_from_slice(b",\"arguments\":");
        let args_at = w.len();
        write(w)?;
        if &w[args_at..] == b"{}" || w.len() == args_at {
            w.truncate(mark);
        }
        Ok(())
    }

    /// Finishes the request with `,"id":N}` (or without an id) and writes it.
    /// Returns the id used.
    pub(crate) fn send_request(
        &mut self,
        mut w: Vec<u8>,
        with_id: bool,
        prefix: &[u8],
        fds: &[BorrowedFd<'_>],
        deadline: Option<Instant>,
        command: &str,
    ) -> Result<u64, Error> {
        let id = self.next_id;
        if with_id {
            self.next_id += 1;
            w.extend_from_slice(b",\"id\":");
            let mut digits = [0u8; 20];
            w.extend_from_slice(format_u64(id, &mut digits));
        }
        w.push(b'}');
        let result = self.write_bytes(prefix, &w, fds, deadline, command);
        self.wbuf = w;
        self.expect_wait = result.is_ok();
        result.map(|()| id)
    }

    /// Writes `prefix` then `body` (fds attached to the body's first `sendmsg`).
    pub(crate) fn write_bytes(
        &mut self,
        prefix: &[u8],
        body: &[u8],
        fds: &[BorrowedFd<'_>],
        deadline: Option<Instant>,
        command: &str,
    ) -> Result<(), Error> {
        if log_enabled!(target: WIRE_TARGET, Level::Trace) {
            let body = String::from_utf8_lossy(body);
            trace!(target: WIRE_TARGET, ">> {}{}", escape_lossy(prefix), redact(&body));
        }
        // A control byte first makes the peer's JSON lexer drop a partial request.
        let mut prefix_buf;
        let prefix = if self.partial_write {
            prefix_buf = vec![0x1b];
            prefix_buf.extend_from_slice(prefix);
            &prefix_buf[..]
        } else {
            prefix
        };
        let raw = self.fd.as_raw_fd();
        let map = |e: fd::WriteError, extra: usize, partial: &mut bool| {
            if e.written + extra > 0 {
                *partial = true;
            }
            if e.error.kind() == io::ErrorKind::TimedOut {
                Error::Timeout {
                    waiting_for: format!("{command} (sending)"),
                    waited: Duration::ZERO,
                }
            } else if matches!(
                e.error.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) {
                Error::Disconnected {
                    command: Some(command.to_owned()),
                }
            } else {
                Error::Io {
                    command: Some(command.to_owned()),
                    source: e.error,
                }
            }
        };
        if !prefix.is_empty() {
            fd::send_all(raw, prefix, &[], deadline)
                .map_err(|e| map(e, 0, &mut self.partial_write))?;
        }
        if self.partial_write {
            self.resyncs_pending += 1;
        }
        self.partial_write = false;
        fd::send_all(raw, body, fds, deadline).map_err(|e| map(e, 0, &mut self.partial_write))?;
        self.stats.requests += 1;
        Ok(())
    }

    /// Reads the next message, waiting until `deadline`. `waiting_for` names what the
    /// caller waits for, for errors.
    pub(crate) fn read_msg(
        &mut self,
        deadline: Option<Instant>,
        waiting_for: &dyn Fn() -> String,
        in_flight: Option<&str>,
    ) -> Result<Msg<'_>, Error> {
        let mut started = None;
        let (a, b) = loop {
            if let Some(at) = self.framer.object_start() {
                if let Some((spans, len)) = fast_envelope(&self.framer.bytes()[at..]) {
                    if len <= self.max_message {
                        self.framer.consume_to(at + len);
                        let bytes = &self.framer.bytes()[at..at + len];
                        let text = std::str::from_utf8(bytes)
                            .map_err(|_| Error::protocol("message is not valid UTF-8", bytes))?;
                        let env = spans.resolve(text);
                        return finish_msg(&mut self.stats, text, env);
                    }
                }
            }
            match self.framer.next_frame() {
                Ok(Some(Frame::Object(a, b))) => break (a, b),
                Ok(Some(Frame::Sentinel)) => {
                    trace!(target: WIRE_TARGET, "<< <0xFF>");
                    return Ok(Msg::Sentinel);
                }
                Err(FrameError::Garbage(g)) => {
                    return Err(Error::protocol("bytes outside any JSON object", &g))
                }
                Err(FrameError::TooLarge) => {
                    return Err(Error::TooLarge {
                        limit: self.max_message,
                    })
                }
                Ok(None) => {}
            }
            let raw = self.fd.as_raw_fd();
            let mut wait_first = std::mem::take(&mut self.expect_wait);
            let n = self.framer.fill(|buf| loop {
                if std::mem::take(&mut wait_first) {
                    started.get_or_insert_with(Instant::now);
                    if !fd::wait(raw, false, deadline)? {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "timeout"));
                    }
                }
                match fd::recv(raw, buf)? {
                    Some(n) => return Ok(n),
                    None => {
                        started.get_or_insert_with(Instant::now);
                        if !fd::wait(raw, false, deadline)? {
                            return Err(io::Error::new(io::ErrorKind::TimedOut, "timeout"));
                        }
                    }
                }
            });
            match n {
                Ok(0) => {
                    return Err(Error::Disconnected {
                        command: in_flight.map(str::to_owned),
                    })
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(Error::Timeout {
                        waiting_for: waiting_for(),
                        waited: started.map_or(Duration::ZERO, |s| s.elapsed()),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(Error::Disconnected {
                        command: in_flight.map(str::to_owned),
                    })
                }
                Err(source) => {
                    return Err(Error::Io {
                        command: in_flight.map(str::to_owned),
                        source,
                    })
                }
            }
        };
        let bytes = &self.framer.bytes()[a..b];
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::protocol("message is not valid UTF-8", bytes))?;
        let env = slow_envelope(text)
            .map_err(|e| Error::protocol(format!("malformed message: {e}"), bytes))?;
        finish_msg(&mut self.stats, text, env)
    }
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

impl Core {
    /// Whether unread bytes are buffered (used to poll events without blocking).
    pub(crate) fn has_buffered(&self) -> bool {
        self.framer.has_pending()
    }

    /// Reads whatever the socket has right now into the buffer without blocking.
    /// Returns false at end of stream.
    pub(crate) fn fill_nonblocking(&mut self) -> Result<bool, Error> {
        let raw = self.fd.as_raw_fd();
        let mut eof = false;
        let r = self.framer.fill(|buf| match fd::recv(raw, buf)? {
            Some(0) => {
                eof = true;
                Ok(0)
            }
            Some(n) => Ok(n),
            None => Ok(0),
        });
        r.map_err(|source| Error::Io {
            command: None,
            source,
        })?;
        Ok(!eof)
    }
}

/// Builds the typed error of a reply.
pub(crate) fn qmp_error(command: &str, class: &str, desc: &str) -> Error {
    Error::Qmp(QmpError {
        command: command.to_owned(),
        class: ErrorClass::from_wire(class),
        desc: desc.to_owned(),
    })
}

fn format_u64(mut v: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &out[i..]
}

fn escape_lossy(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if c.is_ascii_graphic() {
                (c as char).to_string()
            } else {
                format!("<{c:#04x}>")
            }
        })
        .collect()
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
