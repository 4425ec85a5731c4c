//! Typed WeChat Pay inputs (`cardbridge::wechatpay::inputs`) and the typed
//! user card: JSON round trips keep unknown members and enum values, the
//! typed form goes through the same validation as the JSON form, and `Debug`
//! leaves personal data out.

use cardbridge::ErrorKind;
use cardbridge::wechatpay::answers::{UserCard, UserCardState};
use cardbridge::wechatpay::inputs::{ConfirmInput, ConfirmState, PointsSyncInput};
use cardbridge::wechatpay::model::WireOptions;
use cardbridge::wechatpay::operations::prepare_json;
use serde_json::{Value, json};

const PHONE: &str = "13800000000";

fn confirm_json() -> Value {
    json!({
        "user_card_code": "478515832665", "card_id": "pbLatjvWOibDc5-TBnbUk1pD12o0", "brand_id": "1004",
        "openid": "obLatjnx9gnqzS4myYGmLZ7LgLBA", "user_card_confirm_state": "CREATE_CARD_SUCCESS",
        "phone_number": PHONE,
        "user_information": {"common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": "Li Lei"}]},
        "card_color": "#FFD700", "future_member": {"kept": [1, 2]}
    })
}

#[test]
fn confirm_input_round_trips_and_keeps_unknown_members() {
    let input: ConfirmInput = serde_json::from_value(confirm_json()).unwrap();
    assert_eq!(input.user_card_confirm_state, ConfirmState::CreateCardSuccess);
    assert_eq!(input.phone_number.as_deref(), Some(PHONE));
    assert_eq!(input.extra["future_member"], json!({"kept": [1, 2]}));
    let back: Value = serde_json::from_slice(&input.to_json().unwrap()).unwrap();
    assert_eq!(back, confirm_json());

    // An unknown state is kept verbatim, and refused by validation naming the field.
    let mut odd = confirm_json();
    odd["user_card_confirm_state"] = json!("CREATE_CARD_LATER");
    let input: ConfirmInput = serde_json::from_value(odd.clone()).unwrap();
    assert_eq!(
        input.user_card_confirm_state,
        ConfirmState::Unknown("CREATE_CARD_LATER".into())
    );
    assert_eq!(serde_json::to_value(&input).unwrap(), odd);
    let e = prepare_json("confirm", &input.to_json().unwrap(), WireOptions::default()).unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::Validation, Some("confirm.user_card_confirm_state"))
    );
}

#[test]
fn typed_and_plain_confirm_build_the_same_request() {
    let mut typed = ConfirmInput::new(
        "478515832665",
        "pbLatjvWOibDc5-TBnbUk1pD12o0",
        "1004",
        "obLatjnx9gnqzS4myYGmLZ7LgLBA",
        ConfirmState::CreateCardSuccess,
    );
    typed.phone_number = Some(PHONE.into());
    let plain = json!({"user_card_code": "478515832665", "card_id": "pbLatjvWOibDc5-TBnbUk1pD12o0",
                       "brand_id": "1004", "openid": "obLatjnx9gnqzS4myYGmLZ7LgLBA",
                       "user_card_confirm_state": "CREATE_CARD_SUCCESS", "phone_number": PHONE});
    let a = prepare_json("confirm", &typed.to_json().unwrap(), WireOptions::default()).unwrap();
    let b = prepare_json("confirm", plain.to_string().as_bytes(), WireOptions::default()).unwrap();
    assert_eq!(a, b);
    // Just outside a limit: the typed form is refused like the plain one.
    typed.card_id = "c".repeat(33);
    let e = prepare_json("confirm", &typed.to_json().unwrap(), WireOptions::default()).unwrap_err();
    assert_eq!((e.field(), e.limit()), (Some("confirm.card_id"), Some("32")));
    let shown = format!("{typed:?}");
    assert!(!shown.contains(PHONE) && shown.contains("<redacted>"), "{shown}");
}

