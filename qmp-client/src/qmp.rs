//! The QMP client: handshake, command execution (typed and raw), events, fd passing,
//! out-of-band execution and HMP.

use std::collections::VecDeque;
use std::fmt;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use log::debug;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::conn::{qmp_error, Core, Endpoint, Msg, Stats};
use super::error::Error;
use super::fd;
use super::introspect::{self, ServerSchema};
use qapi_runtime::{Command, EventSet, Timestamp};

/// Whether to enable out-of-band execution during negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OobPolicy {
    /// Enable `oob` when the greeting offers it (the default).
    #[default]
    IfOffered,
    /// Never enable it (saves QEMU parsing 31 request bytes once).
    Never,
    /// Fail to connect unless it is offered.
    Require,
}

/// Connection options. Build with [`Options::new`] and the setters.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) oob: OobPolicy,
    pub(crate) max_message: usize,
    pub(crate) event_capacity: usize,
    pub(crate) negotiate: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(5),
            timeout: Some(Duration::from_secs(30)),
            oob: OobPolicy::IfOffered,
            max_message: 10 << 20,
            event_capacity: 1024,
            negotiate: true,
        }
    }
}

impl Options {
    /// The defaults: 5 s to connect (socket, greeting, negotiation), 30 s per call,
    /// `oob` if offered, 10 MiB messages, 1024 queued events, negotiation on.
    pub fn new() -> Options {
        Options::default()
    }

    /// Deadline for connecting, reading the greeting and negotiating.
    pub fn connect_timeout(mut self, t: Duration) -> Options {
        self.connect_timeout = t;
        self
    }

    /// Default deadline of every call (`None`: wait forever).
    pub fn timeout(mut self, t: Option<Duration>) -> Options {
        self.timeout = t;
        self
    }

    /// Out-of-band policy.
    pub fn oob(mut self, p: OobPolicy) -> Options {
        self.oob = p;
        self
    }

    /// Largest message accepted from the peer, in bytes.
    pub fn max_message(mut self, bytes: usize) -> Options {
        self.max_message = bytes;
        self
    }

    /// How many events are queued before the oldest is dropped (and counted).
    pub fn event_capacity(mut self, n: usize) -> Options {
        self.event_capacity = n.max(1);
        self
    }

    /// Whether to run `qmp_capabilities` (false for a connection that is already in
    /// command mode, e.g. an inherited fd). With false no greeting is read either.
    pub fn negotiate(mut self, yes: bool) -> Options {
        self.negotiate = yes;
        self
    }
}

/// Per-call options for [`Qmp::execute_with`] and [`Qmp::execute_raw_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Call<'a> {
    timeout: Option<Option<Duration>>,
    oob: bool,
    fds: &'a [BorrowedFd<'a>],
}

impl<'a> Call<'a> {
    /// A call with the connection's defaults.
    pub fn new() -> Call<'a> {
        Call::default()
    }

    /// Overrides the deadline (`None`: wait forever).
    pub fn timeout(mut self, t: Option<Duration>) -> Call<'a> {
        self.timeout = Some(t);
        self
    }

    /// Sends `exec-oob` instead of `execute`.
    pub fn oob(mut self) -> Call<'a> {
        self.oob = true;
        self
    }

    pub(crate) fn is_oob(&self) -> bool {
        self.oob
    }

    pub(crate) fn timeout_override(&self) -> Option<Option<Duration>> {
        self.timeout
    }

    /// Passes these file descriptors (SCM_RIGHTS) with the command's own message.
    /// QEMU keeps only the last set received, so pass them to the command that uses them.
    pub fn fds(mut self, fds: &'a [BorrowedFd<'a>]) -> Call<'a> {
        self.fds = fds;
        self
    }
}

/// QEMU's version from the greeting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Version {
    /// Major version.
    pub major: i64,
    /// Minor version.
    pub minor: i64,
    /// Micro version (50: development tree, 90 and up: release candidate).
    pub micro: i64,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// The parsed QMP greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// QEMU's version.
    pub version: Version,
    /// The package string (empty upstream, set by distributions).
    pub package: String,
    /// Offered capabilities, e.g. `oob`.
    pub capabilities: Vec<String>,
    /// The greeting's inner JSON object, verbatim.
    pub json: String,
}

