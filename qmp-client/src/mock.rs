//! A scripted QMP server for tests: it greets, negotiates, then follows a script of
//! expected requests (typed through [`Command`] or raw JSON), replies, events, delays
//! and hang-ups, and reports every deviation when the test calls [`MockServer::finish`].
//!
//! It speaks QMP as QEMU does (greeting, `qmp_capabilities`, `id` echoed, CRLF after
//! every message, events only after negotiation) and depends on no generated code:
//! anything implementing [`Command`] and [`TypedEvent`] (every generated command and
//! event) can be expected, returned and emitted. `qmp_types`' crate docs show it with
//! the generated API.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use qmp_client::mock::Script;
//! use qmp_client::{ErrorClass, EventFilter};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = Script::new()
//!     .version(9, 2, 0)
//!     .expect_raw("query-status", None)
//!     .returns_raw(json!({"status": "running", "running": true}))
//!     .expect_raw("device_del", Some(json!({"id": "d0"})))
//!     .returns_raw(json!({}))
//!     .event_raw("DEVICE_DELETED", Some(json!({"device": "d0", "path": "/d0"})))
//!     .expect_raw("device_del", Some(json!({"id": "d1"})))
//!     .fails(ErrorClass::DeviceNotFound, "Device 'd1' not found")
//!     .spawn()?;
//!
//! let mut qmp = mock.connect()?;
//! assert_eq!(qmp.greeting().unwrap().version.to_string(), "9.2.0");
//! let status = qmp.execute_raw("query-status", None)?;
//! assert!(status.get().contains("running"));
//! let args = serde_json::value::to_raw_value(&json!({"id": "d0"}))?;
//! qmp.execute_raw("device_del", Some(&args))?;
//! qmp.wait_event(&EventFilter::name("DEVICE_DELETED"), Duration::from_secs(5))?;
//! let args = serde_json::value::to_raw_value(&json!({"id": "d1"}))?;
//! let err = qmp.execute_raw("device_del", Some(&args)).unwrap_err();
//! assert_eq!(err.class(), Some(&ErrorClass::DeviceNotFound));
//! drop(qmp);
//! mock.finish()?; // Err lists unmet expectations and unexpected requests
//! # Ok(()) }
//! ```
//!
//! # What counts as a failure
//!
//! A request whose command or arguments differ from the script's next expectation is
//! answered with a `GenericError` whose description names what was expected and what
//! came, and the script stops there: the steps after it are reported as not reached,
//! and every later request is answered with an error and reported as unexpected.
//! Arguments are compared as JSON values (member order does not matter; absent
//! `arguments` equals `{}`), and a mismatch lists each differing member by its path.
//! A request that does not come within [`Script::timeout`] stops the script too.
//! [`MockServer::finish`] (or dropping the server, which then panics on failures unless
//! the thread is already panicking) collects the report.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qapi_runtime::{Command, Timestamp, TypedEvent};
use serde_json::Value;

use super::error::{Error, ErrorClass};
use super::qmp::Qmp;

/// How often a waiting server thread looks at whether [`MockServer::finish`] was called.
const POLL: Duration = Duration::from_millis(10);

/// A mock server's script: the greeting it sends, then its steps in order. Build it
/// with the chained methods, then start it with [`Script::spawn`] (a Unix socket) or
/// [`Script::spawn_pair`] (a connected socket pair).
#[derive(Debug, Clone)]
#[must_use = "a script does nothing until it is spawned"]
pub struct Script {
    version: (i64, i64, i64),
    package: String,
    capabilities: Vec<String>,
    negotiate: bool,
    timeout: Duration,
    steps: Vec<Step>,
    problems: Vec<String>,
}

#[derive(Debug, Clone)]
enum Step {
    Request(Box<Exchange>),
    Event {
        name: String,
        data: Option<String>,
        timestamp: Option<Timestamp>,
    },
    Bytes(Vec<u8>),
    Delay(Duration),
    Close,
}

#[derive(Debug, Clone)]
struct Exchange {
    name: String,
    /// The expected `arguments` object; `None`: any arguments.
    arguments: Option<Value>,
    /// Events, delays and bytes sent after the request came and before the reply.
    before_reply: Vec<Step>,
    reply: Reply,
}

#[derive(Debug, Clone)]
enum Reply {
    Return(String),
    Error { class: String, desc: String },
    Nothing,
}

impl Default for Script {
    fn default() -> Script {
        Script::new()
    }
}

