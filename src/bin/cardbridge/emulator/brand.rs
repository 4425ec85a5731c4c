//! The WeChat Pay brand member-card family beyond the card-opening sync, as
//! the emulator plays it (`wechatpay-card-member.md` §4): card templates,
//! user-card list / invalidate / import, member feeds, the points-for-coupon
//! answer and membership activities, over in-memory state.
//!
//! The WeChat side ([`super::wechatpay`]) checks headers, the merchant's
//! signature and `Wechatpay-Serial`, decrypts sensitive request fields, signs
//! the answer and applies faults; this module only routes and keeps state.
//! Creates are idempotent by `out_request_no` (templates, activities, feeds)
//! or `record_id` (exchange confirmations): a repeat answers the first result
//! and changes nothing. Emulator decisions where the platform's behaviour is
//! unpublished: a removed template stays readable with `state`
//! `CARD_INVALID` (both `DELETE` and `POST …/invalidate`); invalidating or
//! importing a card answers the user card; `import-by-phone` answers `403
//! NO_AUTH` ("暂未上线", not live).

use cardbridge::wechatpay::activities::{ACTIVITY_CHANNELS, ACTIVITY_STATES};
use cardbridge::wechatpay::feeds::EXCHANGE_STATES;
use cardbridge::wechatpay::members::USER_CARD_STATES;
use cardbridge::wechatpay::model::CARD_MEMBER_PATH;
use cardbridge::wechatpay::templates::{CARD_TYPES, CODE_MODES, CODE_TYPES, TEMPLATE_STATES};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The user cards of [`super::wechatpay`], as this module needs them.
pub(super) trait CardBook {
    /// A card's fields (cleartext) by code.
    fn fields_mut(&mut self, code: &str) -> Option<&mut Map<String, Value>>;
    /// Every card's fields.
    fn all_fields(&self) -> Vec<Map<String, Value>>;
    /// Adds an imported card (open: no confirm needed).
    fn insert_open(&mut self, code: &str, fields: Map<String, Value>);
}

/// How the WeChat side must present an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seal {
    /// As is.
    Plain,
    /// A user card: §5.6 members, sensitive fields encrypted to the merchant.
    Card,
    /// A page whose `data[]` are user cards.
    CardList,
}

/// An answer (or refusal) before signing.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub status: u16,
    pub body: Value,
    pub seal: Seal,
}

type Step<T> = std::result::Result<T, Answer>;

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            body,
            seal: Seal::Plain,
        }
    }
    fn card(fields: Map<String, Value>) -> Answer {
        Answer {
            status: 200,
            body: Value::Object(fields),
            seal: Seal::Card,
        }
    }
    fn error(status: u16, code: &str, message: &str) -> Answer {
        Answer {
            status,
            body: json!({"code": code, "message": message}),
            seal: Seal::Plain,
        }
    }
    fn param(location: &str, field: &str, issue: &str) -> Answer {
        Answer {
            status: 400,
            body: json!({"code": "PARAM_ERROR", "message": "参数错误",
                         "detail": {"field": field, "location": location, "issue": issue}}),
            seal: Seal::Plain,
        }
    }
    fn not_found(what: &str) -> Answer {
        Answer::error(404, "RESOURCE_NOT_EXISTS", what)
    }
}

/// Templates, feeds, exchange confirmations and activities.
#[derive(Debug, Default)]
pub(super) struct BrandState {
    templates: BTreeMap<String, Map<String, Value>>,
    template_requests: BTreeMap<(String, String), String>,
    feeds: BTreeMap<(String, String), Value>,
    exchanges: BTreeMap<(String, String), Value>,
    activities: BTreeMap<String, Map<String, Value>>,
    activity_requests: BTreeMap<(String, String), String>,
    seq: u64,
}

