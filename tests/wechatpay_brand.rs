//! The WeChat Pay brand member-card family against the loopback emulator:
//! card templates, user-card list / invalidate / import, feeds, the
//! points-for-coupon answer and membership activities — each call, its
//! validation, its replay, and one ambiguous outcome per mutating kind (the
//! answer lost after the platform applied it: never applied twice).

mod common;

use crate::common::emulator::WechatFault;
use cardbridge::ErrorKind;
use cardbridge::wechatpay::WechatPay;
use cardbridge::wechatpay::model::{FeedContentMember, TemplateRemoval};
use common::wechat::*;
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;

const BRAND: &str = BRAND_ID;
const BASE: &str = "/v3/brand/partner/card-member";

fn bytes(v: Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn template_input(out: &str) -> Value {
    json!({"out_request_no": out, "brand_id": BRAND, "appid": "wxea9c30890f48d5ae", "card_type": "NORMAL",
           "card_title": "测试卡", "card_color": "#FFFF00",
           "card_picture_url": "https://wxpaylogo.qpic.cn/wxpaylogo/xxxxx/0",
           "code_mode": "SYSTEM_ALLOCATE", "code_type": "QR_CODE", "benefits": "会员折扣",
           "notify_url": "https://merchant.example/wechat/card-events",
           "need_pinned": true, "init_level": "白银会员",
           "valid_date_information": {"type": "PERMANENT"},
           "points_information": {"jump_appid": "wxea9c30a90fs8d3fe", "jump_path": "/pages/points"},
           "purchase_information": {"price": 100},
           "user_information": {"common_field_list": ["USER_FORM_FLAG_SEX"],
               "custom_field_list": [{"type": "CHECK_BOX", "name": "喜欢的运动", "values": ["篮球"]}]}})
}

fn activity_input(out: &str, card_id: &str) -> Value {
    json!({"out_request_no": out, "brand_id": BRAND, "card_id": card_id,
           "activity_channel": "MECHANT_APP_COMPONENT", "title": "入会享券", "sub_title": "5张满减券",
           "begin_time": "2030-01-20T13:29:35.120+08:00", "end_time": "2030-01-29T13:29:35.120+08:00",
           "apply_total": 1000,
           "product_coupon_stock_list": [{"product_coupon_id": "701138812971763025610907319729", "stock_id": "98065001"}]})
}

fn import_input(code: &str, card_id: &str) -> Value {
    json!({"brand_id": BRAND, "card_id": card_id, "openid": OPENID, "user_card_code": code,
           "phone_number": "13800000000",
           "user_information": {"common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": "Li Lei"}]},
           "valid_date_information": {"type": "PERMANENT"},
           "pickup_time": "2024-05-20T13:29:35+08:00"})
}

fn count(s: &Setup, what: &str) -> usize {
    s.emu.brand_state()[what].as_array().map_or(0, Vec::len)
}

fn create_template(s: &Setup, wp: &WechatPay, out: &str) -> String {
    let t = wp.create_card_template(&bytes(template_input(out))).unwrap();
    let _ = s;
    t.json["card_id"].as_str().unwrap().to_string()
}

