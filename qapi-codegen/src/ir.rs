//! The Rust-shaped IR: every naming, layout and derive decision already made by
//! `lower`, so that `emit` only prints. Plain `Debug` data.
//!
//! Every `docs` field holds the final texts of the item's `#[doc]` attributes, one per
//! line: Markdown with a space before each non-empty line, as `///` would give them.

/// A whole generated file.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    /// The `// @generated ...` header line(s), without the comment markers.
    pub header: Vec<String>,
    /// Path of the crate providing `Command`, `EventSet`, `Timestamp` and `runtime`
    /// as `::`-separated segments: `["", "qapi_runtime"]` for `::qapi_runtime`.
    pub krate: Vec<String>,
    /// The `runtime` item the code asserts exists: `qapi-codegen`'s version, so that a
    /// `qapi-runtime` of another version fails to compile with its name in the error.
    pub version_check: String,
    /// The types, at the root of the generated module, in schema order.
    pub types: Vec<Item>,
    /// The module holding one type per command.
    pub commands: Module,
    /// The module holding one type per event.
    pub events: Module,
    /// The dynamic `AnyCommand` request enum.
    pub any_command: AnyCommand,
    /// The dynamic `AnyReturn` reply enum.
    pub any_return: AnyReturn,
    /// The `Event` enum.
    pub event_enum: EventEnum,
}

/// A submodule of the generated file.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// Its identifier.
    pub ident: String,
    /// Its doc lines.
    pub docs: Vec<String>,
    /// Its items.
    pub items: Vec<Item>,
}

/// What every item carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// The Rust identifier.
    pub ident: String,
    /// Doc lines: the texts of its `#[doc]` attributes, one per line (Markdown, each
    /// non-empty line after a space, as `///` gives them), all decided by `lower`.
    pub docs: Vec<String>,
    /// `Some(note)`: the item is `#[deprecated(note = ...)]`.
    pub deprecated: Option<String>,
    /// The item refers to deprecated items and needs `#[allow(deprecated)]` inside.
    pub allow_deprecated: bool,
}

/// Which traits a type derives besides `Debug, Clone, PartialEq`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Derives {
    /// `Eq` (no `f64` or `serde_json::Value` inside).
    pub eq: bool,
    /// `Hash` too (enums only).
    pub hash: bool,
    /// `Default` (all fields optional).
    pub default: bool,
    /// `Copy` (unit structs).
    pub copy: bool,
    /// Extra derive paths from the configuration, e.g. `PartialOrd`.
    pub extra: Vec<String>,
}

/// A generated item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A struct with named fields, a newtype or a unit struct.
    Struct(Struct),
    /// A QAPI enum.
    Enum(Enum),
    /// A flat union.
    Union(Union),
    /// An alternate.
    Alternate(Alternate),
}

/// A Rust type reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRef {
    /// A primitive.
    Prim(Prim),
    /// A generated type, by path segments (e.g. `["super", "StatusInfo"]`).
    Named(Vec<String>),
    /// `Vec<T>`.
    List(Box<TypeRef>),
    /// `Box<T>`, to break recursion.
    Boxed(Box<TypeRef>),
    /// `Versioned<T>` (at the given path): a value whose type changed within the
    /// supported QEMU range, decoded as `T` when it has this schema's shape.
    Versioned(Vec<String>, Box<TypeRef>),
}

/// Primitive types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prim {
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `f64`.
    F64,
    /// `bool`.
    Bool,
    /// `String`.
    String,
    /// `serde_json::Value`.
    Value,
    /// `()`, JSON `null`.
    Unit,
}

/// A struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    /// Name, docs, deprecation.
    pub meta: Meta,
    /// Derived traits.
    pub derives: Derives,
    /// Its shape.
    pub shape: StructShape,
    /// `Some` for a command type: its `Command` impl.
    pub command: Option<CommandImpl>,
    /// `Some` for an event type: its `TypedEvent` impl.
    pub event: Option<EventImpl>,
    /// `Some` for named fields: its `new` (none for newtypes and unit structs).
    pub constructor: Option<Constructor>,
}

