//! PostgreSQL store: several processes or nodes on one database.
//!
//! Built on the synchronous `postgres` crate with a small connection pool of
//! our own (idle connections in a mutex-guarded list, at most `pool_size`
//! open; no background thread). Every operation is one statement, or one
//! short transaction, so concurrent callers on any number of nodes are
//! arbitrated by PostgreSQL's row locks:
//!
//! * claims: `INSERT … ON CONFLICT (key) DO UPDATE … WHERE <expired or
//!   released>` — the generation (fencing token) is bumped in the same
//!   statement that takes the claim over;
//! * outbox leases: `UPDATE … WHERE <unleased, expired or ours> RETURNING` —
//!   a concurrent acquirer waits for the row lock, re-checks the condition on
//!   the new row and finds it leased;
//! * every later write names the token in its `WHERE`.
//!
//! # Durability
//!
//! The two durable writes ([`Store::complete_inbound`],
//! [`Store::outbox_insert`]) are single statements committed with the
//! server's `synchronous_commit` (by default: the WAL is flushed before the
//! call returns). Every other write is one statement too, whose own implicit
//! transaction lowers `synchronous_commit` to `off` from inside the statement
//! (`set_config(…, true)` in a `FROM`/`USING` item): one round trip, atomic and
//! ordered, flushed by the WAL writer shortly after (see `ARCHITECTURE.md`,
//! durability argument).
//!
//! # Connection loss
//!
//! A broken connection (server restarted, network cut, connection killed) is
//! dropped, with every idle one (they most likely broke with it); the next
//! call connects afresh. A call that fails on
//! a connection taken from the pool is retried once on a new connection: each
//! operation is fenced, so running it twice is safe (a second claim finds its
//! own claim in flight, a second complete finds its own answer, a second
//! insert finds its own entry). When the database stays unreachable the error
//! is [`ErrorKind::Transport`]: inbound calls answer `U` (the platform asks
//! again) and outbox entries stay pending.
//!
//! # TLS
//!
//! A connection to any host other than loopback (or a Unix socket) must use
//! TLS: `sslmode=disable` is refused for such hosts, and `prefer` is raised
//! to `require`. TLS always verifies the server certificate and host name
//! (rustls, aws-lc-rs) against the Mozilla roots, or only against the CA
//! certificates in the PEM file named by `PGSSLROOTCERT` /
//! [`PostgresOptions::root_ca_pem`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::config::{Host, SslMode};
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

use super::{
    Acquired, Attempt, Claim, ClaimTicket, Completion, Inserted, LeaseRequest, OutboxEntry, OutboxQuery, OutboxState,
    Store,
};
use crate::error::{Error, ErrorKind, Result};

/// Schema migrations; entry `i` moves the database from version `i` to `i + 1`.
/// Append only: a released migration is never edited.
const MIGRATIONS: &[&str] = &[
    // v1: the same model as SQLite schema v3: fenced inbound claims, the leased outbox and its
    // attempt log. Keys sort bytewise (COLLATE "C"), like SQLite, so list pages are stable.
    r#"CREATE TABLE inbound (
        key            text COLLATE "C" PRIMARY KEY,
        fingerprint    text    NOT NULL,
        generation     bigint  NOT NULL CHECK (generation >= 1),
        lease_until_ms bigint  NOT NULL,
        response       bytea,
        created_ms     bigint  NOT NULL,
        updated_ms     bigint  NOT NULL
    ) WITH (fillfactor = 90);
    CREATE TABLE outbox (
        id             text COLLATE "C" PRIMARY KEY,
        kind           text    NOT NULL,
        target         text    NOT NULL,
        body           bytea   NOT NULL,
        state          text    NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
        attempts       integer NOT NULL CHECK (attempts >= 0),
        result         bytea,
        last_error     text,
        created_ms     bigint  NOT NULL,
        updated_ms     bigint  NOT NULL,
        fingerprint    text    NOT NULL DEFAULT '',
        fixed_headers  text    NOT NULL DEFAULT '[]',
        method         text    NOT NULL DEFAULT 'POST',
        last_status    integer NOT NULL DEFAULT 0,
        lease_owner    text    NOT NULL DEFAULT '',
        lease_until_ms bigint  NOT NULL DEFAULT 0,
        lease_token    bigint  NOT NULL DEFAULT 0
    ) WITH (fillfactor = 90);
    CREATE INDEX outbox_pending ON outbox (kind, created_ms, id) WHERE state = 'pending';
    CREATE INDEX outbox_final ON outbox (updated_ms) WHERE state <> 'pending';
    CREATE TABLE outbox_attempts (
        outbox_id  text COLLATE "C" NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
        number     integer NOT NULL,
        started_ms bigint  NOT NULL,
        outcome    text    NOT NULL,
        status     integer NOT NULL DEFAULT 0,
        PRIMARY KEY (outbox_id, number)
    );"#,
];

