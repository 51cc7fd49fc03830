//! `cargo xtask bench fleet [fake|qsd|events|build]... [--seconds S] [--rounds R]`: many
//! monitors from one process, our clients against the crates.io peers in the same run.
//!
//! - `fake`: 1, 1,000 and 10,000 connections to a local fake QMP server (`fleet-server`,
//!   one epoll thread), every connection calling `query-status` in a loop for S seconds
//!   (2 s with one connection: the client's own round trip, for information; against a
//!   server that answers in a microsecond its p50 is decided by whether the scheduler
//!   places the client beside the server, 4-5 µs or 55-65 µs, not by the client).
//! - `qsd`: the round trip users see, against one real `qemu-storage-daemon` (QEMU's own
//!   work included), then 100 of them, one connection each, calling `query-version` (the
//!   storage daemon has no `query-status`).
//! - The round trip's target is judged in `qsd` on `fleet-client pair`: both our clients in one
//!   process on two connections to the same server, alternating batches of calls, so
//!   that drift of the machine between processes (wake-up latency on this VM moves the
//!   p50 by 10% from one run to the next) falls on both sides alike; at least 4 processes.
//! - `events`: typed event ingest from the fake server: every event into the driver's
//!   event type (ours: the generated `qmp::Event`), and by type (ours: the one
//!   `TypedEvent` asked for; the others skipped undecoded).
//! - `build` (not run by default): cold release builds of a user crate generating its own
//!   schema (`schema/commands.json`) with `qapi_codegen`, depending on `qapi-runtime`
//!   alone against the same crate depending on `qmp-types`.
//!
//! Drivers: `ours-blocking` (`qmp_client::Qmp`, a thread per connection), `ours-tokio`
//! (`qmp_client::tokio::Qmp`, a task per connection, when `qmp-client` has its `tokio`
//! feature; until it lands on main its rows say "not measured", and `--crates DIR`
//! measures the client of another tree, such as an exported branch), `qmp` 0.1.1 and
//! `qapi` 0.15 (crates.io, tokio; at 10,000 also `qmp16`, the `qmp` crate with a 16-slot
//! event buffer), and `floor` (std, a thread per connection, no JSON).
//! Each measurement is a fresh `fleet-client` process, so its resident memory and CPU
//! time (getrusage) are the driver's alone; both programs raise RLIMIT_NOFILE to the hard
//! limit. Drivers run in turn and in reverse order every other round; ratios are taken
//! within a round, and their median and spread printed.
//!
//! The programs are scratch crates under `<target>/bench-fleet/` (never workspace members)
//! depending on our crates by path: their sources are `fleet/server.rs`, and
//! `fleet/client.rs` with `fleet/ours.rs` (everything naming our client: the file to port
//! to a new client API) and `fleet/peers.rs`; none of these is a module of xtask (the
//! `build` part, `fleet/cold_build.rs`, and the verdicts, `fleet/judge.rs`, are).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{machine_load, verdict};
use crate::util::{self, cargo, fmt_duration, repo_root};
use crate::Result;

mod cold_build;
mod judge;

pub(super) use judge::spread;
use judge::{judge_fleet, ratio_verdict, Ahead};

const SERVER_MAIN: &str = include_str!("fleet/server.rs");
const CLIENT_MAIN: &str = include_str!("fleet/client.rs");
const CLIENT_OURS: &str = include_str!("fleet/ours.rs");
const CLIENT_PEERS: &str = include_str!("fleet/peers.rs");

/// Events per ingest run (about 18 MB from the fake server).
const EVENTS: usize = 200_000;

/// Our drivers, in the order their targets are printed.
const OURS: [&str; 2] = ["ours-tokio", "ours-blocking"];
/// The crates.io peers, with their names for humans.
const PEERS: [(&str, &str); 2] = [("qmp", "qmp 0.1.1"), ("qapi", "qapi 0.15")];

/// Options of the benchmark.
#[derive(Clone)]
struct Opts {
    seconds: f64,
    rounds: usize,
    /// The tree whose `qmp-types` and `qmp-client` the client program uses (`--crates
    /// DIR`, e.g. an exported branch, to preview a client not on main; ours by default).
    crates: PathBuf,
}

