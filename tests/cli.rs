//! The `cardbridge` command-line tool, run as a process.

mod common;
mod pg;

use crate::common::emulator::{CallbackTamper, WechatEmulatorConfig, WechatPayEmulator, sample_user_card_create};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::store::{LeaseRequest, OutboxEntry, PostgresStore, SqliteStore, Store};
use common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";

fn tool(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cardbridge"))
        .args(args)
        .env_remove("CARDBRIDGE_CONFIG")
        .env_remove("CARDBRIDGE_STORE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn temp_file(tag: &str, contents: &[u8]) -> PathBuf {
    let p = temp_db(tag).with_extension("tmp");
    std::fs::write(&p, contents).unwrap();
    p
}

fn alipay_config() -> PathBuf {
    let c = json!({"client_id": CLIENT_ID, "merchant_private_key": fixture("test_merchant_private.pem"),
                   "platform_public_key": fixture("test_platform_public.pem")});
    temp_file("cli-ap", c.to_string().as_bytes())
}

fn wechat_config() -> PathBuf {
    let c = json!({"mchid": "1900000001", "merchant_serial_no": "5F1C72E2A8931B72A2E13AF8DEE92471EB397115",
                   "merchant_private_key": fixture("test_merchant_private.pem"),
                   "api_v3_key": "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
                   "wechatpay_public_key_id": PUB_KEY_ID,
                   "wechatpay_public_key": fixture("test_platform_public.pem")});
    temp_file("cli-wx", c.to_string().as_bytes())
}

fn issue_card(customer_id: &str) -> Vec<u8> {
    json!({"appId": "2102010113769000", "customerBelongsTo": "TNG", "requestId": "REQ-1",
           "customerId": customer_id, "externalCustomerId": "M-000123",
           "registerDate": "2019-11-27T19:07:41+08:00",
           "cardFields": [{"fieldCode": "LEVEL", "fieldValue": "GOLD"}]})
    .to_string()
    .into_bytes()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn validate_names_the_field_and_the_limit_and_never_the_value() {
    let ok = tool(
        &["validate", "issueCard", "-"],
        Some(&issue_card("1236450862137570000")),
    );
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("valid"));

    let long = "9".repeat(65);
    let bad = tool(&["--json", "validate", "issueCard", "-"], Some(&issue_card(&long)));
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let v: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["field"], "issueCard.customerId");
    assert_eq!(v["limit"], "64");
    assert!(!text(&bad).contains(&long), "the value is never echoed");

    let wx = tool(
        &["validate", "wechat.confirm", "-"],
        Some(b"{\"user_card_code\":\"1\"}"),
    );
    assert_eq!(wx.status.code(), Some(1), "{}", text(&wx));
    assert!(text(&wx).contains("confirm."), "{}", text(&wx));

    // Every card-member operation of the catalogue.
    let feed = tool(
        &["--json", "validate", "wechat.createUserFeed", "-"],
        Some(
            br#"{"brand_id":"1004","card_id":"c","user_card_code":"1","openid":"o","out_request_no":"F-1","cell":"x"}"#,
        ),
    );
    assert_eq!(feed.status.code(), Some(0), "{}", text(&feed));
    let bad = tool(
        &["--json", "validate", "wechat.listCardTemplates", "-"],
        Some(br#"{"brand_id":"1004","limit":21}"#),
    );
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let v: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(
        (v["field"].as_str(), v["limit"].as_str()),
        (Some("listCardTemplates.limit"), Some("20"))
    );
}

#[test]
fn sign_then_verify_round_trips_and_a_changed_uri_says_mismatch_with_the_string_verified() {
    let config = alipay_config();
    let body = temp_file("cli-body", &issue_card("1"));
    let time = "2026-12-07T10:00:00.000+00:00";
    let uri = "/v2/pds/memberships/issueCard";
    let signed = tool(
        &[
            "--json",
            "sign",
            "alipayplus",
            "--config",
            p(&config),
            "--uri",
            uri,
            "--time",
            time,
            p(&body),
        ],
        None,
    );
    assert!(signed.status.success(), "{}", text(&signed));
    let v: Value = serde_json::from_slice(&signed.stdout).unwrap();
    let expected = format!(
        "POST {uri}\n{CLIENT_ID}.{time}.{}",
        String::from_utf8(issue_card("1")).unwrap()
    );
    assert_eq!(v["string_to_sign"], expected.as_str());
    assert_eq!(v["length"], expected.len());
    let signature = v["headers"]["Signature"].as_str().unwrap().to_string();
    assert!(!text(&signed).contains("PRIVATE KEY"));

    let verify = |uri: &str| {
        tool(
            &[
                "verify",
                "alipayplus",
                "--ours",
                "--config",
                p(&config),
                "--uri",
                uri,
                "-H",
                &format!("Client-Id: {CLIENT_ID}"),
                "-H",
                &format!("Request-Time: {time}"),
                "-H",
                &format!("Signature: {signature}"),
                p(&body),
            ],
            None,
        )
    };
    let good = verify(uri);
    assert!(good.status.success(), "{}", text(&good));
    assert!(text(&good).contains("signature valid"));
    let bad = verify("/v2/pds/memberships/issueCard/");
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("INVALID"), "{}", text(&bad));
    assert!(
        text(&bad).contains("issueCard/\\n"),
        "shows the string it verified: {}",
        text(&bad)
    );
    for f in [config, body] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn decrypt_callback_verifies_and_decrypts_a_captured_callback_and_refuses_a_tampered_one() {
    let emu = WechatPayEmulator::start(WechatEmulatorConfig {
        wechatpay_private_key: platform_key(),
        public_key_id: PUB_KEY_ID.into(),
        merchant_public_key: merchant_key().public_key(),
        mchid: "1900000001".into(),
        merchant_serial_no: "5F1C72E2A8931B72A2E13AF8DEE92471EB397115".into(),
        api_v3_key: ApiV3Key::new(b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb").unwrap(),
        platform_certificate: None,
    })
    .unwrap();
    let config = wechat_config();
    let now = chrono::Utc::now().timestamp();
    for (tamper, ok) in [(CallbackTamper::None, true), (CallbackTamper::BodyByte, false)] {
        let plaintext = sample_user_card_create(Some("478515832665"), "pbLatjvWOibDc5-TBnbUk1pD12o0", "openid1");
        let req = emu
            .callback(
                "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE",
                "member_card",
                &plaintext,
                now,
                tamper,
            )
            .unwrap();
        let headers: String = req.headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
        let hfile = temp_file("cli-h", headers.as_bytes());
        let bfile = temp_file("cli-b", &req.body);
        let out = tool(
            &[
                "--json",
                "decrypt-callback",
                "--config",
                p(&config),
                "--headers",
                p(&hfile),
                "--body",
                p(&bfile),
            ],
            None,
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        if ok {
            assert!(out.status.success(), "{}", text(&out));
            assert_eq!(v["kind"], "USER_CARD.CREATE");
            assert_eq!(v["resource"]["user_card_code"], "478515832665");
            assert_eq!(v["resource"]["phone_number"], plaintext["phone_number"], "decrypted");
        } else {
            assert_eq!(out.status.code(), Some(1), "{}", text(&out));
            assert_eq!(v["refused"], 401);
        }
        for f in [hfile, bfile] {
            let _ = std::fs::remove_file(f);
        }
    }
    let _ = std::fs::remove_file(config);
}

#[test]
fn outbox_list_and_show_hide_bodies_unless_asked_and_purge_counts() {
    let db = temp_db("cli-outbox");
    let store = SqliteStore::open(&db).unwrap();
    let body = b"{\"phone_number\":\"13800000000\"}".to_vec();
    let e = OutboxEntry::new(
        "wechatpay.confirm/C/1".into(),
        "wechatpay.confirm",
        "POST",
        "/v3/x".into(),
        body,
        "fp".into(),
        now_ms(),
    );
    store
        .outbox_insert(
            &e,
            LeaseRequest {
                owner: "test",
                now_ms: now_ms(),
                lease_ms: 1,
            },
        )
        .unwrap();
    drop(store);
    let list = tool(
        &["--json", "outbox", "list", "--store", p(&db), "--state", "pending"],
        None,
    );
    assert!(list.status.success(), "{}", text(&list));
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v["entries"][0]["id"], "wechatpay.confirm/C/1");
    assert_eq!(v["entries"][0]["state"], "pending");
    assert!(!text(&list).contains("13800000000"));

    let show = tool(&["outbox", "show", "--store", p(&db), "wechatpay.confirm/C/1"], None);
    assert!(show.status.success(), "{}", text(&show));
    assert!(!text(&show).contains("13800000000"), "no body unless asked");
    let shown = tool(
        &[
            "outbox",
            "show",
            "--store",
            p(&db),
            "--show-body",
            "wechatpay.confirm/C/1",
        ],
        None,
    );
    assert!(text(&shown).contains("13800000000"));

    let missing = tool(&["outbox", "show", "--store", p(&db), "nope"], None);
    assert_eq!(missing.status.code(), Some(2));
    let purge = tool(
        &["--json", "outbox", "purge", "--store", p(&db), "--older-than-days", "0"],
        None,
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&purge.stdout).unwrap()["purged"],
        0,
        "pending is kept"
    );
    let _ = std::fs::remove_file(&db);
}

#[test]
fn a_key_in_the_wrong_config_field_is_never_echoed() {
    let c = json!({"client_id": CLIENT_ID, "merchant_private_key": fixture("test_merchant_private.pem"),
                   "platform_public_key": fixture("test_platform_public.pem"),
                   "connect_timeout_ms": fixture("test_merchant_private.pem")});
    let config = temp_file("cli-badcfg", c.to_string().as_bytes());
    let out = tool(
        &["sign", "alipayplus", "--config", p(&config), "--uri", "/x", "-"],
        Some(b"{}"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("connect_timeout_ms"), "{}", text(&out));
    assert!(!text(&out).contains("PRIVATE KEY"), "{}", text(&out));
    let _ = std::fs::remove_file(config);
}

#[test]
fn outbox_list_reads_a_postgresql_store_by_connection_string() {
    let Some(schema) = pg::Schema::create("cli") else {
        return;
    };
    let store = PostgresStore::open(&schema.dsn()).unwrap();
    let e = OutboxEntry::new(
        "alipayplus.issueCard/A/R".into(),
        "alipayplus.issueCard",
        "POST",
        "/v2/pds/memberships/issueCard".into(),
        b"{}".to_vec(),
        "fp".into(),
        now_ms(),
    );
    let lease = LeaseRequest {
        owner: "test",
        now_ms: now_ms(),
        lease_ms: 1,
    };
    store.outbox_insert(&e, lease).unwrap();
    drop(store);
    let list = tool(&["--json", "outbox", "list", "--store", &schema.dsn()], None);
    assert!(list.status.success(), "{}", text(&list));
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v["entries"][0]["id"], "alipayplus.issueCard/A/R");
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
}

#[test]
fn outbox_resume_delivers_an_issue_card_left_pending_and_replays_a_final_one() {
    use crate::common::emulator::Fault;
    use cardbridge::alipayplus::{AlipayPlus, client::outbox_id, model};
    let emu = start_emulator();
    let db = temp_db("cli-resume");
    let mut c = config(Some(emu.base_url()));
    c.retry.max_attempts = 1;
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(SqliteStore::open(&db).unwrap());
    let ap = AlipayPlus::new(c, Some(store)).unwrap();
    emu.push_fault(Fault::HttpStatus(503));
    let request: model::IssueCardRequest =
        model::parse(&issue_card("210911290000"), cardbridge::validate::Direction::Outbound).unwrap();
    let e = ap.issue_card(&request).unwrap_err();
    assert_eq!(e.kind(), cardbridge::ErrorKind::RemoteUnknown, "left pending");
    drop(ap);
    let id = outbox_id("2102010113769000", "REQ-1");

    let cfg = json!({"client_id": CLIENT_ID, "merchant_private_key": fixture("test_merchant_private.pem"),
                     "platform_public_key": fixture("test_platform_public.pem"),
                     "base_url": emu.base_url()});
    let cfg = temp_file("cli-resume-cfg", cfg.to_string().as_bytes());
    let args = [
        "--json",
        "outbox",
        "resume",
        "--store",
        p(&db),
        "--platform",
        "alipayplus",
        "--config",
        p(&cfg),
    ];
    let one = tool(&[&args[..], &[id.as_str()]].concat(), None);
    assert!(one.status.success(), "{}", text(&one));
    let v: Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(v["resumed"][0]["ok"], true, "{v}");
    let list = tool(
        &["--json", "outbox", "list", "--store", p(&db), "--state", "succeeded"],
        None,
    );
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed["entries"][0]["id"], id.as_str());

    let all = tool(&[&args[..], &["--all"]].concat(), None);
    assert!(all.status.success(), "{}", text(&all));
    let v: Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(v["resumed"].as_array().unwrap().len(), 0, "nothing pending any more");
    for f in [db, cfg] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn diagnose_names_the_rewrite_that_broke_a_captured_signature_and_never_prints_the_body() {
    let api = "/v2/pds/memberships/notifyCardRegistration";
    let public = format!("/api/membership{api}");
    let body = br#"{"appId":"2102010113769000","requestId":"REQ-D","cardFields":[{"fieldCode":"EMAIL","fieldValue":"alice@example.com"}]}"#;
    let time = "2026-12-07T10:00:00.000+00:00";
    let sig = cardbridge::alipayplus::signature::sign_base64(&platform_key(), "POST", &public, CLIENT_ID, time, body)
        .unwrap();
    let signature = cardbridge::alipayplus::signature::header_value("1", &sig);
    let headers =
        format!("Client-Id: {CLIENT_ID}\nRequest-Time: {time}\nSignature: {signature}\nX-Original-URI: {public}\n");
    let h = temp_file("diag-h", headers.as_bytes());
    let b = temp_file("diag-b", body);
    let config = alipay_config();
    let args = |target: &str| {
        let o = tool(
            &[
                "--json",
                "diagnose",
                "alipayplus",
                "--config",
                p(&config),
                "--headers",
                p(&h),
                "--body",
                p(&b),
                "--target",
                target,
            ],
            None,
        );
        (o.status.code(), text(&o))
    };
    let (code, out) = args(api);
    assert_eq!(code, Some(1), "{out}");
    let doc: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["verifies"], false);
    assert_eq!(doc["diagnosis"]["check"], "mismatch");
    assert_eq!(doc["diagnosis"]["verified_variant"], "proxy_header_target");
    assert!(
        doc["diagnosis"]["fix"]
            .as_str()
            .unwrap()
            .contains("\"/api/membership\""),
        "{out}"
    );
    assert!(!out.contains("alice@example.com") && !out.contains(&sig[..24]), "{out}");
    // Received as signed: it verifies.
    let (code, out) = args(&public);
    assert_eq!(code, Some(0), "{out}");

    // WeChat Pay: a callback whose JSON was pretty-printed by a framework.
    let ts = chrono::Utc::now().timestamp();
    let nonce = "NONCE-DIAG";
    let signed = br#"{"id":"EV-1","event_type":"USER_CARD.CREATE"}"#;
    let value: Value = serde_json::from_slice(signed).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    let message = cardbridge::wechatpay::verify::message(&ts.to_string(), nonce, signed);
    let wsig =
        cardbridge::crypto::b64_encode(&cardbridge::crypto::rsa::sign_sha256(&platform_key(), &message).unwrap());
    let headers = format!(
        "Wechatpay-Timestamp: {ts}\nWechatpay-Nonce: {nonce}\nWechatpay-Signature: {wsig}\n\
         Wechatpay-Serial: {PUB_KEY_ID}\nWechatpay-Signature-Type: WECHATPAY2-SHA256-RSA2048\n"
    );
    let h = temp_file("diag-wh", headers.as_bytes());
    let b = temp_file("diag-wb", &pretty);
    let o = tool(
        &[
            "diagnose",
            "wechatpay",
            "--config",
            p(&wechat_config()),
            "--headers",
            p(&h),
            "--body",
            p(&b),
        ],
        None,
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("json_reserialised") && out.contains("raw body"), "{out}");
}

