//! Typed inputs of every brand card-member call: the confirm of a card
//! opening ([`ConfirmInput`]), the user-card calls ([`GetUserCardInput`],
//! [`UpdateUserCardInput`], [`PointsSyncInput`], [`ListUserCardsInput`],
//! [`InvalidateUserCardInput`], [`ImportUserCardInput`]), the card templates
//! ([`CreateCardTemplateInput`] and the rest), member feeds and the
//! points-for-coupon answer ([`CreateUserFeedInput`],
//! [`ConfirmExchangeCouponInput`]) and the membership activities
//! ([`CreateMembershipActivityInput`] and the rest).
//!
//! Each implements [`TypedInput`]: it serialises to the same JSON object the
//! call takes as text ([`TypedInput::to_json`]), so the typed and the plain
//! forms go through one validation — `wechat.confirm(&input.to_json()?)`, or
//! [`super::WechatPay::call_typed`]`(&input)`, or
//! [`super::operations::prepare_typed`] to validate without sending. The
//! field limits (lengths, ranges, formats, enum sets) are the call's, checked
//! before anything is stored or signed. Enums keep unknown values verbatim
//! (`Unknown(String)`, refused by validation before anything is sent, naming
//! the field) and `extra` keeps members the structs do not name, so a JSON
//! input read into these types and written back is unchanged (member order
//! aside: named members first).
//!
//! Personal data (phone numbers, user information, openids) lives in these
//! values in cleartext, to be encrypted by the library where the platform
//! asks: their `Debug` leaves it out, and unknown members show as a count.

use super::answers::wire_enum;
pub use super::answers::{ActivityState, CardType, ExchangeState, TemplateState, UserCardState};
use crate::error::{Error, Result};
use crate::redact::redacted_debug;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// A typed input of one card-member operation.
pub trait TypedInput: Serialize {
    /// The operation's name in [`super::operations::OPERATIONS`] (also the
    /// root of the field paths its validation errors name).
    const OPERATION: &'static str;

    /// The [`super::WechatPay`] method taking the operation's JSON form
    /// (what [`super::WechatPay::call_typed`] sends [`TypedInput::to_json`] to).
    const CALL: super::Call;

    /// The JSON object the operation takes (validated by the call, not here).
    fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::internal(Self::OPERATION, e))
    }
}

/// Implements [`TypedInput`] for each `Type = "operation" => method`.
macro_rules! typed_inputs {
    ($($ty:ident = $op:literal => $call:ident),+ $(,)?) => {
        $(impl TypedInput for $ty {
            const OPERATION: &'static str = $op;
            const CALL: super::Call = super::WechatPay::$call;
        })+
    };
}

wire_enum!(
    /// `user_card_confirm_state` of a confirm (§5.3).
    ConfirmState {
        /// The merchant opened the member account.
        CreateCardSuccess = "CREATE_CARD_SUCCESS",
        /// The merchant could not open it.
        CreateCardFail = "CREATE_CARD_FAIL",
    }
);

/// The input of [`super::WechatPay::confirm`]: which user card, the outcome,
/// and the card members to set (`phone_number` and `user_information` in
/// cleartext; the library encrypts them).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfirmInput {
    /// Card code (path segment).
    pub user_card_code: String,
    /// Template id (query; max 32).
    pub card_id: String,
    /// Brand id (max 32).
    pub brand_id: String,
    /// User id under the template's AppID (max 128).
    pub openid: String,
    /// The outcome of the card opening.
    pub user_card_confirm_state: ConfirmState,
    /// The member's phone number, cleartext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// `user_information` (`common_field_list`, `custom_field_list`), values in cleartext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_information: Option<Value>,
    /// Every other member (`card_color`, `level`, `valid_date_information`, …), as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ConfirmInput {
    /// A confirm of `user_card_code` with `state` and no other member.
    pub fn new(
        user_card_code: impl Into<String>,
        card_id: impl Into<String>,
        brand_id: impl Into<String>,
        openid: impl Into<String>,
        state: ConfirmState,
    ) -> Self {
        ConfirmInput {
            user_card_code: user_card_code.into(),
            card_id: card_id.into(),
            brand_id: brand_id.into(),
            openid: openid.into(),
            user_card_confirm_state: state,
            phone_number: None,
            user_information: None,
            extra: Map::new(),
        }
    }

    /// The JSON object the confirm call takes (validated by the call).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        TypedInput::to_json(self)
    }
}