#[derive(Deserialize)]
struct GreetingWire {
    version: VersionWire,
    #[serde(default)]
    capabilities: Vec<String>,
}

#[derive(Deserialize)]
struct VersionWire {
    qemu: Version,
    #[serde(default)]
    package: String,
}

/// An event as received: the message is kept whole, name and data are slices of it.
#[derive(Clone)]
pub struct Event {
    text: Box<str>,
    name: (usize, usize),
    owned_name: Option<Box<str>>,
    data: Option<(usize, usize)>,
    timestamp: Timestamp,
    seq: u64,
}

impl Event {
    fn new(text: &str, name: &str, data: Option<&str>, timestamp: Timestamp, seq: u64) -> Event {
        let base = text.as_ptr() as usize;
        let range = |s: &str| -> Option<(usize, usize)> {
            let at = (s.as_ptr() as usize).checked_sub(base)?;
            (at + s.len() <= text.len()).then_some((at, at + s.len()))
        };
        let (name_range, owned_name) = match range(name) {
            Some(r) => (r, None),
            None => ((0, 0), Some(name.into())),
        };
        Event {
            text: text.into(),
            name: name_range,
            owned_name,
            data: data.and_then(range),
            timestamp,
            seq,
        }
    }

    /// The event name, e.g. `STOP`.
    pub fn name(&self) -> &str {
        match &self.owned_name {
            Some(n) => n,
            None => &self.text[self.name.0..self.name.1],
        }
    }

    /// The JSON text of the `data` member (`None` when the event has no data).
    pub fn data(&self) -> Option<&str> {
        self.data.map(|(a, b)| &self.text[a..b])
    }

    /// The `data` member parsed into a [`serde_json::Value`] (`Null` when absent).
    pub fn data_value(&self) -> serde_json::Value {
        self.data()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// When QEMU emitted it (`-1`/`-1` when the host clock was unavailable).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The whole message as received.
    pub fn json(&self) -> &str {
        &self.text
    }

    /// Position in the connection's event stream (increases by one per event).
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Decodes into a typed event set (e.g. the generated `Event` enum).
    pub fn decode<E: EventSet>(&self) -> Result<E, Error> {
        E::decode_event(self.name(), self.data(), self.timestamp)
            .map_err(|e| Error::decode(self.name(), e, self.data().unwrap_or("")))
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name())
            .field("data", &self.data())
            .field("timestamp", &self.timestamp)
            .field("seq", &self.seq)
            .finish()
    }
}

type Predicate = Box<dyn Fn(&Event) -> bool + Send + Sync>;

/// Which events [`Qmp::wait_event`] accepts: a set of names (empty: any) and an
/// optional predicate.
#[derive(Default)]
pub struct EventFilter {
    names: Vec<String>,
    predicate: Option<Predicate>,
}

impl fmt::Debug for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventFilter")
            .field("names", &self.names)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

impl EventFilter {
    /// Accepts any event.
    pub fn any() -> EventFilter {
        EventFilter::default()
    }

    /// Accepts an event with this name.
    pub fn name(name: &str) -> EventFilter {
        EventFilter::names(&[name])
    }

    /// Accepts an event with any of these names.
    pub fn names(names: &[&str]) -> EventFilter {
        EventFilter {
            names: names.iter().map(|s| (*s).to_owned()).collect(),
            predicate: None,
        }
    }

    /// Also requires `predicate` to hold (e.g. on [`Event::data_value`]).
    pub fn matching(
        mut self,
        predicate: impl Fn(&Event) -> bool + Send + Sync + 'static,
    ) -> EventFilter {
        self.predicate = Some(Box::new(predicate));
        self
    }

