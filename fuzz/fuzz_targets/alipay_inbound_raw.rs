//! Alipay+ inbound handler, raw: any method, target, headers and body.
#![no_main]
use cardbridge_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ap = alipay();
    check_alipay(&ap, &framed_request(data), data.first().is_some_and(|b| b & 1 == 1));
});
