//! The tokio client against real QEMU (`-machine none`, started by the launcher):
//! calls in flight at once, cancellation mid-flight, 10,000 calls with random
//! cancellations and timeouts on one connection, subscribers under an event storm,
//! QEMU killed with commands in flight, and connections on two runtimes at once.

#![cfg(feature = "tokio")]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_client::tokio::Qmp;
use qmp_client::{Endpoint, Error, EventFilter, Instance, Launcher, Options, RawEvent, Request};
use serde_json::json;

fn start() -> Instance {
    match Launcher::qemu().spawn() {
        Ok(i) => i,
        Err(e) => panic!("live test needs real QEMU: {e}"),
    }
}

async fn connect(vm: &Instance) -> Qmp {
    vm.connect_async().await.unwrap()
}

/// Memory backends `/objects/m0..m{n}` whose `size` differs, so a reply proves which
/// request it answers.
async fn add_backends(qmp: &Qmp, n: u64) {
    for i in 0..n {
        let args = json!({"qom-type": "memory-backend-ram", "id": format!("m{i}"), "size": 4096 * (i + 1)});
        qmp.execute(Request::raw("object-add", &args))
            .await
            .unwrap();
    }
}

fn size_query(i: u64) -> serde_json::Value {
    json!({"path": format!("/objects/m{i}"), "property": "size"})
}

