//! C exports of the WeChat Pay card-member integration: the client
//! (`confirm`, get, update, points sync, certificate refresh; the rest of the
//! family is in `brand.rs`) and the
//! card-event callback handler in two steps, mirroring `alipayplus.rs`.

use crate::error::Error;
use crate::ffi::bytes::{cardbridge_bytes, cardbridge_header, cardbridge_http_response};
use crate::ffi::error::{cardbridge_error, cardbridge_result};
use crate::ffi::handle::{Castable, OwnershipArc, OwnershipBox, free_arc, free_box, ref_from_ptr};
use crate::ffi::store::cardbridge_store;
use crate::http::HttpRequest;
use crate::wechatpay::{ApiAnswer, CallbackBegin, CallbackEvent, Config, WechatPay};
use serde_json::{Value, json};
use std::ffi::c_char;
use std::sync::Arc;

/// One merchant's WeChat Pay card-member integration: keys (WeChat Pay
/// public key and/or platform certificates), the client and the callback
/// handler over one durable store.
///
/// Immutable and shareable: every function taking a
/// `const cardbridge_wechatpay *` may run on several threads at once.
pub struct cardbridge_wechatpay {
    _private: [u8; 0],
}

impl Castable for cardbridge_wechatpay {
    type Ownership = OwnershipArc;
    type RustType = WechatPay;
}

/// A verified, decrypted card event waiting for the host, returned by
/// `cardbridge_wechatpay_callback_begin`. One owner; freeing it unfinished
/// releases its de-duplication claim so WeChat's redelivery reaches the host.
pub struct cardbridge_wechatpay_event {
    _private: [u8; 0],
}

/// The event and its JSON rendering (kept so the C view stays valid).
pub struct EventHandle {
    event: CallbackEvent,
    json: Vec<u8>,
}

impl Castable for cardbridge_wechatpay_event {
    type Ownership = OwnershipBox;
    type RustType = EventHandle;
}

/// Builds a WeChat Pay integration from a JSON configuration.
///
/// `config_json` (UTF-8, only read during the call) holds `mchid`,
/// `merchant_serial_no`, `merchant_private_key` (PEM), `api_v3_key` (the 32
/// ASCII bytes) and at least one WeChat Pay key source: `wechatpay_public_key_id`
/// with `wechatpay_public_key` (PEM), `platform_certificates` (PEM list) or
/// `certificate_mode: true` (download `/v3/certificates`). Optional:
/// `base_url`, `backup_base_url`, `confirm_card_id_in_body`,
/// `encrypt_custom_field_values`, `card_template_removal` (`invalidate`, the
/// default, or `delete`), `card_template_out_request_no` (default true),
/// `user_feed_content_member` (`cell`, the default, or `cell_message`),
/// `import_by_phone_enabled` (default false), `callback_success_body`,
/// `certificate_refresh_ms`, `connect_timeout_ms`, `read_timeout_ms`,
/// `extra_ca_pem`, `retry` (`max_attempts`, `base_delay_ms`, `max_delay_ms`,
/// `deadline_ms`), `claim_lease_ms`, `store_path`, `max_body_bytes` (default 1 MiB).
///
/// `store` may be NULL: then the SQLite store at `store_path` is opened.
/// Borrowed: `store` is only read during the call.
///
/// On success `*wechatpay_out` receives the integration. Ownership: the caller
/// owns `*wechatpay_out` and must release it with `cardbridge_wechatpay_free`.
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_CONFIG` (including an APIv3 key that is not 32
/// bytes), `CARDBRIDGE_RESULT_INVALID_KEY`. On failure `*wechatpay_out` is
/// unchanged and, if `error_out` is not NULL, `*error_out` receives an error
/// the caller must release with `cardbridge_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_new(
    config_json: *const c_char,
    config_json_len: usize,
    store: *const cardbridge_store,
    wechatpay_out: *mut *const cardbridge_wechatpay,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let wechatpay_out = try_out!(wechatpay_out);
        let config_json = try_str!(config_json, config_json_len);
        // SAFETY: the contract says `store` is NULL or a live store handle.
        let store = unsafe { ref_from_ptr(store) }.map(|s| Arc::clone(&s.0));
        let mut config = Config::from_json(config_json.as_bytes())?;
        config.clock = crate::ffi::handle_clock(config.clock);
        wechatpay_out.write_arc(WechatPay::new(config, store)?);
        Ok(())
    })
}

