//! Typed decoding of a large reply (`query-qmp-schema`, ~240 KB, fetched from a live
//! `qemu-system-x86_64`) against parsing the same bytes into `serde_json::Value`.
//! Run by `cargo xtask bench codegen` (or `cargo bench -p qmp-types --bench decode`);
//! prints `decode typed_ns value_ns bytes`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use qmp_types::client::Launcher;
use qmp_types::{qmp, Command};

fn median(mut f: impl FnMut()) -> Duration {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 30 || (start.elapsed() < Duration::from_secs(2) && times.len() < 2000) {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
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
    let typed = median(|| {
        black_box(
            <qmp::commands::QueryQmpSchema as Command>::decode_return(black_box(&text)).unwrap(),
        );
    });
    let value = median(|| {
        black_box(serde_json::from_str::<serde_json::Value>(black_box(&text)).unwrap());
    });
    println!(
        "decode {} {} {}",
        typed.as_nanos(),
        value.as_nanos(),
        text.len()
    );
}