impl Script {
    /// An empty script: the greeting of QEMU 10.0.2 offering `oob`, `qmp_capabilities`
    /// answered automatically, 10 s to wait for each request.
    pub fn new() -> Script {
        Script {
            version: (10, 0, 2),
            package: String::new(),
            capabilities: vec!["oob".to_owned()],
            negotiate: true,
            timeout: Duration::from_secs(10),
            steps: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The QEMU version the greeting announces.
    pub fn version(mut self, major: i64, minor: i64, micro: i64) -> Script {
        self.version = (major, minor, micro);
        self
    }

    /// The greeting's `package` string (empty by default, as upstream QEMU).
    pub fn package(mut self, package: &str) -> Script {
        package.clone_into(&mut self.package);
        self
    }

    /// The capabilities the greeting offers (`["oob"]` by default).
    pub fn capabilities(mut self, capabilities: &[&str]) -> Script {
        self.capabilities = capabilities.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// Does not answer `qmp_capabilities` by itself: the script expects it like any
    /// other command (and sends events before it, which QEMU never does).
    pub fn manual_negotiation(mut self) -> Script {
        self.negotiate = false;
        self
    }

    /// How long the server waits for each expected request and for each client
    /// connection (10 s by default); when it passes, the script stops with
    /// [`Failure::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Script {
        self.timeout = timeout;
        self
    }

    /// Expects `cmd`: a request for `C::NAME` whose arguments equal what `cmd` writes.
    pub fn expect<C: Command>(mut self, cmd: &C) -> Expect<C> {
        let mut args = Vec::new();
        let arguments = if C::HAS_ARGUMENTS {
            match cmd
                .write_arguments(&mut args)
                .map_err(|e| e.to_string())
                .and_then(|()| serde_json::from_slice::<Value>(&args).map_err(|e| e.to_string()))
            {
                Ok(v) => v,
                Err(e) => {
                    self.problems
                        .push(format!("cannot encode the arguments of {}: {e}", C::NAME));
                    Value::Object(Default::default())
                }
            }
        } else {
            Value::Object(Default::default())
        };
        Expect::new(self, C::NAME, Some(arguments))
    }

    /// Expects a request for `C::NAME` with any arguments.
    pub fn expect_any<C: Command>(self) -> Expect<C> {
        Expect::new(self, C::NAME, None)
    }

    /// Expects a request by name whose `arguments` equal `arguments` (`None`: no
    /// arguments, or `{}`).
    pub fn expect_raw(self, name: &str, arguments: Option<Value>) -> Expect<Untyped> {
        let arguments = arguments.unwrap_or_else(|| Value::Object(Default::default()));
        Expect::new(self, name, Some(arguments))
    }

    /// Expects a request by name with any arguments.
    pub fn expect_name(self, name: &str) -> Expect<Untyped> {
        Expect::new(self, name, None)
    }

    /// Sends a typed event, stamped with the current time.
    pub fn event<E: TypedEvent>(mut self, event: &E) -> Script {
        let step = typed_event(event, None);
        self.steps.push(step);
        self
    }

    /// Sends a typed event with the given timestamp.
    pub fn event_at<E: TypedEvent>(mut self, event: &E, timestamp: Timestamp) -> Script {
        let step = typed_event(event, Some(timestamp));
        self.steps.push(step);
        self
    }

    /// Sends an event by name with JSON `data` (`None`: no `data` member), stamped with
    /// the current time.
    pub fn event_raw(mut self, name: &str, data: Option<Value>) -> Script {
        self.steps.push(raw_event(name, data));
        self
    }

    /// Sends these bytes as they are (garbage, a split message, a reply to nothing).
    pub fn send_raw(mut self, bytes: impl Into<Vec<u8>>) -> Script {
        self.steps.push(Step::Bytes(bytes.into()));
        self
    }

    /// Waits before the next step.
    pub fn delay(mut self, delay: Duration) -> Script {
        self.steps.push(Step::Delay(delay));
        self
    }

    /// Closes the connection. Steps after it are served on the next connection (with a
    /// new greeting and negotiation), which only a Unix socket server accepts.
    pub fn close(mut self) -> Script {
        self.steps.push(Step::Close);
        self
    }

    /// Starts the server on a Unix socket in a fresh private directory (removed when
    /// the server is finished or dropped); connect to [`MockServer::path`], or with
    /// [`MockServer::connect`].
    ///
    /// Fails when the script itself is wrong (a typed value that cannot be written).
    pub fn spawn(self) -> io::Result<MockServer> {
        self.check()?;
        let dir = TempDir::new()?;
        let path = dir.0.join("qmp.sock");
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        MockServer::start(self, Source::Listener(listener), Some((dir, path)))
    }

    /// Starts the server on one end of a socket pair and returns the other end (for
    /// `Qmp::from_stream`). A [`Script::close`] ends the script there.
    pub fn spawn_pair(self) -> io::Result<(MockServer, UnixStream)> {
        self.check()?;
        let (server, client) = UnixStream::pair()?;
        Ok((
            MockServer::start(self, Source::Stream(Some(server)), None)?,
            client,
        ))
    }

    fn check(&self) -> io::Result<()> {
        if self.problems.is_empty() {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("mock QMP script: {}", self.problems.join("; ")),
        ))
    }
}

/// Marks an [`Expect`] of a request given by name ([`Script::expect_raw`]): its reply
/// is raw JSON or an error.
#[derive(Debug, Clone, Copy)]
pub enum Untyped {}

/// An expected request, awaiting its reply: [`Expect::returns`] (typed),
/// [`Expect::returns_raw`], [`Expect::fails`] or [`Expect::no_reply`] finish it and
/// give the script back. Events and delays added before that are sent after the
/// request came and before the reply (QEMU sends some events before a reply, such as
/// a job's first `JOB_STATUS_CHANGE`).
#[derive(Debug)]
#[must_use = "an expectation is added to the script by its reply"]
pub struct Expect<C> {
    script: Script,
    exchange: Exchange,
    command: PhantomData<fn() -> C>,
}

impl<C> Expect<C> {
    fn new(script: Script, name: &str, arguments: Option<Value>) -> Expect<C> {
        Expect {
            script,
            exchange: Exchange {
                name: name.to_owned(),
                arguments,
                before_reply: Vec::new(),
                reply: Reply::Nothing,
            },
            command: PhantomData,
        }
    }

