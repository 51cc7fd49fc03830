//! [`Request`]: one value for everything a call can be, typed or raw, with its
//! per-call options (deadline, `exec-oob`, file descriptors, an event to wait for),
//! executed the same way by every client ([`Qmp`](crate::Qmp), [`Qga`](crate::Qga)
//! and the tokio clients).

use std::borrow::Cow;
use std::fmt;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::Error;
use crate::event::{downcast, Decoded, EventFilter, Matcher};
use qapi_runtime::Command;

/// Writes a command's `arguments` object (implemented for every [`Command`]).
pub(crate) trait WriteArgs {
    fn write_args(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error>;
}

impl<C: Command> WriteArgs for C {
    fn write_args(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        self.write_arguments(out)
    }
}

/// The arguments of a request.
pub(crate) enum Args<'a> {
    /// No `arguments` member.
    None,
    /// A typed command writes them.
    Typed(&'a (dyn WriteArgs + Sync)),
    /// Already encoded JSON (or why it could not be).
    Json(Result<Vec<u8>, serde_json::Error>),
}

type Decode<'a, T> = Box<dyn FnOnce(&str, Option<Decoded>) -> Result<T, Error> + Send + 'a>;

/// One command to execute and how: build it from a typed command (`&cmd` converts,
/// or [`Request::new`]) or by name ([`Request::raw`], [`Request::name`]), set per-call
/// options, and pass it to `execute`. `T` is what the call returns.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use qmp_client::{EventFilter, Qmp, Request};
/// # fn main() -> Result<(), qmp_client::Error> {
/// # let qmp = Qmp::connect_unix("/run/qmp.sock")?;
/// // Raw: any `Serialize` arguments.
/// let ret = qmp.execute(Request::raw("device_add", &serde_json::json!({
///     "driver": "virtio-blk-pci", "id": "disk0", "drive": "d0"
/// })))?;
/// // With options, and a race-free wait for the event the command causes.
/// let (_, event) = qmp.execute(
///     Request::raw("device_del", &serde_json::json!({"id": "disk0"}))
///         .timeout(Duration::from_secs(10))
///         .wait_for(EventFilter::name("DEVICE_DELETED")
///             .matching(|e| e.data_value()["device"] == "disk0")),
/// )?;
/// # let _ = (ret, event);
/// # Ok(()) }
/// ```
pub struct Request<'a, T> {
    pub(crate) name: Cow<'a, str>,
    /// `name` when it lives forever (typed commands): the session keeps it uncopied.
    pub(crate) static_name: Option<&'static str>,
    pub(crate) args: Args<'a>,
    pub(crate) allow_oob: bool,
    pub(crate) success_response: bool,
    pub(crate) timeout: Option<Option<Duration>>,
    pub(crate) oob: bool,
    pub(crate) fds: &'a [BorrowedFd<'a>],
    pub(crate) wait: Option<(Matcher, String)>,
    pub(crate) decode: Decode<'a, T>,
}

impl<T> fmt::Debug for Request<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("oob", &self.oob)
            .field("fds", &self.fds.len())
            .field("wait", &self.wait.as_ref().map(|w| &w.1))
            .finish()
    }
}

fn raw_return(name: &str, json: &str) -> Result<Box<RawValue>, Error> {
    RawValue::from_string(json.to_owned()).map_err(|e| Error::decode(name, e, json))
}

impl<'a, C: Command + Sync> From<&'a C> for Request<'a, C::Returns>
where
    C::Returns: 'a,
{
    fn from(cmd: &'a C) -> Self {
        Request::new(cmd)
    }
}

