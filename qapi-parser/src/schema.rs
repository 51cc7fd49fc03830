//! The schema model build (QEMU's `schema.py`): entities in creation order, implicit
//! types, name resolution, the semantic checks, doc connection, modules, and the
//! conversion into the public [`Schema`].

use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::ast::{InfoId, Infos, ParseOutput, ParsedDoc, Text};
use crate::diagnostic::{Error, Warning};
use crate::expr::{
    self, BranchDef, Data, DefBody, Definition, EnumValueDef, ExprKind, FeatureDef, MemberDef,
    PragmaSets, Res, TypeRef,
};
use crate::model::{self, Builtin, IfCond, SectionKind};
use crate::release::Rules;
use crate::{Options, Schema};

/// A fast, non-cryptographic hasher (FxHash's mixing) for the builder's maps: the
/// keys are schema names and small ids, and hashing dominates their cost.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;
type HashSet<K> = std::collections::HashSet<K, BuildHasherDefault<FxHasher>>;

/// Name -> entity id without a second copy of the names (the entities hold them):
/// a name's hash maps to the last entity with that hash, and `older` links an
/// entity to the previous one sharing its hash (rare: verified by comparing names).
#[derive(Default)]
struct NameIndex {
    last: HashMap<u64, u32>,
    older: HashMap<u32, u32>,
    /// Every indexed id, in insertion order.
    ids: Vec<u32>,
}

impl NameIndex {
    fn hash(name: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = FxHasher::default();
        name.hash(&mut h);
        h.finish()
    }

    fn with_capacity(n: usize) -> Self {
        NameIndex {
            last: HashMap::with_capacity_and_hasher(n, Default::default()),
            older: HashMap::default(),
            ids: Vec::with_capacity(n),
        }
    }

    fn get(&self, ents: &[Ent], name: &str) -> Option<u32> {
        let mut id = *self.last.get(&Self::hash(name))?;
        loop {
            if ents.get(id as usize).is_some_and(|e| e.name == name) {
                return Some(id);
            }
            id = *self.older.get(&id)?;
        }
    }

    /// Indexes `id` under `name` (not indexed yet).
    fn insert(&mut self, name: &str, id: u32) {
        if let Some(prev) = self.last.insert(Self::hash(name), id) {
            self.older.insert(id, prev);
        }
        self.ids.push(id);
    }
}

/// Interned C names, stored end to end in one string (one allocation instead of
/// one per name), found by hash like [`NameIndex`].
#[derive(Default)]
struct CNames {
    last: HashMap<u64, u32>,
    older: HashMap<u32, u32>,
    text: String,
    /// End of each name in `text`; its id is its index.
    ends: Vec<usize>,
}

impl CNames {
    fn name(&self, id: u32) -> &str {
        // Ids come from `intern` only, and names are whole `str`s: in range.
        let end = self.ends[id as usize];
        let start = match id {
            0 => 0,
            _ => self.ends[id as usize - 1],
        };
        &self.text[start..end]
    }

    fn get(&self, name: &str) -> Option<u32> {
        let mut id = *self.last.get(&NameIndex::hash(name))?;
        loop {
            if self.name(id) == name {
                return Some(id);
            }
            id = *self.older.get(&id)?;
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.get(name) {
            return id;
        }
        let id = self.ends.len() as u32;
        self.text.push_str(name);
        self.ends.push(self.text.len());
        if let Some(prev) = self.last.insert(NameIndex::hash(name), id) {
            self.older.insert(id, prev);
        }
        id
    }
}

/// QEMU allows this many distinct feature names per schema, the specials included.
const MAX_FEATURES: usize = 64;

/// How deep base and branch types may nest. QEMU recurses without a limit of its own
/// (Python's recursion limit stops it at a few hundred levels); we refuse deeper
/// chains with an error rather than risk the stack of a 2 MiB test thread in a debug
/// build (about 8 KiB per level there). Real schemas nest fewer than 10 levels.
const MAX_TYPE_NESTING: u32 = 100;

/// Marks a type reference not resolved yet.
const UNRESOLVED: u32 = u32::MAX;

/// Runs QEMU's phases after parsing, in QEMU's order: expression checks, definition
/// (entities in creation order), checks with doc connection, modules, doc checks and
/// the feature limit; then builds the public model.
pub(crate) fn build(parsed: ParseOutput, options: &Options) -> Res<Schema> {
    let ParseOutput {
        exprs,
        mut docs,
        pragma,
        mut infos,
        files,
        mut warnings,
    } = parsed;
    let sets = PragmaSets::new(&pragma);
    let exprs = expr::check_exprs(
        exprs,
        &mut infos,
        &sets,
        &docs[..],
        options.rules(),
        &mut warnings,
    )?;
    let main_file = files
        .first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut b = Builder::new(&infos, &sets, options.rules(), &main_file, &mut docs);
    b.warnings = warnings;
    b.def_predefineds();
    b.def_exprs(exprs)?;
    b.check()?;
    let mut schema = b.finish(docs);
    if options.rules().simple_unions {
        v5_2::wrapper_ifconds(&mut schema);
    }
    schema.pragma = pragma;
    schema.files = files;
    Ok(schema)
}

/// A feature of a definition, member or enum value.
struct Feat {
    name: String,
    cname: u32,
    ifcond: Option<IfCond>,
}

/// An object type member.
struct Mem {
    name: String,
    cname: u32,
    type_name: Text,
    ty: u32,
    optional: bool,
    ifcond: Option<IfCond>,
    features: Vec<Feat>,
}

/// A union branch or alternate alternative.
struct Var {
    name: String,
    cname: u32,
    type_name: Text,
    ty: u32,
    ifcond: Option<IfCond>,
    implicit: bool,
    /// The entity that "defines" it (for messages).
    defined_in: u32,
}

struct EnumVal {
    name: String,
    cname: u32,
    ifcond: Option<IfCond>,
    features: Vec<Feat>,
}

/// A reference to a local member: owning object and index.
#[derive(Clone, Copy, PartialEq, Eq)]
struct MRef {
    ent: u32,
    idx: u32,
}

struct Branches {
    tag_name: String,
    tag: Option<MRef>,
    variants: Vec<Var>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Unchecked,
    Checking,
    Done,
}

struct Obj {
    base_name: Option<String>,
    base: Option<u32>,
    local: Vec<Mem>,
    branches: Option<Branches>,
    /// All members, base members first; valid once checked.
    members: Vec<MRef>,
    state: State,
}

enum K {
    Builtin(Builtin),
    Enum {
        values: Vec<EnumVal>,
        prefix: Option<String>,
    },
    Object(Obj),
    Alternate {
        variants: Vec<Var>,
    },
    Array {
        elem_name: String,
        elem: u32,
    },
    Command {
        arg_name: Option<String>,
        ret_name: Option<Text>,
        arg: Option<u32>,
        ret: Option<u32>,
        boxed: bool,
        gen: bool,
        success_response: bool,
        allow_oob: bool,
        allow_preconfig: bool,
        coroutine: bool,
    },
    Event {
        arg_name: Option<String>,
        arg: Option<u32>,
        boxed: bool,
    },
    Include,
}

struct Ent {
    name: String,
    info: Option<InfoId>,
    /// The definition's own doc block (QEMU's `doc`).
    doc: Option<usize>,
    /// The doc block the model reports (implicit `q_obj_*` types get their definition's).
    model_doc: Option<usize>,
    ifcond: Option<IfCond>,
    features: Vec<Feat>,
    kind: K,
    module: u32,
}

/// Something that can collide with something else (QEMU's `QAPISchemaMember`).
#[derive(Clone, Copy)]
enum Desc {
    Member(MRef),
    Branch { ent: u32, idx: u32 },
    Value { ent: u32, idx: u32 },
    DefFeature { ent: u32, idx: u32 },
    MemberFeature { m: MRef, idx: u32 },
}

/// A `@name:` description of a doc block, and whether a schema member claimed it.
struct ArgSec {
    name: String,
    info: InfoId,
    connected: bool,
}

struct DocState {
    symbol: Option<String>,
    info: InfoId,
    args: Vec<ArgSec>,
    features: Vec<ArgSec>,
}

struct Builder<'a> {
    infos: &'a Infos,
    pragma: &'a PragmaSets<'a>,
    rules: Rules,
    ents: Vec<Ent>,
    by_name: NameIndex,
    modules: Vec<String>,
    module_by_name: HashMap<String, u32>,
    /// Module of each file, keyed by the address of the info's file name.
    module_by_file: Vec<(*const u8, u32)>,
    main_dir: String,
    features_seen: HashSet<String>,
    feature_overflow: Option<InfoId>,
    cnames: CNames,
    /// Scratch map of [`Builder::check_object_inner`].
    obj_seen: HashMap<u32, Desc>,
    /// Scratch buffer for [`Builder::cname`].
    cname_buf: String,
    docs: Vec<DocState>,
    warnings: Vec<Warning>,
    q_empty: u32,
    /// Current recursion depth of object checks.
    depth: u32,
}