    fn done(mut self, reply: Reply) -> Script {
        self.exchange.reply = reply;
        self.script
            .steps
            .push(Step::Request(Box::new(self.exchange)));
        self.script
    }

    /// Sends a typed event before the reply, stamped with the current time.
    pub fn event<E: TypedEvent>(mut self, event: &E) -> Expect<C> {
        self.exchange.before_reply.push(typed_event(event, None));
        self
    }

    /// Sends a typed event with the given timestamp before the reply.
    pub fn event_at<E: TypedEvent>(mut self, event: &E, timestamp: Timestamp) -> Expect<C> {
        self.exchange
            .before_reply
            .push(typed_event(event, Some(timestamp)));
        self
    }

    /// Sends an event by name with JSON `data` before the reply.
    pub fn event_raw(mut self, name: &str, data: Option<Value>) -> Expect<C> {
        self.exchange.before_reply.push(raw_event(name, data));
        self
    }

    /// Waits before replying (a slow command, or one that outlives the client's
    /// deadline).
    pub fn delay(mut self, delay: Duration) -> Expect<C> {
        self.exchange.before_reply.push(Step::Delay(delay));
        self
    }

    /// Replies with this JSON as `return`.
    pub fn returns_raw(self, ret: Value) -> Script {
        self.done(Reply::Return(ret.to_string()))
    }

    /// Replies with a QMP error.
    pub fn fails(self, class: ErrorClass, desc: &str) -> Script {
        self.done(Reply::Error {
            class: class.as_str().to_owned(),
            desc: desc.to_owned(),
        })
    }

    /// Sends no reply (as for a command with `success-response: false`, or to let the
    /// client's deadline pass).
    pub fn no_reply(self) -> Script {
        self.done(Reply::Nothing)
    }
}

impl<C: Command> Expect<C> {
    /// Replies with the typed return value, written by [`Command::write_return`].
    pub fn returns(mut self, ret: &C::Returns) -> Script {
        let mut out = Vec::new();
        match C::write_return(ret, &mut out) {
            Ok(()) => {
                let text = String::from_utf8(out).unwrap_or_else(|_| "{}".to_owned());
                self.done(Reply::Return(text))
            }
            Err(e) => {
                self.script
                    .problems
                    .push(format!("cannot write the return of {}: {e}", C::NAME));
                self.done(Reply::Return("{}".to_owned()))
            }
        }
    }
}

fn typed_event<E: TypedEvent>(event: &E, timestamp: Option<Timestamp>) -> Step {
    let mut data = Vec::new();
    event.write_data(&mut data);
    Step::Event {
        name: E::NAME.to_owned(),
        data: (!data.is_empty()).then(|| String::from_utf8_lossy(&data).into_owned()),
        timestamp,
    }
}

fn raw_event(name: &str, data: Option<Value>) -> Step {
    Step::Event {
        name: name.to_owned(),
        data: data.map(|d| d.to_string()),
        timestamp: None,
    }
}

/// One way the client's conversation departed from the script.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Failure {
    /// The request named another command than the script expected.
    WrongCommand {
        /// The script step (1-based).
        step: usize,
        /// The expected command.
        expected: String,
        /// The command that came.
        got: String,
        /// Its arguments.
        arguments: Value,
    },
    /// The expected command came with other arguments.
    WrongArguments {
        /// The script step (1-based).
        step: usize,
        /// The command.
        command: String,
        /// The expected `arguments` object.
        expected: Value,
        /// The `arguments` that came.
        got: Value,
        /// Each difference, by member path (`arguments.sync: expected "full", got "top"`).
        differences: Vec<String>,
    },
    /// A request after the script had ended or stopped.
    Unexpected {
        /// The command.
        command: String,
        /// Its arguments.
        arguments: Value,
    },
    /// A step the script never reached.
    Unmet {
        /// The script step (1-based).
        step: usize,
        /// What the step was (`expect query-status`, `event STOP`, ...).
        what: String,
        /// Why it was not reached.
        reason: String,
    },
    /// The expected request (or a client connection) did not come in time.
    Timeout {
        /// The script step (1-based), 0 for the negotiation.
        step: usize,
        /// What was awaited.
        what: String,
        /// How long the server waited.
        waited: Duration,
    },
    /// The client broke the protocol (not JSON, not a request, negotiation skipped,
    /// a capability that was not offered, `exec-oob` without `oob`).
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// The server thread did not end within its deadline after `finish` (it may be in
    /// a long delay), or died.
    Stuck {
        /// What is known.
        reason: String,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::WrongCommand {
                step,
                expected,
                got,
                arguments,
            } => write!(
                f,
                "step {step}: expected {expected}, got {got} with arguments {arguments}"
            ),
            Failure::WrongArguments {
                step,
                command,
                expected,
                got,
                differences,
            } => write!(
                f,
                "step {step}: {command} with other arguments ({}): expected {expected}, got {got}",
                differences.join("; ")
            ),
            Failure::Unexpected { command, arguments } => {
                write!(f, "unexpected request {command} with arguments {arguments}")
            }
            Failure::Unmet { step, what, reason } => {
                write!(f, "step {step} ({what}) not reached: {reason}")
            }
            Failure::Timeout { step, what, waited } => {
                write!(f, "step {step}: no {what} within {waited:?}")
            }
            Failure::Protocol { reason } => write!(f, "protocol: {reason}"),
            Failure::Stuck { reason } => write!(f, "server thread: {reason}"),
        }
    }
}

