//! The constructors pass of lowering: every struct with named fields and every union
//! gets its `new`, decided from the fields' final `optional` flags.

use crate::ir::*;

/// Clippy's default `too-many-arguments-threshold`: more parameters than this are allowed
/// explicitly on a constructor.
const MAX_ARGUMENTS: usize = 7;

/// Gives every struct with named fields and every union its `new`, from the fields' final
/// `optional` flags (a pass of its own, after every decision about the fields): the
/// required members in schema order are the parameters, a required `String` is taken as
/// `impl Into<String>`, and the optional members are `None`. A type without required
/// members derives `Default` too, so that its `new()` does not trip clippy's
/// `new_without_default`.
pub(super) fn file(file: &mut File) {
    let items = file
        .types
        .iter_mut()
        .chain(&mut file.commands.items)
        .chain(&mut file.events.items);
    for item in items {
        match item {
            Item::Struct(st) => {
                let StructShape::Fields(fields) = &st.shape else {
                    continue;
                };
                let inits = fields.iter().map(field_init).collect();
                let c = constructor(inits);
                st.derives.default |= c.inits.iter().all(|i| i.value == InitValue::None);
                st.constructor = Some(c);
            }
            Item::Union(u) => {
                let inits = u
                    .fields
                    .iter()
                    .map(|f| match f {
                        UnionField::Base(f) => field_init(f),
                        UnionField::Tag { ident, .. } => Init {
                            ident: ident.clone(),
                            value: InitValue::Param(TypeRef::Named(vec![u
                                .branches
                                .meta
                                .ident
                                .clone()])),
                        },
                    })
                    .collect();
                u.constructor = Some(constructor(inits));
            }
            Item::Enum(_) | Item::Alternate(_) => {}
        }
    }
}

fn field_init(f: &Field) -> Init {
    let value = match &f.ty {
        _ if f.optional => InitValue::None,
        TypeRef::Prim(Prim::String) => InitValue::IntoString,
        t => InitValue::Param(t.clone()),
    };
    Init {
        ident: f.ident.clone(),
        value,
    }
}

fn constructor(inits: Vec<Init>) -> Constructor {
    let params = inits.iter().filter(|i| i.value != InitValue::None).count();
    let doc = if inits.is_empty() {
        "Builds the value (it has no members)."
    } else if params == 0 {
        "Builds the value with every member `None`, as `Default` does."
    } else if params == inits.len() {
        "Builds the value from its members, in schema order."
    } else {
        "Builds the value from its required members, in schema order; the optional ones are `None`."
    };
    Constructor {
        docs: vec![doc.to_owned()],
        allow_too_many_arguments: params > MAX_ARGUMENTS,
        inits,
    }
}
