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
