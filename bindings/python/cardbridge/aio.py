"""asyncio front-ends: the blocking native calls run in the loop's default
executor (a thread), so a FastAPI/Starlette handler keeps serving while
`issueCard` or `confirm` retries.

Cancelling the awaiting task (a client disconnect, `asyncio.wait_for`) sets
the call's `CancelToken`: the native call starts no further attempt, the
request stays pending in the outbox (a later call with the same request, or
a resume, completes it), and `asyncio.CancelledError` propagates as usual.
`deadline_ms` bounds the retries as for the blocking methods.

    from cardbridge import aio

    async def open_card(request):                 # a Starlette/FastAPI endpoint
        answer = await aio.issue_card(alipay, issue_request, deadline_ms=5000)
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from ._options import CancelToken
from ._util import JsonInput
from .alipayplus import AlipayPlus
from .wechatpay import WechatPay

__all__ = ["issue_card", "confirm", "update_user_card"]


async def _run(call: Callable[..., dict[str, Any]], deadline_ms: int | None) -> dict[str, Any]:
    token = CancelToken()
    running = asyncio.get_running_loop().run_in_executor(
        None, functools.partial(call, deadline_ms=deadline_ms, cancel=token)
    )
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        token.cancel()
        # The native call returns before its next attempt; wait for it so the
        # entry is released (pending) before the cancellation goes on.
        await asyncio.wait([running])
        raise
    finally:
        if running.done():
            token.close()
        else:  # only when cancelled twice: free it once the call returns
            running.add_done_callback(lambda _: token.close())


async def issue_card(alipay: AlipayPlus, request: JsonInput, *, deadline_ms: int | None = None) -> dict[str, Any]:
    """`AlipayPlus.issue_card` off the event loop, cancellable."""
    return await _run(functools.partial(alipay.issue_card, request), deadline_ms)


async def confirm(wechat: WechatPay, input: JsonInput, *, deadline_ms: int | None = None) -> dict[str, Any]:
    """`WechatPay.confirm` off the event loop, cancellable."""
    return await _run(functools.partial(wechat.confirm, input), deadline_ms)


async def update_user_card(wechat: WechatPay, input: JsonInput, *, deadline_ms: int | None = None) -> dict[str, Any]:
    """`WechatPay.update_user_card` off the event loop, cancellable."""
    return await _run(functools.partial(wechat.update_user_card, input), deadline_ms)