/// Everything that departed from the script, in the order it happened; the error of
/// [`MockServer::finish`].
#[derive(Debug, Clone, PartialEq)]
pub struct Failures(pub Vec<Failure>);

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mock QMP server: {} failure(s)", self.0.len())?;
        for failure in &self.0 {
            write!(f, "\n  - {failure}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failures {}

/// A running mock server (a thread). Call [`MockServer::finish`] at the end of the
/// test; dropping it unfinished also checks, and panics on failures.
#[derive(Debug)]
pub struct MockServer {
    path: Option<PathBuf>,
    dir: Option<TempDir>,
    finishing: Arc<AtomicBool>,
    report: Option<mpsc::Receiver<Vec<Failure>>>,
    /// How long `finish` waits for the thread: the script's delays plus its timeout.
    grace: Duration,
}

enum Source {
    Listener(UnixListener),
    Stream(Option<UnixStream>),
}

impl MockServer {
    fn start(
        script: Script,
        source: Source,
        socket: Option<(TempDir, PathBuf)>,
    ) -> io::Result<MockServer> {
        let finishing = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let grace = script.timeout + total_delay(&script.steps) + Duration::from_secs(1);
        let flag = Arc::clone(&finishing);
        thread::Builder::new()
            .name("qmp-mock".to_owned())
            .spawn(move || {
                let mut server = Server {
                    script,
                    source,
                    finishing: flag,
                    failures: Vec::new(),
                };
                server.run();
                let _ = tx.send(server.failures);
            })?;
        let (dir, path) = match socket {
            Some((d, p)) => (Some(d), Some(p)),
            None => (None, None),
        };
        Ok(MockServer {
            path,
            dir,
            finishing,
            report: Some(rx),
            grace,
        })
    }

    /// The Unix socket's path ([`Script::spawn`]; `None` for a socket pair).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Connects a client with default options (`Qmp::connect_unix` on
    /// [`MockServer::path`]).
    pub fn connect(&self) -> Result<Qmp, Error> {
        match &self.path {
            Some(p) => Qmp::connect_unix(p),
            None => Err(Error::Connect {
                endpoint: "mock server".to_owned(),
                source: io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a socket-pair mock server has no path: use the stream spawn_pair returned",
                ),
            }),
        }
    }

    /// Stops waiting for requests, lets the server send what the script has left
    /// before its next expected request, and reports: `Ok` when every step ran and no
    /// request departed from the script. The connection is closed.
    pub fn finish(mut self) -> Result<(), Failures> {
        self.collect()
    }

    fn collect(&mut self) -> Result<(), Failures> {
        let Some(rx) = self.report.take() else {
            return Ok(());
        };
        self.finishing.store(true, Ordering::SeqCst);
        let failures = match rx.recv_timeout(self.grace) {
            Ok(f) => f,
            Err(mpsc::RecvTimeoutError::Timeout) => vec![Failure::Stuck {
                reason: format!("still running {:?} after finish", self.grace),
            }],
            Err(mpsc::RecvTimeoutError::Disconnected) => vec![Failure::Stuck {
                reason: "the server thread panicked".to_owned(),
            }],
        };
        self.dir = None;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Failures(failures))
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Err(failures) = self.collect() {
            if !thread::panicking() {
                panic!("{failures}");
            }
        }
    }
}

