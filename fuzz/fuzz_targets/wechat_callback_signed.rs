//! WeChat Pay callback handler with a validly signed envelope: the input is
//! the body, so the fuzzer reaches envelope parsing and decryption.
#![no_main]
use cardbridge_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let wp = wechat();
    check_wechat(&wp, &signed_wechat_callback(data));
});