impl BrandState {
    fn next_id(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// What must survive a restart (`--state`), as JSON: every map with its keys.
    pub(super) fn export(&self) -> Value {
        let pairs =
            |m: &BTreeMap<(String, String), String>| m.iter().map(|((a, b), v)| json!([a, b, v])).collect::<Vec<_>>();
        let keyed =
            |m: &BTreeMap<(String, String), Value>| m.iter().map(|((a, b), v)| json!([a, b, v])).collect::<Vec<_>>();
        json!({
            "templates": self.templates,
            "template_requests": pairs(&self.template_requests),
            "feeds": keyed(&self.feeds),
            "exchanges": keyed(&self.exchanges),
            "activities": self.activities,
            "activity_requests": pairs(&self.activity_requests),
            "seq": self.seq,
        })
    }

    /// Restores an [`Self::export`] document; `Err` names the member that does not fit.
    pub(super) fn import(&mut self, v: &Value) -> std::result::Result<(), String> {
        let objects = |name: &str| -> std::result::Result<BTreeMap<String, Map<String, Value>>, String> {
            match v.get(name) {
                None => Ok(BTreeMap::new()),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, x)| match x {
                        Value::Object(o) => Ok((k.clone(), o.clone())),
                        _ => Err(format!("brand.{name}: each entry must be an object")),
                    })
                    .collect(),
                Some(_) => Err(format!("brand.{name}: must be an object")),
            }
        };
        let triples = |name: &str| -> std::result::Result<Vec<(String, String, Value)>, String> {
            let bad = || format!("brand.{name}: must be a list of [key, key, value]");
            match v.get(name) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|t| match t.as_array().map(Vec::as_slice) {
                        Some([Value::String(a), Value::String(b), x]) => Ok((a.clone(), b.clone(), x.clone())),
                        _ => Err(bad()),
                    })
                    .collect(),
                Some(_) => Err(bad()),
            }
        };
        let ids = |name: &str| -> std::result::Result<BTreeMap<(String, String), String>, String> {
            triples(name)?
                .into_iter()
                .map(|(a, b, x)| match x {
                    Value::String(id) => Ok(((a, b), id)),
                    _ => Err(format!("brand.{name}: each value must be an id")),
                })
                .collect()
        };
        let values = |name: &str| -> std::result::Result<BTreeMap<(String, String), Value>, String> {
            Ok(triples(name)?.into_iter().map(|(a, b, x)| ((a, b), x)).collect())
        };
        let restored = BrandState {
            templates: objects("templates")?,
            template_requests: ids("template_requests")?,
            feeds: values("feeds")?,
            exchanges: values("exchanges")?,
            activities: objects("activities")?,
            activity_requests: ids("activity_requests")?,
            seq: v.get("seq").and_then(Value::as_u64).unwrap_or(0),
        };
        self.templates.extend(restored.templates);
        self.template_requests.extend(restored.template_requests);
        self.feeds.extend(restored.feeds);
        self.exchanges.extend(restored.exchanges);
        self.activities.extend(restored.activities);
        self.activity_requests.extend(restored.activity_requests);
        self.seq = self.seq.max(restored.seq);
        Ok(())
    }

    /// `{"templates":[…],"feeds":[…],"exchanges":[…],"activities":[…]}` (test view).
    pub(super) fn snapshot(&self) -> Value {
        json!({
            "templates": self.templates.values().cloned().map(Value::Object).collect::<Vec<_>>(),
            "feeds": self.feeds.values().cloned().collect::<Vec<_>>(),
            "exchanges": self.exchanges.values().cloned().collect::<Vec<_>>(),
            "activities": self.activities.values().cloned().map(Value::Object).collect::<Vec<_>>(),
        })
    }
}

/// Whether this module serves `path`.
pub(super) fn serves(path: &str) -> bool {
    let Some(rest) = path.strip_prefix(CARD_MEMBER_PATH) else {
        return false;
    };
    rest == "/cards"
        || rest.starts_with("/cards/")
        || rest == "/user-cards"
        || rest.starts_with("/user-cards/import-by-")
        || (rest.starts_with("/user-cards/") && rest.ends_with("/invalidate"))
        || rest == "/pre-auth-tokens"
        || rest == "/pay-view-tokens"
        || rest == "/user-feeds"
        || rest == "/user-points/exchange-coupon/confirm"
        || rest == "/membership-activities"
        || rest.starts_with("/membership-activities/")
}

/// Whether the call must name a key in `Wechatpay-Serial` (the imports).
pub(super) fn needs_serial(path: &str) -> bool {
    path.strip_prefix(CARD_MEMBER_PATH)
        .is_some_and(|r| r.starts_with("/user-cards/import-by-"))
}

