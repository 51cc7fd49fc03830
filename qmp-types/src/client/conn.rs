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
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::{Error, ErrorClass, QmpError};
use super::fd;
use super::framing::{Frame, FrameError, Framer};
use crate::Timestamp;

/// The `log` target of wire tracing (every message in and out at `trace` level).
pub const WIRE_TARGET: &str = "qmp_types::wire";

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
                let s = UnixStream::connect(&path).map_err(connect_err)?;
                Ok((s.into(), true))
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

/// Every server message in one flat shape: which members are present decides the kind.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "return", borrow, default)]
    ret: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<ErrorBody<'a>>,
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
    pub(crate) default_timeout: Option<Duration>,
    max_message: usize,
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
            stats: Stats::default(),
            partial_write: false,
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
            trace!(target: WIRE_TARGET, ">> {}{}", escape_lossy(prefix), String::from_utf8_lossy(body));
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
        let started = Instant::now();
        let (a, b) = loop {
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
            let n = self.framer.fill(|buf| loop {
                match fd::recv(raw, buf)? {
                    Some(n) => return Ok(n),
                    None => {
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
                        waited: started.elapsed(),
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
        self.stats.messages += 1;
        self.stats.max_message = self.stats.max_message.max(b - a);
        let bytes = &self.framer.bytes()[a..b];
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::protocol("message is not valid UTF-8", bytes))?;
        if log_enabled!(target: WIRE_TARGET, Level::Trace) {
            trace!(target: WIRE_TARGET, "<< {text}");
        }
        let env: Envelope<'_> = serde_json::from_str(text)
            .map_err(|e| Error::protocol(format!("malformed message: {e}"), bytes))?;
        if let Some(name) = env.event {
            self.stats.events += 1;
            return Ok(Msg::Event {
                text,
                name,
                data: env.data.map(RawValue::get),
                timestamp: env.timestamp.unwrap_or(Timestamp {
                    seconds: -1,
                    microseconds: -1,
                }),
            });
        }
        let id = env.id.and_then(|v| v.get().parse::<u64>().ok());
        if let Some(e) = env.error {
            return Ok(Msg::Reply {
                id,
                result: Err((e.class, e.desc)),
            });
        }
        if let Some(r) = env.ret {
            return Ok(Msg::Reply {
                id,
                result: Ok(r.get()),
            });
        }
        if let Some(g) = env.greeting {
            return Ok(Msg::Greeting(g.get()));
        }
        Err(Error::protocol(
            "message is neither a reply, an event nor a greeting",
            bytes,
        ))
    }

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
