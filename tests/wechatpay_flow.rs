//! WeChat Pay end to end against the loopback emulator: callbacks (verify,
//! decrypt, dedupe, refusals), confirm through the outbox (faults, retries,
//! idempotency, restart), the rest of the user-card lifecycle, certificate mode.

mod common;

use crate::common::emulator::{
    Alteration, CallbackTamper, WechatEmulatorConfig, WechatFault, WechatPayEmulator, sample_user_card_create,
};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::crypto::keys::PrivateKey;
use cardbridge::store::{MemoryStore, SqliteStore, Store};
use cardbridge::wechatpay::keyring::KeyRing;
use cardbridge::wechatpay::sign::RequestSigner;
use cardbridge::wechatpay::{CallbackBegin, Config, WechatPay};
use cardbridge::{ErrorKind, http::HttpResponse};
use common::wechat::*;
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn confirm_input(code: &str) -> Vec<u8> {
    json!({"user_card_code": code, "card_id": CARD_ID, "brand_id": "1004", "openid": OPENID,
           "phone_number": "13800000000",
           "user_information": {"common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": "Li Lei"}]},
           "user_card_confirm_state": "CREATE_CARD_SUCCESS"})
    .to_string()
    .into_bytes()
}

fn code_of(r: &HttpResponse) -> String {
    serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn card_opening_callback_reaches_the_host_once_with_cleartext_fields() {
    let s = setup();
    let wp = wechat(&s);
    let plain = sample_user_card_create(Some("478515832665"), CARD_ID, OPENID);
    let req = s
        .emu
        .callback(
            "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE",
            "user_card",
            &plain,
            now(),
            CallbackTamper::None,
        )
        .unwrap();
    let CallbackBegin::Handle(mut event) = wp.callback_begin(&req, now_ms()) else {
        panic!("host not asked")
    };
    assert_eq!(event.kind, cardbridge::wechatpay::EventKind::UserCardCreate);
    assert_eq!(
        event.resource["phone_number"], "13800000000",
        "sensitive field decrypted for the host"
    );
    assert!(event.undecryptable.is_empty());
    assert_eq!(event.resource["card_id"], CARD_ID);
    let answer = wp.callback_finish(&mut event, true, "", now_ms()).unwrap();
    assert_eq!((answer.status, code_of(&answer).as_str()), (200, "SUCCESS"));
    // The same notification again: acknowledged without the host.
    match wp.callback_begin(&req, now_ms()) {
        CallbackBegin::Respond(r) => assert_eq!((r.status, code_of(&r).as_str()), (200, "SUCCESS")),
        CallbackBegin::Handle(_) => panic!("a duplicate reached the host"),
    }
}

#[test]
fn host_can_ask_for_redelivery() {
    let s = setup();
    let wp = wechat(&s);
    let plain = sample_user_card_create(Some("1001"), CARD_ID, OPENID);
    let req = s
        .emu
        .callback(
            "MEMBERCARDSP.USER_CARD.CREATE",
            "user_card",
            &plain,
            now(),
            CallbackTamper::None,
        )
        .unwrap();
    let CallbackBegin::Handle(mut event) = wp.callback_begin(&req, now_ms()) else {
        panic!()
    };
    let r = wp.callback_finish(&mut event, false, "CRM busy", now_ms()).unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (500, "FAIL"));
    assert!(
        matches!(wp.callback_begin(&req, now_ms()), CallbackBegin::Handle(_)),
        "redelivery reaches the host again"
    );
}

