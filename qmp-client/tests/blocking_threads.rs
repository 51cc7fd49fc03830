//! The blocking clients from several threads at once, against real QEMU: `Send +
//! Sync`, calls through one `&Qmp` with random deadlines, subscriptions fed by
//! whichever thread reads. (The lifecycle around QEMU's, reconnecting included, and
//! the "timed out but applied" helper run on both drivers in `qmp-types/tests/`.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use qmp_client::{Error, EventFilter, Launcher, Qga, Qmp, Request};
use serde_json::json;

#[test]
fn clients_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Qmp>();
    check::<Qga>();
    #[cfg(feature = "tokio")]
    {
        check::<qmp_client::tokio::Qmp>();
        check::<qmp_client::tokio::Qga>();
    }
}

#[test]
fn threads_share_one_connection_without_desynchronising() {
    let vm = Launcher::qemu().spawn().unwrap();
    let qmp = vm.connect().unwrap();
    for i in 0..8u64 {
        let args = json!({"qom-type": "memory-backend-ram", "id": format!("m{i}"), "size": 4096 * (i + 1)});
        qmp.execute(Request::raw("object-add", &args)).unwrap();
    }
    let mut stops = qmp.subscribe(EventFilter::name("STOP"));
    let (ok, timed_out) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (qmp, ok, timed_out) = (&qmp, &ok, &timed_out);
            s.spawn(move || {
                for n in 0..300u64 {
                    let i = (t + n) % 8;
                    let q = json!({"path": format!("/objects/m{i}"), "property": "size"});
                    let mut req = Request::raw("qom-get", &q);
                    if n % 7 == 0 {
                        req = req.timeout(Duration::from_micros(50 * (n % 5)));
                    }
                    match qmp.execute(req) {
                        Ok(r) => {
                            assert_eq!(r.get(), (4096 * (i + 1)).to_string());
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::Timeout { .. }) => {
                            timed_out.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                    if t == 0 && n % 100 == 0 {
                        qmp.execute(Request::name("stop")).unwrap();
                        qmp.execute(Request::name("cont")).unwrap();
                    }
                }
            });
        }
    });
    let (ok, timed_out) = (ok.into_inner(), timed_out.into_inner());
    eprintln!("2400 calls from 8 threads: {ok} ok, {timed_out} timed out");
    assert_eq!(ok + timed_out, 2400);
    // Thread 0's 3 stops, seen by the subscription whichever thread read them.
    let mut n = 0;
    while stops
        .next(Some(Duration::from_millis(200)))
        .unwrap()
        .is_some()
    {
        n += 1;
    }
    assert_eq!(n, 3);
    assert_eq!(stops.dropped(), 0);
    stops = qmp.subscribe(EventFilter::name("STOP"));
    assert!(stops.try_next().is_none());
}
