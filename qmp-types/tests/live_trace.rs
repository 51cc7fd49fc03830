//! The wire trace against real QEMU, captured with a test logger: every message is
//! traced, and no secret sent in a request (passwords, a `secret` object's data, an HMP
//! `set_password`) appears in it. On both drivers (`NAME::blocking`, `NAME::tokio`).

#[macro_use]
mod common;

use std::sync::Mutex;

use common::{Driver, QmpClient};

use qmp_types::client::{Launcher, Request, WIRE_TARGET};
use qmp_types::qmp::commands as c;

/// Every record logged under the wire target.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        meta.target() == WIRE_TARGET
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            LINES.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

dual_tests!(the_wire_trace_never_shows_secrets);

fn the_wire_trace_never_shows_secrets(d: &impl Driver) {
    // The logger is process-wide and both halves run at once: installed once; each
    // half's secrets are its own, and every half checks the whole trace.
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });

    let vm = match Launcher::qemu().args(["-vnc", "none,password=on"]).spawn() {
        Ok(vm) => vm,
        Err(e) => panic!("live test needs real QEMU: {e}"),
    };
    let qmp = d.connect(&vm).unwrap();
    let secrets = [
        "hunter2-typed",
        "hunter2-raw",
        "letmein-data",
        "hunter2-hmp",
        "qom-set-data",
    ];

    // set_password, typed (a boxed union) and by name.
    qmp.execute(&c::SetPassword(
        serde_json::from_value(serde_json::json!({
            "protocol": "vnc", "password": "hunter2-typed"
        }))
        .unwrap(),
    ))
    .unwrap();
    let args =
        serde_json::json!({"protocol": "vnc", "password": "hunter2-raw", "connected": "keep"});
    qmp.execute(Request::raw(
        "set_password",
        &serde_json::value::to_raw_value(&args).unwrap(),
    ))
    .unwrap();
    // A secret object: its data is key material.
    qmp.execute(&c::ObjectAdd(
        serde_json::from_value(serde_json::json!({
            "qom-type": "secret", "id": "sec0", "data": "letmein-data", "format": "raw"
        }))
        .unwrap(),
    ))
    .unwrap();
    // Setting a secret's data afterwards (QEMU 10.0.2 accepts it).
    let args =
        serde_json::json!({"path": "/objects/sec0", "property": "data", "value": "qom-set-data"});
    qmp.execute(Request::raw(
        "qom-set",
        &serde_json::value::to_raw_value(&args).unwrap(),
    ))
    .unwrap();
    // HMP.
    qmp.hmp("set_password vnc hunter2-hmp").unwrap();

    let lines = LINES.lock().unwrap().clone();
    let trace = lines.join("\n");
    assert!(
        lines.iter().any(|l| l.starts_with("<< {\"QMP\"")),
        "{trace}"
    );
    for secret in secrets {
        assert!(!trace.contains(secret), "{secret} in the trace:\n{trace}");
    }
    let sent = |needle: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(">> ") && l.contains(needle))
            .unwrap_or_else(|| panic!("no request with {needle} in:\n{trace}"))
            .clone()
    };
    assert!(
        sent("\"set_password\"").contains(r#""password":"<redacted>""#),
        "{trace}"
    );
    let object = sent("\"object-add\"");
    assert!(object.contains(r#""data":"<redacted>""#), "{object}");
    assert!(
        object.contains(r#""id":"sec0""#),
        "ids stay visible: {object}"
    );
    assert!(
        sent("\"qom-set\"").contains(r#""value":"<redacted>""#),
        "{trace}"
    );
    assert!(
        sent("human-monitor-command").contains("set_password vnc <redacted>"),
        "{trace}"
    );
    // Everything else is traced as sent: the replies too.
    assert!(
        lines.iter().any(|l| l.starts_with("<< {\"return\"")),
        "{trace}"
    );
}
