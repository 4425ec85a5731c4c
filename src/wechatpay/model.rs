//! Payloads of the card-member APIs and their validation
//! (`wechatpay-card-member.md` §3.5, §5, §4).
//!
//! The host describes a call as one JSON object in the wire field names, with
//! sensitive fields in **cleartext**; path and query parameters
//! (`user_card_code`, `card_id`, ...) sit in the same object. Preparation
//! validates everything, encrypts the sensitive fields with RSA-OAEP (§9) and
//! splits the object into the request-target and the exact body bytes.

use crate::error::{Error, Result};
use crate::validate::{Object, Path, as_array, as_object, as_str, check_max_chars, check_one_of};
use serde_json::{Map, Value};

/// `user_card_confirm_state` values (§5.3).
pub const CONFIRM_STATES: &[&str] = &["CREATE_CARD_SUCCESS", "CREATE_CARD_FAIL"];
/// `valid_date_information.type` values (§5.3).
pub const VALID_DATE_TYPES: &[&str] = &["FIX_TIME_RANGE", "FIX_TERM", "PERMANENT"];
/// `user_information.common_field_list[].name` values (§5.3).
pub const COMMON_FIELD_NAMES: &[&str] = &[
    "USER_FORM_FLAG_SEX",
    "USER_FORM_FLAG_NAME",
    "USER_FORM_FLAG_BIRTHDAY",
    "USER_FORM_FLAG_ADDRESS",
    "USER_FORM_FLAG_EMAIL",
    "USER_FORM_FLAG_CITY",
];

/// Base path of the service-provider card-member APIs.
pub const CARD_MEMBER_PATH: &str = "/v3/brand/partner/card-member";

/// Options that change the wire form where the sources disagree (§5.3, §5.4,
/// §4; `docs/wechatpay-card-member-notes.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireOptions {
    /// Also put `card_id` in the confirm body (the query parameter is always sent).
    pub confirm_card_id_in_body: bool,
    /// Encrypt each `custom_field_list[].user_chosen_values[]` element.
    pub encrypt_custom_field_values: bool,
    /// How a card template is removed: `POST …/invalidate` (default) or `DELETE`.
    pub card_template_removal: TemplateRemoval,
    /// Send the create call's `out_request_no` in the template body (default
    /// true); the outbox key is `(brand_id, out_request_no)` either way.
    pub card_template_out_request_no: bool,
    /// Name of the feed content member: `cell` (default) or `cell_message`.
    pub user_feed_content: FeedContentMember,
    /// Allow `import-by-phone` ("暂未上线", not live on the platform; default false).
    pub import_by_phone_enabled: bool,
}

impl Default for WireOptions {
    fn default() -> Self {
        WireOptions {
            confirm_card_id_in_body: false,
            encrypt_custom_field_values: true,
            card_template_removal: TemplateRemoval::Invalidate,
            card_template_out_request_no: true,
            user_feed_content: FeedContentMember::Cell,
            import_by_phone_enabled: false,
        }
    }
}

/// Which card-template removal call is sent (§4: both linked to doc 4015336972).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateRemoval {
    /// `POST /cards/{card_id}/invalidate` with `{"brand_id"}` (the newest page).
    Invalidate,
    /// `DELETE /cards/{card_id}?brand_id=…` (the older page).
    Delete,
}

impl TemplateRemoval {
    /// Parses the configuration spelling `invalidate` / `delete`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invalidate" => Some(TemplateRemoval::Invalidate),
            "delete" => Some(TemplateRemoval::Delete),
            _ => None,
        }
    }
}

/// Name of the `user-feeds` content member (§4: `cell` official, `cell_message` in the community reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedContentMember {
    /// `cell`.
    Cell,
    /// `cell_message`.
    CellMessage,
}

impl FeedContentMember {
    /// Parses the configuration spelling `cell` / `cell_message`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cell" => Some(FeedContentMember::Cell),
            "cell_message" => Some(FeedContentMember::CellMessage),
            _ => None,
        }
    }
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            FeedContentMember::Cell => "cell",
            FeedContentMember::CellMessage => "cell_message",
        }
    }
}