#[test]
fn the_whole_brand_lifecycle() {
    let s = setup();
    let wp = wechat(&s);

    // A template with the notify_url that receives the card events.
    let created = wp.create_card_template(&bytes(template_input("T-1"))).unwrap();
    let card_id = created.json["card_id"].as_str().unwrap().to_string();
    assert_eq!(
        created.json["notify_url"],
        "https://merchant.example/wechat/card-events"
    );
    assert_eq!(created.json["state"], "CARD_EFFECTIVE");
    let sent: Value = serde_json::from_slice(&s.emu.last_request().unwrap().body).unwrap();
    assert_eq!(
        sent["out_request_no"], "T-1",
        "out_request_no goes on the wire by default"
    );

    let list = wp
        .list_card_templates(&bytes(json!({"brand_id": BRAND, "limit": 20, "offset": 0})))
        .unwrap();
    assert_eq!(list.json["total_count"], 1);
    assert_eq!(list.json["data"][0]["card_id"], card_id.as_str());
    let got = wp
        .get_card_template(&bytes(json!({"brand_id": BRAND, "card_id": card_id})))
        .unwrap();
    assert_eq!(got.json["card_title"], "测试卡");
    let updated = wp
        .update_card_template(&bytes(
            json!({"brand_id": BRAND, "card_id": card_id, "card_title": "金卡"}),
        ))
        .unwrap();
    assert_eq!(updated.json["card_title"], "金卡");

    // An existing member is imported; its card lists with cleartext fields.
    let imported = wp.import_user_card(&bytes(import_input("IMP-1", &card_id))).unwrap();
    assert_eq!(imported.json["user_card_state"], "EFFECTIVE");
    assert_eq!(imported.json["phone_number"], "13800000000", "decrypted for the host");
    let req = s.emu.last_request().unwrap();
    let sent: Value = serde_json::from_slice(&req.body).unwrap();
    assert_ne!(sent["phone_number"], "13800000000", "encrypted on the wire");
    assert!(sent.get("date_information").is_some() && sent.get("valid_date_information").is_none());
    assert!(
        req.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("Wechatpay-Serial") && v == PUB_KEY_ID)
    );
    assert_eq!(
        s.emu.user_card("IMP-1").unwrap()["user_information"]["common_field_list"][0]["value"],
        "Li Lei"
    );

    let cards = wp
        .list_user_cards(&bytes(json!({"brand_id": BRAND, "openid": OPENID})))
        .unwrap();
    assert_eq!(cards.json["total_count"], 1);
    assert_eq!(cards.json["data"][0]["phone_number"], "13800000000");
    assert!(cards.undecryptable.is_empty());

    // Points, a feed, and the answer to a points-for-coupon exchange.
    wp.sync_user_points(&bytes(
        json!({"out_request_no": "P-1", "brand_id": BRAND, "card_id": card_id,
        "openid": OPENID, "user_card_code": "IMP-1", "point_balance": 1200}),
    ))
    .unwrap();
    let feed = wp
        .create_user_feed(&bytes(
            json!({"brand_id": BRAND, "card_id": card_id, "user_card_code": "IMP-1",
            "openid": OPENID, "out_request_no": "F-1", "cell_message": "15_1200_1"}),
        ))
        .unwrap();
    assert_eq!(feed.json["cell"], "15_1200_1", "sent as `cell` by default");
    let event = crate::common::emulator::sample_point_exchange_coupon("IMP-1", &card_id, OPENID, "REC-1");
    let confirm = cardbridge::wechatpay::feeds::exchange_confirm_from_event(&event, true, Some("C-42"), None);
    let answer = wp.confirm_exchange_coupon(&bytes(confirm)).unwrap();
    assert_eq!(answer.json["state"], "POINT_EXCHANGE_COUPON_SUCCESS");
    assert_eq!(count(&s, "exchanges"), 1);

    // A membership activity through its life.
    let act = wp
        .create_membership_activity(&bytes(activity_input("A-1", &card_id)))
        .unwrap();
    let activity_id = act.json["activity_id"].as_str().unwrap().to_string();
    assert_eq!(act.json["activity_state"], "MEMBERSHIP_ACTIVITY_CREATED");
    let acts = wp
        .list_membership_activities(&bytes(json!({"brand_id": BRAND, "card_id": card_id})))
        .unwrap();
    assert_eq!(acts.json["total_count"], 1);
    let patch = json!({"brand_id": BRAND, "activity_id": activity_id, "title": "新人礼", "sub_title": "3张券",
                       "begin_time": "2030-02-01T00:00:00+08:00", "end_time": "2030-02-10T00:00:00+08:00"});
    assert_eq!(
        wp.update_membership_activity(&bytes(patch)).unwrap().json["title"],
        "新人礼"
    );
    let got = wp
        .get_membership_activity(&bytes(json!({"brand_id": BRAND, "activity_id": activity_id})))
        .unwrap();
    assert_eq!(got.json["sub_title"], "3张券");
    let ended = wp
        .terminate_membership_activity(&bytes(json!({"brand_id": BRAND, "activity_id": activity_id})))
        .unwrap();
    assert_eq!(ended.json["activity_state"], "MEMBERSHIP_ACTIVITY_TERMINATED");

    // Component tokens for the member: fresh each time, never stored.
    let who = json!({"brand_id": BRAND, "card_id": card_id, "openid": OPENID});
    let t1 = wp.create_pre_auth_token(&bytes(who.clone())).unwrap();
    let t2 = wp.create_pre_auth_token(&bytes(who.clone())).unwrap();
    assert!(t1.json["token"].is_string() && t1.json["expire_time"].is_string());
    assert_ne!(t1.json["token"], t2.json["token"], "a fresh token per call");
    let pay = wp.create_pay_view_token(&bytes(who)).unwrap();
    assert!(pay.json["token"].is_string());
    assert_eq!(s.emu.last_request().unwrap().target, format!("{BASE}/pay-view-tokens"));

    // The member leaves; the template is retired.
    let gone = wp
        .invalidate_user_card(&bytes(
            json!({"user_card_code": "IMP-1", "card_id": card_id, "brand_id": BRAND,
            "openid": OPENID, "invalid_reason": "member left"}),
        ))
        .unwrap();
    assert_eq!(gone.json["user_card_state"], "INVALID");
    assert_eq!(s.emu.user_card("IMP-1").unwrap()["invalid_reason"], "member left");
    let removed = wp
        .remove_card_template(&bytes(json!({"brand_id": BRAND, "card_id": card_id})))
        .unwrap();
    assert_eq!(removed.json["state"], "CARD_INVALID");
    assert_eq!(s.emu.last_request().unwrap().method, "POST", "invalidate by default");
    assert!(s.emu.last_request().unwrap().target.ends_with("/invalidate"));
}

