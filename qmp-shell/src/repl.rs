//! The interactive shell: line editing with persistent history, Tab completion from
//! the schema, events printed as they arrive above the line being typed, `help`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qmp_shell::conn::{self, Exec, Peer};
use qmp_shell::output::{self, Format};
use qmp_shell::schema::Schema;
use qmp_shell::syntax::{self, Statement, SyntaxError};
use qmp_shell::typing::{self, Request};
use qmp_types::client::Error;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, ExternalPrinter, Helper};

use crate::{load_schema, report_error, wire, Cli, Transcript};

/// Completion state shared with the editor.
struct ShellHelper {
    schema: Option<Arc<Schema>>,
    /// Earlier lines of an unfinished statement.
    pending: Arc<Mutex<String>>,
    hmp: bool,
    /// HMP command names (from `help`) and `info` topics (from `help info`).
    hmp_words: (Vec<String>, Vec<String>),
}

/// The first word (or, with `skip`, the second) of each line of HMP help output.
fn hmp_names(help: &str, skip: usize) -> Vec<String> {
    let mut names: Vec<String> = help
        .lines()
        .filter_map(|l| l.split_whitespace().nth(skip))
        .map(|w| w.split('|').next().unwrap_or(w).to_owned())
        .filter(|w| {
            w.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Completes an HMP line: the command, or the topic after `info`.
fn hmp_complete(words: &(Vec<String>, Vec<String>), line: &str, pos: usize) -> (usize, Vec<Pair>) {
    let text = &line[..pos];
    let start = text.rfind(char::is_whitespace).map(|i| i + 1).unwrap_or(0);
    let before: Vec<&str> = text[..start].split_whitespace().collect();
    let partial = &text[start..];
    let list = match before.as_slice() {
        [] => &words.0,
        ["info"] => &words.1,
        _ => return (pos, Vec::new()),
    };
    let pairs = list
        .iter()
        .filter(|w| w.starts_with(partial))
        .map(|w| Pair {
            display: w.clone(),
            replacement: w.clone(),
        })
        .collect();
    (start, pairs)
}

/// Per-line options written before the command: `--oob`, `--timeout=S`, `--fd=N`.
#[derive(Debug, Default)]
struct LineOpts {
    oob: bool,
    timeout: Option<Option<Duration>>,
    fds: Vec<i32>,
}

/// Strips leading `--oob`, `--timeout=S` and `--fd=N` words; returns them and the
/// byte offset where the statement starts.
fn line_opts(line: &str) -> Result<(LineOpts, usize), String> {
    let mut o = LineOpts::default();
    let mut at = 0;
    loop {
        let rest = &line[at..];
        let trimmed = rest.trim_start();
        let skip = rest.len() - trimmed.len();
        let word_len = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let word = &trimmed[..word_len];
        if word == "--oob" {
            o.oob = true;
        } else if let Some(v) = word.strip_prefix("--timeout=") {
            let secs: f64 = v
                .parse()
                .map_err(|_| format!("--timeout takes seconds, not '{v}'"))?;
            if !secs.is_finite() || secs < 0.0 {
                return Err(format!("--timeout takes seconds, not '{v}'"));
            }
            o.timeout = Some((secs > 0.0).then(|| Duration::from_secs_f64(secs)));
        } else if let Some(v) = word.strip_prefix("--fd=") {
            o.fds.push(
                v.parse()
                    .map_err(|_| format!("--fd takes a number, not '{v}'"))?,
            );
        } else {
            return Ok((o, at + skip));
        }
        at += skip + word_len;
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        if self.hmp {
            return Ok(hmp_complete(&self.hmp_words, line, pos));
        }
        let Some(schema) = &self.schema else {
            return Ok((pos, Vec::new()));
        };
        let skip = line_opts(&line[..pos]).map(|(_, s)| s).unwrap_or(0);
        let pending = self.pending.lock().map(|p| p.clone()).unwrap_or_default();
        let c = qmp_shell::complete::complete(schema, &pending, &line[skip..], pos - skip);
        let pairs = c
            .candidates
            .into_iter()
            .map(|r| Pair {
                display: r.clone(),
                replacement: r,
            })
            .collect();
        Ok((c.start + skip, pairs))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("QMP_HISTORY") {
        return Some(p.into());
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".qmp_history"))
}

/// Where event lines go: above the prompt on a terminal, plain stdout otherwise.
type Printer = Box<dyn FnMut(String) + Send>;

fn event_text(e: &qmp_types::client::RawEvent, format: Format) -> String {
    let ts = e.timestamp();
    output::event_line(
        e.name(),
        &e.data_value(),
        ts.seconds,
        ts.microseconds,
        format,
    )
}

/// Runs the shell until `quit` or end of input; returns the exit code.
pub fn run(cli: &Cli, mut log: Transcript) -> u8 {
    let mut peer = match crate::connect(cli) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let schema = match load_schema(&mut peer, cli) {
        Ok(s) => s.map(Arc::new),
        Err(e) => {
            eprintln!("qmp: {e}; continuing without validation");
            None
        }
    };
    // QEMU's documentation is read on the first `help COMMAND` (parsing it takes a while).
    let mut docs: Option<Option<qapi_parser::Schema>> = None;
    let format = cli.format.unwrap_or(Format::Auto);
    println!("Connected to {}", peer.banner());
    match &schema {
        Some(s) => println!(
            "{} commands; Tab completes, 'help COMMAND' documents, Ctrl-D quits.",
            s.commands.len()
        ),
        None => println!("No schema: values are typed by their look. Ctrl-D quits."),
    }

    let pending = Arc::new(Mutex::new(String::new()));
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(5000)
        .map(|b| b.build())
        .unwrap_or_default();
    let mut rl: Editor<ShellHelper, FileHistory> = match Editor::with_config(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("qmp: cannot start the line editor: {e}");
            return 2;
        }
    };
    let mut hmp_words = (Vec::new(), Vec::new());
    if cli.hmp {
        let mut ask = |line: &str| {
            let req = Request {
                name: "human-monitor-command".into(),
                args: Some(serde_json::json!({ "command-line": line })),
                warnings: Vec::new(),
            };
            peer.execute(&req, &Exec::default())
                .ok()
                .and_then(|r| serde_json::from_str::<String>(r.get()).ok())
                .unwrap_or_default()
        };
        hmp_words = (hmp_names(&ask("help"), 0), hmp_names(&ask("help info"), 1));
    }
    rl.set_helper(Some(ShellHelper {
        schema: schema.clone(),
        pending: pending.clone(),
        hmp: cli.hmp,
        hmp_words,
    }));
    let history = history_path();
    if let Some(h) = &history {
        // Created (or tightened) as a private file before rustyline touches it: the
        // history holds every line typed, passwords included.
        if let Err(e) = crate::open_private(h) {
            eprintln!("qmp: history {}: {e}", h.display());
        }
        let _ = rl.load_history(h);
    }

    // Events: a background thread polls the queue and prints above the prompt.
    let peer = Arc::new(Mutex::new(peer));
    let stop = Arc::new(AtomicBool::new(false));
    let mut printer: Printer = match rl.create_external_printer() {
        Ok(mut p) => Box::new(move |s| {
            let _ = p.print(s);
        }),
        Err(_) => Box::new(|s| println!("{s}")),
    };
    let events_log = Arc::new(Mutex::new(Vec::<String>::new()));
    let poller = {
        let peer = peer.clone();
        let stop = stop.clone();
        let events_log = events_log.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(30));
                let mut lines = Vec::new();
                let mut closed = false;
                if let Ok(mut p) = peer.try_lock() {
                    loop {
                        match p.poll_event() {
                            Ok(Some(e)) => {
                                if let Ok(mut l) = events_log.lock() {
                                    l.push(e.json().to_owned());
                                }
                                lines.push(event_text(&e, format));
                            }
                            Ok(None) => break,
                            Err(_) => {
                                closed = true;
                                break;
                            }
                        }
                    }
                }
                for l in lines {
                    printer(l);
                }
                if closed {
                    printer("qmp: connection closed by the peer".into());
                    break;
                }
            }
        })
    };

    let base_prompt = match (cli.hmp, cli.qga) {
        (true, _) => "(HMP) ",
        (_, true) => "(QGA) ",
        _ => "(QEMU) ",
    };
    let mut code = 0;
    loop {
        let in_statement = pending.lock().map(|p| !p.is_empty()).unwrap_or(false);
        let prompt = if in_statement { "... " } else { base_prompt };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                if let Ok(mut p) = pending.lock() {
                    p.clear();
                }
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("qmp: {e}");
                code = 2;
                break;
            }
        };
        let trimmed = line.trim();
        if !in_statement && matches!(trimmed, "quit" | "exit") {
            break;
        }
        if !trimmed.is_empty() {
            let _ = rl.add_history_entry(line.as_str());
            if let Some(h) = &history {
                let _ = rl.append_history(h);
            }
        }
        let text = match pending.lock() {
            Ok(mut p) if !p.is_empty() => {
                let t = format!("{}\n{line}", p);
                p.clear();
                t
            }
            _ => line.clone(),
        };
        let (opts, start) = match line_opts(&text) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("qmp: {e}");
                continue;
            }
        };
        let body = &text[start..];
        let stmt = if cli.hmp {
            if body.trim().is_empty() {
                continue;
            }
            Statement::Command {
                name: "human-monitor-command".into(),
                args: vec![syntax::Arg {
                    key: "command-line".into(),
                    value: syntax::Lit::Json(body.trim().into()),
                }],
            }
        } else {
            match syntax::parse(body) {
                Ok(s) => s,
                Err(SyntaxError::Incomplete) => {
                    if let Ok(mut p) = pending.lock() {
                        *p = text;
                    }
                    continue;
                }
                Err(SyntaxError::Invalid(m)) => {
                    eprintln!("qmp: {m}");
                    continue;
                }
            }
        };
        let (req, oob) = match &stmt {
            Statement::Empty => continue,
            Statement::Help(topic) => {
                let docs = match topic {
                    Some(_) => docs
                        .get_or_insert_with(|| {
                            qmp_shell::help::schema_file(cli.schema.as_deref(), cli.qga)
                                .and_then(|p| qmp_shell::help::load_docs(&p).ok())
                        })
                        .as_ref(),
                    None => None,
                };
                match topic {
                    None => print!("{}", qmp_shell::help::overview(schema.as_deref())),
                    Some(t) => print!("{}", qmp_shell::help::command(t, docs, schema.as_deref())),
                }
                continue;
            }
            Statement::Raw(v) => match conn::raw_request(v) {
                Ok((r, oob)) => (r, oob || opts.oob),
                Err(e) => {
                    eprintln!("qmp: {e}");
                    continue;
                }
            },
            _ => {
                // HMP lines are not validated against the QMP schema's argument rules
                // beyond the wrapper command itself.
                match typing::prepare(schema.as_deref(), &stmt) {
                    Ok(Some(r)) => (r, opts.oob),
                    Ok(None) => continue,
                    Err(diags) => {
                        crate::report_diags(&diags, cli);
                        continue;
                    }
                }
            }
        };
        if !execute(
            &peer,
            &mut log,
            &events_log,
            cli,
            &opts,
            &req,
            oob,
            format,
            schema.as_deref(),
        ) {
            code = 3;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = poller.join();
    code
}

