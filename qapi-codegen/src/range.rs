//! The supported QEMU range: what every release from `min_qemu` to the schema's own
//! sends and requires, learned from older releases' schemas and QEMU's "since" notes.
//!
//! `lower` asks one question of it per member: may QEMU leave it out on some release
//! of the range? The answer comes from walking each command's arguments and return
//! and each event's data in the newest schema and in every older one side by side,
//! matching members by name (not types by name: QEMU renames types freely).

use std::collections::{HashMap, HashSet};
use std::fmt;

use qapi_parser::{Builtin, EntityKind, Schema, TypeId};

/// A QEMU release, `major.minor` (the patch level never changes a schema's members).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QemuVersion {
    /// The major version.
    pub major: u16,
    /// The minor version.
    pub minor: u16,
}

impl QemuVersion {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        QemuVersion { major, minor }
    }

    /// Parses `X.Y` or `X.Y.Z` (the patch level is dropped).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        match parts.next() {
            None => {}
            Some(p) if p.parse::<u16>().is_ok() && parts.next().is_none() => {}
            Some(_) => return None,
        }
        Some(QemuVersion { major, minor })
    }
}

impl fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The first version number in `text` (`8.0`, `0.14`, `7.2.0`), if any.
fn first_version(text: &str) -> Option<QemuVersion> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let t = text[start..i].trim_end_matches('.');
            if t.contains('.') {
                if let Some(v) = QemuVersion::parse(t) {
                    return Some(v);
                }
            }
        }
        i += 1;
    }
    None
}

/// The version of a member's "(since X.Y)" note in its description, if any.
pub fn member_note(text: &str) -> Option<QemuVersion> {
    let lower = text.to_ascii_lowercase();
    // "since" as a word, followed closely by the number: "(since 8.0)", "Since 2.12",
    // "since: 6.0", "since QEMU 9.1", and the number on the next line.
    lower.match_indices("since").find_map(|(at, _)| {
        if lower[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            return None;
        }
        let rest =
            lower[at + 5..].trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ':');
        let rest = rest.strip_prefix("qemu").unwrap_or(rest).trim_start();
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        first_version(rest)
    })
}

/// The version of an entity's `Since:` section, if any.
pub fn entity_note(s: &Schema, id: TypeId) -> Option<QemuVersion> {
    let doc = s.doc(s.entity(id).doc?);
    doc.sections
        .iter()
        .find(|sec| sec.kind == qapi_parser::SectionKind::Since)
        .and_then(|sec| first_version(&sec.text))
}

/// What one release does with a member, on the paths where its container exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Presence {
    /// Not a member there.
    Absent,
    /// An optional member there (or present in some union branches only).
    Optional,
    /// Always sent or required there.
    Required,
}

/// What one release does with each member, by (declaring type, member name).
type Presences<'a> = HashMap<(TypeId, &'a str), Presence>;

/// An older release's schema, as the range analysis reads it.
pub struct Release<'a> {
    /// Its version.
    pub version: QemuVersion,
    /// Its checked schema.
    pub schema: &'a Schema,
}

/// What the range says about one member of the newest schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberRange {
    /// QEMU may leave it out on some release of the range (or the newest schema
    /// does not require it).
    pub optional: bool,
    /// The release since which QEMU always sends or requires it, when that is later
    /// than the start of the range (from the older schemas, or from its "since" note).
    pub since: Option<QemuVersion>,
    /// Its type changed within the range in a way the newest type cannot decode.
    pub changed: bool,
}

/// The analysis of a schema against older releases, for `lower`.
pub struct Range<'a> {
    /// Per release (ascending), per (declaring type, member name) of the newest schema.
    presence: Vec<(QemuVersion, Presences<'a>)>,
    /// Members (by declaring type and name) whose type changed, with the release.
    changed: HashMap<(TypeId, &'a str), QemuVersion>,
    /// Commands whose return type changed, with the release.
    returns_changed: HashMap<TypeId, QemuVersion>,
    /// The newest schema.
    schema: &'a Schema,
    /// The start of the range, if any.
    min: Option<QemuVersion>,
}

/// The direction a value travels: requests are checked for what every release
/// requires, replies and events for what every release sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    In,
    Out,
}

