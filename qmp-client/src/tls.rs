//! QMP over TLS (feature `tls`): QEMU's `tls-creds-x509` monitor, reached with rustls.
//!
//! [`connect`] opens TCP, does the handshake with a CA, a client certificate and key
//! ([`Credentials`]), checks the server's certificate against the CA and the name or IP
//! asked for, and waits for the server's first bytes (QMP speaks first: its greeting),
//! all within one deadline. Every refusal is typed: an untrusted server, an expired
//! certificate, a wrong name, a server that does not speak TLS, a server that refuses
//! our certificate, a deadline passed ([`Error`]); nothing waits longer than the deadline.
//!
//! The client reads and writes a socket descriptor of its own, so [`TlsStream::relay`]
//! hands it one end of a Unix socket pair, whose other end a thread pumps through TLS
//! (`Qmp::from_stream(tls.relay()?, &options)`). A client driving a `Read + Write`
//! stream uses [`TlsStream`] directly, with no relay. File descriptors cannot be passed
//! (QEMU accepts none over TCP either).
//!
//! [`launch`] starts QEMU with such a monitor, beside its usual private Unix one, with
//! certificates made for the instance by `openssl` ([`CertDir`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore};

/// Why a TLS connection could not be made or used.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A certificate or key file could not be read or parsed.
    Credentials {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The TCP connection failed.
    Connect {
        /// The address.
        addr: String,
        /// The system's error.
        source: io::Error,
    },
    /// The deadline passed (`stage`: `connect`, `handshake` or `greeting`).
    Timeout {
        /// The address.
        addr: String,
        /// Where it was.
        stage: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// The server's certificate is not signed by the CA (or its signature is bad).
    Untrusted {
        /// The address.
        addr: String,
        /// rustls' reason.
        reason: String,
    },
    /// The server's certificate has expired (or is not valid yet).
    Expired {
        /// The address.
        addr: String,
        /// rustls' reason, with the dates.
        reason: String,
    },
    /// The server's certificate is not valid for the name or IP asked for.
    WrongName {
        /// The address.
        addr: String,
        /// The name checked.
        name: String,
        /// rustls' reason (with the names the certificate has).
        reason: String,
    },
    /// The server does not speak TLS (a plain-text monitor, say).
    NotTls {
        /// The address.
        addr: String,
        /// What came instead.
        reason: String,
    },
    /// The server refused us (most likely our certificate): an alert, or the
    /// connection closed during or right after the handshake.
    Rejected {
        /// The address.
        addr: String,
        /// The alert, or how the connection ended.
        reason: String,
    },
    /// Another TLS failure.
    Tls {
        /// The address.
        addr: String,
        /// rustls' error.
        reason: String,
    },
    /// Making certificates or starting QEMU failed.
    Setup(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Credentials { path, reason } => write!(f, "{}: {reason}", path.display()),
            Error::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
            Error::Timeout { addr, stage, after } => {
                write!(f, "{addr}: TLS {stage} not done within {after:?}")
            }
            Error::Untrusted { addr, reason } => {
                write!(f, "{addr}: server certificate not trusted: {reason}")
            }
            Error::Expired { addr, reason } => {
                write!(
                    f,
                    "{addr}: server certificate expired or not yet valid: {reason}"
                )
            }
            Error::WrongName { addr, name, reason } => {
                write!(
                    f,
                    "{addr}: server certificate not valid for {name}: {reason}"
                )
            }
            Error::NotTls { addr, reason } => write!(f, "{addr}: not a TLS server: {reason}"),
            Error::Rejected { addr, reason } => {
                write!(f, "{addr}: the server refused us: {reason}")
            }
            Error::Tls { addr, reason } => write!(f, "{addr}: TLS: {reason}"),
            Error::Setup(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What the client trusts and presents: the CA's certificates, and a client
/// certificate (chain) with its private key. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Credentials {
    config: Arc<ClientConfig>,
}

impl Credentials {
    /// Reads PEM files: the CA certificate(s), the client's certificate chain, and its
    /// private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Arguments
    ///
    /// * `ca` - the CA certificates that sign the server's certificate.
    /// * `cert` - the client's certificate, then any intermediates.
    /// * `key` - the client's private key.
    pub fn from_pem_files(
        ca: impl AsRef<Path>,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Credentials, Error> {
        let certs = |path: &Path| -> Result<Vec<CertificateDer<'static>>, Error> {
            let bad = |reason: String| Error::Credentials {
                path: path.to_owned(),
                reason,
            };
            let list = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if list.is_empty() {
                return Err(bad("no certificate in the file".into()));
            }
            Ok(list)
        };
        let (ca, cert, key) = (ca.as_ref(), cert.as_ref(), key.as_ref());
        let mut roots = RootCertStore::empty();
        for c in certs(ca)? {
            roots.add(c).map_err(|e| Error::Credentials {
                path: ca.to_owned(),
                reason: e.to_string(),
            })?;
        }
        let chain = certs(cert)?;
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| Error::Credentials {
            path: key.to_owned(),
            reason: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, private)
            .map_err(|e| Error::Credentials {
                path: key.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Credentials {
            config: Arc::new(config),
        })
    }

    /// Reads `ca-cert.pem`, `client-cert.pem` and `client-key.pem` from `dir` (the names
    /// QEMU's own `tls-creds-x509,endpoint=client` reads).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Credentials, Error> {
        let dir = dir.as_ref();
        Credentials::from_pem_files(
            dir.join("ca-cert.pem"),
            dir.join("client-cert.pem"),
            dir.join("client-key.pem"),
        )
    }
}

/// A TLS connection to a QMP server, handshake done and the greeting's first bytes
/// received (still unread). `Read + Write`; see [`TlsStream::relay`] for the client.
pub struct TlsStream {
    conn: ClientConnection,
    tcp: TcpStream,
    addr: String,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Connects to `addr` (`host:port`), checks that the server's certificate is signed
/// by the CA of `credentials` and valid for `server_name` (a DNS name or an IP
/// address), presents the client certificate, and waits for the server's first bytes,
/// all within `timeout`.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use qmp_client::tls::{self, Credentials};
/// use qmp_client::{Options, Qmp, Request};
/// let creds = Credentials::from_dir("/etc/pki/qemu-client")?;
/// let stream = tls::connect("127.0.0.1:4444", "127.0.0.1", &creds, Duration::from_secs(5))?;
/// let qmp = Qmp::from_stream(stream.relay()?, &Options::new())?;
/// qmp.execute(Request::name("query-status"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn connect(
    addr: &str,
    server_name: &str,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<TlsStream, Error> {
    let deadline = Instant::now() + timeout;
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| Error::Tls {
        addr: addr.to_owned(),
        reason: format!("bad server name {server_name:?}: {e}"),
    })?;
    let timed_out = |stage| Error::Timeout {
        addr: addr.to_owned(),
        stage,
        after: timeout,
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    let mut tcp = None;
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|source| Error::Connect {
            addr: addr.to_owned(),
            source,
        })?
        .collect();
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out("connect"));
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(timed_out("connect")),
            Err(e) => last = e,
        }
    }
    let Some(mut tcp) = tcp else {
        return Err(Error::Connect {
            addr: addr.to_owned(),
            source: last,
        });
    };
    let _ = tcp.set_nodelay(true);
    let mut conn =
        ClientConnection::new(Arc::clone(&credentials.config), name).map_err(|e| Error::Tls {
            addr: addr.to_owned(),
            reason: e.to_string(),
        })?;
    let io_err = |e: io::Error, handshaking: bool| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            timed_out(if handshaking { "handshake" } else { "greeting" })
        }
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Error::Rejected {
            addr: addr.to_owned(),
            reason: format!("connection reset ({e})"),
        },
        _ => Error::Tls {
            addr: addr.to_owned(),
            reason: e.to_string(),
        },
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let handshaking = conn.is_handshaking();
        if left.is_zero() {
            return Err(timed_out(if handshaking {
                "handshake"
            } else {
                "greeting"
            }));
        }
        let _ = tcp.set_read_timeout(Some(left));
        let _ = tcp.set_write_timeout(Some(left));
        if conn.wants_write() {
            conn.write_tls(&mut tcp)
                .map_err(|e| io_err(e, handshaking))?;
            continue;
        }
        match conn.read_tls(&mut tcp) {
            Ok(0) => {
                return Err(Error::Rejected {
                    addr: addr.to_owned(),
                    reason: if handshaking {
                        "connection closed during the handshake".into()
                    } else {
                        "connection closed right after the handshake".into()
                    },
                })
            }
            Ok(_) => {}
            Err(e) => return Err(io_err(e, handshaking)),
        }
        match conn.process_new_packets() {
            Ok(state) if !conn.is_handshaking() && state.plaintext_bytes_to_read() > 0 => break,
            Ok(_) => {}
            Err(e) => {
                // Tell the server why (rustls queued an alert).
                let _ = conn.write_tls(&mut tcp);
                return Err(classify(addr, server_name, handshaking, e));
            }
        }
    }
    let _ = tcp.set_read_timeout(None);
    let _ = tcp.set_write_timeout(None);
    Ok(TlsStream {
        conn,
        tcp,
        addr: addr.to_owned(),
    })
}

