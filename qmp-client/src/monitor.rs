//! [`Monitor`]: what any route to a QEMU monitor offers, whoever carries the bytes.
//!
//! Two routes implement it: the direct client (QMP on a socket of QEMU's own) and
//! [`crate::libvirt::Domain`] (QEMU's monitor through libvirtd, which owns the socket).
//! Code written against the trait runs over either; what differs between routes
//! (connecting, options, ids, fd passing, out-of-band execution) stays on the types.
//!
//! The trait is deliberately small: three required methods (a raw command, an HMP line,
//! a raw event subscription) and typed conveniences built on them from `qapi-runtime`'s
//! [`Command`] and [`TypedEvent`] alone. An implementor may override the typed methods
//! (to skip a copy, say), but they must keep their meaning.
//!
//! ```no_run
//! # #[cfg(feature = "libvirt")] {
//! use std::time::Duration;
//! use qmp_client::monitor::{EventStream, Monitor};
//!
//! fn status(m: &impl Monitor) -> Result<String, Box<dyn std::error::Error>> {
//!     let reply = m.execute_raw("query-status", None)?; // the `return` member, as JSON text
//!     Ok(reply.get().to_owned())
//! }
//! let dom = qmp_client::libvirt::Domain::open("qemu:///system", "vm1")?;
//! println!("{}", status(&dom)?);
//! let mut stops = dom.subscribe(Some("STOP"))?;
//! if let Some(e) = stops.next_event(Duration::from_secs(5))? {
//!     println!("{} at {}.{:06}", e.name, e.timestamp.seconds, e.timestamp.microseconds);
//! }
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::marker::PhantomData;
use std::time::Duration;

use qapi_runtime::{Command, Timestamp, TypedEvent};
use serde_json::value::RawValue;

/// A QEMU monitor: typed and raw QMP commands, HMP lines, and event subscriptions.
///
/// Methods take `&self`: an implementation is shareable between threads if it is
/// `Sync`, and serialises or multiplexes calls itself. Every call is bounded by the
/// implementation's deadline and fails with a timeout error of its own when it passes
/// (what happens to the abandoned call is the implementation's to document).
pub trait Monitor {
    /// Every failure: the route's own (connection, timeout), QEMU's error replies (class
    /// and description kept), and decoding (for the typed methods, by [`DecodeError`]).
    type Error: std::error::Error + From<DecodeError> + Send + Sync + 'static;

    /// What [`Monitor::subscribe`] returns.
    type Events: EventStream<Error = Self::Error>;

    /// Executes the command `name` with `arguments` (a JSON object, or `None` for
    /// none) and returns the reply's `return` member as JSON text.
    ///
    /// The request carries no `id`: the route assigns ids if it needs them.
    fn execute_raw(
        &self,
        name: &str,
        arguments: Option<&RawValue>,
    ) -> Result<Box<RawValue>, Self::Error>;

    /// Runs one line of the human monitor (`human-monitor-command`, or the route's own
    /// way to send HMP) and returns its text output.
    fn hmp(&self, line: &str) -> Result<String, Self::Error>;

    /// Subscribes to events named `name` (every event when `None`), from now on:
    /// events are queued for the subscription from the moment this returns.
    fn subscribe(&self, name: Option<&str>) -> Result<Self::Events, Self::Error>;

    /// Executes a typed command and decodes its typed return.
    fn execute<C: Command>(&self, command: &C) -> Result<C::Returns, Self::Error> {
        let arguments = if C::HAS_ARGUMENTS {
            let mut out = Vec::new();
            command
                .write_arguments(&mut out)
                .map_err(|source| DecodeError::new(C::NAME, "arguments", source))?;
            let text = String::from_utf8(out).map_err(|e| {
                DecodeError::new(
                    C::NAME,
                    "arguments",
                    serde::ser::Error::custom(format!("not UTF-8: {e}")),
                )
            })?;
            Some(
                RawValue::from_string(text)
                    .map_err(|source| DecodeError::new(C::NAME, "arguments", source))?,
            )
        } else {
            None
        };
        let reply = self.execute_raw(C::NAME, arguments.as_deref())?;
        C::decode_return(reply.get())
            .map_err(|source| DecodeError::new(C::NAME, "return", source).into())
    }

    /// Subscribes to the event `T` ([`TypedEvent::NAME`]), decoded as it is received.
    fn subscribe_to<T: TypedEvent>(&self) -> Result<Typed<Self::Events, T>, Self::Error> {
        Ok(Typed {
            events: self.subscribe(Some(T::NAME))?,
            _event: PhantomData,
        })
    }
}

