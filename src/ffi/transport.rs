//! Bring your own transport: `issueCard` and `confirm` as two calls around
//! the host's own HTTP exchange. `_prepare` records the request in the
//! durable outbox and hands out the signed request (`cardbridge_prepared`);
//! the host sends it with its own stack (libcurl, WinHTTP, a proxy) and hands
//! the raw answer to `_complete`, which verifies and judges it with the
//! engine's rules and returns the final answer or the next request.

use crate::alipayplus::model::{self, Direction, IssueCardRequest};
use crate::error::{Error, ErrorKind};
use crate::ffi::alipayplus::cardbridge_alipayplus;
use crate::ffi::bytes::{cardbridge_bytes, cardbridge_header, header_view};
use crate::ffi::error::{cardbridge_error, cardbridge_result};
use crate::ffi::handle::{Castable, OutParam, OwnershipBox, bytes_arg, free_box, headers_arg};
use crate::ffi::wechatpay::{answer_json, cardbridge_wechatpay};
use crate::http::HttpResponse;
use crate::outbox::{Prepared, Progress, Purpose, Reply};
use std::ffi::c_char;

/// `cardbridge_prepared_purpose`: the request itself (first send or re-send).
pub const CARDBRIDGE_PURPOSE_SEND: u32 = 1;
/// `cardbridge_prepared_purpose`: a read-back finding out whether an earlier,
/// ambiguous send took effect (WeChat Pay confirm reads the card back).
pub const CARDBRIDGE_PURPOSE_READ_BACK: u32 = 2;

/// `_complete` reply: an answer arrived (any HTTP status); pass status,
/// headers and the raw body.
pub const CARDBRIDGE_REPLY_ANSWERED: u32 = 1;
/// `_complete` reply: the request certainly did not reach the server (no
/// connection was made: DNS, connect, TLS set-up failed).
pub const CARDBRIDGE_REPLY_NOT_SENT: u32 = 2;
/// `_complete` reply: the request may have reached the server, but no answer
/// came (the connection broke while sending or waiting).
pub const CARDBRIDGE_REPLY_NO_ANSWER: u32 = 3;
/// `_complete` reply: the request may have reached the server, but no answer
/// came in time.
pub const CARDBRIDGE_REPLY_TIMED_OUT: u32 = 4;

/// A signed request recorded in the outbox and leased to this caller,
/// waiting for the caller's own HTTP exchange: method, absolute URL, headers
/// (send them all, unchanged) and body (send it byte for byte).
///
/// One owner: it must not be used from two threads at the same time. Wait
/// `cardbridge_prepared_wait_ms` before sending. The lease covers one
/// exchange (the configured connect + 2 × read timeouts + 10 s); a slower
/// exchange may see another caller take the entry over, and then `_complete`
/// answers `CARDBRIDGE_RESULT_REMOTE_UNKNOWN`. Freeing it without completing
/// releases the lease at once and leaves the entry pending (the next call
/// with the same key, or a resume, reconciles it first).
pub struct cardbridge_prepared {
    _private: [u8; 0],
}

impl Castable for cardbridge_prepared {
    type Ownership = OwnershipBox;
    type RustType = Prepared;
}

/// Whether `prepared` is the request itself (`CARDBRIDGE_PURPOSE_SEND`) or a
/// read-back (`CARDBRIDGE_PURPOSE_READ_BACK`); 0 when `prepared` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_prepared_purpose(prepared: *const cardbridge_prepared) -> u32 {
    ffi_boundary!({
        match try_ref!(prepared).purpose() {
            Purpose::Send => CARDBRIDGE_PURPOSE_SEND,
            Purpose::ReadBack => CARDBRIDGE_PURPOSE_READ_BACK,
        }
    })
}

/// How many milliseconds to wait before sending (the backoff after a failed
/// attempt; 0 for a first send); 0 when `prepared` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_prepared_wait_ms(prepared: *const cardbridge_prepared) -> u64 {
    ffi_boundary!({ u64::try_from(try_ref!(prepared).wait().as_millis()).unwrap_or(u64::MAX) })
}