/// A validated call that changes something on the platform: the request and
/// its identity in the outbox. Same key → same request (else
/// `IdempotencyConflict`, naming `key_field`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    /// The request to sign and send.
    pub request: PreparedRequest,
    /// Outbox kind, one per operation (e.g. `wechatpay.createCardTemplate`).
    pub kind: &'static str,
    /// Key parts; the outbox id is [`crate::store::key`]`(kind, key)`.
    pub key: Vec<String>,
    /// A PATCH of absolute values with no platform key: delivered through the
    /// engine's attempt loop (ambiguous outcomes read back) but not recorded.
    /// Keyed by content, a later identical call (A, then B, then A again)
    /// would replay the first answer and leave B in place; resumed after a
    /// crash, a stale PATCH could overwrite a newer change. The caller repeats
    /// a call whose outcome stayed unknown.
    pub keyless: bool,
    /// Field path an idempotency conflict names.
    pub key_field: String,
    /// Always send `Wechatpay-Serial`, even with nothing encrypted.
    pub always_serial: bool,
}

/// How an ambiguous outcome of a [`Mutation`] is reconciled, derived from the
/// stored entry alone (so a resume after a restart reconciles the same way).
#[derive(Debug, Clone, PartialEq)]
pub enum ReadBackPlan {
    /// The platform's own key (`out_request_no`, `record_id`) makes a re-send harmless.
    Resend,
    /// `GET target`; applied when `member` reads back as one of `values`
    /// (any value when `values` is empty: the resource exists).
    State {
        /// Request-target of the read.
        target: String,
        /// Member inspected.
        member: &'static str,
        /// Values that mean "applied".
        values: &'static [&'static str],
    },
    /// `GET target`; applied when every `expected` member reads back equal.
    Shows {
        /// Request-target of the read.
        target: String,
        /// Members the request set.
        expected: Map<String, Value>,
    },
}

/// A query string built in order, each value percent-encoded as signed and sent.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<String>);

impl Query {
    pub(crate) fn push(&mut self, name: &str, value: &str) -> &mut Self {
        self.0.push(format!("{name}={}", encode(value)));
        self
    }
    pub(crate) fn push_opt(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.push(name, v);
        }
        self
    }
    pub(crate) fn append_to(&self, path: String) -> String {
        if self.0.is_empty() {
            path
        } else {
            format!("{path}?{}", self.0.join("&"))
        }
    }
}

/// A required identifier: non-empty string of at most `max` characters.
pub(crate) fn required_id<'a>(o: &Object<'a>, key: &str, max: usize) -> Result<&'a str> {
    let s = o.required_str(key, Some(max))?;
    if s.is_empty() {
        return Err(o.field(key).error("must not be empty", Some("1".into())));
    }
    Ok(s)
}

/// A required non-empty string (no documented length limit).
pub(crate) fn required_text<'a>(o: &Object<'a>, key: &str) -> Result<&'a str> {
    let s = o.required_str(key, None)?;
    if s.is_empty() {
        return Err(o.field(key).error("must not be empty", Some("1".into())));
    }
    Ok(s)
}

/// An optional integer member within `min..=max`, rendered for a query.
pub(crate) fn integer_in(o: &Object<'_>, key: &str, min: i64, max: i64, required: bool) -> Result<Option<String>> {
    let v = match o.optional(key) {
        None if required => return Err(o.field(key).error("is required", None)),
        None => return Ok(None),
        Some(v) => v,
    };
    let n = v
        .as_i64()
        .ok_or_else(|| o.field(key).error("must be an integer", None))?;
    crate::validate::check_range(&o.field(key), i128::from(n), i128::from(min), i128::from(max))?;
    Ok(Some(n.to_string()))
}

/// A required RFC 3339 date-time member; returns Unix milliseconds.
pub(crate) fn required_time(o: &Object<'_>, key: &str) -> Result<i64> {
    check_rfc3339(&o.field(key), o.required_str(key, None)?)
}

/// An optional `{jump_appid, jump_path}` object (code, points, balance, purchase information).
pub(crate) fn check_jump<'a>(o: &Object<'a>, key: &str) -> Result<Option<Object<'a>>> {
    let Some(v) = o.optional(key) else { return Ok(None) };
    let j = Object::new(v, o.field(key))?;
    j.optional_str("jump_appid", Some(32))?;
    j.optional_str("jump_path", None)?;
    Ok(Some(j))
}

/// A read back that applies when every member the request sets (but the
/// identifying `brand_id`) reads back equal.
pub(crate) fn shows_body(target: String, body: &[u8]) -> Option<ReadBackPlan> {
    let Value::Object(mut expected) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    expected.shift_remove("brand_id");
    Some(ReadBackPlan::Shows { target, expected })
}

