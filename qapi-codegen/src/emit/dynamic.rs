//! The dynamic enums: `AnyCommand` (requests by name), `AnyReturn` (replies by command)
//! and `Event` (events by name, with their timestamps).

use super::codec::*;
use super::*;

/// A dynamic enum's variant, printed.
pub(super) struct DynParts<'a> {
    ident: Ident,
    wire: &'a str,
    path: TokenStream,
    has_data: bool,
    returns: Option<&'a TypeRef>,
    docs: TokenStream,
}

pub(super) fn dyn_parts(v: &DynVariant) -> DynParts<'_> {
    let DynVariant {
        ident: vi,
        wire,
        path: p,
        has_data,
        returns,
        docs: lines,
        deprecated: _,
    } = v;
    DynParts {
        ident: ident(vi),
        wire,
        path: path(p),
        has_data: *has_data,
        returns: returns.as_ref(),
        docs: docs(lines),
    }
}

/// The body that decodes a command or event by its wire name: one `match` arm per known
/// name, the local `unknown` closure otherwise (alone when there are no arms: clippy
/// rejects a `match` with nothing but the fallback arm).
pub(super) fn dispatch_by_name(name: TokenStream, arms: &[TokenStream]) -> TokenStream {
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

pub(super) fn any_command_tokens(a: &AnyCommand, k: &TokenStream) -> TokenStream {
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
        let DynParts {
            ident: vi,
            wire,
            path: p,
            has_data,
            returns: _,
            docs: d,
        } = dyn_parts(v);
        defs.push(quote!(#d #vi(#p)));
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
    let encode = encode_impl(
        &name,
        &allow,
        k,
        quote! {
            match self {
                #(#enc,)*
                Self::#unknown { execute, arguments } => #k::runtime::encode_request(w, execute, arguments.as_ref().map(|a| a as &dyn #k::runtime::Encode)),
            }
        },
    );
    let decode = decode_impl(
        &name,
        &TokenStream::new(),
        k,
        quote! {
            let (execute, arguments) = #k::runtime::read_request(r)?;
            Self::from_request(&execute, arguments).map_err(#k::runtime::json_error)
        },
    );
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

        #encode
        #decode
        #k::runtime::serde_impls!(#name);
    }
}

pub(super) fn any_return_tokens(a: &AnyReturn, k: &TokenStream) -> TokenStream {
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
        let DynParts {
            ident: vi,
            wire,
            path: _,
            has_data: _,
            returns,
            docs: d,
        } = dyn_parts(v);
        match returns {
            Some(t) => {
                let t = ty(t);
                defs.push(quote!(#d #vi(#t)));
                dec.push(quote!(#wire => Self::#vi(#k::runtime::decode(json)?)));
                enc.push(quote!(Self::#vi(v) => #k::runtime::Encode::encode(v, w)));
            }
            None => {
                defs.push(quote!(#d #vi));
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
    let encode = encode_impl(
        &name,
        &allow,
        k,
        quote! {
            match self {
                #(#enc,)*
                Self::#unknown(v) => #k::runtime::Encode::encode(v, w),
            }
        },
    );
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

        #encode
        #k::runtime::serialize_impl!(#name);
    }
}

pub(super) fn event_enum_tokens(e: &EventEnum, k: &TokenStream) -> TokenStream {
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
        let DynParts {
            ident: vi,
            wire,
            path: p,
            has_data,
            returns: _,
            docs: d,
        } = dyn_parts(v);
        defs.push(quote!(#d #vi(#p, #k::Timestamp)));
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
    let encode = encode_impl(
        &name,
        &allow,
        k,
        quote! {
            match self {
                #(#enc,)*
                Self::#unknown { name, data, timestamp } => #k::runtime::encode_event(w, name, data.as_ref().map(|d| d as &dyn #k::runtime::Encode), timestamp),
            }
        },
    );
    let decode = decode_impl(
        &name,
        &TokenStream::new(),
        k,
        quote! {
            let (name, data, timestamp) = #k::runtime::read_event(r)?;
            <Self as #k::EventSet>::decode_event(&name, data, timestamp).map_err(#k::runtime::json_error)
        },
    );
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

        #encode
        #decode
        #k::runtime::serde_impls!(#name);
    }
}