    /// Also requires `predicate` to hold for the event decoded into a typed event set
    /// (e.g. the generated `qmp_types::qmp::Event`); events that fail to decode are
    /// not accepted.
    pub fn decoded<E: EventSet + 'static>(
        self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> EventFilter {
        self.matching(move |e| e.decode::<E>().is_ok_and(|typed| predicate(&typed)))
    }

    /// Whether `event` passes the filter.
    pub fn accepts(&self, event: &Event) -> bool {
        (self.names.is_empty() || self.names.iter().any(|n| n == event.name()))
            && self.predicate.as_ref().is_none_or(|p| p(event))
    }
}

/// The result of `add-fd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AddFdInfo {
    /// The fd set the descriptor was added to.
    #[serde(rename = "fdset-id")]
    pub fdset_id: i64,
    /// The descriptor's number inside QEMU.
    pub fd: i64,
}

/// A connected, negotiated QMP session. See the [module docs](super) for examples.
///
/// One client per monitor: QEMU serves a second client on the same socket only after
/// the first one leaves (connecting then times out waiting for the greeting).
pub struct Qmp {
    core: Core,
    greeting: Option<Greeting>,
    oob: bool,
    events: VecDeque<Event>,
    event_capacity: usize,
    next_seq: u64,
    /// Copy of the last successful reply's `return` text.
    reply: String,
    /// The server's `query-qmp-schema`, fetched on first use.
    schema: Option<Box<ServerSchema>>,
}

impl fmt::Debug for Qmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qmp")
            .field("greeting", &self.greeting)
            .field("oob", &self.oob)
            .field("queued_events", &self.events.len())
            .field("schema", &self.schema)
            .field("stats", &self.core.stats)
            .finish()
    }
}

impl Qmp {
    /// Connects to a Unix socket with default [`Options`].
    pub fn connect_unix(path: impl AsRef<Path>) -> Result<Qmp, Error> {
        Qmp::connect(
            Endpoint::Unix(path.as_ref().to_owned()),
            &Options::default(),
        )
    }

    /// Connects to `endpoint`, reads the greeting and negotiates capabilities, all
    /// within [`Options::connect_timeout`].
    pub fn connect(endpoint: Endpoint, opts: &Options) -> Result<Qmp, Error> {
        let deadline = Instant::now() + opts.connect_timeout;
        let (fd, unix) = endpoint.open(deadline)?;
        Qmp::handshake(fd, unix, opts, deadline)
    }

    /// Waits for QEMU to connect to `listener` (`-qmp unix:PATH,server=off`), then
    /// handshakes; all within the connect deadline.
    pub fn accept(listener: &UnixListener, opts: &Options) -> Result<Qmp, Error> {
        let deadline = Instant::now() + opts.connect_timeout;
        wait_accept(listener.as_raw_fd(), deadline)?;
        let (s, _) = listener.accept().map_err(|source| Error::Connect {
            endpoint: "accepted unix connection".into(),
            source,
        })?;
        Qmp::handshake(s.into(), true, opts, deadline)
    }

    /// Like [`Qmp::accept`] for a TCP listener (`-qmp tcp:HOST:PORT,server=off`).
    pub fn accept_tcp(listener: &TcpListener, opts: &Options) -> Result<Qmp, Error> {
        let deadline = Instant::now() + opts.connect_timeout;
        wait_accept(listener.as_raw_fd(), deadline)?;
        let (s, _) = listener.accept().map_err(|source| Error::Connect {
            endpoint: "accepted tcp connection".into(),
            source,
        })?;
        let _ = s.set_nodelay(true);
        Qmp::handshake(s.into(), false, opts, deadline)
    }

    /// Uses an already-connected stream or fd (see [`Endpoint::Fd`] and the `From` impls).
    pub fn from_stream(stream: impl Into<Endpoint>, opts: &Options) -> Result<Qmp, Error> {
        Qmp::connect(stream.into(), opts)
    }

