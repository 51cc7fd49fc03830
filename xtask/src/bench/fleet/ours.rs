//! Our client in the fleet benchmark: everything that names `qmp_client` / `qmp_types`
//! is in this file, so that porting the benchmark to a new client API touches it alone.
//!
//! - [`Blocking`]: `qmp_client::Qmp` (through `qmp_types::client`), typed commands from
//!   the generated `qmp_types::qmp`, a thread per connection.
//! - [`Tokio`]: **stub** until `qmp_client::tokio` (feature `tokio`: many commands in
//!   flight per connection, a background reader, subscribers) is on main; then set
//!   [`TOKIO_AVAILABLE`] and fill in the three functions (see the comments in them).

use std::path::{Path, PathBuf};

use qmp_types::client::{Endpoint, Options, Qmp};
use qmp_types::qmp::{self, commands, events};
use qmp_types::TypedEvent;

use crate::{Cmd, Variant};

/// `qmp_client::Qmp`, a thread per connection.
pub struct Blocking;

impl crate::Blocking for Blocking {
    type Conn = Qmp;

    fn connect(path: &Path) -> Result<Qmp, String> {
        Qmp::connect(Endpoint::Unix(path.to_owned()), &Options::new()).map_err(|e| e.to_string())
    }

    fn call(q: &mut Qmp, cmd: Cmd) -> Result<(), String> {
        match cmd {
            Cmd::QueryStatus => {
                std::hint::black_box(
                    q.execute(&commands::QueryStatus)
                        .map_err(|e| e.to_string())?,
                );
            }
            Cmd::QueryVersion => {
                std::hint::black_box(
                    q.execute(&commands::QueryVersion)
                        .map_err(|e| e.to_string())?,
                );
            }
        }
        Ok(())
    }

    fn events(path: &Path, n: usize, variant: Variant) -> Result<usize, String> {
        let opts = Options::new().event_capacity(4096);
        let mut q =
            Qmp::connect(Endpoint::Unix(path.to_owned()), &opts).map_err(|e| e.to_string())?;
        // Any command starts the stream (after its reply).
        q.execute(&commands::QueryStatus)
            .map_err(|e| e.to_string())?;
        let mut matched = 0;
        for _ in 0..n {
            let e = q
                .next_event(None)
                .map_err(|e| e.to_string())?
                .ok_or("no event")?;
            match variant {
                Variant::All => {
                    if let qmp::Event::JobStatusChange(..) =
                        e.decode::<qmp::Event>().map_err(|e| e.to_string())?
                    {
                        matched += 1;
                    }
                }
                Variant::ByType => {
                    if e.name() == events::JobStatusChange::NAME {
                        let typed = events::JobStatusChange::decode_data(e.data())
                            .map_err(|e| e.to_string())?;
                        std::hint::black_box(typed);
                        matched += 1;
                    }
                }
            }
        }
        Ok(matched)
    }
}

/// Whether [`Tokio`] drives a real client (false: the stub; the benchmark reports the
/// tokio rows as not measured).
pub const TOKIO_AVAILABLE: bool = false;

/// STUB: our tokio client, once `qmp_client::tokio` exists.
pub struct Tokio;

/// STUB: the connection type of `qmp_client::tokio` (a cheap clonable handle).
pub struct TokioConn;

impl crate::Async for Tokio {
    type Conn = TokioConn;

    async fn connect(path: PathBuf) -> Result<TokioConn, String> {
        // Port: `qmp_client::tokio::Qmp::connect(Endpoint::Unix(path), &Options::new()).await`
        // (or what the new API calls it); a connect that fails with WouldBlock (a full
        // listener backlog) should be retried, as peers.rs does.
        let _ = path;
        Err("our tokio client is not on main yet".into())
    }

    async fn call(conn: &mut TokioConn, cmd: Cmd) -> Result<(), String> {
        // Port: the new request builder, typed: e.g.
        // `conn.execute(&commands::QueryStatus).await` / `commands::QueryVersion`.
        let _ = (conn, cmd);
        Err("our tokio client is not on main yet".into())
    }

    async fn events(path: PathBuf, n: usize, variant: Variant) -> Result<usize, String> {
        // Port: connect, subscribe (Variant::All: every event as `qmp::Event`;
        // Variant::ByType: a subscriber to `events::JobStatusChange`) before the command
        // that starts the stream (`commands::QueryStatus`), then take in `n` events and
        // count the JOB_STATUS_CHANGE ones, as `Blocking::events` does.
        let _ = (path, n, variant);
        Err("our tokio client is not on main yet".into())
    }
}
