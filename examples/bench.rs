//! Benchmark: what cardbridge adds on top of the unavoidable primitives.
//!
//! Run: `cargo run --release --example bench [-- --iterations N]`
//!
//! 1. A signed issueCard request build (validate, serialise, sign) next to one
//!    bare aws-lc RSA-2048 signature of the same content.
//! 2. Handling one notifyCardRegistration end to end (verify, validate, claim,
//!    host decision, durable answer, signed response) next to one bare
//!    verify of the same request signature, one bare signature and one bare
//!    SQLite commit (WAL, synchronous=FULL, cached prepared statement) on the
//!    same disk.
//!
//! 3. A signed WeChat Pay `confirm` request (validate, OAEP-encrypt the phone
//!    number and one form value, sign) next to two bare OAEP encryptions plus
//!    one bare signature.
//! 4. Handling one WeChat Pay card-opening callback (verify, AES-GCM decrypt,
//!    OAEP-decrypt the phone number, durable de-duplication, answer) next to a
//!    bare verify + AES-GCM decrypt + OAEP decrypt + SQLite commit (cached
//!    prepared statement).
//!
//!    Two more rows take these apart: the same notification on the in-memory
//!    store next to bare verify + sign (what the library's own code costs, no
//!    storage), and the notification next to its primitives plus one bare
//!    lease write (an uncommitted-to-disk SQLite insert, `synchronous=NORMAL`):
//!    the claim that keeps two deliveries of one requestId from both reaching
//!    a host is a write of its own, which the bare formula leaves out.
//!
//! Each bare side does the same primitive work as its row, no less: the
//! signature checks, the encryptions and the durable commits the library
//! cannot avoid; it leaves out only what cardbridge adds (parsing,
//! validation, idempotency bookkeeping, building the answer).
//!
//! 5. PostgreSQL (when a server answers at `CARDBRIDGE_TEST_PG`, default
//!    `host=127.0.0.1 port=5432 user=postgres dbname=postgres`): a notification
//!    handled on the PostgreSQL store next to one bare signature plus one bare
//!    single-row commit on the same server, and notifications per second with
//!    8 concurrent callers against one caller.
//!
//! 6. Disk flushes per operation, counted, not assumed: when `strace` is
//!    installed the bench re-runs itself under `strace -f -c -e
//!    trace=fsync,fdatasync` for N operations of each kind (and for 0, to take
//!    out the set-up), and prints fsyncs per operation next to a bare commit,
//!    and the WAL bytes one notification writes next to a bare one-row commit.
//!
//! All operations are measured interleaved, round-robin, in the same run, so
//! disk and CPU noise hits them alike. Prints medians and ratios.

/// The platform emulators, compiled in from the `cardbridge` binary (the
/// library has none).
#[allow(dead_code, unused_imports)]
#[path = "../src/bin/cardbridge/emulator/mod.rs"]
mod emulator;

use crate::emulator::{PlatformDriver, Tamper, sample_registration};
use cardbridge::alipayplus::client::build_signed_request;
use cardbridge::alipayplus::model::{self, Direction, IssueCardRequest};
use cardbridge::alipayplus::{AlipayPlus, Begin, Config, signature};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::crypto::keys::PrivateKey;
use cardbridge::crypto::{b64_decode_strict, b64_encode, oaep, rsa};
use cardbridge::http::HttpRequest;
use cardbridge::store::{MemoryStore, SqliteStore, Store};
use cardbridge::validate::Path;
use cardbridge::wechatpay::keyring::KeyRing;
use cardbridge::wechatpay::model::{WireOptions, prepare_confirm};
use cardbridge::wechatpay::sign::RequestSigner;
use cardbridge::wechatpay::{CallbackBegin, WechatPay};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WARMUP: usize = 20;
const TIME: &str = "2026-11-23T10:00:00.000+00:00";
const TARGET: &str = "/v2/pds/memberships/notifyCardRegistration";

