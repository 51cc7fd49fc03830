//! What the tokio clients offer beyond executing requests, as the blocking ones do:
//! HMP, fd passing, the server's schema (`has_command`, `has_event`, `has_argument`,
//! `supports`), waiting for a queued event, accepting a connection from QEMU,
//! reconnecting, and the guest agent's resync and retried connect. The commands and their decoding are
//! the ones the blocking client uses (`crate::builtin`); the waits are the protocol
//! core's.

use std::net::TcpListener;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use qapi_runtime::Command;
use tokio::sync::oneshot;

use log::debug;

use super::{dispatch, Abandon, Conn, Qga, Qmp};
use crate::builtin;
use crate::conn::{self, Endpoint};
use crate::error::Error;
use crate::event::{EventFilter, RawEvent};
use crate::introspect::ServerSchema;
use crate::options::{AddFdInfo, Options};
use crate::proto::Session;
use crate::qga::{retry_after, Retry, REOPEN_PAUSE, SYNC_EVERY};
use crate::request::Request;

/// What a tokio QMP connection keeps beside the protocol state, shared by its clones.
#[derive(Default)]
pub(super) struct Extra {
    /// The server's `query-qmp-schema`, fetched on first use.
    schema: OnceLock<ServerSchema>,
    /// Where to connect again ([`Qmp::reconnect`]) and with which options.
    again: Option<(Endpoint, Options)>,
}

impl Extra {
    pub(super) fn new(endpoint: &Endpoint, opts: &Options) -> Arc<Extra> {
        Arc::new(Extra {
            schema: OnceLock::new(),
            again: endpoint.reopenable().map(|e| (e, opts.clone())),
        })
    }
}

/// Accepts one connection on a copy of `listener` on a blocking thread, within the
/// connect deadline.
async fn accept_fd<L: Send + 'static>(
    listener: std::io::Result<L>,
    opts: &Options,
    accept: fn(&L, Instant) -> Result<OwnedFd, Error>,
) -> Result<OwnedFd, Error> {
    let listener = listener.map_err(|source| Error::Connect {
        endpoint: "listener".into(),
        source,
    })?;
    let deadline = Instant::now() + opts.connect_timeout;
    tokio::task::spawn_blocking(move || accept(&listener, deadline))
        .await
        .map_err(|e| Error::Connect {
            endpoint: "listener".into(),
            source: std::io::Error::other(e.to_string()),
        })?
}

impl Qmp {
    /// Waits for QEMU to connect to `listener` (`-qmp unix:PATH,server=off`), then
    /// handshakes, as [`crate::Qmp::accept`] does.
    pub async fn accept(listener: &UnixListener, opts: &Options) -> Result<Qmp, Error> {
        let fd = accept_fd(listener.try_clone(), opts, conn::accept_unix).await?;
        Qmp::connect(Endpoint::Fd(fd), opts).await
    }

    /// Like [`Qmp::accept`] for a TCP listener (`-qmp tcp:HOST:PORT,server=off`).
    pub async fn accept_tcp(listener: &TcpListener, opts: &Options) -> Result<Qmp, Error> {
        let fd = accept_fd(listener.try_clone(), opts, conn::accept_tcp).await?;
        Qmp::connect(Endpoint::Fd(fd), opts).await
    }

    /// Uses an already-connected stream or fd (see [`Endpoint::Fd`] and the `From` impls).
    pub async fn from_stream(stream: impl Into<Endpoint>, opts: &Options) -> Result<Qmp, Error> {
        Qmp::connect(stream.into(), opts).await
    }

    /// Connects again to the same socket path or address with the same options (after
    /// QEMU restarted, or the connection broke): a new greeting and negotiation. This
    /// handle gets the new connection; other clones keep the old one. Fails with
    /// [`Error::Connect`] when the endpoint was an fd.
    pub async fn reconnect(&mut self) -> Result<(), Error> {
        let again = self.extra.again.as_ref();
        let endpoint = conn::reopen(again.map(|(e, _)| e))?;
        let opts = again.map(|(_, o)| o.clone()).unwrap_or_default();
        *self = Qmp::connect(endpoint, &opts).await?;
        Ok(())
    }

