//! Payloads of the five Alipay+ membership APIs and their validation
//! (`alipayplus-mpp.md` §6, §7).
//!
//! Every object keeps unknown members in `extra` and re-emits them; optional
//! members are omitted when `None` (never `null`). Parsing validates the raw
//! JSON first, so an error names the first offending field with the API as
//! root, e.g. `issueCard.cardFields[3].fieldCode`; response types use
//! `<api>Response` as root, e.g. `inquireCardDetailResponse.result`.
//!
//! Validation policy (§6.2): [`Direction::Outbound`] enforces every rule;
//! [`Direction::Inbound`] enforces required, type, length and count rules but
//! not character rules or closed value lists, because the platform generates
//! those values. One exception: `inquireMemberAssets.assetTypes` is checked
//! against its list in both directions, because the merchant must answer per
//! asset type and cannot answer one it does not know (§7.5).

use crate::error::{Error, ErrorKind, Result};
use crate::validate::{
    Object, Path, as_str, check_max_chars, check_no_forbidden_chars, check_not_empty, check_one_of, check_range,
};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;

pub use crate::validate::Direction;

use super::time::is_iso8601_datetime;

/// Largest `Amount.value` (§6.4).
pub const AMOUNT_MAX: u32 = 2_147_483_647;

const APP_ID_MAX: usize = 32;
const ID_MAX: usize = 64;
const EXTEND_INFO_MAX: usize = 2048;
const CARD_FIELDS_MAX: usize = 10;
const FIELD_CODE_MAX: usize = 64;
const FIELD_VALUE_MAX: usize = 256;
const NAME_VALUE_MAX: usize = 20;
const RESULT_CODE_MAX: usize = 64;
const RESULT_MESSAGE_MAX: usize = 256;
const ASSET_TYPES_MAX: usize = 3;
const ASSET_DETAILS_MAX: usize = 3;
const ORDER_ITEMS_MAX: usize = 120;
const BENEFIT_STATUS_MAX: usize = 3;

const FIELD_CODE_PATTERN: &str = "^[A-Z][A-Z0-9_]{0,63}$";
const DATETIME_RULE: &str = "must be an ISO 8601 date-time with offset, e.g. 2019-11-27T00:00:00+08:00";
const AMOUNT_VALUE_RULE: &str = "must be an integer or a string of digits";
const AMOUNT_RULE: &str = "must be an Amount object";
const CURRENCY_RULE: &str = "must be 3 uppercase letters (ISO 4217)";
const RESULT_STATUSES: [&str; 3] = ["S", "F", "U"];
const ORDER_TYPES: [&str; 3] = ["PICKUP", "DINEIN", "DELIVERY"];
const BALANCE: &str = "BALANCE";

// ---------------------------------------------------------------------------
// Parsing and serialisation entry points
// ---------------------------------------------------------------------------

/// A top-level request or response body of one API.
pub trait Payload: Serialize + DeserializeOwned {
    /// Root of error paths: the API name (`issueCard`) for requests,
    /// `<api>Response` (`issueCardResponse`) for responses.
    const API: &'static str;

    /// Checks the raw JSON against the documented rules for `dir`.
    fn validate_value(v: &Value, dir: Direction) -> Result<()>;
}

/// Parses and validates a JSON body.
///
/// Invalid JSON or a non-object body → [`ErrorKind::InvalidJson`]; a broken
/// rule → [`ErrorKind::Validation`] naming the first offending field.
pub fn parse<T: Payload>(body: &[u8], dir: Direction) -> Result<T> {
    // Duplicate members are refused naming the member; syntax errors carry
    // only a category and a position, never input data.
    let v = crate::json::parse_body(body, &Path::root(T::API))?;
    from_json_value(v, dir)
}

/// Validates an already parsed JSON value and converts it to `T`.
pub fn from_json_value<T: Payload>(v: Value, dir: Direction) -> Result<T> {
    if !v.is_object() {
        return Err(Error::new(
            ErrorKind::InvalidJson,
            format!("{}: body must be a JSON object", T::API),
        )
        .with_field(T::API));
    }
    T::validate_value(&v, dir)?;
    // Validation accepted the shape, so failing is not expected; serde's
    // message is left out because it may quote personal data.
    let unexpected = || {
        Error::new(
            ErrorKind::InvalidJson,
            format!("{}: body does not have the expected structure", T::API),
        )
        .with_field(T::API)
    };
    // Numbers keep their exact text (`arbitrary_precision`). serde's buffer for
    // `flatten` cannot take an integer beyond 64 bits out of a `Value`, but
    // takes it from the text: that rare case goes through the text.
    T::deserialize(&v).or_else(|_| {
        let text = serde_json::to_vec(&v).map_err(|e| Error::internal("serialising payload", e))?;
        serde_json::from_slice(&text).map_err(|_| unexpected())
    })
}

/// Validates `value` for `dir` and serialises it as compact JSON.
///
/// The value is normalised on the way (e.g. a `BALANCE` given as Amount JSON
/// text is emitted as an object), so the bytes always re-parse to an equal
/// value. Use these exact bytes for signing.
pub fn to_json<T: Payload>(value: &T, dir: Direction) -> Result<Vec<u8>> {
    let v = serde_json::to_value(value).map_err(|e| Error::internal("serialising payload", e))?;
    let normalised: T = from_json_value(v, dir)?;
    serde_json::to_vec(&normalised).map_err(|e| Error::internal("serialising payload", e))
}

