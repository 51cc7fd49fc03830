//! The mock server's thread: accepting, reading requests, following the script, and
//! the handle a test keeps (`MockServer`).

use super::*;
pub(super) use crate::launcher::TempDir;

/// A running mock server (a thread). Call [`MockServer::finish`] at the end of the
/// test; dropping it unfinished also checks, and panics on failures.
#[derive(Debug)]
pub struct MockServer {
    path: Option<PathBuf>,
    dir: Option<TempDir>,
    finishing: Arc<AtomicBool>,
    report: Option<mpsc::Receiver<Vec<Failure>>>,
    /// How long `finish` waits for the thread: the script's delays plus its timeout.
    grace: Duration,
}

pub(super) enum Source {
    Listener(UnixListener),
    Stream(Option<UnixStream>),
}

impl MockServer {
    pub(super) fn start(
        script: Script,
        source: Source,
        socket: Option<(TempDir, PathBuf)>,
    ) -> io::Result<MockServer> {
        let finishing = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let grace = script.timeout + total_delay(&script.steps) + Duration::from_secs(1);
        let flag = Arc::clone(&finishing);
        thread::Builder::new()
            .name("qmp-mock".to_owned())
            .spawn(move || {
                let mut server = Server {
                    script,
                    source,
                    finishing: flag,
                    failures: Vec::new(),
                };
                server.run();
                let _ = tx.send(server.failures);
            })?;
        let (dir, path) = match socket {
            Some((d, p)) => (Some(d), Some(p)),
            None => (None, None),
        };
        Ok(MockServer {
            path,
            dir,
            finishing,
            report: Some(rx),
            grace,
        })
    }

    /// The Unix socket's path ([`Script::spawn`]; `None` for a socket pair).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Connects a client with default options (`Qmp::connect_unix` on
    /// [`MockServer::path`]).
    pub fn connect(&self) -> Result<Qmp, Error> {
        match &self.path {
            Some(p) => Qmp::connect_unix(p),
            None => Err(Error::Connect {
                endpoint: "mock server".to_owned(),
                source: io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a socket-pair mock server has no path: use the stream spawn_pair returned",
                ),
            }),
        }
    }

    /// Stops waiting for requests, lets the server send what the script has left
    /// before its next expected request, and reports: `Ok` when every step ran and no
    /// request departed from the script. The connection is closed.
    pub fn finish(mut self) -> Result<(), Failures> {
        self.collect()
    }

    fn collect(&mut self) -> Result<(), Failures> {
        let Some(rx) = self.report.take() else {
            return Ok(());
        };
        self.finishing.store(true, Ordering::SeqCst);
        let failures = match rx.recv_timeout(self.grace) {
            Ok(f) => f,
            Err(mpsc::RecvTimeoutError::Timeout) => vec![Failure::Stuck {
                reason: format!("still running {:?} after finish", self.grace),
            }],
            Err(mpsc::RecvTimeoutError::Disconnected) => vec![Failure::Stuck {
                reason: "the server thread panicked".to_owned(),
            }],
        };
        self.dir = None;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Failures(failures))
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Err(failures) = self.collect() {
            if !thread::panicking() {
                panic!("{failures}");
            }
        }
    }
}

fn total_delay(steps: &[Step]) -> Duration {
    steps
        .iter()
        .map(|s| match s {
            Step::Delay(d) => *d,
            Step::Request(x) => total_delay(&x.before_reply),
            _ => Duration::ZERO,
        })
        .sum()
}

fn describe(step: &Step) -> String {
    match step {
        Step::Request(x) => format!("expect {}", x.name),
        Step::Event { name, .. } => format!("event {name}"),
        Step::Bytes(b) => format!("send {} raw bytes", b.len()),
        Step::Delay(d) => format!("delay {d:?}"),
        Step::Close => "close".to_owned(),
    }
}

