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
//! use qmp_client::{ErrorClass, EventFilter, Request};
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
//! let qmp = mock.connect()?;
//! assert_eq!(qmp.greeting().unwrap().version.to_string(), "9.2.0");
//! let status = qmp.execute(Request::name("query-status"))?;
//! assert!(status.get().contains("running"));
//! qmp.execute(Request::raw("device_del", &json!({"id": "d0"})))?;
//! qmp.wait_event(&EventFilter::name("DEVICE_DELETED"), Duration::from_secs(5))?;
//! let err = qmp
//!     .execute(Request::raw("device_del", &json!({"id": "d1"})))
//!     .unwrap_err();
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
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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

mod server;

pub use server::MockServer;
use server::{Source, TempDir};
