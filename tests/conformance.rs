//! The cross-language conformance suite, Rust runner. The same JSON cases in
//! tests/fixtures/conformance/ run through the C (tests/c/conformance.c),
//! Python and C# runners; all four must agree exactly.

use cardbridge::alipayplus::model::{self, Direction};
use cardbridge::alipayplus::{AlipayPlus, Begin, Config};
use cardbridge::crypto::keys::{PrivateKey, PublicKey};
use cardbridge::http::HttpRequest;
use cardbridge::store::MemoryStore;
use serde_json::Value;
use std::sync::Arc;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string, got {v}"))
}

#[test]
fn alipayplus_validate_cases() {
    let cases: Vec<Value> = serde_json::from_slice(&fixture("conformance/alipayplus_validate.json")).unwrap();
    assert!(cases.len() >= 15);
    for case in &cases {
        let name = text(&case["name"]);
        let dir = match text(&case["direction"]) {
            "inbound" => Direction::Inbound,
            _ => Direction::Outbound,
        };
        let got = model::normalize(text(&case["message"]), text(&case["input"]).as_bytes(), dir);
        let expect = &case["expect"];
        match got {
            Ok(bytes) => {
                assert_eq!(expect["ok"], true, "{name}: expected an error, got success");
                assert_eq!(std::str::from_utf8(&bytes).unwrap(), text(&expect["output"]), "{name}");
            }
            Err(e) => {
                assert_eq!(expect["ok"], false, "{name}: unexpected error {e}");
                assert_eq!(
                    format!("CARDBRIDGE_RESULT_{}", e.kind().name()),
                    text(&expect["result"]),
                    "{name}"
                );
                assert_eq!(e.field(), expect["field"].as_str(), "{name}");
                assert_eq!(e.limit(), expect["limit"].as_str(), "{name}");
                assert_eq!(e.message(), text(&expect["message"]), "{name}");
            }
        }
    }
}

#[test]
fn alipayplus_inbound_cases() {
    let doc: Value = serde_json::from_slice(&fixture("conformance/alipayplus_inbound.json")).unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let name = text(&case["name"]);
        let cfg = &case["config"];
        let key = |field: &str| String::from_utf8(fixture(&format!("keys/{}", text(&cfg[field])))).unwrap();
        let mut config = Config::new(
            text(&cfg["client_id"]),
            PrivateKey::from_pem(&key("merchant_private_key_file")).unwrap(),
            PublicKey::from_pem(&key("platform_public_key_file")).unwrap(),
        );
        config.time_offset_minutes = cfg["time_offset_minutes"].as_i64().unwrap_or(0) as i32;
        let ap = AlipayPlus::new(config, Some(Arc::new(MemoryStore::new()))).unwrap();
        let r = &case["request"];
        let request = HttpRequest {
            method: text(&r["method"]).into(),
            target: text(&r["target"]).into(),
            headers: r["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (text(&h[0]).to_string(), text(&h[1]).to_string()))
                .collect(),
            body: text(&r["body"]).as_bytes().to_vec(),
        };
        let now = case["now_ms"].as_i64().unwrap();
        let response = match ap.begin(&request, now) {
            Begin::Respond(resp) => {
                assert!(case["decision"].is_null(), "{name}: the host should have been asked");
                resp
            }
            Begin::Decide(mut call) => {
                let decision = case["decision"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: host asked unexpectedly"));
                ap.finish(&mut call, decision.as_bytes(), now).unwrap()
            }
        };
        let e = &case["expect"];
        assert_eq!(u64::from(response.status), e["status"].as_u64().unwrap(), "{name}");
        let headers: Vec<(String, String)> = e["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (text(&h[0]).to_string(), text(&h[1]).to_string()))
            .collect();
        assert_eq!(response.headers, headers, "{name}");
        assert_eq!(std::str::from_utf8(&response.body).unwrap(), text(&e["body"]), "{name}");
    }
}

#[test]
fn wechatpay_validate_cases() {
    use cardbridge::wechatpay::config::wire_options_from_json;
    use cardbridge::wechatpay::model::WireOptions;
    use cardbridge::wechatpay::operations::{OPERATIONS, prepare_json};
    let cases: Vec<Value> = serde_json::from_slice(&fixture("conformance/wechatpay_validate.json")).unwrap();
    assert!(cases.len() >= 90);
    // Every operation has a valid case.
    for op in OPERATIONS
        .iter()
        .filter(|o| !["confirm", "getUserCard", "updateUserCard", "syncUserPoints"].contains(o))
    {
        assert!(
            cases.iter().any(|c| c["operation"] == *op && c["expect"]["ok"] == true),
            "no valid case for {op}"
        );
    }
    for case in &cases {
        let name = text(&case["name"]);
        let wire = match case.get("options") {
            Some(o) => wire_options_from_json(o.to_string().as_bytes()),
            None => Ok(WireOptions::default()),
        };
        let got = wire.and_then(|w| prepare_json(text(&case["operation"]), text(&case["input"]).as_bytes(), w));
        let expect = &case["expect"];
        match got {
            Ok(bytes) => {
                assert_eq!(expect["ok"], true, "{name}: expected an error, got success");
                assert_eq!(std::str::from_utf8(&bytes).unwrap(), text(&expect["output"]), "{name}");
            }
            Err(e) => {
                assert_eq!(expect["ok"], false, "{name}: unexpected error {e}");
                assert_eq!(
                    format!("CARDBRIDGE_RESULT_{}", e.kind().name()),
                    text(&expect["result"]),
                    "{name}"
                );
                assert_eq!(e.field(), expect["field"].as_str(), "{name}");
                assert_eq!(e.limit(), expect["limit"].as_str(), "{name}");
                assert_eq!(e.message(), text(&expect["message"]), "{name}");
            }
        }
    }
}