/// Drops the next answer after the emulator applied the request, runs `call`
/// and returns the methods the emulator saw for it.
fn lost_answer(s: &Setup, call: impl FnOnce() -> cardbridge::Result<cardbridge::wechatpay::ApiAnswer>) -> Value {
    let before = s.emu.hits(BASE);
    s.emu.push_fault(WechatFault::DropAfterProcessing);
    let answer = call().unwrap();
    assert!(
        s.emu.hits(BASE) > before + 1,
        "a second exchange followed the lost answer"
    );
    answer.json
}

#[test]
fn lost_answers_of_keyed_creates_are_resent_and_applied_once() {
    let s = setup();
    let wp = wechat(&s);
    let t = lost_answer(&s, || wp.create_card_template(&bytes(template_input("T-LOST"))));
    assert_eq!(
        count(&s, "templates"),
        1,
        "re-sent with the same out_request_no: one template"
    );
    let card_id = t["card_id"].as_str().unwrap().to_string();

    s.emu.add_user_card("U-1", &card_id, OPENID, BRAND);
    lost_answer(&s, || {
        wp.create_user_feed(&bytes(
            json!({"brand_id": BRAND, "card_id": card_id, "user_card_code": "U-1",
            "openid": OPENID, "out_request_no": "F-LOST", "cell": "hello"}),
        ))
    });
    assert_eq!(count(&s, "feeds"), 1);

    let event = crate::common::emulator::sample_point_exchange_coupon("U-1", &card_id, OPENID, "REC-LOST");
    let confirm = cardbridge::wechatpay::feeds::exchange_confirm_from_event(&event, false, None, Some("积分不足"));
    lost_answer(&s, || wp.confirm_exchange_coupon(&bytes(confirm)));
    assert_eq!(count(&s, "exchanges"), 1);

    lost_answer(&s, || {
        wp.create_membership_activity(&bytes(activity_input("A-LOST", &card_id)))
    });
    assert_eq!(count(&s, "activities"), 1);
}

#[test]
fn lost_answers_of_read_back_kinds_are_read_back_not_resent() {
    let s = setup();
    let wp = wechat(&s);
    let card_id = create_template(&s, &wp, "T-RB");
    let read_back_only = |s: &Setup| {
        let last = s.emu.last_request().unwrap();
        assert_eq!(
            last.method, "GET",
            "the lost answer was followed by a read-back, no re-send"
        );
    };

    let t = lost_answer(&s, || {
        wp.update_card_template(&bytes(
            json!({"brand_id": BRAND, "card_id": card_id, "benefits": "双倍积分"}),
        ))
    });
    assert_eq!(t["benefits"], "双倍积分");
    read_back_only(&s);

    let imported = lost_answer(&s, || wp.import_user_card(&bytes(import_input("IMP-RB", &card_id))));
    assert_eq!(imported["phone_number"], "13800000000");
    read_back_only(&s);

    let gone = lost_answer(&s, || {
        wp.invalidate_user_card(&bytes(
            json!({"user_card_code": "IMP-RB", "card_id": card_id, "brand_id": BRAND,
            "openid": OPENID, "invalid_reason": "left"}),
        ))
    });
    assert_eq!(gone["user_card_state"], "INVALID");
    read_back_only(&s);

    let act = wp
        .create_membership_activity(&bytes(activity_input("A-RB", &card_id)))
        .unwrap();
    let id = act.json["activity_id"].as_str().unwrap().to_string();
    let patched = lost_answer(&s, || {
        wp.update_membership_activity(&bytes(json!({"brand_id": BRAND, "activity_id": id, "title": "t2",
            "sub_title": "s2", "begin_time": "2030-03-01T00:00:00+08:00", "end_time": "2030-03-02T00:00:00+08:00"})))
    });
    assert_eq!(patched["title"], "t2");
    read_back_only(&s);
    let ended = lost_answer(&s, || {
        wp.terminate_membership_activity(&bytes(json!({"brand_id": BRAND, "activity_id": id})))
    });
    assert_eq!(ended["activity_state"], "MEMBERSHIP_ACTIVITY_TERMINATED");
    read_back_only(&s);

    let removed = lost_answer(&s, || {
        wp.remove_card_template(&bytes(json!({"brand_id": BRAND, "card_id": card_id})))
    });
    assert_eq!(removed["state"], "CARD_INVALID");
    read_back_only(&s);
}

