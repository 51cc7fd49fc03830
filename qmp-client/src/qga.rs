//! The blocking guest agent (QGA) client: no greeting, `\n`-terminated replies,
//! and resynchronisation with a 0xFF byte plus `guest-sync-delimited` on connect and
//! after any timeout or garbage (all in the protocol core; this is its driver).

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use log::debug;

use crate::blocking::{Driver, WaitEnd};
use crate::conn::{Endpoint, Stats};
use crate::error::Error;
use crate::options::Options;
use crate::proto::Session;
use crate::request::Request;

/// How long [`Qga::connect_retrying`] waits for an answer before syncing again.
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How long it pauses before opening the socket again.
pub(crate) const REOPEN_PAUSE: Duration = Duration::from_millis(20);

/// What [`Qga::connect_retrying`] (blocking or tokio) does after a failed attempt.
pub(crate) enum Retry {
    /// Fail with the attempt's error.
    GiveUp,
    /// Send another sync on the same connection (the agent may not run yet).
    SyncAgain,
    /// Open the socket again (refused or dropped: the peer may be restarting).
    Reopen,
}

/// The decision after `e` ended an attempt: at opening the socket (`opening`) or
/// during the sync; `expired`: the wait is over; `alive`: the peer still runs.
pub(crate) fn retry_after(e: &Error, opening: bool, expired: bool, alive: bool) -> Retry {
    match e {
        _ if expired => Retry::GiveUp,
        Error::Connect { .. } if opening => Retry::Reopen,
        _ if opening => Retry::GiveUp,
        Error::Timeout { .. } if alive => Retry::SyncAgain,
        Error::Timeout { .. } => Retry::GiveUp,
        _ => Retry::Reopen,
    }
}

/// A guest agent session. See the [crate docs](crate) for an example. `Send + Sync`
/// like [`Qmp`](crate::Qmp); the agent itself runs one command at a time.
pub struct Qga {
    driver: Box<Driver>,
}

impl fmt::Debug for Qga {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qga")
            .field("stats", &self.driver.lock().session.stats())
            .finish()
    }
}

impl Qga {
    /// Connects to the agent's Unix socket with default [`Options`] and synchronises.
    pub fn connect_unix(path: impl AsRef<Path>) -> Result<Qga, Error> {
        Qga::connect(
            Endpoint::Unix(path.as_ref().to_owned()),
            &Options::default(),
        )
    }

    /// Connects and synchronises within [`Options::connect_timeout`]. The deadlines,
    /// the timeout table and the message limit of `opts` apply.
    pub fn connect(endpoint: Endpoint, opts: &Options) -> Result<Qga, Error> {
        let deadline = Instant::now() + opts.connect_timeout;
        let (fd, unix) = endpoint.open(deadline)?;
        let driver = Box::new(Driver::new(
            fd,
            unix,
            Session::qga(opts),
            opts.timeouts.clone(),
        ));
        driver.handshake(deadline, None)?;
        Ok(Qga { driver })
    }

    /// Connects and synchronises, retrying until `wait` has passed: for an agent that
    /// is not running yet, such as one inside a guest that is still booting.
    ///
    /// A guest agent port (a QEMU `virtserialport` chardev) accepts the connection
    /// at once but stays silent until the agent opens the port in the guest; what was
    /// written before then is delivered to the agent when it starts. So the sync
    /// (0xFF + `guest-sync-delimited` with a fresh id) is sent again every second on the
    /// same connection, and the first reply to any of them counts as synchronised (the
    /// others' replies are skipped by their ids later). A refused or dropped connection
    /// (the socket not there yet, the peer restarting) is opened again, and an
    /// [`Endpoint::Fd`] is used once. `opts` applies as in [`Qga::connect`], except that
    /// its connect timeout is replaced by `wait`.
    ///
    /// Fails with the last attempt's error (usually [`Error::Timeout`]) when `wait`
    /// has passed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use qmp_client::{Endpoint, Options, Qga};
    /// let endpoint = Endpoint::Unix("/run/vm/qga.sock".into());
    /// let qga = Qga::connect_retrying(endpoint, &Options::new(), Duration::from_secs(60))?;
    /// qga.execute(qmp_client::Request::name("guest-ping"))?;
    /// # Ok::<(), qmp_client::Error>(())
    /// ```
    pub fn connect_retrying(
        endpoint: Endpoint,
        opts: &Options,
        wait: Duration,
    ) -> Result<Qga, Error> {
        Qga::connect_retrying_while(endpoint, opts, wait, &|| true)
    }