/// Gives a view of one text member of `prepared`.
fn text_view(text: &str, out: OutParam<'_, *const c_char>, len_out: OutParam<'_, usize>) -> crate::Result<()> {
    out.write(text.as_ptr().cast::<c_char>());
    len_out.write(text.len());
    Ok(())
}

/// Gives a view of the HTTP method (`POST`, `GET`): `*method_out` and
/// `*method_len_out`.
///
/// Borrowed: valid until `prepared` is freed or consumed; not NUL-terminated.
/// Both outputs are written only on success. Errors:
/// `CARDBRIDGE_RESULT_NULL_PARAMETER`; `error_out` as for every fallible function.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_prepared_method(
    prepared: *const cardbridge_prepared,
    method_out: *mut *const c_char,
    method_len_out: *mut usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let prepared = try_ref!(prepared);
        let method_out = try_out!(method_out);
        let method_len_out = try_out!(method_len_out);
        text_view(&prepared.request().method, method_out, method_len_out)
    })
}

/// Gives a view of the absolute URL to send to: `*url_out` and `*url_len_out`.
///
/// Borrowed: valid until `prepared` is freed or consumed; not NUL-terminated.
/// Both outputs are written only on success. Errors:
/// `CARDBRIDGE_RESULT_NULL_PARAMETER`; `error_out` as for every fallible function.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_prepared_url(
    prepared: *const cardbridge_prepared,
    url_out: *mut *const c_char,
    url_len_out: *mut usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let prepared = try_ref!(prepared);
        let url_out = try_out!(url_out);
        let url_len_out = try_out!(url_len_out);
        text_view(&prepared.request().url, url_out, url_len_out)
    })
}

/// Gives a view of the outbox id of the request's entry (e.g.
/// `alipayplus.issueCard/<appId>/<requestId>`): `*id_out` and `*id_len_out`.
///
/// Borrowed: valid until `prepared` is freed or consumed; not NUL-terminated.
/// Both outputs are written only on success. Errors:
/// `CARDBRIDGE_RESULT_NULL_PARAMETER`; `error_out` as for every fallible function.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_prepared_outbox_id(
    prepared: *const cardbridge_prepared,
    id_out: *mut *const c_char,
    id_len_out: *mut usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let prepared = try_ref!(prepared);
        let id_out = try_out!(id_out);
        let id_len_out = try_out!(id_len_out);
        text_view(prepared.outbox_id(), id_out, id_len_out)
    })
}

/// The number of headers to send (0 when `prepared` is NULL). Every one must
/// be sent unchanged: they carry the signature.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_prepared_header_count(prepared: *const cardbridge_prepared) -> usize {
    ffi_boundary!({ try_ref!(prepared).request().headers.len() })
}

/// Writes a view of header number `index` (from 0) into `*header_out`.
///
/// Borrowed: the name and value pointers are valid until `prepared` is freed
/// or consumed; they are not NUL-terminated. Errors:
/// `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_PARAMETER`
/// when `index` is not below `cardbridge_prepared_header_count`.
/// `*header_out` is written only on success; `error_out` as for every
/// fallible function.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_prepared_header(
    prepared: *const cardbridge_prepared,
    index: usize,
    header_out: *mut cardbridge_header,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let prepared = try_ref!(prepared);
        let header_out = try_out!(header_out);
        header_out.write(header_view(&prepared.request().headers, index, "prepared request")?);
        Ok(())
    })
}