#[test]
fn points_sync_input_round_trips_and_is_validated() {
    let plain = json!({"out_request_no": "CRM-PTS-1", "brand_id": "1004", "card_id": "c", "openid": "o",
                       "user_card_code": "478515832665", "point_balance": 120, "remark": "kept"});
    let input: PointsSyncInput = serde_json::from_value(plain.clone()).unwrap();
    assert_eq!(input.point_balance, 120);
    assert_eq!(
        serde_json::from_slice::<Value>(&input.to_json().unwrap()).unwrap(),
        plain
    );
    prepare_json("syncUserPoints", &input.to_json().unwrap(), WireOptions::default()).unwrap();
    let mut negative = input.clone();
    negative.point_balance = -1;
    let e = prepare_json("syncUserPoints", &negative.to_json().unwrap(), WireOptions::default()).unwrap_err();
    assert_eq!(e.field(), Some("syncUserPoints.point_balance"));
    let mut long = input;
    long.out_request_no = "r".repeat(33);
    let e = prepare_json("syncUserPoints", &long.to_json().unwrap(), WireOptions::default()).unwrap_err();
    assert_eq!(
        (e.field(), e.limit()),
        (Some("syncUserPoints.out_request_no"), Some("32"))
    );
}

#[test]
fn user_card_round_trips_with_unknown_state_and_members() {
    let card = json!({"user_card_code": "1", "card_id": "c", "openid": "o", "brand_id": "1004",
                      "user_card_state": "FROZEN_BY_PLATFORM", "phone_number": PHONE, "level": "GOLD"});
    let typed: UserCard = serde_json::from_value(card.clone()).unwrap();
    assert_eq!(
        typed.user_card_state,
        UserCardState::Unknown("FROZEN_BY_PLATFORM".into())
    );
    assert_eq!(serde_json::to_value(&typed).unwrap(), card);
    assert!(!format!("{typed:?}").contains(PHONE));
}

// ---- every typed input against the conformance fixture --------------------

use cardbridge::wechatpay::config::wire_options_from_json;
use cardbridge::wechatpay::inputs::*;
use cardbridge::wechatpay::operations::{OPERATIONS, prepare, prepare_typed};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;

fn fixture_cases() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/conformance/wechatpay_validate.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// One fixture case through the typed form: read into `T`, written back
/// unchanged (as JSON), and prepared with the same outcome as the plain
/// form — the same request, or the same error (field path, limit, message).
/// A case the type cannot hold (a required member missing, a member of the
/// wrong JSON type) must be one the plain form refuses as such.
fn check_typed<T: TypedInput + DeserializeOwned>(case: &Value, wire: WireOptions) {
    let name = case["name"].as_str().unwrap();
    let text = case["input"].as_str().unwrap();
    assert_eq!(T::OPERATION, case["operation"], "{name}");
    let plain = prepare(T::OPERATION, text.as_bytes(), wire);
    let input: Value = serde_json::from_str(text).unwrap();
    let typed: T = match serde_json::from_value(input.clone()) {
        Ok(t) => t,
        Err(e) => {
            let err = plain.expect_err(name);
            let message = err.message();
            assert!(
                message.ends_with("is required") || message.contains("must be a"),
                "{name}: the type refused ({e}) what the plain form does not refuse as missing or mistyped: {message}"
            );
            if message.ends_with("is required") {
                let member = err.field().unwrap().rsplit('.').next().unwrap();
                assert!(e.to_string().contains(member), "{name}: {e}");
            }
            return;
        }
    };
    assert_eq!(serde_json::to_value(&typed).unwrap(), input, "{name}: round trip");
    match (prepare_typed(&typed, wire), plain) {
        (Ok(a), Ok(b)) => {
            assert_eq!((a.method, &a.target), (b.method, &b.target), "{name}");
            let body = |p: &[u8]| -> Value {
                if p.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(p).unwrap()
                }
            };
            assert_eq!(body(&a.body), body(&b.body), "{name}");
            assert_eq!(case["expect"]["ok"], true, "{name}");
        }
        (Err(a), Err(b)) => {
            assert_eq!(
                (a.kind(), a.field(), a.limit(), a.message()),
                (b.kind(), b.field(), b.limit(), b.message()),
                "{name}"
            );
            assert_eq!(a.field(), case["expect"]["field"].as_str(), "{name}");
        }
        (a, b) => panic!("{name}: typed {:?} but plain {:?}", a.map(|_| ()), b.map(|_| ())),
    }
}

