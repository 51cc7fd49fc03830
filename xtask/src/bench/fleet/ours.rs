//! Our client in the fleet benchmark: everything that names `qmp_client` / `qmp_types`
//! is in this file, so that porting the benchmark to a new client API touches it alone.
//!
//! - [`Blocking`]: `qmp_client::Qmp` (through `qmp_types::client`), typed commands from
//!   the generated `qmp_types::qmp`, a thread per connection.
//! - [`Tokio`]: `qmp_client::tokio::Qmp` (many commands in flight per connection, a
//!   background reader, subscribers), a task per connection, compiled when the scratch
//!   crate's feature `ours-tokio` is on; a **stub** otherwise (qmp-client without its
//!   `tokio` feature, as on main until that client lands).

use std::path::Path;

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
        // `mut`: main's `next_event` takes `&mut self`, the client rewrite's `&self`.
        #[allow(unused_mut)]
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

/// Whether [`Tokio`] drives a real client: the scratch crate's feature `ours-tokio`,
/// which xtask turns on when `qmp-client` has a `tokio` feature. Without it, the tokio
/// rows say "not measured".
pub const TOKIO_AVAILABLE: bool = cfg!(feature = "ours-tokio");

pub use tokio_client::Tokio;

/// `qmp_client::tokio::Qmp`, a task per connection: written against the API of branch
/// `core` (5f62fea: `Request` from `&C`, `subscribe_with_capacity`, `EventFilter::set`
/// and `EventFilter::of`); if it changes before it lands, this module is what to port.
#[cfg(feature = "ours-tokio")]
mod tokio_client {
    use std::path::PathBuf;

    use qmp_client::tokio::Qmp;
    use qmp_client::{Endpoint, EventFilter, Options};
    use qmp_types::qmp::{self, commands, events};

    use crate::{Cmd, Variant};

    pub struct Tokio;

    impl crate::Async for Tokio {
        type Conn = Qmp;

        async fn connect(path: PathBuf) -> Result<Qmp, String> {
            let opts = Options::new();
            crate::retrying(|| Qmp::connect(Endpoint::Unix(path.clone()), &opts)).await
        }

        async fn call(q: &mut Qmp, cmd: Cmd) -> Result<(), String> {
            match cmd {
                Cmd::QueryStatus => {
                    std::hint::black_box(
                        q.execute(&commands::QueryStatus)
                            .await
                            .map_err(|e| e.to_string())?,
                    );
                }
                Cmd::QueryVersion => {
                    std::hint::black_box(
                        q.execute(&commands::QueryVersion)
                            .await
                            .map_err(|e| e.to_string())?,
                    );
                }
            }
            Ok(())
        }

        async fn events(path: PathBuf, n: usize, variant: Variant) -> Result<usize, String> {
            let opts = Options::new().event_capacity(4096);
            let q = Qmp::connect(Endpoint::Unix(path), &opts)
                .await
                .map_err(|e| e.to_string())?;
            // Subscribed before the command that starts the stream; queues as long as
            // the stream, so that a slow consumer loses nothing (drops are checked).
            let mut matched = 0;
            match variant {
                Variant::All => {
                    let mut sub = q.subscribe_with_capacity(EventFilter::set::<qmp::Event>(), n);
                    q.execute(&commands::QueryStatus)
                        .await
                        .map_err(|e| e.to_string())?;
                    for _ in 0..n {
                        if let qmp::Event::JobStatusChange(..) =
                            sub.next().await.ok_or("end of stream")?
                        {
                            matched += 1;
                        }
                    }
                    if sub.dropped() > 0 {
                        return Err(format!("{} events dropped", sub.dropped()));
                    }
                }
                Variant::ByType => {
                    let filter = EventFilter::of::<events::JobStatusChange>();
                    let mut sub = q.subscribe_with_capacity(filter, n);
                    q.execute(&commands::QueryStatus)
                        .await
                        .map_err(|e| e.to_string())?;
                    // Every third event is one; the last two of the stream are not.
                    for _ in 0..n / 3 {
                        std::hint::black_box(sub.next().await.ok_or("end of stream")?);
                        matched += 1;
                    }
                    if sub.dropped() > 0 {
                        return Err(format!("{} events dropped", sub.dropped()));
                    }
                }
            }
            Ok(matched)
        }
    }
}

/// STUB, while `qmp_client` has no `tokio` feature: every call says so.
#[cfg(not(feature = "ours-tokio"))]
mod tokio_client {
    use std::path::PathBuf;

    use crate::{Cmd, Variant};

    pub struct Tokio;

    pub struct TokioConn;

    const MISSING: &str = "driver ours-tokio is not available: qmp-client has no tokio feature";

    impl crate::Async for Tokio {
        type Conn = TokioConn;

        async fn connect(_: PathBuf) -> Result<TokioConn, String> {
            Err(MISSING.into())
        }

        async fn call(_: &mut TokioConn, _: Cmd) -> Result<(), String> {
            Err(MISSING.into())
        }

        async fn events(_: PathBuf, _: usize, _: Variant) -> Result<usize, String> {
            Err(MISSING.into())
        }
    }
}