#[test]
fn removal_by_delete_and_feed_as_cell_message_are_configurable() {
    let s = setup();
    let wp = wechat_with(&s, |c| {
        c.wire.card_template_removal = TemplateRemoval::Delete;
        c.wire.user_feed_content = FeedContentMember::CellMessage;
        c.wire.card_template_out_request_no = false;
    });
    let card_id = create_template(&s, &wp, "T-DEL");
    let sent: Value = serde_json::from_slice(&s.emu.last_request().unwrap().body).unwrap();
    assert!(sent.get("out_request_no").is_none());
    s.emu.add_user_card("U-9", &card_id, OPENID, BRAND);
    let feed = wp
        .create_user_feed(&bytes(
            json!({"brand_id": BRAND, "card_id": card_id, "user_card_code": "U-9",
            "openid": OPENID, "out_request_no": "F-9", "cell": "x"}),
        ))
        .unwrap();
    assert_eq!(feed.json["cell_message"], "x");
    assert!(feed.json.get("cell").is_none());
    let removed = lost_answer(&s, || {
        wp.remove_card_template(&bytes(json!({"brand_id": BRAND, "card_id": card_id})))
    });
    assert_eq!(removed["state"], "CARD_INVALID");
    assert_eq!(
        s.emu.hits(&format!("{BASE}/cards/{card_id}")),
        2,
        "DELETE (lost), then the read-back"
    );
    assert_eq!(s.emu.last_request().unwrap().method, "GET");
}

#[test]
fn the_same_key_replays_and_other_content_under_it_is_refused() {
    let s = setup();
    let wp = wechat(&s);
    let first = wp.create_card_template(&bytes(template_input("T-REP"))).unwrap();
    let hits = s.emu.hits(BASE);
    let again = wp.create_card_template(&bytes(template_input("T-REP"))).unwrap();
    assert_eq!(again.json, first.json);
    assert_eq!(s.emu.hits(BASE), hits, "replayed from the outbox, nothing sent");
    let mut other = template_input("T-REP");
    other["card_title"] = json!("另一张卡");
    let e = wp.create_card_template(&bytes(other)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::IdempotencyConflict);
    assert_eq!(e.field(), Some("createCardTemplate.out_request_no"));
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let s = setup();
    let wp = wechat(&s);
    let hits = s.emu.hits("/");
    let field = |r: cardbridge::Result<cardbridge::wechatpay::ApiAnswer>| {
        let e = r.unwrap_err();
        assert!(!e.to_string().contains("13800000000"), "no value echoed");
        e.field().unwrap_or_default().to_string()
    };
    let mut t = template_input("T-BAD");
    t["notify_url"] = json!("https://merchant.example/cb?x=1");
    assert_eq!(
        field(wp.create_card_template(&bytes(t))),
        "createCardTemplate.notify_url"
    );
    assert_eq!(
        field(wp.list_card_templates(&bytes(json!({"brand_id": BRAND, "limit": 21})))),
        "listCardTemplates.limit"
    );
    assert_eq!(
        field(wp.list_card_templates(&bytes(json!({"brand_id": BRAND, "limit": 0})))),
        "listCardTemplates.limit"
    );
    assert_eq!(
        field(
            wp.invalidate_user_card(&bytes(json!({"user_card_code": "1", "card_id": "c", "brand_id": BRAND,
            "openid": OPENID, "invalid_reason": ""})))
        ),
        "invalidateUserCard.invalid_reason"
    );
    let mut imp = import_input("IMP-X", "c");
    imp["user_card_code"] = json!("x".repeat(33));
    assert_eq!(field(wp.import_user_card(&bytes(imp))), "importUserCard.user_card_code");
    let mut act = activity_input("A-X", "c");
    act["end_time"] = json!("2030-01-01T00:00:00+08:00");
    assert_eq!(
        field(wp.create_membership_activity(&bytes(act))),
        "createMembershipActivity.end_time"
    );
    assert_eq!(s.emu.hits("/"), hits, "nothing reached the platform");

    let e = wp
        .import_user_card_by_phone(&bytes(import_input("IMP-P", "c")))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("not live"), "{e}");
}