/// Operations with no case in the fixture (tested above and below by hand).
const NOT_IN_FIXTURE: &[&str] = &["confirm", "getUserCard", "updateUserCard", "syncUserPoints"];

/// The same method and target, and the same body as JSON (member order aside:
/// a typed input writes its named members first).
fn assert_same_request(
    a: &cardbridge::wechatpay::model::PreparedRequest,
    b: &cardbridge::wechatpay::model::PreparedRequest,
) {
    let body = |p: &[u8]| -> Value {
        if p.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(p).unwrap()
        }
    };
    assert_eq!((a.method, &a.target), (b.method, &b.target));
    assert_eq!(body(&a.body), body(&b.body));
}

#[test]
fn every_typed_input_matches_the_plain_form_on_the_conformance_cases() {
    let mut covered = BTreeSet::new();
    let mut checked = 0;
    for case in fixture_cases() {
        let Ok(wire) = wire_options_from_json(
            case.get("options")
                .map_or("{}".to_string(), Value::to_string)
                .as_bytes(),
        ) else {
            continue; // a configuration error comes before any input
        };
        let op = case["operation"].as_str().unwrap();
        match op {
            "createCardTemplate" => check_typed::<CreateCardTemplateInput>(&case, wire),
            "listCardTemplates" => check_typed::<ListCardTemplatesInput>(&case, wire),
            "getCardTemplate" => check_typed::<GetCardTemplateInput>(&case, wire),
            "updateCardTemplate" => check_typed::<UpdateCardTemplateInput>(&case, wire),
            "removeCardTemplate" => check_typed::<RemoveCardTemplateInput>(&case, wire),
            "listUserCards" => check_typed::<ListUserCardsInput>(&case, wire),
            "invalidateUserCard" => check_typed::<InvalidateUserCardInput>(&case, wire),
            "importUserCard" => check_typed::<ImportUserCardInput>(&case, wire),
            "importUserCardByPhone" => check_typed::<ImportUserCardByPhoneInput>(&case, wire),
            "createPreAuthToken" => check_typed::<CreatePreAuthTokenInput>(&case, wire),
            "createPayViewToken" => check_typed::<CreatePayViewTokenInput>(&case, wire),
            "createUserFeed" => check_typed::<CreateUserFeedInput>(&case, wire),
            "confirmExchangeCoupon" => check_typed::<ConfirmExchangeCouponInput>(&case, wire),
            "createMembershipActivity" => check_typed::<CreateMembershipActivityInput>(&case, wire),
            "listMembershipActivities" => check_typed::<ListMembershipActivitiesInput>(&case, wire),
            "getMembershipActivity" => check_typed::<GetMembershipActivityInput>(&case, wire),
            "updateMembershipActivity" => check_typed::<UpdateMembershipActivityInput>(&case, wire),
            "terminateMembershipActivity" => check_typed::<TerminateMembershipActivityInput>(&case, wire),
            _ => continue,
        }
        covered.insert(op.to_string());
        checked += 1;
    }
    assert!(checked >= 90, "{checked}");
    let missing: Vec<_> = OPERATIONS
        .iter()
        .filter(|o| !covered.contains(**o) && !NOT_IN_FIXTURE.contains(o))
        .collect();
    assert!(missing.is_empty(), "operations without a typed check: {missing:?}");
}

