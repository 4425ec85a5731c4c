//! PostgreSQL specifics: concurrency between handles, migrations, connection
//! loss and reconnection (through a loopback proxy that can be cut), the
//! inbound `U` / outbound pending guarantees while the database is away, and
//! verified TLS (through a loopback TLS-terminating proxy).
//!
//! The behaviour every store shares is in `tests/store.rs` (`postgres_behaviour`).

mod common;
mod pg;

use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use crate::common::emulator::{Fault, PlatformDriver, Tamper, sample_registration};
use cardbridge::ErrorKind;
use cardbridge::alipayplus::model::{self, Direction};
use cardbridge::alipayplus::{AlipayPlus, Begin, client::OUTBOX_KIND};
use cardbridge::http::HttpResponse;
use cardbridge::store::*;
use common::*;
use serde_json::Value;

// ---------------------------------------------------------------- helpers

fn lease(owner: &str, now_ms: i64, lease_ms: i64) -> LeaseRequest<'_> {
    LeaseRequest {
        owner,
        now_ms,
        lease_ms,
    }
}

fn entry(id: &str) -> OutboxEntry {
    OutboxEntry::new(id.into(), "k", "POST", "/t".into(), b"body".to_vec(), "fp".into(), 0)
}

/// Where the test server listens over TCP (the proxies need TCP).
fn upstream() -> (String, u16) {
    let config: postgres::Config = pg::base_dsn().parse().unwrap();
    let host = config
        .get_hosts()
        .iter()
        .find_map(|h| match h {
            postgres::config::Host::Tcp(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "127.0.0.1".into());
    (host, config.get_ports().first().copied().unwrap_or(5432))
}

/// A DSN for the test server's user and database, reached at `host:port`, in `schema`.
fn dsn_via(host: &str, port: u16, schema: &str, extra: &str) -> String {
    let config: postgres::Config = pg::base_dsn().parse().unwrap();
    let mut dsn = format!("host={host} port={port} {extra}");
    if let Some(u) = config.get_user() {
        dsn.push_str(&format!(" user={u}"));
    }
    if let Some(d) = config.get_dbname() {
        dsn.push_str(&format!(" dbname={d}"));
    }
    if let Some(p) = config.get_password() {
        dsn.push_str(&format!(" password='{}'", String::from_utf8_lossy(p)));
    }
    format!("{dsn} options='-c search_path={schema}'")
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// A loopback TCP proxy in front of the test server that can be cut (every
/// connection closed, new ones refused: the database "went away") and restored.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, stop2, conns2) = (up.clone(), stop.clone(), conns.clone());
        std::thread::spawn(move || {
            let target = upstream();
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client); // refused: closed at once
                    continue;
                }
                let Ok(server) = TcpStream::connect((target.0.as_str(), target.1)) else {
                    continue;
                };
                let mut list = conns2.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client, server));
                std::thread::spawn(move || pump(s2, c2));
            }
        });
        Proxy { port, up, stop, conns }
    }

    /// The database goes away: open connections die, new ones are closed at once.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn result_of(resp: &HttpResponse) -> (String, String) {
    let v: Value = serde_json::from_slice(&resp.body).unwrap();
    let r = &v["result"];
    (
        r["resultStatus"].as_str().unwrap().to_string(),
        r["resultCode"].as_str().unwrap().to_string(),
    )
}

fn driver() -> PlatformDriver {
    PlatformDriver::new(platform_key(), CLIENT_ID, "1")
}

fn notify(rid: &str) -> cardbridge::http::HttpRequest {
    driver()
        .request(
            "/v2/pds/memberships/notifyCardRegistration",
            &sample_registration(rid),
            "2026-11-23T10:00:00.000+00:00",
            Tamper::None,
        )
        .unwrap()
}

// ---------------------------------------------------------------- tests