fn now_text() -> String {
    let now = chrono::Utc::now();
    match chrono::FixedOffset::east_opt(8 * 3600) {
        Some(cst) => now
            .with_timezone(&cst)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        None => now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

fn query<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn required_query<'a>(q: &'a [(String, String)], name: &str) -> Step<&'a str> {
    query(q, name).ok_or_else(|| Answer::param("query", name, "required query parameter is missing or empty"))
}

fn text<'a>(body: &'a Map<String, Value>, name: &str) -> Step<&'a str> {
    match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(Answer::param("body", &format!("/{name}"), "must be a non-empty string")),
        None => Err(Answer::param("body", &format!("/{name}"), "is required")),
    }
}

fn one_of(body: &Map<String, Value>, name: &str, allowed: &[&str]) -> Step<()> {
    if allowed.contains(&text(body, name)?) {
        Ok(())
    } else {
        Err(Answer::param("body", &format!("/{name}"), "is not an allowed value"))
    }
}

/// `offset`/`limit` of a list query: `limit` 1..=20, default 0/20.
fn page(q: &[(String, String)]) -> Step<(usize, usize)> {
    let number = |name: &str, default: usize| match query(q, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| Answer::param("query", name, "must be a non-negative integer")),
    };
    let (offset, limit) = (number("offset", 0)?, number("limit", 20)?);
    if !(1..=20).contains(&limit) {
        return Err(Answer::param("query", "limit", "must be between 1 and 20"));
    }
    Ok((offset, limit))
}

fn paged(items: Vec<Value>, offset: usize, limit: usize) -> Value {
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    json!({"data": data, "offset": offset, "limit": limit, "total_count": total})
}

fn body_or_empty(body: Option<Map<String, Value>>) -> Map<String, Value> {
    body.unwrap_or_default()
}

/// Serves one brand-family call (after the WeChat side's checks).
pub(super) fn route(
    st: &mut BrandState,
    cards: &mut dyn CardBook,
    method: &str,
    path: &str,
    q: &[(String, String)],
    body: Option<Map<String, Value>>,
) -> Answer {
    let rest = path.strip_prefix(CARD_MEMBER_PATH).unwrap_or_default();
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let body = body_or_empty(body);
    let not_allowed = || Err(Answer::error(405, "METHOD_NOT_ALLOWED", "不支持的HTTP方法"));
    let step: Step<Answer> = match (segments.as_slice(), method) {
        (["cards"], "POST") => create_template(st, body),
        (["cards"], "GET") => list_templates(st, q),
        (["cards", id], "GET") => template(st, &decode(id), required_query(q, "brand_id").map(str::to_string))
            .map(|t| Answer::ok(Value::Object(t.clone()))),
        (["cards", id], "PATCH") => patch_template(st, &decode(id), body),
        (["cards", id], "DELETE") => {
            let brand = required_query(q, "brand_id").map(str::to_string);
            invalidate_template(st, &decode(id), brand)
        }
        (["cards", id, "invalidate"], "POST") => {
            let brand = text(&body, "brand_id").map(str::to_string);
            invalidate_template(st, &decode(id), brand)
        }
        (["user-cards"], "GET") => list_user_cards(cards, q),
        (["user-cards", "import-by-openid"], "POST") => import(st, cards, body),
        (["user-cards", "import-by-phone"], "POST") => Err(Answer::error(403, "NO_AUTH", "暂未上线")),
        (["user-cards", code, "invalidate"], "POST") => invalidate_card(cards, &decode(code), q, &body),
        (["pre-auth-tokens"], "POST") | (["pay-view-tokens"], "POST") => token(st, cards, &body, segments[0]),
        (["user-feeds"], "POST") => feed(st, cards, body),
        (["user-points", "exchange-coupon", "confirm"], "POST") => exchange(st, cards, body),
        (["membership-activities"], "POST") => create_activity(st, body),
        (["membership-activities"], "GET") => list_activities(st, q),
        (["membership-activities", id], "GET") => {
            activity(st, &decode(id), required_query(q, "brand_id").map(str::to_string))
                .map(|a| Answer::ok(Value::Object(a.clone())))
        }
        (["membership-activities", id], "PATCH") => patch_activity(st, &decode(id), body),
        (["membership-activities", id, "terminate"], "POST") => terminate_activity(st, &decode(id), &body),
        _ if serves(path) => not_allowed(),
        _ => Err(Answer::error(404, "NOT_FOUND", "the emulator does not serve this URL")),
    };
    step.unwrap_or_else(|refusal| refusal)
}

