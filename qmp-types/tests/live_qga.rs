//! Live tests of the guest agent client against real `qemu-ga` 10.0.2 running on
//! the host (`-m unix-listen`), started by the crate's launcher; each on both drivers
//! (`NAME::blocking`, `NAME::tokio`).

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;
use qmp_types::client::{Error, ErrorClass, Launcher, Request};

dual_tests!(
    ping_info_exec,
    errors_and_no_oob,
    timeout_then_resync_skips_the_stale_reply,
    from_an_already_connected_stream,
    #[cfg(feature = "qga")]
    generated_guest_agent_api,
);
use qmp_types::Command;
use serde::Deserialize;

/// `guest-ping`, typed.
struct GuestPing;

impl Command for GuestPing {
    const NAME: &'static str = "guest-ping";
    const HAS_ARGUMENTS: bool = false;
    const ALLOW_OOB: bool = false;
    const SUCCESS_RESPONSE: bool = true;
    type Returns = ();
    fn write_arguments(&self, _: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        Ok(())
    }
    fn decode_return(_: &str) -> Result<(), serde_json::Error> {
        Ok(())
    }
}

#[derive(Deserialize)]
struct ExecStatus {
    exited: bool,
    exitcode: Option<i64>,
    #[serde(rename = "out-data")]
    out_data: Option<String>,
}

fn ping_info_exec(d: &impl Driver) {
    let ga = start(Launcher::guest_agent());
    let qga = d.connect_qga(&ga).unwrap();
    qga.execute(&GuestPing).unwrap();
    let info = qga.execute(Request::name("guest-info")).unwrap();
    let info: serde_json::Value = serde_json::from_str(info.get()).unwrap();
    assert!(
        info["version"].as_str().unwrap().starts_with("10.0.2"),
        "{info}"
    );
    assert!(info["supported_commands"].as_array().unwrap().len() > 10);

    let pid = qga
        .execute(Request::raw(
            "guest-exec",
            &args(serde_json::json!({
                "path": "/bin/sh", "arg": ["-c", "echo hello; exit 3"], "capture-output": true
            })),
        ))
        .unwrap();
    let pid: serde_json::Value = serde_json::from_str(pid.get()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let st = qga
            .execute(Request::raw(
                "guest-exec-status",
                &args(serde_json::json!({"pid": pid["pid"]})),
            ))
            .unwrap();
        let st: ExecStatus = serde_json::from_str(st.get()).unwrap();
        if st.exited {
            break st;
        }
        assert!(Instant::now() < deadline, "guest-exec did not finish");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.exitcode, Some(3));
    assert_eq!(status.out_data.as_deref(), Some("aGVsbG8K")); // base64("hello\n")
}

fn errors_and_no_oob(d: &impl Driver) {
    let ga = start(Launcher::guest_agent());
    let qga = d.connect_qga(&ga).unwrap();
    let e = qga.execute(Request::name("guest-no-such")).unwrap_err();
    assert_eq!(e.class(), Some(&ErrorClass::CommandNotFound), "{e}");
    let e = qga
        .execute(Request::raw(
            "guest-exec-status",
            &args(serde_json::json!({"pid": 999_999})),
        ))
        .unwrap_err();
    assert_eq!(e.class(), Some(&ErrorClass::GenericError), "{e}");
    let e = qga.execute(Request::new(&GuestPing).oob()).unwrap_err();
    assert!(matches!(e, Error::OobUnavailable { .. }), "{e}");
    qga.execute(&GuestPing).unwrap();
}

fn timeout_then_resync_skips_the_stale_reply(d: &impl Driver) {
    let ga = start(Launcher::guest_agent());
    let qga = d.connect_qga(&ga).unwrap();
    ga.signal(libc::SIGSTOP).unwrap();
    let e = qga
        .execute(Request::new(&GuestPing).timeout(Duration::from_millis(200)))
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    ga.signal(libc::SIGCONT).unwrap();
    // The next call resyncs first (0xFF + guest-sync-delimited), skipping the late reply.
    let info = qga.execute(Request::name("guest-info")).unwrap();
    assert!(info.get().contains("supported_commands"));
    qga.execute(&GuestPing).unwrap();
    qga.sync(Duration::from_secs(2)).unwrap();
}

fn from_an_already_connected_stream(d: &impl Driver) {
    let ga = start(Launcher::guest_agent());
    // Wait for the agent to listen, then hand over a plain stream.
    let deadline = Instant::now() + Duration::from_secs(5);
    let stream = loop {
        match std::os::unix::net::UnixStream::connect(ga.socket_path()) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "{e}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    let qga = d
        .connect_qga_to(stream.into(), &Default::default())
        .unwrap();
    qga.execute(&GuestPing).unwrap();
}

#[cfg(feature = "qga")]
fn generated_guest_agent_api(d: &impl Driver) {
    use qmp_types::qga::{self, commands as g};
    let ga = start(Launcher::guest_agent());
    let qga = d.connect_qga(&ga).unwrap();
    qga.execute(&g::GuestPing).unwrap();
    let info = qga.execute(&g::GuestInfo).unwrap();
    assert!(info.version.starts_with("10.0.2"));
    let pid = qga
        .execute(&g::GuestExec {
            path: "/bin/echo".into(),
            arg: Some(vec!["typed".into()]),
            env: None,
            input_data: None,
            capture_output: Some(qga::GuestExecCaptureOutput::Flag(true)),
        })
        .unwrap()
        .pid;
    let deadline = Instant::now() + Duration::from_secs(10);
    let st = loop {
        let st = qga.execute(&g::GuestExecStatus { pid }).unwrap();
        if st.exited {
            break st;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(st.exitcode, Some(0));
    assert_eq!(st.out_data.as_deref(), Some("dHlwZWQK")); // base64("typed\n")
}
