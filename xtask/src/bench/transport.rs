//! `cargo xtask bench transport [roundtrip|connect|events] [--quick]`: the QMP transport
//! benchmarks, each against a floor measured in the same run (see
//! `qmp-types/examples/bench_transport.rs`, which holds them so that xtask does not
//! depend on `qmp-types`). Its `... (target T) MET|NOT MET` lines are kept as verdicts,
//! so `--runs` and `--markdown` see them.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use super::record_verdict;
use crate::util::cargo;
use crate::Result;

/// Builds and runs the benchmark example in release mode, echoing its output.
pub(crate) fn run(args: &[String]) -> Result {
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--quiet", "--package", "qmp-types"])
        .args(["--example", "bench_transport", "--"])
        .args(args)
        .stdout(Stdio::piped());
    let mut child = cmd.spawn()?;
    let out = child.stdout.take().ok_or("no stdout")?;
    // A verdict line names its measurement; the section above it says of what.
    let mut section = String::new();
    for line in BufReader::new(out).lines() {
        let line = line?;
        println!("{line}");
        if !line.starts_with(' ') {
            section = line.split(" (").next().unwrap_or(&line).to_owned();
        } else if let Some((what, target, measured, met)) = parse_verdict(&line) {
            record_verdict(&format!("{section}: {what}"), &target, &measured, met);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("bench_transport failed ({status})").into());
    }
    Ok(())
}

/// `  WHAT: ... MEASURED (target T) MET` (or `NOT MET`): what, target, measured, met.
fn parse_verdict(line: &str) -> Option<(String, String, String, bool)> {
    let line = line.trim();
    let (line, met) = if let Some(l) = line.strip_suffix(" NOT MET") {
        (l, false)
    } else {
        (line.strip_suffix(" MET")?, true)
    };
    let (head, rest) = line.split_once(" (target ")?;
    let target = rest.strip_suffix(')')?;
    let what = head.split_once(": ")?.0.trim();
    let measured = head.rsplit_once(": ")?.1.trim();
    Some((what.to_owned(), target.to_owned(), measured.to_owned(), met))
}

#[cfg(test)]
mod tests {
    use super::parse_verdict;

    #[test]
    fn verdict_lines_of_the_example() {
        let v = parse_verdict;
        assert_eq!(
            v("  p50 : ours 439.8 µs, floor 446.9 µs: -1.6% (target within 5%) MET"),
            Some(("p50".into(), "within 5%".into(), "-1.6%".into(), true))
        );
        assert_eq!(
            v("  typed events, generated qmp_types::qmp::Event: 2.21 M events/s (target > 2 M) NOT MET"),
            Some((
                "typed events, generated qmp_types::qmp::Event".into(),
                "> 2 M".into(),
                "2.21 M events/s".into(),
                false
            ))
        );
        assert_eq!(v("  (plain mean: ours 726.5 µs, floor 724.7 µs)"), None);
    }
}
