//! The WeChat Pay test vectors of `wechatpay-card-member.md` §11 at the layer
//! each one belongs to: RSA signing, request signing, response and callback
//! verification, AES-GCM, `/v3/certificates` decryption and RSA-OAEP.

use cardbridge::ErrorKind;
use cardbridge::crypto::aead::{self, ApiV3Key};
use cardbridge::crypto::keys::PrivateKey;
use cardbridge::crypto::x509::Certificate;
use cardbridge::crypto::{b64_decode_strict, b64_encode, oaep, rsa, sha256_hex};
use cardbridge::wechatpay::sign::{self, RequestSigner, encode_path_segment};
use cardbridge::wechatpay::verify::{self, VerifyOptions, VerifyReason, verify};
use cardbridge::wechatpay::{KeyRing, decrypt_certificates};

const MERCHANT_KEY: &str = include_str!("fixtures/wechatpay/merchant_private.pem");
const TEST_CERT: &str = include_str!("fixtures/wechatpay/test_platform_cert.pem");
const TENPAY_CERT: &str = include_str!("fixtures/wechatpay/tenpay_platform_cert.pem");
const CALLBACK_BODY: &[u8] = include_bytes!("fixtures/wechatpay/callback_payscore_body.json");
const CERTS_RESPONSE: &[u8] = include_bytes!("fixtures/wechatpay/certificates_response.json");
const CONFIRM_REQUEST: &[u8] = include_bytes!("fixtures/wechatpay/confirm_request_body.json");
const CONFIRM_RESPONSE: &[u8] = include_bytes!("fixtures/wechatpay/confirm_response_body.json");

const JAVA_API_V3_KEY: &[u8] = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";

fn merchant_key() -> PrivateKey {
    PrivateKey::from_pem(MERCHANT_KEY).unwrap()
}

fn test_cert() -> Certificate {
    Certificate::from_pem(TEST_CERT).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn cert_ring() -> KeyRing {
    let mut ring = KeyRing::new();
    ring.add_certificate(test_cert());
    ring
}

// ---------------------------------------------------------------- §11.1

#[test]
fn s11_1_rsa_signing_known_answer() {
    const EXPECTED: &str = "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hAm6pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLli/K8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg==";
    let sig = rsa::sign_sha256(&merchant_key(), b"source").unwrap();
    assert_eq!(b64_encode(&sig), EXPECTED);
    // The §11.2 certificate carries the same key pair.
    assert_eq!(test_cert().public_key(), &merchant_key().public_key());
}

// ---------------------------------------------------------------- §11.2

const CB_SIGNATURE: &str = "tJHIiIS9eB2hAYstmAmbbD3ZE5LiIm/Ug5tuL4fC0YOFRWIHV39UFIZXC0e9Wl6lBu6sKvkqDkzpqzBsVHyXFlbYZTOQrVdG4b6LfTnK4mikv9++ixJMd3vTf2yCqvBkh98zs3Ds5zsYQakzbcwhmw4fMJs4nPLws28H0UW9FjDR//rxELLwXvV1VEA1IBLX70xptjL8hrfUjEE8kkry6yNJTHZRU8CAc7qHli2Ng1V1qb9ARbK8A3ThmFmPQvRGrapI/jS2laKKgYUmfdEdkNO6B2Cke5e8VTxY406ArAmQ90GAihDwIcb16TQMnzCMBoutnwZKNiKRACrFmtxw2Q==";
const CB_TS: i64 = 1_624_523_846;

fn callback_headers() -> Vec<(String, String)> {
    headers(&[
        ("Wechatpay-Timestamp", "1624523846"),
        ("Wechatpay-Nonce", "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz"),
        ("Wechatpay-Serial", "D7CE59D1F522D701"),
        ("Content-Type", "application/json"),
        ("Wechatpay-Signature", CB_SIGNATURE),
    ])
}

#[test]
fn s11_2_callback_signature_verifies_with_frozen_clock() {
    assert_eq!(CALLBACK_BODY.len(), 568);
    assert_eq!(
        sha256_hex(CALLBACK_BODY),
        "b6fdfc5e4afdc463950d873c4fdc3c494df05965016225c6a1e8e2e887cdc94d"
    );
    let ring = cert_ring();
    let ok = verify(
        &ring,
        &callback_headers(),
        CALLBACK_BODY,
        CB_TS,
        VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(ok.serial, "D7CE59D1F522D701");
    assert_eq!(ok.timestamp, CB_TS);
    assert_eq!(ok.nonce, "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz");

    // Header names are case-insensitive.
    let lower: Vec<_> = callback_headers()
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v))
        .collect();
    assert!(verify(&ring, &lower, CALLBACK_BODY, CB_TS, VerifyOptions::default()).is_ok());

    // The vector has no Wechatpay-Signature-Type: refused only when required.
    let strict = VerifyOptions {
        require_signature_type: true,
    };
    let f = verify(&ring, &callback_headers(), CALLBACK_BODY, CB_TS, strict).unwrap_err();
    assert_eq!(f.reason, VerifyReason::HeaderMissing);
    assert!(!f.probe);
    let mut typed = callback_headers();
    typed.push(("Wechatpay-Signature-Type".into(), "WECHATPAY2-SHA256-RSA2048".into()));
    assert!(verify(&ring, &typed, CALLBACK_BODY, CB_TS, strict).is_ok());
    let mut wrong_type = callback_headers();
    wrong_type.push((
        "Wechatpay-Signature-Type".into(),
        "WECHATPAY-BRAND-SHA256-RSA2048".into(),
    ));
    let f = verify(&ring, &wrong_type, CALLBACK_BODY, CB_TS, VerifyOptions::default()).unwrap_err();
    assert_eq!(f.reason, VerifyReason::UnsupportedSignatureType);
    assert_eq!(f.to_error().kind(), ErrorKind::SignatureInvalid);

    // Raw bytes: one changed byte, or a re-serialised body, fails.
    let mut tampered = CALLBACK_BODY.to_vec();
    tampered[10] ^= 1;
    let f = verify(&ring, &callback_headers(), &tampered, CB_TS, VerifyOptions::default()).unwrap_err();
    assert_eq!(f.reason, VerifyReason::Mismatch);
    let pretty =
        serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(CALLBACK_BODY).unwrap()).unwrap();
    assert!(verify(&ring, &callback_headers(), &pretty, CB_TS, VerifyOptions::default()).is_err());
}