    /// Runs an HMP command line (`human-monitor-command`) and returns its output.
    pub async fn hmp(&self, command_line: &str) -> Result<String, Error> {
        self.execute(&builtin::Hmp(command_line)).await
    }

    /// Passes `fd` to QEMU under `name` (`getfd`); the fd rides on the command itself.
    pub async fn getfd(&self, name: &str, fd: BorrowedFd<'_>) -> Result<(), Error> {
        let fds = [fd];
        self.execute(Request::new(&builtin::GetFd(name)).fds(&fds))
            .await
    }

    /// Adds `fd` to an fd set (`add-fd`); `None` creates a new set.
    pub async fn add_fd(
        &self,
        fdset_id: Option<i64>,
        opaque: Option<&str>,
        fd: BorrowedFd<'_>,
    ) -> Result<AddFdInfo, Error> {
        let fds = [fd];
        let add = builtin::AddFd { fdset_id, opaque };
        self.execute(Request::new(&add).fds(&fds)).await
    }

    /// What the server has: its `query-qmp-schema`, fetched on the first call and kept
    /// for the life of the connection (shared by its clones), as
    /// [`crate::Qmp::schema`]. Nothing is cached when fetching fails.
    pub async fn schema(&self) -> Result<&ServerSchema, Error> {
        if let Some(s) = self.extra.schema.get() {
            return Ok(s);
        }
        let schema = self.execute(&builtin::QuerySchema).await?;
        Ok(self.extra.schema.get_or_init(|| schema))
    }

    /// Whether the server has the command `name` ([`crate::Qmp::has_command`]).
    pub async fn has_command(&self, name: &str) -> Result<bool, Error> {
        Ok(self.schema().await?.has_command(name))
    }

    /// [`Qmp::has_command`] for a typed command, by its wire name [`Command::NAME`].
    pub async fn supports<C: Command>(&self) -> Result<bool, Error> {
        self.has_command(C::NAME).await
    }

    /// Whether the server can emit the event `name` ([`crate::Qmp::has_event`]).
    pub async fn has_event(&self, name: &str) -> Result<bool, Error> {
        Ok(self.schema().await?.has_event(name))
    }

    /// Whether the command `command` takes the argument `argument`
    /// ([`crate::Qmp::has_argument`]).
    pub async fn has_argument(&self, command: &str, argument: &str) -> Result<bool, Error> {
        Ok(self.schema().await?.has_argument(command, argument))
    }

    /// Waits up to `timeout` for an event of the connection's queue accepted by
    /// `filter`, taking it from the queue if it already arrived; returns it decoded.
    /// Other events stay queued. Cancellation-safe: an event is taken only when this
    /// returns it.
    pub async fn wait_event<T: Send + 'static>(
        &self,
        filter: &EventFilter<T>,
        timeout: Duration,
    ) -> Result<T, Error> {
        let inner = &self.conn.inner;
        let wait = async {
            loop {
                let notified = inner.progress.notified();
                {
                    let mut st = inner.lock();
                    let mut found = None;
                    let taken = st.session.take_event_where(|e| {
                        found = filter.accept(e);
                        found.is_some()
                    });
                    if let (Some(_), Some(v)) = (taken, found) {
                        return Ok(v);
                    }
                    if st.session.is_closed() {
                        return Err(Error::Disconnected { command: None });
                    }
                }
                notified.await;
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                waiting_for: filter.describe(),
                waited: timeout,
            }),
        }
    }

    /// Removes and returns all queued events.
    pub fn drain_events(&self) -> Vec<RawEvent> {
        self.conn.inner.lock().session.drain_events()
    }
}