#[test]
fn concurrent_claims_from_two_handles_have_one_winner() {
    let Some(schema) = pg::Schema::create("claims") else {
        return;
    };
    let a = Arc::new(PostgresStore::open(&schema.dsn()).unwrap());
    let b = Arc::new(PostgresStore::open(&schema.dsn()).unwrap());
    for round in 0..10 {
        let key = format!("race-{round}");
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let store = if n % 2 == 0 { a.clone() } else { b.clone() };
                let (barrier, key) = (barrier.clone(), key.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.claim_inbound(&key, &format!("fp-{n}"), 1_000, 3_600_000).unwrap()
                })
            })
            .collect();
        let claims: Vec<Claim> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let won = claims.iter().filter(|c| matches!(c, Claim::Claimed(_))).count();
        let in_flight = claims.iter().filter(|c| **c == Claim::InFlight).count();
        assert_eq!((won, in_flight), (1, 7), "round {round}: {claims:?}");
    }
    // Take-over of an expired claim: exactly one new generation.
    a.claim_inbound("expired", "fp", 0, 10).unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                store.claim_inbound("expired", "fp", 1_000, 60_000).unwrap()
            })
        })
        .collect();
    let claims: Vec<Claim> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let won: Vec<_> = claims.iter().filter(|c| matches!(c, Claim::Claimed(_))).collect();
    assert_eq!(won, vec![&Claim::Claimed(ClaimTicket { token: 2 })], "{claims:?}");
}

#[test]
fn concurrent_leases_from_two_handles_have_one_holder() {
    let Some(schema) = pg::Schema::create("leases") else {
        return;
    };
    let a = Arc::new(PostgresStore::open(&schema.dsn()).unwrap());
    let b = Arc::new(PostgresStore::open(&schema.dsn()).unwrap());
    for round in 0..10 {
        let id = format!("e-{round}");
        let t = match a.outbox_insert(&entry(&id), lease("creator", 0, 10)).unwrap() {
            Inserted::New(e) => e.lease_token,
            other => panic!("{other:?}"),
        };
        if round % 2 == 0 {
            a.outbox_release(&id, t).unwrap(); // free now; odd rounds: expired at 10
        }
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let store = if n % 2 == 0 { a.clone() } else { b.clone() };
                let (barrier, id) = (barrier.clone(), id.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let owner = format!("owner-{n}");
                    store.outbox_acquire(&id, lease(&owner, 1_000, 60_000)).unwrap()
                })
            })
            .collect();
        let got: Vec<Acquired> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let leased = got.iter().filter(|g| matches!(g, Acquired::Leased(_))).count();
        let busy = got.iter().filter(|g| matches!(g, Acquired::Busy(_))).count();
        assert_eq!((leased, busy), (1, 7), "round {round}: {got:?}");
        assert_eq!(a.outbox_get(&id).unwrap().unwrap().lease_token, t + 1);
    }
}

#[test]
fn schema_version_is_recorded_and_a_newer_one_is_refused() {
    let Some(schema) = pg::Schema::create("version") else {
        return;
    };
    // Four nodes starting at once migrate the fresh schema exactly once.
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let dsn = schema.dsn();
            std::thread::spawn(move || PostgresStore::open(&dsn).map(drop))
        })
        .collect();
    for t in opened {
        t.join().unwrap().unwrap();
    }
    let store = PostgresStore::open(&schema.dsn()).unwrap();
    assert_eq!(store.schema_version().unwrap(), PostgresStore::SCHEMA_VERSION);
    let mut admin = pg::admin().unwrap();
    let rows = admin
        .query(&format!("SELECT version FROM {}.schema_version", schema.name), &[])
        .unwrap();
    assert_eq!(rows.len(), 1);
    drop(store);

    admin
        .batch_execute(&format!("UPDATE {}.schema_version SET version = 99", schema.name))
        .unwrap();
    let err = PostgresStore::open(&schema.dsn()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.message().contains("schema version 99"), "{err}");
}

#[test]
fn errors_never_show_the_password() {
    let Some(schema) = pg::Schema::create("secret") else {
        return;
    };
    let (host, port) = upstream();
    // Wrong database: refused by the server, a configuration error naming the target.
    let dsn = format!("host={host} port={port} user=postgres password=Sup3rS3cret dbname=cb_no_such_db_here");
    let err = PostgresStore::open(&dsn).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.message().contains("cb_no_such_db_here"), "{err}");
    assert!(!err.message().contains("Sup3rS3cret"), "{err}");
    // Nobody listening: unreachable is Transport (try again later).
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = PostgresStore::open(&format!(
        "postgresql://postgres:Sup3rS3cret@127.0.0.1:{port}/postgres?connect_timeout=2"
    ))
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert!(!err.message().contains("Sup3rS3cret"), "{err}");
    let store = PostgresStore::open(&schema.dsn()).unwrap();
    assert!(!format!("{store:?}").contains("password"));
}

