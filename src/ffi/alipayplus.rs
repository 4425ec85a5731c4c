//! The Alipay+ integration: the outbound `issueCard` client and the two-step
//! inbound handler (`begin` → host decides → `finish`) of
//! `alipayplus-mpp.md`, over one shared handle.

use crate::alipayplus::model::{self, Direction, IssueCardRequest, NotifyCardRegistrationRequest};
use crate::alipayplus::{AlipayPlus, Begin, Config, IssuedCard, PendingCall};
use crate::error::{Error, ErrorKind};
use crate::ffi::bytes::{cardbridge_bytes, cardbridge_header, cardbridge_http_response};
use crate::ffi::error::{cardbridge_error, cardbridge_result};
use crate::ffi::handle::{Castable, OwnershipArc, OwnershipBox, free_arc, free_box, ref_from_ptr};
use crate::ffi::store::cardbridge_store;
use crate::http::HttpRequest;
use serde_json::{Value, json};
use std::ffi::c_char;
use std::sync::Arc;

/// `cardbridge_alipayplus_call_api` value for `notifyCardRegistration`.
pub const CARDBRIDGE_ALIPAYPLUS_API_NOTIFY_CARD_REGISTRATION: u32 = 1;
/// `cardbridge_alipayplus_call_api` value for `inquireCardDetail`.
pub const CARDBRIDGE_ALIPAYPLUS_API_INQUIRE_CARD_DETAIL: u32 = 2;
/// `cardbridge_alipayplus_call_api` value for `updateCardDetail`.
pub const CARDBRIDGE_ALIPAYPLUS_API_UPDATE_CARD_DETAIL: u32 = 3;
/// `cardbridge_alipayplus_call_api` value for `inquireMemberAssets`.
pub const CARDBRIDGE_ALIPAYPLUS_API_INQUIRE_MEMBER_ASSETS: u32 = 4;

/// One merchant's Alipay+ integration: configuration, keys, the store, the
/// `issueCard` client and the inbound handler.
///
/// Immutable and shareable: every function taking a
/// `const cardbridge_alipayplus *` may run on several threads at once on the
/// same handle (concurrent duplicates are arbitrated by the store).
pub struct cardbridge_alipayplus {
    _private: [u8; 0],
}

impl Castable for cardbridge_alipayplus {
    type Ownership = OwnershipArc;
    type RustType = AlipayPlus;
}

/// A verified, validated platform call waiting for the host's decision,
/// returned by `cardbridge_alipayplus_begin`.
///
/// One owner: it must not be used from two threads at the same time. While it
/// exists, a `notifyCardRegistration` holds a claim on its requestId, so
/// duplicates are answered "unknown, retry"; freeing it undecided releases the
/// claim at once.
pub struct cardbridge_alipayplus_call {
    _private: [u8; 0],
}

impl Castable for cardbridge_alipayplus_call {
    type Ownership = OwnershipBox;
    type RustType = PendingCall;
}