fn dirname(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

/// Lexically normalised components; a leading `/` is kept as a component.
fn components(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    if absolute {
        out.push("/");
    }
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => match out.last() {
                Some(&"/") => {}
                Some(&"..") | None => out.push(".."),
                Some(_) => {
                    out.pop();
                }
            },
            c => out.push(c),
        }
    }
    out
}

/// Python's `os.path.relpath(path, start)` for paths sharing a base (both relative
/// to the working directory, or both absolute).
fn relpath(path: &str, start: &str) -> String {
    let p = components(path);
    let s = components(start);
    let common = p.iter().zip(&s).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; s.len() - common];
    parts.extend(&p[common..]);
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

impl DocState {
    /// Moves the description names (and the symbol) out of the raw block; they go
    /// back into the model in [`convert_doc`].
    fn new(d: &mut ParsedDoc) -> Self {
        // Most blocks describe a few members: one allocation, no regrowth.
        let mut args = Vec::with_capacity(d.sections.len());
        let mut features = Vec::new();
        for s in &mut d.sections {
            let target = match s.kind {
                SectionKind::Member => &mut args,
                SectionKind::Feature => &mut features,
                _ => continue,
            };
            target.push(ArgSec {
                name: s.name.take().unwrap_or_default(),
                info: s.info,
                connected: false,
            });
        }
        DocState {
            symbol: d.symbol.take(),
            info: d.info,
            args,
            features,
        }
    }
}

