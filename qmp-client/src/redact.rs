//! What the wire trace ([`super::WIRE_TARGET`]) never shows: secrets in requests and
//! replies, replaced by `"<redacted>"` in the traced text (the bytes on the wire are
//! unchanged, and everything else is traced as it was sent or received).
//!
//! The rules, applied to every message in both directions:
//!
//! - the value of every member named `password` or ending in `-password`, at any depth
//!   (`set_password`, `change-vnc-password`, the guest agent's `guest-set-user-password`);
//! - `data` of any object whose `qom-type` is `secret` (`object-add` of a `secret`,
//!   whether the data is plain or encrypted with the key `keyid` names), at any depth;
//! - `value` of `qom-set` when `property` is `data` or a password (setting a secret's
//!   data after creation);
//! - in `human-monitor-command`'s `command-line`: everything after
//!   `set_password PROTOCOL` and after `change vnc password`, and the values of `data=`
//!   and `password=` in `object_add`.
//!
//! Members that only *name* a secret object (`key-secret`, `password-secret`,
//! `passwordid`, `keyid`) are ids, not key material, and stay visible. QEMU has no inline
//! key material elsewhere: `tls-creds-psk` and `tls-creds-x509` read their keys from
//! files in `dir`.
//! A message that does not parse as JSON is withheld whole.

use std::borrow::Cow;

/// What replaces a secret value.
pub(crate) const REDACTED: &str = "\"<redacted>\"";

/// `json` with the secrets replaced (borrowed when there were none).
pub(crate) fn redact(json: &str) -> Cow<'_, str> {
    let mut parser = Parser { text: json, pos: 0 };
    let root = match parser.value(0) {
        Some(node) if parser.at_end() => node,
        _ => {
            return Cow::Owned(format!(
                "<{} bytes that do not parse as JSON, withheld>",
                json.len()
            ))
        }
    };
    let mut edits = Vec::new();
    let command = root
        .member("execute")
        .or_else(|| root.member("exec-oob"))
        .and_then(|n| n.string(json));
    if let (Some(cmd), Some(args)) = (command.as_deref(), root.member("arguments")) {
        command_rules(json, cmd, args, &mut edits);
    }
    walk(json, &root, &mut edits);
    if edits.is_empty() {
        return Cow::Borrowed(json);
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(json.len());
    let mut at = 0;
    for (start, end, replacement) in edits {
        if start < at {
            continue; // inside a value already replaced
        }
        out.push_str(&json[at..start]);
        out.push_str(&replacement);
        at = end;
    }
    out.push_str(&json[at..]);
    Cow::Owned(out)
}

/// One replacement: byte range and new text.
type Edit = (usize, usize, String);

/// Whether a member of this name holds a password.
fn is_password(name: &str) -> bool {
    name == "password" || name.ends_with("-password")
}

/// The rules that apply to every object at any depth.
fn walk(text: &str, node: &Node, edits: &mut Vec<Edit>) {
    match &node.kind {
        Kind::Object(members) => {
            let secret = node
                .member("qom-type")
                .and_then(|t| t.string(text))
                .is_some_and(|t| t == "secret");
            for (key, value) in members {
                if is_password(key) || (secret && key == "data") {
                    edits.push((value.start, value.end, REDACTED.to_owned()));
                } else {
                    walk(text, value, edits);
                }
            }
        }
        Kind::Array(items) => {
            for item in items {
                walk(text, item, edits);
            }
        }
        Kind::Scalar => {}
    }
}

/// The rules that depend on the command.
fn command_rules(text: &str, command: &str, args: &Node, edits: &mut Vec<Edit>) {
    match command {
        "qom-set" => {
            let property = args.member("property").and_then(|p| p.string(text));
            if property.is_some_and(|p| p == "data" || is_password(&p)) {
                if let Some(value) = args.member("value") {
                    edits.push((value.start, value.end, REDACTED.to_owned()));
                }
            }
        }
        "human-monitor-command" => {
            if let Some(line) = args.member("command-line") {
                if let Some(original) = line.string(text) {
                    let redacted = redact_hmp(&original);
                    if redacted != original {
                        let json = serde_json::Value::String(redacted).to_string();
                        edits.push((line.start, line.end, json));
                    }
                }
            }
        }
        _ => {}
    }
}

/// An HMP command line with its secrets replaced by `<redacted>`.
fn redact_hmp(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["set_password", protocol, _, ..] => format!("set_password {protocol} <redacted>"),
        ["change", "vnc", "password", _, ..] => "change vnc password <redacted>".to_owned(),
        ["object_add" | "object-add", rest @ ..] => {
            let options = rest.join(" ");
            let options: Vec<String> = options
                .split(',')
                .map(|opt| match opt.split_once('=') {
                    Some((key, _)) if key == "data" || is_password(key) => {
                        format!("{key}=<redacted>")
                    }
                    _ => opt.to_owned(),
                })
                .collect();
            format!("{} {}", words[0], options.join(","))
        }
        _ => line.to_owned(),
    }
}

/// A JSON value with its byte range in the text.
struct Node {
    start: usize,
    end: usize,
    kind: Kind,
}

enum Kind {
    /// Members in text order, keys decoded.
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    /// A string, number or literal.
    Scalar,
}

