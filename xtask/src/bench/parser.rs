//! `cargo xtask bench parser`: load + check of QEMU 10.0.2's three real schemas, and the peak
//! memory of `qapi check` on the QMP schema, against the targets of the parser issue.
//!
//! Baselines measured in the same run give the numbers their context: reading the same files,
//! and serde_json parsing the same expressions written as JSON (comments stripped).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{fmt_bytes, measure, peak_rss, verdict, Budget, Stats};
use crate::util::{self, cargo, fmt_duration};
use crate::Result;

/// The schemas measured: a label and the main file, relative to the upstream tree.
const SCHEMAS: [(&str, &str); 3] = [
    ("QMP", "qapi/qapi-schema.json"),
    ("QGA", "qga/qapi-schema.json"),
    ("storage daemon", "storage-daemon/qapi/qapi-schema.json"),
];

/// Load + check of the QMP schema, median CPU time (single-threaded: wall time on this
/// shared machine swings with other load, the thread's CPU time hardly).
const TARGET_QMP_TIME: Duration = Duration::from_millis(10);

/// Peak resident memory of `qapi check` on the QMP schema, as a whole process.
const TARGET_PEAK_RSS: u64 = 20_000_000;

/// How many `qapi check` processes to measure (the largest peak counts).
const RSS_RUNS: usize = 5;

pub(crate) fn run(args: &[String]) -> Result {
    let mut budget = Budget::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || -> Result<u64> {
            let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
            Ok(value.parse()?)
        };
        match arg.as_str() {
            "--iterations" => budget.min_iterations = usize::try_from(value()?)?.max(1),
            "--seconds" => budget.min_time = Duration::from_secs(value()?),
            _ => {
                return Err(format!(
                    "unknown option `{arg}` (options: --iterations N, --seconds N)"
                )
                .into())
            }
        }
    }
    let dir = util::upstream_dir();
    println!(
        "load + check (qapi_parser::load, default options) of QEMU {} schemas in {}",
        util::UPSTREAM_VERSION,
        dir.display()
    );
    println!(
        "at least {} iterations and {} per schema, after a warm-up; {}\n",
        budget.min_iterations,
        fmt_duration(budget.min_time),
        super::machine_load()
    );
    println!(
        "  {:<26} {:>5} {:>9} {:>6} {:>10} {:>10} {:>8}",
        "", "files", "bytes", "runs", "median", "min", "MB/s"
    );
    let mut failures = Vec::new();
    let mut qmp: Option<(Stats, Vec<PathBuf>)> = None;
    for (label, main) in SCHEMAS {
        let path = dir.join(main);
        let options = qapi_parser::Options::default();
        let files = match qapi_parser::load(&path, &options) {
            Ok(schema) if !schema.files.is_empty() => schema.files,
            Ok(_) => vec![path.clone()],
            Err(err) => {
                println!("  {label:<26} load failed:\n{err}");
                failures.push(label);
                continue;
            }
        };
        let bytes = total_size(&files);
        let stats = measure(budget, || qapi_parser::load(&path, &options).is_ok());
        row(label, files.len(), bytes, &stats);
        if label == "QMP" {
            qmp = Some((stats, files));
        }
    }

    let mut met = true;
    if let Some((stats, files)) = &qmp {
        baselines(budget, files)?;
        println!("\ntargets (parser issue):");
        println!(
            "  (QMP: median wall {}, median CPU {})",
            fmt_duration(stats.median),
            fmt_duration(stats.cpu_median)
        );
        met &= verdict(
            "QMP schema load + check, median CPU time",
            &fmt_duration(TARGET_QMP_TIME),
            &fmt_duration(stats.cpu_median),
            stats.cpu_median < TARGET_QMP_TIME,
        );
    }
    let qmp_main = dir.join(SCHEMAS[0].1);
    match qapi_check_peak_rss(&qmp_main) {
        Ok(rss) => {
            met &= verdict(
                "`qapi check` on the QMP schema, peak RSS",
                &fmt_bytes(TARGET_PEAK_RSS),
                &fmt_bytes(rss),
                rss < TARGET_PEAK_RSS,
            );
        }
        Err(err) => {
            println!("  `qapi check` peak RSS: not measured: {err}");
            failures.push("qapi check");
        }
    }
    if !met {
        println!("\nsome targets are missed (see above)");
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("could not measure: {}", failures.join(", ")).into())
    }
}

fn row(label: &str, files: usize, bytes: u64, stats: &Stats) {
    println!(
        "  {label:<26} {files:>5} {:>9} {:>6} {:>10} {:>10} {:>8.1}",
        fmt_bytes(bytes),
        stats.iterations,
        fmt_duration(stats.median),
        fmt_duration(stats.min),
        stats.mb_per_s(bytes)
    );
}

fn total_size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|file| std::fs::metadata(file).map_or(0, |meta| meta.len()))
        .sum()
}