/// The schema version this code creates and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Key of the advisory lock that serialises migrations of one database.
const MIGRATION_LOCK: i64 = 0x6361_7264_6272_6467; // "cardbrdg"

/// Default most connections one store keeps open.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// How long a call waits for a free connection when all are in use.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// Connect timeout used when the connection string sets none.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `tcp_user_timeout` used when the connection string sets none: how long
/// sent data may stay unacknowledged before the connection counts as lost.
const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings that a connection string cannot carry.
#[derive(Clone, Default)]
pub struct PostgresOptions {
    /// Most connections kept open (0 = [`DEFAULT_POOL_SIZE`]).
    pub pool_size: usize,
    /// PEM certificates of the CAs to trust instead of the Mozilla roots.
    /// `None`: the file named by the `PGSSLROOTCERT` environment variable,
    /// when set, else the Mozilla roots.
    pub root_ca_pem: Option<String>,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("pool_size", &self.pool_size)
            .field("root_ca_pem", &self.root_ca_pem.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// How connections are made.
#[derive(Clone)]
enum Tls {
    /// Loopback or Unix socket with `sslmode=disable` or `prefer`.
    Off,
    /// rustls with verification.
    On(tokio_postgres_rustls::MakeRustlsConnect),
}

/// One pooled connection and its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    /// The prepared statement for `sql`, prepared once per connection.
    fn stmt(&mut self, sql: &'static str) -> std::result::Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Vec<Row>> {
        let s = self.stmt(sql)?;
        self.client.query(&s, params)
    }

    fn query_opt(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Option<Row>> {
        let s = self.stmt(sql)?;
        self.client.query_opt(&s, params)
    }

    fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> PgResult<u64> {
        let s = self.stmt(sql)?;
        self.client.execute(&s, params)
    }
}

/// The `FROM` item that makes an `UPDATE` not wait for the disk at commit:
/// `set_config(…, is_local => true)` lowers `synchronous_commit` for the
/// statement's own (implicit) transaction, so a non-durable write is one
/// statement and one round trip, not `BEGIN; SET LOCAL …` / statement / `COMMIT`.
/// When no row matches, the item may go unevaluated; nothing was written then.
macro_rules! NOT_DURABLE_FROM {
    () => {
        " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS not_durable "
    };
}

/// [`NOT_DURABLE_FROM`] for a `DELETE`.
macro_rules! NOT_DURABLE_USING {
    () => {
        " USING (SELECT set_config('synchronous_commit', 'off', true)) AS not_durable "
    };
}

type PgResult<T> = std::result::Result<T, postgres::Error>;

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

/// Durable store on a PostgreSQL database, shared by any number of handles,
/// processes and nodes. See the module docs.
pub struct PostgresStore {
    config: postgres::Config,
    tls: Tls,
    /// `user@host:port/dbname`, for messages (never the password).
    shown: String,
    pool: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.shown)
            .field("pool_size", &self.max)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// The schema version this code creates and understands; a database with
    /// a higher version is refused.
    pub const SCHEMA_VERSION: u32 = SCHEMA_VERSION;

    /// Opens the store on the database named by `conninfo` (libpq key/value
    /// form `host=… dbname=… user=…` or a `postgresql://` URL) and brings its
    /// schema up to [`Self::SCHEMA_VERSION`]. See [`Self::open_with`].
    pub fn open(conninfo: &str) -> Result<Self> {
        Self::open_with(conninfo, &PostgresOptions::default())
    }

    /// Opens the store with `options`.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] when the connection string
    /// cannot be parsed, names no host, asks for no TLS towards a host that is
    /// not loopback, when the server refuses the login or the database, or
    /// when the schema is newer than this cardbridge; with
    /// [`ErrorKind::Transport`] when the server cannot be reached. Messages
    /// never contain the password.
    pub fn open_with(conninfo: &str, options: &PostgresOptions) -> Result<Self> {
        let mut config = postgres::Config::from_str(conninfo).map_err(|e| {
            Error::config(format!("store: postgres connection string: {}", parse_error_text(&e))).with_field("conninfo")
        })?;
        let shown = describe_target(&config);
        let tls = tls_for(&mut config, options, &shown)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(DEFAULT_TCP_USER_TIMEOUT);
        }
        // Notices ("relation already exists, skipping") are not for the host's logs.
        config.notice_callback(|_| {});
        let max = match options.pool_size {
            0 => DEFAULT_POOL_SIZE,
            n => n,
        };
        let store = PostgresStore {
            config,
            tls,
            shown,
            pool: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            max,
        };
        let mut conn = store.connect().map_err(|e| store.open_error(e))?;
        store.migrate(&mut conn)?;
        // The first connection joins the pool.
        store.lock_pool()?.open += 1;
        store.give_back(conn);
        Ok(store)
    }

    /// `user@host:port/dbname` of this store (no password), for diagnostics.
    pub fn target(&self) -> &str {
        &self.shown
    }