impl std::fmt::Debug for ConfirmInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmInput")
            .field("user_card_code", &self.user_card_code)
            .field("card_id", &self.card_id)
            .field("user_card_confirm_state", &self.user_card_confirm_state)
            .field("phone_number", &self.phone_number.as_ref().map(|_| "<redacted>"))
            .field(
                "user_information",
                &self.user_information.as_ref().map(|_| "<redacted>"),
            )
            .field("extra", &crate::redact::Members(self.extra.len()))
            .finish_non_exhaustive()
    }
}

/// The input of [`super::WechatPay::sync_user_points`] (`POST /user-points/sync`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PointsSyncInput {
    /// The merchant's request number (max 32).
    pub out_request_no: String,
    /// Brand id (max 32).
    pub brand_id: String,
    /// Template id (max 32).
    pub card_id: String,
    /// User id under the template's AppID (max 128).
    pub openid: String,
    /// Card code.
    pub user_card_code: String,
    /// The member's points balance (non-negative).
    pub point_balance: i64,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PointsSyncInput {
    /// The JSON object the points-sync call takes (validated by the call).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        TypedInput::to_json(self)
    }
}

redacted_debug!(PointsSyncInput {
    out_request_no: show,
    brand_id: show,
    card_id: show,
    openid: hide,
    user_card_code: show,
    point_balance: show,
    extra: members,
});

typed_inputs!(ConfirmInput = "confirm" => confirm, PointsSyncInput = "syncUserPoints" => sync_user_points);

// ---- shared members ------------------------------------------------------

wire_enum!(
    /// `valid_date_information.type` ([`super::model::VALID_DATE_TYPES`]).
    ValidDateType {
        /// Between `available_begin_time` and `available_end_time`.
        FixTimeRange = "FIX_TIME_RANGE",
        /// `available_day_after_receive` days from receipt.
        FixTerm = "FIX_TERM",
        /// No end.
        Permanent = "PERMANENT",
    }
);

/// `valid_date_information` (templates, imports; `date_information` in an
/// import request): the type and the members it needs (RFC 3339 times).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidDateInformation {
    /// `type`.
    #[serde(rename = "type")]
    pub kind: ValidDateType,
    /// Start, with `FIX_TIME_RANGE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_begin_time: Option<String>,
    /// End (later than the start), with `FIX_TIME_RANGE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_end_time: Option<String>,
    /// Days from receipt (≥ 1), with `FIX_TERM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_day_after_receive: Option<i64>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ValidDateInformation {
    /// A validity of `kind` with no other member.
    pub fn new(kind: ValidDateType) -> Self {
        ValidDateInformation {
            kind,
            available_begin_time: None,
            available_end_time: None,
            available_day_after_receive: None,
            extra: Map::new(),
        }
    }
}

// ---- card templates ------------------------------------------------------

wire_enum!(
    /// A template's `code_mode` ([`super::templates::CODE_MODES`]).
    CodeMode { SystemAllocate = "SYSTEM_ALLOCATE", MerchantAllocate = "MERCHANT_ALLOCATE" }
);
wire_enum!(
    /// A template's `code_type` ([`super::templates::CODE_TYPES`]).
    CodeType {
        NoneCode = "NONE_CODE",
        BarCode = "BAR_CODE",
        QrCode = "QR_CODE",
        BarCodeAndQrCode = "BAR_CODE_AND_QR_CODE",
        JumpMiniProgram = "JUMP_MINI_PROGRAM",
    }
);
wire_enum!(
    /// `user_information.common_field_list[]` of a template, and `name` of a
    /// member's common field ([`super::model::COMMON_FIELD_NAMES`]).
    CommonFieldName {
        Sex = "USER_FORM_FLAG_SEX",
        Name = "USER_FORM_FLAG_NAME",
        Birthday = "USER_FORM_FLAG_BIRTHDAY",
        Address = "USER_FORM_FLAG_ADDRESS",
        Email = "USER_FORM_FLAG_EMAIL",
        City = "USER_FORM_FLAG_CITY",
    }
);
wire_enum!(
    /// `user_information.custom_field_list[].type` of a template
    /// ([`super::templates::CUSTOM_FIELD_TYPES`]).
    CustomFieldType { CheckBox = "CHECK_BOX", Radio = "RADIO" }
);

