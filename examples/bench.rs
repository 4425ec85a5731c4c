//! Benchmark: what cardbridge adds on top of the unavoidable primitives.
//!
//! Run: `cargo run --release --example bench [-- --iterations N]`
//!
//! 1. A signed issueCard request build (validate, serialise, sign) next to one
//!    bare aws-lc RSA-2048 signature of the same content.
//! 2. Handling one notifyCardRegistration end to end (verify, validate, claim,
//!    host decision, durable answer, signed response) next to one bare
//!    signature plus one bare SQLite commit (WAL, synchronous=FULL) on the same
//!    disk.
//!
//! All operations are measured interleaved, round-robin, in the same run, so
//! disk and CPU noise hits them alike. Prints medians and ratios.

use cardbridge::alipayplus::client::build_signed_request;
use cardbridge::alipayplus::model::{self, Direction, IssueCardRequest};
use cardbridge::alipayplus::{AlipayPlus, Begin, Config, signature};
use cardbridge::crypto::keys::PrivateKey;
use cardbridge::crypto::rsa;
use cardbridge::emulator::{PlatformDriver, Tamper, sample_registration};
use cardbridge::store::{SqliteStore, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WARMUP: usize = 20;
const TIME: &str = "2026-11-23T10:00:00.000+00:00";
const TARGET: &str = "/v2/pds/memberships/notifyCardRegistration";

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn time(op: impl FnOnce()) -> Duration {
    let t = Instant::now();
    op();
    t.elapsed()
}

fn main() {
    let iterations: usize = std::env::args()
        .skip_while(|a| a != "--iterations")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let dir = std::env::temp_dir().join(format!("cardbridge-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let merchant = PrivateKey::generate_rsa2048().expect("key");
    let platform = PrivateKey::generate_rsa2048().expect("key");
    let mut config = Config::new("BENCH_CLIENT", merchant.clone(), platform.public_key());
    config.base_url = Some("https://platform.invalid".into());

    let request: IssueCardRequest = model::parse(
        br#"{"appId":"2102010113769000","customerBelongsTo":"TNG","requestId":"20191127190741010007013213123000","customerId":"210911290000","externalCustomerId":"M-000123","registerDate":"2019-11-27T19:07:41+08:00","cardFields":[{"fieldCode":"POINT","fieldValue":"123"},{"fieldCode":"BALANCE","fieldValue":{"value":100,"currency":"SGD"}},{"fieldCode":"LEVEL","fieldValue":"GOLD"}]}"#,
        Direction::Outbound,
    )
    .expect("valid request");
    let built = build_signed_request(&config, &request, TIME).expect("build");
    let request_content = signature::content_to_sign("POST", &built.target, "BENCH_CLIENT", TIME, &built.body);

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("handler.db")).expect("store"));
    let ap = AlipayPlus::new(config.clone(), Some(store)).expect("integration");
    let driver = PlatformDriver::new(platform.clone(), "BENCH_CLIENT", "1");
    let notifications: Vec<_> = (0..iterations + WARMUP)
        .map(|i| {
            driver
                .request(TARGET, &sample_registration(&format!("BENCH-{i}")), TIME, Tamper::None)
                .expect("req")
        })
        .collect();
    let answer = br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"Success"}}"#;
    let answer_content = signature::content_to_sign("POST", TARGET, "BENCH_CLIENT", TIME, answer);
    let bare_db = bare_database(&dir.join("bare.db"));
    let now = chrono::Utc::now().timestamp_millis();

    let mut samples: [Vec<Duration>; 5] = Default::default();
    for (i, notification) in notifications.iter().enumerate() {
        let round = [
            time(|| {
                std::hint::black_box(rsa::sign_sha256(&merchant, &request_content).expect("sign"));
            }),
            time(|| {
                std::hint::black_box(build_signed_request(&config, &request, TIME).expect("build"));
            }),
            time(|| {
                std::hint::black_box(rsa::sign_sha256(&merchant, &answer_content).expect("sign"));
            }),
            time(|| {
                bare_db
                    .execute(
                        "INSERT INTO t (k, v) VALUES (?1, ?2)",
                        rusqlite::params![format!("bare-{i}"), &answer[..]],
                    )
                    .expect("commit");
            }),
            time(|| {
                let Begin::Decide(mut pending) = ap.begin(notification, now) else {
                    panic!("expected a host decision")
                };
                std::hint::black_box(ap.finish(&mut pending, b"{}", now).expect("finish"));
            }),
        ];
        if i >= WARMUP {
            for (s, d) in samples.iter_mut().zip(round) {
                s.push(d);
            }
        }
    }
    let [sign_req, build, sign_answer, commit, handle] = samples.map(median);

    let row = |name: &str, ours: Duration, bare: Duration| {
        println!(
            "{name:<52} {:>8.1} µs  bare {:>8.1} µs  ratio {:.3}",
            micros(ours),
            micros(bare),
            ours.as_secs_f64() / bare.as_secs_f64()
        );
    };
    println!("cardbridge bench: {iterations} interleaved iterations, medians");
    println!("{:<52} {:>8.1} µs", "bare RSA-2048 sign (aws-lc)", micros(sign_req));
    println!(
        "{:<52} {:>8.1} µs",
        "bare SQLite commit (WAL, synchronous=FULL)",
        micros(commit)
    );
    row("signed issueCard build (validate+serialise+sign)", build, sign_req);
    row(
        "notification handled vs bare sign + bare commit",
        handle,
        sign_answer + commit,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A database configured like the store (WAL, synchronous=FULL) with one table.
fn bare_database(path: &std::path::Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(path).expect("bare db");
    db.pragma_update(None, "journal_mode", "WAL").expect("wal");
    db.pragma_update(None, "synchronous", "FULL").expect("full");
    db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)", [])
        .expect("table");
    db
}
