//! Card templates (`/cards`, `wechatpay-card-member.md` §4; field notes in
//! `docs/wechatpay-card-member-notes.md`): create (with the `notify_url` that
//! receives every card event), list, get, update, and remove — `POST
//! …/invalidate` or `DELETE`, chosen by [`WireOptions::card_template_removal`].
//!
//! Inputs are one JSON object in the wire names; `card_id` (path) sits in the
//! same object. Validation runs before anything is stored or signed.

use super::model::{
    CARD_MEMBER_PATH, COMMON_FIELD_NAMES, Mutation, PreparedRequest, Query, ReadBackPlan, TemplateRemoval, WireOptions,
    check_color, check_jump, check_url, check_valid_date_information, encode, finish, integer_in, parse_object,
    raw_query_param, required_id, required_text, shows_body, take_str,
};
use crate::error::Result;
use crate::validate::{Object, Path, as_str, check_one_of};

/// Outbox kind of template creation, keyed by (brand_id, out_request_no).
pub const CREATE_KIND: &str = "wechatpay.createCardTemplate";
/// Outbox kind of template updates, keyed by (brand_id, card_id, content).
pub const UPDATE_KIND: &str = "wechatpay.updateCardTemplate";
/// Outbox kind of template removal, keyed by (brand_id, card_id).
pub const REMOVE_KIND: &str = "wechatpay.removeCardTemplate";

/// `card_type` values.
pub const CARD_TYPES: &[&str] = &["PURCHASE", "NORMAL", "BALANCE"];
/// `code_mode` values.
pub const CODE_MODES: &[&str] = &["SYSTEM_ALLOCATE", "MERCHANT_ALLOCATE"];
/// `code_type` values.
pub const CODE_TYPES: &[&str] = &[
    "NONE_CODE",
    "BAR_CODE",
    "QR_CODE",
    "BAR_CODE_AND_QR_CODE",
    "JUMP_MINI_PROGRAM",
];
/// `user_information.custom_field_list[].type` values.
pub const CUSTOM_FIELD_TYPES: &[&str] = &["CHECK_BOX", "RADIO"];
/// Template `state` values (list filter).
pub const TEMPLATE_STATES: &[&str] = &["CARD_EFFECTIVE", "CARD_INVALID"];
/// Largest `limit` of a template list.
pub const MAX_LIST_LIMIT: i64 = 20;

const CARDS: &str = "/cards";

fn cards_path() -> String {
    format!("{CARD_MEMBER_PATH}{CARDS}")
}

/// `notify_url`: absolute HTTPS URL without a query (§3.2), parsed by the url crate.
fn check_notify_url(path: &Path, s: &str) -> Result<()> {
    check_url(path, s, 256)?;
    let parsed = url::Url::parse(s).map_err(|_| path.error("must be an absolute https URL", Some("256".into())))?;
    if parsed.scheme() != "https" {
        return Err(path.error("must be an https URL", Some("256".into())));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(path.error("must not carry query parameters or a fragment", Some("256".into())));
    }
    Ok(())
}