impl<'a> Range<'a> {
    /// Analyses `new` (the schema generated from) against `older` releases, for the
    /// range starting at `min` (`None`: the newest schema's own release only).
    pub fn new(new: &'a Schema, older: &[Release<'_>], min: Option<QemuVersion>) -> Range<'a> {
        let mut releases: Vec<&Release<'_>> = older.iter().collect();
        releases.sort_by_key(|r| r.version);
        let mut range = Range {
            presence: Vec::new(),
            changed: HashMap::new(),
            returns_changed: HashMap::new(),
            schema: new,
            min,
        };
        for rel in releases {
            let mut walk = Walk {
                new,
                old: rel.schema,
                version: rel.version,
                presence: HashMap::new(),
                changed: &mut range.changed,
                seen: HashSet::new(),
            };
            for e in new.ids() {
                let ent = new.entity(e);
                let Some(old_id) = rel.schema.lookup(&ent.name) else {
                    continue;
                };
                let old_ent = rel.schema.entity(old_id);
                match (&ent.kind, &old_ent.kind) {
                    (EntityKind::Command(c), EntityKind::Command(oc)) => {
                        if let Some(a) = c.arg_type {
                            walk.walk(a, oc.arg_type, Dir::In);
                        }
                        if let Some(r) = c.ret_type {
                            match oc.ret_type {
                                Some(or) if !walk.decodes(r, or) => {
                                    range.returns_changed.entry(e).or_insert(rel.version);
                                }
                                _ => {}
                            }
                            walk.walk(r, oc.ret_type, Dir::Out);
                        }
                    }
                    (EntityKind::Event(ev), EntityKind::Event(oev)) => {
                        if let Some(a) = ev.arg_type {
                            walk.walk(a, oev.arg_type, Dir::Out);
                        }
                    }
                    _ => {}
                }
            }
            let presence = walk.presence;
            range.presence.push((rel.version, presence));
        }
        range
    }

    /// Whether QEMU's reply of this command may have another shape on a release of the range.
    pub fn return_changed(&self, command: TypeId) -> bool {
        self.returns_changed.contains_key(&command)
    }

    /// The range's verdict on member `name` declared by `owner` in the newest schema.
    /// `required` is whether the newest schema requires it, `note` its "since" note.
    pub fn member(
        &self,
        owner: TypeId,
        name: &str,
        required: bool,
        note: Option<QemuVersion>,
    ) -> MemberRange {
        let key = (owner, name);
        let changed = self.changed.contains_key(&key);
        let Some(min) = self.min else {
            return MemberRange {
                optional: !required,
                since: None,
                changed,
            };
        };
        if !required {
            return MemberRange {
                optional: true,
                since: None,
                changed,
            };
        }
        // Evidence per release: `None` where the member's container was never sent.
        let at = |i: usize| self.presence[i].1.get(&key).copied();
        let mut optional = false;
        let mut since = None;
        // Every release in the range must require it; it is required since the first
        // release after the last one that did not.
        let last_without = (0..self.presence.len())
            .rev()
            .find(|&i| self.presence[i].0 >= min && at(i).is_some_and(|p| p != Presence::Required));
        if let Some(i) = last_without {
            optional = true;
            since = (i + 1..self.presence.len())
                .find(|&j| at(j) == Some(Presence::Required))
                .map(|j| self.presence[j].0)
                .or(note.filter(|n| *n > self.presence[i].0));
        }
        // The start of the range itself, when no release given is exactly it: the
        // release before it decides when it agrees with the one after it, the note
        // decides in between.
        if !optional && !self.presence.iter().any(|(v, _)| *v == min) {
            let before = (0..self.presence.len())
                .rev()
                .find(|&i| self.presence[i].0 < min && at(i).is_some());
            let after = (0..self.presence.len()).find(|&i| self.presence[i].0 > min);
            let before_has = before.map(|i| at(i) == Some(Presence::Required));
            match (before_has, note) {
                (Some(true), _) => {}
                (_, Some(n)) if n <= min => {}
                (_, Some(n)) => {
                    optional = true;
                    since = Some(n);
                }
                (Some(false), None) => {
                    optional = true;
                    since = after.map(|i| self.presence[i].0);
                }
                // No older evidence and no note: as old as its container.
                (None, None) => {}
            }
        }
        MemberRange {
            optional,
            since,
            changed,
        }
    }

    /// Every type change the newest schema cannot decode, as `TYPE.member` or
    /// `returns of COMMAND`, each with the release that sends the other shape; sorted.
    pub fn type_changes(&self) -> Vec<(String, QemuVersion)> {
        let s = self.schema;
        let mut out: Vec<(String, QemuVersion)> = self
            .changed
            .iter()
            .map(|(&(owner, name), v)| (format!("{}.{name}", s.entity(owner).name), *v))
            .chain(
                self.returns_changed
                    .iter()
                    .map(|(c, v)| (format!("returns of {}", s.entity(*c).name), *v)),
            )
            .collect();
        out.sort();
        out
    }
}

