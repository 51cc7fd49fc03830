//! Running a job to its end (block jobs, `blockdev-create`, `snapshot-save`, ...) and
//! following a migration to `completed` or `failed`, through their events, with a
//! deadline on everything.
//!
//! [`Job::run`] starts a job with any command that creates one and follows its
//! `JOB_STATUS_CHANGE` events until the job is gone (`null`): `job-complete` when it is
//! `ready` (mirror, active commit), `job-finalize` when it waits in `pending`
//! (`auto-finalize: false`), `job-dismiss` when it waits in `concluded`
//! (`auto-dismiss: false`, and always for `blockdev-create` and the snapshot jobs).
//! What to do is decided from `query-jobs` each time, never from the command's
//! arguments, so every job type works. The job's own error (`query-jobs`' `error`)
//! comes back typed, in [`JobError::Failed`].
//!
//! ```no_run
//! use std::time::Duration;
//! use qmp_types::jobs::{Job, JobError};
//! use qmp_types::qmp::{commands as c, MirrorSyncMode};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let mut qmp = qmp_types::client::Qmp::connect_unix("/run/qmp.sock")?;
//! let mut mirror = c::BlockdevMirror::new("src", "dst", MirrorSyncMode::Full);
//! mirror.job_id = Some("m0".into());
//! mirror.auto_dismiss = Some(false); // keep the job until its error was read
//! let done = Job::new()
//!     .timeout(Duration::from_secs(300))
//!     .on_progress(|info| println!("{}/{}", info.current_progress, info.total_progress))
//!     .run(&mut qmp, &mirror);
//! match done {
//!     Ok(report) => println!("mirrored in {:?}: {:?}", report.elapsed, report.statuses),
//!     Err(JobError::Failed { info }) => println!("{} failed: {:?}", info.id, info.error),
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(()) }
//! ```
//!
//! [`Migration::run`] enables the `events` migration capability (QEMU sends `MIGRATION`
//! only with it), starts the migration with `migrate` (or any command) and follows
//! `MIGRATION` events to `completed`, `failed` or `cancelled`, reading `query-migrate`
//! at the end (and for progress) so a failure carries QEMU's `error-desc`.
//!
//! With the `tokio` feature, `Job::run_async` and `Migration::run_async` do the
//! same on the tokio client (code spans, not links: without the feature they are not
//! there to link to): both drivers carry out the steps of one I/O-free state
//! machine per run, so they decide alike.
//!
//! Both arm their event filter before the command is written (the client's
//! `Request::wait_for`), so no event can be missed, even one sent before the reply;
//! events of other jobs stay queued on the connection.

use std::fmt;
use std::time::{Duration, Instant};

mod flow;
#[cfg(feature = "tokio")]
mod tokio;

use crate::client::{Error, Qmp, Request};
use crate::qmp::{commands as c, JobInfo, JobStatus, MigrationInfo, MigrationStatus};
use crate::Command;
use flow::{JobCommand, JobFlow, JobInput, JobStep, MigrationFlow, MigrationInput, MigrationStep};

/// How long a job or migration may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// How often `query-jobs`/`query-migrate` is read for progress while no event comes.
const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// A progress callback.
type Progress<'a, T> = Box<dyn FnMut(&T) + Send + 'a>;

/// Runs one job to its end. Build with [`Job::new`] and the setters, then [`Job::run`].
#[must_use = "a Job does nothing until it is run"]
pub struct Job<'a> {
    id: Option<String>,
    timeout: Duration,
    poll: Duration,
    complete_when_ready: bool,
    dismiss: bool,
    progress: Option<Progress<'a, JobInfo>>,
}

impl fmt::Debug for Job<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("timeout", &self.timeout)
            .field("poll", &self.poll)
            .field("complete_when_ready", &self.complete_when_ready)
            .field("dismiss", &self.dismiss)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Default for Job<'_> {
    fn default() -> Self {
        Job::new()
    }
}

/// What a job did, when it ended without error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    /// The job as `query-jobs` last listed it (in `concluded` when it was kept until
    /// dismissed; an auto-dismissed job may be gone before `concluded` can be read).
    pub info: JobInfo,
    /// Every status its `JOB_STATUS_CHANGE` events announced, in order.
    pub statuses: Vec<JobStatus>,
    /// From the start command to the job's end.
    pub elapsed: Duration,
}

/// Why a job did not end well.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobError {
    /// The command that starts the job, or a job command, failed; or the connection did.
    Client(Error),
    /// The job ended with an error: `info.error` is QEMU's description (from
    /// `query-jobs`, or from `BLOCK_JOB_COMPLETED` for an auto-dismissed block job).
    Failed {
        /// The job as last seen, its `error` set.
        info: JobInfo,
    },
    /// The deadline passed before the job ended (it is left as it is).
    Timeout {
        /// The job.
        id: String,
        /// Its last announced status.
        status: Option<JobStatus>,
        /// How long it was followed.
        waited: Duration,
    },
    /// The job's id could not be told from the command's arguments (no `job-id` or
    /// `device`): set it with [`Job::id`].
    NoJobId {
        /// The command.
        command: &'static str,
    },
}