/// A `{jump_appid, jump_path}` object (`code_jump_information`,
/// `points_information`, `balance_information`): `jump_appid` ≤ 32.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JumpInformation {
    /// Mini program AppID (max 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump_appid: Option<String>,
    /// Mini program path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump_path: Option<String>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `purchase_information`: the jump target and the card's `price` (≥ 0,
/// kept as the JSON number given).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PurchaseInformation {
    /// Price (non-negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Number>,
    /// Mini program AppID (max 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump_appid: Option<String>,
    /// Mini program path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump_path: Option<String>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One `custom_field_list[]` entry of a template's form: a question and its choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldDefinition {
    /// `type`.
    #[serde(rename = "type")]
    pub kind: CustomFieldType,
    /// The question (non-empty).
    pub name: String,
    /// The choices.
    pub values: Vec<String>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A template's `user_information`: the form a member fills in when joining
/// (`common_field_list` is a list of names here, unlike a user card's).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TemplateUserInformation {
    /// Standard fields asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_field_list: Option<Vec<CommonFieldName>>,
    /// Merchant-defined questions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_field_list: Option<Vec<CustomFieldDefinition>>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The input of [`super::WechatPay::create_card_template`] (`POST /cards`).
/// `out_request_no` keys the outbox entry (a retried create makes one template).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateCardTemplateInput {
    /// The merchant's request number (max 32).
    pub out_request_no: String,
    /// Brand id (max 32).
    pub brand_id: String,
    /// The template's AppID (max 32).
    pub appid: String,
    /// `card_type`.
    pub card_type: CardType,
    /// Title (no emoji).
    pub card_title: String,
    /// `#RRGGBB`.
    pub card_color: String,
    /// Background picture URL (max 256).
    pub card_picture_url: String,
    /// `code_mode`.
    pub code_mode: CodeMode,
    /// `code_type`.
    pub code_type: CodeType,
    /// Benefits text (non-empty).
    pub benefits: String,
    /// Card-event callback URL: https, no query or fragment (max 256).
    pub notify_url: String,
    /// Validity of the cards.
    pub valid_date_information: ValidDateInformation,
    /// Whether the card is pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_pinned: Option<bool>,
    /// Whether the level is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_display_level: Option<bool>,
    /// Initial level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_level: Option<String>,
    /// Service phone (the brand's, not a member's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_phone: Option<String>,
    /// Legal agreement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_agreement: Option<String>,
    /// Where the code jumps (required with `JUMP_MINI_PROGRAM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_jump_information: Option<JumpInformation>,
    /// Points entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points_information: Option<JumpInformation>,
    /// Balance entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_information: Option<JumpInformation>,
    /// Purchase entry and price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_information: Option<PurchaseInformation>,
    /// The joining form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_information: Option<TemplateUserInformation>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The input of [`super::WechatPay::update_card_template`] (`PATCH