pub(crate) fn run(args: &[String]) -> Result {
    let all = ["fake", "qsd", "events", "build"];
    // Many short rounds rather than a few long ones: the machine's drift between
    // drivers is what spreads the ratios.
    let mut opts = Opts {
        seconds: 3.0,
        rounds: 4,
        crates: repo_root(),
    };
    let mut parts = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => opts.seconds = args.next().ok_or("--seconds S")?.parse()?,
            "--rounds" => opts.rounds = args.next().ok_or("--rounds R")?.parse()?,
            "--crates" => opts.crates = PathBuf::from(args.next().ok_or("--crates DIR")?),
            p if all.contains(&p) => parts.push(p),
            other => {
                return Err(format!(
                    "unknown argument `{other}` (parts: {}; --seconds S, --rounds R, --crates DIR)",
                    all.join(", ")
                )
                .into())
            }
        }
    }
    if parts.is_empty() {
        // Events first: their target is absolute, so they run on the quietest machine.
        parts = vec!["events", "fake", "qsd"];
    }
    let start = Instant::now();
    // Later load averages count this benchmark's own threads and daemons too.
    println!("fleet: starting at {}", machine_load());
    let needs_programs = parts.iter().any(|p| *p != "build");
    let programs = if needs_programs {
        Some(Programs::build(&opts.crates)?)
    } else {
        None
    };
    for part in parts {
        settle()?;
        println!(
            "\n## fleet {part} ({}; runnable threads of this benchmark count)",
            machine_load()
        );
        match (part, &programs) {
            ("build", _) => cold_build::cold_build(opts.rounds)?,
            ("fake", Some(p)) => fake(p, &opts)?,
            ("qsd", Some(p)) => storage_daemons(p, &opts)?,
            ("events", Some(p)) => events(p, (opts.rounds + 1).max(5))?,
            _ => unreachable!("parts are checked above"),
        }
    }
    println!(
        "\nfleet: {} in all ({})",
        fmt_duration(start.elapsed()),
        machine_load()
    );
    Ok(())
}

/// Waits (at most [`SETTLE_FOR`]) until the cores are mostly idle, so that no part starts
/// while the last one's processes (100 daemons, 10,000 connections) are still winding
/// down. A guard: in the runs so far the cores were idle within 0.5 s (the high load
/// averages printed are decaying means), so it did not explain the differing verdicts.
fn settle() -> Result {
    // Busy and total jiffies of all cores, from /proc/stat's first line.
    let cpu = || -> Result<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        let line = stat.lines().next().ok_or("empty /proc/stat")?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let total: u64 = v.iter().sum();
        // Fields 4 and 5 are idle and iowait.
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        Ok((total - idle, total))
    };
    let start = Instant::now();
    loop {
        let (b0, t0) = cpu()?;
        std::thread::sleep(Duration::from_millis(500));
        let (b1, t1) = cpu()?;
        let busy = (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
        if busy < SETTLED_BELOW || start.elapsed() >= SETTLE_FOR {
            println!(
                "fleet: cores {:.0}% busy after {} of settling",
                busy * 100.0,
                fmt_duration(start.elapsed())
            );
            return Ok(());
        }
    }
}

/// The busy share of the cores below which a part starts.
const SETTLED_BELOW: f64 = 0.25;
/// The longest [`settle`] waits.
const SETTLE_FOR: Duration = Duration::from_secs(60);

/// The two release binaries, built in scratch crates.
struct Programs {
    server: PathBuf,
    client: PathBuf,
}

