//! The committed C header (`ffi-conventions.md` §6.3): it must be exactly what
//! build.rs generated, compile alone as C11 and C++17 with warnings as errors,
//! survive double inclusion across two linked translation units, and expose
//! only `cardbridge_*` / `CARDBRIDGE_*` names.

use std::path::{Path, PathBuf};
use std::process::Command;

const STRICT: [&str; 4] = ["-Wall", "-Wextra", "-Wpedantic", "-Werror"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn include_dir() -> PathBuf {
    root().join("include")
}

fn c_dir() -> PathBuf {
    root().join("tests/c")
}

/// Runs a compiler command and fails with its diagnostics.
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A scratch directory for object files, unique per test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cardbridge-header-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn committed_header_matches_generated() {
    let committed = std::fs::read_to_string(include_dir().join("cardbridge.h"))
        .expect("include/cardbridge.h is missing; run `CARDBRIDGE_UPDATE_HEADER=1 cargo build`");
    if committed != cardbridge::GENERATED_HEADER {
        let line = committed
            .lines()
            .zip(cardbridge::GENERATED_HEADER.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "at the end".to_string(), |i| format!("at line {}", i + 1));
        panic!(
            "include/cardbridge.h is out of date (first difference {line}). \
             Rebuild with `CARDBRIDGE_UPDATE_HEADER=1 cargo build` and commit include/cardbridge.h."
        );
    }
}

#[test]
fn header_compiles_alone_as_c11() {
    for extra in [None, Some("-DCARDBRIDGE_FFI_TEST")] {
        let mut cmd = Command::new("gcc");
        cmd.arg("-std=c11")
            .args(STRICT)
            .arg("-fsyntax-only")
            .arg("-I")
            .arg(include_dir());
        cmd.args(extra).arg(c_dir().join("header_only.c"));
        run(&mut cmd);
    }
}

#[test]
fn header_compiles_alone_as_cpp17() {
    for extra in [None, Some("-DCARDBRIDGE_FFI_TEST")] {
        let mut cmd = Command::new("g++");
        cmd.arg("-std=c++17")
            .args(STRICT)
            .arg("-fsyntax-only")
            .arg("-I")
            .arg(include_dir());
        cmd.args(extra).arg(c_dir().join("header_only.cpp"));
        run(&mut cmd);
    }
}

#[test]
fn header_survives_double_inclusion_in_two_linked_units() {
    let dir = scratch("double");
    let mut objects = Vec::new();
    for unit in ["double_include_a", "double_include_b"] {
        let obj = dir.join(format!("{unit}.o"));
        run(Command::new("gcc")
            .arg("-std=c11")
            .args(STRICT)
            .arg("-I")
            .arg(include_dir())
            .arg("-c")
            .arg(c_dir().join(format!("{unit}.c")))
            .arg("-o")
            .arg(&obj));
        objects.push(obj);
    }
    let exe = dir.join("double_include");
    run(Command::new("gcc").args(&objects).arg("-o").arg(&exe));
    let status = Command::new(&exe).status().expect("run the linked program");
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        status.success(),
        "double-include program reported a failed check: {status}"
    );
}

/// Strips `/* */` and `//` comments (the header has no string literals with
/// comment markers except inside the export macros, which carry no names).
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..].split_once("*/").map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Identifiers directly followed by `(` (function names, attribute calls).
fn names_before_paren(line: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        let ident = c.is_alphanumeric() || c == '_';
        match (ident, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if line[i..].trim_start().starts_with('(') {
                    names.push(&line[s..i]);
                }
                start = None;
            }
            _ => {}
        }
    }
    names
}

#[test]
fn header_only_exposes_cardbridge_names() {
    // cbindgen parses the whole crate; a pub const or #[repr] type of the core
    // must not leak into the C API.
    let code = strip_comments(cardbridge::GENERATED_HEADER);
    let allowed_macros = ["CARDBRIDGE_H", "CARDBRIDGE_API", "DEPRECATED_FUNC"];
    let calls_allowed = [
        "defined",
        "__attribute__",
        "__declspec",
        "visibility",
        "deprecated",
        "DEPRECATED_FUNC",
    ];
    let mut bad = Vec::new();
    for line in code.lines().map(str::trim) {
        if let Some(def) = line
            .strip_prefix("#define ")
            .or_else(|| line.strip_prefix("#  define "))
        {
            let name = def
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            if !name.starts_with("CARDBRIDGE_") && !allowed_macros.contains(&name) {
                bad.push(format!("macro {name}"));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        // A function-pointer typedef: `typedef void (*cardbridge_x)(...);` names cardbridge_x.
        if let Some((_, rest)) = line.strip_prefix("typedef ").and_then(|l| l.split_once("(*")) {
            let name = rest.split(')').next().unwrap_or("");
            if !name.starts_with("cardbridge_") {
                bad.push(format!("callback type {name}"));
            }
            continue;
        }
        let tokens: Vec<&str> = line
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|t| !t.is_empty())
            .collect();
        for pair in tokens.windows(2) {
            if matches!(pair[0], "enum" | "struct") && !pair[1].starts_with("cardbridge_") {
                bad.push(format!("{} {}", pair[0], pair[1]));
            }
        }
        for name in names_before_paren(line) {
            if !name.starts_with("cardbridge_") && !calls_allowed.contains(&name) {
                bad.push(format!("function {name}"));
            }
        }
        if let Some((name, _)) = line.split_once(" = ") {
            if !name.starts_with("CARDBRIDGE_") {
                bad.push(format!("enum constant {name}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "non-cardbridge items in the generated header: {bad:?}. cbindgen parses the whole crate: add \
         them to [export] exclude in include/cbindgen.toml (or limit build.rs to src/ffi/mod.rs)."
    );
}