impl<'a> Builder<'a> {
    fn new(
        infos: &'a Infos,
        pragma: &'a PragmaSets<'a>,
        rules: Rules,
        main_file: &str,
        docs: &mut [ParsedDoc],
    ) -> Self {
        let main_dir = dirname(main_file).to_string();
        let mut b = Builder {
            infos,
            pragma,
            rules,
            ents: Vec::with_capacity(4096),
            by_name: NameIndex::with_capacity(4096),
            modules: Vec::new(),
            module_by_name: HashMap::default(),
            module_by_file: Vec::new(),
            main_dir,
            features_seen: ["deprecated", "unstable"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            feature_overflow: None,
            obj_seen: HashMap::default(),
            cnames: CNames {
                last: HashMap::with_capacity_and_hasher(4096, Default::default()),
                older: HashMap::default(),
                text: String::with_capacity(64 * 1024),
                ends: Vec::with_capacity(4096),
            },
            cname_buf: String::new(),
            docs: docs.iter_mut().map(DocState::new).collect(),
            warnings: Vec::new(),
            q_empty: 0,
            depth: 0,
        };
        b.make_module_named("./builtin".to_string());
        b.make_module(main_file);
        b
    }

    // ----- modules -------------------------------------------------------------

    fn make_module_named(&mut self, name: String) -> u32 {
        if let Some(&m) = self.module_by_name.get(&name) {
            return m;
        }
        let id = self.modules.len() as u32;
        self.module_by_name.insert(name.clone(), id);
        self.modules.push(name);
        id
    }

    fn module_name(&self, file: &str) -> String {
        relpath(file, &self.main_dir)
    }

    fn make_module(&mut self, file: &str) -> u32 {
        let name = self.module_name(file);
        self.make_module_named(name)
    }

    /// The module of the file an info points into (builtin for `None`).
    fn module_of(&mut self, info: Option<InfoId>) -> u32 {
        let Some(info) = info else { return 0 };
        let file: &Rc<str> = &self.infos.get(info).file;
        let key = file.as_ptr();
        if let Some(&(_, m)) = self.module_by_file.iter().find(|(k, _)| *k == key) {
            return m;
        }
        let name = self.module_name(file);
        let m = self.make_module_named(name);
        self.module_by_file.push((key, m));
        m
    }

    // ----- definitions ---------------------------------------------------------

    /// Interns the C name of `name` (clashes are decided on C names).
    fn cname(&mut self, name: &str) -> u32 {
        let plain = name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
        let mut buf = std::mem::take(&mut self.cname_buf);
        let key: &str = if plain {
            name
        } else {
            buf.clear();
            buf.extend(name.chars().map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            }));
            &buf
        };
        let id = self.cnames.intern(key);
        self.cname_buf = buf;
        id
    }

    fn lookup_type(&self, name: &str) -> Option<u32> {
        let id = self.by_name.get(&self.ents, name)?;
        match self.ents[id as usize].kind {
            K::Command { .. } | K::Event { .. } | K::Include => None,
            _ => Some(id),
        }
    }

    fn push_entity(&mut self, ent: Ent) -> u32 {
        let id = self.ents.len() as u32;
        self.ents.push(ent);
        id
    }

    fn describe_type(&self, id: u32) -> String {
        let e = &self.ents[id as usize];
        match &e.kind {
            K::Builtin(_) => format!("built-in type '{}'", e.name),
            K::Enum { .. } => format!("enum type '{}'", e.name),
            K::Object(o) if o.branches.is_some() => format!("union type '{}'", e.name),
            K::Object(_) => format!("struct type '{}'", e.name),
            K::Alternate { .. } => format!("alternate type '{}'", e.name),
            K::Array { elem_name, .. } => format!("array type ['{elem_name}']"),
            K::Command { .. } => format!("command '{}'", e.name),
            K::Event { .. } => format!("event '{}'", e.name),
            K::Include => format!("include '{}'", e.name),
        }
    }

    /// QEMU's `_def_definition`: append, then reject a name already taken.
    fn def_definition(&mut self, ent: Ent) -> Res<u32> {
        let id = self.push_entity(ent);
        let e = &self.ents[id as usize];
        if let Some(other) = self.by_name.get(&self.ents[..id as usize], &e.name) {
            let o = &self.ents[other as usize];
            let info = e.info.unwrap_or(InfoId(0));
            return Err(Box::new(match o.info {
                Some(oinfo) => {
                    let prev = self.infos.error(oinfo, "previous definition");
                    self.infos
                        .error(info, format!("'{}' is already defined\n{prev}", e.name))
                }
                None => self.infos.error(
                    info,
                    format!("{} is already defined", self.describe_type(other)),
                ),
            }));
        }
        self.by_name.insert(&self.ents[id as usize].name, id);
        Ok(id)
    }

    fn simple(name: String, info: Option<InfoId>, kind: K) -> Ent {
        Ent {
            name,
            info,
            doc: None,
            model_doc: None,
            ifcond: None,
            features: Vec::new(),
            kind,
            module: 0,
        }
    }

    fn def_predefineds(&mut self) {
        for bt in Builtin::ALL {
            let name = bt.name().to_string();
            // Predefined names cannot clash.
            let _ = self.def_definition(Self::simple(name, None, K::Builtin(bt)));
            let _ = self.make_array_type(bt.name(), None);
        }
        let q_empty = Self::simple(
            "q_empty".to_string(),
            None,
            K::Object(Obj {
                base_name: None,
                base: None,
                local: Vec::new(),
                branches: None,
                members: Vec::new(),
                state: State::Unchecked,
            }),
        );
        self.q_empty = self.def_definition(q_empty).unwrap_or(0);
        let values = [
            "none", "qnull", "qnum", "qstring", "qdict", "qlist", "qbool",
        ]
        .iter()
        .map(|n| EnumVal {
            name: n.to_string(),
            cname: self.cname(n),
            ifcond: None,
            features: Vec::new(),
        })
        .collect();
        let qtype = Self::simple(
            "QType".to_string(),
            None,
            K::Enum {
                values,
                prefix: self.rules.qtype_prefix.map(str::to_string),
            },
        );
        let _ = self.def_definition(qtype);
    }

    fn make_features(&mut self, defs: Vec<FeatureDef>, info: InfoId) -> Vec<Feat> {
        let mut out = Vec::with_capacity(defs.len());
        for f in defs {
            if !self.features_seen.contains(&f.name) {
                self.features_seen.insert(f.name.clone());
                if self.features_seen.len() == MAX_FEATURES + 1 {
                    self.feature_overflow = Some(info);
                }
            }
            out.push(Feat {
                cname: self.cname(&f.name),
                name: f.name,
                ifcond: f.ifcond,
            });
        }
        out
    }

    fn make_array_type(&mut self, elem: &str, info: Option<InfoId>) -> Res<String> {
        let name = format!("{elem}List");
        if self.lookup_type(&name).is_none() {
            let ent = Self::simple(
                name.clone(),
                info,
                K::Array {
                    elem_name: elem.to_string(),
                    elem: UNRESOLVED,
                },
            );
            self.def_definition(ent)?;
        }
        Ok(name)
    }

    fn type_ref(&mut self, t: TypeRef, info: InfoId) -> Res<Text> {
        match t {
            TypeRef::Name(n) => Ok(n),
            TypeRef::Array(e) => self.make_array_type(&e, Some(info)).map(Text::Owned),
        }
    }

    fn make_members(&mut self, defs: Vec<MemberDef>, info: InfoId) -> Res<Vec<Mem>> {
        let mut out = Vec::with_capacity(defs.len());
        for m in defs {
            let type_name = self.type_ref(m.ty, info)?;
            let features = self.make_features(m.features, info);
            out.push(Mem {
                cname: self.cname(&m.name),
                name: m.name,
                type_name,
                ty: UNRESOLVED,
                optional: m.optional,
                ifcond: m.ifcond,
                features,
            });
        }
        Ok(out)
    }

    fn make_variants(
        &mut self,
        defs: Vec<BranchDef>,
        info: InfoId,
        defined_in: u32,
    ) -> Res<Vec<Var>> {
        let mut out = Vec::with_capacity(defs.len());
        for v in defs {
            let type_name = self.type_ref(v.ty, info)?;
            out.push(Var {
                cname: self.cname(&v.name),
                name: v.name,
                type_name,
                ty: UNRESOLVED,
                ifcond: v.ifcond,
                implicit: false,
                defined_in,
            });
        }
        Ok(out)
    }

    /// QEMU's `_make_implicit_object_type`: `None` for no members.
    fn make_implicit_object(
        &mut self,
        name: &str,
        role: &str,
        info: InfoId,
        ifcond: &Option<IfCond>,
        members: Vec<Mem>,
        doc: Option<usize>,
    ) -> Res<Option<String>> {
        if members.is_empty() {
            return Ok(None);
        }
        let name = format!("q_obj_{name}-{role}");
        if self.by_name.get(&self.ents, &name).is_none() {
            let mut ent = Self::simple(
                name.clone(),
                Some(info),
                K::Object(Obj {
                    base_name: None,
                    base: None,
                    local: members,
                    branches: None,
                    members: Vec::new(),
                    state: State::Unchecked,
                }),
            );
            ent.ifcond = ifcond.clone();
            ent.model_doc = doc;
            self.def_definition(ent)?;
        }
        Ok(Some(name))
    }

    fn def_exprs(&mut self, exprs: Vec<expr::Expr>) -> Res<()> {
        for e in exprs {
            let info = e.info;
            match e.kind {
                ExprKind::Include(file) => {
                    // The parser already joined the path to the includer's folder.
                    let module = self.make_module(&file);
                    let name = self.modules[module as usize].clone();
                    self.push_entity(Self::simple(name, Some(info), K::Include));
                }
                ExprKind::Definition(def) => self.def_definition_expr(def, info, e.doc)?,
            }
        }
        Ok(())
    }

    fn def_definition_expr(
        &mut self,
        def: Definition,
        info: InfoId,
        doc: Option<usize>,
    ) -> Res<()> {
        let Definition {
            name,
            ifcond,
            features,
            body,
        } = def;
        let features = self.make_features(features, info);
        let kind = match body {
            DefBody::Enum { values, prefix } => {
                let values = values
                    .into_iter()
                    .map(|v: EnumValueDef| {
                        let features = self.make_features(v.features, info);
                        EnumVal {
                            cname: self.cname(&v.name),
                            name: v.name,
                            ifcond: v.ifcond,
                            features,
                        }
                    })
                    .collect();
                K::Enum { values, prefix }
            }
            DefBody::Struct { base, members } => {
                let local = self.make_members(members, info)?;
                K::Object(Obj {
                    base_name: base,
                    base: None,
                    local,
                    branches: None,
                    members: Vec::new(),
                    state: State::Unchecked,
                })
            }
            DefBody::Union {
                branches,
                simple: true,
                ..
            } => self.simple_union(&name, branches, info, &ifcond)?,
            DefBody::Union {
                base,
                discriminator,
                branches,
                ..
            } => {
                let base_name = match base {
                    Data::Name(n) => Some(n),
                    Data::Members(m) => {
                        let members = self.make_members(m, info)?;
                        self.make_implicit_object(&name, "base", info, &ifcond, members, doc)?
                    }
                };
                let me = self.ents.len() as u32;
                let variants = self.make_variants(branches, info, me)?;
                K::Object(Obj {
                    base_name,
                    base: None,
                    local: Vec::new(),
                    branches: Some(Branches {
                        tag_name: discriminator,
                        tag: None,
                        variants,
                    }),
                    members: Vec::new(),
                    state: State::Unchecked,
                })
            }
            DefBody::Alternate { branches } => {
                // The alternate is created after its array types; its id is known
                // only then, so fix `defined_in` below.
                let variants = self.make_variants(branches, info, UNRESOLVED)?;
                K::Alternate { variants }
            }
            DefBody::Command {
                data,
                returns,
                boxed,
                gen,
                success_response,
                allow_oob,
                allow_preconfig,
                coroutine,
            } => {
                let arg_name = self.args(&name, data, info, &ifcond, doc)?;
                let ret_name = returns.map(|r| self.type_ref(r, info)).transpose()?;
                K::Command {
                    arg_name,
                    ret_name,
                    arg: None,
                    ret: None,
                    boxed,
                    gen,
                    success_response,
                    allow_oob,
                    allow_preconfig,
                    coroutine,
                }
            }
            DefBody::Event { data, boxed } => {
                let arg_name = self.args(&name, data, info, &ifcond, doc)?;
                K::Event {
                    arg_name,
                    arg: None,
                    boxed,
                }
            }
        };
        let ent = Ent {
            name,
            info: Some(info),
            doc,
            model_doc: doc,
            ifcond,
            features,
            kind,
            module: 0,
        };
        let id = self.def_definition(ent)?;
        // Branches were made before their union or alternate existed; point them at it.
        match &mut self.ents[id as usize].kind {
            K::Alternate { variants } => variants.iter_mut().for_each(|v| v.defined_in = id),
            K::Object(Obj {
                branches: Some(b), ..
            }) => b.variants.iter_mut().for_each(|v| v.defined_in = id),
            _ => {}
        }
        Ok(())
    }

    fn args(
        &mut self,
        name: &str,
        data: Option<Data>,
        info: InfoId,
        ifcond: &Option<IfCond>,
        doc: Option<usize>,
    ) -> Res<Option<String>> {
        match data {
            None => Ok(None),
            Some(Data::Name(n)) => Ok(Some(n)),
            Some(Data::Members(m)) => {
                let members = self.make_members(m, info)?;
                self.make_implicit_object(name, "arg", info, ifcond, members, doc)
            }
        }
    }

    // ----- messages ------------------------------------------------------------

    fn err(&self, info: Option<InfoId>, msg: impl Into<String>) -> Box<Error> {
        Box::new(self.infos.error(info.unwrap_or(InfoId(0)), msg))
    }

    fn obj(&self, id: u32) -> Option<&Obj> {
        match &self.ents[id as usize].kind {
            K::Object(o) => Some(o),
            _ => None,
        }
    }

    fn obj_mut(&mut self, id: u32) -> &mut Obj {
        match &mut self.ents[id as usize].kind {
            K::Object(o) => o,
            _ => unreachable!("caller checked the entity is an object"),
        }
    }

    fn mem(&self, r: MRef) -> &Mem {
        &self.obj(r.ent).expect("members live in objects").local[r.idx as usize]
    }

    fn variant(&self, ent: u32, idx: u32) -> &Var {
        match &self.ents[ent as usize].kind {
            K::Alternate { variants } => &variants[idx as usize],
            K::Object(Obj {
                branches: Some(b), ..
            }) => &b.variants[idx as usize],
            _ => unreachable!("variants live in unions and alternates"),
        }
    }

    /// QEMU's `QAPISchemaMember.describe(info)`.
    fn describe(&self, d: Desc, info: Option<InfoId>) -> String {
        let (mut role, name, defined_in): (String, &str, &str) = match d {
            Desc::Member(r) => (
                "member".into(),
                &self.mem(r).name,
                &self.ents[r.ent as usize].name,
            ),
            Desc::Branch { ent, idx } => {
                let v = self.variant(ent, idx);
                (
                    "branch".into(),
                    &v.name,
                    &self.ents[v.defined_in as usize].name,
                )
            }
            Desc::Value { ent, idx } => {
                let e = &self.ents[ent as usize];
                let K::Enum { values, .. } = &e.kind else {
                    unreachable!("values live in enums")
                };
                ("value".into(), &values[idx as usize].name, &e.name)
            }
            Desc::DefFeature { ent, idx } => {
                let e = &self.ents[ent as usize];
                ("feature".into(), &e.features[idx as usize].name, &e.name)
            }
            Desc::MemberFeature { m, idx } => {
                let mem = self.mem(m);
                (
                    "feature".into(),
                    &mem.features[idx as usize].name,
                    &mem.name,
                )
            }
        };
        let mut meta = "type";
        let mut defined_in = defined_in;
        if let Some(rest) = defined_in.strip_prefix("q_obj_") {
            if let Some(r) = rest.strip_suffix("-arg") {
                role = "parameter".into();
                meta = "command";
                defined_in = r;
            } else if let Some(r) = rest.strip_suffix("-base") {
                role = format!("base {role}");
                defined_in = r;
            } else {
                defined_in = rest;
            }
        }
        let defn_name = info
            .and_then(|i| self.infos.get(i).defn.as_ref())
            .map(|(_, n)| n.as_str());
        if Some(defined_in) != defn_name {
            format!("{role} '{name}' of {meta} '{defined_in}'")
        } else {
            format!("{role} '{name}'")
        }
    }

    fn resolve(&self, name: &str, info: Option<InfoId>, what: impl FnOnce() -> String) -> Res<u32> {
        self.lookup_type(name)
            .ok_or_else(|| self.err(info, format!("{} uses unknown type '{name}'", what())))
    }

    fn clash(
        &self,
        info: Option<InfoId>,
        seen: &mut HashMap<u32, Desc>,
        cname: u32,
        d: Desc,
    ) -> Res<()> {
        if let Some(prev) = seen.get(&cname) {
            return Err(self.err(
                info,
                format!(
                    "{} collides with {}",
                    self.describe(d, info),
                    self.describe(*prev, info)
                ),
            ));
        }
        seen.insert(cname, d);
        Ok(())
    }

    // ----- checks --------------------------------------------------------------

    /// `QAPISchemaDefinition.check` (+ `QAPISchemaType.check` for types).
    fn check_definition(&self, id: u32, is_type: bool) -> Res<()> {
        let e = &self.ents[id as usize];
        let mut seen = HashMap::default();
        for (i, f) in e.features.iter().enumerate() {
            self.clash(
                e.info,
                &mut seen,
                f.cname,
                Desc::DefFeature {
                    ent: id,
                    idx: i as u32,
                },
            )?;
        }
        if is_type {
            if let Some(f) = e
                .features
                .iter()
                .find(|f| f.name == "deprecated" || f.name == "unstable")
            {
                return Err(self.err(
                    e.info,
                    format!("feature '{}' is not supported for types", f.name),
                ));
            }
        }
        Ok(())
    }

    fn check_entity(&mut self, id: u32) -> Res<()> {
        match &self.ents[id as usize].kind {
            K::Builtin(_) | K::Include => Ok(()),
            K::Enum { .. } => self.check_enum(id),
            K::Object(_) => self.check_object(id),
            K::Alternate { .. } => self.check_alternate(id),
            K::Array { .. } => self.check_array(id),
            K::Command { .. } => self.check_command(id),
            K::Event { .. } => self.check_event(id),
        }
    }

    fn check_enum(&mut self, id: u32) -> Res<()> {
        self.check_definition(id, true)?;
        let e = &self.ents[id as usize];
        let K::Enum { values, .. } = &e.kind else {
            return Ok(());
        };
        let mut seen = HashMap::with_capacity_and_hasher(values.len(), Default::default());
        for (i, v) in values.iter().enumerate() {
            self.clash(
                e.info,
                &mut seen,
                v.cname,
                Desc::Value {
                    ent: id,
                    idx: i as u32,
                },
            )?;
        }
        Ok(())
    }

    fn check_array(&mut self, id: u32) -> Res<()> {
        let e = &self.ents[id as usize];
        let K::Array { elem_name, .. } = &e.kind else {
            return Ok(());
        };
        let info = e.info;
        let meta = info
            .and_then(|i| self.infos.get(i).defn.as_ref())
            .map(|(m, _)| (*m).to_owned())
            .unwrap_or_default();
        let elem = self.resolve(elem_name, info, || meta.clone())?;
        if let K::Array { .. } = self.ents[elem as usize].kind {
            // QEMU fails an assertion here; report it properly instead.
            return Err(self.err(
                info,
                format!(
                    "{meta} uses array type '{}' as an array element; arrays of arrays are not supported",
                    self.ents[elem as usize].name
                ),
            ));
        }
        if let K::Array { elem: slot, .. } = &mut self.ents[id as usize].kind {
            *slot = elem;
        }
        Ok(())
    }

    fn check_object(&mut self, id: u32) -> Res<()> {
        if self.depth >= MAX_TYPE_NESTING {
            return Err(self.too_deep(id));
        }
        self.depth += 1;
        let r = self.check_object_inner(id);
        self.depth -= 1;
        r
    }

    fn too_deep(&self, id: u32) -> Box<Error> {
        let e = &self.ents[id as usize];
        self.err(
            e.info,
            format!(
                "base and branch types nest more than {MAX_TYPE_NESTING} deep at {}",
                self.describe_type(id)
            ),
        )
    }

    fn check_object_inner(&mut self, id: u32) -> Res<()> {
        let info = self.ents[id as usize].info;
        match self.obj(id).map(|o| o.state) {
            Some(State::Done) | None => return Ok(()),
            Some(State::Checking) => {
                return Err(self.err(
                    info,
                    format!("object {} contains itself", self.ents[id as usize].name),
                ))
            }
            Some(State::Unchecked) => {}
        }
        self.obj_mut(id).state = State::Checking;
        self.check_definition(id, true)?;

        // One map for all objects (taken, so that a base checked from here gets its
        // own): no allocation and rehashing per object.
        let mut seen = std::mem::take(&mut self.obj_seen);
        seen.clear();
        let mut members: Vec<MRef> = Vec::new();
        if let Some(base_name) = self.obj(id).and_then(|o| o.base_name.clone()) {
            let base = self.resolve(&base_name, info, || "'base'".to_string())?;
            let ok = matches!(self.obj(base), Some(o) if o.branches.is_none());
            if !ok {
                return Err(self.err(
                    info,
                    format!(
                        "'base' requires a struct type, {} isn't",
                        self.describe_type(base)
                    ),
                ));
            }
            self.obj_mut(id).base = Some(base);
            self.check_object(base)?;
            self.object_clash(base, info, &mut seen, 0)?;
            members.extend_from_slice(
                &self
                    .obj(base)
                    .map(|o| o.members.clone())
                    .unwrap_or_default(),
            );
        }
        let n = self.obj(id).map_or(0, |o| o.local.len());
        for i in 0..n {
            let r = MRef {
                ent: id,
                idx: i as u32,
            };
            let ty = {
                let m = self.mem(r);
                self.resolve(&m.type_name, info, || self.describe(Desc::Member(r), info))?
            };
            self.obj_mut(id).local[i].ty = ty;
            let m = self.mem(r);
            let mut fseen = HashMap::default();
            for (fi, f) in m.features.iter().enumerate() {
                self.clash(
                    info,
                    &mut fseen,
                    f.cname,
                    Desc::MemberFeature {
                        m: r,
                        idx: fi as u32,
                    },
                )?;
            }
            self.clash(info, &mut seen, m.cname, Desc::Member(r))?;
            members.push(r);
        }
        self.obj_mut(id).members = members;
        if self.obj(id).is_some_and(|o| o.branches.is_some()) {
            self.check_branches(id, info, &seen)?;
            self.branches_clash(id, info, &seen, 0)?;
        }
        // Clearing costs the capacity: keep no huge map for the objects to come.
        if seen.capacity() <= 256 {
            self.obj_seen = seen;
        }
        self.obj_mut(id).state = State::Done;
        Ok(())
    }

    /// QEMU's `QAPISchemaObjectType.check_clash`.
    fn object_clash(
        &self,
        id: u32,
        info: Option<InfoId>,
        seen: &mut HashMap<u32, Desc>,
        depth: u32,
    ) -> Res<()> {
        let Some(o) = self.obj(id) else {
            return Ok(());
        };
        if depth >= MAX_TYPE_NESTING {
            return Err(self.err(
                info,
                format!(
                    "base and branch types nest more than {MAX_TYPE_NESTING} deep at {}",
                    self.describe_type(id)
                ),
            ));
        }
        for &r in &o.members {
            self.clash(info, seen, self.mem(r).cname, Desc::Member(r))?;
        }
        if o.branches.is_some() {
            self.branches_clash(id, info, seen, depth + 1)?;
        }
        Ok(())
    }

    fn branches_clash(
        &self,
        id: u32,
        info: Option<InfoId>,
        seen: &HashMap<u32, Desc>,
        depth: u32,
    ) -> Res<()> {
        let Some(Branches { variants, .. }) = self.obj(id).and_then(|o| o.branches.as_ref()) else {
            return Ok(());
        };
        for v in variants {
            let mut s = seen.clone();
            self.object_clash(v.ty, info, &mut s, depth)?;
        }
        Ok(())
    }

    /// QEMU's `QAPISchemaBranches.check`.
    fn check_branches(
        &mut self,
        id: u32,
        info: Option<InfoId>,
        seen: &HashMap<u32, Desc>,
    ) -> Res<()> {
        let Some(b) = self.obj(id).and_then(|o| o.branches.as_ref()) else {
            return Ok(());
        };
        let tag_name = b.tag_name.as_str();
        let tag = match seen.get(
            &self
                .cnames
                .get(&expr::c_name(tag_name))
                .unwrap_or(UNRESOLVED),
        ) {
            Some(Desc::Member(r)) if self.mem(*r).name == tag_name => *r,
            _ => {
                return Err(self.err(
                    info,
                    format!("discriminator '{tag_name}' is not a member of 'base'"),
                ))
            }
        };
        let owner = &self.ents[tag.ent as usize].name;
        let base = if owner.starts_with("q_") {
            "'base'".to_string()
        } else {
            format!("base type '{owner}'")
        };
        let tm = self.mem(tag);
        let enum_id = tm.ty;
        let Some(K::Enum { values, .. }) = self.ents.get(enum_id as usize).map(|e| &e.kind) else {
            return Err(self.err(
                info,
                format!("discriminator member '{tag_name}' of {base} must be of enum type"),
            ));
        };
        if tm.optional {
            return Err(self.err(
                info,
                format!("discriminator member '{tag_name}' of {base} must not be optional"),
            ));
        }
        if tm.ifcond.is_some() {
            return Err(self.err(
                info,
                format!("discriminator member '{tag_name}' of {base} must not be conditional"),
            ));
        }
        let explicit: HashSet<&str> = b.variants.iter().map(|v| v.name.as_str()).collect();
        let implicit: Vec<(String, Option<IfCond>)> = values
            .iter()
            .filter(|v| !explicit.contains(v.name.as_str()))
            .map(|v| (v.name.clone(), v.ifcond.clone()))
            .collect();
        let value_names: HashSet<&str> = values.iter().map(|v| v.name.as_str()).collect();
        let bad_branch = b
            .variants
            .iter()
            .map(|v| v.name.as_str())
            .find(|n| !value_names.contains(n))
            .map(str::to_string);
        let enum_desc = self.describe_type(enum_id);
        let q_empty = self.q_empty;
        let tag_owner = tag.ent;
        let mut new_vars = Vec::with_capacity(implicit.len());
        for (name, ifcond) in implicit {
            new_vars.push(Var {
                cname: self.cname(&name),
                name,
                type_name: Text::Borrowed("q_empty"),
                ty: q_empty,
                ifcond,
                implicit: true,
                defined_in: tag_owner,
            });
        }
        {
            let b = self.obj_mut(id).branches.as_mut().expect("union");
            b.tag = Some(tag);
            b.variants.extend(new_vars);
            if b.variants.is_empty() {
                return Err(self.err(info, "union has no branches"));
            }
        }
        let n = self
            .obj(id)
            .and_then(|o| o.branches.as_ref())
            .map_or(0, |b| b.variants.len());
        for i in 0..n {
            let (ty, name) = {
                let v = self.variant(id, i as u32);
                let ty = self.resolve(&v.type_name, info, || {
                    self.describe(
                        Desc::Branch {
                            ent: id,
                            idx: i as u32,
                        },
                        info,
                    )
                })?;
                (ty, v.name.clone())
            };
            self.obj_mut(id).branches.as_mut().expect("union").variants[i].ty = ty;
            // The first branch whose name is no enum value is reported when reached.
            if bad_branch.as_deref() == Some(name.as_str()) {
                return Err(self.err(
                    info,
                    format!("branch '{name}' is not a value of {enum_desc}"),
                ));
            }
            if self.obj(ty).is_none() {
                return Err(self.err(
                    info,
                    format!(
                        "{} cannot use {}",
                        self.describe(
                            Desc::Branch {
                                ent: id,
                                idx: i as u32
                            },
                            info
                        ),
                        self.describe_type(ty)
                    ),
                ));
            }
            self.check_object(ty)?;
        }
        Ok(())
    }

    fn check_alternate(&mut self, id: u32) -> Res<()> {
        self.check_definition(id, true)?;
        let info = self.ents[id as usize].info;
        // The implicit tag member 'type' of type 'QType'.
        self.resolve("QType", info, || "member 'type'".to_string())?;
        let n = match &self.ents[id as usize].kind {
            K::Alternate { variants } => variants.len(),
            _ => 0,
        };
        for i in 0..n {
            let ty = {
                let v = self.variant(id, i as u32);
                self.resolve(&v.type_name, info, || {
                    self.describe(
                        Desc::Branch {
                            ent: id,
                            idx: i as u32,
                        },
                        info,
                    )
                })?
            };
            if let K::Alternate { variants } = &mut self.ents[id as usize].kind {
                variants[i].ty = ty;
            }
        }
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        enum QT {
            Null,
            Str,
            Num,
            Bool,
            List,
            Dict,
        }
        let mut seen = HashMap::default();
        let mut types_seen: HashMap<QT, u32> = HashMap::default();
        for i in 0..n {
            let d = Desc::Branch {
                ent: id,
                idx: i as u32,
            };
            let v = self.variant(id, i as u32);
            self.clash(info, &mut seen, v.cname, d)?;
            let t = &self.ents[v.ty as usize];
            let qtype = match &t.kind {
                K::Builtin(b) => match b.json_type() {
                    "string" => Some(QT::Str),
                    "number" | "int" => Some(QT::Num),
                    "boolean" => Some(QT::Bool),
                    "null" => Some(QT::Null),
                    _ => None,
                },
                K::Enum { .. } => Some(QT::Str),
                K::Array { .. } => Some(QT::List),
                K::Object(_) => Some(QT::Dict),
                _ => None,
            };
            let Some(qtype) = qtype else {
                return Err(self.err(
                    info,
                    format!(
                        "{} cannot use {}",
                        self.describe(d, info),
                        self.describe_type(v.ty)
                    ),
                ));
            };
            let mut conflicting = vec![qtype];
            if qtype == QT::Str {
                if let K::Enum { values, .. } = &t.kind {
                    for m in values {
                        if (m.name == "on" || m.name == "off") && !conflicting.contains(&QT::Bool) {
                            conflicting.push(QT::Bool);
                        }
                        if m.name.starts_with([
                            '-', '+', '.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
                        ]) && !conflicting.contains(&QT::Num)
                        {
                            conflicting.push(QT::Num);
                        }
                    }
                } else {
                    conflicting.push(QT::Num);
                    conflicting.push(QT::Bool);
                }
            }
            for qt in conflicting {
                if let Some(&prev) = types_seen.get(&qt) {
                    return Err(self.err(
                        info,
                        format!(
                            "{} can't be distinguished from '{}'",
                            self.describe(d, info),
                            self.variant(id, prev).name
                        ),
                    ));
                }
                types_seen.insert(qt, i as u32);
            }
        }
        Ok(())
    }

    /// The shared part of command and event checks: the argument type.
    fn check_arg_type(
        &mut self,
        id: u32,
        arg_name: Option<&str>,
        boxed: bool,
        meta: &str,
    ) -> Res<Option<u32>> {
        let info = self.ents[id as usize].info;
        let Some(arg_name) = arg_name else {
            return Ok(None);
        };
        let arg = self.resolve(arg_name, info, || format!("{meta}'s 'data'"))?;
        let Some(o) = self.obj(arg) else {
            return Err(self.err(
                info,
                format!("{meta}'s 'data' cannot take {}", self.describe_type(arg)),
            ));
        };
        if o.branches.is_some() && !boxed {
            return Err(self.err(
                info,
                format!(
                    "{meta}'s 'data' can take {} only with 'boxed': true",
                    self.describe_type(arg)
                ),
            ));
        }
        self.check_object(arg)?;
        let conditional = self
            .obj(arg)
            .is_some_and(|o| o.members.iter().any(|&r| self.mem(r).ifcond.is_some()));
        if conditional && !boxed && self.rules.conditional_args_need_boxed {
            return Err(self.err(
                info,
                format!("conditional {meta} arguments require 'boxed': true"),
            ));
        }
        Ok(Some(arg))
    }

    fn check_command(&mut self, id: u32) -> Res<()> {
        self.check_definition(id, false)?;
        let e = &self.ents[id as usize];
        let info = e.info;
        let K::Command {
            arg_name,
            ret_name,
            boxed,
            ..
        } = &e.kind
        else {
            return Ok(());
        };
        let boxed = *boxed;
        let arg_name = arg_name.clone();
        let ret_name = ret_name.clone();
        let arg = self.check_arg_type(id, arg_name.as_deref(), boxed, "command")?;
        let mut ret = None;
        if let Some(ret_name) = &ret_name {
            let r = self.resolve(ret_name, info, || "command's 'returns'".to_string())?;
            let name = &self.ents[id as usize].name;
            if !self
                .pragma
                .command_returns_exceptions
                .contains(name.as_str())
            {
                let mut t = r;
                if let K::Array { elem, .. } = self.ents[r as usize].kind {
                    t = elem;
                }
                if t == UNRESOLVED || self.obj(t).is_none() {
                    return Err(self.err(
                        info,
                        format!("command's 'returns' cannot take {}", self.describe_type(r)),
                    ));
                }
            }
            ret = Some(r);
        }
        if let K::Command {
            arg: a, ret: rt, ..
        } = &mut self.ents[id as usize].kind
        {
            *a = arg;
            *rt = ret;
        }
        Ok(())
    }

    fn check_event(&mut self, id: u32) -> Res<()> {
        self.check_definition(id, false)?;
        let K::Event {
            arg_name, boxed, ..
        } = &self.ents[id as usize].kind
        else {
            return Ok(());
        };
        let boxed = *boxed;
        let arg_name = arg_name.clone();
        let arg = self.check_arg_type(id, arg_name.as_deref(), boxed, "event")?;
        if let K::Event { arg: a, .. } = &mut self.ents[id as usize].kind {
            *a = arg;
        }
        Ok(())
    }

    // ----- documentation -------------------------------------------------------
    /// QEMU's `QAPIDoc.check`: every description must belong to something.
    fn check_docs(&mut self) -> Res<()> {
        for d in &self.docs {
            for (list, what) in [(&d.args, "member"), (&d.features, self.rules.feature_word)] {
                let mut bogus: Vec<&ArgSec> = list.iter().filter(|a| !a.connected).collect();
                if self.rules.legacy_docs {
                    // QEMU 7.2 read `@name :` (a space before the colon) as plain
                    // text, not as a description; tolerate what it never saw.
                    bogus.retain(|a| {
                        if !a.name.contains(char::is_whitespace) {
                            return true;
                        }
                        let msg = format!("documented {what} '{}' does not exist", a.name);
                        self.warnings.push(Warning(self.infos.error(a.info, msg)));
                        false
                    });
                }
                if let Some(first) = bogus.first() {
                    let names = bogus
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join("', '");
                    let (s, verb) = if bogus.len() > 1 {
                        ("s", "do")
                    } else {
                        ("", "does")
                    };
                    let at = if self.rules.doc_v5_2 {
                        d.info
                    } else {
                        first.info
                    };
                    return Err(Box::new(self.infos.error(
                        at,
                        format!("documented {what}{s} '{names}' {verb} not exist"),
                    )));
                }
            }
        }
        Ok(())
    }

    fn check(&mut self) -> Res<()> {
        for id in 0..self.ents.len() as u32 {
            self.check_entity(id)?;
            let mut cx = DocCtx {
                docs: &mut self.docs,
                warnings: &mut self.warnings,
                pragma: self.pragma,
                infos: self.infos,
                rules: self.rules,
            };
            connect_doc(&self.ents, &mut cx, id, None)?;
        }
        for id in 0..self.ents.len() {
            let info = match &self.ents[id].kind {
                K::Array { elem, .. } => self.ents[*elem as usize].info,
                _ => self.ents[id].info,
            };
            self.ents[id].module = self.module_of(info);
        }
        self.check_docs()?;
        if let Some(info) = self.feature_overflow {
            return Err(Box::new(self.infos.error(
                info,
                format!("Maximum of {MAX_FEATURES} schema features is permitted"),
            )));
        }
        Ok(())
    }

    // ----- the public model ----------------------------------------------------

    fn finish(self, raw_docs: Vec<ParsedDoc>) -> Schema {
        let infos = self.infos;
        let location = |i: Option<InfoId>| i.map(|i| infos.location(i));
        let features = |fs: Vec<Feat>| -> Vec<model::Feature> {
            fs.into_iter()
                .map(|f| model::Feature {
                    name: f.name,
                    ifcond: f.ifcond,
                })
                .collect()
        };
        let variant = |v: Var| model::Variant {
            name: v.name,
            ty: model::TypeId(v.ty),
            ifcond: v.ifcond,
            implicit: v.implicit,
        };
        // Arrays report their element's condition.
        let elem_ifconds: Vec<Option<IfCond>> = self
            .ents
            .iter()
            .map(|e| match e.kind {
                K::Array { elem, .. } if elem != UNRESOLVED => {
                    self.ents[elem as usize].ifcond.clone()
                }
                _ => None,
            })
            .collect();
        let mut by_name: Vec<model::TypeId> =
            self.by_name.ids.into_iter().map(model::TypeId).collect();
        let mut entities = Vec::with_capacity(self.ents.len());
        for (i, e) in self.ents.into_iter().enumerate() {
            let implicit =
                e.info.is_none() || e.name.starts_with("q_") || matches!(e.kind, K::Array { .. });
            let mut ifcond = e.ifcond;
            let kind = match e.kind {
                K::Builtin(b) => model::EntityKind::Builtin(b),
                K::Enum { values, prefix } => model::EntityKind::Enum(model::EnumType {
                    members: values
                        .into_iter()
                        .map(|v| model::EnumMember {
                            name: v.name,
                            ifcond: v.ifcond,
                            features: features(v.features),
                        })
                        .collect(),
                    prefix,
                }),
                K::Object(o) => model::EntityKind::Object(model::ObjectType {
                    base: o.base.map(model::TypeId),
                    local_members: o
                        .local
                        .into_iter()
                        .map(|m| model::Member {
                            name: m.name,
                            ty: model::TypeId(m.ty),
                            optional: m.optional,
                            ifcond: m.ifcond,
                            features: features(m.features),
                        })
                        .collect(),
                    variants: o.branches.map(|b| model::Variants {
                        tag_member: b.tag_name,
                        variants: b.variants.into_iter().map(variant).collect(),
                    }),
                }),
                K::Alternate { variants } => model::EntityKind::Alternate(model::AlternateType {
                    variants: variants.into_iter().map(variant).collect(),
                }),
                K::Array { elem, .. } => {
                    ifcond = elem_ifconds[i].clone();
                    model::EntityKind::Array(model::ArrayType {
                        element: model::TypeId(elem),
                    })
                }
                K::Command {
                    arg,
                    ret,
                    boxed,
                    gen,
                    success_response,
                    allow_oob,
                    allow_preconfig,
                    coroutine,
                    ..
                } => model::EntityKind::Command(model::Command {
                    arg_type: arg.map(model::TypeId),
                    ret_type: ret.map(model::TypeId),
                    boxed,
                    gen,
                    success_response,
                    allow_oob,
                    allow_preconfig,
                    coroutine,
                }),
                K::Event { arg, boxed, .. } => model::EntityKind::Event(model::Event {
                    arg_type: arg.map(model::TypeId),
                    boxed,
                }),
                K::Include => model::EntityKind::Include,
            };
            entities.push(model::Entity {
                name: e.name,
                location: location(e.info),
                module: model::ModuleId(e.module),
                ifcond,
                features: features(e.features),
                doc: e.model_doc.map(|d| model::DocId(d as u32)),
                implicit,
                kind,
            });
        }
        let docs = raw_docs
            .into_iter()
            .zip(self.docs)
            .map(|(raw, st)| convert_doc(infos, raw, st))
            .collect();
        // Names are unique: the order is total, so an unstable sort is deterministic.
        by_name.sort_unstable_by(|a, b| {
            entities[a.0 as usize]
                .name
                .cmp(&entities[b.0 as usize].name)
        });
        Schema {
            entities,
            modules: self
                .modules
                .into_iter()
                .map(|name| model::Module { name })
                .collect(),
            docs,
            pragma: Default::default(),
            files: Vec::new(),
            warnings: self.warnings,
            by_name,
        }
    }
}