#[test]
fn killed_connections_are_replaced_without_the_caller_noticing() {
    static N: AtomicU32 = AtomicU32::new(0);
    let Some(schema) = pg::Schema::create("kill") else {
        return;
    };
    let app = format!("cb_kill_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let dsn = format!("{} application_name={app}", schema.dsn());
    let store = PostgresStore::open(&dsn).unwrap();
    assert_eq!(
        store.claim_inbound("k1", "fp", 1, 60_000).unwrap(),
        Claim::Claimed(ClaimTicket { token: 1 })
    );
    let mut admin = pg::admin().unwrap();
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .len();
    assert_eq!(killed, 1, "the store keeps one idle connection");
    // The pooled connection is dead; the call reconnects and succeeds.
    assert_eq!(store.complete_inbound("k1", 1, b"S", 2).unwrap(), Completion::Stored);
    assert_eq!(store.open_connections(), 1);
    assert!(matches!(
        store.claim_inbound("k1", "fp", 3, 60_000).unwrap(),
        Claim::Done { .. }
    ));
}

#[test]
fn after_every_connection_was_killed_the_next_call_still_succeeds() {
    static N: AtomicU32 = AtomicU32::new(0);
    let Some(schema) = pg::Schema::create("killall") else {
        return;
    };
    let app = format!(
        "cb_killall_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let store = Arc::new(PostgresStore::open(&format!("{} application_name={app}", schema.dsn())).unwrap());
    // Fill the pool: eight callers at once leave several idle connections behind.
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..20 {
                    store.claim_inbound(&format!("k-{t}-{i}"), "fp", 1, 60_000).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let open = store.open_connections();
    assert!(open > 1, "several pooled connections ({open})");
    // The server drops every one of them (as a restart does).
    let killed = pg::admin()
        .unwrap()
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .len();
    assert_eq!(killed, open);
    assert_eq!(store.complete_inbound("k-0-0", 1, b"S", 2).unwrap(), Completion::Stored);
    assert_eq!(
        store.open_connections(),
        1,
        "the stale ones were dropped, one new one made"
    );
}

#[test]
fn the_pool_never_opens_more_than_its_size() {
    static N: AtomicU32 = AtomicU32::new(0);
    let Some(schema) = pg::Schema::create("poolcap") else {
        return;
    };
    let app = format!(
        "cb_poolcap_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let options = PostgresOptions {
        pool_size: 2,
        ..Default::default()
    };
    let store =
        Arc::new(PostgresStore::open_with(&format!("{} application_name={app}", schema.dsn()), &options).unwrap());
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let k = format!("k-{t}-{i}");
                    assert_eq!(
                        store.claim_inbound(&k, "fp", 1, 60_000).unwrap(),
                        Claim::Claimed(ClaimTicket { token: 1 })
                    );
                    assert_eq!(
                        store.complete_inbound(&k, 1, k.as_bytes(), 2).unwrap(),
                        Completion::Stored
                    );
                    assert!(store.open_connections() <= 2);
                }
            })
        })
        .collect();
    let mut admin = pg::admin().unwrap();
    let mut most = 0;
    while threads.iter().any(|t| !t.is_finished()) {
        let n: i64 = admin
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .get(0);
        most = most.max(n);
        std::thread::sleep(Duration::from_millis(5));
    }
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert!(most <= 2, "at most 2 server connections, saw {most}");
    assert_eq!(store.open_connections(), 2);
}

