//! The JSON the codec wrote, as a tree that serde serializes with every object's members
//! in their written order (`serde_json::Value` would sort them): how the serde bridge
//! keeps the wire layout, `execute` before `arguments` for instance.

use std::borrow::Cow;

use super::{Kind, Reader, Result};

/// A JSON value whose objects keep their member order.
#[derive(Debug)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Reads the whole text written by a [`super::Writer`].
    pub(crate) fn read(text: &'a [u8]) -> std::result::Result<Self, String> {
        let text = std::str::from_utf8(text).map_err(|e| e.to_string())?;
        let mut r = Reader::new(text);
        let v = Self::value(&mut r).map_err(|e| e.to_string())?;
        r.end().map_err(|e| e.to_string())?;
        Ok(v)
    }

    fn value(r: &mut Reader<'a>) -> Result<Self> {
        Ok(match r.kind()? {
            Kind::Null => {
                r.null()?;
                Json::Null
            }
            Kind::Bool => Json::Bool(r.boolean()?),
            Kind::Num => {
                let at = r.mark();
                let raw = r.raw()?;
                Json::Number(serde_json::from_str(raw).map_err(|e| r.at(at).error(e))?)
            }
            Kind::Str => Json::Str(r.string()?),
            Kind::Array => {
                let mut a = r.begin_array()?;
                let mut v = Vec::new();
                while a.next(r)? {
                    v.push(Self::value(r)?);
                }
                Json::Array(v)
            }
            Kind::Object => {
                let mut o = r.begin_object()?;
                let mut v = Vec::new();
                while let Some(key) = o.next_key(r)? {
                    v.push((key, Self::value(r)?));
                }
                Json::Object(v)
            }
        })
    }
}

impl serde::Serialize for Json<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap as _, SerializeSeq as _};
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::Str(v) => s.serialize_str(v),
            Json::Array(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                for e in v {
                    seq.serialize_element(e)?;
                }
                seq.end()
            }
            Json::Object(v) => {
                let mut map = s.serialize_map(Some(v.len()))?;
                for (k, e) in v {
                    map.serialize_entry(k, e)?;
                }
                map.end()
            }
        }
    }
}
