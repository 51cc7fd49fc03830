//! `fleet-server DIR EVENTS`: the fake QMP server of `cargo xtask bench fleet`, built in a
//! scratch crate under the target folder (this file is its `src/main.rs`; it is not a
//! module of xtask).
//!
//! - `DIR/rt.sock`: one thread, one epoll loop, any number of connections. Each gets
//!   QEMU 10.0.2's greeting; every JSON object it sends is answered at once, with the
//!   request's `id` echoed as it came: `{"return": {}, ...}` for `qmp_capabilities`,
//!   a canned `query-status` reply for anything else.
//! - `DIR/ev.sock`: a thread per connection; the same answers, and after the first
//!   command that is not `qmp_capabilities`, EVENTS QEMU-shaped events in one write
//!   (`STOP`, `RESUME`, `JOB_STATUS_CHANGE` with data, in turn).
//!
//! The open-file limit is raised to the hard limit first. Prints `ready` once both
//! sockets listen, and exits when its standard input closes.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"fleet-server\"}, \"capabilities\": [\"oob\"]}}\r\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).expect("usage: fleet-server DIR EVENTS"));
    let events: usize = args.get(2).map_or(0, |n| n.parse().expect("EVENTS"));
    raise_nofile();
    let rt = dir.join("rt.sock");
    let ev = dir.join("ev.sock");
    let _ = std::fs::remove_file(&rt);
    let _ = std::fs::remove_file(&ev);
    let rt = UnixListener::bind(&rt).expect("bind rt.sock");
    let ev = UnixListener::bind(&ev).expect("bind ev.sock");
    // std listens with a backlog of 128; a fleet connects faster than that.
    // SAFETY: listen(2) on a socket we own.
    unsafe { libc::listen(rt.as_raw_fd(), 4096) };
    let payload = event_payload(events);
    std::thread::spawn(move || {
        for s in ev.incoming() {
            let s = s.expect("accept ev.sock");
            let payload = payload.clone();
            std::thread::spawn(move || serve_events(s, &payload));
        }
    });
    std::thread::spawn(|| {
        // Exit with the benchmark: our standard input is its pipe.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    println!("ready");
    std::io::stdout().flush().expect("stdout");
    epoll_loop(rt);
}

/// setrlimit(RLIMIT_NOFILE) to the hard limit.
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit with a pointer to a live local of the right type.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The QEMU-shaped events written on `ev.sock`.
fn event_payload(n: usize) -> std::sync::Arc<Vec<u8>> {
    let mut out = Vec::with_capacity(n * 100);
    for i in 0..n {
        let (seconds, micros) = (1_795_316_533 + i / 1000, (i * 7919) % 1_000_000);
        let ts =
            format!("{{\"timestamp\": {{\"seconds\": {seconds}, \"microseconds\": {micros}}}, ");
        out.extend_from_slice(ts.as_bytes());
        out.extend_from_slice(match i % 3 {
            0 => b"\"event\": \"STOP\"}\r\n".as_slice(),
            1 => b"\"event\": \"RESUME\"}\r\n".as_slice(),
            _ => b"\"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"running\", \"id\": \"job0\"}}\r\n".as_slice(),
        });
    }
    std::sync::Arc::new(out)
}

/// Splits whole JSON objects off the front of `buf`, calling `each` with every one, and
/// returns how many bytes were consumed (the rest is an incomplete object).
fn frame(buf: &[u8], mut each: impl FnMut(&[u8])) -> usize {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    let (mut start, mut done) = (0usize, 0usize);
    for (i, &c) in buf.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    each(&buf[start..=i]);
                    done = i + 1;
                }
            }
            // Whitespace and stray bytes (a resync byte) between objects.
            _ if depth == 0 => done = i + 1,
            _ => {}
        }
    }
    done
}