    fn handshake(fd: OwnedFd, unix: bool, opts: &Options, deadline: Instant) -> Result<Qmp, Error> {
        let mut qmp = Qmp {
            core: Core::new(fd, unix, opts.max_message, opts.timeout),
            greeting: None,
            oob: false,
            events: VecDeque::new(),
            event_capacity: opts.event_capacity,
            next_seq: 0,
            reply: String::new(),
            schema: None,
        };
        if !opts.negotiate {
            return Ok(qmp);
        }
        let greeting = loop {
            let msg = qmp.core.read_msg(
                Some(deadline),
                &|| "the QMP greeting (is another client connected to this monitor?)".into(),
                None,
            )?;
            match msg {
                Msg::Greeting(g) => break parse_greeting(g)?,
                // Tolerate anything before the greeting (older QEMUs, proxies).
                _ => continue,
            }
        };
        let offered = greeting.capabilities.iter().any(|c| c == "oob");
        let enable = match opts.oob {
            OobPolicy::Never => false,
            OobPolicy::IfOffered => offered,
            OobPolicy::Require if offered => true,
            OobPolicy::Require => {
                return Err(Error::Negotiation(
                    "the greeting does not offer the required oob capability".into(),
                ))
            }
        };
        qmp.greeting = Some(greeting);
        let mut w = qmp.core.begin_request("qmp_capabilities", false);
        if enable {
            w.extend_from_slice(b",\"arguments\":{\"enable\":[\"oob\"]}");
        }
        let id = qmp
            .core
            .send_request(w, true, b"", &[], Some(deadline), "qmp_capabilities")?;
        match qmp.wait_reply(id, "qmp_capabilities", Some(deadline), None) {
            Ok(()) => {}
            Err(Error::Qmp(e)) => return Err(Error::Negotiation(e.to_string())),
            Err(e) => return Err(e),
        }
        qmp.oob = enable;
        Ok(qmp)
    }

    /// The greeting (absent when negotiation was skipped).
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// Whether out-of-band execution was negotiated.
    pub fn oob_enabled(&self) -> bool {
        self.oob
    }