/// Builds an Alipay+ integration from a JSON configuration.
///
/// `config_json` (UTF-8, `config_json_len` bytes, only read during the call)
/// holds `client_id`, `merchant_private_key` and `platform_public_key` (PEM
/// text) and optionally `base_url` (needed for `issueCard`), `path_prefix`,
/// `key_version`, `platform_public_keys_by_version`, `sign_responses`,
/// `inbound_public_prefix`, `max_clock_skew_ms`, `time_offset_minutes`,
/// `connect_timeout_ms`, `read_timeout_ms`, `extra_ca_pem`,
/// `retry` (`max_attempts`, `base_delay_ms`, `max_delay_ms`, `deadline_ms`),
/// `idempotency_retention_days`, `claim_lease_ms`, `store_path` and
/// `max_body_bytes` (largest inbound body, default 1 MiB).
///
/// `store` may be NULL: then the SQLite store at `store_path` is opened
/// (created if needed). Otherwise the integration keeps its own reference to
/// `store` (Borrowed: `store` is only read during the call; the caller may
/// free it right after) and `store_path` is ignored.
///
/// On success `*alipayplus_out` receives the integration. Ownership: the
/// caller owns `*alipayplus_out` and must release it with
/// `cardbridge_alipayplus_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_CONFIG` (bad JSON, unknown member, missing
/// member, inconsistent value, no `store_path` without `store`, store cannot
/// be opened), `CARDBRIDGE_RESULT_INVALID_KEY` (the message names the key
/// member and never echoes key material). On failure `*alipayplus_out` is
/// unchanged and, if `error_out` is not NULL, `*error_out` receives an error
/// the caller must release with `cardbridge_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_new(
    config_json: *const c_char,
    config_json_len: usize,
    store: *const cardbridge_store,
    alipayplus_out: *mut *const cardbridge_alipayplus,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let alipayplus_out = try_out!(alipayplus_out);
        let config_json = try_str!(config_json, config_json_len);
        // SAFETY: the contract says `store` is NULL or a live store handle.
        let store = unsafe { ref_from_ptr(store) }.map(|s| Arc::clone(&s.0));
        let mut config = Config::from_json(config_json.as_bytes())?;
        config.clock = crate::ffi::handle_clock(config.clock);
        alipayplus_out.write_arc(AlipayPlus::new(config, store)?);
        Ok(())
    })
}

/// Releases the caller's reference to an integration. NULL is a no-op.
///
/// Ownership: takes `alipayplus`, which must not be used afterwards. Calls
/// still pending (`cardbridge_alipayplus_call`) stay valid objects, but are
/// finished through an integration handle, so keep one until they are done.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_free(alipayplus: *const cardbridge_alipayplus) {
    ffi_boundary!({
        // SAFETY: `alipayplus` is NULL or a reference the caller owns and gives up.
        unsafe { free_arc(alipayplus) }
    })
}

/// Issues a membership card (`issueCard`): validates the request, records it
/// in the durable outbox, signs and sends it, retrying ambiguous outcomes
/// (`U`, rate limiting, HTTP errors, timeouts, unverifiable answers) with
/// backoff and the very same body. Blocks for the whole retry budget at most.
///
/// `request_json` (UTF-8, `request_json_len` bytes, only read during the
/// call) is the `issueCard` request in wire format, e.g. the output of
/// `cardbridge_alipayplus_build_issue_card`. The same requestId always means
/// the same request: a later call returns the stored outcome without sending.
///
/// On success `*response_out` receives the platform's verified answer body
/// (wire JSON, `result` `S` and `cardNo`), byte for byte, followed by a NUL.
/// Ownership: the caller owns `*response_out` and must release it with
/// `cardbridge_bytes_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_JSON`, `CARDBRIDGE_RESULT_VALIDATION` (field
/// path such as `issueCard.externalCustomerId` and limit in the error; nothing
/// was stored or sent), `CARDBRIDGE_RESULT_INVALID_CONFIG` (no `base_url`),
/// `CARDBRIDGE_RESULT_IDEMPOTENCY_CONFLICT` (requestId already used with
/// another body), `CARDBRIDGE_RESULT_REMOTE_FAILED` (final `F`; the platform's
/// code and message are in the error), `CARDBRIDGE_RESULT_REMOTE_UNKNOWN`
/// (no definite answer within the budget: call again later with the same
/// request, or use `cardbridge_alipayplus_resume_pending`; also when the store
/// failed after the request may have been sent), `CARDBRIDGE_RESULT_INTERNAL`
/// (store failure) and `CARDBRIDGE_RESULT_TRANSPORT` (the store's database is
/// unreachable before anything was sent). On failure `*response_out`
/// is unchanged; `error_out` as for `cardbridge_alipayplus_new`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_issue_card(
    alipayplus: *const cardbridge_alipayplus,
    request_json: *const c_char,
    request_json_len: usize,
    response_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let alipayplus = try_ref!(alipayplus);
        let response_out = try_out!(response_out);
        let request_json = try_str!(request_json, request_json_len);
        let request: IssueCardRequest = model::parse(request_json.as_bytes(), Direction::Outbound)?;
        let card = alipayplus.issue_card(&request)?;
        response_out.write_bytes(card.response_body);
        Ok(())
    })
}

