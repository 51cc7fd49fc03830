//! The state machines without I/O: each test feeds the inputs a server would cause
//! and checks the steps they lead to, in order.

use std::time::{Duration, Instant};

use super::*;
use crate::qmp::JobType;

fn event(name: &str, data: &str) -> RawEvent {
    let text = format!(
        r#"{{"event": "{name}", "data": {data}, "timestamp": {{"seconds": 1, "microseconds": 2}}}}"#
    );
    RawEvent::from_json(&text).unwrap()
}

fn status(s: &str) -> JobInput {
    JobInput::Event(event(
        "JOB_STATUS_CHANGE",
        &format!(r#"{{"id": "m0", "status": "{s}"}}"#),
    ))
}

fn listed(s: JobStatus) -> JobInput {
    JobInput::Jobs(vec![JobInfo::new("m0", JobType::Mirror, s, 5, 10)])
}

fn job_step(step: &JobStep) -> String {
    match step {
        JobStep::Start { .. } => "start".into(),
        JobStep::QueryJobs => "query-jobs".into(),
        JobStep::Execute(JobCommand::Complete(c)) => format!("job-complete {}", c.id),
        JobStep::Execute(JobCommand::Finalize(c)) => format!("job-finalize {}", c.id),
        JobStep::Execute(JobCommand::Dismiss(c)) => format!("job-dismiss {}", c.id),
        JobStep::Wait { .. } => "wait".into(),
        JobStep::Done(Ok(r)) => {
            let s: Vec<String> = r.statuses.iter().map(|s| s.to_string()).collect();
            format!("done {}", s.join(","))
        }
        JobStep::Done(Err(e)) => format!("failed: {e}"),
    }
}

/// Runs `job` over `inputs` (one per step after the start) and lists every step.
fn job_run(mut job: Job<'_>, inputs: Vec<JobInput>) -> Vec<String> {
    let mut mirror = c::BlockdevMirror::new("src", "dst", qmp::MirrorSyncMode::Full);
    mirror.job_id = Some("m0".into());
    let mut flow = JobFlow::new(&mut job, &mirror).unwrap();
    let mut steps = vec![job_step(&flow.start())];
    for input in inputs {
        steps.push(job_step(&flow.next(input, Instant::now())));
    }
    steps
}

#[test]
fn a_mirror_is_completed_finalized_and_dismissed_only_when_it_waits_there() {
    let steps = job_run(
        Job::new(),
        vec![
            status("created"),
            listed(JobStatus::Created),
            status("running"),
            status("ready"),
            listed(JobStatus::Ready),
            JobInput::Executed,
            status("waiting"),
            status("pending"),
            listed(JobStatus::Pending),
            JobInput::Executed,
            status("concluded"),
            listed(JobStatus::Concluded),
            JobInput::Executed,
            status("null"),
        ],
    );
    assert_eq!(
        steps,
        [
            "start",
            "query-jobs", // created: what job is it?
            "wait",
            "wait",
            "query-jobs", // ready: still?
            "job-complete m0",
            "wait",
            "wait",
            "query-jobs", // pending: auto-finalize off?
            "job-finalize m0",
            "wait",
            "query-jobs", // concluded: still listed?
            "job-dismiss m0",
            "wait",
            "done created,running,ready,waiting,pending,concluded,null",
        ]
    );
}

#[test]
fn a_job_that_moved_on_gets_no_command_and_a_kept_one_ends_at_concluded() {
    let steps = job_run(
        Job::new().dismiss(false),
        vec![
            status("ready"),
            listed(JobStatus::Running), // completed by someone else meanwhile
            status("ready"),            // not asked again
            status("pending"),
            JobInput::Jobs(vec![]), // auto-finalized: gone from the list
            status("concluded"),
            listed(JobStatus::Concluded),
        ],
    );
    assert_eq!(
        steps,
        [
            "start",
            "query-jobs",
            "wait",
            "wait",
            "query-jobs",
            "wait",
            "query-jobs",
            "done ready,ready,pending,concluded",
        ]
    );
}

#[test]
fn the_deadline_ends_the_wait_with_the_last_status() {
    let steps = job_run(
        Job::new().timeout(Duration::ZERO),
        vec![status("created"), listed(JobStatus::Created)],
    );
    assert!(
        steps[2].starts_with("failed: job m0 still created after "),
        "{steps:?}"
    );
    let steps = job_run(
        Job::new()
            .timeout(Duration::from_secs(60))
            .on_progress(|_| {}),
        vec![status("running"), JobInput::TimedOut, JobInput::TimedOut],
    );
    // Progress is read at each poll interval without an event.
    assert_eq!(steps, ["start", "query-jobs", "query-jobs", "query-jobs"]);
}

fn migration(s: &str) -> MigrationInput {
    MigrationInput::Event(event("MIGRATION", &format!(r#"{{"status": "{s}"}}"#)))
}

fn info(s: MigrationStatus) -> MigrationInput {
    MigrationInput::Info(Box::new(MigrationInfo {
        status: Some(s),
        ..Default::default()
    }))
}

fn migration_step(step: &MigrationStep) -> String {
    match step {
        MigrationStep::EnableEvents(_) => "migrate-set-capabilities".into(),
        MigrationStep::Start { .. } => "start".into(),
        MigrationStep::QueryMigrate => "query-migrate".into(),
        MigrationStep::Wait { .. } => "wait".into(),
        MigrationStep::Done(outcome) => match &**outcome {
            Ok(r) => {
                let s: Vec<String> = r.statuses.iter().map(|s| s.to_string()).collect();
                format!("done {}", s.join(","))
            }
            Err(e) => format!("failed: {e}"),
        },
    }
}

fn migration_run(mut m: Migration<'_>, inputs: Vec<MigrationInput>) -> Vec<String> {
    let mut flow = MigrationFlow::new(&mut m);
    let mut steps = vec![migration_step(&flow.start())];
    for input in inputs {
        steps.push(migration_step(&flow.next(input, Instant::now())));
    }
    steps
}

#[test]
fn a_migration_is_followed_to_its_end_and_read_once_more() {
    let mut polled = 0;
    let steps = migration_run(
        Migration::new().on_progress(|_| polled += 1),
        vec![
            MigrationInput::Executed,
            migration("setup"),
            MigrationInput::TimedOut,
            info(MigrationStatus::Active),
            migration("active"),
            migration("completed"),
            info(MigrationStatus::Completed),
        ],
    );
    assert_eq!(
        steps,
        [
            "migrate-set-capabilities",
            "start",
            "wait",
            "query-migrate", // no event within the poll interval
            "wait",
            "wait",
            "query-migrate", // the end: its error-desc, downtime, ...
            "done setup,active,completed",
        ]
    );
    assert_eq!(polled, 1);
}

#[test]
fn a_poll_that_finds_the_end_ends_the_run() {
    let steps = migration_run(
        Migration::new().enable_events(false),
        vec![
            migration("setup"),
            MigrationInput::TimedOut,
            info(MigrationStatus::Failed),
        ],
    );
    assert_eq!(
        steps,
        [
            "start",
            "wait",
            "query-migrate",
            "failed: migration failed: no description"
        ]
    );
}
