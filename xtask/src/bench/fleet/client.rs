//! `fleet-client DRIVER MODE ...`: the client side of `cargo xtask bench fleet`, built in a
//! scratch crate under the target folder (this file is its `src/main.rs`, beside
//! `ours.rs` and `peers.rs`; none of them is a module of xtask).
//!
//! One process per measurement, so that its memory and CPU are the driver's alone:
//!
//! - `fleet-client DRIVER calls SOCKETS_FILE PER_SOCKET SECONDS COMMAND`: opens
//!   PER_SOCKET connections to every socket listed in SOCKETS_FILE (one path a line),
//!   measures the resident memory they add while idle, then has every connection call
//!   COMMAND (`query-status` or `query-version`) in a loop for SECONDS, timing each call.
//! - `fleet-client DRIVER events SOCKET N VARIANT`: one connection, one command that
//!   makes the fake server stream N events, and the time until N have been taken in:
//!   VARIANT `all` decodes each into the driver's event type, `bytype` decodes only the
//!   `JOB_STATUS_CHANGE` events into that event's own type.
//!
//! - `fleet-client pair roundtrip SOCKET_B SOCKET_T SECONDS COMMAND`: the round trip,
//!   our blocking client on SOCKET_B against our tokio client on SOCKET_T (two monitors
//!   of one server: a QEMU monitor serves one client at a time), in
//!   alternating batches of [`BATCH`] calls (the order flipped every pair), so that both
//!   see the same machine state; reports the median over pairs of each pair's p50 ratio.
//!
//! Prints one line, `RESULT key=value ...`, which xtask reads.
//! Drivers: `ours-blocking` and `ours-tokio` (ours.rs), `qmp` (qmp 0.1.1; `qmp16` with
//! a 16-slot event buffer), `qapi`
//! (qapi 0.15) and `floor` (std, a thread per connection, no JSON) (peers.rs).

mod ours;
mod peers;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The command every connection calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    QueryStatus,
    QueryVersion,
}

impl Cmd {
    pub fn name(self) -> &'static str {
        match self {
            Cmd::QueryStatus => "query-status",
            Cmd::QueryVersion => "query-version",
        }
    }
}

/// How events are taken in (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    All,
    ByType,
}

/// A client whose calls block: a thread per connection.
pub trait Blocking {
    type Conn: Send + 'static;
    fn connect(path: &Path) -> Result<Self::Conn, String>;
    fn call(conn: &mut Self::Conn, cmd: Cmd) -> Result<(), String>;
    /// Takes in `n` events after the command that starts them; returns how many matched.
    fn events(path: &Path, n: usize, variant: Variant) -> Result<usize, String>;
}

/// An async client on tokio: a task per connection.
pub trait Async {
    type Conn: Send + 'static;
    fn connect(path: PathBuf) -> impl Future<Output = Result<Self::Conn, String>> + Send;
    fn call(conn: &mut Self::Conn, cmd: Cmd) -> impl Future<Output = Result<(), String>> + Send;
    fn events(
        path: PathBuf,
        n: usize,
        variant: Variant,
    ) -> impl Future<Output = Result<usize, String>> + Send;
}

fn main() {
    raise_nofile();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args[..] {
        [driver, "calls", sockets, per_socket, seconds, command] => {
            let sockets: Vec<PathBuf> = std::fs::read_to_string(sockets)
                .expect("sockets file")
                .lines()
                .filter(|l| !l.is_empty())
                .map(PathBuf::from)
                .collect();
            let per: usize = per_socket.parse().expect("PER_SOCKET");
            let paths: Vec<PathBuf> = sockets
                .iter()
                .flat_map(|s| std::iter::repeat_n(s.clone(), per))
                .collect();
            let seconds = Duration::from_secs_f64(seconds.parse().expect("SECONDS"));
            calls(driver, &paths, seconds, command_of(command))
        }
        ["pair", "roundtrip", socket_b, socket_t, seconds, command] => pair(
            [Path::new(socket_b), Path::new(socket_t)],
            Duration::from_secs_f64(seconds.parse().expect("SECONDS")),
            command_of(command),
        ),
        [driver, "events", socket, n, variant] => {
            let variant = match variant {
                "all" => Variant::All,
                "bytype" => Variant::ByType,
                other => panic!("unknown variant {other}"),
            };
            events(driver, Path::new(socket), n.parse().expect("N"), variant)
        }
        _ => Err("usage: fleet-client DRIVER calls SOCKETS_FILE PER_SOCKET SECONDS COMMAND | DRIVER events SOCKET N all|bytype".into()),
    };
    match result {
        Ok(line) => println!("RESULT {line}"),
        Err(e) => {
            println!("RESULT error={}", e.replace(char::is_whitespace, "_"));
            std::process::exit(1);
        }
    }
}