#[test]
fn an_interrupted_create_is_resumed_after_a_restart_and_applied_once() {
    let s = setup();
    let db = temp_db("brand-resume");
    let open = || {
        WechatPay::new(
            wechat_config(&s),
            Some(Arc::new(cardbridge::store::SqliteStore::open(&db).unwrap())),
        )
        .unwrap()
    };
    let first = open();
    for _ in 0..4 {
        s.emu.push_fault(WechatFault::Status {
            status: 500,
            code: "SYSTEM_ERROR".into(),
            message: "系统错误".into(),
        });
    }
    let e = first.create_card_template(&bytes(template_input("T-RES"))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RemoteUnknown, "{e}");
    assert_eq!(count(&s, "templates"), 0);
    drop(first);

    let again = open();
    let report = again.resume_pending().unwrap();
    assert_eq!(report.len(), 1, "the pending create, whatever its kind");
    let answer = report[0].1.as_ref().unwrap();
    assert_eq!(answer.json["out_request_no"], "T-RES");
    assert_eq!(count(&s, "templates"), 1);
    // The host's own retry now gets the stored answer.
    let hits = s.emu.hits(BASE);
    let replay = again.create_card_template(&bytes(template_input("T-RES"))).unwrap();
    assert_eq!(replay.json["card_id"], answer.json["card_id"]);
    assert_eq!(s.emu.hits(BASE), hits);
    std::fs::remove_file(&db).ok();
}

#[test]
fn the_brand_state_survives_an_emulator_restart() {
    let s = setup();
    let wp = wechat(&s);
    let card_id = create_template(&s, &wp, "T-STATE");
    let state = s.emu.handler().export_state();
    let s2 = setup();
    s2.emu.handler().import_state(&state).unwrap();
    let wp2 = wechat(&s2);
    let got = wp2
        .get_card_template(&bytes(json!({"brand_id": BRAND, "card_id": card_id})))
        .unwrap();
    assert_eq!(got.json["out_request_no"], "T-STATE");
    // The same out_request_no after the restart still names the same template.
    let again = wp2.create_card_template(&bytes(template_input("T-STATE"))).unwrap();
    assert_eq!(again.json["card_id"], card_id.as_str());
    assert_eq!(count(&s2, "templates"), 1);
    let mut broken = state.clone();
    broken["brand"]["feeds"] = json!([["only-one"]]);
    let e = s2.emu.handler().import_state(&broken).unwrap_err();
    assert_eq!(e.field(), Some("state.brand"));
}

#[test]
fn answers_read_into_typed_views_keeping_unknown_members_and_values() {
    use cardbridge::wechatpay::answers::*;
    let s = setup();
    let wp = wechat(&s);
    let created = wp.create_card_template(&bytes(template_input("T-TYPED"))).unwrap();
    let t: CardTemplate = created.parse().unwrap();
    assert_eq!(
        (t.card_type, t.state),
        (CardType::Normal, Some(TemplateState::Effective))
    );
    assert_eq!(t.extra["card_title"], "测试卡", "members without a field are kept");
    wp.import_user_card(&bytes(import_input("TYPED-1", &t.card_id)))
        .unwrap();
    let page: Page<UserCard> = wp
        .list_user_cards(&bytes(json!({"brand_id": BRAND, "openid": OPENID})))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(page.total_count, 1);
    assert_eq!(page.data[0].user_card_state, UserCardState::Effective);
    assert_eq!(page.data[0].extra["phone_number"], "13800000000");
    assert!(
        !format!("{:?}", page.data[0]).contains("13800000000"),
        "Debug leaves personal data out"
    );
    // An enum value this version does not know is kept verbatim and round-trips.
    let odd: UserCardState = serde_json::from_value(json!("FROZEN")).unwrap();
    assert_eq!(odd, UserCardState::Unknown("FROZEN".into()));
    assert_eq!(serde_json::to_value(&odd).unwrap(), "FROZEN");
    // A view the answer does not fit is a Protocol error, not a panic.
    let e = created.parse::<MembershipActivity>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
}

