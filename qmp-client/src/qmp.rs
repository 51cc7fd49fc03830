//! The blocking QMP client: connecting (greeting and negotiation), executing
//! [`Request`]s, events (the connection's queue and subscriptions), fd passing,
//! HMP, capability checks and reconnecting. A thin driver over the protocol core.

use std::fmt;
use std::net::TcpListener;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::blocking::{Driver, WaitEnd};
use crate::builtin;
use crate::conn::{self, Endpoint, Stats};
use crate::error::Error;
use crate::event::{EventFilter, RawEvent};
use crate::introspect::ServerSchema;
use crate::options::{AddFdInfo, Greeting, Options};
use crate::proto::{Session, SubQueue};
use crate::request::Request;
use qapi_runtime::Command;

/// A connected, negotiated QMP session. See the [crate docs](crate) for examples.
///
/// `Qmp` is `Send + Sync`: several threads may execute through one `&Qmp` at once
/// (each call waits for its own reply; replies are matched by id), and subscriptions
/// ([`Qmp::subscribe`]) each have their own bounded queue.
///
/// One client per monitor: QEMU serves a second client on the same socket only after
/// the first one leaves (connecting then times out waiting for the greeting).
pub struct Qmp {
    driver: Box<Driver>,
    x: Box<Extra>,
}

/// What a connection keeps beside the driver (boxed: a `Qmp` is two pointers).
struct Extra {
    greeting: Option<Greeting>,
    /// The server's `query-qmp-schema`, fetched on first use.
    schema: OnceLock<ServerSchema>,
    /// Where to connect again ([`Qmp::reconnect`]).
    endpoint: Option<Endpoint>,
    options: Options,
}

