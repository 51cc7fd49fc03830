//! Data-driven tests of reply and event rendering: tables where one suits, pretty
//! JSON otherwise, compact JSON for scripts, and event timestamps.

mod common;

use qmp_shell::output::{self, Format};

#[test]
fn replies() {
    for file in common::fixtures("output") {
        let text = std::fs::read_to_string(&file).expect("fixture");
        let mut out = String::new();
        for case in common::cases(&text) {
            let (command, json) = case.split_once(' ').expect("COMMAND JSON");
            let v: serde_json::Value = serde_json::from_str(json).expect("json");
            out.push_str(&format!("> {command}\n"));
            out.push_str(&output::render(command, &v, Format::Auto));
            out.push_str("\n--- json: ");
            out.push_str(&output::render(command, &v, Format::Json));
            out.push_str("\n\n");
        }
        expect_test::expect_file![file.with_extension("out")].assert_eq(&out);
    }
}

#[test]
fn timestamps() {
    let shown: Vec<String> = [(0, 0), (951_782_400, 5), (1_700_000_000, 999_999), (-1, -1)]
        .iter()
        .map(|&(s, us)| output::timestamp(s, us))
        .collect();
    expect_test::expect![[r#"
        [
            "1970-01-01 00:00:00.000000",
            "2000-02-29 00:00:00.000005",
            "2023-11-14 22:13:20.999999",
            "(no time)",
        ]
    "#]]
    .assert_debug_eq(&shown);
    let line = output::event_line(
        "BLOCK_JOB_COMPLETED",
        &serde_json::json!({"device": "j0", "len": 4096}),
        1_700_000_000,
        1,
        Format::Auto,
    );
    assert_eq!(
        line,
        "2023-11-14 22:13:20.000001 BLOCK_JOB_COMPLETED {\"device\":\"j0\",\"len\":4096}"
    );
    let line = output::event_line("STOP", &serde_json::Value::Null, 1, 2, Format::Json);
    assert_eq!(
        line,
        "{\"event\":\"STOP\",\"timestamp\":{\"microseconds\":2,\"seconds\":1}}"
    );
}
