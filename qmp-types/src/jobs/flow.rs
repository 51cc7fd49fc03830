//! The decisions of [`Job::run`] and [`Migration::run`] as I/O-free state machines:
//! each takes what the last step brought (an event, a `query-jobs` or `query-migrate`
//! result, a command done, a wait that timed out) and says what to do next. The
//! blocking and the tokio drivers (`jobs.rs`, `jobs/tokio.rs`) only carry the steps
//! out, so both decide alike.

use std::time::{Duration, Instant};

use super::{Job, JobError, JobReport, Migration, MigrationError, MigrationReport};
use crate::client::{EventFilter, RawEvent};
use crate::qmp::{self, commands as c, JobInfo, JobStatus, MigrationInfo, MigrationStatus};
use crate::Command;

#[cfg(test)]
mod tests;

/// What the job's driver executes, waits for or returns next.
pub(super) enum JobStep {
    /// The command that starts the job, with this deadline, waiting for `filter`'s event.
    Start {
        timeout: Duration,
        filter: EventFilter<RawEvent>,
    },
    /// `query-jobs`; its list goes to [`JobInput::Jobs`].
    QueryJobs,
    /// A job command; then [`JobInput::Executed`].
    Execute(JobCommand),
    /// Waits up to `wait` for an event `filter` accepts ([`JobInput::Event`]), or
    /// [`JobInput::TimedOut`].
    Wait {
        filter: EventFilter<RawEvent>,
        wait: Duration,
    },
    /// The run's outcome.
    Done(Result<JobReport, JobError>),
}

/// The job commands the runner sends.
pub(super) enum JobCommand {
    Complete(c::JobComplete),
    Finalize(c::JobFinalize),
    Dismiss(c::JobDismiss),
}

/// What a [`JobStep`] brought.
pub(super) enum JobInput {
    Event(RawEvent),
    Jobs(Vec<JobInfo>),
    Executed,
    TimedOut,
}

/// Why `query-jobs` was asked.
#[derive(Clone, Copy)]
enum Asked {
    /// Whether a `ready` job is still ready (then `job-complete`).
    Complete,
    /// Whether a `pending` job still waits (auto-finalize off: `job-finalize`).
    Finalize,
    /// Whether a `concluded` job is still listed (auto-dismiss off: its error can be
    /// read, then `job-dismiss`).
    Conclude,
    /// The job's type and progress.
    Info,
}

/// One job followed to its end.
pub(super) struct JobFlow<'j, 'a> {
    job: &'j mut Job<'a>,
    run: Run,
    start: Instant,
    deadline: Instant,
    last_event: Option<u64>,
    asked: Option<Asked>,
}

/// The job id a command's arguments name: `job-id`, else `device` (block jobs'
/// default).
fn job_id_of<C: Command>(cmd: &C) -> Option<String> {
    let mut out = Vec::new();
    cmd.write_arguments(&mut out).ok()?;
    let args: serde_json::Value = serde_json::from_slice(&out).ok()?;
    ["job-id", "device"]
        .iter()
        .find_map(|k| args.get(k)?.as_str().map(str::to_owned))
}

/// What the job runner waits for: this job's status changes, and the completion
/// events of a block job of that id (which carry its error once it is auto-dismissed).
fn job_filter(id: &str, after: Option<u64>) -> EventFilter<RawEvent> {
    let id = id.to_owned();
    EventFilter::names(&[
        "JOB_STATUS_CHANGE",
        "BLOCK_JOB_COMPLETED",
        "BLOCK_JOB_CANCELLED",
    ])
    .matching(move |e| {
        after.is_none_or(|a| e.sequence() > a)
            && match e.decode::<qmp::Event>() {
                Ok(qmp::Event::JobStatusChange(j, _)) => j.id == id,
                Ok(qmp::Event::BlockJobCompleted(b, _)) => b.device == id,
                Ok(qmp::Event::BlockJobCancelled(b, _)) => b.device == id,
                _ => false,
            }
    })
}

impl<'j, 'a> JobFlow<'j, 'a> {
    /// Follows the job `cmd` starts; its id from [`Job::id`] or the arguments.
    pub(super) fn new<C: Command>(job: &'j mut Job<'a>, cmd: &C) -> Result<Self, JobError> {
        let id = match job.id.clone().or_else(|| job_id_of(cmd)) {
            Some(id) => id,
            None => return Err(JobError::NoJobId { command: C::NAME }),
        };
        let start = Instant::now();
        let deadline = start + job.timeout;
        Ok(JobFlow {
            job,
            run: Run::new(id),
            start,
            deadline,
            last_event: None,
            asked: None,
        })
    }

    /// The first step: the start command, with the job's filter armed.
    pub(super) fn start(&self) -> JobStep {
        JobStep::Start {
            timeout: self.job.timeout,
            filter: job_filter(&self.run.id, None),
        }
    }

    /// The step after `input`, at `now`.
    pub(super) fn next(&mut self, input: JobInput, now: Instant) -> JobStep {
        match input {
            JobInput::Event(e) => self.on_event(&e, now),
            JobInput::Jobs(jobs) => self.on_jobs(jobs, now),
            JobInput::Executed => self.wait(now),
            JobInput::TimedOut if self.job.progress.is_some() => self.ask(Asked::Info),
            JobInput::TimedOut => self.wait(now),
        }
    }