/// Gives a view of the body bytes to send: `*body_out` (never NULL on
/// success, even for an empty body) and `*body_len_out`.
///
/// Borrowed: valid until `prepared` is freed or consumed. Both outputs are
/// written only on success. Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`;
/// `error_out` as for every fallible function.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_prepared_body(
    prepared: *const cardbridge_prepared,
    body_out: *mut *const u8,
    body_len_out: *mut usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let prepared = try_ref!(prepared);
        let body_out = try_out!(body_out);
        let body_len_out = try_out!(body_len_out);
        body_out.write(prepared.request().body.as_ptr());
        body_len_out.write(prepared.request().body.len());
        Ok(())
    })
}

/// Releases a prepared request without completing it; NULL is a no-op. The
/// entry's lease is released and the entry stays pending in the outbox (see
/// `cardbridge_prepared`).
///
/// Ownership: takes `prepared`; it and every view obtained from it must not
/// be used afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_prepared_free(prepared: *mut cardbridge_prepared) {
    ffi_boundary!({
        // SAFETY: `prepared` is NULL or a handle the caller owns and gives up.
        unsafe { free_box(prepared) }
    })
}

/// The caller's reply as the engine takes it; `status`, `headers` and `body`
/// are read only for `CARDBRIDGE_REPLY_ANSWERED`.
///
/// # Safety
/// `headers` is valid for `headers_len` views and `body` for `body_len`
/// bytes (either may be NULL when its length is 0).
unsafe fn reply_arg(
    reply: u32,
    status: u16,
    headers: *const cardbridge_header,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
) -> crate::Result<Reply> {
    Ok(match reply {
        CARDBRIDGE_REPLY_ANSWERED => Reply::Answered(HttpResponse {
            status,
            // SAFETY: as this function's contract.
            headers: unsafe { headers_arg(headers, headers_len, "headers") }?,
            // SAFETY: as this function's contract.
            body: unsafe { bytes_arg(body, body_len, "body") }?.to_vec(),
        }),
        CARDBRIDGE_REPLY_NOT_SENT => Reply::NotSent,
        CARDBRIDGE_REPLY_NO_ANSWER => Reply::NoAnswer,
        CARDBRIDGE_REPLY_TIMED_OUT => Reply::TimedOut,
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "reply: must be CARDBRIDGE_REPLY_ANSWERED, _NOT_SENT, _NO_ANSWER or _TIMED_OUT",
            )
            .with_field("reply"));
        }
    })
}

/// Writes a step: the final answer into `answer_out` (and NULL into
/// `prepared_out`), or the next request into `prepared_out` (and `{NULL, 0}`
/// into `answer_out`).
fn write_step<T>(
    step: Progress<T>,
    answer: impl FnOnce(T) -> crate::Result<Vec<u8>>,
    answer_out: OutParam<'_, cardbridge_bytes>,
    prepared_out: OutParam<'_, *mut cardbridge_prepared>,
) -> crate::Result<()> {
    match step {
        Progress::Done(t) => {
            answer_out.write_bytes(answer(t)?);
            prepared_out.write(std::ptr::null_mut());
        }
        Progress::Send(p) => {
            answer_out.write(cardbridge_bytes {
                data: std::ptr::null_mut(),
                len: 0,
            });
            prepared_out.write_box(p);
        }
    }
    Ok(())
}

