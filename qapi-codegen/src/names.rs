//! The only place Rust identifiers are made: recasing with heck, keyword escaping,
//! and deterministic de-duplication within one scope.

use heck::{ToSnakeCase, ToUpperCamelCase};
use std::collections::BTreeSet;

/// Every Rust keyword: strict, reserved, the 2018 edition's `async`, `await`, `dyn`,
/// `try`, and the 2024 edition's `gen`. Sorted, for binary search.
const KEYWORDS: [&str; 52] = [
    "Self", "abstract", "as", "async", "await", "become", "box", "break", "const", "continue",
    "crate", "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if",
    "impl", "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "union", "unsafe", "unsized", "use", "virtual", "where", "while",
];

/// Keywords that cannot be raw identifiers (`r#self` is rejected): these get a `_` suffix.
const NOT_RAW: [&str; 5] = ["Self", "crate", "self", "super", "_"];

/// Whether `s` is a Rust keyword in some edition.
pub fn is_keyword(s: &str) -> bool {
    KEYWORDS.binary_search(&s).is_ok()
}

/// Makes `s` usable as an identifier: keywords become raw identifiers (`r#type`), the
/// few that cannot be raw get a `_` suffix, and a leading digit gets a prefix.
fn escape(s: String, digit_prefix: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let s = if s.is_empty() {
        "x".to_owned()
    } else if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("{digit_prefix}{s}")
    } else {
        s
    };
    if NOT_RAW.contains(&s.as_str()) {
        format!("{s}_")
    } else if is_keyword(&s) {
        format!("r#{s}")
    } else {
        s
    }
}

/// The `UpperCamelCase` identifier for a QAPI type, command, event or value name.
pub fn type_ident(qapi: &str) -> String {
    // heck drops characters that are not alphanumeric, so `.` and `+` just split words.
    escape(qapi.to_upper_camel_case(), "V")
}

/// The `snake_case` identifier for a QAPI member name.
pub fn field_ident(qapi: &str) -> String {
    escape(qapi.to_snake_case(), "_")
}

/// The bare text of an identifier (without `r#`), for comparisons and de-duplication.
pub fn unraw(ident: &str) -> &str {
    ident.strip_prefix("r#").unwrap_or(ident)
}

/// The identifiers of QAPI names sharing one fresh scope (an item's members, a module's
/// items), made by `make` (`type_ident` or `field_ident`) and claimed in order, with the
/// scope, for what the item adds after them. Lowering and the doc links both name through
/// it, so a link names what the item is called.
pub fn claim_all<'n>(
    names: impl IntoIterator<Item = &'n str>,
    make: fn(&str) -> String,
) -> (Vec<String>, Scope) {
    let mut scope = Scope::new();
    let idents = names.into_iter().map(|n| scope.claim(make(n))).collect();
    (idents, scope)
}

/// The path of an intra-doc link from identifiers: rustdoc reads `#` as a fragment, so
/// raw identifiers are written bare (`Type::type` links the field `r#type`).
pub fn link_path<'i>(idents: impl IntoIterator<Item = &'i str>) -> String {
    let parts: Vec<&str> = idents.into_iter().map(unraw).collect();
    parts.join("::")
}

/// One naming scope (a module's items, a struct's fields, an enum's variants): hands
/// out unique identifiers in call order, appending a number on a clash.
#[derive(Debug, Default)]
pub struct Scope {
    taken: BTreeSet<String>,
}

impl Scope {
    /// An empty scope.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims `ident`, or `ident2`, `ident3`, ... if taken. Deterministic: the first
    /// claimant keeps the plain name.
    pub fn claim(&mut self, ident: String) -> String {
        if self.taken.insert(unraw(&ident).to_owned()) {
            return ident;
        }
        let base = unraw(&ident).trim_end_matches('_').to_owned();
        (2u32..)
            .map(|n| format!("{base}{n}"))
            .find(|cand| self.taken.insert(cand.clone()))
            .unwrap_or(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_table_is_sorted() {
        let mut sorted = KEYWORDS;
        sorted.sort_unstable();
        assert_eq!(sorted, KEYWORDS);
    }

    #[test]
    fn identifiers() {
        let cases = [
            ("type", field_ident("type")),
            ("gen", field_ident("gen")),
            ("self", field_ident("self")),
            ("x-perf", field_ident("x-perf")),
            ("node-name", field_ident("node-name")),
            ("2d", field_ident("2d")),
            ("Self", type_ident("Self")),
            ("x86_64", type_ident("x86_64")),
            ("qcow2", type_ident("qcow2")),
            ("1", type_ident("1")),
            ("query-status", type_ident("query-status")),
            ("BLOCK_JOB_COMPLETED", type_ident("BLOCK_JOB_COMPLETED")),
            ("X86CPURegister32", type_ident("X86CPURegister32")),
            ("async", field_ident("async")),
            ("dyn", type_ident("dyn")),
        ];
        let got: Vec<String> = cases.iter().map(|(a, b)| format!("{a} -> {b}")).collect();
        expect_test::expect![[r#"
            type -> r#type
            gen -> r#gen
            self -> self_
            x-perf -> x_perf
            node-name -> node_name
            2d -> _2d
            Self -> Self_
            x86_64 -> X8664
            qcow2 -> Qcow2
            1 -> V1
            query-status -> QueryStatus
            BLOCK_JOB_COMPLETED -> BlockJobCompleted
            X86CPURegister32 -> X86cpuRegister32
            async -> r#async
            dyn -> Dyn"#]]
        .assert_eq(&got.join("\n"));
    }

    #[test]
    fn scope_dedups_deterministically() {
        let mut s = Scope::new();
        let got = [
            s.claim("Foo".into()),
            s.claim("Foo".into()),
            s.claim("Foo".into()),
            s.claim("r#type".into()),
            s.claim("r#type".into()),
        ];
        assert_eq!(got, ["Foo", "Foo2", "Foo3", "r#type", "type2"]);
    }
}
