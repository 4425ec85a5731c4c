//! Builds the C test programs under `tests/c/` against the committed header
//! and the cdylib cargo built for this test run, runs them, and runs them
//! again under valgrind and with ASan/UBSan (`ffi-conventions.md` §10).
//!
//! Where the library comes from: the `[lib]` target has
//! `crate-type = ["rlib", "cdylib", "staticlib"]`, and cargo compiles all
//! three in the one rustc invocation that also produces the rlib this test
//! links against, writing them to `target/<profile>/deps/`, the directory of
//! this test's own executable. So `deps/libcardbridge.so` is always built from
//! the same sources as the test. `target/<profile>/libcardbridge.so` is NOT
//! used: cargo copies ("uplifts") artifacts there only for `cargo build`, not
//! for `cargo test`, so it can be stale. As a guard, the test fails if any
//! file under `src/` is newer than the library it is about to link.
//!
//! Environment: `CARDBRIDGE_NO_VALGRIND=1` skips the valgrind run; the
//! valgrind and sanitizer runs are also skipped (with a note) when the tool is
//! not installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const STRICT: [&str; 4] = ["-Wall", "-Wextra", "-Wpedantic", "-Werror"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Newest modification time of the files under `dir`.
fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        let t = if meta.is_dir() {
            newest_mtime(&entry.path())
        } else {
            meta.modified().unwrap()
        };
        newest = newest.max(t);
    }
    newest
}

/// `target/<profile>/deps/`, holding this test and the freshly built `libcardbridge.so`.
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("test binary has a directory").to_path_buf();
    let lib = dir.join("libcardbridge.so");
    let built = std::fs::metadata(&lib).and_then(|m| m.modified()).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): cargo builds the cdylib together with the rlib (crate-type in Cargo.toml)",
            lib.display()
        )
    });
    assert!(
        built >= newest_mtime(&root().join("src")),
        "{} is older than the sources; rebuild with cargo test",
        lib.display()
    );
    dir
}

/// A scratch directory unique to this process and test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cardbridge-c-programs-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Compiles `tests/c/<program>.c` as C11 with warnings as errors, linked to
/// the cdylib (rpath set), with `extra` flags. `None` when the compiler
/// rejects `extra` (e.g. no sanitizer runtime installed) and `optional` is set.
fn compile(program: &str, out_dir: &Path, extra: &[&str], optional: bool) -> Option<PathBuf> {
    let lib_dir = library_dir();
    let exe = out_dir.join(program);
    let mut cmd = Command::new("gcc");
    cmd.arg("-std=c11")
        .args(STRICT)
        .arg("-g")
        .args(extra)
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join("tests/c").join(format!("{program}.c")))
        .arg("-L")
        .arg(&lib_dir)
        // The exact file name: the staticlib libcardbridge.a sits in the same directory.
        .arg("-l:libcardbridge.so")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&exe);
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run gcc: {e}"));
    if !out.status.success() {
        if optional {
            println!("skipped: gcc {extra:?} failed:\n{}", show(&out));
            return None;
        }
        panic!("compiling {program}.c failed:\n{}", show(&out));
    }
    Some(exe)
}

/// Arguments of `alipayplus_flow`: the key fixtures directory (with its
/// trailing slash) and a SQLite path in `dir`.
fn flow_args(dir: &Path) -> Vec<String> {
    vec![
        format!("{}/", root().join("tests/fixtures/keys").display()),
        dir.join("flow.db").display().to_string(),
    ]
}

/// Runs `exe` (optionally through `wrapper`) with the library on the search path.
fn run(wrapper: &[&str], exe: &Path, args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = match wrapper.split_first() {
        Some((tool, tool_args)) => {
            let mut c = Command::new(tool);
            c.args(tool_args).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.args(args).env("LD_LIBRARY_PATH", library_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

/// The program's own verdict: exit 0 and its summary line says no failures.
fn assert_all_checks_passed(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" checks, 0 failed") && !stdout.contains("FAIL"),
        "the C program reported a failure:\n{}",
        show(out)
    );
}

fn tool_available(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn alipayplus_flow_passes_every_check() {
    let dir = scratch("native");
    let exe = compile("alipayplus_flow", &dir, &[], false).expect("compiled");
    let out = run(&[], &exe, &flow_args(&dir), &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_all_checks_passed(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Spot-check that the scenarios really ran (a program that exits early fails above).
    for line in [
        "duplicate answer is byte-identical",
        "tampered request gets ACCESS_DENIED",
        "answer has cardNo",
        "field \"issueCard.externalCustomerId\", limit \"64\"",
    ] {
        assert!(stdout.contains(line), "missing check {line:?}:\n{stdout}");
    }
    assert!(!dir.join("flow.db").exists(), "the program removes its database");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn alipayplus_flow_is_clean_under_valgrind() {
    if std::env::var_os("CARDBRIDGE_NO_VALGRIND").is_some() {
        println!("skipped: CARDBRIDGE_NO_VALGRIND is set");
        return;
    }
    if !tool_available("valgrind") {
        println!("skipped: valgrind is not installed");
        return;
    }
    let dir = scratch("valgrind");
    let exe = compile("alipayplus_flow", &dir, &[], false).expect("compiled");
    let out = run(
        &[
            "valgrind",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect",
        ],
        &exe,
        &flow_args(&dir),
        &[],
    );
    let report = String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = report
        .lines()
        .filter(|l| {
            [
                "ERROR SUMMARY",
                "definitely lost",
                "indirectly lost",
                "possibly lost",
                "still reachable",
                "All heap blocks",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .collect();
    println!("valgrind summary:\n{}", summary.join("\n"));
    assert_ne!(out.status.code(), Some(99), "valgrind found errors:\n{}", show(&out));
    assert_all_checks_passed(&out);
    assert!(
        report.contains("ERROR SUMMARY: 0 errors"),
        "valgrind reported errors:\n{report}"
    );
    assert!(
        report.contains("definitely lost: 0 bytes") || report.contains("All heap blocks were freed"),
        "valgrind found leaks:\n{report}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn alipayplus_flow_is_clean_under_asan_and_ubsan() {
    // Only the C side is instrumented; the Rust library is not, but its
    // malloc/free go through ASan's interceptors, so leaks and bad frees of
    // library objects by the C program are still caught.
    let dir = scratch("asan");
    let flags = [
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=undefined",
        "-fno-omit-frame-pointer",
    ];
    let Some(exe) = compile("alipayplus_flow", &dir, &flags, true) else {
        std::fs::remove_dir_all(&dir).ok();
        return;
    };
    let binary = std::fs::read(&exe).unwrap();
    assert!(
        binary.windows(b"__asan_init".len()).any(|w| w == b"__asan_init"),
        "ASan runtime was not linked"
    );
    let env = [
        ("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=98"),
        ("UBSAN_OPTIONS", "print_stacktrace=1"),
    ];
    let mut out = run(&[], &exe, &flow_args(&dir), &env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if stderr.contains("LeakSanitizer does not work under ptrace") {
        // E.g. inside a debugger or strace: keep the address checks, drop leak detection.
        println!("note: LeakSanitizer unavailable here, rerunning with detect_leaks=0");
        out = run(
            &[],
            &exe,
            &flow_args(&dir),
            &[("ASAN_OPTIONS", "detect_leaks=0:exitcode=98")],
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ERROR: AddressSanitizer")
            && !stderr.contains("ERROR: LeakSanitizer")
            && !stderr.contains("runtime error:"),
        "sanitizer report:\n{}",
        show(&out)
    );
    assert_all_checks_passed(&out);
    std::fs::remove_dir_all(&dir).ok();
}
