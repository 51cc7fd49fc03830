//! The tokio clients (feature `tokio`): [`Qmp`] and [`Qga`] over the same protocol
//! core as the blocking ones, for control planes that manage many VMs from one
//! process.
//!
//! - Many calls in flight on one connection: a reader task (one per runtime worker,
//!   serving many connections in the order their input arrived) routes each reply to
//!   its call by id. A call writes its request itself, without waiting;
//!   only what the socket does not take at once goes to a writer task, started then.
//! - Cancellation-safe: a request is written whole, or handed to the writer task,
//!   before the call first yields, so dropping a call future (a `select!`, a timeout
//!   around it) cannot cut a request in half; its late reply is discarded by id.
//! - A deadline on every call: [`Request::timeout`], else the connection's
//!   [`Timeouts`] table (per-command defaults).
//! - Any number of subscribers ([`Qmp::subscribe`]), each with its own bounded queue
//!   and drop count, plus the connection's own queue ([`Qmp::next_event`]).
//! - Connection state: [`Qmp::is_closed`] and [`Qmp::closed`] (resolves when QEMU
//!   hangs up or exits); pending calls then fail with
//!   [`Error::Disconnected`] (outcome unknown).
//!
//! - What the blocking clients offer beside `execute`, as async methods over the same
//!   commands and core: [`Qmp::hmp`], [`Qmp::getfd`] and [`Qmp::add_fd`], the server's
//!   schema ([`Qmp::has_command`], [`Qmp::has_event`], [`Qmp::has_argument`],
//!   [`Qmp::supports`]), [`Qmp::wait_event`], [`Qmp::accept`], [`Qmp::reconnect`]
//!   and [`Qga::sync`].
//!
//! Clients are cheap to clone (one connection, shared).
//!
//! ```no_run
//! # async fn f() -> Result<(), qmp_client::Error> {
//! use qmp_client::{tokio::Qmp, Endpoint, Options, Request};
//! let qmp = Qmp::connect(Endpoint::Unix("/run/qmp.sock".into()), &Options::new()).await?;
//! let (a, b) = tokio::join!(
//!     qmp.execute(Request::name("query-status")),
//!     qmp.execute(Request::name("query-name")),
//! );
//! # let _ = (a?, b?);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Wake;
use std::time::Instant;

use tokio::io::unix::AsyncFd;
use tokio::sync::{oneshot, watch, Notify};

use crate::conn::{Endpoint, Stats};
use crate::error::Error;
use crate::event::{EventFilter, RawEvent};
use crate::fd;
use crate::options::{Greeting, Options, Timeouts};
use crate::proto::{Done, IdMap, Session, SubQueue};
use crate::request::Request;

mod helpers;
mod readers;

use readers::Slot;

/// A request the socket did not take at once: the rest is the writer task's.
struct Outgoing {
    id: Option<u64>,
    bytes: Vec<u8>,
    /// Bytes already written.
    written: usize,
    fds: Vec<OwnedFd>,
}

struct State {
    session: Session,
    waiters: IdMap<oneshot::Sender<Result<Done, Error>>>,
    subs: IdMap<Arc<Notify>>,
    /// What is not yet written, in order (empty unless the socket buffer filled).
    out: VecDeque<Outgoing>,
    /// A writer task is draining `out`; until it ends, nothing is written ahead of it.
    writing: bool,
    /// The earliest deadline the connection's reader knows of (a call with an earlier
    /// deadline lowers it and tells the reader; the reader raises it when it falls due).
    timer: Option<Instant>,
}

struct Inner {
    state: Mutex<State>,
    /// Woken after every batch of input (handshake, the connection's queue).
    progress: Notify,
    closed: watch::Receiver<bool>,
    timeouts: Mutex<Arc<Timeouts>>,
    unix: bool,
    capacity: usize,
    /// The socket, registered with the runtime's I/O driver (the writer task clones it).
    afd: Arc<AsyncFd<OwnedFd>>,
    /// The connection as its reader (`tokio/readers.rs`) knows it.
    slot: Arc<Slot>,
}

