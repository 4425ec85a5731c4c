//! Notifications across processes on one SQLite file (issue 7.8):
//!
//! * kill -9: a process handling a burst of signed notifications with
//!   duplicates is killed at random points and restarted. Every answer it gave
//!   (logged after `finish` returned) is the answer every later duplicate
//!   gets; no requestId is lost; `PRAGMA integrity_check` passes.
//! * 8 processes handle the same requestIds concurrently, each deciding at
//!   random: exactly one host decision per requestId, one answer per requestId.
//!
//! Children are this binary re-run with `CB_NOTIFY_CHILD` set (`harness = false`).

mod common;

use cardbridge::alipayplus::{self, AlipayPlus, Begin, signature};
use cardbridge::http::{HttpRequest, find_header};
use cardbridge::store::{SqliteStore, Store};
use common::*;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TARGET: &str = "/v2/pds/memberships/notifyCardRegistration";
const BURST_IDS: usize = 400;
const CONCURRENT_IDS: usize = 300;
const PROCESSES: usize = 8;

fn request_id(i: usize) -> String {
    format!("RQ-{i:05}")
}

fn notification(id: &str) -> HttpRequest {
    let body = json!({"appId": "2102010113769000", "customerBelongsTo": "TNG",
                      "customerId": "1236450862137570000", "requestId": id,
                      "registrationFields": [{"fieldCode": "USER_NAME", "fieldValue": "Li Lei"},
                                             {"fieldCode": "MOBILE_PHONE", "fieldValue": "+6588120000"}]})
    .to_string()
    .into_bytes();
    let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string();
    // Parsed once per process, not once per notification.
    static KEY: std::sync::OnceLock<cardbridge::crypto::keys::PrivateKey> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(platform_key);
    let sig = signature::sign_base64(key, "POST", TARGET, CLIENT_ID, &time, &body).unwrap();
    HttpRequest {
        method: "POST".into(),
        target: TARGET.into(),
        headers: vec![
            ("Content-Type".into(), "application/json; charset=UTF-8".into()),
            ("Client-Id".into(), CLIENT_ID.into()),
            ("Request-Time".into(), time),
            ("Signature".into(), signature::header_value("1", &sig)),
        ],
        body,
    }
}

fn integration(db: &str, claim_lease: Duration) -> AlipayPlus {
    let mut config = alipayplus::Config::new(CLIENT_ID, merchant_key(), platform_key().public_key());
    config.claim_lease = claim_lease;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).unwrap());
    AlipayPlus::new(config, Some(store)).unwrap()
}

fn status_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["result"]["resultStatus"].as_str().unwrap_or_default().to_string()
}

/// A random bit from the OS (each process decides independently).
fn coin() -> bool {
    let mut b = [0u8; 1];
    cardbridge::crypto::random_bytes(&mut b);
    b[0] & 1 == 1
}

/// Child: handles `ids` (each several times, in a shuffled order) until each
/// got a final answer; logs `decided <id>` when its host decided and
/// `answer <id> <hex body>` for every final answer it gave.
fn child(db: &str, log: &str, ids: usize, rounds: usize, lease: Duration) {
    let ap = integration(db, lease);
    let mut out = std::fs::OpenOptions::new().append(true).create(true).open(log).unwrap();
    let mut order: Vec<usize> = (0..ids).flat_map(|i| std::iter::repeat_n(i, rounds)).collect();
    for i in (1..order.len()).rev() {
        let mut b = [0u8; 4];
        cardbridge::crypto::random_bytes(&mut b);
        order.swap(i, u32::from_le_bytes(b) as usize % (i + 1));
    }
    let mut finals: HashSet<usize> = HashSet::new();
    let mut queue = order;
    while let Some(i) = queue.pop() {
        let id = request_id(i);
        let req = notification(&id);
        let now = now_ms();
        let answer = match ap.begin(&req, now) {
            Begin::Respond(r) => r,
            Begin::Decide(mut call) => {
                let decision: &[u8] = if coin() {
                    b"{}"
                } else {
                    br#"{"result":{"resultStatus":"F","resultCode":"PROCESS_FAIL","resultMessage":"no"}}"#
                };
                log_line(&mut out, &format!("decided {id}\n"));
                match ap.finish(&mut call, decision, now) {
                    Ok(r) => r,
                    Err(_) => continue,
                }
            }
        };
        assert!(find_header(&answer.headers, "Signature").is_some());
        let status = status_of(&answer.body);
        if status == "U" {
            // Someone else is deciding: the platform would retry later.
            std::thread::sleep(Duration::from_millis(5));
            queue.insert(0, i);
            continue;
        }
        let hex: String = answer.body.iter().map(|b| format!("{b:02x}")).collect();
        log_line(&mut out, &format!("answer {id} {hex}\n"));
        finals.insert(i);
    }
    assert_eq!(finals.len(), ids);
}

fn spawn(mode: &str, db: &Path, log: &Path, ids: usize, rounds: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env("CB_NOTIFY_CHILD", mode)
        .env("CB_DB", db)
        .env("CB_LOG", log)
        .env("CB_IDS", ids.to_string())
        .env("CB_ROUNDS", rounds.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Appends one whole line in one `write` (the file is opened `O_APPEND`): a
/// kill -9 cannot leave half a line for the next child to continue
/// (`writeln!` writes each formatted piece separately).
fn log_line(out: &mut std::fs::File, line: &str) {
    let written = out.write(line.as_bytes()).unwrap();
    assert_eq!(written, line.len(), "a log line in one write");
}

/// Parses the logs: answers given per requestId (complete lines only: a
/// line cut by kill -9 is an answer never given) and host decisions.
fn read_log(path: &Path) -> (HashMap<String, HashSet<String>>, HashMap<String, usize>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    let mut answers: HashMap<String, HashSet<String>> = HashMap::new();
    let mut decisions: HashMap<String, usize> = HashMap::new();
    for line in complete.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["decided", id] => *decisions.entry((*id).to_string()).or_default() += 1,
            ["answer", id, hex] => {
                answers.entry((*id).to_string()).or_default().insert((*hex).to_string());
            }
            _ => panic!("malformed log line"),
        }
    }
    (answers, decisions)
}

