//! Membership coupon activities (`/membership-activities`,
//! `wechatpay-card-member.md` §4): create (idempotent by `out_request_no`),
//! list, get, update and terminate.

use super::model::{
    CARD_MEMBER_PATH, Mutation, PreparedRequest, Query, ReadBackPlan, body_param, encode, finish, integer_in,
    parse_object, required_id, required_text, required_time, shows_body, take_str,
};
use crate::error::Result;
use crate::validate::{Object, check_one_of};
use serde_json::json;

/// Outbox kind of activity creation, keyed by (brand_id, out_request_no).
pub const CREATE_KIND: &str = "wechatpay.createMembershipActivity";
/// Outbox kind of activity updates, keyed by (brand_id, activity_id, content).
pub const UPDATE_KIND: &str = "wechatpay.updateMembershipActivity";
/// Outbox kind of terminations, keyed by (brand_id, activity_id).
pub const TERMINATE_KIND: &str = "wechatpay.terminateMembershipActivity";
/// `activity_channel` values (the platform's own spelling, `MECHANT`).
pub const ACTIVITY_CHANNELS: &[&str] = &["MECHANT_APP_COMPONENT"];
/// `activity_state` values.
pub const ACTIVITY_STATES: &[&str] = &[
    "MEMBERSHIP_ACTIVITY_CREATED",
    "MEMBERSHIP_ACTIVITY_EFFECTIVE",
    "MEMBERSHIP_ACTIVITY_TERMINATED",
    "MEMBERSHIP_ACTIVITY_EXPIRED",
];
/// Largest `limit` of an activity list (UNVERIFIED: by analogy with the template list).
pub const MAX_LIST_LIMIT: i64 = 20;

fn activities_path() -> String {
    format!("{CARD_MEMBER_PATH}/membership-activities")
}

fn activity_path(id: &str) -> String {
    format!("{}/{}", activities_path(), encode(id))
}

/// `title`, `sub_title`, `begin_time` < `end_time`: required on create and update.
fn check_schedule(o: &Object<'_>) -> Result<()> {
    required_text(o, "title")?;
    required_text(o, "sub_title")?;
    let begin = required_time(o, "begin_time")?;
    let end = required_time(o, "end_time")?;
    if begin >= end {
        return Err(o.field("end_time").error("must be later than begin_time", None));
    }
    Ok(())
}

/// Prepares `POST /membership-activities` (doc 4016464918).
pub fn prepare_create(input: &[u8]) -> Result<Mutation> {
    let (v, path) = parse_object(input, "createMembershipActivity")?;
    let o = Object::new(&v, path)?;
    let out = required_id(&o, "out_request_no", 32)?.to_string();
    let brand = required_id(&o, "brand_id", 32)?.to_string();
    required_id(&o, "card_id", 32)?;
    check_one_of(
        &o.field("activity_channel"),
        o.required_str("activity_channel", None)?,
        ACTIVITY_CHANNELS,
    )?;
    check_schedule(&o)?;
    integer_in(&o, "apply_total", 1, i64::MAX, true)?;
    let stocks = o.required_array("product_coupon_stock_list", None)?;
    if stocks.is_empty() {
        return Err(o
            .field("product_coupon_stock_list")
            .error("must have at least 1 element", Some("1".into())));
    }
    for (i, s) in stocks.iter().enumerate() {
        let s = Object::new(s, o.field("product_coupon_stock_list").index(i))?;
        required_text(&s, "product_coupon_id")?;
        required_text(&s, "stock_id")?;
    }
    Ok(Mutation {
        request: finish("POST", activities_path(), Some(&v), false)?,
        kind: CREATE_KIND,
        key: vec![brand, out],
        keyless: false,
        key_field: "createMembershipActivity.out_request_no".into(),
        always_serial: false,
    })
}