/// One notification through `begin` and `finish`, the host accepting.
fn handle_notification(ap: &AlipayPlus, req: &HttpRequest, now: i64) {
    let Begin::Decide(mut pending) = ap.begin(req, now) else {
        panic!("expected a host decision")
    };
    std::hint::black_box(ap.finish(&mut pending, b"{}", now).expect("finish"));
}

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
    if let Some(kind) = std::env::args().skip_while(|a| a != "--fsync-probe").nth(1) {
        let n = std::env::args()
            .skip_while(|a| a != "--fsync-probe")
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        fsync_probe(&kind, n);
        return;
    }
    if let Some(n) = std::env::args().skip_while(|a| a != "--rss-probe").nth(1) {
        rss_probe(n.parse().expect("--rss-probe N: a number of requests"));
        return;
    }
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
    // The bare verify of each notification: its own content and signature.
    let platform_public = platform.public_key();
    let notification_signatures: Vec<(Vec<u8>, Vec<u8>)> = notifications
        .iter()
        .map(|n| {
            let header = cardbridge::http::find_header(&n.headers, "Signature").expect("signed");
            let parsed = signature::parse_header(header).expect("header");
            let raw = signature::decode_signature_value(&parsed.signature).expect("base64");
            let content = signature::content_to_sign("POST", TARGET, "BENCH_CLIENT", TIME, &n.body);
            assert!(rsa::verify_sha256(&platform_public, &content, &raw));
            (content, raw)
        })
        .collect();
    let answer = br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"Success"}}"#;
    let answer_content = signature::content_to_sign("POST", TARGET, "BENCH_CLIENT", TIME, answer);
    let bare_db = bare_database(&dir.join("bare.db"));
    let lease_db = bare_database(&dir.join("lease.db"));
    lease_db.pragma_update(None, "synchronous", "NORMAL").expect("normal");
    let memory_ap = AlipayPlus::new(config.clone(), Some(Arc::new(MemoryStore::new()))).expect("integration");
    let now = chrono::Utc::now().timestamp_millis();

    // WeChat Pay: our merchant key, WeChat's key (public half configured by id), APIv3 key.
    let wechat_key = PrivateKey::generate_rsa2048().expect("key");
    let api_v3 = ApiV3Key::new(b"0123456789abcdef0123456789abcdef").expect("32 bytes");
    let mut ring = KeyRing::new();
    ring.add_public_key("PUB_KEY_ID_0114232134912410000000000000", wechat_key.public_key())
        .expect("id");
    let signer = RequestSigner::new("1900000001", "5F1C72E2A8931B72", merchant.clone()).expect("signer");
    let mut wx_config = cardbridge::wechatpay::Config::new(signer.clone(), merchant.clone(), api_v3.clone(), ring);
    wx_config.base_url = "http://127.0.0.1:9".into();
    let wx_store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("wechat.db")).expect("store"));
    let wechat = WechatPay::new(wx_config, Some(wx_store)).expect("wechat");
    let confirm_input = br#"{"user_card_code":"478515832665","card_id":"pbLatjvWOibDc5-TBnbUk1pD12o0","brand_id":"1004","openid":"obLatjnx9gnqzS4myYGmLZ7LgLBA","phone_number":"13800000000","user_information":{"common_field_list":[{"name":"USER_FORM_FLAG_NAME","value":"Li Lei"}]},"user_card_confirm_state":"CREATE_CARD_SUCCESS"}"#;
    let wechat_public = wechat_key.public_key();
    let merchant_public = merchant.public_key();
    let callbacks: Vec<HttpRequest> = (0..iterations + WARMUP)
        .map(|i| wechat_callback(i, &wechat_key, &merchant_public, &api_v3))
        .collect();
    let sample_cb = &callbacks[0];
    let cb_sig =
        b64_decode_strict(cardbridge::http::find_header(&sample_cb.headers, "Wechatpay-Signature").unwrap()).unwrap();
    let cb_ts = cardbridge::http::find_header(&sample_cb.headers, "Wechatpay-Timestamp")
        .unwrap()
        .to_string();
    let cb_nonce = cardbridge::http::find_header(&sample_cb.headers, "Wechatpay-Nonce")
        .unwrap()
        .to_string();
    let cb_message = cardbridge::wechatpay::verify::message(&cb_ts, &cb_nonce, &sample_cb.body);
    let envelope: serde_json::Value = serde_json::from_slice(&sample_cb.body).unwrap();
    let cb_ciphertext = envelope["resource"]["ciphertext"].as_str().unwrap().to_string();
    let phone_ct = oaep::encrypt(&merchant_public, b"13800000000").unwrap();
    let wx_now = chrono::Utc::now().timestamp();

    let insert = "INSERT INTO t (k, v) VALUES (?1, ?2)";
    let mut samples: [Vec<Duration>; 12] = Default::default();
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
                    .prepare_cached(insert)
                    .expect("prepared")
                    .execute(rusqlite::params![format!("bare-{i}"), &answer[..]])
                    .expect("commit");
            }),
            time(|| {
                let (content, raw) = &notification_signatures[i];
                assert!(rsa::verify_sha256(&platform_public, content, raw));
            }),
            time(|| {
                handle_notification(&ap, notification, now);
            }),
            time(|| {
                handle_notification(&memory_ap, notification, now);
            }),
            time(|| {
                lease_db
                    .prepare_cached(insert)
                    .expect("prepared")
                    .execute(rusqlite::params![format!("lease-{i}"), &answer[..]])
                    .expect("lease write");
            }),
            time(|| {
                let mut enc = |_: &Path, clear: &str| oaep::encrypt(&wechat_public, clear.as_bytes());
                let p = prepare_confirm(confirm_input, WireOptions::default(), &mut enc).expect("confirm");
                std::hint::black_box(signer.sign(p.method, &p.target, &p.body, wx_now).expect("sign"));
            }),
            time(|| {
                std::hint::black_box(oaep::encrypt(&wechat_public, b"13800000000").expect("oaep"));
                std::hint::black_box(oaep::encrypt(&wechat_public, b"Li Lei").expect("oaep"));
                std::hint::black_box(rsa::sign_sha256(&merchant, &request_content).expect("sign"));
            }),
            time(|| {
                let CallbackBegin::Handle(mut event) = wechat.callback_begin(&callbacks[i], wx_now * 1000) else {
                    panic!("expected an event")
                };
                std::hint::black_box(
                    wechat
                        .callback_finish(&mut event, true, "", wx_now * 1000)
                        .expect("finish"),
                );
            }),
            time(|| {
                assert!(rsa::verify_sha256(&wechat_public, &cb_message, &cb_sig));
                std::hint::black_box(
                    api_v3
                        .decrypt(b"0123456789ab", b"user_card", &cb_ciphertext)
                        .expect("aead"),
                );
                std::hint::black_box(oaep::decrypt(&merchant, &phone_ct).expect("oaep"));
                bare_db
                    .prepare_cached(insert)
                    .expect("prepared")
                    .execute(rusqlite::params![format!("cb-{i}"), &answer[..]])
                    .expect("commit");
            }),
        ];
        if i >= WARMUP {
            for (s, d) in samples.iter_mut().zip(round) {
                s.push(d);
            }
        }
    }
    let [
        sign_req,
        build,
        sign_answer,
        commit,
        verify_request,
        handle,
        handle_in_memory,
        lease_write,
        confirm,
        bare_confirm,
        callback,
        bare_callback,
    ] = samples.map(median);

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
        "bare RSA-2048 verify (aws-lc)",
        micros(verify_request)
    );
    println!(
        "{:<52} {:>8.1} µs",
        "bare SQLite commit (WAL, synchronous=FULL, prepared)",
        micros(commit)
    );
    row("signed issueCard build (validate+serialise+sign)", build, sign_req);
    row(
        "notification handled vs verify + sign + commit",
        handle,
        verify_request + sign_answer + commit,
    );
    row(
        "  same, in-memory store, vs verify + sign",
        handle_in_memory,
        verify_request + sign_answer,
    );
    row(
        "  same, vs verify + sign + commit + bare lease write",
        handle,
        verify_request + sign_answer + commit + lease_write,
    );
    row(
        "WeChat confirm signed (2 OAEP fields) vs 2 OAEP + sign",
        confirm,
        bare_confirm,
    );
    row(
        "WeChat callback handled vs verify+GCM+OAEP+commit",
        callback,
        bare_callback,
    );
    println!(
        "{:<52} {:>8.1} µs",
        "bare lease write (SQLite insert, synchronous=NORMAL)",
        micros(lease_write)
    );
    primitive_scaling(&merchant, &platform_public, &notification_signatures[0], iterations);
    let sqlite_store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("throughput.db")).expect("store"));
    let sqlite_ap = Arc::new(AlipayPlus::new(config.clone(), Some(sqlite_store)).expect("integration"));
    throughput_row(
        "SQLite (durable): notifications, 8 concurrent callers",
        &sqlite_ap,
        &driver,
        iterations,
    );
    issue_card_round_trip(iterations, &dir, &merchant, &platform);
    postgres_rows(iterations, &config, &platform, &merchant, &answer_content);
    fsync_rows();
    let _ = std::fs::remove_dir_all(&dir);
}

