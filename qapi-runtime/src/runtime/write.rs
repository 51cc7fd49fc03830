//! A compact JSON writer into a byte buffer: what every generated encoder calls.

use std::io::Write as _;

use super::Encode;

/// Appends compact JSON to a buffer, placing the commas between members and elements.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    /// No member or element written yet in the innermost open object or array.
    first: bool,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer { out, first: true }
    }

    fn comma(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }

    /// Writes `{`.
    pub fn begin_object(&mut self) {
        self.out.push(b'{');
        self.first = true;
    }

    /// Writes `}`.
    pub fn end_object(&mut self) {
        self.out.push(b'}');
        self.first = false;
    }

    /// Writes `[`.
    pub fn begin_array(&mut self) {
        self.out.push(b'[');
        self.first = true;
    }

    /// Writes `]`.
    pub fn end_array(&mut self) {
        self.out.push(b']');
        self.first = false;
    }

    /// Writes an object member. Out of line and shared by every member of type `T`.
    #[inline(never)]
    pub fn member<T: Encode + ?Sized>(&mut self, key: &str, value: &T) {
        self.key(key);
        value.encode(self);
        self.first = false;
    }

    #[inline(never)]
    fn key(&mut self, key: &str) {
        self.comma();
        self.str(key);
        self.out.push(b':');
    }

    /// Writes an object member unless its value is the empty object `{}` (how a request
    /// leaves out empty `arguments`).
    #[inline(never)]
    pub fn nonempty_member(&mut self, key: &str, value: &dyn Encode) {
        let (mark, first) = (self.out.len(), self.first);
        self.key(key);
        let at = self.out.len();
        value.encode(self);
        if self.out[at..] == *b"{}" {
            self.out.truncate(mark);
            self.first = first;
        } else {
            self.first = false;
        }
    }

    /// Writes an optional member, nothing when it is `None`.
    #[inline(never)]
    pub fn opt_member<T: Encode>(&mut self, key: &str, value: &Option<T>) {
        if let Some(v) = value {
            self.member(key, v);
        }
    }

    /// Writes an array element.
    pub fn element<T: Encode + ?Sized>(&mut self, value: &T) {
        self.comma();
        value.encode(self);
        self.first = false;
    }

    /// Writes `null`.
    pub fn null(&mut self) {
        self.out.extend_from_slice(b"null");
    }

    /// Writes a number or boolean through its `Display` (integers, `true`, `false`).
    pub fn display(&mut self, v: impl std::fmt::Display) {
        // Writing into a Vec cannot fail.
        let _ = write!(self.out, "{v}");
    }

    /// Writes a `serde_json::Value` (the `any` type, kept unknown data).
    pub fn json(&mut self, v: &serde_json::Value) {
        let _ = serde_json::to_writer(&mut *self.out, v);
    }

    /// Writes a float as serde_json does (shortest round-trip form, `null` if not finite).
    pub fn float(&mut self, v: f64) {
        let _ = serde_json::to_writer(&mut *self.out, &v);
    }

    /// Writes a JSON string, escaped as serde_json escapes it.
    #[inline(never)]
    pub fn str(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let out = &mut *self.out;
        out.push(b'"');
        let b = s.as_bytes();
        let mut start = 0;
        for (i, &c) in b.iter().enumerate() {
            let short: &[u8] = match c {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0..=0x1f => b"",
                _ => continue,
            };
            out.extend_from_slice(&b[start..i]);
            if short.is_empty() {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 0xf) as usize]);
            } else {
                out.extend_from_slice(short);
            }
            start = i + 1;
        }
        out.extend_from_slice(&b[start..]);
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_like_serde_json() {
        for s in ["plain", "q\"b\\s/", "\u{1}\u{8}\u{c}\n\r\t\u{1f}", "é😀"] {
            let mut out = Vec::new();
            Writer::new(&mut out).str(s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    #[test]
    fn commas_between_members_and_elements() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.begin_object();
        w.member("a", &1u8);
        w.member("b", &vec![1i64, 2]);
        w.member("c", &Vec::<bool>::new());
        w.opt_member("d", &None::<bool>);
        w.opt_member("e", &Some(2.5f64));
        w.end_object();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":1,"b":[1,2],"c":[],"e":2.5}"#
        );
    }
}