    /// How many connections are open right now (idle or in use).
    #[doc(hidden)]
    pub fn open_connections(&self) -> usize {
        self.lock_pool().map(|p| p.open).unwrap_or(0)
    }

    fn connect(&self) -> PgResult<Conn> {
        let client = match &self.tls {
            Tls::Off => self.config.connect(NoTls)?,
            Tls::On(make) => self.config.connect(make.clone())?,
        };
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    fn open_error(&self, e: postgres::Error) -> Error {
        let shown = &self.shown;
        match e.as_db_error() {
            // Refused by the server: a login, permission or database problem is configuration.
            Some(db) if !unavailable_code(db.code().code()) => Error::config(format!(
                "store: cannot open postgres database {shown}: {} ({})",
                db.message(),
                db.code().code()
            )),
            _ => Error::new(
                ErrorKind::Transport,
                format!("store: cannot open postgres database {shown}: {}", error_text(&e)),
            ),
        }
    }

    fn lock_pool(&self) -> Result<MutexGuard<'_, PoolState>> {
        self.pool.lock().map_err(|_| {
            Error::new(
                ErrorKind::Internal,
                "store: connection pool lock poisoned (a thread panicked while using the store)",
            )
        })
    }

    /// An idle connection (`true`: it was used before) or a new one.
    fn take(&self, op: &str) -> Result<(Conn, bool)> {
        let deadline = Instant::now() + POOL_WAIT;
        let mut pool = self.lock_pool()?;
        loop {
            if let Some(c) = pool.idle.pop() {
                return Ok((c, true));
            }
            if pool.open < self.max {
                pool.open += 1;
                drop(pool);
                return match self.connect() {
                    Ok(c) => Ok((c, false)),
                    Err(e) => {
                        self.discard_slot();
                        Err(op_error(op, &self.shown, &e))
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Transport,
                    format!(
                        "store: {op}: all {} postgres connections stayed busy for {} s",
                        self.max,
                        POOL_WAIT.as_secs()
                    ),
                ));
            }
            pool = self
                .freed
                .wait_timeout(pool, left)
                .map_err(|_| Error::new(ErrorKind::Internal, "store: connection pool lock poisoned"))?
                .0;
        }
    }

    fn give_back(&self, conn: Conn) {
        if conn.client.is_closed() {
            drop(conn);
            self.discard_slot();
            return;
        }
        if let Ok(mut pool) = self.pool.lock() {
            pool.idle.push(conn);
        }
        self.freed.notify_one();
    }

    fn drop_idle(&self) {
        let idle = match self.pool.lock() {
            Ok(mut pool) => {
                let idle = std::mem::take(&mut pool.idle);
                pool.open = pool.open.saturating_sub(idle.len());
                idle
            }
            Err(_) => Vec::new(),
        };
        drop(idle);
        self.freed.notify_all();
    }

    fn discard_slot(&self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.open = pool.open.saturating_sub(1);
        }
        self.freed.notify_one();
    }

    /// Runs `f` on a pooled connection. A connection that fails as broken is
    /// dropped; when it came from the pool (it may have gone stale: server
    /// restarted, connection killed), `f` runs once more on a new connection.
    fn run<T>(&self, op: &'static str, mut f: impl FnMut(&mut Conn) -> PgResult<T>) -> Result<T> {
        let mut retried = false;
        loop {
            let (mut conn, reused) = self.take(op)?;
            match f(&mut conn) {
                Ok(v) => {
                    self.give_back(conn);
                    return Ok(v);
                }
                Err(e) => {
                    let broken = conn.client.is_closed() || is_unavailable(&e);
                    if broken {
                        drop(conn);
                        self.discard_slot();
                        // The idle ones most likely went with it (server restarted): the retry,
                        // and the calls after it, start on new connections.
                        self.drop_idle();
                    } else {
                        self.give_back(conn);
                    }
                    if broken && reused && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(op_error(op, &self.shown, &e));
                }
            }
        }
    }

    /// Applies the migrations the database lacks, one transaction each, under
    /// an advisory lock so nodes starting together do not both migrate.
    fn migrate(&self, conn: &mut Conn) -> Result<()> {
        let shown = &self.shown;
        let fail = |e: postgres::Error| match e.as_db_error() {
            Some(db) => Error::config(format!(
                "store: cannot migrate postgres database {shown}: {} ({})",
                db.message(),
                db.code().code()
            )),
            None => Error::new(
                ErrorKind::Transport,
                format!("store: cannot migrate postgres database {shown}: {}", error_text(&e)),
            ),
        };
        loop {
            let mut tx = conn.client.transaction().map_err(fail)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .map_err(fail)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (
                     singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                     version   integer NOT NULL
                 )",
            )
            .map_err(fail)?;
            let version: i32 = tx
                .query_opt("SELECT version FROM schema_version", &[])
                .map_err(fail)?
                .map_or(0, |r| r.get(0));
            let version = u32::try_from(version).unwrap_or(0);
            if version > SCHEMA_VERSION {
                return Err(Error::config(format!(
                    "store: postgres database {shown} has schema version {version}, newer than the \
                     {SCHEMA_VERSION} this cardbridge {} understands; upgrade cardbridge or use another database",
                    crate::VERSION
                )));
            }
            let Some(step) = MIGRATIONS.get(version as usize) else {
                return tx.commit().map_err(fail);
            };
            tx.batch_execute(step).map_err(fail)?;
            let next = i32::try_from(version + 1).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO schema_version (singleton, version) VALUES (true, $1)
                 ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version",
                &[&next],
            )
            .map_err(fail)?;
            tx.commit().map_err(fail)?;
        }
    }

    /// The schema version recorded in the database (for tests and diagnostics).
    #[doc(hidden)]
    pub fn schema_version(&self) -> Result<u32> {
        self.run("schema_version", |c| {
            c.query_opt("SELECT version FROM schema_version", &[])
                .map(|r| r.map_or(0, |r| u32::try_from(r.get::<_, i32>(0)).unwrap_or(0)))
        })
    }
}

