//! The README cannot drift: every fenced code block in it is checked.
//!
//! * `rust`: compiled and run as doctests (`ReadmeDoctests` in `src/lib.rs`
//!   includes the README); checked here that the hook is in place.
//! * `json`: the Alipay+ configuration example is parsed by `Config::from_json`
//!   (with the test keys in place of the `...` placeholders).
//! * `c`: compiled with the project's strict flags and linked against the
//!   cdylib built for this test run.
//! * `sh`: parsed by `bash -n`; every repository path and `--example` named
//!   exists.
//! * `sql`: run on the test PostgreSQL server with the names made unique
//!   (then dropped), and a store opened on the database it creates as the role
//!   it creates.
//! * `python`: run against the emulator by `bindings/python/tests/test_readme.py`
//!   (the Python suite), the Flask endpoint with a query-string target.
//!
//! The error texts the README quotes are the ones the library prints, and its
//! error code table lists exactly the library's error kinds.

mod common;
mod pg;

use cardbridge::alipayplus::Config;
use cardbridge::alipayplus::model::{self, Direction};
use common::fixture;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// A fenced block: its language, first line number (1-based) and text.
#[derive(Debug)]
struct Block {
    lang: String,
    line: usize,
    text: String,
}

fn blocks() -> Vec<Block> {
    let text = readme();
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    lang: lang.trim().to_string(),
                    line: i + 1,
                    text: String::new(),
                })
            }
            (Some(_), Some("")) => out.push(open.take().unwrap()),
            (Some(b), _) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "README.md: unterminated code block");
    out
}

fn of(lang: &str) -> Vec<Block> {
    blocks().into_iter().filter(|b| b.lang == lang).collect()
}

#[test]
fn every_block_has_a_language_with_a_checker() {
    let all = blocks();
    for b in &all {
        assert!(
            ["rust", "json", "c", "sh", "python", "sql"].contains(&b.lang.as_str()),
            "README.md line {}: block language {:?} has no checker",
            b.line,
            b.lang
        );
    }
    assert!(of("rust").len() >= 3, "the Rust quick starts");
    assert_eq!(of("json").len(), 1);
    assert_eq!(of("c").len(), 1);
    assert_eq!(of("python").len(), 2);
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    assert!(
        lib.contains("#[cfg(doctest)]") && lib.contains(r#"include_str!("../README.md")"#),
        "src/lib.rs must include the README as doctests"
    );
    let py = std::fs::read_to_string(root().join("bindings/python/tests/test_readme.py")).unwrap();
    assert!(
        py.contains("README.md") && py.contains("```python"),
        "the Python suite runs the README blocks"
    );
}

#[test]
fn json_configuration_block_is_accepted_and_shows_the_defaults() {
    let block = &of("json")[0];
    let private = serde_json::to_string(&fixture("test_merchant_private.pem")).unwrap();
    let public = serde_json::to_string(&fixture("test_platform_public.pem")).unwrap();
    let text = block
        .text
        .replace(r#""-----BEGIN PRIVATE KEY-----\n...""#, &private)
        .replace(r#""-----BEGIN PUBLIC KEY-----\n...""#, &public);
    assert_ne!(text, block.text, "the key placeholders are where the test expects them");
    let config = Config::from_json(text.as_bytes())
        .unwrap_or_else(|e| panic!("README.md line {}: the configuration is refused: {e}", block.line));
    let defaults = Config::new("x", common::merchant_key(), common::platform_key().public_key());
    assert_eq!(config.max_body_bytes, defaults.max_body_bytes);
    assert_eq!(config.claim_lease, defaults.claim_lease);
    assert_eq!(config.idempotency_retention, defaults.idempotency_retention);
    assert_eq!(config.path_prefix, defaults.path_prefix);
    assert_eq!(config.key_version, defaults.key_version);
    assert_eq!(config.sign_responses, defaults.sign_responses);
    assert_eq!(config.transport.connect_timeout, defaults.transport.connect_timeout);
    assert_eq!(config.transport.read_timeout, defaults.transport.read_timeout);
}

#[test]
fn quoted_error_texts_are_what_the_library_prints() {
    let text = readme();
    let mut issue: serde_json::Value = serde_json::json!({
        "appId": "2102010113769000", "customerBelongsTo": "TNG", "requestId": "R-1",
        "customerId": "1", "externalCustomerId": "M".repeat(65),
        "registerDate": "2026-11-23T10:00:00+08:00", "cardFields": []});
    let e = model::normalize("issueCard", issue.to_string().as_bytes(), Direction::Outbound).unwrap_err();
    assert!(text.contains(&format!("`{e}`")), "README.md must quote `{e}`");

    issue["externalCustomerId"] = "M-1".into();
    let raw = issue
        .to_string()
        .replace(r#""requestId":"R-1""#, r#""requestId":"R-1","requestId":"R-2""#);
    let e = model::normalize("notifyCardRegistration", raw.as_bytes(), Direction::Inbound).unwrap_err();
    // The README wraps lines: compare with runs of white space folded.
    let flowed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flowed.contains(&format!("`{e}`")), "README.md must quote `{e}`");
}

#[test]
fn error_code_table_lists_every_error_kind() {
    let text = readme();
    let rows: Vec<(u32, String)> = text
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let code = cells.get(1)?.parse().ok()?;
            Some((code, cells.get(2)?.to_string()))
        })
        .collect();
    let mut want: Vec<(u32, String)> = vec![(0, "OK".into())];
    want.extend(
        cardbridge::ErrorKind::ALL
            .iter()
            .map(|k| (k.code(), k.name().to_string())),
    );
    assert_eq!(rows, want, "README.md's error code table");
}

/// `target/<profile>/deps/`, where cargo put the cdylib built with this test.
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().to_path_buf();
    assert!(
        dir.join("libcardbridge.so").exists(),
        "the cdylib is built with the tests"
    );
    dir
}

fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_ok()
}

#[test]
fn c_block_compiles_and_links() {
    if !tool("gcc") {
        println!("skipped: gcc is not installed (.ci/test-all installs it)");
        return;
    }
    let block = &of("c")[0];
    let dir = std::env::temp_dir().join(format!("cardbridge-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("readme_block.c");
    let program = format!(
        "#include <stdint.h>\n#include <string.h>\n#include \"cardbridge.h\"\n\n\
         void readme_block(const char *config_json, const char *target, size_t target_len,\n\
         \x20                 const cardbridge_header *headers, size_t n_headers,\n\
         \x20                 const uint8_t *body, size_t body_len, int64_t now_unix_ms);\n\
         void readme_block(const char *config_json, const char *target, size_t target_len,\n\
         \x20                 const cardbridge_header *headers, size_t n_headers,\n\
         \x20                 const uint8_t *body, size_t body_len, int64_t now_unix_ms) {{\n\
         #line {} \"README.md\"\n{}}}\n\nint main(void) {{ return 0; }}\n",
        block.line + 1,
        block.text
    );
    std::fs::write(&source, program).unwrap();
    let lib = library_dir();
    let out = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-I"])
        .arg(root().join("include"))
        .arg(&source)
        .arg("-L")
        .arg(&lib)
        .arg("-lcardbridge")
        .arg("-o")
        .arg(dir.join("readme_block"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README's C block does not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sh_blocks_parse_and_name_files_that_exist() {
    let blocks = of("sh");
    assert!(blocks.len() >= 4);
    for b in &blocks {
        let out = Command::new("bash").arg("-n").arg("-c").arg(&b.text).output().unwrap();
        assert!(
            out.status.success(),
            "README.md line {}: bash -n: {}",
            b.line,
            String::from_utf8_lossy(&out.stderr)
        );
        let words: Vec<&str> = b
            .text
            .split(|c: char| c.is_whitespace() || "\"'$()=\\".contains(c))
            .filter(|w| !w.is_empty())
            .collect();
        for (i, w) in words.iter().enumerate() {
            let w = w.trim_start_matches("./");
            if ["examples/", "bindings/", "include/", "tests/", ".ci/"]
                .iter()
                .any(|p| w.starts_with(p))
            {
                assert!(root().join(w).exists(), "README.md line {}: {w} does not exist", b.line);
            }
            if w == "--example" {
                let name = words[i + 1];
                assert!(
                    root().join("examples").join(format!("{name}.rs")).exists(),
                    "README.md line {}: no example {name}",
                    b.line
                );
            }
        }
    }
}

#[test]
fn sql_block_creates_a_role_and_database_a_store_can_use() {
    let blocks = of("sql");
    assert_eq!(blocks.len(), 1, "the PostgreSQL set-up block");
    let mut admin = match pg::admin() {
        Ok(c) => c,
        Err(e) => {
            assert!(!pg::required(), "PostgreSQL is required here: {e}");
            eprintln!("\n!!!!!!!! SKIPPED README sql block: no PostgreSQL server\n");
            return;
        }
    };
    let name = format!("cb_readme_{}", std::process::id());
    let password = "choose-a-password";
    let sql = blocks[0].text.replace("cardbridge", &name);
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}; DROP ROLE IF EXISTS {name}"));
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        admin
            .batch_execute(statement)
            .unwrap_or_else(|e| panic!("README.md line {}: {statement}: {e}", blocks[0].line));
    }
    let base: postgres::Config = pg::base_dsn().parse().unwrap();
    let host = match base.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let port = base.get_ports().first().copied().unwrap_or(5432);
    let dsn = format!("host={host} port={port} dbname={name} user={name} password={password}");
    let store = cardbridge::store::PostgresStore::open(&dsn);
    let opened = store.is_ok();
    drop(store);
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {name}"));
    assert!(opened, "a store opens on the database and role the README creates");
}