impl JobError {
    /// QEMU's description of the job's own error, when it failed.
    pub fn job_error(&self) -> Option<&str> {
        match self {
            JobError::Failed { info } => info.error.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Client(e) => e.fmt(f),
            JobError::Failed { info } => write!(
                f,
                "job {} ({}) failed: {}",
                info.id,
                info.r#type,
                info.error.as_deref().unwrap_or("no description")
            ),
            JobError::Timeout { id, status, waited } => match status {
                Some(s) => write!(f, "job {id} still {s} after {waited:?}"),
                None => write!(f, "job {id} announced no status within {waited:?}"),
            },
            JobError::NoJobId { command } => write!(
                f,
                "{command}: no job-id or device in the arguments; set Job::id"
            ),
        }
    }
}

impl std::error::Error for JobError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JobError::Client(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for JobError {
    fn from(e: Error) -> JobError {
        JobError::Client(e)
    }
}

impl<'a> Job<'a> {
    /// A runner with a 120 s deadline that completes a `ready` job and dismisses a
    /// concluded one.
    pub fn new() -> Job<'a> {
        Job {
            id: None,
            timeout: DEFAULT_TIMEOUT,
            poll: DEFAULT_POLL,
            complete_when_ready: true,
            dismiss: true,
            progress: None,
        }
    }

    /// The job's id, when the command's arguments do not name it (`job-id`, else
    /// `device`, are read from them).
    pub fn id(mut self, id: &str) -> Job<'a> {
        self.id = Some(id.to_owned());
        self
    }

    /// The deadline for the whole job, from the start command to its end (120 s by
    /// default).
    pub fn timeout(mut self, timeout: Duration) -> Job<'a> {
        self.timeout = timeout;
        self
    }

    /// Calls `progress` with the job's `query-jobs` entry (`current-progress`,
    /// `total-progress`) at each status change and every `poll` interval (1 s by
    /// default, [`Job::poll`]) while no event comes.
    pub fn on_progress(mut self, progress: impl FnMut(&JobInfo) + Send + 'a) -> Job<'a> {
        self.progress = Some(Box::new(progress));
        self
    }

    /// How often progress is read while no event comes.
    pub fn poll(mut self, poll: Duration) -> Job<'a> {
        self.poll = poll.max(Duration::from_millis(10));
        self
    }

    /// Whether a `ready` job gets `job-complete` (true by default; false leaves a
    /// mirror mirroring, and the run ends with [`JobError::Timeout`] unless someone
    /// else completes or cancels it).
    pub fn complete_when_ready(mut self, yes: bool) -> Job<'a> {
        self.complete_when_ready = yes;
        self
    }

    /// Whether a job waiting in `concluded` gets `job-dismiss` (true by default; with
    /// false the run ends at `concluded` and the job stays listed).
    pub fn dismiss(mut self, yes: bool) -> Job<'a> {
        self.dismiss = yes;
        self
    }

    /// Starts the job with `cmd` and follows it to its end.
    pub fn run<C: Command + Sync>(
        &mut self,
        qmp: &mut Qmp,
        cmd: &C,
    ) -> Result<JobReport, JobError> {
        let mut flow = JobFlow::new(self, cmd)?;
        let mut step = flow.start();
        loop {
            let input = match step {
                JobStep::Start { timeout, filter } => {
                    let (_, event) =
                        qmp.execute(Request::new(cmd).timeout(timeout).wait_for(filter))?;
                    JobInput::Event(event)
                }
                JobStep::QueryJobs => JobInput::Jobs(qmp.execute(&c::QueryJobs)?),
                JobStep::Execute(JobCommand::Complete(cmd)) => {
                    qmp.execute(&cmd)?;
                    JobInput::Executed
                }
                JobStep::Execute(JobCommand::Finalize(cmd)) => {
                    qmp.execute(&cmd)?;
                    JobInput::Executed
                }
                JobStep::Execute(JobCommand::Dismiss(cmd)) => {
                    qmp.execute(&cmd)?;
                    JobInput::Executed
                }
                JobStep::Wait { filter, wait } => match qmp.wait_event(&filter, wait) {
                    Ok(event) => JobInput::Event(event),
                    Err(Error::Timeout { .. }) => JobInput::TimedOut,
                    Err(e) => return Err(e.into()),
                },
                JobStep::Done(outcome) => return outcome,
            };
            step = flow.next(input, Instant::now());
        }
    }
}

