//! The schema model build (QEMU's `schema.py`), in QEMU's phases.
//!
//! The builder works on its own model (this file: [`Entity`], [`Kind`], [`Member`],
//! [`Branch`], ...), which holds references as names until they are resolved and keeps
//! what the checks need; [`build`] runs the phases, one module each:
//! - `index`: names to entities, interned C names, modules;
//! - `definitions`: expressions to entities in creation order, implicit types;
//! - `checks`: name resolution and the semantic checks;
//! - `docs`: doc blocks connected to definitions, and their checks;
//! - `convert`: the working model into the public [`Schema`].

use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::ast::{InfoId, Infos, ParseOutput, ParsedDoc, Text};
use crate::diagnostic::{Error, Warning};
use crate::expr::{
    self, BranchDef, Data, DefBody, Definition, EnumValueDef, ExprKind, FeatureDef, MemberDef,
    PragmaSets, Res, TypeRef,
};
use crate::model::{self, Builtin, CommandFlags, IfCond, SectionKind};
use crate::release::Rules;
use crate::{Options, Schema};

use docs::DocState;
use index::{dirname, CNames, HashMap, HashSet, NameIndex};

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
struct Feature {
    name: String,
    cname: u32,
    ifcond: Option<IfCond>,
}

/// An object type member.
struct Member {
    name: String,
    cname: u32,
    type_name: Text,
    ty: u32,
    optional: bool,
    ifcond: Option<IfCond>,
    features: Vec<Feature>,
}

/// A union branch or alternate alternative.
struct Branch {
    name: String,
    cname: u32,
    type_name: Text,
    ty: u32,
    ifcond: Option<IfCond>,
    implicit: bool,
    /// The entity that "defines" it (for messages).
    defined_in: u32,
}

struct EnumValue {
    name: String,
    cname: u32,
    ifcond: Option<IfCond>,
    features: Vec<Feature>,
}

/// A reference to a local member: owning object and index.
#[derive(Clone, Copy, PartialEq, Eq)]
struct MemberRef {
    ent: u32,
    idx: u32,
}

struct Branches {
    tag_name: String,
    tag: Option<MemberRef>,
    variants: Vec<Branch>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Unchecked,
    Checking,
    Done,
}

struct Object {
    base_name: Option<String>,
    base: Option<u32>,
    local: Vec<Member>,
    branches: Option<Branches>,
    /// All members, base members first; valid once checked.
    members: Vec<MemberRef>,
    state: State,
}

enum Kind {
    Builtin(Builtin),
    Enum {
        values: Vec<EnumValue>,
        prefix: Option<String>,
    },
    Object(Object),
    Alternate {
        variants: Vec<Branch>,
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
        flags: CommandFlags,
    },
    Event {
        arg_name: Option<String>,
        arg: Option<u32>,
        boxed: bool,
    },
    Include,
}

struct Entity {
    name: String,
    info: Option<InfoId>,
    /// The definition's own doc block (QEMU's `doc`).
    doc: Option<usize>,
    /// The doc block the model reports (implicit `q_obj_*` types get their definition's).
    model_doc: Option<usize>,
    ifcond: Option<IfCond>,
    features: Vec<Feature>,
    kind: Kind,
    module: u32,
}

/// Something that can collide with something else (QEMU's `QAPISchemaMember`).
#[derive(Clone, Copy)]
enum SchemaMember {
    Member(MemberRef),
    Branch { ent: u32, idx: u32 },
    Value { ent: u32, idx: u32 },
    DefFeature { ent: u32, idx: u32 },
    MemberFeature { m: MemberRef, idx: u32 },
}

struct Builder<'a> {
    infos: &'a Infos,
    pragma: &'a PragmaSets<'a>,
    rules: Rules,
    entities: Vec<Entity>,
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
    obj_seen: HashMap<u32, SchemaMember>,
    /// Scratch buffer for [`Builder::cname`].
    cname_buf: String,
    docs: Vec<DocState>,
    warnings: Vec<Warning>,
    q_empty: u32,
    /// Current recursion depth of object checks.
    depth: u32,
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
            entities: Vec::with_capacity(4096),
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
}

mod checks;
mod convert;
mod definitions;
mod docs;
mod index;
mod v5_2;

#[cfg(test)]
mod tests;
