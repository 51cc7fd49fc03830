//! Transport benchmarks behind `cargo xtask bench transport` (run in release): each
//! number is compared with a floor measured in the same run.
//!
//! - `query-status` round trips against live QEMU, versus a minimal std-only client
//!   that sends the same bytes on a second monitor of the same QEMU (interleaved).
//! - connect-to-ready (connect, greeting, `qmp_capabilities` with oob), versus the same
//!   handshake done by the minimal client.
//! - event ingest from a local fake server writing 100,000 QEMU-shaped events: raw
//!   events and typed events, versus a floor that only splits lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Instant;

use qmp_types::client::{Endpoint, Launcher, Options, Qmp};
use qmp_types::{Command, EventSet, Timestamp};

const CAPS: &[u8] =
    b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]},\"id\":1}";

struct QueryStatus;

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct StatusInfo {
    running: bool,
    status: String,
}

impl Command for QueryStatus {
    const NAME: &'static str = "query-status";
    const HAS_ARGUMENTS: bool = false;
    const ALLOW_OOB: bool = false;
    const SUCCESS_RESPONSE: bool = true;
    type Returns = StatusInfo;
    fn write_arguments(&self, _: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        Ok(())
    }
    fn decode_return(json: &str) -> Result<StatusInfo, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// A typed event set of the shape the generator emits (name match, data decoded).
#[allow(dead_code)]
enum Ev {
    Stop(Timestamp),
    Resume(Timestamp),
    Other(String),
}

impl EventSet for Ev {
    fn decode_event(
        name: &str,
        _data: Option<&str>,
        ts: Timestamp,
    ) -> Result<Ev, serde_json::Error> {
        Ok(match name {
            "STOP" => Ev::Stop(ts),
            "RESUME" => Ev::Resume(ts),
            other => Ev::Other(other.to_owned()),
        })
    }
}

/// The floor: std only, pre-formatted request bytes, line reads, substring id check.
struct Floor {
    r: BufReader<UnixStream>,
    w: UnixStream,
    line: Vec<u8>,
    id: u64,
}

impl Floor {
    fn connect(path: &Path) -> Floor {
        let s = UnixStream::connect(path).expect("connect");
        let mut f = Floor {
            r: BufReader::new(s.try_clone().expect("clone")),
            w: s,
            line: Vec::new(),
            id: 1,
        };
        f.read_line(); // greeting
        f.w.write_all(CAPS).expect("write");
        f.read_line();
        f
    }

    fn read_line(&mut self) {
        self.line.clear();
        self.r.read_until(b'\n', &mut self.line).expect("read");
    }

