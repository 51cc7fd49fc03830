//! "Timed out but applied": what to do when a call's outcome is unknown.
//!
//! A timeout or a disconnect ([`Error::outcome_unknown`]) says nothing about whether
//! QEMU ran the command: it may have been applied just after the deadline (a slow
//! storage backend under `blockdev-add`, a guest slow to ack `device_add`). Retrying
//! blindly then fails with "Duplicate ID" or, worse, applies twice. The rule: before
//! retrying a command that creates something with an id, ask QEMU whether the thing
//! exists. [`add_once`] does exactly that for the two commands that matter most
//! (`blockdev-add` by `node-name`, `device_add` by `id`), with helpers for other
//! cases ([`block_node_exists`], [`device_exists`]).

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

/// Whether a block node named `node_name` exists (`query-named-block-nodes` with
/// `flat: true`).
pub fn block_node_exists(qmp: &Qmp, node_name: &str) -> Result<bool, Error> {
    let nodes = qmp.execute(Request::raw(
        "query-named-block-nodes",
        &serde_json::json!({"flat": true}),
    ))?;
    let nodes: Vec<serde_json::Value> = serde_json::from_str(nodes.get())
        .map_err(|e| Error::decode("query-named-block-nodes", e, nodes.get()))?;
    Ok(nodes.iter().any(|n| n["node-name"] == node_name))
}

/// Whether a device with `id` exists (`qom-list` of `/machine/peripheral`; devices
/// added without an id cannot be found this way).
pub fn device_exists(qmp: &Qmp, id: &str) -> Result<bool, Error> {
    let props = qmp.execute(Request::raw(
        "qom-list",
        &serde_json::json!({"path": "/machine/peripheral"}),
    ))?;
    let props: Vec<serde_json::Value> =
        serde_json::from_str(props.get()).map_err(|e| Error::decode("qom-list", e, props.get()))?;
    Ok(props.iter().any(|p| p["name"] == id))
}

fn exists(qmp: &Qmp, what: Created<'_>) -> Result<bool, Error> {
    match what {
        Created::BlockNode(n) => block_node_exists(qmp, n),
        Created::Device(id) => device_exists(qmp, id),
    }
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
