"""Threads: one AlipayPlus serving many threads, and the GIL released during
native calls (ctypes.CDLL)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import cardbridge
from cardbridge import AlipayPlus, Call, Response
from cardbridge.testing import Emulator, sample_registration

from conftest import NOTIFY, REGISTER_DATE, CARD_FIELDS, result_of, send

THREADS = 8
PER_THREAD = 6


def test_eight_threads_handle_notifications_on_one_integration(
    alipay: AlipayPlus, driver: Emulator
) -> None:
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> list[tuple[str, bytes, bytes]]:
        barrier.wait()
        out = []
        for i in range(PER_THREAD):
            # Half the ids are shared between two threads: concurrent duplicates.
            request_id = f"PY-THREAD-{n // 2}-{i}"
            request = driver.request(NOTIFY, sample_registration(request_id))
            outcome = send(alipay, request)
            if isinstance(outcome, Call):
                with outcome:
                    response = outcome.finish()
            else:
                response = outcome
            assert driver.verify_answer(request, response)
            out.append((request_id, result_of(response)["resultStatus"].encode(), response.body))
        return out

    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for batch in pool.map(worker, range(THREADS)) for r in batch]

    assert len(results) == THREADS * PER_THREAD
    bodies: dict[str, set[bytes]] = {}
    for request_id, status, body in results:
        # A duplicate racing its original gets U ("in progress, retry") or the same S.
        assert status in (b"S", b"U"), (request_id, body)
        if status == b"S":
            bodies.setdefault(request_id, set()).add(body)
    for request_id, distinct in bodies.items():
        assert len(distinct) == 1, f"{request_id}: duplicates must get identical bytes"
    # Every id ends with a stored S answer, replayed byte for byte.
    for request_id in {r[0] for r in results}:
        replay = send(alipay, driver.request(NOTIFY, sample_registration(request_id)))
        if isinstance(replay, Call):  # both racers answered U: the claim is free again
            with replay:
                replay = replay.finish()
        assert isinstance(replay, Response)
        assert result_of(replay)["resultStatus"] == "S"
        if request_id in bodies:
            assert bodies[request_id] == {replay.body}


def test_native_calls_release_the_gil(alipay: AlipayPlus, emulator: Emulator) -> None:
    request = alipay.build_issue_card(
        sample_registration("PY-GIL-1"), "M-1", REGISTER_DATE, CARD_FIELDS
    )
    emulator.push_fault("delay", delay_ms=3000)
    answer: dict[str, object] = {}
    worker = threading.Thread(target=lambda: answer.update(alipay.issue_card(request)))
    worker.start()
    # The emulator counts the request on arrival, then holds its answer 3 s:
    # from here on the worker sits inside the native call.
    while emulator.hits("PY-GIL-1") == 0:
        assert worker.is_alive()
    # ~0.1 s of pure Python. Had the native call kept the GIL, this thread
    # could only have got here after the call returned, with the worker done.
    total = 0
    for i in range(2_000_000):
        total += i
    assert worker.is_alive(), "the main thread ran Python while the worker was inside the library"
    worker.join()
    assert answer["cardNo"]
