//! The generated types: structs (with their `Command`/`TypedEvent` impls), enums, unions
//! and alternates, constructors, and the command and event modules.

use super::codec::*;
use super::*;

/// `impl T { pub fn new(...) -> Self }` (nothing for `None`).
pub(super) fn constructor_tokens(
    name: &Ident,
    c: &Option<Constructor>,
    allow: &TokenStream,
) -> TokenStream {
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

pub(super) fn module(m: &Module, k: &TokenStream) -> TokenStream {
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

pub(super) fn item(i: &Item, k: &TokenStream) -> TokenStream {
    match i {
        Item::Struct(s) => struct_tokens(s, k),
        Item::Enum(e) => enum_tokens(e, k),
        Item::Union(u) => union_tokens(u, k),
        Item::Alternate(a) => alternate_tokens(a, k),
    }
}

pub(super) fn struct_tokens(s: &Struct, k: &TokenStream) -> TokenStream {
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
            let codec = struct_codec(&name, fields, k);
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
            let encode = encode_impl(
                &name,
                &allow,
                k,
                quote!(#k::runtime::Encode::encode(&self.0, w)),
            );
            let decode = decode_impl(
                &name,
                &allow,
                k,
                quote!(#k::runtime::Decode::decode(r).map(Self)),
            );
            quote! {
                #attrs
                #derive
                pub struct #name(pub #t);
                #encode
                #decode
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

pub(super) fn enum_tokens(e: &Enum, k: &TokenStream) -> TokenStream {
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

pub(super) fn union_tokens(u: &Union, k: &TokenStream) -> TokenStream {
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
    let members = members_impl(
        &name,
        &allow,
        k,
        quote!(w),
        quote! {
            #(#writes)*
            self.#tag_ident.members(w);
        },
    );
    // Two passes: the base members and the discriminator, then the branch.
    let body = decode_object(&slots, tail);
    let decode = decode_impl(
        &name,
        &allow,
        k,
        quote! {
            let start = r.mark();
            #body
        },
    );

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

        #members
        #decode
        #k::runtime::object_impls!(#name);
    }
}

pub(super) fn alternate_tokens(a: &Alternate, k: &TokenStream) -> TokenStream {
    let Alternate {
        meta,
        derives,
        variants,
        expecting,
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
        dec.push(quote!(_ => return ::std::result::Result::Err(r.unexpected(#expecting))));
    }
    let encode = encode_impl(&name, &allow, k, quote!(match self { #(#enc,)* }));
    let decode = decode_impl(
        &name,
        &allow,
        k,
        quote!(::std::result::Result::Ok(match r.kind()? { #(#dec,)* })),
    );
    quote! {
        #attrs
        #derive
        #[allow(clippy::large_enum_variant)]
        pub enum #name { #(#defs,)* }

        #encode
        #decode
        #k::runtime::serde_impls!(#name);
    }
}
