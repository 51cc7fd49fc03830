//! Unit tests of the schema phase's helpers.

use super::*;
use crate::schema::index::relpath;

#[test]
fn relpaths() {
    assert_eq!(relpath("a.json", ""), "a.json");
    assert_eq!(relpath("include/../sub.json", ""), "sub.json");
    assert_eq!(
        relpath(
            "storage-daemon/qapi/../../qapi/common.json",
            "storage-daemon/qapi"
        ),
        "../../qapi/common.json"
    );
    assert_eq!(relpath("/x/y/z.json", "/x/q"), "../y/z.json");
    assert_eq!(dirname("d/e/f.json"), "d/e");
}