/// A request as it came.
#[derive(Debug)]
struct Request {
    name: String,
    arguments: Value,
    id: Option<Value>,
}

/// Why no request was read.
enum NoRequest {
    Closed,
    Finishing,
    Timeout,
    Io(io::Error),
}

/// One client connection.
struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    oob: bool,
}

impl Conn {
    fn send(&mut self, text: &[u8]) -> io::Result<()> {
        let mut msg = Vec::with_capacity(text.len() + 2);
        msg.extend_from_slice(text);
        msg.extend_from_slice(b"\r\n");
        self.stream.write_all(&msg)
    }

    /// Reads the next complete JSON object, waiting until `deadline`.
    fn read_object(
        &mut self,
        deadline: Instant,
        finishing: &AtomicBool,
    ) -> Result<Result<Value, String>, NoRequest> {
        loop {
            if let Some((end, skip)) = split_object(&self.buf) {
                let text: Vec<u8> = self.buf.drain(..end).collect();
                return Ok(serde_json::from_slice(&text[skip..]).map_err(|e| {
                    format!(
                        "not JSON ({e}): {}",
                        String::from_utf8_lossy(&text[skip..text.len().min(200)])
                    )
                }));
            }
            if finishing.load(Ordering::SeqCst) {
                return Err(NoRequest::Finishing);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NoRequest::Timeout);
            }
            self.stream
                .set_read_timeout(Some(left.min(POLL)))
                .map_err(NoRequest::Io)?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(NoRequest::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(NoRequest::Closed)
                }
                Err(e) => return Err(NoRequest::Io(e)),
            }
        }
    }

    /// Reads the next request; malformed ones are answered as QEMU answers them and
    /// reported, then the next is read.
    fn read_request(
        &mut self,
        deadline: Instant,
        finishing: &AtomicBool,
        failures: &mut Vec<Failure>,
    ) -> Result<Request, NoRequest> {
        loop {
            let value = match self.read_object(deadline, finishing)? {
                Ok(v) => v,
                Err(reason) => {
                    failures.push(Failure::Protocol { reason });
                    let _ = self.reply_error(None, "GenericError", "JSON parse error");
                    continue;
                }
            };
            match parse_request(value, self.oob) {
                Ok(r) => return Ok(r),
                Err((id, reason)) => {
                    let _ = self.reply_error(id.as_ref(), "GenericError", &reason);
                    failures.push(Failure::Protocol { reason });
                }
            }
        }
    }

    fn reply(&mut self, id: Option<&Value>, ret: &str) -> io::Result<()> {
        let mut text = format!("{{\"return\": {ret}");
        if let Some(id) = id {
            text.push_str(&format!(", \"id\": {id}"));
        }
        text.push('}');
        self.send(text.as_bytes())
    }

    fn reply_error(&mut self, id: Option<&Value>, class: &str, desc: &str) -> io::Result<()> {
        let mut reply = serde_json::json!({"error": {"class": class, "desc": desc}});
        if let Some(id) = id {
            reply["id"] = id.clone();
        }
        self.send(reply.to_string().as_bytes())
    }
}

/// Finds the end of the first complete JSON object in `buf`, skipping whitespace
/// before it: `(end, start)`. A stray byte before an object makes a one-byte "object"
/// that fails to parse (and is reported).
fn split_object(buf: &[u8]) -> Option<(usize, usize)> {
    let start = buf.iter().position(|b| !b.is_ascii_whitespace())?;
    if buf[start] != b'{' {
        return Some((start + 1, start));
    }
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for (i, &c) in buf.iter().enumerate().skip(start) {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some((i + 1, start));
                }
            }
            _ => {}
        }
    }
    None
}

