//! A fresh PostgreSQL schema per test on the server named by
//! `CARDBRIDGE_TEST_PG` (default: `postgres` on 127.0.0.1:5432, trust auth).
//!
//! When no server answers, a test is skipped with a loud message — unless
//! `CI=true` or `CARDBRIDGE_REQUIRE_PG=1` (set by `.ci/test-all`): then it fails.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

/// Used when `CARDBRIDGE_TEST_PG` is not set.
pub const DEFAULT_DSN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// The server the tests use (a conninfo string or URL).
pub fn base_dsn() -> String {
    std::env::var("CARDBRIDGE_TEST_PG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_DSN.to_string())
}

/// Whether an unreachable server fails the test instead of skipping it.
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true") || std::env::var("CARDBRIDGE_REQUIRE_PG").is_ok_and(|v| v == "1")
}

/// `dsn` with `search_path` set to `schema`.
pub fn with_schema(dsn: &str, schema: &str) -> String {
    if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        let sep = if dsn.contains('?') { '&' } else { '?' };
        format!("{dsn}{sep}options=-c%20search_path%3D{schema}")
    } else {
        format!("{dsn} options='-c search_path={schema}'")
    }
}

/// An admin connection to the test server.
pub fn admin() -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = base_dsn().parse()?;
    config.connect_timeout(std::time::Duration::from_secs(5));
    config.connect(postgres::NoTls)
}

/// A schema created for one test and dropped (with everything in it) at the end.
pub struct Schema {
    pub name: String,
}

impl Schema {
    /// A new empty schema; `None` when the server is unreachable and the
    /// tests may skip (after a loud message).
    pub fn create(tag: &str) -> Option<Schema> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "cb_test_{tag}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut client = match admin() {
            Ok(c) => c,
            Err(e) => {
                let why = format!("PostgreSQL at `{}` is unreachable: {e}", redact(&base_dsn()));
                if required() {
                    panic!("{why} (CI=true / CARDBRIDGE_REQUIRE_PG=1: PostgreSQL tests must run)");
                }
                eprintln!(
                    "\n!!!!!!!! SKIPPED PostgreSQL test ({tag}): {why}\n!!!!!!!! set CARDBRIDGE_TEST_PG or run .ci/test-all, which starts one\n"
                );
                return None;
            }
        };
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))
            .unwrap();
        Some(Schema { name })
    }

    /// The connection string of the test server, confined to this schema.
    pub fn dsn(&self) -> String {
        with_schema(&base_dsn(), &self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = admin() {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// The DSN without a password, for messages.
pub fn redact(dsn: &str) -> String {
    match dsn.parse::<postgres::Config>() {
        Ok(c) => format!(
            "host={:?} port={:?} user={:?} dbname={:?}",
            c.get_hosts(),
            c.get_ports(),
            c.get_user(),
            c.get_dbname()
        ),
        Err(_) => "<unparsable>".to_string(),
    }
}
