//! `cargo xtask bench transport [roundtrip|connect|events] [--quick]`: the QMP transport
//! benchmarks, each against a floor measured in the same run (see
//! `qmp-types/examples/bench_transport.rs`, which holds them so that xtask does not
//! depend on `qmp-types`).

use crate::util::{self, cargo};
use crate::Result;

/// Builds and runs the benchmark example in release mode.
pub(crate) fn run(args: &[String]) -> Result {
    util::run(
        cargo()
            .args(["run", "--release", "--quiet", "--package", "qmp-types"])
            .args(["--example", "bench_transport", "--"])
            .args(args),
    )
}