#[test]
fn typed_enums_know_the_values_validation_accepts() {
    use cardbridge::wechatpay::{model, templates};
    assert_eq!(CardType::WIRE, templates::CARD_TYPES);
    assert_eq!(CodeMode::WIRE, templates::CODE_MODES);
    assert_eq!(CodeType::WIRE, templates::CODE_TYPES);
    assert_eq!(CustomFieldType::WIRE, templates::CUSTOM_FIELD_TYPES);
    assert_eq!(TemplateState::WIRE, templates::TEMPLATE_STATES);
    assert_eq!(CommonFieldName::WIRE, model::COMMON_FIELD_NAMES);
    assert_eq!(ValidDateType::WIRE, model::VALID_DATE_TYPES);
    assert_eq!(UserCardState::from_wire("EXPIRED"), UserCardState::Expired);
    for s in cardbridge::wechatpay::members::USER_CARD_STATES {
        assert!(UserCardState::WIRE.contains(s), "{s}");
    }
    assert_eq!(ExchangeState::WIRE, cardbridge::wechatpay::feeds::EXCHANGE_STATES);
    assert_eq!(ActivityState::WIRE, cardbridge::wechatpay::activities::ACTIVITY_STATES);
    assert_eq!(
        ActivityChannel::WIRE,
        cardbridge::wechatpay::activities::ACTIVITY_CHANNELS
    );
    assert_eq!(CodeMode::from_wire("LATER"), CodeMode::Unknown("LATER".into()));
}

#[test]
fn template_inputs_keep_unknown_members_and_values() {
    let plain = json!({
        "out_request_no": "T-1", "brand_id": "1004", "appid": "wx1", "card_type": "NORMAL",
        "card_title": "t", "card_color": "#FFFF00", "card_picture_url": "https://p.example/x",
        "code_mode": "SYSTEM_ALLOCATE", "code_type": "FACE_CODE", "benefits": "b",
        "notify_url": "https://merchant.example/cb",
        "valid_date_information": {"type": "FIX_TERM", "available_day_after_receive": 30, "grace": 1},
        "purchase_information": {"price": 10, "jump_appid": "wx2", "currency": "CNY"},
        "user_information": {"common_field_list": ["USER_FORM_FLAG_SEX", "USER_FORM_FLAG_SHOE"],
                             "custom_field_list": [{"type": "SLIDER", "name": "n", "values": [], "step": 2}]},
        "future_member": [1]
    });
    let typed: CreateCardTemplateInput = serde_json::from_value(plain.clone()).unwrap();
    assert_eq!(typed.code_type, CodeType::Unknown("FACE_CODE".into()));
    assert_eq!(typed.valid_date_information.kind, ValidDateType::FixTerm);
    assert_eq!(typed.valid_date_information.extra["grace"], json!(1));
    let info = typed.user_information.as_ref().unwrap();
    assert_eq!(
        info.common_field_list.as_deref().unwrap()[1],
        CommonFieldName::Unknown("USER_FORM_FLAG_SHOE".into())
    );
    assert_eq!(
        info.custom_field_list.as_ref().unwrap()[0].kind,
        CustomFieldType::Unknown("SLIDER".into())
    );
    assert_eq!(typed.extra["future_member"], json!([1]));
    assert_eq!(serde_json::to_value(&typed).unwrap(), plain);
    // The unknown code type is refused before anything is signed, naming the field.
    let e = prepare_typed(&typed, WireOptions::default()).unwrap_err();
    assert_eq!(e.field(), Some("createCardTemplate.code_type"));

    let mut update = UpdateCardTemplateInput::new("pbLatjvWOibDc5-TBnbUk1pD12o0", "1004");
    update.card_title = Some("金卡".into());
    let p = prepare_typed(&update, WireOptions::default()).unwrap();
    assert_eq!(
        (p.method, p.target.as_str()),
        (
            "PATCH",
            "/v3/brand/partner/card-member/cards/pbLatjvWOibDc5-TBnbUk1pD12o0"
        )
    );
    update.card_picture_url = Some(format!("https://a/{}", "p".repeat(253)));
    let e = prepare_typed(&update, WireOptions::default()).unwrap_err();
    assert_eq!(
        (e.field(), e.limit()),
        (Some("updateCardTemplate.card_picture_url"), Some("256"))
    );

    let mut list = ListCardTemplatesInput::new("1004");
    list.limit = Some(21);
    let e = prepare_typed(&list, WireOptions::default()).unwrap_err();
    assert_eq!(e.field(), Some("listCardTemplates.limit"));
    let get = GetCardTemplateInput(CardTemplateRef::new("1004", "c"));
    assert_eq!(
        serde_json::to_value(&get).unwrap(),
        json!({"brand_id": "1004", "card_id": "c"})
    );
}