/// Builds a validated `issueCard` request from the `notifyCardRegistration`
/// request it answers, reusing its `appId`, `customerBelongsTo`, `requestId`
/// and `customerId` as `alipayplus-mpp.md` §7.2 recommends.
///
/// Inputs (UTF-8, pointer plus length, only read during the call):
/// `registration_json`, the registration body as received (e.g.
/// `cardbridge_alipayplus_call_request`); `external_customer_id`, the
/// merchant's user ID; `register_date`, an ISO 8601 date-time with offset;
/// `card_fields_json`, a JSON array of `{"fieldCode":..,"fieldValue":..}`
/// objects (`BALANCE` takes an Amount object); `options_json`, NULL or empty (none)
/// or a JSON object with any of the optional members of `issueCard`:
/// `externalCardNo` (max 64), `expireDate` (ISO 8601 date-time with offset),
/// `extendInfo` (max 2048); a `null` member is absent. They are validated
/// here, with the rest of the request.
///
/// On success `*request_out` receives the request as compact wire JSON
/// followed by a NUL, ready for `cardbridge_alipayplus_issue_card`.
/// Ownership: the caller owns `*request_out` and must release it with
/// `cardbridge_bytes_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_JSON` (field `notifyCardRegistration`,
/// `card_fields_json` or `options_json`), `CARDBRIDGE_RESULT_VALIDATION`
/// (field path such as `issueCard.externalCustomerId`,
/// `issueCard.cardFields[1].fieldCode`, `issueCard.extendInfo`, or
/// `issueCard.<member>` for an option that is not an optional member, and
/// the limit). On failure `*request_out` is unchanged; `error_out` as for
/// `cardbridge_alipayplus_new`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_build_issue_card(
    registration_json: *const c_char,
    registration_json_len: usize,
    external_customer_id: *const c_char,
    external_customer_id_len: usize,
    register_date: *const c_char,
    register_date_len: usize,
    card_fields_json: *const c_char,
    card_fields_json_len: usize,
    options_json: *const c_char,
    options_json_len: usize,
    request_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let request_out = try_out!(request_out);
        let registration_json = try_str!(registration_json, registration_json_len);
        let external_customer_id = try_str!(external_customer_id, external_customer_id_len);
        let register_date = try_str!(register_date, register_date_len);
        let card_fields_json = try_str!(card_fields_json, card_fields_json_len);
        let registration: NotifyCardRegistrationRequest =
            model::parse(registration_json.as_bytes(), Direction::Inbound)?;
        let card_fields = json_argument(card_fields_json, "card_fields_json")?;
        if !card_fields.is_array() {
            return Err(
                Error::new(ErrorKind::InvalidJson, "card_fields_json: must be a JSON array")
                    .with_field("card_fields_json"),
            );
        }
        let options = if options_json.is_null() || options_json_len == 0 {
            serde_json::Map::new()
        } else {
            match json_argument(try_str!(options_json, options_json_len), "options_json")? {
                Value::Object(members) => members,
                _ => {
                    return Err(
                        Error::new(ErrorKind::InvalidJson, "options_json: must be a JSON object")
                            .with_field("options_json"),
                    );
                }
            }
        };
        let request = IssueCardRequest::build_from_json(
            &registration,
            external_customer_id,
            register_date,
            card_fields,
            options,
        )?;
        request_out.write_bytes(model::to_json(&request, Direction::Outbound)?);
        Ok(())
    })
}

/// A JSON argument of an export, named `name` in errors.
fn json_argument(text: &str, name: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| {
        // serde_json syntax errors carry a category and a position, never input data.
        Error::new(ErrorKind::InvalidJson, format!("{name}: not valid JSON ({e})")).with_field(name)
    })
}

