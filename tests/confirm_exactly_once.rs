//! Exactly one WeChat confirm per card (issue 14), measured against the
//! emulator's per-card count of confirms that reached the card:
//!
//! * no kills, 10% of answers dropped after the platform applied the request:
//!   every card EFFECTIVE, zero extra confirms;
//! * kill -9 of the confirming process at random points of a burst, under
//!   dropped answers, answers delayed past the client timeout and 500s:
//!   every card EFFECTIVE, exactly one applied confirm per card, nothing pending.
//!
//! The killed process is this test binary re-run with `CB_CONFIRM_CHILD` set
//! (`harness = false`), so the emulator lives in the parent and survives.

mod common;

use crate::common::emulator::{RandomFaults, WechatPayEmulator};
use cardbridge::store::{MemoryStore, SqliteStore, Store};
use cardbridge::wechatpay::{Config, WechatPay};
use common::wechat::*;
use common::*;
use serde_json::json;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CARDS: usize = 1000;
const KILLS: usize = 20;

fn start_emulator() -> WechatPayEmulator {
    WechatPayEmulator::start(emulator_config()).unwrap()
}

fn config(base_url: &str) -> Config {
    let mut c = wechat_config_for(base_url);
    c.transport.connect_timeout = Duration::from_millis(500);
    c.transport.read_timeout = Duration::from_millis(250);
    c.retry.base_delay = Duration::from_millis(2);
    c.retry.max_attempts = 30;
    c.retry.deadline = Duration::from_secs(30);
    c
}

fn code(i: usize) -> String {
    format!("C{i:05}")
}

fn confirm_input(code: &str) -> Vec<u8> {
    json!({"user_card_code": code, "card_id": CARD_ID, "brand_id": BRAND_ID, "openid": OPENID,
           "phone_number": "13800000000",
           "user_card_confirm_state": "CREATE_CARD_SUCCESS"})
    .to_string()
    .into_bytes()
}

/// A small seeded generator for kill points (SplitMix64).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

fn seed() -> u64 {
    std::env::var("CB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_micros() as u64)
}

/// Per card: confirms that reached it. Panics naming every card that is not
/// EFFECTIVE with exactly one; returns how many faults the run went through.
fn assert_exactly_once(emu: &WechatPayEmulator, what: &str) {
    let mut extra = 0;
    let mut wrong = Vec::new();
    for i in 0..CARDS {
        let c = code(i);
        let applied = emu.confirms_applied_for(&c);
        let state = emu.user_card(&c).unwrap()["user_card_state"].clone();
        extra += applied.saturating_sub(1);
        if applied != 1 || state != "EFFECTIVE" {
            wrong.push(format!("{c}: {applied} applied, state {state}"));
        }
    }
    println!("{what}: {CARDS} cards, {extra} extra confirms");
    assert!(
        wrong.is_empty(),
        "{what}: {} cards wrong: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(20)]
    );
}

/// Faults that may hide an applied confirm: the emulator applies the request
/// and then loses (drops) the answer.
fn no_kill_drops() {
    let emu = start_emulator();
    for i in 0..CARDS {
        emu.add_user_card(&code(i), CARD_ID, OPENID, BRAND_ID);
    }
    let s = seed();
    println!("no_kill_drops: seed {s}");
    emu.set_random_faults(Some(RandomFaults {
        seed: s,
        drop_after_processing: 0.10,
        delay_then_answer: 0.0,
        delay: Duration::ZERO,
        status_500: 0.0,
        path_contains: "",
    }));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let wechat = Arc::new(WechatPay::new(config(&emu.base_url()), Some(store.clone())).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let wechat = wechat.clone();
            std::thread::spawn(move || {
                for i in (t..CARDS).step_by(4) {
                    let answer = wechat.confirm(&confirm_input(&code(i))).unwrap();
                    assert_eq!(answer.json["user_card_state"], "EFFECTIVE", "{}", code(i));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let reads = emu.hits("/v3/brand/partner/card-member/user-cards/") - emu.hits_confirm_total();
    println!("no_kill_drops: {reads} read-backs");
    assert!(
        reads >= CARDS / 20,
        "the drops happened and were followed by read-backs ({reads})"
    );
    assert_exactly_once(&emu, "no_kill_drops");
    assert_eq!(store.outbox_count_pending(None).unwrap(), 0, "nothing pending");
}

/// The child: resumes what is pending, then confirms every card in order.
/// Exits 0 only when every card's confirm answered EFFECTIVE.
fn child(base_url: &str, db: &str) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).unwrap());
    let wechat = WechatPay::new(config(base_url), Some(store)).unwrap();
    let _ = wechat.resume_pending();
    let mut failed = 0;
    for i in 0..CARDS {
        match wechat.confirm(&confirm_input(&code(i))) {
            Ok(a) if a.json["user_card_state"] == "EFFECTIVE" => {}
            _ => failed += 1,
        }
    }
    std::process::exit(if failed == 0 { 0 } else { 3 });
}

fn spawn_child(base_url: &str, db: &std::path::Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .env("CB_CONFIRM_CHILD", "1")
        .env("CB_BASE_URL", base_url)
        .env("CB_DB", db)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill9_burst() {
    let emu = start_emulator();
    for i in 0..CARDS {
        emu.add_user_card(&code(i), CARD_ID, OPENID, BRAND_ID);
    }
    let s = seed();
    println!("kill9_burst: seed {s}");
    let mut rng = Rng(s);
    emu.set_random_faults(Some(RandomFaults {
        seed: s,
        drop_after_processing: 0.05,
        delay_then_answer: 0.02,
        delay: Duration::from_millis(400),
        status_500: 0.05,
        path_contains: "",
    }));
    let db = temp_db("confirm-kill9");
    let started = Instant::now();
    let mut kills = 0;
    for _ in 0..KILLS {
        let mut child = spawn_child(&emu.base_url(), &db);
        std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        if child.try_wait().unwrap().is_none() {
            // SIGKILL: no destructor, no flush, no goodbye.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            kills += 1;
        }
        child.wait().unwrap();
    }
    let mut finished = false;
    for _ in 0..3 {
        if spawn_child(&emu.base_url(), &db).wait().unwrap().success() {
            finished = true;
            break;
        }
    }
    println!(
        "kill9_burst: {kills} kills, {} confirm requests, {:.1} s",
        emu.hits_confirm_total(),
        started.elapsed().as_secs_f64()
    );
    assert!(finished, "a run without kills confirms every card");
    assert!(kills >= KILLS / 2, "the children were killed mid-burst ({kills})");
    assert_exactly_once(&emu, "kill9_burst");
    let store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.outbox_count_pending(None).unwrap(), 0, "nothing pending");
    assert_eq!(store.pragma("integrity_check").unwrap(), "ok");
    drop(store);
    let _ = std::fs::remove_file(&db);
}

fn main() {
    if std::env::var_os("CB_CONFIRM_CHILD").is_some() {
        let base = std::env::var("CB_BASE_URL").unwrap();
        let db = std::env::var("CB_DB").unwrap();
        child(&base, &db);
        return;
    }
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let tests: [(&str, fn()); 2] = [("no_kill_drops", no_kill_drops), ("kill9_burst", kill9_burst)];
    for (name, test) in tests {
        if filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())) {
            println!("test {name} ...");
            test();
            println!("test {name} ... ok");
        }
    }
}