#[test]
fn diagnose_compares_a_sign_error_echo_with_the_string_we_signed() {
    let target = "/v3/brand/partner/card-member/user-cards?card_id=pbLat%2Bx";
    let body = br#"{"user_card_code":"478515832665"}"#;
    let signer = cardbridge::wechatpay::RequestSigner::new(
        "1900000001",
        "5F1C72E2A8931B72A2E13AF8DEE92471EB397115",
        merchant_key(),
    )
    .unwrap();
    let signed = signer.sign("POST", target, body, 1_700_000_000).unwrap();
    let ours = cardbridge::wechatpay::sign::message("POST", target, signed.timestamp, &signed.nonce, body);
    // The platform verified the decoded query: its echo differs on the URL line.
    let theirs = String::from_utf8(ours.clone()).unwrap().replace("pbLat%2Bx", "pbLat+x");
    let answer = json!({"code": "SIGN_ERROR", "message": "签名错误", "detail": {"sign_information":
        {"truncated_sign_message": theirs, "sign_message_length": theirs.len()}}});
    let h = temp_file(
        "diag-sent-h",
        format!("Authorization: {}\n", signed.authorization).as_bytes(),
    );
    let b = temp_file("diag-sent-b", body);
    let a = temp_file("diag-answer", answer.to_string().as_bytes());
    let o = tool(
        &[
            "--json",
            "diagnose",
            "wechatpay",
            "--config",
            p(&wechat_config()),
            "--answer",
            p(&a),
            "--headers",
            p(&h),
            "--body",
            p(&b),
            "--target",
            target,
        ],
        None,
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let doc: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["outbound"]["differing_line"], "url", "{out}");
    assert_eq!(doc["outbound"]["length_delta"], -2);
    assert!(
        doc["outbound"]["likely_cause"].as_str().unwrap().contains("card_id"),
        "{out}"
    );
}