/// Releases the caller's reference to an integration. NULL is a no-op.
///
/// Ownership: takes `wechatpay`, which must not be used afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_free(wechatpay: *const cardbridge_wechatpay) {
    ffi_boundary!({
        // SAFETY: `wechatpay` is NULL or a handle the caller gives up.
        unsafe { free_arc(wechatpay) }
    })
}

/// The JSON handed back for a verified answer: the body with sensitive
/// fields decrypted, plus what could not be decrypted.
pub(crate) fn answer_json(answer: ApiAnswer) -> crate::Result<Vec<u8>> {
    let v = json!({"status": answer.status, "body": answer.json, "undecryptable": answer.undecryptable,
                   "request_id": answer.request_id});
    serde_json::to_vec(&v).map_err(|e| Error::internal("answer", e))
}

pub(super) fn client_call(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
    call: crate::wechatpay::Call,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let wechatpay = try_ref!(wechatpay);
        let answer_out = try_out!(answer_out);
        let input_json = try_str!(input_json, input_json_len);
        answer_out.write_bytes(answer_json(call(wechatpay, input_json.as_bytes())?)?);
        Ok(())
    })
}

/// Syncs a card-opening result (`POST .../user-cards/{user_card_code}/confirm`).
///
/// `input_json` is one object: `user_card_code` and `card_id` (they go into the
/// path and query), the body members (`brand_id`, `openid`,
/// `user_card_confirm_state`, optional `card_color`, `card_picture_url`,
/// `level`, `valid_date_information`, `user_information`, `attach`,
/// `phone_number`) with sensitive fields in **cleartext**: the library
/// encrypts them and sets `Wechatpay-Serial`. Validated before anything is
/// stored or sent. Recorded in the durable outbox: the same
/// (card_id, user_card_code) is confirmed once; repeats return the stored
/// answer; ambiguous outcomes are retried, then reconciled by reading the card.
///
/// On success `*answer_out` receives
/// `{"status":200,"body":<user card, sensitive fields decrypted>,"undecryptable":[...],"request_id":...}`
/// followed by a NUL. Ownership: the caller owns `*answer_out` and must release
/// it with `cardbridge_bytes_free`. Errors: `VALIDATION` (field path and limit),
/// `INVALID_JSON`, `IDEMPOTENCY_CONFLICT`, `REMOTE_FAILED` (4xx; `code`,
/// `message`, `detail` in the error's remote fields), `REMOTE_UNKNOWN`
/// (retry later with the same input), `INVALID_CONFIG` (no encryption key).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_confirm(
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
        WechatPay::confirm,
    )
}

/// Reads one user card (`GET .../user-cards/{user_card_code}?brand_id&card_id&openid`);
/// `input_json` holds those four members. Output and errors as for
/// `cardbridge_wechatpay_confirm` (no outbox, no idempotency conflict).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_get_user_card(
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
        WechatPay::get_user_card,
    )
}

/// Updates a user card (`PATCH .../user-cards/{user_card_code}?card_id`);
/// `input_json` holds `user_card_code`, `card_id` and the body members, with
/// sensitive fields in cleartext. Output and errors as for
/// `cardbridge_wechatpay_confirm` (no outbox).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_update_user_card(
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
        WechatPay::update_user_card,
    )
}

/// Syncs a user's point balance (`POST .../user-points/sync`); `input_json`
/// holds `out_request_no`, `brand_id`, `card_id`, `openid`, `user_card_code`,
/// `point_balance`. Output and errors as for `cardbridge_wechatpay_confirm`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_sync_user_points(
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
        WechatPay::sync_user_points,
    )
}