impl Programs {
    fn build(crates: &Path) -> Result<Programs> {
        let base = util::target_dir().join("bench-fleet");
        // Another tree of our crates gets folders of its own: no rebuilds back and forth.
        let ours = crates == repo_root();
        let suffix = if ours { "" } else { "-preview" };
        let target = base.join(format!("target{suffix}"));
        let server = base.join("server");
        scratch_crate(
            &server,
            "fleet-server",
            "libc = \"0.2\"\n",
            &[("src/main.rs", SERVER_MAIN)],
        )?;
        let client = base.join(format!("client{suffix}"));
        // Our tokio client is measured when qmp-client has its `tokio` feature.
        let client_manifest = std::fs::read_to_string(crates.join("qmp-client/Cargo.toml"))?;
        let tokio = client_manifest.lines().any(|l| l.starts_with("tokio = ["));
        let mut deps = format!(
            "qmp-types = {{ path = \"{}\" }}\n\
             qmp = \"=0.1.1\"\n\
             qapi = {{ version = \"0.15\", features = [\"qmp\", \"async-tokio-net\", \"async-tokio-spawn\"] }}\n\
             tokio = {{ version = \"1\", features = [\"rt-multi-thread\", \"net\", \"io-util\", \"time\", \"sync\", \"macros\"] }}\n\
             futures = {{ version = \"0.3\", default-features = false, features = [\"std\"] }}\n\
             serde = {{ version = \"1\", features = [\"derive\"] }}\n\
             serde_json = \"1\"\n\
             libc = \"0.2\"\n",
            crates.join("qmp-types").display()
        );
        if tokio {
            deps += &format!(
                "qmp-client = {{ path = \"{}\", features = [\"tokio\"] }}\n\n\
                 [features]\ndefault = [\"ours-tokio\"]\nours-tokio = []\n",
                crates.join("qmp-client").display()
            );
        } else {
            deps += "\n[features]\nours-tokio = []\n";
        }
        scratch_crate(
            &client,
            "fleet-client",
            &deps,
            &[
                ("src/main.rs", CLIENT_MAIN),
                ("src/ours.rs", CLIENT_OURS),
                ("src/peers.rs", CLIENT_PEERS),
            ],
        )?;
        // The lock file of the tree as a start, so shared dependencies are the versions
        // it is tested with.
        if !client.join("Cargo.lock").exists() {
            std::fs::copy(crates.join("Cargo.lock"), client.join("Cargo.lock"))?;
        }
        let t = Instant::now();
        for dir in [&server, &client] {
            util::run(
                cargo()
                    .env("CARGO_TARGET_DIR", &target)
                    .args(["build", "--release", "--quiet", "--manifest-path"])
                    .arg(dir.join("Cargo.toml")),
            )?;
        }
        println!(
            "fleet programs built in {} (our crates from {}; our tokio client {})",
            fmt_duration(t.elapsed()),
            crates.display(),
            if tokio {
                "measured"
            } else {
                "not there: its rows are not measured"
            }
        );
        Ok(Programs {
            server: target.join("release/fleet-server"),
            client: target.join("release/fleet-client"),
        })
    }
}

/// Writes a scratch crate (its own workspace) at `dir`, leaving unchanged files alone so
/// that cargo rebuilds only what changed.
fn scratch_crate(dir: &Path, name: &str, deps: &str, files: &[(&str, &str)]) -> Result {
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\n{deps}\n[workspace]\n"
    );
    let mut all = vec![("Cargo.toml", manifest.as_str())];
    all.extend_from_slice(files);
    for (file, text) in all {
        let path = dir.join(file);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
            std::fs::write(&path, text)?;
        }
    }
    Ok(())
}

/// A private folder for sockets (short: a socket path has at most 107 bytes).
struct SocketDir(PathBuf);