/// `name=value` of a raw (still encoded) query.
pub(crate) fn raw_query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// A string member of a stored JSON body, percent-encoded for a query.
pub(crate) fn body_param(body: &[u8], name: &str) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get(name).and_then(Value::as_str).map(encode)
}

/// A validated request ready to sign: method, request-target and body bytes.
/// `Debug` shows the body's size only.
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    /// `GET`, `POST` or `PATCH`.
    pub method: &'static str,
    /// Path and raw query, exactly as signed and sent.
    pub target: String,
    /// Exact body bytes (empty for GET).
    pub body: Vec<u8>,
    /// Whether a field was encrypted, so `Wechatpay-Serial` must name the key.
    pub encrypted: bool,
}

impl std::fmt::Debug for PreparedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedRequest")
            .field("method", &self.method)
            .field("target", &crate::redact::Target(&self.target))
            .field("body", &crate::redact::Bytes(self.body.len()))
            .field("encrypted", &self.encrypted)
            .finish()
    }
}

/// APIv3 JSON rules (§5.3): no `null`, no characters outside the BMP (4-byte UTF-8).
pub fn check_json_rules(v: &Value, path: &Path) -> Result<()> {
    match v {
        Value::Null => Err(path.error("must not be null (APIv3 JSON forbids null; leave the field out)", None)),
        Value::String(s) => check_bmp(path, s),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check_json_rules(x, &path.index(i))),
        Value::Object(map) => map.iter().try_for_each(|(k, x)| {
            let p = path.key(k);
            check_bmp(&p, k)?;
            check_json_rules(x, &p)
        }),
        _ => Ok(()),
    }
}

fn check_bmp(path: &Path, s: &str) -> Result<()> {
    if s.chars().any(|c| u32::from(c) > 0xFFFF) {
        return Err(path.error(
            "must not contain characters outside the Basic Multilingual Plane (4-byte UTF-8, e.g. emoji)",
            None,
        ));
    }
    Ok(())
}

/// `user_card_code`: at most 32 characters of digits, ASCII letters and
/// half-width punctuation (§5.1).
pub fn check_user_card_code(path: &Path, code: &str) -> Result<()> {
    check_max_chars(path, code, 32)?;
    if code.is_empty() {
        return Err(path.error("must not be empty", Some("1".into())));
    }
    if !code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c.is_ascii_punctuation())
    {
        return Err(path.error(
            "must contain only digits, ASCII letters and half-width punctuation",
            Some("32".into()),
        ));
    }
    Ok(())
}

pub(crate) fn check_color(path: &Path, s: &str) -> Result<()> {
    let ok = s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit());
    if !ok {
        return Err(path.error("must be a hex colour #RRGGBB", Some("7".into())));
    }
    Ok(())
}

pub(crate) fn check_url(path: &Path, s: &str, max: usize) -> Result<()> {
    check_max_chars(path, s, max)?;
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.contains(' ')
    });
    if !host_ok || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(path.error("must be an absolute http(s) URL without spaces", Some(max.to_string())));
    }
    Ok(())
}

pub(crate) fn check_rfc3339(path: &Path, s: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .map_err(|_| {
            path.error(
                "must be an RFC 3339 date-time, e.g. 2020-05-20T13:29:35.120+08:00",
                None,
            )
        })
}

/// `valid_date_information` (§5.3): `type` required and consistent with the
/// time fields.
pub fn check_valid_date_information(v: &Value, path: Path) -> Result<()> {
    let o = Object::new(v, path)?;
    let kind = o.required_str("type", None)?;
    check_one_of(&o.field("type"), kind, VALID_DATE_TYPES)?;
    let begin = o.optional_str("available_begin_time", None)?;
    let end = o.optional_str("available_end_time", None)?;
    let begin_ms = begin
        .map(|b| check_rfc3339(&o.field("available_begin_time"), b))
        .transpose()?;
    let end_ms = end
        .map(|e| check_rfc3339(&o.field("available_end_time"), e))
        .transpose()?;
    let days = match o.optional("available_day_after_receive") {
        None => None,
        Some(d) => Some(d.as_i64().filter(|n| *n >= 1).ok_or_else(|| {
            o.field("available_day_after_receive")
                .error("must be a positive integer", Some("1".into()))
        })?),
    };
    match kind {
        "FIX_TIME_RANGE" => {
            let (Some(b), Some(e)) = (begin_ms, end_ms) else {
                return Err(o.field("available_end_time").error(
                    "available_begin_time and available_end_time are required when type is FIX_TIME_RANGE",
                    None,
                ));
            };
            if b >= e {
                return Err(o
                    .field("available_end_time")
                    .error("must be later than available_begin_time", None));
            }
        }
        "FIX_TERM" if days.is_none() => {
            return Err(o
                .field("available_day_after_receive")
                .error("is required when type is FIX_TERM", None));
        }
        "PERMANENT" if begin.is_some() || end.is_some() => {
            return Err(o
                .field("type")
                .error("PERMANENT takes no available_begin_time / available_end_time", None));
        }
        _ => {}
    }
    Ok(())
}

