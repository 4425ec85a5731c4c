//! Generates the C header from `src/ffi/` with a pinned cbindgen.
//!
//! The header always goes to `$OUT_DIR/include/cardbridge.h`. Only when
//! `CARDBRIDGE_UPDATE_HEADER=1` is set is it also copied over the committed
//! `include/cardbridge.h`; `tests/header.rs` fails when the two differ.
//!
//! It also names the shared library: on ELF targets the cdylib gets the SONAME
//! `libcardbridge.so.<MAJOR>.<MINOR>.<PATCH>` (no ABI stability in 0.x, so the
//! SONAME carries the full version, as cargo-c's `version_suffix_components = 3`
//! does), on macOS the install name `@rpath/libcardbridge.dylib` (untested here: no macOS machine).
//! A program linked against `target/<profile>/libcardbridge.so` records that
//! SONAME, so the build tree gets the matching symlink next to the library
//! (`libcardbridge.so.<version> -> libcardbridge.so`, in `target/<profile>/` and
//! in `deps/`), as an install does.

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

    name_shared_library(&out_dir);

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

/// SONAME / install name of the cdylib, and the build-tree symlink for the SONAME.
fn name_shared_library(out_dir: &Path) {
    let version = std::env::var("CARGO_PKG_VERSION").expect("CARGO_PKG_VERSION");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let family = std::env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    if matches!(os.as_str(), "macos" | "ios") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libcardbridge.dylib");
        return;
    }
    if family.split(',').all(|f| f != "unix") {
        return; // Windows: DLLs have no SONAME.
    }
    let soname = format!("libcardbridge.so.{version}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    // OUT_DIR is <target>/<profile>/build/cardbridge-<hash>/out; anything else: no symlink.
    let Some(profile_dir) = out_dir.ancestors().nth(3) else {
        return;
    };
    if out_dir.ancestors().nth(2).and_then(Path::file_name) != Some("build".as_ref()) {
        return;
    }
    for dir in [profile_dir.to_path_buf(), profile_dir.join("deps")] {
        let link = dir.join(&soname);
        if std::fs::read_link(&link).is_ok_and(|t| t == Path::new("libcardbridge.so")) {
            continue;
        }
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::create_dir_all(&dir);
        // Dangling until the linker writes libcardbridge.so next to it; best effort.
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink("libcardbridge.so", &link);
    }
}
