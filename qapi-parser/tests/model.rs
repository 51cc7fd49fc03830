//! The public model API the code generator relies on: lookups, resolved references,
//! members with their base members, implicit types and their documentation.

use qapi_parser::{load_str, EntityKind, Options, Schema, TypeId};

const SCHEMA: &str = r#"
##
# @Base:
#
# @kind: which one
##
{ 'struct': 'Base', 'data': { 'kind': 'Kind' } }

##
# @Kind:
#
# @one: the first
# @two: the second
##
{ 'enum': 'Kind', 'data': [ 'one', { 'name': 'two', 'if': 'CONFIG_TWO' } ] }

##
# @Thing:
#
# @size: how big
#
# Features:
# @fancy: it is fancy
# @deprecated: use something else
##
{ 'struct': 'Thing', 'base': 'Base',
  'data': { '*size': { 'type': 'uint64', 'features': [ 'deprecated' ] } },
  'features': [ 'fancy' ] }

##
# @Uu:
#
# @tag: the tag
##
{ 'union': 'Uu', 'base': { 'tag': 'Kind' }, 'discriminator': 'tag',
  'data': { 'one': 'Thing' } }

##
# @do-it:
#
# @names: the names
#
# Returns: the things
##
{ 'command': 'do-it', 'data': { 'names': [ 'str' ] }, 'returns': [ 'Thing' ] }
"#;

fn schema() -> Schema {
    load_str("model.json", SCHEMA, &Options::default()).expect("valid schema")
}

fn id(s: &Schema, name: &str) -> TypeId {
    s.lookup(name)
        .unwrap_or_else(|| panic!("{name} is defined"))
}

#[test]
fn lookup_and_resolution() {
    let s = schema();
    let thing = id(&s, "Thing");
    let EntityKind::Object(o) = &s.entity(thing).kind else {
        panic!("Thing is an object")
    };
    assert_eq!(o.base, Some(id(&s, "Base")));
    assert_eq!(o.local_members[0].ty, id(&s, "uint64"));
    assert!(o.local_members[0].optional);
    let names: Vec<&str> = s
        .all_members(thing)
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["kind", "size"]);
    assert_eq!(s.entity(thing).features[0].name, "fancy");
    assert!(o.local_members[0].features[0].is_deprecated());
    assert!(s.lookup("nope").is_none());
    assert_eq!(s.modules[0].name, "./builtin");
    assert_eq!(s.modules[1].name, "model.json");
}

#[test]
fn union_branches_explicit_then_implicit() {
    let s = schema();
    let EntityKind::Object(o) = &s.entity(id(&s, "Uu")).kind else {
        panic!("U is an object")
    };
    let v = o.variants.as_ref().expect("a union");
    assert_eq!(v.tag_member, "tag");
    let branches: Vec<(&str, &str, bool)> = v
        .variants
        .iter()
        .map(|b| (b.name.as_str(), s.entity(b.ty).name.as_str(), b.implicit))
        .collect();
    assert_eq!(
        branches,
        [("one", "Thing", false), ("two", "q_empty", true)]
    );
    assert!(
        v.variants[1].ifcond.is_some(),
        "implicit branch inherits the value's if"
    );
    assert_eq!(o.base, Some(id(&s, "q_obj_Uu-base")));
}

#[test]
fn commands_and_implicit_types_with_docs() {
    let s = schema();
    let cmd = s.commands().next().expect("one command");
    let EntityKind::Command(c) = &cmd.kind else {
        panic!("a command")
    };
    let arg = c.arg_type.expect("arguments");
    assert_eq!(s.entity(arg).name, "q_obj_do-it-arg");
    assert!(s.entity(arg).implicit);
    let ret = c.ret_type.expect("returns");
    assert_eq!(s.entity(ret).name, "ThingList");
    let EntityKind::Array(a) = &s.entity(ret).kind else {
        panic!("an array")
    };
    assert_eq!(a.element, id(&s, "Thing"));
    // The implicit argument type carries the command's doc block.
    let doc = s.member_doc(arg, "names").expect("documented");
    assert_eq!(doc.text, "the names");
    assert_eq!(
        s.member_doc(id(&s, "Thing"), "size")
            .map(|d| d.text.as_str()),
        Some("how big")
    );
    assert_eq!(
        s.feature_doc(id(&s, "Thing"), "deprecated")
            .map(|d| d.text.as_str()),
        Some("use something else")
    );
    let d = s.doc(s.entity(id(&s, "do-it")).doc.expect("doc"));
    assert_eq!(d.sections[0].text, "the things");
}

#[test]
fn errors_render_like_qemu() {
    let e = load_str(
        "bad.json",
        "{ 'struct': 'Foo', 'data': { 'a': 'Nope' } }\n",
        &Options::default(),
    )
    .expect_err("unknown type");
    assert_eq!(
        e.to_string(),
        "bad.json: In struct 'Foo':\nbad.json:1: member 'a' uses unknown type 'Nope'"
    );
}
