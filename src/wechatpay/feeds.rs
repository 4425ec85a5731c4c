//! Member feeds and the points-for-coupon answer (`wechatpay-card-member.md`
//! §4): `POST /user-feeds` (idempotent by `out_request_no`; the content
//! member is `cell` or `cell_message`, see [`WireOptions::user_feed_content`])
//! and `POST /user-points/exchange-coupon/confirm`, the required answer to a
//! `POINT_EXCHANGE_COUPON` event (keyed by the event's `record_id`).

use super::model::{
    CARD_MEMBER_PATH, Mutation, ReadBackPlan, WireOptions, check_user_card_code, finish, parse_object, required_id,
    required_text,
};
use crate::error::Result;
use crate::validate::{Object, check_one_of};
use serde_json::{Map, Value};

/// Outbox kind of feeds, keyed by (brand_id, out_request_no).
pub const FEED_KIND: &str = "wechatpay.createUserFeed";
/// Outbox kind of exchange confirmations, keyed by (brand_id, record_id).
pub const EXCHANGE_KIND: &str = "wechatpay.confirmExchangeCoupon";
/// `state` values of an exchange confirmation.
pub const EXCHANGE_STATES: &[&str] = &["POINT_EXCHANGE_COUPON_SUCCESS", "POINT_EXCHANGE_COUPON_FAIL"];

/// Prepares `POST /user-feeds` (doc 4015336987): `brand_id, card_id,
/// user_card_code, openid, out_request_no` and the content as `cell` or
/// `cell_message` (either name is accepted; it is sent under the configured one).
pub fn prepare_feed(input: &[u8], options: WireOptions) -> Result<Mutation> {
    let (mut v, path) = parse_object(input, "createUserFeed")?;
    let (brand, out) = {
        let o = Object::new(&v, path.clone())?;
        let brand = required_id(&o, "brand_id", 32)?.to_string();
        required_id(&o, "card_id", 32)?;
        required_id(&o, "openid", 128)?;
        check_user_card_code(&o.field("user_card_code"), o.required_str("user_card_code", None)?)?;
        let out = required_id(&o, "out_request_no", 32)?.to_string();
        (brand, out)
    };
    let map = v.as_object_mut().ok_or_else(|| path.error("must be an object", None))?;
    let content = match (map.shift_remove("cell"), map.shift_remove("cell_message")) {
        (Some(_), Some(_)) => {
            return Err(path
                .key("cell_message")
                .error("give either cell or cell_message, not both", None));
        }
        (Some(c), None) | (None, Some(c)) => c,
        (None, None) => return Err(path.key(options.user_feed_content.name()).error("is required", None)),
    };
    let name = options.user_feed_content.name();
    match &content {
        Value::String(s) if !s.is_empty() => {}
        Value::String(_) => return Err(path.key(name).error("must not be empty", Some("1".into()))),
        _ => return Err(path.key(name).error("must be a string", None)),
    }
    map.insert(name.into(), content);
    Ok(Mutation {
        request: finish("POST", format!("{CARD_MEMBER_PATH}/user-feeds"), Some(&v), false)?,
        kind: FEED_KIND,
        key: vec![brand, out],
        keyless: false,
        key_field: "createUserFeed.out_request_no".into(),
        always_serial: false,
    })
}

/// Prepares `POST /user-points/exchange-coupon/confirm` (doc 4015897268):
/// `record_id, exchange_coupon_template_id, brand_id, card_id, openid,
/// user_card_code, state`, optional `coupon_code` and `fail_reason` (required
/// when the state is `POINT_EXCHANGE_COUPON_FAIL`). Keyed by (brand_id, record_id).
pub fn prepare_exchange_confirm(input: &[u8]) -> Result<Mutation> {
    let (v, path) = parse_object(input, "confirmExchangeCoupon")?;
    let o = Object::new(&v, path)?;
    let record = required_id(&o, "record_id", 64)?.to_string();
    required_id(&o, "exchange_coupon_template_id", 64)?;
    let brand = required_id(&o, "brand_id", 32)?.to_string();
    required_id(&o, "card_id", 32)?;
    required_id(&o, "openid", 128)?;
    check_user_card_code(&o.field("user_card_code"), o.required_str("user_card_code", None)?)?;
    let state = o.required_str("state", None)?;
    check_one_of(&o.field("state"), state, EXCHANGE_STATES)?;
    o.optional_str("coupon_code", None)?;
    if state == EXCHANGE_STATES[1] {
        required_text(&o, "fail_reason")?;
    } else {
        o.optional_str("fail_reason", None)?;
    }
    Ok(Mutation {
        request: finish(
            "POST",
            format!("{CARD_MEMBER_PATH}/user-points/exchange-coupon/confirm"),
            Some(&v),
            false,
        )?,
        kind: EXCHANGE_KIND,
        key: vec![brand, record],
        keyless: false,
        key_field: "confirmExchangeCoupon.record_id".into(),
        always_serial: false,
    })
}

/// The confirmation input for a decrypted `POINT_EXCHANGE_COUPON` resource:
/// its identifying members copied, plus the merchant's decision.
pub fn exchange_confirm_from_event(
    resource: &Value,
    success: bool,
    coupon_code: Option<&str>,
    fail_reason: Option<&str>,
) -> Value {
    let mut out = Map::new();
    for k in [
        "record_id",
        "exchange_coupon_template_id",
        "brand_id",
        "card_id",
        "openid",
        "user_card_code",
    ] {
        if let Some(x) = resource.get(k) {
            out.insert(k.into(), x.clone());
        }
    }
    out.insert("state".into(), Value::from(EXCHANGE_STATES[usize::from(!success)]));
    if let Some(c) = coupon_code {
        out.insert("coupon_code".into(), c.into());
    }
    if let Some(r) = fail_reason {
        out.insert("fail_reason".into(), r.into());
    }
    Value::Object(out)
}

/// Both calls carry the platform's own key: a re-send is harmless.
pub fn read_back_plan(kind: &str) -> Option<ReadBackPlan> {
    matches!(kind, FEED_KIND | EXCHANGE_KIND).then_some(ReadBackPlan::Resend)
}