/// Sends one request and prints what came back (events that arrived first, then
/// the reply). Returns false when the connection is gone.
#[allow(clippy::too_many_arguments)]
fn execute(
    peer: &Arc<Mutex<Peer>>,
    log: &mut Transcript,
    events_log: &Arc<Mutex<Vec<String>>>,
    cli: &Cli,
    opts: &LineOpts,
    req: &Request,
    oob: bool,
    format: Format,
    schema: Option<&Schema>,
) -> bool {
    let mut fd_list = cli.fds.clone();
    fd_list.extend(&opts.fds);
    let fds = match fd_list
        .iter()
        .map(|&n| {
            // SAFETY: F_GETFD only queries the descriptor table.
            if n < 0 || unsafe { libc::fcntl(n, libc::F_GETFD) } < 0 {
                return Err(format!("fd {n} is not open"));
            }
            // SAFETY: checked open above; nothing here closes it.
            Ok(unsafe { std::os::fd::BorrowedFd::borrow_raw(n) })
        })
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("qmp: {e}");
            return true;
        }
    };
    for w in &req.warnings {
        eprintln!("qmp: warning: {w}");
    }
    let text = wire(req, oob);
    if cli.verbose {
        println!("{text}");
    }
    log.line("->", &text);
    let Ok(mut p) = peer.lock() else {
        return false;
    };
    let result = p.execute(
        req,
        &Exec {
            oob,
            timeout: opts.timeout,
            fds: &fds,
        },
    );
    let mut events = Vec::new();
    while let Ok(Some(e)) = p.poll_event() {
        events.push(e);
    }
    drop(p);
    if let Ok(mut l) = events_log.lock() {
        for j in l.drain(..) {
            log.line("<-", &j);
        }
    }
    for e in &events {
        log.line("<-", e.json());
        println!("{}", event_text(e, format));
    }
    match result {
        Ok(ret) => {
            log.line("<-", &format!("{{\"return\":{}}}", ret.get()));
            let v: serde_json::Value = serde_json::from_str(ret.get()).unwrap_or_default();
            println!("{}", output::render(&req.name, &v, format));
            true
        }
        Err(e) => {
            log.line("!!", &e.to_string());
            report_error(&e, schema, req, cli);
            !matches!(e, Error::Disconnected { .. } | Error::Io { .. })
        }
    }
}
