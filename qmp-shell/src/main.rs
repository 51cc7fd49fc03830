//! The `qmp` program: one-shot commands, event streaming and the interactive shell.

mod repl;

use std::io::Write;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use qmp_shell::conn::{self, ConnectOptions, Exec, Peer};
use qmp_shell::output::{self, Format};
use qmp_shell::schema::Schema;
use qmp_shell::syntax::{self, Statement};
use qmp_shell::typing::{self, Diag, DiagKind, Request};
use qmp_types::client::{Error, ErrorClass};

const USAGE: &str = "\
usage: qmp [OPTIONS] SOCKET|HOST:PORT [COMMAND [key=value ...] | 'JSON request']

Without a command, starts the interactive shell. With one, runs it and prints the
reply (exit 0), or QEMU's error class and description (exit 1).

options:
  --events          print events with their timestamps until interrupted or --timeout
  --json            compact JSON output (one line per reply or event)
  -p, --pretty      pretty JSON output (no tables)
  -H, --hmp         human monitor commands (human-monitor-command), no CPU needed
  --qga             talk to the guest agent (resynchronised with guest-sync-delimited)
  --libvirt DOMAIN  reach DOMAIN (a name or UUID) through libvirt, which owns its monitor
                    (no SOCKET; with --qga, its guest agent; feature `libvirt`)
  -c, --connect URI the libvirt URI (default qemu:///system)
  --tls-ca FILE     QMP over TLS to HOST:PORT: the CA that signed the server's certificate
  --tls-cert FILE   the client certificate (with --tls-ca; feature `tls`)
  --tls-key FILE    the client certificate's key
  --tls-name NAME   the name or IP the server's certificate must carry (default: HOST)
  -N                skip the greeting and capabilities negotiation
  --timeout SECS    deadline per command (and for --events); default 30, 0 = none
  --oob             run the command out-of-band (exec-oob)
  --fd N            pass file descriptor N (inherited) with the command (repeatable)
  -l, --log FILE    append a transcript of requests, replies and events to FILE
  --schema FILE     QAPI schema file for help texts (and guest agent validation)
  --no-validate     send without checking against the schema
  -v, --verbose     print each request before sending it
  -h, --help        this text

exit status: 0 success, 1 error reply from QEMU, 2 usage or validation error,
3 connection error or timeout.";

/// Parsed command line.
#[derive(Debug, Default)]
pub(crate) struct Cli {
    pub(crate) address: String,
    pub(crate) words: Vec<String>,
    pub(crate) events: bool,
    pub(crate) format: Option<Format>,
    pub(crate) hmp: bool,
    pub(crate) qga: bool,
    pub(crate) no_negotiate: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) timeout_given: bool,
    pub(crate) oob: bool,
    pub(crate) fds: Vec<i32>,
    pub(crate) log: Option<PathBuf>,
    pub(crate) schema: Option<PathBuf>,
    pub(crate) no_validate: bool,
    pub(crate) verbose: bool,
    pub(crate) libvirt: Option<String>,
    pub(crate) libvirt_uri: Option<String>,
    pub(crate) tls: conn::TlsFiles,
}

fn parse_secs(s: &str) -> Result<Option<Duration>, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("--timeout takes seconds, not '{s}'"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("--timeout takes seconds, not '{s}'"));
    }
    Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs)))
}

