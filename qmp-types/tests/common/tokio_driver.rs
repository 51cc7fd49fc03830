//! The tokio clients behind the tests' [`Driver`] traits: each test gets a runtime of
//! its own (multi-threaded, one worker, so the clients' reader and writer tasks run
//! between calls, as in a real program), and each call is one `block_on` of the
//! client's own async method.

use std::net::TcpListener;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::Duration;

use qmp_types::client::monitor::{self, EventStream, Monitor};
use qmp_types::client::recovery::{self, Created};
use qmp_types::client::tokio as tk;
use qmp_types::client::{
    AddFdInfo, Endpoint, Error, EventFilter, Greeting, Instance, Options, RawEvent, Request,
    ServerSchema, Stats,
};
use qmp_types::jobs::{Job, JobError, JobReport, Migration, MigrationError, MigrationReport};
use qmp_types::Command;
use serde_json::value::RawValue;
use tokio::runtime::Runtime;

use super::driver::{Driver, QgaClient, QmpClient, Sub};

/// The tokio clients, on this test's runtime.
pub struct Tokio {
    rt: Arc<Runtime>,
}

impl Tokio {
    pub fn new() -> Tokio {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Tokio { rt: Arc::new(rt) }
    }

    fn qmp(&self, r: Result<tk::Qmp, Error>) -> Result<TokioQmp, Error> {
        r.map(|qmp| TokioQmp {
            qmp,
            rt: self.rt.clone(),
        })
    }

    fn qga(&self, r: Result<tk::Qga, Error>) -> Result<TokioQga, Error> {
        r.map(|qga| TokioQga {
            qga,
            rt: self.rt.clone(),
        })
    }
}

/// A tokio QMP client and the runtime its tasks run on.
#[derive(Debug)]
pub struct TokioQmp {
    pub qmp: tk::Qmp,
    pub rt: Arc<Runtime>,
}

/// A tokio guest agent client and its runtime.
#[derive(Debug)]
pub struct TokioQga {
    pub qga: tk::Qga,
    pub rt: Arc<Runtime>,
}

impl Driver for Tokio {
    const NAME: &'static str = "tokio";
    type Qmp = TokioQmp;
    type Qga = TokioQga;

    fn connect(&self, vm: &Instance) -> Result<TokioQmp, Error> {
        self.qmp(self.rt.block_on(vm.connect_async()))
    }
    fn connect_with(&self, vm: &Instance, opts: &Options) -> Result<TokioQmp, Error> {
        self.qmp(self.rt.block_on(vm.connect_async_with(opts)))
    }
    fn connect_to(&self, endpoint: Endpoint, opts: &Options) -> Result<TokioQmp, Error> {
        self.qmp(self.rt.block_on(tk::Qmp::connect(endpoint, opts)))
    }
    fn accept(&self, listener: &UnixListener, opts: &Options) -> Result<TokioQmp, Error> {
        self.qmp(self.rt.block_on(tk::Qmp::accept(listener, opts)))
    }
    fn accept_tcp(&self, listener: &TcpListener, opts: &Options) -> Result<TokioQmp, Error> {
        self.qmp(self.rt.block_on(tk::Qmp::accept_tcp(listener, opts)))
    }
    fn connect_qga(&self, ga: &Instance) -> Result<TokioQga, Error> {
        self.qga(self.rt.block_on(ga.connect_qga_async()))
    }
    fn connect_qga_to(&self, endpoint: Endpoint, opts: &Options) -> Result<TokioQga, Error> {
        self.qga(self.rt.block_on(tk::Qga::connect(endpoint, opts)))
    }
    fn connect_agent(&self, vm: &Instance) -> Result<TokioQga, Error> {
        self.qga(self.rt.block_on(vm.connect_agent_async()))
    }
    fn connect_agent_within(&self, vm: &Instance, wait: Duration) -> Result<TokioQga, Error> {
        self.qga(self.rt.block_on(vm.connect_agent_within_async(wait)))
    }
}

impl QmpClient for TokioQmp {
    type Sub<'a, T: Send + 'static> = TokioSub<T>;
    type Monitor<'a> = &'a TokioQmp;

