//! Decodes every reply of a recorded QMP transcript through the generated
//! `AnyReturn::decode` and checks each serializes back to the JSON it came from
//! (through the generated encoder and through serde).
//! Built and run by `tests/replies.rs` in a scratch crate, with the code generated
//! for the QEMU version the transcript was recorded from in `src/qmp.rs`.

#![deny(warnings)]
#![allow(missing_docs)]

use qapi_runtime::runtime;
pub mod qmp {
    include!("qmp.rs");
}

use serde_json::Value;

fn main() {
    let path = std::env::args().nth(1).expect("usage: replies FILE");
    let text = std::fs::read_to_string(&path).expect("read transcript");
    let mut pending: Option<String> = None;
    let (mut ok, mut typed, mut errors) = (0, 0, Vec::new());
    for v in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
        let v = v.expect("transcript is JSON");
        if let Some(name) = v.get("execute").and_then(Value::as_str) {
            pending = Some(name.to_owned());
            continue;
        }
        let (Some(name), Some(ret)) = (pending.take(), v.get("return")) else {
            continue;
        };
        match qmp::AnyReturn::decode(&name, &ret.to_string()) {
            Ok(r) => {
                if !matches!(r, qmp::AnyReturn::Unrecognized(_)) {
                    typed += 1;
                }
                let back = serde_json::to_value(&r).expect("serialize");
                let mut out = Vec::new();
                runtime::Encode::encode(&r, &mut runtime::Writer::new(&mut out));
                let direct: Value = serde_json::from_slice(&out).expect("encoder writes JSON");
                if direct != back {
                    errors.push(format!("{name}: the encoder and serde differ:\n  {direct}\n  {back}"));
                } else if back == *ret {
                    ok += 1;
                } else {
                    errors.push(format!("{name}: serializes differently:\n  {ret}\n  {back}"));
                }
            }
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    for e in &errors {
        println!("{e}");
    }
    println!("replies: {ok} round-tripped ({typed} typed), {} failed", errors.len());
    std::process::exit(i32::from(!errors.is_empty() || ok == 0));
}
