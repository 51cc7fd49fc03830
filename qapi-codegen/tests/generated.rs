//! Every snapshot compiled under `#![deny(warnings)]`, and wire round-trips of every
//! construct against hand-checked JSON, against the real `qapi-runtime` (which the
//! generated code names as `::qapi_runtime`).

#![deny(warnings)]
#![allow(missing_docs)]

use qapi_runtime::{runtime, Command, EventSet, Timestamp};

pub mod alternates {
    include!("snapshots/alternates.rs");
}
pub mod builtins {
    include!("snapshots/builtins.rs");
}
pub mod command_shapes {
    include!("snapshots/commands.rs");
}
pub mod doc_links {
    include!("snapshots/doc-links.rs");
}
pub mod docs_examples {
    include!("snapshots/docs-examples.rs");
}
pub mod features_conditions {
    include!("snapshots/features-conditions.rs");
}
pub mod flat_union {
    include!("snapshots/flat-union.rs");
}
pub mod keyword_names {
    include!("snapshots/keyword-names.rs");
}
pub mod name_clashes {
    include!("snapshots/name-clashes.rs");
}
pub mod range {
    include!("snapshots/range.rs");
}
pub mod recursion {
    include!("snapshots/recursion.rs");
}

use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};

/// What every generated type offers: the direct codec and serde's traits.
trait Wire: runtime::Decode + runtime::Encode + DeserializeOwned + Serialize + std::fmt::Debug {}
impl<T: runtime::Decode + runtime::Encode + DeserializeOwned + Serialize + std::fmt::Debug> Wire
    for T
{
}

/// Decodes `text` through both paths (the direct codec and serde), checks that they
/// agree, and that both encode back to `wire`.
fn decode_both<T: Wire>(wire: &Value, text: &str) -> T {
    let direct: T = runtime::decode(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let via_serde: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("serde, {text}: {e}"));
    assert_eq!(
        format!("{direct:?}"),
        format!("{via_serde:?}"),
        "decoding {text}"
    );
    let mut out = Vec::new();
    runtime::Encode::encode(&direct, &mut runtime::Writer::new(&mut out));
    let encoded: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(&encoded, wire, "encoding {direct:?}");
    assert_eq!(
        &serde_json::to_value(&direct).unwrap(),
        wire,
        "serde-encoding {direct:?}"
    );
    direct
}

/// Decodes `wire` as `T`, checks the value against `expected`, and that it encodes
/// back to the same JSON.
fn check<T: Wire + PartialEq>(wire: Value, expected: T) {
    let text = wire.to_string();
    let got: T = decode_both(&wire, &text);
    assert_eq!(got, expected, "decoding {text}");
}

/// Decodes `wire` and checks that it encodes back unchanged (forward compatibility).
fn round_trip<T: Wire>(wire: Value) -> T {
    decode_both(&wire, &wire.to_string())
}