/// Follows one migration to its end. Build with [`Migration::new`] and the setters,
/// then [`Migration::run`].
#[must_use = "a Migration does nothing until it is run"]
pub struct Migration<'a> {
    timeout: Duration,
    poll: Duration,
    enable_events: bool,
    progress: Option<Progress<'a, MigrationInfo>>,
}

impl fmt::Debug for Migration<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migration")
            .field("timeout", &self.timeout)
            .field("poll", &self.poll)
            .field("enable_events", &self.enable_events)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Default for Migration<'_> {
    fn default() -> Self {
        Migration::new()
    }
}

/// Why a migration did not complete.
#[derive(Debug)]
#[non_exhaustive]
pub enum MigrationError {
    /// A command failed (`migrate` itself, `query-migrate`, ...), or the connection.
    Client(Error),
    /// The migration ended `failed`; `info.error_desc` is QEMU's description.
    Failed {
        /// `query-migrate` after the failure.
        info: Box<MigrationInfo>,
    },
    /// The migration was cancelled (`migrate_cancel`).
    Cancelled {
        /// `query-migrate` after the cancellation.
        info: Box<MigrationInfo>,
    },
    /// The deadline passed (the migration is left running).
    Timeout {
        /// The last status seen.
        status: Option<MigrationStatus>,
        /// How long it was followed.
        waited: Duration,
    },
}

impl fmt::Display for MigrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrationError::Client(e) => e.fmt(f),
            MigrationError::Failed { info } => write!(
                f,
                "migration failed: {}",
                info.error_desc.as_deref().unwrap_or("no description")
            ),
            MigrationError::Cancelled { .. } => f.write_str("migration cancelled"),
            MigrationError::Timeout { status, waited } => match status {
                Some(s) => write!(f, "migration still {s} after {waited:?}"),
                None => write!(f, "migration announced no status within {waited:?}"),
            },
        }
    }
}

impl std::error::Error for MigrationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MigrationError::Client(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for MigrationError {
    fn from(e: Error) -> MigrationError {
        MigrationError::Client(e)
    }
}

/// What a completed migration did.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationReport {
    /// `query-migrate` after completion (`total-time`, `downtime`, `ram`, ...).
    pub info: MigrationInfo,
    /// Every status its `MIGRATION` events announced, in order.
    pub statuses: Vec<MigrationStatus>,
    /// From the start command to completion.
    pub elapsed: Duration,
}

impl<'a> Migration<'a> {
    /// A follower with a 120 s deadline that enables the `events` capability first.
    pub fn new() -> Migration<'a> {
        Migration {
            timeout: DEFAULT_TIMEOUT,
            poll: DEFAULT_POLL,
            enable_events: true,
            progress: None,
        }
    }

    /// The deadline, from the start command to the end (120 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Migration<'a> {
        self.timeout = timeout;
        self
    }

    /// How often `query-migrate` is read while no event comes (1 s by default); it
    /// also ends the wait should events be off.
    pub fn poll(mut self, poll: Duration) -> Migration<'a> {
        self.poll = poll.max(Duration::from_millis(10));
        self
    }

    /// Calls `progress` with each `query-migrate` result read while waiting.
    pub fn on_progress(
        mut self,
        progress: impl FnMut(&MigrationInfo) + Send + 'a,
    ) -> Migration<'a> {
        self.progress = Some(Box::new(progress));
        self
    }

    /// Whether to enable the `events` migration capability first (true by default;
    /// set false when it is already on, or on a QEMU that refuses capability changes).
    pub fn enable_events(mut self, yes: bool) -> Migration<'a> {
        self.enable_events = yes;
        self
    }

    /// Starts the migration with `cmd` (`migrate`; `migrate-incoming` on a destination)
    /// and follows it to `completed`, `failed` or `cancelled`.
    pub fn run<C: Command + Sync>(
        &mut self,
        qmp: &mut Qmp,
        cmd: &C,
    ) -> Result<MigrationReport, MigrationError> {
        let mut flow = MigrationFlow::new(self);
        let mut step = flow.start();
        loop {
            let input = match step {
                MigrationStep::EnableEvents(caps) => {
                    qmp.execute(&caps)?;
                    MigrationInput::Executed
                }
                MigrationStep::Start { timeout, filter } => {
                    let (_, event) =
                        qmp.execute(Request::new(cmd).timeout(timeout).wait_for(filter))?;
                    MigrationInput::Event(event)
                }
                MigrationStep::QueryMigrate => {
                    MigrationInput::Info(Box::new(qmp.execute(&c::QueryMigrate)?))
                }
                MigrationStep::Wait { filter, wait } => match qmp.wait_event(&filter, wait) {
                    Ok(event) => MigrationInput::Event(event),
                    Err(Error::Timeout { .. }) => MigrationInput::TimedOut,
                    Err(e) => return Err(e.into()),
                },
                MigrationStep::Done(outcome) => return *outcome,
            };
            step = flow.next(input, Instant::now());
        }
    }
}