/// Appends the answer to one request to `out`.
fn answer(req: &[u8], out: &mut Vec<u8>) {
    let caps = find(req, b"qmp_capabilities").is_some();
    out.extend_from_slice(if caps {
        b"{\"return\": {}".as_slice()
    } else {
        b"{\"return\": {\"status\": \"running\", \"running\": true}".as_slice()
    });
    if let Some(id) = id_of(req) {
        out.extend_from_slice(b", \"id\": ");
        out.extend_from_slice(id);
    }
    out.extend_from_slice(b"}\r\n");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The JSON text of the request's `id` (a number or a string), as it came.
fn id_of(req: &[u8]) -> Option<&[u8]> {
    let at = find(req, b"\"id\"")? + 4;
    let mut i = at;
    while i < req.len() && matches!(req[i], b' ' | b':' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    let start = i;
    if req.get(i) == Some(&b'"') {
        i += 1;
        while i < req.len() && req[i] != b'"' {
            i += if req[i] == b'\\' { 2 } else { 1 };
        }
        return req.get(start..=i);
    }
    while i < req.len() && !matches!(req[i], b',' | b'}' | b' ' | b'\r' | b'\n') {
        i += 1;
    }
    req.get(start..i)
}

fn serve_events(mut s: UnixStream, payload: &[u8]) {
    if s.write_all(GREETING).is_err() {
        return;
    }
    let (mut buf, mut out, mut streamed) = (Vec::new(), Vec::new(), false);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut trigger = false;
        let used = frame(&buf, |req| {
            answer(req, &mut out);
            trigger |= find(req, b"qmp_capabilities").is_none();
        });
        buf.drain(..used);
        if trigger && !streamed {
            out.extend_from_slice(payload);
            streamed = true;
        }
        if s.write_all(&out).is_err() {
            return;
        }
        out.clear();
    }
}

/// One connection of `rt.sock`: its socket, the start of an incomplete request, and what
/// the socket would not take yet.
struct Conn {
    fd: RawFd,
    pending: Vec<u8>,
    unsent: Vec<u8>,
}

fn epoll_loop(listener: UnixListener) {
    listener.set_nonblocking(true).expect("nonblocking");
    let lfd = listener.into_raw_fd();
    // SAFETY: plain epoll and socket calls on descriptors this function owns; every
    // pointer passed is to a live local or a buffer of the stated length.
    unsafe {
        let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        assert!(ep >= 0, "epoll_create1");
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: u64::MAX,
        };
        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, lfd, &mut ev);
        let mut conns: Vec<Option<Conn>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        let mut chunk = vec![0u8; 65536];
        let mut out = Vec::with_capacity(65536);
        loop {
            let n = libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1);
            if n < 0 {
                continue; // EINTR
            }
            for e in &events[..n as usize] {
                let (token, flags) = (e.u64, e.events);
                if token == u64::MAX {
                    loop {
                        let fd = libc::accept4(
                            lfd,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        );
                        if fd < 0 {
                            break;
                        }
                        // An empty socket buffer takes the greeting whole.
                        libc::write(fd, GREETING.as_ptr().cast(), GREETING.len());
                        let slot = free.pop().unwrap_or_else(|| {
                            conns.push(None);
                            conns.len() - 1
                        });
                        conns[slot] = Some(Conn {
                            fd,
                            pending: Vec::new(),
                            unsent: Vec::new(),
                        });
                        let mut ev = libc::epoll_event {
                            events: libc::EPOLLIN as u32,
                            u64: slot as u64,
                        };
                        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
                    }
                    continue;
                }
                let slot = token as usize;
                let Some(conn) = conns[slot].as_mut() else {
                    continue;
                };
                let mut closed = flags & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0
                    && flags & libc::EPOLLIN as u32 == 0;
                if flags & libc::EPOLLIN as u32 != 0 {
                    let got = libc::read(conn.fd, chunk.as_mut_ptr().cast(), chunk.len());
                    if got == 0 || (got < 0 && *libc::__errno_location() != libc::EAGAIN) {
                        closed = true;
                    } else if got > 0 {
                        let data = &chunk[..got as usize];
                        if conn.pending.is_empty() {
                            let used = frame(data, |req| answer(req, &mut out));
                            conn.pending.extend_from_slice(&data[used..]);
                        } else {
                            conn.pending.extend_from_slice(data);
                            let used = frame(&conn.pending, |req| answer(req, &mut out));
                            conn.pending.drain(..used);
                        }
                        if conn.unsent.is_empty() && !out.is_empty() {
                            let w = libc::write(conn.fd, out.as_ptr().cast(), out.len());
                            let w = if w < 0 { 0 } else { w as usize };
                            if w < out.len() {
                                conn.unsent.extend_from_slice(&out[w..]);
                                let mut ev = libc::epoll_event {
                                    events: (libc::EPOLLIN | libc::EPOLLOUT) as u32,
                                    u64: slot as u64,
                                };
                                libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, conn.fd, &mut ev);
                            }
                        } else {
                            conn.unsent.extend_from_slice(&out);
                        }
                        out.clear();
                    }
                }
                if !closed && flags & libc::EPOLLOUT as u32 != 0 && !conn.unsent.is_empty() {
                    let w = libc::write(conn.fd, conn.unsent.as_ptr().cast(), conn.unsent.len());
                    if w > 0 {
                        conn.unsent.drain(..w as usize);
                    }
                    if conn.unsent.is_empty() {
                        let mut ev = libc::epoll_event {
                            events: libc::EPOLLIN as u32,
                            u64: slot as u64,
                        };
                        libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, conn.fd, &mut ev);
                    }
                }
                if closed {
                    drop(UnixStream::from_raw_fd(conn.fd)); // closes it, leaving epoll too
                    conns[slot] = None;
                    free.push(slot);
                }
            }
        }
    }
}
