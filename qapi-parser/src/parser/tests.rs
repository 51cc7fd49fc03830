//! Parse-phase conformance over QEMU's suite: parse-phase cases must fail with the
//! exact `.err` text, every other case must get through the parse phase.

use std::path::PathBuf;

use super::*;
use crate::Compat;

/// `../shared/qemu` beside the repository, or `$QAPI_SHARED_DIR`.
fn shared_dir() -> PathBuf {
    match std::env::var_os("QAPI_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/qemu"),
    }
}

/// Parses `path` and renders the error as the suite's `.err` (folder prefix removed).
fn run(dir: &Path, name: &str, options: &Options) -> Result<ParseOutput, String> {
    parse(&dir.join(name), options)
        .map_err(|e| format!("{e}\n").replace(&format!("{}/", dir.display()), ""))
}

#[test]
fn suite() {
    let tests = shared_dir().join("10.0.2/tests");
    let dir = tests.join("qapi-schema");
    let tsv = std::fs::read_to_string(tests.join("ground-truth.tsv")).expect("ground truth");
    let (mut exact, mut total, mut failures) = (0, 0, Vec::new());
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (name, result, phase) = (cols[0], cols[1], cols[10]);
        if result == "no-json" || !dir.join(format!("{name}.json")).exists() {
            continue;
        }
        let got = run(&dir, &format!("{name}.json"), &Options::default());
        if matches!(phase, "parse" | "parse-sem" | "io") {
            total += 1;
            let want = std::fs::read_to_string(dir.join(format!("{name}.err"))).unwrap_or_default();
            match got {
                Err(e) if e == want => exact += 1,
                Err(e) => failures.push(format!("{name}: want\n{want}got\n{e}")),
                Ok(_) => failures.push(format!("{name}: want\n{want}got success")),
            }
        } else if let Err(e) = got {
            failures.push(format!("{name}: must pass the parse phase, got\n{e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{exact}/{total} exact\n{}",
        failures.join("\n")
    );
    eprintln!("{exact}/{total} parse-phase cases exact");
}

#[test]
fn real_schemas() {
    let shared = shared_dir();
    for schema in ["qapi", "qga", "storage-daemon/qapi"] {
        let path = shared.join(format!("10.0.2/{schema}/qapi-schema.json"));
        let out = parse(&path, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.warnings.is_empty());
        let path = shared.join(format!("7.2.0/{schema}/qapi-schema.json"));
        assert!(
            parse(&path, &Options::default()).is_err(),
            "7.2 {schema} needs Legacy"
        );
        let legacy = Options {
            compat: Compat::Legacy,
            ..Options::default()
        };
        let out = parse(&path, &legacy).unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.warnings.is_empty());
    }
}

/// Parses `text` as `t.json` and renders the outcome: the error as QEMU prints it,
/// or the expressions' first keys, doc symbols and warnings.
fn outcome(text: &str, compat: Compat) -> String {
    match parse_str(
        "t.json",
        text,
        &Options {
            compat,
            ..Options::default()
        },
    ) {
        Err(e) => format!("{e}\n"),
        Ok(out) => {
            let mut s = String::new();
            for e in &out.exprs {
                let line = out.infos.get(e.info).line;
                let key = e.expr.first().map_or("{}", |(k, _)| &**k);
                s += &format!("{line}: {key}\n");
            }
            for d in &out.docs {
                let kinds: Vec<String> = d
                    .sections
                    .iter()
                    .map(|s| {
                        format!(
                            "{:?}{}={:?}",
                            s.kind,
                            s.name
                                .as_deref()
                                .map_or(String::new(), |n| format!("({n})")),
                            s.text
                        )
                    })
                    .collect();
                s += &format!("doc {:?}: {}\n", d.symbol, kinds.join(" "));
            }
            for w in &out.warnings {
                s += &format!("{w}\n");
            }
            s
        }
    }
}

fn check(text: &str, expect: expect_test::Expect) {
    expect.assert_eq(&outcome(text, Compat::Qemu10));
}

fn check_legacy(text: &str, expect: expect_test::Expect) {
    expect.assert_eq(&outcome(text, Compat::Legacy));
}

#[test]
fn lexical() {
    use expect_test::expect;
    check(
        "{ 'a': 1 }",
        expect![[r#"
        t.json:1:8: stray '1'
    "#]],
    );
    check(
        "{ \"enum\": 'x' }",
        expect![[r#"
        t.json:1:3: stray '"enum"'
    "#]],
    );
    check(
        "{ 'a': null }",
        expect![[r#"
        t.json:1:8: stray 'null'
    "#]],
    );
    check(
        "{ 'a': trueX }",
        expect![[r#"
        t.json:1:12: stray 'X'
    "#]],
    );
    check(
        "{ 'a': foo#bar }",
        expect![[r#"
        t.json:1:8: stray 'foo#bar'
    "#]],
    );
    check(
        "{ 'a': 'b\n' }",
        expect![[r#"
        t.json:1:8: missing terminating "'"
    "#]],
    );
    check(
        "{ 'a': 'b\\'' }",
        expect![[r#"
        t.json:1:8: unknown escape \'
    "#]],
    );
    check(
        "{ 'a': 'é\\x' }",
        expect![[r#"
        t.json:1:8: funny character in string
    "#]],
    );
    check(
        "{ 'a':\t'b\t' }",
        expect![[r#"
        t.json:1:7: funny character in string
    "#]],
    );
    check(
        "{ 'a': 'b\\\\' }\u{a0}\u{1f}{ 'c': true }",
        expect![[r#"
        1: a
        1: c
    "#]],
    );
    check(
        "\t\t{ 'a' 'b' }",
        expect![[r#"
        t.json:1:7: expected ':'
    "#]],
    );
    check(
        "{ 'a': 'b' }\n{ 'c': [\n",
        expect![[r#"
        t.json:2:9: expected '{', '[', ']', string, or boolean
    "#]],
    );
    check(
        "{ 'a': 'b' }\r\n\r{ 'c'\r\n  'd' }",
        expect![[r#"
        t.json:4:3: expected ':'
    "#]],
    );
}

#[test]
fn structure() {
    use expect_test::expect;
    check(
        "{ 'a': 'b', }",
        expect![[r#"
        t.json:1:13: expected string
    "#]],
    );
    check(
        "{ 'a': [ 'b', ] }",
        expect![[r#"
        t.json:1:15: expected '{', '[', string, or boolean
    "#]],
    );
    check(
        "{ 'a': [ , 'b' ] }",
        expect![[r#"
        t.json:1:10: expected '{', '[', ']', string, or boolean
    "#]],
    );
    check(
        "{ 'a': [ 'b' 'c' ] }",
        expect![[r#"
        t.json:1:14: expected ',' or ']'
    "#]],
    );
    check(
        "{ true: 'a' }",
        expect![[r#"
        t.json:1:3: expected string or '}'
    "#]],
    );
    check(
        "{ 'a': 'b' 'c' }",
        expect![[r#"
        t.json:1:12: expected ',' or '}'
    "#]],
    );
    check(
        "{ 'a': { 'b': 1 }, 'a': 'x' }",
        expect![[r#"
        t.json:1:15: stray '1'
    "#]],
    );
    check(
        "{ 'a': 'x', 'a': 'x' }",
        expect![[r#"
        t.json:1:18: duplicate key 'a'
    "#]],
    );
    check(
        "\n[ 'a',\n 'b' ]",
        expect![[r#"
        t.json:2: top-level expression must be an object
    "#]],
    );
    check(
        "'a' foo",
        expect![[r#"
        t.json:1:5: stray 'foo'
    "#]],
    );
    check(
        "{ 'a': 'b', ## doc\n 'c': 'd' }",
        expect![[r#"
        t.json:1:13: expected string
    "#]],
    );
    check(
        "{ 'a': 'b', # comment\n 'c': 'd' } { 'e': {} }",
        expect![[r#"
        1: a
        2: e
    "#]],
    );
    check("", expect![[""]]);
    let deep = format!("{{ 'a': {}", "[".repeat(100_000));
    check(
        &deep,
        expect![[r#"
        t.json:1:263: nesting too deep
    "#]],
    );
}

#[test]
fn directives() {
    use expect_test::expect;
    check(
        "{ 'include': 'x.json', 'if': 'Y' }",
        expect![[r#"
        t.json:1: invalid 'include' directive
    "#]],
    );
    check(
        "{ 'include': [ 'x.json' ] }",
        expect![[r#"
        t.json:1: value of 'include' must be a string
    "#]],
    );
    check(
        "{ 'include': 'no-such-dir/x.json' }",
        expect![[r#"
        t.json:1: can't read include file 'no-such-dir/x.json': No such file or directory
    "#]],
    );
    check(
        "{ 'include': 't.json' }",
        expect![[r#"
        t.json:1: inclusion loop for t.json
    "#]],
    );
    check(
        "{ 'pragma': { 'doc-required': true }, 'if': 'X' }",
        expect![[r#"
        t.json:1: invalid 'pragma' directive
    "#]],
    );
    check(
        "{ 'pragma': [] }",
        expect![[r#"
        t.json:1: value of 'pragma' must be an object
    "#]],
    );
    check(
        "{ 'pragma': { 'member-name-exceptions': [ 'a', true ] } }",
        expect![[r#"
        t.json:1: pragma member-name-exceptions must be a list of strings
    "#]],
    );
    check(
        "{ 'pragma': { 'command-name-exceptions': 'a' } }",
        expect![[r#"
        t.json:1: pragma command-name-exceptions must be a list of strings
    "#]],
    );
    check(
        "{ 'pragma': { 'doc-required': 'yes' } }",
        expect![[r#"
        t.json:1: pragma 'doc-required' must be boolean
    "#]],
    );
    check(
        "{ 'pragma': { 'doc-required': true, 'bogus': true } }",
        expect![[r#"
        t.json:1: unknown pragma 'bogus'
    "#]],
    );
    let out = parse_str(
        "t.json",
        "{ 'pragma': { 'doc-required': true, 'documentation-exceptions': [ 'a' ],
           'command-returns-exceptions': [ 'b' ] } }
         { 'pragma': { 'documentation-exceptions': [ 'c' ], 'member-name-exceptions': [],
           'command-name-exceptions': [ 'd' ] } }",
        &Options::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.pragma,
        crate::Pragma {
            doc_required: true,
            command_name_exceptions: vec!["d".into()],
            command_returns_exceptions: vec!["b".into()],
            documentation_exceptions: vec!["c".into()],
            member_name_exceptions: vec![],
        }
    );
}

#[test]
fn includes() {
    let dir = std::env::temp_dir().join(format!("qapi-parse-includes-{}", std::process::id()));
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap_or_else(|e| panic!("{e}"));
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    };
    write(
        "main.json",
        "{ 'include': 'sub/a.json' }\n{ 'include': './sub/a.json' }\n{ 'struct': 'M' }\n",
    );
    write(
        "sub/a.json",
        "##\n# = A\n##\n{ 'include': '../b.json' }\n{ 'enum': 'A' }\n",
    );
    write("b.json", "{ 'enum': 'B' }\n");
    write("loop.json", "{ 'include': 'sub/loop.json' }\n");
    write("sub/loop.json", "\n{ 'include': '../loop.json' }\n");
    write("err.json", "{ 'include': 'sub/err.json' }\n");
    write("sub/err.json", "\n\n{ 'enum' 'E' }\n");
    let out = parse(&dir.join("main.json"), &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let d = dir.display();
    let got: Vec<String> = out
        .exprs
        .iter()
        .map(|e| {
            let info = out.infos.get(e.info);
            let (k, v) = &e.expr[0];
            format!(
                "{}:{} {k} {:?}",
                info.file,
                info.line,
                v.as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            format!("{d}/main.json:1 include \"{d}/sub/a.json\""),
            format!("{d}/sub/a.json:4 include \"{d}/sub/../b.json\""),
            format!("{d}/sub/../b.json:1 enum \"B\""),
            format!("{d}/sub/a.json:5 enum \"A\""),
            format!("{d}/main.json:2 include \"{d}/./sub/a.json\""),
            format!("{d}/main.json:3 struct \"M\""),
        ]
    );
    assert_eq!(out.files.len(), 3);
    assert_eq!(out.docs.len(), 1);
    let err = |name: &str| {
        let e = parse(&dir.join(name), &Options::default())
            .err()
            .map(|e| e.to_string());
        e.unwrap_or_default().replace(&format!("{d}/"), "")
    };
    assert_eq!(
        err("loop.json"),
        "In file included from loop.json:1:\nsub/loop.json:2: inclusion loop for ../loop.json"
    );
    assert_eq!(
        err("err.json"),
        "In file included from err.json:1:\nsub/err.json:3:10: expected ':'"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn doc_syntax() {
    use expect_test::expect;
    check(
        "## \n##\n",
        expect![[r#"
        t.json:1:1: junk after '##' at start of documentation comment
    "#]],
    );
    check(
        "##x\n##\n",
        expect![[r#"
        t.json:1:1: junk after '##' at start of documentation comment
    "#]],
    );
    check(
        "##\n# a\n### x\n",
        expect![[r#"
        t.json:3:1: junk after '##' at end of documentation comment
    "#]],
    );
    check(
        "##\n# a\n{ 'enum': 'A' }\n",
        expect![[r#"
        t.json:3:1: documentation comment must end with '##'
    "#]],
    );
    check(
        "##\n# a\n",
        expect![[r#"
        t.json:2:4: documentation comment must end with '##'
    "#]],
    );
    check(
        "##\n# a\n  'x'\n",
        expect![[r#"
        t.json:3:3: documentation comment must end with '##'
    "#]],
    );
    check(
        "##\n#a\n##\n",
        expect![[r#"
        t.json:2:1: missing space after #
    "#]],
    );
    check(
        "##\n#\ta\n##\n",
        expect![[r#"
        t.json:2:1: missing space after #
    "#]],
    );
    check(
        "##\n  # a\n\t#\n##\n",
        expect![[r#"
        doc None: Plain="a"
    "#]],
    );
    check(
        "##\n# @foo: bar\n##\n",
        expect![[r#"
        t.json:2:1: line should end with ':'
    "#]],
    );
    check(
        "##\n# @:\n##\n",
        expect![[r#"
        t.json:2:1: name required after '@'
    "#]],
    );
    check(
        "##\n# a\n# @b: c\n##\n",
        expect![[r#"
        t.json:3:1: '@b:' not allowed in free-form documentation
    "#]],
    );
    check(
        "##\n# = A\n# == B\n##\n",
        expect![[r#"
        t.json:3:1: '=' heading must come first in a comment block
    "#]],
    );
    check(
        "##\n# a\n##\n{ 'enum': 'A' }\n",
        expect![[r#"
        t.json:1: definition documentation required
    "#]],
    );
    check(
        "##\n# a\n##\n{ 'include': 'none.json' }\n",
        expect![[r#"
        t.json:4: can't read include file 'none.json': No such file or directory
    "#]],
    );
    check(
        "##\n# @a:\n##\n##\n# b\n##\n",
        expect![[r#"
        t.json:1: documentation for 'a' is not followed by the definition
    "#]],
    );
    check(
        "##\n# @a:\n##\n{ 'pragma': {} }\n",
        expect![[r#"
        t.json:1: documentation for 'a' is not followed by the definition
    "#]],
    );
    check(
        "##\n# @a:\n##\n\n",
        expect![[r#"
        t.json:1: documentation for 'a' is not followed by the definition
    "#]],
    );
    check(
        "##\n# @a:\n##\n{ 'enum': 'B' }\n",
        expect![[r#"
        4: enum
        doc Some("a"): Plain=""
    "#]],
    );
}

#[test]
fn doc_sections() {
    use expect_test::expect;
    let doc = |body: &str| format!("##\n# @S:\n{body}##\n{{ 'struct': 'S' }}\n");
    check(
        &doc("# Features:\n#\n# a\n"),
        expect![[r#"
        t.json:5:1: feature descriptions expected
    "#]],
    );
    check(
        &doc("# Features:\n# @f: x\n#\n# Features:\n# @g: y\n"),
        expect![[r#"
            t.json:6:1: duplicated 'Features:' line
        "#]],
    );
    check(
        &doc("# Features:\n# @f: x\n# @a: y\n"),
        expect![[r#"
        7: struct
        doc Some("S"): Plain="" Feature(f)="x" Feature(a)="y"
    "#]],
    );
    check(
        &doc("# @a: x\n#\n# Since: 1\n#\n# @b: y\n"),
        expect![[r#"
        t.json:7:1: description of '@b:' follows a section
    "#]],
    );
    check(
        &doc("# @a: x\n#\n# text\n#\n# @b: y\n"),
        expect![[r#"
        t.json:7:1: description of '@b:' follows a section
    "#]],
    );
    check(
        &doc("# @: x\n"),
        expect![[r#"
        t.json:3: invalid parameter name
    "#]],
    );
    check(
        &doc("# @a: x\n# @a: y\n"),
        expect![[r#"
        t.json:4: 'a' parameter name duplicated
    "#]],
    );
    check(
        &doc("# Returns: x\n# Returns: y\n"),
        expect![[r#"
        t.json:4: duplicated 'Returns' section
    "#]],
    );
    check(
        &doc("# Errors: x\n#\n# Errors: y\n"),
        expect![[r#"
        t.json:5: duplicated 'Errors' section
    "#]],
    );
    check(
        &doc("# TODO: x\n# TODO: y\n"),
        expect![[r#"
        6: struct
        doc Some("S"): Plain="" Todo="x" Todo="y"
    "#]],
    );
    check(
        &doc("# Since:\n"),
        expect![[r#"
        t.json:3: text required after 'Since:'
    "#]],
    );
    check(
        &doc("# TODO:\n#\n"),
        expect![[r#"
        t.json:3: text required after 'Todo:'
    "#]],
    );
    check(
        &doc("# @a:\n# @b: x\n"),
        expect![[r#"
        t.json:3: text required after 'Member:'
    "#]],
    );
    check(
        &doc("# = Heading\n"),
        expect![[r#"
        t.json:3:1: unexpected '=' markup in definition documentation
    "#]],
    );
    check(
        &doc("# Note: x\n"),
        expect![[r#"
        t.json:3:1: The 'Note' section is no longer supported. Please use rST's '.. note::' or '.. admonition:: notes' directives, or another suitable admonition instead.
    "#]],
    );
    check(
        &doc("# Notes: x\n"),
        expect![[r#"
        t.json:3:1: The 'Notes' section is no longer supported. Please use rST's '.. note::' or '.. admonition:: notes' directives, or another suitable admonition instead.
    "#]],
    );
    check(
        &doc("# Example:\n#     x\n"),
        expect![[r#"
        t.json:3:1: The 'Example' section is no longer supported. Please use the '.. qmp-example::' directive, or other suitable markup instead.
    "#]],
    );
    check(
        &doc("# Examples: x\n"),
        expect![[r#"
        t.json:3:1: The 'Examples' section is no longer supported. Please use the '.. qmp-example::' directive, or other suitable markup instead.
    "#]],
    );
    check(
        &doc("# Note:: x\n# Examples::\n# returns: x\n"),
        expect![[r#"
            7: struct
            doc Some("S"): Plain="Note:: x\nExamples::\nreturns: x"
        "#]],
    );
    check(
        &doc("# Since: x\n# Since: y\n"),
        expect![[r#"
        t.json:4: duplicated 'Since' section
    "#]],
    );
    check(
        &doc("# Returns:x\n#\n# Since:  \t y  \n"),
        expect![[r#"
        7: struct
        doc Some("S"): Plain="" Returns="x" Since="\t y"
    "#]],
    );
    check(
        &doc("# @a: text\n#   more\n#  less\n"),
        expect![[r#"
        t.json:5:1: unexpected de-indent (expected at least 2 spaces)
    "#]],
    );
    check(
        &doc("# @a: text\n#   more\n#   more\n#  less\n"),
        expect![[r#"
            8: struct
            doc Some("S"): Plain="" Member(a)="text\n  more\n  more" Plain=" less"
        "#]],
    );
    check(
        &doc("# @a:\n#\n#   x\n#\n#     y\n# z\n"),
        expect![[r#"
        10: struct
        doc Some("S"): Plain="" Member(a)="  x\n\n    y" Plain="z"
    "#]],
    );
    check(
        &doc("# @a:\n#\n#   x\n#\n#\n# @b: y\n"),
        expect![[r#"
        10: struct
        doc Some("S"): Plain="" Member(a)="  x" Member(b)="y"
    "#]],
    );
    check(
        &doc("# @a: x\n# @b:\n"),
        expect![[r#"
        t.json:4: text required after 'Member:'
    "#]],
    );
    check(
        &doc("#\n# Body one  \n#\n#\n#\n# body two\n# @x: in body\n# Since: in body\n#\n# @a: x\n#\n# plain one\n#\n#\n# plain two\n"),
        expect![[r#"
            19: struct
            doc Some("S"): Plain="Body one\n\nbody two\n@x: in body\nSince: in body" Member(a)="x" Plain="plain one\n\nplain two"
        "#]],
    );
    check(
        "##\n# A  \n#\n#\n# B\n##\n",
        expect![[r#"
        doc None: Plain="A\n\n\nB"
    "#]],
    );
    check(
        "##\n##\n",
        expect![[r#"
        doc None: Plain=""
    "#]],
    );
}

#[test]
fn doc_legacy() {
    use expect_test::expect;
    let doc = |body: &str| format!("##\n# @S:\n{body}##\n{{ 'struct': 'S' }}\n");
    check_legacy(
        &doc("# Note: x\n#\n# Example:\n#\n# -> y\n# <- z\n#\n# Since: 1\n"),
        expect![[r#"
            12: struct
            doc Some("S"): Plain="" Note="x" Example="-> y\n<- z" Since="1"
            warning: t.json:3:1: The 'Note' section is no longer supported. Please use rST's '.. note::' or '.. admonition:: notes' directives, or another suitable admonition instead.
            warning: t.json:5:1: The 'Example' section is no longer supported. Please use the '.. qmp-example::' directive, or other suitable markup instead.
        "#]],
    );
    check_legacy(
        &doc("# @a:\n# x\n# y\n#\n# z\n"),
        expect![[r#"
        9: struct
        doc Some("S"): Plain="" Member(a)="x\ny" Plain="z"
        warning: t.json:4:1: unindented text after a bare section header (QEMU 10.0 requires indentation)
    "#]],
    );
    check_legacy(
        "##\n# = A\n#\n# = B\n##\n",
        expect![[r#"
        doc None: Plain="= A\n\n= B"
        warning: t.json:4:1: '=' heading must come first in a comment block
    "#]],
    );
    check_legacy(
        &doc("# @a:\n#\n"),
        expect![[r#"
        t.json:3: text required after 'Member:'
    "#]],
    );
}

#[test]
fn large_inputs_stay_linear() {
    let n = 20_000;
    let keys: Vec<String> = (0..n).map(|i| format!("'k{i}': 'v'")).collect();
    let text = format!("{{ {}, 'k7': 'x' }}", keys.join(", "));
    let err = parse_str("t.json", &text, &Options::default()).err();
    assert!(err.is_some_and(|e| e.message == "duplicate key 'k7'"));
    let args: String = (0..n).map(|i| format!("# @a{i}: x\n")).collect();
    let text = format!("##\n# @S:\n{args}# @a7: y\n##\n{{ 'struct': 'S' }}\n");
    let err = parse_str("t.json", &text, &Options::default()).err();
    assert!(err.is_some_and(|e| e.message == "'a7' parameter name duplicated"));
}

/// Random soups of the pieces that matter never make the parse phase panic.
#[test]
fn random_inputs_do_not_panic() {
    const PIECES: [&str; 30] = [
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "'a'",
        "'include'",
        "'pragma'",
        "'doc-required'",
        "true",
        "false",
        "\n",
        " ",
        "\t",
        "##\n",
        "# @a:\n",
        "# @b: x\n",
        "# Features:\n",
        "# Since: 1\n",
        "# Note: x\n",
        "#   y\n",
        "#\n",
        "# = H\n",
        "# x\n",
        "'\\\\'",
        "'é'",
        "\u{a0}",
        "x",
        "'sub.json'",
    ];
    let mut seed: u64 = 0xfeed;
    for round in 0..4000 {
        let mut text = String::new();
        for _ in 0..(seed % 60) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(PIECES[(seed >> 33) as usize % PIECES.len()]);
        }
        let compat = if round % 2 == 0 {
            Compat::Qemu10
        } else {
            Compat::Legacy
        };
        // Includes resolve against a folder that does not exist.
        let _ = parse_str(
            "/nonexistent-qapi-dir/t.json",
            &text,
            &Options {
                compat,
                ..Options::default()
            },
        );
    }
}
