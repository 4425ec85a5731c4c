"""Bring your own transport: `issueCard` and WeChat Pay `confirm` sent over
the host's own HTTP stack (requests, httpx, a corporate proxy) while
cardbridge keeps the outbox, signing, verification and retry rules.

    step = alipay.prepare_issue_card(request)        # recorded, then signed
    while isinstance(step, Prepared):
        time.sleep(step.wait_ms / 1000)              # the backoff before a retry
        r = requests.request(step.method, step.url, headers=dict(step.headers), data=step.body)
        step = alipay.complete_issue_card(step, status=r.status_code,
                                          headers=list(r.headers.items()), body=r.content)
    answer = step                                    # the verified answer (a dict)

`AlipayPlus.issue_card_over(request, send)` and `WechatPay.confirm_over(input,
send)` run that loop with a `send(prepared)` of yours returning `(status,
headers, body)` or a `Reply` for a transport failure.
"""

from __future__ import annotations

import ctypes
import json
import time
from collections.abc import Callable
from enum import IntEnum
from typing import Any, Union

from . import _bindings as b
from ._managed import Managed
from ._util import HeaderArray, HeadersInput, body as _body, header_pairs, invoke, read_header, take_bytes, view
from .errors import AlreadyUsedError

PreparedPtr = ctypes.POINTER(b.cardbridge_prepared)


class Purpose(IntEnum):
    """What a prepared request is for."""

    #: The request itself (a first send or a re-send of the stored bytes).
    SEND = b.CARDBRIDGE_PURPOSE_SEND
    #: A read-back finding out whether an earlier, ambiguous send took effect.
    READ_BACK = b.CARDBRIDGE_PURPOSE_READ_BACK


class Reply(IntEnum):
    """What the host's exchange came to, when no answer arrived."""

    #: An answer arrived (pass status, headers, body instead).
    ANSWERED = b.CARDBRIDGE_REPLY_ANSWERED
    #: No connection was made: the request certainly did not arrive.
    NOT_SENT = b.CARDBRIDGE_REPLY_NOT_SENT
    #: The connection broke: the request may have arrived.
    NO_ANSWER = b.CARDBRIDGE_REPLY_NO_ANSWER
    #: No answer in time: the request may have arrived.
    TIMED_OUT = b.CARDBRIDGE_REPLY_TIMED_OUT


class Prepared(Managed[Any]):
    """A signed request recorded in the outbox and leased to this caller.

    Send `method` to `url` with every header in `headers` unchanged and
    `body` byte for byte, after waiting `wait_ms`; then hand the answer to
    the matching `complete_*` (which consumes this object). Closing it
    without completing releases the lease; the request stays pending.
    """

    _exclusive = True
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    wait_ms: int
    purpose: Purpose
    outbox_id: str

    def __init__(self, handle: Any) -> None:
        super().__init__(handle)
        text = ctypes.POINTER(ctypes.c_char)()
        size = ctypes.c_size_t()
        invoke(b.cardbridge_prepared_method, handle, ctypes.byref(text), ctypes.byref(size))
        self.method = view(text, size.value).decode("utf-8")
        invoke(b.cardbridge_prepared_url, handle, ctypes.byref(text), ctypes.byref(size))
        self.url = view(text, size.value).decode("utf-8")
        invoke(b.cardbridge_prepared_outbox_id, handle, ctypes.byref(text), ctypes.byref(size))
        self.outbox_id = view(text, size.value).decode("utf-8")
        self.headers = []
        h = b.cardbridge_header()
        for i in range(b.cardbridge_prepared_header_count(handle)):
            invoke(b.cardbridge_prepared_header, handle, i, ctypes.byref(h))
            self.headers.append(read_header(h))
        data = ctypes.POINTER(ctypes.c_uint8)()
        invoke(b.cardbridge_prepared_body, handle, ctypes.byref(data), ctypes.byref(size))
        self.body = view(data, size.value)
        self.wait_ms = b.cardbridge_prepared_wait_ms(handle)
        self.purpose = Purpose(b.cardbridge_prepared_purpose(handle))

    def _delete(self, handle: Any) -> None:
        b.cardbridge_prepared_free(handle)

    def _take(self) -> Any:
        """The handle, given up to a consuming call (AlreadyUsedError after that or a close)."""
        with self._lock:
            handle = self._handle
            if handle is None or self._closing or self._users:
                raise AlreadyUsedError(
                    "prepared: already completed or closed",
                    code=b.CARDBRIDGE_RESULT_ALREADY_USED,
                    name="CARDBRIDGE_RESULT_ALREADY_USED",
                )
            self._handle = None
        return handle

    def __repr__(self) -> str:
        names = [n for n, _ in self.headers]
        return f"Prepared({self.purpose.name}, {self.method} {self.url}, headers={names}, body={len(self.body)} bytes)"


#: What `send` returns: `(status, headers, body)` or a `Reply` failure.
SendResult = Union[tuple[int, HeadersInput, bytes], Reply]
Step = Union["Prepared", dict[str, Any]]


def _prepare(fn: Any, owner: Managed[Any], data: bytes) -> Step:
    out = b.cardbridge_bytes()
    prepared = PreparedPtr()
    with owner._borrow() as handle:
        invoke(fn, handle, data, len(data), ctypes.byref(out), ctypes.byref(prepared))
    return _step(out, prepared)


def _step(out: b.cardbridge_bytes, prepared: Any) -> Step:
    if prepared:
        take_bytes(out)
        return Prepared(prepared)
    answer: dict[str, Any] = json.loads(take_bytes(out))
    return answer


def _complete(
    fn: Any,
    owner: Managed[Any],
    prepared: Prepared,
    reply: Reply,
    status: int,
    headers: HeadersInput,
    body: bytes,
) -> Step:
    if not isinstance(prepared, Prepared):
        raise TypeError(f"prepared must be a Prepared, not {type(prepared).__name__}")
    reply = Reply(reply)
    array = HeaderArray(header_pairs(headers))
    raw = _body(body)
    out = b.cardbridge_bytes()
    nxt = PreparedPtr()
    with owner._borrow() as handle:
        invoke(
            fn,
            handle,
            prepared._take(),
            int(reply),
            int(status),
            array.array,
            array.count,
            raw,
            len(raw),
            ctypes.byref(out),
            ctypes.byref(nxt),
        )
    return _step(out, nxt)


def drive(
    step: Step,
    complete: Callable[..., Step],
    send: Callable[[Prepared], SendResult],
) -> dict[str, Any]:
    """Runs prepare's `step` to the end with the host's `send`."""
    while isinstance(step, Prepared):
        if step.wait_ms:
            time.sleep(step.wait_ms / 1000)
        got = send(step)
        if isinstance(got, Reply):
            step = complete(step, reply=got)
        else:
            status, headers, body = got
            step = complete(step, status=status, headers=headers, body=body)
    return step