/// The request in `value`, or its `id` and QEMU's text for what is wrong with it.
fn parse_request(value: Value, oob: bool) -> Result<Request, (Option<Value>, String)> {
    let Value::Object(mut obj) = value else {
        return Err((None, "QMP input must be a JSON object".to_owned()));
    };
    let id = obj.remove("id");
    let name = match (obj.remove("execute"), obj.remove("exec-oob")) {
        (Some(Value::String(n)), None) => n,
        (None, Some(Value::String(n))) if oob => n,
        (None, Some(Value::String(_))) => {
            return Err((id, "QMP input member 'exec-oob' is unexpected".to_owned()))
        }
        (Some(_), Some(_)) => {
            return Err((
                id,
                "QMP input member 'exec-oob' clashes with 'execute'".to_owned(),
            ))
        }
        (None, None) => return Err((id, "QMP input lacks member 'execute'".to_owned())),
        _ => return Err((id, "QMP input member 'execute' must be a string".to_owned())),
    };
    let arguments = match obj.remove("arguments") {
        None => Value::Object(Default::default()),
        Some(a @ Value::Object(_)) => a,
        Some(_) => {
            return Err((
                id,
                "QMP input member 'arguments' must be an object".to_owned(),
            ))
        }
    };
    if let Some(k) = obj.keys().next() {
        return Err((id, format!("QMP input member '{k}' is unexpected")));
    }
    Ok(Request {
        name,
        arguments,
        id,
    })
}

/// The differences between two JSON values, by member path.
fn differences(path: &str, expected: &Value, got: &Value, out: &mut Vec<String>) {
    match (expected, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => differences(&format!("{path}.{k}"), v, w, out),
                    None => out.push(format!("{path}.{k}: missing (expected {v})")),
                }
            }
            for (k, w) in b {
                if !a.contains_key(k) {
                    out.push(format!("{path}.{k}: not expected (got {w})"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), v, w, out);
            }
        }
        _ if expected != got => out.push(format!("{path}: expected {expected}, got {got}")),
        _ => {}
    }
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        microseconds: i64::from(d.subsec_micros()),
    }
}

/// The server thread's state.
struct Server {
    script: Script,
    source: Source,
    finishing: Arc<AtomicBool>,
    failures: Vec<Failure>,
}

/// How a step ended the script early.
struct Stop(String);