/// One older release walked beside the newest schema.
struct Walk<'a, 'o, 'c> {
    new: &'a Schema,
    old: &'o Schema,
    version: QemuVersion,
    presence: Presences<'a>,
    changed: &'c mut HashMap<(TypeId, &'a str), QemuVersion>,
    /// (new type, old type, direction) pairs already walked: recursion ends.
    seen: HashSet<(TypeId, TypeId, bool)>,
}

impl<'a> Walk<'a, '_, '_> {
    /// Records the members of `new` as `old` has them, and walks into their types.
    fn walk(&mut self, new: TypeId, old: Option<TypeId>, dir: Dir) {
        let Some(old) = old else { return };
        if !self.seen.insert((new, old, dir == Dir::In)) {
            return;
        }
        let (n, o) = (self.new.entity(new), self.old.entity(old));
        match (&n.kind, &o.kind) {
            (EntityKind::Array(a), EntityKind::Array(b)) => {
                self.walk(a.element, Some(b.element), dir)
            }
            (EntityKind::Object(no), _) => {
                let old_members = old_members(self.old, old);
                for (owner, m) in members_with_owner(self.new, new) {
                    let (presence, old_ty) = match old_members.get(m.name.as_str()) {
                        None => (Presence::Absent, None),
                        Some(&(ty, p)) => (p, Some(ty)),
                    };
                    let key = (owner, m.name.as_str());
                    let slot = self.presence.entry(key).or_insert(presence);
                    *slot = (*slot).min(presence);
                    if let Some(ot) = old_ty {
                        if dir == Dir::Out && !self.decodes(m.ty, ot) {
                            self.changed.entry(key).or_insert(self.version);
                        }
                    }
                    self.walk(m.ty, old_ty, dir);
                }
                if let Some(vs) = &no.variants {
                    for v in &vs.variants {
                        let old_branch = match &o.kind {
                            EntityKind::Object(oo) => match &oo.variants {
                                Some(ovs) => ovs
                                    .variants
                                    .iter()
                                    .find(|ov| ov.name == v.name)
                                    .map(|ov| ov.ty),
                                // A struct that became a union: its members are
                                // the branch's members.
                                None => Some(old),
                            },
                            _ => None,
                        };
                        self.walk(v.ty, old_branch, dir);
                    }
                }
            }
            (EntityKind::Alternate(na), _) => {
                for v in &na.variants {
                    let old_alt = match &o.kind {
                        EntityKind::Alternate(oa) => oa
                            .variants
                            .iter()
                            .find(|ov| ov.name == v.name)
                            .map(|ov| ov.ty),
                        _ => Some(old),
                    };
                    self.walk(v.ty, old_alt, dir);
                }
            }
            _ => {}
        }
    }

    /// Whether a value of the old type decodes as the new type (one level deep: the
    /// members of object types are checked on their own).
    fn decodes(&self, new: TypeId, old: TypeId) -> bool {
        let (n, o) = (self.new.entity(new), self.old.entity(old));
        use EntityKind as K;
        match (&n.kind, &o.kind) {
            (K::Builtin(Builtin::Any), _) => true,
            (K::Builtin(a), K::Builtin(b)) => builtin_decodes(*a, *b),
            // Enums keep values they do not know; strings and enums are both strings.
            (K::Enum(_) | K::Builtin(Builtin::Str), K::Enum(_) | K::Builtin(Builtin::Str)) => true,
            (K::Array(a), K::Array(b)) => self.decodes(a.element, b.element),
            (K::Object(no), K::Object(oo)) => match (&no.variants, &oo.variants) {
                // A union needs its discriminator, always sent.
                (Some(nv), _) => old_members(self.old, old)
                    .get(nv.tag_member.as_str())
                    .is_some_and(|&(_, p)| p == Presence::Required),
                (None, _) => true,
            },
            (K::Alternate(a), K::Alternate(b)) => b
                .variants
                .iter()
                .all(|ov| a.variants.iter().any(|nv| self.decodes(nv.ty, ov.ty))),
            (K::Alternate(a), _) => a.variants.iter().any(|v| self.decodes(v.ty, old)),
            (_, K::Alternate(b)) => b.variants.iter().all(|v| self.decodes(new, v.ty)),
            _ => false,
        }
    }
}