impl Drop for Inner {
    /// The last client handle is gone: shut the socket down now, so the peer sees
    /// the client leave at once even while a writer task still holds the descriptor.
    fn drop(&mut self) {
        // SAFETY: shutdown(2) on a descriptor this struct keeps open.
        unsafe {
            libc::shutdown(self.afd.as_raw_fd(), libc::SHUT_RDWR);
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Hands completions to their calls, writes what the session queued, wakes waiters.
fn dispatch(inner: &Arc<Inner>, st: &mut State) {
    transmit(inner, st, None);
    let State {
        session, waiters, ..
    } = st;
    for (id, outcome) in session.drain_completed() {
        if let Some(w) = waiters.remove(&id) {
            let _ = w.send(outcome);
        }
    }
    for n in st.subs.values() {
        n.notify_one();
    }
    inner.progress.notify_waiters();
    inner.progress.notify_one();
}

/// Writes the session's queued requests (`fds` go with the request `fds.0`) from
/// the calling task, under the state lock: a request is written whole or handed to
/// the writer task before the lock is released, so a dropped call future cannot cut
/// one in half, and the common case costs no task switch.
fn transmit(inner: &Arc<Inner>, st: &mut State, mut fds: Option<(u64, Vec<OwnedFd>)>) {
    while let Some(t) = st.session.poll_transmit() {
        let fds = match &mut fds {
            Some((id, f)) if t.id == Some(*id) => std::mem::take(f),
            _ => Vec::new(),
        };
        st.out.push_back(Outgoing {
            id: t.id,
            bytes: t.bytes,
            written: 0,
            fds,
        });
    }
    if st.writing || st.out.is_empty() {
        return;
    }
    if !write_some(&inner.afd, st) {
        st.writing = true;
        tokio::spawn(writer(Arc::downgrade(inner)));
    }
}

/// Writes from `st.out` until it is empty (true) or the socket would block (false).
/// A failed write fails its call; the requests after it are still tried.
fn write_some(afd: &AsyncFd<OwnedFd>, st: &mut State) -> bool {
    let raw = afd.as_raw_fd();
    while let Some(out) = st.out.front_mut() {
        let fds: Vec<_> = if out.written == 0 {
            out.fds.iter().map(|f| f.as_fd()).collect()
        } else {
            Vec::new()
        };
        match fd::send_once(raw, &out.bytes[out.written..], &fds) {
            Ok(Some(n)) => {
                out.written += n;
                if out.written >= out.bytes.len() {
                    st.out.pop_front();
                }
            }
            Ok(None) => return false,
            Err(e) => {
                let (id, partial) = (out.id, out.written > 0);
                st.out.pop_front();
                let err = if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) {
                    Error::Disconnected { command: None }
                } else {
                    Error::Io {
                        command: None,
                        source: e,
                    }
                };
                st.session.write_failed(id, partial, err);
            }
        }
    }
    true
}

/// One connection, shared by clones of a client.
#[derive(Clone)]
struct Conn {
    inner: Arc<Inner>,
}

impl Conn {
    async fn open(endpoint: Endpoint, opts: &Options, session: Session) -> Result<Conn, Error> {
        let deadline = Instant::now() + opts.connect_timeout;
        let conn = Conn::start(endpoint, opts, session, deadline).await?;
        conn.handshake(deadline).await?;
        Ok(conn)
    }

    /// Opens the socket (within `deadline`) and starts the reader task; the
    /// session's first bytes (the greeting's answer comes later; the agent's sync
    /// now) are written.
    async fn start(
        endpoint: Endpoint,
        opts: &Options,
        session: Session,
        deadline: Instant,
    ) -> Result<Conn, Error> {
        let (fd, unix) = match endpoint {
            // A Unix connect does not block (a full backlog is retried here): no thread.
            Endpoint::Unix(path) => (connect_unix(&path, deadline).await?, true),
            endpoint => tokio::task::spawn_blocking(move || endpoint.open(deadline))
                .await
                .map_err(|e| Error::Connect {
                    endpoint: "socket".into(),
                    source: io::Error::other(e.to_string()),
                })??,
        };
        // SAFETY: an `OwnedFd` keeps its descriptor open and unchanged for as long as
        // it is owned, here by the `AsyncFd`.
        let registered = unsafe { AsyncFd::register(fd) };
        let afd = Arc::new(registered.map_err(|e| Error::Connect {
            endpoint: "socket (registering with tokio)".into(),
            source: e.into_parts().1,
        })?);
        let (closed_tx, closed_rx) = watch::channel(false);
        let inner = Arc::new_cyclic(|weak| Inner {
            state: Mutex::new(State {
                session,
                waiters: IdMap::default(),
                subs: IdMap::default(),
                out: VecDeque::new(),
                writing: false,
                timer: None,
            }),
            progress: Notify::new(),
            closed: closed_rx,
            timeouts: Mutex::new(opts.timeouts.clone()),
            unix,
            capacity: opts.event_capacity,
            afd,
            slot: Slot::new(weak.clone(), closed_tx),
        });
        {
            let mut st = inner.lock();
            dispatch(&inner, &mut st);
        }
        // The reader's first look registers the socket's readiness.
        inner.slot.wake_by_ref();
        Ok(Conn { inner })
    }

    /// Waits until `deadline` for the handshake (greeting and negotiation, or the
    /// agent's sync) to end.
    async fn handshake(&self, deadline: Instant) -> Result<(), Error> {
        let wait = async {
            loop {
                let notified = self.inner.progress.notified();
                if let Some(r) = self.inner.lock().session.handshake() {
                    return r;
                }
                notified.await;
            }
        };
        match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), wait).await {
            Ok(r) => r,
            Err(_) => Err(self.inner.lock().session.handshake_timeout(Instant::now())),
        }
    }

