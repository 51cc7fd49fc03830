//! The checked schema model: QEMU's `schema.py` entities, QAPI-faithful (QAPI's names and concepts only).
//!
//! Every entity lives in [`Schema::entities`] in QEMU's creation order (predefined
//! builtins first); references between entities are [`TypeId`]s into that list.

use crate::diagnostic::{Location, Warning};

/// Index of an entity in [`Schema::entities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeId(pub u32);

/// Index of a module in [`Schema::modules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleId(pub u32);

/// Index of a documentation block in [`Schema::docs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocId(pub u32);

/// A whole checked schema: the main file and everything it includes.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Every entity in creation order, predefined ones first.
    pub entities: Vec<Entity>,
    /// Modules in creation order: `./builtin`, the main file, then included files.
    pub modules: Vec<Module>,
    /// Every documentation block in source order (included files at their inclusion point).
    pub docs: Vec<Doc>,
    /// The pragmas in effect (the last value of each key wins).
    pub pragma: Pragma,
    /// Every file read, main file first, as opened (for `cargo:rerun-if-changed`).
    pub files: Vec<std::path::PathBuf>,
    /// Warnings from [`crate::Compat::Legacy`]: what QEMU 10.0 would reject; empty otherwise.
    pub warnings: Vec<Warning>,
    /// The named entities sorted by name, for [`Schema::lookup`] (includes are not
    /// named entities): no second copy of the names.
    pub(crate) by_name: Vec<TypeId>,
}

/// A module: one schema file, or `./builtin` for the predefined entities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// `./builtin`, or the path relative to the main file's folder, normalised.
    pub name: String,
}

/// The pragmas of a schema (`{ 'pragma': { ... } }`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pragma {
    /// `doc-required`.
    pub doc_required: bool,
    /// `command-name-exceptions`.
    pub command_name_exceptions: Vec<String>,
    /// `command-returns-exceptions`.
    pub command_returns_exceptions: Vec<String>,
    /// `documentation-exceptions`.
    pub documentation_exceptions: Vec<String>,
    /// `member-name-exceptions`.
    pub member_name_exceptions: Vec<String>,
}

/// A definition or directive of the schema.
#[derive(Debug, Clone)]
pub struct Entity {
    /// The entity's name as written (`q_obj_foo-arg` for implicit ones, the module name for includes).
    pub name: String,
    /// Where it was defined; `None` for predefined entities.
    pub location: Option<Location>,
    /// The module that owns it (arrays: their element type's module).
    pub module: ModuleId,
    /// Its `if` condition (implicit types inherit their definition's).
    pub ifcond: Option<IfCond>,
    /// Its features, in source order.
    pub features: Vec<Feature>,
    /// Its documentation block, if any. Implicit `q_obj_*` types carry the block of the
    /// definition that made them, so their members' descriptions can be found.
    pub doc: Option<DocId>,
    /// True for entities QAPI makes itself: builtins, `q_empty`, `QType`, arrays, `q_obj_*`.
    pub implicit: bool,
    /// What kind of entity it is.
    pub kind: EntityKind,
}

/// The kinds of entity.
#[derive(Debug, Clone)]
pub enum EntityKind {
    /// A predefined scalar type (`int`, `str`, ...).
    Builtin(Builtin),
    /// An enumeration.
    Enum(EnumType),
    /// A struct, a union, or an implicit object type (`q_obj_*`, `q_empty`).
    Object(ObjectType),
    /// An alternate.
    Alternate(AlternateType),
    /// An array `[T]`, named `TList`.
    Array(ArrayType),
    /// A command.
    Command(Command),
    /// An event.
    Event(Event),
    /// An `include` directive.
    Include,
}

/// The predefined scalar types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Builtin {
    /// `str`: a JSON string.
    Str,
    /// `number`: a JSON number (C `double`).
    Number,
    /// `int`: a signed 64-bit integer.
    Int,
    /// `int8`.
    Int8,
    /// `int16`.
    Int16,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `uint8`.
    Uint8,
    /// `uint16`.
    Uint16,
    /// `uint32`.
    Uint32,
    /// `uint64`.
    Uint64,
    /// `size`: an unsigned 64-bit byte count.
    Size,
    /// `bool`.
    Bool,
    /// `any`: any JSON value.
    Any,
    /// `null`: JSON `null`.
    Null,
}

impl Builtin {
    /// All builtins in QEMU's predefinition order.
    pub const ALL: [Builtin; 15] = [
        Builtin::Str,
        Builtin::Number,
        Builtin::Int,
        Builtin::Int8,
        Builtin::Int16,
        Builtin::Int32,
        Builtin::Int64,
        Builtin::Uint8,
        Builtin::Uint16,
        Builtin::Uint32,
        Builtin::Uint64,
        Builtin::Size,
        Builtin::Bool,
        Builtin::Any,
        Builtin::Null,
    ];