/// Validates `user_information` and encrypts its sensitive values in place.
pub(crate) fn prepare_user_information(
    v: &mut Value,
    path: Path,
    encrypt: &mut dyn FnMut(&Path, &str) -> Result<String>,
    options: WireOptions,
) -> Result<()> {
    as_object(v, &path)?;
    if let Some(list) = v.get_mut("common_field_list") {
        let lp = path.key("common_field_list");
        as_array(list, &lp)?;
        for (i, item) in list.as_array_mut().into_iter().flatten().enumerate() {
            let ip = lp.index(i);
            let o = Object::new(item, ip.clone())?;
            check_one_of(&o.field("name"), o.required_str("name", None)?, COMMON_FIELD_NAMES)?;
            let value = o.required_str("value", None)?.to_string();
            let enc = encrypt(&ip.key("value"), &value)?;
            item["value"] = Value::String(enc);
        }
    }
    if let Some(list) = v.get_mut("custom_field_list") {
        let lp = path.key("custom_field_list");
        as_array(list, &lp)?;
        for (i, item) in list.as_array_mut().into_iter().flatten().enumerate() {
            let ip = lp.index(i);
            let o = Object::new(item, ip.clone())?;
            o.required_str("name", None)?;
            let values = o.required_array("user_chosen_values", None)?;
            let mut out = Vec::with_capacity(values.len());
            for (j, x) in values.iter().enumerate() {
                let vp = ip.key("user_chosen_values").index(j);
                let s = as_str(x, &vp)?;
                out.push(Value::String(if options.encrypt_custom_field_values {
                    encrypt(&vp, s)?
                } else {
                    s.to_string()
                }));
            }
            item["user_chosen_values"] = Value::Array(out);
        }
    }
    Ok(())
}

pub(crate) fn take_str(map: &mut Map<String, Value>, key: &str, path: &Path) -> Result<String> {
    // shift_remove keeps the host's member order (remove would swap the last member in).
    match map.shift_remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(path.key(key).error("must be a string", None)),
        None => Err(path.key(key).error("is required", None)),
    }
}

pub(crate) fn parse_object(input: &[u8], root: &str) -> Result<(Value, Path)> {
    let path = Path::root(root);
    let v = crate::json::parse_strict(input, &path)?;
    as_object(&v, &path)?;
    check_json_rules(&v, &path)?;
    Ok((v, path))
}

pub(crate) fn finish(
    method: &'static str,
    target: String,
    body: Option<&Value>,
    encrypted: bool,
) -> Result<PreparedRequest> {
    let body = match body {
        Some(b) => serde_json::to_vec(b).map_err(|e| Error::internal("serialising body", e))?,
        None => Vec::new(),
    };
    Ok(PreparedRequest {
        method,
        target,
        body,
        encrypted,
    })
}

pub(crate) fn encode(segment: &str) -> String {
    crate::wechatpay::sign::encode_path_segment(segment)
}

/// Prepares `POST /user-cards/{user_card_code}/confirm?card_id=…` (§5).
///
/// `input` holds `user_card_code` and `card_id` plus the body members;
/// `phone_number`, `common_field_list[].value` and (by default)
/// `user_chosen_values[]` are given in cleartext and encrypted with `encrypt`.
pub fn prepare_confirm(
    input: &[u8],
    options: WireOptions,
    encrypt: &mut dyn FnMut(&Path, &str) -> Result<String>,
) -> Result<PreparedRequest> {
    let (mut v, path) = parse_object(input, "confirm")?;
    let map = v.as_object_mut().ok_or_else(|| path.error("must be an object", None))?;
    let code = take_str(map, "user_card_code", &path)?;
    check_user_card_code(&path.key("user_card_code"), &code)?;
    let card_id = take_str(map, "card_id", &path)?;
    check_max_chars(&path.key("card_id"), &card_id, 32)?;
    if card_id.is_empty() {
        return Err(path.key("card_id").error("must not be empty", Some("1".into())));
    }
    if options.confirm_card_id_in_body {
        map.insert("card_id".into(), Value::String(card_id.clone()));
    }
    let encrypted = prepare_card_body(&mut v, &path, encrypt, options, true)?;
    let target = format!(
        "{CARD_MEMBER_PATH}/user-cards/{}/confirm?card_id={}",
        encode(&code),
        encode(&card_id)
    );
    finish("POST", target, Some(&v), encrypted)
}

