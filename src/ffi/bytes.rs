//! Byte and text exchange (`ffi-conventions.md` §3.4, §5.2): owned output
//! buffers, borrowed header views, caller-buffer text copies, and the owned
//! HTTP response and request handles.

use crate::error::{Error, ErrorKind};
use crate::ffi::error::{cardbridge_error, cardbridge_result};
use crate::ffi::handle::{Castable, OutParam, OwnershipBox, free_box, to_box_ptr};
use crate::http::{Header, HttpResponse};
use std::ffi::c_char;

/// A byte buffer allocated by the library.
///
/// Filled by functions that return variable-size data, only when they
/// succeed. Textual outputs (JSON, PEM, header values) are UTF-8 and followed
/// by one NUL byte that `len` does not count, so `data` can be used as a C
/// string; binary outputs make no such promise.
///
/// Ownership: the caller owns the buffer and must release it with
/// `cardbridge_bytes_free`, never with `free()`. A zero-initialised struct
/// (`{NULL, 0}`) is a valid empty value. A function writing into a
/// `cardbridge_bytes` overwrites it without freeing what was there.
#[repr(C)]
pub struct cardbridge_bytes {
    /// Start of the data; NULL only in a zeroed or freed struct.
    pub data: *mut u8,
    /// Number of bytes at `data`, not counting the trailing NUL.
    pub len: usize,
}

impl cardbridge_bytes {
    /// Moves `data` into a library-owned buffer with one trailing NUL.
    fn from_vec(mut data: Vec<u8>) -> Self {
        let len = data.len();
        // Every buffer gets the NUL, so `_free` always knows the allocation is len + 1.
        data.push(0);
        let data = Box::into_raw(data.into_boxed_slice()).cast::<u8>();
        cardbridge_bytes { data, len }
    }
}

impl OutParam<'_, cardbridge_bytes> {
    /// Stores `data` as a new library-owned buffer (call only on success).
    pub(crate) fn write_bytes(self, data: Vec<u8>) {
        self.write(cardbridge_bytes::from_vec(data));
    }
}

/// Releases the buffer held by `bytes` (wiping it first, since it may hold
/// personal data) and sets `data` to NULL and `len` to 0.
///
/// A NULL `bytes`, a zeroed struct or one already freed is a no-op, so calling
/// it twice is safe. `bytes` itself belongs to the caller and is not freed.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_bytes_free(bytes: *mut cardbridge_bytes) {
    ffi_boundary!({
        // SAFETY: `bytes` is NULL or points to a cardbridge_bytes the caller owns.
        let Some(bytes) = (unsafe { bytes.as_mut() }) else {
            return;
        };
        if !bytes.data.is_null() {
            // A corrupted len would be UB anyway; avoid the overflow and leak instead.
            if let Some(alloc_len) = bytes.len.checked_add(1) {
                let slice = std::ptr::slice_from_raw_parts_mut(bytes.data, alloc_len);
                // SAFETY: `data` came from `from_vec`, which allocated exactly len + 1 bytes.
                let mut owned = unsafe { Box::from_raw(slice) };
                for b in owned.iter_mut() {
                    // SAFETY: `b` is a valid byte; volatile so the wipe is not optimised away.
                    unsafe { std::ptr::write_volatile(b, 0) };
                }
            }
        }
        bytes.data = std::ptr::null_mut();
        bytes.len = 0;
    })
}

/// Copies `text` plus a NUL into the caller's buffer (§5.2 "small text").
///
/// OK: `*out_n` = text length. Too small: `INSUFFICIENT_SIZE`, `*out_n` =
/// size needed including the NUL, and (when `len > 0`) `buf` holds as much
/// of the text as fits, cut at a UTF-8 character boundary, NUL-terminated —
/// so a fixed `char text[256]` always gets a readable message. `buf` NULL
/// with `len > 0`: `NULL_PARAMETER`.
///
/// # Safety
/// `buf` is NULL or valid for writing `len` bytes.
pub(crate) unsafe fn write_text_to_buffer(
    text: &str,
    buf: *mut c_char,
    len: usize,
    out_n: OutParam<'_, usize>,
) -> cardbridge_result {
    if len > 0 && buf.is_null() {
        return cardbridge_result::NullParameter;
    }
    let needed = text.len() + 1;
    if len < needed {
        if len > 0 {
            let mut cut = len - 1;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            // SAFETY: `buf` is valid for `len > cut` bytes and cannot overlap `text`.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), cut);
                buf.add(cut).write(0);
            }
        }
        out_n.write(needed);
        return cardbridge_result::InsufficientSize;
    }
    // SAFETY: `buf` is valid for `len >= text.len() + 1` bytes and cannot
    // overlap `text`, which the library owns.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        buf.add(text.len()).write(0);
    }
    out_n.write(text.len());
    cardbridge_result::Ok
}

/// A borrowed view of one HTTP header: UTF-8 name and value, each given as
/// pointer plus length and not NUL-terminated. Names match case-insensitively.
///
/// As an input (an array of headers plus a count), the views are borrowed
/// from the caller for the duration of the call only. As an output (see
/// `cardbridge_http_response_header`), they are borrowed from the handle
/// that filled them.
#[repr(C)]
pub struct cardbridge_header {
    /// Header name bytes (NULL allowed when `name_len` is 0).
    pub name: *const c_char,
    /// Length of `name` in bytes.
    pub name_len: usize,
    /// Header value bytes (NULL allowed when `value_len` is 0).
    pub value: *const c_char,
    /// Length of `value` in bytes.
    pub value_len: usize,
}