#[test]
fn user_card_inputs_match_the_plain_form_and_hide_personal_data() {
    const NAME: &str = "Li Lei";
    let info = json!({"common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": NAME}]});
    let mut update = UpdateUserCardInput::new("478515832665", "pbLatjvWOibDc5-TBnbUk1pD12o0", "1004", "obLatjnx9g");
    update.level = Some("GOLD".into());
    update.phone_number = Some(PHONE.into());
    update.user_information = Some(info.clone());
    update.valid_date_information = Some(ValidDateInformation::new(ValidDateType::Permanent));
    update.extra.insert("future_member".into(), json!(true));
    let plain = json!({"user_card_code": "478515832665", "card_id": "pbLatjvWOibDc5-TBnbUk1pD12o0",
                       "brand_id": "1004", "openid": "obLatjnx9g", "level": "GOLD", "phone_number": PHONE,
                       "user_information": info, "valid_date_information": {"type": "PERMANENT"},
                       "future_member": true});
    assert_eq!(serde_json::to_value(&update).unwrap(), plain);
    assert_same_request(
        &prepare_typed(&update, WireOptions::default()).unwrap(),
        &prepare("updateUserCard", plain.to_string().as_bytes(), WireOptions::default()).unwrap(),
    );
    let shown = format!("{update:?}");
    assert!(
        !shown.contains(PHONE) && !shown.contains(NAME) && !shown.contains("obLatjnx9g"),
        "{shown}"
    );
    update.openid = "o".repeat(129);
    let e = prepare_typed(&update, WireOptions::default()).unwrap_err();
    assert_eq!((e.field(), e.limit()), (Some("updateUserCard.openid"), Some("128")));

    let get: GetUserCardInput = serde_json::from_value(json!({"user_card_code": "478515832665", "card_id": "c",
        "brand_id": "1004", "openid": "obLatjnx9g", "x": 1}))
    .unwrap();
    assert_eq!(get.extra["x"], json!(1));
    assert!(!format!("{get:?}").contains("obLatjnx9g"));
    let p = prepare_typed(&get, WireOptions::default()).unwrap();
    assert_eq!(p.method, "GET");
    let mut get = get;
    get.user_card_code = "1 2".into();
    let e = prepare_typed(&get, WireOptions::default()).unwrap_err();
    assert_eq!(e.field(), Some("getUserCard.user_card_code"));

    let import: ImportUserCardInput = serde_json::from_value(json!({
        "brand_id": "1004", "card_id": "c", "openid": "obLatjnx9g", "user_card_code": "478515832665",
        "phone_number": PHONE, "user_information": {"common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": NAME}]},
        "date_information": {"type": "PERMANENT"}, "pickup_time": "2020-05-20T13:29:35.120+08:00"}))
    .unwrap();
    let shown = format!("{:?}", ImportUserCardByPhoneInput(import.clone()));
    assert!(
        !shown.contains(PHONE) && !shown.contains(NAME) && shown.contains("<redacted>"),
        "{shown}"
    );
    let p = prepare_typed(&import, WireOptions::default()).unwrap();
    assert!(!String::from_utf8_lossy(&p.body).contains(PHONE));

    let mut list: ListUserCardsInput = serde_json::from_value(json!({"brand_id": "1004", "openid": "o",
        "user_card_state": "FROZEN"}))
    .unwrap();
    assert_eq!(list.user_card_state, Some(UserCardState::Unknown("FROZEN".into())));
    let e = prepare_typed(&list, WireOptions::default()).unwrap_err();
    assert_eq!(e.field(), Some("listUserCards.user_card_state"));
    list.user_card_state = Some(UserCardState::Effective);
    prepare_typed(&list, WireOptions::default()).unwrap();
}