/// /cards/{card_id}`): the members to change, each optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateCardTemplateInput {
    /// Template id (path segment; max 32).
    pub card_id: String,
    /// Brand id (max 32).
    pub brand_id: String,
    /// Title (no emoji).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_title: Option<String>,
    /// `#RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_color: Option<String>,
    /// Background picture URL (max 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_picture_url: Option<String>,
    /// Benefits text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benefits: Option<String>,
    /// Card-event callback URL: https, no query or fragment (max 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    /// Validity of the cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_date_information: Option<ValidDateInformation>,
    /// Whether the card is pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_pinned: Option<bool>,
    /// Whether the level is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_display_level: Option<bool>,
    /// Initial level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_level: Option<String>,
    /// Service phone (the brand's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_phone: Option<String>,
    /// Legal agreement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_agreement: Option<String>,
    /// Where the code jumps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_jump_information: Option<JumpInformation>,
    /// Points entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points_information: Option<JumpInformation>,
    /// Balance entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_information: Option<JumpInformation>,
    /// Purchase entry and price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_information: Option<PurchaseInformation>,
    /// The joining form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_information: Option<TemplateUserInformation>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl UpdateCardTemplateInput {
    /// An update of `card_id` changing nothing yet.
    pub fn new(card_id: impl Into<String>, brand_id: impl Into<String>) -> Self {
        UpdateCardTemplateInput {
            card_id: card_id.into(),
            brand_id: brand_id.into(),
            card_title: None,
            card_color: None,
            card_picture_url: None,
            benefits: None,
            notify_url: None,
            valid_date_information: None,
            need_pinned: None,
            need_display_level: None,
            init_level: None,
            service_phone: None,
            legal_agreement: None,
            code_jump_information: None,
            points_information: None,
            balance_information: None,
            purchase_information: None,
            user_information: None,
            extra: Map::new(),
        }
    }
}

/// A card template by id: the input of [`super::WechatPay::get_card_template`]
/// and [`super::WechatPay::remove_card_template`] (see [`GetCardTemplateInput`],
/// [`RemoveCardTemplateInput`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardTemplateRef {
    /// Brand id (max 32).
    pub brand_id: String,
    /// Template id (max 32).
    pub card_id: String,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CardTemplateRef {
    /// Template `card_id` of brand `brand_id`.
    pub fn new(brand_id: impl Into<String>, card_id: impl Into<String>) -> Self {
        CardTemplateRef {
            brand_id: brand_id.into(),
            card_id: card_id.into(),
            extra: Map::new(),
        }
    }
}

/// The input of [`super::WechatPay::get_card_template`] (`GET /cards/{card_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GetCardTemplateInput(pub CardTemplateRef);

/// The input of [`super::WechatPay::remove_card_template`] (invalidate or delete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RemoveCardTemplateInput(pub CardTemplateRef);

/// The input of [`super::WechatPay::list_card_templates`] (`GET /cards`):
/// `offset` ≥ 0, `limit` 1–20.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListCardTemplatesInput {
    /// Brand id (max 32).
    pub brand_id: String,
    /// Only templates in this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TemplateState>,
    /// Start of the page (≥ 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Page size (1–20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ListCardTemplatesInput {
    /// The first page of `brand_id`'s templates, the platform's default size.
    pub fn new(brand_id: impl Into<String>) -> Self {
        ListCardTemplatesInput {
            brand_id: brand_id.into(),
            state: None,
            offset: None,
            limit: None,
            extra: Map::new(),
        }
    }
}

typed_inputs!(
    CreateCardTemplateInput = "createCardTemplate" => create_card_template,
    UpdateCardTemplateInput = "updateCardTemplate" => update_card_template,
    GetCardTemplateInput = "getCardTemplate" => get_card_template,
    RemoveCardTemplateInput = "removeCardTemplate" => remove_card_template,
    ListCardTemplatesInput = "listCardTemplates" => list_card_templates,
);

// ---- user cards ----------------------------------------------------------

/// The input of [`super::WechatPay::get_user_card`] (`GET /user-cards/{code}`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct GetUserCardInput {
    /// Card code (path segment).
    pub user_card_code: String,
    /// Brand id (max 32).
    pub brand_id: String,
    /// Template id (max 32).
    pub card_id: String,
    /// User id under the template's AppID (max 128).
    pub openid: String,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

redacted_debug!(GetUserCardInput {
    user_card_code: show,
    brand_id: show,
    card_id: show,
    openid: hide,
    extra: members,
});