/// Validates a body of the message named `message` (an API name such as
/// `issueCard`, or `<api>Response`) and returns its normalised compact JSON.
/// The one entry point the C ABI and the cross-language conformance suite use.
pub fn normalize(message: &str, body: &[u8], dir: Direction) -> Result<Vec<u8>> {
    fn run<T: Payload>(body: &[u8], dir: Direction) -> Result<Vec<u8>> {
        to_json(&parse::<T>(body, dir)?, dir)
    }
    match message {
        "notifyCardRegistration" => run::<NotifyCardRegistrationRequest>(body, dir),
        "notifyCardRegistrationResponse" => run::<NotifyCardRegistrationResponse>(body, dir),
        "issueCard" => run::<IssueCardRequest>(body, dir),
        "issueCardResponse" => run::<IssueCardResponse>(body, dir),
        "inquireCardDetail" => run::<InquireCardDetailRequest>(body, dir),
        "inquireCardDetailResponse" => run::<InquireCardDetailResponse>(body, dir),
        "updateCardDetail" => run::<UpdateCardDetailRequest>(body, dir),
        "updateCardDetailResponse" => run::<UpdateCardDetailResponse>(body, dir),
        "inquireMemberAssets" => run::<InquireMemberAssetsRequest>(body, dir),
        "inquireMemberAssetsResponse" => run::<InquireMemberAssetsResponse>(body, dir),
        _ => Err(Error::new(
            ErrorKind::InvalidParameter,
            "unknown message; expected an Alipay+ membership API name or <api>Response",
        )
        .with_field("message")),
    }
}

// ---------------------------------------------------------------------------
// Common structures (§6)
// ---------------------------------------------------------------------------

/// The super app a user belongs to (§6.1).
///
/// Outbound payloads must use a known value; inbound unknown values are kept
/// verbatim in [`CustomerBelongsTo::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CustomerBelongsTo {
    /// `ALIPAY_CN`
    AlipayCn,
    /// `ALIPAY_HK`
    AlipayHk,
    /// `ALIPAY_MO`
    AlipayMo,
    /// `TNG` (Touch 'n Go)
    Tng,
    /// `GCASH`
    Gcash,
    /// `DANA`
    Dana,
    /// `KAKAOPAY`
    Kakaopay,
    /// `BKASH`
    Bkash,
    /// `CHOPE`
    Chope,
    /// `TRUEMONEY`
    Truemoney,
    /// A value outside the documented list, kept verbatim.
    Other(String),
}

impl CustomerBelongsTo {
    /// The documented values, in documentation order.
    pub const KNOWN: [&'static str; 10] = [
        "ALIPAY_CN",
        "ALIPAY_HK",
        "ALIPAY_MO",
        "TNG",
        "GCASH",
        "DANA",
        "KAKAOPAY",
        "BKASH",
        "CHOPE",
        "TRUEMONEY",
    ];

    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            CustomerBelongsTo::AlipayCn => "ALIPAY_CN",
            CustomerBelongsTo::AlipayHk => "ALIPAY_HK",
            CustomerBelongsTo::AlipayMo => "ALIPAY_MO",
            CustomerBelongsTo::Tng => "TNG",
            CustomerBelongsTo::Gcash => "GCASH",
            CustomerBelongsTo::Dana => "DANA",
            CustomerBelongsTo::Kakaopay => "KAKAOPAY",
            CustomerBelongsTo::Bkash => "BKASH",
            CustomerBelongsTo::Chope => "CHOPE",
            CustomerBelongsTo::Truemoney => "TRUEMONEY",
            CustomerBelongsTo::Other(s) => s,
        }
    }

    /// Whether the value is in the documented list.
    pub fn is_known(&self) -> bool {
        Self::KNOWN.contains(&self.as_str())
    }
}

