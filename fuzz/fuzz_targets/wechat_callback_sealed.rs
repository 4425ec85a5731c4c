//! WeChat Pay callback with a valid signature and a valid AES-256-GCM seal
//! around a fuzzed resource: the fuzzer reaches resource parsing and the
//! OAEP field decryption behind it.
#![no_main]
use cardbridge::crypto::aead::ApiV3Key;
use cardbridge_fuzz::*;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, resource)) = data.split_first() else {
        return;
    };
    let event_type = [
        "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE",
        "BRAND_MEMBER_CARD_SP.USER_CARD.DELETE",
        "BRAND_MEMBER_CARD_SP.SYNC_USER_POINT",
        "BRAND_MEMBER_CARD_SP.POINT_EXCHANGE_COUPON",
    ][usize::from(selector) % 4];
    let nonce = "fuzznonce123";
    let aad = "member_card";
    let ciphertext = ApiV3Key::new(API_V3)
        .unwrap()
        .encrypt(nonce.as_bytes(), aad.as_bytes(), resource)
        .unwrap();
    let body = json!({
        "id": format!("EV-{}", selector),
        "create_time": "2026-12-07T10:00:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "fuzz",
        "resource": {"original_type": aad, "algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext,
                     "associated_data": aad, "nonce": nonce},
    });
    let wp = wechat();
    check_wechat(&wp, &signed_wechat_callback(body.to_string().as_bytes()));
});