/// One entry of the `cardbridge_alipayplus_resume_pending` report.
fn report_entry(id: String, outcome: crate::Result<IssuedCard>) -> Value {
    match outcome {
        Ok(card) => {
            // The body was parsed and verified as JSON by the client; text is a fallback only.
            let response = serde_json::from_slice::<Value>(&card.response_body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&card.response_body).into_owned()));
            json!({"id": id, "ok": true, "response": response})
        }
        Err(e) => {
            let code = cardbridge_result::from(e.kind());
            json!({
                "id": id,
                "ok": false,
                "code": code as u32,
                "name": code.name().to_string_lossy(),
                "message": e.to_string(),
            })
        }
    }
}

/// Re-sends every pending `issueCard` of the store (e.g. at start-up after a
/// crash), each with its original body and the usual retry budget. Blocks
/// until every entry has been tried.
///
/// On success `*report_out` receives a JSON array (followed by a NUL), one
/// element per pending entry, oldest first:
/// `{"id":"<outbox id>","ok":true,"response":<verified answer JSON>}` or
/// `{"id":"<outbox id>","ok":false,"code":<result code>,"name":"CARDBRIDGE_RESULT_...","message":"..."}`;
/// `[]` when nothing was pending. The outbox id is
/// `alipayplus.issueCard/<appId>/<requestId>`, so a host that kept a requestId
/// can find its entry. Entries still unknown stay pending for the next call. Ownership: the caller owns `*report_out` and must release it
/// with `cardbridge_bytes_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_CONFIG`
/// (no `base_url`), `CARDBRIDGE_RESULT_INTERNAL` (the store cannot be read).
/// On failure `*report_out` is unchanged; `error_out` as for
/// `cardbridge_alipayplus_new`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_resume_pending(
    alipayplus: *const cardbridge_alipayplus,
    report_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let alipayplus = try_ref!(alipayplus);
        let report_out = try_out!(report_out);
        let report: Vec<Value> = alipayplus
            .resume_pending()?
            .into_iter()
            .map(|(id, outcome)| report_entry(id, outcome))
            .collect();
        let bytes = serde_json::to_vec(&report).map_err(|e| Error::internal("resume report", e))?;
        report_out.write_bytes(bytes);
        Ok(())
    })
}

/// Step 1 of handling a platform → merchant call: verifies the signature,
/// validates the body and, for `notifyCardRegistration`, claims its requestId
/// in the store.
///
/// Inputs, all only read during the call: `method` and `target` (the
/// request-target as received: path plus `?query`) as UTF-8; `headers`, an
/// array of `headers_len` header views (NULL allowed when 0); `body`, the raw
/// body bytes exactly as received (`body_len` bytes, NULL allowed when 0);
/// `now_unix_ms`, the current Unix time in milliseconds. A body longer than
/// the configured `max_body_bytes` (default 1 MiB) is answered
/// `F PARAM_ILLEGAL` before anything else, and at most `max_body_bytes + 1`
/// of its bytes are read.
///
/// On success exactly one of the two outputs is non-NULL and the other is set
/// to NULL:
/// * `*response_out`: the answer to send now (HTTP 200, signed), without
///   involving the host: bad signature (`ACCESS_DENIED`), invalid field
///   (`PARAM_ILLEGAL`), unknown path, the stored answer of a duplicate
///   (byte-identical body), or `U` for a duplicate still in progress.
///   A refusal for the signature carries its diagnosis (which check
///   failed, what would verify): `cardbridge_http_response_diagnosis`.
///   Ownership: the caller owns `*response_out` and must release it with
///   `cardbridge_http_response_free`.
/// * `*call_out`: the host must decide: read `cardbridge_alipayplus_call_api`
///   and `cardbridge_alipayplus_call_request`, then call
///   `cardbridge_alipayplus_finish` (or `cardbridge_alipayplus_finish_unknown`).
///   Ownership: the caller owns `*call_out` and must release it with
///   `cardbridge_alipayplus_call_free`.
///
/// Problems with the platform's request are answers, not errors. Errors:
/// `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8` (method,
/// target or a header). On failure neither output is written; `error_out` as
/// for `cardbridge_alipayplus_new`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_begin(
    alipayplus: *const cardbridge_alipayplus,
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
    call_out: *mut *mut cardbridge_alipayplus_call,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let alipayplus = try_ref!(alipayplus);
        let response_out = try_out!(response_out);
        let call_out = try_out!(call_out);
        let method = try_str!(method, method_len);
        let target = try_str!(target, target_len);
        let headers = try_headers!(headers, headers_len);
        let body = try_bytes!(body, body_len);
        // One byte over the limit is enough for the refusal: never copy more.
        let keep = body.len().min(alipayplus.max_body_bytes().saturating_add(1));
        let request = HttpRequest {
            method: method.to_string(),
            target: target.to_string(),
            headers,
            body: body[..keep].to_vec(),
        };
        let (begun, diagnosis) = alipayplus.begin_diagnosed(&request, now_unix_ms);
        match begun {
            Begin::Respond(response) => {
                response_out.write(cardbridge_http_response::into_raw_diagnosed(
                    response,
                    diagnosis.as_ref(),
                ));
                call_out.write(std::ptr::null_mut());
            }
            Begin::Decide(call) => {
                response_out.write(std::ptr::null_mut());
                call_out.write_box(*call);
            }
        }
        Ok(())
    })
}

