//! Counters through the C ABI: one JSON snapshot per integration handle.

use crate::ffi::alipayplus::cardbridge_alipayplus;
use crate::ffi::bytes::cardbridge_bytes;
use crate::ffi::error::{cardbridge_error, cardbridge_result};
use crate::ffi::wechatpay::cardbridge_wechatpay;

fn write_json(out: crate::ffi::handle::OutParam<'_, cardbridge_bytes>, v: &serde_json::Value) -> crate::Result<()> {
    out.write_bytes(serde_json::to_vec(v).map_err(|e| crate::Error::internal("metrics", e))?);
    Ok(())
}

/// The counters of this Alipay+ integration since it was built, as one JSON
/// object: `inbound` (per API, per result `S`/`F`/`U`/`replayed`),
/// `outbound_attempts` (per kind, per outcome), `retries`,
/// `duplicates_replayed`, `inbound_reclaimed`, `lease_takeovers`,
/// `outcomes_unknown`, `certificate_refreshes`, `store_errors` and
/// `pending_entries` (issueCard entries pending in its store; `null` when the
/// store could not be read). README "Metrics" documents every name.
///
/// On success `*json_out` receives the object; release it with
/// `cardbridge_bytes_free`. Errors: `NULL_PARAMETER`. On failure `*json_out`
/// is unchanged; `error_out` may be NULL, otherwise it receives an error the
/// caller must release with `cardbridge_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_alipayplus_metrics(
    client: *const cardbridge_alipayplus,
    json_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let client = try_ref!(client);
        let json_out = try_out!(json_out);
        write_json(json_out, &client.metrics())
    })
}

/// The counters of this WeChat Pay integration, in the same shape as
/// `cardbridge_alipayplus_metrics` (`inbound` has the API `callback` with
/// results `accepted`/`redeliver`/`refused`/`replayed`; `pending_entries`
/// counts pending confirm entries).
///
/// On success `*json_out` receives the object; release it with
/// `cardbridge_bytes_free`. Errors: `NULL_PARAMETER`. On failure `*json_out`
/// is unchanged; `error_out` as for `cardbridge_alipayplus_metrics`.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_wechatpay_metrics(
    client: *const cardbridge_wechatpay,
    json_out: *mut cardbridge_bytes,
    error_out: *mut *mut cardbridge_error,
) -> cardbridge_result {
    ffi_boundary!(error_out, {
        let client = try_ref!(client);
        let json_out = try_out!(json_out);
        write_json(json_out, &client.metrics())
    })
}