/// The input of [`super::WechatPay::update_user_card`] (`PATCH
/// /user-cards/{code}`): the members to change (`phone_number` and
/// `user_information` values in cleartext; the library encrypts them).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateUserCardInput {
    /// Card code (path segment).
    pub user_card_code: String,
    /// Template id (query; max 32).
    pub card_id: String,
    /// Brand id (max 32).
    pub brand_id: String,
    /// User id under the template's AppID (max 128).
    pub openid: String,
    /// `#RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_color: Option<String>,
    /// Background picture URL (max 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_picture_url: Option<String>,
    /// Member level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Merchant data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    /// RFC 3339 time the card was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_time: Option<String>,
    /// Validity of the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_date_information: Option<ValidDateInformation>,
    /// The member's phone number, cleartext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// `user_information` (`common_field_list`, `custom_field_list`), values in cleartext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_information: Option<Value>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

redacted_debug!(UpdateUserCardInput {
    user_card_code: show,
    card_id: show,
    brand_id: show,
    openid: hide,
    card_color: show,
    card_picture_url: show,
    level: show,
    attach: hide,
    pickup_time: show,
    valid_date_information: show,
    phone_number: hide,
    user_information: hide,
    extra: members,
});

impl UpdateUserCardInput {
    /// An update of `user_card_code` changing nothing yet.
    pub fn new(
        user_card_code: impl Into<String>,
        card_id: impl Into<String>,
        brand_id: impl Into<String>,
        openid: impl Into<String>,
    ) -> Self {
        UpdateUserCardInput {
            user_card_code: user_card_code.into(),
            card_id: card_id.into(),
            brand_id: brand_id.into(),
            openid: openid.into(),
            card_color: None,
            card_picture_url: None,
            level: None,
            attach: None,
            pickup_time: None,
            valid_date_information: None,
            phone_number: None,
            user_information: None,
            extra: Map::new(),
        }
    }
}

/// The input of [`super::WechatPay::list_user_cards`] (`GET /user-cards`):
/// `offset` ≥ 0, `limit` 1–20.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ListUserCardsInput {
    /// Brand id (max 32).
    pub brand_id: String,
    /// User id (max 128).
    pub openid: String,
    /// Only cards in this state (`UNACTIVATED`, `EFFECTIVE`, `EXPIRED`, `INVALID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_card_state: Option<UserCardState>,
    /// Start of the page (≥ 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Page size (1–20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

redacted_debug!(ListUserCardsInput {
    brand_id: show,
    openid: hide,
    user_card_state: show,
    offset: show,
    limit: show,
    extra: members,
});

/// The input of [`super::WechatPay::invalidate_user_card`] (irreversible; the
/// reason is required and non-empty).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct InvalidateUserCardInput {
    /// Card code (path segment).
    pub user_card_code: String,
    /// Template id (max 32).
    pub card_id: String,
    /// Brand id (max 32).
    pub brand_id: String,
    /// User id (max 128).
    pub openid: String,
    /// Why (non-empty).
    pub invalid_reason: String,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

redacted_debug!(InvalidateUserCardInput {
    user_card_code: show,
    card_id: show,
    brand_id: show,
    openid: hide,
    invalid_reason: show,
    extra: members,
});

/// The input of [`super::WechatPay::import_user_card`] (by openid) and, with
/// `phone_number` given, of [`super::WechatPay::import_user_card_by_phone`]
/// (see [`ImportUserCardByPhoneInput`]). The validity is `date_information`
/// (the request's name) or `valid_date_information` (the answer's), one of
/// them; `phone_number` and `user_information` values in cleartext.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportUserCardInput {
    /// Brand id (max 32).
    pub brand_id: String,
    /// Template id (max 32).
    pub card_id: String,
    /// User id (max 128; required by openid, optional by phone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    /// Card code.
    pub user_card_code: String,
    /// The member's phone number, cleartext (required by phone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// `user_information`, values in cleartext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_information: Option<Value>,
    /// Validity (the request's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_information: Option<ValidDateInformation>,
    /// Validity (the answer's name, accepted for `date_information`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_date_information: Option<ValidDateInformation>,
    /// RFC 3339 time the member took the card.
    pub pickup_time: String,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