fn total_delay(steps: &[Step]) -> Duration {
    steps
        .iter()
        .map(|s| match s {
            Step::Delay(d) => *d,
            Step::Request(x) => total_delay(&x.before_reply),
            _ => Duration::ZERO,
        })
        .sum()
}

fn describe(step: &Step) -> String {
    match step {
        Step::Request(x) => format!("expect {}", x.name),
        Step::Event { name, .. } => format!("event {name}"),
        Step::Bytes(b) => format!("send {} raw bytes", b.len()),
        Step::Delay(d) => format!("delay {d:?}"),
        Step::Close => "close".to_owned(),
    }
}

/// A request as it came.
#[derive(Debug)]
struct Request {
    name: String,
    arguments: Value,
    id: Option<Value>,
}

/// Why no request was read.
enum NoRequest {
    Closed,
    Finishing,
    Timeout,
    Io(io::Error),
}

/// One client connection.
struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    oob: bool,
}

impl Conn {
    fn send(&mut self, text: &[u8]) -> io::Result<()> {
        let mut msg = Vec::with_capacity(text.len() + 2);
        msg.extend_from_slice(text);
        msg.extend_from_slice(b"\r\n");
        self.stream.write_all(&msg)
    }

    /// Reads the next complete JSON object, waiting until `deadline`.
    fn read_object(
        &mut self,
        deadline: Instant,
        finishing: &AtomicBool,
    ) -> Result<Result<Value, String>, NoRequest> {
        loop {
            if let Some((end, skip)) = split_object(&self.buf) {
                let text: Vec<u8> = self.buf.drain(..end).collect();
                return Ok(serde_json::from_slice(&text[skip..]).map_err(|e| {
                    format!(
                        "not JSON ({e}): {}",
                        String::from_utf8_lossy(&text[skip..text.len().min(200)])
                    )
                }));
            }
            if finishing.load(Ordering::SeqCst) {
                return Err(NoRequest::Finishing);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NoRequest::Timeout);
            }
            self.stream
                .set_read_timeout(Some(left.min(POLL)))
                .map_err(NoRequest::Io)?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(NoRequest::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(NoRequest::Closed)
                }
                Err(e) => return Err(NoRequest::Io(e)),
            }
        }
    }

    /// Reads the next request; malformed ones are answered as QEMU answers them and
    /// reported, then the next is read.
    fn read_request(
        &mut self,
        deadline: Instant,
        finishing: &AtomicBool,
        failures: &mut Vec<Failure>,
    ) -> Result<Request, NoRequest> {
        loop {
            let value = match self.read_object(deadline, finishing)? {
                Ok(v) => v,
                Err(reason) => {
                    failures.push(Failure::Protocol { reason });
                    let _ = self.reply_error(None, "GenericError", "JSON parse error");
                    continue;
                }
            };
            match parse_request(value, self.oob) {
                Ok(r) => return Ok(r),
                Err((id, reason)) => {
                    let _ = self.reply_error(id.as_ref(), "GenericError", &reason);
                    failures.push(Failure::Protocol { reason });
                }
            }
        }
    }

    fn reply(&mut self, id: Option<&Value>, ret: &str) -> io::Result<()> {
        let mut text = format!("{{\"return\": {ret}");
        if let Some(id) = id {
            text.push_str(&format!(", \"id\": {id}"));
        }
        text.push('}');
        self.send(text.as_bytes())
    }

    fn reply_error(&mut self, id: Option<&Value>, class: &str, desc: &str) -> io::Result<()> {
        let mut reply = serde_json::json!({"error": {"class": class, "desc": desc}});
        if let Some(id) = id {
            reply["id"] = id.clone();
        }
        self.send(reply.to_string().as_bytes())
    }
}

/// Finds the end of the first complete JSON object in `buf`, skipping whitespace
/// before it: `(end, start)`. A stray byte before an object makes a one-byte "object"
/// that fails to parse (and is reported).
fn split_object(buf: &[u8]) -> Option<(usize, usize)> {
    let start = buf.iter().position(|b| !b.is_ascii_whitespace())?;
    if buf[start] != b'{' {
        return Some((start + 1, start));
    }
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for (i, &c) in buf.iter().enumerate().skip(start) {
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
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some((i + 1, start));
                }
            }
            _ => {}
        }
    }
    None
}