impl Server {
    fn run(&mut self) {
        let steps = std::mem::take(&mut self.script.steps);
        let mut conn: Option<Conn> = None;
        let mut stopped = None;
        for (i, step) in steps.iter().enumerate() {
            let n = i + 1;
            if let Some(reason) = &stopped {
                self.failures.push(Failure::Unmet {
                    step: n,
                    what: describe(step),
                    reason: String::clone(reason),
                });
                continue;
            }
            if let Step::Delay(d) = step {
                thread::sleep(*d);
                continue;
            }
            if conn.is_none() {
                match self.connect(n) {
                    Ok(c) => conn = Some(c),
                    Err(Stop(reason)) => {
                        self.failures.push(Failure::Unmet {
                            step: n,
                            what: describe(step),
                            reason: reason.clone(),
                        });
                        stopped = Some(reason);
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            match self.step(n, step, c) {
                Ok(true) => {}
                Ok(false) => conn = None,
                Err(Stop(reason)) => stopped = Some(reason),
            }
        }
        // Past the script: every request is unexpected, until the client leaves or
        // the test finishes.
        if let Some(c) = conn.as_mut() {
            loop {
                let far = Instant::now() + Duration::from_secs(24 * 3600);
                match c.read_request(far, &self.finishing, &mut self.failures) {
                    Ok(r) => {
                        let desc = format!(
                            "mock QMP server: unexpected {} (the script has ended)",
                            r.name
                        );
                        let _ = c.reply_error(r.id.as_ref(), "GenericError", &desc);
                        self.failures.push(Failure::Unexpected {
                            command: r.name,
                            arguments: r.arguments,
                        });
                    }
                    Err(_) => break,
                }
            }
        }
    }

    /// Accepts a connection, greets and negotiates.
    fn connect(&mut self, step: usize) -> Result<Conn, Stop> {
        let deadline = Instant::now() + self.script.timeout;
        let stream = match &mut self.source {
            Source::Stream(s) => match s.take() {
                Some(s) => s,
                None => {
                    return Err(Stop(
                        "the connection was closed, and a socket-pair server accepts no other"
                            .to_owned(),
                    ))
                }
            },
            Source::Listener(l) => loop {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false)
                            .map_err(|e| Stop(format!("cannot use the connection: {e}")))?;
                        break s;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if self.finishing.load(Ordering::SeqCst) {
                            return Err(Stop("no client connected".to_owned()));
                        }
                        if Instant::now() >= deadline {
                            self.failures.push(Failure::Timeout {
                                step,
                                what: "client connection".to_owned(),
                                waited: self.script.timeout,
                            });
                            return Err(Stop("no client connected".to_owned()));
                        }
                        thread::sleep(POLL);
                    }
                    Err(e) => return Err(Stop(format!("accept failed: {e}"))),
                }
            },
        };
        let _ = stream.set_write_timeout(Some(self.script.timeout));
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
            oob: false,
        };
        let (major, minor, micro) = self.script.version;
        let greeting = serde_json::json!({"QMP": {
            "version": {"qemu": {"micro": micro, "minor": minor, "major": major},
                        "package": self.script.package},
            "capabilities": self.script.capabilities,
        }});
        conn.send(greeting.to_string().as_bytes())
            .map_err(|e| Stop(format!("cannot send the greeting: {e}")))?;
        if self.script.negotiate {
            self.negotiate(&mut conn, deadline)?;
        }
        Ok(conn)
    }

    fn negotiate(&mut self, conn: &mut Conn, deadline: Instant) -> Result<(), Stop> {
        loop {
            let r = match conn.read_request(deadline, &self.finishing, &mut self.failures) {
                Ok(r) => r,
                Err(e) => {
                    let reason = self.no_request(0, "qmp_capabilities", e);
                    return Err(Stop(reason));
                }
            };
            if r.name != "qmp_capabilities" {
                self.failures.push(Failure::Protocol {
                    reason: format!("{} before qmp_capabilities", r.name),
                });
                let _ = conn.reply_error(
                    r.id.as_ref(),
                    "CommandNotFound",
                    "Expecting capabilities negotiation with 'qmp_capabilities'",
                );
                continue;
            }
            let mut enabled = Vec::new();
            match r.arguments.get("enable") {
                None => {}
                Some(Value::Array(caps)) => {
                    for c in caps {
                        match c.as_str() {
                            Some(c) if self.script.capabilities.iter().any(|o| o == c) => {
                                enabled.push(c.to_owned());
                            }
                            _ => {
                                self.failures.push(Failure::Protocol {
                                    reason: format!(
                                        "qmp_capabilities enables {c}, which the greeting did not offer"
                                    ),
                                });
                                let _ = conn.reply_error(
                                    r.id.as_ref(),
                                    "GenericError",
                                    &format!("Capability '{c}' not available"),
                                );
                                return Err(Stop("negotiation failed".to_owned()));
                            }
                        }
                    }
                }
                Some(other) => {
                    self.failures.push(Failure::Protocol {
                        reason: format!("qmp_capabilities with enable = {other}"),
                    });
                }
            }
            conn.oob = enabled.iter().any(|c| c == "oob");
            conn.reply(r.id.as_ref(), "{}")
                .map_err(|e| Stop(format!("cannot reply to qmp_capabilities: {e}")))?;
            return Ok(());
        }
    }

    /// Records why no request came and returns the reason the script stops.
    fn no_request(&mut self, step: usize, what: &str, why: NoRequest) -> String {
        match why {
            NoRequest::Closed => "the client closed the connection".to_owned(),
            NoRequest::Finishing => "finish() was called first".to_owned(),
            NoRequest::Timeout => {
                self.failures.push(Failure::Timeout {
                    step,
                    what: format!("{what} request"),
                    waited: self.script.timeout,
                });
                format!("no {what} request within {:?}", self.script.timeout)
            }
            NoRequest::Io(e) => format!("I/O error: {e}"),
        }
    }

    /// Runs one step on a connection: `Ok(false)` when it closed the connection.
    fn step(&mut self, n: usize, step: &Step, conn: &mut Conn) -> Result<bool, Stop> {
        let io_stop = |e: io::Error| Stop(format!("cannot send to the client: {e}"));
        match step {
            Step::Delay(d) => thread::sleep(*d),
            Step::Close => {
                let _ = conn.stream.shutdown(std::net::Shutdown::Both);
                return Ok(false);
            }
            Step::Bytes(b) => conn.stream.write_all(b).map_err(io_stop)?,
            Step::Event {
                name,
                data,
                timestamp,
            } => send_event(conn, name, data.as_deref(), *timestamp).map_err(io_stop)?,
            Step::Request(x) => {
                let deadline = Instant::now() + self.script.timeout;
                let r = match conn.read_request(deadline, &self.finishing, &mut self.failures) {
                    Ok(r) => r,
                    Err(e) => {
                        let timed_out = matches!(e, NoRequest::Timeout);
                        let reason = self.no_request(n, &x.name, e);
                        if !timed_out {
                            self.failures.push(Failure::Unmet {
                                step: n,
                                what: describe(step),
                                reason: reason.clone(),
                            });
                        }
                        return Err(Stop(reason));
                    }
                };
                if r.name != x.name {
                    let desc = format!(
                        "mock QMP server: step {n}: expected {}, got {}",
                        x.name, r.name
                    );
                    let _ = conn.reply_error(r.id.as_ref(), "GenericError", &desc);
                    self.failures.push(Failure::WrongCommand {
                        step: n,
                        expected: x.name.clone(),
                        got: r.name,
                        arguments: r.arguments,
                    });
                    return Err(Stop(format!("step {n} failed")));
                }
                if let Some(expected) = &x.arguments {
                    let mut diff = Vec::new();
                    differences("arguments", expected, &r.arguments, &mut diff);
                    if !diff.is_empty() {
                        let desc = format!(
                            "mock QMP server: step {n}: {} with other arguments: {}",
                            x.name,
                            diff.join("; ")
                        );
                        let _ = conn.reply_error(r.id.as_ref(), "GenericError", &desc);
                        self.failures.push(Failure::WrongArguments {
                            step: n,
                            command: x.name.clone(),
                            expected: expected.clone(),
                            got: r.arguments,
                            differences: diff,
                        });
                        return Err(Stop(format!("step {n} failed")));
                    }
                }
                for before in &x.before_reply {
                    self.step(n, before, conn)?;
                }
                match &x.reply {
                    Reply::Return(ret) => conn.reply(r.id.as_ref(), ret).map_err(io_stop)?,
                    Reply::Error { class, desc } => conn
                        .reply_error(r.id.as_ref(), class, desc)
                        .map_err(io_stop)?,
                    Reply::Nothing => {}
                }
            }
        }
        Ok(true)
    }
}

fn send_event(
    conn: &mut Conn,
    name: &str,
    data: Option<&str>,
    timestamp: Option<Timestamp>,
) -> io::Result<()> {
    let ts = timestamp.unwrap_or_else(now);
    let name = Value::String(name.to_owned());
    let mut text = format!(
        "{{\"timestamp\": {{\"seconds\": {}, \"microseconds\": {}}}, \"event\": {name}",
        ts.seconds, ts.microseconds
    );
    if let Some(d) = data {
        text.push_str(", \"data\": ");
        text.push_str(d);
    }
    text.push('}');
    conn.send(text.as_bytes())
}

#[cfg(test)]
mod tests;
