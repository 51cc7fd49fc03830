//! Round-trip times of the blocking and the tokio clients against real QEMU
//! (`-machine none`): sequential `query-status` calls, and the tokio client with
//! many calls in flight. `cargo run --release -p qmp-client --features tokio --example roundtrip`.

use std::time::Instant;

use qmp_client::{Endpoint, Launcher, Options, Request};

const N: u32 = 5000;

fn main() {
    let vm = Launcher::qemu().spawn().expect("QEMU");
    let qmp = vm.connect().expect("connect");
    for _ in 0..200 {
        qmp.execute(Request::name("query-status")).unwrap();
    }
    let t = Instant::now();
    for _ in 0..N {
        qmp.execute(Request::name("query-status")).unwrap();
    }
    let blocking = t.elapsed() / N;
    println!("blocking, sequential: {blocking:?} per call");
    drop(qmp);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let endpoint = Endpoint::Unix(vm.socket_path().into());
        let qmp = qmp_client::tokio::Qmp::connect(endpoint, &Options::new())
            .await
            .unwrap();
        for _ in 0..200 {
            qmp.execute(Request::name("query-status")).await.unwrap();
        }
        let t = Instant::now();
        for _ in 0..N {
            qmp.execute(Request::name("query-status")).await.unwrap();
        }
        println!("tokio, sequential:    {:?} per call", t.elapsed() / N);
        for in_flight in [8u32, 64] {
            let t = Instant::now();
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..in_flight {
                let qmp = qmp.clone();
                set.spawn(async move {
                    for _ in 0..N / in_flight {
                        qmp.execute(Request::name("query-status")).await.unwrap();
                    }
                });
            }
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
            println!(
                "tokio, {in_flight} in flight:  {:?} per call (throughput)",
                t.elapsed() / (N / in_flight * in_flight)
            );
        }
    });
}