impl fmt::Debug for Qmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.driver.lock();
        f.debug_struct("Qmp")
            .field("greeting", &g.session.greeting())
            .field("oob", &g.session.oob_enabled())
            .field("stats", &g.session.stats())
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
        let again = endpoint.reopenable();
        let (fd, unix) = endpoint.open(deadline)?;
        let mut qmp = Qmp::handshake(fd, unix, opts, deadline)?;
        qmp.x.endpoint = again;
        Ok(qmp)
    }

    /// Waits for QEMU to connect to `listener` (`-qmp unix:PATH,server=off`), then
    /// handshakes; all within the connect deadline.
    pub fn accept(listener: &UnixListener, opts: &Options) -> Result<Qmp, Error> {
        let deadline = Instant::now() + opts.connect_timeout;
        let fd = conn::accept_unix(listener, deadline)?;
        Qmp::handshake(fd, true, opts, deadline)
    }

    /// Like [`Qmp::accept`] for a TCP listener (`-qmp tcp:HOST:PORT,server=off`).
    pub fn accept_tcp(listener: &TcpListener, opts: &Options) -> Result<Qmp, Error> {
        let deadline = Instant::now() + opts.connect_timeout;
        let fd = conn::accept_tcp(listener, deadline)?;
        Qmp::handshake(fd, false, opts, deadline)
    }

    /// Uses an already-connected stream or fd (see [`Endpoint::Fd`] and the `From` impls).
    pub fn from_stream(stream: impl Into<Endpoint>, opts: &Options) -> Result<Qmp, Error> {
        Qmp::connect(stream.into(), opts)
    }

    fn handshake(fd: OwnedFd, unix: bool, opts: &Options, deadline: Instant) -> Result<Qmp, Error> {
        let driver = Box::new(Driver::new(
            fd,
            unix,
            Session::qmp(opts),
            opts.timeouts.clone(),
        ));
        driver.handshake(deadline, None)?;
        let greeting = driver.lock().session.greeting().cloned();
        Ok(Qmp {
            driver,
            x: Box::new(Extra {
                greeting,
                schema: OnceLock::new(),
                endpoint: None,
                options: opts.clone(),
            }),
        })
    }

    /// Connects again to the same socket path or address (after QEMU restarted, or
    /// the connection broke) with the same options: a new greeting and negotiation.
    /// Queued events, subscriptions and the cached schema of the old connection are
    /// dropped. Fails with [`Error::Connect`] when the endpoint was an fd.
    pub fn reconnect(&mut self) -> Result<(), Error> {
        let endpoint = conn::reopen(self.x.endpoint.as_ref())?;
        *self = Qmp::connect(endpoint, &self.x.options)?;
        Ok(())
    }

    /// Whether the peer has closed the connection (or it failed). Pending calls have
    /// then failed with [`Error::Disconnected`]; use [`Qmp::reconnect`].
    pub fn is_closed(&self) -> bool {
        self.driver.read_nonblocking();
        self.driver.lock().session.is_closed()
    }

    /// The greeting (absent when negotiation was skipped).
    pub fn greeting(&self) -> Option<&Greeting> {
        self.x.greeting.as_ref()
    }

    /// Whether out-of-band execution was negotiated.
    pub fn oob_enabled(&self) -> bool {
        self.driver.lock().session.oob_enabled()
    }

    /// Counters of this connection.
    pub fn stats(&self) -> Stats {
        self.driver.lock().session.stats()
    }

    /// Changes the default deadline of later calls whose command has no entry in the
    /// timeout table (`None`: wait forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        let mut table = self
            .driver
            .timeouts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Arc::make_mut(&mut table).default = timeout;
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
    /// let qmp = vm.connect()?;
    /// let schema = qmp.schema()?;
    /// let queries = schema.commands().filter(|c| c.starts_with("query-")).count();
    /// println!("{queries} query commands, {} events", schema.events().count());
    /// # Ok(()) }
    /// ```
    pub fn schema(&self) -> Result<&ServerSchema, Error> {
        if let Some(s) = self.x.schema.get() {
            return Ok(s);
        }
        let schema = self.execute(&builtin::QuerySchema)?;
        Ok(self.x.schema.get_or_init(|| schema))
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
    /// # let qmp = qmp_client::Qmp::connect_unix("/run/qmp.sock")?;
    /// if qmp.has_command("blockdev-set-active")? {
    ///     // QEMU 10.0 and later.
    /// }
    /// # Ok(()) }
    /// ```
    pub fn has_command(&self, name: &str) -> Result<bool, Error> {
        Ok(self.schema()?.has_command(name))
    }

    /// [`Qmp::has_command`] for a typed command, by its wire name [`Command::NAME`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // With qmp-types: `qmp.supports::<qmp_types::qmp::commands::QueryAudiodevs>()`.
    /// fn run_if_supported<C: qapi_runtime::Command + Sync>(
    ///     qmp: &qmp_client::Qmp,
    ///     cmd: &C,
    /// ) -> Result<Option<C::Returns>, qmp_client::Error> {
    ///     if !qmp.supports::<C>()? {
    ///         return Ok(None);
    ///     }
    ///     qmp.execute(cmd).map(Some)
    /// }
    /// ```
    pub fn supports<C: Command>(&self) -> Result<bool, Error> {
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
    /// # let qmp = qmp_client::Qmp::connect_unix("/run/qmp.sock")?;
    /// let unplug_errors = qmp.has_event("DEVICE_UNPLUG_GUEST_ERROR")?;
    /// # Ok(()) }
    /// ```
    pub fn has_event(&self, name: &str) -> Result<bool, Error> {
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
    /// # let qmp = qmp_client::Qmp::connect_unix("/run/qmp.sock")?;
    /// let args = if qmp.has_argument("query-machines", "compat-props")? {
    ///     Some(serde_json::value::to_raw_value(&serde_json::json!({"compat-props": true})).unwrap())
    /// } else {
    ///     None // QEMU before 9.1
    /// };
    /// let machines = match args {
    ///     Some(a) => qmp.execute(qmp_client::Request::raw("query-machines", &a))?,
    ///     None => qmp.execute(qmp_client::Request::name("query-machines"))?,
    /// };
    /// # Ok(()) }
    /// ```
    pub fn has_argument(&self, command: &str, argument: &str) -> Result<bool, Error> {
        Ok(self.schema()?.has_argument(command, argument))
    }

    /// Executes a request: a typed command (`&cmd`), or a [`Request`] built by name or
    /// with per-call options. Returns what the request returns: the command's typed
    /// result, the JSON of `return` for raw requests, and with
    /// [`Request::wait_for`] also the event.
    ///
    /// # Errors
    ///
    /// [`Error::Qmp`] when QEMU refuses the command; [`Error::Timeout`] and
    /// [`Error::Disconnected`] when its outcome is unknown (see
    /// [`Error::outcome_unknown`] and [`crate::recovery`]); [`Error::Decode`] when the
    /// reply does not fit the typed result.
    pub fn execute<'a, T: 'a>(&self, request: impl Into<Request<'a, T>>) -> Result<T, Error> {
        self.driver.call(request.into())
    }

    /// Runs an HMP command line (`human-monitor-command`) and returns its output.
    pub fn hmp(&self, command_line: &str) -> Result<String, Error> {
        self.execute(&builtin::Hmp(command_line))
    }

    /// Passes `fd` to QEMU under `name` (`getfd`); the fd rides on the command itself.
    pub fn getfd(&self, name: &str, fd: BorrowedFd<'_>) -> Result<(), Error> {
        let fds = [fd];
        self.execute(Request::new(&builtin::GetFd(name)).fds(&fds))
    }

    /// Adds `fd` to an fd set (`add-fd`); `None` creates a new set.
    pub fn add_fd(
        &self,
        fdset_id: Option<i64>,
        opaque: Option<&str>,
        fd: BorrowedFd<'_>,
    ) -> Result<AddFdInfo, Error> {
        let fds = [fd];
        let add = builtin::AddFd { fdset_id, opaque };
        self.execute(Request::new(&add).fds(&fds))
    }

    /// Returns a queued event without blocking (reading only what the socket already
    /// holds).
    pub fn poll_event(&self) -> Result<Option<RawEvent>, Error> {
        if let Some(e) = self.driver.lock().session.pop_event() {
            return Ok(Some(e));
        }
        self.driver.read_nonblocking();
        let mut g = self.driver.lock();
        match g.session.pop_event() {
            Some(e) => Ok(Some(e)),
            None if g.session.is_closed() => Err(Error::Disconnected { command: None }),
            None => Ok(None),
        }
    }

    /// Returns the next queued event, waiting up to `timeout` (`None`: forever).
    /// `Ok(None)` on timeout.
    pub fn next_event(&self, timeout: Option<Duration>) -> Result<Option<RawEvent>, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        match self.driver.wait(deadline, Session::pop_event, |_, _| {}) {
            Ok(e) => Ok(Some(e)),
            Err(WaitEnd::Deadline) => Ok(None),
            Err(WaitEnd::Closed) => Err(Error::Disconnected { command: None }),
        }
    }

    /// Waits up to `timeout` for a queued event accepted by `filter`, taking it from
    /// the queue if it already arrived; returns it decoded. Other events stay queued.
    pub fn wait_event<T: Send + 'static>(
        &self,
        filter: &EventFilter<T>,
        timeout: Duration,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + timeout;
        let mut found = None;
        let r = self.driver.wait(
            Some(deadline),
            |s| {
                s.take_event_where(|e| {
                    found = filter.accept(e);
                    found.is_some()
                })
                .map(|_| ())
            },
            |_, _| {},
        );
        match (r, found) {
            (Ok(()), Some(v)) => Ok(v),
            (Err(WaitEnd::Closed), _) => Err(Error::Disconnected { command: None }),
            _ => Err(Error::Timeout {
                waiting_for: filter.describe(),
                waited: timeout,
            }),
        }
    }

    /// Removes and returns all queued events.
    pub fn drain_events(&self) -> Vec<RawEvent> {
        self.driver.lock().session.drain_events()
    }

    /// How many events were dropped because the connection's queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.driver.lock().session.stats().dropped_events
    }

    /// Subscribes to the events `filter` accepts, with a queue of its own
    /// ([`Options::event_capacity`] events of the filter's names, drop-oldest, counted
    /// per subscription; each is decoded as it is taken).
    /// Every subscription sees every accepted event, whichever thread reads it;
    /// the connection's own queue is unaffected.
    pub fn subscribe<T: Send + 'static>(&self, filter: EventFilter<T>) -> Subscription<'_, T> {
        let cap = self.x.options.event_capacity;
        self.subscribe_with_capacity(filter, cap)
    }

    /// [`Qmp::subscribe`] with another queue capacity.
    pub fn subscribe_with_capacity<T: Send + 'static>(
        &self,
        filter: EventFilter<T>,
        capacity: usize,
    ) -> Subscription<'_, T> {
        let (id, queue) = self
            .driver
            .lock()
            .session
            .subscribe(filter.event_names(), capacity);
        Subscription {
            qmp: self,
            id,
            queue,
            filter,
        }
    }
}

