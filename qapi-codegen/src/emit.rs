//! IR -> tokens -> formatted text. Total and decision-free: every IR node is
//! destructured exhaustively, so a new IR field is a compile error here until handled.
//!
//! This file cuts the file into parts and holds the small printers every part uses;
//! `items` prints the types, `codec` their wire codec (each `impl` skeleton written once),
//! `dynamic` the `AnyCommand`, `AnyReturn` and `Event` enums.

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
    crate::print::print(|| part_tokens(file, part))
}

fn part_tokens(file: &File, part: &Part<'_>) -> TokenStream {
    let k = path(&file.krate);
    match part {
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

/// The `#[doc]` attributes of an item, one per line, as `lower` wrote them (held aside
/// while printing, see `print`).
fn docs(lines: &[String]) -> TokenStream {
    crate::print::doc_attrs(lines)
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
        wire: _,
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
    f.wire.clone()
}

mod codec;
mod dynamic;
mod items;

use dynamic::{any_command_tokens, any_return_tokens, event_enum_tokens};
use items::{item, module};