impl SocketDir {
    fn new() -> Result<SocketDir> {
        let dir = PathBuf::from(format!("/tmp/qfleet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(SocketDir(dir))
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Processes we started, killed and reaped on drop.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the fake server in `dir`; it serves until the returned guard drops.
fn start_server(programs: &Programs, dir: &Path, events: usize) -> Result<Children> {
    let mut child = Command::new(&programs.server)
        .arg(dir)
        .arg(events.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let guard = Children(vec![child]);
    if line.trim() != "ready" {
        return Err(format!("fleet-server did not start: {line:?}").into());
    }
    Ok(guard)
}

/// One `RESULT` line of `fleet-client`: its numbers by key, or why it failed.
#[derive(Debug, Default, Clone)]
struct Sample {
    values: BTreeMap<String, f64>,
    error: Option<String>,
}

impl Sample {
    fn get(&self, key: &str) -> f64 {
        self.values.get(key).copied().unwrap_or(f64::NAN)
    }
}

/// Runs `fleet-client ARGS` to completion (killed after `timeout`) and reads its line.
fn client(programs: &Programs, args: &[String], timeout: Duration) -> Result<Sample> {
    let mut child = Command::new(&programs.client)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let start = Instant::now();
    while child.try_wait()?.is_none() {
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Sample {
                error: Some(format!("timed out after {}", fmt_duration(timeout))),
                ..Sample::default()
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .ok_or("stdout")?
        .read_to_string(&mut out)?;
    child
        .stderr
        .take()
        .ok_or("stderr")?
        .read_to_string(&mut err)?;
    Ok(parse_result(&out, &err))
}

/// Reads `fleet-client`'s `RESULT` line from its output; else the last line of `err`.
fn parse_result(out: &str, err: &str) -> Sample {
    let Some(line) = out.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
        let why = err.lines().last().unwrap_or("no RESULT line").to_owned();
        return Sample {
            error: Some(why),
            ..Sample::default()
        };
    };
    let mut sample = Sample::default();
    for field in line.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        if key == "error" {
            sample.error = Some(value.replace('_', " "));
        } else if let Ok(v) = value.parse() {
            sample.values.insert(key.to_owned(), v);
        }
    }
    sample
}

/// Whether a sample says that the driver does not exist yet (the tokio stub).
fn unavailable(s: &Sample) -> bool {
    s.error
        .as_deref()
        .is_some_and(|e| e.contains("not available") || e.contains("not on main"))
}

/// A fleet: where its connections go and what they call.
struct Fleet<'a> {
    label: &'a str,
    sockets: &'a Path,
    per_socket: usize,
    conns: usize,
    command: &'a str,
    drivers: &'a [&'a str],
    /// The serving processes, whose CPU time per call is reported beside the client's.
    servers: &'a [u32],
    /// How long each driver calls, in seconds.
    seconds: f64,
    /// Which targets apply.
    kind: Kind,
}

/// Which of the targets a fleet measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One connection: the round trip, against the blocking client's.
    Single,
    /// Many: throughput, p99 and CPU per call against the peers.
    Many,
    /// 10,000: the same, and holding them within the memory target.
    Big,
    /// Many real servers: as `Many`, but CPU per call is judged by instruction counts
    /// (the servers load both cores: wall CPU per call is the kernel's, alike for all).
    Daemons,
}

/// Every driver's samples of one fleet, one per round (`None`: not measured).
type Runs = BTreeMap<String, Vec<Option<Sample>>>;

fn run_fleet(programs: &Programs, fleet: &Fleet<'_>, opts: &Opts) -> Result<Runs> {
    println!(
        "\n{} ({} connections, `{}` in a loop for {} s each, {} round(s)):",
        fleet.label, fleet.conns, fleet.command, fleet.seconds, opts.rounds
    );
    let mut runs = Runs::new();
    let mut skip = Vec::new();
    for round in 0..opts.rounds {
        let mut order = fleet.drivers.to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        for driver in order {
            let slot = runs.entry(driver.to_owned()).or_default();
            if skip.contains(&driver) {
                slot.push(None);
                continue;
            }
            let args = [
                driver.to_owned(),
                "calls".into(),
                fleet.sockets.display().to_string(),
                fleet.per_socket.to_string(),
                fleet.seconds.to_string(),
                fleet.command.to_owned(),
            ];
            // Connecting 10,000 takes seconds; a stuck driver must not stop the rest.
            let timeout =
                Duration::from_secs_f64(fleet.seconds + 60.0 + fleet.conns as f64 / 100.0);
            let server_cpu = cpu_of(fleet.servers);
            let mut sample = client(programs, &args, timeout)?;
            let server_cpu = cpu_of(fleet.servers) - server_cpu;
            let calls = sample.get("calls");
            if calls > 0.0 {
                sample
                    .values
                    .insert("server_us_per_call".into(), server_cpu * 1e6 / calls);
            }
            if unavailable(&sample) {
                println!(
                    "  {driver:<14} not measured: {}",
                    sample.error.as_deref().unwrap_or("")
                );
                skip.push(driver);
                slot.push(None);
                continue;
            }
            print_run(driver, &sample);
            slot.push(Some(sample));
        }
    }
    Ok(runs)
}

/// User + system CPU seconds used so far by the processes `pids` (all their threads).
fn cpu_of(pids: &[u32]) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    pids.iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command name in parentheses: state is field 3, utime 14, stime 15.
            let rest = &stat[stat.rfind(')')? + 1..];
            let mut fields = rest.split_whitespace().skip(11);
            let user: f64 = fields.next()?.parse().ok()?;
            let system: f64 = fields.next()?.parse().ok()?;
            Some((user + system) / tick)
        })
        .sum()
}