const PROBE_OPS: usize = 50;
const PROBE_KINDS: [&str; 6] = [
    "bare-commit",
    "notification",
    "notification-x8",
    "wechat-callback",
    "issue-card",
    "confirm",
];

/// Section 6: fsync/fdatasync calls per operation, from `strace -c` of this
/// binary running `--fsync-probe KIND N` for N = 0 and N = PROBE_OPS.
fn fsync_rows() {
    let exe = std::env::current_exe().expect("exe");
    let count = |kind: &str, n: usize| -> Option<(u64, u64)> {
        let out = std::env::temp_dir().join(format!("cardbridge-strace-{}-{kind}-{n}", std::process::id()));
        let run = std::process::Command::new("strace")
            .args(["-f", "-c", "-e", "trace=fsync,fdatasync", "-o"])
            .arg(&out)
            .arg(&exe)
            .args(["--fsync-probe", kind, &n.to_string()])
            .output()
            .ok()?;
        let stdout = String::from_utf8_lossy(&run.stdout).to_string();
        let text = std::fs::read_to_string(&out).ok()?;
        let _ = std::fs::remove_file(&out);
        // `strace -c` table: "% time seconds usecs/call calls errors syscall"
        let calls: u64 = text
            .lines()
            .filter(|l| l.ends_with("fsync") || l.ends_with("fdatasync"))
            .filter_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.get(3)?.parse::<u64>().ok()
            })
            .sum();
        let wal: u64 = stdout.trim().parse().unwrap_or(0);
        Some((calls, wal))
    };
    println!(
        "fsync/fdatasync calls per operation (strace -c, {PROBE_OPS} operations minus set-up; \
         notification-x8: 8 concurrent callers):"
    );
    for kind in PROBE_KINDS {
        match (count(kind, 0), count(kind, PROBE_OPS)) {
            (Some((base, _)), Some((with, wal))) => {
                let per = (with.saturating_sub(base)) as f64 / PROBE_OPS as f64;
                let wal_text = if wal > 0 {
                    format!("   WAL {:.0} bytes/op", wal as f64 / PROBE_OPS as f64)
                } else {
                    String::new()
                };
                println!("  {kind:<18} {per:>5.2}{wal_text}");
            }
            _ => {
                println!("  (strace not available: fsync counts not measured)");
                return;
            }
        }
    }
}