fn parse_cli(args: Vec<String>) -> Result<Cli, String> {
    let mut cli = Cli {
        timeout: Some(Duration::from_secs(30)),
        ..Cli::default()
    };
    let mut it = args.into_iter();
    let mut positional = Vec::new();
    while let Some(a) = it.next() {
        if positional.len() >= 2 {
            // Everything after the address and the command belongs to the command.
            positional.push(a);
            positional.extend(it.by_ref());
            break;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--events" => cli.events = true,
            "--json" => cli.format = Some(Format::Json),
            "-p" | "--pretty" => cli.format = Some(Format::Pretty),
            "-H" | "--hmp" => cli.hmp = true,
            "--qga" => cli.qga = true,
            "-N" => cli.no_negotiate = true,
            "--oob" => cli.oob = true,
            "--no-validate" => cli.no_validate = true,
            "-v" | "--verbose" => cli.verbose = true,
            "--timeout" => {
                cli.timeout = parse_secs(&value("--timeout")?)?;
                cli.timeout_given = true;
            }
            "--fd" => {
                let v = value("--fd")?;
                cli.fds.push(
                    v.parse()
                        .map_err(|_| format!("--fd takes a number, not '{v}'"))?,
                );
            }
            "-l" | "--log" => cli.log = Some(value("--log")?.into()),
            "--schema" => cli.schema = Some(value("--schema")?.into()),
            "--libvirt" => cli.libvirt = Some(value("--libvirt")?),
            "-c" | "--connect" => cli.libvirt_uri = Some(value("--connect")?),
            "--tls-ca" => cli.tls.ca = Some(value("--tls-ca")?.into()),
            "--tls-cert" => cli.tls.cert = Some(value("--tls-cert")?.into()),
            "--tls-key" => cli.tls.key = Some(value("--tls-key")?.into()),
            "--tls-name" => cli.tls.name = Some(value("--tls-name")?),
            f if f.starts_with('-') && f.len() > 1 && !f.starts_with("-{") => {
                return Err(format!("unknown option {f}"))
            }
            _ => positional.push(a),
        }
    }
    let mut positional = positional.into_iter();
    if cli.libvirt_uri.is_some() && cli.libvirt.is_none() {
        return Err("-c/--connect goes with --libvirt DOMAIN".into());
    }
    cli.address = match (&cli.libvirt, positional.next()) {
        // libvirt owns the monitor: the domain is the address, and the first word the command.
        (Some(domain), first) => {
            positional = first
                .into_iter()
                .chain(positional)
                .collect::<Vec<_>>()
                .into_iter();
            format!("libvirt:{domain}")
        }
        (None, Some(a)) => a,
        (None, None) => std::env::var("QMP_SOCKET").map_err(|_| "no SOCKET given".to_owned())?,
    };
    cli.words = positional.collect();
    Ok(cli)
}

/// A transcript file (`-l`): opened for appending, never the socket.
pub(crate) struct Transcript(Option<std::fs::File>);

impl Transcript {
    fn open(path: Option<&PathBuf>) -> Result<Transcript, String> {
        match path {
            None => Ok(Transcript(None)),
            Some(p) => open_private(p)
                .map(|f| Transcript(Some(f)))
                .map_err(|e| format!("cannot open log file {}: {e}", p.display())),
        }
    }

    /// Appends one line with a direction marker.
    pub(crate) fn line(&mut self, marker: &str, text: &str) {
        if let Some(f) = &mut self.0 {
            let _ = writeln!(f, "{marker} {text}");
        }
    }
}

/// Opens `path` for appending as a private file: created with mode 0600, and an existing
/// regular file loses its group and other permissions. Transcripts and the shell's
/// history hold whatever was typed or answered, passwords and key material included.
/// Other files (`/dev/stderr`, a FIFO) are opened as they are.
pub(crate) fn open_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let meta = file.metadata()?;
    let mode = meta.permissions().mode();
    if meta.is_file() && mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(file)
}

/// The request as it goes on the wire (without the id the transport adds).
pub(crate) fn wire(req: &Request, oob: bool) -> String {
    let verb = if oob { "exec-oob" } else { "execute" };
    let name = serde_json::Value::String(req.name.clone());
    match &req.args {
        Some(a) => format!("{{\"{verb}\":{name},\"arguments\":{a}}}"),
        None => format!("{{\"{verb}\":{name}}}"),
    }
}

/// Whether QEMU's documentation (the QAPI files, when at hand) has command `name`.
pub(crate) fn documented(name: &str, cli: &Cli) -> bool {
    qmp_shell::help::schema_file(cli.schema.as_deref(), cli.qga)
        .and_then(|p| qmp_shell::help::load_docs(&p).ok())
        .is_some_and(|q| {
            q.lookup(name)
                .is_some_and(|id| matches!(q.entity(id).kind, qapi_parser::EntityKind::Command(_)))
        })
}

