//! `cargo xtask bench reach`: how fast the other routes to a monitor are, each against a
//! baseline measured in the same run, interleaved call by call (run in release).
//!
//! - libvirt: `query-status` through `libvirt::Domain` (virDomainQemuMonitorCommand) on a
//!   paused domain that needs no image, versus a direct Unix socket to a QEMU of the same
//!   shape started by the launcher, and versus `virsh qemu-monitor-command` as a
//!   subprocess (what a script would do); target: at least 10x faster than virsh.
//! - TLS: `query-status` over the TLS monitor of one QEMU versus its plain TCP monitor;
//!   target: within 20%.
//!
//! Each round times every route in turn, call by call; a round's figure is the median of
//! its calls, and the verdict is the median over the rounds of the per-round ratios,
//! printed with their spread (lowest and highest round).

use std::process::Command;
use std::time::{Duration, Instant};

use qmp_client::libvirt::Domain;
use qmp_client::monitor::Monitor;
use qmp_client::{tls, Endpoint, Launcher, Options, Qmp};

const URI: &str = "qemu:///system";
const NAME: &str = "qapi-bench-reach";
const UUID: &str = "5e7a1c4e-0b4f-4d8e-9a51-3c1f0e6d7b01";

fn virsh(args: &[&str]) -> std::process::Output {
    Command::new("virsh")
        .args(["-c", URI])
        .args(args)
        .output()
        .expect("virsh (run `cargo xtask libvirt setup`)")
}

/// The bench's domain, removed on drop.
struct BenchDomain;