/// The template members shared by create and update; `create` makes the
/// documented required ones required.
fn check_template_body(o: &Object<'_>, create: bool) -> Result<()> {
    let req = |k: &str| -> Result<Option<&str>> {
        if create {
            required_text(o, k).map(Some)
        } else {
            o.optional_str(k, None)
        }
    };
    if create {
        required_id(o, "appid", 32)?;
        check_one_of(&o.field("card_type"), o.required_str("card_type", None)?, CARD_TYPES)?;
        check_one_of(&o.field("code_mode"), o.required_str("code_mode", None)?, CODE_MODES)?;
        check_one_of(&o.field("code_type"), o.required_str("code_type", None)?, CODE_TYPES)?;
    }
    req("card_title")?;
    req("benefits")?;
    if let Some(c) = req("card_color")? {
        check_color(&o.field("card_color"), c)?;
    }
    if let Some(u) = req("card_picture_url")? {
        check_url(&o.field("card_picture_url"), u, 256)?;
    }
    if let Some(u) = req("notify_url")? {
        check_notify_url(&o.field("notify_url"), u)?;
    }
    for flag in ["need_pinned", "need_display_level"] {
        if o.optional(flag).is_some_and(|v| !v.is_boolean()) {
            return Err(o.field(flag).error("must be a boolean", None));
        }
    }
    for k in ["init_level", "service_phone", "legal_agreement"] {
        o.optional_str(k, None)?;
    }
    match o.optional("valid_date_information") {
        Some(d) => check_valid_date_information(d, o.field("valid_date_information"))?,
        None if create => return Err(o.field("valid_date_information").error("is required", None)),
        None => {}
    }
    let code_jump = check_jump(o, "code_jump_information")?;
    if create && o.optional_str("code_type", None)? == Some("JUMP_MINI_PROGRAM") && code_jump.is_none() {
        return Err(o
            .field("code_jump_information")
            .error("is required when code_type is JUMP_MINI_PROGRAM", None));
    }
    check_jump(o, "points_information")?;
    check_jump(o, "balance_information")?;
    if let Some(p) = check_jump(o, "purchase_information")? {
        if let Some(price) = p.optional("price") {
            if price.as_f64().is_none_or(|n| n < 0.0) {
                return Err(p
                    .field("price")
                    .error("must be a non-negative number", Some("0".into())));
            }
        }
    }
    if let Some(info) = o.optional("user_information") {
        let i = Object::new(info, o.field("user_information"))?;
        if let Some(list) = i.optional_array("common_field_list", None)? {
            for (n, x) in list.iter().enumerate() {
                let p = i.field("common_field_list").index(n);
                check_one_of(&p, as_str(x, &p)?, COMMON_FIELD_NAMES)?;
            }
        }
        if let Some(list) = i.optional_array("custom_field_list", None)? {
            for (n, x) in list.iter().enumerate() {
                let f = Object::new(x, i.field("custom_field_list").index(n))?;
                check_one_of(&f.field("type"), f.required_str("type", None)?, CUSTOM_FIELD_TYPES)?;
                required_text(&f, "name")?;
                for (m, v) in f.required_array("values", None)?.iter().enumerate() {
                    as_str(v, &f.field("values").index(m))?;
                }
            }
        }
    }
    Ok(())
}

/// Prepares `POST /cards` (create a card template, doc 4015336970). The
/// input's `out_request_no` (≤ 32) keys the outbox entry, so a retried create
/// never makes two templates; it is sent in the body unless
/// [`WireOptions::card_template_out_request_no`] is off.
pub fn prepare_create(input: &[u8], options: WireOptions) -> Result<Mutation> {
    let (mut v, path) = parse_object(input, "createCardTemplate")?;
    let (brand, out_request_no) = {
        let o = Object::new(&v, path.clone())?;
        let brand = required_id(&o, "brand_id", 32)?.to_string();
        let out = required_id(&o, "out_request_no", 32)?.to_string();
        check_template_body(&o, true)?;
        (brand, out)
    };
    if !options.card_template_out_request_no {
        if let Some(m) = v.as_object_mut() {
            m.shift_remove("out_request_no");
        }
    }
    Ok(Mutation {
        request: finish("POST", cards_path(), Some(&v), false)?,
        kind: CREATE_KIND,
        key: vec![brand, out_request_no],
        keyless: false,
        key_field: "createCardTemplate.out_request_no".into(),
        always_serial: false,
    })
}

/// Prepares `GET /cards?brand_id&state&offset&limit` (list, doc 4015336976):
/// `limit` 1–20, `offset` ≥ 0.
pub fn prepare_list(input: &[u8]) -> Result<PreparedRequest> {
    let (v, path) = parse_object(input, "listCardTemplates")?;
    let o = Object::new(&v, path)?;
    let mut q = Query::default();
    q.push("brand_id", required_id(&o, "brand_id", 32)?);
    if let Some(s) = o.optional_str("state", None)? {
        check_one_of(&o.field("state"), s, TEMPLATE_STATES)?;
        q.push("state", s);
    }
    q.push_opt(
        "offset",
        integer_in(&o, "offset", 0, i64::from(u32::MAX), false)?.as_deref(),
    );
    q.push_opt("limit", integer_in(&o, "limit", 1, MAX_LIST_LIMIT, false)?.as_deref());
    finish("GET", q.append_to(cards_path()), None, false)
}

