//! One test body, both drivers: [`Driver`] connects, [`QmpClient`] and [`QgaClient`]
//! are the clients' surface as the tests use it, implemented by the blocking clients
//! themselves and by the tokio clients on a runtime of the test's own
//! (`tokio_driver.rs`). `dual_tests!` instantiates a body written once as the tests
//! `NAME::blocking` and `NAME::tokio`.

use std::net::TcpListener;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use qmp_types::client::mock::MockServer;
use qmp_types::client::monitor::Monitor;
use qmp_types::client::recovery::{self, Created};
use qmp_types::client::{
    AddFdInfo, Endpoint, Error, EventFilter, Greeting, Instance, Options, Qga, Qmp, RawEvent,
    Request, ServerSchema, Stats,
};
use qmp_types::jobs::{Job, JobError, JobReport, Migration, MigrationError, MigrationReport};
use qmp_types::Command;

/// Runs test bodies on both drivers: each `NAME` is a function `fn NAME(d: &impl
/// Driver)` written once (and formatted as any code), instantiated as the tests
/// `NAME::blocking` and `NAME::tokio`. Attributes before a name (`cfg`) apply to both.
/// Without the `tokio` feature the tokio half fails saying so: nothing is skipped
/// silently.
macro_rules! dual_tests {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {$(
        $(#[$attr])*
        mod $name {
            #[test]
            fn blocking() {
                super::$name(&crate::common::Blocking);
            }

            #[test]
            fn tokio() {
                #[cfg(feature = "tokio")]
                super::$name(&crate::common::Tokio::new());
                #[cfg(not(feature = "tokio"))]
                panic!("the tokio half of this test needs the `tokio` feature (cargo test --all-features)");
            }
        }
    )*};
}

/// How a driver connects its clients.
pub trait Driver {
    /// `blocking` or `tokio`, for messages.
    const NAME: &'static str;
    /// Its QMP client.
    type Qmp: QmpClient + std::fmt::Debug;
    /// Its guest agent client.
    type Qga: QgaClient + std::fmt::Debug;

    /// Connects to a mock server with default options (`MockServer::connect`).
    fn connect_mock(&self, mock: &MockServer) -> Result<Self::Qmp, Error> {
        let path = mock.path().expect("a mock server listening on a path");
        self.connect_to(Endpoint::Unix(path.to_owned()), &Options::default())
    }

    /// [`Driver::NAME`], for file names that must differ between the two halves.
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// [`Instance::connect`] (the launcher's options, retried while QEMU starts).
    fn connect(&self, vm: &Instance) -> Result<Self::Qmp, Error>;
    /// [`Instance::connect_with`].
    fn connect_with(&self, vm: &Instance, opts: &Options) -> Result<Self::Qmp, Error>;
    /// `Qmp::connect` (an fd endpoint: `Qmp::from_stream`).
    fn connect_to(&self, endpoint: Endpoint, opts: &Options) -> Result<Self::Qmp, Error>;
    /// `Qmp::accept`.
    fn accept(&self, listener: &UnixListener, opts: &Options) -> Result<Self::Qmp, Error>;
    /// `Qmp::accept_tcp`.
    fn accept_tcp(&self, listener: &TcpListener, opts: &Options) -> Result<Self::Qmp, Error>;
    /// [`Instance::connect_qga`].
    fn connect_qga(&self, ga: &Instance) -> Result<Self::Qga, Error>;
    /// `Qga::connect` (an fd endpoint: `Qga::from_stream`).
    fn connect_qga_to(&self, endpoint: Endpoint, opts: &Options) -> Result<Self::Qga, Error>;
    /// [`Instance::connect_agent`]: a guest's agent, waited for while it boots.
    fn connect_agent(&self, vm: &Instance) -> Result<Self::Qga, Error>;
    /// [`Instance::connect_agent_within`].
    fn connect_agent_within(&self, vm: &Instance, wait: Duration) -> Result<Self::Qga, Error>;
}

/// A QMP client as the tests drive it: the blocking client's methods, each carried
/// out by the driver's own.
pub trait QmpClient {
    /// A subscription of [`QmpClient::subscribe`].
    type Sub<'a, T: Send + 'static>: Sub<T>
    where
        Self: 'a;
    /// The client as a [`Monitor`].
    type Monitor<'a>: Monitor<Error = Error>
    where
        Self: 'a;

    fn execute<'a, T: 'a>(&self, request: impl Into<Request<'a, T>>) -> Result<T, Error>;
    fn greeting(&self) -> Option<&Greeting>;
    fn oob_enabled(&self) -> bool;
    fn stats(&self) -> Stats;
    fn set_timeout(&self, timeout: Option<Duration>);
    fn hmp(&self, line: &str) -> Result<String, Error>;
    fn getfd(&self, name: &str, fd: BorrowedFd<'_>) -> Result<(), Error>;
    fn add_fd(
        &self,
        fdset_id: Option<i64>,
        opaque: Option<&str>,
        fd: BorrowedFd<'_>,
    ) -> Result<AddFdInfo, Error>;
    /// A queued event; `Err(Disconnected)` when none is and the connection closed.
    fn poll_event(&self) -> Result<Option<RawEvent>, Error>;
    /// The next queued event within `timeout` (`None`: forever); `Ok(None)` on timeout.
    fn next_event(&self, timeout: Option<Duration>) -> Result<Option<RawEvent>, Error>;
    fn wait_event<T: Send + 'static>(
        &self,
        filter: &EventFilter<T>,
        timeout: Duration,
    ) -> Result<T, Error>;
    fn drain_events(&self) -> Vec<RawEvent>;
    fn dropped_events(&self) -> u64;
    fn subscribe<T: Send + 'static>(&self, filter: EventFilter<T>) -> Self::Sub<'_, T>;
    fn schema(&self) -> Result<&ServerSchema, Error>;
    fn has_command(&self, name: &str) -> Result<bool, Error>;
    fn has_event(&self, name: &str) -> Result<bool, Error>;
    fn has_argument(&self, command: &str, argument: &str) -> Result<bool, Error>;
    fn supports<C: Command>(&self) -> Result<bool, Error>;
    fn is_closed(&self) -> bool;
    fn reconnect(&mut self) -> Result<(), Error>;
    /// `Job::run` (blocking) or `Job::run_async` (tokio).
    fn run_job<C: Command + Sync>(
        &mut self,
        job: &mut Job<'_>,
        cmd: &C,
    ) -> Result<JobReport, JobError>;
    /// `Migration::run` (blocking) or `Migration::run_async` (tokio).
    fn run_migration<C: Command + Sync>(
        &mut self,
        migration: &mut Migration<'_>,
        cmd: &C,
    ) -> Result<MigrationReport, MigrationError>;
    fn monitor(&self) -> Self::Monitor<'_>;
    /// `recovery::add_once` (tokio: `add_once_async`).
    fn add_once<'a, T: 'a>(
        &self,
        what: Created<'_>,
        request: impl FnMut() -> Request<'a, T>,
    ) -> Result<bool, Error>;
    /// `recovery::block_node_exists` (tokio: `block_node_exists_async`).
    fn block_node_exists(&self, node_name: &str) -> Result<bool, Error>;
}

/// A subscription's events.
pub trait Sub<T> {
    /// The next event within `timeout` (`None`: forever); `Ok(None)` on timeout.
    fn next(&mut self, timeout: Option<Duration>) -> Result<Option<T>, Error>;
    /// An already queued event.
    fn try_next(&mut self) -> Option<T>;
    /// Events dropped because the subscription's queue was full.
    fn dropped(&self) -> u64;
}

/// A guest agent client as the tests drive it.
pub trait QgaClient {
    fn execute<'a, T: 'a>(&self, request: impl Into<Request<'a, T>>) -> Result<T, Error>;
    fn sync(&self, timeout: Duration) -> Result<(), Error>;
    fn stats(&self) -> Stats;
    fn is_closed(&self) -> bool;
}

/// The blocking clients ([`Qmp`], [`Qga`]).
pub struct Blocking;

impl Driver for Blocking {
    const NAME: &'static str = "blocking";
    type Qmp = Qmp;
    type Qga = Qga;

    fn connect(&self, vm: &Instance) -> Result<Qmp, Error> {
        vm.connect()
    }
    fn connect_with(&self, vm: &Instance, opts: &Options) -> Result<Qmp, Error> {
        vm.connect_with(opts)
    }
    fn connect_to(&self, endpoint: Endpoint, opts: &Options) -> Result<Qmp, Error> {
        Qmp::connect(endpoint, opts)
    }
    fn accept(&self, listener: &UnixListener, opts: &Options) -> Result<Qmp, Error> {
        Qmp::accept(listener, opts)
    }
    fn accept_tcp(&self, listener: &TcpListener, opts: &Options) -> Result<Qmp, Error> {
        Qmp::accept_tcp(listener, opts)
    }
    fn connect_qga(&self, ga: &Instance) -> Result<Qga, Error> {
        ga.connect_qga()
    }
    fn connect_qga_to(&self, endpoint: Endpoint, opts: &Options) -> Result<Qga, Error> {
        Qga::connect(endpoint, opts)
    }
    fn connect_agent(&self, vm: &Instance) -> Result<Qga, Error> {
        vm.connect_agent()
    }
    fn connect_agent_within(&self, vm: &Instance, wait: Duration) -> Result<Qga, Error> {
        vm.connect_agent_within(wait)
    }
}

impl QmpClient for Qmp {
    type Sub<'a, T: Send + 'static> = qmp_types::client::Subscription<'a, T>;
    type Monitor<'a> = &'a Qmp;

    fn execute<'a, T: 'a>(&self, request: impl Into<Request<'a, T>>) -> Result<T, Error> {
        Qmp::execute(self, request)
    }
    fn greeting(&self) -> Option<&Greeting> {
        Qmp::greeting(self)
    }
    fn oob_enabled(&self) -> bool {
        Qmp::oob_enabled(self)
    }
    fn stats(&self) -> Stats {
        Qmp::stats(self)
    }
    fn set_timeout(&self, timeout: Option<Duration>) {
        Qmp::set_timeout(self, timeout)
    }
    fn hmp(&self, line: &str) -> Result<String, Error> {
        Qmp::hmp(self, line)
    }
    fn getfd(&self, name: &str, fd: BorrowedFd<'_>) -> Result<(), Error> {
        Qmp::getfd(self, name, fd)
    }
    fn add_fd(
        &self,
        fdset_id: Option<i64>,
        opaque: Option<&str>,
        fd: BorrowedFd<'_>,
    ) -> Result<AddFdInfo, Error> {
        Qmp::add_fd(self, fdset_id, opaque, fd)
    }
    fn poll_event(&self) -> Result<Option<RawEvent>, Error> {
        Qmp::poll_event(self)
    }
    fn next_event(&self, timeout: Option<Duration>) -> Result<Option<RawEvent>, Error> {
        Qmp::next_event(self, timeout)
    }
    fn wait_event<T: Send + 'static>(
        &self,
        filter: &EventFilter<T>,
        timeout: Duration,
    ) -> Result<T, Error> {
        Qmp::wait_event(self, filter, timeout)
    }
    fn drain_events(&self) -> Vec<RawEvent> {
        Qmp::drain_events(self)
    }
    fn dropped_events(&self) -> u64 {
        Qmp::dropped_events(self)
    }
    fn subscribe<T: Send + 'static>(&self, filter: EventFilter<T>) -> Self::Sub<'_, T> {
        Qmp::subscribe(self, filter)
    }
    fn schema(&self) -> Result<&ServerSchema, Error> {
        Qmp::schema(self)
    }
    fn has_command(&self, name: &str) -> Result<bool, Error> {
        Qmp::has_command(self, name)
    }
    fn has_event(&self, name: &str) -> Result<bool, Error> {
        Qmp::has_event(self, name)
    }
    fn has_argument(&self, command: &str, argument: &str) -> Result<bool, Error> {
        Qmp::has_argument(self, command, argument)
    }
    fn supports<C: Command>(&self) -> Result<bool, Error> {
        Qmp::supports::<C>(self)
    }
    fn is_closed(&self) -> bool {
        Qmp::is_closed(self)
    }
    fn reconnect(&mut self) -> Result<(), Error> {
        Qmp::reconnect(self)
    }
    fn run_job<C: Command + Sync>(
        &mut self,
        job: &mut Job<'_>,
        cmd: &C,
    ) -> Result<JobReport, JobError> {
        job.run(self, cmd)
    }
    fn run_migration<C: Command + Sync>(
        &mut self,
        migration: &mut Migration<'_>,
        cmd: &C,
    ) -> Result<MigrationReport, MigrationError> {
        migration.run(self, cmd)
    }
    fn monitor(&self) -> &Qmp {
        self
    }
    fn add_once<'a, T: 'a>(
        &self,
        what: Created<'_>,
        request: impl FnMut() -> Request<'a, T>,
    ) -> Result<bool, Error> {
        recovery::add_once(self, what, request)
    }
    fn block_node_exists(&self, node_name: &str) -> Result<bool, Error> {
        recovery::block_node_exists(self, node_name)
    }
}

impl<T: 'static> Sub<T> for qmp_types::client::Subscription<'_, T> {
    fn next(&mut self, timeout: Option<Duration>) -> Result<Option<T>, Error> {
        qmp_types::client::Subscription::next(self, timeout)
    }
    fn try_next(&mut self) -> Option<T> {
        qmp_types::client::Subscription::try_next(self)
    }
    fn dropped(&self) -> u64 {
        qmp_types::client::Subscription::dropped(self)
    }
}

impl QgaClient for Qga {
    fn execute<'a, T: 'a>(&self, request: impl Into<Request<'a, T>>) -> Result<T, Error> {
        Qga::execute(self, request)
    }
    fn sync(&self, timeout: Duration) -> Result<(), Error> {
        Qga::sync(self, timeout)
    }
    fn stats(&self) -> Stats {
        Qga::stats(self)
    }
    fn is_closed(&self) -> bool {
        Qga::is_closed(self)
    }
}

/// `job.run_on(&mut qmp, &cmd)`: [`Job::run`] or [`Migration::run`] on either driver's
/// client (`Job::run_async` and `Migration::run_async` for tokio).
pub trait RunOn {
    /// What a successful run reports.
    type Report;
    /// Why a run failed.
    type Error;
    fn run_on<Q: QmpClient, C: Command + Sync>(
        &mut self,
        qmp: &mut Q,
        cmd: &C,
    ) -> Result<Self::Report, Self::Error>;
}

impl RunOn for Job<'_> {
    type Report = JobReport;
    type Error = JobError;
    fn run_on<Q: QmpClient, C: Command + Sync>(
        &mut self,
        qmp: &mut Q,
        cmd: &C,
    ) -> Result<JobReport, JobError> {
        qmp.run_job(self, cmd)
    }
}

impl RunOn for Migration<'_> {
    type Report = MigrationReport;
    type Error = MigrationError;
    fn run_on<Q: QmpClient, C: Command + Sync>(
        &mut self,
        qmp: &mut Q,
        cmd: &C,
    ) -> Result<MigrationReport, MigrationError> {
        qmp.run_migration(self, cmd)
    }
}