fn create_template(st: &mut BrandState, body: Map<String, Value>) -> Step<Answer> {
    let brand = text(&body, "brand_id")?.to_string();
    for name in [
        "appid",
        "card_title",
        "card_color",
        "card_picture_url",
        "benefits",
        "notify_url",
    ] {
        text(&body, name)?;
    }
    one_of(&body, "card_type", CARD_TYPES)?;
    one_of(&body, "code_mode", CODE_MODES)?;
    one_of(&body, "code_type", CODE_TYPES)?;
    if !body.get("valid_date_information").is_some_and(Value::is_object) {
        return Err(Answer::param("body", "/valid_date_information", "is required"));
    }
    let out = body.get("out_request_no").and_then(Value::as_str).map(str::to_string);
    if let Some(out) = &out {
        if let Some(id) = st.template_requests.get(&(brand.clone(), out.clone())) {
            return Ok(Answer::ok(Value::Object(st.templates[id].clone())));
        }
    }
    let card_id = format!("pbEMU{:023}", st.next_id());
    let mut t = body;
    t.insert("card_id".into(), card_id.clone().into());
    t.insert("state".into(), "CARD_EFFECTIVE".into());
    t.insert("create_time".into(), now_text().into());
    t.insert("update_time".into(), now_text().into());
    if let Some(out) = out {
        st.template_requests.insert((brand, out), card_id.clone());
    }
    st.templates.insert(card_id, t.clone());
    Ok(Answer::ok(Value::Object(t)))
}

fn template<'a>(st: &'a mut BrandState, id: &str, brand: Step<String>) -> Step<&'a mut Map<String, Value>> {
    let brand = brand?;
    st.templates
        .get_mut(id)
        .filter(|t| t.get("brand_id").and_then(Value::as_str) == Some(brand.as_str()))
        .ok_or_else(|| Answer::not_found("会员卡模板不存在"))
}

fn list_templates(st: &BrandState, q: &[(String, String)]) -> Step<Answer> {
    let brand = required_query(q, "brand_id")?;
    let state = query(q, "state");
    if state.is_some_and(|s| !TEMPLATE_STATES.contains(&s)) {
        return Err(Answer::param("query", "state", "is not an allowed value"));
    }
    let (offset, limit) = page(q)?;
    let items = st
        .templates
        .values()
        .filter(|t| t.get("brand_id").and_then(Value::as_str) == Some(brand))
        .filter(|t| state.is_none_or(|s| t.get("state").and_then(Value::as_str) == Some(s)))
        .cloned()
        .map(Value::Object)
        .collect();
    Ok(Answer::ok(paged(items, offset, limit)))
}

fn patch_template(st: &mut BrandState, id: &str, body: Map<String, Value>) -> Step<Answer> {
    let brand = text(&body, "brand_id").map(str::to_string);
    let t = template(st, id, brand)?;
    for (k, v) in body {
        if !matches!(
            k.as_str(),
            "brand_id" | "card_id" | "state" | "card_type" | "code_mode" | "appid"
        ) {
            t.insert(k, v);
        }
    }
    t.insert("update_time".into(), now_text().into());
    Ok(Answer::ok(Value::Object(t.clone())))
}

fn invalidate_template(st: &mut BrandState, id: &str, brand: Step<String>) -> Step<Answer> {
    let t = template(st, id, brand)?;
    if t.get("state").and_then(Value::as_str) != Some("CARD_INVALID") {
        t.insert("state".into(), "CARD_INVALID".into());
        t.insert("update_time".into(), now_text().into());
    }
    Ok(Answer::ok(Value::Object(t.clone())))
}

