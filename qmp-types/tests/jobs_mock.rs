//! `qmp_types::jobs` against the mock server, for the paths real QEMU does not take on
//! demand: an auto-dismissed block job whose error only `BLOCK_JOB_COMPLETED` carries,
//! a job that outlives its deadline, a cancelled migration. Each script is also the
//! exact conversation the runner must hold. On both drivers (`NAME::blocking`:
//! `Job::run`, `NAME::tokio`: `Job::run_async`).

#[macro_use]
mod common;

use std::time::Duration;

use common::{Driver, RunOn};

use qmp_types::client::mock::Script;
use qmp_types::jobs::{Job, JobError, Migration, MigrationError};
use qmp_types::qmp::{self, commands as c, events as ev, JobInfo, JobStatus, JobType};

dual_tests!(
    an_auto_dismissed_block_job_fails_with_the_completion_events_error,
    a_job_past_its_deadline_is_a_timeout_with_its_last_status,
    a_cancelled_migration_is_reported_with_query_migrate,
);

fn status(id: &str, s: JobStatus) -> ev::JobStatusChange {
    ev::JobStatusChange::new(id, s)
}

fn an_auto_dismissed_block_job_fails_with_the_completion_events_error(d: &impl Driver) {
    let mirror = c::BlockdevMirror::new("src", "dst", qmp::MirrorSyncMode::Full);
    let mut completed = ev::BlockJobCompleted::new(JobType::Mirror, "src", 100, 40, 0);
    completed.error = Some("No space left on device".into());
    let mock = Script::new()
        .expect(&mirror)
        .event(&status("src", JobStatus::Created))
        .returns(&())
        .expect(&c::QueryJobs)
        .returns(&vec![JobInfo::new(
            "src",
            JobType::Mirror,
            JobStatus::Running,
            0,
            100,
        )])
        .event(&status("src", JobStatus::Running))
        .event(&status("other", JobStatus::Concluded)) // another job's: ignored
        .event(&completed)
        .event(&status("src", JobStatus::Concluded))
        .expect(&c::QueryJobs)
        .returns(&vec![]) // already dismissed
        .event(&status("src", JobStatus::Null))
        .spawn()
        .unwrap();
    let mut qmp = d.connect_mock(&mock).unwrap();
    // No job-id: block jobs are named after their device.
    let err = Job::new().run_on(&mut qmp, &mirror).unwrap_err();
    let JobError::Failed { info } = &err else {
        panic!("{err}")
    };
    assert_eq!(info.id, "src");
    assert_eq!(err.job_error(), Some("No space left on device"));
    assert_eq!(
        err.to_string(),
        "job src (mirror) failed: No space left on device"
    );
    drop(qmp);
    mock.finish().unwrap();
}

fn a_job_past_its_deadline_is_a_timeout_with_its_last_status(d: &impl Driver) {
    let mut backup = c::BlockdevBackup(qmp::BlockdevBackup::new(
        "src",
        qmp::MirrorSyncMode::Full,
        "dst",
    ));
    backup.0.job_id = Some("b0".into());
    let mock = Script::new()
        .expect(&backup)
        .event(&status("b0", JobStatus::Created))
        .returns(&())
        .expect(&c::QueryJobs)
        .returns(&vec![JobInfo::new(
            "b0",
            JobType::Backup,
            JobStatus::Created,
            0,
            0,
        )])
        .spawn()
        .unwrap();
    let mut qmp = d.connect_mock(&mock).unwrap();
    let err = Job::new()
        .timeout(Duration::from_millis(300))
        .poll(Duration::from_millis(50))
        .run_on(&mut qmp, &backup)
        .unwrap_err();
    assert!(
        matches!(&err, JobError::Timeout { id, status: Some(JobStatus::Created), .. } if id == "b0"),
        "{err}"
    );
    drop(qmp);
    mock.finish().unwrap();
}

fn a_cancelled_migration_is_reported_with_query_migrate(d: &impl Driver) {
    let mut migrate = c::Migrate::new();
    migrate.uri = Some("exec:cat > /dev/null".into());
    let events_on = c::MigrateSetCapabilities::new(vec![qmp::MigrationCapabilityStatus::new(
        qmp::MigrationCapability::Events,
        true,
    )]);
    let mut cancelled = qmp::MigrationInfo::new();
    cancelled.status = Some(qmp::MigrationStatus::Cancelled);
    let mock = Script::new()
        .expect(&events_on)
        .returns(&())
        .expect(&migrate)
        .event(&ev::Migration::new(qmp::MigrationStatus::Setup))
        .returns(&())
        .event(&ev::Migration::new(qmp::MigrationStatus::Cancelling))
        .event(&ev::Migration::new(qmp::MigrationStatus::Cancelled))
        .expect(&c::QueryMigrate)
        .returns(&cancelled)
        .spawn()
        .unwrap();
    let mut qmp = d.connect_mock(&mock).unwrap();
    let err = Migration::new().run_on(&mut qmp, &migrate).unwrap_err();
    assert!(
        matches!(&err, MigrationError::Cancelled { info } if info.status == Some(qmp::MigrationStatus::Cancelled)),
        "{err}"
    );
    drop(qmp);
    mock.finish().unwrap();
}
