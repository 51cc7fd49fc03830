//! QEMU's monitor and guest agent through libvirt (feature `libvirt`): a [`Domain`]
//! opened by name or UUID under any libvirt URI (`qemu:///system`,
//! `qemu+ssh://host/system`, ...), implementing [`Monitor`].
//!
//! libvirtd owns the domain's monitor socket (a second client connects but never gets a
//! greeting), so this route goes through libvirt's own API, with libvirt's bindings
//! (crate `virt`):
//!
//! - commands: `virDomainQemuMonitorCommand` with the request as JSON text. libvirt
//!   assigns the id (and rejects a request that carries one, so none is sent); the reply
//!   comes back as text and a QEMU error reply keeps its class and description
//!   ([`Error::Qmp`]), apart from libvirt's own failures ([`Error::Libvirt`]);
//! - HMP: the same call with `VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP`;
//! - the guest agent: `virDomainQemuAgentCommand`, with libvirt's timeout in seconds
//!   ([`Domain::agent_execute`]); libvirt drops the agent's error class, so agent
//!   errors are libvirt errors (`AgentCommandFailed`, with the agent's description);
//! - events: `virConnectDomainQemuMonitorEventRegister` for every event of the domain,
//!   dispatched by libvirt's default event loop (on a thread of its own, started once per
//!   process) into bounded per-subscription queues.
//!
//! # Deadlines
//!
//! libvirt's calls block. Each runs on a worker thread of the [`Domain`] while the
//! caller waits at most the deadline ([`Domain::set_timeout`], 30 s by default) and
//! then gets [`Error::Timeout`]. The call itself cannot be cancelled: it goes on in the
//! background, its result is discarded, and a command may therefore still be executed
//! by QEMU (outcome unknown, as with a lost reply). The stuck worker is abandoned and
//! the next call gets a fresh one; calls that were still queued behind it are skipped,
//! never run late. libvirt's keepalive (every 5 s, 3 missed) closes a connection whose
//! libvirtd stopped answering (about 20 s after it stopped, measured with a SIGSTOPped
//! libvirtd), which ends such a call with an error; from then on every call fails with
//! [`Error::Disconnected`] until [`Domain::reconnect`].
//!
//! # Losing libvirtd
//!
//! When libvirtd goes away (killed, restarted) every call fails with
//! [`Error::Disconnected`], within the deadline, and so does a subscription once its
//! queue is empty. QEMU keeps running; [`Domain::reconnect`] opens a new connection
//! (libvirtd, once restarted, reattaches to the domain) and keeps the subscriptions,
//! which receive events again from then on. Events sent while disconnected are lost.

use std::ffi::{c_char, c_int, c_longlong, c_uint, c_void, CStr, CString};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use qapi_runtime::{Command, Timestamp};
use serde_json::value::RawValue;
use virt::connect::Connect;
use virt::domain::Domain as VirDomain;

use crate::monitor::{DecodeError, EventStream, Monitor, RawEvent};
use crate::ErrorClass;

/// The deadline of a call unless [`Domain::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many events a subscription queues before it drops new ones (counted).
pub const EVENT_CAPACITY: usize = 1024;

/// A libvirt error: its number, where in libvirt it arose, and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibvirtError {
    /// libvirt's name of the error number (`OperationInvalid`, `AgentUnresponsive`,
    /// ...; `Unknown(N)` for a number this binding does not know).
    pub code: String,
    /// The error number (`virErrorNumber`).
    pub number: i32,
    /// libvirt's name of the module that raised it (`Qemu`, `Rpc`, `Remote`, ...).
    pub module: String,
    /// libvirt's message.
    pub message: String,
}

impl LibvirtError {
    fn from_virt(e: &virt::error::Error) -> LibvirtError {
        use virt::enumutil::{Enum, RawEnum};
        let (code, number) = match e.code() {
            Enum::Known(k) => (format!("{k:?}"), k.to_raw() as i32),
            Enum::Unknown(n) => (format!("Unknown({n})"), n as i32),
        };
        let module = match e.domain() {
            Enum::Known(k) => format!("{k:?}"),
            Enum::Unknown(n) => format!("Unknown({n})"),
        };
        LibvirtError {
            code,
            number,
            module,
            message: e.message().to_owned(),
        }
    }

    fn local(message: String) -> LibvirtError {
        LibvirtError {
            code: "InternalError".into(),
            number: 1,
            module: "None".into(),
            message,
        }
    }
}

