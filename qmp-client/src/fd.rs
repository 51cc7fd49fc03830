//! Raw socket I/O with deadlines, and SCM_RIGHTS file-descriptor passing.
//!
//! Reads and writes use non-blocking `recv`/`send` plus `poll` with an absolute
//! deadline, so every call is bounded without changing the socket's own flags (the
//! stream may belong to the caller). File descriptors ride on the `sendmsg` that
//! carries the command itself, so they reach the command that consumes them.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

/// Waits until `fd` is readable (or writable when `write`) or `deadline` passes.
/// Returns false on timeout.
pub(crate) fn wait(fd: RawFd, write: bool, deadline: Option<Instant>) -> io::Result<bool> {
    loop {
        let timeout_ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok(false);
                }
                // Round up so a short remaining wait does not spin at 0 ms.
                let left = d - now;
                let ms = left.as_micros().div_ceil(1000);
                ms.min(libc::c_int::MAX as u128) as libc::c_int
            }
        };
        let mut pfd = libc::pollfd {
            fd,
            events: if write { libc::POLLOUT } else { libc::POLLIN },
            revents: 0,
        };
        // SAFETY: one valid pollfd on the stack.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r > 0 {
            return Ok(true);
        }
    }
}

/// One non-blocking `recv`. `Ok(None)` means nothing is available right now.
pub(crate) fn recv(fd: RawFd, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: `buf` is valid for writes of its length (recv(2) writes bytes into
        // it, initialising the count it returns; uninitialised space is fine).
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if r >= 0 {
            return Ok(Some(r as usize));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// How far a write got when it failed.
#[derive(Debug)]
pub(crate) struct WriteError {
    /// Bytes already sent (a partial request leaves the peer's parser mid-object).
    pub(crate) written: usize,
    /// `TimedOut` when the deadline passed.
    pub(crate) error: io::Error,
}

/// Sends all of `data`, attaching `fds` (SCM_RIGHTS) to the first `sendmsg`.
pub(crate) fn send_all(
    fd: RawFd,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
    deadline: Option<Instant>,
) -> Result<(), WriteError> {
    let mut written = 0;
    let mut fds_pending = !fds.is_empty();
    while written < data.len() {
        let r = if fds_pending {
            send_with_fds(fd, &data[written..], fds)
        } else {
            // SAFETY: the slice is valid for reads of its length.
            unsafe {
                libc::send(
                    fd,
                    data[written..].as_ptr().cast(),
                    data.len() - written,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            }
        };
        if r >= 0 {
            written += r as usize;
            fds_pending = false;
            continue;
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => match wait(fd, true, deadline) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(WriteError {
                        written,
                        error: io::Error::new(io::ErrorKind::TimedOut, "write timed out"),
                    })
                }
                Err(error) => return Err(WriteError { written, error }),
            },
            _ => return Err(WriteError { written, error: e }),
        }
    }
    Ok(())
}

/// One non-blocking send (with `fds` attached when not empty). `Ok(None)`: the
/// socket buffer is full right now.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn send_once(
    fd: RawFd,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<Option<usize>> {
    loop {
        let r = if fds.is_empty() {
            // SAFETY: the slice is valid for reads of its length.
            unsafe {
                libc::send(
                    fd,
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            }
        } else {
            send_with_fds(fd, data, fds)
        };
        if r >= 0 {
            return Ok(Some(r as usize));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(e),
        }
    }
}

fn send_with_fds(fd: RawFd, data: &[u8], fds: &[BorrowedFd<'_>]) -> isize {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let payload = std::mem::size_of_val(raw.as_slice());
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    // u64 storage keeps the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at `space` bytes, enough for one cmsghdr carrying
    // `payload` bytes; CMSG_FIRSTHDR/CMSG_DATA stay inside that buffer.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        std::ptr::copy_nonoverlapping(raw.as_ptr().cast::<u8>(), libc::CMSG_DATA(cmsg), payload);
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    }
}

/// Whether `fd` is a Unix-domain socket (fds can be passed over it).
pub(crate) fn is_unix_socket(fd: RawFd) -> bool {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid out-pointers of the right size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut domain as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0 && domain == libc::AF_UNIX
}

/// Connects a Unix stream socket without blocking past `deadline` (a listener with a
/// full backlog, e.g. a monitor busy with another client, would block `connect`).
pub(crate) fn connect_unix(path: &std::path::Path, deadline: Instant) -> io::Result<OwnedFd> {
    loop {
        if let Some(fd) = try_connect_unix(path)? {
            return Ok(fd);
        }
        if Instant::now() >= deadline {
            return Err(backlog_timeout());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Why [`connect_unix`] gave up.
pub(crate) fn backlog_timeout() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "connect timed out (listen backlog full: monitor busy with another client?)",
    )
}

/// One non-blocking attempt: `None` when the listener's backlog is full (Unix sockets
/// cannot be polled for room, so the caller retries).
pub(crate) fn try_connect_unix(path: &std::path::Path) -> io::Result<Option<OwnedFd>> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; zeroed is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long (Unix sockets allow 107 bytes) or contains NUL",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    loop {
        // SAFETY: `addr` is a valid sockaddr_un of at least `len` bytes.
        let r = unsafe {
            libc::connect(
                fd,
                (&addr as *const libc::sockaddr_un).cast(),
                len as libc::socklen_t,
            )
        };
        if r == 0 {
            return Ok(Some(owned));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => return Ok(None),
            _ => return Err(e),
        }
    }
}
