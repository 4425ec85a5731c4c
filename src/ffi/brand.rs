//! C exports of the rest of the WeChat Pay brand member-card family
//! (`wechatpay-card-member.md` §4): card templates, user-card list /
//! invalidate / import, component tokens, member feeds, the points-for-coupon answer and
//! membership activities — one export per operation, all sharing
//! `client_call` of `wechatpay.rs` (input one JSON object, output the answer
//! JSON) — plus `cardbridge_wechatpay_validate`, the request an operation
//! would send, built without sending.

use crate::ffi::bytes::cardbridge_bytes;
use crate::ffi::error::{cardbridge_error, cardbridge_result};
use crate::ffi::wechatpay::{cardbridge_wechatpay, client_call};
use crate::wechatpay::WechatPay;
use std::ffi::c_char;

/// Creates a card template (`POST .../cards`); its `notify_url` receives the card events. `input_json`: `out_request_no` (the outbox key with `brand_id`), `brand_id`, `appid`, `card_type`, `card_title`, `card_color`, `card_picture_url`, `code_mode`, `code_type`, `benefits`, `notify_url`, `valid_date_information`, optional `code_jump_information`, `need_pinned`, `need_display_level`, `init_level`, `service_phone`, `legal_agreement`, `points_information`, `balance_information`, `purchase_information`, `user_information`. Recorded in the outbox: a repeat returns the stored answer; other content under the same key is `IDEMPOTENCY_CONFLICT`.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_create_card_template(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::create_card_template,
    )
}

/// Lists card templates (`GET .../cards`); `input_json`: `brand_id`, optional `state`, `offset`, `limit` (1–20).
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_list_card_templates(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::list_card_templates,
    )
}

/// Reads one card template; `input_json`: `brand_id`, `card_id`.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_get_card_template(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::get_card_template,
    )
}

/// Updates a card template (`PATCH .../cards/{card_id}`); `input_json`: `card_id`, `brand_id` and the members to change. Recorded in the outbox keyed by its content; an ambiguous outcome is reconciled by reading the template back.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_update_card_template(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::update_card_template,
    )
}

/// Removes a card template (`POST .../invalidate`, or `DELETE` when `card_template_removal` is `delete`); `input_json`: `brand_id`, `card_id`. Recorded in the outbox; reconciled by reading the template back (`CARD_INVALID`).
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_remove_card_template(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::remove_card_template,
    )
}

/// Lists a user's cards (`GET .../user-cards`); `input_json`: `brand_id`, `openid`, optional `user_card_state`, `offset`, `limit` (1–20). Sensitive fields of each card are decrypted.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_list_user_cards(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::list_user_cards,
    )
}

/// Invalidates a user card, irreversibly (`POST .../user-cards/{code}/invalidate`); `input_json`: `user_card_code`, `card_id`, `brand_id`, `openid`, `invalid_reason` (required). Recorded in the outbox keyed by (card_id, user_card_code); reconciled by reading the card back.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_invalidate_user_card(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::invalidate_user_card,
    )
}

/// Imports an existing member by openid (`POST .../user-cards/import-by-openid`); `input_json`: `brand_id`, `card_id`, `openid`, `user_card_code`, `date_information` (or `valid_date_information`), `pickup_time`, optional `phone_number` and `user_information` in cleartext (encrypted here; `Wechatpay-Serial` always sent). Recorded in the outbox keyed by (card_id, user_card_code); reconciled by reading the card back.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_import_user_card(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::import_user_card,
    )
}

/// Imports a member by phone: `INVALID_CONFIG` unless the configuration sets `import_by_phone_enabled` (the platform lists the call as not live). Input as for `cardbridge_wechatpay_import_user_card` with `phone_number` required.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_import_user_card_by_phone(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::import_user_card_by_phone,
    )
}

/// Posts a member feed (`POST .../user-feeds`); `input_json`: `brand_id`, `card_id`, `user_card_code`, `openid`, `out_request_no`, and the content as `cell` or `cell_message` (sent under the configured `user_feed_content_member`). Keyed by (brand_id, out_request_no).
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_create_user_feed(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::create_user_feed,
    )
}