#[test]
fn forged_stale_and_probe_callbacks_are_refused() {
    let s = setup();
    let wp = wechat(&s);
    let plain = sample_user_card_create(Some("2002"), CARD_ID, OPENID);
    for (tamper, status) in [
        (CallbackTamper::SignTestProbe, 401),
        (CallbackTamper::StaleTimestamp, 401),
        (CallbackTamper::WrongSerial, 401),
        (CallbackTamper::BodyByte, 401),
        (CallbackTamper::BadTag, 400),
        (CallbackTamper::MissingHeader, 400),
    ] {
        let req = s
            .emu
            .callback(
                "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE",
                "user_card",
                &plain,
                now(),
                tamper,
            )
            .unwrap();
        match wp.callback_begin(&req, now_ms()) {
            CallbackBegin::Respond(r) => {
                assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
                assert_eq!(code_of(&r), "FAIL");
            }
            CallbackBegin::Handle(_) => panic!("a tampered callback reached the host"),
        }
    }
}

#[test]
fn confirm_opens_the_card_once() {
    let s = setup();
    let wp = wechat(&s);
    s.emu.add_user_card("478515832665", CARD_ID, OPENID, "1004");
    let answer = wp.confirm(&confirm_input("478515832665")).unwrap();
    assert_eq!(answer.json["user_card_state"], "EFFECTIVE");
    assert_eq!(s.emu.confirm_hits("478515832665"), 1);
    assert_eq!(s.emu.confirms_applied(), 1);
    let again = wp.confirm(&confirm_input("478515832665")).unwrap();
    assert_eq!(again.json["user_card_state"], "EFFECTIVE");
    assert_eq!(s.emu.confirm_hits("478515832665"), 1, "answered from the outbox");
    let mut other: Value = serde_json::from_slice(&confirm_input("478515832665")).unwrap();
    other["level"] = json!("gold");
    let e = wp.confirm(other.to_string().as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::IdempotencyConflict);
}

#[test]
fn invalid_confirm_is_refused_before_sending() {
    let s = setup();
    let wp = wechat(&s);
    let mut bad: Value = serde_json::from_slice(&confirm_input("3003")).unwrap();
    bad["card_color"] = json!("yellow");
    let e = wp.confirm(bad.to_string().as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(e.field(), Some("confirm.card_color"));
    let mut long: Value = serde_json::from_slice(&confirm_input("3004")).unwrap();
    long["phone_number"] = json!("1".repeat(215));
    let e = wp.confirm(long.to_string().as_bytes()).unwrap_err();
    assert_eq!(e.field(), Some("confirm.phone_number"));
    assert_eq!(e.limit(), Some("214"));
    assert_eq!(s.emu.hits("/v3"), 0);
}

#[test]
fn transient_answers_are_retried_and_final_ones_are_not() {
    // Refusals that applied nothing are re-sent (two confirms reach the platform). Outcomes that
    // may hide an applied confirm are followed by a read-back that finds the card EFFECTIVE, and
    // the confirm is never sent again (one confirm). The 500 of this fault comes before
    // processing, so the read-back finds the card waiting and allows the re-send.
    let retried: Vec<(&str, WechatFault, usize)> = vec![
        (
            "500",
            WechatFault::Status {
                status: 500,
                code: "SYSTEM_ERROR".into(),
                message: "系统错误".into(),
            },
            2,
        ),
        (
            "429",
            WechatFault::Status {
                status: 429,
                code: "RATELIMIT_EXCEEDED".into(),
                message: "slow down".into(),
            },
            2,
        ),
        ("202", WechatFault::Accepted202, 2),
        ("unsigned", WechatFault::Unsigned, 1),
        ("badsig", WechatFault::BadSignature, 1),
        ("stale", WechatFault::StaleTimestamp, 1),
        ("probe", WechatFault::SignTestProbe, 1),
        ("delay", WechatFault::DelayThenAnswer(Duration::from_millis(900)), 1),
        ("drop", WechatFault::DropAfterProcessing, 1),
    ];
    for (tag, fault, confirms) in retried {
        let s = setup();
        let wp = wechat(&s);
        s.emu.add_user_card("4004", CARD_ID, OPENID, "1004");
        s.emu.push_fault(fault);
        let answer = wp
            .confirm(&confirm_input("4004"))
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_eq!(answer.json["user_card_state"], "EFFECTIVE", "{tag}");
        assert_eq!(s.emu.confirm_hits("4004"), confirms, "{tag}");
        assert_eq!(s.emu.confirms_applied(), 1, "{tag}");
    }
    let s = setup();
    let wp = wechat(&s);
    s.emu.add_user_card("4005", CARD_ID, OPENID, "1004");
    s.emu.push_fault(WechatFault::Status {
        status: 400,
        code: "PARAM_ERROR".into(),
        message: "参数错误".into(),
    });
    let e = wp.confirm(&confirm_input("4005")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteFailed);
    assert_eq!(e.remote().unwrap().code, "PARAM_ERROR");
    assert_eq!(e.remote().unwrap().http_status, 400);
    assert_eq!(s.emu.confirm_hits("4005"), 1);
}

#[test]
fn an_interrupted_confirm_resumes_after_a_restart_and_applies_once() {
    let s = setup();
    s.emu.add_user_card("5005", CARD_ID, OPENID, "1004");
    let db = temp_db("wechat-resume");
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
        let wp = WechatPay::new(wechat_config(&s), Some(store)).unwrap();
        for _ in 0..4 {
            s.emu.push_fault(WechatFault::Status {
                status: 503,
                code: "SERVICE_UNAVAILABLE".into(),
                message: "".into(),
            });
        }
        // The card read-back also meets a 503 fault, so the outcome stays unknown.
        s.emu.push_fault(WechatFault::Status {
            status: 503,
            code: "SERVICE_UNAVAILABLE".into(),
            message: "".into(),
        });
        let e = wp.confirm(&confirm_input("5005")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RemoteUnknown, "{e}");
    }
    assert_eq!(s.emu.confirms_applied(), 0);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    let wp = WechatPay::new(wechat_config(&s), Some(store)).unwrap();
    let resumed = wp.resume_pending().unwrap();
    assert_eq!(resumed.len(), 1);
    assert!(resumed[0].1.is_ok(), "{:?}", resumed[0].1);
    assert_eq!(s.emu.confirms_applied(), 1);
    assert!(wp.resume_pending().unwrap().is_empty());
    let _ = std::fs::remove_file(&db);
}

