//! The whole Alipay+ membership flow against the bundled loopback emulator,
//! with the embedded SQLite store — what a POS/CRM integration does, end to end.
//!
//! Run: `cargo run --example demo [-- --db PATH]`
//!
//! 1. The platform notifies a registration; we verify, validate, let the "CRM"
//!    decide, and answer (signed). A duplicate gets the byte-identical answer;
//!    a forged one is refused before the CRM sees it.
//! 2. We issue the card back (the emulator first answers `U`, so the client
//!    retries with the same requestId and bytes).
//! 3. The platform inquires the card, updates it and asks for the member's assets.
//! 4. A crash mid-issueCard: the pending request is resumed after "restart".
//! 5. WeChat Pay: a card template is created with its `notify_url`; a
//!    card-opening callback is verified, decrypted and handled once; a
//!    signature probe is refused; the card is confirmed (sensitive fields
//!    encrypted by the library) and a repeat never reaches WeChat.
//! 6. The rest of the brand family: points sync, a member feed, a
//!    `POINT_EXCHANGE_COUPON` event answered with `exchange-coupon/confirm`, a
//!    coupon activity created and terminated, the member leaving (card
//!    invalidated; its lost answer read back, not re-sent), the template retired.

/// The platform emulators, compiled in from the `cardbridge` binary (the
/// library has none).
#[allow(dead_code, unused_imports)]
#[path = "../src/bin/cardbridge/emulator/mod.rs"]
mod emulator;

use crate::emulator::{
    AlipayPlatformEmulator, CallbackTamper, EmulatorConfig, Fault, PlatformDriver, Tamper, WechatEmulatorConfig,
    WechatPayEmulator, sample_registration, sample_user_card_create,
};
use cardbridge::alipayplus::model::{Amount, CardField, IssueCardRequest};
use cardbridge::alipayplus::{AlipayPlus, Begin, Config, InboundRequest};
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge::crypto::keys::PrivateKey;
use cardbridge::http::HttpRequest;
use cardbridge::store::{SqliteStore, Store};
use cardbridge::wechatpay::keyring::KeyRing;
use cardbridge::wechatpay::sign::RequestSigner;
use cardbridge::wechatpay::{CallbackBegin, WechatPay};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const CLIENT_ID: &str = "2022DEMO_CLIENT";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn now_iso() -> String {
    cardbridge::alipayplus::time::format_request_time(now_ms(), 8 * 60)
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        println!("  ok   {what}");
        Ok(())
    } else {
        Err(format!("FAILED: {what}"))
    }
}

fn result_status(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    format!(
        "{} {}",
        v.pointer("/result/resultStatus").and_then(Value::as_str).unwrap_or("?"),
        v.pointer("/result/resultCode").and_then(Value::as_str).unwrap_or("?")
    )
}

/// The merchant's CRM, reduced to what the demo needs.
#[derive(Default)]
struct Crm {
    members: HashMap<String, (String, u32)>, // customerId -> (level, points)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn open(db: &std::path::Path, config: &Config) -> Result<AlipayPlus, String> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).map_err(|e| e.to_string())?);
    AlipayPlus::new(config.clone(), Some(store)).map_err(|e| e.to_string())
}