/// Picks the TLS mode for `config`: off only for loopback and Unix sockets
/// (unless asked for), verified rustls otherwise.
fn tls_for(config: &mut postgres::Config, options: &PostgresOptions, shown: &str) -> Result<Tls> {
    let hosts = config.get_hosts();
    let addrs = config.get_hostaddrs();
    if hosts.is_empty() && addrs.is_empty() {
        return Err(Error::config("store: postgres connection string: host: is required").with_field("conninfo.host"));
    }
    let count = hosts.len().max(addrs.len());
    let local = (0..count).all(|i| match (addrs.get(i), hosts.get(i)) {
        (Some(ip), _) => ip.is_loopback(),
        (None, Some(Host::Tcp(h))) => is_loopback_name(h),
        (None, Some(Host::Unix(_))) => true,
        (None, None) => false,
    });
    let mode = config.get_ssl_mode();
    if local && mode != SslMode::Require {
        // Loopback: nothing crosses a network; prefer falls back to plain like libpq would.
        config.ssl_mode(SslMode::Disable);
        return Ok(Tls::Off);
    }
    if mode == SslMode::Disable {
        return Err(Error::config(format!(
            "store: postgres connection string: sslmode: disable is only allowed for loopback hosts; \
             {shown} must be reached over TLS (sslmode=require, the certificate is always verified)"
        ))
        .with_field("conninfo.sslmode"));
    }
    // The certificate is checked against the host name: a bare hostaddr gives none to check.
    if (0..count).any(|i| !matches!(hosts.get(i), Some(Host::Tcp(_)))) {
        return Err(Error::config(
            "store: postgres connection string: host: every TLS connection needs a host name to verify \
             the server certificate against (hostaddr alone is not enough)",
        )
        .with_field("conninfo.host"));
    }
    config.ssl_mode(SslMode::Require);
    let roots = root_store(options)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("store: postgres TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Tls::On(tokio_postgres_rustls::MakeRustlsConnect::new(tls)))
}

/// The trust anchors: the given CA bundle, `PGSSLROOTCERT`, or the Mozilla roots.
fn root_store(options: &PostgresOptions) -> Result<rustls::RootCertStore> {
    let pem_text = match &options.root_ca_pem {
        Some(p) => Some(p.clone()),
        None => match std::env::var_os("PGSSLROOTCERT") {
            Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| {
                Error::config(format!(
                    "store: postgres TLS: cannot read the CA file named by PGSSLROOTCERT ({}): {e}",
                    std::path::Path::new(&path).display()
                ))
            })?),
            None => None,
        },
    };
    let mut roots = rustls::RootCertStore::empty();
    match pem_text {
        None => {
            for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
                // A root the verifier cannot use is skipped, as every client does.
                let _ = roots.add(der.clone());
            }
        }
        Some(text) => {
            let certs = pem::parse_many(&text)
                .map_err(|e| Error::config(format!("store: postgres TLS: CA bundle: malformed PEM ({e})")))?;
            for p in certs.iter().filter(|p| p.tag() == "CERTIFICATE") {
                roots
                    .add(rustls::pki_types::CertificateDer::from(p.contents().to_vec()))
                    .map_err(|e| {
                        Error::config(format!("store: postgres TLS: CA bundle: unusable certificate ({e})"))
                    })?;
            }
            if roots.is_empty() {
                return Err(Error::config("store: postgres TLS: CA bundle: no CERTIFICATE found"));
            }
        }
    }
    Ok(roots)
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `user@host:port/dbname`, never the password.
fn describe_target(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            Host::Tcp(h) => h.clone(),
            Host::Unix(p) => p.display().to_string(),
        })
        .or_else(|| config.get_hostaddrs().first().map(IpAddr::to_string))
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