fn command_of(name: &str) -> Cmd {
    match name {
        "query-status" => Cmd::QueryStatus,
        "query-version" => Cmd::QueryVersion,
        other => panic!("unknown command {other}"),
    }
}

/// Calls per batch of [`pair`]: enough for a stable p50, short enough that the machine
/// does not change within a pair.
pub const BATCH: usize = 200;

/// The median of `v` (sorted here); NaN when empty.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Our tokio client against our blocking client, batch by batch on one server: the
/// blocking batch on this thread, the tokio batch in a task of the multi-threaded
/// runtime (where users' calls run), each timed call by call.
fn pair(paths: [&Path; 2], seconds: Duration, cmd: Cmd) -> Result<String, String> {
    if !ours::TOKIO_AVAILABLE {
        return Err("driver ours-tokio is not available".into());
    }
    let rt = runtime();
    let mut blocking = <ours::Blocking as Blocking>::connect(paths[0])?;
    let mut tokio = Some(rt.block_on(<ours::Tokio as Async>::connect(paths[1].to_owned()))?);
    let mut run_blocking = || -> Result<f64, String> {
        let mut lat = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let t = Instant::now();
            <ours::Blocking as Blocking>::call(&mut blocking, cmd)?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
        Ok(median(&mut lat))
    };
    let mut run_tokio = || -> Result<f64, String> {
        let mut conn = tokio.take().ok_or("lost the tokio connection")?;
        let task = rt.spawn(async move {
            let mut lat = Vec::with_capacity(BATCH);
            for _ in 0..BATCH {
                let t = Instant::now();
                if let Err(e) = <ours::Tokio as Async>::call(&mut conn, cmd).await {
                    return (conn, Err(e));
                }
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
            (conn, Ok(median(&mut lat)))
        });
        let (conn, r) = rt.block_on(task).map_err(|e| e.to_string())?;
        tokio = Some(conn);
        r
    };
    let (mut ratios, mut b50, mut t50) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    while start.elapsed() < seconds || ratios.is_empty() {
        let (b, t) = if ratios.len() % 2 == 0 {
            let b = run_blocking()?;
            (b, run_tokio()?)
        } else {
            let t = run_tokio()?;
            (run_blocking()?, t)
        };
        ratios.push(t / b);
        b50.push(b);
        t50.push(t);
    }
    Ok(format!(
        "pairs={} ratio={:.4} blocking_p50_us={:.1} tokio_p50_us={:.1}",
        ratios.len(),
        median(&mut ratios),
        median(&mut b50),
        median(&mut t50),
    ))
}

fn calls(driver: &str, paths: &[PathBuf], seconds: Duration, cmd: Cmd) -> Result<String, String> {
    match driver {
        "ours-blocking" => run_blocking::<ours::Blocking>(paths, seconds, cmd),
        "ours-tokio" if ours::TOKIO_AVAILABLE => run_async::<ours::Tokio>(paths, seconds, cmd),
        "qmp" => run_async::<peers::Qmp011>(paths, seconds, cmd),
        "qmp16" => run_async::<peers::Qmp011Small>(paths, seconds, cmd),
        "qapi" => run_async::<peers::Qapi015>(paths, seconds, cmd),
        "floor" => run_blocking::<peers::Floor>(paths, seconds, cmd),
        other => Err(format!("driver {other} is not available")),
    }
}

fn events(driver: &str, path: &Path, n: usize, variant: Variant) -> Result<String, String> {
    let t = Instant::now();
    let matched = match driver {
        "ours-blocking" => ours::Blocking::events(path, n, variant)?,
        "ours-tokio" if ours::TOKIO_AVAILABLE => {
            runtime().block_on(ours::Tokio::events(path.to_owned(), n, variant))?
        }
        "qmp" => runtime().block_on(peers::Qmp011::events(path.to_owned(), n, variant))?,
        "qapi" => runtime().block_on(peers::Qapi015::events(path.to_owned(), n, variant))?,
        "floor" => peers::Floor::events(path, n, variant)?,
        other => return Err(format!("driver {other} is not available")),
    };
    // The connect and handshake are in `t` too: a fraction of a millisecond of the run.
    let secs = t.elapsed().as_secs_f64();
    Ok(format!(
        "events={n} matched={matched} seconds={secs:.6} rate={:.0}",
        n as f64 / secs
    ))
}

/// Retries `connect` while the listener's backlog is full (a non-blocking connect to a
/// Unix socket fails with EAGAIN then), up to about 5 s.
pub async fn retrying<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    mut connect: impl FnMut() -> F,
) -> Result<T, String> {
    let mut tries = 0;
    loop {
        match connect().await {
            Ok(c) => return Ok(c),
            Err(e) if tries < 500 => {
                let _ = e;
                tries += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
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

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// User + system CPU time of this process (all threads) so far.
fn cpu() -> Duration {
    // SAFETY: an all-zero `rusage` is valid; RUSAGE_SELF with a pointer to a live local.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// What every run reports, from the samples of all connections.
struct Report {
    conns: usize,
    rss_base: u64,
    rss_conns: u64,
    rss_idle: u64,
    connect: Duration,
    elapsed: Duration,
    cpu: Duration,
    latencies: Vec<u64>,
    errors: usize,
}

impl Report {
    fn line(mut self) -> String {
        self.latencies.sort_unstable();
        let calls = self.latencies.len();
        let pct = |p: f64| {
            self.latencies
                .get(((calls.max(1) - 1) as f64 * p).round() as usize)
                .map_or(0.0, |&ns| ns as f64 / 1e3)
        };
        let per = |bytes: u64| bytes.saturating_sub(self.rss_base) as f64 / self.conns as f64;
        format!(
            "conns={} calls={calls} errors={} seconds={:.3} rate={:.0} p50_us={:.1} p99_us={:.1} cpu_us_per_call={:.2} conn_bytes={:.0} idle_bytes={:.0} connect_s={:.3}",
            self.conns,
            self.errors,
            self.elapsed.as_secs_f64(),
            calls as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            self.cpu.as_secs_f64() * 1e6 / calls.max(1) as f64,
            per(self.rss_conns),
            per(self.rss_idle),
            self.connect.as_secs_f64(),
        )
    }
}

/// Waits this long before reading the resident memory, so that freed buffers and the
/// last handshakes settle.
const SETTLE: Duration = Duration::from_millis(300);

/// Connects every path in turn (the listener's backlog stays short), keeps the
/// connections idle and measures them, then a thread per connection calls in a loop.
fn run_blocking<D: Blocking>(
    paths: &[PathBuf],
    seconds: Duration,
    cmd: Cmd,
) -> Result<String, String> {
    let rss_base = rss();
    let t = Instant::now();
    let mut conns = Vec::with_capacity(paths.len());
    for p in paths {
        conns.push(D::connect(p)?);
    }
    let connect = t.elapsed();
    std::thread::sleep(SETTLE);
    let rss_conns = rss();
    // A thread per connection, parked until all are.
    let ready = Arc::new(AtomicUsize::new(0));
    let start = Arc::new((Mutex::new(None::<Instant>), Condvar::new()));
    let mut threads = Vec::with_capacity(conns.len());
    for mut conn in conns {
        let (ready, start) = (ready.clone(), start.clone());
        let thread = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                ready.fetch_add(1, Ordering::SeqCst);
                let (lock, cv) = &*start;
                let t0 = {
                    let mut g = lock.lock().unwrap();
                    loop {
                        if let Some(t0) = *g {
                            break t0;
                        }
                        g = cv.wait(g).unwrap();
                    }
                };
                let deadline = t0 + seconds;
                let mut lat = Vec::new();
                let mut errors = 0;
                loop {
                    let t = Instant::now();
                    if t >= deadline {
                        break;
                    }
                    match D::call(&mut conn, cmd) {
                        Ok(()) => lat.push(t.elapsed().as_nanos() as u64),
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                }
                (lat, errors)
            })
            .map_err(|e| format!("spawn: {e}"))?;
        threads.push(thread);
    }
    while ready.load(Ordering::SeqCst) < threads.len() {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(SETTLE);
    let rss_idle = rss();
    let cpu0 = cpu();
    let t0 = Instant::now();
    *start.0.lock().unwrap() = Some(t0);
    start.1.notify_all();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (lat, e) = t.join().map_err(|_| "a connection thread panicked")?;
        latencies.extend(lat);
        errors += e;
    }
    let elapsed = t0.elapsed();
    let cpu = cpu() - cpu0;
    Ok(Report {
        conns: paths.len(),
        rss_base,
        rss_conns,
        rss_idle,
        connect,
        elapsed,
        cpu,
        latencies,
        errors,
    }
    .line())
}

/// The runtime of every async driver: multi-threaded, a worker per core.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// At most this many connections handshake at once (a Unix listener's backlog is finite).
const CONNECTING: usize = 64;

/// Connects every path (at most [`CONNECTING`] at once), keeps the connections idle and
/// measures them, then a task per connection calls in a loop.
fn run_async<D: Async>(paths: &[PathBuf], seconds: Duration, cmd: Cmd) -> Result<String, String> {
    let rt = runtime();
    rt.block_on(async {
        // Start the workers before the baseline, so that it includes them.
        tokio::task::yield_now().await;
        let rss_base = rss();
        let t = Instant::now();
        let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTING));
        let mut pending = Vec::with_capacity(paths.len());
        for p in paths {
            let (gate, p) = (gate.clone(), p.clone());
            pending.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore");
                D::connect(p).await
            }));
        }
        let mut conns = Vec::with_capacity(paths.len());
        for c in pending {
            conns.push(c.await.map_err(|e| e.to_string())??);
        }
        let connect = t.elapsed();
        tokio::time::sleep(SETTLE).await;
        let rss_conns = rss();
        let ready = Arc::new(AtomicUsize::new(0));
        let (go, started) = tokio::sync::watch::channel(None::<Instant>);
        let mut tasks = Vec::with_capacity(conns.len());
        for mut conn in conns {
            let (ready, mut started) = (ready.clone(), started.clone());
            tasks.push(tokio::spawn(async move {
                ready.fetch_add(1, Ordering::SeqCst);
                let t0: Instant = {
                    let set = started.wait_for(Option::is_some).await.expect("start");
                    set.expect("set")
                };
                let deadline = t0 + seconds;
                let mut lat = Vec::new();
                let mut errors = 0;
                loop {
                    let t = Instant::now();
                    if t >= deadline {
                        break;
                    }
                    match D::call(&mut conn, cmd).await {
                        Ok(()) => lat.push(t.elapsed().as_nanos() as u64),
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                }
                (lat, errors, conn)
            }));
        }
        drop(started);
        while ready.load(Ordering::SeqCst) < tasks.len() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(SETTLE).await;
        let rss_idle = rss();
        let cpu0 = cpu();
        let t0 = Instant::now();
        go.send(Some(t0)).map_err(|_| "no task waits")?;
        let mut latencies = Vec::new();
        let mut errors = 0;
        let mut keep = Vec::with_capacity(tasks.len());
        for t in tasks {
            let (lat, e, conn) = t.await.map_err(|e| e.to_string())?;
            latencies.extend(lat);
            errors += e;
            keep.push(conn); // dropped after the clock stops
        }
        let elapsed = t0.elapsed();
        let cpu = cpu() - cpu0;
        Ok(Report {
            conns: paths.len(),
            rss_base,
            rss_conns,
            rss_idle,
            connect,
            elapsed,
            cpu,
            latencies,
            errors,
        }
        .line())
    })
}