/// What doc connection mutates, borrowed apart from the entities it reads.
struct DocCtx<'a> {
    docs: &'a mut [DocState],
    warnings: &'a mut Vec<Warning>,
    pragma: &'a PragmaSets<'a>,
    infos: &'a Infos,
    rules: Rules,
}

impl DocCtx<'_> {
    /// QEMU's `QAPIDoc.connect_member`.
    fn connect_member(
        &mut self,
        doc: usize,
        name: &str,
        role: &str,
        info: Option<InfoId>,
    ) -> Res<()> {
        let d = &mut self.docs[doc];
        if let Some(a) = d.args.iter_mut().find(|a| a.name == name) {
            a.connected = true;
            return Ok(());
        }
        let excepted = d
            .symbol
            .as_deref()
            .is_some_and(|s| self.pragma.documentation_exceptions.contains(s));
        if !excepted {
            let e = self.infos.error(
                info.unwrap_or(InfoId(0)),
                format!("{role} '{name}' lacks documentation"),
            );
            // QEMU 7.2 did not require member documentation.
            if !self.rules.legacy_docs {
                return Err(Box::new(e));
            }
            self.warnings.push(Warning(e));
        }
        d.args.push(ArgSec {
            name: name.to_string(),
            info: d.info,
            connected: true,
        });
        Ok(())
    }

    /// QEMU's `QAPIDoc.connect_feature`.
    fn connect_feature(&mut self, doc: usize, name: &str, info: Option<InfoId>) -> Res<()> {
        let d = &mut self.docs[doc];
        if let Some(a) = d.features.iter_mut().find(|a| a.name == name) {
            a.connected = true;
            return Ok(());
        }
        Err(Box::new(self.infos.error(
            info.unwrap_or(InfoId(0)),
            format!("feature '{name}' lacks documentation"),
        )))
    }

    fn connect_features(&mut self, doc: usize, fs: &[Feat], info: Option<InfoId>) -> Res<()> {
        for f in fs {
            self.connect_feature(doc, &f.name, info)?;
        }
        Ok(())
    }
}