impl From<&str> for CustomerBelongsTo {
    fn from(s: &str) -> Self {
        match s {
            "ALIPAY_CN" => CustomerBelongsTo::AlipayCn,
            "ALIPAY_HK" => CustomerBelongsTo::AlipayHk,
            "ALIPAY_MO" => CustomerBelongsTo::AlipayMo,
            "TNG" => CustomerBelongsTo::Tng,
            "GCASH" => CustomerBelongsTo::Gcash,
            "DANA" => CustomerBelongsTo::Dana,
            "KAKAOPAY" => CustomerBelongsTo::Kakaopay,
            "BKASH" => CustomerBelongsTo::Bkash,
            "CHOPE" => CustomerBelongsTo::Chope,
            "TRUEMONEY" => CustomerBelongsTo::Truemoney,
            other => CustomerBelongsTo::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for CustomerBelongsTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CustomerBelongsTo {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CustomerBelongsTo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(CustomerBelongsTo::from(s.as_str()))
    }
}

/// The `result` envelope (§6.3).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultInfo {
    /// e.g. `SUCCESS`; max 64.
    pub result_code: String,
    /// `S`, `F` or `U` (anything else from the platform is treated as `U`).
    pub result_status: String,
    /// e.g. `Success`; max 256. Empty when the platform left it out.
    #[serde(default, deserialize_with = "de_string_or_null")]
    pub result_message: String,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResultInfo {
    /// `S` / `SUCCESS` / `Success`.
    pub fn success() -> Self {
        ResultInfo::new("S", "SUCCESS", "Success")
    }

    /// A result with the given status, code and message; the message is
    /// truncated to 256 characters (§9.3).
    pub fn new(status: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if let Some((cut, _)) = message.char_indices().nth(RESULT_MESSAGE_MAX) {
            message.truncate(cut);
        }
        ResultInfo {
            result_code: code.into(),
            result_status: status.into(),
            result_message: message,
            extra: Map::new(),
        }
    }
}

/// A string where `null` counts as absent (empty), as validation treats it.
fn de_string_or_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A money amount in the currency's smallest unit (§6.4).
///
/// Input accepts a JSON number or a string of digits for `value`; output is
/// always a JSON number.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Amount {
    /// `0..=2147483647`.
    #[serde(deserialize_with = "de_amount_value")]
    pub value: u32,
    /// ISO 4217 code: exactly three ASCII uppercase letters.
    pub currency: String,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Amount {
    /// An amount without extra members.
    pub fn new(value: u32, currency: impl Into<String>) -> Self {
        Amount {
            value,
            currency: currency.into(),
            extra: Map::new(),
        }
    }
}

fn de_amount_value<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u32, D::Error> {
    let v = Value::deserialize(d)?;
    amount_value(&v, &Path::root("value")).map_err(|e| D::Error::custom(e.message()))
}

/// The value of a [`CardField`] (§6.5). `Debug` hides the value.
#[derive(Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A string value (every code except `BALANCE`).
    Text(String),
    /// An amount (the `BALANCE` code).
    Amount(Amount),
}

/// One `{fieldCode, fieldValue}` pair (§6.5).
///
/// `Debug` prints the code and `<redacted>` instead of the value: every
/// value may be personal data (names, phone, e-mail, birth date, balances).
#[derive(Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardField {
    /// e.g. `EMAIL`, `POINT`, `BALANCE`, `LEVEL`.
    pub field_code: String,
    /// The value; `BALANCE` carries an [`Amount`].
    pub field_value: FieldValue,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CardField {
    /// A field with a string value.
    pub fn text(code: impl Into<String>, value: impl Into<String>) -> Self {
        CardField {
            field_code: code.into(),
            field_value: FieldValue::Text(value.into()),
            extra: Map::new(),
        }
    }

    /// A `BALANCE` field.
    pub fn balance(amount: Amount) -> Self {
        CardField {
            field_code: BALANCE.to_owned(),
            field_value: FieldValue::Amount(amount),
            extra: Map::new(),
        }
    }
}

impl fmt::Debug for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = crate::redact::Hidden(true);
        match self {
            FieldValue::Text(_) => f.debug_tuple("Text").field(&hidden).finish(),
            FieldValue::Amount(_) => f.debug_tuple("Amount").field(&hidden).finish(),
        }
    }
}

impl<'de> Deserialize<'de> for CardField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut extra = Map::<String, Value>::deserialize(d)?;
        // shift_remove keeps the order of the remaining (extra) members.
        let field_code = match extra.shift_remove("fieldCode") {
            Some(Value::String(s)) => s,
            _ => return Err(D::Error::custom("fieldCode must be a string")),
        };
        let raw = extra
            .shift_remove("fieldValue")
            .ok_or_else(|| D::Error::custom("fieldValue is required"))?;
        let field_value = match raw {
            // A BALANCE given as Amount JSON text is turned into the object (§6.5).
            Value::String(s) if field_code == BALANCE => match serde_json::from_str::<Amount>(&s) {
                Ok(a) => FieldValue::Amount(a),
                Err(_) => FieldValue::Text(s),
            },
            Value::String(s) => FieldValue::Text(s),
            Value::Number(n) => FieldValue::Text(n.to_string()),
            obj @ Value::Object(_) => FieldValue::Amount(
                serde_json::to_vec(&obj)
                    .ok()
                    .and_then(|text| serde_json::from_slice(&text).ok())
                    .ok_or_else(|| D::Error::custom("fieldValue is not an Amount"))?,
            ),
            _ => return Err(D::Error::custom("fieldValue must be a string or an Amount")),
        };
        Ok(CardField {
            field_code,
            field_value,
            extra,
        })
    }
}

/// An asset type of `inquireMemberAssets` (§7.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AssetType {
    /// `BENEFIT`: the member benefits.
    Benefit,
    /// `POINT`: the reward points.
    Point,
    /// `BALANCE`: the balance of the membership card.
    Balance,
}

impl AssetType {
    /// The wire values.
    pub const ALL: [&'static str; 3] = ["BENEFIT", "POINT", "BALANCE"];
}

/// One asset in the `inquireMemberAssets` answer (§6.6).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetDetail {
    /// Which asset this is.
    pub asset_type: AssetType,
    /// JSON text: an [`Amount`] for `BALANCE`, otherwise a structure that is
    /// not documented (kept opaque). A nested JSON value on input is stored
    /// as its compact text; output is always a string.
    #[serde(deserialize_with = "de_json_text")]
    pub asset_value: String,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AssetDetail {
    /// An asset whose value is `value` serialised as JSON text.
    pub fn new(asset_type: AssetType, value: &Value) -> Self {
        AssetDetail {
            asset_type,
            asset_value: value.to_string(),
            extra: Map::new(),
        }
    }
}

fn de_json_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Null => Err(D::Error::custom("assetValue is required")),
        other => Ok(other.to_string()),
    }
}

// ---------------------------------------------------------------------------
// API payloads (§7)
// ---------------------------------------------------------------------------