    /// Counters of this connection.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Changes the default deadline of later calls (`None`: wait forever).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.core.default_timeout = timeout;
    }

    /// What the server has (commands, events, arguments): its `query-qmp-schema`,
    /// fetched on the first call (one request, with the default deadline) and kept for
    /// the life of the connection. A QEMU process never changes its schema.
    ///
    /// # Errors
    ///
    /// Whatever executing `query-qmp-schema` fails with ([`Error::Qmp`] on a server
    /// without introspection, a timeout, a disconnect), or [`Error::Decode`] when the
    /// reply is not a `SchemaInfo` list. Nothing is cached then: the next call retries.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), qmp_client::Error> {
    /// let vm = qmp_client::Launcher::qemu().spawn()?;
    /// let mut qmp = vm.connect()?;
    /// let schema = qmp.schema()?;
    /// let queries = schema.commands().filter(|c| c.starts_with("query-")).count();
    /// println!("{queries} query commands, {} events", schema.events().count());
    /// # Ok(()) }
    /// ```
    pub fn schema(&mut self) -> Result<&ServerSchema, Error> {
        let schema = match self.schema.take() {
            Some(schema) => schema,
            None => Box::new(self.fetch_schema()?),
        };
        Ok(self.schema.insert(schema))
    }

    fn fetch_schema(&mut self) -> Result<ServerSchema, Error> {
        let call = Call::default();
        let w = self.begin(introspect::COMMAND, false, &call)?;
        let json = self.roundtrip(w, introspect::COMMAND, true, &call, None)?;
        ServerSchema::from_json(json).map_err(|e| Error::decode(introspect::COMMAND, e, json))
    }

    /// Whether the server has the command `name`, from its schema ([`Qmp::schema`]:
    /// fetched on first use, then cached). Branch on this, not on version numbers:
    /// distributions backport commands, and builds leave some out.
    ///
    /// # Errors
    ///
    /// Only from fetching the schema (see [`Qmp::schema`]); a missing command is `Ok(false)`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), qmp_client::Error> {
    /// # let mut qmp = qmp_client::Qmp::connect_unix("/run/qmp.sock")?;
    /// if qmp.has_command("blockdev-set-active")? {
    ///     // QEMU 10.0 and later.
    /// }
    /// # Ok(()) }
    /// ```
    pub fn has_command(&mut self, name: &str) -> Result<bool, Error> {
        Ok(self.schema()?.has_command(name))
    }

    /// [`Qmp::has_command`] for a typed command, by its wire name [`Command::NAME`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // With qmp-types: `qmp.supports::<qmp_types::qmp::commands::QueryAudiodevs>()`.
    /// fn run_if_supported<C: qapi_runtime::Command>(
    ///     qmp: &mut qmp_client::Qmp,
    ///     cmd: &C,
    /// ) -> Result<Option<C::Returns>, qmp_client::Error> {
    ///     if !qmp.supports::<C>()? {
    ///         return Ok(None);
    ///     }
    ///     qmp.execute(cmd).map(Some)
    /// }
    /// ```
    pub fn supports<C: Command>(&mut self) -> Result<bool, Error> {
        self.has_command(C::NAME)
    }

    /// Whether the server can emit the event `name` (e.g. `DEVICE_DELETED`), from its
    /// schema (fetched on first use, then cached).
    ///
    /// # Errors
    ///
    /// Only from fetching the schema (see [`Qmp::schema`]); a missing event is `Ok(false)`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), qmp_client::Error> {
    /// # let mut qmp = qmp_client::Qmp::connect_unix("/run/qmp.sock")?;
    /// let unplug_errors = qmp.has_event("DEVICE_UNPLUG_GUEST_ERROR")?;
    /// # Ok(()) }
    /// ```
    pub fn has_event(&mut self, name: &str) -> Result<bool, Error> {
        Ok(self.schema()?.has_event(name))
    }

    /// Whether the command `command` takes the argument `argument` (a top-level
    /// member of its arguments; for a union such as `blockdev-add`'s, a member of any
    /// variant counts), from the server's schema (fetched on first use, then cached).
    /// False when the command itself is missing.
    ///
    /// # Errors
    ///
    /// Only from fetching the schema (see [`Qmp::schema`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), qmp_client::Error> {
    /// # let mut qmp = qmp_client::Qmp::connect_unix("/run/qmp.sock")?;
    /// let args = if qmp.has_argument("query-machines", "compat-props")? {
    ///     Some(serde_json::value::to_raw_value(&serde_json::json!({"compat-props": true})).unwrap())
    /// } else {
    ///     None // QEMU before 9.1
    /// };
    /// let machines = qmp.execute_raw("query-machines", args.as_deref())?;
    /// # Ok(()) }
    /// ```
    pub fn has_argument(&mut self, command: &str, argument: &str) -> Result<bool, Error> {
        Ok(self.schema()?.has_argument(command, argument))
    }

    /// Executes a typed command and returns its typed result, with the default deadline.
    pub fn execute<C: Command>(&mut self, cmd: &C) -> Result<C::Returns, Error> {
        self.execute_with(cmd, &Call::default())
    }

    /// Executes a typed command with per-call options (deadline, `exec-oob`, fds).
    pub fn execute_with<C: Command>(
        &mut self,
        cmd: &C,
        call: &Call<'_>,
    ) -> Result<C::Returns, Error> {
        let mut w = self.begin(C::NAME, C::ALLOW_OOB, call)?;
        if C::HAS_ARGUMENTS {
            if let Err(e) = Core::push_arguments(&mut w, |w| cmd.write_arguments(w)) {
                return Err(Error::Encode {
                    command: C::NAME.to_owned(),
                    source: e,
                });
            }
        }
        let json = self.roundtrip(w, C::NAME, C::SUCCESS_RESPONSE, call, None)?;
        C::decode_return(json).map_err(|e| Error::decode(C::NAME, e, json))
    }

    /// Executes a typed command and waits for the first event accepted by `filter`
    /// that arrives after the command was written (the filter is armed first, so the
    /// event cannot be missed, whether it comes before or after the reply).
    pub fn execute_and_wait<C: Command>(
        &mut self,
        cmd: &C,
        filter: &EventFilter,
        timeout: Duration,
    ) -> Result<(C::Returns, Event), Error> {
        let deadline = Instant::now() + timeout;
        let call = Call::new().timeout(Some(timeout));
        let mut w = self.begin(C::NAME, C::ALLOW_OOB, &call)?;
        if C::HAS_ARGUMENTS {
            if let Err(e) = Core::push_arguments(&mut w, |w| cmd.write_arguments(w)) {
                return Err(Error::Encode {
                    command: C::NAME.to_owned(),
                    source: e,
                });
            }
        }
        let mut caught = None;
        let ret = {
            let json = self.roundtrip(
                w,
                C::NAME,
                C::SUCCESS_RESPONSE,
                &call,
                Some((filter, &mut caught)),
            )?;
            C::decode_return(json).map_err(|e| Error::decode(C::NAME, e, json))?
        };
        let event = match caught {
            Some(e) => e,
            None => self.wait_new_event(filter, deadline)?,
        };
        Ok((ret, event))
    }

    /// Executes a command by name; `args` is the JSON `arguments` object (or `None`).
    /// Returns the JSON text of `return`.
    pub fn execute_raw(
        &mut self,
        name: &str,
        args: Option<&RawValue>,
    ) -> Result<Box<RawValue>, Error> {
        self.execute_raw_with(name, args, &Call::default())
    }

    /// [`Qmp::execute_raw`] with per-call options. `exec-oob` is sent as asked: QEMU
    /// itself rejects it for commands that do not allow it.
    pub fn execute_raw_with(
        &mut self,
        name: &str,
        args: Option<&RawValue>,
        call: &Call<'_>,
    ) -> Result<Box<RawValue>, Error> {
        let mut w = self.begin(name, true, call)?;
        if let Some(a) = args {
            // Infallible: writing text into a Vec.
            let _ = Core::push_arguments(&mut w, |w| {
                w.extend_from_slice(a.get().as_bytes());
                Ok(())
            });
        }
        let json = self.roundtrip(w, name, true, call, None)?;
        raw_box(json, name)
    }

    /// [`Qmp::execute_raw`] followed by a race-free wait for an event (see
    /// [`Qmp::execute_and_wait`]).
    pub fn execute_raw_and_wait(
        &mut self,
        name: &str,
        args: Option<&RawValue>,
        filter: &EventFilter,
        timeout: Duration,
    ) -> Result<(Box<RawValue>, Event), Error> {
        let deadline = Instant::now() + timeout;
        let call = Call::new().timeout(Some(timeout));
        let mut w = self.begin(name, true, &call)?;
        if let Some(a) = args {
            let _ = Core::push_arguments(&mut w, |w| {
                w.extend_from_slice(a.get().as_bytes());
                Ok(())
            });
        }
        let mut caught = None;
        let ret = {
            let json = self.roundtrip(w, name, true, &call, Some((filter, &mut caught)))?;
            raw_box(json, name)?
        };
        let event = match caught {
            Some(e) => e,
            None => self.wait_new_event(filter, deadline)?,
        };
        Ok((ret, event))
    }

    /// Runs an HMP command line (`human-monitor-command`) and returns its output.
    pub fn hmp(&mut self, command_line: &str) -> Result<String, Error> {
        let args = serde_json::json!({ "command-line": command_line });
        let args = serde_json::value::to_raw_value(&args).map_err(|e| Error::Encode {
            command: "human-monitor-command".into(),
            source: e,
        })?;
        let out = self.execute_raw("human-monitor-command", Some(&args))?;
        serde_json::from_str(out.get())
            .map_err(|e| Error::decode("human-monitor-command", e, out.get()))
    }

    /// Passes `fd` to QEMU under `name` (`getfd`); the fd rides on the command itself.
    pub fn getfd(&mut self, name: &str, fd: BorrowedFd<'_>) -> Result<(), Error> {
        let args = serde_json::json!({ "fdname": name });
        let args = serde_json::value::to_raw_value(&args).map_err(|e| Error::Encode {
            command: "getfd".into(),
            source: e,
        })?;
        let fds = [fd];
        self.execute_raw_with("getfd", Some(&args), &Call::new().fds(&fds))?;
        Ok(())
    }

    /// Adds `fd` to an fd set (`add-fd`); `None` creates a new set.
    pub fn add_fd(
        &mut self,
        fdset_id: Option<i64>,
        opaque: Option<&str>,
        fd: BorrowedFd<'_>,
    ) -> Result<AddFdInfo, Error> {
        let mut args = serde_json::Map::new();
        if let Some(id) = fdset_id {
            args.insert("fdset-id".into(), id.into());
        }
        if let Some(o) = opaque {
            args.insert("opaque".into(), o.into());
        }
        let args = serde_json::value::to_raw_value(&args).map_err(|e| Error::Encode {
            command: "add-fd".into(),
            source: e,
        })?;
        let fds = [fd];
        let out = self.execute_raw_with("add-fd", Some(&args), &Call::new().fds(&fds))?;
        serde_json::from_str(out.get()).map_err(|e| Error::decode("add-fd", e, out.get()))
    }

    /// Returns a queued event without blocking (reading only what the socket already
    /// holds).
    pub fn poll_event(&mut self) -> Result<Option<Event>, Error> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        if !self.core.has_buffered() && !self.core.fill_nonblocking()? && !self.core.has_buffered()
        {
            return Err(Error::Disconnected { command: None });
        }
        self.next_event(Some(Duration::ZERO))
    }

    /// Returns the next event, waiting up to `timeout` (`None`: forever). `Ok(None)`
    /// on timeout.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, Error> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        match self.read_event(deadline, None) {
            Ok(e) => Ok(Some(e)),
            Err(Error::Timeout { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits up to `timeout` for an event accepted by `filter`, taking it from the
    /// queue if it already arrived. Other events stay queued.
    pub fn wait_event(&mut self, filter: &EventFilter, timeout: Duration) -> Result<Event, Error> {
        if let Some(i) = self.events.iter().position(|e| filter.accepts(e)) {
            if let Some(e) = self.events.remove(i) {
                return Ok(e);
            }
        }
        self.read_event(Some(Instant::now() + timeout), Some(filter))
    }

    /// Removes and returns all queued events.
    pub fn drain_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// How many events were dropped because the queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.core.stats.dropped_events
    }

    /// Waits for a new event (after the command) accepted by `filter`.
    fn wait_new_event(&mut self, filter: &EventFilter, deadline: Instant) -> Result<Event, Error> {
        self.read_event(Some(deadline), Some(filter))
    }

    fn read_event(
        &mut self,
        deadline: Option<Instant>,
        filter: Option<&EventFilter>,
    ) -> Result<Event, Error> {
        loop {
            let msg = self.core.read_msg(
                deadline,
                &|| match filter {
                    Some(f) => format!("an event {:?}", f.names),
                    None => "an event".into(),
                },
                None,
            )?;
            match msg {
                Msg::Event {
                    text,
                    name,
                    data,
                    timestamp,
                } => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let ev = Event::new(text, &name, data, timestamp, seq);
                    match filter {
                        Some(f) if !f.accepts(&ev) => self.queue(ev),
                        _ => return Ok(ev),
                    }
                }
                Msg::Reply { id, .. } => {
                    self.core.stats.discarded_replies += 1;
                    debug!("discarding reply with id {id:?}: its request timed out or had no id");
                }
                Msg::Greeting(_) | Msg::Sentinel => {}
            }
        }
    }

    fn queue(&mut self, ev: Event) {
        if self.events.len() >= self.event_capacity {
            self.events.pop_front();
            self.core.stats.dropped_events += 1;
        }
        self.events.push_back(ev);
    }

    /// Checks the out-of-band request and starts the request buffer.
    fn begin(&mut self, name: &str, allow_oob: bool, call: &Call<'_>) -> Result<Vec<u8>, Error> {
        if call.oob {
            if !self.oob {
                return Err(Error::OobUnavailable {
                    command: name.to_owned(),
                    reason: "oob was not negotiated on this connection",
                });
            }
            if !allow_oob {
                return Err(Error::OobUnavailable {
                    command: name.to_owned(),
                    reason: "the command does not allow out-of-band execution",
                });
            }
        }
        if !call.fds.is_empty() && !self.core.unix {
            return Err(Error::FdPassingUnsupported {
                command: name.to_owned(),
            });
        }
        Ok(self.core.begin_request(name, call.oob))
    }

    /// Sends the request and waits for its reply; returns the `return` JSON text.
    fn roundtrip(
        &mut self,
        w: Vec<u8>,
        name: &str,
        success_response: bool,
        call: &Call<'_>,
        armed: Option<(&EventFilter, &mut Option<Event>)>,
    ) -> Result<&str, Error> {
        let deadline = self.core.deadline(call.timeout);
        let id = self
            .core
            .send_request(w, true, b"", call.fds, deadline, name)?;
        if !success_response {
            // Nothing comes back on success; errors surface as discarded replies.
            return Ok("{}");
        }
        self.wait_reply(id, name, deadline, armed)?;
        Ok(&self.reply)
    }

    fn wait_reply(
        &mut self,
        want: u64,
        name: &str,
        deadline: Option<Instant>,
        mut armed: Option<(&EventFilter, &mut Option<Event>)>,
    ) -> Result<(), Error> {
        loop {
            let resync_pending = self.core.resyncs_pending > 0;
            let msg = self
                .core
                .read_msg(deadline, &|| name.to_owned(), Some(name))?;
            match msg {
                Msg::Reply { id, result } if id == Some(want) => {
                    return match result {
                        Ok(json) => {
                            self.reply.clear();
                            self.reply.push_str(json);
                            Ok(())
                        }
                        Err((class, desc)) => Err(qmp_error(name, &class, &desc)),
                    };
                }
                Msg::Reply {
                    id: None,
                    result: Err((class, desc)),
                } if !resync_pending => {
                    // QEMU could not parse what we just wrote (its parse errors carry
                    // no id): the error belongs to this call.
                    return Err(qmp_error(name, &class, &desc));
                }
                Msg::Reply { id, result } => {
                    let idless_error = id.is_none() && result.is_err();
                    match result {
                        Err((class, desc)) if id.is_none() => {
                            debug!("discarding id-less error {class}: {desc} (answers our resync byte)")
                        }
                        _ => debug!("discarding late reply with id {id:?}"),
                    }
                    if idless_error {
                        self.core.resyncs_pending = self.core.resyncs_pending.saturating_sub(1);
                    }
                    self.core.stats.discarded_replies += 1;
                }
                Msg::Event {
                    text,
                    name: ev_name,
                    data,
                    timestamp,
                } => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let ev = Event::new(text, &ev_name, data, timestamp, seq);
                    match &mut armed {
                        Some((f, slot)) if slot.is_none() && f.accepts(&ev) => **slot = Some(ev),
                        _ => self.queue(ev),
                    }
                }
                Msg::Greeting(_) | Msg::Sentinel => {}
            }
        }
    }
}

fn raw_box(json: &str, name: &str) -> Result<Box<RawValue>, Error> {
    RawValue::from_string(json.to_owned()).map_err(|e| Error::decode(name, e, json))
}

fn parse_greeting(g: &str) -> Result<Greeting, Error> {
    let w: GreetingWire =
        serde_json::from_str(g).map_err(|e| Error::Greeting(format!("{e} in {g}")))?;
    Ok(Greeting {
        version: w.version.qemu,
        package: w.version.package,
        capabilities: w.capabilities,
        json: g.to_owned(),
    })
}

fn wait_accept(fd: std::os::fd::RawFd, deadline: Instant) -> Result<(), Error> {
    match fd::wait(fd, false, Some(deadline)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Timeout {
            waiting_for: "QEMU to connect".into(),
            waited: Duration::ZERO,
        }),
        Err(source) => Err(Error::Connect {
            endpoint: "listener".into(),
            source,
        }),
    }
}