/// QEMU's `connect_doc(doc)` for entity `id`; `doc` overrides the entity's own.
fn connect_doc(ents: &[Ent], cx: &mut DocCtx<'_>, id: u32, doc: Option<usize>) -> Res<()> {
    let e = &ents[id as usize];
    let Some(doc) = doc.or(e.doc) else {
        return Ok(());
    };
    let info = e.info;
    cx.connect_features(doc, &e.features, info)?;
    let implicit = |t: u32| t != id && t != UNRESOLVED && ents[t as usize].name.starts_with("q_");
    match &e.kind {
        K::Enum { values, .. } => {
            for v in values {
                cx.connect_member(doc, &v.name, "value", info)?;
                cx.connect_features(doc, &v.features, info)?;
            }
        }
        K::Object(o) => {
            if let Some(b) = o.base.filter(|&b| implicit(b)) {
                connect_doc(ents, cx, b, Some(doc))?;
            }
            for m in &o.local {
                cx.connect_member(doc, &m.name, "member", info)?;
                cx.connect_features(doc, &m.features, info)?;
            }
        }
        K::Alternate { variants } => {
            for v in variants {
                cx.connect_member(doc, &v.name, "branch", info)?;
            }
        }
        K::Command { arg: Some(a), .. } | K::Event { arg: Some(a), .. } if implicit(*a) => {
            connect_doc(ents, cx, *a, Some(doc))?;
        }
        _ => {}
    }
    Ok(())
}