fn list_user_cards(cards: &mut dyn CardBook, q: &[(String, String)]) -> Step<Answer> {
    let brand = required_query(q, "brand_id")?;
    let openid = required_query(q, "openid")?;
    let state = query(q, "user_card_state");
    if state.is_some_and(|s| !USER_CARD_STATES.contains(&s)) {
        return Err(Answer::param("query", "user_card_state", "is not an allowed value"));
    }
    let (offset, limit) = page(q)?;
    let is = |f: &Map<String, Value>, k: &str, v: &str| f.get(k).and_then(Value::as_str) == Some(v);
    let mut items: Vec<Map<String, Value>> = cards
        .all_fields()
        .into_iter()
        .filter(|f| is(f, "brand_id", brand) && is(f, "openid", openid))
        .filter(|f| state.is_none_or(|s| is(f, "user_card_state", s)))
        .collect();
    items.sort_by(|a, b| {
        a.get("user_card_code")
            .map(Value::to_string)
            .cmp(&b.get("user_card_code").map(Value::to_string))
    });
    Ok(Answer {
        status: 200,
        body: paged(items.into_iter().map(Value::Object).collect(), offset, limit),
        seal: Seal::CardList,
    })
}

fn matching<'a>(
    cards: &'a mut dyn CardBook,
    code: &str,
    card_id: &str,
    brand: &str,
    openid: &str,
) -> Step<&'a mut Map<String, Value>> {
    cards
        .fields_mut(code)
        .filter(|f| {
            let is = |k: &str, v: &str| f.get(k).and_then(Value::as_str) == Some(v);
            is("card_id", card_id) && is("brand_id", brand) && is("openid", openid)
        })
        .ok_or_else(|| Answer::not_found("用户会员卡不存在"))
}

fn invalidate_card(
    cards: &mut dyn CardBook,
    code: &str,
    q: &[(String, String)],
    body: &Map<String, Value>,
) -> Step<Answer> {
    let brand = required_query(q, "brand_id")?;
    let card_id = required_query(q, "card_id")?;
    let openid = text(body, "openid")?;
    let reason = text(body, "invalid_reason")?.to_string();
    let card = matching(cards, code, card_id, brand, openid)?;
    if card.get("user_card_state").and_then(Value::as_str) != Some("INVALID") {
        card.insert("user_card_state".into(), "INVALID".into());
        card.insert("invalid_reason".into(), reason.into());
        card.insert("invalid_time".into(), now_text().into());
    }
    Ok(Answer::card(card.clone()))
}

fn import(st: &BrandState, cards: &mut dyn CardBook, body: Map<String, Value>) -> Step<Answer> {
    let brand = text(&body, "brand_id")?.to_string();
    let card_id = text(&body, "card_id")?.to_string();
    let openid = text(&body, "openid")?.to_string();
    let code = text(&body, "user_card_code")?.to_string();
    text(&body, "pickup_time")?;
    let Some(dates) = body.get("date_information").filter(|d| d.is_object()).cloned() else {
        return Err(Answer::param("body", "/date_information", "is required"));
    };
    if let Some(existing) = cards.fields_mut(&code) {
        let same = existing.get("card_id").and_then(Value::as_str) == Some(card_id.as_str())
            && existing.get("openid").and_then(Value::as_str) == Some(openid.as_str());
        return if same {
            Ok(Answer::card(existing.clone()))
        } else {
            Err(Answer::error(400, "RESOURCE_ALREADY_EXISTS", "会员卡code已存在"))
        };
    }
    let card_type = st
        .templates
        .get(&card_id)
        .and_then(|t| t.get("card_type").cloned())
        .unwrap_or_else(|| "NORMAL".into());
    let mut fields = Map::new();
    fields.insert("user_card_code".into(), code.clone().into());
    fields.insert("card_id".into(), card_id.into());
    fields.insert("openid".into(), openid.into());
    fields.insert("brand_id".into(), brand.into());
    fields.insert("card_type".into(), card_type);
    for k in ["phone_number", "user_information", "pickup_time"] {
        if let Some(v) = body.get(k) {
            fields.insert(k.into(), v.clone());
        }
    }
    fields.insert("valid_date_information".into(), dates);
    fields.insert("user_card_state".into(), "EFFECTIVE".into());
    cards.insert_open(&code, fields.clone());
    Ok(Answer::card(fields))
}

