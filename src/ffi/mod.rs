//! The C ABI: every `extern "C"` export of the library, and the only module
//! allowed to use `unsafe`. Rules: `/work/shared/spec/ffi-conventions.md`
//! (rustls-ffi style). cbindgen turns this module into `include/cardbridge.h`.
//!
//! # Building blocks
//!
//! | File | Provides |
//! |---|---|
//! | `boundary.rs` | `ffi_boundary!` (panic boundary), `ErrorOrDefault` (what a failed call returns) |
//! | `handle.rs` | `Castable` + `OwnershipBox`/`OwnershipArc`, `OutParam`, `free_box`/`free_arc`, the `try_*!` argument macros |
//! | `error.rs` | [`cardbridge_result`](error::cardbridge_result), [`cardbridge_error`](error::cardbridge_error) and its accessors |
//! | `bytes.rs` | [`cardbridge_bytes`](bytes::cardbridge_bytes), [`cardbridge_header`](bytes::cardbridge_header), [`cardbridge_http_response`](bytes::cardbridge_http_response), `write_text_to_buffer` |
//! | `version.rs` | `CARDBRIDGE_VERSION_*`, `cardbridge_version()` |
//! | `keys.rs` | RSA key handles: the reference example of the patterns below |
//! | `store.rs` | [`cardbridge_store`](store::cardbridge_store): SQLite or in-memory store, shared by integrations |
//! | `alipayplus.rs` | [`cardbridge_alipayplus`](alipayplus::cardbridge_alipayplus) (issueCard, resume, build from a registration) and [`cardbridge_alipayplus_call`](alipayplus::cardbridge_alipayplus_call) (inbound `begin` → host decides → `finish`) |
//! | `wechatpay.rs` | [`cardbridge_wechatpay`](wechatpay::cardbridge_wechatpay) (confirm via the outbox, get/update user card, points sync, certificate refresh, resume) and [`cardbridge_wechatpay_event`](wechatpay::cardbridge_wechatpay_event) (callback `begin` → host handles → `finish`) |
//! | `brand.rs` | the rest of the WeChat Pay §4 family on [`cardbridge_wechatpay`](wechatpay::cardbridge_wechatpay): one export per operation (templates, user cards, feeds, exchange confirm, activities) and `cardbridge_wechatpay_validate` |
//! | `call.rs` | per-call options: [`cardbridge_call_options`](call::cardbridge_call_options) (deadline, [`cardbridge_cancel_token`](call::cardbridge_cancel_token)) for issueCard, confirm and update |
//! | `log.rs` | [`cardbridge_set_log_callback`](log::cardbridge_set_log_callback): the process-wide log hook (structured, redacted events) |
//! | `metrics.rs` | [`cardbridge_alipayplus_metrics`](metrics::cardbridge_alipayplus_metrics), [`cardbridge_wechatpay_metrics`](metrics::cardbridge_wechatpay_metrics): counters as JSON |
//!
//! # Adding exports (e.g. `wechatpay.rs`)
//!
//! 1. Create `src/ffi/<family>.rs`, declare it below as `pub mod <family>;`
//!    (after the `#[macro_use]` modules, so the macros are in scope). Write
//!    every signature out literally (cbindgen does not expand macros):
//!    `#[unsafe(no_mangle)] pub extern "C" fn cardbridge_<type>_<verb>(...)`.
//!    Parameters are raw pointers, `usize` lengths, fixed-size integers,
//!    `bool` and `#[repr(C)]` structs; never `&T`, `&mut T`, `Box<T>` or a
//!    Rust enum received by value (take `u32` and convert).
//! 2. Opaque handle: a documented `pub struct cardbridge_x { _private: [u8; 0] }`
//!    plus `impl Castable for cardbridge_x { type Ownership = OwnershipArc; type RustType = Core; }`.
//!    Arc (`const cardbridge_x *` in C) for immutable shareable clients/configs;
//!    its `RustType` must be `Send + Sync` (enforced by `to_arc_ptr`). Box
//!    (`cardbridge_x *`) for builders and per-request objects. Pair every
//!    constructor with `cardbridge_x_free(ptr)` whose body is
//!    `ffi_boundary!({ unsafe { free_arc(ptr) } })` (or `free_box`).
//! 3. Fallible export: returns `cardbridge_result`, takes a trailing
//!    `error_out: *mut *mut cardbridge_error`, and its body is
//!    `ffi_boundary!(error_out, { ...; Ok(()) })`. The body has type
//!    `crate::Result<()>`, so core errors propagate with `?` and land in
//!    `*error_out` with their code, message, field path, limit and remote detail:
//!
//!    ```ignore
//!    #[unsafe(no_mangle)]
//!    pub extern "C" fn cardbridge_thing_do(
//!        thing: *const cardbridge_thing,              // try_ref!  -> &Core
//!        json: *const c_char, json_len: usize,        // try_str!  -> &str
//!        body: *const u8, body_len: usize,            // try_bytes! -> &[u8]
//!        headers: *const cardbridge_header, headers_len: usize, // try_headers! -> Vec<(String, String)>
//!        now_unix_seconds: i64,                       // time is always an input
//!        result_out: *mut cardbridge_bytes,           // try_out!  -> OutParam, .write_bytes(vec)
//!        response_out: *mut *mut cardbridge_http_response, // try_out!, .write(cardbridge_http_response::into_raw(r))
//!        error_out: *mut *mut cardbridge_error,
//!    ) -> cardbridge_result {
//!        ffi_boundary!(error_out, {
//!            let thing = try_ref!(thing);
//!            let result_out = try_out!(result_out);   // check every out-pointer first
//!            let json = try_str!(json, json_len);
//!            let value = thing.do_it(json, now_unix_seconds)?; // core Result
//!            result_out.write_bytes(value.into_bytes()); // write outputs last, on success only
//!            Ok(())
//!        })
//!    }
//!    ```
//!
//!    Other helpers: `try_mut!(p)` (`&mut` of a Box handle), `try_box!(p)`
//!    (takes a Box handle: the export consumes it on *every* path and says so),
//!    `try_clone_arc!(p)` (a new `Arc` to keep beyond the call),
//!    `try_take!(slot, "name")` (`ALREADY_USED` after a consuming call),
//!    `OutParam::write_arc(core)` / `write_box(core)` (new handle into
//!    `*out`), `try_or_return!(result)`. Argument macros take the parameter
//!    *identifier*, which becomes the field path of a `NULL_PARAMETER` error.
//! 4. Infallible export (getter, `_free`): `ffi_boundary!({ ... })` with the
//!    export's own return type; NULL arguments and panics yield the
//!    `ErrorOrDefault` value (`NULL`, `0`, `false`, nothing, or the code for
//!    `cardbridge_result` getters). Add an `ErrorOrDefault` impl for a new
//!    return type if needed.
//! 5. Small text out through a caller buffer: `(char *buf, size_t len, size_t *out_n)`
//!    and `write_text_to_buffer` (`INSUFFICIENT_SIZE` + required size). Data
//!    owned by a handle may be returned as a borrowed view instead, with the
//!    lifetime stated ("valid until `x` is freed").
//! 6. Doc comment on every export (it is copied into the header): purpose,
//!    each parameter's ownership with the fixed phrases "Ownership: the caller
//!    owns `*out` and must release it with `cardbridge_x_free`." /
//!    "Borrowed: valid until …", which outputs are written on success, the
//!    possible result codes. Then run `CARDBRIDGE_UPDATE_HEADER=1 cargo build`
//!    and commit `include/cardbridge.h` (`tests/header.rs` checks it), and add
//!    tests calling the export through raw pointers (see `tests/ffi_infra.rs`).
//!
//! New error kinds are added to `crate::error::ErrorKind` first; the
//! exhaustive `From<ErrorKind> for cardbridge_result` then fails to compile
//! until the C enum gets the same number.

