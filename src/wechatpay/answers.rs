//! Typed views of the family's answers: the answer JSON ([`ApiAnswer::json`])
//! read into structs whose enums keep unknown values verbatim
//! (`Unknown(String)`) and whose `extra` keeps every member the structs do
//! not name, so nothing the platform sends is lost (`wechatpay-card-member.md`
//! §3.5, §3.6). Read with [`ApiAnswer::parse`], e.g.
//! `answer.parse::<CardTemplate>()` or `answer.parse::<Page<UserCard>>()`.
//!
//! Personal data (a user card's phone number, user information) lives in
//! these values in cleartext: their `Debug` leaves them out.

use super::client::ApiAnswer;
use crate::error::{Error, ErrorKind, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An enum of known wire values plus `Unknown(String)`, (de)serialised as its string.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $wire, "`")] $(#[$vdoc])* $variant,)+
            /// A value this version does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Every wire string this version knows, in declaration order.
            pub const WIRE: &'static [&'static str] = &[$($wire),+];
            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Unknown(s) => s,
                }
            }
            /// The variant for a wire string (unknown ones kept).
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $($wire => $name::$variant,)+
                    other => $name::Unknown(other.to_string()),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                <String as serde::Deserialize>::deserialize(d).map(|s| $name::from_wire(&s))
            }
        }
    };
}

pub(crate) use wire_enum;

wire_enum!(
    /// `card_type` of templates and user cards.
    CardType { Purchase = "PURCHASE", Normal = "NORMAL", Balance = "BALANCE" }
);
wire_enum!(
    /// A card template's `state`.
    TemplateState { Effective = "CARD_EFFECTIVE", Invalid = "CARD_INVALID" }
);
wire_enum!(
    /// `user_card_state`: the union of the callback and API sets (§3.6).
    UserCardState {
        /// Callbacks: not yet effective.
        NotEffective = "NOT_EFFECTIVE",
        /// API: waiting for its confirm.
        Unactivated = "UNACTIVATED",
        /// Open.
        Effective = "EFFECTIVE",
        /// Past its validity.
        Expired = "EXPIRED",
        /// Callbacks: unavailable.
        Unavailable = "UNAVAILABLE",
        /// Invalidated.
        Invalid = "INVALID",
        /// Callbacks: deleted by the user.
        Delete = "DELETE",
    }
);
wire_enum!(
    /// A membership activity's `activity_state`.
    ActivityState {
        Created = "MEMBERSHIP_ACTIVITY_CREATED",
        Effective = "MEMBERSHIP_ACTIVITY_EFFECTIVE",
        Terminated = "MEMBERSHIP_ACTIVITY_TERMINATED",
        Expired = "MEMBERSHIP_ACTIVITY_EXPIRED",
    }
);
wire_enum!(
    /// `state` of an exchange-coupon confirmation.
    ExchangeState { Success = "POINT_EXCHANGE_COUPON_SUCCESS", Fail = "POINT_EXCHANGE_COUPON_FAIL" }
);

/// A card template (create, get, update, remove and list answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardTemplate {
    /// Template id.
    pub card_id: String,
    /// Brand id.
    pub brand_id: String,
    /// `card_type`.
    pub card_type: CardType,
    /// `state` (absent in some answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TemplateState>,
    /// Where WeChat sends the card events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    /// Every other member, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A user card (list, invalidate and import answers; confirm / get / update too).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCard {
    /// Card code.
    pub user_card_code: String,
    /// Template id.
    pub card_id: String,
    /// User id under the template's AppID.
    pub openid: String,
    /// Brand id.
    pub brand_id: String,
    /// `user_card_state`.
    pub user_card_state: UserCardState,
    /// Every other member (`phone_number` decrypted, `user_information`, …), as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for UserCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCard")
            .field("user_card_code", &self.user_card_code)
            .field("card_id", &self.card_id)
            .field("user_card_state", &self.user_card_state)
            .field("extra", &crate::redact::Members(self.extra.len()))
            .finish_non_exhaustive()
    }
}

/// A membership coupon activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MembershipActivity {
    /// Activity id.
    pub activity_id: String,
    /// Brand id.
    pub brand_id: String,
    /// `activity_state`.
    pub activity_state: ActivityState,
    /// Every other member, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An exchange-coupon confirmation answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeConfirmation {
    /// The exchange record.
    pub record_id: String,
    /// `state`.
    pub state: ExchangeState,
    /// Every other member, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A page of a list answer (`data`, `offset`, `limit`, `total_count`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items (absent when empty).
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Start of the page.
    #[serde(default)]
    pub offset: u64,
    /// Page size.
    #[serde(default)]
    pub limit: u64,
    /// Items in all pages.
    #[serde(default)]
    pub total_count: u64,
    /// Every other member, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ApiAnswer {
    /// The answer read into a typed view, e.g. [`CardTemplate`] or
    /// `Page<UserCard>`; `Protocol` when the answer lacks a member the view
    /// requires (the error names the type, never the content).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.json.clone()).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!(
                    "the answer does not have the shape of {} (line {}, column {})",
                    std::any::type_name::<T>(),
                    e.line(),
                    e.column()
                ),
            )
        })
    }
}