/// Re-sends every pending outbox entry: `confirm` and every mutating call of
/// the brand family (call at start-up after a crash).
///
/// On success `*report_out` receives a JSON array with one entry per pending
/// confirm: `{"id":..,"ok":true,"answer":{...}}` or
/// `{"id":..,"ok":false,"code":<number>,"name":"CARDBRIDGE_RESULT_...","message":..}`.
/// Ownership: the caller owns `*report_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `NULL_PARAMETER`, `INTERNAL` (store).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_resume_pending(
    wechatpay: *const cardbridge_wechatpay,
    report_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let wechatpay = try_ref!(wechatpay);
        let report_out = try_out!(report_out);
        let mut report = Vec::new();
        for (id, outcome) in wechatpay.resume_pending()? {
            report.push(match outcome {
                Ok(a) => {
                    let answer: Value = serde_json::from_slice(&answer_json(a)?).unwrap_or_default();
                    json!({"id": id, "ok": true, "answer": answer})
                }
                Err(e) => json!({"id": id, "ok": false, "code": e.kind().code(),
                                 "name": format!("CARDBRIDGE_RESULT_{}", e.kind().name()), "message": e.message()}),
            });
        }
        report_out.write_bytes(serde_json::to_vec(&report).map_err(|e| Error::internal("report", e))?);
        Ok(())
    })
}

/// Downloads and installs the platform certificates (`GET /v3/certificates`),
/// each authenticated with the APIv3 key and the answer verified with the
/// certificate it names. On success `*count_out` receives the number of
/// valid certificates installed. Errors: `INVALID_CONFIG` (404: the merchant
/// has no platform certificates; use the WeChat Pay public key),
/// `SIGNATURE_INVALID`, `DECRYPT_FAILED`, `HTTP_STATUS`, `TRANSPORT`, `TIMEOUT`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_refresh_certificates(
    wechatpay: *const cardbridge_wechatpay,
    count_out: *mut usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let wechatpay = try_ref!(wechatpay);
        let count_out = try_out!(count_out);
        count_out.write(wechatpay.refresh_certificates()?);
        Ok(())
    })
}

/// Step 1 of a card-event callback: verifies (`Wechatpay-*` headers,
/// signature type, |now − timestamp| ≤ 300 s, key by `Wechatpay-Serial`,
/// signature over the raw body), decrypts the resource and its sensitive
/// fields, and de-duplicates by notification `id`.
///
/// Inputs: the HTTP method, request-target, headers (names matched
/// case-insensitively) and the **raw** body exactly as received, and the
/// current Unix time in milliseconds (as every `now_unix_ms` of the library;
/// the skew check compares whole seconds). All only read during the call. A body
/// longer than the configured `max_body_bytes` (default 1 MiB) is answered
/// 413 before anything else, and at most `max_body_bytes + 1` of its bytes are read.
///
/// On success exactly one output is non-NULL: `*response_out` (answer now:
/// 400/401 refusals, a processed duplicate's acknowledgement, 500 while the
/// same event is being handled) or `*event_out` (the host must handle it and
/// call `cardbridge_wechatpay_callback_finish`). A refusal for the signature carries its
/// diagnosis: `cardbridge_http_response_diagnosis`. Ownership: the caller owns
/// whichever is set and must release it with `cardbridge_http_response_free`
/// or `cardbridge_wechatpay_event_free`. Errors: `NULL_PARAMETER`,
/// `INVALID_UTF8` (method, target or a header).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_callback_begin(
    wechatpay: *const cardbridge_wechatpay,
    method: *const c_char,
    method_len: usize,
    target: *const c_char,
    target_len: usize,
    headers: *const cardbridge_header,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    now_unix_ms: i64,
    response_out: *mut *mut cardbridge_http_response,
    event_out: *mut *mut cardbridge_wechatpay_event,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let wechatpay = try_ref!(wechatpay);
        let response_out = try_out!(response_out);
        let event_out = try_out!(event_out);
        let method = try_str!(method, method_len);
        let target = try_str!(target, target_len);
        let headers = try_headers!(headers, headers_len);
        let body = try_bytes!(body, body_len);
        // One byte over the limit is enough for the refusal: never copy more.
        let keep = body.len().min(wechatpay.max_body_bytes().saturating_add(1));
        let request = HttpRequest {
            method: method.to_string(),
            target: target.to_string(),
            headers,
            body: body[..keep].to_vec(),
        };
        let (begun, diagnosis) = wechatpay.callback_begin_diagnosed(&request, now_unix_ms);
        match begun {
            CallbackBegin::Respond(response) => {
                response_out.write(cardbridge_http_response::into_raw_diagnosed(
                    response,
                    diagnosis.as_ref(),
                ));
                event_out.write(std::ptr::null_mut());
            }
            CallbackBegin::Handle(event) => {
                let json = event.to_json();
                response_out.write(std::ptr::null_mut());
                event_out.write_box(EventHandle { event: *event, json });
            }
        }
        Ok(())
    })
}