    fn execute<'a, T: 'a>(&self, request: impl Into<Request<'a, T>>) -> Result<T, Error> {
        self.rt.block_on(self.qmp.execute(request))
    }
    fn greeting(&self) -> Option<&Greeting> {
        self.qmp.greeting()
    }
    fn oob_enabled(&self) -> bool {
        self.qmp.oob_enabled()
    }
    fn stats(&self) -> Stats {
        self.qmp.stats()
    }
    fn set_timeout(&self, timeout: Option<Duration>) {
        self.qmp.set_timeout(timeout)
    }
    fn hmp(&self, line: &str) -> Result<String, Error> {
        self.rt.block_on(self.qmp.hmp(line))
    }
    fn getfd(&self, name: &str, fd: BorrowedFd<'_>) -> Result<(), Error> {
        self.rt.block_on(self.qmp.getfd(name, fd))
    }
    fn add_fd(
        &self,
        fdset_id: Option<i64>,
        opaque: Option<&str>,
        fd: BorrowedFd<'_>,
    ) -> Result<AddFdInfo, Error> {
        self.rt.block_on(self.qmp.add_fd(fdset_id, opaque, fd))
    }
    fn poll_event(&self) -> Result<Option<RawEvent>, Error> {
        match self.qmp.poll_event() {
            Some(e) => Ok(Some(e)),
            None if self.qmp.is_closed() => Err(Error::Disconnected { command: None }),
            None => Ok(None),
        }
    }
    fn next_event(&self, timeout: Option<Duration>) -> Result<Option<RawEvent>, Error> {
        let next = match timeout {
            None => Some(self.rt.block_on(self.qmp.next_event())),
            Some(t) => self
                .rt
                .block_on(async { tokio::time::timeout(t, self.qmp.next_event()).await.ok() }),
        };
        match next {
            None => Ok(None),
            Some(Some(e)) => Ok(Some(e)),
            Some(None) => Err(Error::Disconnected { command: None }),
        }
    }
    fn wait_event<T: Send + 'static>(
        &self,
        filter: &EventFilter<T>,
        timeout: Duration,
    ) -> Result<T, Error> {
        self.rt.block_on(self.qmp.wait_event(filter, timeout))
    }
    fn drain_events(&self) -> Vec<RawEvent> {
        self.qmp.drain_events()
    }
    fn dropped_events(&self) -> u64 {
        self.qmp.dropped_events()
    }
    fn subscribe<T: Send + 'static>(&self, filter: EventFilter<T>) -> TokioSub<T> {
        TokioSub {
            sub: self.qmp.subscribe(filter),
            rt: self.rt.clone(),
        }
    }
    fn schema(&self) -> Result<&ServerSchema, Error> {
        self.rt.block_on(self.qmp.schema())
    }
    fn has_command(&self, name: &str) -> Result<bool, Error> {
        self.rt.block_on(self.qmp.has_command(name))
    }
    fn has_event(&self, name: &str) -> Result<bool, Error> {
        self.rt.block_on(self.qmp.has_event(name))
    }
    fn has_argument(&self, command: &str, argument: &str) -> Result<bool, Error> {
        self.rt.block_on(self.qmp.has_argument(command, argument))
    }
    fn supports<C: Command>(&self) -> Result<bool, Error> {
        self.rt.block_on(self.qmp.supports::<C>())
    }
    fn is_closed(&self) -> bool {
        self.qmp.is_closed()
    }
    fn reconnect(&mut self) -> Result<(), Error> {
        self.rt.block_on(self.qmp.reconnect())
    }
    fn run_job<C: Command + Sync>(
        &mut self,
        job: &mut Job<'_>,
        cmd: &C,
    ) -> Result<JobReport, JobError> {
        self.rt.block_on(job.run_async(&self.qmp, cmd))
    }
    fn run_migration<C: Command + Sync>(
        &mut self,
        migration: &mut Migration<'_>,
        cmd: &C,
    ) -> Result<MigrationReport, MigrationError> {
        self.rt.block_on(migration.run_async(&self.qmp, cmd))
    }
    fn monitor(&self) -> &TokioQmp {
        self
    }
    fn add_once<'a, T: 'a>(
        &self,
        what: Created<'_>,
        request: impl FnMut() -> Request<'a, T>,
    ) -> Result<bool, Error> {
        self.rt
            .block_on(recovery::add_once_async(&self.qmp, what, request))
    }
    fn block_node_exists(&self, node_name: &str) -> Result<bool, Error> {
        self.rt
            .block_on(recovery::block_node_exists_async(&self.qmp, node_name))
    }
}

/// A tokio subscription and its runtime.
pub struct TokioSub<T> {
    sub: tk::Subscription<T>,
    rt: Arc<Runtime>,
}

impl<T: 'static> Sub<T> for TokioSub<T> {
    fn next(&mut self, timeout: Option<Duration>) -> Result<Option<T>, Error> {
        let sub = &mut self.sub;
        let next = match timeout {
            None => Some(self.rt.block_on(sub.next())),
            Some(t) => self
                .rt
                .block_on(async { tokio::time::timeout(t, sub.next()).await.ok() }),
        };
        match next {
            None => Ok(None),
            Some(Some(e)) => Ok(Some(e)),
            Some(None) => Err(Error::Disconnected { command: None }),
        }
    }
    fn try_next(&mut self) -> Option<T> {
        self.sub.try_next()
    }
    fn dropped(&self) -> u64 {
        self.sub.dropped()
    }
}

/// The tokio client as a [`Monitor`], as code generic over monitors would drive it.
impl Monitor for &TokioQmp {
    type Error = Error;
    type Events = TokioSub<RawEvent>;

    fn execute_raw(
        &self,
        name: &str,
        arguments: Option<&RawValue>,
    ) -> Result<Box<RawValue>, Error> {
        match arguments {
            Some(args) => QmpClient::execute(*self, Request::raw(name, &args)),
            None => QmpClient::execute(*self, Request::name(name)),
        }
    }
    fn hmp(&self, line: &str) -> Result<String, Error> {
        QmpClient::hmp(*self, line)
    }
    fn subscribe(&self, name: Option<&str>) -> Result<TokioSub<RawEvent>, Error> {
        let filter = match name {
            Some(n) => EventFilter::name(n),
            None => EventFilter::any(),
        };
        Ok(QmpClient::subscribe(*self, filter))
    }
}

impl EventStream for TokioSub<RawEvent> {
    type Error = Error;

    fn next_event(&mut self, timeout: Duration) -> Result<Option<monitor::RawEvent>, Error> {
        Ok(Sub::next(self, Some(timeout))?.map(|e| monitor::RawEvent {
            name: e.name().to_owned(),
            data: e
                .data()
                .and_then(|d| RawValue::from_string(d.to_owned()).ok()),
            timestamp: e.timestamp(),
        }))
    }
}

impl QgaClient for TokioQga {
    fn execute<'a, T: 'a>(&self, request: impl Into<Request<'a, T>>) -> Result<T, Error> {
        self.rt.block_on(self.qga.execute(request))
    }
    fn sync(&self, timeout: Duration) -> Result<(), Error> {
        self.rt.block_on(self.qga.sync(timeout))
    }
    fn stats(&self) -> Stats {
        self.qga.stats()
    }
    fn is_closed(&self) -> bool {
        self.qga.is_closed()
    }
}