/// A queue of received events, in the order the monitor sent them.
pub trait EventStream {
    /// The monitor's error type.
    type Error;

    /// The next event, waiting at most `timeout`; `None` when none came in time.
    fn next_event(&mut self, timeout: Duration) -> Result<Option<RawEvent>, Self::Error>;
}

/// An event as the monitor sent it: name, `data` as JSON text, QEMU's timestamp.
#[derive(Debug, Clone)]
pub struct RawEvent {
    /// The wire name, e.g. `STOP`.
    pub name: String,
    /// The JSON text of the `data` member (`None` when the event has none).
    pub data: Option<Box<RawValue>>,
    /// When QEMU emitted it.
    pub timestamp: Timestamp,
}

impl RawEvent {
    /// Decodes the data as the typed event `T` (whose name this event must have).
    pub fn decode<T: TypedEvent>(&self) -> Result<T, DecodeError> {
        if self.name != T::NAME {
            return Err(DecodeError::new(
                &self.name,
                "event",
                serde::de::Error::custom(format!("expected event {}", T::NAME)),
            ));
        }
        T::decode_data(self.data.as_deref().map(RawValue::get))
            .map_err(|source| DecodeError::new(&self.name, "event data", source))
    }
}

/// A subscription to one typed event (from [`Monitor::subscribe_to`]).
#[derive(Debug)]
pub struct Typed<S, T> {
    events: S,
    _event: PhantomData<fn() -> T>,
}

impl<S, T> Typed<S, T>
where
    S: EventStream,
    S::Error: From<DecodeError>,
    T: TypedEvent,
{
    /// The next event, decoded, with its timestamp; `None` when none came in time.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<(T, Timestamp)>, S::Error> {
        match self.events.next_event(timeout)? {
            None => Ok(None),
            Some(e) => Ok(Some((e.decode::<T>()?, e.timestamp))),
        }
    }

    /// The underlying raw subscription.
    pub fn into_raw(self) -> S {
        self.events
    }
}

/// A command's arguments that did not encode, or a reply or event that did not decode
/// as its type.
#[derive(Debug)]
pub struct DecodeError {
    /// The command or event name.
    pub name: String,
    /// What was being encoded or decoded: `arguments`, `return`, `event data`, ...
    pub what: &'static str,
    /// serde_json's error (with line and column of the JSON text).
    pub source: serde_json::Error,
}

impl DecodeError {
    /// A failure to code `what` of `name`.
    pub fn new(name: &str, what: &'static str, source: serde_json::Error) -> DecodeError {
        DecodeError {
            name: name.to_owned(),
            what,
            source,
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}: {}", self.what, self.name, self.source)
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The direct client is a [`Monitor`] too, by reference (a subscription borrows its
/// connection), so code generic over `Monitor` runs against `&Qmp` and a libvirt
/// domain alike.
impl<'q> Monitor for &'q crate::Qmp {
    type Error = crate::Error;
    type Events = DirectEvents<'q>;

    fn execute_raw(
        &self,
        name: &str,
        arguments: Option<&RawValue>,
    ) -> Result<Box<RawValue>, crate::Error> {
        match arguments {
            Some(args) => crate::Qmp::execute(self, crate::Request::raw(name, &args)),
            None => crate::Qmp::execute(self, crate::Request::name(name)),
        }
    }

    fn hmp(&self, line: &str) -> Result<String, crate::Error> {
        crate::Qmp::hmp(self, line)
    }

    fn subscribe(&self, name: Option<&str>) -> Result<DirectEvents<'q>, crate::Error> {
        let filter = match name {
            Some(n) => crate::EventFilter::name(n),
            None => crate::EventFilter::any(),
        };
        Ok(DirectEvents(crate::Qmp::subscribe(self, filter)))
    }
}

/// The events of a [`Monitor::subscribe`] on the direct client.
#[derive(Debug)]
pub struct DirectEvents<'q>(crate::Subscription<'q, crate::RawEvent>);

impl EventStream for DirectEvents<'_> {
    type Error = crate::Error;

    fn next_event(&mut self, timeout: Duration) -> Result<Option<RawEvent>, crate::Error> {
        Ok(self.0.next(Some(timeout))?.map(|e| RawEvent {
            name: e.name().to_owned(),
            data: e
                .data()
                .and_then(|d| RawValue::from_string(d.to_owned()).ok()),
            timestamp: e.timestamp(),
        }))
    }
}

impl From<DecodeError> for crate::Error {
    fn from(e: DecodeError) -> crate::Error {
        crate::Error::Decode {
            command: e.name,
            source: e.source,
            json: String::new(),
        }
    }
}
