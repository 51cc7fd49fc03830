//! The mock QMP server (`qmp_types::client::mock`) with the real generated API: typed
//! expectations, returns and events driving the real client, and every kind of
//! failure the server reports. On both drivers (`NAME::blocking`, `NAME::tokio`).

#[macro_use]
mod common;

use std::time::Duration;

use common::{Driver, QmpClient};

use qmp_types::client::mock::{Failure, Script};
use qmp_types::client::{Endpoint, Error, ErrorClass, EventFilter, Options, Request};
use qmp_types::qmp::{self, commands as c, events as ev};
use qmp_types::Timestamp;

const WAIT: Duration = Duration::from_secs(5);

dual_tests!(
    typed_requests_returns_errors_and_events,
    arguments_compare_as_json_values_whatever_the_member_order,
    other_arguments_fail_naming_expected_and_got,
    another_command_fails_and_unmet_steps_are_listed,
    a_request_never_sent_is_unmet_when_the_client_leaves,
    a_request_that_never_comes_times_out,
    greeting_without_oob_and_events_before_the_reply,
    a_slow_reply_outlives_the_client_deadline,
    close_then_a_new_connection_is_greeted_again,
    raw_steps_and_manual_negotiation,
);

fn running() -> qmp::StatusInfo {
    qmp::StatusInfo::new(true, qmp::RunState::Running)
}

fn typed_requests_returns_errors_and_events(d: &impl Driver) {
    let at = Timestamp {
        seconds: 1_700_000_000,
        microseconds: 42,
    };
    let mut deleted = ev::DeviceDeleted::new("/machine/peripheral/d0");
    deleted.device = Some("d0".into());
    let mock = Script::new()
        .version(9, 2, 1)
        .package("mock")
        .expect(&c::QueryStatus)
        .returns(&running())
        .expect(&c::DeviceDel::new("d0"))
        .returns(&())
        .event_at(&deleted, at)
        .expect(&c::DeviceDel::new("nope"))
        .fails(ErrorClass::DeviceNotFound, "Device 'nope' not found")
        .event(&ev::Stop)
        .spawn()
        .unwrap();

    let qmp = d.connect_mock(&mock).unwrap();
    let greeting = qmp.greeting().unwrap();
    assert_eq!(
        (
            greeting.version.to_string().as_str(),
            greeting.package.as_str()
        ),
        ("9.2.1", "mock")
    );
    assert!(qmp.oob_enabled(), "oob is offered by default");

    assert_eq!(qmp.execute(&c::QueryStatus).unwrap(), running());
    let filter = EventFilter::name("DEVICE_DELETED");
    let ((), event) = qmp
        .execute(
            Request::new(&c::DeviceDel::new("d0"))
                .timeout(WAIT)
                .wait_for(filter),
        )
        .unwrap();
    match event.decode::<qmp::Event>().unwrap() {
        qmp::Event::DeviceDeleted(d, ts) => {
            assert_eq!(d, deleted);
            assert_eq!(ts, at);
        }
        other => panic!("{other:?}"),
    }
    let err = qmp.execute(&c::DeviceDel::new("nope")).unwrap_err();
    let qe = err.qmp().expect("an error reply");
    assert_eq!(
        (&qe.class, qe.desc.as_str()),
        (&ErrorClass::DeviceNotFound, "Device 'nope' not found")
    );
    let stop = qmp.wait_event(&EventFilter::name("STOP"), WAIT).unwrap();
    assert!(stop.timestamp().seconds > 1_700_000_000, "stamped now");
    drop(qmp);
    mock.finish().unwrap();
}

fn arguments_compare_as_json_values_whatever_the_member_order(d: &impl Driver) {
    // The script's blockdev-add arguments are written by the generated encoder; the
    // client sends the same members in another order through execute_raw.
    let add: c::BlockdevAdd = c::BlockdevAdd(
        serde_json::from_value(
            serde_json::json!({"driver": "null-co", "node-name": "n0", "size": 1024}),
        )
        .unwrap(),
    );
    let mock = Script::new().expect(&add).returns(&()).spawn().unwrap();
    let qmp = d.connect_mock(&mock).unwrap();
    let args = serde_json::value::to_raw_value(
        &serde_json::json!({"size": 1024, "node-name": "n0", "driver": "null-co"}),
    )
    .unwrap();
    qmp.execute(Request::raw("blockdev-add", &args)).unwrap();
    drop(qmp);
    mock.finish().unwrap();
}

