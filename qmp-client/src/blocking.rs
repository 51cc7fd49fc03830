//! The blocking driver: a [`Session`] behind a mutex, a socket read with `poll`
//! against absolute deadlines, and SCM_RIGHTS writes. Shared by [`Qmp`](crate::Qmp)
//! and [`Qga`](crate::Qga).
//!
//! Any number of threads may call through one `&` reference. Writes are serialised
//! (one lock held from queuing a request to its last byte, so requests go out in id
//! order). Reading is leader/follower: whichever waiting thread finds nobody reading
//! becomes the reader: it polls the socket without the session lock, then takes the
//! lock for a non-blocking `recv` straight into the framer, and wakes the others,
//! which find their replies (or events) completed by the session.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::fd;
use crate::options::Timeouts;
use crate::proto::Session;
use crate::request::Request;

pub(crate) struct Shared {
    pub(crate) session: Session,
    reading: bool,
    /// Nothing can be in the socket yet (a request was just written, or the connection
    /// is new): the next read waits for data first instead of trying a read that would
    /// fail (a system call saved on every reply and each step of the handshake; an
    /// event stream keeps reading first).
    poll_first: bool,
    /// Threads waiting on the condition variable: with none, nobody is woken (std's
    /// `notify_all` makes a system call either way).
    waiters: u32,
}

/// The socket and the session.
pub(crate) struct Driver {
    fd: OwnedFd,
    pub(crate) unix: bool,
    state: Mutex<Shared>,
    cv: Condvar,
    write: Mutex<()>,
    pub(crate) timeouts: Mutex<std::sync::Arc<Timeouts>>,
}

/// Why a wait ended without its value.
pub(crate) enum WaitEnd {
    Deadline,
    Closed,
}