/// Prepares `PATCH /user-cards/{user_card_code}?card_id=…` (update a user card, §4).
pub fn prepare_update_user_card(
    input: &[u8],
    options: WireOptions,
    encrypt: &mut dyn FnMut(&Path, &str) -> Result<String>,
) -> Result<PreparedRequest> {
    let (mut v, path) = parse_object(input, "updateUserCard")?;
    let map = v.as_object_mut().ok_or_else(|| path.error("must be an object", None))?;
    let code = take_str(map, "user_card_code", &path)?;
    check_user_card_code(&path.key("user_card_code"), &code)?;
    let card_id = take_str(map, "card_id", &path)?;
    check_max_chars(&path.key("card_id"), &card_id, 32)?;
    let encrypted = prepare_card_body(&mut v, &path, encrypt, options, false)?;
    let target = format!(
        "{CARD_MEMBER_PATH}/user-cards/{}?card_id={}",
        encode(&code),
        encode(&card_id)
    );
    finish("PATCH", target, Some(&v), encrypted)
}

/// Prepares `GET /user-cards/{user_card_code}?brand_id&card_id&openid` (§4).
pub fn prepare_get_user_card(input: &[u8]) -> Result<PreparedRequest> {
    let (v, path) = parse_object(input, "getUserCard")?;
    let o = Object::new(&v, path.clone())?;
    let code = o.required_str("user_card_code", None)?;
    check_user_card_code(&o.field("user_card_code"), code)?;
    let brand = o.required_str("brand_id", Some(32))?;
    let card_id = o.required_str("card_id", Some(32))?;
    let openid = o.required_str("openid", Some(128))?;
    let target = format!(
        "{CARD_MEMBER_PATH}/user-cards/{}?brand_id={}&card_id={}&openid={}",
        encode(code),
        encode(brand),
        encode(card_id),
        encode(openid)
    );
    finish("GET", target, None, false)
}

/// Prepares `POST /user-points/sync` (§4): `out_request_no, brand_id, card_id,
/// openid, user_card_code, point_balance`.
pub fn prepare_sync_points(input: &[u8]) -> Result<PreparedRequest> {
    let (v, path) = parse_object(input, "syncUserPoints")?;
    let o = Object::new(&v, path)?;
    o.required_str("out_request_no", Some(32))?;
    o.required_str("brand_id", Some(32))?;
    o.required_str("card_id", Some(32))?;
    o.required_str("openid", Some(128))?;
    check_user_card_code(&o.field("user_card_code"), o.required_str("user_card_code", None)?)?;
    let balance = o.required("point_balance")?;
    if balance.as_i64().is_none_or(|n| n < 0) {
        return Err(o
            .field("point_balance")
            .error("must be a non-negative integer", Some("0".into())));
    }
    finish("POST", format!("{CARD_MEMBER_PATH}/user-points/sync"), Some(&v), false)
}

/// Outbox kind of point-balance syncs, keyed by (brand_id, out_request_no).
pub const SYNC_POINTS_KIND: &str = "wechatpay.syncUserPoints";

/// [`prepare_sync_points`] as an outbox mutation: recorded before it is sent,
/// replayed for a repeated `out_request_no`, re-sent after an ambiguous
/// outcome (the platform's `out_request_no` makes that harmless).
pub fn sync_points_mutation(input: &[u8]) -> Result<Mutation> {
    let request = prepare_sync_points(input)?;
    let v: Value = serde_json::from_slice(input).unwrap_or_default();
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(Mutation {
        request,
        kind: SYNC_POINTS_KIND,
        key: vec![text("brand_id"), text("out_request_no")],
        keyless: false,
        key_field: "syncUserPoints.out_request_no".into(),
        always_serial: false,
    })
}

