"""Issue 10.1 / 10.2 from Python: native log events reach `logging` under
`cardbridge.*` with their fields, never with personal data, keys or
signatures; the counters move as the flows run. Loopback only."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

import cardbridge
from cardbridge import AlipayPlus, Call, WechatPay
from cardbridge.testing import Emulator, sample_registration

from conftest import CARD_FIELDS, NOTIFY, REGISTER_DATE, key, send
from test_wechat import API_V3, BRAND_ID, CARD_ID, OPENID, PHONE, confirm_input, deliver, expect_event, mint
from test_wechat import wechat, wx_emulator  # noqa: F401 - fixtures

# What the flows below carry: none of it may reach a log record.
REGISTRATION_PII = ["John Doe", "+6588120000", "email@example.com", "2002-07-25", "1236450862137570000"]
WECHAT_PII = [PHONE, "张三", "Li Lei", API_V3]


def key_chunks() -> list[str]:
    """Every 24-character run of the private keys' Base64 lines, and the PEM marker."""
    chunks = ["PRIVATE KEY"]
    for name in ("test_merchant_private.pem", "test_platform_private.pem"):
        for line in key(name).splitlines():
            if not line.startswith("-----"):
                chunks += [line[i : i + 24] for i in range(0, len(line) - 23, 24)]
    return chunks


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        """Every record rendered in full: logger, level, message, fields."""
        return "\n".join(
            f"{r.name} {r.levelname} {r.getMessage()} {json.dumps(getattr(r, 'cardbridge_fields', None))}"
            for r in self.records
        )

    def find(self, logger: str, message: str, **fields: object) -> list[logging.LogRecord]:
        return [
            r
            for r in self.records
            if r.name == logger
            and r.getMessage().startswith(message)
            and all(getattr(r, "cardbridge_fields", {}).get(k) == v for k, v in fields.items())
        ]


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    logger = logging.getLogger("cardbridge")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_alipay_flow_is_logged_without_personal_data_and_counted(
    alipay: AlipayPlus, driver: Emulator, emulator: Emulator, captured: Capture
) -> None:
    assert alipay.metrics()["retries"] == 0
    request = driver.request(NOTIFY, sample_registration("PY-OBS-1"))
    call = send(alipay, request)
    assert isinstance(call, Call)
    issue = alipay.build_issue_card(call, "M-000123", REGISTER_DATE, CARD_FIELDS)
    call.finish()
    call.close()
    duplicate = send(alipay, request)  # answered from the store
    assert isinstance(duplicate, cardbridge.Response) and duplicate.status == 200
    duplicate.close()
    emulator.push_fault("unknown")
    alipay.issue_card(issue)
    signature = dict(request.headers)["Signature"]

    m = alipay.metrics()
    assert m["inbound"]["notifyCardRegistration"] == {"S": 1, "replayed": 1}
    assert m["outbound_attempts"]["alipayplus.issueCard"] == {"ambiguous": 1, "succeeded": 1}
    assert (m["retries"], m["duplicates_replayed"], m["pending_entries"]) == (1, 1, 0)

    answer = captured.find("cardbridge.inbound", "inbound answer", request_id="PY-OBS-1", result="S")
    assert len(answer) == 1 and answer[0].levelno == logging.INFO
    assert "api=notifyCardRegistration request_id=PY-OBS-1 result=S" in answer[0].getMessage()
    retry = captured.find("cardbridge.outbox", "retry scheduled", kind="alipayplus.issueCard", attempt=1)
    assert len(retry) == 1 and retry[0].levelno == logging.WARNING
    done = captured.find("cardbridge.outbox", "outbound attempt", outcome="succeeded", attempt=2)
    assert len(done) == 1 and isinstance(getattr(done[0], "cardbridge_fields")["latency_ms"], int)

    text = captured.text()
    for secret in REGISTRATION_PII + key_chunks() + [signature[-40:]]:
        assert secret not in text, f"a log record contains {secret!r}"


def test_wechat_callback_and_confirm_are_logged_without_personal_data(
    wechat: WechatPay, wx_emulator: Emulator, captured: Capture
) -> None:
    request = mint(wx_emulator, "478515832690")
    with expect_event(deliver(wechat, request)) as event:
        assert event.resource["phone_number"] == PHONE
        event.finish()
    wx_emulator.add_user_card("478515832690", CARD_ID, OPENID, BRAND_ID)
    wechat.confirm(confirm_input("478515832690"))
    signature = dict(request.headers)["Wechatpay-Signature"]

    m = wechat.metrics()
    assert m["inbound"]["callback"] == {"accepted": 1}
    assert m["outbound_attempts"]["wechatpay.confirm"] == {"succeeded": 1}
    assert m["pending_entries"] == 0

    assert len(captured.find("cardbridge.callback", "callback answer", result="accepted")) == 1
    assert len(captured.find("cardbridge.outbox", "outbound attempt", kind="wechatpay.confirm")) == 1
    text = captured.text()
    for secret in WECHAT_PII + key_chunks() + [signature[-40:]]:
        assert secret not in text, f"a log record contains {secret!r}"


def test_a_failing_handler_does_not_break_the_call(alipay: AlipayPlus, driver: Emulator) -> None:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("handler bug")

    logger = logging.getLogger("cardbridge")
    broken, level = Broken(), logger.level
    logger.addHandler(broken)
    logger.setLevel(logging.DEBUG)
    raise_exceptions = logging.raiseExceptions
    logging.raiseExceptions = False
    try:
        outcome = send(alipay, driver.request(NOTIFY, sample_registration("PY-OBS-2")))
        assert isinstance(outcome, Call)
        with outcome as call, call.finish() as answer:
            assert answer.status == 200
    finally:
        logging.raiseExceptions = raise_exceptions
        logger.removeHandler(broken)
        logger.setLevel(level)


def test_uninstalled_hook_delivers_nothing_until_installed_again(
    alipay: AlipayPlus, driver: Emulator, captured: Capture
) -> None:
    from cardbridge import _log

    def answer(request_id: str) -> None:
        outcome = send(alipay, driver.request(NOTIFY, sample_registration(request_id)))
        assert isinstance(outcome, Call)
        with outcome as call, call.finish() as response:
            assert response.status == 200

    _log.uninstall()  # what interpreter exit does
    try:
        answer("PY-OBS-3")
        assert captured.records == []
    finally:
        _log.install()
    answer("PY-OBS-4")
    assert len(captured.find("cardbridge.inbound", "inbound answer", request_id="PY-OBS-4")) == 1
    assert alipay.metrics()["inbound"]["notifyCardRegistration"] == {"S": 2}, "counted either way"