fn print_run(driver: &str, s: &Sample) {
    if let Some(e) = &s.error {
        println!("  {driver:<14} FAILED: {e}");
        return;
    }
    println!(
        "  {driver:<14} {:>8.0} calls/s  p50 {:>9}  p99 {:>9}  CPU/call {:>6.2} µs (server {:>5.2})  idle {:>6.1} KB/conn (conn alone {:>6.1} KB)  connect {:.2} s{}",
        s.get("rate"),
        fmt_us(s.get("p50_us")),
        fmt_us(s.get("p99_us")),
        s.get("cpu_us_per_call"),
        s.get("server_us_per_call"),
        s.get("idle_bytes") / 1e3,
        s.get("conn_bytes") / 1e3,
        s.get("connect_s"),
        match s.get("errors") {
            e if e > 0.0 => format!("  ({e} errors)"),
            _ => String::new(),
        }
    );
}

fn fmt_us(us: f64) -> String {
    fmt_duration(Duration::from_secs_f64(us.max(0.0) / 1e6))
}

/// The round trip's target: `fleet-client pair` (our blocking client on `sockets[0]`,
/// our tokio client on `sockets[1]`, of the same server, in alternating batches) run in `rounds` processes; the verdict is the
/// median of their per-process medians of the pairs' p50 ratios.
fn round_trip(
    programs: &Programs,
    sockets: [&Path; 2],
    command: &str,
    label: &str,
    opts: &Opts,
) -> Result {
    let rounds = opts.rounds.max(4);
    let seconds = opts.seconds.min(2.0);
    println!(
        "\n{label}, round trip: tokio against blocking on two connections, alternating batches of 200 calls, {seconds} s per process, {rounds} processes:"
    );
    let mut medians = Vec::new();
    for _ in 0..rounds {
        let args = [
            "pair".to_owned(),
            "roundtrip".into(),
            sockets[0].display().to_string(),
            sockets[1].display().to_string(),
            seconds.to_string(),
            command.to_owned(),
        ];
        let s = client(programs, &args, Duration::from_secs_f64(seconds + 60.0))?;
        if let Some(e) = &s.error {
            println!("  pair           FAILED: {e}");
            continue;
        }
        println!(
            "  pair           {:>4.0} pairs  ratio {:.3}  p50 blocking {:>9} tokio {:>9}",
            s.get("pairs"),
            s.get("ratio"),
            fmt_us(s.get("blocking_p50_us")),
            fmt_us(s.get("tokio_p50_us")),
        );
        medians.push(s.get("ratio"));
    }
    ratio_verdict(
        &format!("tokio / blocking p50 round trip, {label}"),
        medians,
        Ahead::Within5,
    );
    Ok(())
}

fn fake(programs: &Programs, opts: &Opts) -> Result {
    let dir = SocketDir::new()?;
    let server = start_server(programs, &dir.0, 0)?;
    let servers = [server.0[0].id()];
    let sockets = dir.0.join("sockets");
    std::fs::write(&sockets, format!("{}\n", dir.0.join("rt.sock").display()))?;
    let drivers = ["ours-blocking", "ours-tokio", "qmp", "qapi", "floor"];
    // At 10,000, also the `qmp` crate with a 16-slot event buffer: its smallest memory.
    let big_drivers = [
        "ours-blocking",
        "ours-tokio",
        "qmp",
        "qmp16",
        "qapi",
        "floor",
    ];
    for (conns, label, kind) in [
        (1, "fake server, 1 monitor", Kind::Single),
        (1000, "fake server, 1,000 monitors", Kind::Many),
        (10_000, "fake server, 10,000 monitors", Kind::Big),
    ] {
        let fleet = Fleet {
            label,
            sockets: &sockets,
            per_socket: conns,
            conns,
            command: "query-status",
            drivers: if kind == Kind::Big {
                &big_drivers[..]
            } else {
                &drivers[..]
            },
            servers: &servers,
            // One connection: tens of thousands of round trips in 2 s.
            seconds: if kind == Kind::Single {
                opts.seconds.min(2.0)
            } else {
                opts.seconds
            },
            kind,
        };
        let runs = run_fleet(programs, &fleet, opts)?;
        judge_fleet(&fleet, &runs);
    }
    Ok(())
}

/// How many storage daemons the `qsd` fleet starts.
const DAEMONS: usize = 100;