#[test]
fn keywords_and_renames() {
    use keyword_names::*;
    check(
        json!({"type": "t", "gen": -1, "self": true, "async": "self", "x-perf": false, "match-mode": 255}),
        Keywords {
            r#type: "t".into(),
            r#gen: -1,
            self_: true,
            r#async: Some(KeywordValues::Self_),
            x_perf: Some(false),
            match_mode: 255,
        },
    );
    // Missing optional members are fine, unknown members are ignored.
    let k: Keywords = serde_json::from_value(
        json!({"type": "t", "gen": 0, "self": false, "match-mode": 1, "new-member": [1]}),
    )
    .unwrap();
    assert_eq!(k.r#async, None);
    assert_eq!(
        serde_json::to_value(&k).unwrap(),
        json!({"type": "t", "gen": 0, "self": false, "match-mode": 1})
    );
    // Out of range for uint8.
    assert!(serde_json::from_value::<Keywords>(
        json!({"type": "t", "gen": 0, "self": false, "match-mode": 256})
    )
    .is_err());
    for (v, wire) in [
        (KeywordValues::Type, "type"),
        (KeywordValues::V1, "1"),
        (KeywordValues::XExp, "x-exp"),
        (KeywordValues::Unknown, "unknown"),
    ] {
        check(json!(wire), v);
    }
    // A value a newer QEMU sends is kept and sent back.
    check(
        json!("brand-new"),
        KeywordValues::Unrecognized("brand-new".into()),
    );
    assert_eq!(
        <commands::XQueryKeywords as Command>::NAME,
        "x-query-keywords"
    );
}

#[test]
fn enums_map_both_ways() {
    use flat_union::Driver;
    assert_eq!(Driver::Nbd.as_str(), "nbd");
    assert_eq!(Driver::from_wire("file"), Driver::File);
    assert_eq!(Driver::from_wire("ssh"), Driver::Unrecognized("ssh".into()));
}

#[test]
fn recursion_is_boxed() {
    use recursion::*;
    let wire = json!({"name": "a", "parent": {"name": "b"}, "children": [{"name": "c"}], "other": {"node": {"name": "d"}}});
    let n: Node = round_trip(wire);
    assert_eq!(n.parent.unwrap().name, "b");
    let c: Chain = round_trip(json!({"kind": "linked", "next": {"kind": "plain"}, "target": "t"}));
    assert!(matches!(c.kind, ChainBranch::Linked(ChainLink { ref target }) if target == "t"));
    assert!(matches!(
        c.next.as_deref(),
        Some(Chain {
            kind: ChainBranch::Plain,
            next: None
        })
    ));
}

#[test]
fn flat_unions() {
    use flat_union::*;
    check(
        json!({"node-name": "n0", "driver": "file", "read-only": true, "filename": "/tmp/x", "size": 512}),
        Opts {
            node_name: Some("n0".into()),
            driver: OptsBranch::File(FileOpts {
                filename: "/tmp/x".into(),
                size: Some(512),
            }),
            read_only: Some(true),
        },
    );
    // An implicit branch has no data.
    check(
        json!({"driver": "null"}),
        Opts {
            node_name: None,
            driver: OptsBranch::Null,
            read_only: None,
        },
    );
    // An inline base; the discriminator is not the first member.
    check(
        json!({"id": 7, "shape": "circle", "radius": 1.5}),
        Figure {
            id: 7,
            shape: FigureBranch::Circle(Circle { radius: 1.5 }),
        },
    );
    // A value without a branch type in the schema is an implicit branch too.
    check(
        json!({"id": 1, "shape": "square"}),
        Figure {
            id: 1,
            shape: FigureBranch::Square,
        },
    );
    // Member order on the wire does not matter: discriminator last, base after branch.
    let o: Opts = serde_json::from_value(
        json!({"filename": "f", "read-only": false, "node-name": "n", "driver": "file"}),
    )
    .unwrap();
    assert_eq!(o.read_only, Some(false));
    assert_eq!(o.node_name.as_deref(), Some("n"));
    assert!(matches!(o.driver, OptsBranch::File(ref f) if f.filename == "f"));
    let o: Opts = serde_json::from_str(
        r#"{"driver": "nbd", "server": "s", "node-name": "late", "export": "e"}"#,
    )
    .unwrap();
    assert_eq!(o.node_name.as_deref(), Some("late"));
    assert!(matches!(o.driver, OptsBranch::Nbd(ref n) if n.export.as_deref() == Some("e")));
    // An unknown discriminator value keeps the branch members and round-trips.
    let o: Opts = round_trip(json!({"node-name": "n", "driver": "ssh", "host": "h", "port": 22}));
    assert_eq!(o.driver.tag(), "ssh");
    // Missing discriminator or required branch members are errors.
    assert!(serde_json::from_value::<Opts>(json!({"filename": "f"})).is_err());
    assert!(serde_json::from_value::<Opts>(json!({"driver": "file"})).is_err());
    // The boxed command takes the union as its arguments.
    let mut out = Vec::new();
    commands::AddOpts(Opts {
        node_name: None,
        driver: OptsBranch::Null,
        read_only: None,
    })
    .write_arguments(&mut out)
    .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), r#"{"driver":"null"}"#);
}

