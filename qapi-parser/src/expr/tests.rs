//! Unit tests of the expression phase's name helpers.

use super::*;

#[test]
fn stems() {
    assert_eq!(name_stem("__org.qemu_x-foo"), Some("foo"));
    assert_eq!(name_stem("x-1abc"), Some("x-1abc"));
    assert_eq!(name_stem("_oops"), None);
    assert_eq!(name_stem("__com_redhat_x"), Some("redhat_x"));
    assert_eq!(name_stem(""), None);
    assert_eq!(name_stem("*oops"), None);
    assert_eq!(name_stem("X-Foo"), Some("Foo"));
}

#[test]
fn c_names() {
    assert!(c_name_starts_with("q-unix", "q_"));
    assert!(!c_name_starts_with("Q-unix", "q_"));
    assert!(c_name_starts_with("has-x", "has_"));
    assert_eq!(c_name("a.b-c"), "a_b_c");
}