#[test]
fn an_outage_is_a_transport_error_and_the_store_reconnects_by_itself() {
    let Some(schema) = pg::Schema::create("outage") else {
        return;
    };
    let proxy = Proxy::start();
    let store = PostgresStore::open(&dsn_via("127.0.0.1", proxy.port, &schema.name, "connect_timeout=2")).unwrap();
    assert_eq!(
        store.claim_inbound("a", "fp", 1, 60_000).unwrap(),
        Claim::Claimed(ClaimTicket { token: 1 })
    );

    proxy.cut();
    for _ in 0..3 {
        let err = store.claim_inbound("b", "fp", 2, 60_000).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
        assert!(
            err.message().starts_with("store: claim_inbound: postgres database"),
            "{err}"
        );
    }
    let err = store.complete_inbound("a", 1, b"answer", 3).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert_eq!(store.open_connections(), 0, "broken connections are dropped");

    proxy.restore();
    // Same handle, no reopen: the next call connects again.
    assert_eq!(
        store.complete_inbound("a", 1, b"answer", 4).unwrap(),
        Completion::Stored
    );
    assert_eq!(
        store.claim_inbound("b", "fp", 5, 60_000).unwrap(),
        Claim::Claimed(ClaimTicket { token: 1 })
    );
}

#[test]
fn inbound_answers_u_while_the_database_is_away_and_decides_once_after() {
    let Some(schema) = pg::Schema::create("inbound") else {
        return;
    };
    let proxy = Proxy::start();
    let store: Arc<dyn Store> =
        Arc::new(PostgresStore::open(&dsn_via("127.0.0.1", proxy.port, &schema.name, "connect_timeout=2")).unwrap());
    let mut cfg = config(None);
    cfg.claim_lease = Duration::from_millis(300);
    let ap = AlipayPlus::new(cfg, Some(store.clone())).unwrap();

    // Down before the call: the claim fails, the platform is told U (never F).
    proxy.cut();
    let req = notify("R-DOWN-1");
    match ap.begin(&req, now_ms()) {
        Begin::Respond(r) => assert_eq!(result_of(&r), ("U".into(), "UNKNOWN_EXCEPTION".into())),
        Begin::Decide(_) => panic!("the host must not be asked without a claim"),
    }
    proxy.restore();

    // Down between claim and decision: finish fails with Transport, finish_unknown still answers U.
    let Begin::Decide(mut call) = ap.begin(&req, now_ms()) else {
        panic!("first delivery after the outage reaches the host")
    };
    proxy.cut();
    let err = ap.finish(&mut call, br#"{}"#, now_ms()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    let u = ap.finish_unknown(&mut call, now_ms()).unwrap();
    assert_eq!(result_of(&u), ("U".into(), "UNKNOWN_EXCEPTION".into()));
    assert!(PlatformDriver::verify_response(&merchant_key().public_key(), &req, &u));
    proxy.restore();

    // The platform retries after the claim's lease: decided once, replayed byte for byte.
    std::thread::sleep(Duration::from_millis(350));
    let Begin::Decide(mut call) = ap.begin(&req, now_ms()) else {
        panic!("the retry reaches the host")
    };
    let decided = ap.finish(&mut call, br#"{}"#, now_ms()).unwrap();
    assert_eq!(result_of(&decided).0, "S");
    match ap.begin(&req, now_ms()) {
        Begin::Respond(r) => assert_eq!(r.body, decided.body),
        Begin::Decide(_) => panic!("a decided requestId never reaches the host again"),
    }
}

#[test]
fn issue_card_stays_pending_while_the_database_is_away_and_is_issued_once_after() {
    let Some(schema) = pg::Schema::create("outbound") else {
        return;
    };
    let proxy = Arc::new(Proxy::start());
    let dsn = dsn_via("127.0.0.1", proxy.port, &schema.name, "connect_timeout=2");
    let emu = start_emulator();
    let ap = AlipayPlus::new(
        config(Some(emu.base_url())),
        Some(Arc::new(PostgresStore::open(&dsn).unwrap())),
    )
    .unwrap();
    let rid = "REQ-PG-OUTAGE";
    let request = model::parse(
        format!(
            r#"{{"appId":"2102010113769000","customerBelongsTo":"TNG","requestId":"{rid}","customerId":"210911290000",
            "externalCustomerId":"M-000123","registerDate":"2019-11-27T19:07:41+08:00","cardFields":[]}}"#
        )
        .as_bytes(),
        Direction::Outbound,
    )
    .unwrap();
    // The platform processes the request and answers late; the database goes away meanwhile.
    emu.push_fault(Fault::DelayThenAnswer(Duration::from_millis(250)));
    let cutter = {
        let proxy = proxy.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            proxy.cut();
        })
    };
    let err = ap.issue_card(&request).unwrap_err();
    cutter.join().unwrap();
    assert_eq!(err.kind(), ErrorKind::RemoteUnknown, "{err}");
    let id = format!("{OUTBOX_KIND}/2102010113769000/{rid}");
    assert_eq!(err.pending().map(|p| p.outbox_id.as_str()), Some(id.as_str()));
    assert_eq!(emu.cards_issued(), 1);
    proxy.restore();

    // Still pending in the database, for anyone to resume.
    let store = PostgresStore::open(&schema.dsn()).unwrap();
    assert_eq!(store.outbox_get(&id).unwrap().unwrap().state, OutboxState::Pending);
    // Another node, after the lease has run out, resumes it: the platform replays the same card.
    let mut later = config(Some(emu.base_url()));
    later.clock = cardbridge::clock::Clock::offset(120_000);
    let other = AlipayPlus::new(later, Some(Arc::new(store))).unwrap();
    let resumed = other.resume_pending().unwrap();
    assert_eq!(resumed.len(), 1);
    let card = resumed[0].1.as_ref().unwrap();
    assert_eq!(Some(card.card_no.clone()), emu.card_no_for(rid));
    assert_eq!(emu.cards_issued(), 1, "issued exactly once");
}

