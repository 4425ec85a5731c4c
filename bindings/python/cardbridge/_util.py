"""Argument conversion and the calling convention shared by the wrappers
(ffi-conventions.md §8.4): text in as UTF-8 + explicit length, bodies as raw
bytes + length, library buffers copied out and freed in `finally`."""

from __future__ import annotations

import ctypes
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

from . import _bindings as b
from .errors import from_result

ErrorPtr = ctypes.POINTER(b.cardbridge_error)

#: JSON given either as a Python value (dict or list) or as JSON text.
JsonInput = Union[Mapping[str, Any], Sequence[Any], str, bytes, bytearray]
#: HTTP headers: a mapping or anything with `.items()` (http.server, Flask,
#: Django headers), or a sequence of (name, value) pairs.
HeadersInput = Union[Mapping[str, str], Iterable[tuple[str, str]], Any]


def invoke(fn: Any, *args: Any) -> None:
    """Calls a fallible export with a trailing `cardbridge_error **` and raises
    the matching `CardbridgeError` when it does not return OK."""
    err = ErrorPtr()
    rc = fn(*args, ctypes.byref(err))
    if rc != b.CARDBRIDGE_RESULT_OK:
        raise from_result(rc, err)


def text(value: object, what: str) -> bytes:
    """UTF-8 bytes of a `str` argument; TypeError for anything else."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    return value.encode("utf-8")


def body(value: object, what: str = "body") -> bytes:
    """Raw bytes of a bytes-like argument; TypeError for anything else (a
    signature covers exact bytes, so text is not re-encoded silently)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes-like (the raw body), not {type(value).__name__}")


def json_bytes(value: object, what: str) -> bytes:
    """JSON text for a dict/list (compact, UTF-8) or a str/bytes already in JSON."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raise TypeError(f"{what} must be a dict, list, str or bytes of JSON, not {type(value).__name__}")


def integer(value: object, what: str) -> int:
    """An int argument (bool refused); TypeError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be int, not {type(value).__name__}")
    return value


def now_ms(value: object = None) -> int:
    """`value` as Unix milliseconds, or the current time when None."""
    if value is None:
        return time.time_ns() // 1_000_000
    return integer(value, "now_ms")


def take_bytes(out: b.cardbridge_bytes) -> bytes:
    """Copies a library-owned buffer and frees it."""
    try:
        return ctypes.string_at(out.data, out.len) if out.data else b""
    finally:
        b.cardbridge_bytes_free(ctypes.byref(out))


def view(ptr: Any, length: int) -> bytes:
    """Copies a borrowed view (pointer + length, not NUL-terminated)."""
    return ctypes.string_at(ptr, length) if length else b""


def header_pairs(headers: HeadersInput) -> list[tuple[str, str]]:
    """(name, value) pairs, in order, from any common header container."""
    items = headers.items() if hasattr(headers, "items") else headers
    pairs = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError("headers must be a mapping or a sequence of (name, value) pairs")
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("header names and values must be str")
        pairs.append((name, value))
    return pairs


class HeaderArray:
    """A `cardbridge_header[]` borrowing views of encoded names and values;
    keep the object alive for the duration of the native call."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._keep: list[bytes] = []
        self.count = len(pairs)
        self.array = (b.cardbridge_header * max(self.count, 1))()
        for i, (name, value) in enumerate(pairs):
            n, v = name.encode("utf-8"), value.encode("utf-8")
            self._keep += [n, v]
            self.array[i].name = ctypes.cast(ctypes.c_char_p(n), ctypes.POINTER(ctypes.c_char))
            self.array[i].name_len = len(n)
            self.array[i].value = ctypes.cast(ctypes.c_char_p(v), ctypes.POINTER(ctypes.c_char))
            self.array[i].value_len = len(v)


def read_header(h: b.cardbridge_header) -> tuple[str, str]:
    """Decodes one header view filled by the library."""
    return (
        view(h.name, h.name_len).decode("utf-8"),
        view(h.value, h.value_len).decode("utf-8"),
    )
