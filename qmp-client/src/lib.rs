//! A client for QMP (the QEMU Machine Protocol) and the guest agent, blocking and
//! (feature `tokio`) async, plus a launcher that starts QEMU on demand.
//!
//! One sans-IO protocol core (private: greeting, negotiation,
//! framing, ids, reply matching, event routing, resynchronisation, the agent's
//! 0xFF handshake) and thin drivers: [`Qmp`] and [`Qga`] (threads, `poll` deadlines,
//! SCM_RIGHTS) and `tokio::Qmp` / `tokio::Qga` (readers shared by a runtime's connections,
//! many calls in flight, cancellation-safe). Integer ids on every request, a deadline
//! on every call (per-command defaults: [`Timeouts`]). The wire format is compact
//! (QEMU parses requests a byte at a time).
//!
//! # Connecting and executing
//!
//! One way to execute: a [`Request`] value, typed (`&cmd` converts) or by name with
//! any `Serialize` arguments, carrying its per-call options (deadline, `exec-oob`,
//! fds, an event to wait for). The same request runs on [`Qmp`], [`Qga`] and the
//! tokio clients (feature `tokio`).
//!
//! ```no_run
//! use qmp_client::{Qmp, Options, Endpoint, Request};
//! # fn main() -> Result<(), qmp_client::Error> {
//! let qmp = Qmp::connect(Endpoint::Unix("/run/qmp.sock".into()), &Options::new())?;
//! println!("QEMU {}", qmp.greeting().unwrap().version);
//! // By name (typed commands: `qmp.execute(&cmd)`).
//! let status = qmp.execute(Request::name("query-status"))?;
//! println!("{}", status.get());
//! # Ok(()) }
//! ```
//!
//! # Events
//!
//! Events are routed by the protocol core: to the call that waits for one
//! ([`Request::wait_for`], armed before the command is written, so the event the
//! command causes cannot be missed), to every [`Qmp::subscribe`] subscription (each
//! with its own bounded queue and drop count), and to the connection's queue
//! ([`Qmp::next_event`], up to [`Options::event_capacity`], drops counted). Filters
//! select by type and decode once:
//!
//! ```no_run
//! use std::time::Duration;
//! use qmp_client::{EventFilter, Qmp, RawEvent, Request};
//! # fn main() -> Result<(), qmp_client::Error> {
//! # let qmp = Qmp::connect_unix("/run/qmp.sock")?;
//! let deleted = EventFilter::name("DEVICE_DELETED")
//!     .matching(|e: &RawEvent| e.data_value()["device"] == "disk0");
//! // Typed, with qmp-types: EventFilter::of::<qmp_types::qmp::events::DeviceDeleted>()
//! let (_, event) = qmp.execute(
//!     Request::raw("device_del", &serde_json::json!({"id": "disk0"}))
//!         .timeout(Duration::from_secs(5))
//!         .wait_for(deleted),
//! )?;
//! println!("{} at {:?}", event.name(), event.timestamp());
//! while let Some(e) = qmp.poll_event()? {
//!     println!("also got {}", e.name());
//! }
//! # Ok(()) }
//! ```
//!
//! # What the connected QEMU has
//!
//! Branch on capabilities, not version numbers: the server's own `query-qmp-schema`
//! is fetched on first use and cached on the connection.
//!
//! ```no_run
//! use qmp_client::Qmp;
//! # fn main() -> Result<(), qmp_client::Error> {
//! # let qmp = Qmp::connect_unix("/run/qmp.sock")?;
//! let reopen = qmp.has_command("blockdev-reopen")?;
//! let unplug = qmp.has_event("DEVICE_DELETED")?;
//! let compat = qmp.has_argument("query-machines", "compat-props")?; // QEMU 9.1+
//! let audio = qmp.has_command("query-audiodevs")?; // 10.0+
//! # Ok(()) }
//! ```
//!
//! # Launching QEMU
//!
//! ```no_run
//! use qmp_client::Launcher;
//! # fn main() -> Result<(), qmp_client::Error> {
//! let vm = Launcher::qemu().args(["-S"]).spawn()?; // killed and reaped on drop
//! let qmp = vm.connect()?;
//! qmp.execute(qmp_client::Request::name("cont"))?;
//! let ga = Launcher::guest_agent().spawn()?;
//! let qga = ga.connect_qga()?;
//! qga.execute(qmp_client::Request::name("guest-ping"))?;
//! # Ok(()) }
//! ```
//!
//! # Tracing
//!
//! Every message in and out is logged at `trace` level under the `log` target
//! [`WIRE_TARGET`]; nothing is formatted unless that level is enabled.
//!
//! The trace never shows secrets: their values are replaced by `"<redacted>"` (the bytes
//! on the wire are unchanged; so is the rest of the message). Redacted, in both
//! directions: every member named `password` or ending in `-password`, at any depth
//! (`set_password`, `change-vnc-password`, `guest-set-user-password`); `data` of any
//! object whose `qom-type` is `secret` (`object-add`, plain or encrypted with `keyid`);
//! `qom-set`'s `value` when `property` is `data` or a password; and in
//! `human-monitor-command`, what follows `set_password PROTOCOL` and
//! `change vnc password`, and `object_add`'s `data=` and `password=` values. Ids that
//! only name a secret (`key-secret`, `password-secret`, `keyid`) stay visible. A
//! message that does not parse as JSON is withheld whole. The JSON excerpt kept in
//! [`Error::Decode`] follows the same rules.

mod blocking;
mod builtin;
mod conn;
mod error;
mod event;
mod fd;
mod framing;
mod introspect;
mod launcher;
#[cfg(feature = "libvirt")]
pub mod libvirt;
pub mod mock;
pub mod monitor;
mod options;
mod proto;
mod qga;
mod qmp;
pub mod recovery;
mod redact;
mod request;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use conn::{Endpoint, Stats, WIRE_TARGET};
pub use error::{Error, ErrorClass, QmpError};
pub use event::{EventFilter, RawEvent};
pub use introspect::{Argument, ServerSchema};
pub use launcher::{find_binary, Instance, Launcher, Program};
pub use options::{AddFdInfo, Greeting, OobPolicy, Options, Timeouts, Version};
pub use qga::Qga;
pub use qmp::{Qmp, Subscription};
pub use request::Request;