/// Prepares `GET /membership-activities?brand_id&card_id&activity_state&offset&limit` (doc 4016588039).
pub fn prepare_list(input: &[u8]) -> Result<PreparedRequest> {
    let (v, path) = parse_object(input, "listMembershipActivities")?;
    let o = Object::new(&v, path)?;
    let mut q = Query::default();
    q.push("brand_id", required_id(&o, "brand_id", 32)?);
    q.push_opt("card_id", o.optional_str("card_id", Some(32))?);
    if let Some(s) = o.optional_str("activity_state", None)? {
        check_one_of(&o.field("activity_state"), s, ACTIVITY_STATES)?;
        q.push("activity_state", s);
    }
    q.push(
        "offset",
        &integer_in(&o, "offset", 0, i64::from(u32::MAX), false)?.unwrap_or_else(|| "0".into()),
    );
    q.push(
        "limit",
        &integer_in(&o, "limit", 1, MAX_LIST_LIMIT, false)?.unwrap_or_else(|| MAX_LIST_LIMIT.to_string()),
    );
    finish("GET", q.append_to(activities_path()), None, false)
}

fn id_and_brand(o: &Object<'_>) -> Result<(String, String)> {
    Ok((
        required_id(o, "activity_id", 64)?.to_string(),
        required_id(o, "brand_id", 32)?.to_string(),
    ))
}

/// Prepares `GET /membership-activities/{activity_id}?brand_id` (doc 4016588015).
pub fn prepare_get(input: &[u8]) -> Result<PreparedRequest> {
    let (v, path) = parse_object(input, "getMembershipActivity")?;
    let o = Object::new(&v, path)?;
    let (id, brand) = id_and_brand(&o)?;
    let mut q = Query::default();
    q.push("brand_id", &brand);
    finish("GET", q.append_to(activity_path(&id)), None, false)
}

/// Prepares `PATCH /membership-activities/{activity_id}` (doc 4016588044):
/// `brand_id, title, sub_title, begin_time, end_time`. Keyed by its content.
pub fn prepare_update(input: &[u8]) -> Result<Mutation> {
    let (mut v, path) = parse_object(input, "updateMembershipActivity")?;
    let map = v.as_object_mut().ok_or_else(|| path.error("must be an object", None))?;
    let id = take_str(map, "activity_id", &path)?;
    crate::validate::check_max_chars(&path.key("activity_id"), &id, 64)?;
    crate::validate::check_not_empty(&path.key("activity_id"), &id)?;
    let brand = {
        let o = Object::new(&v, path.clone())?;
        let brand = required_id(&o, "brand_id", 32)?.to_string();
        check_schedule(&o)?;
        brand
    };
    Ok(Mutation {
        request: finish("PATCH", activity_path(&id), Some(&v), false)?,
        kind: UPDATE_KIND,
        key: vec![brand, id],
        keyless: true,
        key_field: "updateMembershipActivity.activity_id".into(),
        always_serial: false,
    })
}

/// Prepares `POST /membership-activities/{activity_id}/terminate` with
/// `{"brand_id"}` (doc 4016588028). Keyed by (brand_id, activity_id).
pub fn prepare_terminate(input: &[u8]) -> Result<Mutation> {
    let (v, path) = parse_object(input, "terminateMembershipActivity")?;
    let o = Object::new(&v, path)?;
    let (id, brand) = id_and_brand(&o)?;
    Ok(Mutation {
        request: finish(
            "POST",
            format!("{}/terminate", activity_path(&id)),
            Some(&json!({ "brand_id": brand })),
            false,
        )?,
        kind: TERMINATE_KIND,
        key: vec![brand, id],
        keyless: false,
        key_field: "terminateMembershipActivity.activity_id".into(),
        always_serial: false,
    })
}

/// How an ambiguous activity call is reconciled: a create by its
/// `out_request_no`; an update by reading the activity back; a termination by
/// reading it back (`MEMBERSHIP_ACTIVITY_TERMINATED`).
pub fn read_back_plan(kind: &str, target: &str, body: &[u8]) -> Option<ReadBackPlan> {
    let path = target.split('?').next()?;
    let brand = || body_param(body, "brand_id");
    match kind {
        CREATE_KIND => Some(ReadBackPlan::Resend),
        UPDATE_KIND => shows_body(format!("{path}?brand_id={}", brand()?), body),
        TERMINATE_KIND => Some(ReadBackPlan::State {
            target: format!("{}?brand_id={}", path.strip_suffix("/terminate")?, brand()?),
            member: "activity_state",
            values: &["MEMBERSHIP_ACTIVITY_TERMINATED"],
        }),
        _ => None,
    }
}