/// A component token for a user of a known template (or card): random, with
/// the documented lifetime (1 h pre-auth, 10 min pay-view).
fn token(st: &mut BrandState, cards: &mut dyn CardBook, body: &Map<String, Value>, kind: &str) -> Step<Answer> {
    let brand = text(body, "brand_id")?;
    let card_id = text(body, "card_id")?;
    let openid = text(body, "openid")?;
    let known_template = st
        .templates
        .get(card_id)
        .is_some_and(|t| t.get("brand_id").and_then(Value::as_str) == Some(brand));
    let known_card = cards.all_fields().iter().any(|f| {
        let is = |k: &str, v: &str| f.get(k).and_then(Value::as_str) == Some(v);
        is("card_id", card_id) && is("brand_id", brand) && is("openid", openid)
    });
    if !known_template && !known_card {
        return Err(Answer::not_found("会员卡模板不存在"));
    }
    let minutes = if kind == "pay-view-tokens" { 10 } else { 60 };
    let expire = chrono::Utc::now() + chrono::Duration::minutes(minutes);
    let expire = match chrono::FixedOffset::east_opt(8 * 3600) {
        Some(cst) => expire
            .with_timezone(&cst)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        None => expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let token = format!(
        "EMU{:016x}{:08}",
        cardbridge::crypto::random_below(u64::MAX),
        st.next_id()
    );
    Ok(Answer::ok(json!({"token": token, "expire_time": expire})))
}

fn feed(st: &mut BrandState, cards: &mut dyn CardBook, body: Map<String, Value>) -> Step<Answer> {
    let brand = text(&body, "brand_id")?.to_string();
    let out = text(&body, "out_request_no")?.to_string();
    if !body.contains_key("cell") && !body.contains_key("cell_message") {
        return Err(Answer::param("body", "/cell", "is required"));
    }
    if let Some(done) = st.feeds.get(&(brand.clone(), out.clone())) {
        return Ok(Answer::ok(done.clone()));
    }
    matching(
        cards,
        text(&body, "user_card_code")?,
        text(&body, "card_id")?,
        &brand,
        text(&body, "openid")?,
    )?;
    let answer = Value::Object(body);
    st.feeds.insert((brand, out), answer.clone());
    Ok(Answer::ok(answer))
}

fn exchange(st: &mut BrandState, cards: &mut dyn CardBook, body: Map<String, Value>) -> Step<Answer> {
    let brand = text(&body, "brand_id")?.to_string();
    let record = text(&body, "record_id")?.to_string();
    text(&body, "exchange_coupon_template_id")?;
    one_of(&body, "state", EXCHANGE_STATES)?;
    if let Some(done) = st.exchanges.get(&(brand.clone(), record.clone())) {
        return Ok(Answer::ok(done.clone()));
    }
    matching(
        cards,
        text(&body, "user_card_code")?,
        text(&body, "card_id")?,
        &brand,
        text(&body, "openid")?,
    )?;
    let answer = Value::Object(body);
    st.exchanges.insert((brand, record), answer.clone());
    Ok(Answer::ok(answer))
}

fn create_activity(st: &mut BrandState, body: Map<String, Value>) -> Step<Answer> {
    let brand = text(&body, "brand_id")?.to_string();
    let out = text(&body, "out_request_no")?.to_string();
    for name in ["card_id", "title", "sub_title", "begin_time", "end_time"] {
        text(&body, name)?;
    }
    one_of(&body, "activity_channel", ACTIVITY_CHANNELS)?;
    let total = body
        .get("apply_total")
        .and_then(Value::as_i64)
        .filter(|n| *n >= 1)
        .ok_or_else(|| Answer::param("body", "/apply_total", "must be a positive integer"))?;
    if let Some(id) = st.activity_requests.get(&(brand.clone(), out.clone())) {
        return Ok(Answer::ok(Value::Object(st.activities[id].clone())));
    }
    let id = format!("{}", 370_000 + st.next_id());
    let mut a = body;
    a.insert("activity_id".into(), id.clone().into());
    a.insert("apply_available".into(), total.into());
    a.insert("activity_state".into(), ACTIVITY_STATES[0].into());
    a.insert("create_time".into(), now_text().into());
    a.insert("modify_time".into(), now_text().into());
    st.activity_requests.insert((brand, out), id.clone());
    st.activities.insert(id, a.clone());
    Ok(Answer::ok(Value::Object(a)))
}

fn activity<'a>(st: &'a mut BrandState, id: &str, brand: Step<String>) -> Step<&'a mut Map<String, Value>> {
    let brand = brand?;
    st.activities
        .get_mut(id)
        .filter(|a| a.get("brand_id").and_then(Value::as_str) == Some(brand.as_str()))
        .ok_or_else(|| Answer::not_found("活动不存在"))
}