    /// [`Qga::connect_retrying`] that gives up with [`Error::Disconnected`] as soon as
    /// `alive` (asked between attempts) says the peer is gone.
    pub(crate) fn connect_retrying_while(
        endpoint: Endpoint,
        opts: &Options,
        wait: Duration,
        alive: &dyn Fn() -> bool,
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
            let driver = match endpoint.open(deadline) {
                Ok((fd, unix)) => Box::new(Driver::new(
                    fd,
                    unix,
                    Session::qga(opts),
                    opts.timeouts.clone(),
                )),
                Err(e) => match retry_after(&e, true, Instant::now() >= deadline, true) {
                    Retry::Reopen => {
                        std::thread::sleep(REOPEN_PAUSE);
                        next = reopen();
                        if next.is_none() {
                            return Err(e);
                        }
                        continue;
                    }
                    Retry::GiveUp | Retry::SyncAgain => return Err(e),
                },
            };
            // One attempt per second on the same connection, until `wait` or death.
            loop {
                let attempt = (Instant::now() + SYNC_EVERY).min(deadline);
                let e = match driver.handshake(attempt, None) {
                    Ok(()) => return Ok(Qga { driver }),
                    Err(e) => e,
                };
                match retry_after(&e, false, Instant::now() >= deadline, alive()) {
                    Retry::GiveUp => return Err(e),
                    Retry::SyncAgain => {
                        debug!("guest agent: no answer yet, syncing again");
                        driver.lock().session.sync(Instant::now());
                    }
                    Retry::Reopen => {
                        debug!("guest agent: {e}; connecting again");
                        std::thread::sleep(REOPEN_PAUSE);
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
    pub fn from_stream(stream: impl Into<Endpoint>, opts: &Options) -> Result<Qga, Error> {
        Qga::connect(stream.into(), opts)
    }

    /// Counters of this connection.
    pub fn stats(&self) -> Stats {
        self.driver.lock().session.stats()
    }

    /// Whether the agent's side has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.driver.read_nonblocking();
        self.driver.lock().session.is_closed()
    }

    /// Changes the default deadline of later calls whose command has no entry in the
    /// timeout table (`None`: wait forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        let mut table = self
            .driver
            .timeouts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        std::sync::Arc::make_mut(&mut table).default = timeout;
    }

    /// Resynchronises now: sends 0xFF and `guest-sync-delimited` with a random id and
    /// discards everything up to the matching reply.
    pub fn sync(&self, timeout: Duration) -> Result<(), Error> {
        let now = Instant::now();
        let id = self.driver.lock().session.sync(now);
        self.driver.flush(None, &[], Some(now + timeout))?;
        match self.driver.wait(
            Some(now + timeout),
            |s| s.take(id),
            |s, now| s.expire(id, now),
        ) {
            Ok(r) => r.map(|_| ()),
            Err(WaitEnd::Deadline) => Err(Error::Timeout {
                waiting_for: "guest-sync-delimited".into(),
                waited: timeout,
            }),
            Err(WaitEnd::Closed) => Err(Error::Disconnected { command: None }),
        }
    }

    /// Executes a request (a typed command `&cmd`, or a [`Request`]) exactly as
    /// [`Qmp::execute`](crate::Qmp::execute) does. The agent has no out-of-band
    /// execution and takes no file descriptors: asking for either is an error
    /// ([`Error::OobUnavailable`], [`Error::FdPassingUnsupported`]), never ignored.
    /// Commands that send nothing on success (`guest-shutdown`) complete when a sync
    /// sent right after them is answered (or the agent hangs up).
    pub fn execute<'a, T: 'a>(&self, request: impl Into<Request<'a, T>>) -> Result<T, Error> {
        self.driver.call(request.into())
    }
}