/// Maps rustls' error to ours.
fn classify(addr: &str, name: &str, handshaking: bool, e: rustls::Error) -> Error {
    let addr = addr.to_owned();
    let reason = e.to_string();
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => Error::Expired { addr, reason },
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Error::WrongName {
                    addr,
                    name: name.to_owned(),
                    reason,
                }
            }
            _ => Error::Untrusted { addr, reason },
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }
            if handshaking =>
        {
            Error::NotTls { addr, reason }
        }
        rustls::Error::AlertReceived(alert) => Error::Rejected {
            addr,
            reason: format!("alert {alert:?}"),
        },
        _ => Error::Tls { addr, reason },
    }
}

impl TlsStream {
    /// The address connected to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Hands the connection to a thread that pumps it to and from one end of a Unix
    /// socket pair, and returns the other end: a plain socket for the client
    /// (`Qmp::from_stream`). Closing it sends TLS' close_notify; the server closing
    /// closes it.
    pub fn relay(self) -> Result<UnixStream, Error> {
        let (ours, theirs) = UnixStream::pair()
            .map_err(|e| Error::Setup(format!("cannot make a socket pair: {e}")))?;
        std::thread::Builder::new()
            .name("qmp-tls".into())
            .spawn(move || pump(self.conn, self.tcp, theirs))
            .map_err(|e| Error::Setup(format!("cannot start the TLS thread: {e}")))?;
        Ok(ours)
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        rustls::Stream::new(&mut self.conn, &mut self.tcp).read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        rustls::Stream::new(&mut self.conn, &mut self.tcp).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        rustls::Stream::new(&mut self.conn, &mut self.tcp).flush()
    }
}