fn other_arguments_fail_naming_expected_and_got(d: &impl Driver) {
    let mock = Script::new()
        .expect(&c::DeviceDel::new("d0"))
        .returns(&())
        .expect(&c::QueryStatus)
        .returns(&running())
        .spawn()
        .unwrap();
    let qmp = d.connect_mock(&mock).unwrap();
    let err = qmp.execute(&c::DeviceDel::new("d1")).unwrap_err();
    let desc = &err.qmp().expect("the mock answers with an error").desc;
    assert!(
        desc.contains(r#"arguments.id: expected "d0", got "d1""#),
        "{desc}"
    );
    // The script stopped: the next request is unexpected.
    assert!(qmp.execute(&c::QueryStatus).is_err());
    drop(qmp);
    let failures = mock.finish().unwrap_err();
    let text = failures.to_string();
    assert_eq!(failures.0.len(), 3, "{text}");
    assert_eq!(
        failures.0[0],
        Failure::WrongArguments {
            step: 1,
            command: "device_del".into(),
            expected: serde_json::json!({"id": "d0"}),
            got: serde_json::json!({"id": "d1"}),
            differences: vec![r#"arguments.id: expected "d0", got "d1""#.into()],
        }
    );
    assert!(
        matches!(&failures.0[1], Failure::Unmet { step: 2, what, .. } if what == "expect query-status"),
        "{text}"
    );
    assert!(
        matches!(&failures.0[2], Failure::Unexpected { command, .. } if command == "query-status"),
        "{text}"
    );
}

fn another_command_fails_and_unmet_steps_are_listed(d: &impl Driver) {
    let mock = Script::new()
        .expect(&c::Stop)
        .returns(&())
        .expect(&c::Cont)
        .returns(&())
        .event(&ev::Resume)
        .spawn()
        .unwrap();
    let qmp = d.connect_mock(&mock).unwrap();
    qmp.execute(&c::Stop).unwrap();
    let err = qmp.execute(&c::QueryStatus).unwrap_err();
    assert!(
        err.to_string().contains("expected cont, got query-status"),
        "{err}"
    );
    drop(qmp);
    let failures = mock.finish().unwrap_err();
    let text = failures.to_string();
    assert!(
        text.contains("step 2: expected cont, got query-status")
            && text.contains("step 3 (event RESUME) not reached"),
        "{text}"
    );
}

fn a_request_never_sent_is_unmet_when_the_client_leaves(d: &impl Driver) {
    let mock = Script::new()
        .expect(&c::QueryStatus)
        .returns(&running())
        .expect_any::<c::QueryBlock>()
        .returns(&vec![])
        .spawn()
        .unwrap();
    let qmp = d.connect_mock(&mock).unwrap();
    qmp.execute(&c::QueryStatus).unwrap();
    drop(qmp);
    let failures = mock.finish().unwrap_err();
    assert!(
        // The server may see the hang-up, or `finish` first: unmet either way.
        matches!(&failures.0[..], [Failure::Unmet { step: 2, reason, .. }]
            if reason.contains("closed") || reason.contains("finish")),
        "{failures}"
    );
}

fn a_request_that_never_comes_times_out(d: &impl Driver) {
    let mock = Script::new()
        .timeout(Duration::from_millis(200))
        .expect(&c::QueryStatus)
        .returns(&running())
        .spawn()
        .unwrap();
    let qmp = d.connect_mock(&mock).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let failures = mock.finish().unwrap_err();
    assert!(
        matches!(&failures.0[..], [Failure::Timeout { step: 1, .. }]),
        "{failures}"
    );
    drop(qmp);
}

fn greeting_without_oob_and_events_before_the_reply(d: &impl Driver) {
    // A job's first status change comes before the reply of the command that starts it.
    let mut mirror = c::BlockdevMirror::new("src", "dst", qmp::MirrorSyncMode::Full);
    mirror.job_id = Some("j0".into());
    let created = ev::JobStatusChange::new("j0", qmp::JobStatus::Created);
    let (mock, stream) = Script::new()
        .capabilities(&[])
        .expect(&mirror)
        .event(&created)
        .delay(Duration::from_millis(20))
        .returns(&())
        .spawn_pair()
        .unwrap();
    let qmp = d
        .connect_to(Endpoint::from(stream), &Options::new())
        .unwrap();
    assert!(!qmp.oob_enabled());
    let filter = EventFilter::name("JOB_STATUS_CHANGE");
    let ((), event) = qmp
        .execute(Request::new(&mirror).timeout(WAIT).wait_for(filter))
        .unwrap();
    assert!(matches!(
        event.decode::<qmp::Event>().unwrap(),
        qmp::Event::JobStatusChange(e, _) if e == created
    ));
    drop(qmp);
    mock.finish().unwrap();
}

fn a_slow_reply_outlives_the_client_deadline(d: &impl Driver) {
    let mock = Script::new()
        .expect(&c::QueryStatus)
        .delay(Duration::from_millis(300))
        .returns(&running())
        .expect(&c::QueryStatus)
        .returns(&running())
        .spawn()
        .unwrap();
    let qmp = d.connect_mock(&mock).unwrap();
    qmp.set_timeout(Some(Duration::from_millis(100)));
    let err = qmp.execute(&c::QueryStatus).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // The late reply is discarded by its id; the next call gets its own.
    qmp.set_timeout(Some(WAIT));
    assert_eq!(qmp.execute(&c::QueryStatus).unwrap(), running());
    drop(qmp);
    mock.finish().unwrap();
}

fn close_then_a_new_connection_is_greeted_again(d: &impl Driver) {
    let mock = Script::new()
        .expect(&c::QueryStatus)
        .returns(&running())
        .close()
        .expect(&c::Stop)
        .returns(&())
        .spawn()
        .unwrap();
    let qmp = d.connect_mock(&mock).unwrap();
    qmp.execute(&c::QueryStatus).unwrap();
    let err = qmp.execute(&c::Stop).unwrap_err();
    assert!(
        matches!(err, Error::Disconnected { .. } | Error::Io { .. }),
        "{err}"
    );
    let again = d.connect_mock(&mock).unwrap();
    again.execute(&c::Stop).unwrap();
    drop(again);
    mock.finish().unwrap();
}

fn raw_steps_and_manual_negotiation(d: &impl Driver) {
    let mock = Script::new()
        .manual_negotiation()
        .expect_raw(
            "qmp_capabilities",
            Some(serde_json::json!({"enable": ["oob"]})),
        )
        .returns_raw(serde_json::json!({}))
        .expect_name("human-monitor-command")
        .returns_raw(serde_json::json!("info status\r\n"))
        .event_raw(
            "RESET",
            Some(serde_json::json!({"guest": true, "reason": "host-qmp-system-reset"})),
        )
        .send_raw(
            &b"{\"event\": \"X\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n"[..],
        )
        .spawn()
        .unwrap();
    let qmp = d.connect_mock(&mock).unwrap();
    assert_eq!(qmp.hmp("info status").unwrap(), "info status\r\n");
    let reset = qmp.wait_event(&EventFilter::name("RESET"), WAIT).unwrap();
    assert!(matches!(
        reset.decode::<qmp::Event>().unwrap(),
        qmp::Event::Reset(r, _) if r.guest && r.reason == qmp::ShutdownCause::HostQmpSystemReset
    ));
    let x = qmp.wait_event(&EventFilter::name("X"), WAIT).unwrap();
    assert_eq!(x.timestamp().microseconds, 2);
    drop(qmp);
    mock.finish().unwrap();
}

#[test]
fn dropping_an_unfinished_server_panics_with_its_failures() {
    let mock = Script::new()
        .timeout(Duration::from_millis(100))
        .expect(&c::QueryStatus)
        .returns(&running())
        .spawn()
        .unwrap();
    let panic = std::panic::catch_unwind(move || drop(mock)).unwrap_err();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        text.contains("step 1 (expect query-status) not reached"),
        "{text}"
    );
}