/// `notifyCardRegistration` request (platform → merchant, §7.1).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyCardRegistrationRequest {
    /// The mini program; max 32.
    pub app_id: String,
    /// The user's super app.
    pub customer_belongs_to: CustomerBelongsTo,
    /// Idempotency key; max 64.
    pub request_id: String,
    /// The platform's user ID; max 64.
    pub customer_id: String,
    /// What the user entered (variant (a) codes); max 10.
    pub registration_fields: Vec<CardField>,
    /// JSON text, e.g. a referral code; max 2048.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `notifyCardRegistration` response (our answer).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyCardRegistrationResponse {
    /// The outcome.
    pub result: ResultInfo,
    /// Extended information; max 2048.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `issueCard` request (merchant → platform, §7.2).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueCardRequest {
    /// Same as in `notifyCardRegistration`; max 32.
    pub app_id: String,
    /// Same as in `notifyCardRegistration`.
    pub customer_belongs_to: CustomerBelongsTo,
    /// Same as in `notifyCardRegistration`; idempotency key; max 64.
    pub request_id: String,
    /// Same as in `notifyCardRegistration`; max 64.
    pub customer_id: String,
    /// The merchant's user ID; max 64.
    pub external_customer_id: String,
    /// The merchant's card number (member QR code); max 64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_card_no: Option<String>,
    /// ISO 8601 date-time with offset.
    pub register_date: String,
    /// ISO 8601 date-time with offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_date: Option<String>,
    /// Card details (variant (b) codes); max 10.
    pub card_fields: Vec<CardField>,
    /// Extended information; max 2048.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IssueCardRequest {
    /// An `issueCard` request that reuses `appId`, `customerBelongsTo`,
    /// `requestId` and `customerId` of the registration, as §7.2 recommends.
    pub fn from_registration(
        reg: &NotifyCardRegistrationRequest,
        external_customer_id: String,
        register_date: String,
        card_fields: Vec<CardField>,
    ) -> IssueCardRequest {
        IssueCardRequest {
            app_id: reg.app_id.clone(),
            customer_belongs_to: reg.customer_belongs_to.clone(),
            request_id: reg.request_id.clone(),
            customer_id: reg.customer_id.clone(),
            external_customer_id,
            external_card_no: None,
            register_date,
            expire_date: None,
            card_fields,
            extend_info: None,
            extra: Map::new(),
        }
    }
}

/// The optional members of an `issueCard` request, for
/// [`IssueCardRequest::build`]: each is validated with the request (field
/// path `issueCard.<member>`), when the request is built.
#[derive(Clone, Default, PartialEq)]
pub struct IssueCardOptions {
    /// The merchant's card number (member QR code); max 64.
    pub external_card_no: Option<String>,
    /// ISO 8601 date-time with offset.
    pub expire_date: Option<String>,
    /// Extended information; max 2048.
    pub extend_info: Option<String>,
}

impl IssueCardOptions {
    /// The wire names of the optional members, as `options` of
    /// [`IssueCardRequest::build_from_json`] takes them.
    pub const MEMBERS: [&'static str; 3] = ["externalCardNo", "expireDate", "extendInfo"];

    fn to_map(&self) -> Map<String, Value> {
        let members = [&self.external_card_no, &self.expire_date, &self.extend_info];
        Self::MEMBERS
            .iter()
            .zip(members)
            .filter_map(|(name, v)| v.as_ref().map(|v| (name.to_string(), Value::String(v.clone()))))
            .collect()
    }
}

impl IssueCardRequest {
    /// A validated `issueCard` request answering `reg` (see
    /// [`IssueCardRequest::from_registration`]) with every optional member
    /// of `options`. Errors name the field path, e.g. `issueCard.extendInfo`
    /// with its limit, never the value.
    pub fn build(
        reg: &NotifyCardRegistrationRequest,
        external_customer_id: &str,
        register_date: &str,
        card_fields: Vec<CardField>,
        options: &IssueCardOptions,
    ) -> Result<IssueCardRequest> {
        let fields = serde_json::to_value(card_fields).map_err(|e| Error::internal("issueCard", e))?;
        Self::build_from_json(reg, external_customer_id, register_date, fields, options.to_map())
    }

