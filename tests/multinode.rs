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

mod common;
mod pg;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cardbridge::alipayplus::{AlipayPlus, Begin};
use cardbridge::crypto::sha256_hex;
use cardbridge::emulator::{PlatformDriver, Tamper, sample_registration};
use cardbridge::store::{PostgresStore, SqliteStore, Store};
use common::*;

const ROLE: &str = "CARDBRIDGE_MULTINODE_ROLE";
const STORE: &str = "CARDBRIDGE_MULTINODE_STORE";
const PLAN: &str = "CARDBRIDGE_MULTINODE_PLAN";
const OUT: &str = "CARDBRIDGE_MULTINODE_OUT";
const NODE: &str = "CARDBRIDGE_MULTINODE_NODE";

const UNIQUE: usize = 2_700;
const DUPLICATE_EVERY: usize = 9; // 300 of 2,700 delivered twice: 3,000 deliveries
const NODES: usize = 3;
const THREADS: usize = 4;
/// Claims held by the node that gets killed.
const CRASH_CLAIMS: usize = 30;
const CLAIM_LEASE: Duration = Duration::from_secs(3);
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
                                    std::thread::sleep(Duration::from_millis(50));
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

// ----------------------------------------------------------------- the parent

fn spawn(role: &str, node: &str, store: &str, plan: &Path, out: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
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
        // The child's libtest lines would mix into ours; its panics go to stderr (--nocapture).
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for(path: &Path, child: &mut Child, limit: Duration) {
    let started = Instant::now();
    while !path.exists() {
        assert!(child.try_wait().unwrap().is_none(), "{} exited early", path.display());
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
    let mut nodes: Vec<(Child, PathBuf)> = plans
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
    crasher.kill().unwrap(); // SIGKILL
    crasher.wait().unwrap();
    let held: HashSet<String> = std::fs::read_to_string(&crash_out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();

    let mut answers: BTreeMap<String, Vec<(usize, bool, bool, String)>> = BTreeMap::new();
    for (n, (child, out)) in nodes.iter_mut().enumerate() {
        let status = child.wait().unwrap();
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