    fn ask(&mut self, why: Asked) -> JobStep {
        self.asked = Some(why);
        JobStep::QueryJobs
    }

    fn on_event(&mut self, event: &RawEvent, now: Instant) -> JobStep {
        self.last_event = Some(event.sequence());
        let status = match self.run.note(event) {
            Ok(s) => s,
            Err(e) => return JobStep::Done(Err(e)),
        };
        match status {
            Some(JobStatus::Ready) if self.job.complete_when_ready && !self.run.completed => {
                self.ask(Asked::Complete)
            }
            // Still pending when asked: auto-finalize is off (an auto-finalized job
            // has moved on before query-jobs is answered).
            Some(JobStatus::Pending) if !self.run.finalized => self.ask(Asked::Finalize),
            Some(JobStatus::Concluded) => self.ask(Asked::Conclude),
            Some(JobStatus::Null) => JobStep::Done(self.run.end(self.start)),
            Some(_) if self.run.info.is_none() => self.ask(Asked::Info),
            Some(_) | None => self.wait(now),
        }
    }

    fn on_jobs(&mut self, jobs: Vec<JobInfo>, now: Instant) -> JobStep {
        let found = jobs.into_iter().find(|j| j.id == self.run.id);
        if let Some(j) = &found {
            if let Some(p) = self.job.progress.as_mut() {
                p(j);
            }
            self.run.info = Some(j.clone());
        }
        let status = found.map(|j| j.status);
        let id = self.run.id.as_str();
        match self.asked.take() {
            Some(Asked::Complete) => {
                self.run.completed = true;
                if status == Some(JobStatus::Ready) {
                    return JobStep::Execute(JobCommand::Complete(c::JobComplete::new(id)));
                }
            }
            Some(Asked::Finalize) => {
                self.run.finalized = true;
                if status == Some(JobStatus::Pending) {
                    return JobStep::Execute(JobCommand::Finalize(c::JobFinalize::new(id)));
                }
            }
            Some(Asked::Conclude) if status.is_some() => {
                if !self.job.dismiss {
                    return JobStep::Done(self.run.end(self.start));
                }
                return JobStep::Execute(JobCommand::Dismiss(c::JobDismiss::new(id)));
            }
            Some(Asked::Conclude | Asked::Info) | None => {}
        }
        self.wait(now)
    }

    fn wait(&mut self, now: Instant) -> JobStep {
        if now >= self.deadline {
            return JobStep::Done(Err(JobError::Timeout {
                id: std::mem::take(&mut self.run.id),
                status: self.run.statuses.last().cloned(),
                waited: now - self.start,
            }));
        }
        JobStep::Wait {
            filter: job_filter(&self.run.id, self.last_event),
            wait: (self.deadline - now).min(self.job.poll),
        }
    }
}

/// What is known of the job being followed.
struct Run {
    id: String,
    info: Option<JobInfo>,
    statuses: Vec<JobStatus>,
    completion_error: Option<String>,
    completed: bool,
    finalized: bool,
}

impl Run {
    fn new(id: String) -> Run {
        Run {
            id,
            info: None,
            statuses: Vec::new(),
            completion_error: None,
            completed: false,
            finalized: false,
        }
    }