/// `--fsync-probe KIND N`: N operations of one kind on a fresh SQLite store,
/// then prints the bytes its WAL file grew by (for the rows that have one).
fn fsync_probe(kind: &str, n: usize) {
    use crate::emulator::{AlipayPlatformEmulator, EmulatorConfig, WechatEmulatorConfig, WechatPayEmulator};
    let dir = std::env::temp_dir().join(format!("cardbridge-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("probe.db");
    let wal = dir.join("probe.db-wal");
    let wal_size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let merchant = PrivateKey::generate_rsa2048().expect("key");
    let platform = PrivateKey::generate_rsa2048().expect("key");
    let answer = br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"Success"}}"#;
    let mut grown = 0;
    match kind {
        "bare-commit" => {
            let bare = bare_database(&db);
            let before = wal_size();
            for i in 0..n {
                bare.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")
                    .expect("prepared")
                    .execute(rusqlite::params![format!("bare-{i}"), &answer[..]])
                    .expect("commit");
            }
            grown = wal_size() - before;
        }
        "notification-x8" => {
            // 8 concurrent callers: the group commit shares one flush between them.
            let config = Config::new("BENCH_CLIENT", merchant.clone(), platform.public_key());
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("store"));
            let ap = AlipayPlus::new(config, Some(store)).expect("integration");
            let driver = PlatformDriver::new(platform.clone(), "BENCH_CLIENT", "1");
            let now = chrono::Utc::now().timestamp_millis();
            let batches: Vec<Vec<HttpRequest>> = (0..8)
                .map(|c| {
                    (c..n)
                        .step_by(8)
                        .map(|i| {
                            driver
                                .request(TARGET, &sample_registration(&format!("P8-{i}")), TIME, Tamper::None)
                                .expect("req")
                        })
                        .collect()
                })
                .collect();
            let before = wal_size();
            std::thread::scope(|s| {
                for batch in &batches {
                    let ap = &ap;
                    s.spawn(move || {
                        for req in batch {
                            handle_notification(ap, req, now);
                        }
                    });
                }
            });
            grown = wal_size() - before;
        }
        "notification" => {
            let config = Config::new("BENCH_CLIENT", merchant.clone(), platform.public_key());
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("store"));
            let ap = AlipayPlus::new(config, Some(store)).expect("integration");
            let driver = PlatformDriver::new(platform.clone(), "BENCH_CLIENT", "1");
            let now = chrono::Utc::now().timestamp_millis();
            let before = wal_size();
            for i in 0..n {
                let req = driver
                    .request(TARGET, &sample_registration(&format!("P-{i}")), TIME, Tamper::None)
                    .expect("req");
                handle_notification(&ap, &req, now);
            }
            grown = wal_size() - before;
        }
        "wechat-callback" => {
            let api_v3 = ApiV3Key::new(b"0123456789abcdef0123456789abcdef").expect("key");
            let mut ring = KeyRing::new();
            ring.add_public_key("PUB_KEY_ID_0114232134912410000000000000", platform.public_key())
                .expect("id");
            let signer = RequestSigner::new("1900000001", "5F1C72E2A8931B72", merchant.clone()).expect("signer");
            let config = cardbridge::wechatpay::Config::new(signer, merchant.clone(), api_v3.clone(), ring);
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("store"));
            let wechat = WechatPay::new(config, Some(store)).expect("wechat");
            let now = chrono::Utc::now().timestamp_millis();
            let callbacks: Vec<_> = (0..n)
                .map(|i| wechat_callback(i, &platform, &merchant.public_key(), &api_v3))
                .collect();
            let before = wal_size();
            for cb in &callbacks {
                let CallbackBegin::Handle(mut event) = wechat.callback_begin(cb, now) else {
                    panic!("expected an event")
                };
                wechat.callback_finish(&mut event, true, "", now).expect("finish");
            }
            grown = wal_size() - before;
        }
        "issue-card" => {
            let emulator = AlipayPlatformEmulator::start(EmulatorConfig {
                platform_private_key: platform.clone(),
                merchant_public_key: merchant.public_key(),
                client_id: "BENCH_CLIENT".into(),
                path_prefix: "/api/open".into(),
                key_version: "1".into(),
            })
            .expect("emulator");
            let mut config = Config::new("BENCH_CLIENT", merchant.clone(), platform.public_key());
            config.base_url = Some(emulator.base_url());
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("store"));
            let ap = AlipayPlus::new(config, Some(store)).expect("integration");
            for i in 0..n {
                let body = format!(
                    r#"{{"appId":"2102010113769000","customerBelongsTo":"TNG","requestId":"P-{i}","customerId":"210911290000","externalCustomerId":"M-1","registerDate":"2019-11-27T19:07:41+08:00","cardFields":[{{"fieldCode":"LEVEL","fieldValue":"GOLD"}}]}}"#
                );
                let request: IssueCardRequest = model::parse(body.as_bytes(), Direction::Outbound).expect("valid");
                ap.issue_card(&request).expect("issued");
            }
        }
        "confirm" => {
            let api_v3 = ApiV3Key::new(b"0123456789abcdef0123456789abcdef").expect("key");
            let emulator = WechatPayEmulator::start(WechatEmulatorConfig {
                wechatpay_private_key: platform.clone(),
                public_key_id: "PUB_KEY_ID_0114232134912410000000000000".into(),
                merchant_public_key: merchant.public_key(),
                mchid: "1900000001".into(),
                merchant_serial_no: "5F1C72E2A8931B72".into(),
                api_v3_key: api_v3.clone(),
                platform_certificate: None,
            })
            .expect("emulator");
            let mut ring = KeyRing::new();
            ring.add_public_key("PUB_KEY_ID_0114232134912410000000000000", platform.public_key())
                .expect("id");
            let signer = RequestSigner::new("1900000001", "5F1C72E2A8931B72", merchant.clone()).expect("signer");
            let mut config = cardbridge::wechatpay::Config::new(signer, merchant.clone(), api_v3, ring);
            config.base_url = emulator.base_url();
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("store"));
            let wechat = WechatPay::new(config, Some(store)).expect("wechat");
            for i in 0..n {
                let code = format!("{:012}", 478515832665u64 + i as u64);
                emulator.add_user_card(
                    &code,
                    "pbLatjvWOibDc5-TBnbUk1pD12o0",
                    "obLatjnx9gnqzS4myYGmLZ7LgLBA",
                    "1004",
                );
                let input = format!(
                    r#"{{"user_card_code":"{code}","card_id":"pbLatjvWOibDc5-TBnbUk1pD12o0","brand_id":"1004","openid":"obLatjnx9gnqzS4myYGmLZ7LgLBA","phone_number":"13800000000","user_card_confirm_state":"CREATE_CARD_SUCCESS"}}"#
                );
                wechat.confirm(input.as_bytes()).expect("confirmed");
            }
        }
        other => panic!("unknown probe {other}"),
    }
    println!("{grown}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Notifications per second handled by 8 concurrent callers against one
/// caller, the same number of notifications each time, on `ap`'s store.
///
/// The machine's CPU time (all processes: this one, a database server) is
/// read from `/proc/stat` around both runs. One caller's CPU per notification
/// gives this machine's ceiling for the ratio: with every flush fully
/// amortised, 8 callers cannot beat `cores / cpu-per-op`; and the 8-caller
/// run's CPU use says whether the machine was saturated.
fn throughput_row(label: &str, ap: &Arc<AlipayPlus>, driver: &PlatformDriver, iterations: usize) {
    let now = chrono::Utc::now().timestamp_millis();
    let total = iterations.max(80) / 8 * 8;
    let rate = |callers: usize, tag: &str| {
        let batches: Vec<Vec<HttpRequest>> = (0..callers)
            .map(|c| {
                (0..total / callers)
                    .map(|i| {
                        let id = format!("TP-{}-{tag}-{}", std::process::id(), c * total + i);
                        driver
                            .request(TARGET, &sample_registration(&id), TIME, Tamper::None)
                            .expect("req")
                    })
                    .collect()
            })
            .collect();
        let busy_before = busy_cpu();
        let started = Instant::now();
        std::thread::scope(|s| {
            for batch in &batches {
                let ap = ap.clone();
                s.spawn(move || {
                    for r in batch {
                        handle_notification(&ap, r, now);
                    }
                });
            }
        });
        let wall = started.elapsed().as_secs_f64();
        let busy = busy_before.zip(busy_cpu()).map(|(a, b)| b - a);
        (total as f64 / wall, busy.map(|b| (b / total as f64, b / wall)))
    };
    let (one, one_cpu) = rate(1, "one");
    let (eight, eight_cpu) = rate(8, "eight");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let measured = match (one_cpu, eight_cpu) {
        (Some((per_op, _)), Some((_, busy))) if per_op > 0.0 => format!(
            "   (CPU {:.0} µs/op alone; ceiling here {:.2} = {cores} cores / CPU per op / 1-caller rate; \
             8 callers kept {:.0}% of {cores} cores busy)",
            per_op * 1e6,
            (cores / per_op / one).min(8.0),
            busy / cores * 100.0
        ),
        _ => String::new(),
    };
    println!(
        "{label:<52} {eight:>8.0} /s   1 caller {one:>8.0} /s   ratio {:.2}{measured}",
        eight / one
    );
}

/// The bare primitives of a notification (one verify, one sign), 8 threads
/// against one, the same count each time: how far this machine's cores scale
/// the work that bounds the 8-caller rows below.
fn primitive_scaling(
    merchant: &PrivateKey,
    platform_public: &cardbridge::crypto::keys::PublicKey,
    (content, raw): &(Vec<u8>, Vec<u8>),
    iterations: usize,
) {
    let total = iterations.max(80) / 8 * 8;
    let rate = |threads: usize| {
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..total / threads {
                        assert!(rsa::verify_sha256(platform_public, content, raw));
                        std::hint::black_box(rsa::sign_sha256(merchant, content).expect("sign"));
                    }
                });
            }
        });
        total as f64 / started.elapsed().as_secs_f64()
    };
    let one = rate(1);
    let eight = rate(8);
    println!(
        "{:<52} {eight:>8.0} /s   1 thread {one:>8.0} /s   ratio {:.2}",
        "bare verify + sign, 8 threads",
        eight / one
    );
}

