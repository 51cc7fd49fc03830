//! [`Job::run_async`] and [`Migration::run_async`]: the same runs on the tokio client
//! (feature `tokio`), carrying out the steps of the same state machines (`flow.rs`)
//! as the blocking [`Job::run`] and [`Migration::run`].

use std::time::Instant;

use super::flow::{
    JobCommand, JobFlow, JobInput, JobStep, MigrationFlow, MigrationInput, MigrationStep,
};
use super::{Job, JobError, JobReport, Migration, MigrationError, MigrationReport};
use crate::client::tokio::Qmp;
use crate::client::{Error, Request};
use crate::qmp::commands as c;
use crate::Command;

impl Job<'_> {
    /// [`Job::run`] on the tokio client: starts the job with `cmd` and follows it to
    /// its end. Dropping the future leaves the job as it is (the call in flight is
    /// abandoned, as any dropped call of the tokio client).
    pub async fn run_async<C: Command + Sync>(
        &mut self,
        qmp: &Qmp,
        cmd: &C,
    ) -> Result<JobReport, JobError> {
        let mut flow = JobFlow::new(self, cmd)?;
        let mut step = flow.start();
        loop {
            let input = match step {
                JobStep::Start { timeout, filter } => {
                    let start = Request::new(cmd).timeout(timeout).wait_for(filter);
                    let (_, event) = qmp.execute(start).await?;
                    JobInput::Event(event)
                }
                JobStep::QueryJobs => JobInput::Jobs(qmp.execute(&c::QueryJobs).await?),
                JobStep::Execute(JobCommand::Complete(cmd)) => {
                    qmp.execute(&cmd).await?;
                    JobInput::Executed
                }
                JobStep::Execute(JobCommand::Finalize(cmd)) => {
                    qmp.execute(&cmd).await?;
                    JobInput::Executed
                }
                JobStep::Execute(JobCommand::Dismiss(cmd)) => {
                    qmp.execute(&cmd).await?;
                    JobInput::Executed
                }
                JobStep::Wait { filter, wait } => match qmp.wait_event(&filter, wait).await {
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

impl Migration<'_> {
    /// [`Migration::run`] on the tokio client: starts the migration with `cmd` and
    /// follows it to `completed`, `failed` or `cancelled`. Dropping the future leaves
    /// the migration running.
    pub async fn run_async<C: Command + Sync>(
        &mut self,
        qmp: &Qmp,
        cmd: &C,
    ) -> Result<MigrationReport, MigrationError> {
        let mut flow = MigrationFlow::new(self);
        let mut step = flow.start();
        loop {
            let input = match step {
                MigrationStep::EnableEvents(caps) => {
                    qmp.execute(&caps).await?;
                    MigrationInput::Executed
                }
                MigrationStep::Start { timeout, filter } => {
                    let start = Request::new(cmd).timeout(timeout).wait_for(filter);
                    let (_, event) = qmp.execute(start).await?;
                    MigrationInput::Event(event)
                }
                MigrationStep::QueryMigrate => {
                    MigrationInput::Info(Box::new(qmp.execute(&c::QueryMigrate).await?))
                }
                MigrationStep::Wait { filter, wait } => match qmp.wait_event(&filter, wait).await {
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

/// The runs' futures are `Send`, so they can be spawned (checked at compile time).
#[cfg(test)]
#[allow(dead_code)]
fn futures_are_send<'a>(job: &'a mut Job<'a>, migration: &'a mut Migration<'a>, qmp: &'a Qmp) {
    fn send<T: Send>(_: T) {}
    send(job.run_async(qmp, &c::QueryJobs));
    send(migration.run_async(qmp, &c::Migrate::new()));
}
