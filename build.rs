//! Generates the C header from `src/ffi/` with a pinned cbindgen.
//!
//! The header always goes to `$OUT_DIR/include/cardbridge.h`. Only when
//! `CARDBRIDGE_UPDATE_HEADER=1` is set is it also copied over the committed
//! `include/cardbridge.h`; `tests/header.rs` fails when the two differ.

use std::path::{Path, PathBuf};

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let include_out = out_dir.join("include");
    std::fs::create_dir_all(&include_out).expect("create $OUT_DIR/include");

    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=include/cbindgen.toml");
    println!("cargo:rerun-if-env-changed=CARDBRIDGE_UPDATE_HEADER");

    let config = cbindgen::Config::from_file(crate_dir.join("include/cbindgen.toml"))
        .expect("include/cbindgen.toml is readable and valid");
    let generated = include_out.join("cardbridge.h");
    cbindgen::Builder::new()
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&generated);

    println!("cargo:include={}", include_out.display());

    if std::env::var("CARDBRIDGE_UPDATE_HEADER").as_deref() == Ok("1") {
        copy_if_changed(&generated, &crate_dir.join("include/cardbridge.h"));
    }
}

fn copy_if_changed(from: &Path, to: &Path) {
    let new = std::fs::read(from).expect("read generated header");
    if std::fs::read(to).ok().as_deref() != Some(new.as_slice()) {
        std::fs::write(to, new).expect("write include/cardbridge.h");
    }
}