/// The card body shared by confirm and update: limits, enums, formats, and
/// encryption of the sensitive fields. Returns whether anything was encrypted.
fn prepare_card_body(
    v: &mut Value,
    path: &Path,
    encrypt: &mut dyn FnMut(&Path, &str) -> Result<String>,
    options: WireOptions,
    is_confirm: bool,
) -> Result<bool> {
    let mut encrypted = false;
    let mut counting = |p: &Path, s: &str| {
        encrypted = true;
        encrypt(p, s)
    };
    {
        let o = Object::new(v, path.clone())?;
        o.required_str("brand_id", Some(32))?;
        o.required_str("openid", Some(128))?;
        if let Some(c) = o.optional_str("card_color", Some(7))? {
            check_color(&o.field("card_color"), c)?;
        }
        if let Some(u) = o.optional_str("card_picture_url", None)? {
            check_url(&o.field("card_picture_url"), u, 256)?;
        }
        o.optional_str("level", None)?;
        o.optional_str("attach", None)?;
        o.optional_str("pickup_time", None)?
            .map(|t| check_rfc3339(&o.field("pickup_time"), t))
            .transpose()?;
        if let Some(d) = o.optional("valid_date_information") {
            check_valid_date_information(d, o.field("valid_date_information"))?;
        }
        if is_confirm {
            let state = o.required_str("user_card_confirm_state", None)?;
            check_one_of(&o.field("user_card_confirm_state"), state, CONFIRM_STATES)?;
        }
        o.optional_str("phone_number", None)?;
    }
    if let Some(phone) = v.get("phone_number").and_then(Value::as_str).map(str::to_string) {
        v["phone_number"] = Value::String(counting(&path.key("phone_number"), &phone)?);
    }
    if let Some(info) = v.get_mut("user_information") {
        prepare_user_information(info, path.key("user_information"), &mut counting, options)?;
    }
    Ok(encrypted)
}

