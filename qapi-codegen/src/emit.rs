//! IR -> tokens -> formatted text. Total and decision-free: every IR node is
//! destructured exhaustively, so a new IR field is a compile error here until handled.

use crate::ir::*;
use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, ToTokens};

/// Formats the IR as Rust source with its `@generated` header.
///
/// The file is cut into independent top-level parts (chunks of the root types, each
/// submodule, the dynamic enums) that are tokenized, parsed and printed on separate
/// threads; prettyplease prints top-level items independently, so the concatenation is
/// the same text as printing the whole file at once. The cut does not depend on the
/// machine, so the output is deterministic.
pub fn format(file: &File) -> String {
    const TYPE_CHUNKS: usize = 4;
    // Every field is used by some part (`part_text`); listed here so a new one is noticed.
    let File {
        header,
        krate: _,
        types,
        commands,
        events,
        any_command: _,
        any_return: _,
        event_enum: _,
    } = file;
    let chunk = types.len().div_ceil(TYPE_CHUNKS).max(1);
    let mut parts: Vec<Part<'_>> = types.chunks(chunk).map(Part::Types).collect();
    parts.push(Part::Module(commands));
    parts.push(Part::Module(events));
    parts.push(Part::Dynamic);
    let texts: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .map(|p| std::thread::Builder::new().spawn_scoped(scope, move || part_text(file, p)))
            .collect();
        handles
            .into_iter()
            .zip(&parts)
            .map(|(h, p)| match h {
                Ok(h) => h.join().unwrap_or_else(|_| part_text(file, p)),
                // No thread to be had: do it here.
                Err(_) => part_text(file, p),
            })
            .collect()
    });
    let mut out = String::with_capacity(texts.iter().map(String::len).sum::<usize>() + 200);
    for h in header {
        out.push_str("// ");
        out.push_str(h);
        out.push('\n');
    }
    out.push('\n');
    for t in texts {
        out.push_str(&t);
    }
    out
}

/// A top-level part of the generated file.
enum Part<'a> {
    /// Some of the root types.
    Types(&'a [Item]),
    /// A submodule.
    Module(&'a Module),
    /// `AnyCommand`, `AnyReturn` and `Event`.
    Dynamic,
}

fn part_text(file: &File, part: &Part<'_>) -> String {
    let k = path(&file.krate);
    let tokens = match part {
        Part::Types(items) => {
            let items = items.iter().map(|i| item(i, &k));
            quote!(#(#items)*)
        }
        Part::Module(m) => module(m, &k),
        Part::Dynamic => {
            let a = any_command_tokens(&file.any_command, &k);
            let r = any_return_tokens(&file.any_return, &k);
            let e = event_enum_tokens(&file.event_enum, &k);
            quote!(#a #r #e)
        }
    };
    match syn::parse2::<syn::File>(tokens) {
        Ok(f) => prettyplease::unparse(&f),
        // Unreachable for IR made by `lower`; say so in the output rather than panic.
        Err(e) => format!(
            "compile_error!({:?});\n",
            format!("qapi-codegen emitted invalid Rust: {e}")
        ),
    }
}

fn ident(s: &str) -> Ident {
    match s.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(s, Span::call_site()),
    }
}

fn path(segments: &[String]) -> TokenStream {
    let mut out = TokenStream::new();
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            out.extend(quote!(::));
        }
        if !s.is_empty() {
            ident(s).to_tokens(&mut out);
        }
    }
    out
}