#[test]
fn s11_2_missing_headers_are_clean_failures() {
    let ring = cert_ring();
    for name in [
        "Wechatpay-Timestamp",
        "Wechatpay-Nonce",
        "Wechatpay-Signature",
        "Wechatpay-Serial",
    ] {
        let without: Vec<_> = callback_headers().into_iter().filter(|(n, _)| n != name).collect();
        let f = verify(&ring, &without, CALLBACK_BODY, CB_TS, VerifyOptions::default()).unwrap_err();
        assert_eq!(f.reason, VerifyReason::HeaderMissing, "{name}");
        assert!(f.detail.contains(name), "{}", f.detail);
        let emptied: Vec<_> = callback_headers()
            .into_iter()
            .map(|(n, v)| if n == name { (n, String::new()) } else { (n, v) })
            .collect();
        let f = verify(&ring, &emptied, CALLBACK_BODY, CB_TS, VerifyOptions::default()).unwrap_err();
        assert_eq!(f.reason, VerifyReason::HeaderMissing, "{name} empty");
    }
}

#[test]
fn s11_2_resource_decrypts_at_primitive_level_and_16_byte_key_is_refused() {
    let body: serde_json::Value = serde_json::from_slice(CALLBACK_BODY).unwrap();
    let r = &body["resource"];
    assert_eq!(r["algorithm"], "AEAD_AES_256_GCM");
    let plain = aead::decrypt(
        b"testMchAPIv3Key0",
        r["nonce"].as_str().unwrap().as_bytes(),
        r["associated_data"].as_str().unwrap().as_bytes(),
        r["ciphertext"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(
        std::str::from_utf8(&plain).unwrap(),
        r#"{"mchid":"1234567890","appid":"054aa7d7a2a54ab5898df65bd96f001c","create_time":"2020-06-30T12:12:00+08:00","out_contract_code":"21640bdbd08e473e828f3206a2741c6e"}"#
    );
    // Wrong AAD (e.g. a hard-coded "transaction") fails.
    let e = aead::decrypt(
        b"testMchAPIv3Key0",
        b"Kj7QIyUiYx1q",
        b"transaction",
        r["ciphertext"].as_str().unwrap(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DecryptFailed);

    let e = ApiV3Key::new(b"testMchAPIv3Key0").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert_eq!(e.message(), "APIv3 key must be exactly 32 bytes, got 16");
    assert!(!e.to_string().contains("testMchAPIv3Key0"));
}

// ---------------------------------------------------------------- §11.3, §11.4

#[test]
fn s11_3_and_s11_4_aes_gcm() {
    assert_eq!(
        aead::decrypt(
            b"testAPIv3Key0000",
            b"wCq51qZv4Yfg",
            b"Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8",
            "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC"
        )
        .unwrap(),
        b"Hello World"
    );
    let key = ApiV3Key::new(JAVA_API_V3_KEY).unwrap();
    let ct = "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=";
    assert_eq!(key.decrypt(b"uluk4a9R25RW", b"associatedData", ct).unwrap(), b"message");
    assert_eq!(key.encrypt(b"uluk4a9R25RW", b"associatedData", b"message").unwrap(), ct);
    for (nonce, aad, ct) in [
        (&b"uluk4a9R25RW"[..], &b"associatedDatb"[..], ct),
        (b"bad-4a9R25RW", b"associatedData", ct),
        (b"uluk4a9R25RW", b"associatedData", ""),
        (b"uluk4a9R25RW", b"associatedData", "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwM="), // tag bit flipped
    ] {
        let e = key.decrypt(nonce, aad, ct).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DecryptFailed, "{}", e.message());
    }
    assert_eq!(format!("{key:?}"), "ApiV3Key(redacted)");
}

// ---------------------------------------------------------------- §11.5

#[test]
fn s11_5_platform_certificate_decrypts_to_the_exact_pem() {
    let body: serde_json::Value = serde_json::from_slice(CERTS_RESPONSE).unwrap();
    let enc = &body["data"][0]["encrypt_certificate"];
    assert_eq!(enc["ciphertext"].as_str().unwrap().len(), 1988);
    let key = ApiV3Key::new(JAVA_API_V3_KEY).unwrap();
    let pem = key
        .decrypt(b"14b16c03dc1b", b"certificate", enc["ciphertext"].as_str().unwrap())
        .unwrap();
    assert_eq!(pem.len(), 1475);
    assert_eq!(
        sha256_hex(&pem),
        "8693813ac0735cb54b6e67f25086a5924c103712255b8857049b8e502d564eb4"
    );
    assert_eq!(pem, TENPAY_CERT.as_bytes());

    let certs = decrypt_certificates(&key, CERTS_RESPONSE).unwrap();
    assert_eq!(certs.len(), 1);
    let c = &certs[0];
    assert_eq!(c.serial(), "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC");
    // 2023-09-19T15:15:58Z → 2028-09-17T15:15:58Z
    assert_eq!(c.not_before(), 1_695_136_558);
    assert_eq!(c.not_after(), 1_852_816_558);
    assert!(c.subject().contains("CN=Tenpay.com sign"), "{}", c.subject());
    assert!(c.issuer().contains("CN=Tenpay.com Root CA"), "{}", c.issuer());
    assert_eq!(c.public_key().bits(), 2048);
    assert_eq!(c, &Certificate::from_pem(TENPAY_CERT).unwrap());
}

#[test]
fn s11_5_certificate_download_failures() {
    let key = ApiV3Key::new(JAVA_API_V3_KEY).unwrap();
    let text = std::str::from_utf8(CERTS_RESPONSE).unwrap();

    let wrong_serial = text.replace(
        "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC",
        "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427ED",
    );
    let e = decrypt_certificates(&key, wrong_serial.as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert_eq!(e.field(), Some("data[0].serial_no"));

    // Serial compared case-insensitively, leading zeros ignored.
    let lower = text.replace(
        "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC",
        "005dea10ef55877e3cf6c33255c2e7defff7e427ec",
    );
    assert_eq!(decrypt_certificates(&key, lower.as_bytes()).unwrap().len(), 1);

    let other_key = ApiV3Key::new(b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gc").unwrap();
    let e = decrypt_certificates(&other_key, CERTS_RESPONSE).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DecryptFailed);
    assert_eq!(e.field(), Some("data[0].encrypt_certificate"));

    let wrong_aad = text.replace("\"certificate\"", "\"transaction\"");
    assert_eq!(
        decrypt_certificates(&key, wrong_aad.as_bytes()).unwrap_err().kind(),
        ErrorKind::DecryptFailed
    );

    let sm4 = text.replace("AEAD_AES_256_GCM", "AEAD_SM4_GCM");
    assert_eq!(
        decrypt_certificates(&key, sm4.as_bytes()).unwrap_err().kind(),
        ErrorKind::UnsupportedAlgorithm
    );

    for bad in [
        &b"not json"[..],
        b"{}",
        b"{\"data\":{}}",
        b"{\"data\":[{\"serial_no\":\"1\"}]}",
    ] {
        assert_eq!(
            decrypt_certificates(&key, bad).unwrap_err().kind(),
            ErrorKind::InvalidJson
        );
    }
    assert!(decrypt_certificates(&key, b"{\"data\":[]}").unwrap().is_empty());

    // A sealed plaintext that is not a certificate.
    let sealed = key.encrypt(b"000000000000", b"certificate", b"hello").unwrap();
    let fake = format!(
        r#"{{"data":[{{"serial_no":"01","encrypt_certificate":{{"algorithm":"AEAD_AES_256_GCM","nonce":"000000000000","associated_data":"certificate","ciphertext":"{sealed}"}}}}]}}"#
    );
    assert_eq!(
        decrypt_certificates(&key, fake.as_bytes()).unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
}

// ---------------------------------------------------------------- §11.6.1

const CONFIRM_URL: &str =
    "/v3/brand/partner/card-member/user-cards/478515832665/confirm?card_id=pbLatjvWOibDc5-TBnbUk1pD12o0";
const CONFIRM_NONCE: &str = "593BEC0C930BF1AFEB40B4A08C8FB242";
const CONFIRM_SIG: &str = "cMvkaXvM7uMhgbEqsLpbcO8sj+q1EUC8sroQKCLxsQZ1C4wmM4dJ5sMLHDXs3xwIYu7BSaS9rmRGDqOex+zsJnQp6XMvLyZkCy7vmMLQ6gMOazPNmBDsHd+p86QhWrqSSm19oH7YLQ4loXtO8cXf/ZDH0pnBalY/zTrR0jzTSQ9klwTfHyduv39v6t0BCp+29S/K4qHjzVN93d3H/cz8mLQ/lnbxkLRTPM2wZkMdVCfrVbG6BX3eLOqFRQf6QWfK3JsyyyQn3696WebhWhaX8Bxb1Nl88ptcNWcEfjMlAyLepNexy3KqKPuaDJV7/0O5imcsKuE4UCEnTjMMdVCjMA==";

#[test]
fn s11_6_1_confirm_request_authorization_header() {
    let url = format!(
        "/v3/brand/partner/card-member/user-cards/{}/confirm?card_id=pbLatjvWOibDc5-TBnbUk1pD12o0",
        encode_path_segment("478515832665")
    );
    assert_eq!(url, CONFIRM_URL);
    let msg = sign::message("POST", CONFIRM_URL, 1_624_523_846, CONFIRM_NONCE, CONFIRM_REQUEST);
    assert_eq!(msg.len(), 256);
    assert_eq!(
        sha256_hex(&msg),
        "a999797efff67090d531772968b7ae9bd98ceafdd9b62a2d0724016f1657d9fd"
    );
    let signer = RequestSigner::new("1234567890", "F5765756002FDD77", merchant_key()).unwrap();
    let signed = signer
        .sign_with_nonce("POST", CONFIRM_URL, CONFIRM_REQUEST, 1_624_523_846, CONFIRM_NONCE)
        .unwrap();
    assert_eq!(
        format!("Authorization: {}", signed.authorization),
        format!(
            "Authorization: WECHATPAY2-SHA256-RSA2048 mchid=\"1234567890\",nonce_str=\"{CONFIRM_NONCE}\",signature=\"{CONFIRM_SIG}\",timestamp=\"1624523846\",serial_no=\"F5765756002FDD77\""
        )
    );
    assert_eq!(signed.nonce, CONFIRM_NONCE);
    assert_eq!(signed.timestamp, 1_624_523_846);
    // Lower-case serial input is emitted upper-case.
    let lower = RequestSigner::new("1234567890", "f5765756002fdd77", merchant_key()).unwrap();
    assert_eq!(lower.serial_no(), "F5765756002FDD77");
}

#[test]
fn s11_6_1_negative_checks_change_the_signature() {
    let signer = RequestSigner::new("1234567890", "F5765756002FDD77", merchant_key()).unwrap();
    let sig_of = |url: &str, body: &[u8]| {
        let a = signer
            .sign_with_nonce("POST", url, body, 1_624_523_846, CONFIRM_NONCE)
            .unwrap()
            .authorization;
        a.split("signature=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(sig_of(CONFIRM_URL, CONFIRM_REQUEST), CONFIRM_SIG);
    let without_query = CONFIRM_URL.split('?').next().unwrap();
    assert_ne!(sig_of(without_query, CONFIRM_REQUEST), CONFIRM_SIG);
    let mut body = CONFIRM_REQUEST.to_vec();
    body[20] ^= 1;
    assert_ne!(sig_of(CONFIRM_URL, &body), CONFIRM_SIG);
    // Without the final \n the message signs differently.
    let mut msg = sign::message("POST", CONFIRM_URL, 1_624_523_846, CONFIRM_NONCE, CONFIRM_REQUEST);
    assert_eq!(msg.pop(), Some(b'\n'));
    assert_ne!(
        b64_encode(&rsa::sign_sha256(&merchant_key(), &msg).unwrap()),
        CONFIRM_SIG
    );

    // Fresh nonces per request.
    let a = signer
        .sign("POST", CONFIRM_URL, CONFIRM_REQUEST, 1_624_523_846)
        .unwrap();
    let b = signer
        .sign("POST", CONFIRM_URL, CONFIRM_REQUEST, 1_624_523_846)
        .unwrap();
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.authorization, b.authorization);
    assert_eq!(a.nonce.len(), 32);
}

#[test]
fn s11_6_1_signer_input_rules() {
    let e = RequestSigner::new("12345x", "F5765756002FDD77", merchant_key()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert_eq!(e.field(), Some("wechatpay.mchid"));
    let e = RequestSigner::new("1234567890", PUB_KEY_ID, merchant_key()).unwrap_err();
    assert_eq!(e.field(), Some("wechatpay.merchant_serial_no"));
    let signer = RequestSigner::new("1234567890", "F5765756002FDD77", merchant_key()).unwrap();
    for (method, url, nonce) in [
        ("post", CONFIRM_URL, CONFIRM_NONCE),
        ("POST", "v3/x", CONFIRM_NONCE),
        ("POST", "/v3/x y", CONFIRM_NONCE),
        ("POST", "/v3/x\n", CONFIRM_NONCE),
        ("POST", CONFIRM_URL, "bad\"nonce"),
        ("POST", CONFIRM_URL, ""),
    ] {
        let e = signer.sign_with_nonce(method, url, b"", 1, nonce).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{method} {url:?} {nonce:?}");
    }
}

// ---------------------------------------------------------------- §11.6.2

const RESP_SIG: &str = "kgnYTUC2Bwe+WMA1wJ86YUlC35ZdzQyxpqed/WsobszRVUOISsQ9cXtK+aDO/KjjLBG89oSP85PhiB7L9QhdC+HxDcxTrmj/pLMh72Ybiam5B7DkchNLpQHiYct+/PxVrv31jxqbF8FhJytc97VEAithbqdzOIm0bZiUjZ8e0AQNISfr4amg9qshEtHJW1ydR9Ym2NFNaIv6IpKiJjQ2PczZsHleH8iBo7NbK1pqk9OFpUn8IV2PE9dKF1rdV+qhYNv1C3qtyaD+8KFLugFKKlCYtXD1BtMuzTZy3fNlTqFhNgKv6vqqJ78sPlky7Ka/YJjcd+L6R3exyNZHZoDv0g==";

fn response_headers(ts: &str, serial: &str, signature: &str) -> Vec<(String, String)> {
    headers(&[
        ("Wechatpay-Timestamp", ts),
        ("Wechatpay-Nonce", "d824f2e086d3c1df967785d13fcd22ef"),
        ("Wechatpay-Serial", serial),
        ("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048"),
        ("Wechatpay-Signature", signature),
    ])
}

#[test]
fn s11_6_2_confirm_response_and_clock_window() {
    assert_eq!(CONFIRM_RESPONSE.len(), 271);
    let msg = verify::message("1624523847", "d824f2e086d3c1df967785d13fcd22ef", CONFIRM_RESPONSE);
    assert_eq!(msg.len(), 316);
    assert_eq!(
        sha256_hex(&msg),
        "513b05be9d6234f510251a6970041173c83622710fb3c44c45233e2aa57d0fe7"
    );
    let ring = cert_ring();
    let h = response_headers("1624523847", "D7CE59D1F522D701", RESP_SIG);
    let run = |now: i64| verify(&ring, &h, CONFIRM_RESPONSE, now, VerifyOptions::default());
    assert!(run(1_624_524_147).is_ok(), "Δ = 300 accepted");
    assert!(run(1_624_523_547).is_ok(), "Δ = −300 accepted");
    for now in [1_624_524_148, 1_624_523_546, i64::MIN, i64::MAX] {
        let f = run(now).unwrap_err();
        assert_eq!(f.reason, VerifyReason::ClockSkew, "now = {now}");
        assert_eq!(f.to_error().kind(), ErrorKind::ClockSkew);
    }
}

#[test]
fn s11_6_2_timestamps_must_be_decimal_and_in_range() {
    let ring = cert_ring();
    for ts in [
        "+1624523847",
        " 1624523847",
        "1624523847 ",
        "1624523847.0",
        "-1624523847",
        "0x60D4",
        "99999999999999999999",
        "1e9",
    ] {
        let f = verify(
            &ring,
            &response_headers(ts, "D7CE59D1F522D701", RESP_SIG),
            CONFIRM_RESPONSE,
            1_624_523_847,
            VerifyOptions::default(),
        )
        .unwrap_err();
        assert_eq!(f.reason, VerifyReason::BadTimestamp, "{ts:?}");
        assert_eq!(cardbridge::Error::from(f).kind(), ErrorKind::ClockSkew);
    }
}

#[test]
fn s11_6_2_signtest_probe_fails_cleanly_and_is_flagged() {
    let ring = cert_ring();
    for sig in [
        format!("WECHATPAY/SIGNTEST/{RESP_SIG}"), // not decodable
        "WECHATPAY/SIGNTEST/A".to_string(),       // decodable, 15 bytes
        format!("WECHATPAY/SIGNTEST/{}", &RESP_SIG[..RESP_SIG.len() - 20]),
    ] {
        let f = verify(
            &ring,
            &response_headers("1624523847", "D7CE59D1F522D701", &sig),
            CONFIRM_RESPONSE,
            1_624_523_847,
            VerifyOptions::default(),
        )
        .unwrap_err();
        assert!(f.probe, "{sig}");
        assert!(
            matches!(f.reason, VerifyReason::BadEncoding | VerifyReason::Mismatch),
            "{:?}",
            f.reason
        );
        let e = f.to_error();
        assert_eq!(e.kind(), ErrorKind::SignatureInvalid);
        assert!(e.message().contains("WECHATPAY/SIGNTEST/"), "{}", e.message());
    }
    // Probe flag also set when an earlier check fails.
    let f = verify(
        &ring,
        &response_headers("1624523847", "D7CE59D1F522D701", "WECHATPAY/SIGNTEST/x"),
        CONFIRM_RESPONSE,
        0,
        VerifyOptions::default(),
    )
    .unwrap_err();
    assert_eq!((f.reason, f.probe), (VerifyReason::ClockSkew, true));
    // An ordinary bad signature is not a probe.
    let mut raw = b64_decode_strict(RESP_SIG).unwrap();
    raw[0] ^= 1;
    let f = verify(
        &ring,
        &response_headers("1624523847", "D7CE59D1F522D701", &b64_encode(&raw)),
        CONFIRM_RESPONSE,
        1_624_523_847,
        VerifyOptions::default(),
    )
    .unwrap_err();
    assert_eq!((f.reason, f.probe), (VerifyReason::Mismatch, false));
    assert!(!f.to_error().message().contains("SIGNTEST"));
}

#[test]
fn s11_6_2_empty_body_is_signed_as_an_empty_line() {
    // Mint a 204-style answer with the §11.1 key (the certificate's pair).
    let msg = verify::message("1624523847", "n0nce", b"");
    assert_eq!(msg, b"1624523847\nn0nce\n\n");
    let sig = b64_encode(&rsa::sign_sha256(&merchant_key(), &msg).unwrap());
    let h = headers(&[
        ("Wechatpay-Timestamp", "1624523847"),
        ("Wechatpay-Nonce", "n0nce"),
        ("Wechatpay-Serial", "D7CE59D1F522D701"),
        ("Wechatpay-Signature", &sig),
    ]);
    assert!(verify(&cert_ring(), &h, b"", 1_624_523_847, VerifyOptions::default()).is_ok());
    assert!(verify(&cert_ring(), &h, b"\n", 1_624_523_847, VerifyOptions::default()).is_err());
}

// ---------------------------------------------------------------- key selection (§7.2, §8.3)

#[test]
fn key_ring_selects_by_public_key_id_or_certificate_serial() {
    let mut ring = cert_ring();
    ring.add_public_key(PUB_KEY_ID, merchant_key().public_key()).unwrap();
    let verify_with = |serial: &str| {
        verify(
            &ring,
            &response_headers("1624523847", serial, RESP_SIG),
            CONFIRM_RESPONSE,
            1_624_523_847,
            VerifyOptions::default(),
        )
    };
    // Both modes at once.
    assert!(verify_with(PUB_KEY_ID).is_ok());
    assert!(verify_with("D7CE59D1F522D701").is_ok());
    // Certificate serials: case-insensitive, leading zeros ignored.
    assert!(verify_with("d7ce59d1f522d701").is_ok());
    assert!(verify_with("0000D7CE59D1F522D701").is_ok());
    // Key IDs match exactly.
    for unknown in [
        "pub_key_id_0114232134912410000000000000",
        "PUB_KEY_ID_0114232134912410000000000001",
        "D7CE59D1F522D702",
        "15550465321652639489", // the serial in decimal
    ] {
        let f = verify_with(unknown).unwrap_err();
        assert_eq!(f.reason, VerifyReason::UnknownSerial, "{unknown}");
        assert_eq!(f.to_error().kind(), ErrorKind::UnknownKeySerial);
    }

    // Public-key-only ring.
    let mut pk_only = KeyRing::new();
    pk_only.add_public_key(PUB_KEY_ID, merchant_key().public_key()).unwrap();
    assert!(
        pk_only
            .verification_key("D7CE59D1F522D701", 1_624_523_847)
            .unwrap_err()
            .kind()
            == ErrorKind::UnknownKeySerial
    );
    assert!(pk_only.verification_key(PUB_KEY_ID, 0).is_ok());

    let e = KeyRing::new()
        .add_public_key("PUB_KEY_ID_12ab", merchant_key().public_key())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(
        KeyRing::new()
            .add_public_key("D7CE59D1F522D701", merchant_key().public_key())
            .is_err()
    );
}

#[test]
fn key_ring_ignores_expired_and_not_yet_valid_certificates() {
    let mut ring = KeyRing::new();
    ring.add_certificate(test_cert()); // 2021-04-27 → 2031-04-25
    ring.add_certificate(Certificate::from_pem(TENPAY_CERT).unwrap()); // 2023-09-19 → 2028-09-17
    let tenpay = "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC";
    let y2022 = 1_640_995_200;
    let y2025 = 1_735_689_600;
    let y2030 = 1_893_456_000;
    let y2032 = 1_956_528_000;

    let e = ring.verification_key(tenpay, y2022).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownKeySerial);
    assert!(e.message().contains("not yet valid"), "{}", e.message());
    assert!(ring.verification_key(tenpay, y2025).is_ok());
    let e = ring.verification_key(tenpay, y2030).unwrap_err();
    assert!(e.message().contains("expired"), "{}", e.message());
    // Validity boundaries are inclusive.
    assert!(ring.verification_key(tenpay, 1_695_136_558).is_ok());
    assert!(ring.verification_key(tenpay, 1_852_816_558).is_ok());
    assert!(ring.verification_key(tenpay, 1_852_816_559).is_err());

    // Encryption: newest valid certificate, then a public key when present.
    assert_eq!(ring.encryption_key(y2022).unwrap().0, "D7CE59D1F522D701");
    assert_eq!(ring.encryption_key(y2025).unwrap().0, tenpay);
    assert_eq!(ring.encryption_key(y2030).unwrap().0, "D7CE59D1F522D701");
    assert_eq!(ring.encryption_key(y2032).unwrap_err().kind(), ErrorKind::InvalidConfig);
    ring.add_public_key(PUB_KEY_ID, merchant_key().public_key()).unwrap();
    let (id, key) = ring.encryption_key(y2032).unwrap();
    assert_eq!(id, PUB_KEY_ID);
    assert_eq!(key, merchant_key().public_key());

    // A refresh replaces the certificate set; re-adding a serial replaces it.
    ring.set_certificates(vec![test_cert(), test_cert()]);
    assert_eq!(ring.certificates().len(), 1);
    assert!(ring.verification_key(tenpay, y2025).is_err());
    assert_eq!(ring.public_key_ids().collect::<Vec<_>>(), vec![PUB_KEY_ID]);
}

// ---------------------------------------------------------------- §11.6.3

const PHONE_CT: &str = "amoEqDHEEKtMX4+BdBfaeDjrz7pedmE7k+CiTl8i19UBPVUdTdAxgcxZSuPp7g5dacHqq+r5yJ4XYy/1t6Zhtj+K4jK5ffLxgs8TU++8puzEdCGa6wQM3PwsFYRzJbFWLKHYSyBEuSRsnJA5wNhw8H63jBwsi2EfVwfbsyu3BZjV3HSJID/PzJbVOvXQa0SwoZi/J+oh4fwQGq87ElxJRQp9Zw435TdorXvkkJ7IugyQyuOm3/ywXrkM0svltkXj2BV6lDgNfNydqxX3qs4oU2l/zraSLOfvSN9GZSdNqK7w/A7/CIXfx1waq8kefxqCnfvkolni47JbeeJR7q3b6Q==";

#[test]
fn s11_6_3_oaep_decrypts_the_vector() {
    assert_eq!(oaep::decrypt(&merchant_key(), PHONE_CT).unwrap(), b"13800000000");
}

#[test]
fn s11_6_3_oaep_limit_and_round_trip() {
    let public = test_cert().public_key().clone();
    assert_eq!(oaep::max_plaintext_len(&public), 214);
    let max = vec![0xA5u8; 214];
    let ct = oaep::encrypt(&public, &max).unwrap();
    assert_eq!(b64_decode_strict(&ct).unwrap().len(), 256);
    assert_eq!(oaep::decrypt(&merchant_key(), &ct).unwrap(), max);
    // Randomised padding: same plaintext, different ciphertexts, both decrypt.
    let a = oaep::encrypt(&public, b"13800000000").unwrap();
    let b = oaep::encrypt(&public, b"13800000000").unwrap();
    assert_ne!(a, b);
    assert_eq!(oaep::decrypt(&merchant_key(), &b).unwrap(), b"13800000000");
    assert_eq!(
        oaep::decrypt(&merchant_key(), &oaep::encrypt(&public, b"").unwrap()).unwrap(),
        b""
    );

    let e = oaep::encrypt(&public, &[0u8; 215]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PlaintextTooLong);
    assert!(e.message().contains("at most 214 bytes"), "{}", e.message());
    assert!(e.message().contains("215"), "{}", e.message());
    let e = e.with_field("phone_number");
    assert_eq!(e.field(), Some("phone_number"));
}

#[test]
fn s11_6_3_oaep_decrypt_failures() {
    let k = merchant_key();
    for bad in ["", "!!!", "AAAA", &PHONE_CT[4..]] {
        let e = oaep::decrypt(&k, bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DecryptFailed, "{bad:?}");
    }
    let mut raw = b64_decode_strict(PHONE_CT).unwrap();
    raw[100] ^= 1;
    assert_eq!(
        oaep::decrypt(&k, &b64_encode(&raw)).unwrap_err().kind(),
        ErrorKind::DecryptFailed
    );
    let other = PrivateKey::generate_rsa2048().unwrap();
    let e = oaep::decrypt(&other, PHONE_CT).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DecryptFailed);
}