/// Decrypts, in place, the sensitive fields of a user card or callback
/// resource received from WeChat (`phone_number`, `common_field_list[].value`,
/// `custom_field_list[].user_chosen_values[]`), so the host sees cleartext.
/// A field that fails to decrypt is left as is and reported in the returned
/// list of paths (§3.7 step 8: the event is still delivered).
pub fn decrypt_sensitive_fields(v: &mut Value, decrypt: &mut dyn FnMut(&str) -> Result<String>) -> Vec<String> {
    let mut failed = Vec::new();
    let mut one = |slot: &mut Value, path: String| {
        if let Some(ct) = slot.as_str() {
            match decrypt(ct) {
                Ok(clear) => *slot = Value::String(clear),
                Err(_) => failed.push(path),
            }
        }
    };
    if let Some(p) = v.get_mut("phone_number") {
        one(p, "phone_number".into());
    }
    if let Some(info) = v.get_mut("user_information") {
        if let Some(list) = info.get_mut("common_field_list").and_then(Value::as_array_mut) {
            for (i, item) in list.iter_mut().enumerate() {
                if let Some(val) = item.get_mut("value") {
                    one(val, format!("user_information.common_field_list[{i}].value"));
                }
            }
        }
        if let Some(list) = info.get_mut("custom_field_list").and_then(Value::as_array_mut) {
            for (i, item) in list.iter_mut().enumerate() {
                if let Some(values) = item.get_mut("user_chosen_values").and_then(Value::as_array_mut) {
                    for (j, val) in values.iter_mut().enumerate() {
                        one(
                            val,
                            format!("user_information.custom_field_list[{i}].user_chosen_values[{j}]"),
                        );
                    }
                }
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fake_encrypt(_: &Path, s: &str) -> Result<String> {
        Ok(format!("ENC({s})"))
    }

    fn confirm(v: Value) -> Result<PreparedRequest> {
        prepare_confirm(v.to_string().as_bytes(), WireOptions::default(), &mut fake_encrypt)
    }

    fn base() -> Value {
        json!({"user_card_code": "478515832665", "card_id": "pbLatjvWOibDc5-TBnbUk1pD12o0",
               "brand_id": "1004", "openid": "obLatjnx9gnqzS4myYGmLZ7LgLBA",
               "user_card_confirm_state": "CREATE_CARD_SUCCESS"})
    }

    fn with(mut v: Value, key: &str, x: Value) -> Value {
        v[key] = x;
        v
    }

    fn field_of(r: Result<PreparedRequest>) -> String {
        r.unwrap_err().field().unwrap_or_default().to_string()
    }

    #[test]
    fn minimal_confirm_matches_the_spec_vector_body_and_target() {
        let p = confirm(base()).unwrap();
        assert_eq!(p.method, "POST");
        assert_eq!(
            p.target,
            "/v3/brand/partner/card-member/user-cards/478515832665/confirm?card_id=pbLatjvWOibDc5-TBnbUk1pD12o0"
        );
        assert_eq!(
            String::from_utf8(p.body).unwrap(),
            r#"{"brand_id":"1004","openid":"obLatjnx9gnqzS4myYGmLZ7LgLBA","user_card_confirm_state":"CREATE_CARD_SUCCESS"}"#
        );
        assert!(!p.encrypted);
    }

    #[test]
    fn sensitive_fields_are_encrypted_and_card_id_optionally_in_body() {
        let v = with(
            with(base(), "phone_number", json!("13800000000")),
            "user_information",
            json!({
            "common_field_list": [{"name": "USER_FORM_FLAG_SEX", "value": "M"}],
            "custom_field_list": [{"name": "sport", "user_chosen_values": ["run", "swim"]}]}),
        );
        let opts = WireOptions {
            confirm_card_id_in_body: true,
            ..WireOptions::default()
        };
        let p = prepare_confirm(v.to_string().as_bytes(), opts, &mut fake_encrypt).unwrap();
        let body: Value = serde_json::from_slice(&p.body).unwrap();
        assert!(p.encrypted);
        assert_eq!(body["phone_number"], "ENC(13800000000)");
        assert_eq!(body["user_information"]["common_field_list"][0]["value"], "ENC(M)");
        assert_eq!(
            body["user_information"]["custom_field_list"][0]["user_chosen_values"][1],
            "ENC(swim)"
        );
        assert_eq!(body["card_id"], "pbLatjvWOibDc5-TBnbUk1pD12o0");
        assert!(body.get("user_card_code").is_none());
    }

    #[test]
    fn every_rule_names_its_field() {
        let cases: Vec<(Value, &str)> = vec![
            (
                with(base(), "user_card_code", json!("1".repeat(33))),
                "confirm.user_card_code",
            ),
            (with(base(), "user_card_code", json!("12 34")), "confirm.user_card_code"),
            (
                with(base(), "user_card_code", json!("１２３")),
                "confirm.user_card_code",
            ),
            (with(base(), "card_id", json!("c".repeat(33))), "confirm.card_id"),
            (with(base(), "brand_id", json!("b".repeat(33))), "confirm.brand_id"),
            (with(base(), "openid", json!("o".repeat(129))), "confirm.openid"),
            (
                with(base(), "user_card_confirm_state", json!("DONE")),
                "confirm.user_card_confirm_state",
            ),
            (with(base(), "card_color", json!("#FFFF0G")), "confirm.card_color"),
            (with(base(), "card_color", json!("FFFF00")), "confirm.card_color"),
            (
                with(base(), "card_picture_url", json!("ftp://x/y")),
                "confirm.card_picture_url",
            ),
            (
                with(
                    base(),
                    "card_picture_url",
                    json!(format!("https://a/{}", "p".repeat(250))),
                ),
                "confirm.card_picture_url",
            ),
            (with(base(), "level", json!("钻石😀")), "confirm.level"),
            (with(base(), "attach", Value::Null), "confirm.attach"),
            (
                with(base(), "valid_date_information", json!({"type": "SOMETIMES"})),
                "confirm.valid_date_information.type",
            ),
            (
                with(
                    base(),
                    "valid_date_information",
                    json!({"type": "FIX_TIME_RANGE", "available_begin_time": "2020-05-20T13:29:35.120+08:00"}),
                ),
                "confirm.valid_date_information.available_end_time",
            ),
            (
                with(
                    base(),
                    "valid_date_information",
                    json!({"type": "FIX_TIME_RANGE", "available_begin_time": "2030-05-20T13:29:35+08:00", "available_end_time": "2020-05-20T13:29:35+08:00"}),
                ),
                "confirm.valid_date_information.available_end_time",
            ),
            (
                with(base(), "valid_date_information", json!({"type": "FIX_TERM"})),
                "confirm.valid_date_information.available_day_after_receive",
            ),
            (
                with(
                    base(),
                    "valid_date_information",
                    json!({"type": "PERMANENT", "available_end_time": "2030-05-20T13:29:35+08:00"}),
                ),
                "confirm.valid_date_information.type",
            ),
            (
                with(
                    base(),
                    "user_information",
                    json!({"common_field_list": [{"name": "USER_FORM_FLAG_AGE", "value": "1"}]}),
                ),
                "confirm.user_information.common_field_list[0].name",
            ),
        ];
        for (v, field) in cases {
            assert_eq!(field_of(confirm(v.clone())), field, "{v}");
        }
        let ok: Vec<Value> = vec![
            with(base(), "user_card_code", json!("1".repeat(32))),
            with(base(), "user_card_code", json!("AB-12_x.y")),
            with(base(), "card_color", json!("#ffff00")),
            with(base(), "level", json!("钻石会员")),
            with(
                base(),
                "valid_date_information",
                json!({"type": "FIX_TIME_RANGE", "available_begin_time": "2020-05-20T13:29:35.120+08:00", "available_end_time": "2030-05-20T13:29:35.120+08:00", "available_day_after_receive": 200}),
            ),
            with(
                base(),
                "valid_date_information",
                json!({"type": "FIX_TERM", "available_day_after_receive": 30}),
            ),
            with(base(), "valid_date_information", json!({"type": "PERMANENT"})),
        ];
        for v in ok {
            assert!(confirm(v.clone()).is_ok(), "{v}");
        }
    }

    #[test]
    fn encryption_failure_names_the_field() {
        let v = with(base(), "phone_number", json!("x".repeat(300)));
        let mut enc = |p: &Path, s: &str| -> Result<String> {
            if s.len() > 214 {
                return Err(p.error("must be at most 214 bytes to be encrypted", Some("214".into())));
            }
            Ok(s.into())
        };
        let e = prepare_confirm(v.to_string().as_bytes(), WireOptions::default(), &mut enc).unwrap_err();
        assert_eq!(e.field(), Some("confirm.phone_number"));
    }

    #[test]
    fn other_requests_build_their_targets() {
        let g = prepare_get_user_card(
            br#"{"user_card_code":"478515832665","brand_id":"1004","card_id":"pbL-1","openid":"o/1"}"#,
        )
        .unwrap();
        assert_eq!(
            g.target,
            "/v3/brand/partner/card-member/user-cards/478515832665?brand_id=1004&card_id=pbL-1&openid=o%2F1"
        );
        assert!(g.body.is_empty());
        let s = prepare_sync_points(br#"{"out_request_no":"R1","brand_id":"1004","card_id":"c","openid":"o","user_card_code":"1","point_balance":10}"#).unwrap();
        assert_eq!(s.target, "/v3/brand/partner/card-member/user-points/sync");
        assert!(prepare_sync_points(br#"{"out_request_no":"R1","brand_id":"1004","card_id":"c","openid":"o","user_card_code":"1","point_balance":-1}"#).is_err());
        let u = prepare_update_user_card(
            br#"{"user_card_code":"478515832665","card_id":"c","brand_id":"1004","openid":"o","level":"gold"}"#,
            WireOptions::default(),
            &mut fake_encrypt,
        )
        .unwrap();
        assert_eq!(u.method, "PATCH");
        assert_eq!(
            u.target,
            "/v3/brand/partner/card-member/user-cards/478515832665?card_id=c"
        );
    }

    #[test]
    fn received_sensitive_fields_are_decrypted_and_failures_listed() {
        let mut v = json!({"phone_number": "ENC(138)", "user_information": {
            "common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": "ENC(Li)"}, {"name": "X", "value": "garbage"}],
            "custom_field_list": [{"name": "s", "user_chosen_values": ["ENC(a)"]}]}});
        let mut dec = |ct: &str| -> Result<String> {
            ct.strip_prefix("ENC(")
                .and_then(|r| r.strip_suffix(')'))
                .map(str::to_string)
                .ok_or_else(|| Error::new(crate::error::ErrorKind::DecryptFailed, "bad"))
        };
        let failed = decrypt_sensitive_fields(&mut v, &mut dec);
        assert_eq!(v["phone_number"], "138");
        assert_eq!(v["user_information"]["common_field_list"][0]["value"], "Li");
        assert_eq!(
            v["user_information"]["custom_field_list"][0]["user_chosen_values"][0],
            "a"
        );
        assert_eq!(failed, vec!["user_information.common_field_list[1].value".to_string()]);
    }
}