    /// Takes in one event: the status it announces, if it is a status change.
    fn note(&mut self, event: &RawEvent) -> Result<Option<JobStatus>, JobError> {
        match event.decode::<qmp::Event>()? {
            qmp::Event::JobStatusChange(j, _) => {
                self.statuses.push(j.status.clone());
                Ok(Some(j.status))
            }
            qmp::Event::BlockJobCompleted(b, _) => {
                self.completion_error = b.error;
                self.fill(b.r#type, b.offset, b.len);
                Ok(None)
            }
            qmp::Event::BlockJobCancelled(b, _) => {
                self.fill(b.r#type, b.offset, b.len);
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// What a block job's completion event says, for a job never listed.
    fn fill(&mut self, r#type: qmp::JobType, offset: i64, len: i64) {
        if self.info.is_none() {
            self.info = Some(JobInfo::new(
                &*self.id,
                r#type,
                JobStatus::Concluded,
                offset,
                len,
            ));
        }
    }

    /// The outcome: the report, or the job's own error.
    fn end(&mut self, start: Instant) -> Result<JobReport, JobError> {
        let mut info = self.info.take().unwrap_or_else(|| {
            // Neither listed nor completed by a block job event (a very short job
            // that was auto-dismissed): all that is known is its id.
            JobInfo::new(
                &*self.id,
                qmp::JobType::Unrecognized(String::new()),
                JobStatus::Null,
                0,
                0,
            )
        });
        if info.error.is_none() {
            info.error = self.completion_error.take();
        }
        if info.error.is_some() {
            return Err(JobError::Failed { info });
        }
        Ok(JobReport {
            info,
            statuses: std::mem::take(&mut self.statuses),
            elapsed: start.elapsed(),
        })
    }
}

/// What the migration's driver executes, waits for or returns next.
pub(super) enum MigrationStep {
    /// `migrate-set-capabilities` turning `events` on; then [`MigrationInput::Executed`].
    EnableEvents(c::MigrateSetCapabilities),
    /// The command that starts the migration, with this deadline, waiting for
    /// `filter`'s event.
    Start {
        timeout: Duration,
        filter: EventFilter<RawEvent>,
    },
    /// `query-migrate`; its result goes to [`MigrationInput::Info`].
    QueryMigrate,
    /// Waits up to `wait` for an event `filter` accepts, or [`MigrationInput::TimedOut`].
    Wait {
        filter: EventFilter<RawEvent>,
        wait: Duration,
    },
    /// The run's outcome (boxed: a report is large).
    Done(Box<Result<MigrationReport, MigrationError>>),
}

/// What a [`MigrationStep`] brought.
pub(super) enum MigrationInput {
    Executed,
    Event(RawEvent),
    Info(Box<MigrationInfo>),
    TimedOut,
}

/// `MIGRATION` events after the one numbered `after` (any, for `None`).
fn migration_filter(after: Option<u64>) -> EventFilter<RawEvent> {
    EventFilter::name("MIGRATION").matching(move |e| after.is_none_or(|a| e.sequence() > a))
}

fn terminal(s: &MigrationStatus) -> bool {
    matches!(
        s,
        MigrationStatus::Completed | MigrationStatus::Failed | MigrationStatus::Cancelled
    )
}

/// One migration followed to its end.
pub(super) struct MigrationFlow<'m, 'a> {
    migration: &'m mut Migration<'a>,
    statuses: Vec<MigrationStatus>,
    start: Instant,
    deadline: Instant,
    last_event: Option<u64>,
    /// The terminal status an event announced, awaiting the final `query-migrate`.
    ended: Option<MigrationStatus>,
}

impl<'m, 'a> MigrationFlow<'m, 'a> {
    pub(super) fn new(migration: &'m mut Migration<'a>) -> Self {
        let start = Instant::now();
        let deadline = start + migration.timeout;
        MigrationFlow {
            migration,
            statuses: Vec::new(),
            start,
            deadline,
            last_event: None,
            ended: None,
        }
    }

    /// The first step: enabling events, or the start command.
    pub(super) fn start(&self) -> MigrationStep {
        if self.migration.enable_events {
            MigrationStep::EnableEvents(c::MigrateSetCapabilities::new(vec![
                qmp::MigrationCapabilityStatus::new(qmp::MigrationCapability::Events, true),
            ]))
        } else {
            self.start_command()
        }
    }

    fn start_command(&self) -> MigrationStep {
        MigrationStep::Start {
            timeout: self.migration.timeout,
            filter: migration_filter(None),
        }
    }

    /// The step after `input`, at `now`.
    pub(super) fn next(&mut self, input: MigrationInput, now: Instant) -> MigrationStep {
        match input {
            MigrationInput::Executed => self.start_command(),
            MigrationInput::Event(e) => {
                self.last_event = Some(e.sequence());
                let status = match e.decode::<qmp::Event>() {
                    Ok(qmp::Event::Migration(m, _)) => m.status,
                    Ok(_) => return self.wait(now),
                    Err(e) => return MigrationStep::Done(Box::new(Err(e.into()))),
                };
                self.statuses.push(status.clone());
                if terminal(&status) {
                    // Read query-migrate at the end, so a failure carries QEMU's error-desc.
                    self.ended = Some(status);
                    return MigrationStep::QueryMigrate;
                }
                self.wait(now)
            }
            MigrationInput::TimedOut => MigrationStep::QueryMigrate,
            MigrationInput::Info(info) => {
                if let Some(status) = self.ended.take() {
                    return MigrationStep::Done(Box::new(self.end(status, info)));
                }
                if let Some(p) = self.migration.progress.as_mut() {
                    p(&info);
                }
                match info.status.clone().filter(terminal) {
                    Some(status) => MigrationStep::Done(Box::new(self.end(status, info))),
                    None => self.wait(now),
                }
            }
        }
    }

    fn wait(&self, now: Instant) -> MigrationStep {
        if now >= self.deadline {
            return MigrationStep::Done(Box::new(Err(MigrationError::Timeout {
                status: self.statuses.last().cloned(),
                waited: now - self.start,
            })));
        }
        MigrationStep::Wait {
            filter: migration_filter(self.last_event),
            wait: (self.deadline - now).min(self.migration.poll),
        }
    }

    fn end(
        &mut self,
        status: MigrationStatus,
        info: Box<MigrationInfo>,
    ) -> Result<MigrationReport, MigrationError> {
        match status {
            MigrationStatus::Completed => Ok(MigrationReport {
                info: *info,
                statuses: std::mem::take(&mut self.statuses),
                elapsed: self.start.elapsed(),
            }),
            MigrationStatus::Failed => Err(MigrationError::Failed { info }),
            _ => Err(MigrationError::Cancelled { info }),
        }
    }
}
