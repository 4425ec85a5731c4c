"""Per-call options (a deadline overriding the configured retry budget, a
cancel token) for `issue_card`, `confirm` and `update_user_card`."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from . import _bindings as b
from ._managed import Managed
from ._util import integer, invoke


class CancelToken(Managed[Any]):
    """Set it (`cancel()`, from any thread) and the calls given it start no
    further attempt: they raise `RemoteUnknown` and leave their outbox entry
    pending, to be completed by a later call with the same request or a resume.
    `cardbridge.aio` uses one per call to turn asyncio cancellation into this."""

    def __init__(self) -> None:
        handle = ctypes.POINTER(b.cardbridge_cancel_token)()
        invoke(b.cardbridge_cancel_token_new, ctypes.byref(handle))
        super().__init__(handle)

    def cancel(self) -> None:
        """Stops the calls using this token before their next attempt."""
        with self._borrow() as t:
            b.cardbridge_cancel_token_cancel(t)

    @property
    def cancelled(self) -> bool:
        """Whether `cancel()` was called."""
        with self._borrow() as t:
            return bool(b.cardbridge_cancel_token_is_cancelled(t))

    def _delete(self, handle: Any) -> None:
        b.cardbridge_cancel_token_free(handle)


@contextmanager
def call_options(deadline_ms: int | None, cancel: CancelToken | None) -> Iterator[Any]:
    """A `cardbridge_call_options *` for one native call (None: the defaults);
    the token is kept alive until the block ends."""
    if deadline_ms is None and cancel is None:
        yield None
        return
    deadline = 0 if deadline_ms is None else integer(deadline_ms, "deadline_ms")
    if deadline_ms is not None and deadline <= 0:
        raise ValueError("deadline_ms must be a positive number of milliseconds")
    with cancel._borrow() if cancel is not None else nullcontext(None) as token:
        options = b.cardbridge_call_options(deadline, token)
        yield ctypes.byref(options)
