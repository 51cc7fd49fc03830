//! "Timed out but applied": what to do when a call's outcome is unknown.
//!
//! A timeout or a disconnect ([`Error::outcome_unknown`]) says nothing about whether
//! QEMU ran the command: it may have been applied just after the deadline (a slow
//! storage backend under `blockdev-add`, a guest slow to ack `device_add`). Retrying
//! blindly then fails with "Duplicate ID" or, worse, applies twice. The rule: before
//! retrying a command that creates something with an id, ask QEMU whether the thing
//! exists. [`add_once`] does exactly that for the two commands that matter most
//! (`blockdev-add` by `node-name`, `device_add` by `id`), with helpers for other
//! cases ([`block_node_exists`], [`device_exists`]). With the `tokio` feature, the
//! `_async` twins do the same on the tokio client.

use crate::error::Error;
use crate::qmp::Qmp;
use crate::request::Request;

/// What [`add_once`] creates, and how to find it afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created<'a> {
    /// A block node with this `node-name` (`blockdev-add`).
    BlockNode(&'a str),
    /// A device with this `id` (`device_add`), found under `/machine/peripheral`.
    Device(&'a str),
}

/// The query that finds `what`: its command, arguments and the member to match.
struct Probe {
    command: &'static str,
    arguments: serde_json::Value,
    member: &'static str,
}

fn probe(what: Created<'_>) -> Probe {
    match what {
        Created::BlockNode(_) => Probe {
            command: "query-named-block-nodes",
            arguments: serde_json::json!({"flat": true}),
            member: "node-name",
        },
        Created::Device(_) => Probe {
            command: "qom-list",
            arguments: serde_json::json!({"path": "/machine/peripheral"}),
            member: "name",
        },
    }
}

impl Probe {
    /// Whether the probe's reply lists `what`.
    fn found(&self, what: Created<'_>, reply: &str) -> Result<bool, Error> {
        let name = match what {
            Created::BlockNode(n) | Created::Device(n) => n,
        };
        let list: Vec<serde_json::Value> =
            serde_json::from_str(reply).map_err(|e| Error::decode(self.command, e, reply))?;
        Ok(list.iter().any(|x| x[self.member] == name))
    }
}

/// Whether a block node named `node_name` exists (`query-named-block-nodes` with
/// `flat: true`).
pub fn block_node_exists(qmp: &Qmp, node_name: &str) -> Result<bool, Error> {
    exists(qmp, Created::BlockNode(node_name))
}

/// Whether a device with `id` exists (`qom-list` of `/machine/peripheral`; devices
/// added without an id cannot be found this way).
pub fn device_exists(qmp: &Qmp, id: &str) -> Result<bool, Error> {
    exists(qmp, Created::Device(id))
}

fn exists(qmp: &Qmp, what: Created<'_>) -> Result<bool, Error> {
    let p = probe(what);
    let reply = qmp.execute(Request::raw(p.command, &p.arguments))?;
    p.found(what, reply.get())
}

/// Executes a command that creates `what`, at most once in effect: when the call's
/// outcome is unknown (timeout, disconnect) it checks whether `what` exists and, only
/// if not, sends the request made by `request` once more. Returns whether the
/// command's effect is in place (`Ok(true)`); QEMU's own errors are returned as they
/// are.
///
/// # Examples
///
/// ```no_run
/// use qmp_client::recovery::{add_once, Created};
/// use qmp_client::{Qmp, Request};
/// # fn main() -> Result<(), qmp_client::Error> {
/// # let qmp = Qmp::connect_unix("/run/qmp.sock")?;
/// let args = serde_json::json!({"driver": "null-co", "node-name": "n0"});
/// add_once(&qmp, Created::BlockNode("n0"), || Request::raw("blockdev-add", &args))?;
/// # Ok(()) }
/// ```
pub fn add_once<'a, T: 'a>(
    qmp: &Qmp,
    what: Created<'_>,
    mut request: impl FnMut() -> Request<'a, T>,
) -> Result<bool, Error> {
    match qmp.execute(request()) {
        Ok(_) => Ok(true),
        Err(e) if e.outcome_unknown() => {
            if exists(qmp, what)? {
                return Ok(true);
            }
            qmp.execute(request()).map(|_| true)
        }
        Err(e) => Err(e),
    }
}

/// [`block_node_exists`] on the tokio client.
#[cfg(feature = "tokio")]
pub async fn block_node_exists_async(
    qmp: &crate::tokio::Qmp,
    node_name: &str,
) -> Result<bool, Error> {
    exists_async(qmp, Created::BlockNode(node_name)).await
}

/// [`device_exists`] on the tokio client.
#[cfg(feature = "tokio")]
pub async fn device_exists_async(qmp: &crate::tokio::Qmp, id: &str) -> Result<bool, Error> {
    exists_async(qmp, Created::Device(id)).await
}

#[cfg(feature = "tokio")]
async fn exists_async(qmp: &crate::tokio::Qmp, what: Created<'_>) -> Result<bool, Error> {
    let p = probe(what);
    let reply = qmp.execute(Request::raw(p.command, &p.arguments)).await?;
    p.found(what, reply.get())
}

/// [`add_once`] on the tokio client: the same check before the one retry.
#[cfg(feature = "tokio")]
pub async fn add_once_async<'a, T: 'a>(
    qmp: &crate::tokio::Qmp,
    what: Created<'_>,
    mut request: impl FnMut() -> Request<'a, T>,
) -> Result<bool, Error> {
    match qmp.execute(request()).await {
        Ok(_) => Ok(true),
        Err(e) if e.outcome_unknown() => {
            if exists_async(qmp, what).await? {
                return Ok(true);
            }
            qmp.execute(request()).await.map(|_| true)
        }
        Err(e) => Err(e),
    }
}
