//! `cargo xtask bench fleet build`: the cold release build of a user crate generating its
//! own schema, depending on `qapi-runtime` alone against depending on `qmp-types`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use super::super::{machine_load, verdict};
use super::{scratch_crate, spread};
use crate::util::{self, cargo, fmt_duration, repo_root};
use crate::Result;

/// Cold release builds of a user crate generating its own schema: with `qapi-runtime`
/// alone against with `qmp-types`, each in a fresh target folder, alternating.
pub(super) fn cold_build(rounds: usize) -> Result {
    let root = repo_root();
    let base = util::target_dir().join("bench-fleet");
    let schema = root.join("schema/commands.json");
    let user = |name: &str, dep: &str, crate_path: &str| -> Result<PathBuf> {
        let dir = base.join(name);
        let build_rs = format!(
            "//! Generates the API of a small schema of ours.\nfn main() {{\n    qapi_codegen::Config::new()\n        .crate_path(\"{crate_path}\")\n        .compile(\"{}\", \"api.rs\")\n        .unwrap();\n}}\n",
            schema.display()
        );
        let main = format!(
            "//! Names a generated command.\npub mod api {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/api.rs\"));\n}}\n\nfn main() {{\n    println!(\"{{}}\", <api::commands::QueryInfo as {crate_path}::Command>::NAME);\n}}\n"
        );
        let deps = format!(
            "{dep}\nserde_json = \"1\"\n\n[build-dependencies]\nqapi-codegen = {{ path = \"{}\" }}\n",
            root.join("qapi-codegen").display()
        );
        scratch_crate(
            &dir,
            name,
            &deps,
            &[("build.rs", &build_rs), ("src/main.rs", &main)],
        )?;
        if !dir.join("Cargo.lock").exists() {
            std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
        }
        Ok(dir)
    };
    // The same user crate, depending on one of our crates by path.
    let on = |dep: &str| {
        let path = format!("{dep} = {{ path = \"{}\" }}", root.join(dep).display());
        user(
            &format!("user-{dep}"),
            &path,
            &format!("::{}", dep.replace('-', "_")),
        )
    };
    let (runtime, types) = (on("qapi-runtime")?, on("qmp-types")?);
    // Fetch first (a network step), so only compilation is timed.
    for dir in [&runtime, &types] {
        util::run(
            cargo()
                .env("CARGO_TARGET_DIR", dir.join("target"))
                .args(["fetch", "--quiet", "--manifest-path"])
                .arg(dir.join("Cargo.toml")),
        )?;
    }
    println!("cold release build of a user crate generating schema/commands.json, {rounds} round(s), alternating:");
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let mut order = [("qapi-runtime alone", &runtime), ("qmp-types", &types)];
        if round % 2 == 1 {
            order.reverse();
        }
        let mut times = BTreeMap::new();
        for (label, dir) in order {
            let target = dir.join("target");
            let _ = std::fs::remove_dir_all(&target);
            let t = Instant::now();
            let out = cargo()
                .env("CARGO_TARGET_DIR", &target)
                .args([
                    "build",
                    "--release",
                    "--offline",
                    "--quiet",
                    "--manifest-path",
                ])
                .arg(dir.join("Cargo.toml"))
                .output()?;
            if !out.status.success() {
                return Err(format!(
                    "cold build with {label} failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
                .into());
            }
            let time = t.elapsed();
            println!(
                "  {label:<20} {:>8}   ({})",
                fmt_duration(time),
                machine_load()
            );
            times.insert(label, time.as_secs_f64());
        }
        ratios.push(times["qapi-runtime alone"] / times["qmp-types"]);
    }
    let n = ratios.len();
    let (median, lo, hi) = spread(ratios).ok_or("no build measured")?;
    verdict(
        "qapi-runtime alone / qmp-types (cold build)",
        "<= 0.50",
        &format!("{median:.2}"),
        median <= 0.5,
    );
    if n > 1 {
        println!("  {:<44}    ({lo:.2}-{hi:.2} over {n} rounds)", "");
    }
    Ok(())
}