/// Prints validation problems; an unknown command that QEMU documents is reported
/// as missing from the connected QEMU.
pub(crate) fn report_diags(diags: &[Diag], cli: &Cli) {
    for d in diags {
        if matches!(d.kind, DiagKind::UnknownCommand { .. }) && documented(&d.path, cli) {
            let d = Diag {
                path: d.path.clone(),
                kind: DiagKind::NotAvailable,
            };
            eprintln!("qmp: {d}");
        } else {
            eprintln!("qmp: {d}");
        }
    }
    eprintln!("qmp: nothing sent");
}

/// Prints a transport error; returns the exit code.
pub(crate) fn report_error(e: &Error, schema: Option<&Schema>, req: &Request, cli: &Cli) -> u8 {
    match e {
        Error::Qmp(q) => {
            eprintln!("error: {}: {}", q.class, q.desc);
            if q.class == ErrorClass::CommandNotFound {
                if documented(&req.name, cli) {
                    eprintln!(
                        "hint: '{}' is documented by QEMU, but the connected QEMU does not have it",
                        req.name
                    );
                } else if let Some(s) =
                    schema.and_then(|s| qmp_shell::suggest::closest(&req.name, s.command_names()))
                {
                    eprintln!("hint: did you mean '{s}'?");
                }
            }
            1
        }
        other => {
            eprintln!("error: {other}");
            3
        }
    }
}

fn fds_of(cli: &Cli) -> Result<Vec<BorrowedFd<'static>>, String> {
    cli.fds
        .iter()
        .map(|&n| {
            // SAFETY: F_GETFD only queries the descriptor table.
            if n < 0 || unsafe { libc::fcntl(n, libc::F_GETFD) } < 0 {
                return Err(format!("--fd {n}: not an open file descriptor"));
            }
            // SAFETY: checked open above; the process never closes inherited fds.
            Ok(unsafe { BorrowedFd::borrow_raw(n) })
        })
        .collect()
}

/// The schema to validate against: the live introspection for QMP, the QAPI files
/// (filtered by what the agent says it supports) for the guest agent.
pub(crate) fn load_schema(peer: &mut Peer, cli: &Cli) -> Result<Option<Schema>, String> {
    if cli.no_validate {
        return Ok(None);
    }
    if peer.is_qga() {
        let Some(path) = qmp_shell::help::schema_file(cli.schema.as_deref(), true) else {
            return Ok(None);
        };
        let q = qmp_shell::help::load_docs(&path)?;
        let mut s = Schema::from_qapi(&q);
        // Keep only what this agent has enabled.
        let req = Request {
            name: "guest-info".into(),
            args: None,
            warnings: Vec::new(),
        };
        if let Ok(info) = peer.execute(&req, &Exec::default()) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(info.get()) {
                let enabled: Vec<&str> = v["supported_commands"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| c["enabled"] == true)
                    .filter_map(|c| c["name"].as_str())
                    .collect();
                if !enabled.is_empty() {
                    s.commands.retain(|k, _| enabled.contains(&k.as_str()));
                }
            }
        }
        return Ok(Some(s));
    }
    match peer.introspect() {
        None => Ok(None),
        Some(Ok(v)) => {
            if let Some(path) = peer.greeting_json().and_then(cache_path) {
                // Best effort: a cache that cannot be written is only slower.
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                if std::fs::write(&tmp, v.to_string()).is_ok() {
                    let _ = std::fs::rename(&tmp, &path);
                }
            }
            Schema::from_introspection(&v)
                .map(Some)
                .map_err(|e| e.to_string())
        }
        Some(Err(e)) => Err(format!("cannot read the schema (query-qmp-schema): {e}")),
    }
}

