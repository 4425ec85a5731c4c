//! The README's capability matrix cannot lie (issue 13.6): every cell names
//! something that exists — the Rust method, the C export, the Python and C#
//! methods, the sample payload, the emulator route — and every function the
//! header exports is named by a row or by the infrastructure list under it.

mod common;

use cardbridge::alipayplus::{AlipayPlus, Begin};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::http::{Transport, TransportConfig};
use cardbridge::store::MemoryStore;
use cardbridge::wechatpay::EventKind;
use cardbridge::wechatpay::sign::RequestSigner;
use common::emulator::{
    AlipayPlatformEmulator, EmulatorConfig, PlatformDriver, Tamper, WechatEmulatorConfig, WechatPayEmulator,
};
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The section's text: from its heading to the next `## `.
fn section() -> String {
    let readme = read("README.md");
    let start = readme
        .find("\n## Capability matrix\n")
        .expect("README has a Capability matrix section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_string()
}

/// The table rows after the header and separator, as cells without backticks.
fn rows() -> Vec<Vec<String>> {
    section()
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Family") && !l.starts_with("|---"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect()
        })
        .collect()
}

fn files_under(dir: &str, ext: &str) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(root().join(dir)).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().and_then(|e| e.to_str()) == Some(ext) {
            text.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    text
}

const MCHID: &str = "1900000001";
const SERIAL: &str = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";

