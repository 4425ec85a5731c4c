//! The version is set in one place, `Cargo.toml`; everything that repeats it must agree:
//! the C header's version macros, the pkg-config template, the Python package
//! (`pyproject.toml`, `_version.py`), the C# package (`CardBridge.csproj`, `AssemblyInfo.cs`,
//! `CardBridgeLibrary.ExpectedVersion`), the changelog, and the shared library's SONAME that
//! build.rs sets. Also: the licence text shipped in the Python package is the repository's.
//! Bump a version by editing every file this test names; it fails until they all agree.

use std::path::Path;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every text between `prefix` and the next `suffix` in `path` (at least one).
fn captured(path: &str, prefix: &str, suffix: &str) -> Vec<String> {
    let text = read(path);
    let mut found = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(prefix) {
        let after = &rest[start + prefix.len()..];
        let end = after
            .find(suffix)
            .unwrap_or_else(|| panic!("{path}: {prefix:?} without {suffix:?}"));
        found.push(after[..end].to_string());
        rest = &after[end..];
    }
    assert!(!found.is_empty(), "{path}: no {prefix:?}…{suffix:?} found");
    found
}

fn assert_all(path: &str, prefix: &str, suffix: &str, expected: &str) {
    for value in captured(path, prefix, suffix) {
        assert_eq!(
            value, expected,
            "{path}: {prefix}{value}{suffix} should carry Cargo.toml's {VERSION}"
        );
    }
}

#[test]
fn header_macros_are_the_crate_version() {
    let header = "include/cardbridge.h";
    assert_all(
        header,
        "#define CARDBRIDGE_VERSION_MAJOR ",
        "\n",
        env!("CARGO_PKG_VERSION_MAJOR"),
    );
    assert_all(
        header,
        "#define CARDBRIDGE_VERSION_MINOR ",
        "\n",
        env!("CARGO_PKG_VERSION_MINOR"),
    );
    assert_all(
        header,
        "#define CARDBRIDGE_VERSION_PATCH ",
        "\n",
        env!("CARGO_PKG_VERSION_PATCH"),
    );
}

#[test]
fn pkg_config_template_is_the_crate_version() {
    assert_all("include/cardbridge.pc.in", "\nVersion: ", "\n", VERSION);
}

#[test]
fn python_package_is_the_crate_version() {
    assert_all("bindings/python/pyproject.toml", "\nversion = \"", "\"", VERSION);
    assert_all(
        "bindings/python/cardbridge/_version.py",
        "__version__ = \"",
        "\"",
        VERSION,
    );
}

#[test]
fn csharp_package_is_the_crate_version() {
    assert_all("bindings/csharp/CardBridge.csproj", "<Version>", "</Version>", VERSION);
    let assembly = "bindings/csharp/src/AssemblyInfo.cs";
    // Assembly versions have four parts.
    assert_all(
        assembly,
        "[assembly: AssemblyVersion(\"",
        "\")]",
        &format!("{VERSION}.0"),
    );
    assert_all(
        assembly,
        "[assembly: AssemblyFileVersion(\"",
        "\")]",
        &format!("{VERSION}.0"),
    );
    assert_all(assembly, "[assembly: AssemblyInformationalVersion(\"", "\")]", VERSION);
    assert_all(
        "bindings/csharp/src/CardBridgeLibrary.cs",
        "public const string ExpectedVersion = \"",
        "\";",
        &format!("cardbridge/{VERSION}"),
    );
}

#[test]
fn changelog_has_a_section_for_this_version_or_unreleased() {
    let changelog = read("CHANGELOG.md");
    assert!(
        changelog.starts_with("# Changelog\n"),
        "CHANGELOG.md: Keep a Changelog title"
    );
    assert!(
        changelog.contains(&format!("\n## [{VERSION}] - ")) || changelog.contains("\n## [Unreleased]\n"),
        "CHANGELOG.md: no `## [{VERSION}] - <date>` nor `## [Unreleased]` section"
    );
}

#[test]
fn licence_is_the_apache_2_text_everywhere_it_ships() {
    let licence = read("LICENSE");
    for must in [
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "END OF TERMS AND CONDITIONS",
    ] {
        assert!(licence.contains(must), "LICENSE: {must:?} missing");
    }
    assert_eq!(
        read("bindings/python/LICENSE"),
        licence,
        "bindings/python/LICENSE is a copy of LICENSE"
    );
    for manifest in ["Cargo.toml", "bindings/python/pyproject.toml"] {
        assert!(
            read(manifest).contains("license = \"Apache-2.0\""),
            "{manifest}: license"
        );
    }
    assert!(
        read("bindings/csharp/CardBridge.csproj")
            .contains("<PackageLicenseExpression>Apache-2.0</PackageLicenseExpression>")
    );
}

/// The DT_SONAME of a little-endian ELF64 shared library, read without external tools.
#[cfg(all(target_os = "linux", target_pointer_width = "64", target_endian = "little"))]
fn elf_soname(path: &Path) -> Option<String> {
    let data = std::fs::read(path).unwrap();
    assert_eq!(&data[..4], b"\x7fELF", "{} is not ELF", path.display());
    let u16_at = |o: usize| u16::from_le_bytes(data[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
    let section = |i: usize| shoff + i * shentsize;
    for i in 0..shnum {
        let s = section(i);
        if u32_at(s + 4) != 6 {
            continue; // not SHT_DYNAMIC
        }
        let (offset, size, strtab) = (u64_at(s + 0x18), u64_at(s + 0x20), section(u32_at(s + 0x28)));
        let strtab_offset = u64_at(strtab + 0x18);
        for entry in (offset..offset + size).step_by(16) {
            if u64_at(entry) == 14 {
                // DT_SONAME: an offset into the dynamic string table
                let start = strtab_offset + u64_at(entry + 8);
                let end = start + data[start..].iter().position(|&b| b == 0).unwrap();
                return Some(String::from_utf8(data[start..end].to_vec()).unwrap());
            }
        }
    }
    None
}

#[test]
#[cfg(all(target_os = "linux", target_pointer_width = "64", target_endian = "little"))]
fn shared_library_soname_carries_the_full_version() {
    // cargo builds the cdylib into target/<profile>/deps/, next to this test's executable.
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let lib = deps.join("libcardbridge.so");
    let soname = format!("libcardbridge.so.{VERSION}");
    assert_eq!(elf_soname(&lib), Some(soname.clone()), "SONAME of {}", lib.display());
    // build.rs links the SONAME to the library, so programs linked in the build tree run.
    let link = deps.join(&soname);
    assert_eq!(
        std::fs::read_link(&link).ok().as_deref(),
        Some(Path::new("libcardbridge.so")),
        "{} -> libcardbridge.so",
        link.display()
    );
    // cargo-c names the installed file by the same rule (Cargo.toml [package.metadata.capi]).
    assert!(read("Cargo.toml").contains("version_suffix_components = 3"));
}