/// Where the introspection of the QEMU build that sent `greeting` is cached:
/// `$QMP_CACHE_DIR`, else `$XDG_CACHE_HOME/qmp-shell`, else `~/.cache/qmp-shell`.
fn cache_path(greeting: &str) -> Option<PathBuf> {
    use std::hash::{Hash, Hasher};
    let dir = std::env::var_os("QMP_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("qmp-shell")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/qmp-shell")))?;
    // SipHash with fixed keys: the same greeting always names the same file.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    greeting.hash(&mut h);
    Some(dir.join(format!("schema-{:016x}.json", h.finish())))
}

/// Like [`load_schema`], but first from the cache of this QEMU build's introspection;
/// the flag says the schema came from the cache (re-check live before rejecting).
pub(crate) fn load_schema_cached(
    peer: &mut Peer,
    cli: &Cli,
) -> Result<(Option<Schema>, bool), String> {
    if !cli.no_validate && !peer.is_qga() {
        let cached = peer
            .greeting_json()
            .and_then(cache_path)
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| Schema::from_introspection(&v).ok());
        if let Some(s) = cached {
            return Ok((Some(s), true));
        }
    }
    load_schema(peer, cli).map(|s| (s, false))
}

fn main() -> ExitCode {
    let cli = match parse_cli(std::env::args().skip(1).collect()) {
        Ok(c) => c,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("qmp: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    ExitCode::from(run(cli))
}

fn connect(cli: &Cli) -> Result<Peer, u8> {
    let opts = ConnectOptions {
        qga: cli.qga,
        no_negotiate: cli.no_negotiate,
        timeout: cli.timeout,
        connect_timeout: cli.timeout.unwrap_or(Duration::from_secs(3600)),
        libvirt: cli.libvirt.clone().map(|domain| {
            let uri = cli
                .libvirt_uri
                .clone()
                .unwrap_or_else(|| "qemu:///system".to_owned());
            (uri, domain)
        }),
        tls: cli.tls.clone(),
    };
    conn::connect(&cli.address, &opts, || {
        eprintln!(
            "qmp: waiting for {}: no greeting after 1 s; the monitor is probably busy with another client (QMP serves one at a time)",
            cli.address
        );
    })
    .map_err(|e| {
        eprintln!("qmp: {e}");
        3
    })
}

fn run(cli: Cli) -> u8 {
    let mut log = match Transcript::open(cli.log.as_ref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("qmp: {e}");
            return 2;
        }
    };
    let fds = match fds_of(&cli) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("qmp: {e}");
            return 2;
        }
    };
    if cli.events {
        if !cli.words.is_empty() {
            eprintln!("qmp: --events takes no command");
            return 2;
        }
        return stream_events(&cli, &mut log);
    }
    if cli.words.is_empty() {
        return repl::run(&cli, log);
    }
    // Parse before connecting: a typo costs no connection.
    let stmt = if cli.hmp {
        Statement::Command {
            name: "human-monitor-command".into(),
            args: vec![syntax::Arg {
                key: "command-line".into(),
                value: syntax::Lit::Json(cli.words.join(" ").into()),
            }],
        }
    } else {
        match syntax::parse_words(&cli.words) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("qmp: {e}");
                return 2;
            }
        }
    };
    let mut peer = match connect(&cli) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let format = cli.format.unwrap_or(Format::Auto);
    let (req, oob, schema) = match &stmt {
        Statement::Raw(v) => match conn::raw_request(v) {
            Ok((r, oob)) => (r, oob || cli.oob, None),
            Err(e) => {
                eprintln!("qmp: {e}");
                return 2;
            }
        },
        Statement::Help(topic) => {
            let schema = load_schema(&mut peer, &cli).ok().flatten();
            let docs = qmp_shell::help::schema_file(cli.schema.as_deref(), cli.qga)
                .and_then(|p| qmp_shell::help::load_docs(&p).ok());
            match topic {
                None => print!("{}", qmp_shell::help::overview(schema.as_ref())),
                Some(t) => print!(
                    "{}",
                    qmp_shell::help::command(t, docs.as_ref(), schema.as_ref())
                ),
            }
            return 0;
        }
        Statement::Empty => return 0,
        Statement::Command { args, .. } if (args.is_empty() && !peer.is_qga()) || cli.hmp => {
            // Nothing to type (or an HMP line, a string): skip fetching the schema;
            // QEMU reports unknown commands itself.
            match typing::prepare(None, &stmt) {
                Ok(Some(r)) => (r, cli.oob, None),
                _ => return 2,
            }
        }
        _ => {
            let (mut schema, cached) = match load_schema_cached(&mut peer, &cli) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("qmp: {e}");
                    return 3;
                }
            };
            if cached && typing::prepare(schema.as_ref(), &stmt).is_err() {
                // The cache may be from another build of the same version: ask QEMU.
                schema = match load_schema(&mut peer, &cli) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("qmp: {e}");
                        return 3;
                    }
                };
            }
            match typing::prepare(schema.as_ref(), &stmt) {
                Ok(Some(r)) => (r, cli.oob, schema),
                Ok(None) => return 0,
                Err(diags) => {
                    report_diags(&diags, &cli);
                    return 2;
                }
            }
        }
    };
    for w in &req.warnings {
        eprintln!("qmp: warning: {w}");
    }
    let text = wire(&req, oob);
    if cli.verbose {
        eprintln!("{text}");
    }
    log.line("->", &text);
    let exec = Exec {
        oob,
        timeout: None,
        fds: &fds,
    };
    let result = peer.execute(&req, &exec);
    // Events that arrived meanwhile go to the transcript.
    while let Ok(Some(e)) = peer.poll_event() {
        log.line("<-", e.json());
    }
    match result {
        Ok(ret) => {
            log.line("<-", &format!("{{\"return\":{}}}", ret.get()));
            let v: serde_json::Value = serde_json::from_str(ret.get()).unwrap_or_default();
            println!("{}", output::render(&req.name, &v, format));
            0
        }
        Err(e) => {
            log.line("!!", &e.to_string());
            let schema = match (&e, schema) {
                (Error::Qmp(q), None) if q.class == ErrorClass::CommandNotFound => {
                    load_schema(&mut peer, &cli).ok().flatten()
                }
                (_, s) => s,
            };
            report_error(&e, schema.as_ref(), &req, &cli)
        }
    }
}