    fn query_status(&mut self) {
        self.id += 1;
        let req = format!("{{\"execute\":\"query-status\",\"id\":{}}}", self.id);
        self.w.write_all(req.as_bytes()).expect("write");
        let want = format!("\"id\": {}}}", self.id);
        loop {
            self.read_line();
            if self.line.starts_with(b"{\"return\"")
                && self.line.windows(want.len()).any(|w| w == want.as_bytes())
            {
                return;
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Mean of the fastest 90% of sorted samples (drops scheduler hiccups).
fn trimmed_mean(sorted: &[f64]) -> f64 {
    let keep = &sorted[..(sorted.len() * 9 / 10).max(1)];
    keep.iter().sum::<f64>() / keep.len() as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn verdict(what: &str, ours: f64, floor: f64, unit: &str, limit_pct: f64) {
    let pct = (ours / floor - 1.0) * 100.0;
    let met = pct <= limit_pct;
    println!(
        "{what}: ours {ours:.1} {unit}, floor {floor:.1} {unit}: {pct:+.1}% (target within {limit_pct}%) {}",
        if met { "MET" } else { "NOT MET" }
    );
}

fn round_trips(rounds: usize, per_round: usize) {
    let dir = std::env::temp_dir().join(format!("qmp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let floor_sock = dir.join("floor.sock");
    let vm = Launcher::qemu()
        .args([
            "-chardev".to_owned(),
            format!(
                "socket,id=floor,path={},server=on,wait=off",
                floor_sock.display()
            ),
            "-mon".to_owned(),
            "chardev=floor,mode=control".to_owned(),
        ])
        .spawn()
        .expect("QEMU (see the install instructions above)");
    let qmp = vm.connect().expect("connect");
    let mut floor = Floor::connect(&floor_sock);
    for _ in 0..200 {
        floor.query_status();
        qmp.execute(&QueryStatus).expect("query-status");
    }
    let (mut ours_p50, mut floor_p50, mut ours_mean, mut floor_mean) =
        (vec![], vec![], vec![], vec![]);
    let (mut ours_trim, mut floor_trim) = (vec![], vec![]);
    for _ in 0..rounds {
        let mut f = Vec::with_capacity(per_round);
        let mut o = Vec::with_capacity(per_round);
        for _ in 0..per_round {
            let t = Instant::now();
            floor.query_status();
            f.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            qmp.execute(&qmp_types::qmp::commands::QueryStatus)
                .expect("query-status");
            o.push(t.elapsed().as_secs_f64() * 1e6);
        }
        floor_mean.push(f.iter().sum::<f64>() / f.len() as f64);
        ours_mean.push(o.iter().sum::<f64>() / o.len() as f64);
        f.sort_by(f64::total_cmp);
        o.sort_by(f64::total_cmp);
        floor_p50.push(percentile(&f, 0.5));
        ours_p50.push(percentile(&o, 0.5));
        floor_trim.push(trimmed_mean(&f));
        ours_trim.push(trimmed_mean(&o));
    }
    println!(
        "query-status round trip ({rounds} rounds x {per_round} calls each, interleaved call by call; median over rounds)"
    );
    verdict("  p50 ", median(ours_p50), median(floor_p50), "µs", 5.0);
    verdict(
        "  mean of the fastest 90%",
        median(ours_trim),
        median(floor_trim),
        "µs",
        5.0,
    );
    println!(
        "  (plain mean, scheduling noise of a shared box included: ours {:.1} µs, floor {:.1} µs)",
        median(ours_mean),
        median(floor_mean)
    );
    drop(vm);
    let _ = std::fs::remove_dir_all(&dir);
}

fn connect_to_ready(n: usize) {
    let vm = Launcher::qemu().spawn().expect("QEMU");
    let path = vm.socket_path().to_owned();
    // Warm up (and wait until the monitor listens).
    drop(vm.connect().expect("connect"));
    let opts = Options::new();
    let (mut f, mut o) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let floor = |f: &mut Vec<f64>| {
        let t = Instant::now();
        let floor = Floor::connect(&path);
        f.push(t.elapsed().as_secs_f64() * 1e6);
        drop(floor);
    };
    let ours = |o: &mut Vec<f64>| {
        let t = Instant::now();
        let qmp = Qmp::connect(Endpoint::Unix(path.clone()), &opts).expect("connect");
        o.push(t.elapsed().as_secs_f64() * 1e6);
        drop(qmp);
    };
    // The order flips every pair: QEMU is still tidying the last connection up when
    // the next one arrives, and the second of a pair would always pay for that.
    for i in 0..n {
        if i % 2 == 0 {
            floor(&mut f);
            ours(&mut o);
        } else {
            ours(&mut o);
            floor(&mut f);
        }
    }
    f.sort_by(f64::total_cmp);
    o.sort_by(f64::total_cmp);
    println!("connect-to-ready ({n} connects each, interleaved, order flipped every pair; socket connect + greeting + qmp_capabilities with oob)");
    verdict(
        "  p50 ",
        percentile(&o, 0.5),
        percentile(&f, 0.5),
        "µs",
        10.0,
    );
    verdict(
        "  mean of the fastest 90%",
        trimmed_mean(&o),
        trimmed_mean(&f),
        "µs",
        10.0,
    );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "  (plain mean: ours {:.1} µs, floor {:.1} µs)",
        mean(&o),
        mean(&f)
    );
}

/// Serves one connection: greeting, the capabilities reply, then all events at once.
fn fake_server(listener: UnixListener, payload: Vec<u8>, connections: usize) {
    const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n";
    for _ in 0..connections {
        let (mut s, _) = listener.accept().expect("accept");
        s.write_all(GREETING).expect("greeting");
        let mut got = Vec::new();
        let mut b = [0u8; 256];
        while !got.ends_with(b"}")
            || got.iter().filter(|&&c| c == b'{').count()
                != got.iter().filter(|&&c| c == b'}').count()
        {
            let n = s.read(&mut b).expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&b[..n]);
        }
        s.write_all(b"{\"return\": {}, \"id\": 1}\r\n")
            .expect("reply");
        let _ = s.write_all(&payload);
    }
}

fn event_ingest(n: usize, reps: usize) {
    let mut payload = Vec::with_capacity(n * 84);
    for i in 0..n {
        let name = if i % 2 == 0 { "STOP" } else { "RESUME" };
        payload.extend_from_slice(
            format!(
                "{{\"timestamp\": {{\"seconds\": {}, \"microseconds\": {}}}, \"event\": \"{name}\"}}\r\n",
                1_795_316_533 + i / 1000,
                (i * 7919) % 1_000_000
            )
            .as_bytes(),
        );
    }
    let bytes = payload.len();
    let dir: PathBuf = std::env::temp_dir().join(format!("qmp-bench-ev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("fake.sock");
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).expect("bind");
    let server = std::thread::spawn(move || fake_server(listener, payload, 4 * reps));
    let opts = Options::new().event_capacity(1024);
    let (mut floor, mut raw, mut typed, mut generated) = (vec![], vec![], vec![], vec![]);
    for _ in 0..reps {
        // Floor: line split only (after the same handshake).
        let mut f = Floor::connect(&sock);
        let t = Instant::now();
        let mut count = 0;
        while count < n {
            f.read_line();
            if f.line.starts_with(b"{\"timestamp\"") {
                count += 1;
            }
        }
        floor.push(n as f64 / t.elapsed().as_secs_f64());
        drop(f);

        let q = Qmp::connect(Endpoint::Unix(sock.clone()), &opts).expect("connect");
        let t = Instant::now();
        let mut names = 0usize;
        for _ in 0..n {
            let e = q.next_event(None).expect("event").expect("some");
            names += e.name().len();
        }
        raw.push(n as f64 / t.elapsed().as_secs_f64());
        assert!(names >= 4 * n);
        drop(q);

        let q = Qmp::connect(Endpoint::Unix(sock.clone()), &opts).expect("connect");
        let t = Instant::now();
        let mut stops = 0usize;
        for _ in 0..n {
            let e = q.next_event(None).expect("event").expect("some");
            if let Ev::Stop(_) = e.decode::<Ev>().expect("typed") {
                stops += 1;
            }
        }
        typed.push(n as f64 / t.elapsed().as_secs_f64());
        assert_eq!(stops, n / 2);
        drop(q);
        let q = Qmp::connect(Endpoint::Unix(sock.clone()), &opts).expect("connect");
        let t = Instant::now();
        let mut stops = 0usize;
        for _ in 0..n {
            let e = q.next_event(None).expect("event").expect("some");
            if let qmp_types::qmp::Event::Stop(..) =
                e.decode::<qmp_types::qmp::Event>().expect("typed")
            {
                stops += 1;
            }
        }
        generated.push(n as f64 / t.elapsed().as_secs_f64());
        assert_eq!(stops, n / 2);
        drop(q);
    }
    server.join().expect("server");
    let _ = std::fs::remove_dir_all(&dir);
    let (floor, raw, typed, generated) =
        (median(floor), median(raw), median(typed), median(generated));
    println!(
        "event ingest ({n} events, {:.1} MB in one write, median of {reps} reps)",
        bytes as f64 / 1e6
    );
    println!("  floor (line split only): {:.2} M events/s", floor / 1e6);
    println!(
        "  raw events (framed, enveloped, queued as Event): {:.2} M events/s",
        raw / 1e6
    );
    println!(
        "  typed events, minimal hand-written EventSet: {:.2} M events/s",
        typed / 1e6
    );
    println!(
        "  typed events, generated qmp_types::qmp::Event: {:.2} M events/s (target > 2 M) {}",
        generated / 1e6,
        if generated > 2e6 { "MET" } else { "NOT MET" }
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let which =
        |name: &str| args.iter().all(|a| a.starts_with("--")) || args.iter().any(|a| a == name);
    if cfg!(debug_assertions) {
        println!("warning: debug build; run with --release for meaningful numbers");
    }
    if which("roundtrip") {
        round_trips(if quick { 3 } else { 7 }, if quick { 500 } else { 2000 });
    }
    if which("connect") {
        connect_to_ready(if quick { 100 } else { 1000 });
    }
    if which("events") {
        event_ingest(100_000, if quick { 3 } else { 5 });
    }
}