#[test]
fn every_cell_names_something_that_exists() {
    let rows = rows();
    assert!(
        rows.len() >= 31,
        "5 Alipay+ APIs, 22 WeChat Pay operations, 4 events: {} rows",
        rows.len()
    );
    let header = read("include/cardbridge.h");
    let python = files_under("bindings/python/cardbridge", "py");
    let csharp = files_under("bindings/csharp/src", "cs");
    let rust_alipay = files_under("src/alipayplus", "rs");
    let rust_wechat = files_under("src/wechatpay", "rs");

    let wechat = WechatPayEmulator::start(WechatEmulatorConfig {
        wechatpay_private_key: platform_key(),
        public_key_id: PUB_KEY_ID.into(),
        merchant_public_key: merchant_key().public_key(),
        mchid: MCHID.into(),
        merchant_serial_no: SERIAL.into(),
        api_v3_key: ApiV3Key::new(b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb").unwrap(),
        platform_certificate: None,
    })
    .unwrap();
    let alipay = AlipayPlatformEmulator::start(EmulatorConfig::new(
        platform_key(),
        merchant_key().public_key(),
        CLIENT_ID,
    ))
    .unwrap();
    let signer = RequestSigner::new(MCHID, SERIAL, merchant_key()).unwrap();
    let transport = Transport::new(&TransportConfig::default()).unwrap();
    let driver = PlatformDriver::new(platform_key(), CLIENT_ID, "1");
    let ap = AlipayPlus::new(config(None), Some(Arc::new(MemoryStore::new()))).unwrap();
    let mut operations = BTreeSet::new();

    for row in &rows {
        let [family, operation, rust, c, py, cs, sample, route] = &row[..] else {
            panic!("a row has 8 cells: {row:?}");
        };
        let what = format!("{family} {operation}");
        assert!(operations.insert(operation.clone()), "{what}: listed twice");
        // Rust: `Type::method` defined in the platform's module.
        let (ty, method) = rust
            .split_once("::")
            .unwrap_or_else(|| panic!("{what}: Rust cell {rust}"));
        let source = match ty {
            "AlipayPlus" => &rust_alipay,
            "WechatPay" => &rust_wechat,
            other => panic!("{what}: unknown Rust type {other}"),
        };
        assert!(
            source.contains(&format!("pub fn {method}(")),
            "{what}: no Rust method {rust}"
        );
        // C: declared in the header.
        assert!(header.contains(&format!("{c}(")), "{what}: no C export {c}");
        // Python and C#: `Class.method`.
        let (class, method) = py.split_once('.').unwrap();
        assert!(
            python.contains(&format!("class {class}")),
            "{what}: no Python class {class}"
        );
        assert!(
            python.contains(&format!("def {method}(")),
            "{what}: no Python method {py}"
        );
        let (class, method) = cs.split_once('.').unwrap();
        assert!(
            csharp.contains(&format!("class {class}")),
            "{what}: no C# class {class}"
        );
        assert!(
            csharp
                .lines()
                .any(|l| l.contains("public ") && l.contains(&format!(" {method}("))),
            "{what}: no public C# method {cs}"
        );
        // Sample: `file: key`, the key quoted in the file.
        let (file, key) = sample
            .split_once(": ")
            .unwrap_or_else(|| panic!("{what}: sample cell {sample}"));
        let text = read(file);
        let found = if file.ends_with(".json") {
            text.contains(&format!("\"{key}\""))
        } else {
            text.contains(key)
        };
        assert!(found, "{what}: {file} has no {key}");
        // Emulator: the route is served.
        if let Some(event) = route.strip_prefix("deliver ") {
            let event = event.trim_matches('`');
            let kind = EventKind::from_event_type(&format!("BRAND_MEMBER_CARD_SP.{event}"));
            assert!(
                !matches!(kind, EventKind::Other(_)),
                "{what}: not an event the handler knows"
            );
        } else if let Some(path) = route.strip_prefix("mint ") {
            let path = path.trim_matches('`');
            let api = path.rsplit('/').next().unwrap();
            assert_eq!(PlatformDriver::target_for(api), path, "{what}: the driver's target");
            let request = driver
                .request(path, b"{}", "2026-12-07T10:00:00.000+00:00", Tamper::None)
                .unwrap();
            if let Begin::Respond(answer) = ap.begin(&request, now_ms()) {
                let body = String::from_utf8_lossy(&answer.body);
                assert!(
                    !body.contains("unknown API path"),
                    "{what}: the handler does not serve {path}"
                );
            }
        } else {
            let (method, target) = route.split_once(' ').unwrap_or_else(|| panic!("{what}: route {route}"));
            let target = target
                .replace("{user_card_code}", "478515832665")
                .replace("{card_id}", "pbLatjvWOibDc5-TBnbUk1pD12o0")
                .replace("{brand_id}", "1004")
                .replace("{openid}", "obLatjnx9gnqzS4myYGmLZ7LgLBA");
            let (base, body): (String, &[u8]) = match family.as_str() {
                "Alipay+" => (alipay.base_url(), b"{}"),
                _ => (wechat.base_url(), if method == "GET" { b"" } else { b"{}" }),
            };
            let mut headers = vec![
                ("Accept".to_string(), "application/json".to_string()),
                ("Content-Type".to_string(), "application/json".to_string()),
            ];
            if family == "WeChat Pay" {
                let signed = signer
                    .sign(method, &target, body, chrono::Utc::now().timestamp())
                    .unwrap();
                headers.push(("Authorization".to_string(), signed.authorization));
                headers.push(("Wechatpay-Serial".to_string(), PUB_KEY_ID.to_string()));
            }
            let answer = transport
                .send(&format!("{base}{target}"), method, &headers, body)
                .unwrap();
            let code = serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|v| v["code"].as_str().map(str::to_string))
                .unwrap_or_default();
            assert!(
                answer.status != 405 && code != "NOT_FOUND" && !(family == "Alipay+" && answer.status == 404),
                "{what}: the emulator does not serve {method} {target} (HTTP {} {code})",
                answer.status
            );
        }
    }
    // The WeChat Pay rows are exactly the catalogue.
    for op in cardbridge::wechatpay::operations::OPERATIONS {
        assert!(
            operations.iter().any(|o| o == op || o.starts_with(&format!("{op} "))),
            "the catalogue's {op} has no row"
        );
    }
}

#[test]
fn every_export_of_the_header_is_named() {
    let header = read("include/cardbridge.h");
    let section = section();
    let mut exports = BTreeSet::new();
    for (i, _) in header.match_indices("cardbridge_") {
        let name: String = header[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if header[i + name.len()..].starts_with('(') {
            exports.insert(name);
        }
    }
    assert!(exports.len() > 60, "{} exports found", exports.len());
    let missing: Vec<_> = exports
        .iter()
        .filter(|e| !section.contains(&format!("`{e}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "exported but named by no row or list of the capability matrix: {missing:?}"
    );
    // And nothing named there is gone from the header.
    let mut i = 0;
    while let Some(at) = section[i..].find("`cardbridge_") {
        let start = i + at + 1;
        let end = start + section[start..].find('`').unwrap();
        let name = &section[start..end];
        assert!(
            exports.contains(name),
            "the capability matrix names {name}, which the header does not export"
        );
        i = end + 1;
    }
}