    /// [`IssueCardRequest::build`] with the card fields and the optional
    /// members as raw JSON (the C ABI and the bindings), so validation names
    /// their exact path (`issueCard.cardFields[1].fieldCode`,
    /// `issueCard.expireDate`). `options` holds members of
    /// [`IssueCardOptions::MEMBERS`] (a `null` one is absent); any other
    /// member is refused (`VALIDATION`, field `issueCard.<member>`).
    pub fn build_from_json(
        reg: &NotifyCardRegistrationRequest,
        external_customer_id: &str,
        register_date: &str,
        card_fields: Value,
        options: Map<String, Value>,
    ) -> Result<IssueCardRequest> {
        let request = IssueCardRequest::from_registration(
            reg,
            external_customer_id.to_string(),
            register_date.to_string(),
            Vec::new(),
        );
        let mut value = serde_json::to_value(&request).map_err(|e| Error::internal("issueCard", e))?;
        let Value::Object(members) = &mut value else {
            return Err(Error::internal("issueCard", "not an object"));
        };
        // Replaces the empty array in place (members keep their order).
        members.insert("cardFields".to_string(), card_fields);
        for (name, v) in options {
            if !IssueCardOptions::MEMBERS.contains(&name.as_str()) {
                // The name is the caller's own option key, not request data; shown shortened.
                let shown: String = name.chars().take(64).collect();
                return Err(Error::validation(
                    format!("issueCard.{shown}"),
                    format!(
                        "is not an optional member of issueCard (one of {})",
                        IssueCardOptions::MEMBERS.join(", ")
                    ),
                    None,
                ));
            }
            if !v.is_null() {
                members.insert(name, v);
            }
        }
        from_json_value(value, Direction::Outbound)
    }
}

/// `issueCard` response (the platform's answer).
///
/// `cardNo` is optional here: whether an `S` without it is acceptable is the
/// client's decision (§7.2).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueCardResponse {
    /// The outcome.
    pub result: ResultInfo,
    /// The platform's card number; max 64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_no: Option<String>,
    /// Extended information; max 2048.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `inquireCardDetail` request (platform → merchant, §7.3). At least one of
/// `cardNo` and `loginIdentity` is present.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquireCardDetailRequest {
    /// The card number from `issueCard`; max 64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_no: Option<String>,
    /// The mini program; max 32.
    pub app_id: String,
    /// The user's login identity; structure undocumented, kept raw (§6.7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_identity: Option<Value>,
    /// Extended information; max 2048.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `inquireCardDetail` response (our answer).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquireCardDetailResponse {
    /// The outcome.
    pub result: ResultInfo,
    /// Card details (codes of both variants); `None` when the card does not
    /// exist; max 10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_fields: Option<Vec<CardField>>,
    /// Extended information; max 2048.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `updateCardDetail` request (platform → merchant, §7.4).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCardDetailRequest {
    /// The card to update; max 64.
    pub card_no: String,
    /// When the platform made the request; ISO 8601 date-time with offset.
    pub request_time: String,
    /// Only the fields to overwrite (variant (a) codes); max 10.
    pub card_fields: Vec<CardField>,
    /// Extended information; max 2048.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `updateCardDetail` response (our answer).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCardDetailResponse {
    /// The outcome.
    pub result: ResultInfo,
    /// Extended information; max 2048.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `inquireMemberAssets` request (platform → merchant, §7.5).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquireMemberAssetsRequest {
    /// The card; max 64.
    pub card_no: String,
    /// What to return; max 3.
    pub asset_types: Vec<AssetType>,
    /// JSON text of an object (`useThresholdByOrderItems`, ...), kept as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_conditions: Option<String>,
    /// Extended information; max 2048.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `inquireMemberAssets` response (our answer).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquireMemberAssetsResponse {
    /// The outcome.
    pub result: ResultInfo,
    /// At most one per requested type; max 3.
    pub asset_details: Vec<AssetDetail>,
    /// Extended information; max 2048.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
    /// Unknown members, kept and re-emitted.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

macro_rules! result_only_constructor {
    ($($ty:ident { $($field:ident),* })*) => {$(
        impl $ty {
            /// An answer with `result` and no optional members.
            pub fn new(result: ResultInfo) -> Self {
                $ty { result, $($field: None,)* extra: Map::new() }
            }
        }
    )*};
}

result_only_constructor! {
    NotifyCardRegistrationResponse { extend_info }
    IssueCardResponse { card_no, extend_info }
    InquireCardDetailResponse { card_fields, extend_info }
    UpdateCardDetailResponse { extend_info }
}

impl InquireMemberAssetsResponse {
    /// An answer with `result` and `assetDetails` and no optional members.
    pub fn new(result: ResultInfo, asset_details: Vec<AssetDetail>) -> Self {
        InquireMemberAssetsResponse {
            result,
            asset_details,
            extend_info: None,
            extra: Map::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// Redacted Debug: identifiers of the call (appId, requestId, API, result) are
// shown; customer and card identifiers, field values, extendInfo and unknown
// members are not (see `crate::redact`).
// ---------------------------------------------------------------------------

use crate::redact::redacted_debug;

redacted_debug!(ResultInfo {
    result_code: show,
    result_status: show,
    result_message: show,
    extra: members
});
redacted_debug!(Amount {
    value: show,
    currency: show,
    extra: members
});
redacted_debug!(CardField {
    field_code: show,
    field_value: show,
    extra: members
});
redacted_debug!(AssetDetail {
    asset_type: show,
    asset_value: hide,
    extra: members
});
redacted_debug!(NotifyCardRegistrationRequest {
    app_id: show,
    customer_belongs_to: show,
    request_id: show,
    customer_id: hide,
    registration_fields: show,
    extend_info: hide,
    extra: members,
});
redacted_debug!(NotifyCardRegistrationResponse {
    result: show,
    extend_info: hide,
    extra: members
});
redacted_debug!(IssueCardRequest {
    app_id: show,
    customer_belongs_to: show,
    request_id: show,
    customer_id: hide,
    external_customer_id: hide,
    external_card_no: hide,
    register_date: show,
    expire_date: show,
    card_fields: show,
    extend_info: hide,
    extra: members,
});
redacted_debug!(IssueCardResponse {
    result: show,
    card_no: hide,
    extend_info: hide,
    extra: members
});
redacted_debug!(InquireCardDetailRequest {
    card_no: hide,
    app_id: show,
    login_identity: hide,
    extend_info: hide,
    extra: members,
});
redacted_debug!(InquireCardDetailResponse {
    result: show,
    card_fields: show,
    extend_info: hide,
    extra: members
});
redacted_debug!(UpdateCardDetailRequest {
    card_no: hide,
    request_time: show,
    card_fields: show,
    extend_info: hide,
    extra: members,
});
redacted_debug!(UpdateCardDetailResponse {
    result: show,
    extend_info: hide,
    extra: members
});
redacted_debug!(InquireMemberAssetsRequest {
    card_no: hide,
    asset_types: show,
    query_conditions: hide,
    extend_info: hide,
    extra: members,
});
redacted_debug!(InquireMemberAssetsResponse {
    result: show,
    asset_details: show,
    extend_info: hide,
    extra: members,
});

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

impl Payload for NotifyCardRegistrationRequest {
    const API: &'static str = "notifyCardRegistration";
    fn validate_value(v: &Value, dir: Direction) -> Result<()> {
        let o = Object::new(v, Path::root(Self::API))?;
        id(&o, "appId", APP_ID_MAX, true, dir)?;
        customer_belongs_to(&o, dir)?;
        id(&o, "requestId", ID_MAX, true, dir)?;
        id(&o, "customerId", ID_MAX, true, dir)?;
        card_fields(&o, "registrationFields", true, Variant::Personal, dir)?;
        extend_info(&o, dir)
    }
}

impl Payload for NotifyCardRegistrationResponse {
    const API: &'static str = "notifyCardRegistrationResponse";
    fn validate_value(v: &Value, dir: Direction) -> Result<()> {
        let o = Object::new(v, Path::root(Self::API))?;
        result(&o, dir)?;
        extend_info(&o, dir)
    }
}

impl Payload for IssueCardRequest {
    const API: &'static str = "issueCard";
    fn validate_value(v: &Value, dir: Direction) -> Result<()> {
        let o = Object::new(v, Path::root(Self::API))?;
        id(&o, "appId", APP_ID_MAX, true, dir)?;
        customer_belongs_to(&o, dir)?;
        id(&o, "requestId", ID_MAX, true, dir)?;
        id(&o, "customerId", ID_MAX, true, dir)?;
        id(&o, "externalCustomerId", ID_MAX, true, dir)?;
        id(&o, "externalCardNo", ID_MAX, false, dir)?;
        datetime(&o, "registerDate", true)?;
        datetime(&o, "expireDate", false)?;
        card_fields(&o, "cardFields", true, Variant::Card, dir)?;
        extend_info(&o, dir)
    }
}

impl Payload for IssueCardResponse {
    const API: &'static str = "issueCardResponse";
    fn validate_value(v: &Value, dir: Direction) -> Result<()> {
        let o = Object::new(v, Path::root(Self::API))?;
        result(&o, dir)?;
        id(&o, "cardNo", ID_MAX, false, dir)?;
        extend_info(&o, dir)
    }
}

impl Payload for InquireCardDetailRequest {
    const API: &'static str = "inquireCardDetail";
    fn validate_value(v: &Value, dir: Direction) -> Result<()> {
        let o = Object::new(v, Path::root(Self::API))?;
        let card_no = id(&o, "cardNo", ID_MAX, false, dir)?;
        id(&o, "appId", APP_ID_MAX, true, dir)?;
        // loginIdentity: structure undocumented, never rejected for shape (§6.7).
        let has_identity = o.optional("loginIdentity").is_some();
        if card_no.is_none_or(str::is_empty) && !has_identity {
            return Err(o
                .field("cardNo")
                .error("is required when loginIdentity is absent", None));
        }
        extend_info(&o, dir)
    }
}

impl Payload for InquireCardDetailResponse {
    const API: &'static str = "inquireCardDetailResponse";
    fn validate_value(v: &Value, dir: Direction) -> Result<()> {
        let o = Object::new(v, Path::root(Self::API))?;
        result(&o, dir)?;
        card_fields(&o, "cardFields", false, Variant::Card, dir)?;
        extend_info(&o, dir)
    }
}

impl Payload for UpdateCardDetailRequest {
    const API: &'static str = "updateCardDetail";
    fn validate_value(v: &Value, dir: Direction) -> Result<()> {
        let o = Object::new(v, Path::root(Self::API))?;
        id(&o, "cardNo", ID_MAX, true, dir)?;
        datetime(&o, "requestTime", true)?;
        card_fields(&o, "cardFields", true, Variant::Personal, dir)?;
        extend_info(&o, dir)
    }
}

impl Payload for UpdateCardDetailResponse {
    const API: &'static str = "updateCardDetailResponse";
    fn validate_value(v: &Value, dir: Direction) -> Result<()> {
        let o = Object::new(v, Path::root(Self::API))?;
        result(&o, dir)?;
        extend_info(&o, dir)
    }
}

impl Payload for InquireMemberAssetsRequest {
    const API: &'static str = "inquireMemberAssets";
    fn validate_value(v: &Value, dir: Direction) -> Result<()> {
        let o = Object::new(v, Path::root(Self::API))?;
        id(&o, "cardNo", ID_MAX, true, dir)?;
        let types = o.required_array("assetTypes", Some(ASSET_TYPES_MAX))?;
        for (i, t) in types.iter().enumerate() {
            let path = o.field("assetTypes").index(i);
            check_one_of(&path, as_str(t, &path)?, &AssetType::ALL)?;
        }
        query_conditions(&o, dir)?;
        extend_info(&o, dir)
    }
}

impl Payload for InquireMemberAssetsResponse {
    const API: &'static str = "inquireMemberAssetsResponse";
    fn validate_value(v: &Value, dir: Direction) -> Result<()> {
        let o = Object::new(v, Path::root(Self::API))?;
        result(&o, dir)?;
        let details = o.required_array("assetDetails", Some(ASSET_DETAILS_MAX))?;
        for (i, d) in details.iter().enumerate() {
            asset_detail(d, o.field("assetDetails").index(i))?;
        }
        extend_info(&o, dir)
    }
}

/// Character rule of ID-like fields and `extendInfo` (§6.2).
fn char_rule(path: &Path, s: &str, dir: Direction) -> Result<()> {
    match dir {
        Direction::Outbound => check_no_forbidden_chars(path, s),
        // inbound: not enforced (the platform generates these values; §6.2 says log only)
        Direction::Inbound => Ok(()),
    }
}

/// An ID-like string: length, non-empty when required, character rule.
fn id<'a>(o: &Object<'a>, key: &str, max: usize, required: bool, dir: Direction) -> Result<Option<&'a str>> {
    let path = o.field(key);
    let s = if required {
        let s = o.required_str(key, Some(max))?;
        check_not_empty(&path, s)?;
        s
    } else {
        match o.optional_str(key, Some(max))? {
            Some(s) => s,
            None => return Ok(None),
        }
    };
    char_rule(&path, s, dir)?;
    Ok(Some(s))
}

fn extend_info(o: &Object<'_>, dir: Direction) -> Result<()> {
    id(o, "extendInfo", EXTEND_INFO_MAX, false, dir).map(drop)
}

fn customer_belongs_to(o: &Object<'_>, dir: Direction) -> Result<()> {
    let path = o.field("customerBelongsTo");
    let s = o.required_str("customerBelongsTo", None)?;
    check_not_empty(&path, s)?;
    match dir {
        Direction::Outbound => check_one_of(&path, s, &CustomerBelongsTo::KNOWN),
        // Inbound unknown values are kept so a new super app does not break registration (§6.1).
        Direction::Inbound => Ok(()),
    }
}

fn datetime(o: &Object<'_>, key: &str, required: bool) -> Result<()> {
    let s = if required {
        Some(o.required_str(key, None)?)
    } else {
        o.optional_str(key, None)?
    };
    match s {
        Some(s) if !is_iso8601_datetime(s) => Err(o.field(key).error(DATETIME_RULE, None)),
        _ => Ok(()),
    }
}

fn result(o: &Object<'_>, dir: Direction) -> Result<()> {
    let r = Object::new(o.required("result")?, o.field("result"))?;
    match dir {
        Direction::Outbound => {
            let code = r.required_str("resultCode", Some(RESULT_CODE_MAX))?;
            check_not_empty(&r.field("resultCode"), code)?;
            let status = r.required_str("resultStatus", None)?;
            check_one_of(&r.field("resultStatus"), status, &RESULT_STATUSES)?;
            r.required_str("resultMessage", Some(RESULT_MESSAGE_MAX))?;
        }
        Direction::Inbound => {
            // The platform's code and status are surfaced as given (unknown
            // statuses count as U, §9.1); their lengths come from secondary
            // sources only (§6.3), so they are not a reason to distrust an answer.
            r.required_str("resultCode", None)?;
            r.required_str("resultStatus", None)?;
            r.optional_str("resultMessage", None)?;
        }
    }
    Ok(())
}

/// The two documented `CardField` variants (§6.5).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// (a) personal information: string values only.
    Personal,
    /// (b) card details: `BALANCE` is an Amount, numbers become strings.
    Card,
}

fn card_fields(o: &Object<'_>, key: &str, required: bool, variant: Variant, dir: Direction) -> Result<()> {
    let items = if required {
        Some(o.required_array(key, Some(CARD_FIELDS_MAX))?)
    } else {
        o.optional_array(key, Some(CARD_FIELDS_MAX))?
    };
    for (i, item) in items.unwrap_or_default().iter().enumerate() {
        card_field(item, o.field(key).index(i), variant, dir)?;
    }
    Ok(())
}

/// Per-code limit of a string `fieldValue` (§6.5 (a); applied to every variant).
fn field_value_max(code: &str) -> usize {
    match code {
        "FIRST_NAME" | "LAST_NAME" | "USER_NAME" => NAME_VALUE_MAX,
        // USER_SALUTATION: MR., MS., MRS., MISS are known, others are kept (list truncated in the source).
        _ => FIELD_VALUE_MAX,
    }
}

fn is_field_code(code: &str) -> bool {
    let mut bytes = code.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && code.len() <= FIELD_CODE_MAX
}

fn card_field(v: &Value, path: Path, variant: Variant, dir: Direction) -> Result<()> {
    let o = Object::new(v, path)?;
    let code_path = o.field("fieldCode");
    let code = o.required_str("fieldCode", Some(FIELD_CODE_MAX))?;
    check_not_empty(&code_path, code)?;
    match dir {
        Direction::Outbound if !is_field_code(code) => {
            return Err(code_path.error(
                format!("must match {FIELD_CODE_PATTERN}"),
                Some(FIELD_CODE_PATTERN.to_owned()),
            ));
        }
        // inbound: not enforced (unknown codes are kept, §6.5)
        _ => {}
    }
    let value = o.required("fieldValue")?;
    let value_path = o.field("fieldValue");
    match (variant, value) {
        (Variant::Card, _) if code == BALANCE => balance(value, &value_path),
        (Variant::Card, Value::Number(_)) => Ok(()),
        _ => check_max_chars(&value_path, as_str(value, &value_path)?, field_value_max(code)),
    }
}

/// A `BALANCE` value: an Amount object, or a string holding one.
fn balance(v: &Value, path: &Path) -> Result<()> {
    match v {
        Value::Object(_) => amount(v, path),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(parsed @ Value::Object(_)) => amount(&parsed, path),
            _ => Err(path.error(AMOUNT_RULE, None)),
        },
        _ => Err(path.error(AMOUNT_RULE, None)),
    }
}