    /// The QAPI name (`int8`, `str`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Str => "str",
            Builtin::Number => "number",
            Builtin::Int => "int",
            Builtin::Int8 => "int8",
            Builtin::Int16 => "int16",
            Builtin::Int32 => "int32",
            Builtin::Int64 => "int64",
            Builtin::Uint8 => "uint8",
            Builtin::Uint16 => "uint16",
            Builtin::Uint32 => "uint32",
            Builtin::Uint64 => "uint64",
            Builtin::Size => "size",
            Builtin::Bool => "bool",
            Builtin::Any => "any",
            Builtin::Null => "null",
        }
    }

    /// The JSON type QEMU's introspection reports (`string`, `number`, `int`, `boolean`, `value`, `null`).
    pub fn json_type(self) -> &'static str {
        match self {
            Builtin::Str => "string",
            Builtin::Number => "number",
            Builtin::Bool => "boolean",
            Builtin::Any => "value",
            Builtin::Null => "null",
            _ => "int",
        }
    }
}

/// An `if` condition, normalised as QEMU does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IfCond {
    /// A configuration symbol, e.g. `CONFIG_KVM`.
    Name(String),
    /// `{ 'all': [...] }`: every operand holds.
    All(Vec<IfCond>),
    /// `{ 'any': [...] }`: some operand holds.
    Any(Vec<IfCond>),
    /// `{ 'not': ... }`.
    Not(Box<IfCond>),
}

/// A feature (`features: [...]`) of a definition, member or enum value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// Its name.
    pub name: String,
    /// Its `if` condition.
    pub ifcond: Option<IfCond>,
}

impl Feature {
    /// `deprecated`: the item will be removed; QEMU's `-compat` can hide or reject it.
    pub fn is_deprecated(&self) -> bool {
        self.name == "deprecated"
    }
    /// `unstable`: the item is experimental.
    pub fn is_unstable(&self) -> bool {
        self.name == "unstable"
    }
}

/// An enumeration.
#[derive(Debug, Clone)]
pub struct EnumType {
    /// Its values, in source order.
    pub members: Vec<EnumMember>,
    /// `prefix`, if given (only affects QEMU's C names).
    pub prefix: Option<String>,
}

/// One value of an enumeration.
#[derive(Debug, Clone)]
pub struct EnumMember {
    /// The value as it appears on the wire.
    pub name: String,
    /// Its `if` condition.
    pub ifcond: Option<IfCond>,
    /// Its features.
    pub features: Vec<Feature>,
}

/// A struct, union or implicit object type.
#[derive(Debug, Clone)]
pub struct ObjectType {
    /// The base type, if any (its members come first on the wire).
    pub base: Option<TypeId>,
    /// The members declared here (not the base's).
    pub local_members: Vec<Member>,
    /// For a union: its tag member and branches.
    pub variants: Option<Variants>,
}

/// A member of an object type (or a command/event argument).
#[derive(Debug, Clone)]
pub struct Member {
    /// Its wire name (without the `*` of optional members).
    pub name: String,
    /// Its type.
    pub ty: TypeId,
    /// Whether it may be absent.
    pub optional: bool,
    /// Its `if` condition.
    pub ifcond: Option<IfCond>,
    /// Its features.
    pub features: Vec<Feature>,
}

/// The branches of a union.
#[derive(Debug, Clone)]
pub struct Variants {
    /// Name of the discriminator member (one of the base's members).
    pub tag_member: String,
    /// Explicit branches in source order, then one implicit branch (type `q_empty`) per
    /// remaining enum value, in enum order.
    pub variants: Vec<Variant>,
}

/// A union branch or an alternate's alternative.
#[derive(Debug, Clone)]
pub struct Variant {
    /// For unions the discriminator value; for alternates the branch name.
    pub name: String,
    /// The branch's type.
    pub ty: TypeId,
    /// Its `if` condition.
    pub ifcond: Option<IfCond>,
    /// True for a union branch QAPI added because the enum value had none (type `q_empty`).
    pub implicit: bool,
}

/// An alternate: one of several types, told apart by JSON type.
#[derive(Debug, Clone)]
pub struct AlternateType {
    /// Its alternatives, in source order.
    pub variants: Vec<Variant>,
}

/// An array type.
#[derive(Debug, Clone)]
pub struct ArrayType {
    /// The element type.
    pub element: TypeId,
}

/// A command.
#[derive(Debug, Clone)]
pub struct Command {
    /// The arguments type (`q_obj_NAME-arg`, or a named type), `None` for no arguments.
    pub arg_type: Option<TypeId>,
    /// The return type, `None` when the command returns nothing (`{}` on the wire).
    pub ret_type: Option<TypeId>,
    /// Its flags.
    pub flags: CommandFlags,
}

/// A command's flags, defaults applied (the parse phase fills them, the model keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandFlags {
    /// `boxed: true`: the arguments are passed as one object.
    pub boxed: bool,
    /// `gen: false` clears this: QEMU writes the marshaller by hand.
    pub gen: bool,
    /// `success-response: false` clears this: no reply on success.
    pub success_response: bool,
    /// `allow-oob: true`.
    pub allow_oob: bool,
    /// `allow-preconfig: true`.
    pub allow_preconfig: bool,
    /// `coroutine: true`.
    pub coroutine: bool,
}

