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

/// The files of QMP over TLS (`--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-name`).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// The CA that signed the server's certificate.
    pub ca: Option<std::path::PathBuf>,
    /// Our certificate.
    pub cert: Option<std::path::PathBuf>,
    /// Its key.
    pub key: Option<std::path::PathBuf>,
    /// The name or IP the server's certificate must carry (default: the host).
    pub name: Option<String>,
}

impl TlsFiles {
    fn wanted(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
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
    /// Through libvirt: (URI, domain name or UUID).
    pub libvirt: Option<(String, String)>,
    /// QMP over TLS to the TCP address.
    pub tls: TlsFiles,
}

/// A connected peer.
#[derive(Debug)]
pub enum Peer {
    /// A QMP monitor (QEMU or qemu-storage-daemon).
    Qmp(Qmp),
    /// The guest agent.
    Qga(Qga),
    /// A domain's monitor (or, with `qga`, its agent) through libvirt, and its events.
    #[cfg(feature = "libvirt")]
    Libvirt {
        /// The domain.
        domain: Box<client::libvirt::Domain>,
        /// Every event of the domain, subscribed at connect time (none for the agent).
        events: Option<<client::libvirt::Domain as Monitor>::Events>,
        /// The agent rather than the monitor.
        qga: bool,
        /// The per-command deadline.
        timeout: Duration,
    },
}

#[cfg(feature = "libvirt")]
use client::monitor::{EventStream, Monitor};

/// libvirt's errors in the client's terms: QEMU's error replies stay `Error::Qmp`
/// with their class, deadlines `Error::Timeout`; libvirt's own errors keep their text.
#[cfg(feature = "libvirt")]
fn from_libvirt(e: client::libvirt::Error) -> Error {
    use client::libvirt::Error as L;
    match e {
        L::Qmp {
            command,
            class,
            desc,
        } => Error::Qmp(client::QmpError {
            command,
            class,
            desc,
        }),
        L::Timeout { operation, after } => Error::Timeout {
            waiting_for: operation,
            waited: after,
        },
        L::Disconnected { .. } => Error::Disconnected { command: None },
        other => Error::Connect {
            endpoint: "libvirt".into(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// Connects; when no greeting came within a second, `busy` is called once (the
/// monitor serves one client at a time, a second one waits silently).
pub fn connect(address: &str, o: &ConnectOptions, busy: impl FnOnce()) -> Result<Peer, Error> {
    let opts = Options::new()
        .connect_timeout(o.connect_timeout)
        .timeout(o.timeout)
        .negotiate(!o.no_negotiate);
    if let Some((uri, domain)) = &o.libvirt {
        return connect_libvirt(uri, domain, o);
    }
    if o.tls.wanted() {
        return connect_tls(address, o, &opts);
    }
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

#[cfg(feature = "libvirt")]
fn connect_libvirt(uri: &str, domain: &str, o: &ConnectOptions) -> Result<Peer, Error> {
    let dom = client::libvirt::Domain::open_within(uri, domain, o.connect_timeout)
        .map_err(from_libvirt)?;
    let events = if o.qga {
        None
    } else {
        Some(dom.subscribe(None).map_err(from_libvirt)?)
    };
    Ok(Peer::Libvirt {
        domain: Box::new(dom),
        events,
        qga: o.qga,
        timeout: o.timeout.unwrap_or(Duration::from_secs(3600)),
    })
}

#[cfg(not(feature = "libvirt"))]
fn connect_libvirt(_uri: &str, _domain: &str, _o: &ConnectOptions) -> Result<Peer, Error> {
    Err(Error::Connect {
        endpoint: "libvirt".into(),
        source: std::io::Error::other("this qmp was built without the `libvirt` feature"),
    })
}

#[cfg(feature = "tls")]
fn connect_tls(address: &str, o: &ConnectOptions, opts: &Options) -> Result<Peer, Error> {
    use client::tls;
    let tls_error = |e: tls::Error| Error::Connect {
        endpoint: address.to_owned(),
        source: std::io::Error::other(e.to_string()),
    };
    let (Some(ca), Some(cert), Some(key)) = (&o.tls.ca, &o.tls.cert, &o.tls.key) else {
        return Err(Error::Connect {
            endpoint: address.to_owned(),
            source: std::io::Error::other("--tls-ca, --tls-cert and --tls-key go together"),
        });
    };
    let name = match &o.tls.name {
        Some(n) => n.clone(),
        None => address
            .rsplit_once(':')
            .map_or(address, |(host, _)| host)
            .trim_matches(['[', ']'])
            .to_owned(),
    };
    let creds = tls::Credentials::from_pem_files(ca, cert, key).map_err(tls_error)?;
    let stream = tls::connect(address, &name, &creds, o.connect_timeout).map_err(tls_error)?;
    let relay = stream.relay().map_err(tls_error)?;
    if o.qga {
        Qga::from_stream(relay, opts).map(Peer::Qga)
    } else {
        Qmp::from_stream(relay, opts).map(Peer::Qmp)
    }
}

#[cfg(not(feature = "tls"))]
fn connect_tls(address: &str, _o: &ConnectOptions, _opts: &Options) -> Result<Peer, Error> {
    Err(Error::Connect {
        endpoint: address.to_owned(),
        source: std::io::Error::other("this qmp was built without the `tls` feature"),
    })
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
            #[cfg(feature = "libvirt")]
            Peer::Libvirt {
                domain,
                qga,
                timeout,
                ..
            } => {
                if exec.oob || !exec.fds.is_empty() {
                    return Err(Error::Protocol {
                        reason: "libvirt sends neither out-of-band commands nor descriptors".into(),
                        excerpt: String::new(),
                    });
                }
                let args =
                    match &req.args {
                        Some(a) => Some(RawValue::from_string(a.to_string()).map_err(|e| {
                            Error::Encode {
                                command: req.name.clone(),
                                source: e,
                            }
                        })?),
                        None => None,
                    };
                let deadline = match exec.timeout {
                    Some(Some(t)) => t,
                    Some(None) => Duration::from_secs(3600),
                    None => *timeout,
                };
                let r = if *qga {
                    domain.agent_execute_raw(&req.name, args.as_deref(), deadline)
                } else {
                    domain.execute_raw(&req.name, args.as_deref())
                };
                r.map_err(from_libvirt)
            }
        }
    }

    /// The next queued or already-received event, without blocking (none for QGA).
    pub fn poll_event(&mut self) -> Result<Option<RawEvent>, Error> {
        match self {
            Peer::Qmp(q) => q.poll_event(),
            Peer::Qga(_) => Ok(None),
            #[cfg(feature = "libvirt")]
            Peer::Libvirt { events, .. } => libvirt_event(events, Duration::ZERO),
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
            #[cfg(feature = "libvirt")]
            Peer::Libvirt { events, .. } => {
                libvirt_event(events, timeout.unwrap_or(Duration::from_secs(3600)))
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
            #[cfg(feature = "libvirt")]
            Peer::Libvirt { qga: true, .. } => "the guest agent through libvirt".into(),
            #[cfg(feature = "libvirt")]
            Peer::Libvirt { .. } => "QEMU through libvirt".into(),
        }
    }

    /// The `query-qmp-schema` reply, for QMP monitors that have been negotiated.
    pub fn introspect(&mut self) -> Option<Result<Value, Error>> {
        #[cfg(feature = "libvirt")]
        if matches!(self, Peer::Libvirt { qga: false, .. }) {
            let req = Request {
                name: "query-qmp-schema".into(),
                args: None,
                warnings: Vec::new(),
            };
            return Some(self.execute(&req, &Exec::default()).and_then(|r| {
                serde_json::from_str(r.get()).map_err(|e| Error::Decode {
                    command: "query-qmp-schema".into(),
                    source: e,
                    json: String::new(),
                })
            }));
        }
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
            _ => None,
        }
    }

    /// Whether this is the guest agent.
    pub fn is_qga(&self) -> bool {
        match self {
            Peer::Qga(_) => true,
            #[cfg(feature = "libvirt")]
            Peer::Libvirt { qga, .. } => *qga,
            Peer::Qmp(_) => false,
        }
    }
}

/// The next event of a libvirt domain, as the direct client hands them out.
#[cfg(feature = "libvirt")]
fn libvirt_event(
    events: &mut Option<<client::libvirt::Domain as Monitor>::Events>,
    timeout: Duration,
) -> Result<Option<RawEvent>, Error> {
    let Some(events) = events else {
        std::thread::sleep(timeout);
        return Ok(None);
    };
    let Some(e) = events.next_event(timeout).map_err(from_libvirt)? else {
        return Ok(None);
    };
    let mut wire = serde_json::json!({
        "event": e.name,
        "timestamp": {"seconds": e.timestamp.seconds, "microseconds": e.timestamp.microseconds},
    });
    if let Some(d) = &e.data {
        wire["data"] = serde_json::from_str(d.get()).unwrap_or(Value::Null);
    }
    RawEvent::from_json(&wire.to_string()).map(Some)
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