impl BenchDomain {
    fn start() -> BenchDomain {
        let _ = virsh(&["destroy", NAME]);
        let _ = virsh(&["undefine", NAME]);
        let xml = format!(
            "<domain type='qemu'><name>{NAME}</name><uuid>{UUID}</uuid><memory unit='MiB'>64</memory>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
             <emulator>/usr/bin/qemu-system-x86_64</emulator><controller type='usb' model='none'/>\
             <memballoon model='none'/></devices></domain>"
        );
        let file = std::env::temp_dir().join("qapi-bench-reach.xml");
        std::fs::write(&file, xml).unwrap();
        for args in [
            vec!["define", file.to_str().unwrap()],
            vec!["start", "--paused", NAME],
        ] {
            let out = virsh(&args);
            assert!(
                out.status.success(),
                "virsh {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        BenchDomain
    }
}

impl Drop for BenchDomain {
    fn drop(&mut self) {
        let _ = virsh(&["destroy", NAME]);
        let _ = virsh(&["undefine", NAME]);
    }
}

fn time(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `rounds` rounds; in each, calls every route in turn `per_round` times (route
/// `i` only every `every[i]`-th turn) and keeps each route's median, in µs.
fn rounds(
    rounds: usize,
    per_round: usize,
    every: &[usize],
    routes: &mut [&mut dyn FnMut()],
) -> Vec<Vec<f64>> {
    for r in routes.iter_mut() {
        r(); // warm up
    }
    let mut out = vec![Vec::new(); routes.len()];
    for _ in 0..rounds {
        let mut samples = vec![Vec::new(); routes.len()];
        for turn in 0..per_round {
            for (i, r) in routes.iter_mut().enumerate() {
                if turn % every[i] == 0 {
                    samples[i].push(time(*r));
                }
            }
        }
        for (i, s) in samples.into_iter().enumerate() {
            out[i].push(median(s));
        }
    }
    out
}

/// The median ratio `a / b` over rounds and its spread.
fn ratio(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let mut r: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    r.sort_by(f64::total_cmp);
    (r[r.len() / 2], r[0], r[r.len() - 1])
}

fn verdict(what: &str, target: &str, measured: &str, met: bool) {
    let outcome = if met { "met" } else { "MISSED" };
    println!("  {what:<44} target {target:>9}   measured {measured:>22}   {outcome}");
}

fn libvirt(rounds_n: usize) {
    let _dom = BenchDomain::start();
    let dom = Domain::open(URI, NAME).expect("open the bench domain");
    let vm = Launcher::qemu()
        .args(["-machine", "pc", "-m", "64", "-S"])
        .spawn()
        .expect("QEMU");
    let direct = vm.connect().unwrap();
    let request = r#"{"execute":"query-status"}"#;
    let mut via_libvirt = || {
        dom.execute_raw("query-status", None).unwrap();
    };
    let mut via_socket = || {
        direct
            .execute(qmp_client::Request::name("query-status"))
            .unwrap();
    };
    // libvirt's own API called on this thread: the floor of the route, without our worker
    // thread and deadline.
    let conn = virt::connect::Connect::open(Some(URI)).unwrap();
    let raw = conn.lookup_domain_by_name(NAME).unwrap();
    let mut via_virt = || {
        raw.qemu_monitor_command(request, 0).unwrap();
    };
    let mut via_virsh = || {
        let out = virsh(&["qemu-monitor-command", NAME, request]);
        assert!(out.status.success());
    };
    let m = rounds(
        rounds_n,
        100,
        &[1, 1, 10, 1],
        &mut [
            &mut via_libvirt,
            &mut via_socket,
            &mut via_virsh,
            &mut via_virt,
        ],
    );
    let (lv, direct_us, vs) = (
        median(m[0].clone()),
        median(m[1].clone()),
        median(m[2].clone()),
    );
    println!(
        "  query-status round trip, p50 over {rounds_n} rounds: libvirt {lv:.0} µs, direct socket {direct_us:.0} µs, virsh {vs:.0} µs"
    );
    let (r, lo, hi) = ratio(&m[0], &m[3]);
    println!(
        "  libvirt::Domain / virt's call on the caller's thread (libvirt {:.0} µs): {r:.2}x (rounds {lo:.2}x-{hi:.2}x; the worker thread's cost)",
        median(m[3].clone())
    );
    let (r, lo, hi) = ratio(&m[0], &m[1]);
    println!("  libvirt / direct socket: {r:.1}x (rounds {lo:.1}x-{hi:.1}x; no target: libvirtd is a second hop)");
    let (r, lo, hi) = ratio(&m[2], &m[0]);
    verdict(
        "libvirt round trip vs virsh subprocess",
        ">= 10x",
        &format!("{r:.0}x ({lo:.0}x-{hi:.0}x)"),
        r >= 10.0,
    );
}

fn tls_vs_tcp(rounds_n: usize) {
    let vm = tls::launch(
        Launcher::qemu()
            .args([
                "-S",
                "-chardev",
                "socket,id=plain0,host=127.0.0.1,port=0,server=on,wait=off,nodelay=on",
            ])
            .args(["-mon", "chardev=plain0,mode=control"]),
    )
    .expect("QEMU with a TLS monitor");
    let list = vm
        .instance
        .connect()
        .unwrap()
        .execute(qmp_client::Request::name("query-chardev"))
        .unwrap();
    let list: serde_json::Value = serde_json::from_str(list.get()).unwrap();
    let file = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == "plain0")
        .unwrap()["filename"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain_addr = file
        .split("tcp:")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let plain = Qmp::connect(Endpoint::Tcp(plain_addr), &Options::new()).unwrap();
    let stream = vm.connect_tls(Duration::from_secs(5)).unwrap();
    let secure = Qmp::from_stream(stream.relay().unwrap(), &Options::new()).unwrap();
    let mut over_tls = || {
        secure
            .execute(qmp_client::Request::name("query-status"))
            .unwrap();
    };
    let mut over_tcp = || {
        plain
            .execute(qmp_client::Request::name("query-status"))
            .unwrap();
    };
    // For reference: the private Unix monitor of the same QEMU (the relay's client side
    // is a Unix socket too).
    let unix = vm.instance.connect().unwrap();
    let mut over_unix = || {
        unix.execute(qmp_client::Request::name("query-status"))
            .unwrap();
    };
    let m = rounds(
        rounds_n,
        2000,
        &[1, 1, 1],
        &mut [&mut over_tls, &mut over_tcp, &mut over_unix],
    );
    println!(
        "  query-status round trip, p50 over {rounds_n} rounds: TLS (relayed) {:.1} µs, plain TCP {:.1} µs, Unix socket {:.1} µs",
        median(m[0].clone()),
        median(m[1].clone()),
        median(m[2].clone())
    );
    let (r, lo, hi) = ratio(&m[0], &m[1]);
    verdict(
        "TLS round trip vs plain TCP, same QEMU",
        "<= +20%",
        &format!(
            "{:+.1}% ({:+.1}%..{:+.1}%)",
            (r - 1.0) * 100.0,
            (lo - 1.0) * 100.0,
            (hi - 1.0) * 100.0
        ),
        r <= 1.2,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let n = if quick { 3 } else { 7 };
    let which: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "reach ({} load average)",
        load.split_whitespace().next().unwrap_or("?")
    );
    if which.is_empty() || which.contains(&"libvirt") {
        libvirt(n);
    }
    if which.is_empty() || which.contains(&"tls") {
        tls_vs_tcp(n);
    }
}
