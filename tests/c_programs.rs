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
//! The flow programs and the examples start the `cardbridge` binary built for
//! this test run (`CARDBRIDGE_BIN` = `CARGO_BIN_EXE_cardbridge`) as their
//! platform emulator and talk to its control API through
//! `examples/c/emulator_client.h` (a tiny loopback HTTP client); the library
//! itself contains no emulator.
//!
//! Also built and run here: the C and C++ examples (`examples/c/`,
//! `examples/cpp/`), natively and under valgrind; the C example once more
//! through the pkg-config file `include/cardbridge.pc.in`, linked shared and
//! static; and the C runner of the conformance suite and the verification
//! matrix (`tests/c/conformance.c`, which needs cJSON: Debian's `libcjson-dev`,
//! installed by `.ci/test-all`; its absence is a failure, not a skip).
//!
//! Gates: the valgrind runs, the ASan/UBSan runs and the pkg-config test need
//! tools that may be missing on a developer machine. In CI (`CI=true` or
//! `CI=1`, or `CARDBRIDGE_CI=1`; `.ci/test-all` sets `CI=true`) a missing
//! tool, a failed sanitizer build or `CARDBRIDGE_NO_VALGRIND` FAILS the test
//! with a message naming what to install. Outside CI the test passes with a
//! `*** SKIPPED ... ***` line written straight to stderr, so it shows even
//! though cargo hides the output of passing tests. `CARDBRIDGE_NO_VALGRIND=1`
//! skips the valgrind runs outside CI only.

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

/// The language of a test program and its compiler invocation.
#[derive(Clone, Copy)]
enum Lang {
    /// `gcc -std=c11`.
    C,
    /// `g++ -std=c++17`.
    Cxx,
}

/// Compiles `source` into `out_dir/<name>` with warnings as errors, linked to
/// the cdylib (rpath set): `extra` flags go before the source, `libs` after
/// the library. `None` when the compiler rejects `extra` (e.g. no sanitizer
/// runtime installed) and `optional` is set.
fn compile_source(
    source: &Path,
    lang: Lang,
    out_dir: &Path,
    extra: &[&str],
    libs: &[&str],
    optional: bool,
) -> Option<PathBuf> {
    let lib_dir = library_dir();
    let exe = out_dir.join(source.file_stem().expect("source has a name"));
    let (compiler, std) = match lang {
        Lang::C => ("gcc", "-std=c11"),
        Lang::Cxx => ("g++", "-std=c++17"),
    };
    let mut cmd = Command::new(compiler);
    cmd.arg(std)
        .args(STRICT)
        .arg("-g")
        .args(extra)
        .arg("-I")
        .arg(root().join("include"))
        // emulator_client.h and mini_json.h: the emulator's control API, shared with the examples.
        .arg("-I")
        .arg(root().join("examples/c"))
        .arg(source)
        .arg("-L")
        .arg(&lib_dir)
        // The exact file name: the staticlib libcardbridge.a sits in the same directory.
        .arg("-l:libcardbridge.so")
        .args(libs)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&exe);
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    if !out.status.success() {
        if optional {
            gate_missing(&format!("{compiler} {extra:?} failed:\n{}", show(&out)));
            return None;
        }
        panic!("compiling {} failed:\n{}", source.display(), show(&out));
    }
    Some(exe)
}

/// Compiles `tests/c/<program>.c` as C11 with warnings as errors, linked to
/// the cdylib (rpath set), with `extra` flags. `None` when the compiler
/// rejects `extra` (e.g. no sanitizer runtime installed) and `optional` is set.
fn compile(program: &str, out_dir: &Path, extra: &[&str], optional: bool) -> Option<PathBuf> {
    let source = root().join("tests/c").join(format!("{program}.c"));
    compile_source(&source, Lang::C, out_dir, extra, &[], optional)
}

/// Arguments of `alipayplus_flow` and `wechatpay_flow`: the key fixtures
/// directory (with its trailing slash) and a SQLite path in `dir`.
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
    // The programs start the emulator binary themselves (examples/c/emulator_client.h): this build's.
    cmd.args(args)
        .env("LD_LIBRARY_PATH", library_dir())
        .env("CARDBRIDGE_BIN", env!("CARGO_BIN_EXE_cardbridge"));
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