/// Busy CPU seconds of the whole machine so far (`/proc/stat`: user, nice,
/// system, irq, softirq, steal), `None` where there is no `/proc/stat`.
fn busy_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| ticks.get(i)).sum();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| busy as f64 / per_second as f64)
}

/// Section 5: the same notification on the PostgreSQL store, in a schema of its own.
fn postgres_rows(
    iterations: usize,
    config: &Config,
    platform: &PrivateKey,
    merchant: &PrivateKey,
    answer_content: &[u8],
) {
    let base = std::env::var("CARDBRIDGE_TEST_PG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "host=127.0.0.1 port=5432 user=postgres dbname=postgres".into());
    let admin = base
        .parse::<postgres::Config>()
        .and_then(|c| c.connect(postgres::NoTls));
    let Ok(mut admin) = admin else {
        println!("PostgreSQL: skipped (no server at CARDBRIDGE_TEST_PG or 127.0.0.1:5432)");
        return;
    };
    let schema = format!("cb_bench_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
             CREATE TABLE {schema}.t (k text PRIMARY KEY, v bytea)"
        ))
        .expect("bench schema");
    let dsn = format!("{base} options='-c search_path={schema}'");
    let driver = PlatformDriver::new(platform.clone(), "BENCH_CLIENT", "1");
    let notify = |tag: &str, i: usize| {
        driver
            .request(
                TARGET,
                &sample_registration(&format!("PG-{tag}-{i}")),
                TIME,
                Tamper::None,
            )
            .expect("req")
    };
    let answer = br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"Success"}}"#;
    let mut bare = base
        .parse::<postgres::Config>()
        .and_then(|c| c.connect(postgres::NoTls))
        .expect("bare connection");
    let insert = bare
        .prepare(&format!("INSERT INTO {schema}.t (k, v) VALUES ($1, $2)"))
        .expect("prepare");
    let now = chrono::Utc::now().timestamp_millis();
    // WAL flushes the server made (pg_stat_wal, PostgreSQL 14+; server-wide, so
    // the WAL writer's periodic flushes and any other client count too).
    let wal_syncs = |admin: &mut postgres::Client| {
        admin
            .query_one("SELECT wal_sync FROM pg_stat_wal", &[])
            .ok()
            .map(|r| r.get::<_, i64>(0))
    };
    // Backends report their counts at most once a second while busy, after
    // 10 s when idle, and when they exit. So this runs before any other
    // connection of ours has counts to report (the timed loop's commits would
    // land in it), on a store of its own closed before reading, and a reading
    // counts as settled once it held for more than a second.
    let settled = |admin: &mut postgres::Client| {
        let mut last = wal_syncs(admin);
        let mut same = 0;
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(250));
            let now = wal_syncs(admin);
            same = if now == last { same + 1 } else { 0 };
            last = now;
            if same == 5 {
                break;
            }
        }
        last
    };
    // The schema's migrations first, on a store closed at once.
    drop(cardbridge::store::PostgresStore::open(&dsn).expect("postgres store"));
    let flush_requests: Vec<_> = (0..iterations).map(|i| notify("flush", i)).collect();
    let before = settled(&mut admin);
    {
        let store = Arc::new(cardbridge::store::PostgresStore::open(&dsn).expect("postgres store"));
        let flush_ap = AlipayPlus::new(config.clone(), Some(store)).expect("integration");
        for req in &flush_requests {
            handle_notification(&flush_ap, req, now);
        }
    }
    match (before, settled(&mut admin)) {
        (Some(a), Some(b)) => println!(
            "{:<52} {:>8.2}    (pg_stat_wal.wal_sync over {iterations})",
            "PostgreSQL: WAL flushes per notification",
            (b - a) as f64 / iterations as f64
        ),
        _ => println!("PostgreSQL: WAL flushes per notification: pg_stat_wal not readable"),
    }
    let store = Arc::new(cardbridge::store::PostgresStore::open(&dsn).expect("postgres store"));
    let ap = Arc::new(AlipayPlus::new(config.clone(), Some(store)).expect("integration"));
    let requests: Vec<_> = (0..iterations + WARMUP).map(|i| notify("seq", i)).collect();
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for (i, req) in requests.iter().enumerate() {
        let round = [
            time(|| {
                std::hint::black_box(rsa::sign_sha256(merchant, answer_content).expect("sign"));
            }),
            time(|| {
                let key = format!("bare-{i}");
                bare.execute(&insert, &[&key, &&answer[..]]).expect("commit");
            }),
            time(|| handle_notification(&ap, req, now)),
        ];
        if i >= WARMUP {
            for (s, d) in samples.iter_mut().zip(round) {
                s.push(d);
            }
        }
    }
    let [sign, commit, handle] = samples.map(median);
    println!(
        "{:<52} {:>8.1} µs",
        "bare PostgreSQL commit (one row, synchronous_commit)",
        micros(commit)
    );
    println!(
        "{:<52} {:>8.1} µs  bare {:>8.1} µs  ratio {:.3}",
        "PostgreSQL: notification vs bare sign + bare commit",
        micros(handle),
        micros(sign + commit),
        handle.as_secs_f64() / (sign + commit).as_secs_f64()
    );
    throughput_row(
        "PostgreSQL: notifications, 8 concurrent callers",
        &ap,
        &driver,
        iterations,
    );
    let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
}