/// Bring your own transport, step 1 of `issueCard`: validates the request,
/// records it in the durable outbox (the same requestId always means the same
/// request, as for `cardbridge_alipayplus_issue_card`) and returns the signed
/// request to send with the caller's own HTTP stack. Never touches the network.
///
/// `request_json` (UTF-8, `request_json_len` bytes, only read during the
/// call) as for `cardbridge_alipayplus_issue_card`.
///
/// On success exactly one output is set, the other cleared:
/// * `*prepared_out` (and `*response_out` = `{NULL, 0}`): send it, then call
///   `cardbridge_alipayplus_issue_card_complete`. Ownership: the caller owns
///   `*prepared_out` and must release it with `cardbridge_prepared_free` or
///   pass it to `cardbridge_alipayplus_issue_card_complete`.
/// * `*response_out` (and `*prepared_out` = NULL): the requestId is already
///   final; its stored verified answer, as `cardbridge_alipayplus_issue_card`
///   returns it. Ownership: the caller owns `*response_out` and must release
///   it with `cardbridge_bytes_free`.
///
/// Errors as for `cardbridge_alipayplus_issue_card`; a requestId another
/// caller is delivering right now is `CARDBRIDGE_RESULT_REMOTE_UNKNOWN` at
/// once. On failure neither output is written; `error_out` as for
/// `cardbridge_alipayplus_new`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_issue_card_prepare(
    alipayplus: *const cardbridge_alipayplus,
    request_json: *const c_char,
    request_json_len: usize,
    response_out: *mut cardbridge_bytes,
    prepared_out: *mut *mut cardbridge_prepared,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let alipayplus = try_ref!(alipayplus);
        let response_out = try_out!(response_out);
        let prepared_out = try_out!(prepared_out);
        let request_json = try_str!(request_json, request_json_len);
        let request: IssueCardRequest = model::parse(request_json.as_bytes(), Direction::Outbound)?;
        let step = alipayplus.prepare_issue_card(&request)?;
        write_step(step, |card| Ok(card.response_body), response_out, prepared_out)
    })
}

/// Bring your own transport, step 2 of `issueCard`: verifies and judges the
/// caller's reply to `prepared` exactly as `cardbridge_alipayplus_issue_card`
/// judges its own transport's answers, records the attempt, and returns the
/// final answer or the next request (a retry).
///
/// `prepared` is consumed on every path, success or error. `reply` is one of
/// `CARDBRIDGE_REPLY_ANSWERED` (then `status`, `headers` — an array of
/// `headers_len` views, NULL allowed when 0 — and the raw `body`, `body_len`
/// bytes, NULL allowed when 0, all only read during the call),
/// `CARDBRIDGE_REPLY_NOT_SENT`, `CARDBRIDGE_REPLY_NO_ANSWER` or
/// `CARDBRIDGE_REPLY_TIMED_OUT` (then `status`, `headers` and `body` are ignored).
///
/// On success exactly one output is set, the other cleared, as for
/// `cardbridge_alipayplus_issue_card_prepare`: `*response_out` holds the
/// verified `S` answer, byte for byte (the very bytes
/// `cardbridge_alipayplus_issue_card` returns for it), or `*prepared_out` the
/// next request to send after `cardbridge_prepared_wait_ms`.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_PARAMETER`
/// (unknown `reply`, or `prepared` was not made by
/// `cardbridge_alipayplus_issue_card_prepare`), `CARDBRIDGE_RESULT_INVALID_UTF8`
/// (a header), `CARDBRIDGE_RESULT_REMOTE_FAILED` (final `F`),
/// `CARDBRIDGE_RESULT_REMOTE_UNKNOWN` (the retry budget is spent, or the
/// lease was lost: the entry stays pending; call again later with the same
/// request). On failure neither output is written; `error_out` as for
/// `cardbridge_alipayplus_new`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_issue_card_complete(
    alipayplus: *const cardbridge_alipayplus,
    prepared: *mut cardbridge_prepared,
    reply: u32,
    status: u16,
    headers: *const cardbridge_header,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    response_out: *mut cardbridge_bytes,
    prepared_out: *mut *mut cardbridge_prepared,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let prepared = try_box!(prepared);
        let alipayplus = try_ref!(alipayplus);
        let response_out = try_out!(response_out);
        let prepared_out = try_out!(prepared_out);
        // SAFETY: the export's contract says `headers` and `body` are valid for their lengths.
        let answer = unsafe { reply_arg(reply, status, headers, headers_len, body, body_len) }?;
        let step = alipayplus.complete_issue_card(*prepared, answer)?;
        write_step(step, |card| Ok(card.response_body), response_out, prepared_out)
    })
}

