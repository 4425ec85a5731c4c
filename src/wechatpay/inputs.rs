//! Typed inputs of the calls that open and maintain a member's card: the
//! confirm of a card opening ([`ConfirmInput`]) and the points sync
//! ([`PointsSyncInput`]). Each serialises to the same JSON object the calls
//! take as text ([`ConfirmInput::to_json`]), so the typed and the plain forms
//! go through one validation: `wechat.confirm(&input.to_json()?)` or
//! [`super::WechatPay::confirm_input`]. Enums keep unknown values verbatim
//! (`Unknown(String)`, refused by validation before anything is sent, naming
//! the field) and `extra` keeps members the structs do not name, so a JSON
//! input read into these types and written back is unchanged.
//!
//! Personal data (the phone number, user information) lives in these values
//! in cleartext, to be encrypted by the library: their `Debug` leaves it out.

use super::answers::wire_enum;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
        serde_json::to_vec(self).map_err(|e| Error::internal("confirm", e))
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        serde_json::to_vec(self).map_err(|e| Error::internal("syncUserPoints", e))
    }
}
