//! `cargo xtask bench reach [libvirt|tls] [--quick]`: the routes to a monitor other than a
//! direct socket, each against a baseline measured in the same run (see
//! `qmp-client/examples/bench_reach.rs`): a libvirt round trip against a direct socket and
//! `virsh qemu-monitor-command` (target: at least 10x faster than virsh), and QMP over TLS
//! against plain TCP on the same QEMU (target: within 20%). libvirt is set up first
//! (`cargo xtask libvirt setup`).

use crate::util::{self, cargo};
use crate::Result;

/// Builds and runs the benchmark example in release mode.
pub(crate) fn run(args: &[String]) -> Result {
    crate::libvirt::setup()?;
    util::run(
        cargo()
            .args(["run", "--release", "--quiet", "--package", "qmp-client"])
            .args([
                "--features",
                "libvirt,tls",
                "--example",
                "bench_reach",
                "--",
            ])
            .args(args),
    )
}