#[test]
fn alternates_by_json_type() {
    use alternates::*;
    check(json!("red"), Everything::Color(Color::Red));
    check(
        json!("mauve"),
        Everything::Color(Color::Unrecognized("mauve".into())),
    );
    check(json!(-5), Everything::Count(-5));
    check(json!(true), Everything::Flag(true));
    check(
        json!({"x": 1, "y": 2}),
        Everything::Point(Point { x: 1, y: 2 }),
    );
    check(json!(null), Everything::None);
    // int8 range, and no number alternative.
    assert!(serde_json::from_value::<Everything>(json!(300)).is_err());
    assert!(serde_json::from_value::<Everything>(json!(1.5)).is_err());
    assert!(serde_json::from_value::<Everything>(json!([])).is_err());
    check(json!("s"), StrOrNull::S("s".into()));
    check(json!(null), StrOrNull::N);
    check(json!(2.5), NumberOrPoints::Num(2.5));
    assert_eq!(
        serde_json::from_value::<NumberOrPoints>(json!(3)).unwrap(),
        NumberOrPoints::Num(3.0)
    );
    check(
        json!([{"x": 0, "y": 0}]),
        NumberOrPoints::List(vec![Point { x: 0, y: 0 }]),
    );
    check(
        json!({"a": null, "b": null, "c": []}),
        Holder {
            a: Everything::None,
            b: Some(StrOrNull::N),
            c: Some(NumberOrPoints::List(vec![])),
        },
    );
}

#[test]
fn builtins_and_qtype() {
    use builtins::*;
    let wire = json!({
        "s": "x", "n": 1.5, "i": -9007199254740993i64, "i8": -128, "i16": 32767, "i32": -2147483648i64,
        "i64": 9223372036854775807i64, "u8": 255, "u16": 65535, "u32": 4294967295u64,
        "u64": 18446744073709551615u64, "sz": 1073741824, "b": false, "a": {"any": [1, "two"]},
        "q": "qdict", "l": ["a", "b"]
    });
    let b: Builtins = round_trip(wire);
    assert_eq!(b.u64, u64::MAX);
    assert_eq!(b.q, QType::Qdict);
    assert!(serde_json::from_value::<Builtins>(json!({"i8": 128})).is_err());
}