impl Node {
    fn member(&self, name: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The decoded string, if this is one.
    fn string(&self, text: &str) -> Option<String> {
        let raw = &text[self.start..self.end];
        raw.starts_with('"')
            .then(|| serde_json::from_str(raw).ok())
            .flatten()
    }
}

/// A permissive JSON scanner that records where each value is; deep nesting is
/// refused rather than recursed into.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && matches!(bytes[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos == self.text.len()
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > 128 {
            return None;
        }
        self.skip_ws();
        let start = self.pos;
        let kind = match self.peek()? {
            b'{' => {
                self.pos += 1;
                let mut members = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_ws();
                        let key_start = self.pos;
                        self.string()?;
                        let key: String =
                            serde_json::from_str(&self.text[key_start..self.pos]).ok()?;
                        self.skip_ws();
                        if self.peek()? != b':' {
                            return None;
                        }
                        self.pos += 1;
                        let value = self.value(depth + 1)?;
                        members.push((key, value));
                        self.skip_ws();
                        match self.peek()? {
                            b',' => self.pos += 1,
                            b'}' => {
                                self.pos += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                Kind::Object(members)
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.skip_ws();
                        match self.peek()? {
                            b',' => self.pos += 1,
                            b']' => {
                                self.pos += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                Kind::Array(items)
            }
            b'"' => {
                self.string()?;
                Kind::Scalar
            }
            _ => {
                let bytes = self.text.as_bytes();
                while self.pos < bytes.len()
                    && matches!(bytes[self.pos], b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'+' | b'-' | b'.')
                {
                    self.pos += 1;
                }
                if self.pos == start {
                    return None;
                }
                Kind::Scalar
            }
        };
        Some(Node {
            start,
            end: self.pos,
            kind,
        })
    }

    /// Skips a string (the quotes included).
    fn string(&mut self) -> Option<()> {
        let bytes = self.text.as_bytes();
        if bytes.get(self.pos) != Some(&b'"') {
            return None;
        }
        self.pos += 1;
        while let Some(&b) = bytes.get(self.pos) {
            self.pos += 1;
            match b {
                b'"' => return Some(()),
                b'\\' => self.pos += 1,
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    fn check(input: &str, expected: &str) {
        assert_eq!(redact(input), expected, "input: {input}");
    }

    #[test]
    fn passwords_at_any_depth() {
        check(
            r#"{"execute":"set_password","arguments":{"protocol":"vnc","password":"s3cret"},"id":1}"#,
            r#"{"execute":"set_password","arguments":{"protocol":"vnc","password":"<redacted>"},"id":1}"#,
        );
        check(
            r#"{"execute":"change-vnc-password","arguments":{"password":"x"}}"#,
            r#"{"execute":"change-vnc-password","arguments":{"password":"<redacted>"}}"#,
        );
        check(
            r#"{"execute":"guest-set-user-password","arguments":{"username":"root","password":"aGk=","crypted":false}}"#,
            r#"{"execute":"guest-set-user-password","arguments":{"username":"root","password":"<redacted>","crypted":false}}"#,
        );
        // Nested, in arrays, escaped key spellings, other value types, replies too.
        check(
            r#"{"return": [{"a": {"new-password": 5, "p\u0061ssword": {"x": 1}}}]}"#,
            r#"{"return": [{"a": {"new-password": "<redacted>", "p\u0061ssword": "<redacted>"}}]}"#,
        );
    }

    #[test]
    fn secret_objects_data_but_not_ids() {
        check(
            r#"{"execute":"object-add","arguments":{"qom-type":"secret","id":"sec0","data":"letmein","format":"raw"}}"#,
            r#"{"execute":"object-add","arguments":{"qom-type":"secret","id":"sec0","data":"<redacted>","format":"raw"}}"#,
        );
        // Encrypted data: still redacted; the key's id and the iv stay; order does not matter.
        check(
            r#"{"execute":"object-add","arguments":{"data":"q83vEjRW","keyid":"master","iv":"0I7Gw/TK","qom-type":"secret","id":"s1"}}"#,
            r#"{"execute":"object-add","arguments":{"data":"<redacted>","keyid":"master","iv":"0I7Gw/TK","qom-type":"secret","id":"s1"}}"#,
        );
        // Other objects' data, and secret ids in block options, are not secrets.
        let plain = r#"{"execute":"object-add","arguments":{"qom-type":"memory-backend-ram","id":"m","size":1,"data":"x"}}"#;
        check(plain, plain);
        let ids = r#"{"execute":"blockdev-add","arguments":{"driver":"luks","node-name":"l","key-secret":"sec0","file":"f","password-secret":"p"}}"#;
        check(ids, ids);
    }

    #[test]
    fn qom_set_and_hmp() {
        check(
            r#"{"execute":"qom-set","arguments":{"path":"/objects/sec0","property":"data","value":"k"}}"#,
            r#"{"execute":"qom-set","arguments":{"path":"/objects/sec0","property":"data","value":"<redacted>"}}"#,
        );
        let other =
            r#"{"execute":"qom-set","arguments":{"path":"/machine","property":"x","value":"k"}}"#;
        check(other, other);
        check(
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"set_password vnc hunter2 keep"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"set_password vnc <redacted>"}}"#,
        );
        check(
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"change vnc password hunter2"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"change vnc password <redacted>"}}"#,
        );
        check(
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"object_add secret,id=s,data=hunter2,format=raw"}}"#,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"object_add secret,id=s,data=<redacted>,format=raw"}}"#,
        );
        let info =
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}"#;
        check(info, info);
    }

    #[test]
    fn untouched_and_unparseable() {
        let status = r#"{"return": {"status": "running", "running": true}, "id": 3}"#;
        assert!(matches!(redact(status), std::borrow::Cow::Borrowed(_)));
        check(
            r#"{"execute":"x","arguments":{"password":"abc"#,
            "<43 bytes that do not parse as JSON, withheld>",
        );
        check("", "<0 bytes that do not parse as JSON, withheld>");
    }
}
