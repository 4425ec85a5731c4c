//! WeChat Pay callback handler, raw: any method, target, headers and body.
#![no_main]
use cardbridge_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let wp = wechat();
    check_wechat(&wp, &framed_request(data));
});