fn hex_of(body: &[u8]) -> String {
    body.iter().map(|b| format!("{b:02x}")).collect()
}

/// After the children: every requestId has one stored answer, it is what
/// every answer given said, and the database is intact.
fn check_final(db: &Path, answers: &HashMap<String, HashSet<String>>, ids: usize) {
    let ap = integration(db.to_str().unwrap(), Duration::from_millis(300));
    for i in 0..ids {
        let id = request_id(i);
        let Begin::Respond(stored) = ap.begin(&notification(&id), now_ms()) else {
            panic!("{id}: lost, it reached a host again");
        };
        let status = status_of(&stored.body);
        assert!(
            status == "S" || status == "F",
            "{id}: final answer stored, got {status}"
        );
        let given = answers.get(&id).cloned().unwrap_or_default();
        assert!(
            given.iter().all(|h| *h == hex_of(&stored.body)),
            "{id}: {} different answers were given",
            given.len()
        );
    }
    let store = SqliteStore::open(db).unwrap();
    assert_eq!(store.pragma("integrity_check").unwrap(), "ok");
}

fn kill9_burst() {
    let db = temp_db("notify-kill9");
    let log = db.with_extension("log");
    let seed = chrono::Utc::now().timestamp_micros() as u64;
    println!("kill9_burst: seed {seed}");
    let mut state = seed;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let started = Instant::now();
    let mut kills = 0;
    for _ in 0..15 {
        let mut c = spawn("burst", &db, &log, BURST_IDS, 3);
        std::thread::sleep(Duration::from_millis(50 + next(300)));
        if c.try_wait().unwrap().is_none() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            kills += 1;
        }
        c.wait().unwrap();
    }
    // Claims of killed children expire; a last run without kills finishes.
    std::thread::sleep(Duration::from_millis(350));
    assert!(spawn("burst", &db, &log, BURST_IDS, 1).wait().unwrap().success());
    let (answers, decisions) = read_log(&log);
    let given: usize = answers.values().map(HashSet::len).sum();
    assert!(
        decisions.len() >= BURST_IDS * 9 / 10,
        "the hosts decided ({})",
        decisions.len()
    );
    println!(
        "kill9_burst: {kills} kills, {} requestIds answered, {:.1} s",
        answers.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= 5, "children were killed mid-burst ({kills})");
    assert_eq!(given, answers.len(), "one distinct answer per requestId");
    check_final(&db, &answers, BURST_IDS);
    for p in [&db, &log] {
        let _ = std::fs::remove_file(p);
    }
}

fn eight_processes() {
    let db = temp_db("notify-8p");
    // Create the schema once before the race.
    drop(integration(db.to_str().unwrap(), Duration::from_millis(300)));
    let logs: Vec<PathBuf> = (0..PROCESSES).map(|n| db.with_extension(format!("{n}.log"))).collect();
    let children: Vec<Child> = logs
        .iter()
        .map(|log| spawn("concurrent", &db, log, CONCURRENT_IDS, 1))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a child failed");
    }
    let mut answers: HashMap<String, HashSet<String>> = HashMap::new();
    let mut decisions: HashMap<String, usize> = HashMap::new();
    for log in &logs {
        let (a, d) = read_log(log);
        for (id, set) in a {
            answers.entry(id).or_default().extend(set);
        }
        for (id, n) in d {
            *decisions.entry(id).or_default() += n;
        }
    }
    let twice: Vec<_> = decisions.iter().filter(|(_, n)| **n != 1).collect();
    println!(
        "eight_processes: {} requestIds, {} host decisions",
        answers.len(),
        decisions.values().sum::<usize>()
    );
    assert_eq!(decisions.len(), CONCURRENT_IDS, "every requestId was decided");
    assert!(twice.is_empty(), "decided more than once: {twice:?}");
    assert!(answers.values().all(|s| s.len() == 1), "one answer per requestId");
    check_final(&db, &answers, CONCURRENT_IDS);
    let _ = std::fs::remove_file(&db);
    for log in &logs {
        let _ = std::fs::remove_file(log);
    }
}

fn main() {
    if let Ok(mode) = std::env::var("CB_NOTIFY_CHILD") {
        let var = |k: &str| std::env::var(k).unwrap();
        // Killed children's claims must expire quickly; concurrent ones never do.
        let lease = Duration::from_millis(if mode == "burst" { 300 } else { 60_000 });
        child(
            &var("CB_DB"),
            &var("CB_LOG"),
            var("CB_IDS").parse().unwrap(),
            var("CB_ROUNDS").parse().unwrap(),
            lease,
        );
        return;
    }
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let tests: [(&str, fn()); 2] = [("kill9_burst", kill9_burst), ("eight_processes", eight_processes)];
    for (name, test) in tests {
        if filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())) {
            println!("test {name} ...");
            test();
            println!("test {name} ... ok");
        }
    }
}