fn list_activities(st: &BrandState, q: &[(String, String)]) -> Step<Answer> {
    let brand = required_query(q, "brand_id")?;
    let card_id = query(q, "card_id");
    let state = query(q, "activity_state");
    if state.is_some_and(|s| !ACTIVITY_STATES.contains(&s)) {
        return Err(Answer::param("query", "activity_state", "is not an allowed value"));
    }
    let (offset, limit) = page(q)?;
    let is = |a: &Map<String, Value>, k: &str, v: Option<&str>| {
        v.is_none_or(|v| a.get(k).and_then(Value::as_str) == Some(v))
    };
    let items = st
        .activities
        .values()
        .filter(|a| is(a, "brand_id", Some(brand)) && is(a, "card_id", card_id) && is(a, "activity_state", state))
        .cloned()
        .map(Value::Object)
        .collect();
    Ok(Answer::ok(paged(items, offset, limit)))
}

fn patch_activity(st: &mut BrandState, id: &str, body: Map<String, Value>) -> Step<Answer> {
    let brand = text(&body, "brand_id").map(str::to_string);
    let a = activity(st, id, brand)?;
    for name in ["title", "sub_title", "begin_time", "end_time"] {
        if let Some(v) = body.get(name) {
            a.insert(name.into(), v.clone());
        }
    }
    a.insert("modify_time".into(), now_text().into());
    Ok(Answer::ok(Value::Object(a.clone())))
}

fn terminate_activity(st: &mut BrandState, id: &str, body: &Map<String, Value>) -> Step<Answer> {
    let brand = text(body, "brand_id").map(str::to_string);
    let a = activity(st, id, brand)?;
    a.insert("activity_state".into(), "MEMBERSHIP_ACTIVITY_TERMINATED".into());
    a.insert("modify_time".into(), now_text().into());
    Ok(Answer::ok(Value::Object(a.clone())))
}

/// A decrypted `BRAND_MEMBER_CARD_SP.POINT_EXCHANGE_COUPON` resource
/// (community reference `W:POINT_EXCHANGE_COUPON`): `record_id, brand_id, card_id, openid,
/// user_card_code, exchange_coupon_template_id, deduct_points, stock_id`.
pub fn sample_point_exchange_coupon(code: &str, card_id: &str, openid: &str, record_id: &str) -> Value {
    json!({
        "record_id": record_id,
        "brand_id": super::wechatpay::SAMPLE_BRAND_ID,
        "card_id": card_id,
        "openid": openid,
        "user_card_code": code,
        "exchange_coupon_template_id": "0Flpo7FqTQ",
        "deduct_points": 100,
        "stock_id": "98065001",
    })
}

/// A decrypted `BRAND_MEMBER_CARD_SP.SYNC_USER_POINT` resource (community reference `W:SYNC_USER_POINT`):
/// the card whose point balance WeChat asks for.
pub fn sample_sync_user_point(code: &str, card_id: &str, openid: &str) -> Value {
    json!({
        "brand_id": super::wechatpay::SAMPLE_BRAND_ID,
        "card_id": card_id,
        "openid": openid,
        "user_card_code": code,
    })
}

/// The default decrypted resource and `original_type` of an event type, for
/// delivering any card event: `POINT_EXCHANGE_COUPON` (`point_coupon`),
/// `SYNC_USER_POINT` (`sync_user_point`), else a user card (`user_card`,
/// [`super::sample_user_card_create`]).
pub fn sample_event(event_type: &str, code: &str, card_id: &str, openid: &str) -> (Value, &'static str) {
    if event_type.ends_with(".POINT_EXCHANGE_COUPON") {
        let record = format!("REC{code}");
        (
            sample_point_exchange_coupon(code, card_id, openid, &record),
            "point_coupon",
        )
    } else if event_type.ends_with(".SYNC_USER_POINT") {
        (sample_sync_user_point(code, card_id, openid), "sync_user_point")
    } else {
        (
            super::wechatpay::sample_user_card_create(Some(code), card_id, openid),
            "user_card",
        )
    }
}
