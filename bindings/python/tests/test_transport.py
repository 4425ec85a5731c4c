"""Bring your own transport from Python: issueCard and WeChat Pay confirm
prepared by cardbridge, sent by the test's own HTTP client (urllib, not the
library), completed by cardbridge. Everything is loopback."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import cardbridge
from cardbridge.testing import Emulator
from cardbridge.transport import Prepared, Purpose, Reply

from conftest import integration_config
from test_wechat import BRAND_ID, CARD_ID, OPENID, confirm_input, emulator_config, wechat_config


def my_http(p: Prepared) -> tuple[int, list[tuple[str, str]], bytes] | Reply:
    """The host's own transport: sends the request exactly as prepared."""
    request = urllib.request.Request(
        p.url, data=p.body if p.method != "GET" else None, method=p.method, headers=dict(p.headers)
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, list(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:  # a non-2xx answer is still an answer
        return e.code, list(e.headers.items()), e.read()
    except ConnectionRefusedError:
        return Reply.NOT_SENT
    except (urllib.error.URLError, OSError):
        return Reply.NO_ANSWER


def request(request_id: str) -> dict[str, Any]:
    return {
        "appId": "2102010113769000",
        "customerBelongsTo": "TNG",
        "requestId": request_id,
        "customerId": "210911290000",
        "externalCustomerId": "M-000123",
        "registerDate": "2019-11-27T19:07:41+08:00",
        "cardFields": [{"fieldCode": "POINT", "fieldValue": "123"}],
    }


def test_issue_card_over_my_transport_retries_a_500_and_replays(
    alipay: cardbridge.AlipayPlus, emulator: Emulator
) -> None:
    emulator.push_fault("http_status", status=500)
    step = alipay.prepare_issue_card(request("PY-BYO-1"))
    assert isinstance(step, Prepared)
    assert step.purpose is Purpose.SEND and step.wait_ms == 0
    assert step.method == "POST" and step.url.endswith("/v2/pds/memberships/issueCard")
    assert any(n == "Signature" for n, _ in step.headers)
    assert step.outbox_id.endswith("/PY-BYO-1")
    assert emulator.hits("PY-BYO-1") == 0, "prepare sends nothing"
    assert "M-000123" not in repr(step)

    first = my_http(step)
    assert not isinstance(first, Reply) and first[0] == 500
    status, headers, body = first
    retry = alipay.complete_issue_card(step, status=status, headers=headers, body=body)
    assert isinstance(retry, Prepared), "the 500 gives a retry request"
    assert retry.purpose is Purpose.SEND and retry.wait_ms > 0
    with pytest.raises(cardbridge.AlreadyUsedError):
        alipay.complete_issue_card(step, reply=Reply.NOT_SENT)
    got = my_http(retry)
    assert not isinstance(got, Reply)
    answer = alipay.complete_issue_card(retry, status=got[0], headers=got[1], body=got[2])
    assert isinstance(answer, dict) and answer["result"]["resultStatus"] == "S"
    assert emulator.hits("PY-BYO-1") == 2

    # The same requestId: the stored answer, no send; equal to what issue_card returns.
    assert alipay.prepare_issue_card(request("PY-BYO-1")) == answer
    assert alipay.issue_card(request("PY-BYO-1")) == answer
    assert alipay.issue_card_over(request("PY-BYO-1"), my_http) == answer
    assert emulator.hits("PY-BYO-1") == 2


def test_issue_card_over_with_transport_failures(alipay: cardbridge.AlipayPlus, emulator: Emulator) -> None:
    failures = iter([Reply.NOT_SENT, Reply.TIMED_OUT])

    def flaky(p: Prepared) -> tuple[int, list[tuple[str, str]], bytes] | Reply:
        return next(failures, None) or my_http(p)

    answer = alipay.issue_card_over(request("PY-BYO-2"), flaky)
    assert answer["cardNo"]
    assert emulator.hits("PY-BYO-2") == 1, "only the third attempt was really sent"

    # Budget spent (max_attempts 4): RemoteUnknown, pending, and the next call finishes it.
    with pytest.raises(cardbridge.RemoteUnknown) as e:
        alipay.issue_card_over(request("PY-BYO-3"), lambda p: Reply.NO_ANSWER)
    assert e.value.request_id == "PY-BYO-3"
    assert alipay.issue_card_over(request("PY-BYO-3"), my_http)["cardNo"]


@pytest.fixture
def wechat_emulator() -> Iterator[Emulator]:
    with Emulator(emulator_config()) as emu:
        yield emu


def test_confirm_over_my_transport_reads_back_after_a_tampered_answer(wechat_emulator: Emulator) -> None:
    emu = wechat_emulator
    with cardbridge.Store.memory() as store, cardbridge.WechatPay(wechat_config(emu.url), store) as wp:
        emu.add_user_card("PYBYO1", CARD_ID, OPENID, BRAND_ID)
        seen: list[Purpose] = []

        def tampering(p: Prepared) -> tuple[int, list[tuple[str, str]], bytes] | Reply:
            seen.append(p.purpose)
            got = my_http(p)
            if len(seen) == 1 and not isinstance(got, Reply):
                status, headers, body = got
                return status, headers, body.replace(b"E", b"F", 1)  # spoiled in transit
            return got

        answer = wp.confirm_over(confirm_input("PYBYO1"), tampering)
        assert seen == [Purpose.SEND, Purpose.READ_BACK], "never a blind re-send"
        assert answer["body"]["user_card_state"] == "EFFECTIVE"
        assert emu.confirm_hits("PYBYO1") == 1
        # Replay: the stored answer, the same as confirm's.
        assert wp.prepare_confirm(confirm_input("PYBYO1")) == wp.confirm(confirm_input("PYBYO1"))
        assert emu.confirm_hits("PYBYO1") == 1


def test_a_prepared_request_closed_uncompleted_leaves_the_entry_free(
    alipay: cardbridge.AlipayPlus, emulator: Emulator
) -> None:
    step = alipay.prepare_issue_card(request("PY-BYO-4"))
    assert isinstance(step, Prepared)
    step.close()
    with pytest.raises(cardbridge.AlreadyUsedError):
        alipay.complete_issue_card(step, reply=Reply.NOT_SENT)
    # The lease was released at once: the next call reads ... and sends.
    assert alipay.issue_card_over(request("PY-BYO-4"), my_http)["cardNo"]
    with pytest.raises(TypeError):
        alipay.complete_issue_card("not prepared", reply=Reply.NOT_SENT)
