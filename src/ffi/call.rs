//! Per-call options through the C ABI: a deadline overriding the configured
//! retry budget and a cancel token, for `issueCard`, `confirm` and
//! `update_user_card`.

use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::alipayplus::model::{self, Direction, IssueCardRequest};
use crate::ffi::alipayplus::cardbridge_alipayplus;
use crate::ffi::bytes::cardbridge_bytes;
use crate::ffi::error::{cardbridge_error, cardbridge_result};
use crate::ffi::handle::{Castable, OwnershipArc, clone_arc_from_ptr, free_arc};
use crate::ffi::wechatpay::cardbridge_wechatpay;
use crate::outbox::CallOptions;
use crate::wechatpay::WechatPay;

/// A cancel token: set it (`cardbridge_cancel_token_cancel`, from any
/// thread) and the calls given it start no further attempt; they return
/// `CARDBRIDGE_RESULT_REMOTE_UNKNOWN` and leave their outbox entry pending.
pub struct cardbridge_cancel_token {
    _private: [u8; 0],
}

impl Castable for cardbridge_cancel_token {
    type Ownership = OwnershipArc;
    type RustType = AtomicBool;
}

/// Options for one call. Zero-initialise it (`{0}`) for the defaults.
#[repr(C)]
pub struct cardbridge_call_options {
    /// No attempt starts later than this many milliseconds after the call
    /// began (overrides the configured retry deadline); 0: the configured one.
    pub deadline_ms: u64,
    /// Borrowed, may be NULL: checked between attempts and during backoff
    /// waits; must stay valid for the duration of the call.
    pub cancel: *const cardbridge_cancel_token,
}

/// `CallOptions` from a possibly NULL options pointer.
fn options(ptr: *const cardbridge_call_options) -> CallOptions {
    // SAFETY: the export's contract: NULL or a valid options struct for the call.
    let Some(o) = (unsafe { ptr.as_ref() }) else {
        return CallOptions::default();
    };
    CallOptions {
        deadline: (o.deadline_ms > 0).then(|| Duration::from_millis(o.deadline_ms)),
        // SAFETY: NULL or a live token the caller keeps valid during the call.
        cancel: unsafe { clone_arc_from_ptr(o.cancel) },
    }
}

/// A new, unset cancel token.
///
/// Ownership: the caller owns `*token_out` and must release it with
/// `cardbridge_cancel_token_free` (after the calls using it returned).
/// Errors: `NULL_PARAMETER`; `error_out` may be NULL, otherwise on failure it
/// receives an error the caller must release with `cardbridge_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_cancel_token_new(
    token_out: *mut *const cardbridge_cancel_token,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let token_out = try_out!(token_out);
        token_out.write_arc(AtomicBool::new(false));
        Ok(())
    })
}

/// Sets the token: calls using it start no further attempt. Thread-safe;
/// setting it twice is harmless; NULL is ignored.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_cancel_token_cancel(token: *const cardbridge_cancel_token) {
    ffi_boundary!({
        // SAFETY: NULL or a live token.
        if let Some(t) = unsafe { crate::ffi::handle::ref_from_ptr(token) } {
            t.store(true, Ordering::SeqCst);
        }
    })
}

/// Whether the token was set (false for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_cancel_token_is_cancelled(token: *const cardbridge_cancel_token) -> bool {
    ffi_boundary!({
        // SAFETY: NULL or a live token.
        unsafe { crate::ffi::handle::ref_from_ptr(token) }.is_some_and(|t| t.load(Ordering::SeqCst))
    })
}

/// Releases a cancel token; NULL is a no-op. Calls still running keep their
/// own reference.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_cancel_token_free(token: *const cardbridge_cancel_token) {
    ffi_boundary!({
        // SAFETY: NULL or a token the caller owns and gives up.
        unsafe { free_arc(token) }
    })
}

/// `cardbridge_alipayplus_issue_card` with per-call `options` (NULL: the
/// defaults): `deadline_ms` bounds this call's retries, `cancel` stops them
/// between attempts. When either ends the call before a definite answer the
/// result is `CARDBRIDGE_RESULT_REMOTE_UNKNOWN` naming the pending outbox
/// entry (`cardbridge_error_outbox_id`); call again with the same request, or
/// resume it, to get its outcome. Outputs, ownership and other errors as for
/// `cardbridge_alipayplus_issue_card`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_issue_card_with_options(
    alipayplus: *const cardbridge_alipayplus,
    request_json: *const c_char,
    request_json_len: usize,
    options: *const cardbridge_call_options,
    response_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let alipayplus = try_ref!(alipayplus);
        let response_out = try_out!(response_out);
        let request_json = try_str!(request_json, request_json_len);
        let request: IssueCardRequest = model::parse(request_json.as_bytes(), Direction::Outbound)?;
        let card = alipayplus.issue_card_with(&request, &self::options(options))?;
        response_out.write_bytes(card.response_body);
        Ok(())
    })
}

type WechatCall = fn(&WechatPay, &[u8], &CallOptions) -> crate::Result<crate::wechatpay::ApiAnswer>;

fn wechat_call(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    options: *const cardbridge_call_options,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
    call: WechatCall,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let wechatpay = try_ref!(wechatpay);
        let answer_out = try_out!(answer_out);
        let input = try_str!(input_json, input_json_len);
        let answer = call(wechatpay, input.as_bytes(), &self::options(options))?;
        answer_out.write_bytes(crate::ffi::wechatpay::answer_json(answer)?);
        Ok(())
    })
}

/// `cardbridge_wechatpay_confirm` with per-call `options` (NULL: the
/// defaults), as for `cardbridge_alipayplus_issue_card_with_options`; a
/// cancelled or timed-out confirm stays pending and is reconciled by a
/// read-back on the next call or resume. Outputs, ownership and errors as for
/// `cardbridge_wechatpay_confirm`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_confirm_with_options(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    options: *const cardbridge_call_options,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    wechat_call(
        wechatpay,
        input_json,
        input_json_len,
        options,
        answer_out,
        error_out,
        WechatPay::confirm_with,
    )
}

/// `cardbridge_wechatpay_update_user_card` with per-call `options` (NULL:
/// the defaults). Outputs, ownership and errors as for
/// `cardbridge_wechatpay_update_user_card`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_update_user_card_with_options(
    wechatpay: *const cardbridge_wechatpay,
    input_json: *const c_char,
    input_json_len: usize,
    options: *const cardbridge_call_options,
    answer_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    wechat_call(
        wechatpay,
        input_json,
        input_json_len,
        options,
        answer_out,
        error_out,
        WechatPay::update_user_card_with,
    )
}