    async fn call<T>(&self, mut req: Request<'_, T>) -> Result<T, Error> {
        if !req.fds.is_empty() && !self.inner.unix {
            return Err(Error::FdPassingUnsupported {
                command: req.name.to_string(),
                reason: "only Unix sockets carry them (this connection is TCP)",
            });
        }
        let timeout = match req.timeout {
            Some(t) => t,
            None => self
                .inner
                .timeouts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&req.name),
        };
        let now = Instant::now();
        let (done_tx, done_rx) = oneshot::channel();
        let id = {
            let mut st = self.inner.lock();
            let id = st.session.request(&mut req, now)?;
            if let Some(t) = timeout {
                // One deadline per connection in its reader, not a timer per call:
                // most calls end long before their deadline, and the reader is told
                // only when this one comes first.
                let deadline = now + t;
                st.session.set_deadline(id, deadline);
                if st.timer.is_none_or(|armed| deadline < armed) {
                    st.timer = Some(deadline);
                    self.inner.slot.deadline(deadline);
                }
            }
            let mut fds = Vec::new();
            for f in req.fds {
                fds.push(f.try_clone_to_owned().map_err(|source| Error::Io {
                    command: Some(req.name.to_string()),
                    source,
                })?);
            }
            st.waiters.insert(id, done_tx);
            transmit(&self.inner, &mut st, Some((id, fds)));
            if st.session.is_done(id) {
                // The write failed at once: hand the outcome over now.
                dispatch(&self.inner, &mut st);
            }
            id
        };
        // Dropping this future before the reply abandons the call: the session then
        // discards its late reply.
        let mut guard = Abandon {
            inner: &self.inner,
            id,
            armed: true,
        };
        // A timeout arrives as the outcome: the reader task expires the call.
        let outcome = done_rx.await.ok();
        guard.armed = false;
        let done = match outcome {
            Some(r) => r?,
            None => {
                return Err(Error::Disconnected {
                    command: Some(req.name.to_string()),
                })
            }
        };
        (req.decode)(&done.json, done.event)
    }

    fn subscribe<T: Send + 'static>(&self, filter: EventFilter<T>, cap: usize) -> Subscription<T> {
        let notify = Arc::new(Notify::new());
        let mut st = self.inner.lock();
        let (id, queue) = st.session.subscribe(filter.event_names(), cap);
        st.subs.insert(id, notify.clone());
        Subscription {
            inner: self.inner.clone(),
            id,
            notify,
            queue,
            filter,
            batch: VecDeque::new(),
        }
    }

    fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    async fn closed(&self) {
        let mut rx = self.inner.closed.clone();
        let _ = rx.wait_for(|c| *c).await;
    }
}