/// Bring your own transport, step 1 of WeChat Pay `confirm`: validates the
/// input, encrypts its sensitive fields, records it in the durable outbox
/// (the same (card_id, user_card_code) is confirmed once, as for
/// `cardbridge_wechatpay_confirm`) and returns the signed request to send
/// with the caller's own HTTP stack — the confirm, or first a read-back `GET`
/// of the card when the entry existed before. In certificate mode a due
/// certificate refresh still uses the library's own transport.
///
/// `input_json` (UTF-8, `input_json_len` bytes, only read during the call)
/// as for `cardbridge_wechatpay_confirm`.
///
/// On success exactly one output is set, the other cleared: `*prepared_out`
/// (and `*answer_out` = `{NULL, 0}`; Ownership: the caller owns
/// `*prepared_out` and must release it with `cardbridge_prepared_free` or pass
/// it to `cardbridge_wechatpay_confirm_complete`), or `*answer_out` (and
/// `*prepared_out` = NULL): the confirm is already final; the answer JSON as
/// `cardbridge_wechatpay_confirm` returns it. Ownership: the caller owns
/// `*answer_out` and must release it with `cardbridge_bytes_free`.
///
/// Errors as for `cardbridge_wechatpay_confirm`; a confirm another caller is
/// delivering right now is `CARDBRIDGE_RESULT_REMOTE_UNKNOWN` at once. On
/// failure neither output is written.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_confirm_prepare(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    answer_out: *mut cardbridge_bytes,
    prepared_out: *mut *mut cardbridge_prepared,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let wechatpay = try_ref!(wechatpay);
        let answer_out = try_out!(answer_out);
        let prepared_out = try_out!(prepared_out);
        let input_json = try_str!(input_json, input_json_len);
        let step = wechatpay.prepare_confirm(input_json.as_bytes())?;
        write_step(step, answer_json, answer_out, prepared_out)
    })
}

/// Bring your own transport, step 2 of WeChat Pay `confirm`: verifies and
/// judges the caller's reply to `prepared` (the confirm or its read-back)
/// exactly as `cardbridge_wechatpay_confirm` judges its own transport's
/// answers, records the attempt, and returns the final answer or the next
/// request: after an outcome that may hide an applied confirm (5xx, an answer
/// that does not verify, no answer) that is a read-back of the card
/// (`CARDBRIDGE_PURPOSE_READ_BACK`), never a blind re-send.
///
/// `prepared` is consumed on every path, success or error. `reply`,
/// `status`, `headers`, `body` as for
/// `cardbridge_alipayplus_issue_card_complete`. Outputs as for
/// `cardbridge_wechatpay_confirm_prepare` (`*answer_out`: the answer JSON
/// `cardbridge_wechatpay_confirm` returns for the same answer).
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_PARAMETER`
/// (unknown `reply`, or `prepared` was not made by
/// `cardbridge_wechatpay_confirm_prepare`), `CARDBRIDGE_RESULT_INVALID_UTF8`,
/// `CARDBRIDGE_RESULT_REMOTE_FAILED` (final 4xx), `CARDBRIDGE_RESULT_REMOTE_UNKNOWN`
/// (budget spent or lease lost: the entry stays pending). On failure neither
/// output is written.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_confirm_complete(
    wechatpay: *const cardbridge_wechatpay,
    prepared: *mut cardbridge_prepared,
    reply: u32,
    status: u16,
    headers: *const cardbridge_header,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    answer_out: *mut cardbridge_bytes,
    prepared_out: *mut *mut cardbridge_prepared,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let prepared = try_box!(prepared);
        let wechatpay = try_ref!(wechatpay);
        let answer_out = try_out!(answer_out);
        let prepared_out = try_out!(prepared_out);
        // SAFETY: the export's contract says `headers` and `body` are valid for their lengths.
        let answer = unsafe { reply_arg(reply, status, headers, headers_len, body, body_len) }?;
        let step = wechatpay.complete_confirm(*prepared, answer)?;
        write_step(step, answer_json, answer_out, prepared_out)
    })
}