/// The members of an old object type by name: type and presence. Members of only
/// some union branches count as optional.
fn old_members(s: &Schema, old: TypeId) -> HashMap<&str, (TypeId, Presence)> {
    let mut out = HashMap::new();
    for m in s.all_members(old) {
        let p = if m.optional {
            Presence::Optional
        } else {
            Presence::Required
        };
        out.insert(m.name.as_str(), (m.ty, p));
    }
    if let EntityKind::Object(o) = &s.entity(old).kind {
        if let Some(vs) = &o.variants {
            let n = vs.variants.len();
            let mut count: HashMap<&str, (TypeId, usize, bool)> = HashMap::new();
            for v in &vs.variants {
                for m in s.all_members(v.ty) {
                    let c = count.entry(m.name.as_str()).or_insert((m.ty, 0, false));
                    c.1 += 1;
                    c.2 |= m.optional;
                }
            }
            for (name, (ty, k, opt)) in count {
                let p = if k == n && !opt {
                    Presence::Required
                } else {
                    Presence::Optional
                };
                out.entry(name).or_insert((ty, p));
            }
        }
    }
    out
}

/// Whether a JSON value of builtin `old` always decodes as builtin `new`.
fn builtin_decodes(new: Builtin, old: Builtin) -> bool {
    use Builtin::*;
    fn bounds(b: Builtin) -> Option<(i128, i128)> {
        Some(match b {
            Int | Int64 => (i64::MIN.into(), i64::MAX.into()),
            Int8 => (i8::MIN.into(), i8::MAX.into()),
            Int16 => (i16::MIN.into(), i16::MAX.into()),
            Int32 => (i32::MIN.into(), i32::MAX.into()),
            Uint8 => (0, u8::MAX.into()),
            Uint16 => (0, u16::MAX.into()),
            Uint32 => (0, u32::MAX.into()),
            Uint64 | Size => (0, u64::MAX.into()),
            _ => return None,
        })
    }
    if new == old {
        return true;
    }
    match (bounds(new), bounds(old)) {
        (Some((a, b)), Some((c, d))) => a <= c && d <= b,
        // Integers decode as numbers.
        _ => new == Number && bounds(old).is_some(),
    }
}

/// Members of an object type with their declaring type, base members first.
pub(crate) fn members_with_owner(s: &Schema, id: TypeId) -> Vec<(TypeId, &qapi_parser::Member)> {
    let mut chain = Vec::new();
    let mut cur = Some(id);
    while let Some(c) = cur {
        if chain.contains(&c) || chain.len() > s.entities.len() {
            break;
        }
        chain.push(c);
        cur = match &s.entity(c).kind {
            EntityKind::Object(o) => o.base,
            _ => None,
        };
    }
    let mut out = Vec::new();
    for c in chain.into_iter().rev() {
        if let EntityKind::Object(o) = &s.entity(c).kind {
            out.extend(o.local_members.iter().map(|m| (c, m)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_notes() {
        assert_eq!(QemuVersion::parse("10.0.2"), Some(QemuVersion::new(10, 0)));
        assert_eq!(QemuVersion::parse("6.2"), Some(QemuVersion::new(6, 2)));
        assert_eq!(QemuVersion::parse("6"), None);
        assert_eq!(QemuVersion::parse("6.2.x"), None);
        assert_eq!(
            member_note("ACPI support (since 8.0)"),
            Some(QemuVersion::new(8, 0))
        );
        assert_eq!(
            member_note("the unit (Since 8.2.0)."),
            Some(QemuVersion::new(8, 2))
        );
        assert_eq!(member_note("a name, since it is unique"), None);
        assert_eq!(
            member_note("members, in no particular order (since\n    6.2)."),
            Some(QemuVersion::new(6, 2))
        );
        assert_eq!(
            member_note("sincere (since QEMU 9.1)"),
            Some(QemuVersion::new(9, 1))
        );
        assert_eq!(member_note("no note"), None);
        assert_eq!(first_version("0.14"), Some(QemuVersion::new(0, 14)));
        assert_eq!(first_version("v2 5.1."), Some(QemuVersion::new(5, 1)));
    }

    #[test]
    fn integer_widening_decodes_narrowing_does_not() {
        use Builtin::*;
        assert!(builtin_decodes(Int, Int32));
        assert!(builtin_decodes(Number, Int));
        assert!(builtin_decodes(Uint64, Size));
        assert!(!builtin_decodes(Uint64, Int));
        assert!(!builtin_decodes(Int, Number));
        assert!(!builtin_decodes(Str, Int));
    }
}