// ------------------------------------------------------------------ TLS

fn tls_fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A loopback endpoint that speaks PostgreSQL's TLS upgrade with the test
/// CA's `localhost` certificate and forwards the decrypted stream to the
/// test server.
fn tls_proxy() -> u16 {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = CertificateDer::from(pem::parse(tls_fixture("server.pem")).unwrap().into_contents());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        pem::parse(tls_fixture("server.key")).unwrap().into_contents(),
    ));
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = tls_session(tcp, config);
            });
        }
    });
    port
}

fn tls_session(mut tcp: TcpStream, config: Arc<rustls::ServerConfig>) -> std::io::Result<()> {
    let mut request = [0u8; 8];
    tcp.read_exact(&mut request)?;
    // SSLRequest: length 8, code 80877103.
    if request != [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f] {
        return Ok(());
    }
    tcp.write_all(b"S")?;
    let target = upstream();
    let mut server = TcpStream::connect((target.0.as_str(), target.1))?;
    tcp.set_read_timeout(Some(Duration::from_millis(2)))?;
    server.set_read_timeout(Some(Duration::from_millis(2)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buf = [0u8; 16 * 1024];
    let idle = |e: &std::io::Error| matches!(e.kind(), IoKind::WouldBlock | IoKind::TimedOut);
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => server.write_all(&buf[..n])?,
            Err(e) if idle(&e) => {}
            Err(e) => return Err(e),
        }
        match server.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                tls.write_all(&buf[..n])?;
                tls.flush()?;
            }
            Err(e) if idle(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

#[test]
fn tls_verifies_the_server_certificate() {
    let Some(schema) = pg::Schema::create("tls") else {
        return;
    };
    let port = tls_proxy();
    let dsn = dsn_via(
        "localhost",
        port,
        &schema.name,
        "hostaddr=127.0.0.1 sslmode=require connect_timeout=5",
    );
    // The test CA is not among the trusted roots: refused during the handshake.
    let err = PostgresStore::open(&dsn).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert!(err.message().to_lowercase().contains("certificate"), "{err}");
    // Trusting the test CA: the store works over TLS.
    let options = PostgresOptions {
        root_ca_pem: Some(tls_fixture("ca.pem")),
        ..Default::default()
    };
    let store = PostgresStore::open_with(&dsn, &options).unwrap();
    assert_eq!(
        store.claim_inbound("k", "fp", 1, 1_000).unwrap(),
        Claim::Claimed(ClaimTicket { token: 1 })
    );
    assert_eq!(
        store.complete_inbound("k", 1, b"over tls", 2).unwrap(),
        Completion::Stored
    );
    // The certificate names localhost and 127.0.0.1, not another name for the same address.
    let wrong_name = dsn_via(
        "db.example.com",
        port,
        &schema.name,
        "hostaddr=127.0.0.1 sslmode=require",
    );
    let err = PostgresStore::open_with(&wrong_name, &options).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
}
