//! A JSON pull reader over text: what every generated decoder calls. Concrete (not
//! generic over serde's `Deserializer`), so each type's decoder is compiled once, small.

use std::borrow::Cow;
use std::fmt;

use super::{Decode, Error, Result};

/// How deep arrays and objects may nest while decoding (serde_json's limit too), so that
/// the recursion of nested decoders cannot overflow the stack.
const MAX_DEPTH: u32 = 128;

/// A position in a JSON text, read value by value.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
}

/// The JSON type of the next value, which selects an alternate's branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Str,
    /// A number.
    Num,
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Str => "string",
            Kind::Num => "number",
            Kind::Bool => "boolean",
            Kind::Null => "null",
            Kind::Array => "array",
            Kind::Object => "object",
        })
    }
}

/// An object being read: call [`Object::next_key`] (or [`Object::next_member`]) until it
/// gives `None`, reading (or skipping) the value after each key.
#[derive(Debug)]
pub struct Object {
    first: bool,
    /// Where [`Object::next_member`] looks first: after the last member found, since
    /// members mostly come in schema order.
    hint: usize,
}

/// An array being read: call [`Array::next`] before each element.
#[derive(Debug)]
pub struct Array {
    first: bool,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Reader {
            text,
            pos: 0,
            depth: 0,
        }
    }

    /// Another reader over the same text, at `pos` (from [`Reader::mark`]): how a union
    /// reads its object a second time, for its branch.
    pub fn at(&self, pos: usize) -> Self {
        Reader {
            text: self.text,
            pos,
            depth: self.depth,
        }
    }

    /// Skips whitespace and returns the position of the next value.
    pub fn mark(&mut self) -> usize {
        self.ws();
        self.pos
    }

    fn ws(&mut self) {
        let b = self.text.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.text.as_bytes().get(self.pos).copied()
    }

    /// An error at the current position, with serde_json's `line N column M` suffix.
    #[cold]
    #[inline(never)]
    pub fn error(&self, msg: impl fmt::Display) -> Error {
        let before = &self.text.as_bytes()[..self.pos.min(self.text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Error(Box::new(format!(
            "{msg} at line {line} column {}",
            before.len() - start + 1
        )))
    }

    /// The error for a value of the wrong JSON type (or no value at all).
    #[cold]
    #[inline(never)]
    pub fn unexpected(&mut self, expected: &str) -> Error {
        match self.kind() {
            Ok(k) => self.error(format_args!("invalid type: {k}, expected {expected}")),
            Err(e) => e,
        }
    }

    /// Fails unless only whitespace is left.
    #[inline(never)]
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    /// The JSON type of the next value, without reading it.
    pub fn kind(&mut self) -> Result<Kind> {
        Ok(match self.peek() {
            Some(b'"') => Kind::Str,
            Some(b'-' | b'0'..=b'9') => Kind::Num,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            Some(b'[') => Kind::Array,
            Some(b'{') => Kind::Object,
            Some(_) => return Err(self.error("expected value")),
            None => return Err(self.error("EOF while parsing a value")),
        })
    }

    #[inline(never)]
    fn enter(&mut self, open: u8, expected: &str) -> Result<()> {
        if self.peek() != Some(open) {
            return Err(self.unexpected(expected));
        }
        if self.depth >= MAX_DEPTH {
            return Err(self.error("recursion limit exceeded"));
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    /// Reads the `{` of an object.
    pub fn begin_object(&mut self) -> Result<Object> {
        self.enter(b'{', "an object")?;
        Ok(Object {
            first: true,
            hint: 0,
        })
    }

    /// Skips an object, checking that it is one (a struct without members).
    #[inline(never)]
    pub fn skip_object(&mut self) -> Result<()> {
        let mut o = self.begin_object()?;
        while o.next_key(self)?.is_some() {
            self.skip()?;
        }
        Ok(())
    }

    /// Reads the `[` of an array.
    pub fn begin_array(&mut self) -> Result<Array> {
        self.enter(b'[', "an array")?;
        Ok(Array { first: true })
    }

    /// Decodes the next value.
    pub fn value<T: Decode>(&mut self) -> Result<T> {
        T::decode(self)
    }

    /// Decodes the next value as `Some` (a member slot; `null` only where `T` accepts it).
    pub fn some<T: Decode>(&mut self) -> Result<Option<T>> {
        T::decode(self).map(Some)
    }

    /// Decodes an optional member's value: `null` is `None`.
    pub fn opt<T: Decode>(&mut self) -> Result<Option<T>> {
        if self.peek() == Some(b'n') {
            self.null().map(|()| None)
        } else {
            T::decode(self).map(Some)
        }
    }

    /// The value of a required member, or the error naming it.
    #[inline]
    pub fn required<T>(&self, slot: Option<T>, name: &str) -> Result<T> {
        match slot {
            Some(v) => Ok(v),
            None => Err(self.missing(name)),
        }
    }

    /// The error for a missing required member.
    #[cold]
    #[inline(never)]
    pub fn missing(&self, name: &str) -> Error {
        self.error(format_args!("missing field `{name}`"))
    }

    /// The error for the first required member not `present` (a decoder's check of all
    /// its required members at once).
    #[cold]
    #[inline(never)]
    pub fn missing_among(&self, present: &[bool], names: &[&str]) -> Error {
        let i = present.iter().position(|p| !p).unwrap_or(0);
        self.missing(names.get(i).copied().unwrap_or_default())
    }

    /// Decodes a member's value into its slot (`null` only where `T` accepts it).
    /// Out of line and shared by every member of type `T`: decoders stay small.
    #[inline(never)]
    pub fn some_into<T: Decode>(&mut self, slot: &mut Option<T>) -> Result<()> {
        *slot = Some(T::decode(self)?);
        Ok(())
    }

    /// Decodes an optional member's value into its slot: `null` is `None`.
    #[inline(never)]
    pub fn opt_into<T: Decode>(&mut self, slot: &mut Option<T>) -> Result<()> {
        *slot = self.opt()?;
        Ok(())
    }

    /// Reads a union's discriminator into its slot, borrowed when possible.
    #[inline(never)]
    pub fn str_into(&mut self, slot: &mut Option<Cow<'a, str>>) -> Result<()> {
        *slot = Some(self.string()?);
        Ok(())
    }

    /// Reads a string into an owned `String`.
    #[inline(never)]
    pub fn owned_string(&mut self) -> Result<String> {
        self.string().map(Cow::into_owned)
    }

    fn literal(&mut self, word: &str) -> Result<()> {
        if self.text.as_bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("expected value"))
        }
    }

    /// Reads `null`.
    #[inline(never)]
    pub fn null(&mut self) -> Result<()> {
        match self.peek() {
            Some(b'n') => self.literal("null"),
            _ => Err(self.unexpected("null")),
        }
    }

    /// Reads `true` or `false`.
    #[inline(never)]
    pub fn boolean(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.literal("true").map(|()| true),
            Some(b'f') => self.literal("false").map(|()| false),
            _ => Err(self.unexpected("a boolean")),
        }
    }

    /// Scans a number; returns its text and whether it is an integer.
    fn number_text(&mut self) -> Result<(&'a str, bool)> {
        let b = self.text.as_bytes();
        let start = self.pos;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > s
        };
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => {
                self.pos = i;
                return Err(self.error("invalid number"));
            }
        }
        let mut int = true;
        if b.get(i) == Some(&b'.') {
            int = false;
            i += 1;
            if !digits(&mut i) {
                self.pos = i;
                return Err(self.error("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            int = false;
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if !digits(&mut i) {
                self.pos = i;
                return Err(self.error("invalid number"));
            }
        }
        self.pos = i;
        Ok((&self.text[start..i], int))
    }

    /// Reads an integer that fits `T` (`what` names `T` in errors).
    #[inline(never)]
    pub fn integer<T: TryFrom<i64> + TryFrom<u64>>(&mut self, what: &str) -> Result<T> {
        if self.peek().is_none_or(|b| b != b'-' && !b.is_ascii_digit()) {
            return Err(self.unexpected(what));
        }
        let at = self.pos;
        let (text, int) = self.number_text()?;
        let v = if !int {
            None
        } else if text.starts_with('-') {
            text.parse::<i64>().ok().and_then(|v| T::try_from(v).ok())
        } else {
            text.parse::<u64>().ok().and_then(|v| T::try_from(v).ok())
        };
        v.ok_or_else(|| {
            let e = self.at(at);
            if int {
                e.error(format_args!(
                    "invalid value: integer `{text}`, expected {what}"
                ))
            } else {
                e.error(format_args!(
                    "invalid type: floating point `{text}`, expected {what}"
                ))
            }
        })
    }

    /// Reads any number as `f64`.
    #[inline(never)]
    pub fn number(&mut self) -> Result<f64> {
        if self.peek().is_none_or(|b| b != b'-' && !b.is_ascii_digit()) {
            return Err(self.unexpected("a number"));
        }
        let at = self.pos;
        let (text, _) = self.number_text()?;
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.at(at).error("number out of range")),
        }
    }

    /// Scans a string (the reader is at its opening quote); returns the text between the
    /// quotes and whether it holds escapes.
    fn string_text(&mut self) -> Result<(&'a str, bool)> {
        let b = self.text.as_bytes();
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            i = string_run(b, i);
            match b.get(i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(_) => {
                    self.pos = i;
                    return Err(self.error(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                None => {
                    self.pos = b.len();
                    return Err(self.error("EOF while parsing a string"));
                }
            }
        }
        self.pos = i + 1;
        Ok((&self.text[start..i], escaped))
    }

    /// Reads a string, borrowed from the text when it has no escapes.
    #[inline(never)]
    pub fn string(&mut self) -> Result<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("a string"));
        }
        let at = self.pos;
        let (raw, escaped) = self.string_text()?;
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        unescape(raw)
            .map(Cow::Owned)
            .map_err(|(off, msg)| self.at(at + 1 + off).error(msg))
    }

    /// Skips one value, checking that it is well-formed JSON. Iterative, so any nesting
    /// depth is safe.
    #[inline(never)]
    pub fn skip(&mut self) -> Result<()> {
        // One bit per open container: 1 for an object, 0 for an array.
        let mut stack: Vec<bool> = Vec::new();
        'value: loop {
            match self.kind()? {
                Kind::Str => {
                    let at = self.pos;
                    let (raw, escaped) = self.string_text()?;
                    if escaped {
                        unescape(raw).map_err(|(off, msg)| self.at(at + 1 + off).error(msg))?;
                    }
                }
                Kind::Num => {
                    self.number_text()?;
                }
                Kind::Bool => {
                    self.boolean()?;
                }
                Kind::Null => self.null()?,
                Kind::Array => {
                    self.pos += 1;
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        stack.push(false);
                        continue 'value;
                    }
                }
                Kind::Object => {
                    self.pos += 1;
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        stack.push(true);
                        self.key()?;
                        continue 'value;
                    }
                }
            }
            // After a value: close containers, or go on to the next element.
            loop {
                let Some(&object) = stack.last() else {
                    return Ok(());
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if object {
                            self.key()?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if object => {
                        self.pos += 1;
                        stack.pop();
                    }
                    Some(b']') if !object => {
                        self.pos += 1;
                        stack.pop();
                    }
                    Some(_) if object => return Err(self.error("expected `,` or `}`")),
                    Some(_) => return Err(self.error("expected `,` or `]`")),
                    None => return Err(self.error("EOF while parsing a value")),
                }
            }
        }
    }

    /// Inside an object or array (`close` ends it): reads the end (`false`), or the comma
    /// before the next member or element (`true`; none before the first).
    fn next_in(&mut self, first: &mut bool, close: u8, what: &str) -> Result<bool> {
        match self.peek() {
            Some(c) if c == close => {
                self.pos += 1;
                self.depth -= 1;
                return Ok(false);
            }
            Some(b',') if !*first => self.pos += 1,
            _ if *first => {}
            None => return Err(self.error(format_args!("EOF while parsing {what}"))),
            Some(_) => {
                return Err(self.error(format_args!("expected `,` or `{}`", close as char)));
            }
        }
        *first = false;
        Ok(true)
    }

    /// Reads an object key and its colon.
    fn key(&mut self) -> Result<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(self.error("key must be a string"));
        }
        let k = self.string()?;
        if self.peek() != Some(b':') {
            return Err(self.error("expected `:`"));
        }
        self.pos += 1;
        Ok(k)
    }

    /// The text of the next value (checked, not decoded).
    #[inline(never)]
    pub fn raw(&mut self) -> Result<&'a str> {
        let start = self.mark();
        self.skip()?;
        Ok(&self.text[start..self.pos])
    }
}

