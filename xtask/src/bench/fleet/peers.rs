//! The baselines of the fleet benchmark, on the same workload as ours.rs:
//!
//! - [`Qmp011`]: the `qmp` crate 0.1.1 (crates.io; tokio, a reader task and a broadcast
//!   channel of events per connection), default options; replies decoded with serde
//!   into the same shape as ours; [`Qmp011Small`] the same with a 16-slot event buffer.
//! - [`Qapi015`]: `qapi` 0.15 (crates.io; `qmp` + `async-tokio-*` features, replies and
//!   events typed by its generated `qapi_qmp`), its reader spawned with `spawn_tokio`.
//! - [`Floor`]: std only, a thread per connection, pre-formatted requests, line reads
//!   and a substring check of the id (of the event name, for events): no JSON at all.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::{Cmd, Variant};

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct StatusInfo {
    running: bool,
    status: String,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct VersionTriple {
    major: i64,
    minor: i64,
    micro: i64,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct VersionInfo {
    qemu: VersionTriple,
    package: String,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct JobStatusChange {
    id: String,
    status: String,
}

/// The `qmp` crate, 0.1.1.
pub struct Qmp011;

impl crate::Async for Qmp011 {
    type Conn = qmp::Client;

    async fn connect(path: PathBuf) -> Result<qmp::Client, String> {
        crate::retrying(|| qmp::Client::connect(qmp::Endpoint::unix(path.clone()))).await
    }

    async fn call(c: &mut qmp::Client, cmd: Cmd) -> Result<(), String> {
        match cmd {
            Cmd::QueryStatus => {
                let r: StatusInfo = c
                    .execute("query-status", Option::<()>::None)
                    .await
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(r);
            }
            Cmd::QueryVersion => {
                let r: VersionInfo = c
                    .execute("query-version", Option::<()>::None)
                    .await
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(r);
            }
        }
        Ok(())
    }

    async fn events(path: PathBuf, n: usize, variant: Variant) -> Result<usize, String> {
        // A buffer as large as the stream: a lagging subscriber would lose events.
        let c = qmp::Client::builder(qmp::Endpoint::unix(path))
            .event_buffer(n.max(16))
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let mut events = c.events();
        let _: serde_json::Value = c
            .execute("query-status", Option::<()>::None)
            .await
            .map_err(|e| e.to_string())?;
        let mut matched = 0;
        for _ in 0..n {
            let e = events.recv().await.map_err(|e| e.to_string())?;
            if e.name == "JOB_STATUS_CHANGE" {
                if variant == Variant::ByType {
                    let typed: JobStatusChange =
                        serde_json::from_value(e.data).map_err(|e| e.to_string())?;
                    std::hint::black_box(typed);
                }
                matched += 1;
            }
        }
        Ok(matched)
    }
}

/// The `qmp` crate, 0.1.1, with a 16-slot event buffer instead of its default 1,024
/// (its memory per connection is mostly that buffer).
pub struct Qmp011Small;

impl crate::Async for Qmp011Small {
    type Conn = qmp::Client;

    async fn connect(path: PathBuf) -> Result<qmp::Client, String> {
        crate::retrying(|| {
            qmp::Client::builder(qmp::Endpoint::unix(path.clone()))
                .event_buffer(16)
                .connect()
        })
        .await
    }

    async fn call(c: &mut qmp::Client, cmd: Cmd) -> Result<(), String> {
        Qmp011::call(c, cmd).await
    }

    async fn events(path: PathBuf, n: usize, variant: Variant) -> Result<usize, String> {
        Qmp011::events(path, n, variant).await
    }
}

type QapiService = qapi::futures::QapiService<
    qapi::futures::QmpStreamTokio<tokio::io::WriteHalf<tokio::net::UnixStream>>,
>;

/// `qapi` 0.15 with its tokio features.
pub struct Qapi015;

impl crate::Async for Qapi015 {
    type Conn = QapiService;

    async fn connect(path: PathBuf) -> Result<QapiService, String> {
        let negotiation =
            crate::retrying(|| qapi::futures::QmpStreamTokio::open_uds(path.clone())).await?;
        let stream = negotiation.negotiate().await.map_err(|e| e.to_string())?;
        let (service, _reader) = stream.spawn_tokio();
        Ok(service)
    }

    async fn call(s: &mut QapiService, cmd: Cmd) -> Result<(), String> {
        match cmd {
            Cmd::QueryStatus => {
                let r = s
                    .execute(qapi::qmp::query_status {})
                    .await
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(r);
            }
            Cmd::QueryVersion => {
                let r = s
                    .execute(qapi::qmp::query_version {})
                    .await
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(r);
            }
        }
        Ok(())
    }

    async fn events(path: PathBuf, n: usize, _variant: Variant) -> Result<usize, String> {
        use futures::StreamExt;
        let negotiation = qapi::futures::QmpStreamTokio::open_uds(path)
            .await
            .map_err(|e| e.to_string())?;
        let stream = negotiation.negotiate().await.map_err(|e| e.to_string())?;
        // Its event stream also routes the replies: the command runs beside it.
        let (service, mut events) = stream.into_parts();
        let trigger = tokio::spawn(async move {
            let r = service.execute(qapi::qmp::query_status {}).await;
            (r.map(|_| ()).map_err(|e| e.to_string()), service)
        });
        let mut matched = 0;
        for _ in 0..n {
            // Every event arrives typed (`qapi_qmp::Event`); by type is the same work.
            match events
                .next()
                .await
                .ok_or("end of stream")?
                .map_err(|e| e.to_string())?
            {
                qapi::qmp::Event::JOB_STATUS_CHANGE { data, .. } => {
                    std::hint::black_box(data);
                    matched += 1;
                }
                other => {
                    std::hint::black_box(other);
                }
            }
        }
        let (r, _service) = trigger.await.map_err(|e| e.to_string())?;
        r?;
        Ok(matched)
    }
}

/// std only, no JSON: what a round trip costs at the least.
pub struct Floor;

/// One socket (one descriptor: 10,000 connections fit the open-file limit), read
/// through a buffer and written directly.
pub struct FloorConn {
    r: BufReader<UnixStream>,
    line: Vec<u8>,
    id: u64,
}

impl FloorConn {
    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.r.get_ref().write_all(bytes).map_err(|e| e.to_string())
    }

    fn read_line(&mut self) -> Result<(), String> {
        self.line.clear();
        match self.r.read_until(b'\n', &mut self.line) {
            Ok(0) => Err("end of stream".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl crate::Blocking for Floor {
    type Conn = FloorConn;

    fn connect(path: &Path) -> Result<FloorConn, String> {
        let s = UnixStream::connect(path).map_err(|e| e.to_string())?;
        let mut c = FloorConn {
            r: BufReader::new(s),
            line: Vec::new(),
            id: 0,
        };
        c.read_line()?; // greeting
        c.write(
            b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]},\"id\":0}",
        )?;
        c.read_line()?;
        Ok(c)
    }

    fn call(c: &mut FloorConn, cmd: Cmd) -> Result<(), String> {
        c.id += 1;
        let req = format!("{{\"execute\":\"{}\",\"id\":{}}}", cmd.name(), c.id);
        c.write(req.as_bytes())?;
        let want = format!("\"id\": {}}}", c.id);
        loop {
            c.read_line()?;
            if c.line.starts_with(b"{\"return\"")
                && c.line.windows(want.len()).any(|w| w == want.as_bytes())
            {
                return Ok(());
            }
        }
    }

    fn events(path: &Path, n: usize, _variant: Variant) -> Result<usize, String> {
        let mut c = Floor::connect(path)?;
        c.write(b"{\"execute\":\"query-status\",\"id\":1}")?;
        let (mut count, mut matched) = (0, 0);
        while count < n {
            c.read_line()?;
            if c.line.starts_with(b"{\"timestamp\"") {
                count += 1;
                if c.line.windows(5).any(|w| w == b"\"JOB_") {
                    matched += 1;
                }
            }
        }
        Ok(matched)
    }
}