fn storage_daemons(programs: &Programs, opts: &Opts) -> Result {
    let dir = SocketDir::new()?;
    let binary = util::find_program("qemu-storage-daemon")
        .ok_or("qemu-storage-daemon is not installed (`cargo xtask prepare`)")?;
    let t = Instant::now();
    let mut daemons = Children(Vec::new());
    let mut paths = Vec::new();
    // The first daemon has a second monitor, for the round trip's pairs (a QEMU
    // monitor serves one client at a time).
    let second = dir.0.join("q0b.sock");
    for i in 0..DAEMONS {
        let path = dir.0.join(format!("q{i}.sock"));
        let mut cmd = Command::new(&binary);
        let mut monitor = |id: &str, path: &Path| {
            cmd.arg("--chardev")
                .arg(format!(
                    "socket,path={},server=on,wait=off,id={id}",
                    path.display()
                ))
                .args(["--monitor", &format!("chardev={id}")]);
        };
        monitor("m0", &path);
        if i == 0 {
            monitor("m1", &second);
        }
        daemons
            .0
            .push(cmd.stdin(Stdio::null()).stdout(Stdio::null()).spawn()?);
        paths.push(path);
    }
    while !paths.iter().chain([&second]).all(|p| p.exists()) {
        if t.elapsed() > Duration::from_secs(60) {
            return Err("the storage daemons did not all listen within 60 s".into());
        }
        for d in &mut daemons.0 {
            if let Some(status) = d.try_wait()? {
                return Err(format!("a storage daemon exited: {status}").into());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "{DAEMONS} qemu-storage-daemons listening after {}",
        fmt_duration(t.elapsed())
    );
    // One daemon first: the round trip users see (QEMU's own work included), tokio
    // against blocking.
    let one = dir.0.join("one");
    std::fs::write(&one, format!("{}\n", paths[0].display()))?;
    let single = Fleet {
        label: "1 qemu-storage-daemon",
        sockets: &one,
        per_socket: 1,
        conns: 1,
        command: "query-version",
        drivers: &["ours-blocking", "ours-tokio", "floor"],
        servers: &[daemons.0[0].id()],
        seconds: opts.seconds.min(2.0),
        kind: Kind::Single,
    };
    let runs = run_fleet(programs, &single, opts)?;
    judge_fleet(&single, &runs);
    round_trip(
        programs,
        [&paths[0], &second],
        "query-version",
        single.label,
        opts,
    )?;
    let sockets = dir.0.join("sockets");
    let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
    std::fs::write(&sockets, list)?;
    let drivers = ["ours-blocking", "ours-tokio", "qmp", "qapi", "floor"];
    let fleet = Fleet {
        label: "100 qemu-storage-daemons",
        sockets: &sockets,
        per_socket: 1,
        conns: DAEMONS,
        command: "query-version",
        drivers: &drivers,
        servers: &daemons.0.iter().map(Child::id).collect::<Vec<_>>(),
        seconds: opts.seconds,
        kind: Kind::Daemons,
    };
    let runs = run_fleet(programs, &fleet, opts)?;
    judge_fleet(&fleet, &runs);
    instructions_per_call(programs, &fleet, opts)
}

/// The CPU-per-call target of a fleet of real servers, by user-space instructions
/// (callgrind, every thread, connecting included): each call costs every driver the same
/// two system calls (one send, one receive; counted with `strace -c`), and the kernel's
/// time for them, with the servers loading both cores, swamps the clients' difference in
/// wall CPU. Drivers in turn, reversed every other round.
fn instructions_per_call(programs: &Programs, fleet: &Fleet<'_>, opts: &Opts) -> Result {
    const DRIVERS: [&str; 3] = ["ours-tokio", "qmp", "qapi"];
    // Instruction counts hardly move between rounds: two suffice.
    let (seconds, rounds) = (opts.seconds.min(3.0), 2);
    println!(
        "\n{}, client CPU per call by instructions (callgrind), {seconds} s per driver, {rounds} rounds:",
        fleet.label
    );
    let mut per_call: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 0..rounds {
        let mut order = DRIVERS.to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        for driver in order {
            let mut cmd = Command::new(&programs.client);
            cmd.args([driver, "calls"]).arg(fleet.sockets).args([
                fleet.per_socket.to_string(),
                seconds.to_string(),
                fleet.command.to_owned(),
            ]);
            let (instructions, out) = super::baseline::instructions_and_output(&cmd)?;
            let sample = parse_result(&String::from_utf8_lossy(&out.stdout), "");
            let calls = sample.get("calls");
            if sample.error.is_some() || calls.is_nan() || calls <= 0.0 {
                let why = sample.error.as_deref().unwrap_or("no calls");
                println!("  {driver:<14} FAILED: {why}");
                continue;
            }
            let n = instructions as f64 / calls;
            println!(
                "  {driver:<14} {calls:>8.0} calls  {:>7.1}k instructions/call",
                n / 1e3
            );
            per_call.entry(driver).or_default().push(n);
        }
    }
    for (peer, name) in PEERS {
        let ratios = per_call
            .get("ours-tokio")
            .zip(per_call.get(peer))
            .map(|(a, b)| a.iter().zip(b).map(|(a, b)| a / b).collect())
            .unwrap_or_default();
        ratio_verdict(
            &format!(
                "{}: tokio / {name} CPU per call (instructions)",
                fleet.label
            ),
            ratios,
            Ahead::Lower,
        );
    }
    Ok(())
}

fn events(programs: &Programs, reps: usize) -> Result {
    let dir = SocketDir::new()?;
    let _server = start_server(programs, &dir.0, EVENTS)?;
    let socket = dir.0.join("ev.sock").display().to_string();
    let cases: [(&str, &str); 8] = [
        ("ours-blocking", "all"),
        ("ours-blocking", "bytype"),
        ("ours-tokio", "all"),
        ("ours-tokio", "bytype"),
        ("qmp", "all"),
        ("qmp", "bytype"),
        ("qapi", "all"),
        ("floor", "all"),
    ];
    println!(
        "\nevent ingest: {EVENTS} events streamed by the fake server (STOP, RESUME, JOB_STATUS_CHANGE with data), {reps} interleaved reps:"
    );
    let mut rates: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    let mut skip = Vec::new();
    for rep in 0..reps {
        let mut order = cases.to_vec();
        if rep % 2 == 1 {
            order.reverse();
        }
        for case in order {
            if skip.contains(&case.0) {
                continue;
            }
            let args = [
                case.0.to_owned(),
                "events".into(),
                socket.clone(),
                EVENTS.to_string(),
                case.1.into(),
            ];
            let s = client(programs, &args, Duration::from_secs(120))?;
            if unavailable(&s) {
                skip.push(case.0);
                continue;
            }
            if let Some(e) = &s.error {
                println!("  {} {}: FAILED: {e}", case.0, case.1);
                continue;
            }
            let expected = (EVENTS / 3) as f64;
            if (s.get("matched") - expected).abs() > 1.0 {
                println!(
                    "  {} {}: matched {} JOB_STATUS_CHANGE, expected {expected}",
                    case.0,
                    case.1,
                    s.get("matched")
                );
            }
            rates.entry(case).or_default().push(s.get("rate"));
        }
    }
    let rate = |case: (&str, &str)| rates.get(&case).and_then(|v| spread(v.clone()));
    let floor = rate(("floor", "all")).map_or(f64::NAN, |m| m.0);
    for case in cases {
        match rate(case) {
            None => println!("  {:<14} {:<7} not measured", case.0, case.1),
            Some((m, lo, hi)) => println!(
                "  {:<14} {:<7} {:>6.2} M events/s ({:.2}-{:.2}), {:.2} of the floor",
                case.0,
                case.1,
                m / 1e6,
                lo / 1e6,
                hi / 1e6,
                m / floor
            ),
        }
    }
    // The target is absolute; the machine's load moves it (see the floor).
    println!("  targets (typed ingest, both drivers):");
    for ours in OURS {
        let who = ours.trim_start_matches("ours-");
        let m = rate((ours, "all"));
        verdict(
            &format!("{who}: typed events into qmp::Event"),
            "2.00 M/s",
            &m.map_or("n/a".into(), |m| format!("{:.2} M/s", m.0 / 1e6)),
            m.is_some_and(|m| m.0 > 2e6),
        );
    }
    // Runs are separate processes, so ratios are of medians (interleaved reps).
    println!("  against the peers, for reference:");
    for ours in OURS {
        let who = ours.trim_start_matches("ours-");
        for variant in ["all", "bytype"] {
            for (peer, name) in PEERS {
                let peer_variant = if peer == "qapi" { "all" } else { variant };
                let ratio = match (rate((ours, variant)), rate((peer, peer_variant))) {
                    (Some(a), Some(b)) => vec![a.0 / b.0],
                    _ => vec![],
                };
                let what = if variant == "all" {
                    "typed events"
                } else {
                    "events by type"
                };
                judge::reference(&format!("{who} / {name}: {what}"), ratio);
            }
        }
    }
    Ok(())
}