impl Object {
    /// The next key (its colon read too), or `None` at the closing `}`.
    #[inline(never)]
    pub fn next_key<'a>(&mut self, r: &mut Reader<'a>) -> Result<Option<Cow<'a, str>>> {
        if r.next_in(&mut self.first, b'}', "an object")? {
            r.key().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The index in `keys` of the next member's key, its colon read; members not in
    /// `keys` are skipped. `None` at the closing `}`.
    #[inline(never)]
    pub fn next_member(&mut self, r: &mut Reader<'_>, keys: &[&str]) -> Result<Option<usize>> {
        while let Some(key) = self.next_key(r)? {
            let n = keys.len();
            let found = (0..n)
                .map(|i| (self.hint + i) % n)
                .find(|&i| keys[i] == key);
            match found {
                Some(i) => {
                    self.hint = i + 1;
                    return Ok(Some(i));
                }
                None => r.skip()?,
            }
        }
        Ok(None)
    }
}

impl Array {
    /// Whether another element follows (its comma read), or `false` at the closing `]`.
    #[allow(clippy::should_implement_trait)]
    #[inline(never)]
    pub fn next(&mut self, r: &mut Reader<'_>) -> Result<bool> {
        r.next_in(&mut self.first, b']', "a list")
    }
}

/// The index of the first byte at or after `i` that ends a run of plain string
/// characters (a quote, a backslash or a control character), or `b.len()`. Eight bytes
/// at a time: the lowest flagged byte of a word is exact.
fn string_run(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let hits = zero_byte(w ^ (ONES * u64::from(b'"')))
            | zero_byte(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i.min(b.len())
}

/// Decodes the escapes of a string's text; on error, the byte offset and the message.
fn unescape(raw: &str) -> std::result::Result<String, (usize, &'static str)> {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < b.len() {
        let Some(rel) = b[i..].iter().position(|&c| c == b'\\') else {
            out.push_str(&raw[i..]);
            break;
        };
        out.push_str(&raw[i..i + rel]);
        i += rel;
        let esc = *b.get(i + 1).ok_or((i, "EOF while parsing a string"))?;
        i += 2;
        match esc {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let hi = hex4(b, i)?;
                i += 4;
                let c = if (0xD800..0xDC00).contains(&hi) {
                    if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
                        return Err((i, "lone leading surrogate in hex escape"));
                    }
                    let lo = hex4(b, i + 2)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err((i, "lone leading surrogate in hex escape"));
                    }
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..0xE000).contains(&hi) {
                    return Err((i, "lone trailing surrogate in hex escape"));
                } else {
                    hi
                };
                out.push(char::from_u32(c).ok_or((i, "invalid unicode code point"))?);
            }
            _ => return Err((i - 1, "invalid escape")),
        }
    }
    Ok(out)
}

