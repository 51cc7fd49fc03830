//! `qmp_types::jobs` against real QEMU: a mirror between two qcow2 files (ready,
//! complete, finalize, dismiss), `blockdev-create` of a qcow2 image, `snapshot-save` on
//! a VM with a qcow2 disk, migrations to `exec:` reaching `completed` and `failed`,
//! and jobs whose typed error comes back. On both drivers (`NAME::blocking`:
//! `Job::run`, `NAME::tokio`: `Job::run_async`).

#[macro_use]
mod common;

use std::path::Path;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use common::{start, Driver, QmpClient, RunOn};
use qmp_types::client::Launcher;
use qmp_types::jobs::{Job, JobError, Migration, MigrationError};
use qmp_types::qmp::{self, commands as c, JobStatus, MigrationStatus};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);

dual_tests!(
    mirror_between_qcow2_files_is_completed_finalized_and_dismissed,
    blockdev_create_makes_a_qcow2_image,
    a_failing_job_returns_its_typed_error,
    snapshot_save_on_a_vm_with_a_qcow2_disk,
    migration_to_a_file_completes_and_to_a_dead_pipe_fails,
    a_mirror_whose_target_fails_writes_returns_the_jobs_error,
);

fn run(program: &str, args: &[&str]) -> String {
    let out = Process::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn qcow2(path: &Path, size: &str) -> String {
    let p = path.to_str().unwrap().to_owned();
    run("qemu-img", &["create", "-q", "-f", "qcow2", &p, size]);
    p
}

fn add_qcow2(qmp: &mut impl QmpClient, node: &str, filename: &str, read_only: bool) {
    let options = json!({
        "driver": "qcow2", "node-name": node, "read-only": read_only,
        "file": {"driver": "file", "filename": filename},
    });
    qmp.execute(&c::BlockdevAdd(serde_json::from_value(options).unwrap()))
        .unwrap();
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    eprintln!("{what}: {:?}", t.elapsed());
    out
}

fn mirror_between_qcow2_files_is_completed_finalized_and_dismissed(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let src = qcow2(&vm.dir().join("src.qcow2"), "64M");
    let dst = qcow2(&vm.dir().join("dst.qcow2"), "64M");
    run("qemu-io", &["-c", "write -q -P 0xab 0 8M", &src]);
    let mut qmp = d.connect(&vm).unwrap();
    add_qcow2(&mut qmp, "src", &src, false);
    add_qcow2(&mut qmp, "dst", &dst, false);

    let mut mirror = c::BlockdevMirror::new("src", "dst", qmp::MirrorSyncMode::Full);
    mirror.job_id = Some("m0".into());
    mirror.auto_finalize = Some(false);
    mirror.auto_dismiss = Some(false);
    let mut seen = Vec::new();
    let report = timed("mirror 8M of 64M", || {
        Job::new()
            .timeout(DEADLINE)
            .poll(Duration::from_millis(50))
            .on_progress(|info| seen.push((info.current_progress, info.total_progress)))
            .run_on(&mut qmp, &mirror)
            .unwrap()
    });
    for s in [
        JobStatus::Created,
        JobStatus::Running,
        JobStatus::Ready,
        JobStatus::Pending,
        JobStatus::Concluded,
        JobStatus::Null,
    ] {
        assert!(report.statuses.contains(&s), "{s} in {:?}", report.statuses);
    }
    assert_eq!(report.info.r#type, qmp::JobType::Mirror);
    assert_eq!(report.info.status, JobStatus::Concluded);
    assert!(report.info.total_progress >= 8 << 20, "{:?}", report.info);
    assert_eq!(report.info.current_progress, report.info.total_progress);
    assert!(!seen.is_empty(), "progress was reported");
    assert!(qmp.execute(&c::QueryJobs).unwrap().is_empty(), "dismissed");
    // The target now holds the source's data.
    run("qemu-img", &["compare", "-U", "-q", &src, &dst]);
}

fn blockdev_create_makes_a_qcow2_image(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let file = vm.dir().join("new.qcow2").to_str().unwrap().to_owned();
    let mut qmp = d.connect(&vm).unwrap();
    timed("blockdev-create file + qcow2", || {
        let options =
            serde_json::from_value(json!({"driver": "file", "filename": file, "size": 0})).unwrap();
        let report = Job::new()
            .timeout(DEADLINE)
            .run_on(&mut qmp, &c::BlockdevCreate::new("create-file", options))
            .unwrap();
        assert_eq!(report.info.r#type, qmp::JobType::Create);
        assert_eq!(report.statuses.last(), Some(&JobStatus::Null));
        let proto = json!({"driver": "file", "filename": file, "node-name": "proto"});
        qmp.execute(&c::BlockdevAdd(serde_json::from_value(proto).unwrap()))
            .unwrap();
        let options =
            serde_json::from_value(json!({"driver": "qcow2", "file": "proto", "size": 32 << 20}))
                .unwrap();
        Job::new()
            .timeout(DEADLINE)
            .run_on(&mut qmp, &c::BlockdevCreate::new("create-qcow2", options))
            .unwrap();
    });
    let info: serde_json::Value =
        serde_json::from_str(&run("qemu-img", &["info", "-U", "--output=json", &file])).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 32 << 20);
}

fn a_failing_job_returns_its_typed_error(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let file = qcow2(&vm.dir().join("bad.qcow2"), "1M");
    let mut qmp = d.connect(&vm).unwrap();
    let proto = json!({"driver": "file", "filename": file, "node-name": "proto"});
    qmp.execute(&c::BlockdevAdd(serde_json::from_value(proto).unwrap()))
        .unwrap();
    // QEMU checks the cluster size inside the job: the command succeeds, the job fails.
    let options = serde_json::from_value(
        json!({"driver": "qcow2", "file": "proto", "size": 1 << 20, "cluster-size": 1000}),
    )
    .unwrap();
    let err = timed("failing blockdev-create", || {
        Job::new()
            .timeout(DEADLINE)
            .run_on(&mut qmp, &c::BlockdevCreate::new("bad", options))
            .unwrap_err()
    });
    let JobError::Failed { info } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (info.id.as_str(), &info.r#type, &info.status),
        ("bad", &qmp::JobType::Create, &JobStatus::Concluded)
    );
    let desc = err.job_error().unwrap();
    assert!(
        desc.contains("Cluster size must be a power of two"),
        "{desc}"
    );
    assert!(qmp.execute(&c::QueryJobs).unwrap().is_empty(), "dismissed");

    // A mirror to a read-only target is refused by the command itself.
    let src = qcow2(&vm.dir().join("src.qcow2"), "1M");
    let dst = qcow2(&vm.dir().join("dst.qcow2"), "1M");
    add_qcow2(&mut qmp, "src", &src, false);
    add_qcow2(&mut qmp, "ro", &dst, true);
    let mut mirror = c::BlockdevMirror::new("src", "ro", qmp::MirrorSyncMode::Full);
    mirror.job_id = Some("m1".into());
    let err = Job::new()
        .timeout(DEADLINE)
        .run_on(&mut qmp, &mirror)
        .unwrap_err();
    let JobError::Client(e) = &err else {
        panic!("{err}")
    };
    assert!(e.qmp().is_some(), "{e}");
    eprintln!("read-only mirror target: {e}");
}

fn snapshot_save_on_a_vm_with_a_qcow2_disk(d: &impl Driver) {
    let vm = start(Launcher::qemu().args(["-machine", "pc", "-m", "64", "-S"]));
    let disk = qcow2(&vm.dir().join("disk.qcow2"), "16M");
    let mut qmp = d.connect(&vm).unwrap();
    add_qcow2(&mut qmp, "disk0", &disk, false);
    let save = c::SnapshotSave::new("s0", "snap1", "disk0", vec!["disk0".into()]);
    let report = timed("snapshot-save 64M VM", || {
        Job::new()
            .timeout(DEADLINE)
            .run_on(&mut qmp, &save)
            .unwrap()
    });
    assert_eq!(report.info.r#type, qmp::JobType::SnapshotSave);
    assert_eq!(report.statuses.last(), Some(&JobStatus::Null));
    let list = run("qemu-img", &["snapshot", "-U", "-l", &disk]);
    assert!(list.contains("snap1"), "{list}");
}

fn migration_to_a_file_completes_and_to_a_dead_pipe_fails(d: &impl Driver) {
    let vm = start(Launcher::qemu().args(["-machine", "pc", "-m", "64", "-S"]));
    let file = vm.dir().join("vmstate");
    let mut qmp = d.connect(&vm).unwrap();
    let mut migrate = c::Migrate::new();
    migrate.uri = Some(format!("exec:cat > {}", file.display()));
    let mut polled = 0;
    let report = timed("migrate 64M pc to exec:cat", || {
        Migration::new()
            .timeout(DEADLINE)
            .poll(Duration::from_millis(20))
            .on_progress(|_| polled += 1)
            .run_on(&mut qmp, &migrate)
            .unwrap()
    });
    assert_eq!(report.info.status, Some(MigrationStatus::Completed));
    assert_eq!(report.statuses.last(), Some(&MigrationStatus::Completed));
    assert!(
        report.statuses.contains(&MigrationStatus::Setup),
        "{:?}",
        report.statuses
    );
    assert!(report.info.total_time.is_some());
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size > 0, "the stream was written");
    eprintln!("vmstate {size} bytes, {polled} progress polls");

    let vm = start(Launcher::qemu().args(["-machine", "pc", "-m", "64", "-S"]));
    let mut qmp = d.connect(&vm).unwrap();
    let mut migrate = c::Migrate::new();
    migrate.uri = Some("exec:exit 1".into());
    let err = timed("migrate to exec:exit 1", || {
        Migration::new()
            .timeout(DEADLINE)
            .run_on(&mut qmp, &migrate)
            .unwrap_err()
    });
    let MigrationError::Failed { info } = &err else {
        panic!("{err}")
    };
    assert_eq!(info.status, Some(MigrationStatus::Failed));
    assert!(info.error_desc.is_some(), "{info:?}");
    eprintln!("{err}");
}

fn a_mirror_whose_target_fails_writes_returns_the_jobs_error(d: &impl Driver) {
    let vm = start(Launcher::qemu());
    let src = qcow2(&vm.dir().join("src.qcow2"), "4M");
    let dst = qcow2(&vm.dir().join("dst.qcow2"), "4M");
    run("qemu-io", &["-c", "write -q -P 0xcd 0 1M", &src]);
    let mut qmp = d.connect(&vm).unwrap();
    add_qcow2(&mut qmp, "src", &src, false);
    // blkdebug fails every write to the target with ENOSPC.
    let target = json!({
        "driver": "blkdebug", "node-name": "bad",
        "image": {"driver": "qcow2", "file": {"driver": "file", "filename": dst}},
        "inject-error": [{"event": "pwritev", "iotype": "write", "errno": 28, "immediately": true}],
    });
    qmp.execute(&c::BlockdevAdd(serde_json::from_value(target).unwrap()))
        .unwrap();
    let mut mirror = c::BlockdevMirror::new("src", "bad", qmp::MirrorSyncMode::Full);
    mirror.job_id = Some("m2".into());
    mirror.auto_dismiss = Some(false);
    let err = timed("mirror to a failing target", || {
        Job::new()
            .timeout(DEADLINE)
            .run_on(&mut qmp, &mirror)
            .unwrap_err()
    });
    let JobError::Failed { info } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (info.id.as_str(), &info.r#type, &info.status),
        ("m2", &qmp::JobType::Mirror, &JobStatus::Concluded)
    );
    assert!(info.error.is_some());
    eprintln!("{err}");
    assert!(qmp.execute(&c::QueryJobs).unwrap().is_empty(), "dismissed");
}