fn docs(lines: &[String]) -> TokenStream {
    let lines = lines.iter().flat_map(|l| l.split('\n')).map(|l| {
        let l = l.replace('\t', "    ");
        if l.is_empty() {
            l
        } else {
            format!(" {l}")
        }
    });
    quote!(#(#[doc = #lines])*)
}

fn deprecated(note: &Option<String>) -> TokenStream {
    match note {
        Some(n) => quote!(#[deprecated(note = #n)]),
        None => TokenStream::new(),
    }
}

fn allow_deprecated(on: bool) -> TokenStream {
    if on {
        quote!(#[allow(deprecated)])
    } else {
        TokenStream::new()
    }
}

fn meta_attrs(meta: &Meta) -> (Ident, TokenStream, TokenStream) {
    let Meta {
        ident: name,
        docs: lines,
        deprecated: dep,
        allow_deprecated: allow,
    } = meta;
    let d = docs(lines);
    let dep = deprecated(dep);
    let allow = allow_deprecated(*allow);
    (ident(name), quote!(#d #dep #allow), allow)
}

fn derive_attr(d: &Derives, serde: bool) -> TokenStream {
    let Derives {
        eq,
        hash,
        default,
        copy,
        extra,
    } = d;
    let mut list = vec![quote!(Debug), quote!(Clone)];
    if *copy {
        list.push(quote!(Copy));
    }
    list.push(quote!(PartialEq));
    if *eq {
        list.push(quote!(Eq));
    }
    if *hash {
        list.push(quote!(Hash));
    }
    if *default {
        list.push(quote!(Default));
    }
    for e in extra {
        if let Ok(p) = syn::parse_str::<syn::Path>(e) {
            list.push(p.to_token_stream());
        }
    }
    if serde {
        list.push(quote!(::serde::Serialize));
        list.push(quote!(::serde::Deserialize));
    }
    quote!(#[derive(#(#list),*)])
}

fn prim(p: Prim) -> TokenStream {
    match p {
        Prim::I8 => quote!(i8),
        Prim::I16 => quote!(i16),
        Prim::I32 => quote!(i32),
        Prim::I64 => quote!(i64),
        Prim::U8 => quote!(u8),
        Prim::U16 => quote!(u16),
        Prim::U32 => quote!(u32),
        Prim::U64 => quote!(u64),
        Prim::F64 => quote!(f64),
        Prim::Bool => quote!(bool),
        Prim::String => quote!(::std::string::String),
        Prim::Value => quote!(::serde_json::Value),
        Prim::Unit => quote!(()),
    }
}

fn ty(t: &TypeRef) -> TokenStream {
    match t {
        TypeRef::Prim(p) => prim(*p),
        TypeRef::Named(p) => path(p),
        TypeRef::List(t) => {
            let t = ty(t);
            quote!(::std::vec::Vec<#t>)
        }
        TypeRef::Boxed(t) => {
            let t = ty(t);
            quote!(::std::boxed::Box<#t>)
        }
    }
}

fn field_ty(t: &TypeRef, optional: bool) -> TokenStream {
    let t = ty(t);
    if optional {
        quote!(::std::option::Option<#t>)
    } else {
        t
    }
}

fn field(f: &Field) -> TokenStream {
    let Field {
        ident: name,
        rename: _,
        ty: t,
        optional,
        nullable: _,
        docs: lines,
        deprecated: dep,
    } = f;
    let d = docs(lines);
    let dep = deprecated(dep);
    let name = ident(name);
    let t = field_ty(t, *optional);
    quote!(#d #dep pub #name: #t)
}

/// The wire name of a field.
fn wire_name(f: &Field) -> String {
    f.rename
        .clone()
        .unwrap_or_else(|| crate::names::unraw(&f.ident).to_owned())
}

/// Serialization of one member into map `m` (skipped when optional and `None`).
fn ser_entry(f: &Field) -> TokenStream {
    let wire = wire_name(f);
    let fi = ident(&f.ident);
    if f.optional {
        quote! {
            if let ::std::option::Option::Some(v) = &self.#fi {
                m.serialize_entry(#wire, v)?;
            }
        }
    } else {
        quote!(m.serialize_entry(#wire, &self.#fi)?;)
    }
}

/// The decoding slot of the `n`th member: its declaration, its `match` arm on the key,
/// and its initializer in the struct literal.
fn de_slot(f: &Field, n: usize) -> (TokenStream, TokenStream, TokenStream) {
    let wire = wire_name(f);
    let fi = ident(&f.ident);
    let slot = ident(&format!("f{n}"));
    let t = ty(&f.ty);
    let decl = quote!(let mut #slot: ::std::option::Option<#t> = ::std::option::Option::None;);
    let arm = if f.nullable {
        quote!(#wire => #slot = ::std::option::Option::Some(map.next_value()?),)
    } else {
        quote!(#wire => #slot = map.next_value()?,)
    };
    let init = if f.optional {
        quote!(#fi: #slot)
    } else {
        quote!(#fi: #slot.ok_or_else(|| A::Error::missing_field(#wire))?)
    };
    (decl, arm, init)
}

/// Hand-written `Serialize`/`Deserialize` of a struct: one map, members by name, unknown
/// members skipped; smaller to compile than serde's derive (no sequence form).
fn struct_serde(
    name: &Ident,
    fields: &[Field],
    allow: &TokenStream,
    k: &TokenStream,
) -> TokenStream {
    let ser = fields.iter().map(ser_entry);
    let mut decls = Vec::new();
    let mut arms = Vec::new();
    let mut inits = Vec::new();
    for (n, f) in fields.iter().enumerate() {
        let (d, a, i) = de_slot(f, n);
        decls.push(d);
        arms.push(a);
        inits.push(i);
    }
    // An `if` chain (not a `match`): clippy wants no one-arm `match`.
    let prefix_read = if fields.is_empty() {
        quote!(drop(prefix);)
    } else {
        let mut ifs = fields.iter().enumerate().map(|(n, f)| {
            let wire = wire_name(f);
            let slot = ident(&format!("f{n}"));
            if f.nullable {
                quote!(if key == #wire { #slot = ::std::option::Option::Some(#k::runtime::from_stash(v)?); })
            } else {
                quote!(if key == #wire { #slot = #k::runtime::from_stash(v)?; })
            }
        });
        let first = ifs.next();
        quote! {
            for (key, v) in prefix {
                #first #(else #ifs)*
            }
        }
    };
    let expecting = format!("struct {name}");
    let mut_m = if fields.is_empty() {
        quote!()
    } else {
        quote!(mut)
    };
    // Syntax only: clippy rejects a `match` with nothing but the fallback arm.
    let read = if fields.is_empty() {
        quote! {
            while #k::runtime::next_key(&mut map)?.is_some() {
                map.next_value::<::serde::de::IgnoredAny>()?;
            }
        }
    } else {
        quote! {
            while let ::std::option::Option::Some(key) = #k::runtime::next_key(&mut map)? {
                match &*key {
                    #(#arms)*
                    _ => {
                        map.next_value::<::serde::de::IgnoredAny>()?;
                    }
                }
            }
        }
    };
    quote! {
        #allow
        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeMap as _;
                let #mut_m m = s.serialize_map(::std::option::Option::None)?;
                #(#ser)*
                m.end()
            }
        }

        #allow
        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                struct V;
                #allow
                impl<'de> ::serde::de::Visitor<'de> for V {
                    type Value = #name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(#expecting)
                    }
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(self, map: A) -> ::std::result::Result<#name, A::Error> {
                        #name::__from_map(map, ::std::vec::Vec::new())
                    }
                }
                d.deserialize_map(V)
            }
        }

        #allow
        impl #name {
            /// Decodes the members of `map`, after those of `prefix` (members a union
            /// read before its discriminator). For the generated code only.
            #[doc(hidden)]
            pub fn __from_map<'de, A: ::serde::de::MapAccess<'de>>(mut map: A, prefix: #k::runtime::Prefix) -> ::std::result::Result<Self, A::Error> {
                // Traits only (`as _`): no name of the schema's can be shadowed.
                #[allow(unused_imports)]
                use ::serde::de::{Error as _, MapAccess as _};
                #(#decls)*
                #prefix_read
                #read
                ::std::result::Result::Ok(#name { #(#inits,)* })
            }
        }
    }
}

fn module(m: &Module, k: &TokenStream) -> TokenStream {
    let Module {
        ident: name,
        docs: lines,
        items,
    } = m;
    let name = ident(name);
    let d = docs(lines);
    let items = items.iter().map(|i| item(i, k));
    quote! {
        #d
        pub mod #name {
            #(#items)*
        }
    }
}

fn item(i: &Item, k: &TokenStream) -> TokenStream {
    match i {
        Item::Struct(s) => struct_tokens(s, k),
        Item::Enum(e) => enum_tokens(e, k),
        Item::Union(u) => union_tokens(u, k),
        Item::Alternate(a) => alternate_tokens(a, k),
    }
}

fn struct_tokens(s: &Struct, k: &TokenStream) -> TokenStream {
    let Struct {
        meta,
        derives,
        shape,
        command,
    } = s;
    let (name, attrs, allow) = meta_attrs(meta);
    let def = match shape {
        StructShape::Fields(fields) => {
            let derive = derive_attr(derives, false);
            let defs = fields.iter().map(field);
            let serde = struct_serde(&name, fields, &allow, k);
            quote! {
                #attrs
                #derive
                pub struct #name { #(#defs,)* }
                #serde
            }
        }
        StructShape::Newtype(t) => {
            let derive = derive_attr(derives, true);
            let t = ty(t);
            quote! {
                #attrs
                #derive
                #[serde(transparent)]
                pub struct #name(pub #t);
            }
        }
        StructShape::Unit => {
            let derive = derive_attr(derives, false);
            quote! {
                #attrs
                #derive
                pub struct #name;
            }
        }
    };
    let imp = command.as_ref().map(|c| {
        let CommandImpl {
            name: wire,
            has_arguments,
            allow_oob,
            success_response,
            returns,
        } = c;
        let ret = match returns {
            Some(t) => ty(t),
            None => quote!(()),
        };
        let write = if *has_arguments {
            quote! {
                fn write_arguments(&self, out: &mut ::std::vec::Vec<u8>) -> ::std::result::Result<(), ::serde_json::Error> {
                    #k::runtime::write_json(out, self)
                }
            }
        } else {
            quote! {
                fn write_arguments(&self, _out: &mut ::std::vec::Vec<u8>) -> ::std::result::Result<(), ::serde_json::Error> {
                    ::std::result::Result::Ok(())
                }
            }
        };
        let decode = if returns.is_some() {
            quote!(#k::runtime::decode(json))
        } else {
            quote!(#k::runtime::decode_empty(json))
        };
        quote! {
            #allow
            impl #k::Command for #name {
                const NAME: &'static str = #wire;
                const HAS_ARGUMENTS: bool = #has_arguments;
                const ALLOW_OOB: bool = #allow_oob;
                const SUCCESS_RESPONSE: bool = #success_response;
                type Returns = #ret;
                #write
                fn decode_return(json: &str) -> ::std::result::Result<Self::Returns, ::serde_json::Error> {
                    #decode
                }
            }
        }
    });
    quote!(#def #imp)
}

fn enum_tokens(e: &Enum, k: &TokenStream) -> TokenStream {
    let Enum {
        meta,
        derives,
        variants,
        unknown,
    } = e;
    let (name, attrs, allow) = meta_attrs(meta);
    let derive = derive_attr(derives, false);
    let unknown = ident(unknown);
    let mut defs = Vec::new();
    let mut to_str = Vec::new();
    let mut from_str = Vec::new();
    for v in variants {
        let EnumVariant {
            ident: vi,
            wire,
            docs: lines,
            deprecated: dep,
        } = v;
        let vi = ident(vi);
        let d = docs(lines);
        let dep = deprecated(dep);
        defs.push(quote!(#d #dep #vi));
        to_str.push(quote!(Self::#vi => #wire));
        from_str.push(quote!(#wire => Self::#vi));
    }
    let from_body = if from_str.is_empty() {
        quote!(Self::#unknown(s.into()))
    } else {
        quote!(match s { #(#from_str,)* _ => Self::#unknown(s.into()) })
    };
    quote! {
        #attrs
        #derive
        pub enum #name {
            #(#defs,)*
            /// A value this schema does not know (sent by a newer QEMU); serializes back unchanged.
            #unknown(::std::string::String),
        }
        #allow
        impl #name {
            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    #(#to_str,)*
                    Self::#unknown(s) => s,
                }
            }
            /// The value for a wire string; unknown strings give the catch-all variant.
            pub fn from_wire(s: &str) -> Self {
                #from_body
            }
        }
        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                #k::runtime::deserialize_str(d).map(|s| Self::from_wire(&s))
            }
        }
    }
}

fn union_tokens(u: &Union, k: &TokenStream) -> TokenStream {
    let Union {
        meta,
        derives,
        fields,
        branches,
    } = u;
    let (name, attrs, allow) = meta_attrs(meta);
    let derive = derive_attr(derives, false);
    let BranchEnum {
        meta: bmeta,
        variants,
        unknown,
    } = branches;
    let (bname, battrs, _) = meta_attrs(bmeta);
    let unknown = ident(unknown);

    // Struct definition, serialization and deserialization of the base members.
    let mut defs = Vec::new();
    let mut ser = Vec::new();
    let mut slots = Vec::new();
    let mut arms = Vec::new();
    let mut stash_arms = Vec::new();
    let mut prefix_ifs = Vec::new();
    let mut inits = Vec::new();
    let mut base_names = Vec::new();
    let mut tag_wire = String::new();
    let mut tag_ident = ident("tag");
    for f in fields {
        match f {
            UnionField::Base(f) => {
                let Field {
                    ident: fi,
                    rename: _,
                    ty: t,
                    optional,
                    nullable,
                    docs: lines,
                    deprecated: dep,
                } = f;
                let wire = f
                    .rename
                    .clone()
                    .unwrap_or_else(|| crate::names::unraw(fi).to_owned());
                let fi = ident(fi);
                let d = docs(lines);
                let dep = deprecated(dep);
                let ft = field_ty(t, *optional);
                defs.push(quote!(#d #dep pub #fi: #ft));
                if *optional {
                    ser.push(quote! {
                        if let ::std::option::Option::Some(v) = &self.#fi {
                            m.serialize_entry(#wire, v)?;
                        }
                    });
                } else {
                    ser.push(quote!(m.serialize_entry(#wire, &self.#fi)?;));
                }
                let slot = ident(&format!("f{}", base_names.len()));
                let idx = base_names.len();
                let t = ty(t);
                slots.push(
                    quote!(let mut #slot: ::std::option::Option<#t> = ::std::option::Option::None;),
                );
                if *nullable {
                    arms.push(quote!(#wire => #slot = ::std::option::Option::Some(::serde::de::MapAccess::next_value(&mut map)?),));
                } else {
                    arms.push(
                        quote!(#wire => #slot = ::serde::de::MapAccess::next_value(&mut map)?,),
                    );
                }
                stash_arms.push((idx, quote!(#slot = #k::runtime::from_stash(v)?)));
                if *nullable {
                    prefix_ifs.push(quote!(if key == #wire { #slot = ::std::option::Option::Some(#k::runtime::from_stash(v)?); }));
                } else {
                    prefix_ifs
                        .push(quote!(if key == #wire { #slot = #k::runtime::from_stash(v)?; }));
                }
                if *optional {
                    inits.push(quote!(#fi: #slot));
                } else {
                    inits.push(quote!(#fi: #slot.ok_or_else(|| <A::Error as ::serde::de::Error>::missing_field(#wire))?));
                }
                base_names.push(wire);
            }
            UnionField::Tag {
                ident: fi,
                wire,
                docs: lines,
            } => {
                let fi2 = ident(fi);
                let d = docs(lines);
                defs.push(quote!(#d pub #fi2: #bname));
                ser.push(quote! {
                    m.serialize_entry(#wire, self.#fi2.tag())?;
                });
                tag_wire = wire.clone();
                tag_ident = fi2;
                inits.push(quote!(#tag_ident: branch));
            }
        }
    }

    // Branch enum.
    let mut bdefs = Vec::new();
    let mut tag_arms = Vec::new();
    let mut dec_arms = Vec::new();
    let mut ser_arms = Vec::new();
    for v in variants {
        let BranchVariant {
            ident: vi,
            wire,
            ty: t,
            docs: lines,
        } = v;
        let vi = ident(vi);
        let d = docs(lines);
        match t {
            Some(t_ref) => {
                let t = ty(t_ref);
                let decode = match t_ref {
                    TypeRef::Boxed(inner) => {
                        let inner = ty(inner);
                        quote!(::std::boxed::Box::new(#inner::__from_map(map, prefix)?))
                    }
                    other => {
                        let other = ty(other);
                        quote!(#other::__from_map(map, prefix)?)
                    }
                };
                bdefs.push(quote!(#d #vi(#t)));
                tag_arms.push(quote!(Self::#vi(_) => #wire));
                dec_arms.push(quote!(#wire => Self::#vi(#decode)));
                ser_arms.push(quote!(Self::#vi(v) => ::serde::Serialize::serialize(v, #k::runtime::FlatMap(m))));
            }
            None => {
                bdefs.push(quote!(#d #vi));
                tag_arms.push(quote!(Self::#vi => #wire));
                dec_arms.push(quote!(#wire => {
                    drop(prefix);
                    #k::runtime::skip_rest(map)?;
                    Self::#vi
                }));
                ser_arms.push(quote!(Self::#vi => ::std::result::Result::Ok(())));
            }
        }
    }
    let expecting = format!("union {name}");
    // Syntax only: clippy wants `if` for one arm and `match` for more.
    let stash_loop = match stash_arms.as_slice() {
        [] => quote!(drop(stash);),
        [(idx, assign)] => quote! {
            for (i, v) in stash {
                if i == #idx {
                    #assign;
                }
            }
        },
        arms => {
            let arms = arms.iter().map(|(idx, assign)| quote!(#idx => #assign,));
            quote! {
                for (i, v) in stash {
                    match i {
                        #(#arms)*
                        _ => {}
                    }
                }
            }
        }
    };
    quote! {
        #attrs
        #derive
        pub struct #name { #(#defs,)* }

        #battrs
        #derive
        #[allow(clippy::large_enum_variant)]
        pub enum #bname {
            #(#bdefs,)*
            /// A branch this schema does not know (sent by a newer QEMU): the discriminator
            /// value and the branch's members, kept so that they serialize back unchanged.
            #unknown {
                /// The discriminator value.
                tag: ::std::string::String,
                /// The members besides the base members.
                data: #k::runtime::JsonMap,
            },
        }

        #allow
        impl #bname {
            /// The discriminator value of this branch.
            pub fn tag(&self) -> &str {
                match self {
                    #(#tag_arms,)*
                    Self::#unknown { tag, .. } => tag,
                }
            }
            fn decode_branch<'de, M: ::serde::de::MapAccess<'de>>(tag: &str, map: M, prefix: #k::runtime::Prefix) -> ::std::result::Result<Self, M::Error> {
                ::std::result::Result::Ok(match tag {
                    #(#dec_arms,)*
                    _ => Self::#unknown { tag: tag.into(), data: #k::runtime::rest_to_json_map(map, prefix)? },
                })
            }
            fn serialize_branch<M: ::serde::ser::SerializeMap>(&self, m: &mut M) -> ::std::result::Result<(), M::Error> {
                match self {
                    #(#ser_arms,)*
                    Self::#unknown { data, .. } => {
                        for (k, v) in data {
                            m.serialize_entry(k, v)?;
                        }
                        ::std::result::Result::Ok(())
                    }
                }
            }
        }

        #allow
        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeMap as _;
                let mut m = s.serialize_map(::std::option::Option::None)?;
                #(#ser)*
                self.#tag_ident.serialize_branch(&mut m)?;
                m.end()
            }
        }

        #allow
        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                struct V;
                #allow
                impl<'de> ::serde::de::Visitor<'de> for V {
                    type Value = #name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(#expecting)
                    }
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(self, map: A) -> ::std::result::Result<#name, A::Error> {
                        #name::__from_map(map, ::std::vec::Vec::new())
                    }
                }
                d.deserialize_map(V)
            }
        }

        #allow
        impl #name {
            /// Decodes the members of `map`, after those of `outer` (members an enclosing
            /// union read before its own discriminator). For the generated code only.
            #[doc(hidden)]
            pub fn __from_map<'de, A: ::serde::de::MapAccess<'de>>(mut map: A, outer: #k::runtime::Prefix) -> ::std::result::Result<Self, A::Error> {
                        const BASE: &[&str] = &[#(#base_names),*];
                        const TAG: &str = #tag_wire;
                        #(#slots)*
                        let mut tag: ::std::option::Option<::std::string::String> = ::std::option::Option::None;
                        let mut stash = ::std::vec::Vec::new();
                        // Branch members met before the discriminator (QEMU's member order is
                        // arbitrary): kept as JSON values and handed to the branch first.
                        let mut prefix: #k::runtime::Prefix = ::std::vec::Vec::new();
                        for (key, v) in outer {
                            #(#prefix_ifs else)* if key == TAG {
                                tag = ::std::option::Option::Some(#k::runtime::from_stash(v)?);
                            } else {
                                prefix.push((key, v));
                            }
                        }
                        let mut branch = ::std::option::Option::None;
                        while let ::std::option::Option::Some(key) = #k::runtime::next_key(&mut map)? {
                            match &*key {
                                #(#arms)*
                                TAG => tag = ::std::option::Option::Some(::serde::de::MapAccess::next_value(&mut map)?),
                                _ => {
                                    if let ::std::option::Option::Some(t) = &tag {
                                        let rest = #k::runtime::BranchMap::new(&mut map, ::std::option::Option::Some(key), BASE, TAG, &mut stash);
                                        branch = ::std::option::Option::Some(#bname::decode_branch(t, rest, ::std::mem::take(&mut prefix))?);
                                        break;
                                    }
                                    prefix.push((key.into_owned(), ::serde::de::MapAccess::next_value(&mut map)?));
                                }
                            }
                        }
                        let branch = match branch {
                            ::std::option::Option::Some(b) => b,
                            ::std::option::Option::None => {
                                let t = tag.ok_or_else(|| <A::Error as ::serde::de::Error>::missing_field(TAG))?;
                                let rest = #k::runtime::BranchMap::new(&mut map, ::std::option::Option::None, BASE, TAG, &mut stash);
                                #bname::decode_branch(&t, rest, prefix)?
                            }
                        };
                        #stash_loop
                        ::std::result::Result::Ok(#name { #(#inits,)* })
            }
        }
    }
}

fn alternate_tokens(a: &Alternate, k: &TokenStream) -> TokenStream {
    let Alternate {
        meta,
        derives,
        variants,
    } = a;
    let (name, attrs, allow) = meta_attrs(meta);
    let derive = derive_attr(derives, false);
    let mut defs = Vec::new();
    let mut ser = Vec::new();
    let mut visits = Vec::new();
    for v in variants {
        let AltVariant {
            ident: vi,
            docs: lines,
            kind,
        } = v;
        let vi = ident(vi);
        let d = docs(lines);
        let payload = match kind {
            AltKind::Str => Some(quote!(::std::string::String)),
            AltKind::Enum(t) | AltKind::Array(t) | AltKind::Object(t) => Some(ty(t)),
            AltKind::Int(p) => Some(prim(*p)),
            AltKind::Number => Some(quote!(f64)),
            AltKind::Bool => Some(quote!(bool)),
            AltKind::Null => None,
        };
        match payload {
            Some(p) => {
                defs.push(quote!(#d #vi(#p)));
                ser.push(quote!(Self::#vi(v) => ::serde::Serialize::serialize(v, s)));
            }
            None => {
                defs.push(quote!(#d #vi));
                ser.push(quote!(Self::#vi => s.serialize_unit()));
            }
        }
        let e = quote!(<E: ::serde::de::Error>);
        let r = quote!(::std::result::Result<#name, E>);
        visits.push(match kind {
            AltKind::Str => quote! {
                fn visit_str #e(self, v: &str) -> #r { ::std::result::Result::Ok(#name::#vi(v.into())) }
            },
            AltKind::Enum(t) => {
                let t = ty(t);
                quote! {
                    fn visit_str #e(self, v: &str) -> #r { ::std::result::Result::Ok(#name::#vi(#t::from_wire(v))) }
                }
            }
            AltKind::Int(_) => quote! {
                fn visit_i64 #e(self, v: i64) -> #r { #k::runtime::int_in_range(::std::result::Result::Ok(v)).map(#name::#vi) }
                fn visit_u64 #e(self, v: u64) -> #r { #k::runtime::int_in_range(::std::result::Result::Err(v)).map(#name::#vi) }
            },
            AltKind::Number => quote! {
                fn visit_f64 #e(self, v: f64) -> #r { ::std::result::Result::Ok(#name::#vi(v)) }
                fn visit_i64 #e(self, v: i64) -> #r { ::std::result::Result::Ok(#name::#vi(v as f64)) }
                fn visit_u64 #e(self, v: u64) -> #r { ::std::result::Result::Ok(#name::#vi(v as f64)) }
            },
            AltKind::Bool => quote! {
                fn visit_bool #e(self, v: bool) -> #r { ::std::result::Result::Ok(#name::#vi(v)) }
            },
            AltKind::Null => quote! {
                fn visit_unit #e(self) -> #r { ::std::result::Result::Ok(#name::#vi) }
            },
            AltKind::Array(_) => quote! {
                fn visit_seq<A: ::serde::de::SeqAccess<'de>>(self, seq: A) -> ::std::result::Result<#name, A::Error> {
                    ::serde::Deserialize::deserialize(::serde::de::value::SeqAccessDeserializer::new(seq)).map(#name::#vi)
                }
            },
            AltKind::Object(_) => quote! {
                fn visit_map<A: ::serde::de::MapAccess<'de>>(self, map: A) -> ::std::result::Result<#name, A::Error> {
                    ::serde::Deserialize::deserialize(::serde::de::value::MapAccessDeserializer::new(map)).map(#name::#vi)
                }
            },
        });
    }
    let expecting = format!("alternate {name}");
    quote! {
        #attrs
        #derive
        #[allow(clippy::large_enum_variant)]
        pub enum #name { #(#defs,)* }

        #allow
        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                match self { #(#ser,)* }
            }
        }

        #allow
        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                struct V;
                #allow
                impl<'de> ::serde::de::Visitor<'de> for V {
                    type Value = #name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(#expecting)
                    }
                    #(#visits)*
                }
                d.deserialize_any(V)
            }
        }
    }
}

fn dyn_parts(v: &DynVariant) -> (Ident, &str, TokenStream, bool, Option<&TypeRef>) {
    let DynVariant {
        ident: vi,
        wire,
        path: p,
        has_data,
        returns,
        deprecated: _,
    } = v;
    (ident(vi), wire, path(p), *has_data, returns.as_ref())
}

fn any_command_tokens(a: &AnyCommand, k: &TokenStream) -> TokenStream {
    let AnyCommand {
        meta,
        variants,
        unknown,
    } = a;
    let (name, attrs, allow) = meta_attrs(meta);
    let unknown = ident(unknown);
    let mut defs = Vec::new();
    let mut names = Vec::new();
    let mut dec = Vec::new();
    let mut ser = Vec::new();
    for v in variants {
        let (vi, wire, p, has_data, _) = dyn_parts(v);
        let doc = format!(" Command `{wire}`.");
        defs.push(quote!(#[doc = #doc] #vi(#p)));
        names.push(quote!(Self::#vi(_) => #wire));
        if has_data {
            dec.push(quote!(#wire => Self::#vi(#k::runtime::decode(arguments.unwrap_or("{}"))?)));
            ser.push(quote!(Self::#vi(a) => #k::runtime::serialize_request(s, #wire, ::std::option::Option::Some(a))));
        } else {
            dec.push(quote!(#wire => Self::#vi(#p)));
            ser.push(quote!(Self::#vi(_) => #k::runtime::serialize_request::<S, ()>(s, #wire, ::std::option::Option::None)));
        }
    }
    let dispatch = if dec.is_empty() {
        quote!(unknown())
    } else {
        quote! {
            ::std::result::Result::Ok(match execute {
                #(#dec,)*
                _ => return unknown(),
            })
        }
    };
    quote! {
        #attrs
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum #name {
            #(#defs,)*
            /// A command this schema does not know.
            #unknown {
                /// The command name.
                execute: ::std::string::String,
                /// Its arguments, if any.
                arguments: ::std::option::Option<::serde_json::Value>,
            },
        }

        #allow
        impl #name {
            /// The command's wire name.
            pub fn name(&self) -> &str {
                match self {
                    #(#names,)*
                    Self::#unknown { execute, .. } => execute,
                }
            }

            /// Decodes a request from its command name and the JSON text of its
            /// `arguments` (`None` when absent).
            pub fn from_request(execute: &str, arguments: ::std::option::Option<&str>) -> ::std::result::Result<Self, ::serde_json::Error> {
                let unknown = || -> ::std::result::Result<Self, ::serde_json::Error> {
                    ::std::result::Result::Ok(Self::#unknown {
                        execute: execute.into(),
                        arguments: arguments.map(#k::runtime::decode).transpose()?,
                    })
                };
                #dispatch
            }
        }

        #allow
        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                match self {
                    #(#ser,)*
                    Self::#unknown { execute, arguments } => #k::runtime::serialize_request(s, execute, arguments.as_ref()),
                }
            }
        }

        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                let w = <#k::runtime::RequestWire as ::serde::Deserialize>::deserialize(d)?;
                let text = w.arguments.as_ref().map(::std::string::ToString::to_string);
                Self::from_request(&w.execute, text.as_deref()).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    }
}

fn any_return_tokens(a: &AnyReturn, k: &TokenStream) -> TokenStream {
    let AnyReturn {
        meta,
        variants,
        unknown,
    } = a;
    let (name, attrs, allow) = meta_attrs(meta);
    let unknown = ident(unknown);
    let mut defs = Vec::new();
    let mut dec = Vec::new();
    let mut ser = Vec::new();
    for v in variants {
        let (vi, wire, _, _, returns) = dyn_parts(v);
        match returns {
            Some(t) => {
                let doc = format!(" The return of `{wire}`.");
                let t = ty(t);
                defs.push(quote!(#[doc = #doc] #vi(#t)));
                dec.push(quote!(#wire => Self::#vi(#k::runtime::decode(json)?)));
                ser.push(quote!(Self::#vi(v) => ::serde::Serialize::serialize(v, s)));
            }
            None => {
                let doc = format!(" The empty return (`{{}}`) of `{wire}`.");
                defs.push(quote!(#[doc = #doc] #vi));
                dec.push(quote!(#wire => {
                    #k::runtime::decode_empty(json)?;
                    Self::#vi
                }));
                ser.push(quote!(Self::#vi => #k::runtime::serialize_empty(s)));
            }
        }
    }
    let dispatch = if dec.is_empty() {
        quote! {
            let _ = command;
            #k::runtime::decode(json).map(Self::#unknown)
        }
    } else {
        quote! {
            ::std::result::Result::Ok(match command {
                #(#dec,)*
                _ => Self::#unknown(#k::runtime::decode(json)?),
            })
        }
    };
    quote! {
        #attrs
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum #name {
            #(#defs,)*
            /// The return of a command this schema does not know.
            #unknown(::serde_json::Value),
        }

        #allow
        impl #name {
            /// Decodes the JSON text of the `return` member of a reply to `command`.
            pub fn decode(command: &str, json: &str) -> ::std::result::Result<Self, ::serde_json::Error> {
                #dispatch
            }
        }

        #allow
        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                match self {
                    #(#ser,)*
                    Self::#unknown(v) => ::serde::Serialize::serialize(v, s),
                }
            }
        }
    }
}

fn event_enum_tokens(e: &EventEnum, k: &TokenStream) -> TokenStream {
    let EventEnum {
        meta,
        variants,
        unknown,
    } = e;
    let (name, attrs, allow) = meta_attrs(meta);
    let unknown = ident(unknown);
    let mut defs = Vec::new();
    let mut names = Vec::new();
    let mut stamps = Vec::new();
    let mut dec = Vec::new();
    let mut ser = Vec::new();
    for v in variants {
        let (vi, wire, p, has_data, _) = dyn_parts(v);
        let doc = format!(" Event `{wire}` and its timestamp.");
        defs.push(quote!(#[doc = #doc] #vi(#p, #k::Timestamp)));
        names.push(quote!(Self::#vi(..) => #wire));
        stamps.push(quote!(Self::#vi(_, t) => *t));
        if has_data {
            dec.push(
                quote!(#wire => Self::#vi(#k::runtime::decode(data.unwrap_or("{}"))?, timestamp)),
            );
            ser.push(quote!(Self::#vi(d, t) => #k::runtime::serialize_event(s, #wire, ::std::option::Option::Some(d), t)));
        } else {
            dec.push(quote!(#wire => Self::#vi(#p, timestamp)));
            ser.push(quote!(Self::#vi(_, t) => #k::runtime::serialize_event::<S, ()>(s, #wire, ::std::option::Option::None, t)));
        }
    }
    // Syntax only: clippy rejects a `match` with nothing but the fallback arm.
    let dispatch = if dec.is_empty() {
        quote!(unknown())
    } else {
        quote! {
            ::std::result::Result::Ok(match name {
                #(#dec,)*
                _ => return unknown(),
            })
        }
    };
    quote! {
        #attrs
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum #name {
            #(#defs,)*
            /// An event this schema does not know (sent by a newer QEMU).
            #unknown {
                /// The event name.
                name: ::std::string::String,
                /// Its data, if any.
                data: ::std::option::Option<::serde_json::Value>,
                /// When QEMU emitted it.
                timestamp: #k::Timestamp,
            },
        }

        #allow
        impl #name {
            /// The event's wire name.
            pub fn name(&self) -> &str {
                match self {
                    #(#names,)*
                    Self::#unknown { name, .. } => name,
                }
            }

            /// When QEMU emitted the event.
            pub fn timestamp(&self) -> #k::Timestamp {
                match self {
                    #(#stamps,)*
                    Self::#unknown { timestamp, .. } => *timestamp,
                }
            }
        }

        #allow
        impl #k::EventSet for #name {
            fn decode_event(name: &str, data: ::std::option::Option<&str>, timestamp: #k::Timestamp) -> ::std::result::Result<Self, ::serde_json::Error> {
                let unknown = || -> ::std::result::Result<Self, ::serde_json::Error> {
                    ::std::result::Result::Ok(Self::#unknown {
                        name: name.into(),
                        data: data.map(#k::runtime::decode).transpose()?,
                        timestamp,
                    })
                };
                #dispatch
            }
        }

        #allow
        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                match self {
                    #(#ser,)*
                    Self::#unknown { name, data, timestamp } => #k::runtime::serialize_event(s, name, data.as_ref(), timestamp),
                }
            }
        }

        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                let w = <#k::runtime::EventWire as ::serde::Deserialize>::deserialize(d)?;
                let text = w.data.as_ref().map(::std::string::ToString::to_string);
                <Self as #k::EventSet>::decode_event(&w.event, text.as_deref(), w.timestamp).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    }
}