/// How many earlier claims on this notification id expired before this
/// delivery took it over; 0 on first sight, and when `event` is NULL.
/// Greater than 0 means **redelivered**: an earlier host may already have
/// acted on it (the JSON view says the same in `redelivered`, `earlier_claims`).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_event_earlier_claims(event: *const cardbridge_wechatpay_event) -> u32 {
    ffi_boundary!({ try_ref!(event).event.earlier_claims })
}

/// A view of the event as JSON:
/// `{"id","event_type","kind","resource":{... cleartext ...},"undecryptable":[...],
/// "redelivered":bool,"earlier_claims":n}`
/// where `kind` is `USER_CARD.CREATE`, `USER_CARD.DELETE`, `SYNC_USER_POINT`,
/// `POINT_EXCHANGE_COUPON` or the raw event type. The resource holds personal
/// data in cleartext: do not log it.
///
/// Borrowed: valid until `event` is freed; not NUL-terminated. Outputs are
/// written only on success. Errors: `NULL_PARAMETER`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_event_json(
    event: *const cardbridge_wechatpay_event,
    json_out: *mut *const u8,
    json_len_out: *mut usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let event = try_ref!(event);
        let json_out = try_out!(json_out);
        let json_len_out = try_out!(json_len_out);
        json_out.write(event.json.as_ptr());
        json_len_out.write(event.json.len());
        Ok(())
    })
}

/// Step 2: `accepted = true` acknowledges the event (200 `{"code":"SUCCESS"}`
/// or 204 per configuration) and records it, so duplicates are acknowledged
/// without the host; `false` answers 500 `{"code":"FAIL","message":reason}`
/// so WeChat redelivers (`reason`: UTF-8, may be empty, no personal data).
/// Does not consume `event`; a second finish → `ALREADY_USED`.
///
/// On success `*response_out` receives the answer. Ownership: the caller owns
/// `*response_out` and must release it with `cardbridge_http_response_free`.
/// Errors: `NULL_PARAMETER`, `INVALID_UTF8`, `ALREADY_USED`, `INTERNAL` (store).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_callback_finish(
    wechatpay: *const cardbridge_wechatpay,
    event: *mut cardbridge_wechatpay_event,
    accepted: bool,
    reason: *const c_char,
    reason_len: usize,
    now_unix_ms: i64,
    response_out: *mut *mut cardbridge_http_response,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let wechatpay = try_ref!(wechatpay);
        let event = try_mut!(event);
        let response_out = try_out!(response_out);
        let reason = try_str!(reason, reason_len);
        let response = wechatpay
            .callback_finish(&mut event.event, accepted, reason, now_unix_ms)
            .map_err(|e| {
                if e.kind() == crate::ErrorKind::AlreadyUsed {
                    e.with_field("event")
                } else {
                    e
                }
            })?;
        response_out.write(cardbridge_http_response::into_raw(response));
        Ok(())
    })
}

/// Frees an event. NULL is a no-op. An unfinished event releases its claim.
///
/// Ownership: takes `event`, which must not be used afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_event_free(event: *mut cardbridge_wechatpay_event) {
    ffi_boundary!({
        // SAFETY: `event` is NULL or an event the caller owns and gives up.
        unsafe { free_box(event) }
    })
}
