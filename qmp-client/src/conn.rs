//! What every connection shares: where to connect ([`Endpoint`]), its counters
//! ([`Stats`]), the wire-trace target and small encoding helpers.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::error::{Error, ErrorClass, QmpError};
use super::fd;

/// The `log` target of wire tracing (every message in and out at `trace` level).
pub const WIRE_TARGET: &str = "qmp_client::wire";

/// Where to connect.
#[derive(Debug)]
pub enum Endpoint {
    /// A Unix socket path (`-qmp unix:PATH,server=on,wait=off`).
    Unix(PathBuf),
    /// A TCP address such as `127.0.0.1:4444` (no fd passing over TCP).
    Tcp(String),
    /// An already-connected socket (socketpair, inherited fd, ...).
    Fd(OwnedFd),
}

impl Endpoint {
    pub(crate) fn describe(&self) -> String {
        match self {
            Endpoint::Unix(p) => format!("unix:{}", p.display()),
            Endpoint::Tcp(a) => format!("tcp:{a}"),
            Endpoint::Fd(f) => format!("fd {}", f.as_raw_fd()),
        }
    }

    /// Opens the socket, bounded by `deadline` for TCP.
    pub(crate) fn open(self, deadline: Instant) -> Result<(OwnedFd, bool), Error> {
        let endpoint = self.describe();
        let connect_err = |source| Error::Connect {
            endpoint: endpoint.clone(),
            source,
        };
        match self {
            Endpoint::Unix(path) => {
                let fd = fd::connect_unix(&path, deadline).map_err(connect_err)?;
                Ok((fd, true))
            }
            Endpoint::Tcp(addr) => {
                use std::net::ToSocketAddrs;
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
                for a in addr.to_socket_addrs().map_err(connect_err)? {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                        break;
                    }
                    match TcpStream::connect_timeout(&a, left) {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            return Ok((s.into(), false));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(connect_err(last))
            }
            Endpoint::Fd(f) => {
                let unix = fd::is_unix_socket(f.as_raw_fd());
                Ok((f, unix))
            }
        }
    }
}

/// Waits until `deadline` for a peer (QEMU with `server=off`) to connect to
/// `listener`, then accepts it.
pub(crate) fn accept_unix(listener: &UnixListener, deadline: Instant) -> Result<OwnedFd, Error> {
    wait_accept(listener.as_raw_fd(), deadline)?;
    let (s, _) = listener.accept().map_err(|source| Error::Connect {
        endpoint: "accepted unix connection".into(),
        source,
    })?;
    Ok(s.into())
}

/// [`accept_unix`] for a TCP listener.
pub(crate) fn accept_tcp(listener: &TcpListener, deadline: Instant) -> Result<OwnedFd, Error> {
    wait_accept(listener.as_raw_fd(), deadline)?;
    let (s, _) = listener.accept().map_err(|source| Error::Connect {
        endpoint: "accepted tcp connection".into(),
        source,
    })?;
    let _ = s.set_nodelay(true);
    Ok(s.into())
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

/// Where [`Qmp::reconnect`](crate::Qmp::reconnect) (and the tokio client's) connects
/// again: a copy of the endpoint, or an error for an already-connected fd.
pub(crate) fn reopen(endpoint: Option<&Endpoint>) -> Result<Endpoint, Error> {
    endpoint
        .and_then(Endpoint::reopenable)
        .ok_or_else(|| Error::Connect {
            endpoint: "an inherited fd".into(),
            source: io::Error::new(
                io::ErrorKind::Unsupported,
                "a connection made from an fd cannot be reopened",
            ),
        })
}

impl Endpoint {
    /// A copy to connect to again (`None` for an already-connected fd).
    pub(crate) fn reopenable(&self) -> Option<Endpoint> {
        match self {
            Endpoint::Unix(p) => Some(Endpoint::Unix(p.clone())),
            Endpoint::Tcp(a) => Some(Endpoint::Tcp(a.clone())),
            Endpoint::Fd(_) => None,
        }
    }
}

impl From<UnixStream> for Endpoint {
    fn from(s: UnixStream) -> Endpoint {
        Endpoint::Fd(s.into())
    }
}

impl From<TcpStream> for Endpoint {
    fn from(s: TcpStream) -> Endpoint {
        let _ = s.set_nodelay(true);
        Endpoint::Fd(s.into())
    }
}

/// Counters kept by a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests written.
    pub requests: u64,
    /// Messages (objects) received.
    pub messages: u64,
    /// Events received.
    pub events: u64,
    /// Events dropped because the queue was full.
    pub dropped_events: u64,
    /// Replies discarded because their request had timed out (or carried no id).
    pub discarded_replies: u64,
    /// Largest message received, in bytes.
    pub max_message: usize,
}

/// Builds the typed error of a reply.
pub(crate) fn qmp_error(command: &str, class: &str, desc: &str) -> Error {
    Error::Qmp(QmpError {
        command: command.to_owned(),
        class: ErrorClass::from_wire(class),
        desc: desc.to_owned(),
    })
}

pub(crate) fn format_u64(mut v: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &out[i..]
}

pub(crate) fn escape_lossy(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if c.is_ascii_graphic() {
                (c as char).to_string()
            } else {
                format!("<{c:#04x}>")
            }
        })
        .collect()
}