/// Updates have no platform key: each call is sent, so A, then B, then A
/// again leaves A (a content-keyed outbox would have replayed the first A).
#[test]
fn a_template_set_back_to_an_earlier_value_is_sent_again() {
    let s = setup();
    let wp = wechat(&s);
    let card_id = create_template(&s, &wp, "T-ABA");
    for title in ["金卡", "银卡", "金卡"] {
        let before = s.emu.hits(BASE);
        let answer = wp
            .update_card_template(&bytes(
                json!({"brand_id": BRAND, "card_id": card_id, "card_title": title}),
            ))
            .unwrap();
        assert_eq!(answer.json["card_title"], title);
        assert_eq!(s.emu.hits(BASE), before + 1, "{title}: sent");
    }
    let got = wp
        .get_card_template(&bytes(json!({"brand_id": BRAND, "card_id": card_id})))
        .unwrap();
    assert_eq!(got.json["card_title"], "金卡");
    assert_eq!(wp.metrics()["pending_entries"], 0);
}

/// A points sync is recorded under (brand_id, out_request_no): a repeat is
/// answered from the outbox without a send; other content under the same
/// key is a conflict naming the field.
#[test]
fn a_points_sync_is_replayed_by_its_out_request_no() {
    let s = setup();
    let wp = wechat(&s);
    s.emu.add_user_card("P-1", CARD_ID, OPENID, BRAND);
    let sync = |balance: i64| {
        bytes(
            json!({"out_request_no": "SYNC-1", "brand_id": BRAND, "card_id": CARD_ID, "openid": OPENID,
                     "user_card_code": "P-1", "point_balance": balance}),
        )
    };
    let first = wp.sync_user_points(&sync(120)).unwrap();
    let hits = s.emu.hits(BASE);
    let again = wp.sync_user_points(&sync(120)).unwrap();
    assert_eq!(again.json, first.json);
    assert_eq!(s.emu.hits(BASE), hits, "answered from the outbox");
    let e = wp.sync_user_points(&sync(121)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::IdempotencyConflict);
    assert_eq!(e.field(), Some("syncUserPoints.out_request_no"));
}

#[test]
fn typed_inputs_take_the_same_path_and_outbox_key_as_json() {
    use cardbridge::wechatpay::inputs::*;
    let s = setup();
    let wp = wechat(&s);
    let typed: CreateCardTemplateInput = serde_json::from_value(template_input("T-TYPED")).unwrap();
    let created = wp.call_typed(&typed).unwrap();
    let card_id = created.json["card_id"].as_str().unwrap().to_string();
    // The JSON form of the same create replays the typed one's entry: one key, one template.
    let hits = s.emu.hits(BASE);
    let again = wp.create_card_template(&bytes(template_input("T-TYPED"))).unwrap();
    assert_eq!(again.json, created.json);
    assert_eq!(s.emu.hits(BASE), hits, "replayed from the outbox, nothing sent");

    let got = wp
        .call_typed(&GetCardTemplateInput(CardTemplateRef::new(BRAND, &card_id)))
        .unwrap();
    assert_eq!(got.json["card_id"], json!(card_id));
    let mut list = ListCardTemplatesInput::new(BRAND);
    list.state = Some(TemplateState::Effective);
    assert!(wp.call_typed(&list).unwrap().json["data"].is_array());

    let activity: CreateMembershipActivityInput = serde_json::from_value(activity_input("A-TYPED", &card_id)).unwrap();
    let a = wp.call_typed(&activity).unwrap();
    assert!(a.json["activity_id"].is_string());

    // Refused before anything is sent, naming the field.
    let hits = s.emu.hits(BASE);
    let mut bad = typed;
    bad.out_request_no = "T-BAD".into();
    bad.card_color = "yellow".into();
    let e = wp.call_typed(&bad).unwrap_err();
    assert_eq!(e.field(), Some("createCardTemplate.card_color"));
    assert_eq!(s.emu.hits(BASE), hits);
}