/// An event.
#[derive(Debug, Clone)]
pub struct Event {
    /// The data type (`q_obj_NAME-arg`, or a named type), `None` for no data.
    pub arg_type: Option<TypeId>,
    /// `boxed: true`.
    pub boxed: bool,
}

/// A documentation comment block (`## ... ##`).
#[derive(Debug, Clone, Default)]
pub struct Doc {
    /// Where the block starts (its `##` line).
    pub location: Option<Location>,
    /// The documented definition (`@NAME:` first line), `None` for free-form blocks.
    pub symbol: Option<String>,
    /// The body: the first untagged paragraphs.
    pub body: DocSection,
    /// Member descriptions (`@name: text`) in text order, then empty stubs for members
    /// excepted by `documentation-exceptions`.
    pub args: Vec<DocSection>,
    /// Feature descriptions under `Features:`, in text order.
    pub features: Vec<DocSection>,
    /// Tagged and later untagged sections, in text order.
    pub sections: Vec<DocSection>,
}

/// The kind of a documentation section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SectionKind {
    /// Untagged text.
    #[default]
    Plain,
    /// `@member: ...`.
    Member,
    /// A feature description under `Features:`.
    Feature,
    /// `Returns: ...`.
    Returns,
    /// `Errors: ...`.
    Errors,
    /// `Since: ...`.
    Since,
    /// `TODO: ...`.
    Todo,
    /// `Note:` / `Notes:` (accepted only under [`crate::Compat::Legacy`]).
    Note,
    /// `Example:` / `Examples:` (accepted only under [`crate::Compat::Legacy`]).
    Example,
}

impl SectionKind {
    /// The name QEMU prints for the kind (`str(QAPIDoc.Kind)`, `Kind.name.title()`), in
    /// messages and in the test dump.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SectionKind::Plain => "Plain",
            SectionKind::Member => "Member",
            SectionKind::Feature => "Feature",
            SectionKind::Returns => "Returns",
            SectionKind::Errors => "Errors",
            SectionKind::Since => "Since",
            SectionKind::Todo => "Todo",
            SectionKind::Note => "Note",
            SectionKind::Example => "Example",
        }
    }
}

/// One section of a documentation block.
#[derive(Debug, Clone, Default)]
pub struct DocSection {
    /// What kind of section.
    pub kind: SectionKind,
    /// The member or feature name, for [`SectionKind::Member`] and [`SectionKind::Feature`].
    pub name: Option<String>,
    /// The text, reStructuredText as written (see the `.out` dump's rules).
    pub text: String,
    /// Line of the section's first line.
    pub line: u32,
}

impl Schema {
    /// The entity with this id.
    pub fn entity(&self, id: TypeId) -> &Entity {
        &self.entities[id.0 as usize]
    }

    /// The entity named `name`, if any.
    pub fn lookup(&self, name: &str) -> Option<TypeId> {
        self.by_name
            .binary_search_by(|id| self.entities[id.0 as usize].name.as_str().cmp(name))
            .ok()
            .map(|i| self.by_name[i])
    }

    /// The documentation block with this id.
    pub fn doc(&self, id: DocId) -> &Doc {
        &self.docs[id.0 as usize]
    }

    /// Ids of all entities, in creation order.
    pub fn ids(&self) -> impl Iterator<Item = TypeId> + '_ {
        (0..self.entities.len() as u32).map(TypeId)
    }

    /// All commands, in definition order.
    pub fn commands(&self) -> impl Iterator<Item = &Entity> + '_ {
        self.entities
            .iter()
            .filter(|e| matches!(e.kind, EntityKind::Command(_)))
    }

    /// All events, in definition order.
    pub fn events(&self) -> impl Iterator<Item = &Entity> + '_ {
        self.entities
            .iter()
            .filter(|e| matches!(e.kind, EntityKind::Event(_)))
    }

    /// All members of an object type, base members first (recursively), then local ones.
    /// Empty for entities that are not object types.
    pub fn all_members(&self, id: TypeId) -> Vec<&Member> {
        let mut out = Vec::new();
        let mut chain = Vec::new();
        let mut cur = Some(id);
        // Bases are checked acyclic, but guard anyway: never loop on bad input.
        while let Some(c) = cur {
            if chain.contains(&c) || chain.len() > self.entities.len() {
                break;
            }
            chain.push(c);
            cur = match &self.entity(c).kind {
                EntityKind::Object(o) => o.base,
                _ => None,
            };
        }
        for c in chain.into_iter().rev() {
            if let EntityKind::Object(o) = &self.entity(c).kind {
                out.extend(o.local_members.iter());
            }
        }
        out
    }

    /// The documentation of `member` in the doc block of `owner`, if any.
    pub fn member_doc(&self, owner: TypeId, member: &str) -> Option<&DocSection> {
        let doc = self.doc(self.entity(owner).doc?);
        doc.args.iter().find(|s| s.name.as_deref() == Some(member))
    }

    /// The documentation of feature `feature` in the doc block of `owner`, if any.
    pub fn feature_doc(&self, owner: TypeId, feature: &str) -> Option<&DocSection> {
        let doc = self.doc(self.entity(owner).doc?);
        doc.features
            .iter()
            .find(|s| s.name.as_deref() == Some(feature))
    }
}