/// Whether this run is CI: `CI=true`/`CI=1` (set by most CI systems and by
/// `.ci/test-all`) or `CARDBRIDGE_CI=1`.
fn in_ci() -> bool {
    let set = |name: &str, values: &[&str]| {
        std::env::var(name).is_ok_and(|v| values.iter().any(|x| v.trim().eq_ignore_ascii_case(x)))
    };
    set("CI", &["true", "1"]) || set("CARDBRIDGE_CI", &["1", "true"])
}

/// Something a test needs is missing. In CI this fails the test; elsewhere it
/// writes a loud SKIPPED line to the real stderr (not the captured one, so
/// cargo shows it for a passing test too) and the caller returns.
fn gate_missing(what: &str) {
    assert!(
        !in_ci(),
        "REQUIRED IN CI (CI=true / CARDBRIDGE_CI=1), NOT SKIPPED: {what}\n\
         install the tool (bash .ci/test-all installs valgrind, gcc's sanitizer runtimes and pkg-config)"
    );
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n*** SKIPPED (not CI): {} ***\n",
        what.lines().next().unwrap_or(what)
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

/// Whether the valgrind runs should happen. In CI they always must: a
/// missing valgrind or `CARDBRIDGE_NO_VALGRIND` fails the test there.
fn valgrind_wanted() -> bool {
    if std::env::var_os("CARDBRIDGE_NO_VALGRIND").is_some() {
        gate_missing("valgrind run: CARDBRIDGE_NO_VALGRIND is set");
        return false;
    }
    if !tool_available("valgrind") {
        gate_missing("valgrind run: valgrind is not installed");
        return false;
    }
    true
}

/// Runs `exe` under valgrind (memcheck, full leak check), prints the summary
/// and asserts no errors and no definite or indirect leaks. Returns the
/// program's output for its own checks.
fn run_under_valgrind(exe: &Path, args: &[String]) -> Output {
    let out = run(
        &[
            "valgrind",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect",
        ],
        exe,
        args,
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
    println!("valgrind summary ({}):\n{}", exe.display(), summary.join("\n"));
    assert_ne!(out.status.code(), Some(99), "valgrind found errors:\n{}", show(&out));
    assert!(
        report.contains("ERROR SUMMARY: 0 errors"),
        "valgrind reported errors:\n{report}"
    );
    assert!(
        report.contains("definitely lost: 0 bytes") || report.contains("All heap blocks were freed"),
        "valgrind found leaks:\n{report}"
    );
    out
}

#[test]
fn alipayplus_flow_is_clean_under_valgrind() {
    if !valgrind_wanted() {
        return;
    }
    let dir = scratch("valgrind");
    let exe = compile("alipayplus_flow", &dir, &[], false).expect("compiled");
    let out = run_under_valgrind(&exe, &flow_args(&dir));
    assert_all_checks_passed(&out);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn alipayplus_flow_is_clean_under_asan_and_ubsan() {
    check_under_asan_and_ubsan("alipayplus_flow", "asan");
}

/// Builds `tests/c/<program>.c` with ASan and UBSan and runs it with
/// [`flow_args`]. A failed sanitizer build fails in CI and is a loud skip
/// elsewhere ([`gate_missing`]); the ASan runtime must really be linked.
fn check_under_asan_and_ubsan(program: &str, scratch_name: &str) {
    let source = root().join("tests/c").join(format!("{program}.c"));
    check_source_under_asan_and_ubsan(&source, scratch_name, flow_args, assert_all_checks_passed);
}

/// Builds `source` with ASan and UBSan, runs it with `args(dir)` and checks
/// its output with `verdict` (see [`check_under_asan_and_ubsan`]).
fn check_source_under_asan_and_ubsan(
    source: &Path,
    scratch_name: &str,
    args: fn(&Path) -> Vec<String>,
    verdict: fn(&Output),
) {
    // Only the C side is instrumented; the Rust library is not, but its
    // malloc/free go through ASan's interceptors, so leaks and bad frees of
    // library objects by the C program are still caught.
    let dir = scratch(scratch_name);
    let flags = [
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=undefined",
        "-fno-omit-frame-pointer",
    ];
    let Some(exe) = compile_source(source, Lang::C, &dir, &flags, &[], true) else {
        std::fs::remove_dir_all(&dir).ok();
        return;
    };
    assert_asan_linked(&exe);
    let env = [
        ("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=98"),
        ("UBSAN_OPTIONS", "print_stacktrace=1"),
    ];
    let mut out = run(&[], &exe, &args(&dir), &env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if stderr.contains("LeakSanitizer does not work under ptrace") {
        // E.g. inside a debugger or strace: keep the address checks, drop leak detection.
        println!("note: LeakSanitizer unavailable here, rerunning with detect_leaks=0");
        out = run(
            &[],
            &exe,
            &args(&dir),
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
    verdict(&out);
    std::fs::remove_dir_all(&dir).ok();
}

/// Proves the sanitizer build is real: `nm` must list `__asan_init` (an
/// undefined dynamic symbol resolved from libasan) and `__ubsan_handle_*`
/// hooks in the executable, and the loader must pull in libasan.
fn assert_asan_linked(exe: &Path) {
    let nm = Command::new("nm")
        .arg("-D")
        .arg(exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nm (binutils): {e}"));
    assert!(nm.status.success(), "nm -D failed:\n{}", show(&nm));
    let symbols = String::from_utf8_lossy(&nm.stdout);
    assert!(
        symbols
            .lines()
            .any(|l| l.split_whitespace().last() == Some("__asan_init")),
        "ASan runtime was not linked: `nm -D {}` lists no __asan_init",
        exe.display()
    );
    assert!(
        symbols.contains("__ubsan_handle_"),
        "UBSan runtime was not linked: `nm -D {}` lists no __ubsan_handle_*",
        exe.display()
    );
    let ldd = Command::new("ldd").arg(exe).output().expect("ldd runs");
    assert!(
        String::from_utf8_lossy(&ldd.stdout).contains("libasan"),
        "the loader does not pull in libasan:\n{}",
        show(&ldd)
    );
}

#[test]
fn ci_gate_fails_in_ci_and_skips_loudly_outside() {
    // The gate itself, run in a child copy of this test binary so the
    // environment can be set per run: with CARDBRIDGE_CI=1 it must fail.
    if std::env::var_os("CARDBRIDGE_GATE_PROBE").is_some() {
        gate_missing("gate probe: a deliberately missing tool");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let probe = |ci: bool| {
        let mut cmd = Command::new(&exe);
        cmd.args(["--exact", "ci_gate_fails_in_ci_and_skips_loudly_outside", "--nocapture"])
            .env("CARDBRIDGE_GATE_PROBE", "1")
            .env_remove("CI")
            .env_remove("CARDBRIDGE_CI");
        if ci {
            cmd.env("CI", "true");
        }
        cmd.output().unwrap()
    };
    let in_ci = probe(true);
    assert!(!in_ci.status.success(), "the gate passed in CI:\n{}", show(&in_ci));
    assert!(
        String::from_utf8_lossy(&in_ci.stdout).contains("REQUIRED IN CI")
            || String::from_utf8_lossy(&in_ci.stderr).contains("REQUIRED IN CI"),
        "{}",
        show(&in_ci)
    );
    let outside = probe(false);
    assert!(outside.status.success(), "{}", show(&outside));
    assert!(
        String::from_utf8_lossy(&outside.stderr).contains("*** SKIPPED (not CI): gate probe"),
        "{}",
        show(&outside)
    );
}

#[test]
fn sanitizer_gate_fails_in_ci_when_the_build_breaks() {
    // A sanitizer flag gcc does not know stands in for a missing runtime:
    // with CI set, the build failure must fail the test, not skip it.
    if std::env::var_os("CARDBRIDGE_GATE_PROBE").is_some() {
        let dir = scratch("broken-asan");
        let flags = ["-fsanitize=address,undefined", "-fsanitize=no-such-sanitizer"];
        let exe = compile("alipayplus_flow", &dir, &flags, true);
        std::fs::remove_dir_all(&dir).ok();
        assert!(exe.is_none(), "the broken build unexpectedly succeeded");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(&exe)
        .args([
            "--exact",
            "sanitizer_gate_fails_in_ci_when_the_build_breaks",
            "--nocapture",
        ])
        .env("CARDBRIDGE_GATE_PROBE", "1")
        .env("CARDBRIDGE_CI", "1")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a broken sanitizer build passed in CI:\n{}",
        show(&out)
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("REQUIRED IN CI") && text.contains("no-such-sanitizer"),
        "{text}"
    );
}

// ---- the WeChat Pay card opening --------------------------------------------

/// `wechatpay_flow`'s own verdict, plus the lines that prove each scenario
/// really ran (a program that exits early fails here).
fn assert_wechatpay_flow_passed(out: &Output) {
    assert_all_checks_passed(out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "signed callback reaches the host as an event",
        "event carries the decrypted phone in cleartext",
        "answer says SUCCESS",
        "duplicate is acknowledged without an event",
        "WECHATPAY/SIGNTEST probe is refused with 401 (got 401)",
        "10-minute-old callback is refused with 401 (got 401)",
        "answer shows the card EFFECTIVE",
        "answer carries the decrypted phone",
        "emulator applied one confirm (1)",
        "second confirm did not reach the emulator (1 request)",
        "CARDBRIDGE_RESULT_VALIDATION, field \"confirm.card_color\"",
        "template answer shows CARD_EFFECTIVE",
        "member left: card INVALID",
    ] {
        assert!(stdout.contains(line), "missing check {line:?}:\n{stdout}");
    }
}

#[test]
fn wechatpay_flow_passes_every_check() {
    let dir = scratch("wechat-native");
    let exe = compile("wechatpay_flow", &dir, &[], false).expect("compiled");
    let out = run(&[], &exe, &flow_args(&dir), &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_wechatpay_flow_passed(&out);
    assert!(!dir.join("flow.db").exists(), "the program removes its database");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn wechatpay_flow_is_clean_under_valgrind() {
    if !valgrind_wanted() {
        return;
    }
    let dir = scratch("wechat-valgrind");
    let exe = compile("wechatpay_flow", &dir, &[], false).expect("compiled");
    let out = run_under_valgrind(&exe, &flow_args(&dir));
    assert_wechatpay_flow_passed(&out);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn wechatpay_flow_is_clean_under_asan_and_ubsan() {
    check_under_asan_and_ubsan("wechatpay_flow", "wechat-asan");
}

// ---- bring your own transport (tests/c/byo_transport.c, examples/c/byo_transport_curl.c) ----

/// `byo_transport`'s own verdict, plus the lines that prove each scenario ran.
fn assert_byo_transport_passed(out: &Output) {
    assert_all_checks_passed(out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "nothing sent by the library",
        "the 500 gave a retry request after a wait (2 requests)",
        "duplicate answered from the outbox, byte-identical",
        "CARDBRIDGE_RESULT_INVALID_PARAMETER, field \"reply\"",
        "an entry that existed before starts with a read-back",
        "after the unverifiable answer: a read-back, never a blind re-send (2 requests)",
        "the read-back shows the card EFFECTIVE",
    ] {
        assert!(stdout.contains(line), "missing check {line:?}:\n{stdout}");
    }
}

#[test]
fn byo_transport_passes_every_check() {
    let dir = scratch("byo-native");
    let exe = compile("byo_transport", &dir, &[], false).expect("compiled");
    let out = run(&[], &exe, &flow_args(&dir), &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_byo_transport_passed(&out);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn byo_transport_is_clean_under_valgrind() {
    if !valgrind_wanted() {
        return;
    }
    let dir = scratch("byo-valgrind");
    let exe = compile("byo_transport", &dir, &[], false).expect("compiled");
    let out = run_under_valgrind(&exe, &flow_args(&dir));
    assert_byo_transport_passed(&out);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn byo_transport_is_clean_under_asan_and_ubsan() {
    check_under_asan_and_ubsan("byo_transport", "byo-asan");
}

/// The libcurl example (needs libcurl4-openssl-dev, installed by `.ci/test-all`;
/// its absence is a compile failure, not a skip).
#[test]
fn byo_transport_curl_example_issues_a_card_through_a_retry() {
    let dir = scratch("byo-curl");
    let source = root().join("examples/c/byo_transport_curl.c");
    let exe = compile_source(&source, Lang::C, &dir, &[], &["-lcurl"], false).expect("compiled");
    let keys = format!("{}/", root().join("tests/fixtures/keys").display());
    let out = run(&[], &exe, &["--keys".into(), keys], &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout.contains("/v2/pds/memberships/issueCard -> HTTP 500"), "{stdout}");
    assert!(stdout.contains("/v2/pds/memberships/issueCard -> HTTP 200"), "{stdout}");
    assert!(
        stdout.contains("issueCard over libcurl: 2 request(s) sent; verified answer {"),
        "{stdout}"
    );
    assert!(stdout.contains("\"cardNo\":\"EMU"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

// ---- examples/c and examples/cpp ------------------------------------------

/// Arguments of the CRM examples: the test keys and a SQLite file in `dir`.
fn crm_args(dir: &Path, db: &str) -> Vec<String> {
    vec![
        "--keys".into(),
        format!("{}/", root().join("tests/fixtures/keys").display()),
        "--db".into(),
        dir.join(db).display().to_string(),
    ]
}

/// The CRM examples' own verdict, plus the scenario lines that prove each
/// step really ran (a program that stops early fails here). `hits` is how
/// many issueCard requests the emulator must have seen: one per attempt.
fn assert_crm_run_succeeded(out: &Output, hits: usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CRM run finished: 0 unexpected outcome(s)"),
        "the CRM example reported a problem:\n{}",
        show(out)
    );
    for line in [
        "resume_pending report: []",
        "CRM: new member M-000002 (John Doe)",
        "issueCard: card EMU000000000000000000000001 issued to M-000002",
        "cardbridge answered by itself",
        "\"resultCode\":\"PROCESS_FAIL\"",
        "CRM: ana@example.com is already member M-000001 -> linked",
        "issueCard failed: CARDBRIDGE_RESULT_REMOTE_UNKNOWN (501)",
        "kept for M-000001",
        "resumed: card EMU000000000000000000000002 issued to M-000001",
        "issueCard failed: CARDBRIDGE_RESULT_REMOTE_FAILED (500)",
        "platform answered: F PROCESS_FAIL \"membership programme paused\"",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let emulator = format!("emulator: {hits} issueCard requests, 2 cards issued");
    assert!(stdout.contains(&emulator), "missing {emulator:?} in:\n{stdout}");
    assert!(!stdout.contains("UNEXPECTED"), "{stdout}");
}

fn crm_c_example(dir: &Path) -> PathBuf {
    let source = root().join("examples/c/crm_integration.c");
    compile_source(&source, Lang::C, dir, &[], &[], false).expect("compiled")
}

fn crm_cpp_example(dir: &Path) -> PathBuf {
    let source = root().join("examples/cpp/crm_raii.cpp");
    compile_source(&source, Lang::Cxx, dir, &[], &[], false).expect("compiled")
}

#[test]
fn crm_integration_example_runs_with_a_built_configuration() {
    let dir = scratch("crm-c");
    let exe = crm_c_example(&dir);
    let out = run(&[], &exe, &crm_args(&dir, "crm.db"), &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_crm_run_succeeded(&out, 5);
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration built in code"));
    assert!(dir.join("crm.db").exists(), "the store lives in the --db file");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn crm_integration_example_runs_with_a_configuration_file() {
    let dir = scratch("crm-c-file");
    let exe = crm_c_example(&dir);
    let key = |name: &str| std::fs::read_to_string(root().join("tests/fixtures/keys").join(name)).unwrap();
    // The file's own client id and retry budget must be the ones used.
    let config = serde_json::json!({
        "client_id": "2022FILE_CLIENT",
        "merchant_private_key": key("test_merchant_private.pem"),
        "platform_public_key": key("test_platform_public.pem"),
        "connect_timeout_ms": 10000,
        "read_timeout_ms": 60000,
        "retry": {"max_attempts": 3, "base_delay_ms": 5, "max_delay_ms": 20},
    });
    let file = dir.join("crm-config.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let mut args = crm_args(&dir, "crm.db");
    args.extend(["--config".to_string(), file.display().to_string()]);
    let out = run(&[], &exe, &args, &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    // The file's retry budget: 3 attempts answered U instead of 2, so one more request.
    assert_crm_run_succeeded(&out, 6);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("configuration {}", file.display())),
        "{stdout}"
    );
    assert!(stdout.contains("outcome unknown after 3 attempt(s)"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn crm_integration_example_refuses_a_bad_configuration_file() {
    let dir = scratch("crm-c-bad");
    let exe = crm_c_example(&dir);
    let file = dir.join("bad.json");
    std::fs::write(
        &file,
        br#"{"client_id":"X","merchant_private_key":"not a key","platform_public_key":"no"}"#,
    )
    .unwrap();
    let mut args = crm_args(&dir, "crm.db");
    args.extend(["--config".to_string(), file.display().to_string()]);
    let out = run(&[], &exe, &args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout.contains("cardbridge_alipayplus_new failed: CARDBRIDGE_RESULT_INVALID_KEY (101)")
            && stdout.contains("message: config.merchant_private_key"),
        "{}",
        show(&out)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn crm_integration_example_is_clean_under_valgrind() {
    if !valgrind_wanted() {
        return;
    }
    let dir = scratch("crm-c-valgrind");
    let exe = crm_c_example(&dir);
    let out = run_under_valgrind(&exe, &crm_args(&dir, "crm.db"));
    assert_crm_run_succeeded(&out, 5);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn crm_raii_example_runs() {
    let dir = scratch("crm-cpp");
    let exe = crm_cpp_example(&dir);
    let out = run(&[], &exe, &crm_args(&dir, "crm.db"), &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_crm_run_succeeded(&out, 5);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn crm_raii_example_is_clean_under_valgrind() {
    if !valgrind_wanted() {
        return;
    }
    let dir = scratch("crm-cpp-valgrind");
    let exe = crm_cpp_example(&dir);
    let out = run_under_valgrind(&exe, &crm_args(&dir, "crm.db"));
    assert_crm_run_succeeded(&out, 5);
    std::fs::remove_dir_all(&dir).ok();
}

/// The WeChat brand lifecycle example's own verdict, plus the lines that
/// prove each step really ran (a program that stops early fails here).
fn assert_lifecycle_succeeded(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("lifecycle finished: 0 unexpected outcome(s)"),
        "the lifecycle example reported a problem:\n{}",
        show(out)
    );
    for line in [
        "ok: card template created (CARD_EFFECTIVE)",
        "CRM: new member for card 478515832665 (phone received in cleartext)",
        "ok: event acknowledged, member created",
        "cardbridge answered by itself",
        "ok: acknowledged, the CRM not asked again",
        "card 478515832665: EFFECTIVE after 2 attempt(s)",
        "ok: confirmed exactly once on WeChat's side",
        "ok: points synced",
        "ok: feed posted",
        "CRM: exchange confirmed (",
        "ok: exchange event handled and confirmed",
        "field:   invalidateUserCard.invalid_reason",
        "ok: card invalidated",
        "[log] INFO cardbridge::",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("UNEXPECTED"), "{stdout}");
    // The log hook gets identifiers and labels, never the member's phone.
    assert!(
        !stdout.lines().any(|l| l.contains("[log]") && l.contains("13800000000")),
        "{stdout}"
    );
}

fn lifecycle_example(dir: &Path) -> PathBuf {
    let source = root().join("examples/c/wechat_brand_lifecycle.c");
    compile_source(&source, Lang::C, dir, &[], &[], false).expect("compiled")
}

#[test]
fn wechat_brand_lifecycle_example_runs() {
    let dir = scratch("lifecycle-c");
    let exe = lifecycle_example(&dir);
    let out = run(&[], &exe, &crm_args(&dir, "brand.db"), &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_lifecycle_succeeded(&out);
    assert!(dir.join("brand.db").exists(), "the store lives in the --db file");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn wechat_brand_lifecycle_example_is_clean_under_valgrind() {
    if !valgrind_wanted() {
        return;
    }
    let dir = scratch("lifecycle-c-valgrind");
    let exe = lifecycle_example(&dir);
    let out = run_under_valgrind(&exe, &crm_args(&dir, "brand.db"));
    assert_lifecycle_succeeded(&out);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn wechat_brand_lifecycle_example_is_clean_under_asan_and_ubsan() {
    let source = root().join("examples/c/wechat_brand_lifecycle.c");
    check_source_under_asan_and_ubsan(
        &source,
        "lifecycle-c-asan",
        |dir| crm_args(dir, "brand.db"),
        assert_lifecycle_succeeded,
    );
}

// ---- pkg-config ------------------------------------------------------------

/// Renders `include/cardbridge.pc.in` into `dir/cardbridge.pc` for the build
/// tree: prefix = the repository, libdir = `lib_dir`, includedir = `include/`.
fn render_pc(dir: &Path, lib_dir: &Path) {
    let template = std::fs::read_to_string(root().join("include/cardbridge.pc.in")).unwrap();
    let rendered = template
        .replace("@PREFIX@", &root().display().to_string())
        .replace("@LIBDIR@", &lib_dir.display().to_string())
        .replace("@INCLUDEDIR@", "${prefix}/include");
    assert!(!rendered.contains('@'), "unrendered placeholder left:\n{rendered}");
    std::fs::write(dir.join("cardbridge.pc"), rendered).unwrap();
}

/// `pkg-config <args> cardbridge` with `PKG_CONFIG_PATH=dir`, split into words.
fn pkg_config(dir: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("cardbridge")
        .env("PKG_CONFIG_PATH", dir)
        .output()
        .expect("pkg-config runs");
    assert!(out.status.success(), "pkg-config {args:?} failed:\n{}", show(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Builds the C example with exactly the flags pkg-config gives.
fn build_with_flags(source: &Path, exe: &Path, flags: &[String]) {
    let out = Command::new("gcc")
        .arg("-std=c11")
        .args(STRICT)
        .arg(source)
        .args(flags)
        .arg("-o")
        .arg(exe)
        .output()
        .expect("gcc runs");
    assert!(out.status.success(), "gcc with {flags:?} failed:\n{}", show(&out));
}

#[test]
fn pkg_config_file_builds_the_c_example_shared_and_static() {
    if !tool_available("pkg-config") {
        gate_missing("pkg-config test: pkg-config is not installed (.ci/test-all installs it)");
        return;
    }
    let lib_dir = library_dir();
    let dir = scratch("pkg-config");
    render_pc(&dir, &lib_dir);
    assert_eq!(pkg_config(&dir, &["--modversion"]), [env!("CARGO_PKG_VERSION")]);
    let flags = pkg_config(&dir, &["--cflags", "--libs"]);
    assert_eq!(
        flags,
        [
            format!("-I{}/include", root().display()),
            format!("-L{}", lib_dir.display()),
            "-lcardbridge".to_string(),
        ]
    );
    let source = root().join("examples/c/crm_integration.c");

    // Shared: -lcardbridge picks libcardbridge.so; the loader finds it through LD_LIBRARY_PATH.
    let shared = dir.join("crm_shared");
    build_with_flags(&source, &shared, &flags);
    let out = run(&[], &shared, &crm_args(&dir, "shared.db"), &[]);
    assert_crm_run_succeeded(&out, 5);

    // Static: a libdir holding only libcardbridge.a, linked with Libs.private.
    let static_lib = dir.join("static-lib");
    std::fs::create_dir_all(&static_lib).unwrap();
    std::os::unix::fs::symlink(lib_dir.join("libcardbridge.a"), static_lib.join("libcardbridge.a")).unwrap();
    render_pc(&dir, &static_lib);
    let flags = pkg_config(&dir, &["--static", "--cflags", "--libs"]);
    for private in ["-lpthread", "-ldl", "-lm"] {
        assert!(flags.iter().any(|f| f == private), "{private} missing from {flags:?}");
    }
    let linked = dir.join("crm_static");
    build_with_flags(&source, &linked, &flags);
    let binary = std::fs::read(&linked).unwrap();
    assert!(
        !binary
            .windows(b"libcardbridge.so".len())
            .any(|w| w == b"libcardbridge.so"),
        "the static build still refers to libcardbridge.so"
    );
    // No LD_LIBRARY_PATH and no rpath: this only runs if the library is inside.
    let out = Command::new(&linked)
        .args(crm_args(&dir, "static.db"))
        .env_remove("LD_LIBRARY_PATH")
        .env("CARDBRIDGE_BIN", env!("CARGO_BIN_EXE_cardbridge"))
        .output()
        .unwrap();
    assert_crm_run_succeeded(&out, 5);
    std::fs::remove_dir_all(&dir).ok();
}

// ---- the conformance suite's C runner ---------------------------------------

/// Compiles tests/c/conformance.c against cJSON; a missing cJSON fails with
/// the package to install rather than skipping (.ci/test-all installs it).
fn conformance_runner(dir: &Path) -> PathBuf {
    let source = root().join("tests/c/conformance.c");
    let exe = dir.join("conformance");
    let lib_dir = library_dir();
    let out = Command::new("gcc")
        .arg("-std=c11")
        .args(STRICT)
        .arg("-g")
        .arg("-I")
        .arg(root().join("include"))
        .arg(&source)
        .arg("-L")
        .arg(&lib_dir)
        .arg("-l:libcardbridge.so")
        .arg("-lcjson")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("gcc runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !(stderr.contains("cjson/cJSON.h: No such file") || stderr.contains("cannot find -lcjson")),
        "cJSON is not installed: run `apt-get install libcjson-dev` (bash .ci/test-all does)\n{}",
        show(&out)
    );
    assert!(out.status.success(), "compiling conformance.c failed:\n{}", show(&out));
    exe
}

/// How many cases the fixture files the C runner reads hold, as it must
/// report: the conformance files and three files of the verification matrix.
fn conformance_case_count() -> usize {
    let read = |name: &str| -> serde_json::Value {
        let path = root().join("tests/fixtures").join(name);
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let validate = read("conformance/alipayplus_validate.json").as_array().unwrap().len();
    let wechat_validate = read("conformance/wechatpay_validate.json").as_array().unwrap().len();
    let cases = |name: &str| read(name)["cases"].as_array().unwrap().len();
    validate
        + wechat_validate
        + cases("conformance/alipayplus_inbound.json")
        + cases("matrix/alipayplus_inbound.json")
        + cases("matrix/wechatpay_callbacks.json")
        + cases("matrix/limits_alipayplus.json")
}

/// Copies `from` into `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn conformance_args() -> Vec<String> {
    vec![format!("{}/", root().join("tests/fixtures").display())]
}

fn assert_conformance_passed(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let cases = conformance_case_count();
    assert!(
        out.status.success() && stdout.contains(&format!("\n{cases} passed, 0 failed\n")),
        "the C conformance runner did not pass all {cases} cases:\n{}",
        show(out)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok   - ")).count(),
        cases,
        "{stdout}"
    );
}

#[test]
fn conformance_c_runner_passes_every_case() {
    let dir = scratch("conformance");
    let exe = conformance_runner(&dir);
    let out = run(&[], &exe, &conformance_args(), &[]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_conformance_passed(&out);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn conformance_c_runner_reports_a_differing_case() {
    // A copy of the fixtures with one expectation changed must fail exactly that case.
    let dir = scratch("conformance-mutated");
    let exe = conformance_runner(&dir);
    let fixtures = dir.join("fixtures");
    std::fs::create_dir_all(fixtures.join("conformance")).unwrap();
    for sub in ["keys", "wechatpay", "matrix"] {
        copy_tree(&root().join("tests/fixtures").join(sub), &fixtures.join(sub));
    }
    let original = root().join("tests/fixtures/conformance");
    for file in ["alipayplus_inbound.json", "wechatpay_validate.json"] {
        std::fs::copy(original.join(file), fixtures.join("conformance").join(file)).unwrap();
    }
    let mut validate: serde_json::Value =
        serde_json::from_slice(&std::fs::read(original.join("alipayplus_validate.json")).unwrap()).unwrap();
    let case = validate
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["expect"]["limit"] == "32")
        .expect("a case with limit 32");
    case["expect"]["limit"] = "33".into();
    let name = case["name"].as_str().unwrap().to_string();
    std::fs::write(
        fixtures.join("conformance/alipayplus_validate.json"),
        serde_json::to_vec(&validate).unwrap(),
    )
    .unwrap();
    let out = run(&[], &exe, &[format!("{}/", fixtures.display())], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        stdout.contains(&format!("FAIL - validate: {name}: limit: expected \"33\", got \"32\"")),
        "{stdout}"
    );
    let cases = conformance_case_count();
    assert!(
        stdout.contains(&format!("\n{} passed, 1 failed\n", cases - 1)),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn conformance_c_runner_is_clean_under_valgrind() {
    if !valgrind_wanted() {
        return;
    }
    let dir = scratch("conformance-valgrind");
    let exe = conformance_runner(&dir);
    let out = run_under_valgrind(&exe, &conformance_args());
    assert_conformance_passed(&out);
    std::fs::remove_dir_all(&dir).ok();
}