/// Events of one [`Qmp::subscribe`] call, each decoded once; unsubscribes on drop.
///
/// The queue holds the events of the filter's names; decoding and the filter's
/// predicate happen as they are taken (an event that fails either is skipped).
pub struct Subscription<'q, T> {
    qmp: &'q Qmp,
    id: u64,
    queue: Arc<SubQueue>,
    filter: EventFilter<T>,
}

impl<T> fmt::Debug for Subscription<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("filter", &self.filter)
            .finish()
    }
}

impl<T: 'static> Subscription<'_, T> {
    /// The next event, waiting up to `timeout` (`None`: forever); `Ok(None)` on timeout.
    pub fn next(&self, timeout: Option<Duration>) -> Result<Option<T>, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        match self.qmp.driver.wait(deadline, |_| self.take(), |_, _| {}) {
            Ok(v) => Ok(Some(v)),
            Err(WaitEnd::Deadline) => Ok(None),
            Err(WaitEnd::Closed) => Err(Error::Disconnected { command: None }),
        }
    }

    /// The next event if one is queued (reading only what the socket already holds).
    pub fn try_next(&self) -> Option<T> {
        self.qmp.driver.read_nonblocking();
        self.take()
    }

    /// The first queued event the filter accepts (the ones before it are spent).
    fn take(&self) -> Option<T> {
        loop {
            if let Some(v) = self.filter.accept(&self.queue.pop()?) {
                return Some(v);
            }
        }
    }

    /// How many events this subscription dropped because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }
}

impl<T> Drop for Subscription<'_, T> {
    fn drop(&mut self) {
        self.qmp.driver.lock().session.unsubscribe(self.id);
    }
}
