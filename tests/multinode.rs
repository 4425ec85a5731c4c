//! Several nodes, for real: separate OS processes (this test binary re-run
//! with a role in its environment), each with its own `AlipayPlus` on one
//! shared store — a PostgreSQL database, and one SQLite file.
//!
//! 3,000 signed `notifyCardRegistration` deliveries (2,700 requestIds, 10%
//! delivered twice, the duplicate to another node at about the same time),
//! four threads per node. A fourth node takes claims on some of the same
//! requestIds mid-burst and is killed with SIGKILL before it answers: those
//! claims expire and the requestIds are decided once elsewhere. Every
//! delivery answered `U` is delivered again, as the platform does.
//!
//! Checked: each requestId is decided by exactly one host among the
//! surviving nodes; every final answer for a requestId is byte-identical; the
//! requestIds the killed node held reach their new host as `redelivered`.
//!
//! Outbound: a node sends 300 `issueCard`s whose answers never come back
//! (the platform processes them; a loopback relay drops the answers) and is
//! killed with SIGKILL holding their leases; three other nodes resume them
//! concurrently once the leases run out: every entry ends succeeded with the
//! card number the platform issued once for its requestId, and every node that
//! reports the entry reports that same card.

mod common;
mod pg;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::emulator::{PlatformDriver, Tamper, sample_registration};
use cardbridge::alipayplus::model::{self, Direction};
use cardbridge::alipayplus::{AlipayPlus, Begin, client::OUTBOX_KIND};
use cardbridge::crypto::sha256_hex;
use cardbridge::store::{OutboxState, PostgresStore, SqliteStore, Store};
use common::*;

const ROLE: &str = "CARDBRIDGE_MULTINODE_ROLE";
const STORE: &str = "CARDBRIDGE_MULTINODE_STORE";
const PLAN: &str = "CARDBRIDGE_MULTINODE_PLAN";
const OUT: &str = "CARDBRIDGE_MULTINODE_OUT";
const NODE: &str = "CARDBRIDGE_MULTINODE_NODE";
const BASE_URL: &str = "CARDBRIDGE_MULTINODE_BASE_URL";

/// issueCards left pending by the killed node.
const ISSUES: usize = 300;

const UNIQUE: usize = 2_700;
const DUPLICATE_EVERY: usize = 9; // 300 of 2,700 delivered twice: 3,000 deliveries
const NODES: usize = 3;
const THREADS: usize = 4;
/// Claims held by the node that gets killed.
const CRASH_CLAIMS: usize = 30;
const CLAIM_LEASE: Duration = Duration::from_secs(5);
/// A node gives up on a requestId still answered `U` after this long (the test then fails).
const GIVE_UP: Duration = Duration::from_secs(60);

fn request_id(i: usize) -> String {
    format!("MN-{i:05}")
}

fn open_store(spec: &str) -> Arc<dyn Store> {
    if let Some(dsn) = spec.strip_prefix("pg:") {
        Arc::new(PostgresStore::open(dsn).unwrap())
    } else if let Some(path) = spec.strip_prefix("sqlite:") {
        Arc::new(SqliteStore::open(path).unwrap())
    } else {
        panic!("unknown store spec")
    }
}

fn notify(driver: &PlatformDriver, rid: &str) -> cardbridge::http::HttpRequest {
    driver
        .request(
            "/v2/pds/memberships/notifyCardRegistration",
            &sample_registration(rid),
            "2026-11-23T10:00:00.000+00:00",
            Tamper::None,
        )
        .unwrap()
}

fn status_of(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["result"]["resultStatus"].as_str().unwrap_or_default().to_string()
}

// ------------------------------------------------------------------ the child

