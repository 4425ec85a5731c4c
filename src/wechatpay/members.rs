//! User cards beyond the card-opening sync (`wechatpay-card-member.md` §4):
//! list a user's cards, invalidate a card (irreversible, with a reason), and
//! import an existing member by openid (sensitive fields RSA-OAEP encrypted,
//! `Wechatpay-Serial` always sent) or — only when enabled, it is not live on
//! the platform — by phone.

use super::model::{
    CARD_MEMBER_PATH, Mutation, PreparedRequest, Query, ReadBackPlan, WireOptions, check_rfc3339, check_user_card_code,
    check_valid_date_information, encode, finish, integer_in, parse_object, prepare_user_information, raw_query_param,
    required_id, required_text, take_str,
};
use crate::error::{Error, ErrorKind, Result};
use crate::validate::{Object, Path, check_one_of};
use serde_json::Value;

/// Outbox kind of user-card invalidation, keyed by (card_id, user_card_code).
pub const INVALIDATE_KIND: &str = "wechatpay.invalidateUserCard";
/// Outbox kind of imports, keyed by (card_id, user_card_code).
pub const IMPORT_KIND: &str = "wechatpay.importUserCard";
/// Outbox kind of imports by phone, keyed by (card_id, user_card_code).
pub const IMPORT_BY_PHONE_KIND: &str = "wechatpay.importUserCardByPhone";
/// `user_card_state` filter values of a list (API response set, §3.6).
pub const USER_CARD_STATES: &[&str] = &["UNACTIVATED", "EFFECTIVE", "EXPIRED", "INVALID"];
/// Largest `limit` of a user-card list (UNVERIFIED: by analogy with the template list).
pub const MAX_LIST_LIMIT: i64 = 20;

fn user_cards_path() -> String {
    format!("{CARD_MEMBER_PATH}/user-cards")
}

/// Prepares `GET /user-cards?brand_id&openid&user_card_state&offset&limit` (doc 4015336984).
pub fn prepare_list(input: &[u8]) -> Result<PreparedRequest> {
    let (v, path) = parse_object(input, "listUserCards")?;
    let o = Object::new(&v, path)?;
    let mut q = Query::default();
    q.push("brand_id", required_id(&o, "brand_id", 32)?);
    q.push("openid", required_id(&o, "openid", 128)?);
    if let Some(s) = o.optional_str("user_card_state", None)? {
        check_one_of(&o.field("user_card_state"), s, USER_CARD_STATES)?;
        q.push("user_card_state", s);
    }
    q.push(
        "offset",
        &integer_in(&o, "offset", 0, i64::from(u32::MAX), false)?.unwrap_or_else(|| "0".into()),
    );
    q.push(
        "limit",
        &integer_in(&o, "limit", 1, MAX_LIST_LIMIT, false)?.unwrap_or_else(|| MAX_LIST_LIMIT.to_string()),
    );
    finish("GET", q.append_to(user_cards_path()), None, false)
}

/// Prepares `POST /user-cards/{code}/invalidate?brand_id&card_id` with
/// `{openid, invalid_reason}` (doc 4015336983). Irreversible: the reason is
/// required and non-empty. Keyed by (card_id, user_card_code).
pub fn prepare_invalidate(input: &[u8]) -> Result<Mutation> {
    let (mut v, path) = parse_object(input, "invalidateUserCard")?;
    let map = v.as_object_mut().ok_or_else(|| path.error("must be an object", None))?;
    let code = take_str(map, "user_card_code", &path)?;
    check_user_card_code(&path.key("user_card_code"), &code)?;
    let card_id = take_str(map, "card_id", &path)?;
    let brand = take_str(map, "brand_id", &path)?;
    for (k, s) in [("card_id", &card_id), ("brand_id", &brand)] {
        crate::validate::check_max_chars(&path.key(k), s, 32)?;
        crate::validate::check_not_empty(&path.key(k), s)?;
    }
    {
        let o = Object::new(&v, path.clone())?;
        required_id(&o, "openid", 128)?;
        required_text(&o, "invalid_reason")?;
    }
    let mut q = Query::default();
    q.push("brand_id", &brand).push("card_id", &card_id);
    let target = q.append_to(format!("{}/{}/invalidate", user_cards_path(), encode(&code)));
    Ok(Mutation {
        request: finish("POST", target, Some(&v), false)?,
        kind: INVALIDATE_KIND,
        key: vec![card_id, code],
        keyless: false,
        key_field: "invalidateUserCard.user_card_code".into(),
        always_serial: false,
    })
}

/// Prepares `POST /user-cards/import-by-openid` (doc 4015336981). The
/// validity may be given as `date_information` (the request's name) or
/// `valid_date_information` (the answer's); it is sent as `date_information`.
/// Sensitive fields are given in cleartext and encrypted with `encrypt`.
/// Keyed by (card_id, user_card_code): a member is imported once.
pub fn prepare_import(
    input: &[u8],
    options: WireOptions,
    encrypt: &mut dyn FnMut(&Path, &str) -> Result<String>,
) -> Result<Mutation> {
    prepare_import_as(input, options, encrypt, false)
}

