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
        version_check: _,
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
            let check = ident(&file.version_check);
            let a = any_command_tokens(&file.any_command, &k);
            let r = any_return_tokens(&file.any_return, &k);
            let e = event_enum_tokens(&file.event_enum, &k);
            quote! {
                /// This code was generated for a matching `qapi-runtime`.
                const _: () = #k::runtime::#check;
                #a #r #e
            }
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

fn derive_attr(d: &Derives) -> TokenStream {
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
        TypeRef::Versioned(p, t) => {
            let (p, t) = (path(p), ty(t));
            quote!(#p<#t>)
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

/// How one member of an object is written and read: the codec shared by structs and
/// unions.
struct MemberCodec {
    /// Writes it into `w` (skipped when optional and `None`).
    write: TokenStream,
    /// Its decoding slot.
    slot: Slot,
}

/// A decoding slot: a local `Option` filled while the members are read.
struct Slot {
    /// The local's name.
    ident: Ident,
    /// The member's wire name.
    key: String,
    /// The statement reading the value into the slot.
    read: TokenStream,
    /// The member must be present.
    required: bool,
    /// The field initializer in the struct literal.
    init: TokenStream,
}

fn member_codec(f: &Field, n: usize) -> MemberCodec {
    let wire = wire_name(f);
    let fi = ident(&f.ident);
    let slot = ident(&format!("f{n}"));
    let write = if f.optional {
        quote!(w.opt_member(#wire, &self.#fi);)
    } else {
        quote!(w.member(#wire, &self.#fi);)
    };
    // `null` is "absent" for an optional member, unless the type itself accepts it.
    let read = if f.optional && !f.nullable {
        quote!(r.opt_into(&mut #slot)?)
    } else {
        quote!(r.some_into(&mut #slot)?)
    };
    MemberCodec {
        write,
        slot: Slot {
            init: quote!(#fi: #slot),
            ident: slot,
            key: wire,
            read,
            required: !f.optional,
        },
    }
}

/// The `Decode` body of an object: one pass over its members, looked up by index in a
/// table of their keys (unknown ones skipped), each read by a shared out-of-line helper;
/// then every required member checked at once, `tail`, and the struct literal. Kept this
/// shape because it compiles to little machine code per member.
fn decode_object(slots: &[Slot], tail: TokenStream) -> TokenStream {
    let inits = slots.iter().map(|s| &s.init);
    if slots.is_empty() {
        return quote! {
            r.skip_object()?;
            #tail
            ::std::result::Result::Ok(Self {})
        };
    }
    let idents: Vec<_> = slots.iter().map(|s| &s.ident).collect();
    let keys = slots.iter().map(|s| &s.key);
    let read_loop = match slots {
        [only] => {
            let read = &only.read;
            quote! {
                while o.next_member(r, &[#(#keys),*])?.is_some() {
                    #read;
                }
            }
        }
        [init @ .., last] => {
            let arms = init.iter().enumerate().map(|(i, s)| {
                let i = proc_macro2::Literal::usize_unsuffixed(i);
                let read = &s.read;
                quote!(#i => #read,)
            });
            let last = &last.read;
            quote! {
                while let Some(i) = o.next_member(r, &[#(#keys),*])? {
                    match i {
                        #(#arms)*
                        _ => #last,
                    }
                }
            }
        }
        [] => TokenStream::new(),
    };
    let required: Vec<_> = slots.iter().filter(|s| s.required).collect();
    let check = match required.as_slice() {
        [] => TokenStream::new(),
        [one] => {
            let (id, key) = (&one.ident, &one.key);
            quote! {
                let Some(#id) = #id else {
                    return ::std::result::Result::Err(r.missing(#key));
                };
            }
        }
        many => {
            let ids: Vec<_> = many.iter().map(|s| &s.ident).collect();
            let keys = many.iter().map(|s| &s.key);
            quote! {
                let present = [#(#ids.is_some()),*];
                let (#(Some(#ids)),*) = (#(#ids),*) else {
                    return ::std::result::Result::Err(r.missing_among(&present, &[#(#keys),*]));
                };
            }
        }
    };
    let uses = if slots.len() > 1 || !required.is_empty() {
        quote!(
            use ::std::option::Option::{None, Some};
        )
    } else {
        quote!(
            use ::std::option::Option::None;
        )
    };
    quote! {
        // Scoped here: the schema may name its own types `Some` or `None`.
        #uses
        #(let mut #idents = None;)*
        let mut o = r.begin_object()?;
        #read_loop
        #check
        #tail
        ::std::result::Result::Ok(Self { #(#inits,)* })
    }
}

/// The codec of a struct with named fields: `Members` (so unions can embed it), `Decode`,
/// and through them `Encode` and serde's traits.
fn struct_codec(
    name: &Ident,
    fields: &[Field],
    allow: &TokenStream,
    k: &TokenStream,
) -> TokenStream {
    let mut writes = Vec::new();
    let mut slots = Vec::new();
    for (n, f) in fields.iter().enumerate() {
        let MemberCodec { write, slot } = member_codec(f, n);
        writes.push(write);
        slots.push(slot);
    }
    let w = if fields.is_empty() {
        quote!(_w)
    } else {
        quote!(w)
    };
    let body = decode_object(&slots, TokenStream::new());
    quote! {
        #allow
        impl #k::runtime::Members for #name {
            fn members(&self, #w: &mut #k::runtime::Writer<'_>) {
                #(#writes)*
            }
        }
        #allow
        impl #k::runtime::Decode for #name {
            fn decode(r: &mut #k::runtime::Reader<'_>) -> #k::runtime::Result<Self> {
                #body
            }
        }
        #k::runtime::object_impls!(#name);
    }
}

/// `impl T { pub fn new(...) -> Self }` (nothing for `None`).
fn constructor_tokens(name: &Ident, c: &Option<Constructor>, allow: &TokenStream) -> TokenStream {
    let Some(Constructor {
        docs: lines,
        allow_too_many_arguments,
        inits,
    }) = c
    else {
        return TokenStream::new();
    };
    let d = docs(lines);
    let many = if *allow_too_many_arguments {
        quote!(#[allow(clippy::too_many_arguments)])
    } else {
        TokenStream::new()
    };
    let mut params = Vec::new();
    let mut values = Vec::new();
    for Init { ident: fi, value } in inits {
        let fi = ident(fi);
        match value {
            InitValue::Param(t) => {
                let t = ty(t);
                params.push(quote!(#fi: #t));
                values.push(quote!(#fi));
            }
            InitValue::IntoString => {
                params.push(quote!(#fi: impl ::std::convert::Into<::std::string::String>));
                values.push(quote!(#fi: #fi.into()));
            }
            InitValue::None => values.push(quote!(#fi: ::std::option::Option::None)),
        }
    }
    quote! {
        #allow
        impl #name {
            #d
            #many
            pub fn new(#(#params),*) -> Self {
                Self { #(#values,)* }
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
        event,
        constructor,
    } = s;
    let (name, attrs, allow) = meta_attrs(meta);
    let derive = derive_attr(derives);
    let new = constructor_tokens(&name, constructor, &allow);
    let def = match shape {
        StructShape::Fields(fields) => {
            let defs = fields.iter().map(field);
            let codec = struct_codec(&name, fields, &allow, k);
            quote! {
                #attrs
                #derive
                pub struct #name { #(#defs,)* }
                #new
                #codec
            }
        }
        StructShape::Newtype(t) => {
            let t = ty(t);
            quote! {
                #attrs
                #derive
                pub struct #name(pub #t);
                #allow
                impl #k::runtime::Encode for #name {
                    fn encode(&self, w: &mut #k::runtime::Writer<'_>) {
                        #k::runtime::Encode::encode(&self.0, w)
                    }
                }
                #allow
                impl #k::runtime::Decode for #name {
                    fn decode(r: &mut #k::runtime::Reader<'_>) -> #k::runtime::Result<Self> {
                        #k::runtime::Decode::decode(r).map(Self)
                    }
                }
                #k::runtime::serde_impls!(#name);
            }
        }
        StructShape::Unit => quote! {
            #attrs
            #derive
            pub struct #name;
        },
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
                    #k::runtime::write_arguments(self, out)
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
        let (ret_arg, write_return) = if returns.is_some() {
            (quote!(ret), quote!(#k::runtime::write_arguments(ret, out)))
        } else {
            (quote!(_ret), quote!(#k::runtime::write_arguments(&#k::runtime::EmptyObject, out)))
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
                fn write_return(#ret_arg: &Self::Returns, out: &mut ::std::vec::Vec<u8>) -> ::std::result::Result<(), ::serde_json::Error> {
                    #write_return
                }
            }
        }
    });
    let ev = event.as_ref().map(|e| {
        let EventImpl {
            name: wire,
            has_data,
        } = e;
        let decode = if *has_data {
            quote!(#k::runtime::decode(data.unwrap_or("{}")))
        } else {
            quote!(::std::result::Result::Ok(Self))
        };
        let data = if *has_data { quote!(data) } else { quote!(_data) };
        let write = if *has_data {
            quote!(#k::runtime::Encode::encode(self, &mut #k::runtime::Writer::new(out)))
        } else {
            quote!(let _ = out;)
        };
        quote! {
            #allow
            impl #k::TypedEvent for #name {
                const NAME: &'static str = #wire;
                fn decode_data(#data: ::std::option::Option<&str>) -> ::std::result::Result<Self, ::serde_json::Error> {
                    #decode
                }
                fn write_data(&self, out: &mut ::std::vec::Vec<u8>) {
                    #write
                }
            }
        }
    });
    quote!(#def #imp #ev)
}

fn enum_tokens(e: &Enum, k: &TokenStream) -> TokenStream {
    let Enum {
        meta,
        derives,
        variants,
        unknown,
    } = e;
    let (name, attrs, allow) = meta_attrs(meta);
    let derive = derive_attr(derives);
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
        #k::runtime::enum_impls!(#name);
    }
}

fn union_tokens(u: &Union, k: &TokenStream) -> TokenStream {
    let Union {
        meta,
        derives,
        fields,
        branches,
        constructor,
    } = u;
    let (name, attrs, allow) = meta_attrs(meta);
    let new = constructor_tokens(&name, constructor, &allow);
    let derive = derive_attr(derives);
    let BranchEnum {
        meta: bmeta,
        variants,
        unknown,
    } = branches;
    let (bname, battrs, _) = meta_attrs(bmeta);
    let unknown = ident(unknown);

    // The base members, the discriminator among them.
    let mut defs = Vec::new();
    let mut writes = Vec::new();
    let mut slots = Vec::new();
    let mut base_names = Vec::new();
    let mut tag_ident = ident("tag");
    for f in fields {
        match f {
            UnionField::Base(f) => {
                defs.push(field(f));
                let MemberCodec { write, slot } = member_codec(f, slots.len());
                writes.push(write);
                slots.push(slot);
                base_names.push(wire_name(f));
            }
            UnionField::Tag {
                ident: fi,
                wire,
                docs: lines,
            } => {
                let fi = ident(fi);
                let d = docs(lines);
                defs.push(quote!(#d pub #fi: #bname));
                writes.push(quote!(w.member(#wire, self.#fi.tag());));
                slots.push(Slot {
                    ident: ident("tag"),
                    key: wire.clone(),
                    read: quote!(r.str_into(&mut tag)?),
                    required: true,
                    init: quote!(#fi: branch),
                });
                base_names.push(wire.clone());
                tag_ident = fi;
            }
        }
    }
    let tail = quote! {
        let branch = #bname::decode_branch(&tag, &mut r.at(start))?;
    };
    let body = decode_object(&slots, tail);

    // The branch enum.
    let mut bdefs = Vec::new();
    let mut tag_arms = Vec::new();
    let mut dec_arms = Vec::new();
    let mut member_arms = Vec::new();
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
            Some(t) => {
                let t = ty(t);
                bdefs.push(quote!(#d #vi(#t)));
                tag_arms.push(quote!(Self::#vi(_) => #wire));
                dec_arms.push(quote!(#wire => Self::#vi(#k::runtime::Decode::decode(r)?)));
                member_arms.push(quote!(Self::#vi(v) => #k::runtime::Members::members(v, w)));
            }
            None => {
                bdefs.push(quote!(#d #vi));
                tag_arms.push(quote!(Self::#vi => #wire));
                dec_arms.push(quote!(#wire => Self::#vi));
                member_arms.push(quote!(Self::#vi => {}));
            }
        }
    }
    quote! {
        #attrs
        #derive
        pub struct #name { #(#defs,)* }
        #new

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
            fn decode_branch(tag: &str, r: &mut #k::runtime::Reader<'_>) -> #k::runtime::Result<Self> {
                ::std::result::Result::Ok(match tag {
                    #(#dec_arms,)*
                    _ => Self::#unknown { tag: tag.into(), data: #k::runtime::members_except(r, &[#(#base_names),*])? },
                })
            }
            fn members(&self, w: &mut #k::runtime::Writer<'_>) {
                match self {
                    #(#member_arms,)*
                    Self::#unknown { data, .. } => #k::runtime::encode_members(data, w),
                }
            }
        }

        #allow
        impl #k::runtime::Members for #name {
            fn members(&self, w: &mut #k::runtime::Writer<'_>) {
                #(#writes)*
                self.#tag_ident.members(w);
            }
        }

        #allow
        impl #k::runtime::Decode for #name {
            fn decode(r: &mut #k::runtime::Reader<'_>) -> #k::runtime::Result<Self> {
                // Two passes: the base members and the discriminator, then the branch.
                let start = r.mark();
                #body
            }
        }
        #k::runtime::object_impls!(#name);
    }
}

fn alternate_tokens(a: &Alternate, k: &TokenStream) -> TokenStream {
    let Alternate {
        meta,
        derives,
        variants,
    } = a;
    let (name, attrs, allow) = meta_attrs(meta);
    let derive = derive_attr(derives);
    let mut defs = Vec::new();
    let mut enc = Vec::new();
    let mut dec = Vec::new();
    for v in variants {
        let AltVariant {
            ident: vi,
            docs: lines,
            kind,
        } = v;
        let vi = ident(vi);
        let d = docs(lines);
        let (payload, json) = match kind {
            AltKind::Str => (Some(quote!(::std::string::String)), quote!(Str)),
            AltKind::Enum(t) => (Some(ty(t)), quote!(Str)),
            AltKind::Int(p) => (Some(prim(*p)), quote!(Num)),
            AltKind::Number => (Some(quote!(f64)), quote!(Num)),
            AltKind::Bool => (Some(quote!(bool)), quote!(Bool)),
            AltKind::Null => (None, quote!(Null)),
            AltKind::Array(t) => (Some(ty(t)), quote!(Array)),
            AltKind::Object(t) => (Some(ty(t)), quote!(Object)),
        };
        match payload {
            Some(p) => {
                defs.push(quote!(#d #vi(#p)));
                enc.push(quote!(Self::#vi(v) => #k::runtime::Encode::encode(v, w)));
                dec.push(quote!(#k::runtime::Kind::#json => Self::#vi(r.value()?)));
            }
            None => {
                defs.push(quote!(#d #vi));
                enc.push(quote!(Self::#vi => w.null()));
                dec.push(quote!(#k::runtime::Kind::#json => {
                    r.null()?;
                    Self::#vi
                }));
            }
        }
    }
    // QAPI allows one branch per JSON type; with all six a fallback arm is unreachable.
    if variants.len() < 6 {
        let expecting = format!("alternate {name}");
        dec.push(quote!(_ => return ::std::result::Result::Err(r.unexpected(#expecting))));
    }
    quote! {
        #attrs
        #derive
        #[allow(clippy::large_enum_variant)]
        pub enum #name { #(#defs,)* }

        #allow
        impl #k::runtime::Encode for #name {
            fn encode(&self, w: &mut #k::runtime::Writer<'_>) {
                match self { #(#enc,)* }
            }
        }

        #allow
        impl #k::runtime::Decode for #name {
            fn decode(r: &mut #k::runtime::Reader<'_>) -> #k::runtime::Result<Self> {
                ::std::result::Result::Ok(match r.kind()? { #(#dec,)* })
            }
        }
        #k::runtime::serde_impls!(#name);
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

/// The body that decodes a command or event by its wire name: one `match` arm per known
/// name, the local `unknown` closure otherwise (alone when there are no arms: clippy
/// rejects a `match` with nothing but the fallback arm).
fn dispatch_by_name(name: TokenStream, arms: &[TokenStream]) -> TokenStream {
    if arms.is_empty() {
        return quote!(unknown());
    }
    quote! {
        ::std::result::Result::Ok(match #name {
            #(#arms,)*
            _ => return unknown(),
        })
    }
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
    let mut enc = Vec::new();
    for v in variants {
        let (vi, wire, p, has_data, _) = dyn_parts(v);
        let doc = format!(" Command `{wire}`.");
        defs.push(quote!(#[doc = #doc] #vi(#p)));
        names.push(quote!(Self::#vi(_) => #wire));
        if has_data {
            dec.push(quote!(#wire => Self::#vi(#k::runtime::decode(arguments.unwrap_or("{}"))?)));
            enc.push(quote!(Self::#vi(a) => #k::runtime::encode_request(w, #wire, ::std::option::Option::Some(a))));
        } else {
            dec.push(quote!(#wire => Self::#vi(#p)));
            enc.push(quote!(Self::#vi(_) => #k::runtime::encode_request(w, #wire, ::std::option::Option::None)));
        }
    }
    let dispatch = dispatch_by_name(quote!(execute), &dec);
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
        impl #k::runtime::Encode for #name {
            fn encode(&self, w: &mut #k::runtime::Writer<'_>) {
                match self {
                    #(#enc,)*
                    Self::#unknown { execute, arguments } => #k::runtime::encode_request(w, execute, arguments.as_ref().map(|a| a as &dyn #k::runtime::Encode)),
                }
            }
        }

        impl #k::runtime::Decode for #name {
            fn decode(r: &mut #k::runtime::Reader<'_>) -> #k::runtime::Result<Self> {
                let (execute, arguments) = #k::runtime::read_request(r)?;
                Self::from_request(&execute, arguments).map_err(#k::runtime::json_error)
            }
        }
        #k::runtime::serde_impls!(#name);
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
    let mut enc = Vec::new();
    for v in variants {
        let (vi, wire, _, _, returns) = dyn_parts(v);
        match returns {
            Some(t) => {
                let doc = format!(" The return of `{wire}`.");
                let t = ty(t);
                defs.push(quote!(#[doc = #doc] #vi(#t)));
                dec.push(quote!(#wire => Self::#vi(#k::runtime::decode(json)?)));
                enc.push(quote!(Self::#vi(v) => #k::runtime::Encode::encode(v, w)));
            }
            None => {
                let doc = format!(" The empty return (`{{}}`) of `{wire}`.");
                defs.push(quote!(#[doc = #doc] #vi));
                dec.push(quote!(#wire => {
                    #k::runtime::decode_empty(json)?;
                    Self::#vi
                }));
                enc.push(quote!(Self::#vi => #k::runtime::encode_empty(w)));
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
        impl #k::runtime::Encode for #name {
            fn encode(&self, w: &mut #k::runtime::Writer<'_>) {
                match self {
                    #(#enc,)*
                    Self::#unknown(v) => #k::runtime::Encode::encode(v, w),
                }
            }
        }
        #k::runtime::serialize_impl!(#name);
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
    let mut enc = Vec::new();
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
            enc.push(quote!(Self::#vi(d, t) => #k::runtime::encode_event(w, #wire, ::std::option::Option::Some(d), t)));
        } else {
            dec.push(quote!(#wire => Self::#vi(#p, timestamp)));
            enc.push(quote!(Self::#vi(_, t) => #k::runtime::encode_event(w, #wire, ::std::option::Option::None, t)));
        }
    }
    let dispatch = dispatch_by_name(quote!(name), &dec);
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
        impl #k::runtime::Encode for #name {
            fn encode(&self, w: &mut #k::runtime::Writer<'_>) {
                match self {
                    #(#enc,)*
                    Self::#unknown { name, data, timestamp } => #k::runtime::encode_event(w, name, data.as_ref().map(|d| d as &dyn #k::runtime::Encode), timestamp),
                }
            }
        }

        impl #k::runtime::Decode for #name {
            fn decode(r: &mut #k::runtime::Reader<'_>) -> #k::runtime::Result<Self> {
                let (name, data, timestamp) = #k::runtime::read_event(r)?;
                <Self as #k::EventSet>::decode_event(&name, data, timestamp).map_err(#k::runtime::json_error)
            }
        }
        #k::runtime::serde_impls!(#name);
    }
}