/// The entry point of a node process; a no-op in a normal test run.
#[test]
#[ignore = "runs only as a child process of the multinode tests"]
fn multinode_child() {
    let Ok(role) = std::env::var(ROLE) else { return };
    let store = open_store(&std::env::var(STORE).unwrap());
    let node = std::env::var(NODE).unwrap();
    let plan: Vec<String> = std::fs::read_to_string(std::env::var(PLAN).unwrap())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let out = PathBuf::from(std::env::var(OUT).unwrap());
    if role == "issue" || role == "resume" {
        return outbound_child(&role, store, &out);
    }
    let mut cfg = config(None);
    cfg.claim_lease = CLAIM_LEASE;
    let ap = Arc::new(AlipayPlus::new(cfg, Some(store)).unwrap());
    let driver = Arc::new(PlatformDriver::new(platform_key(), CLIENT_ID, "1"));

    if role == "crash" {
        // Take the claims (the host is asked) and never answer; the parent kills us.
        let mut held = Vec::new();
        let mut lines = String::new();
        for rid in &plan {
            if let Begin::Decide(call) = ap.begin(&notify(&driver, rid), now_ms()) {
                lines.push_str(&format!("{rid}\n"));
                held.push(call);
            }
        }
        std::fs::write(out.with_extension("tmp"), lines).unwrap();
        std::fs::rename(out.with_extension("tmp"), &out).unwrap();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }

    let chunks: Vec<Vec<String>> = (0..THREADS)
        .map(|t| plan.iter().skip(t).step_by(THREADS).cloned().collect())
        .collect();
    let lines: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (ap, driver, node) = (ap.clone(), driver.clone(), node.clone());
                s.spawn(move || {
                    let mut lines = Vec::new();
                    for rid in chunk {
                        let started = Instant::now();
                        let (mut asked, mut redelivered, mut retries) = (false, false, 0u32);
                        let body = loop {
                            let request = notify(&driver, &rid);
                            let response = match ap.begin(&request, now_ms()) {
                                Begin::Respond(r) => r,
                                Begin::Decide(mut call) => {
                                    asked = true;
                                    redelivered |= call.redelivered();
                                    let decision = format!(r#"{{"extendInfo":"{{\"memberId\":\"{node}-{rid}\"}}"}}"#);
                                    match ap.finish(&mut call, decision.as_bytes(), now_ms()) {
                                        Ok(r) => r,
                                        Err(_) => ap.finish_unknown(&mut call, now_ms()).unwrap(),
                                    }
                                }
                            };
                            assert!(
                                PlatformDriver::verify_response(&merchant_key().public_key(), &request, &response),
                                "every answer is signed for its request"
                            );
                            match status_of(&response.body).as_str() {
                                "S" => break response.body,
                                "U" if started.elapsed() < GIVE_UP => {
                                    // The platform asks again later.
                                    retries += 1;
                                    std::thread::sleep(Duration::from_millis(100));
                                }
                                other => panic!("{rid}: final answer {other} after {retries} retries"),
                            }
                        };
                        lines.push(format!(
                            "{rid}\t{}\t{}\t{}\t{}",
                            u8::from(asked),
                            u8::from(redelivered),
                            retries,
                            sha256_hex(&body)
                        ));
                    }
                    lines
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    std::fs::write(out.with_extension("tmp"), lines.join("\n") + "\n").unwrap();
    std::fs::rename(out.with_extension("tmp"), &out).unwrap();
}

fn issue_request(i: usize) -> model::IssueCardRequest {
    let json = format!(
        r#"{{"appId":"2102010113769000","customerBelongsTo":"TNG","requestId":"MN-ISSUE-{i:04}","customerId":"210911290000",
        "externalCustomerId":"M-{i:06}","registerDate":"2019-11-27T19:07:41+08:00","cardFields":[]}}"#
    );
    model::parse(json.as_bytes(), Direction::Outbound).unwrap()
}

/// `issue`: sends the issueCards and keeps retrying (their answers never come
/// back) until killed. `resume`: resumes pending entries until none is left,
/// and reports the ones this node completed.
fn outbound_child(role: &str, store: Arc<dyn Store>, out: &Path) {
    let mut cfg = config(Some(std::env::var(BASE_URL).unwrap()));
    if role == "issue" {
        cfg.transport.read_timeout = Duration::from_millis(300);
        cfg.retry.max_attempts = 10_000;
        cfg.retry.deadline = Duration::from_secs(600);
        let ap = Arc::new(AlipayPlus::new(cfg, Some(store)).unwrap());
        // One caller per request, all in flight at once, none ever answered.
        std::thread::scope(|s| {
            for i in 0..ISSUES {
                let ap = ap.clone();
                s.spawn(move || {
                    let result = ap.issue_card(&issue_request(i));
                    panic!(
                        "MN-ISSUE-{i:04} returned before the node was killed: {:?}",
                        result.map(|c| c.card_no)
                    );
                });
            }
        });
        return;
    }
    let ap = AlipayPlus::new(cfg, Some(store.clone())).unwrap();
    let started = Instant::now();
    let mut done = Vec::new();
    while store.outbox_count_pending(Some(OUTBOX_KIND)).unwrap() > 0 {
        assert!(started.elapsed() < GIVE_UP, "entries still pending after {GIVE_UP:?}");
        for (id, result) in ap.resume_pending().unwrap() {
            // Another node delivering the same entry makes this one wait, then see it final.
            if let Ok(card) = result {
                done.push(format!("{id}\t{}", card.card_no));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::write(out.with_extension("tmp"), done.join("\n") + "\n").unwrap();
    std::fs::rename(out.with_extension("tmp"), out).unwrap();
}

// ----------------------------------------------------------------- the parent

/// A child process, killed (SIGKILL) when dropped, whatever happened to the test.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(role: &str, node: &str, store: &str, plan: &Path, out: &Path) -> Kid {
    spawn_with(role, node, store, plan, out, "")
}

fn spawn_with(role: &str, node: &str, store: &str, plan: &Path, out: &Path, base_url: &str) -> Kid {
    Kid(Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "multinode_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(NODE, node)
        .env(STORE, store)
        .env(PLAN, plan)
        .env(OUT, out)
        .env(BASE_URL, base_url)
        // The child's libtest lines would mix into ours; its panics go to stderr (--nocapture).
        .stdout(Stdio::null())
        .spawn()
        .unwrap())
}

fn wait_for(path: &Path, child: &mut Kid, limit: Duration) {
    let started = Instant::now();
    while !path.exists() {
        assert!(child.0.try_wait().unwrap().is_none(), "{} exited early", path.display());
        assert!(started.elapsed() < limit, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_nodes(tag: &str, store: &str) {
    let dir = Dir(std::env::temp_dir().join(format!("cardbridge-multinode-{tag}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    // Migrate once up front, as a deployment's first start would.
    drop(open_store(store));

    // The plan: each requestId to one node; every ninth also to the next node, at the same
    // position of its list, so both deliveries race.
    let mut plans: Vec<Vec<String>> = vec![Vec::new(); NODES];
    for i in 0..UNIQUE {
        plans[i % NODES].push(request_id(i));
        if i % DUPLICATE_EVERY == 0 {
            plans[(i + 1) % NODES].push(request_id(i));
        }
    }
    let deliveries: usize = plans.iter().map(Vec::len).sum();
    assert_eq!(deliveries, 3_000);
    // The node that dies holds requestIds from the middle of the burst.
    let crash_plan: Vec<String> = (0..CRASH_CLAIMS).map(|k| request_id(UNIQUE / 3 + k * 37)).collect();

    let crash_plan_path = dir.0.join("crash.plan");
    std::fs::write(&crash_plan_path, crash_plan.join("\n")).unwrap();
    let crash_out = dir.0.join("crash.out");
    let mut crasher = spawn("crash", "crash", store, &crash_plan_path, &crash_out);
    let mut nodes: Vec<(Kid, PathBuf)> = plans
        .iter()
        .enumerate()
        .map(|(n, plan)| {
            let plan_path = dir.0.join(format!("node{n}.plan"));
            std::fs::write(&plan_path, plan.join("\n")).unwrap();
            let out = dir.0.join(format!("node{n}.out"));
            (spawn("node", &format!("node{n}"), store, &plan_path, &out), out)
        })
        .collect();
    // kill -9 once it holds its claims, while the others are mid-burst.
    wait_for(&crash_out, &mut crasher, Duration::from_secs(120));
    crasher.0.kill().unwrap(); // SIGKILL
    crasher.0.wait().unwrap();
    let held: HashSet<String> = std::fs::read_to_string(&crash_out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();

    let mut answers: BTreeMap<String, Vec<(usize, bool, bool, String)>> = BTreeMap::new();
    for (n, (child, out)) in nodes.iter_mut().enumerate() {
        let status = child.0.wait().unwrap();
        assert!(status.success(), "node{n} failed: {status}");
        for line in std::fs::read_to_string(&*out).unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            answers
                .entry(f[0].to_string())
                .or_default()
                .push((n, f[1] == "1", f[2] == "1", f[4].to_string()));
        }
    }

    assert_eq!(answers.len(), UNIQUE, "every requestId answered");
    assert_eq!(answers.values().map(Vec::len).sum::<usize>(), deliveries);
    let mut decided_by: HashMap<usize, usize> = HashMap::new();
    for (rid, got) in &answers {
        let asked: Vec<_> = got.iter().filter(|a| a.1).collect();
        assert_eq!(
            asked.len(),
            1,
            "{rid}: exactly one host decision among the nodes: {got:?}"
        );
        *decided_by.entry(asked[0].0).or_default() += 1;
        assert!(
            got.iter().all(|a| a.3 == got[0].3),
            "{rid}: byte-identical answers: {got:?}"
        );
        if held.contains(rid) {
            assert!(
                asked[0].2,
                "{rid}: held by the killed node, so its new host sees it redelivered"
            );
        } else {
            assert!(!asked[0].2, "{rid}: never claimed before, not redelivered");
        }
    }
    assert!(
        held.len() > CRASH_CLAIMS / 2,
        "the killed node held claims mid-burst ({} of {CRASH_CLAIMS})",
        held.len()
    );
    assert_eq!(decided_by.len(), NODES, "every node decided some: {decided_by:?}");
    eprintln!(
        "multinode {tag}: {deliveries} deliveries, {UNIQUE} requestIds, decisions per node {decided_by:?}, \
         {} claims expired from the killed node",
        held.len()
    );
}

#[test]
fn three_processes_on_one_postgres_database_decide_each_registration_once() {
    let Some(schema) = pg::Schema::create("multinode") else {
        return;
    };
    run_nodes("pg", &format!("pg:{}", schema.dsn()));
}

#[test]
fn three_processes_on_one_sqlite_file_decide_each_registration_once() {
    let dir = std::env::temp_dir().join(format!("cardbridge-multinode-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Dir(dir.clone());
    run_nodes("sqlite", &format!("sqlite:{}", dir.join("shared.db").display()));
}

/// A loopback relay to `upstream` that delivers requests and drops every
/// answer: the platform processes each request, the sender never learns it.
fn answer_dropping_relay(upstream: u16) -> u16 {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut c, mut s) = (client, server);
            let mut s_read = s.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = s_read.read(&mut buf) {
                    if n == 0 {
                        break; // answers are read and dropped
                    }
                }
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

fn run_outbound(tag: &str, store_spec: &str) {
    let dir = Dir(std::env::temp_dir().join(format!("cardbridge-multinode-out-{tag}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let store = open_store(store_spec);
    let emulator = start_emulator();
    let port: u16 = emulator.base_url().rsplit(':').next().unwrap().parse().unwrap();
    let relayed = format!("http://127.0.0.1:{}", answer_dropping_relay(port));
    let none = dir.0.join("none.plan");
    std::fs::write(&none, "").unwrap();

    // The sender: every request reaches the platform, no answer comes back; killed mid-flight.
    let issue_out = dir.0.join("issue.out");
    let mut sender = spawn_with("issue", "sender", store_spec, &none, &issue_out, &relayed);
    let started = Instant::now();
    while emulator.cards_issued() < ISSUES || store.outbox_count_pending(Some(OUTBOX_KIND)).unwrap() < ISSUES as u64 {
        assert!(sender.0.try_wait().unwrap().is_none(), "the sender exited early");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the sender did not get its requests out"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sender.0.kill().unwrap(); // SIGKILL, holding the leases
    sender.0.wait().unwrap();
    let leased = store
        .outbox_list(&cardbridge::store::OutboxQuery {
            state: Some(OutboxState::Pending),
            limit: 1000,
            ..Default::default()
        })
        .unwrap()
        .iter()
        .filter(|e| e.lease_until_ms > now_ms())
        .count();
    assert!(leased > 0, "the killed node still held leases");

    // Three other nodes resume, concurrently, once the leases have run out.
    let mut resumers: Vec<(Kid, PathBuf)> = (0..NODES)
        .map(|n| {
            let out = dir.0.join(format!("resume{n}.out"));
            (
                spawn_with(
                    "resume",
                    &format!("resume{n}"),
                    store_spec,
                    &none,
                    &out,
                    &emulator.base_url(),
                ),
                out,
            )
        })
        .collect();
    let mut completed: HashMap<String, Vec<(usize, String)>> = HashMap::new();
    for (n, (child, out)) in resumers.iter_mut().enumerate() {
        let status = child.0.wait().unwrap();
        assert!(status.success(), "resume{n} failed: {status}");
        for line in std::fs::read_to_string(&*out)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
        {
            let (id, card) = line.split_once('\t').unwrap();
            completed.entry(id.to_string()).or_default().push((n, card.to_string()));
        }
    }
    assert_eq!(
        emulator.cards_issued(),
        ISSUES,
        "each requestId issued exactly once on the platform"
    );
    for i in 0..ISSUES {
        let rid = format!("MN-ISSUE-{i:04}");
        let id = cardbridge::store::key(OUTBOX_KIND, &["2102010113769000", &rid]);
        let entry = store.outbox_get(&id).unwrap().unwrap();
        assert_eq!(entry.state, OutboxState::Succeeded, "{rid}");
        let card = emulator.card_no_for(&rid).unwrap();
        let result: serde_json::Value = serde_json::from_slice(entry.result.as_deref().unwrap()).unwrap();
        assert_eq!(
            result["cardNo"].as_str(),
            Some(card.as_str()),
            "{rid}: the platform's card"
        );
        let by = completed.get(&id).map(Vec::as_slice).unwrap_or_default();
        assert!(
            by.iter().all(|(_, c)| *c == card),
            "{rid}: every node that saw it completed reports the same card: {by:?}"
        );
    }
    let reported: usize = completed.values().map(Vec::len).sum();
    eprintln!(
        "multinode {tag}: {ISSUES} issueCards left leased by a killed node ({leased} leases live at the kill), \
         resumed by {NODES} nodes ({reported} completions reported, same card each time), {} cards on the platform",
        emulator.cards_issued()
    );
}

#[test]
fn issue_cards_left_by_a_killed_node_are_resumed_once_on_postgres() {
    let Some(schema) = pg::Schema::create("multiout") else {
        return;
    };
    run_outbound("pg", &format!("pg:{}", schema.dsn()));
}

#[test]
fn issue_cards_left_by_a_killed_node_are_resumed_once_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("cardbridge-multiout-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Dir(dir.clone());
    run_outbound("sqlite", &format!("sqlite:{}", dir.join("shared.db").display()));
}