/// `pub fn new(<required members in schema order>) -> Self`, every optional member `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Constructor {
    /// Doc lines.
    pub docs: Vec<String>,
    /// More parameters than clippy's `too_many_arguments` accepts (7): allow it on `new`.
    pub allow_too_many_arguments: bool,
    /// Every field in declaration order, with how `new` sets it; the parameters are the
    /// fields that are not `None`, in this order.
    pub inits: Vec<Init>,
}

/// How a constructor sets one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Init {
    /// The field's identifier, also the parameter's.
    pub ident: String,
    /// Where its value comes from.
    pub value: InitValue,
}

/// The value a constructor gives a field.
#[derive(Debug, Clone, PartialEq)]
pub enum InitValue {
    /// A parameter of this type, stored as it is.
    Param(TypeRef),
    /// A parameter `impl Into<String>`, stored converted (a required `String` member).
    IntoString,
    /// `None` (an optional member).
    None,
}

/// The shape of a struct.
#[derive(Debug, Clone, PartialEq)]
pub enum StructShape {
    /// Named fields: a JSON object, member by member.
    Fields(Vec<Field>),
    /// `struct X(pub T)`, on the wire exactly `T` (boxed commands and events).
    Newtype(TypeRef),
    /// `struct X;` (commands without arguments, events without data): no wire codec.
    Unit,
}

/// A struct field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Rust identifier.
    pub ident: String,
    /// The member's wire name.
    pub wire: String,
    /// The type (without the `Option` of optional fields).
    pub ty: TypeRef,
    /// Optional member: `Option<T>`, skipped when `None`.
    pub optional: bool,
    /// The type accepts JSON `null` (an alternate with a `null` branch, `any`, `null`):
    /// an optional member present as `null` decodes to `Some`, not `None`.
    pub nullable: bool,
    /// Doc lines.
    pub docs: Vec<String>,
    /// `#[deprecated(note)]`.
    pub deprecated: Option<String>,
}

/// A `TypedEvent` implementation.
#[derive(Debug, Clone, PartialEq)]
pub struct EventImpl {
    /// Wire name.
    pub name: String,
    /// Whether the event has data to decode (unit events ignore theirs).
    pub has_data: bool,
}

/// A `Command` implementation.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandImpl {
    /// Wire name.
    pub name: String,
    /// Whether arguments are written.
    pub has_arguments: bool,
    /// `allow-oob`.
    pub allow_oob: bool,
    /// `success-response`.
    pub success_response: bool,
    /// `None`: returns `{}` (Rust `()`).
    pub returns: Option<TypeRef>,
}

/// A QAPI enum with a forward-compatible catch-all variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    /// Name, docs, deprecation.
    pub meta: Meta,
    /// Derived traits.
    pub derives: Derives,
    /// Known values in schema order.
    pub variants: Vec<EnumVariant>,
    /// Identifier of the catch-all variant holding an unknown value.
    pub unknown: String,
}

/// One enum value.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumVariant {
    /// Rust identifier.
    pub ident: String,
    /// Wire value.
    pub wire: String,
    /// Doc lines.
    pub docs: Vec<String>,
    /// `#[deprecated(note)]`.
    pub deprecated: Option<String>,
}

/// A flat union: base fields with the discriminator replaced by the branch enum.
#[derive(Debug, Clone, PartialEq)]
pub struct Union {
    /// Name, docs, deprecation.
    pub meta: Meta,
    /// Derived traits (for both the struct and its branch enum).
    pub derives: Derives,
    /// Base members in wire order, the discriminator included.
    pub fields: Vec<UnionField>,
    /// The enum of branches.
    pub branches: BranchEnum,
    /// Its `new`: the required base members and the branch.
    pub constructor: Option<Constructor>,
}