/// The parser's reason without any piece of the input: the key/value parser
/// quotes the character it stumbled on, which may belong to the password.
fn parse_error_text(e: &postgres::Error) -> String {
    let inner = std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_default();
    if let Some(rest) = inner.strip_prefix("unexpected character at byte ") {
        let at = rest.split(':').next().unwrap_or("?");
        return format!("malformed key=value syntax at byte {at}");
    }
    let safe = inner.starts_with("invalid value for option")
        || inner.starts_with("unknown option")
        || inner.starts_with("unexpected EOF")
        || inner.starts_with("unterminated");
    if safe {
        inner
    } else {
        "malformed connection string".to_string()
    }
}

/// The error and its causes, one line.
fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// SQLSTATEs that mean the server is going away or not taking connections.
fn unavailable_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") || code == "25006"
}

/// Whether `e` says the connection or the server is gone (retry later), as
/// opposed to a statement the server refused.
fn is_unavailable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        return unavailable_code(db.code().code());
    }
    // Anything below the protocol (I/O, TLS, timeouts) has an io::Error in its chain.
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    let text = e.to_string();
    text.starts_with("error connecting") || text.starts_with("timeout") || text.starts_with("error communicating")
}

/// Maps a failure of `op`: unreachable → `Transport` (try again later),
/// anything else → `Internal`.
fn op_error(op: &str, shown: &str, e: &postgres::Error) -> Error {
    if is_unavailable(e) {
        Error::new(
            ErrorKind::Transport,
            format!("store: {op}: postgres database {shown} unavailable: {}", error_text(e)),
        )
    } else {
        Error::new(ErrorKind::Internal, format!("store: {op}: {}", error_text(e)))
    }
}

fn headers_to_json(headers: &[crate::http::Header]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_string())
}

/// Unreadable stored headers read as none; they are only ever written by `headers_to_json`.
fn headers_from_json(text: &str) -> Vec<crate::http::Header> {
    serde_json::from_str(text).unwrap_or_default()
}

fn entry_from_row(row: &Row) -> PgResult<OutboxEntry> {
    let state: &str = row.try_get(4)?;
    Ok(OutboxEntry {
        id: row.try_get(0)?,
        kind: row.try_get(1)?,
        target: row.try_get(2)?,
        body: row.try_get(3)?,
        // Guarded by a CHECK constraint; an unknown value reads as pending (it is then resent
        // under its idempotency key, never lost).
        state: OutboxState::parse(state).unwrap_or(OutboxState::Pending),
        attempts: u32::try_from(row.try_get::<_, i32>(5)?).unwrap_or(0),
        result: row.try_get(6)?,
        last_error: row.try_get(7)?,
        created_ms: row.try_get(8)?,
        updated_ms: row.try_get(9)?,
        fingerprint: row.try_get(10)?,
        fixed_headers: headers_from_json(row.try_get(11)?),
        method: row.try_get(12)?,
        last_status: u16::try_from(row.try_get::<_, i32>(13)?).unwrap_or(0),
        lease_owner: row.try_get(14)?,
        lease_until_ms: row.try_get(15)?,
        lease_token: row.try_get(16)?,
    })
}

fn entries(rows: Vec<Row>) -> PgResult<Vec<OutboxEntry>> {
    rows.iter().map(entry_from_row).collect()
}

const GET_ENTRY: &str = "SELECT id, kind, target, body, state, attempts, result, last_error, created_ms, updated_ms, \
     fingerprint, fixed_headers, method, last_status, lease_owner, lease_until_ms, lease_token FROM outbox WHERE id = $1";

fn get_entry(c: &mut Conn, id: &str) -> PgResult<Option<OutboxEntry>> {
    c.query_opt(GET_ENTRY, &[&id])?.as_ref().map(entry_from_row).transpose()
}

