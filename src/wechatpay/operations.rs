//! The catalogue of card-member operations by name: one place that maps an
//! operation (`createCardTemplate`, `importUserCard`, …) to the validation
//! and request building of its module, for the C ABI's `validate` export and
//! the conformance fixtures. Sensitive fields are replaced by
//! [`ENCRYPTED_PLACEHOLDER`] here (the real calls encrypt them with RSA-OAEP,
//! which is randomised).

use super::model::{self, PreparedRequest, WireOptions};
use super::{activities, feeds, members, templates};
use crate::error::{Error, ErrorKind, Result};
use crate::validate::Path;

/// What a sensitive field shows in a [`prepare`]d request.
pub const ENCRYPTED_PLACEHOLDER: &str = "<encrypted>";

/// Every operation name, in catalogue order (`wechatpay-card-member.md` §4).
pub const OPERATIONS: &[&str] = &[
    "confirm",
    "getUserCard",
    "updateUserCard",
    "syncUserPoints",
    "createCardTemplate",
    "listCardTemplates",
    "getCardTemplate",
    "updateCardTemplate",
    "removeCardTemplate",
    "listUserCards",
    "invalidateUserCard",
    "importUserCard",
    "importUserCardByPhone",
    "createPreAuthToken",
    "createPayViewToken",
    "createUserFeed",
    "confirmExchangeCoupon",
    "createMembershipActivity",
    "listMembershipActivities",
    "getMembershipActivity",
    "updateMembershipActivity",
    "terminateMembershipActivity",
];

/// Validates `input` for `operation` and builds its request (method,
/// request-target, body) exactly as the client would, but with every
/// sensitive field shown as [`ENCRYPTED_PLACEHOLDER`]. Nothing is sent.
pub fn prepare(operation: &str, input: &[u8], wire: WireOptions) -> Result<PreparedRequest> {
    let mut placeholder = |_: &Path, _: &str| Ok(ENCRYPTED_PLACEHOLDER.to_string());
    let enc: &mut dyn FnMut(&Path, &str) -> Result<String> = &mut placeholder;
    Ok(match operation {
        "confirm" => model::prepare_confirm(input, wire, enc)?,
        "getUserCard" => model::prepare_get_user_card(input)?,
        "updateUserCard" => model::prepare_update_user_card(input, wire, enc)?,
        "syncUserPoints" => model::prepare_sync_points(input)?,
        "createCardTemplate" => templates::prepare_create(input, wire)?.request,
        "listCardTemplates" => templates::prepare_list(input)?,
        "getCardTemplate" => templates::prepare_get(input)?,
        "updateCardTemplate" => templates::prepare_update(input)?.request,
        "removeCardTemplate" => templates::prepare_remove(input, wire)?.request,
        "listUserCards" => members::prepare_list(input)?,
        "invalidateUserCard" => members::prepare_invalidate(input)?.request,
        "importUserCard" => members::prepare_import(input, wire, enc)?.request,
        "importUserCardByPhone" => members::prepare_import_by_phone(input, wire, enc)?.request,
        "createPreAuthToken" => members::prepare_token(input, members::Token::PreAuth)?,
        "createPayViewToken" => members::prepare_token(input, members::Token::PayView)?,
        "createUserFeed" => feeds::prepare_feed(input, wire)?.request,
        "confirmExchangeCoupon" => feeds::prepare_exchange_confirm(input)?.request,
        "createMembershipActivity" => activities::prepare_create(input)?.request,
        "listMembershipActivities" => activities::prepare_list(input)?,
        "getMembershipActivity" => activities::prepare_get(input)?,
        "updateMembershipActivity" => activities::prepare_update(input)?.request,
        "terminateMembershipActivity" => activities::prepare_terminate(input)?.request,
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "operation: not a WeChat Pay card-member operation name",
            )
            .with_field("operation"));
        }
    })
}

/// [`prepare`] as one JSON document: `{"method","target","body"}` with the
/// body as text (empty for a GET or DELETE).
pub fn prepare_json(operation: &str, input: &[u8], wire: WireOptions) -> Result<Vec<u8>> {
    let p = prepare(operation, input, wire)?;
    let doc = serde_json::json!({
        "method": p.method,
        "target": p.target,
        "body": String::from_utf8_lossy(&p.body),
    });
    serde_json::to_vec(&doc).map_err(|e| Error::internal("prepared request", e))
}

/// [`prepare`] for a typed input ([`super::inputs::TypedInput`]): its JSON
/// form through the same validation and request building. Nothing is sent.
pub fn prepare_typed<T: super::inputs::TypedInput>(input: &T, wire: WireOptions) -> Result<PreparedRequest> {
    prepare(T::OPERATION, &input.to_json()?, wire)
}