/// Which API a pending call is: `CARDBRIDGE_ALIPAYPLUS_API_NOTIFY_CARD_REGISTRATION`
/// (1), `_INQUIRE_CARD_DETAIL` (2), `_UPDATE_CARD_DETAIL` (3) or
/// `_INQUIRE_MEMBER_ASSETS` (4); 0 when `call` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_call_api(call: *const cardbridge_alipayplus_call) -> u32 {
    ffi_boundary!({ try_ref!(call).api() as u32 })
}

/// How many earlier claims on this call's key expired before this delivery
/// took it over (a slow or crashed host); 0 on first sight, and when `call`
/// is NULL. Greater than 0 means **redelivered**: an earlier host may already
/// have acted on this requestId, so look your own records up by requestId
/// before acting again.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_call_earlier_claims(call: *const cardbridge_alipayplus_call) -> u32 {
    ffi_boundary!({ try_ref!(call).earlier_claims() })
}

/// Gives a view of the request body of a pending call: the validated JSON
/// exactly as received (wire format), `*json_out` (never NULL on success) and
/// `*json_len_out`.
///
/// Borrowed: the bytes are valid until `call` is freed; they are not
/// NUL-terminated. Both outputs are written only on success. Errors:
/// `CARDBRIDGE_RESULT_NULL_PARAMETER`; `error_out` as for
/// `cardbridge_alipayplus_new`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_call_request(
    call: *const cardbridge_alipayplus_call,
    json_out: *mut *const u8,
    json_len_out: *mut usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let call = try_ref!(call);
        let json_out = try_out!(json_out);
        let json_len_out = try_out!(json_len_out);
        let json = call.request_json();
        json_out.write(json.as_ptr());
        json_len_out.write(json.len());
        Ok(())
    })
}

/// Names the call parameter in the core's "already finished" error.
fn call_error(e: Error) -> Error {
    if e.kind() == ErrorKind::AlreadyUsed && e.field().is_none() {
        e.with_field("call")
    } else {
        e
    }
}