redacted_debug!(ImportUserCardInput {
    brand_id: show,
    card_id: show,
    openid: hide,
    user_card_code: show,
    phone_number: hide,
    user_information: hide,
    date_information: show,
    valid_date_information: show,
    pickup_time: show,
    extra: members,
});

/// The input of [`super::WechatPay::import_user_card_by_phone`] (only when
/// enabled: not live on the platform).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImportUserCardByPhoneInput(pub ImportUserCardInput);

/// `{brand_id, card_id, openid}`: the input of the component tokens (see
/// [`CreatePreAuthTokenInput`], [`CreatePayViewTokenInput`]).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInput {
    /// Brand id (max 32).
    pub brand_id: String,
    /// Template id (max 32).
    pub card_id: String,
    /// User id (max 128).
    pub openid: String,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

redacted_debug!(TokenInput {
    brand_id: show,
    card_id: show,
    openid: hide,
    extra: members
});

/// The input of [`super::WechatPay::create_pre_auth_token`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CreatePreAuthTokenInput(pub TokenInput);

/// The input of [`super::WechatPay::create_pay_view_token`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CreatePayViewTokenInput(pub TokenInput);

typed_inputs!(
    GetUserCardInput = "getUserCard" => get_user_card,
    UpdateUserCardInput = "updateUserCard" => update_user_card,
    ListUserCardsInput = "listUserCards" => list_user_cards,
    InvalidateUserCardInput = "invalidateUserCard" => invalidate_user_card,
    ImportUserCardInput = "importUserCard" => import_user_card,
    ImportUserCardByPhoneInput = "importUserCardByPhone" => import_user_card_by_phone,
    CreatePreAuthTokenInput = "createPreAuthToken" => create_pre_auth_token,
    CreatePayViewTokenInput = "createPayViewToken" => create_pay_view_token,
);

// ---- member feeds and the points-for-coupon answer -------------------------

/// The input of [`super::WechatPay::create_user_feed`] (`POST /user-feeds`):
/// the content as `cell` or `cell_message`, one of them (sent under the
/// configured name, [`super::model::WireOptions::user_feed_content`]).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateUserFeedInput {
    /// Brand id (max 32).
    pub brand_id: String,
    /// Template id (max 32).
    pub card_id: String,
    /// Card code.
    pub user_card_code: String,
    /// User id (max 128).
    pub openid: String,
    /// The merchant's request number (max 32).
    pub out_request_no: String,
    /// The content (non-empty), under the name `cell`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    /// The content (non-empty), under the name `cell_message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_message: Option<String>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

redacted_debug!(CreateUserFeedInput {
    brand_id: show,
    card_id: show,
    user_card_code: show,
    openid: hide,
    out_request_no: show,
    cell: show,
    cell_message: show,
    extra: members,
});

/// The input of [`super::WechatPay::confirm_exchange_coupon`], the answer to a
/// `POINT_EXCHANGE_COUPON` event: `fail_reason` is required with
/// [`ExchangeState::Fail`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfirmExchangeCouponInput {
    /// The exchange record (max 64).
    pub record_id: String,
    /// The exchanged coupon template (max 64).
    pub exchange_coupon_template_id: String,
    /// Brand id (max 32).
    pub brand_id: String,
    /// Template id (max 32).
    pub card_id: String,
    /// User id (max 128).
    pub openid: String,
    /// Card code.
    pub user_card_code: String,
    /// The merchant's decision.
    pub state: ExchangeState,
    /// The coupon given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon_code: Option<String>,
    /// Why not (required with `POINT_EXCHANGE_COUPON_FAIL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_reason: Option<String>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

redacted_debug!(ConfirmExchangeCouponInput {
    record_id: show,
    exchange_coupon_template_id: show,
    brand_id: show,
    card_id: show,
    openid: hide,
    user_card_code: show,
    state: show,
    coupon_code: show,
    fail_reason: show,
    extra: members,
});

typed_inputs!(
    CreateUserFeedInput = "createUserFeed" => create_user_feed,
    ConfirmExchangeCouponInput = "confirmExchangeCoupon" => confirm_exchange_coupon,
);

// ---- membership activities -------------------------------------------------