fn run() -> Result<(), String> {
    let db = std::env::args()
        .skip_while(|a| a != "--db")
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("cardbridge-demo-{}.db", std::process::id())));
    let e = |e: cardbridge::Error| e.to_string();

    println!(
        "== setup: fresh RSA-2048 keys, emulator on loopback, store at {}",
        db.display()
    );
    let merchant_key = PrivateKey::generate_rsa2048().map_err(e)?;
    let platform_key = PrivateKey::generate_rsa2048().map_err(e)?;
    let emulator = AlipayPlatformEmulator::start(EmulatorConfig::new(
        platform_key.clone(),
        merchant_key.public_key(),
        CLIENT_ID,
    ))
    .map_err(e)?;
    let mut config = Config::new(CLIENT_ID, merchant_key.clone(), platform_key.public_key());
    config.base_url = Some(emulator.base_url());
    config.time_offset_minutes = 8 * 60;
    config.retry.base_delay = Duration::from_millis(50);
    config.transport.read_timeout = Duration::from_secs(2);
    let ap = open(&db, &config)?;
    let platform = PlatformDriver::new(platform_key, CLIENT_ID, "1");
    let mut crm = Crm::default();

    println!("== 1. platform -> merchant: notifyCardRegistration");
    let request_id = format!("DEMO{}", now_ms());
    let notify = platform
        .request(
            &PlatformDriver::target_for("notifyCardRegistration"),
            &sample_registration(&request_id),
            &now_iso(),
            Tamper::None,
        )
        .map_err(e)?;
    let registration = match ap.begin(&notify, now_ms()) {
        Begin::Decide(mut call) => {
            let InboundRequest::NotifyCardRegistration(reg) = call.request().clone() else {
                return Err("expected a registration".into());
            };
            println!(
                "  CRM creates member for customerId {} ({} fields received)",
                reg.customer_id,
                reg.registration_fields.len()
            );
            crm.members.insert(reg.customer_id.clone(), ("GOLD".into(), 120));
            let answer = ap
                .finish(&mut call, br#"{"extendInfo":"{\"memberId\":\"M-000123\"}"}"#, now_ms())
                .map_err(e)?;
            check(result_status(&answer.body) == "S SUCCESS", "answered S SUCCESS")?;
            check(
                PlatformDriver::verify_response(&merchant_key.public_key(), &notify, &answer),
                "answer signed with the merchant key",
            )?;
            let Begin::Respond(replay) = ap.begin(&notify, now_ms()) else {
                return Err("a duplicate reached the CRM".into());
            };
            check(
                replay.body == answer.body,
                "duplicate requestId answered byte-identically, CRM not called",
            )?;
            reg
        }
        Begin::Respond(r) => return Err(format!("refused: {}", result_status(&r.body))),
    };
    let forged = platform
        .request(
            &PlatformDriver::target_for("notifyCardRegistration"),
            &sample_registration("FORGED"),
            &now_iso(),
            Tamper::WrongKey,
        )
        .map_err(e)?;
    match ap.begin(&forged, now_ms()) {
        Begin::Respond(r) => check(
            result_status(&r.body) == "F ACCESS_DENIED",
            "forged notification refused (F ACCESS_DENIED)",
        )?,
        Begin::Decide(_) => return Err("a forged request reached the CRM".into()),
    }

    println!("== 2. merchant -> platform: issueCard (first answer U, retried)");
    let issue = IssueCardRequest::from_registration(
        &registration,
        "M-000123".into(),
        cardbridge::alipayplus::time::format_datetime(now_ms() / 1000, 8 * 60),
        vec![
            CardField::text("LEVEL", "GOLD"),
            CardField::text("POINT", "120"),
            CardField::balance(Amount::new(1500, "SGD")),
        ],
    );
    emulator.push_fault(Fault::Unknown);
    let card = ap.issue_card(&issue).map_err(e)?;
    println!("  cardNo {}", card.card_no);
    check(
        !card.card_no.is_empty() && card.signed && card.response.card_no.as_deref() == Some(card.card_no.as_str()),
        "card number taken from the verified, signed S answer",
    )?;
    check(
        emulator.hits_for(&request_id) == 2,
        "U answer retried once with the same requestId",
    )?;
    check(emulator.cards_issued() == 1, "platform issued exactly one card")?;

    println!("== 3. platform -> merchant: inquireCardDetail, updateCardDetail, inquireMemberAssets");
    let calls = [
        (
            "inquireCardDetail",
            json!({"appId": registration.app_id, "cardNo": card.card_no}),
        ),
        (
            "updateCardDetail",
            json!({"cardNo": card.card_no, "requestTime": now_iso(), "cardFields": [{"fieldCode": "USER_NAME", "fieldValue": "Jane"}]}),
        ),
        (
            "inquireMemberAssets",
            json!({"cardNo": card.card_no, "assetTypes": ["POINT", "BALANCE"]}),
        ),
    ];
    for (api, body) in calls {
        let body = serde_json::to_vec(&body).map_err(|x| x.to_string())?;
        let req: HttpRequest = platform
            .request(&PlatformDriver::target_for(api), &body, &now_iso(), Tamper::None)
            .map_err(e)?;
        let Begin::Decide(mut call) = ap.begin(&req, now_ms()) else {
            return Err(format!("{api} refused"));
        };
        let (level, points) = crm.members.get(&registration.customer_id).cloned().unwrap_or_default();
        let decision = match call.request() {
            InboundRequest::InquireCardDetail(_) => json!({"cardFields": [
                {"fieldCode": "LEVEL", "fieldValue": level},
                {"fieldCode": "POINT", "fieldValue": points.to_string()},
                {"fieldCode": "BALANCE", "fieldValue": {"value": 1500, "currency": "SGD"}}]}),
            InboundRequest::UpdateCardDetail(u) => {
                println!("  CRM applies {} changed field(s)", u.card_fields.len());
                json!({})
            }
            InboundRequest::InquireMemberAssets(_) => json!({"assetDetails": [
                {"assetType": "POINT", "assetValue": json!({"balance": points}).to_string()},
                {"assetType": "BALANCE", "assetValue": json!({"value": 1500, "currency": "SGD"}).to_string()}]}),
            InboundRequest::NotifyCardRegistration(_) => json!({}),
        };
        let answer = ap
            .finish(&mut call, decision.to_string().as_bytes(), now_ms())
            .map_err(e)?;
        check(
            result_status(&answer.body) == "S SUCCESS",
            &format!("{api} answered S SUCCESS"),
        )?;
    }

    println!("== 4. platform unreachable during issueCard; resumed after a restart");
    drop(ap);
    let mut impatient = config.clone();
    impatient.retry.max_attempts = 2;
    let mut second = issue.clone();
    second.request_id = format!("{request_id}B");
    emulator.push_fault(Fault::HttpStatus(503));
    emulator.push_fault(Fault::HttpStatus(503));
    let err = open(&db, &impatient)?
        .issue_card(&second)
        .map_err(|x| x.kind())
        .unwrap_err();
    check(
        err == cardbridge::ErrorKind::RemoteUnknown,
        "outcome unknown after retries: kept pending in the outbox",
    )?;
    // "restart": a new process opens the same store and resumes what is pending.
    let ap = open(&db, &config)?;
    let resumed = ap.resume_pending().map_err(e)?;
    check(
        resumed.len() == 1 && resumed[0].1.is_ok(),
        "pending issueCard resumed and completed after restart",
    )?;
    check(
        emulator.hits_for(&second.request_id) == 3,
        "same requestId on every attempt",
    )?;
    check(emulator.cards_issued() == 2, "still exactly one card per requestId")?;

    wechat_flow(&db, &merchant_key)?;

    println!("demo finished: every flow behaved as specified");
    if !std::env::args().any(|a| a == "--db") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    Ok(())
}