#[test]
fn diagnose_compares_an_alipay_gateway_echo_with_the_string_we_signed() {
    let target = "/api/open/v2/pds/memberships/issueCard";
    let body = br#"{"requestId":"R-1","appId":"2102"}"#;
    let time = "2026-12-07T10:00:00.123+00:00";
    let ours = cardbridge::alipayplus::signature::content_to_sign("POST", target, "2022TEST_CLIENT", time, body);
    // The gateway received the URI without its prefix (a proxy rewrote it).
    let theirs = String::from_utf8(ours).unwrap().replace("/api/open", "");
    let message = format!("验签出错,建议检查签名字符串或签名私钥与应用公钥是否匹配,网关生成的验签字符串为:{theirs}");
    let answer = json!({"result": {"resultCode": "INVALID_SIGNATURE", "resultStatus": "F", "resultMessage": message}});
    let h = temp_file(
        "diag-ap-h",
        format!("Client-Id: 2022TEST_CLIENT\nRequest-Time: {time}\n").as_bytes(),
    );
    let b = temp_file("diag-ap-b", body);
    let a = temp_file("diag-ap-answer", answer.to_string().as_bytes());
    let o = tool(
        &[
            "--json",
            "diagnose",
            "alipayplus",
            "--config",
            p(&alipay_config()),
            "--answer",
            p(&a),
            "--headers",
            p(&h),
            "--body",
            p(&b),
            "--target",
            target,
        ],
        None,
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let doc: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(doc["outbound"]["differing_line"], "uri", "{out}");
    assert_eq!(doc["outbound"]["length_delta"], -9);
    assert!(
        doc["outbound"]["likely_cause"]
            .as_str()
            .unwrap()
            .contains("path prefix"),
        "{out}"
    );
    assert!(!out.contains("R-1"), "{out}");
}