/// Waits until one of `fds` (with their wanted events) is ready.
fn poll(fds: &mut [libc::pollfd]) -> bool {
    loop {
        // SAFETY: a valid array of pollfd on the caller's stack.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r >= 0 {
            return true;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// Writes all of `data` to the non-blocking `local`, waiting while it is full.
fn write_local(mut local: &UnixStream, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match local.write(data) {
            Ok(0) => return false,
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [libc::pollfd {
                    fd: local.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                }];
                if !poll(&mut fds) {
                    return false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// The relay thread: plaintext from `local` goes out encrypted on `tcp`, and back.
/// Ends when either side closes or fails, which closes the other.
fn pump(mut conn: ClientConnection, mut tcp: TcpStream, local: UnixStream) {
    if tcp.set_nonblocking(true).is_err() || local.set_nonblocking(true).is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Deliver what is decrypted.
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => {
                    let _ = local.shutdown(std::net::Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    if !write_local(&local, &buf[..n]) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        while conn.wants_write() {
            match conn.write_tls(&mut tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        let mut fds = [
            libc::pollfd {
                fd: tcp.as_raw_fd(),
                events: libc::POLLIN | if conn.wants_write() { libc::POLLOUT } else { 0 },
                revents: 0,
            },
            libc::pollfd {
                fd: local.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if !poll(&mut fds) {
            return;
        }
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            match conn.read_tls(&mut tcp) {
                Ok(0) => {
                    let _ = local.shutdown(std::net::Shutdown::Write);
                    return;
                }
                Ok(_) => {
                    if conn.process_new_packets().is_err() {
                        let _ = conn.write_tls(&mut tcp);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if fds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            match (&local).read(&mut buf) {
                Ok(0) => {
                    conn.send_close_notify();
                    let _ = tcp.set_nonblocking(false);
                    let _ = tcp.set_write_timeout(Some(Duration::from_secs(1)));
                    while conn.wants_write() && conn.write_tls(&mut tcp).is_ok() {}
                    return;
                }
                Ok(n) => {
                    if conn.writer().write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}

/// A private folder (mode 0700) of x509 material made by `openssl`, removed on drop:
/// a CA (`ca-cert.pem`, `ca-key.pem`), a server certificate for `IP:127.0.0.1` and
/// `DNS:localhost` with `serverAuth` (`server-cert.pem`, `server-key.pem`), and a client
/// certificate with `clientAuth` (`client-cert.pem`, `client-key.pem`): the names QEMU's
/// `tls-creds-x509` reads, as server and as client. Keys are ECDSA P-256; every
/// certificate is valid for two days.
#[derive(Debug)]
pub struct CertDir {
    path: PathBuf,
}

impl CertDir {
    /// Makes the folder and the CA, server and client material in it.
    pub fn generate() -> Result<CertDir, Error> {
        use std::os::unix::fs::DirBuilderExt;
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("qmp-tls-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| Error::Setup(format!("cannot create {}: {e}", path.display())))?;
        let dir = CertDir { path };
        // A subject of its own, so that another folder's CA is another issuer.
        let subject = format!("/CN=qmp-client test CA {}-{n}", std::process::id());
        dir.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca-cert.pem",
            "-subj",
            &subject,
            "-days",
            "2",
        ])?;
        dir.issue("server", "serverAuth", 2)?;
        dir.issue("client", "clientAuth", 2)?;
        Ok(dir)
    }

    /// Issues `NAME-cert.pem` and `NAME-key.pem` signed by this CA, for `IP:127.0.0.1`
    /// and `DNS:localhost`, with the extended key usage `usage` (`serverAuth` or
    /// `clientAuth`), valid for `days` from now; `-1` makes one that expired a day ago
    /// (its end lies before its start, which `openssl x509 -days` accepts).
    pub fn issue(&self, name: &str, usage: &str, days: i32) -> Result<(), Error> {
        let ext = format!("{name}.ext");
        std::fs::write(
            self.path.join(&ext),
            format!("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n"),
        )
        .map_err(|e| Error::Setup(e.to_string()))?;
        let (key, csr, cert) = (
            format!("{name}-key.pem"),
            format!("{name}.csr"),
            format!("{name}-cert.pem"),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ])?;
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca-cert.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            &days.to_string(),
            "-extfile",
            &ext,
        ])
    }

    fn openssl(&self, args: &[&str]) -> Result<(), Error> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.path)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Setup(format!("cannot run openssl (install it): {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Setup(format!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The client's credentials (`ca-cert.pem`, `client-cert.pem`, `client-key.pem`).
    pub fn credentials(&self) -> Result<Credentials, Error> {
        Credentials::from_dir(&self.path)
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A QEMU started by [`launch`]: its [`crate::Instance`] (with the usual private Unix
/// monitor), its TLS monitor's address and the certificates.
#[derive(Debug)]
pub struct TlsQemu {
    /// The process; its `connect()` is the plain Unix monitor.
    pub instance: crate::Instance,
    /// The certificates of this instance (QEMU reads the server's).
    pub certs: CertDir,
    /// Where the TLS monitor listens (`127.0.0.1`, a port the system chose).
    pub addr: SocketAddr,
}

impl TlsQemu {
    /// A TLS connection to the monitor with the instance's client certificate, checked
    /// for `127.0.0.1`.
    pub fn connect_tls(&self, timeout: Duration) -> Result<TlsStream, Error> {
        connect(
            &self.addr.to_string(),
            "127.0.0.1",
            &self.certs.credentials()?,
            timeout,
        )
    }
}

/// Starts `launcher`'s QEMU with one more monitor, over TLS on `127.0.0.1` (a port the
/// system chooses, read back with `query-chardev`), with certificates made for it
/// ([`CertDir::generate`]) and `verify-peer=on`: QEMU requires a client certificate
/// signed by the same CA.
///
/// The arguments added: `-object tls-creds-x509,id=tls0,dir=CERTS,endpoint=server,verify-peer=on`,
/// `-chardev socket,id=tlsmon0,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=tls0`
/// and `-mon chardev=tlsmon0,mode=control`.
pub fn launch(launcher: crate::Launcher) -> Result<TlsQemu, Error> {
    let certs = CertDir::generate()?;
    let instance = launcher
        .args([
            "-object".to_owned(),
            format!(
                "tls-creds-x509,id=tls0,dir={},endpoint=server,verify-peer=on",
                certs.path().display()
            ),
            "-chardev".to_owned(),
            "socket,id=tlsmon0,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=tls0".to_owned(),
            "-mon".to_owned(),
            "chardev=tlsmon0,mode=control".to_owned(),
        ])
        .spawn()
        .map_err(|e| Error::Setup(format!("cannot start QEMU with a TLS monitor: {e}")))?;
    let setup = |e: crate::Error| Error::Setup(format!("query-chardev: {e}"));
    let qmp = instance.connect().map_err(setup)?;
    let chardevs = qmp
        .execute(crate::Request::name("query-chardev"))
        .map_err(setup)?;
    let addr = tls_port(chardevs.get())
        .ok_or_else(|| Error::Setup(format!("no tlsmon0 port in {}", chardevs.get())))?;
    Ok(TlsQemu {
        instance,
        certs,
        addr,
    })
}

/// The address of `tlsmon0` in a `query-chardev` reply
/// (`"filename": "disconnected:tcp:127.0.0.1:33263,server=on"`).
fn tls_port(reply: &str) -> Option<SocketAddr> {
    let list: serde_json::Value = serde_json::from_str(reply).ok()?;
    let filename = list.as_array()?.iter().find(|c| c["label"] == "tlsmon0")?["filename"]
        .as_str()?
        .to_owned();
    let tcp = filename.split("tcp:").nth(1)?;
    tcp.split(',').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::tls_port;

    #[test]
    fn reads_the_chosen_port_from_query_chardev() {
        let reply = r#"[{"frontend-open": true, "filename": "disconnected:tcp:127.0.0.1:33263,server=on", "label": "tlsmon0"}, {"filename": "unix:/tmp/q.sock,server=on", "label": "qmp0"}]"#;
        assert_eq!(tls_port(reply), Some("127.0.0.1:33263".parse().unwrap()));
        assert_eq!(tls_port("[]"), None);
    }
}
