//! Data-driven tests of the command-line language: parsing, typing and validation,
//! completion. Each `tests/data/<concern>/*.qmp` file lists cases; the results are
//! snapshotted next to it in `*.out` (`UPDATE_EXPECT=1` rewrites them). Typing and
//! completion use the `query-qmp-schema` reply of a live QEMU 10.0.2.

mod common;

use qmp_shell::{complete, syntax, typing};

fn run(concern: &str, f: impl Fn(&str) -> String) {
    for file in common::fixtures(concern) {
        let text = std::fs::read_to_string(&file).expect("read fixture");
        let mut out = String::new();
        for case in common::cases(&text) {
            out.push_str(&format!("> {}\n", case.replace('\n', "\n| ")));
            out.push_str(&f(&case));
            out.push('\n');
        }
        expect_test::expect_file![file.with_extension("out")].assert_eq(&out);
    }
}

#[test]
fn parse() {
    run("parse", |case| match syntax::parse(case) {
        Ok(stmt) => format!("{stmt:?}\n"),
        Err(e) => format!("error: {e}\n"),
    });
}

#[test]
fn typing() {
    let schema = common::schema();
    run("typing", |case| {
        let stmt = match syntax::parse(case) {
            Ok(s) => s,
            Err(e) => return format!("syntax error: {e}\n"),
        };
        match typing::prepare(Some(schema), &stmt) {
            Ok(Some(req)) => {
                let warnings: String = req
                    .warnings
                    .iter()
                    .map(|w| format!("warning: {w}\n"))
                    .collect();
                match req.args {
                    Some(a) => format!("{warnings}{} {}\n", req.name, a),
                    None => format!("{warnings}{}\n", req.name),
                }
            }
            Ok(None) => format!("{stmt:?}\n"),
            Err(diags) => diags.iter().map(|d| format!("error: {d}\n")).collect(),
        }
    });
}

#[test]
fn typing_own() {
    let text = std::fs::read_to_string(common::data_dir("own-schema.json")).expect("own schema");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let schema = qmp_shell::schema::Schema::from_introspection(&v).expect("valid");
    run("typing-own", |case| {
        let stmt = match syntax::parse(case) {
            Ok(s) => s,
            Err(e) => return format!("syntax error: {e}\n"),
        };
        match typing::prepare(Some(&schema), &stmt) {
            Ok(Some(req)) => match req.args {
                Some(a) => format!("{} {}\n", req.name, a),
                None => format!("{}\n", req.name),
            },
            Ok(None) => format!("{stmt:?}\n"),
            Err(diags) => diags.iter().map(|d| format!("error: {d}\n")).collect(),
        }
    });
}

#[test]
fn untyped() {
    run("untyped", |case| {
        let stmt = match syntax::parse(case) {
            Ok(s) => s,
            Err(e) => return format!("syntax error: {e}\n"),
        };
        match typing::prepare(None, &stmt) {
            Ok(Some(req)) => match req.args {
                Some(a) => format!("{} {}\n", req.name, a),
                None => format!("{}\n", req.name),
            },
            Ok(None) => format!("{stmt:?}\n"),
            Err(diags) => diags.iter().map(|d| format!("error: {d}\n")).collect(),
        }
    });
}

/// `|` marks the cursor (the end of the case when absent); earlier lines of a
/// multi-line case are the pending statement.
#[test]
fn completion() {
    let schema = common::schema();
    run("complete", |case| {
        let (pending, line) = match case.rsplit_once('\n') {
            Some((p, l)) => (p, l),
            None => ("", case),
        };
        let (line, pos) = match line.find('|') {
            Some(p) => (line.replacen('|', "", 1), p),
            None => (line.to_owned(), line.len()),
        };
        let c = complete::complete(schema, pending, &line, pos);
        let shown: Vec<&str> = c.candidates.iter().take(12).map(String::as_str).collect();
        let more = c.candidates.len().saturating_sub(12);
        let mut s = format!("at {}: {}", c.start, shown.join(" "));
        if more > 0 {
            s.push_str(&format!(" ... (+{more})"));
        }
        s.push('\n');
        s
    });
}

/// No input makes the language panic: every prefix of every fixture case (and of a
/// few hostile strings) is parsed, typed and completed with the cursor at several places.
#[test]
fn no_panics_on_partial_input() {
    let schema = common::schema();
    let mut inputs: Vec<String> = [
        "transaction( ) ) ( ;;; x=",
        "a=\"\\",
        "{\"execute\": \"é\u{1F600}\", \"arguments\": {\"x\": [1, {\"y\": \"z\"}]}}",
        "blockdev-add file.file.file.file.driver=qcow2 file..x=1 .=. ==",
        "transaction(\nabort\n\n;\n)\nx.0.1.2=3",
        "set-action 0=1 1.0=2 é=ü",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for concern in ["parse", "typing", "untyped", "complete"] {
        for file in common::fixtures(concern) {
            let text = std::fs::read_to_string(&file).expect("fixture");
            inputs.extend(common::cases(&text));
        }
    }
    for input in &inputs {
        for (end, _) in input.char_indices().chain([(input.len(), ' ')]) {
            let prefix = &input[..end];
            if let Ok(stmt) = syntax::parse(prefix) {
                let _ = typing::prepare(Some(schema), &stmt);
                let _ = typing::prepare(None, &stmt);
            }
            let (pending, line) = prefix.rsplit_once('\n').unwrap_or(("", prefix));
            // The cursor at the end, and inside the line (a byte offset that may fall
            // inside a character too).
            for pos in [line.len(), line.len() / 2, line.len() / 3] {
                let _ = complete::complete(schema, pending, line, pos);
            }
        }
    }
}
