"""The native library's log events, sent to the standard `logging` module.

Installed when `cardbridge` is imported: every event goes to the logger named
after its target (`cardbridge::outbox` → `cardbridge.outbox`, also
`cardbridge.inbound`, `cardbridge.callback`, `cardbridge.certificates`,
`cardbridge.store`), at ERROR, WARNING, INFO or DEBUG (TRACE: level 5). The
message reads `outbound attempt kind=… out_id=… attempt=2 outcome=succeeded …`;
the fields are also on the record as `record.cardbridge_fields` (a dict, numbers
as int) for structured handlers. Events hold identifiers, labels and numbers
only: never bodies, keys, signatures or personal data.

Events arrive synchronously, on the thread that made the native call. A
handler that raises is ignored (logging must never break a payment flow); a
handler that calls back into cardbridge does not receive the events that call
causes.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
from typing import Any

from . import _bindings as b
from ._util import invoke

_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: 5}


def _text(ptr: Any, length: int) -> str:
    return ctypes.string_at(ptr, length).decode("utf-8", "replace") if length else ""


def _on_event(_user_data: Any, event_ptr: Any) -> None:
    try:
        e = event_ptr.contents
        level = _LEVELS.get(e.level, logging.DEBUG)
        logger = logging.getLogger(_text(e.target, e.target_len).replace("::", "."))
        if not logger.isEnabledFor(level):
            return
        fields: dict[str, Any] = json.loads(_text(e.fields_json, e.fields_json_len) or "{}")
        message = _text(e.message, e.message_len)
        detail = "".join(f" {k}={v}" for k, v in fields.items())
        logger.log(level, "%s%s", message, detail, extra={"cardbridge_fields": fields})
    except Exception:  # noqa: BLE001 - never let logging break the native call
        pass


_CALLBACK = b.cardbridge_log_callback(_on_event)


def install() -> None:
    """Routes every native event to `logging` (done on import; the `logging`
    configuration decides what is kept)."""
    invoke(b.cardbridge_set_log_callback, 5, _CALLBACK, None)
    # No call into Python once the interpreter is shutting down.
    atexit.register(uninstall)


def uninstall() -> None:
    """Stops routing native events to `logging` (done at interpreter exit)."""
    invoke(b.cardbridge_set_log_callback, 5, b.cardbridge_log_callback(), None)  # NULL: removed