/// xorshift: deterministic "random" choices.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_in_flight_each_gets_its_own_reply() {
    let vm = start();
    let qmp = connect(&vm).await;
    add_backends(&qmp, 16).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..200u64 {
        let qmp = qmp.clone();
        set.spawn(async move {
            let q = size_query(i % 16);
            let r = qmp.execute(Request::raw("qom-get", &q)).await.unwrap();
            assert_eq!(r.get(), (4096 * (i % 16 + 1)).to_string());
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_does_not_desynchronise_the_connection() {
    let vm = start();
    let qmp = connect(&vm).await;
    add_backends(&qmp, 2).await;
    let mut cancelled = 0;
    for _ in 0..50 {
        // Dropped long before QEMU can answer.
        let q = size_query(0);
        let fut = qmp.execute(Request::raw("qom-get", &q));
        if tokio::time::timeout(Duration::from_micros(1), fut)
            .await
            .is_err()
        {
            cancelled += 1;
        }
    }
    assert!(cancelled > 0);
    let q = size_query(1);
    let r = qmp.execute(Request::raw("qom-get", &q)).await.unwrap();
    assert_eq!(r.get(), "8192");
    // The cancelled calls' late replies were discarded by id.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(qmp.stats().discarded_replies > 0, "{:?}", qmp.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_with_random_cancellations_and_timeouts() {
    let vm = start();
    let qmp = connect(&vm).await;
    add_backends(&qmp, 16).await;
    let ok = Arc::new(AtomicU64::new(0));
    let cancelled = Arc::new(AtomicU64::new(0));
    let timed_out = Arc::new(AtomicU64::new(0));
    let desync = Arc::new(AtomicU64::new(0));
    let workers = 16u64;
    let per = 10_000 / workers;
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (qmp, ok, cancelled, timed_out, desync) = (
            qmp.clone(),
            ok.clone(),
            cancelled.clone(),
            timed_out.clone(),
            desync.clone(),
        );
        set.spawn(async move {
            let mut next = rng(0x9e37_79b9 + w);
            for _ in 0..per {
                let i = next() % 16;
                let q = size_query(i);
                let expect = (4096 * (i + 1)).to_string();
                let mut req = Request::raw("qom-get", &q);
                let roll = next() % 10;
                if roll == 0 {
                    // A per-call deadline QEMU may or may not meet.
                    req = req.timeout(Duration::from_micros(next() % 400));
                }
                let fut = qmp.execute(req);
                let outcome = if roll == 1 {
                    // Cancelled at a random point: the future is dropped.
                    match tokio::time::timeout(Duration::from_micros(next() % 400), fut).await {
                        Ok(r) => r,
                        Err(_) => {
                            cancelled.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                } else {
                    fut.await
                };
                match outcome {
                    Ok(r) if r.get() == expect => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(r) => {
                        eprintln!("desync: wanted {expect}, got {}", r.get());
                        desync.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(Error::Timeout { .. }) => timed_out.fetch_add(1, Ordering::Relaxed),
                    Err(e) => panic!("{e}"),
                };
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let (ok, cancelled, timed_out, desync) = (
        ok.load(Ordering::Relaxed),
        cancelled.load(Ordering::Relaxed),
        timed_out.load(Ordering::Relaxed),
        desync.load(Ordering::Relaxed),
    );
    eprintln!(
        "10,000 calls in {:?}: {ok} ok, {cancelled} cancelled, {timed_out} timed out, {desync} desynchronised; {:?}",
        started.elapsed(),
        qmp.stats()
    );
    assert_eq!(desync, 0);
    assert_eq!(ok + cancelled + timed_out, workers * per);
    assert!(cancelled > 0 && ok > 5000, "{cancelled} {ok}");
    // Still in sync afterwards.
    let q = size_query(3);
    let r = qmp.execute(Request::raw("qom-get", &q)).await.unwrap();
    assert_eq!(r.get(), "16384");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_subscribers_under_an_event_storm() {
    let vm = start();
    let qmp = connect(&vm).await;
    let pairs = 300;
    let mut all = qmp.subscribe_with_capacity(EventFilter::any(), 100_000);
    let mut stops = qmp.subscribe_with_capacity(EventFilter::name("STOP"), 100_000);
    let small = qmp.subscribe_with_capacity(EventFilter::any(), 8);
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let mut sub = qmp.subscribe_with_capacity(EventFilter::name("RESUME"), 100_000);
            tokio::spawn(async move {
                let mut n = 0;
                while n < pairs {
                    let e: RawEvent = sub.next().await.unwrap();
                    assert_eq!(e.name(), "RESUME");
                    n += 1;
                }
                (n, sub.dropped())
            })
        })
        .collect();
    // One STOP and one RESUME per pair (concurrent stops would coalesce), while
    // queries from other tasks interleave with the events.
    let storm = {
        let qmp = qmp.clone();
        tokio::spawn(async move {
            for _ in 0..pairs {
                qmp.execute(Request::name("stop")).await.unwrap();
                qmp.execute(Request::name("cont")).await.unwrap();
            }
        })
    };
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let qmp = qmp.clone();
        set.spawn(async move {
            for _ in 0..100 {
                qmp.execute(Request::name("query-status")).await.unwrap();
            }
        });
    }
    let all_done = async {
        storm.await.unwrap();
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        for r in readers {
            assert_eq!(r.await.unwrap(), (pairs, 0));
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all_done)
        .await
        .expect("every subscriber got every event");
    let mut seen = 0;
    let mut last = None;
    while seen < 2 * pairs {
        let e = all.next().await.unwrap();
        if let Some(l) = last {
            assert!(e.sequence() > l, "in order");
        }
        last = Some(e.sequence());
        seen += 1;
    }
    let mut n = 0;
    while stops.try_next().is_some() {
        n += 1;
    }
    assert_eq!(n, pairs);
    assert_eq!(small.dropped(), 2 * pairs as u64 - 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_killed_with_commands_in_flight() {
    let mut vm = start();
    let qmp = connect(&vm).await;
    add_backends(&qmp, 1).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let qmp = qmp.clone();
        set.spawn(async move {
            let mut results = Vec::new();
            for _ in 0..50 {
                let q = size_query(0);
                results.push(qmp.execute(Request::raw("qom-get", &q).no_timeout()).await);
            }
            results
        });
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    vm.kill().unwrap();
    let killed = Instant::now();
    let (mut ok, mut unknown) = (0, 0);
    while let Some(r) = set.join_next().await {
        for r in r.unwrap() {
            match r {
                Ok(v) => {
                    assert_eq!(v.get(), "4096");
                    ok += 1;
                }
                Err(e) => {
                    assert!(
                        matches!(e, Error::Disconnected { .. } | Error::Io { .. }),
                        "{e}"
                    );
                    unknown += 1;
                }
            }
        }
    }
    eprintln!("{ok} answered, {unknown} failed after the kill");
    assert!(unknown > 0);
    tokio::time::timeout(Duration::from_secs(5), qmp.closed())
        .await
        .expect("closed() resolves");
    assert!(qmp.is_closed());
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "{:?}",
        killed.elapsed()
    );
    let e = qmp
        .execute(Request::name("query-status"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Disconnected { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_agent_calls_timeouts_and_resync() {
    let ga = match Launcher::guest_agent().spawn() {
        Ok(i) => i,
        Err(e) => panic!("live test needs qemu-ga: {e}"),
    };
    let endpoint = || Endpoint::Unix(ga.socket_path().into());
    // The agent's socket may not listen yet right after it appears.
    let mut tries = 0;
    let qga = loop {
        match qmp_client::tokio::Qga::connect(endpoint(), &Options::new()).await {
            Ok(q) => break q,
            Err(e) if tries < 100 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let info = qga.execute(Request::name("guest-info")).await.unwrap();
    assert!(info.get().contains("\"version\""), "{}", info.get());
    // Calls in flight at once (the agent answers them in order).
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let qga = qga.clone();
        set.spawn(async move { qga.execute(Request::name("guest-ping")).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    // A deadline too short (tokio's timer has millisecond granularity, so the agent
    // may still make it): a timeout, then the next call resyncs first and works.
    let mut timeouts = 0;
    for _ in 0..200 {
        match qga
            .execute(Request::name("guest-info").timeout(Duration::from_micros(1)))
            .await
        {
            Ok(_) => {}
            Err(Error::Timeout { .. }) => timeouts += 1,
            Err(e) => panic!("{e}"),
        }
        let pong = qga.execute(Request::name("guest-ping")).await.unwrap();
        assert_eq!(pong.get(), "{}");
    }
    assert!(timeouts > 0);
    eprintln!("{timeouts} of 200 guest-info calls timed out; every guest-ping after them worked");
    assert!(!qga.is_closed());
}

/// The connection's one timer moves earlier for a call with a nearer deadline: with QEMU
/// stopped (SIGSTOP), a 10 s call is in flight when a 200 ms call starts; the short one
/// times out on time, and after SIGCONT the long one gets its reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_deadline_moves_the_connection_timer() {
    let vm = start();
    let qmp = connect(&vm).await;
    vm.signal(libc::SIGSTOP).unwrap();
    let long = {
        let qmp = qmp.clone();
        tokio::spawn(async move {
            qmp.execute(Request::name("query-status").timeout(Duration::from_secs(10)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    let short = qmp
        .execute(Request::name("query-name").timeout(Duration::from_millis(200)))
        .await;
    let waited = t.elapsed();
    vm.signal(libc::SIGCONT).unwrap();
    assert!(matches!(short, Err(Error::Timeout { .. })), "{short:?}");
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    let long = long.await.unwrap().unwrap();
    assert!(long.get().contains("running"), "{}", long.get());
    // The late reply of the timed-out call was discarded: the connection is in step.
    let name = qmp.execute(Request::name("query-name")).await.unwrap();
    assert_eq!(name.get(), "{}");
}

/// Each runtime has readers of its own: a connection made on a second runtime is
/// served while the first, holding a connection, is not running; after the first is
/// dropped, a third runtime starts readers of its own.
#[test]
fn each_runtime_reads_its_own_connections() {
    let (one, two) = (start(), start());
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let status = |qmp: Qmp| async move {
        let call = qmp.execute(Request::name("query-status"));
        let reply = tokio::time::timeout(Duration::from_secs(10), call).await;
        let reply = reply.expect("served within 10 s").unwrap();
        assert!(reply.get().contains("running"), "{}", reply.get());
        qmp
    };
    let first = runtime();
    let on_first = first.block_on(async { status(connect(&one).await).await });
    let second = runtime();
    second.block_on(async { status(connect(&two).await).await });
    drop(second);
    let on_first = first.block_on(status(on_first));
    drop(on_first);
    drop(first);
    runtime().block_on(async { status(connect(&one).await).await });
}
