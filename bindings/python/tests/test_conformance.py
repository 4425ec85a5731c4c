"""The cross-language conformance suite, Python runner: the JSON cases in
tests/fixtures/conformance/ with exactly the comparisons of tests/conformance.rs."""

from __future__ import annotations

import json
from typing import Any

import pytest

import cardbridge

from conftest import KEYS, REPO

FIXTURES = REPO / "tests" / "fixtures" / "conformance"
VALIDATE_CASES: list[dict[str, Any]] = json.loads((FIXTURES / "alipayplus_validate.json").read_text())
INBOUND_CASES: list[dict[str, Any]] = json.loads((FIXTURES / "alipayplus_inbound.json").read_text())["cases"]
WECHAT_VALIDATE_CASES: list[dict[str, Any]] = json.loads((FIXTURES / "wechatpay_validate.json").read_text())


def test_suites_are_not_empty() -> None:
    assert len(VALIDATE_CASES) >= 15
    assert len(INBOUND_CASES) >= 1


@pytest.mark.parametrize("case", VALIDATE_CASES, ids=[c["name"] for c in VALIDATE_CASES])
def test_alipayplus_validate(case: dict[str, Any]) -> None:
    direction = cardbridge.Direction.INBOUND if case["direction"] == "inbound" else cardbridge.Direction.OUTBOUND
    expect = case["expect"]
    try:
        output = cardbridge.validate(case["message"], case["input"], direction)
    except cardbridge.CardbridgeError as e:
        assert expect["ok"] is False, f"unexpected error {e}"
        assert e.name == expect["result"]
        assert e.field == expect.get("field")
        assert e.limit == expect.get("limit")
        assert e.message == expect["message"]
    else:
        assert expect["ok"] is True, "expected an error, got success"
        assert output == expect["output"]


@pytest.mark.parametrize("case", WECHAT_VALIDATE_CASES, ids=[c["name"] for c in WECHAT_VALIDATE_CASES])
def test_wechatpay_validate(case: dict[str, Any]) -> None:
    expect = case["expect"]
    try:
        output = cardbridge.validate_wechat(case["operation"], case["input"], case.get("options"))
    except cardbridge.CardbridgeError as e:
        assert expect["ok"] is False, f"unexpected error {e}"
        assert e.name == expect["result"]
        assert e.field == expect.get("field")
        assert e.limit == expect.get("limit")
        assert e.message == expect["message"]
    else:
        assert expect["ok"] is True, "expected an error, got success"
        assert json.dumps(output, ensure_ascii=False, separators=(",", ":")) == expect["output"]


@pytest.mark.parametrize("case", INBOUND_CASES, ids=[c["name"] for c in INBOUND_CASES])
def test_alipayplus_inbound(case: dict[str, Any]) -> None:
    cfg = case["config"]
    config = {
        "client_id": cfg["client_id"],
        "merchant_private_key": (KEYS / cfg["merchant_private_key_file"]).read_text(),
        "platform_public_key": (KEYS / cfg["platform_public_key_file"]).read_text(),
        "time_offset_minutes": cfg.get("time_offset_minutes", 0),
    }
    r = case["request"]
    headers = [(h[0], h[1]) for h in r["headers"]]
    now = case["now_ms"]
    with cardbridge.Store.memory() as store, cardbridge.AlipayPlus(config, store) as ap:
        outcome = ap.begin(r["method"], r["target"], headers, r["body"].encode("utf-8"), now_ms=now)
        if isinstance(outcome, cardbridge.Response):
            assert case["decision"] is None, "the host should have been asked"
            response = outcome
        else:
            assert case["decision"] is not None, "host asked unexpectedly"
            with outcome:
                response = ap.finish(outcome, case["decision"], now_ms=now)
    e = case["expect"]
    assert response.status == e["status"]
    assert response.headers == [(h[0], h[1]) for h in e["headers"]]
    assert response.body.decode("utf-8") == e["body"]
