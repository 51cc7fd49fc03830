//! The wire codec of generated types: how members are written and read, and the
//! `runtime::Decode`, `Encode` and `Members` impl skeletons, each written once.

use super::*;

/// How one member of an object is written and read: the codec shared by structs and
/// unions.
pub(super) struct MemberCodec {
    /// Writes it into `w` (skipped when optional and `None`).
    pub(super) write: TokenStream,
    /// Its decoding slot.
    pub(super) slot: Slot,
}

/// A decoding slot: a local `Option` filled while the members are read.
pub(super) struct Slot {
    /// The local's name.
    pub(super) ident: Ident,
    /// The member's wire name.
    pub(super) key: String,
    /// The statement reading the value into the slot.
    pub(super) read: TokenStream,
    /// The member must be present.
    pub(super) required: bool,
    /// The field initializer in the struct literal.
    pub(super) init: TokenStream,
}

pub(super) fn member_codec(f: &Field, n: usize) -> MemberCodec {
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
pub(super) fn decode_object(slots: &[Slot], tail: TokenStream) -> TokenStream {
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
/// and through them `Encode` and serde's traits, all from `runtime::struct_codec!` (the
/// skeleton `decode_object` writes, as a macro: see its docs).
pub(super) fn struct_codec(name: &Ident, fields: &[Field], k: &TokenStream) -> TokenStream {
    let entries = fields.iter().enumerate().map(|(n, f)| {
        let i = proc_macro2::Literal::usize_unsuffixed(n);
        let (fi, wire) = (ident(&f.ident), wire_name(f));
        // `null` is "absent" for an optional member, unless the type itself accepts it.
        let read = if f.optional && !f.nullable {
            quote!(opt_into)
        } else {
            quote!(some_into)
        };
        let write = if f.optional {
            quote!(opt_member)
        } else {
            quote!(member)
        };
        quote!(#i #fi #wire #read #write)
    });
    let required = fields.iter().filter(|f| !f.optional).map(|f| {
        let (fi, wire) = (ident(&f.ident), wire_name(f));
        quote!(#fi #wire)
    });
    quote! {
        #k::runtime::struct_codec!(#name { #(#entries),* } [#(#required),*]);
    }
}

/// `impl runtime::Decode for T`, `body` reading `Self` from `r: &mut Reader`.
pub(super) fn decode_impl(
    name: &Ident,
    allow: &TokenStream,
    k: &TokenStream,
    body: TokenStream,
) -> TokenStream {
    quote! {
        #allow
        impl #k::runtime::Decode for #name {
            fn decode(r: &mut #k::runtime::Reader<'_>) -> #k::runtime::Result<Self> {
                #body
            }
        }
    }
}

/// `impl runtime::Encode for T`, `body` writing `self` into `w: &mut Writer`.
pub(super) fn encode_impl(
    name: &Ident,
    allow: &TokenStream,
    k: &TokenStream,
    body: TokenStream,
) -> TokenStream {
    quote! {
        #allow
        impl #k::runtime::Encode for #name {
            fn encode(&self, w: &mut #k::runtime::Writer<'_>) {
                #body
            }
        }
    }
}

/// `impl runtime::Members for T`, `body` writing the members into the writer `w` (named
/// `w`, or `_w` when the body does not use it).
pub(super) fn members_impl(
    name: &Ident,
    allow: &TokenStream,
    k: &TokenStream,
    w: TokenStream,
    body: TokenStream,
) -> TokenStream {
    quote! {
        #allow
        impl #k::runtime::Members for #name {
            fn members(&self, #w: &mut #k::runtime::Writer<'_>) {
                #body
            }
        }
    }
}