#![deny(missing_docs)]
#![allow(non_camel_case_types, reason = "C type names follow the cardbridge_* convention")]
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "exports are safe-to-call C functions taking raw pointers; their validity is the documented C \
              contract, checked for NULL by the try_*! macros (rustls-ffi style)"
)]

#[macro_use]
mod boundary;
#[macro_use]
mod handle;

pub mod alipayplus;
pub mod brand;
pub mod bytes;
pub mod call;
pub mod error;
pub mod keys;
pub mod log;
pub mod metrics;
pub mod store;
pub mod transport;
pub mod version;
pub mod wechatpay;

/// Panics inside the library on purpose, to test that the panic boundary
/// turns it into `CARDBRIDGE_RESULT_PANIC` with the panic message in
/// `*error_out`. Only in builds with the `ffi-test` feature.
///
/// Ownership: on return `*error_out` (if `error_out` is not NULL) holds an
/// error the caller must release with `cardbridge_error_free`.
#[cfg(feature = "ffi-test")]
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_test_panic(error_out: *mut *mut error::cardbridge_error) -> error::cardbridge_result {
    ffi_boundary!(error_out, {
        panic!("cardbridge_test_panic was called");
    })
}

/// In `ffi-test` builds, every integration handle reads a settable clock
/// (the system clock until `cardbridge_test_*_set_clock` pins or shifts it);
/// other builds keep the configured clock.
fn handle_clock(configured: crate::clock::Clock) -> crate::clock::Clock {
    if cfg!(feature = "ffi-test") {
        crate::clock::Clock::settable()
    } else {
        configured
    }
}