impl Driver {
    pub(crate) fn new(
        fd: OwnedFd,
        unix: bool,
        session: Session,
        timeouts: std::sync::Arc<Timeouts>,
    ) -> Driver {
        Driver {
            fd,
            unix,
            state: Mutex::new(Shared {
                session,
                reading: false,
                poll_first: true,
                waiters: 0,
            }),
            cv: Condvar::new(),
            write: Mutex::new(()),
            timeouts: Mutex::new(timeouts),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the handshake to its end (flushing what the session queues, e.g.
    /// `qmp_capabilities`). `resync`: for the agent, send another sync this often.
    pub(crate) fn handshake(
        &self,
        deadline: Instant,
        resync: Option<Duration>,
    ) -> Result<(), Error> {
        let mut next_resync = resync.map(|r| Instant::now() + r);
        loop {
            self.flush(None, &[], Some(deadline))?;
            let mut g = self.lock();
            if let Some(done) = g.session.handshake() {
                return done;
            }
            let now = Instant::now();
            if let Some(at) = next_resync {
                if now >= at {
                    g.session.sync(now);
                    next_resync = resync.map(|r| now + r);
                    continue;
                }
            }
            if now >= deadline {
                return Err(g.session.handshake_timeout(now));
            }
            let until = next_resync.map_or(deadline, |r| r.min(deadline));
            drop(self.read_once(g, Some(until)));
        }
    }

    /// Writes every queued transmit; `fds` ride on request `id`'s bytes.
    pub(crate) fn flush(
        &self,
        id: Option<u64>,
        fds: &[BorrowedFd<'_>],
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        self.flush_locked(id, fds, deadline)
    }

    fn flush_locked(
        &self,
        id: Option<u64>,
        fds: &[BorrowedFd<'_>],
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let mut wrote = false;
        loop {
            let mut g = self.lock();
            let Some(t) = g.session.poll_transmit() else {
                g.poll_first |= wrote;
                return Ok(());
            };
            drop(g);
            wrote = true;
            let with = if t.id.is_some() && t.id == id {
                fds
            } else {
                &[]
            };
            if let Err(e) = fd::send_all(self.fd.as_raw_fd(), &t.bytes, with, deadline) {
                let err = write_error(&e.error, "the request");
                let mut g = self.lock();
                while g.session.poll_transmit().is_some() {}
                g.session
                    .write_failed(id.or(t.id), e.written > 0, clone_err(&err));
                self.wake(&g);
                return Err(err);
            }
        }
    }

    /// Queues `req`, writes it, and waits for its completion.
    pub(crate) fn call<T>(&self, mut req: Request<'_, T>) -> Result<T, Error> {
        if !req.fds.is_empty() && !self.unix {
            return Err(Error::FdPassingUnsupported {
                command: req.name.to_string(),
                reason: "only Unix sockets carry them (this connection is TCP)",
            });
        }
        let timeout = match req.timeout {
            Some(t) => t,
            None => self
                .timeouts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&req.name),
        };
        let now = Instant::now();
        let deadline = timeout.map(|t| now + t);
        let id = {
            let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
            let id = self.lock().session.request(&mut req, now)?;
            if let Err(e) = self.flush_locked(Some(id), req.fds, deadline) {
                let e = match e {
                    Error::Timeout { .. } => Error::Timeout {
                        waiting_for: format!("{} (sending)", req.name),
                        waited: now.elapsed(),
                    },
                    Error::Disconnected { .. } => Error::Disconnected {
                        command: Some(req.name.to_string()),
                    },
                    Error::Io { source, .. } => Error::Io {
                        command: Some(req.name.to_string()),
                        source,
                    },
                    other => other,
                };
                self.lock().session.abandon(id);
                return Err(e);
            }
            id
        };
        let outcome = self.wait(deadline, |s| s.take(id), |s, now| s.expire(id, now));
        let done = match outcome {
            Ok(r) => r?,
            Err(_) => {
                // Closed or out of time without a completion (not expected: the
                // session completes every pending call when it closes).
                self.lock().session.abandon(id);
                return Err(Error::Disconnected {
                    command: Some(req.name.to_string()),
                });
            }
        };
        (req.decode)(&done.json, done.event)
    }

    /// Waits until `ready` yields a value, reading as the leader when nobody else
    /// reads. At `deadline`, `expire` runs once (it may make `ready` succeed, e.g.
    /// with a timeout error), then the wait ends.
    pub(crate) fn wait<R>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&mut Session) -> Option<R>,
        mut expire: impl FnMut(&mut Session, Instant),
    ) -> Result<R, WaitEnd> {
        let mut g = self.lock();
        loop {
            if let Some(r) = ready(&mut g.session) {
                return Ok(r);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                expire(&mut g.session, now);
                return ready(&mut g.session).ok_or(WaitEnd::Deadline);
            }
            if g.session.is_closed() {
                return Err(WaitEnd::Closed);
            }
            if g.reading {
                g.waiters += 1;
                g = match deadline {
                    Some(d) => {
                        self.cv
                            .wait_timeout(g, d.saturating_duration_since(now))
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                    None => self.cv.wait(g).unwrap_or_else(|p| p.into_inner()),
                };
                g.waiters -= 1;
                continue;
            }
            g = self.read_once(g, deadline);
        }
    }

    /// One read as the leader: a non-blocking `recv` into the session, or a `poll`
    /// (without the lock) until something arrives or `deadline` passes: the poll first
    /// when nothing can have arrived yet.
    fn read_once<'a>(
        &'a self,
        mut g: MutexGuard<'a, Shared>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, Shared> {
        if std::mem::replace(&mut g.poll_first, false) {
            return self.poll_readable(g, deadline);
        }
        match self.recv(&mut g) {
            Ok(_) => {
                self.wake(&g);
                g
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.poll_readable(g, deadline),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                g.session.eof();
                self.wake(&g);
                g
            }
            Err(e) => {
                g.session.io_error(e.kind(), &e.to_string());
                self.wake(&g);
                g
            }
        }
    }

    /// Waits until the socket is readable or `deadline` passes, without the lock (other
    /// threads see `reading` and wait for this one).
    fn poll_readable<'a>(
        &'a self,
        mut g: MutexGuard<'a, Shared>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, Shared> {
        let raw = self.fd.as_raw_fd();
        g.reading = true;
        drop(g);
        let polled = fd::wait(raw, false, deadline);
        let mut g = self.lock();
        g.reading = false;
        if let Err(e) = polled {
            g.session.io_error(e.kind(), &e.to_string());
        }
        self.wake(&g);
        g
    }

    /// Reads what the socket holds now, without blocking (unless another thread is
    /// reading, then nothing).
    pub(crate) fn read_nonblocking(&self) {
        let g = self.lock();
        if !g.reading && !g.session.is_closed() {
            let mut g = g;
            match self.recv(&mut g) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => g.session.eof(),
                Err(e) => g.session.io_error(e.kind(), &e.to_string()),
            }
            self.wake(&g);
        }
    }

    /// One non-blocking `recv` into the session (`WouldBlock` when the socket is empty).
    fn recv(&self, g: &mut Shared) -> io::Result<usize> {
        let raw = self.fd.as_raw_fd();
        // SAFETY: `fd::recv` initialises the bytes it counts (recv(2) writes them).
        unsafe {
            g.session.receive_with(|buf| match fd::recv(raw, buf)? {
                Some(n) => Ok(n),
                None => Err(io::ErrorKind::WouldBlock.into()),
            })
        }
    }

    /// Wakes the threads waiting for the state `g` guards, if there are any (they
    /// count themselves under the lock, so none is missed).
    fn wake(&self, g: &Shared) {
        if g.waiters > 0 {
            self.cv.notify_all();
        }
    }
}

fn write_error(e: &io::Error, command: &str) -> Error {
    if e.kind() == io::ErrorKind::TimedOut {
        Error::Timeout {
            waiting_for: format!("{command} (sending)"),
            waited: Duration::ZERO,
        }
    } else if matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    ) {
        Error::Disconnected { command: None }
    } else {
        Error::Io {
            command: None,
            source: io::Error::new(e.kind(), e.to_string()),
        }
    }
}

/// A copy of a write error for the session (errors are not `Clone`).
fn clone_err(e: &Error) -> Error {
    match e {
        Error::Timeout {
            waiting_for,
            waited,
        } => Error::Timeout {
            waiting_for: waiting_for.clone(),
            waited: *waited,
        },
        Error::Io { command, source } => Error::Io {
            command: command.clone(),
            source: io::Error::new(source.kind(), source.to_string()),
        },
        _ => Error::Disconnected { command: None },
    }
}