/// Prepares `POST /user-cards/import-by-phone` (doc 4015336982): refused with
/// `INVALID_CONFIG` unless [`WireOptions::import_by_phone_enabled`] — the
/// platform lists it as "暂未上线" (not live). Input as for
/// [`prepare_import`] with `phone_number` required and `openid` optional.
pub fn prepare_import_by_phone(
    input: &[u8],
    options: WireOptions,
    encrypt: &mut dyn FnMut(&Path, &str) -> Result<String>,
) -> Result<Mutation> {
    if !options.import_by_phone_enabled {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            "importUserCardByPhone: import-by-phone is not live on WeChat Pay (\"暂未上线\"); \
             set import_by_phone_enabled to call it anyway",
        )
        .with_field("config.import_by_phone_enabled"));
    }
    prepare_import_as(input, options, encrypt, true)
}

fn prepare_import_as(
    input: &[u8],
    options: WireOptions,
    encrypt: &mut dyn FnMut(&Path, &str) -> Result<String>,
    by_phone: bool,
) -> Result<Mutation> {
    let root = if by_phone {
        "importUserCardByPhone"
    } else {
        "importUserCard"
    };
    let (mut v, path) = parse_object(input, root)?;
    let map = v.as_object_mut().ok_or_else(|| path.error("must be an object", None))?;
    match (
        map.shift_remove("valid_date_information"),
        map.contains_key("date_information"),
    ) {
        (Some(_), true) => {
            return Err(path
                .key("valid_date_information")
                .error("give either date_information or valid_date_information, not both", None));
        }
        (Some(d), false) => {
            map.insert("date_information".into(), d);
        }
        (None, _) => {}
    }
    let (card_id, code) = {
        let o = Object::new(&v, path.clone())?;
        required_id(&o, "brand_id", 32)?;
        let card_id = required_id(&o, "card_id", 32)?.to_string();
        if by_phone {
            o.optional_str("openid", Some(128))?;
            required_text(&o, "phone_number")?;
        } else {
            required_id(&o, "openid", 128)?;
            o.optional_str("phone_number", None)?;
        }
        let code = o.required_str("user_card_code", None)?.to_string();
        check_user_card_code(&o.field("user_card_code"), &code)?;
        check_valid_date_information(o.required("date_information")?, o.field("date_information"))?;
        check_rfc3339(&o.field("pickup_time"), o.required_str("pickup_time", None)?)?;
        (card_id, code)
    };
    if let Some(phone) = v.get("phone_number").and_then(Value::as_str).map(str::to_string) {
        v["phone_number"] = Value::String(encrypt(&path.key("phone_number"), &phone)?);
    }
    if let Some(info) = v.get_mut("user_information") {
        prepare_user_information(info, path.key("user_information"), encrypt, options)?;
    }
    let target = format!(
        "{}/{}",
        user_cards_path(),
        if by_phone {
            "import-by-phone"
        } else {
            "import-by-openid"
        }
    );
    Ok(Mutation {
        request: finish("POST", target, Some(&v), true)?,
        kind: if by_phone { IMPORT_BY_PHONE_KIND } else { IMPORT_KIND },
        key: vec![card_id, code],
        keyless: false,
        key_field: format!("{root}.user_card_code"),
        always_serial: true,
    })
}

/// Which join-component token to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// `POST /pre-auth-tokens` (doc 4015336986): the join component, valid 1 h.
    PreAuth,
    /// `POST /pay-view-tokens` (doc 4016834476): the payment-code component, 10 min, single use.
    PayView,
}

/// Prepares a component token request: `{brand_id, card_id, openid}` →
/// `{token, expire_time}`. Not recorded in the outbox: each call yields a
/// fresh token and a repeated one changes no member data.
pub fn prepare_token(input: &[u8], token: Token) -> Result<PreparedRequest> {
    let (root, path) = match token {
        Token::PreAuth => ("createPreAuthToken", "pre-auth-tokens"),
        Token::PayView => ("createPayViewToken", "pay-view-tokens"),
    };
    let (v, p) = parse_object(input, root)?;
    let o = Object::new(&v, p)?;
    required_id(&o, "brand_id", 32)?;
    required_id(&o, "card_id", 32)?;
    required_id(&o, "openid", 128)?;
    finish("POST", format!("{CARD_MEMBER_PATH}/{path}"), Some(&v), false)
}

/// `GET /user-cards/{code}?brand_id&card_id&openid` from already-encoded parts.
fn card_target(code: &str, brand: &str, card_id: &str, openid: &str) -> String {
    format!(
        "{}/{code}?brand_id={brand}&card_id={card_id}&openid={openid}",
        user_cards_path()
    )
}

/// How an ambiguous user-card call is reconciled, from the stored entry:
/// invalidation by reading the card back (`INVALID`), an import by reading it
/// back (it exists). An import by phone has no openid to read with: re-sent.
pub fn read_back_plan(kind: &str, target: &str, body: &[u8]) -> Option<ReadBackPlan> {
    use super::model::body_param;
    match kind {
        INVALIDATE_KIND => {
            let code = target
                .split('?')
                .next()?
                .strip_suffix("/invalidate")?
                .rsplit('/')
                .next()?;
            Some(ReadBackPlan::State {
                target: card_target(
                    code,
                    raw_query_param(target, "brand_id")?,
                    raw_query_param(target, "card_id")?,
                    &body_param(body, "openid")?,
                ),
                member: "user_card_state",
                values: &["INVALID"],
            })
        }
        IMPORT_KIND => Some(ReadBackPlan::State {
            target: card_target(
                &body_param(body, "user_card_code")?,
                &body_param(body, "brand_id")?,
                &body_param(body, "card_id")?,
                &body_param(body, "openid")?,
            ),
            member: "user_card_code",
            values: &[],
        }),
        IMPORT_BY_PHONE_KIND => Some(ReadBackPlan::Resend),
        _ => None,
    }
}