#[test]
fn lifecycle_calls_get_update_and_sync_points() {
    let s = setup();
    let wp = wechat(&s);
    s.emu.add_user_card("6006", CARD_ID, OPENID, "1004");
    let got = wp
        .get_user_card(
            json!({"user_card_code": "6006", "brand_id": "1004", "card_id": CARD_ID, "openid": OPENID})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(got.json["user_card_code"], "6006");
    let updated = wp
        .update_user_card(
            json!({"user_card_code": "6006", "card_id": CARD_ID, "brand_id": "1004", "openid": OPENID, "level": "gold",
                                  "phone_number": "13900000000"})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(updated.json["level"], "gold");
    assert_eq!(s.emu.user_card("6006").unwrap()["level"], "gold");
    wp.sync_user_points(
        json!({"out_request_no": "P1", "brand_id": "1004", "card_id": CARD_ID, "openid": OPENID,
                               "user_card_code": "6006", "point_balance": 120})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
}

#[test]
fn a_32_byte_api_v3_key_is_required() {
    let e = ApiV3Key::new(b"testMchAPIv3Key0").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    let cfg = json!({"mchid": MCHID, "merchant_serial_no": SERIAL, "merchant_private_key": fixture("test_merchant_private.pem"),
                     "api_v3_key": "testMchAPIv3Key0", "wechatpay_public_key_id": PUB_KEY_ID,
                     "wechatpay_public_key": platform_key().public_key().to_pem()});
    let e = Config::from_json(cfg.to_string().as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(
        e.message().contains("api_v3_key") && e.message().contains("32"),
        "{}",
        e.message()
    );
}

fn emulator_fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/wechatpay/emulator/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn certificate_mode_downloads_certificates_and_verifies_with_them() {
    let cert_pem = emulator_fixture("platform_cert.pem");
    let cert = cardbridge::crypto::x509::Certificate::from_pem(&cert_pem).unwrap();
    let emu = WechatPayEmulator::start(WechatEmulatorConfig {
        platform_certificate: Some(crate::common::emulator::PlatformCertificate {
            pem: cert_pem.clone(),
            serial: cert.serial().to_string(),
            private_key: PrivateKey::from_pem(&emulator_fixture("platform_private.pem")).unwrap(),
        }),
        ..emulator_config()
    })
    .unwrap();
    // No key configured up front: everything comes from /v3/certificates.
    let signer = RequestSigner::new(MCHID, SERIAL, merchant_key()).unwrap();
    let mut c = Config::new(signer, merchant_key(), ApiV3Key::new(API_V3).unwrap(), KeyRing::new());
    c.base_url = emu.base_url();
    c.certificate_mode = true;
    let wp = WechatPay::new(c, Some(Arc::new(MemoryStore::new()))).unwrap();
    // A callback signed with the certificate triggers the download on its unknown serial.
    let plain = sample_user_card_create(Some("7007"), CARD_ID, OPENID);
    let req = emu
        .callback(
            "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE",
            "user_card",
            &plain,
            now(),
            CallbackTamper::None,
        )
        .unwrap();
    assert!(
        matches!(wp.callback_begin(&req, now_ms()), CallbackBegin::Handle(_)),
        "verified with a downloaded certificate"
    );
    assert_eq!(emu.hits("/v3/certificates"), 1);
    assert_eq!(wp.refresh_certificates().unwrap(), 1);
    // A merchant without platform certificates gets a configuration error, not a crash.
    let s = setup();
    let mut c = wechat_config(&s);
    c.certificate_mode = true;
    let wp = WechatPay::new(c, Some(Arc::new(MemoryStore::new()))).unwrap();
    let e = wp.refresh_certificates().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
}

#[test]
fn a_confirm_whose_answer_was_lost_is_not_sent_again_after_a_restart() {
    let s = setup();
    s.emu.add_user_card("8008", CARD_ID, OPENID, "1004");
    let db = temp_db("wechat-lost");
    {
        // One attempt only, its answer lost after WeChat applied it; the read-back fails too.
        let mut c = wechat_config(&s);
        c.retry.max_attempts = 1;
        let wp = WechatPay::new(c, Some(Arc::new(SqliteStore::open(&db).unwrap()))).unwrap();
        s.emu.push_fault(WechatFault::DropAfterProcessing);
        s.emu.push_fault(WechatFault::Status {
            status: 503,
            code: "SERVICE_UNAVAILABLE".into(),
            message: "".into(),
        });
        assert_eq!(
            wp.confirm(&confirm_input("8008")).unwrap_err().kind(),
            ErrorKind::RemoteUnknown
        );
    }
    assert_eq!((s.emu.confirm_hits("8008"), s.emu.confirms_applied()), (1, 1));
    let wp = WechatPay::new(wechat_config(&s), Some(Arc::new(SqliteStore::open(&db).unwrap()))).unwrap();
    let resumed = wp.resume_pending().unwrap();
    assert_eq!(resumed.len(), 1);
    let answer = resumed[0].1.as_ref().unwrap();
    assert_eq!(answer.json["user_card_state"], "EFFECTIVE");
    assert_eq!(
        s.emu.confirm_hits("8008"),
        1,
        "the card was read back; no second confirm reached WeChat"
    );
    let _ = std::fs::remove_file(&db);
}

/// An update whose answer is lost after the platform applied it is read back,
/// not re-sent; one refused before processing (500) is re-sent after the
/// read-back shows the old value.
#[test]
fn an_ambiguous_update_is_read_back_before_any_re_send() {
    let s = setup();
    let wp = wechat(&s);
    s.emu.add_user_card("6107", CARD_ID, OPENID, "1004");
    let path = "/v3/brand/partner/card-member/user-cards/6107";
    let update = |level: &str| {
        json!({"user_card_code": "6107", "card_id": CARD_ID, "brand_id": "1004", "openid": OPENID,
               "level": level, "phone_number": "13900000000"})
        .to_string()
        .into_bytes()
    };

    s.emu.push_fault(WechatFault::DropAfterProcessing);
    let answer = wp.update_user_card(&update("gold")).unwrap();
    assert_eq!(answer.json["level"], "gold");
    assert_eq!(answer.json["phone_number"], "13900000000", "the read-back, decrypted");
    assert_eq!(
        s.emu.hits(path),
        2,
        "the PATCH whose answer was lost, then one read-back"
    );
    assert_eq!(s.emu.last_request().unwrap().method, "GET", "no second PATCH");

    s.emu.push_fault(WechatFault::Status {
        status: 500,
        code: "SYSTEM_ERROR".into(),
        message: "系统错误".into(),
    });
    let answer = wp.update_user_card(&update("platinum")).unwrap();
    assert_eq!(answer.json["level"], "platinum");
    assert_eq!(s.emu.hits(path), 5, "PATCH (500), read-back (still gold), PATCH");
    assert_eq!(s.emu.last_request().unwrap().method, "PATCH");
    assert_eq!(s.emu.user_card("6107").unwrap()["level"], "platinum");
}

#[test]
fn a_confirm_signed_with_the_wrong_key_is_diagnosed_from_the_sign_error_echo() {
    let s = setup();
    let mut c = wechat_config(&s);
    // The serial names the merchant certificate, the key is another one.
    let wrong = cardbridge::crypto::keys::PrivateKey::from_pem(&common::fixture("spec_alipay_private.pem")).unwrap();
    c.signer = RequestSigner::new(MCHID, SERIAL, wrong).unwrap();
    let wp = WechatPay::new(c, Some(Arc::new(MemoryStore::new()))).unwrap();
    s.emu.add_user_card("478515832666", CARD_ID, OPENID, "1004");
    let e = wp.confirm(&confirm_input("478515832666")).unwrap_err();
    let remote = e.remote().expect("the platform's refusal");
    assert_eq!(remote.code, "SIGN_ERROR");
    let detail: Value = serde_json::from_str(&remote.detail).unwrap();
    let d = &detail["cardbridge_diagnosis"];
    assert_eq!(d["differing_line"], Value::Null, "{detail}");
    assert_eq!(d["length_delta"], 0, "{detail}");
    assert!(d["likely_cause"].as_str().unwrap().contains("serial_no"), "{detail}");
    assert_eq!(s.emu.confirms_applied(), 0);
}

/// A confirm changed on its way (a proxy re-serialising the JSON body, or
/// percent-encoding the `card_id` query): the platform's `SIGN_ERROR` echo
/// is compared with what was signed, and the diagnosis names the line.
#[test]
fn a_confirm_altered_in_transit_is_diagnosed_to_the_differing_line() {
    let s = setup();
    let wp = wechat(&s);
    for (n, (how, line, cause)) in [
        (Alteration::ReserializedBody, "body", "re-serialised"),
        (Alteration::ReencodedQuery, "url", "encod"),
    ]
    .into_iter()
    .enumerate()
    {
        let code = format!("47851583270{n}");
        s.emu.add_user_card(&code, CARD_ID, OPENID, BRAND_ID);
        s.emu.push_fault(WechatFault::Altered(how));
        let e = wp.confirm(&confirm_input(&code)).unwrap_err();
        let remote = e.remote().expect("the platform's refusal");
        assert_eq!((remote.http_status, remote.code.as_str()), (401, "SIGN_ERROR"));
        let detail: Value = serde_json::from_str(&remote.detail).unwrap();
        let d = &detail["cardbridge_diagnosis"];
        assert_eq!(d["differing_line"], line, "{how:?}: {detail}");
        let likely = d["likely_cause"].as_str().unwrap();
        assert!(likely.contains(cause), "{how:?}: {likely}");
        if how == Alteration::ReserializedBody {
            assert!(d["length_delta"].as_i64().unwrap() != 0, "{detail}");
        }
        assert!(
            !remote.detail.contains("13800000000"),
            "no personal data in the diagnosis"
        );
        let echo = &detail["sign_information"]["truncated_sign_message"];
        assert!(
            echo.as_str().unwrap().ends_with("bytes, not shown>"),
            "the echo is not repeated: {echo}"
        );
    }
    assert_eq!(s.emu.confirms_applied(), 0);
}

/// The same confirm with its members in another order (or other whitespace)
/// is the same request: its answer is replayed, not refused as a conflict.
#[test]
fn a_repeat_with_members_reordered_is_the_same_request() {
    let s = setup();
    let wp = wechat(&s);
    s.emu.add_user_card("478515832720", CARD_ID, OPENID, BRAND_ID);
    let first = wp.confirm(&confirm_input("478515832720")).unwrap();
    let original: Value = serde_json::from_slice(&confirm_input("478515832720")).unwrap();
    let mut members: Vec<(String, Value)> = original.as_object().unwrap().clone().into_iter().collect();
    members.reverse();
    let reordered = serde_json::to_vec_pretty(&Value::Object(members.into_iter().collect())).unwrap();
    assert_ne!(reordered, confirm_input("478515832720"));
    let again = wp.confirm(&reordered).unwrap();
    assert_eq!(again.json, first.json);
    assert_eq!(s.emu.confirms_applied(), 1);
    let mut changed = original.clone();
    changed["phone_number"] = "13900000000".into();
    let e = wp.confirm(changed.to_string().as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::IdempotencyConflict);
}

#[test]
fn a_confirm_refused_for_its_timestamp_carries_the_offset_from_the_platform_date() {
    let s = setup();
    let mut c = wechat_config(&s);
    // This host runs an hour ahead: the platform refuses the timestamp.
    c.clock = cardbridge::clock::Clock::offset(3_600_000);
    let wp = WechatPay::new(c, Some(Arc::new(MemoryStore::new()))).unwrap();
    s.emu.add_user_card("478515832667", CARD_ID, OPENID, "1004");
    let e = wp.confirm(&confirm_input("478515832667")).unwrap_err();
    let remote = e.remote().expect("the platform's refusal");
    assert_eq!(remote.code, "SIGN_ERROR");
    let detail: Value = serde_json::from_str(&remote.detail).unwrap();
    let d = &detail["cardbridge_diagnosis"];
    // Measured from the answer's Date header (second precision): about an hour behind us.
    let off = d["platform_clock_offset_ms"].as_i64().expect("an offset");
    assert!((-3_660_000..=-3_540_000).contains(&off), "{detail}");
    assert!(d["likely_cause"].as_str().unwrap().contains("NTP"), "{detail}");
    assert_eq!(s.emu.confirms_applied(), 0);
}

#[test]
fn an_answer_refused_for_skew_says_the_offset_measured_from_the_platform_date() {
    let s = setup();
    let mut c = wechat_config(&s);
    c.retry.max_attempts = 1;
    let wp = WechatPay::new(c, Some(Arc::new(MemoryStore::new()))).unwrap();
    s.emu.add_user_card("6007", CARD_ID, OPENID, "1004");
    // The answer's Wechatpay-Timestamp is ten minutes old while its Date is now:
    // the clocks agree, the answer itself is stale.
    s.emu.push_fault(WechatFault::StaleTimestamp);
    let e = wp
        .get_user_card(
            json!({"user_card_code": "6007", "brand_id": "1004", "card_id": CARD_ID, "openid": OPENID})
                .to_string()
                .as_bytes(),
        )
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("clock_skew"), "{text}");
    let at = text.find("the platform's clock is ").expect("the measured offset") + 24;
    let off: i64 = text[at..].split(' ').next().unwrap().parse().unwrap();
    assert!((-2_000..=2_000).contains(&off), "{text}");
    assert!(text.contains("its Date header"), "{text}");
}