impl<'a> Request<'a, Box<RawValue>> {
    /// A command by name with these arguments (any `Serialize` value that encodes
    /// as a JSON object, e.g. `serde_json::json!({...})`, a `RawValue` or a struct).
    /// It returns the JSON of `return`. `exec-oob` is sent as asked: QEMU itself
    /// rejects it for commands that do not allow it.
    pub fn raw(name: &'a str, args: &impl Serialize) -> Request<'a, Box<RawValue>> {
        let mut r = Request::name(name);
        r.args = Args::Json(serde_json::to_vec(args));
        r
    }

    /// A command by name without arguments; returns the JSON of `return`.
    pub fn name(name: &'a str) -> Request<'a, Box<RawValue>> {
        Request {
            name: Cow::Borrowed(name),
            static_name: None,
            args: Args::None,
            allow_oob: true,
            success_response: true,
            timeout: None,
            oob: false,
            fds: &[],
            wait: None,
            decode: Box::new(move |json, _| raw_return(name, json)),
        }
    }
}

impl<'a, T: 'a> Request<'a, T> {
    /// A typed command; it returns the command's typed result.
    pub fn new<C: Command<Returns = T> + Sync>(cmd: &'a C) -> Request<'a, T> {
        Request {
            name: Cow::Borrowed(C::NAME),
            static_name: Some(C::NAME),
            args: if C::HAS_ARGUMENTS {
                Args::Typed(cmd)
            } else {
                Args::None
            },
            allow_oob: C::ALLOW_OOB,
            success_response: C::SUCCESS_RESPONSE,
            timeout: None,
            oob: false,
            fds: &[],
            wait: None,
            decode: Box::new(|json, _| {
                C::decode_return(json).map_err(|e| Error::decode(C::NAME, e, json))
            }),
        }
    }

    /// The command's wire name.
    pub fn command(&self) -> &str {
        &self.name
    }

    /// The deadline of this call, replacing the connection's default for the
    /// command ([`Timeouts`](crate::Timeouts)). With [`Request::wait_for`], the deadline
    /// covers the reply and the event. The tokio clients' timer has millisecond
    /// granularity, so a reply may still win against a sub-millisecond deadline.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(Some(t));
        self
    }

    /// Waits forever for this call.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = Some(None);
        self
    }

    /// Sends `exec-oob` instead of `execute` (an error when the connection did not
    /// negotiate `oob`, when a typed command does not allow it, and on the guest agent).
    pub fn oob(mut self) -> Self {
        self.oob = true;
        self
    }

    /// Passes these file descriptors (SCM_RIGHTS) with the command's own message
    /// (an error over TCP and on the guest agent, which takes none). QEMU keeps only
    /// the last set received, so pass them to the command that uses them.
    pub fn fds(mut self, fds: &'a [BorrowedFd<'a>]) -> Self {
        self.fds = fds;
        self
    }

    /// Also waits for the first event `filter` accepts after the command is written
    /// (armed before writing, so it cannot be missed, whether it comes before or after
    /// the reply), and returns it with the result. Such an event goes to the call, not
    /// to the connection's queue; subscriptions see it too. An error reply ends the
    /// call at once.
    pub fn wait_for<E: Send + 'static>(self, filter: EventFilter<E>) -> Request<'a, (T, E)> {
        let desc = filter.describe();
        let decode = self.decode;
        Request {
            name: self.name,
            static_name: self.static_name,
            args: self.args,
            allow_oob: self.allow_oob,
            success_response: self.success_response,
            timeout: self.timeout,
            oob: self.oob,
            fds: self.fds,
            wait: Some((filter.into_matcher(), desc)),
            decode: Box::new(move |json, event| {
                let ret = decode(json, None)?;
                match event {
                    Some(e) => Ok((ret, downcast::<E>(e))),
                    None => Err(Error::Protocol {
                        reason: "the call ended without its event".into(),
                        excerpt: String::new(),
                    }),
                }
            }),
        }
    }
}

impl<T> Request<'_, T> {
    /// Writes the `{"execute":...` text of this request into `w` (without the id and
    /// the closing brace).
    pub(crate) fn encode_into(&mut self, w: &mut Vec<u8>) -> Result<(), Error> {
        begin_request(w, &self.name, self.oob);
        let result = match &self.args {
            Args::None => Ok(()),
            Args::Typed(c) => push_arguments(w, |w| c.write_args(w)),
            Args::Json(Ok(bytes)) => push_arguments(w, |w| {
                w.extend_from_slice(bytes);
                Ok(())
            }),
            Args::Json(Err(_)) => match std::mem::replace(&mut self.args, Args::None) {
                Args::Json(Err(e)) => Err(e),
                _ => Ok(()),
            },
        };
        result.map_err(|source| Error::Encode {
            command: self.name.clone().into_owned(),
            source,
        })
    }
}

/// Starts a request: `{"execute":"NAME"` (or `exec-oob`).
pub(crate) fn begin_request(w: &mut Vec<u8>, name: &str, oob: bool) {
    w.extend_from_slice(if oob {
        b"{\"exec-oob\":"
    } else {
        b"{\"execute\":"
    });
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        w.push(b'"');
        w.extend_from_slice(name.as_bytes());
        w.push(b'"');
    } else {
        // Infallible for a &str into a Vec.
        let _ = serde_json::to_writer(&mut *w, name);
    }
}

/// Appends `,"arguments":` and the arguments written by `write`, dropping them again
/// when they are the empty object.
fn push_arguments(
    w: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>,
) -> Result<(), serde_json::Error> {
    let mark = w.len();
    w.extend_from_slice(b",\"arguments\":");
    let args_at = w.len();
    write(w)?;
    if &w[args_at..] == b"{}" || w.len() == args_at {
        w.truncate(mark);
    }
    Ok(())
}