fn stream_events(cli: &Cli, log: &mut Transcript) -> u8 {
    let mut peer = match connect(cli) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if peer.is_qga() {
        eprintln!("qmp: the guest agent sends no events");
        return 2;
    }
    let format = cli.format.unwrap_or(Format::Auto);
    let deadline = cli
        .timeout
        .filter(|_| cli.timeout_given)
        .map(|t| Instant::now() + t);
    let mut out = std::io::stdout().lock();
    loop {
        let wait = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return 0;
                }
                Some(left)
            }
            None => None,
        };
        match peer.next_event(wait) {
            Ok(Some(e)) => {
                let ts = e.timestamp();
                let line = output::event_line(
                    e.name(),
                    &e.data_value(),
                    ts.seconds,
                    ts.microseconds,
                    format,
                );
                log.line("<-", e.json());
                if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                    return 0;
                }
            }
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("qmp: {e}");
                return 3;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::open_private;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn transcripts_and_history_are_private_files() {
        let dir = std::env::temp_dir().join(format!("qmp-shell-private-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let new = dir.join("new.log");
        let _ = std::fs::remove_file(&new);
        drop(open_private(&new).unwrap());
        assert_eq!(mode(&new), 0o600);

        // An existing file keeps its content and loses group and other permissions.
        let old = dir.join("old.log");
        std::fs::write(&old, "kept\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        use std::io::Write;
        writeln!(open_private(&old).unwrap(), "appended").unwrap();
        assert_eq!(mode(&old), 0o600);
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "kept\nappended\n");

        // Not a regular file: left alone.
        let before = mode(std::path::Path::new("/dev/null"));
        drop(open_private(std::path::Path::new("/dev/null")).unwrap());
        assert_eq!(mode(std::path::Path::new("/dev/null")), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