fn template_path(card_id: &str) -> String {
    format!("{}/{}", cards_path(), encode(card_id))
}

/// Prepares `GET /cards/{card_id}?brand_id` (doc 4015336974).
pub fn prepare_get(input: &[u8]) -> Result<PreparedRequest> {
    let (v, path) = parse_object(input, "getCardTemplate")?;
    let o = Object::new(&v, path)?;
    let card_id = required_id(&o, "card_id", 32)?;
    let mut q = Query::default();
    q.push("brand_id", required_id(&o, "brand_id", 32)?);
    finish("GET", q.append_to(template_path(card_id)), None, false)
}

/// Prepares `PATCH /cards/{card_id}` (doc 4015336977): `brand_id` and the
/// members to change. Keyed by its content: the same update is applied once.
pub fn prepare_update(input: &[u8]) -> Result<Mutation> {
    let (mut v, path) = parse_object(input, "updateCardTemplate")?;
    let map = v.as_object_mut().ok_or_else(|| path.error("must be an object", None))?;
    let card_id = take_str(map, "card_id", &path)?;
    let brand = {
        let o = Object::new(&v, path.clone())?;
        let brand = required_id(&o, "brand_id", 32)?.to_string();
        check_template_body(&o, false)?;
        brand
    };
    let card_path = path.key("card_id");
    crate::validate::check_max_chars(&card_path, &card_id, 32)?;
    crate::validate::check_not_empty(&card_path, &card_id)?;
    Ok(Mutation {
        request: finish("PATCH", template_path(&card_id), Some(&v), false)?,
        kind: UPDATE_KIND,
        key: vec![brand, card_id],
        keyless: true,
        key_field: "updateCardTemplate.card_id".into(),
        always_serial: false,
    })
}

/// Prepares the removal of a card template (doc 4015336972): `POST
/// /cards/{card_id}/invalidate` with `{"brand_id"}`, or `DELETE
/// /cards/{card_id}?brand_id=…`, as [`WireOptions::card_template_removal`] says.
pub fn prepare_remove(input: &[u8], options: WireOptions) -> Result<Mutation> {
    let (v, path) = parse_object(input, "removeCardTemplate")?;
    let o = Object::new(&v, path)?;
    let card_id = required_id(&o, "card_id", 32)?;
    let brand = required_id(&o, "brand_id", 32)?;
    let request = match options.card_template_removal {
        TemplateRemoval::Invalidate => finish(
            "POST",
            format!("{}/invalidate", template_path(card_id)),
            Some(&serde_json::json!({ "brand_id": brand })),
            false,
        )?,
        TemplateRemoval::Delete => {
            let mut q = Query::default();
            q.push("brand_id", brand);
            finish("DELETE", q.append_to(template_path(card_id)), None, false)?
        }
    };
    Ok(Mutation {
        request,
        kind: REMOVE_KIND,
        key: vec![brand.to_string(), card_id.to_string()],
        keyless: false,
        key_field: "removeCardTemplate.card_id".into(),
        always_serial: false,
    })
}

/// How an ambiguous template call is reconciled: a create by its
/// `out_request_no`; an update by reading the template back (every member it
/// sets); a removal by reading it back (`state` `CARD_INVALID`).
pub fn read_back_plan(kind: &str, method: &str, target: &str, body: &[u8]) -> Option<ReadBackPlan> {
    let path = target.split('?').next()?;
    match kind {
        CREATE_KIND => Some(ReadBackPlan::Resend),
        UPDATE_KIND => {
            let brand = super::model::body_param(body, "brand_id")?;
            shows_body(format!("{path}?brand_id={brand}"), body)
        }
        REMOVE_KIND => {
            let (card_path, brand) = if method == "DELETE" {
                (path.to_string(), raw_query_param(target, "brand_id")?.to_string())
            } else {
                (
                    path.strip_suffix("/invalidate")?.to_string(),
                    super::model::body_param(body, "brand_id")?,
                )
            };
            Some(ReadBackPlan::State {
                target: format!("{card_path}?brand_id={brand}"),
                member: "state",
                values: &["CARD_INVALID"],
            })
        }
        _ => None,
    }
}