/// Answers a `POINT_EXCHANGE_COUPON` event (`POST .../user-points/exchange-coupon/confirm`); `input_json`: `record_id`, `exchange_coupon_template_id`, `brand_id`, `card_id`, `openid`, `user_card_code`, `state`, optional `coupon_code`, `fail_reason` (required for `POINT_EXCHANGE_COUPON_FAIL`). Keyed by (brand_id, record_id).
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_confirm_exchange_coupon(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::confirm_exchange_coupon,
    )
}

/// Creates a membership coupon activity (`POST .../membership-activities`); `input_json`: `out_request_no`, `brand_id`, `card_id`, `activity_channel`, `title`, `sub_title`, `begin_time`, `end_time`, `apply_total`, `product_coupon_stock_list`. Keyed by (brand_id, out_request_no).
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_create_membership_activity(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::create_membership_activity,
    )
}

/// Lists membership activities; `input_json`: `brand_id`, optional `card_id`, `activity_state`, `offset`, `limit` (1–20).
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_list_membership_activities(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::list_membership_activities,
    )
}

/// Reads one membership activity; `input_json`: `brand_id`, `activity_id`.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_get_membership_activity(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::get_membership_activity,
    )
}

/// Updates a membership activity (`PATCH`); `input_json`: `activity_id`, `brand_id`, `title`, `sub_title`, `begin_time`, `end_time`. Keyed by its content; reconciled by reading the activity back.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_update_membership_activity(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::update_membership_activity,
    )
}

/// Terminates a membership activity; `input_json`: `brand_id`, `activity_id`. Keyed by (brand_id, activity_id); reconciled by reading it back.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`,
/// `INVALID_CONFIG`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_terminate_membership_activity(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::terminate_membership_activity,
    )
}

/// A join-component token (`POST .../pre-auth-tokens`, valid 1 h); `input_json`: `brand_id`, `card_id`, `openid`. Not recorded in the outbox: each call yields a fresh token.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_create_pre_auth_token(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::create_pre_auth_token,
    )
}

/// A payment-code component token (`POST .../pay-view-tokens`, 10 min, single use); `input_json`: `brand_id`, `card_id`, `openid`.
///
/// Output, ownership and errors as for `cardbridge_wechatpay_confirm`:
/// on success `*answer_out` receives `{"status","body","undecryptable","request_id"}`.
/// Ownership: the caller owns `*answer_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `REMOTE_FAILED`, `REMOTE_UNKNOWN`, `NULL_PARAMETER`, `INVALID_UTF8`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_create_pay_view_token(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    client_call(
        wechatpay,
        input_json,
        input_json_len,
        answer_out,
        error_out,
        WechatPay::create_pay_view_token,
    )
}

/// Validates `input_json` for the card-member operation `operation` (e.g.
/// `createCardTemplate`, `importUserCard`; every name of §4, see
/// `cardbridge::wechatpay::operations::OPERATIONS`) and builds the request it
/// would send, without sending anything: `{"method","target","body"}`, the
/// body as text with every sensitive field shown as `<encrypted>`.
/// `options_json` may be NULL (defaults) or hold the wire-form members of the
/// configuration (`card_template_removal`, `user_feed_content_member`,
/// `card_template_out_request_no`, `import_by_phone_enabled`,
/// `confirm_card_id_in_body`, `encrypt_custom_field_values`). Borrowed: every
/// input is only read during the call.
///
/// On success `*request_out` receives the JSON. Ownership: the caller owns
/// `*request_out` and must release it with `cardbridge_bytes_free`. Errors:
/// `NULL_PARAMETER`, `INVALID_UTF8`, `INVALID_PARAMETER` (unknown operation),
/// `INVALID_JSON`, `VALIDATION` (field path, rule and limit, never the value),
/// `INVALID_CONFIG` (options; import by phone not enabled).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_validate(
    operation: *const c_char,
    operation_len: usize,
    input_json: *const c_char,
    input_json_len: usize,
    options_json: *const c_char,
    options_json_len: usize,
    request_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let request_out = try_out!(request_out);
        let operation = try_str!(operation, operation_len);
        let input_json = try_str!(input_json, input_json_len);
        let wire = if options_json.is_null() {
            crate::wechatpay::model::WireOptions::default()
        } else {
            let options_json = try_str!(options_json, options_json_len);
            crate::wechatpay::config::wire_options_from_json(options_json.as_bytes())?
        };
        request_out.write_bytes(crate::wechatpay::operations::prepare_json(
            operation,
            input_json.as_bytes(),
            wire,
        )?);
        Ok(())
    })
}