/// A signed, encrypted USER_CARD.CREATE callback as WeChat Pay sends it.
fn wechat_callback(
    i: usize,
    wechat_key: &PrivateKey,
    merchant_public: &cardbridge::crypto::keys::PublicKey,
    api_v3: &ApiV3Key,
) -> HttpRequest {
    let phone = oaep::encrypt(merchant_public, b"13800000000").expect("oaep");
    let resource = serde_json::json!({"card_id": "pbLatjvWOibDc5-TBnbUk1pD12o0", "openid": "obLatjnx9gnqzS4myYGmLZ7LgLBA",
        "card_color": "#FFFF00", "card_picture_url": "https://example.com/card.png", "brand_id": "1004", "card_type": "NORMAL",
        "phone_number": phone, "valid_date_information": {"type": "PERMANENT"}, "pickup_time": "2026-11-23T10:00:00+08:00",
        "user_card_state": "NOT_EFFECTIVE", "create_time": "2026-11-23T10:00:00+08:00", "modify_time": "2026-11-23T10:00:00+08:00"});
    let ciphertext = api_v3
        .encrypt(b"0123456789ab", b"user_card", resource.to_string().as_bytes())
        .expect("aead");
    let body = serde_json::json!({"id": format!("bench-{i}"), "create_time": "2026-11-23T10:00:00+08:00",
        "resource_type": "encrypt-resource", "event_type": "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE", "summary": "open",
        "resource": {"original_type": "user_card", "algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext,
                     "associated_data": "user_card", "nonce": "0123456789ab"}})
    .to_string()
    .into_bytes();
    let ts = chrono::Utc::now().timestamp().to_string();
    let nonce = format!("NONCE{i:027}");
    let signature =
        rsa::sign_sha256(wechat_key, &cardbridge::wechatpay::verify::message(&ts, &nonce, &body)).expect("sign");
    HttpRequest {
        method: "POST".into(),
        target: "/notify/card".into(),
        headers: vec![
            ("Wechatpay-Timestamp".into(), ts),
            ("Wechatpay-Nonce".into(), nonce),
            ("Wechatpay-Signature".into(), b64_encode(&signature)),
            (
                "Wechatpay-Serial".into(),
                "PUB_KEY_ID_0114232134912410000000000000".into(),
            ),
            ("Wechatpay-Signature-Type".into(), "WECHATPAY2-SHA256-RSA2048".into()),
        ],
        body,
    }
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

/// Durable issueCard round trip against the loopback emulator: the library
/// (validate, serialise, outbox commit, sign, send, verify, classify, final
/// state) against a hand-written client doing only what cannot be avoided
/// (sign, send over the same transport, verify the answer's signature, one
/// durable commit of the answer). The emulator's own work is in both sides.
fn issue_card_round_trip(iterations: usize, dir: &std::path::Path, merchant: &PrivateKey, platform: &PrivateKey) {
    use crate::emulator::{AlipayPlatformEmulator, EmulatorConfig};
    use cardbridge::http::{Transport, TransportConfig};
    let emulator = AlipayPlatformEmulator::start(EmulatorConfig::new(
        platform.clone(),
        merchant.public_key(),
        "BENCH_CLIENT",
    ))
    .expect("emulator");
    let mut config = Config::new("BENCH_CLIENT", merchant.clone(), platform.public_key());
    config.base_url = Some(emulator.base_url());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("issue.db")).expect("store"));
    let ap = AlipayPlus::new(config, Some(store)).expect("integration");
    let transport = Transport::new(&TransportConfig::default()).expect("transport");
    let bare_db = bare_database(&dir.join("issue-bare.db"));
    let target = format!("/api/open{}", crate::emulator::ISSUE_CARD_PATH);
    let url = format!("{}{target}", emulator.base_url());
    let platform_public = platform.public_key();
    let body = |id: &str| {
        format!(
            r#"{{"appId":"2102010113769000","customerBelongsTo":"TNG","requestId":"{id}","customerId":"210911290000","externalCustomerId":"M-000123","registerDate":"2019-11-27T19:07:41+08:00","cardFields":[{{"fieldCode":"LEVEL","fieldValue":"GOLD"}}]}}"#
        )
    };
    let mut ours = Vec::new();
    let mut bare = Vec::new();
    for i in 0..iterations + WARMUP {
        let request: IssueCardRequest =
            model::parse(body(&format!("RT-LIB-{i}")).as_bytes(), Direction::Outbound).expect("valid");
        let t_ours = time(|| {
            std::hint::black_box(ap.issue_card(&request).expect("issued"));
        });
        let raw = body(&format!("RT-BARE-{i}")).into_bytes();
        let t_bare = time(|| {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
            let content = signature::content_to_sign("POST", &target, "BENCH_CLIENT", &now, &raw);
            let sig = b64_encode(&rsa::sign_sha256(merchant, &content).expect("sign"));
            let headers = vec![
                (
                    "Content-Type".to_string(),
                    "application/json; charset=UTF-8".to_string(),
                ),
                ("Client-Id".to_string(), "BENCH_CLIENT".to_string()),
                ("Request-Time".to_string(), now),
                (
                    "Signature".to_string(),
                    format!("algorithm=RSA256,keyVersion=1,signature={sig}"),
                ),
            ];
            let answer = transport.send(&url, "POST", &headers, &raw).expect("sent");
            assert_eq!(answer.status, 200);
            let header = answer.header("Signature").expect("signed answer");
            let parsed = signature::parse_header(header).expect("header");
            let signature = signature::decode_signature_value(&parsed.signature).expect("base64");
            let content = signature::content_to_sign(
                "POST",
                &target,
                "BENCH_CLIENT",
                answer.header("Response-Time").expect("time"),
                &answer.body,
            );
            assert!(rsa::verify_sha256(&platform_public, &content, &signature));
            bare_db
                .prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")
                .expect("prepared")
                .execute(rusqlite::params![format!("rt-{i}"), &answer.body[..]])
                .expect("commit");
        });
        if i >= WARMUP {
            ours.push(t_ours);
            bare.push(t_bare);
        }
    }
    let (ours, bare) = (median(ours), median(bare));
    println!(
        "{:<52} {:>8.1} µs  bare {:>8.1} µs  ratio {:.3}",
        "durable issueCard round trip vs sign+send+verify+commit",
        micros(ours),
        micros(bare),
        ours.as_secs_f64() / bare.as_secs_f64()
    );
}

