//! Typed decoding of a large reply (`query-qmp-schema`, ~240 KB, fetched from a live
//! `qemu-system-x86_64`) against parsing the same bytes into `serde_json::Value`.
//! Run by `cargo xtask bench codegen` (or `cargo bench -p qmp-types --bench decode`);
//! prints `decode typed_ns value_ns bytes ratio lo hi` (medians of alternating runs; the
//! typed/Value ratio per round, its median and 10th-90th percentiles).

use std::hint::black_box;
use std::time::{Duration, Instant};

use qmp_types::client::Launcher;
use qmp_types::{qmp, Command};

/// Times `typed` and `value` alternately, one call each per round (so both see the same
/// machine at the same moment), for at least 30 rounds and about 2 s: the median of each
/// and of the per-round ratio, with the ratio's 10th and 90th percentiles.
fn alternate(mut typed: impl FnMut(), mut value: impl FnMut()) -> (Duration, Duration, [f64; 3]) {
    typed();
    value();
    let (mut ts, mut vs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    while ts.len() < 30 || (start.elapsed() < Duration::from_secs(2) && ts.len() < 2000) {
        let t = Instant::now();
        typed();
        let a = t.elapsed();
        let t = Instant::now();
        value();
        let b = t.elapsed();
        ts.push(a);
        vs.push(b);
        ratios.push(a.as_secs_f64() / b.as_secs_f64().max(1e-12));
    }
    ts.sort();
    vs.sort();
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    (
        ts[n / 2],
        vs[n / 2],
        [ratios[n / 2], ratios[n / 10], ratios[n - 1 - n / 10]],
    )
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let vm = Launcher::qemu()
        .spawn()
        .expect("needs qemu-system-x86_64 10.0.2");
    let q = vm.connect().expect("connect");
    let raw = q
        .execute(qmp_types::client::Request::name("query-qmp-schema"))
        .expect("query-qmp-schema");
    let text = raw.get().to_owned();
    let (typed, value, ratio) = alternate(
        || {
            black_box(
                <qmp::commands::QueryQmpSchema as Command>::decode_return(black_box(&text))
                    .unwrap(),
            );
        },
        || {
            black_box(serde_json::from_str::<serde_json::Value>(black_box(&text)).unwrap());
        },
    );
    // The first three fields are what older trees print (`cargo xtask bench baseline`).
    println!(
        "decode {} {} {} {:.4} {:.4} {:.4}",
        typed.as_nanos(),
        value.as_nanos(),
        text.len(),
        ratio[0],
        ratio[1],
        ratio[2]
    );
}