/// The request in `value`, or its `id` and QEMU's text for what is wrong with it.
fn parse_request(value: Value, oob: bool) -> Result<Request, (Option<Value>, String)> {
    let Value::Object(mut obj) = value else {
        return Err((None, "QMP input must be a JSON object".to_owned()));
    };
    let id = obj.remove("id");
    let name = match (obj.remove("execute"), obj.remove("exec-oob")) {
        (Some(Value::String(n)), None) => n,
        (None, Some(Value::String(n))) if oob => n,
        (None, Some(Value::String(_))) => {
            return Err((id, "QMP input member 'exec-oob' is unexpected".to_owned()))
        }
        (Some(_), Some(_)) => {
            return Err((
                id,
                "QMP input member 'exec-oob' clashes with 'execute'".to_owned(),
            ))
        }
        (None, None) => return Err((id, "QMP input lacks member 'execute'".to_owned())),
        _ => return Err((id, "QMP input member 'execute' must be a string".to_owned())),
    };
    let arguments = match obj.remove("arguments") {
        None => Value::Object(Default::default()),
        Some(a @ Value::Object(_)) => a,
        Some(_) => {
            return Err((
                id,
                "QMP input member 'arguments' must be an object".to_owned(),
            ))
        }
    };
    if let Some(k) = obj.keys().next() {
        return Err((id, format!("QMP input member '{k}' is unexpected")));
    }
    Ok(Request {
        name,
        arguments,
        id,
    })
}

/// The differences between two JSON values, by member path.
fn differences(path: &str, expected: &Value, got: &Value, out: &mut Vec<String>) {
    match (expected, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => differences(&format!("{path}.{k}"), v, w, out),
                    None => out.push(format!("{path}.{k}: missing (expected {v})")),
                }
            }
            for (k, w) in b {
                if !a.contains_key(k) {
                    out.push(format!("{path}.{k}: not expected (got {w})"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), v, w, out);
            }
        }
        _ if expected != got => out.push(format!("{path}: expected {expected}, got {got}")),
        _ => {}
    }
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        microseconds: i64::from(d.subsec_micros()),
    }
}

/// The server thread's state.
struct Server {
    script: Script,
    source: Source,
    finishing: Arc<AtomicBool>,
    failures: Vec<Failure>,
}

/// How a step ended the script early.
struct Stop(String);