/// Same-run baselines on the QMP schema's files.
fn baselines(budget: Budget, files: &[PathBuf]) -> Result {
    println!("\nbaselines, same run, same files (QMP):");
    let bytes = total_size(files);
    let stats = measure(budget, || {
        files
            .iter()
            .map(|file| std::fs::read_to_string(file).map_or(0, |text| text.len()))
            .sum::<usize>()
    });
    row("read the files", files.len(), bytes, &stats);

    let parse = |json: &str| -> serde_json::Result<usize> {
        serde_json::Deserializer::from_str(json)
            .into_iter::<serde_json::Value>()
            .try_fold(0, |count, value| value.map(|_| count + 1))
    };
    for (label, comments) in [
        ("serde_json, definitions", Comments::Drop),
        ("serde_json, same size", Comments::AsStrings),
    ] {
        let mut json = String::new();
        for file in files {
            json += &qapi_to_json(&std::fs::read_to_string(file)?, comments);
            json.push('\n');
        }
        match parse(&json) {
            Ok(_) => {
                let stats = measure(budget, || parse(&json));
                row(label, files.len(), json.len() as u64, &stats);
            }
            Err(err) => println!("  {label}: not measured, conversion failed: {err}"),
        }
    }
    println!("  (serde_json::Value from the same files written as JSON: the definitions alone,");
    println!(
        "   then with every comment line kept as a JSON string, about the size of the source)"
    );
    Ok(())
}

/// What [`qapi_to_json`] does with comments.
#[derive(Clone, Copy)]
enum Comments {
    /// Leaves them out.
    Drop,
    /// Keeps each one between expressions as a JSON string value of its own, so that the JSON
    /// is about as large as the source.
    AsStrings,
}

/// QAPI-JSON to JSON, for the baseline only: `'` strings made `"` strings, comments dropped or
/// kept as strings.
fn qapi_to_json(text: &str, comments: Comments) -> String {
    let mut out = String::with_capacity(text.len() / 2);
    let mut chars = text.chars();
    let mut depth = 0_usize;
    while let Some(c) = chars.next() {
        match c {
            '{' | '[' => {
                depth += 1;
                out.push(c);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                out.push(c);
            }
            '#' => {
                let comment: String = chars.by_ref().take_while(|&c| c != '\n').collect();
                // Inside an expression a string would not be valid JSON: keep top-level ones only.
                if let (Comments::AsStrings, 0) = (comments, depth) {
                    let value = serde_json::Value::String(comment);
                    out.push_str(&value.to_string());
                }
                out.push('\n');
            }
            '\'' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    match c {
                        '\'' => break,
                        '"' => out.push_str("\\\""),
                        '\\' => match chars.next() {
                            // `\'` needs no escape in JSON (and may not have one).
                            Some('\'') => out.push('\''),
                            next => {
                                out.push('\\');
                                out.extend(next);
                            }
                        },
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            c => out.push(c),
        }
    }
    out
}

/// Builds the `qapi` program (release) and returns the largest peak RSS of a few
/// `qapi check` runs on `main`, started in its folder with a bare file name.
fn qapi_check_peak_rss(main: &Path) -> Result<u64> {
    println!("\n`qapi check` as a whole process (release build):");
    util::run(cargo().args([
        "build",
        "--release",
        "--quiet",
        "--package",
        "qapi-codegen",
        "--bin",
        "qapi",
    ]))?;
    let program = util::target_dir().join("release/qapi");
    let folder = main.parent().ok_or("schema has no folder")?;
    let name = main.file_name().ok_or("schema has no file name")?;
    let mut cmd = Command::new(program);
    cmd.current_dir(folder).arg("check").arg(name);
    let mut peak = 0;
    for _ in 0..RSS_RUNS {
        let (code, rss) = peak_rss(&cmd)?;
        if code != 0 {
            return Err(format!("`qapi check` exited {code}").into());
        }
        peak = peak.max(rss);
    }
    Ok(peak)
}

#[cfg(test)]
mod tests {
    use super::{qapi_to_json, Comments};

    #[test]
    fn qapi_to_json_drops_comments_and_requotes_strings() {
        let qapi = "##\n# @Foo: a \"doc\" with 'quotes'\n##\n{ 'struct': 'Foo', # trailing\n  'data': { 'a\\'b': 'str', 'q\"': ['int'] } }\n";
        assert_eq!(
            qapi_to_json(qapi, Comments::Drop),
            "\n\n\n{ \"struct\": \"Foo\", \n  \"data\": { \"a'b\": \"str\", \"q\\\"\": [\"int\"] } }\n"
        );
        assert_eq!(
            qapi_to_json(qapi, Comments::AsStrings),
            "\"#\"\n\" @Foo: a \\\"doc\\\" with 'quotes'\"\n\"#\"\n{ \"struct\": \"Foo\", \n  \"data\": { \"a'b\": \"str\", \"q\\\"\": [\"int\"] } }\n"
        );
    }
}