/// Step 2: turns the host's decision into the signed answer for a pending
/// call. Does not consume `call` (free it afterwards with
/// `cardbridge_alipayplus_call_free`).
///
/// `decision_json` (UTF-8, only read during the call) is the answer body in
/// wire format; `result` may be left out for success, so `{}` means
/// `S SUCCESS`. Allowed results: `S SUCCESS`, `F PROCESS_FAIL`,
/// `F PARAM_ILLEGAL`, `F ACCESS_DENIED`, `U UNKNOWN_EXCEPTION`. A final answer
/// (`S`/`F`) of a `notifyCardRegistration` is stored durably before this
/// returns, so duplicates get the same bytes; `U` releases the claim.
/// `now_unix_ms` is the current Unix time in milliseconds.
///
/// On success `*response_out` receives the answer (HTTP 200, signed).
/// Ownership: the caller owns `*response_out` and must release it with
/// `cardbridge_http_response_free`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_INVALID_JSON` and `CARDBRIDGE_RESULT_VALIDATION` (field
/// path such as `notifyCardRegistrationResponse.result.resultCode`; the call
/// stays usable, so the host can correct its decision),
/// `CARDBRIDGE_RESULT_ALREADY_USED` (the call was already finished; field
/// `call`), `CARDBRIDGE_RESULT_INTERNAL` (store failure) and
/// `CARDBRIDGE_RESULT_TRANSPORT` (the store's database is unreachable): the
/// call stays usable; answer with `cardbridge_alipayplus_finish_unknown` so
/// the platform asks again. On failure `*response_out` is unchanged;
/// `error_out` as for `cardbridge_alipayplus_new`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_finish(
    alipayplus: *const cardbridge_alipayplus,
    call: *mut cardbridge_alipayplus_call,
    decision_json: *const c_char,
    decision_json_len: usize,
    now_unix_ms: i64,
    response_out: *mut *mut cardbridge_http_response,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let alipayplus = try_ref!(alipayplus);
        let call = try_mut!(call);
        let response_out = try_out!(response_out);
        let decision_json = try_str!(decision_json, decision_json_len);
        let response = alipayplus
            .finish(call, decision_json.as_bytes(), now_unix_ms)
            .map_err(call_error)?;
        response_out.write(cardbridge_http_response::into_raw(response));
        Ok(())
    })
}

/// Finishes a pending call the host cannot decide now (its own error or
/// timeout) with `U UNKNOWN_EXCEPTION`, so the platform retries later; a
/// `notifyCardRegistration` claim is released. Does not consume `call`.
///
/// On success `*response_out` receives the answer (HTTP 200, signed).
/// Ownership: the caller owns `*response_out` and must release it with
/// `cardbridge_http_response_free`.
///
/// The claim is released best effort: when the store is unreachable the `U`
/// answer is still returned and the claim ends with its lease.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_ALREADY_USED`
/// (field `call`). On failure `*response_out` is unchanged; `error_out` as for
/// `cardbridge_alipayplus_new`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_finish_unknown(
    alipayplus: *const cardbridge_alipayplus,
    call: *mut cardbridge_alipayplus_call,
    now_unix_ms: i64,
    response_out: *mut *mut cardbridge_http_response,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let alipayplus = try_ref!(alipayplus);
        let call = try_mut!(call);
        let response_out = try_out!(response_out);
        let response = alipayplus.finish_unknown(call, now_unix_ms).map_err(call_error)?;
        response_out.write(cardbridge_http_response::into_raw(response));
        Ok(())
    })
}

/// Releases a pending call. NULL is a no-op. A call freed without a decision
/// releases its `notifyCardRegistration` claim, so the platform's next retry
/// reaches the host again.
///
/// Ownership: takes `call`; it and every view obtained from it must not be
/// used afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_call_free(call: *mut cardbridge_alipayplus_call) {
    ffi_boundary!({
        // SAFETY: `call` is NULL or a call the caller owns and gives up.
        unsafe { free_box(call) }
    })
}

/// Deletes inbound idempotency records older than the configured retention
/// (`idempotency_retention_days`, default 30) at `now_unix_ms`.
///
/// On success `*purged_out` receives the number of records deleted.
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INTERNAL`
/// (store failure). On failure `*purged_out` is unchanged; `error_out` as for
/// `cardbridge_alipayplus_new`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_purge_expired(
    alipayplus: *const cardbridge_alipayplus,
    now_unix_ms: i64,
    purged_out: *mut usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let alipayplus = try_ref!(alipayplus);
        let purged_out = try_out!(purged_out);
        purged_out.write(alipayplus.purge_expired(now_unix_ms)?);
        Ok(())
    })
}

/// Direction for [`cardbridge_alipayplus_validate`]: a body received from the platform
/// (required fields, types, lengths, counts; character rules not enforced).
pub const CARDBRIDGE_DIRECTION_INBOUND: u32 = 1;
/// Direction for [`cardbridge_alipayplus_validate`]: a body we send (every rule,
/// including forbidden `@ # ?` and a known `customerBelongsTo`).
pub const CARDBRIDGE_DIRECTION_OUTBOUND: u32 = 2;