#[test]
fn feed_exchange_and_activity_inputs_match_the_plain_form() {
    let feed: CreateUserFeedInput = serde_json::from_value(json!({"brand_id": "1004", "card_id": "c",
        "user_card_code": "478515832665", "openid": "obLatjnx9g", "out_request_no": "F-1", "cell": "15_1200_1"}))
    .unwrap();
    assert!(!format!("{feed:?}").contains("obLatjnx9g"));
    let mut both = feed.clone();
    both.cell_message = Some("x".into());
    let e = prepare_typed(&both, WireOptions::default()).unwrap_err();
    assert_eq!(e.field(), Some("createUserFeed.cell_message"));
    assert_same_request(
        &prepare_typed(&feed, WireOptions::default()).unwrap(),
        &prepare(
            "createUserFeed",
            &serde_json::to_vec(&feed).unwrap(),
            WireOptions::default(),
        )
        .unwrap(),
    );

    let exchange = json!({"record_id": "REC-1", "exchange_coupon_template_id": "t", "brand_id": "1004",
        "card_id": "c", "openid": "o", "user_card_code": "478515832665", "state": "POINT_EXCHANGE_COUPON_FAIL"});
    let mut typed: ConfirmExchangeCouponInput = serde_json::from_value(exchange).unwrap();
    assert_eq!(typed.state, ExchangeState::Fail);
    let e = prepare_typed(&typed, WireOptions::default()).unwrap_err();
    assert_eq!(e.field(), Some("confirmExchangeCoupon.fail_reason"));
    typed.fail_reason = Some("out of stock".into());
    prepare_typed(&typed, WireOptions::default()).unwrap();
    typed.state = ExchangeState::Unknown("POINT_EXCHANGE_COUPON_LATER".into());
    let e = prepare_typed(&typed, WireOptions::default()).unwrap_err();
    assert_eq!(e.field(), Some("confirmExchangeCoupon.state"));

    let create = json!({"out_request_no": "A-1", "brand_id": "1004", "card_id": "c",
        "activity_channel": "MECHANT_MINI_PROGRAM", "title": "t", "sub_title": "s",
        "begin_time": "2030-01-20T13:29:35+08:00", "end_time": "2030-01-29T13:29:35+08:00", "apply_total": 10,
        "product_coupon_stock_list": [{"product_coupon_id": "p", "stock_id": "s", "weight": 2}], "future": {}});
    let mut typed: CreateMembershipActivityInput = serde_json::from_value(create.clone()).unwrap();
    assert_eq!(
        typed.activity_channel,
        ActivityChannel::Unknown("MECHANT_MINI_PROGRAM".into())
    );
    assert_eq!(typed.product_coupon_stock_list[0].extra["weight"], json!(2));
    assert_eq!(serde_json::to_value(&typed).unwrap(), create);
    let e = prepare_typed(&typed, WireOptions::default()).unwrap_err();
    assert_eq!(e.field(), Some("createMembershipActivity.activity_channel"));
    typed.activity_channel = ActivityChannel::MechantAppComponent;
    prepare_typed(&typed, WireOptions::default()).unwrap();
    typed.apply_total = 0;
    let e = prepare_typed(&typed, WireOptions::default()).unwrap_err();
    assert_eq!(e.field(), Some("createMembershipActivity.apply_total"));

    let mut list = ListMembershipActivitiesInput::new("1004");
    list.activity_state = Some(ActivityState::Effective);
    let p = prepare_typed(&list, WireOptions::default()).unwrap();
    assert!(
        p.target.contains("activity_state=MEMBERSHIP_ACTIVITY_EFFECTIVE"),
        "{}",
        p.target
    );
    let terminate = TerminateMembershipActivityInput(MembershipActivityRef::new("1004", "a".repeat(65)));
    let e = prepare_typed(&terminate, WireOptions::default()).unwrap_err();
    assert_eq!(
        (e.field(), e.limit()),
        (Some("terminateMembershipActivity.activity_id"), Some("64"))
    );
}