struct Abandon<'a> {
    inner: &'a Inner,
    id: u64,
    /// Cleared once the outcome is in: whoever delivered it already forgot the call.
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut st = self.inner.lock();
        st.session.abandon(self.id);
        st.waiters.remove(&self.id);
    }
}

/// [`fd::connect_unix`] for the runtime: retries a full backlog on tokio's clock.
async fn connect_unix(path: &std::path::Path, deadline: Instant) -> Result<OwnedFd, Error> {
    let err = |source| Error::Connect {
        endpoint: Endpoint::Unix(path.to_owned()).describe(),
        source,
    };
    loop {
        if let Some(fd) = fd::try_connect_unix(path).map_err(err)? {
            return Ok(fd);
        }
        if Instant::now() >= deadline {
            return Err(err(fd::backlog_timeout()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Drains the queue of requests the socket did not take at once, then ends.
async fn writer(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(conn) = inner.upgrade() else {
            return;
        };
        let afd = conn.afd.clone();
        drop(conn);
        let ready = afd.writable().await;
        let Some(conn) = inner.upgrade() else {
            return;
        };
        let mut st = conn.lock();
        match ready {
            Ok(mut guard) => {
                if write_some(&conn.afd, &mut st) {
                    st.writing = false;
                    dispatch(&conn, &mut st);
                    return;
                }
                guard.clear_ready();
            }
            Err(e) => {
                // The descriptor cannot be polled: fail what is queued.
                while let Some(out) = st.out.pop_front() {
                    let err = Error::Io {
                        command: None,
                        source: io::Error::new(e.kind(), e.to_string()),
                    };
                    st.session.write_failed(out.id, out.written > 0, err);
                }
                st.writing = false;
                dispatch(&conn, &mut st);
                return;
            }
        }
    }
}

/// Events of one subscription, each decoded once; unsubscribes on drop.
///
/// Its queue is its own: the reader adds the events of the filter's names, and
/// `next` takes them a batch at a time (neither holding the connection's lock) and
/// decodes and filters them, so up to twice its capacity may be held: the queue plus
/// the batch being handed out. An event that fails to decode or the filter's
/// predicate is skipped.
pub struct Subscription<T> {
    inner: Arc<Inner>,
    id: u64,
    notify: Arc<Notify>,
    queue: Arc<SubQueue>,
    filter: EventFilter<T>,
    /// The batch taken last, not yet decoded.
    batch: VecDeque<RawEvent>,
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("filter", &self.filter)
            .finish()
    }
}

impl<T: 'static> Subscription<T> {
    /// The next event; `None` once the connection has closed and the queue is empty.
    /// Cancellation-safe: an event is taken only when this returns it.
    pub async fn next(&mut self) -> Option<T> {
        loop {
            if let Some(v) = self.take_from_batch() {
                return Some(v);
            }
            let closed = self.queue.take_all(&mut self.batch);
            if self.batch.is_empty() {
                if closed {
                    return None;
                }
                // A notification between the check and the wait is kept as a permit.
                self.notify.notified().await;
            }
        }
    }

    /// The next event if one is queued.
    pub fn try_next(&mut self) -> Option<T> {
        if let Some(v) = self.take_from_batch() {
            return Some(v);
        }
        self.queue.take_all(&mut self.batch);
        self.take_from_batch()
    }

    /// The first event of the batch the filter accepts (the ones before it are spent).
    fn take_from_batch(&mut self) -> Option<T> {
        while let Some(raw) = self.batch.pop_front() {
            if let Some(v) = self.filter.accept(&raw) {
                return Some(v);
            }
        }
        None
    }

    /// How many events this subscription dropped because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.session.unsubscribe(self.id);
        st.subs.remove(&self.id);
    }
}

macro_rules! common {
    () => {
        /// Executes a request (`&cmd` or a [`Request`]), as the blocking client does;
        /// any number may be in flight at once. Dropping the future abandons the call
        /// (the request may still run; its reply is discarded).
        pub async fn execute<'a, T: 'a>(
            &self,
            request: impl Into<Request<'a, T>>,
        ) -> Result<T, Error> {
            self.conn.call(request.into()).await
        }

        /// Counters of this connection.
        pub fn stats(&self) -> Stats {
            self.conn.inner.lock().session.stats()
        }

        /// Whether the peer has closed the connection (QEMU exited or hung up).
        pub fn is_closed(&self) -> bool {
            self.conn.is_closed()
        }

        /// Resolves when the connection closes.
        pub async fn closed(&self) {
            self.conn.closed().await
        }

        /// Changes the default deadline of commands without an entry in the
        /// timeout table (`None`: wait forever).
        pub fn set_timeout(&self, timeout: Option<std::time::Duration>) {
            let mut table = self
                .conn
                .inner
                .timeouts
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            Arc::make_mut(&mut table).default = timeout;
        }
    };
}

/// An async QMP connection. Cheap to clone; all clones share it.
#[derive(Clone)]
pub struct Qmp {
    conn: Conn,
    greeting: Option<Arc<Greeting>>,
    oob: bool,
    /// The schema cache and where to reconnect (`tokio/helpers.rs`).
    extra: Arc<helpers::Extra>,
}

impl fmt::Debug for Qmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qmp")
            .field("greeting", &self.greeting)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Qmp {
    /// Connects, reads the greeting and negotiates, within [`Options::connect_timeout`].
    pub async fn connect(endpoint: Endpoint, opts: &Options) -> Result<Qmp, Error> {
        let extra = helpers::Extra::new(&endpoint, opts);
        let conn = Conn::open(endpoint, opts, Session::qmp(opts)).await?;
        let (greeting, oob) = {
            let st = conn.inner.lock();
            (
                st.session.greeting().cloned().map(Arc::new),
                st.session.oob_enabled(),
            )
        };
        Ok(Qmp {
            conn,
            greeting,
            oob,
            extra,
        })
    }

    common!();

    /// The greeting (absent when negotiation was skipped).
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_deref()
    }

    /// Whether out-of-band execution was negotiated.
    pub fn oob_enabled(&self) -> bool {
        self.oob
    }

    /// Subscribes to the events `filter` accepts, with its own queue of
    /// [`Options::event_capacity`] events of the filter's names (drop-oldest, counted
    /// per subscription; each is decoded as it is taken).
    pub fn subscribe<T: Send + 'static>(&self, filter: EventFilter<T>) -> Subscription<T> {
        self.conn.subscribe(filter, self.conn.inner.capacity)
    }

    /// [`Qmp::subscribe`] with another queue capacity.
    pub fn subscribe_with_capacity<T: Send + 'static>(
        &self,
        filter: EventFilter<T>,
        capacity: usize,
    ) -> Subscription<T> {
        self.conn.subscribe(filter, capacity)
    }

    /// The next event of the connection's own queue (events no call's wait took);
    /// `None` once the connection has closed and the queue is empty.
    pub async fn next_event(&self) -> Option<RawEvent> {
        loop {
            let notified = self.conn.inner.progress.notified();
            {
                let mut st = self.conn.inner.lock();
                if let Some(e) = st.session.pop_event() {
                    return Some(e);
                }
                if st.session.is_closed() {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// A queued event, without waiting.
    pub fn poll_event(&self) -> Option<RawEvent> {
        self.conn.inner.lock().session.pop_event()
    }

    /// How many events the connection's queue dropped because it was full.
    pub fn dropped_events(&self) -> u64 {
        self.stats().dropped_events
    }
}

/// An async guest agent connection (synchronised on connect and after timeouts).
#[derive(Clone)]
pub struct Qga {
    conn: Conn,
}

impl fmt::Debug for Qga {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qga").field("stats", &self.stats()).finish()
    }
}

impl Qga {
    /// Connects and synchronises (0xFF + `guest-sync-delimited`) within
    /// [`Options::connect_timeout`].
    pub async fn connect(endpoint: Endpoint, opts: &Options) -> Result<Qga, Error> {
        Ok(Qga {
            conn: Conn::open(endpoint, opts, Session::qga(opts)).await?,
        })
    }

    common!();
}
