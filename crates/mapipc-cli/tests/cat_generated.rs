//! `mapipc cat` of generated files, which report a size their contents do not have: a file
//! of `/proc` (0 bytes, with contents a mapping cannot show) is an error, not empty output;
//! a `/sys` attribute, whose file system cannot map, is named as such.

mod common;

use common::*;

#[test]
fn cat_of_a_generated_proc_file_is_an_error_not_empty_output() {
    let dir = TestDir::new();
    let out = dir.run(&["cat", "/proc/self/status"]);
    let line = out.error();
    assert!(out.stdout.is_empty());
    assert!(line.contains("/proc/self/status"), "{line}");
    assert!(line.contains("generated on read"), "{line}");
    // A really empty file is still printed as empty, successfully.
    dir.write("empty", b"");
    let out = dir.run(&["cat", "empty"]);
    out.ok();
    assert!(out.stdout.is_empty());
}

#[test]
fn cat_of_a_sys_attribute_says_it_cannot_be_mapped() {
    let attr = "/sys/kernel/uevent_seqnum";
    if !std::path::Path::new(attr).exists() {
        eprintln!("{attr} is missing: nothing to check here");
        return;
    }
    let dir = TestDir::new();
    let out = dir.run(&["cat", attr]);
    let line = out.error();
    assert!(line.contains(attr), "{line}");
    assert!(line.contains("cannot be memory-mapped"), "{line}");
}