impl Server {
    fn run(&mut self) {
        let steps = std::mem::take(&mut self.script.steps);
        let mut conn: Option<Conn> = None;
        let mut stopped = None;
        for (i, step) in steps.iter().enumerate() {
            let n = i + 1;
            if let Some(reason) = &stopped {
                self.failures.push(Failure::Unmet {
                    step: n,
                    what: describe(step),
                    reason: String::clone(reason),
                });
                continue;
            }
            if let Step::Delay(d) = step {
                thread::sleep(*d);
                continue;
            }
            if conn.is_none() {
                match self.connect(n) {
                    Ok(c) => conn = Some(c),
                    Err(Stop(reason)) => {
                        self.failures.push(Failure::Unmet {
                            step: n,
                            what: describe(step),
                            reason: reason.clone(),
                        });
                        stopped = Some(reason);
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            match self.step(n, step, c) {
                Ok(true) => {}
                Ok(false) => conn = None,
                Err(Stop(reason)) => stopped = Some(reason),
            }
        }
        // Past the script: every request is unexpected, until the client leaves or
        // the test finishes.
        if let Some(c) = conn.as_mut() {
            loop {
                let far = Instant::now() + Duration::from_secs(24 * 3600);
                match c.read_request(far, &self.finishing, &mut self.failures) {
                    Ok(r) => {
                        let desc = format!(
                            "mock QMP server: unexpected {} (the script has ended)",
                            r.name
                        );
                        let _ = c.reply_error(r.id.as_ref(), "GenericError", &desc);
                        self.failures.push(Failure::Unexpected {
                            command: r.name,
                            arguments: r.arguments,
                        });
                    }
                    Err(_) => break,
                }
            }
        }
    }

    /// Accepts a connection, greets and negotiates.
    fn connect(&mut self, step: usize) -> Result<Conn, Stop> {
        let deadline = Instant::now() + self.script.timeout;
        let stream = match &mut self.source {
            Source::Stream(s) => match s.take() {
                Some(s) => s,
                None => {
                    return Err(Stop(
                        "the connection was closed, and a socket-pair server accepts no other"
                            .to_owned(),
                    ))
                }
            },
            Source::Listener(l) => loop {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false)
                            .map_err(|e| Stop(format!("cannot use the connection: {e}")))?;
                        break s;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if self.finishing.load(Ordering::SeqCst) {
                            return Err(Stop("no client connected".to_owned()));
                        }
                        if Instant::now() >= deadline {
                            self.failures.push(Failure::Timeout {
                                step,
                                what: "client connection".to_owned(),
                                waited: self.script.timeout,
                            });
                            return Err(Stop("no client connected".to_owned()));
                        }
                        thread::sleep(POLL);
                    }
                    Err(e) => return Err(Stop(format!("accept failed: {e}"))),
                }
            },
        };
        let _ = stream.set_write_timeout(Some(self.script.timeout));
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
            oob: false,
        };
        let (major, minor, micro) = self.script.version;
        let greeting = serde_json::json!({"QMP": {
            "version": {"qemu": {"micro": micro, "minor": minor, "major": major},
                        "package": self.script.package},
            "capabilities": self.script.capabilities,
        }});
        conn.send(greeting.to_string().as_bytes())
            .map_err(|e| Stop(format!("cannot send the greeting: {e}")))?;
        if self.script.negotiate {
            self.negotiate(&mut conn, deadline)?;
        }
        Ok(conn)
    }

    fn negotiate(&mut self, conn: &mut Conn, deadline: Instant) -> Result<(), Stop> {
        loop {
            let r = match conn.read_request(deadline, &self.finishing, &mut self.failures) {
                Ok(r) => r,
                Err(e) => {
                    let reason = self.no_request(0, "qmp_capabilities", e);
                    return Err(Stop(reason));
                }
            };
            if r.name != "qmp_capabilities" {
                self.failures.push(Failure::Protocol {
                    reason: format!("{} before qmp_capabilities", r.name),
                });
                let _ = conn.reply_error(
                    r.id.as_ref(),
                    "CommandNotFound",
                    "Expecting capabilities negotiation with 'qmp_capabilities'",
                );
                continue;
            }
            let mut enabled = Vec::new();
            match r.arguments.get("enable") {
                None => {}
                Some(Value::Array(caps)) => {
                    for c in caps {
                        match c.as_str() {
                            Some(c) if self.script.capabilities.iter().any(|o| o == c) => {
                                enabled.push(c.to_owned());
                            }
                            _ => {
                                self.failures.push(Failure::Protocol {
                                    reason: format!(
                                        "qmp_capabilities enables {c}, which the greeting did not offer"
                                    ),
                                });
                                let _ = conn.reply_error(
                                    r.id.as_ref(),
                                    "GenericError",
                                    &format!("Capability '{c}' not available"),
                                );
                                return Err(Stop("negotiation failed".to_owned()));
                            }
                        }
                    }
                }
                Some(other) => {
                    self.failures.push(Failure::Protocol {
                        reason: format!("qmp_capabilities with enable = {other}"),
                    });
                }
            }
            conn.oob = enabled.iter().any(|c| c == "oob");
            conn.reply(r.id.as_ref(), "{}")
                .map_err(|e| Stop(format!("cannot reply to qmp_capabilities: {e}")))?;
            return Ok(());
        }
    }

    /// Records why no request came and returns the reason the script stops.
    fn no_request(&mut self, step: usize, what: &str, why: NoRequest) -> String {
        match why {
            NoRequest::Closed => "the client closed the connection".to_owned(),
            NoRequest::Finishing => "finish() was called first".to_owned(),
            NoRequest::Timeout => {
                self.failures.push(Failure::Timeout {
                    step,
                    what: format!("{what} request"),
                    waited: self.script.timeout,
                });
                format!("no {what} request within {:?}", self.script.timeout)
            }
            NoRequest::Io(e) => format!("I/O error: {e}"),
        }
    }

    /// Runs one step on a connection: `Ok(false)` when it closed the connection.
    fn step(&mut self, n: usize, step: &Step, conn: &mut Conn) -> Result<bool, Stop> {
        let io_stop = |e: io::Error| Stop(format!("cannot send to the client: {e}"));
        match step {
            Step::Delay(d) => thread::sleep(*d),
            Step::Close => {
                let _ = conn.stream.shutdown(std::net::Shutdown::Both);
                return Ok(false);
            }
            Step::Bytes(b) => conn.stream.write_all(b).map_err(io_stop)?,
            Step::Event {
                name,
                data,
                timestamp,
            } => send_event(conn, name, data.as_deref(), *timestamp).map_err(io_stop)?,
            Step::Request(x) => {
                let deadline = Instant::now() + self.script.timeout;
                let r = match conn.read_request(deadline, &self.finishing, &mut self.failures) {
                    Ok(r) => r,
                    Err(e) => {
                        let timed_out = matches!(e, NoRequest::Timeout);
                        let reason = self.no_request(n, &x.name, e);
                        if !timed_out {
                            self.failures.push(Failure::Unmet {
                                step: n,
                                what: describe(step),
                                reason: reason.clone(),
                            });
                        }
                        return Err(Stop(reason));
                    }
                };
                if r.name != x.name {
                    let desc = format!(
                        "mock QMP server: step {n}: expected {}, got {}",
                        x.name, r.name
                    );
                    let _ = conn.reply_error(r.id.as_ref(), "GenericError", &desc);
                    self.failures.push(Failure::WrongCommand {
                        step: n,
                        expected: x.name.clone(),
                        got: r.name,
                        arguments: r.arguments,
                    });
                    return Err(Stop(format!("step {n} failed")));
                }
                if let Some(expected) = &x.arguments {
                    let mut diff = Vec::new();
                    differences("arguments", expected, &r.arguments, &mut diff);
                    if !diff.is_empty() {
                        let desc = format!(
                            "mock QMP server: step {n}: {} with other arguments: {}",
                            x.name,
                            diff.join("; ")
                        );
                        let _ = conn.reply_error(r.id.as_ref(), "GenericError", &desc);
                        self.failures.push(Failure::WrongArguments {
                            step: n,
                            command: x.name.clone(),
                            expected: expected.clone(),
                            got: r.arguments,
                            differences: diff,
                        });
                        return Err(Stop(format!("step {n} failed")));
                    }
                }
                for before in &x.before_reply {
                    self.step(n, before, conn)?;
                }
                match &x.reply {
                    Reply::Return(ret) => conn.reply(r.id.as_ref(), ret).map_err(io_stop)?,
                    Reply::Error { class, desc } => conn
                        .reply_error(r.id.as_ref(), class, desc)
                        .map_err(io_stop)?,
                    Reply::Nothing => {}
                }
            }
        }
        Ok(true)
    }
}

