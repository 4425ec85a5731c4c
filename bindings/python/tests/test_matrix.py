"""The verification matrix and field limits (tests/fixtures/matrix), Python
runner: the same files and comparisons as tests/matrix.rs for the inbound
calls, the WeChat Pay callbacks and the Alipay+ model limits. The expected
values were made by tests/fixtures/matrix/generate.py with Python's
`cryptography`, not by cardbridge. (The answer matrices need a pinned clock
for outbound calls, which only the Rust API offers; tests/matrix.rs runs them.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

import cardbridge

from conftest import KEYS, REPO

FIXTURES = REPO / "tests" / "fixtures"


def cases(name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((FIXTURES / "matrix" / name).read_text(encoding="utf-8"))["cases"]
    return loaded


ALIPAY_INBOUND = cases("alipayplus_inbound.json")
WECHAT_CALLBACKS = cases("wechatpay_callbacks.json")
ALIPAY_LIMITS = cases("limits_alipayplus.json")


def test_each_platform_has_at_least_15_cases() -> None:
    assert len(ALIPAY_INBOUND) >= 15
    assert len(WECHAT_CALLBACKS) >= 15
    assert len(ALIPAY_LIMITS) >= 100


def alipay_config(cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "client_id": cfg["client_id"],
        "merchant_private_key": (KEYS / cfg["merchant_private_key_file"]).read_text(),
        "platform_public_key": (KEYS / cfg["platform_public_key_file"]).read_text(),
        "platform_public_keys_by_version": {
            version: (KEYS / file).read_text() for version, file in cfg["platform_public_key_files_by_version"].items()
        },
        "time_offset_minutes": cfg["time_offset_minutes"],
        "max_clock_skew_ms": cfg["max_clock_skew_ms"],
    }


@pytest.mark.parametrize("case", ALIPAY_INBOUND, ids=[c["name"] for c in ALIPAY_INBOUND])
def test_alipayplus_inbound_matrix(case: dict[str, Any]) -> None:
    r = case["request"]
    now = case["now_ms"]
    host_called = False
    with cardbridge.Store.memory() as store, cardbridge.AlipayPlus(alipay_config(case["config"]), store) as ap:
        outcome = ap.begin(r["method"], r["target"], [(h[0], h[1]) for h in r["headers"]], r["body"].encode(), now_ms=now)
        if isinstance(outcome, cardbridge.Response):
            response = outcome
        else:
            host_called = True
            assert case["decision"] is not None, "the host was asked; the library should have answered"
            with outcome:
                response = ap.finish(outcome, case["decision"], now_ms=now)
    e = case["expect"]
    assert host_called == e["host_called"]
    assert response.status == e["status"]
    assert response.body.decode("utf-8") == e["body"]
    assert response.headers == [(h[0], h[1]) for h in e["headers"]]


def wechat_config(cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "mchid": cfg["mchid"],
        "merchant_serial_no": cfg["merchant_serial_no"],
        "merchant_private_key": (FIXTURES / cfg["merchant_private_key_file"]).read_text(),
        "api_v3_key": cfg["api_v3_key"],
        "wechatpay_public_key_id": cfg["wechatpay_public_key_id"],
        "wechatpay_public_key": (FIXTURES / cfg["wechatpay_public_key_file"]).read_text(),
        "platform_certificates": [(FIXTURES / f).read_text() for f in cfg["platform_certificate_files"]],
    }


@pytest.mark.parametrize("case", WECHAT_CALLBACKS, ids=[c["name"] for c in WECHAT_CALLBACKS])
def test_wechatpay_callback_matrix(case: dict[str, Any]) -> None:
    r = case["request"]
    now = case["now"]
    event_seen: dict[str, Any] | None = None
    with cardbridge.Store.memory() as store, cardbridge.WechatPay(wechat_config(case["config"]), store) as wx:
        outcome = wx.callback_begin(r["method"], r["target"], [(h[0], h[1]) for h in r["headers"]], r["body"].encode(), now_ms=now * 1000)
        if isinstance(outcome, cardbridge.Response):
            response = outcome
        else:
            with outcome:
                event_seen = {
                    "kind": outcome.kind,
                    "phone_number": outcome.resource.get("phone_number"),
                    "undecryptable": outcome.undecryptable,
                }
                response = wx.callback_finish(outcome, case["accept"], "", now_ms=now * 1000)
    e = case["expect"]
    assert response.status == e["status"]
    assert response.body.decode("utf-8") == e["body"]
    assert (event_seen is not None) == e["host_called"]
    if "event" in e:
        assert event_seen is not None
        assert event_seen["kind"] == e["event"]["kind"]
        assert event_seen["undecryptable"] == e["event"]["undecryptable"]
        if "phone_number" in e["event"]:
            assert event_seen["phone_number"] == e["event"]["phone_number"]


@pytest.mark.parametrize("case", ALIPAY_LIMITS, ids=[c["name"] for c in ALIPAY_LIMITS])
def test_alipayplus_field_limit(case: dict[str, Any]) -> None:
    expect = case["expect"]
    try:
        cardbridge.validate(case["message"], case["input"], case["direction"])
    except cardbridge.CardbridgeError as e:
        assert expect["ok"] is False, f"refused, expected success: {e.name} {e.field}"
        assert e.name == expect["result"]
        assert e.field == expect["field"]
        if "limit" in expect:
            assert e.limit == expect["limit"]
    else:
        assert expect["ok"] is True, f"accepted, expected {expect['result']} on {expect['field']}"