/// Section 5: the WeChat Pay card opening, sharing the same SQLite store file.
fn wechat_flow(db: &std::path::Path, merchant_key: &PrivateKey) -> Result<(), String> {
    let e = |e: cardbridge::Error| e.to_string();
    println!("== 5. WeChat Pay: card-opening callback, then confirm");
    const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
    let wechat_key = PrivateKey::generate_rsa2048().map_err(e)?;
    let api_v3 = ApiV3Key::new(b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb").map_err(e)?;
    let emulator = WechatPayEmulator::start(WechatEmulatorConfig {
        wechatpay_private_key: wechat_key.clone(),
        public_key_id: PUB_KEY_ID.into(),
        merchant_public_key: merchant_key.public_key(),
        mchid: "1900000001".into(),
        merchant_serial_no: "5F1C72E2A8931B72A2E13AF8DEE92471EB397115".into(),
        api_v3_key: api_v3.clone(),
        platform_certificate: None,
    })
    .map_err(e)?;
    let mut keys = KeyRing::new();
    keys.add_public_key(PUB_KEY_ID, wechat_key.public_key()).map_err(e)?;
    let signer = RequestSigner::new(
        "1900000001",
        "5F1C72E2A8931B72A2E13AF8DEE92471EB397115",
        merchant_key.clone(),
    )
    .map_err(e)?;
    let mut config = cardbridge::wechatpay::Config::new(signer, merchant_key.clone(), api_v3, keys);
    config.base_url = emulator.base_url();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).map_err(e)?);
    let wechat = WechatPay::new(config, Some(store)).map_err(e)?;
    let now = chrono::Utc::now().timestamp();

    let code = format!("{}", now_ms());
    // The brand's card template; its notify_url is where WeChat sends the card events.
    let template = json!({"out_request_no": format!("TPL-{code}"), "brand_id": "1004", "appid": "wxea9c30890f48d5ae",
        "card_type": "NORMAL", "card_title": "Gold", "card_color": "#FFD700",
        "card_picture_url": "https://wxpaylogo.qpic.cn/wxpaylogo/demo/0", "code_mode": "SYSTEM_ALLOCATE",
        "code_type": "QR_CODE", "benefits": "10% off", "notify_url": "https://merchant.example/wechat/card-events",
        "valid_date_information": {"type": "PERMANENT"}});
    let created = wechat
        .create_card_template(template.to_string().as_bytes())
        .map_err(e)?;
    let card_id_owned = created.json["card_id"].as_str().unwrap_or_default().to_string();
    check(
        !card_id_owned.is_empty() && created.json["notify_url"] == template["notify_url"],
        "card template created with its notify_url",
    )?;
    let (card_id, openid) = (card_id_owned.as_str(), "obLatjnx9gnqzS4myYGmLZ7LgLBA");
    emulator.add_user_card(&code, card_id, openid, "1004");
    let resource = sample_user_card_create(Some(&code), card_id, openid);
    let callback = emulator
        .callback(
            "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE",
            "user_card",
            &resource,
            now,
            CallbackTamper::None,
        )
        .map_err(e)?;
    let CallbackBegin::Handle(mut event) = wechat.callback_begin(&callback, now * 1000) else {
        return Err("the card-opening callback was refused".into());
    };
    // The emulator sealed `resource` (AES-GCM envelope, OAEP sensitive fields): what
    // the CRM sees must be exactly that cleartext, not merely "nothing failed".
    check(
        event.undecryptable.is_empty()
            && event.resource["phone_number"] == resource["phone_number"]
            && event.resource["phone_number"] == "13800000000",
        "callback verified; phone number decrypted to the one the emulator sealed",
    )?;
    check(
        event.resource == resource,
        "whole card resource decrypted as sealed (user information included)",
    )?;
    check(
        !String::from_utf8_lossy(&callback.body).contains("13800000000"),
        "phone number was not in cleartext on the wire",
    )?;
    let answer = wechat.callback_finish(&mut event, true, "", now * 1000).map_err(e)?;
    check(
        answer.status == 200 && answer.body == br#"{"code":"SUCCESS","message":"OK"}"#,
        "callback acknowledged (200 SUCCESS)",
    )?;
    check(
        matches!(wechat.callback_begin(&callback, now * 1000), CallbackBegin::Respond(r) if r.status == 200),
        "duplicate callback acknowledged without reaching the CRM",
    )?;
    let probe = emulator
        .callback(
            "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE",
            "user_card",
            &resource,
            now,
            CallbackTamper::SignTestProbe,
        )
        .map_err(e)?;
    check(
        matches!(wechat.callback_begin(&probe, now * 1000), CallbackBegin::Respond(r) if r.status == 401),
        "WECHATPAY/SIGNTEST/ probe refused (401)",
    )?;

    let confirm = json!({"user_card_code": code, "card_id": card_id, "brand_id": "1004", "openid": openid,
                         "phone_number": "13800000000", "level": "GOLD",
                         "user_card_confirm_state": "CREATE_CARD_SUCCESS"})
    .to_string();
    emulator.push_fault(crate::emulator::WechatFault::Status {
        status: 500,
        code: "SYSTEM_ERROR".into(),
        message: "busy".into(),
    });
    let confirmed = wechat.confirm(confirm.as_bytes()).map_err(e)?;
    check(
        confirmed.json["user_card_state"] == "EFFECTIVE"
            && emulator.confirm_hits(&code) == 2
            && emulator.confirms_applied() == 1,
        "card confirmed after one 500 retry: EFFECTIVE",
    )?;
    check(
        confirmed.json["phone_number"] == "13800000000",
        "answer's encrypted phone number decrypted",
    )?;
    wechat.confirm(confirm.as_bytes()).map_err(e)?;
    check(
        emulator.confirms_applied() == 1 && emulator.confirm_hits(&code) == 2,
        "repeat answered from the outbox, not sent",
    )?;
    brand_lifecycle(&wechat, &emulator, &code, card_id, openid, now)
}

