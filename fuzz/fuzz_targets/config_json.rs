//! Configuration JSON of both platforms: errors, never panics, and never the
//! offending value in the message.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for message in [
        cardbridge::alipayplus::Config::from_json(data)
            .err()
            .map(|e| e.to_string()),
        cardbridge::wechatpay::Config::from_json(data)
            .err()
            .map(|e| e.to_string()),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!message.contains("-----BEGIN"), "a key echoed in a config error");
    }
});