fn hex4(b: &[u8], i: usize) -> std::result::Result<u32, (usize, &'static str)> {
    let digits = b.get(i..i + 4).ok_or((i, "EOF while parsing a string"))?;
    let mut v = 0;
    for &d in digits {
        let n = (d as char).to_digit(16).ok_or((i, "invalid escape"))?;
        v = v * 16 + n;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(text: &str) -> Result<()> {
        let mut r = Reader::new(text);
        r.skip()?;
        r.end()
    }

    #[test]
    fn skips_valid_json_and_rejects_the_rest() {
        for ok in [
            "0",
            "-1.5e+3",
            "\"a\\u00e9\\ud83d\\ude00\"",
            "[]",
            "{}",
            "[1,[2,{}],{\"a\":[null,true,false]}]",
            " { \"a\" : { \"b\" : [ ] } } ",
        ] {
            skip(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "01",
            "1.",
            "-",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1:2}",
            "[1 2]",
            "tru",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"a",
            "[",
            "{\"a\":1",
            "\"\u{1}\"",
            "1 2",
        ] {
            assert!(skip(bad).is_err(), "{bad:?} accepted");
        }
        // Deep nesting is fine for `skip`, which does not recurse.
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        skip(&deep).unwrap();
    }

    #[test]
    fn integers_are_range_checked() {
        assert_eq!(Reader::new("255").integer::<u8>("u8").unwrap(), 255);
        assert_eq!(Reader::new("-128").integer::<i8>("i8").unwrap(), -128);
        assert_eq!(
            Reader::new("18446744073709551615")
                .integer::<u64>("u64")
                .unwrap(),
            u64::MAX
        );
        let e = Reader::new("256").integer::<u8>("u8").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value: integer `256`, expected u8 at line 1 column 1"
        );
        let e = Reader::new("\n 1.0").integer::<i64>("i64").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid type: floating point `1.0`, expected i64 at line 2 column 2"
        );
        assert!(Reader::new("-1").integer::<u64>("u64").is_err());
        assert!(Reader::new("\"1\"").integer::<u64>("u64").is_err());
        assert_eq!(Reader::new("1e3").number().unwrap(), 1000.0);
        assert!(Reader::new("1e999").number().is_err());
    }

    #[test]
    fn strings_unescape_and_borrow() {
        let mut r = Reader::new("\"plain\"");
        assert!(matches!(r.string().unwrap(), Cow::Borrowed("plain")));
        let mut r = Reader::new(r#""a\"b\\c\/\n\u0041\ud83d\ude00""#);
        assert_eq!(r.string().unwrap(), "a\"b\\c/\nA\u{1F600}");
        assert!(Reader::new(r#""\udc00""#).string().is_err());
    }

    #[test]
    fn strings_agree_with_serde_json_at_every_offset() {
        // The word-at-a-time scan must find quotes, escapes and control characters
        // wherever they sit in a word, and accept non-ASCII text.
        for len in 0..20 {
            for at in 0..=len {
                for special in [
                    "\\\"", "\\\\", "\\n", "\\u00e9", "\u{1}", "\u{7f}", "é", "😀",
                ] {
                    let mut body = "a".repeat(len);
                    body.insert_str(at, special);
                    let text = format!("\"{body}\"");
                    let ours = Reader::new(&text).string().map(Cow::into_owned).ok();
                    let theirs = serde_json::from_str::<String>(&text).ok();
                    assert_eq!(ours, theirs, "{text:?}");
                }
            }
        }
    }
}