impl fmt::Display for LibvirtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, from {})", self.message, self.code, self.module)
    }
}

/// What can go wrong through libvirt.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// libvirt could not be reached at `uri` (no daemon, refused, authentication).
    Connect {
        /// The URI.
        uri: String,
        /// libvirt's error.
        error: LibvirtError,
    },
    /// No domain of that name or UUID under `uri`.
    NoDomain {
        /// The URI.
        uri: String,
        /// The name or UUID asked for.
        domain: String,
    },
    /// libvirt failed or refused an operation (its own error, not QEMU's).
    Libvirt {
        /// What was done: the command name, `hmp`, `subscribe`, ...
        operation: String,
        /// libvirt's error.
        error: LibvirtError,
    },
    /// QEMU replied with an error; its class and description are QEMU's.
    Qmp {
        /// The command.
        command: String,
        /// QEMU's error class.
        class: ErrorClass,
        /// QEMU's description.
        desc: String,
    },
    /// The connection to libvirtd is lost (the daemon exited, the network went away);
    /// [`Domain::reconnect`] opens a new one.
    Disconnected {
        /// The URI.
        uri: String,
        /// What libvirt said, when it said something.
        message: String,
    },
    /// The call did not finish within the deadline; it goes on in the background and
    /// its result is discarded (the command may still have been executed).
    Timeout {
        /// What was done.
        operation: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// A reply that is not a QMP reply (neither `return` nor `error`).
    Reply {
        /// The command.
        command: String,
        /// The text libvirt returned.
        text: String,
    },
    /// Arguments that did not encode, or a reply or event that did not decode.
    Decode(DecodeError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect { uri, error } => {
                write!(f, "cannot connect to libvirt at {uri}: {error}")
            }
            Error::NoDomain { uri, domain } => write!(f, "no domain `{domain}` at {uri}"),
            Error::Libvirt { operation, error } => write!(f, "{operation}: libvirt: {error}"),
            Error::Qmp {
                command,
                class,
                desc,
            } => write!(f, "{command}: {class}: {desc}"),
            Error::Disconnected { uri, message } => {
                write!(f, "connection to libvirt at {uri} lost")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Error::Timeout { operation, after } => {
                write!(f, "{operation}: no answer from libvirt within {after:?}")
            }
            Error::Reply { command, text } => write!(f, "{command}: not a QMP reply: {text}"),
            Error::Decode(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Decode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        Error::Decode(e)
    }
}

impl Error {
    /// libvirt's error, for [`Error::Libvirt`] and [`Error::Connect`].
    pub fn libvirt(&self) -> Option<&LibvirtError> {
        match self {
            Error::Libvirt { error, .. } | Error::Connect { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Starts libvirt's default event loop on a thread, once per process (monitor events,
/// keepalive and the close callback need it), and silences libvirt's default error
/// printing to stderr (errors are returned instead).
fn event_loop() -> Result<(), LibvirtError> {
    static STARTED: OnceLock<Result<(), LibvirtError>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            virt::error::clear_error_callback();
            virt::event::event_register_default_impl().map_err(|e| LibvirtError::from_virt(&e))?;
            std::thread::Builder::new()
                .name("libvirt-events".into())
                .spawn(|| loop {
                    if virt::event::event_run_default_impl().is_err() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                })
                .map_err(|e| LibvirtError::local(format!("cannot start the event loop: {e}")))?;
            Ok(())
        })
        .clone()
}

/// The subscriptions of a [`Domain`], shared with libvirt's callbacks; outlives
/// reconnections.
#[derive(Debug, Default)]
struct Hub {
    subscribers: Mutex<Vec<Subscriber>>,
    /// The current connection is closed (set by libvirt's close callback, or when a call
    /// finds the connection dead; cleared by a reconnect).
    closed: AtomicBool,
}

#[derive(Debug)]
struct Subscriber {
    name: Option<String>,
    queue: mpsc::SyncSender<RawEvent>,
    dropped: Arc<AtomicU64>,
}

impl Hub {
    fn dispatch(&self, event: RawEvent) {
        let Ok(mut subscribers) = self.subscribers.lock() else {
            return;
        };
        subscribers.retain(|s| {
            if s.name.as_deref().is_some_and(|n| n != event.name) {
                return true;
            }
            match s.queue.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::TrySendError::Full(_)) => {
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(mpsc::TrySendError::Disconnected(_)) => false,
            }
        });
    }
}

/// libvirt's monitor event callback: `opaque` is an `Arc<Hub>` (see [`Session::open`]).
unsafe extern "C" fn on_event(
    _conn: virt_sys::virConnectPtr,
    _dom: virt_sys::virDomainPtr,
    event: *const c_char,
    seconds: c_longlong,
    micros: c_uint,
    details: *const c_char,
    opaque: *mut c_void,
) {
    if event.is_null() || opaque.is_null() {
        return;
    }
    // SAFETY: libvirt passes NUL-terminated strings valid for the call, and the opaque
    // pointer we registered, which it keeps alive until the free callback.
    let (hub, name, data) = unsafe {
        (
            &*(opaque as *const Hub),
            CStr::from_ptr(event).to_string_lossy().into_owned(),
            (!details.is_null()).then(|| CStr::from_ptr(details).to_string_lossy().into_owned()),
        )
    };
    let data = data
        .filter(|d| d != "null")
        .and_then(|d| RawValue::from_string(d).ok());
    hub.dispatch(RawEvent {
        name,
        data,
        timestamp: Timestamp {
            seconds,
            microseconds: i64::from(micros),
        },
    });
}

/// libvirt's close callback: the connection is gone.
unsafe extern "C" fn on_close(_conn: virt_sys::virConnectPtr, _reason: c_int, opaque: *mut c_void) {
    if !opaque.is_null() {
        // SAFETY: the `Arc<Hub>` registered with the callback, alive until its free callback.
        unsafe { &*(opaque as *const Hub) }
            .closed
            .store(true, Ordering::SeqCst);
    }
}

/// Releases the `Arc<Hub>` a callback held.
unsafe extern "C" fn free_hub(opaque: *mut c_void) {
    if !opaque.is_null() {
        // SAFETY: made by `Arc::into_raw` in `Session::open`, released once by libvirt.
        drop(unsafe { Arc::from_raw(opaque as *const Hub) });
    }
}

/// One connection to libvirtd and the domain looked up on it.
struct Session {
    conn: Connect,
    dom: VirDomain,
    events: c_int,
}

impl Session {
    /// Connects, looks the domain up and registers the event and close callbacks.
    fn open(uri: &str, target: &str, hub: &Arc<Hub>) -> Result<Session, Error> {
        event_loop().map_err(|error| Error::Connect {
            uri: uri.to_owned(),
            error,
        })?;
        let conn = Connect::open(Some(uri)).map_err(|e| Error::Connect {
            uri: uri.to_owned(),
            error: LibvirtError::from_virt(&e),
        })?;
        let found = if is_uuid(target) {
            conn.lookup_domain_by_uuid_string(target)
        } else {
            conn.lookup_domain_by_name(target)
        };
        let dom = found.map_err(|e| {
            let error = LibvirtError::from_virt(&e);
            if error.code == "NoDomain" {
                Error::NoDomain {
                    uri: uri.to_owned(),
                    domain: target.to_owned(),
                }
            } else {
                Error::Libvirt {
                    operation: "lookup".into(),
                    error,
                }
            }
        })?;
        let libvirt = |operation: &str| Error::Libvirt {
            operation: operation.into(),
            error: LibvirtError::from_virt(&virt::error::Error::last_error()),
        };
        // SAFETY: valid connection and domain pointers (owned by `conn` and `dom`, which
        // the session keeps until it deregisters); the callbacks match libvirt's
        // signatures; each opaque pointer is an `Arc<Hub>` released by `free_hub`.
        let events = unsafe {
            let opaque = Arc::into_raw(Arc::clone(hub)) as *mut c_void;
            let id = virt_sys::virConnectDomainQemuMonitorEventRegister(
                conn.as_ptr(),
                dom.as_ptr(),
                std::ptr::null(),
                Some(on_event),
                opaque,
                Some(free_hub),
                0,
            );
            if id < 0 {
                free_hub(opaque);
                return Err(libvirt("subscribe"));
            }
            let opaque = Arc::into_raw(Arc::clone(hub)) as *mut c_void;
            if virt_sys::virConnectRegisterCloseCallback(
                conn.as_ptr(),
                Some(on_close),
                opaque,
                Some(free_hub),
            ) < 0
            {
                free_hub(opaque);
                virt_sys::virConnectDomainQemuMonitorEventDeregister(conn.as_ptr(), id);
                return Err(libvirt("close callback"));
            }
            id
        };
        // Keepalive is the remote driver's (every URI through libvirtd, qemu:///system
        // included): a libvirtd that stops answering closes the connection, which ends a
        // call stuck in it. A driver without keepalive refuses, which changes nothing.
        let _ = conn.set_keep_alive(5, 3);
        Ok(Session { conn, dom, events })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: the connection is still open (closed by `Connect`'s drop after this);
        // on a dead connection both calls fail harmlessly.
        unsafe {
            virt_sys::virConnectDomainQemuMonitorEventDeregister(self.conn.as_ptr(), self.events);
            virt_sys::virConnectUnregisterCloseCallback(self.conn.as_ptr(), Some(on_close));
        }
    }
}

/// Whether `s` is a UUID in libvirt's text form (`8-4-4-4-12` hex digits).
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

type Job = Box<dyn FnOnce() + Send>;

/// The thread that makes the blocking libvirt calls (see "Deadlines" above).
struct Worker {
    jobs: mpsc::Sender<Job>,
    generation: u64,
    thread: std::thread::JoinHandle<()>,
}

impl Worker {
    fn spawn(generation: u64) -> Result<Worker, std::io::Error> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("libvirt-call".into())
            .spawn(move || {
                for job in queue {
                    job();
                }
            })?;
        Ok(Worker {
            jobs,
            generation,
            thread,
        })
    }
}

/// How long dropping a [`Domain`] waits for libvirtd to close its connection.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Joins `thread` if it ends within `within` (else leaves it: it is stuck in libvirtd).
///
/// Why wait at all: a libvirt thread still running when the process exits races the
/// exit handlers (OpenSSL's cleanup frees what that thread is using: heap corruption).
fn join_within(thread: std::thread::JoinHandle<()>, within: Duration) {
    let until = Instant::now() + within;
    while !thread.is_finished() {
        if Instant::now() >= until {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = thread.join();
}

/// A QEMU domain managed by libvirt: its monitor ([`Monitor`]), HMP and guest agent.
///
/// `Domain` is `Send + Sync`; calls from several threads are made one at a time, in
/// order, by its worker thread.
///
/// ```no_run
/// use qmp_client::libvirt::Domain;
/// use qmp_client::monitor::Monitor;
/// let dom = Domain::open("qemu:///system", "vm1")?;
/// let status = dom.execute_raw("query-status", None)?;
/// println!("{}", status.get());
/// println!("{}", dom.hmp("info status")?);
/// # Ok::<(), qmp_client::libvirt::Error>(())
/// ```
pub struct Domain {
    uri: String,
    target: String,
    timeout: Duration,
    hub: Arc<Hub>,
    session: Mutex<Option<Arc<Session>>>,
    worker: Mutex<Option<Worker>>,
    generations: AtomicU64,
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Domain")
            .field("uri", &self.uri)
            .field("domain", &self.target)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Domain {
    /// Connects to libvirt at `uri` and opens the domain named `domain` (a name or a
    /// UUID such as `3f0c...-...`), within [`DEFAULT_TIMEOUT`].
    ///
    /// # Arguments
    ///
    /// * `uri` - a libvirt URI: `qemu:///system`, `qemu+ssh://root@host/system`, ...
    /// * `domain` - the domain's name or UUID.
    pub fn open(uri: &str, domain: &str) -> Result<Domain, Error> {
        Domain::open_within(uri, domain, DEFAULT_TIMEOUT)
    }

    /// [`Domain::open`] with a deadline of `timeout`, which stays the deadline of every
    /// call.
    pub fn open_within(uri: &str, domain: &str, timeout: Duration) -> Result<Domain, Error> {
        let d = Domain {
            uri: uri.to_owned(),
            target: domain.to_owned(),
            timeout,
            hub: Arc::default(),
            session: Mutex::new(None),
            worker: Mutex::new(None),
            generations: AtomicU64::new(0),
        };
        d.reconnect()?;
        Ok(d)
    }

    /// The URI this domain was opened under.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The name or UUID this domain was opened by.
    pub fn name(&self) -> &str {
        &self.target
    }

    /// The deadline of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets the deadline of each call.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Opens a new connection to libvirtd and looks the domain up again (after
    /// [`Error::Disconnected`], once libvirtd is back). Subscriptions are kept.
    pub fn reconnect(&self) -> Result<(), Error> {
        // The old session goes first, so that its close callback cannot mark the new one.
        let old = self.lock_session().take();
        let (uri, target, hub) = (self.uri.clone(), self.target.clone(), self.hub.clone());
        let session = self.run("connect", move || {
            drop(old);
            hub.closed.store(false, Ordering::SeqCst);
            Session::open(&uri, &target, &hub)
        })??;
        *self.lock_session() = Some(Arc::new(session));
        Ok(())
    }

    /// Whether the connection to libvirtd is (as far as libvirt knows) alive.
    pub fn is_connected(&self) -> bool {
        !self.hub.closed.load(Ordering::SeqCst)
            && self
                .lock_session()
                .as_ref()
                .is_some_and(|s| s.conn.is_alive().unwrap_or(false))
    }

    /// Executes a typed guest agent command through libvirt, waiting at most `timeout`
    /// for the agent (libvirt counts in whole seconds: rounded up, at least 1).
    ///
    /// Fails with libvirt's own errors: `ArgumentUnsupported` when the domain has no
    /// agent channel, `AgentUnresponsive` when no agent is connected, and
    /// `AgentCommandFailed` (with the agent's description; libvirt drops its class) when
    /// the agent replies with an error.
    pub fn agent_execute<C: Command>(
        &self,
        command: &C,
        timeout: Duration,
    ) -> Result<C::Returns, Error> {
        let request = request(C::NAME, arguments_of(command)?.as_deref());
        let reply = self.agent_request(C::NAME, request, timeout)?;
        C::decode_return(reply.get())
            .map_err(|source| DecodeError::new(C::NAME, "return", source).into())
    }

    /// [`Domain::agent_execute`] by name, with JSON arguments; returns the `return`
    /// member as JSON text.
    pub fn agent_execute_raw(
        &self,
        name: &str,
        arguments: Option<&RawValue>,
        timeout: Duration,
    ) -> Result<Box<RawValue>, Error> {
        self.agent_request(name, request(name, arguments), timeout)
    }

    fn agent_request(
        &self,
        name: &str,
        request: String,
        timeout: Duration,
    ) -> Result<Box<RawValue>, Error> {
        let seconds = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        let seconds = seconds.clamp(1, i32::MAX as u64) as i32;
        // Our own deadline leaves libvirt a second to report its own timeout first.
        let text = self.call_within(name, Duration::from_secs(seconds as u64 + 1), move |s| {
            s.dom.qemu_agent_command(&request, seconds, 0)
        })?;
        parse_reply(name, &text)
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Option<Arc<Session>>> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn disconnected(&self, message: String) -> Error {
        Error::Disconnected {
            uri: self.uri.clone(),
            message,
        }
    }

    /// Runs `f` on the worker thread, waiting at most the deadline.
    fn run<T: Send + 'static>(
        &self,
        operation: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        self.run_within(operation, self.timeout, f)
    }

    fn run_within<T: Send + 'static>(
        &self,
        operation: &str,
        deadline: Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (reply, answer) = mpsc::sync_channel(1);
        let cancelled = Arc::new(AtomicBool::new(false));
        let skip = Arc::clone(&cancelled);
        let mut job: Job = Box::new(move || {
            if !skip.load(Ordering::SeqCst) {
                let _ = reply.send(f());
            }
        });
        let generation = {
            let mut worker = self.worker.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let w = match worker.as_mut() {
                    Some(w) => w,
                    None => {
                        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
                        let w = Worker::spawn(generation).map_err(|e| Error::Libvirt {
                            operation: operation.to_owned(),
                            error: LibvirtError::local(format!("cannot start a thread: {e}")),
                        })?;
                        worker.insert(w)
                    }
                };
                match w.jobs.send(job) {
                    Ok(()) => break w.generation,
                    Err(mpsc::SendError(back)) => {
                        job = back;
                        *worker = None;
                    }
                }
            }
        };
        match answer.recv_timeout(deadline) {
            Ok(v) => Ok(v),
            Err(e) => {
                cancelled.store(true, Ordering::SeqCst);
                // Abandon the stuck worker (unless another call already did).
                let mut worker = self.worker.lock().unwrap_or_else(|e| e.into_inner());
                if worker.as_ref().is_some_and(|w| w.generation == generation) {
                    *worker = None;
                }
                match e {
                    mpsc::RecvTimeoutError::Timeout => Err(Error::Timeout {
                        operation: operation.to_owned(),
                        after: deadline,
                    }),
                    mpsc::RecvTimeoutError::Disconnected => Err(Error::Libvirt {
                        operation: operation.to_owned(),
                        error: LibvirtError::local("the libvirt call panicked".into()),
                    }),
                }
            }
        }
    }

    /// Runs a libvirt call on the current session, classifying its failure.
    fn call_within<T: Send + 'static>(
        &self,
        operation: &str,
        deadline: Duration,
        f: impl FnOnce(&Session) -> Result<T, virt::error::Error> + Send + 'static,
    ) -> Result<T, Error> {
        if self.hub.closed.load(Ordering::SeqCst) {
            return Err(self.disconnected("closed".into()));
        }
        let Some(session) = self.lock_session().clone() else {
            return Err(self.disconnected("not connected".into()));
        };
        let hub = Arc::clone(&self.hub);
        let result = self.run_within(operation, deadline, move || {
            let r = f(&session);
            // A failed call on a dead connection: say so, not what the RPC layer said.
            let dead = r.is_err() && !session.conn.is_alive().unwrap_or(false);
            if dead {
                hub.closed.store(true, Ordering::SeqCst);
            }
            r.map_err(|e| (LibvirtError::from_virt(&e), dead))
        })?;
        result.map_err(|(error, dead)| {
            if dead {
                self.disconnected(error.message)
            } else {
                Error::Libvirt {
                    operation: operation.to_owned(),
                    error,
                }
            }
        })
    }

    fn monitor_command(&self, name: &str, text: String, flags: u32) -> Result<String, Error> {
        self.call_within(name, self.timeout, move |s| {
            s.dom.qemu_monitor_command(&text, flags)
        })
    }
}

impl Drop for Domain {
    /// Closes the connection on the worker thread (a round trip to libvirtd, which may
    /// be hung: never on the caller's thread) and waits at most 2 s for it,
    /// so that no libvirt thread of this domain outlives it when libvirtd answers.
    fn drop(&mut self) {
        let session = self.lock_session().take();
        let worker = self
            .worker
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let close: Job = Box::new(move || drop(session));
        let thread = match worker {
            Some(w) => match w.jobs.send(close) {
                // Dropping the sender ends the worker's loop after the close.
                Ok(()) => Some(w.thread),
                Err(mpsc::SendError(close)) => spawn_close(close),
            },
            None => spawn_close(close),
        };
        if let Some(t) = thread {
            join_within(t, self.timeout.min(CLOSE_WAIT));
        }
    }
}

/// A thread of its own for the close (no worker, or it is gone).
fn spawn_close(close: Job) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("libvirt-close".into())
        .spawn(close)
        .ok()
}

/// The compact JSON arguments of a typed command (`None` when it has none).
fn arguments_of<C: Command>(command: &C) -> Result<Option<Box<RawValue>>, Error> {
    if !C::HAS_ARGUMENTS {
        return Ok(None);
    }
    let mut out = Vec::new();
    command
        .write_arguments(&mut out)
        .map_err(|source| DecodeError::new(C::NAME, "arguments", source))?;
    let text = String::from_utf8(out).map_err(|e| {
        DecodeError::new(
            C::NAME,
            "arguments",
            serde::ser::Error::custom(format!("not UTF-8: {e}")),
        )
    })?;
    Ok(Some(RawValue::from_string(text).map_err(|source| {
        DecodeError::new(C::NAME, "arguments", source)
    })?))
}

/// `{"execute":NAME,"arguments":ARGS}`, without an id (libvirt adds its own).
fn request(name: &str, arguments: Option<&RawValue>) -> String {
    let mut out = String::with_capacity(32 + arguments.map_or(0, |a| a.get().len()));
    out.push_str("{\"execute\":");
    out.push_str(&serde_json::to_string(name).unwrap_or_default());
    if let Some(a) = arguments {
        out.push_str(",\"arguments\":");
        out.push_str(a.get());
    }
    out.push('}');
    out
}

/// A reply as libvirt returns it: `{"return":...,"id":...}` or `{"error":{...},...}`.
fn parse_reply(command: &str, text: &str) -> Result<Box<RawValue>, Error> {
    #[derive(serde::Deserialize)]
    struct Reply<'a> {
        #[serde(borrow, rename = "return")]
        ret: Option<&'a RawValue>,
        error: Option<QmpErrorBody>,
    }
    #[derive(serde::Deserialize)]
    struct QmpErrorBody {
        class: String,
        desc: String,
    }
    let reply_err = || Error::Reply {
        command: command.to_owned(),
        text: text.to_owned(),
    };
    let reply: Reply<'_> = serde_json::from_str(text).map_err(|_| reply_err())?;
    match (reply.ret, reply.error) {
        (_, Some(e)) => Err(Error::Qmp {
            command: command.to_owned(),
            class: ErrorClass::from_wire(&e.class),
            desc: e.desc,
        }),
        (Some(r), None) => Ok(r.to_owned()),
        (None, None) => Err(reply_err()),
    }
}

impl Monitor for Domain {
    type Error = Error;
    type Events = Events;

    fn execute_raw(
        &self,
        name: &str,
        arguments: Option<&RawValue>,
    ) -> Result<Box<RawValue>, Error> {
        let text = self.monitor_command(name, request(name, arguments), 0)?;
        parse_reply(name, &text)
    }

    fn hmp(&self, line: &str) -> Result<String, Error> {
        if CString::new(line).is_err() {
            return Err(Error::Libvirt {
                operation: "hmp".into(),
                error: LibvirtError::local("an HMP line cannot contain NUL".into()),
            });
        }
        self.monitor_command(
            "hmp",
            line.to_owned(),
            virt_sys::VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP,
        )
    }

    fn subscribe(&self, name: Option<&str>) -> Result<Events, Error> {
        let (queue, rx) = mpsc::sync_channel(EVENT_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        self.hub
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Subscriber {
                name: name.map(str::to_owned),
                queue,
                dropped: Arc::clone(&dropped),
            });
        Ok(Events {
            queue: rx,
            hub: Arc::clone(&self.hub),
            dropped,
            uri: self.uri.clone(),
        })
    }
}

/// A subscription to a [`Domain`]'s events (from [`Monitor::subscribe`]).
#[derive(Debug)]
pub struct Events {
    queue: mpsc::Receiver<RawEvent>,
    hub: Arc<Hub>,
    dropped: Arc<AtomicU64>,
    uri: String,
}

impl Events {
    /// How many events were dropped because this subscription's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl EventStream for Events {
    type Error = Error;

    fn next_event(&mut self, timeout: Duration) -> Result<Option<RawEvent>, Error> {
        let lost = || Error::Disconnected {
            uri: self.uri.clone(),
            message: "no events while disconnected".into(),
        };
        if self.hub.closed.load(Ordering::SeqCst) {
            return self.queue.try_recv().map(Some).map_err(|_| lost());
        }
        match self.queue.recv_timeout(timeout) {
            Ok(e) => Ok(Some(e)),
            Err(_) if self.hub.closed.load(Ordering::SeqCst) => Err(lost()),
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_uuid, parse_reply, request, Error};
    use crate::ErrorClass;

    #[test]
    fn requests_carry_no_id() {
        assert_eq!(
            request("query-status", None),
            r#"{"execute":"query-status"}"#
        );
        let args = serde_json::value::RawValue::from_string(r#"{"id":"d0"}"#.into()).unwrap();
        assert_eq!(
            request("device_del", Some(&args)),
            r#"{"execute":"device_del","arguments":{"id":"d0"}}"#
        );
    }

    #[test]
    fn replies_keep_qemus_error_class() {
        let ok = parse_reply("q", r#"{"return":{"running":false},"id":"libvirt-477"}"#).unwrap();
        assert_eq!(ok.get(), r#"{"running":false}"#);
        let err = parse_reply(
            "x",
            r#"{"id":"libvirt-478","error":{"class":"CommandNotFound","desc":"The command x has not been found"}}"#,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            Error::Qmp { class: ErrorClass::CommandNotFound, ref desc, .. } if desc == "The command x has not been found"
        ));
        assert!(matches!(parse_reply("x", "{}"), Err(Error::Reply { .. })));
        assert!(matches!(
            parse_reply("x", "garbage"),
            Err(Error::Reply { .. })
        ));
    }

    #[test]
    fn tells_uuids_from_names() {
        assert!(is_uuid("c7a5fdbd-cdaf-9455-926a-d65c16db1809"));
        assert!(!is_uuid("vm1"));
        assert!(!is_uuid("c7a5fdbd-cdaf-9455-926a-d65c16db18"));
    }
}