/// A field of a union struct.
#[derive(Debug, Clone, PartialEq)]
pub enum UnionField {
    /// An ordinary base member.
    Base(Field),
    /// The discriminator: a field of the branch enum type.
    Tag {
        /// Rust identifier of the field.
        ident: String,
        /// Wire name of the discriminator member.
        wire: String,
        /// Doc lines.
        docs: Vec<String>,
    },
}

/// The branch enum of a union.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchEnum {
    /// Name and docs.
    pub meta: Meta,
    /// Branches: explicit ones, then implicit (empty) ones.
    pub variants: Vec<BranchVariant>,
    /// Identifier of the catch-all variant (unknown tag, data kept as a JSON map).
    pub unknown: String,
}

/// A union branch.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchVariant {
    /// Rust identifier.
    pub ident: String,
    /// Discriminator value.
    pub wire: String,
    /// The branch type; `None` for an implicit branch (no data).
    pub ty: Option<TypeRef>,
    /// Doc lines.
    pub docs: Vec<String>,
}

/// An alternate.
#[derive(Debug, Clone, PartialEq)]
pub struct Alternate {
    /// Name, docs, deprecation.
    pub meta: Meta,
    /// Derived traits.
    pub derives: Derives,
    /// Alternatives in schema order.
    pub variants: Vec<AltVariant>,
    /// What a decoding error says was expected, for a value of no alternative's JSON type.
    pub expecting: String,
}

/// One alternative, with the JSON class that selects it.
#[derive(Debug, Clone, PartialEq)]
pub struct AltVariant {
    /// Rust identifier.
    pub ident: String,
    /// Doc lines.
    pub docs: Vec<String>,
    /// The JSON class and the Rust payload.
    pub kind: AltKind,
}

/// How an alternative is told apart and decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum AltKind {
    /// A JSON string into `String`.
    Str,
    /// A JSON string into a generated enum.
    Enum(TypeRef),
    /// A JSON integer into this integer type.
    Int(Prim),
    /// Any JSON number into `f64`.
    Number,
    /// A JSON boolean.
    Bool,
    /// JSON `null` (unit variant).
    Null,
    /// A JSON array.
    Array(TypeRef),
    /// A JSON object into a struct or union.
    Object(TypeRef),
}

/// `AnyCommand`: every command as a wire request.
#[derive(Debug, Clone, PartialEq)]
pub struct AnyCommand {
    /// Name, docs.
    pub meta: Meta,
    /// One variant per command.
    pub variants: Vec<DynVariant>,
    /// Catch-all identifier.
    pub unknown: String,
}

/// `AnyReturn`: the typed return of any command.
#[derive(Debug, Clone, PartialEq)]
pub struct AnyReturn {
    /// Name, docs.
    pub meta: Meta,
    /// One variant per command.
    pub variants: Vec<DynVariant>,
    /// Catch-all identifier.
    pub unknown: String,
}

/// `Event`: every event with its timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct EventEnum {
    /// Name, docs.
    pub meta: Meta,
    /// One variant per event.
    pub variants: Vec<DynVariant>,
    /// Catch-all identifier.
    pub unknown: String,
}

/// A variant of a dynamic enum, naming a command or event type.
#[derive(Debug, Clone, PartialEq)]
pub struct DynVariant {
    /// Variant identifier.
    pub ident: String,
    /// Wire name of the command or event.
    pub wire: String,
    /// Path of the command or event type.
    pub path: Vec<String>,
    /// Whether the type carries data (arguments, event data); false for unit structs.
    pub has_data: bool,
    /// For `AnyReturn`: `Some(ty)` when the command returns a value, `None` for `{}`.
    pub returns: Option<TypeRef>,
    /// Doc lines of the variant (each enum says what its variant holds).
    pub docs: Vec<String>,
    /// Deprecated command or event: its doc line notes it.
    pub deprecated: bool,
}