/// Validates an Alipay+ membership body without sending anything, and returns
/// it normalised (compact JSON, unknown members kept, `BALANCE` as an object).
///
/// `message` names the body: an API (`notifyCardRegistration`, `issueCard`,
/// `inquireCardDetail`, `updateCardDetail`, `inquireMemberAssets`) or its
/// answer (`issueCardResponse`, ...). `direction` is
/// `CARDBRIDGE_DIRECTION_INBOUND` or `CARDBRIDGE_DIRECTION_OUTBOUND`
/// (anything else: `CARDBRIDGE_RESULT_INVALID_PARAMETER`). Inputs are UTF-8
/// with explicit lengths and only read during the call.
///
/// On success `*normalized_out` receives the JSON followed by a NUL.
/// Ownership: the caller owns `*normalized_out` and must release it with
/// `cardbridge_bytes_free`. Errors: `CARDBRIDGE_RESULT_VALIDATION` (field path
/// and limit in the error), `CARDBRIDGE_RESULT_INVALID_JSON`,
/// `CARDBRIDGE_RESULT_INVALID_PARAMETER`, `CARDBRIDGE_RESULT_NULL_PARAMETER`,
/// `CARDBRIDGE_RESULT_INVALID_UTF8`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_validate(
    message: *const c_char,
    message_len: usize,
    json: *const c_char,
    json_len: usize,
    direction: u32,
    normalized_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let normalized_out = try_out!(normalized_out);
        let message = try_str!(message, message_len);
        let json = try_str!(json, json_len);
        let direction = match direction {
            CARDBRIDGE_DIRECTION_INBOUND => Direction::Inbound,
            CARDBRIDGE_DIRECTION_OUTBOUND => Direction::Outbound,
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidParameter,
                    format!("direction: {other} is neither CARDBRIDGE_DIRECTION_INBOUND (1) nor _OUTBOUND (2)"),
                )
                .with_field("direction"));
            }
        };
        normalized_out.write_bytes(model::normalize(message, json.as_bytes(), direction)?);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipayplus::InboundApi;

    /// The integration is an Arc handle used from several threads at once
    /// (§5.4); a pending call may move to another thread.
    #[test]
    fn handles_have_the_thread_bounds_they_promise() {
        fn assert_send_sync<T: Send + Sync>() {}
        fn assert_send<T: Send>() {}
        assert_send_sync::<<cardbridge_alipayplus as Castable>::RustType>();
        assert_send::<<cardbridge_alipayplus_call as Castable>::RustType>();
    }

    #[test]
    fn api_constants_match_the_core_numbers() {
        let constants = [
            CARDBRIDGE_ALIPAYPLUS_API_NOTIFY_CARD_REGISTRATION,
            CARDBRIDGE_ALIPAYPLUS_API_INQUIRE_CARD_DETAIL,
            CARDBRIDGE_ALIPAYPLUS_API_UPDATE_CARD_DETAIL,
            CARDBRIDGE_ALIPAYPLUS_API_INQUIRE_MEMBER_ASSETS,
        ];
        let core: Vec<u32> = InboundApi::ALL.iter().map(|a| *a as u32).collect();
        assert_eq!(constants.to_vec(), core);
    }

    #[test]
    fn failed_resume_entries_carry_code_name_and_message() {
        let e = Error::new(ErrorKind::RemoteUnknown, "outcome unknown");
        let v = report_entry("x/1".into(), Err(e));
        assert_eq!(
            v,
            json!({"id": "x/1", "ok": false, "code": 501, "name": "CARDBRIDGE_RESULT_REMOTE_UNKNOWN",
                   "message": "outcome unknown"})
        );
    }
}