#[test]
fn commands_and_returns() {
    use crate::command_shapes::commands as c;
    use command_shapes::*;
    fn args<C: Command>(cmd: &C) -> String {
        let mut out = Vec::new();
        cmd.write_arguments(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }
    const _: () = assert!(!c::Ping::HAS_ARGUMENTS);
    assert_eq!(args(&c::Ping), "");
    assert_eq!(<c::Ping as Command>::decode_return("{}").unwrap(), ());
    assert_eq!(
        args(&c::QueryInfos {
            filter: None,
            limit: 3
        }),
        r#"{"limit":3}"#
    );
    assert_eq!(
        <c::QueryInfos as Command>::decode_return(r#"[{"name": "a", "values": [1]}]"#).unwrap(),
        vec![Info {
            name: "a".into(),
            values: vec![1]
        }]
    );
    assert_eq!(
        args(&c::SetInfo(Info {
            name: "n".into(),
            values: vec![]
        })),
        r#"{"name":"n","values":[]}"#
    );
    assert_eq!(
        args(&c::UseInfo {
            name: "n".into(),
            values: vec![2]
        }),
        r#"{"name":"n","values":[2]}"#
    );
    assert_eq!(<c::GetCount as Command>::decode_return("42").unwrap(), 42);
    assert_eq!(
        <c::GetAny as Command>::decode_return("[1]").unwrap(),
        json!([1])
    );
    const _: () = assert!(!c::Fire::SUCCESS_RESPONSE && !c::Fire::HAS_ARGUMENTS);
    const _: () = assert!(c::Interrupt::ALLOW_OOB && !c::Ping::ALLOW_OOB);

    // AnyCommand: the wire request, both ways.
    for (wire, expected) in [
        (json!({"execute": "ping"}), AnyCommand::Ping(c::Ping)),
        (
            json!({"execute": "query-infos", "arguments": {"limit": 1}}),
            AnyCommand::QueryInfos(c::QueryInfos {
                filter: None,
                limit: 1,
            }),
        ),
        (
            json!({"execute": "set-info", "arguments": {"name": "x", "values": []}}),
            AnyCommand::SetInfo(c::SetInfo(Info {
                name: "x".into(),
                values: vec![],
            })),
        ),
        (
            json!({"execute": "future-command", "arguments": {"z": 1}}),
            AnyCommand::Unrecognized {
                execute: "future-command".into(),
                arguments: Some(json!({"z": 1})),
            },
        ),
    ] {
        check(wire, expected);
    }
    let cmd: AnyCommand = serde_json::from_value(json!({"execute": "ping", "id": 5})).unwrap();
    assert_eq!(cmd.name(), "ping");

    // AnyReturn: the typed return of any command, serializing back to the same JSON.
    for (name, wire) in [
        ("ping", json!({})),
        ("query-info", json!({"name": "n", "values": [1, 2]})),
        ("query-infos", json!([])),
        ("get-count", json!(3)),
        ("get-any", json!({"x": [null]})),
        ("unknown-command", json!({"y": 1})),
    ] {
        let r = AnyReturn::decode(name, &wire.to_string()).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), wire, "{name}");
    }
    assert!(matches!(
        AnyReturn::decode("query-info", r#"{"name": "n", "values": []}"#).unwrap(),
        AnyReturn::QueryInfo(_)
    ));
}

#[test]
fn events() {
    use command_shapes::*;
    let ts = Timestamp {
        seconds: 1267040730,
        microseconds: 682951,
    };
    let wire_ts = json!({"seconds": 1267040730, "microseconds": 682951});
    check(
        json!({"event": "STARTED", "timestamp": wire_ts}),
        Event::Started(events::Started, ts),
    );
    check(
        json!({"event": "CHANGED", "data": {"name": "n"}, "timestamp": wire_ts}),
        Event::Changed(
            events::Changed {
                name: "n".into(),
                count: None,
            },
            ts,
        ),
    );
    check(
        json!({"event": "INFO_EVENT", "data": {"name": "n", "values": [1]}, "timestamp": wire_ts}),
        Event::InfoEvent(
            events::InfoEvent(Info {
                name: "n".into(),
                values: vec![1],
            }),
            ts,
        ),
    );
    // Unknown events keep name and data.
    check(
        json!({"event": "NEW_EVENT", "data": {"a": 1}, "timestamp": wire_ts}),
        Event::Unrecognized {
            name: "NEW_EVENT".into(),
            data: Some(json!({"a": 1})),
            timestamp: ts,
        },
    );
    let e = <Event as EventSet>::decode_event("CHANGED", Some(r#"{"name": "x", "count": 2}"#), ts)
        .unwrap();
    assert_eq!(e.name(), "CHANGED");
    assert_eq!(e.timestamp(), ts);
}

#[test]
fn name_clashes_resolve() {
    use name_clashes::*;
    // Types keep the plain names, generated helpers get a number.
    let _: Event = Event {
        name: "type".into(),
    };
    let _: AnyCommand = AnyCommand {
        name: "type".into(),
    };
    let _: AnyCommand2 = AnyCommand2::BlockdevBackup(commands::BlockdevBackup(BlockdevBackup {
        device: "d".into(),
    }));
    let _: Event2 = Event2::BlockdevBackup(
        events::BlockdevBackup { device: "d".into() },
        Timestamp::default(),
    );
    let _: String = String {
        value: "v".into(),
        opt: Some(Option::Some),
    };
    let _: OptsBranch = OptsBranch { x: 1 };
    let _: OptsBranch2 = OptsBranch2::Some;
    assert_eq!(<commands::AbC as Command>::NAME, "ab-c");
    assert_eq!(<commands::AbC2 as Command>::NAME, "ab_c");
}

#[test]
#[allow(deprecated)]
fn features_and_conditions() {
    use features_conditions::*;
    check(json!("slow"), Mode::Slow);
    check(json!("kvm-only"), Mode::KvmOnly);
    let t = NewThing {
        old: None,
        x_fancy: Some(1),
        legacy: Some("l".into()),
        linux: None,
    };
    assert_eq!(
        serde_json::to_value(&t).unwrap(),
        json!({"x-fancy": 1, "legacy": "l"})
    );
    assert_eq!(<commands::OldCommand as Command>::NAME, "old-command");
}

#[test]
fn decode_errors_say_where_and_why() {
    fn err<T: Wire>(text: &str) -> String {
        let direct = runtime::decode::<T>(text).unwrap_err().to_string();
        // serde's path reports the same reason (its position is in re-encoded text).
        let via_serde = serde_json::from_str::<T>(text).unwrap_err().to_string();
        let reason = |m: &str| m.split(" at line ").next().unwrap_or_default().to_owned();
        assert_eq!(reason(&direct), reason(&via_serde), "{text}");
        direct
    }
    use flat_union::Opts;
    let cases = [
        (
            err::<Opts>(r#"{"filename": "f"}"#),
            "missing field `driver` at line 1 column 18",
        ),
        (
            err::<Opts>("{\"driver\": \"file\",\n \"filename\": 5}"),
            "invalid type: number, expected a string at line 2 column 14",
        ),
        (
            err::<Opts>(r#"{"driver": "file"}"#),
            "missing field `filename` at line 1 column 19",
        ),
        (
            err::<Opts>(r#"{"driver": "null"} x"#),
            "trailing characters at line 1 column 20",
        ),
        (
            err::<builtins::Builtins>(r#"{"i8": 128}"#),
            "invalid value: integer `128`, expected i8 at line 1 column 8",
        ),
        (
            err::<alternates::Everything>("[]"),
            "invalid type: array, expected alternate Everything at line 1 column 1",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
    // Nesting deeper than serde_json's limit is an error, not a stack overflow.
    let deep = r#"{"name": "n", "parent": "#.repeat(200) + r#"{"name": "leaf"}"# + &"}".repeat(200);
    let e = runtime::decode::<recursion::Node>(&deep)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("recursion limit exceeded"), "{e}");
}

#[test]
fn constructors_take_the_required_members() {
    use command_shapes::commands as c;
    use flat_union::*;
    // Required members in schema order; a `String` member takes anything `Into<String>`.
    assert_eq!(
        c::QueryInfos::new(3),
        c::QueryInfos {
            filter: None,
            limit: 3
        }
    );
    assert_eq!(
        command_shapes::events::Changed::new("n"),
        command_shapes::events::Changed {
            name: "n".into(),
            count: None
        }
    );
    assert_eq!(
        FileOpts::new(String::from("/f")),
        FileOpts {
            filename: "/f".into(),
            size: None
        }
    );
    // A union takes its required base members and its branch.
    assert_eq!(
        Opts::new(OptsBranch::Nbd(NbdOpts::new("s"))),
        Opts {
            node_name: None,
            driver: OptsBranch::Nbd(NbdOpts {
                server: "s".into(),
                export: None
            }),
            read_only: None,
        }
    );
    assert_eq!(
        Figure::new(1, FigureBranch::Circle(Circle::new(0.5)))
            .shape
            .tag(),
        "circle"
    );
    // Every member optional: `new()` is `Default`.
    assert_eq!(c::Configure::new(), c::Configure::default());
    assert_eq!(recursion::Other::new(), recursion::Other::default());
    // The optional members are set afterwards, as fields.
    let mut n = recursion::Node::new("a");
    n.parent = Some(Box::new(recursion::Node::new("b")));
    assert_eq!(
        serde_json::to_value(&n).unwrap(),
        json!({"name": "a", "parent": {"name": "b"}})
    );
    // More than seven parameters (clippy's too_many_arguments is allowed on it).
    let b = builtins::Builtins::new(
        "s",
        1.5,
        -1,
        -2,
        -3,
        -4,
        -5,
        1,
        2,
        3,
        4,
        5,
        true,
        json!(null),
        builtins::QType::Qnull,
        vec![],
    );
    assert_eq!((b.s.as_str(), b.sz, b.q), ("s", 5, builtins::QType::Qnull));
}

#[test]
fn enums_display_parse_and_as_ref() {
    use flat_union::Driver;
    use std::str::FromStr;
    assert_eq!(Driver::Nbd.to_string(), "nbd");
    assert_eq!(format!("[{:>5}]", Driver::File), "[ file]");
    assert_eq!(
        Driver::Unrecognized("ssh".into()).to_string(),
        "ssh",
        "an unknown value displays as it came"
    );
    assert_eq!("file".parse::<Driver>(), Ok(Driver::File));
    // Parsing never fails: an unknown string is kept (`Err` is `Infallible`).
    let unknown: Result<Driver, std::convert::Infallible> = Driver::from_str("ssh");
    assert_eq!(unknown, Ok(Driver::Unrecognized("ssh".into())));
    assert_eq!(keyword_names::KeywordValues::XExp.as_ref(), "x-exp");
    fn takes_str(s: impl AsRef<str>) -> usize {
        s.as_ref().len()
    }
    assert_eq!(takes_str(builtins::QType::Qdict), 5);
}

#[test]
fn any_command_is_the_wire_request() {
    use command_shapes::commands as c;
    use command_shapes::AnyCommand;
    fn encoded(cmd: &AnyCommand) -> String {
        let mut out = Vec::new();
        runtime::Encode::encode(cmd, &mut runtime::Writer::new(&mut out));
        String::from_utf8(out).unwrap()
    }
    // Hand-checked: `execute` first, `arguments` only when there are some, exactly the
    // bytes the transport writes before its `id`.
    let cases = [
        (AnyCommand::Ping(c::Ping), r#"{"execute":"ping"}"#),
        (
            AnyCommand::Configure(c::Configure::new()),
            r#"{"execute":"configure"}"#,
        ),
        (
            AnyCommand::Configure(c::Configure {
                enable: Some(vec!["oob".into()]),
            }),
            r#"{"execute":"configure","arguments":{"enable":["oob"]}}"#,
        ),
        (
            AnyCommand::QueryInfos(c::QueryInfos::new(1)),
            r#"{"execute":"query-infos","arguments":{"limit":1}}"#,
        ),
        (
            AnyCommand::SetInfo(c::SetInfo(command_shapes::Info::new("x", vec![]))),
            r#"{"execute":"set-info","arguments":{"name":"x","values":[]}}"#,
        ),
        (
            AnyCommand::Unrecognized {
                execute: "future-command".into(),
                arguments: Some(json!({"z": 1})),
            },
            r#"{"execute":"future-command","arguments":{"z":1}}"#,
        ),
        (
            AnyCommand::Unrecognized {
                execute: "future-command".into(),
                arguments: None,
            },
            r#"{"execute":"future-command"}"#,
        ),
    ];
    for (cmd, wire) in &cases {
        assert_eq!(encoded(cmd), *wire, "codec: {cmd:?}");
        // serde's bridge keeps the member order too.
        assert_eq!(serde_json::to_string(cmd).unwrap(), *wire, "serde: {cmd:?}");
        // And both decoders read it back.
        assert_eq!(&runtime::decode::<AnyCommand>(wire).unwrap(), cmd);
        assert_eq!(&serde_json::from_str::<AnyCommand>(wire).unwrap(), cmd);
    }
    // The transport's form and what real clients send: `id` (any JSON), `control`,
    // members in any order, `exec-oob`, empty or absent `arguments`.
    for (text, cmd) in [
        (
            r#"{"execute": "configure", "id": 1}"#,
            AnyCommand::Configure(c::Configure::new()),
        ),
        (
            r#"{"arguments": {}, "execute": "configure", "id": "libvirt-1"}"#,
            AnyCommand::Configure(c::Configure::new()),
        ),
        (
            r#"{"id": {"n": [1]}, "arguments": {"limit": 2}, "execute": "query-infos"}"#,
            AnyCommand::QueryInfos(c::QueryInfos::new(2)),
        ),
        (
            r#"{"exec-oob": "interrupt", "id": 7, "control": {"run-oob": true}}"#,
            AnyCommand::Interrupt(c::Interrupt),
        ),
    ] {
        assert_eq!(runtime::decode::<AnyCommand>(text).unwrap(), cmd, "{text}");
        assert_eq!(
            serde_json::from_str::<AnyCommand>(text).unwrap(),
            cmd,
            "{text}"
        );
    }
    // Required arguments missing, or no command name: errors.
    assert!(runtime::decode::<AnyCommand>(r#"{"execute": "query-infos"}"#).is_err());
    assert!(runtime::decode::<AnyCommand>(r#"{"arguments": {}}"#).is_err());
}

#[test]
fn serde_keeps_the_wire_member_order() {
    // Through any serde serializer, members come in the order the codec writes them
    // (schema order), not sorted.
    let o = flat_union::Opts {
        node_name: Some("n".into()),
        driver: flat_union::OptsBranch::File(flat_union::FileOpts::new("/f")),
        read_only: Some(true),
    };
    assert_eq!(
        serde_json::to_string(&o).unwrap(),
        r#"{"node-name":"n","driver":"file","read-only":true,"filename":"/f"}"#
    );
    let ts = Timestamp {
        seconds: 1,
        microseconds: 2,
    };
    let e = command_shapes::Event::Changed(command_shapes::events::Changed::new("n"), ts);
    assert_eq!(
        serde_json::to_string(&e).unwrap(),
        r#"{"event":"CHANGED","data":{"name":"n"},"timestamp":{"seconds":1,"microseconds":2}}"#
    );
}

#[test]
fn range_members_and_changed_types() {
    use range::*;
    // QEMU 7.2's shape: no `acpi`, `value` a string.
    let old = json!({"name": "pc", "hotplug": true, "numa": 1, "unit": "second", "value": "7"});
    let m: Machine = decode_both(&old, &old.to_string());
    assert_eq!(m.acpi, None);
    assert_eq!(m.value, qapi_runtime::Versioned::Other(json!("7")));
    // The newest shape.
    let new = json!({"name": "pc", "alias": "q", "acpi": true, "hotplug": true, "numa": 1,
                     "unit": "millisecond", "value": 7});
    let m: Machine = decode_both(&new, &new.to_string());
    assert_eq!(m.value.current(), Some(&7));
    assert_eq!(m.acpi, Some(true));
    // A struct that became a union: the old reply has no discriminator.
    let old = json!({"enabled": false, "handle": 3});
    let r: commands_range_sev::Returns = decode_both(&old, &old.to_string());
    assert!(matches!(r, qapi_runtime::Versioned::Other(_)));
    let new = json!({"enabled": true, "sev-type": "sev", "handle": 3});
    let r: commands_range_sev::Returns = decode_both(&new, &new.to_string());
    assert!(r.current().is_some());
}

/// The return type of `query-sev` in the range hazard.
mod commands_range_sev {
    pub type Returns = <super::range::commands::QuerySev as qapi_runtime::Command>::Returns;
}

#[test]
fn event_types_carry_their_wire_name_and_decode_their_data() {
    use command_shapes::events::*;
    use qapi_runtime::TypedEvent;
    assert_eq!(<Changed as TypedEvent>::NAME, "CHANGED");
    assert_eq!(<Started as TypedEvent>::NAME, "STARTED");
    let c = Changed::decode_data(Some(r#"{"name":"n","count":2}"#)).unwrap();
    assert_eq!((c.name.as_str(), c.count), ("n", Some(2)));
    assert!(
        Changed::decode_data(None).is_err(),
        "a required member is missing"
    );
    Started::decode_data(None).unwrap();
    Started::decode_data(Some("{}")).unwrap();
    let i = InfoEvent::decode_data(Some(r#"{"name":"x","values":[1]}"#)).unwrap();
    assert_eq!(i.0.values, [1]);
}

#[test]
fn commands_write_their_return_and_events_their_data() {
    use command_shapes::{commands as c, events as e};
    use qapi_runtime::TypedEvent;
    let mut out = Vec::new();
    <c::Ping as Command>::write_return(&(), &mut out).unwrap();
    assert_eq!(out, b"{}");
    let ev = e::Changed::decode_data(Some(r#"{"name":"n"}"#)).unwrap();
    let mut out = Vec::new();
    ev.write_data(&mut out);
    assert_eq!(out, br#"{"name":"n"}"#);
    let mut out = Vec::new();
    e::Started.write_data(&mut out);
    assert!(out.is_empty());
}
