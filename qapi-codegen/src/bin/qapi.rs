//! The `qapi` command-line program: `qapi check FILE`, `qapi dump FILE`, `qapi gen FILE -o OUT.rs`,
//! each with `--qemu X.Y` for the rules of another QEMU release.
//!
//! Arguments are parsed by hand so the program adds no dependency to the library
//! crates that build scripts compile.

use std::io::Write as _;
use std::process::ExitCode;

const USAGE: &str = "\
usage: qapi check [OPTIONS] FILE   check a schema; errors go to stderr
       qapi dump [OPTIONS] FILE    print QEMU's test dump (.out format) of a schema
       qapi gen [OPTIONS] [--crate PATH] [--min-qemu X.Y] [--older X.Y=FILE]... FILE [-o OUT.rs]
                                   generate Rust (stdout without -o)

--qemu X.Y  read the schema under QEMU X.Y's rules (5.2, 7.2, 10.0 (default), 10.2;
            a newer version takes the newest rules known)
--legacy    accept QEMU 7.2-era documentation conventions (reported as warnings)
--min-qemu X.Y       the oldest QEMU release the generated code supports: members some
                     release of the range leaves out are Option (see qapi_codegen::Config)
--older X.Y=FILE     another release's schema, read under its own rules, for that range";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match cmd.as_str() {
        "check" | "dump" => check_or_dump(cmd == "dump", rest),
        "gen" => gen(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("qapi: unknown command '{other}'\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check_or_dump(dump: bool, args: &[String]) -> ExitCode {
    let mut options = qapi_parser::Options::default();
    let mut file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--legacy" => options.compat = qapi_parser::Compat::Legacy,
            "--qemu" => match release(it.next()) {
                Ok(r) => options.release = r,
                Err(code) => return code,
            },
            s if s.starts_with('-') && s.len() > 1 => {
                eprintln!("qapi: unknown option '{s}'\n{USAGE}");
                return ExitCode::from(2);
            }
            s if file.is_none() => file = Some(s),
            _ => {
                eprintln!("qapi: exactly one FILE expected\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(file) = file else {
        eprintln!("qapi: FILE missing\n{USAGE}");
        return ExitCode::from(2);
    };
    match qapi_parser::load(file, &options) {
        Ok(schema) => {
            for w in &schema.warnings {
                eprintln!("{w}");
            }
            if dump {
                let text = qapi_parser::dump(&schema);
                // A closed pipe (e.g. `| head`) is not an error worth a panic.
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `qapi gen`: generates typed Rust for a schema.
fn gen(args: &[String]) -> ExitCode {
    let mut cfg = qapi_codegen::Config::new();
    cfg.rerun_if_changed(false);
    let mut options = qapi_parser::Options::default();
    let (mut file, mut out) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--legacy" => options.compat = qapi_parser::Compat::Legacy,
            "--qemu" => match release(it.next()) {
                Ok(r) => options.release = r,
                Err(code) => return code,
            },
            "-o" => out = it.next(),
            "--min-qemu" => match it.next().and_then(|v| qapi_codegen::QemuVersion::parse(v)) {
                Some(v) => {
                    cfg.min_qemu(v);
                }
                None => {
                    eprintln!("qapi: --min-qemu needs a version (X.Y)\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--older" => match it.next().and_then(|a| a.split_once('=')) {
                Some((v, path)) => match qapi_codegen::QemuVersion::parse(v) {
                    Some(v) => {
                        cfg.older_schema(v, path);
                    }
                    None => {
                        eprintln!("qapi: --older: `{v}` is not a version (X.Y)\n{USAGE}");
                        return ExitCode::from(2);
                    }
                },
                None => {
                    eprintln!("qapi: --older needs X.Y=FILE\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--crate" => match it.next() {
                Some(p) => {
                    cfg.crate_path(p);
                }
                None => file = None,
            },
            s if !s.starts_with('-') && file.is_none() => file = Some(s),
            s => {
                eprintln!("qapi: unexpected argument '{s}'\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(file) = file else {
        eprintln!("qapi: FILE missing\n{USAGE}");
        return ExitCode::from(2);
    };
    cfg.parser_options(options);
    let text = match cfg.generate_file(std::path::Path::new(file)).0 {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match out {
        Some(path) => {
            if let Err(e) = qapi_codegen::write_if_changed(std::path::Path::new(path), &text) {
                eprintln!("qapi: {e}");
                return ExitCode::FAILURE;
            }
        }
        None => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    ExitCode::SUCCESS
}

/// The value of `--qemu`, or the exit code of a usage error.
fn release(value: Option<&String>) -> Result<qapi_parser::Release, ExitCode> {
    let Some(value) = value else {
        eprintln!("qapi: --qemu needs a version (X.Y)\n{USAGE}");
        return Err(ExitCode::from(2));
    };
    value.parse().map_err(|e| {
        eprintln!("qapi: --qemu: {e}");
        ExitCode::from(2)
    })
}
