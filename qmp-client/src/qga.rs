//! The guest agent (QGA) client: no greeting, `\n`-terminated replies, and
//! resynchronisation with a 0xFF byte plus `guest-sync-delimited` on connect and
//! after any timeout or garbage.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use log::debug;
use serde_json::value::RawValue;

use super::conn::{qmp_error, Core, Endpoint, Msg, Stats};
use super::error::Error;
use super::qmp::{Call, Options};
use qapi_runtime::Command;

/// A guest agent session. See the [module docs](super) for an example.
pub struct Qga {
    core: Core,
    reply: String,
    needs_sync: bool,
}

impl fmt::Debug for Qga {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qga")
            .field("needs_sync", &self.needs_sync)
            .field("stats", &self.core.stats)
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

    /// Connects and synchronises within [`Options::connect_timeout`]. Only the
    /// deadlines and the message limit of `opts` apply.
    pub fn connect(endpoint: Endpoint, opts: &Options) -> Result<Qga, Error> {
        let deadline = Instant::now() + opts.connect_timeout;
        let (fd, unix) = endpoint.open(deadline)?;
        let mut qga = Qga {
            core: Core::new(fd, unix, opts.max_message, opts.timeout),
            reply: String::new(),
            needs_sync: true,
        };
        qga.sync_until(Some(deadline), None)?;
        Ok(qga)
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
    /// let mut qga = Qga::connect_retrying(endpoint, &Options::new(), Duration::from_secs(60))?;
    /// qga.execute_raw("guest-ping", None)?;
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
        let again = reopenable(&endpoint);
        let reopen = || {
            if alive() {
                again.as_ref().and_then(reopenable)
            } else {
                None
            }
        };
        let mut next = Some(endpoint);
        loop {
            let Some(endpoint) = next.take() else {
                return Err(Error::Disconnected { command: None });
            };
            let opened = endpoint.open(deadline);
            let (fd, unix) = match opened {
                Ok(pair) => pair,
                Err(e @ Error::Connect { .. }) => {
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    next = reopen();
                    if next.is_none() {
                        return Err(e);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut qga = Qga {
                core: Core::new(fd, unix, opts.max_message, opts.timeout),
                reply: String::new(),
                needs_sync: true,
            };
            loop {
                let attempt = (Instant::now() + Duration::from_secs(1)).min(deadline);
                match qga.sync_until(Some(attempt), None) {
                    Ok(()) => return Ok(qga),
                    Err(e) if Instant::now() >= deadline => return Err(e),
                    Err(e @ Error::Timeout { .. }) => {
                        if !alive() {
                            return Err(e);
                        }
                        debug!("guest agent: no answer yet, syncing again");
                    }
                    Err(e) => {
                        debug!("guest agent: {e}; connecting again");
                        std::thread::sleep(Duration::from_millis(20));
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
        self.core.stats
    }

    /// Changes the default deadline of later calls (`None`: wait forever).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.core.default_timeout = timeout;
    }

    /// Resynchronises now: sends 0xFF and `guest-sync-delimited` with a random id and
    /// discards everything up to the matching reply.
    pub fn sync(&mut self, timeout: Duration) -> Result<(), Error> {
        self.sync_until(Some(Instant::now() + timeout), None)
    }

    /// Executes a typed guest agent command with the default deadline.
    pub fn execute<C: Command>(&mut self, cmd: &C) -> Result<C::Returns, Error> {
        self.execute_with(cmd, &Call::default())
    }

    /// Executes a typed command with per-call options (only the deadline applies:
    /// the agent has no out-of-band execution and takes no fds).
    pub fn execute_with<C: Command>(
        &mut self,
        cmd: &C,
        call: &Call<'_>,
    ) -> Result<C::Returns, Error> {
        let deadline = self.begin(C::NAME, call)?;
        let mut w = self.core.begin_request(C::NAME, false);
        if C::HAS_ARGUMENTS {
            if let Err(e) = Core::push_arguments(&mut w, |w| cmd.write_arguments(w)) {
                return Err(Error::Encode {
                    command: C::NAME.to_owned(),
                    source: e,
                });
            }
        }
        let json = self.roundtrip(w, C::NAME, C::SUCCESS_RESPONSE, deadline)?;
        C::decode_return(json).map_err(|e| Error::decode(C::NAME, e, json))
    }

    /// Executes a command by name with JSON `arguments`; returns the `return` JSON.
    pub fn execute_raw(
        &mut self,
        name: &str,
        args: Option<&RawValue>,
    ) -> Result<Box<RawValue>, Error> {
        self.execute_raw_with(name, args, &Call::default())
    }

    /// [`Qga::execute_raw`] with per-call options.
    pub fn execute_raw_with(
        &mut self,
        name: &str,
        args: Option<&RawValue>,
        call: &Call<'_>,
    ) -> Result<Box<RawValue>, Error> {
        let deadline = self.begin(name, call)?;
        let mut w = self.core.begin_request(name, false);
        if let Some(a) = args {
            let _ = Core::push_arguments(&mut w, |w| {
                w.extend_from_slice(a.get().as_bytes());
                Ok(())
            });
        }
        let json = self.roundtrip(w, name, true, deadline)?;
        RawValue::from_string(json.to_owned()).map_err(|e| Error::decode(name, e, json))
    }

    fn begin(&mut self, name: &str, call: &Call<'_>) -> Result<Option<Instant>, Error> {
        if call.is_oob() {
            return Err(Error::OobUnavailable {
                command: name.to_owned(),
                reason: "the guest agent has no out-of-band execution",
            });
        }
        let deadline = self.core.deadline(call.timeout_override());
        if self.needs_sync {
            self.sync_until(deadline, None)?;
        }
        Ok(deadline)
    }

    fn roundtrip(
        &mut self,
        w: Vec<u8>,
        name: &str,
        success_response: bool,
        deadline: Option<Instant>,
    ) -> Result<&str, Error> {
        let fds = [];
        let id = match self.core.send_request(w, true, b"", &fds, deadline, name) {
            Ok(id) => id,
            Err(e) => {
                self.needs_sync = true;
                return Err(e);
            }
        };
        if !success_response {
            // No reply on success: a sync proves the command was consumed; an error
            // reply with our id before it is the command's failure.
            return match self.sync_until(deadline, Some((id, name))) {
                Ok(()) | Err(Error::Disconnected { .. }) => Ok("{}"),
                Err(e) => Err(e),
            };
        }
        loop {
            let msg = match self
                .core
                .read_msg(deadline, &|| name.to_owned(), Some(name))
            {
                Ok(m) => m,
                Err(e) => {
                    // Timeout, garbage or oversize: resync before the next command.
                    self.needs_sync = true;
                    return Err(e);
                }
            };
            match msg {
                Msg::Reply {
                    id: Some(got),
                    result,
                } if got == id => {
                    return match result {
                        Ok(json) => {
                            self.reply.clear();
                            self.reply.push_str(json);
                            Ok(&self.reply)
                        }
                        Err((class, desc)) => Err(qmp_error(name, &class, &desc)),
                    };
                }
                Msg::Reply { id, .. } => {
                    debug!("guest agent: discarding stale reply with id {id:?}");
                }
                _ => {}
            }
        }
    }

    /// Sends 0xFF + `guest-sync-delimited` and skips input up to its reply. With
    /// `watch`, an error reply to that request id fails the call.
    fn sync_until(
        &mut self,
        deadline: Option<Instant>,
        watch: Option<(u64, &str)>,
    ) -> Result<(), Error> {
        self.needs_sync = true;
        let token = random_id();
        let mut w = self.core.begin_request("guest-sync-delimited", false);
        w.extend_from_slice(b",\"arguments\":{\"id\":");
        w.extend_from_slice(token.to_string().as_bytes());
        w.push(b'}');
        let fds = [];
        self.core
            .send_request(w, false, &[0xFF], &fds, deadline, "guest-sync-delimited")?;
        let mut delimited = false;
        loop {
            let msg = match self.core.read_msg(
                deadline,
                &|| "guest-sync-delimited".into(),
                Some("guest-sync-delimited"),
            ) {
                Ok(m) => m,
                // Stale garbage or an oversized stale reply: keep skipping.
                Err(Error::Protocol { .. } | Error::TooLarge { .. }) => continue,
                Err(e) => return Err(e),
            };
            match msg {
                Msg::Sentinel => delimited = true,
                Msg::Reply {
                    id: Some(got),
                    result: Err((class, desc)),
                } if watch.is_some_and(|(id, _)| id == got) => {
                    let name = watch.map_or("", |(_, n)| n);
                    return Err(qmp_error(name, &class, &desc));
                }
                Msg::Reply {
                    result: Ok(json), ..
                } if delimited && json.trim().parse::<u64>() == Ok(token) => {
                    self.needs_sync = false;
                    return Ok(());
                }
                _ => {}
            }
        }
    }
}

/// A copy of `endpoint` to connect to again (`None` for an already-connected fd).
fn reopenable(endpoint: &Endpoint) -> Option<Endpoint> {
    match endpoint {
        Endpoint::Unix(p) => Some(Endpoint::Unix(p.clone())),
        Endpoint::Tcp(a) => Some(Endpoint::Tcp(a.clone())),
        Endpoint::Fd(_) => None,
    }
}

/// A random positive 63-bit id from std's randomly seeded hasher.
fn random_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() & (i64::MAX as u64)
}