fn small(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Store for PostgresStore {
    fn claim_inbound(&self, key: &str, fingerprint: &str, now_ms: i64, lease_ms: i64) -> Result<Claim> {
        let until = now_ms.saturating_add(lease_ms);
        // A claim is only a lease: not a durable write (module docs).
        self.run("claim_inbound", |c| {
            {
                let taken = c.query_opt(
                    "INSERT INTO inbound AS i (key, fingerprint, generation, lease_until_ms, response, created_ms, updated_ms)
                     SELECT $1, $2, 1, $3, NULL, $4, $4 FROM (SELECT set_config('synchronous_commit', 'off', true)) AS nd
                     ON CONFLICT (key) DO UPDATE
                        SET fingerprint = EXCLUDED.fingerprint, generation = i.generation + 1,
                            lease_until_ms = EXCLUDED.lease_until_ms, updated_ms = EXCLUDED.updated_ms
                        WHERE i.response IS NULL AND i.lease_until_ms <= $4
                     RETURNING generation",
                    &[&key, &fingerprint, &until, &now_ms],
                )?;
                if let Some(row) = taken {
                    return Ok(Claim::Claimed(ClaimTicket { token: row.try_get(0)? }));
                }
                // Not taken: read what holds the key now. It may have moved on since the upsert
                // looked (decided, purged, taken over); each reading is a safe answer.
                let row = c.query_opt("SELECT response, fingerprint FROM inbound WHERE key = $1", &[&key])?;
                Ok(match row {
                    Some(r) => match r.try_get::<_, Option<Vec<u8>>>(0)? {
                        Some(response) => Claim::Done {
                            response,
                            fingerprint: r.try_get(1)?,
                        },
                        None => Claim::InFlight,
                    },
                    None => Claim::InFlight,
                })
            }
        })
    }

    fn complete_inbound(&self, key: &str, token: i64, response: &[u8], now_ms: i64) -> Result<Completion> {
        // Durable: one statement in its own transaction, committed with the server's
        // synchronous_commit (on by default) before the answer is sent.
        self.run("complete_inbound", |c| {
            let stored = c.query_opt(
                "INSERT INTO inbound AS i (key, fingerprint, generation, lease_until_ms, response, created_ms, updated_ms)
                 VALUES ($1, '', GREATEST($2::bigint, 1), 0, $3, $4, $4)
                 ON CONFLICT (key) DO UPDATE SET response = EXCLUDED.response, updated_ms = EXCLUDED.updated_ms
                    WHERE i.response IS NULL AND i.generation = $2
                 RETURNING 1",
                &[&key, &token, &response, &now_ms],
            )?;
            if stored.is_some() {
                return Ok(Completion::Stored);
            }
            let row = c.query_opt("SELECT response FROM inbound WHERE key = $1", &[&key])?;
            Ok(match row.map(|r| r.try_get::<_, Option<Vec<u8>>>(0)).transpose()? {
                Some(Some(stored)) => Completion::AlreadyDone(stored),
                // Taken over and not decided yet; or purged in between (only possible for a
                // claim abandoned for good): nothing was stored.
                _ => Completion::Lost,
            })
        })
    }

    fn release_inbound(&self, key: &str, token: i64) -> Result<()> {
        self.run("release_inbound", |c| {
            c.execute(
                concat!(
                    "UPDATE inbound SET lease_until_ms = 0",
                    NOT_DURABLE_FROM!(),
                    "WHERE key = $1 AND generation = $2 AND response IS NULL"
                ),
                &[&key, &token],
            )
            .map(drop)
        })
    }

    fn purge_inbound(&self, cutoff_ms: i64) -> Result<usize> {
        self.run("purge_inbound", |c| {
            c.execute(
                concat!(
                    "DELETE FROM inbound",
                    NOT_DURABLE_USING!(),
                    "WHERE updated_ms < $1 AND (response IS NOT NULL OR lease_until_ms < $1)"
                ),
                &[&cutoff_ms],
            )
        })
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn outbox_insert(&self, entry: &OutboxEntry, lease: LeaseRequest<'_>) -> Result<Inserted> {
        let e = entry;
        let headers = headers_to_json(&e.fixed_headers);
        let until = lease.until();
        let (attempts, status) = (small(e.attempts), i32::from(e.last_status));
        // Durable: the request is on disk before its first byte is sent.
        self.run("outbox_insert", |c| {
            let row = c.query_opt(
                "INSERT INTO outbox (id, kind, target, body, state, attempts, result, last_error, created_ms,
                     updated_ms, fingerprint, fixed_headers, method, last_status, lease_owner, lease_until_ms, lease_token)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 1)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id, kind, target, body, state, attempts, result, last_error, created_ms, updated_ms,
                     fingerprint, fixed_headers, method, last_status, lease_owner, lease_until_ms, lease_token",
                &[
                    &e.id,
                    &e.kind,
                    &e.target,
                    &e.body,
                    &e.state.as_str(),
                    &attempts,
                    &e.result,
                    &e.last_error,
                    &e.created_ms,
                    &e.updated_ms,
                    &e.fingerprint,
                    &headers,
                    &e.method,
                    &status,
                    &lease.owner,
                    &until,
                ],
            )?;
            if let Some(row) = row {
                return Ok(Some(Inserted::New(entry_from_row(&row)?)));
            }
            Ok(get_entry(c, &e.id)?.map(Inserted::Existing))
        })?
        .ok_or_else(|| {
            // Only a final entry can be purged; one purged between the two statements is gone.
            Error::new(
                ErrorKind::Internal,
                "store: outbox_insert: the existing entry was purged meanwhile; call again",
            )
        })
    }

    fn outbox_acquire(&self, id: &str, lease: LeaseRequest<'_>) -> Result<Acquired> {
        let (owner, now, until) = (lease.owner, lease.now_ms, lease.until());
        self.run("outbox_acquire", |c| {
            let row = c.query_opt(
                concat!(
                    "UPDATE outbox SET lease_owner = $2, lease_until_ms = $3, lease_token = lease_token + 1",
                    NOT_DURABLE_FROM!(),
                    "WHERE id = $1 AND state = 'pending'
                           AND (lease_owner = '' OR lease_owner = $2 OR lease_until_ms <= $4)
                         RETURNING id, kind, target, body, state, attempts, result, last_error, created_ms, updated_ms,
                             fingerprint, fixed_headers, method, last_status, lease_owner, lease_until_ms, lease_token"
                ),
                &[&id, &owner, &until, &now],
            )?;
            if let Some(row) = row {
                return Ok(Acquired::Leased(entry_from_row(&row)?));
            }
            Ok(match get_entry(c, id)? {
                None => Acquired::Missing,
                Some(e) if e.state != OutboxState::Pending => Acquired::Final(e),
                Some(e) => Acquired::Busy(e),
            })
        })
    }

    fn outbox_record_attempt(
        &self,
        id: &str,
        token: i64,
        attempt: &Attempt,
        last_error: Option<&str>,
        lease_until_ms: i64,
    ) -> Result<bool> {
        let (number, status) = (small(attempt.number), i32::from(attempt.status));
        self.run("outbox_record_attempt", |c| {
            // One statement: the fenced update of the entry, and the attempt row only when
            // the fence held. The entry's count is the highest attempt number recorded
            // (numbers are consecutive from 1; a re-recorded number replaces its row).
            let held = c.query_opt(
                concat!(
                    "WITH entry AS (
                         UPDATE outbox
                         SET attempts = GREATEST(attempts, $3), last_error = $6, last_status = $7,
                             updated_ms = GREATEST(updated_ms, $4), lease_until_ms = $8",
                    NOT_DURABLE_FROM!(),
                    "WHERE id = $1 AND lease_token = $2 AND state = 'pending'
                         RETURNING id),
                     attempt AS (
                         INSERT INTO outbox_attempts (outbox_id, number, started_ms, outcome, status)
                         SELECT id, $3, $4, $5, $7 FROM entry
                         ON CONFLICT (outbox_id, number) DO UPDATE
                            SET started_ms = EXCLUDED.started_ms, outcome = EXCLUDED.outcome, status = EXCLUDED.status)
                     SELECT 1 FROM entry"
                ),
                &[
                    &id,
                    &token,
                    &number,
                    &attempt.started_ms,
                    &attempt.outcome,
                    &last_error,
                    &status,
                    &lease_until_ms,
                ],
            )?;
            Ok(held.is_some())
        })
    }

    fn outbox_finish(&self, id: &str, token: i64, state: OutboxState, result: &[u8], now_ms: i64) -> Result<bool> {
        const OP: &str = "outbox_finish";
        if state == OutboxState::Pending {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!("store: {OP}: state must be succeeded or failed, got pending"),
            ));
        }
        // Not durable: a final state lost in a crash leaves the entry pending, and the next
        // delivery reconciles it under the same idempotency key (ARCHITECTURE.md, durability).
        self.run(OP, |c| {
            c.execute(
                concat!(
                    "UPDATE outbox SET state = $3, result = $4, updated_ms = $5, lease_owner = '', lease_until_ms = 0",
                    NOT_DURABLE_FROM!(),
                    "WHERE id = $1 AND lease_token = $2 AND state = 'pending'"
                ),
                &[&id, &token, &state.as_str(), &result, &now_ms],
            )
            .map(|n| n == 1)
        })
    }

    fn outbox_release(&self, id: &str, token: i64) -> Result<()> {
        self.run("outbox_release", |c| {
            c.execute(
                concat!(
                    "UPDATE outbox SET lease_owner = '', lease_until_ms = 0",
                    NOT_DURABLE_FROM!(),
                    "WHERE id = $1 AND lease_token = $2 AND state = 'pending'"
                ),
                &[&id, &token],
            )
            .map(drop)
        })
    }

    fn outbox_get(&self, id: &str) -> Result<Option<OutboxEntry>> {
        self.run("outbox_get", |c| get_entry(c, id))
    }

    fn outbox_pending(&self, kind: &str, now_ms: i64) -> Result<Vec<OutboxEntry>> {
        self.run("outbox_pending", |c| {
            entries(c.query(
                "SELECT id, kind, target, body, state, attempts, result, last_error, created_ms, updated_ms,
                     fingerprint, fixed_headers, method, last_status, lease_owner, lease_until_ms, lease_token
                 FROM outbox WHERE kind = $1 AND state = 'pending' AND lease_until_ms <= $2
                 ORDER BY created_ms, id",
                &[&kind, &now_ms],
            )?)
        })
    }

    fn outbox_list(&self, q: &OutboxQuery) -> Result<Vec<OutboxEntry>> {
        let state = q.state.map(OutboxState::as_str);
        let limit = i64::try_from(q.page_size()).unwrap_or(1000);
        self.run("outbox_list", |c| {
            entries(c.query(
                "SELECT id, kind, target, body, state, attempts, result, last_error, created_ms, updated_ms,
                     fingerprint, fixed_headers, method, last_status, lease_owner, lease_until_ms, lease_token
                 FROM outbox
                 WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR kind = $2)
                   AND ($3::bigint IS NULL OR created_ms < $3) AND ($4::text IS NULL OR id > $4)
                 ORDER BY id LIMIT $5",
                &[&state, &q.kind, &q.created_before_ms, &q.after_id, &limit],
            )?)
        })
    }

    fn outbox_count_pending(&self, kind: Option<&str>) -> Result<u64> {
        self.run("outbox_count_pending", |c| {
            c.query_opt(
                "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND ($1::text IS NULL OR kind = $1)",
                &[&kind],
            )
            .and_then(|r| r.map_or(Ok(0), |r| r.try_get::<_, i64>(0)))
        })
        .map(|n| u64::try_from(n).unwrap_or(0))
    }

    fn outbox_attempts(&self, id: &str) -> Result<Vec<Attempt>> {
        self.run("outbox_attempts", |c| {
            c.query(
                "SELECT number, started_ms, outcome, status FROM outbox_attempts WHERE outbox_id = $1 ORDER BY number",
                &[&id],
            )?
            .iter()
            .map(|r| {
                Ok(Attempt {
                    number: u32::try_from(r.try_get::<_, i32>(0)?).unwrap_or(0),
                    started_ms: r.try_get(1)?,
                    outcome: r.try_get(2)?,
                    status: u16::try_from(r.try_get::<_, i32>(3)?).unwrap_or(0),
                })
            })
            .collect()
        })
    }

    fn outbox_purge(&self, cutoff_ms: i64) -> Result<usize> {
        self.run("outbox_purge", |c| {
            c.execute(
                concat!(
                    "DELETE FROM outbox",
                    NOT_DURABLE_USING!(),
                    "WHERE state <> 'pending' AND updated_ms < $1"
                ),
                &[&cutoff_ms],
            )
        })
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for h in ["localhost", "LOCALHOST", "127.0.0.1", "127.9.9.9", "::1", "[::1]"] {
            assert!(is_loopback_name(h), "{h}");
        }
        for h in ["db.example.com", "10.0.0.1", "192.168.1.1", "localhost.example.com", ""] {
            assert!(!is_loopback_name(h), "{h}");
        }
    }

    #[test]
    fn parse_errors_never_quote_the_input() {
        let secret = "s3cr3t'pw";
        for dsn in [
            format!("host=127.0.0.1 password={secret} port=abc"),
            format!("host=127.0.0.1 password='{secret}"),
            format!("host=127.0.0.1 password{secret}"),
            format!("postgresql://u:{secret}@127.0.0.1:notaport/db"),
            format!("host=127.0.0.1 password={secret} sslrootcert=/x"),
            format!("host=127.0.0.1 password={secret} sslmode=verify-full"),
        ] {
            let err = PostgresStore::open(&dsn).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{dsn}: {err}");
            assert!(!err.message().contains("s3cr3t"), "{err}");
            assert!(!err.message().contains('\''), "{err}");
            assert_eq!(err.field(), Some("conninfo"));
        }
    }

    #[test]
    fn non_loopback_hosts_need_tls_and_a_name() {
        let err = PostgresStore::open("host=db.example.com sslmode=disable user=u password=topsecret").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.message().contains("sslmode"), "{err}");
        assert!(!err.message().contains("topsecret"), "{err}");
        let err = PostgresStore::open("hostaddr=10.1.2.3 user=u").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.message().contains("host name"), "{err}");
        let err = PostgresStore::open("user=u dbname=x").unwrap_err();
        assert_eq!(err.field(), Some("conninfo.host"), "{err}");
        // A loopback hostaddr with a remote-looking name still stays local.
        let mut config = postgres::Config::from_str("host=db.internal hostaddr=127.0.0.1").unwrap();
        assert!(matches!(
            tls_for(&mut config, &PostgresOptions::default(), "x").unwrap(),
            Tls::Off
        ));
        // A remote host gets TLS (required) with verification.
        let mut config = postgres::Config::from_str("host=db.example.com").unwrap();
        assert!(matches!(
            tls_for(&mut config, &PostgresOptions::default(), "x").unwrap(),
            Tls::On(_)
        ));
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
    }

    #[test]
    fn a_bad_ca_bundle_is_a_config_error() {
        let mut config = postgres::Config::from_str("host=db.example.com").unwrap();
        let options = PostgresOptions {
            root_ca_pem: Some("not pem".into()),
            ..Default::default()
        };
        assert!(matches!(tls_for(&mut config, &options, "x"), Err(e) if e.kind() == ErrorKind::InvalidConfig));
    }

    #[test]
    fn target_description_has_no_password() {
        let config = postgres::Config::from_str("postgresql://app:hunter2@db.example.com:6543/cards").unwrap();
        assert_eq!(describe_target(&config), "app@db.example.com:6543/cards");
        let debug = format!(
            "{:?}",
            PostgresOptions {
                pool_size: 2,
                root_ca_pem: Some("-----BEGIN".into())
            }
        );
        assert!(!debug.contains("BEGIN"), "{debug}");
    }
}
