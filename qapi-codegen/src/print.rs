//! Tokens -> text: prettyplease, with documentation held aside.
//!
//! A third of the generated file is documentation, and tokenizing, parsing and printing
//! it line by line was a seventh of the generator's instructions. So while a part is
//! emitted, each doc block goes into the token stream as one short placeholder
//! attribute and is put back into the printed text, as the very lines prettyplease
//! would have printed (`///` and the line, trailing spaces trimmed, at the item's
//! indentation). A block prettyplease would print otherwise (a line that starts with
//! `/` or holds a newline) goes through prettyplease as it is; anything unexpected in
//! the printed text makes the part print again without placeholders. Either way the
//! bytes are those of printing every attribute.

use std::cell::RefCell;

use proc_macro2::TokenStream;
use quote::quote;

/// Starts a placeholder's doc text: a control character no QEMU doc line has (a line
/// that has it is printed the long way).
const MARK: char = '\u{1}';

thread_local! {
    /// The blocks held aside while the current part is emitted, each as its printed
    /// lines joined by `\n`; `None` when not holding (the exact path).
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// What one part holds aside.
#[derive(Default)]
struct Held {
    blocks: Vec<String>,
    /// A doc line of the part has [`MARK`]: printed as it is, it could read as a
    /// placeholder, so the part prints the long way.
    marked: bool,
}

/// The `#[doc]` attributes of one doc block (one line each), or its placeholder.
pub(crate) fn doc_attrs(lines: &[String]) -> TokenStream {
    if lines.is_empty() {
        return TokenStream::new();
    }
    let held = HELD.with(|held| {
        let mut held = held.borrow_mut();
        let held = held.as_mut()?;
        if lines.iter().any(|l| l.contains(MARK)) {
            held.marked = true;
        }
        held.blocks.push(printed_block(lines)?);
        Some(held.blocks.len() - 1)
    });
    match held {
        Some(n) => {
            let marker = format!("{MARK}{n}");
            quote!(#[doc = #marker])
        }
        None => quote!(#(#[doc = #lines])*),
    }
}

/// The lines prettyplease prints for these `#[doc]` attributes without their indentation,
/// if each is printed as a `///` line.
fn printed_block(lines: &[String]) -> Option<String> {
    let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 4).sum());
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with('/') || line.contains('\n') {
            return None;
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str("///");
        out.push_str(line.trim_end_matches(' '));
    }
    Some(out)
}

/// Prints what `emit` makes of a part: `emit` is called once with doc blocks held aside
/// and, only if they cannot be put back, once more without.
pub(crate) fn print(emit: impl Fn() -> TokenStream) -> String {
    HELD.with(|held| *held.borrow_mut() = Some(Held::default()));
    let tokens = emit();
    let held = HELD
        .with(|held| held.borrow_mut().take())
        .unwrap_or_default();
    if !held.marked {
        if let Some(text) = unparse(tokens).and_then(|text| restore(&text, &held.blocks)) {
            return text;
        }
    }
    match unparse(emit()) {
        Some(text) => text,
        // Unreachable for IR made by `lower`; say so in the output rather than panic.
        None => "compile_error!(\"qapi-codegen emitted invalid Rust\");\n".to_owned(),
    }
}

fn unparse(tokens: TokenStream) -> Option<String> {
    syn::parse2::<syn::File>(tokens)
        .ok()
        .map(|f| prettyplease::unparse(&f))
}

/// `text` with each placeholder line replaced by its block (a block's tokens may be
/// printed once, twice or not at all), or `None` for a placeholder that names no block.
fn restore(text: &str, blocks: &[String]) -> Option<String> {
    let placeholder = format!("///{MARK}");
    let extra: usize = blocks.iter().map(String::len).sum();
    let mut out = String::with_capacity(text.len() + extra + extra / 8);
    for line in text.split_inclusive('\n') {
        let body = line.trim_start_matches(' ');
        let Some(n) = body.strip_prefix(placeholder.as_str()) else {
            out.push_str(line);
            continue;
        };
        let block = blocks.get(n.trim_end_matches('\n').parse::<usize>().ok()?)?;
        let indent = &line[..line.len() - body.len()];
        for printed in block.split('\n') {
            out.push_str(indent);
            out.push_str(printed);
            out.push('\n');
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Prints the same tokens with and without holding their docs aside.
    fn both(blocks: &[Vec<String>]) -> (String, String) {
        let emit = || {
            let items = blocks.iter().enumerate().map(|(i, b)| {
                let d = doc_attrs(b);
                let name = quote::format_ident!("S{i}");
                quote!(#d pub struct #name { #d pub a: u8 })
            });
            quote!(pub mod m { #(#items)* })
        };
        let held = print(emit);
        let plain = unparse(emit()).unwrap();
        // The held path itself succeeds (no silent fall back to the long way).
        HELD.with(|h| *h.borrow_mut() = Some(Held::default()));
        let tokens = emit();
        let h = HELD.with(|h| h.borrow_mut().take()).unwrap();
        let restored = unparse(tokens).and_then(|t| restore(&t, &h.blocks));
        if !h.marked {
            assert_eq!(restored.as_deref(), Some(plain.as_str()));
        }
        (held, plain)
    }

    #[test]
    fn held_docs_print_the_same_bytes() {
        let cases = [
            lines(&[" One line."]),
            lines(&[" Trailing spaces.   ", "", " * a list", "   indented"]),
            lines(&["/starts with a slash", " then text"]),
            lines(&[" with\na newline"]),
            lines(&[" quotes \" and \\ backslashes, tabs\tand unicode é"]),
        ];
        let (held, plain) = both(&cases);
        assert_eq!(held, plain);
        assert!(held.contains("/// Trailing spaces.\n"), "{held}");
    }

    #[test]
    fn a_marked_line_prints_the_long_way() {
        let (held, plain) = both(&[lines(&[" a mark \u{1}0 inside"]), lines(&[" x"])]);
        assert_eq!(held, plain);
    }

    #[test]
    fn restoring_puts_each_block_where_its_placeholder_is() {
        let blocks = vec!["///a".to_owned(), "///b\n///c".to_owned()];
        let good = restore("  ///\u{1}1\nx\n///\u{1}0\n///\u{1}1\n", &blocks).unwrap();
        assert_eq!(good, "  ///b\n  ///c\nx\n///a\n///b\n///c\n");
        assert_eq!(restore("///\u{1}2\n", &blocks), None, "no such block");
    }
}
