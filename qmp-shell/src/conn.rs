//! The connection to QEMU or the guest agent, over `qmp_types::client`: one type for
//! both peers, the busy-monitor notice, and requests in the shell's own form.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use qmp_types::client::{self, Endpoint, Error, Options, Qga, Qmp, RawEvent};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::typing::Request;

/// Where to connect, parsed from the command line.
pub fn endpoint(address: &str) -> Endpoint {
    // `HOST:PORT` with a numeric port is TCP unless such a file exists.
    let tcp = address.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
    }) && !std::path::Path::new(address).exists()
        && !address.contains('/');
    if tcp {
        Endpoint::Tcp(address.to_owned())
    } else {
        Endpoint::Unix(address.into())
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Talk to the guest agent instead of a QMP monitor.
    pub qga: bool,
    /// Skip the greeting and `qmp_capabilities` (`-N`).
    pub no_negotiate: bool,
    /// Default deadline per command (`None`: wait forever).
    pub timeout: Option<Duration>,
    /// Deadline for connecting.
    pub connect_timeout: Duration,
}

/// A connected peer.
#[derive(Debug)]
pub enum Peer {
    /// A QMP monitor (QEMU or qemu-storage-daemon).
    Qmp(Qmp),
    /// The guest agent.
    Qga(Qga),
}

/// Connects; when no greeting came within a second, `busy` is called once (the
/// monitor serves one client at a time, a second one waits silently).
pub fn connect(address: &str, o: &ConnectOptions, busy: impl FnOnce()) -> Result<Peer, Error> {
    let opts = Options::new()
        .connect_timeout(o.connect_timeout)
        .timeout(o.timeout)
        .negotiate(!o.no_negotiate);
    let ep = endpoint(address);
    let qga = o.qga;
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let r = if qga {
            Qga::connect(ep, &opts).map(Peer::Qga)
        } else {
            Qmp::connect(ep, &opts).map(Peer::Qmp)
        };
        let _ = tx.send(());
        r
    });
    if rx.recv_timeout(Duration::from_secs(1)).is_err() {
        busy();
    }
    match worker.join() {
        Ok(r) => r,
        Err(_) => Err(Error::Disconnected { command: None }),
    }
}

/// Per-command options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exec<'a> {
    /// `exec-oob`.
    pub oob: bool,
    /// Deadline override (`Some(None)`: wait forever).
    pub timeout: Option<Option<Duration>>,
    /// Descriptors to pass with the command.
    pub fds: &'a [BorrowedFd<'a>],
}

impl Peer {
    /// Executes `req`, returning the JSON text of `return`.
    pub fn execute(&mut self, req: &Request, exec: &Exec<'_>) -> Result<Box<RawValue>, Error> {
        let mut call = match &req.args {
            Some(a) => client::Request::raw(&req.name, a),
            None => client::Request::name(&req.name),
        };
        match exec.timeout {
            Some(Some(t)) => call = call.timeout(t),
            Some(None) => call = call.no_timeout(),
            None => {}
        }
        if exec.oob {
            call = call.oob();
        }
        if !exec.fds.is_empty() {
            call = call.fds(exec.fds);
        }
        match self {
            Peer::Qmp(q) => q.execute(call),
            Peer::Qga(q) => q.execute(call),
        }
    }

    /// The next queued or already-received event, without blocking (none for QGA).
    pub fn poll_event(&mut self) -> Result<Option<RawEvent>, Error> {
        match self {
            Peer::Qmp(q) => q.poll_event(),
            Peer::Qga(_) => Ok(None),
        }
    }

    /// Waits up to `timeout` for an event.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<RawEvent>, Error> {
        match self {
            Peer::Qmp(q) => q.next_event(timeout),
            Peer::Qga(_) => {
                std::thread::sleep(timeout.unwrap_or(Duration::from_secs(3600)));
                Ok(None)
            }
        }
    }

    /// `QEMU 10.0.2 (package)`, or the agent.
    pub fn banner(&self) -> String {
        match self {
            Peer::Qmp(q) => match q.greeting() {
                Some(g) if g.package.is_empty() => format!("QEMU {}", g.version),
                Some(g) => format!("QEMU {} ({})", g.version, g.package),
                None => "QMP (negotiation skipped)".into(),
            },
            Peer::Qga(_) => "guest agent (synchronised)".into(),
        }
    }

    /// The `query-qmp-schema` reply, for QMP monitors that have been negotiated.
    pub fn introspect(&mut self) -> Option<Result<Value, Error>> {
        match self {
            Peer::Qmp(q) if q.greeting().is_some() => Some(
                q.execute(client::Request::name("query-qmp-schema"))
                    .and_then(|r| {
                        serde_json::from_str(r.get()).map_err(|e| {
                            qmp_types::client::Error::Decode {
                                command: "query-qmp-schema".into(),
                                source: e,
                                json: String::new(),
                            }
                        })
                    }),
            ),
            _ => None,
        }
    }

    /// The greeting's JSON text (QMP after negotiation), identifying the QEMU build.
    pub fn greeting_json(&self) -> Option<&str> {
        match self {
            Peer::Qmp(q) => q.greeting().map(|g| g.json.as_str()),
            Peer::Qga(_) => None,
        }
    }

    /// Whether this is the guest agent.
    pub fn is_qga(&self) -> bool {
        matches!(self, Peer::Qga(_))
    }
}

/// Splits a raw JSON request into a [`Request`] and whether it asked for `exec-oob`.
/// The transport assigns its own id (the reply is matched by it).
pub fn raw_request(v: &Value) -> Result<(Request, bool), String> {
    let obj = v.as_object().ok_or("a JSON request must be an object")?;
    let (name, oob) = match (obj.get("execute"), obj.get("exec-oob")) {
        (Some(Value::String(n)), None) => (n.clone(), false),
        (None, Some(Value::String(n))) => (n.clone(), true),
        _ => return Err(
            "a JSON request needs exactly one of \"execute\" or \"exec-oob\" naming the command"
                .into(),
        ),
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "execute" | "exec-oob" | "arguments" | "id"))
    {
        return Err(format!("unexpected member \"{k}\" in the request"));
    }
    let args = match obj.get("arguments") {
        None => None,
        Some(a @ Value::Object(_)) => Some(a.clone()),
        Some(_) => return Err("\"arguments\" must be an object".into()),
    };
    Ok((
        Request {
            name,
            args,
            warnings: Vec::new(),
        },
        oob,
    ))
}
