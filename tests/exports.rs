//! The cdylib exports exactly the functions `include/cardbridge.h` declares
//! (both directions), read with `nm -D --defined-only`, and none of them is
//! test support: the platform emulators live in the `cardbridge` binary, not
//! in the library every POS process links. The `cardbridge_test_*` exports
//! (a deliberate panic, the handles' settable clocks) exist only in `ffi-test`
//! builds (the header declares them under `CARDBRIDGE_FFI_TEST`). scripts/package checks the release library.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const TEST_ONLY: [&str; 3] = [
    "cardbridge_test_panic",
    "cardbridge_test_alipayplus_set_clock",
    "cardbridge_test_wechatpay_set_clock",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>/deps/libcardbridge.so`: built with the rlib this test
/// links, so from the same sources (see tests/c_programs.rs).
fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let lib = exe
        .parent()
        .expect("test binary has a directory")
        .join("libcardbridge.so");
    assert!(
        lib.is_file(),
        "{} is missing: the cdylib is built with the rlib",
        lib.display()
    );
    lib
}

/// The `cardbridge_*` functions the header declares (`CARDBRIDGE_API ... name(`).
fn declared() -> BTreeSet<String> {
    let header = std::fs::read_to_string(root().join("include/cardbridge.h")).unwrap();
    let mut names = BTreeSet::new();
    for (i, _) in header.match_indices("CARDBRIDGE_API") {
        let rest = &header[i + "CARDBRIDGE_API".len()..];
        let Some(open) = rest.find('(') else { continue };
        let before = &rest[..open];
        // A declaration: the API macro, a return type, the name, then '(' (no ';' or '#' between).
        if before.contains(';') || before.contains('#') {
            continue;
        }
        if let Some(name) = before.split_whitespace().last().map(|w| w.trim_start_matches('*')) {
            if name.starts_with("cardbridge_") {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// The `cardbridge_*` symbols the library defines in its dynamic symbol table.
fn exported(lib: &Path) -> BTreeSet<String> {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nm (binutils): {e}"));
    assert!(
        out.status.success(),
        "nm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|name| name.starts_with("cardbridge_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_library_exports_exactly_the_functions_the_header_declares() {
    let mut header = declared();
    assert!(
        header.len() >= 50,
        "the header scan found only {} functions",
        header.len()
    );
    assert!(header.contains("cardbridge_version") && header.contains("cardbridge_alipayplus_begin"));
    if !cfg!(feature = "ffi-test") {
        for name in TEST_ONLY {
            header.remove(name);
        }
    }
    let library = exported(&cdylib());
    let missing: Vec<_> = header.difference(&library).collect();
    let undeclared: Vec<_> = library.difference(&header).collect();
    assert!(
        missing.is_empty(),
        "declared in the header but not exported: {missing:?}"
    );
    assert!(undeclared.is_empty(), "exported but not in the header: {undeclared:?}");
}

#[test]
fn no_test_support_is_exported() {
    let library = exported(&cdylib());
    let test_support: Vec<_> = library
        .iter()
        .filter(|name| {
            ["emulator", "platform_driver", "http_request", "sample_"]
                .iter()
                .any(|part| name.contains(part))
        })
        .collect();
    assert!(
        test_support.is_empty(),
        "the library exports test support: {test_support:?}"
    );
    for name in TEST_ONLY {
        assert_eq!(
            library.contains(name),
            cfg!(feature = "ffi-test"),
            "{name} is exported exactly in ffi-test builds"
        );
    }
    // Every test-only export is named here (a new one must be added above).
    let unlisted: Vec<_> = library
        .iter()
        .filter(|n| n.starts_with("cardbridge_test_") && !TEST_ONLY.contains(&n.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "test exports not listed in TEST_ONLY: {unlisted:?}"
    );
}