/// Resident set size of this process, KiB (Linux `/proc/self/status`).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// `--rss-probe N`: N distinct keys through the delivery engine (durable
/// SQLite store, real transport) against a loopback stub that answers every
/// request at once, printing the resident set size as it goes. The engine
/// and the clients keep no per-key structure, so RSS stays flat once
/// SQLite's page cache and the allocator are warm. The store file lives in
/// /dev/shm when there is one, so fsync costs nothing and a million
/// operations take minutes, not hours; the signature work is left out for
/// the same reason (it allocates nothing that outlives a call).
fn rss_probe(n: usize) {
    use cardbridge::clock::Clock;
    use cardbridge::http::{HttpResponse, Transport, TransportConfig};
    use cardbridge::outbox::{AttemptContext, CallOptions, Delivery, Engine, Outgoing, Verdict};
    use cardbridge::retry::RetryPolicy;
    use cardbridge::store::OutboxEntry;
    use std::io::{BufRead, BufReader, Read, Write};

    // The stub: HTTP/1.1 keep-alive, answers `200 {}` to everything.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut out = stream;
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err()
                        || out
                            .write_all(
                                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}",
                            )
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });

    struct Stub(String);
    impl Delivery for Stub {
        fn sign(&self, entry: &OutboxEntry, _: &AttemptContext) -> cardbridge::Result<Outgoing> {
            Ok(Outgoing {
                method: entry.method.clone(),
                url: format!("{}{}", self.0, entry.target),
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: entry.body.clone(),
            })
        }
        fn classify(&self, _: &OutboxEntry, _: &Outgoing, answer: HttpResponse) -> Verdict {
            Verdict::Success {
                result: answer.body,
                reference: None,
                note: "200".into(),
            }
        }
    }

    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("cardbridge-rss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("rss.db")).expect("store"));
    let engine = Engine::new(
        store,
        Transport::new(&TransportConfig::default()).expect("transport"),
        Clock::system(),
        RetryPolicy::default(),
        Duration::from_secs(40),
    );
    let delivery = Stub(format!("http://{addr}"));
    let options = CallOptions::default();
    let started = Instant::now();
    let mut next_report = 1000;
    let mut first = 0;
    println!(
        "rss probe: {n} distinct keys through the delivery engine, SQLite in {}",
        base.display()
    );
    for i in 0..n {
        let body = format!(r#"{{"requestId":"RSS-{i:09}","payload":"{}"}}"#, "x".repeat(64)).into_bytes();
        let entry = OutboxEntry::new(
            format!("bench.rss/RSS-{i:09}"),
            "bench.rss",
            "POST",
            "/rss".into(),
            body,
            format!("fp-{i}"),
            chrono::Utc::now().timestamp_millis(),
        );
        let outcome = engine
            .submit(entry, "requestId", &delivery, &options)
            .expect("delivered");
        assert!(!outcome.failed());
        if i + 1 == next_report || i + 1 == n {
            let rss = rss_kib();
            if first == 0 {
                first = rss;
            }
            println!(
                "  {:>9} keys  RSS {:>7} KiB  ({:+} KiB since 1,000)  {:.0} keys/s",
                i + 1,
                rss,
                rss as i64 - first as i64,
                (i + 1) as f64 / started.elapsed().as_secs_f64()
            );
            next_report = if next_report < 100_000 {
                next_report * 10
            } else {
                next_report + 100_000
            };
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