wire_enum!(
    /// `activity_channel` ([`super::activities::ACTIVITY_CHANNELS`]; the
    /// platform's own spelling, `MECHANT`).
    ActivityChannel { MechantAppComponent = "MECHANT_APP_COMPONENT" }
);

/// One `product_coupon_stock_list[]` entry of an activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductCouponStock {
    /// Product coupon id (non-empty).
    pub product_coupon_id: String,
    /// Stock id (non-empty).
    pub stock_id: String,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The input of [`super::WechatPay::create_membership_activity`]:
/// `begin_time` < `end_time` (RFC 3339), `apply_total` ≥ 1, at least one stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateMembershipActivityInput {
    /// The merchant's request number (max 32).
    pub out_request_no: String,
    /// Brand id (max 32).
    pub brand_id: String,
    /// Template id (max 32).
    pub card_id: String,
    /// `activity_channel`.
    pub activity_channel: ActivityChannel,
    /// Title (non-empty).
    pub title: String,
    /// Subtitle (non-empty).
    pub sub_title: String,
    /// Start (RFC 3339).
    pub begin_time: String,
    /// End (RFC 3339, later than the start).
    pub end_time: String,
    /// How many members may take part (≥ 1).
    pub apply_total: i64,
    /// The coupons handed out (at least one).
    pub product_coupon_stock_list: Vec<ProductCouponStock>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The input of [`super::WechatPay::update_membership_activity`] (`PATCH`):
/// the schedule, all of it required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateMembershipActivityInput {
    /// Activity id (path segment; max 64).
    pub activity_id: String,
    /// Brand id (max 32).
    pub brand_id: String,
    /// Title (non-empty).
    pub title: String,
    /// Subtitle (non-empty).
    pub sub_title: String,
    /// Start (RFC 3339).
    pub begin_time: String,
    /// End (RFC 3339, later than the start).
    pub end_time: String,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The input of [`super::WechatPay::list_membership_activities`]: `offset` ≥ 0, `limit` 1–20.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListMembershipActivitiesInput {
    /// Brand id (max 32).
    pub brand_id: String,
    /// Only this template's activities (max 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    /// Only activities in this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_state: Option<ActivityState>,
    /// Start of the page (≥ 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Page size (1–20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ListMembershipActivitiesInput {
    /// The first page of `brand_id`'s activities.
    pub fn new(brand_id: impl Into<String>) -> Self {
        ListMembershipActivitiesInput {
            brand_id: brand_id.into(),
            card_id: None,
            activity_state: None,
            offset: None,
            limit: None,
            extra: Map::new(),
        }
    }
}

/// A membership activity by id: the input of
/// [`super::WechatPay::get_membership_activity`] and
/// [`super::WechatPay::terminate_membership_activity`] (see
/// [`GetMembershipActivityInput`], [`TerminateMembershipActivityInput`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MembershipActivityRef {
    /// Brand id (max 32).
    pub brand_id: String,
    /// Activity id (max 64).
    pub activity_id: String,
    /// Every other member, as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MembershipActivityRef {
    /// Activity `activity_id` of brand `brand_id`.
    pub fn new(brand_id: impl Into<String>, activity_id: impl Into<String>) -> Self {
        MembershipActivityRef {
            brand_id: brand_id.into(),
            activity_id: activity_id.into(),
            extra: Map::new(),
        }
    }
}

/// The input of [`super::WechatPay::get_membership_activity`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GetMembershipActivityInput(pub MembershipActivityRef);

/// The input of [`super::WechatPay::terminate_membership_activity`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TerminateMembershipActivityInput(pub MembershipActivityRef);

typed_inputs!(
    CreateMembershipActivityInput = "createMembershipActivity" => create_membership_activity,
    UpdateMembershipActivityInput = "updateMembershipActivity" => update_membership_activity,
    ListMembershipActivitiesInput = "listMembershipActivities" => list_membership_activities,
    GetMembershipActivityInput = "getMembershipActivity" => get_membership_activity,
    TerminateMembershipActivityInput = "terminateMembershipActivity" => terminate_membership_activity,
);