/// The public doc block: raw sections in text order, descriptions named again, and
/// the stubs for excepted members after the written descriptions.
fn convert_doc(infos: &Infos, raw: ParsedDoc, st: DocState) -> model::Doc {
    let line = |i: InfoId| infos.get(i).line;
    let mut args = Vec::with_capacity(st.args.len());
    let mut features = Vec::with_capacity(st.features.len());
    // Everything but the body and the descriptions: sized once.
    let mut sections = Vec::with_capacity(
        raw.sections
            .len()
            .saturating_sub(1 + st.args.len() + st.features.len()),
    );
    let mut body = None;
    let mut arg_names = st.args.into_iter();
    let mut feature_names = st.features.into_iter();
    for s in raw.sections {
        let (target, name) = match s.kind {
            SectionKind::Member => (&mut args, arg_names.next().map(|a| a.name)),
            SectionKind::Feature => (&mut features, feature_names.next().map(|a| a.name)),
            _ if body.is_none() => {
                body = Some(model::DocSection {
                    kind: s.kind,
                    name: None,
                    text: s.text,
                    line: line(s.info),
                });
                continue;
            }
            _ => (&mut sections, None),
        };
        target.push(model::DocSection {
            kind: s.kind,
            name,
            text: s.text,
            line: line(s.info),
        });
    }
    for stub in arg_names {
        args.push(model::DocSection {
            kind: SectionKind::Member,
            name: Some(stub.name),
            text: String::new(),
            line: line(stub.info),
        });
    }
    model::Doc {
        location: Some(infos.location(raw.info)),
        symbol: st.symbol,
        body: body.unwrap_or_default(),
        args,
        features,
        sections,
    }
}

mod v5_2;

#[cfg(test)]
mod tests;
