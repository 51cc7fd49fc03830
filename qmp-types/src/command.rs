//! The traits the generated API implements and the transport executes.

/// A QMP command: its wire name, its arguments (the implementing value) and its typed return.
///
/// Implemented by every generated command type; the transport executes any `Command`.
pub trait Command: serde::Serialize {
    /// The wire name, e.g. `query-status`.
    const NAME: &'static str;
    /// Whether the command takes arguments; when false the request has no `arguments` member.
    const HAS_ARGUMENTS: bool = true;
    /// `allow-oob: true`: the command may be executed out-of-band (`exec-oob`).
    const ALLOW_OOB: bool = false;
    /// `success-response: false` makes this false: the server sends no reply on success.
    const SUCCESS_RESPONSE: bool = true;
    /// The typed value of the `return` member of a successful reply.
    type Returns: serde::de::DeserializeOwned;
}
