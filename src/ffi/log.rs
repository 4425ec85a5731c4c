//! The log hook through the C ABI: `cardbridge_set_log_callback`.

use std::ffi::{CString, c_char, c_void};

use crate::ffi::error::{cardbridge_error, cardbridge_result};
use crate::obs::{self, Event, Level};

/// `ERROR`: something failed that needs an operator (a store error).
pub const CARDBRIDGE_LOG_ERROR: u32 = 1;
/// `WARN`: a retry, an outcome left pending, a lease taken over, a refused inbound call.
pub const CARDBRIDGE_LOG_WARN: u32 = 2;
/// `INFO`: an inbound answer, an outbound attempt's outcome, a certificate refresh.
pub const CARDBRIDGE_LOG_INFO: u32 = 3;
/// `DEBUG`.
pub const CARDBRIDGE_LOG_DEBUG: u32 = 4;
/// `TRACE`.
pub const CARDBRIDGE_LOG_TRACE: u32 = 5;

/// One key/value field of a log event. Borrowed: valid only during the
/// callback. Both strings are UTF-8, `*_len` bytes, and NUL-terminated.
#[repr(C)]
pub struct cardbridge_log_field {
    /// Field name, e.g. `out_id`.
    pub key: *const c_char,
    /// Length of `key` in bytes.
    pub key_len: usize,
    /// Value as text (numbers in decimal, booleans `true`/`false`).
    pub value: *const c_char,
    /// Length of `value` in bytes.
    pub value_len: usize,
}

/// One log event. Borrowed: every pointer is valid only during the callback.
/// Strings are UTF-8, `*_len` bytes, and NUL-terminated.
#[repr(C)]
pub struct cardbridge_log_event {
    /// `CARDBRIDGE_LOG_ERROR` (1) … `CARDBRIDGE_LOG_TRACE` (5).
    pub level: u32,
    /// Where it comes from, e.g. `cardbridge::outbox`.
    pub target: *const c_char,
    /// Length of `target` in bytes.
    pub target_len: usize,
    /// What happened (fixed text, never data).
    pub message: *const c_char,
    /// Length of `message` in bytes.
    pub message_len: usize,
    /// The fields, `fields_len` of them.
    pub fields: *const cardbridge_log_field,
    /// Number of fields.
    pub fields_len: usize,
    /// The same fields as one JSON object, numbers and booleans typed.
    pub fields_json: *const c_char,
    /// Length of `fields_json` in bytes.
    pub fields_json_len: usize,
}

/// A log callback: `user_data` as given to `cardbridge_set_log_callback`, and
/// the event (borrowed for the duration of the call).
pub type cardbridge_log_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const cardbridge_log_event)>;

/// Makes a Rust string a C string; our texts never contain NUL, but a
/// stray one must not lose the event.
fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

fn call(callback: unsafe extern "C" fn(*mut c_void, *const cardbridge_log_event), user_data: usize, e: &Event<'_>) {
    let target = c_string(e.target);
    let message = c_string(e.message);
    let texts: Vec<(CString, CString)> = e
        .fields
        .iter()
        .map(|(k, v)| (c_string(k), c_string(&v.to_string())))
        .collect();
    let fields: Vec<cardbridge_log_field> = texts
        .iter()
        .map(|(k, v)| cardbridge_log_field {
            key: k.as_ptr(),
            key_len: k.as_bytes().len(),
            value: v.as_ptr(),
            value_len: v.as_bytes().len(),
        })
        .collect();
    let json = c_string(&e.fields_json().to_string());
    let event = cardbridge_log_event {
        level: e.level as u32,
        target: target.as_ptr(),
        target_len: target.as_bytes().len(),
        message: message.as_ptr(),
        message_len: message.as_bytes().len(),
        fields: fields.as_ptr(),
        fields_len: fields.len(),
        fields_json: json.as_ptr(),
        fields_json_len: json.as_bytes().len(),
    };
    // SAFETY: the caller promised a callable function and user_data it accepts;
    // every pointer in `event` outlives the call.
    unsafe { callback(user_data as *mut c_void, &event) }
}

/// Sets the process-wide log callback: `callback(user_data, event)` is called
/// synchronously, on the thread where it happened, for every event at
/// `min_level` or more severe (`CARDBRIDGE_LOG_INFO` delivers errors, warnings
/// and information). Events come from inbound answers, outbound attempts,
/// retries, lease takeovers, certificate refreshes and store errors; they
/// carry identifiers, labels and numbers only — never bodies, keys,
/// signatures or personal data. The library keeps no background thread.
///
/// Thread-safe and callable at any time. `callback` NULL removes the
/// callback. When this returns, the previous callback is no longer running on
/// any other thread and will not be called again, so its `user_data` may be
/// released (when called from inside the previous callback, that callback's
/// other concurrent calls are not waited for). Events caused from inside the
/// callback (it calls back into cardbridge) are dropped, never delivered
/// recursively. The callback must not unwind (no C++ exception, no longjmp)
/// out of itself.
///
/// Borrowed: `user_data` is stored and passed back unchanged; the caller keeps
/// it valid until the callback is replaced or removed.
///
/// Errors: `INVALID_PARAMETER` (field `min_level`: not 1–5; the previous
/// callback stays; `min_level` is ignored when `callback` is NULL). `error_out` may be NULL; otherwise on failure `*error_out`
/// receives an error the caller must release with `cardbridge_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_set_log_callback(
    min_level: u32,
    callback: cardbridge_log_callback,
    user_data: *mut c_void,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let Some(callback) = callback else {
            obs::set_hook(Level::Error, None);
            return Ok(());
        };
        let level = Level::from_u32(min_level).ok_or_else(|| {
            crate::Error::new(
                crate::ErrorKind::InvalidParameter,
                "min_level: must be CARDBRIDGE_LOG_ERROR (1) to CARDBRIDGE_LOG_TRACE (5)",
            )
            .with_field("min_level")
        })?;
        let user_data = user_data as usize;
        obs::set_hook(level, Some(Box::new(move |e: &Event<'_>| call(callback, user_data, e))));
        Ok(())
    })
}