impl Qga {
    /// Connects and synchronises, retrying until `wait` has passed, exactly as
    /// [`crate::Qga::connect_retrying`] does (a sync every second on the same
    /// connection; a refused or dropped connection opened again): for an agent that is
    /// not running yet, such as one inside a guest that is still booting.
    pub async fn connect_retrying(
        endpoint: Endpoint,
        opts: &Options,
        wait: Duration,
    ) -> Result<Qga, Error> {
        Qga::connect_retrying_while(endpoint, opts, wait, &|| true).await
    }

    /// [`Qga::connect_retrying`] that gives up as soon as `alive` (asked between
    /// attempts) says the peer is gone.
    pub(crate) async fn connect_retrying_while(
        endpoint: Endpoint,
        opts: &Options,
        wait: Duration,
        alive: &(dyn Fn() -> bool + Sync),
    ) -> Result<Qga, Error> {
        let deadline = Instant::now() + wait;
        let again = endpoint.reopenable();
        let reopen = || {
            if alive() {
                again.as_ref().and_then(Endpoint::reopenable)
            } else {
                None
            }
        };
        let mut next = Some(endpoint);
        loop {
            let Some(endpoint) = next.take() else {
                return Err(Error::Disconnected { command: None });
            };
            let conn = match Conn::start(endpoint, opts, Session::qga(opts), deadline).await {
                Ok(conn) => conn,
                Err(e) => match retry_after(&e, true, Instant::now() >= deadline, true) {
                    Retry::Reopen => {
                        tokio::time::sleep(REOPEN_PAUSE).await;
                        next = reopen();
                        if next.is_none() {
                            return Err(e);
                        }
                        continue;
                    }
                    Retry::GiveUp | Retry::SyncAgain => return Err(e),
                },
            };
            loop {
                let attempt = (Instant::now() + SYNC_EVERY).min(deadline);
                let e = match conn.handshake(attempt).await {
                    Ok(()) => return Ok(Qga { conn }),
                    Err(e) => e,
                };
                match retry_after(&e, false, Instant::now() >= deadline, alive()) {
                    Retry::GiveUp => return Err(e),
                    Retry::SyncAgain => {
                        debug!("guest agent: no answer yet, syncing again");
                        let mut st = conn.inner.lock();
                        st.session.sync(Instant::now());
                        dispatch(&conn.inner, &mut st);
                    }
                    Retry::Reopen => {
                        debug!("guest agent: {e}; connecting again");
                        tokio::time::sleep(REOPEN_PAUSE).await;
                        next = reopen();
                        if next.is_none() {
                            return Err(e);
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Uses an already-connected stream or fd, and synchronises.
    pub async fn from_stream(stream: impl Into<Endpoint>, opts: &Options) -> Result<Qga, Error> {
        Qga::connect(stream.into(), opts).await
    }

    /// Resynchronises now, as [`crate::Qga::sync`]: 0xFF and `guest-sync-delimited`
    /// with a random id, discarding everything up to the matching reply.
    pub async fn sync(&self, timeout: Duration) -> Result<(), Error> {
        let inner = &self.conn.inner;
        let (done_tx, done_rx) = oneshot::channel();
        let id = {
            let mut st = inner.lock();
            let id = st.session.sync(Instant::now());
            st.waiters.insert(id, done_tx);
            dispatch(inner, &mut st);
            id
        };
        let guard = Abandon {
            inner,
            id,
            armed: true,
        };
        let outcome = match tokio::time::timeout(timeout, done_rx).await {
            Ok(Ok(r)) => r.map(drop),
            Ok(Err(_)) => Err(Error::Disconnected { command: None }),
            Err(_) => {
                inner.lock().session.expire(id, Instant::now());
                Err(Error::Timeout {
                    waiting_for: "guest-sync-delimited".into(),
                    waited: timeout,
                })
            }
        };
        drop(guard);
        outcome
    }
}