fn send_event(
    conn: &mut Conn,
    name: &str,
    data: Option<&str>,
    timestamp: Option<Timestamp>,
) -> io::Result<()> {
    let ts = timestamp.unwrap_or_else(now);
    let name = Value::String(name.to_owned());
    let mut text = format!(
        "{{\"timestamp\": {{\"seconds\": {}, \"microseconds\": {}}}, \"event\": {name}",
        ts.seconds, ts.microseconds
    );
    if let Some(d) = data {
        text.push_str(", \"data\": ");
        text.push_str(d);
    }
    text.push('}');
    conn.send(text.as_bytes())
}

/// A private temporary directory (mode 0700) for the socket, removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> io::Result<TempDir> {
        static N: AtomicU64 = AtomicU64::new(0);
        let mut base = std::env::temp_dir();
        // sun_path holds 107 bytes: fall back to /tmp for long TMPDIRs.
        if base.as_os_str().len() > 60 {
            base = PathBuf::from("/tmp");
        }
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for attempt in 0..100u32 {
            let dir = base.join(format!(
                "qmp-mock-{}-{}-{:x}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed),
                stamp.wrapping_add(attempt)
            ));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temp dir name",
        ))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_each_member() {
        let mut out = Vec::new();
        differences(
            "arguments",
            &json!({"device": "d0", "sync": "full", "opts": {"a": [1, 2]}}),
            &json!({"sync": "top", "opts": {"a": [1, 3]}, "extra": true, "device": "d0"}),
            &mut out,
        );
        assert_eq!(
            out,
            [
                "arguments.opts.a[1]: expected 2, got 3",
                "arguments.sync: expected \"full\", got \"top\"",
                "arguments.extra: not expected (got true)",
            ]
        );
        out.clear();
        differences(
            "arguments",
            &json!({"b": 1, "a": 2}),
            &json!({"a": 2, "b": 1}),
            &mut out,
        );
        assert!(out.is_empty(), "member order does not matter");
    }

    #[test]
    fn split_object_skips_whitespace_and_strings() {
        assert_eq!(split_object(b"  {\"a\": \"}\"} {"), Some((12, 2)));
        assert_eq!(split_object(b"{\"a\": {"), None);
        assert_eq!(split_object(b"x{}"), Some((1, 0)));
        assert_eq!(split_object(b" \r\n"), None);
    }

    #[test]
    fn requests_are_checked_as_qemu_checks_them() {
        let r = parse_request(json!({"execute": "stop", "id": 3}), false).unwrap();
        assert_eq!((r.name.as_str(), r.id), ("stop", Some(json!(3))));
        assert_eq!(r.arguments, json!({}));
        let e = parse_request(json!({"exec-oob": "yank"}), false).unwrap_err();
        assert_eq!(e.1, "QMP input member 'exec-oob' is unexpected");
        assert_eq!(
            parse_request(json!({"exec-oob": "yank"}), true)
                .unwrap()
                .name,
            "yank"
        );
        let e = parse_request(json!({"execute": "stop", "x": 1, "id": "a"}), false).unwrap_err();
        assert_eq!(
            e,
            (
                Some(json!("a")),
                "QMP input member 'x' is unexpected".into()
            )
        );
        let e = parse_request(json!({"execute": "stop", "arguments": []}), false).unwrap_err();
        assert_eq!(e.1, "QMP input member 'arguments' must be an object");
    }
}