fn amount(v: &Value, path: &Path) -> Result<()> {
    let o = Object::new(v, path.clone())?;
    amount_value(o.required("value")?, &o.field("value"))?;
    let currency = o.required_str("currency", None)?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(o.field("currency").error(CURRENCY_RULE, Some("3".to_owned())));
    }
    Ok(())
}

/// `Amount.value`: a JSON integer or a string of digits, `0..=2147483647` (§6.4).
fn amount_value(v: &Value, path: &Path) -> Result<u32> {
    let n: i128 = match v {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into(),
            (None, Some(i)) => i.into(),
            // Fractions and exponents parse as floating point.
            (None, None) => return Err(path.error(AMOUNT_VALUE_RULE, None)),
        },
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            // More digits than an i128 holds is out of range anyway.
            s.parse().unwrap_or(i128::MAX)
        }
        _ => return Err(path.error(AMOUNT_VALUE_RULE, None)),
    };
    check_range(path, n, 0, AMOUNT_MAX.into())?;
    u32::try_from(n).map_err(|_| path.error(AMOUNT_VALUE_RULE, None))
}

fn asset_detail(v: &Value, path: Path) -> Result<()> {
    let o = Object::new(v, path)?;
    let type_path = o.field("assetType");
    let asset_type = o.required_str("assetType", None)?;
    check_one_of(&type_path, asset_type, &AssetType::ALL)?;
    let value_path = o.field("assetValue");
    let value = o.required("assetValue")?;
    if asset_type == BALANCE {
        return balance(value, &value_path);
    }
    // POINT / BENEFIT structures are undocumented (§6.7): only require JSON.
    match value {
        Value::String(s) if serde_json::from_str::<Value>(s).is_err() => {
            Err(value_path.error("must be JSON text", None))
        }
        _ => Ok(()),
    }
}