/// The rest of the brand family on the opened card: points, a feed, a
/// points-for-coupon exchange confirmed from its event, a coupon activity,
/// the member leaving, the template retired.
fn brand_lifecycle(
    wechat: &WechatPay,
    emulator: &WechatPayEmulator,
    code: &str,
    card_id: &str,
    openid: &str,
    now: i64,
) -> Result<(), String> {
    let e = |e: cardbridge::Error| e.to_string();
    let call = |f: fn(&WechatPay, &[u8]) -> cardbridge::Result<cardbridge::wechatpay::ApiAnswer>, v: Value| {
        f(wechat, v.to_string().as_bytes()).map_err(|x| x.to_string())
    };
    println!("== 6. WeChat Pay: points, feed, coupon exchange, activity, member leaves");
    let card = json!({"brand_id": "1004", "card_id": card_id, "openid": openid, "user_card_code": code});
    let with = |extra: Value| {
        let mut v = card.clone();
        if let (Some(m), Value::Object(x)) = (v.as_object_mut(), extra) {
            m.extend(x);
        }
        v
    };
    call(
        WechatPay::sync_user_points,
        with(json!({"out_request_no": format!("P-{code}"), "point_balance": 1200})),
    )?;
    check(emulator.point_balance(code) == Some(1200), "points synced (1200)")?;
    let feed = call(
        WechatPay::create_user_feed,
        with(json!({"out_request_no": format!("F-{code}"), "cell": "15_1200_1"})),
    )?;
    check(feed.status == 200, "member feed posted")?;

    let resource = crate::emulator::sample_point_exchange_coupon(code, card_id, openid, &format!("REC-{code}"));
    let exchange = emulator
        .callback(
            "BRAND_MEMBER_CARD_SP.POINT_EXCHANGE_COUPON",
            "point_coupon",
            &resource,
            now,
            CallbackTamper::None,
        )
        .map_err(e)?;
    let CallbackBegin::Handle(mut event) = wechat.callback_begin(&exchange, now * 1000) else {
        return Err("the exchange callback was refused".into());
    };
    // The handler: grant the coupon, confirm the exchange, acknowledge the event.
    let confirm =
        cardbridge::wechatpay::feeds::exchange_confirm_from_event(&event.resource, true, Some("COUPON-1"), None);
    let confirmed = call(WechatPay::confirm_exchange_coupon, confirm)?;
    wechat.callback_finish(&mut event, true, "", now * 1000).map_err(e)?;
    check(
        confirmed.json["state"] == "POINT_EXCHANGE_COUPON_SUCCESS",
        "POINT_EXCHANGE_COUPON event confirmed (exchange-coupon/confirm)",
    )?;

    let activity = call(
        WechatPay::create_membership_activity,
        json!({"out_request_no": format!("A-{code}"), "brand_id": "1004", "card_id": card_id,
               "activity_channel": "MECHANT_APP_COMPONENT", "title": "Welcome coupons", "sub_title": "5 coupons",
               "begin_time": "2030-01-20T00:00:00+08:00", "end_time": "2030-01-29T00:00:00+08:00", "apply_total": 100,
               "product_coupon_stock_list": [{"product_coupon_id": "7011", "stock_id": "9806"}]}),
    )?;
    let ended = call(
        WechatPay::terminate_membership_activity,
        json!({"brand_id": "1004", "activity_id": activity.json["activity_id"]}),
    )?;
    check(
        ended.json["activity_state"] == "MEMBERSHIP_ACTIVITY_TERMINATED",
        "coupon activity created and terminated",
    )?;

    emulator.push_fault(crate::emulator::WechatFault::DropAfterProcessing);
    let gone = call(
        WechatPay::invalidate_user_card,
        with(json!({"invalid_reason": "member left"})),
    )?;
    check(
        gone.json["user_card_state"] == "INVALID" && emulator.last_request().is_some_and(|r| r.method == "GET"),
        "member left: card invalidated (answer lost, read back, not sent twice)",
    )?;
    let removed = call(
        WechatPay::remove_card_template,
        json!({"brand_id": "1004", "card_id": card_id}),
    )?;
    check(removed.json["state"] == "CARD_INVALID", "card template invalidated")?;
    Ok(())
}