/// `mode` and `value_ms` of a `set_clock` export as a setting, or
/// `INVALID_PARAMETER` naming `mode`.
#[cfg(feature = "ffi-test")]
fn clock_setting(mode: u32, value_ms: i64) -> crate::Result<crate::clock::ClockSetting> {
    use crate::clock::ClockSetting;
    match mode {
        0 => Ok(ClockSetting::System),
        1 => Ok(ClockSetting::Fixed(value_ms)),
        2 => Ok(ClockSetting::Offset(value_ms)),
        _ => Err(crate::Error::new(
            crate::ErrorKind::InvalidParameter,
            format!("mode: must be 0 (system), 1 (fixed) or 2 (offset), got {mode}"),
        )
        .with_field("mode")),
    }
}

#[cfg(feature = "ffi-test")]
fn set_clock(clock: &crate::clock::Clock, mode: u32, value_ms: i64) -> crate::Result<()> {
    if clock.set(clock_setting(mode, value_ms)?) {
        Ok(())
    } else {
        Err(crate::Error::new(
            crate::ErrorKind::InvalidParameter,
            "the handle's clock cannot be set",
        ))
    }
}

/// Sets the clock of an Alipay+ integration, which every outbound timestamp
/// (`Request-Time`), lease and attempt time reads: `mode` 0 the system clock
/// (`value_ms` ignored), 1 fixed at `value_ms` (Unix milliseconds), 2 the
/// system clock shifted by `value_ms`. Takes effect for calls that start
/// afterwards. Only in builds with the `ffi-test` feature.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_PARAMETER`
/// (unknown `mode`); `error_out` as for every fallible function.
#[cfg(feature = "ffi-test")]
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_test_alipayplus_set_clock(
    alipayplus: *const alipayplus::cardbridge_alipayplus,
    mode: u32,
    value_ms: i64,
    error_out: *mut *mut error::cardbridge_error,
) -> error::cardbridge_result {
    ffi_boundary!(error_out, {
        let alipayplus = try_ref!(alipayplus);
        set_clock(alipayplus.clock(), mode, value_ms)
    })
}

/// Sets the clock of a WeChat Pay integration, which every outbound
/// `timestamp` (in `Authorization`), lease and attempt time reads; `mode` and
/// `value_ms` as for `cardbridge_test_alipayplus_set_clock`. Only in builds
/// with the `ffi-test` feature.
///
/// Errors: `CARDBRIDGE_RESULT_NULL_PARAMETER`, `CARDBRIDGE_RESULT_INVALID_PARAMETER`
/// (unknown `mode`); `error_out` as for every fallible function.
#[cfg(feature = "ffi-test")]
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_test_wechatpay_set_clock(
    wechatpay: *const wechatpay::cardbridge_wechatpay,
    mode: u32,
    value_ms: i64,
    error_out: *mut *mut error::cardbridge_error,
) -> error::cardbridge_result {
    ffi_boundary!(error_out, {
        let wechatpay = try_ref!(wechatpay);
        set_clock(wechatpay.clock(), mode, value_ms)
    })
}