/// An HTTP response owned by the library: status, headers in order, and the
/// exact body bytes.
///
/// Ownership: functions that return one say so; the caller releases it with
/// `cardbridge_http_response_free`. Accessors only read it, so they may run
/// concurrently on one response.
pub struct cardbridge_http_response {
    _private: [u8; 0],
}

impl Castable for cardbridge_http_response {
    type Ownership = OwnershipBox;
    type RustType = OwnedResponse;
}

/// What a `cardbridge_http_response` holds: the response and, for a call
/// refused for its signature, the diagnosis as JSON text.
pub struct OwnedResponse {
    response: HttpResponse,
    diagnosis: Option<String>,
}

impl std::ops::Deref for OwnedResponse {
    type Target = HttpResponse;
    fn deref(&self) -> &HttpResponse {
        &self.response
    }
}

impl cardbridge_http_response {
    /// Hands `response` to C. Exports store it with
    /// `OutParam::write(cardbridge_http_response::into_raw(..))`; the pointer
    /// must be released with [`cardbridge_http_response_free`].
    pub fn into_raw(response: HttpResponse) -> *mut cardbridge_http_response {
        Self::into_raw_diagnosed(response, None)
    }

    /// [`Self::into_raw`] for a refusal with its signature diagnosis
    /// (`cardbridge_http_response_diagnosis`).
    pub fn into_raw_diagnosed(
        response: HttpResponse,
        diagnosis: Option<&crate::diagnose::Diagnosis>,
    ) -> *mut cardbridge_http_response {
        to_box_ptr(OwnedResponse {
            response,
            diagnosis: diagnosis.map(|d| d.to_json().to_string()),
        })
    }
}

/// Copies the signature diagnosis of a refused platform call into `buf` as
/// JSON text (UTF-8, NUL-terminated): the response that
/// `cardbridge_alipayplus_begin` or `cardbridge_wechatpay_callback_begin`
/// returned for a call refused for its signature. Members: `check`
/// (`header_missing`, `header_malformed`, `unknown_key`, `clock_skew`,
/// `bad_timestamp`, `bad_encoding`, `mismatch`), `offset_ms`, `platform_clock_offset_ms`,
/// `verified_variant`, `fix`, `hints`, `body_len`, `body_sha256`, `summary`;
/// never the body, a signature or personal data. Empty text when the response
/// carries no diagnosis (every other response).
///
/// Borrowed: `response` is only read during the call. Buffer convention as
/// for `cardbridge_error_message` (truncated at a character boundary and
/// NUL-terminated, `*out_n` the full size on `INSUFFICIENT_SIZE`).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_http_response_diagnosis(
    response: *const cardbridge_http_response,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cardbridge_result {
    ffi_boundary!({
        let response = try_ref!(response);
        let out_n = try_out!(out_n);
        let text = response.diagnosis.as_deref().unwrap_or("");
        // SAFETY: the caller provides `buf` valid for `len` bytes.
        unsafe { write_text_to_buffer(text, buf, len, out_n) }
    })
}

/// The HTTP status code of `response` (0 when `response` is NULL).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_http_response_status(response: *const cardbridge_http_response) -> u16 {
    ffi_boundary!({ try_ref!(response).status })
}

/// The number of headers in `response` (0 when `response` is NULL).
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_http_response_header_count(response: *const cardbridge_http_response) -> usize {
    ffi_boundary!({ try_ref!(response).headers.len() })
}

/// Writes a view of header number `index` (from 0, in the order received)
/// into `*header_out`.
///
/// Borrowed: the name and value pointers are valid until `response` is freed;
/// they are not NUL-terminated. Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`,
/// `CARDBRIDGE_RESULT_INVALID_PARAMETER` when `index` is not below
/// `cardbridge_http_response_header_count`. `*header_out` is written only on
/// success; `error_out` as for every fallible function.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_http_response_header(
    response: *const cardbridge_http_response,
    index: usize,
    header_out: *mut cardbridge_header,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let response = try_ref!(response);
        let header_out = try_out!(header_out);
        header_out.write(header_view(&response.headers, index, "response")?);
        Ok(())
    })
}

/// Gives a view of the body bytes: `*body_out` (never NULL on success, even
/// for an empty body) and `*body_len_out`.
///
/// Borrowed: the bytes are valid until `response` is freed. Both outputs are
/// written only on success. Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`;
/// `error_out` as for every fallible function.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_http_response_body(
    response: *const cardbridge_http_response,
    body_out: *mut *const u8,
    body_len_out: *mut usize,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let response = try_ref!(response);
        let body_out = try_out!(body_out);
        let body_len_out = try_out!(body_len_out);
        body_out.write(response.body.as_ptr());
        body_len_out.write(response.body.len());
        Ok(())
    })
}

/// Releases a response. NULL is a no-op.
///
/// Ownership: takes `response`; it and every view obtained from it must not
/// be used afterwards.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_http_response_free(response: *mut cardbridge_http_response) {
    ffi_boundary!({
        // SAFETY: `response` is NULL or a response the caller owns and gives up.
        unsafe { free_box(response) }
    })
}

/// A borrowed view of header number `index` of `headers`, or
/// `INVALID_PARAMETER` naming `index` (`owner` says whose headers they are).
pub(crate) fn header_view(headers: &[Header], index: usize, owner: &str) -> crate::Result<cardbridge_header> {
    let (name, value) = headers.get(index).ok_or_else(|| {
        let count = headers.len();
        Error::new(
            ErrorKind::InvalidParameter,
            format!("index: {index} is out of range; the {owner} has {count} headers"),
        )
        .with_field("index")
    })?;
    Ok(cardbridge_header {
        name: name.as_ptr().cast::<c_char>(),
        name_len: name.len(),
        value: value.as_ptr().cast::<c_char>(),
        value_len: value.len(),
    })
}
