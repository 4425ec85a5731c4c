#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/seeds/<target>/ (committed; re-run after
changing a sample). Raw targets take a framed request (line 1 `METHOD TARGET`,
header lines, an empty line, the body); signed targets take a selector byte
followed by the body; sealed takes a selector byte and the resource JSON."""
import json, os, pathlib

root = pathlib.Path(__file__).resolve().parent / "seeds"

registration = {"appId": "2102010113769000", "customerBelongsTo": "TNG", "customerId": "1236450862137570000",
                "requestId": "20261207RQ0001",
                "registrationFields": [{"fieldCode": "USER_NAME", "fieldValue": "Li Lei"},
                                       {"fieldCode": "MOBILE_PHONE", "fieldValue": "+6588120000"}],
                "extendInfo": "{\"k\":\"v\"}"}
inquire = {"appId": "2102010113769000", "customerBelongsTo": "TNG", "customerId": "1236450862137570000",
           "cardNo": "C123", "requestId": "Q1"}
update = dict(inquire, cardFields=[{"fieldCode": "LEVEL", "fieldValue": "GOLD"}])
assets = dict(inquire, assetTypes=["POINT", "BALANCE"])
issue = {"appId": "2102010113769000", "customerBelongsTo": "TNG", "customerId": "1236450862137570000",
         "requestId": "I1", "externalCardNo": "EXT1", "cardFields": [{"fieldCode": "USER_NAME", "fieldValue": "x"}]}
answer_ok = {"result": {"resultStatus": "S", "resultCode": "SUCCESS", "resultMessage": "success"}, "cardNo": "C9"}
answer_u = {"result": {"resultStatus": "U", "resultCode": "UNKNOWN_EXCEPTION", "resultMessage": "later"}}
numbers = dict(registration, extendInfo=None, weird=9.888888888888888888e27, big=123456789012345678901234567890)
user_card = {"user_card_code": "478515832665", "card_id": "pbLatjvWOibDc5-TBnbUk1pD12o0", "brand_id": "1004",
             "openid": "obLatjnx9gnqzS4myYGmLZ7LgLBA", "phone_number": "13800000000",
             "user_information": {"common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": "Li Lei"}]},
             "user_card_confirm_state": "CREATE_CARD_SUCCESS", "out_request_no": "P1", "point_balance": 120}
envelope = {"id": "EV-1", "create_time": "2026-12-07T10:00:00+08:00", "resource_type": "encrypt-resource",
            "event_type": "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE", "summary": "x",
            "resource": {"original_type": "member_card", "algorithm": "AEAD_AES_256_GCM", "ciphertext": "AAAA",
                         "associated_data": "member_card", "nonce": "n"}}

def j(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode()

def write(target, name, data):
    d = root / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)

notify_head = (b"POST /v2/pds/memberships/notifyCardRegistration?x=1\nClient-Id: 2022TEST_CLIENT\n"
               b"Request-Time: 2026-12-07T10:00:00.000+08:00\n"
               b"Signature: algorithm=RSA256,keyVersion=1,signature=AAAA%2B%2F%3D\n\n")
write("alipay_inbound_raw", "notify", notify_head + j(registration))
write("alipay_inbound_raw", "dup_members", notify_head + b'{"requestId":"a","requestId":"b"}')
write("alipay_inbound_raw", "encrypt_header", notify_head.replace(b"\n\n", b"\nEncrypt: yes\n\n") + b"{}")
for i, body in enumerate([registration, inquire, update, assets]):
    write("alipay_inbound_signed", f"api{i}", bytes([i]) + j(body))
write("alipay_inbound_signed", "numbers", bytes([0]) + j(numbers))
write("alipay_inbound_signed", "fail_decision", bytes([0x80]) + j(registration))
wx_head = (b"POST /notify\nWechatpay-Timestamp: 1765072800\nWechatpay-Nonce: abc\n"
           b"Wechatpay-Signature: WECHATPAY/SIGNTEST/AAAA\nWechatpay-Serial: PUB_KEY_ID_0114232134912410000000000000\n\n")
write("wechat_callback_raw", "envelope", wx_head + j(envelope))
write("wechat_callback_signed", "envelope", j(envelope))
write("wechat_callback_sealed", "user_card", bytes([0]) + j(user_card))
write("wechat_callback_sealed", "points", bytes([2]) + j({"out_request_no": "P1", "point_balance": 3}))
for i, m in enumerate([registration, answer_ok, issue, answer_ok, inquire, answer_u, update, answer_ok, assets, answer_ok]):
    write("models", f"m{i}", bytes([i]) + j(m))
write("models", "user_card", bytes([0]) + j(user_card))
write("config_json", "alipay", j({"client_id": "2022TEST_CLIENT", "merchant_private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                                  "platform_public_key": "x", "connect_timeout_ms": 1000, "retry": {"max_attempts": 3}}))
write("config_json", "wechat", j({"mchid": "1900000001", "merchant_serial_no": "5F1C", "api_v3_key": "a" * 32,
                                  "wechatpay_public_key_id": "PUB_KEY_ID_1", "certificate_mode": True}))
keys = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keys"
for name in ("test_merchant_private.pem", "test_platform_public.pem"):
    write("keys", name, (keys / name).read_bytes())
write("platform_answers", "issue_ok", b"POST /\nClient-Id: 2022TEST_CLIENT\nResponse-Time: 2026-12-07T10:00:00.000+08:00\n\n" + j(answer_ok))
write("platform_answers", "wechat", b"POST /\nWechatpay-Timestamp: 1765072800\nWechatpay-Nonce: n\nWechatpay-Signature: AAAA\nWechatpay-Serial: PUB_KEY_ID_0114232134912410000000000000\n\n" + j(user_card))
