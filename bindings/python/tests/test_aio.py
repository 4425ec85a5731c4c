"""Issue 10.4 / 10.5 from Python: per-call deadline and cancel token on the
blocking methods, and `cardbridge.aio` under asyncio with a Starlette-style
handler (`async def endpoint(request)`): the native call runs off the event
loop, and cancelling the task stops the retries and leaves the entry pending.
No timing assertions: a 1 ms deadline is shorter than any backoff wait."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import cardbridge
from cardbridge import AlipayPlus, Call, aio
from cardbridge.testing import Emulator, sample_registration

from conftest import CARD_FIELDS, NOTIFY, REGISTER_DATE, integration_config, send


def issue_request(alipay: AlipayPlus, driver: Emulator, request_id: str) -> dict[str, Any]:
    call = send(alipay, driver.request(NOTIFY, sample_registration(request_id)))
    assert isinstance(call, Call)
    with call:
        request = alipay.build_issue_card(call, "M-000123", REGISTER_DATE, CARD_FIELDS)
        call.finish()
    return request


def test_a_short_deadline_makes_one_attempt_and_the_entry_stays_pending(
    alipay: AlipayPlus, driver: Emulator, emulator: Emulator
) -> None:
    request = issue_request(alipay, driver, "PY-OPT-1")
    for _ in range(4):
        emulator.push_fault("http_status", status=500)
    with pytest.raises(cardbridge.RemoteUnknown) as info:
        alipay.issue_card(request, deadline_ms=1)
    assert (info.value.attempts, info.value.http_status, info.value.request_id) == (1, 500, "PY-OPT-1")
    assert emulator.hits("PY-OPT-1") == 1, "the configured budget (4 attempts) was overridden"
    assert alipay.metrics()["pending_entries"] == 1
    alipay.issue_card(request)  # the configured budget outlasts the 3 faults left
    assert alipay.metrics()["pending_entries"] == 0
    with pytest.raises(ValueError):
        alipay.issue_card(request, deadline_ms=0)


def test_a_set_cancel_token_stops_after_one_attempt(
    alipay: AlipayPlus, driver: Emulator, emulator: Emulator
) -> None:
    request = issue_request(alipay, driver, "PY-OPT-2")
    emulator.push_fault("unknown")
    with cardbridge.CancelToken() as token:
        assert not token.cancelled
        token.cancel()
        assert token.cancelled
        with pytest.raises(cardbridge.RemoteUnknown) as info:
            alipay.issue_card(request, cancel=token)
    assert "cancelled after 1 attempt" in str(info.value)
    assert emulator.hits("PY-OPT-2") == 1


@pytest.fixture
def slow_alipay(emulator: Emulator) -> Iterator[AlipayPlus]:
    """Long backoff waits (at least 1 s), so a cancellation lands in one."""
    config = integration_config(emulator.url)
    config["retry"] = {"max_attempts": 4, "base_delay_ms": 2000, "max_delay_ms": 2000, "deadline_ms": 60000}
    with cardbridge.Store.memory() as store, AlipayPlus(config, store) as ap:
        yield ap


def test_aio_runs_off_the_loop_and_cancellation_leaves_the_entry_pending(
    slow_alipay: AlipayPlus, driver: Emulator, emulator: Emulator
) -> None:
    alipay = slow_alipay
    ok_request = issue_request(alipay, driver, "PY-AIO-1")
    slow_request = issue_request(alipay, driver, "PY-AIO-2")
    native_threads: set[int] = set()
    first_retry = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            native_threads.add(threading.get_ident())
            if record.getMessage().startswith("retry scheduled"):
                first_retry.set()

    logger = logging.getLogger("cardbridge.outbox")
    watch, level = Watch(), logger.level
    logger.addHandler(watch)
    logger.setLevel(logging.INFO)

    async def endpoint(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A Starlette-style handler: awaits the card without blocking the loop."""
        answer = await aio.issue_card(alipay, request, deadline_ms=30000)
        return 200, answer

    async def scenario() -> None:
        loop_thread = threading.get_ident()
        status, answer = await endpoint(ok_request)
        assert status == 200 and answer["cardNo"]
        assert native_threads and loop_thread not in native_threads, "the native call ran off the loop"

        emulator.push_fault("unknown")  # one U, then a backoff wait of at least 1 s
        task = asyncio.create_task(endpoint(slow_request))
        await asyncio.get_running_loop().run_in_executor(None, first_retry.wait, 30)
        assert not task.done(), "the loop kept running while the call waited to retry"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(scenario())
    finally:
        logger.removeHandler(watch)
        logger.setLevel(level)
    assert emulator.hits("PY-AIO-2") == 1, "no attempt after the cancellation"
    metrics = alipay.metrics()
    assert (metrics["pending_entries"], metrics["outcomes_unknown"]) == (1, 1), "left pending"