fn query_conditions(o: &Object<'_>, dir: Direction) -> Result<()> {
    let Some(text) = o.optional_str("queryConditions", None)? else {
        return Ok(());
    };
    let path = o.field("queryConditions");
    let parsed: Value = serde_json::from_str(text).map_err(|_| path.error("must be JSON text of an object", None))?;
    let q = Object::new(&parsed, path.clone()).map_err(|_| path.error("must be JSON text of an object", None))?;
    // OrderItem structure is undocumented (§6.7): count only.
    q.optional_array("useThresholdByOrderItems", Some(ORDER_ITEMS_MAX))?;
    if let Some(t) = q.optional_str("useThresholdByOrderType", None)? {
        if dir == Direction::Outbound {
            check_one_of(&q.field("useThresholdByOrderType"), t, &ORDER_TYPES)?;
        }
    }
    if let Some(statuses) = q.optional_array("benefitStatus", Some(BENEFIT_STATUS_MAX))? {
        for (i, s) in statuses.iter().enumerate() {
            as_str(s, &q.field("benefitStatus").index(i))?;
        }
    }
    // benefitPage and unknown keys: structure undocumented, kept as sent (§6.7).
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amount_value_forms() {
        let p = Path::root("v");
        assert_eq!(amount_value(&json!(0), &p).unwrap(), 0);
        assert_eq!(amount_value(&json!("007"), &p).unwrap(), 7);
        assert_eq!(amount_value(&json!(2_147_483_647u32), &p).unwrap(), AMOUNT_MAX);
        let huge = json!("9".repeat(60));
        assert_eq!(amount_value(&huge, &p).unwrap_err().limit(), Some("2147483647"));
        assert_eq!(
            amount_value(&json!(u64::MAX), &p).unwrap_err().limit(),
            Some("2147483647")
        );
        assert_eq!(amount_value(&json!(i64::MIN), &p).unwrap_err().limit(), Some("0"));
        for bad in [
            json!(1.0),
            json!(null),
            json!(true),
            json!("1.5"),
            json!(" 1"),
            json!("+1"),
            json!([1]),
        ] {
            assert_eq!(
                amount_value(&bad, &p).unwrap_err().message(),
                "v: must be an integer or a string of digits"
            );
        }
    }

    #[test]
    fn field_code_pattern() {
        for ok in ["A", "POINT", "LEVEL_2", &format!("A{}", "_".repeat(63))] {
            assert!(is_field_code(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "1A",
            "_A",
            "A-B",
            "POINT ",
            "É",
            &format!("A{}", "_".repeat(64)),
        ] {
            assert!(!is_field_code(bad), "{bad}");
        }
    }

    #[test]
    fn result_message_is_truncated_to_256_characters() {
        let r = ResultInfo::new("F", "PROCESS_FAIL", "é".repeat(300));
        assert_eq!(r.result_message.chars().count(), 256);
        assert_eq!(ResultInfo::new("F", "X", "short").result_message, "short");
    }
}
