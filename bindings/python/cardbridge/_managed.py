"""Ownership of native handles (ffi-conventions.md §8.3, after wasmtime-py's `_managed.py`)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Generic, Self, TypeVar

P = TypeVar("P")


class Managed(ABC, Generic[P]):
    """Owns one native handle (a ctypes pointer) and frees it exactly once.

    * `_ptr()` raises `ValueError("closed")` after `close()`;
    * `close()` is idempotent, and also runs from `__exit__` and `__del__`;
    * `_borrow()` keeps the handle alive for the length of a native call: a
      `close()` from another thread meanwhile frees it when the call returns
      (the C ABI requires freeing only after every call using it returned).
      Subclasses whose handle is single-owner (`_exclusive = True`, Box-backed
      objects such as a pending call) also serialise calls on it.
    """

    _exclusive = False
    _handle: P | None = None

    def __init__(self, handle: P) -> None:
        self._lock = threading.Lock()  # guards _handle, _users, _closing
        self._use_lock = threading.Lock()  # held during calls on exclusive handles
        self._users = 0
        self._closing = False
        self._handle = handle

    @abstractmethod
    def _delete(self, handle: P) -> None:
        """Releases the native handle (the matching `cardbridge_*_free`)."""

    def _ptr(self) -> P:
        """The live handle; `ValueError("closed")` once closed."""
        handle = self._handle
        if handle is None or self._closing:
            raise ValueError("closed")
        return handle

    @contextmanager
    def _borrow(self) -> Iterator[P]:
        """The live handle, protected from being freed until the block ends."""
        with self._lock:
            handle = self._ptr()
            self._users += 1
        try:
            if self._exclusive:
                with self._use_lock:
                    yield handle
            else:
                yield handle
        finally:
            with self._lock:
                self._users -= 1
                release = self._closing and self._users == 0
            if release:
                self._free_now()

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._handle is None or self._closing

    def close(self) -> None:
        """Frees the native object (at once, or when the calls using it return). Idempotent."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ never ran
            return
        with lock:
            if self._handle is None or self._closing:
                return
            self._closing = True
            release = self._users == 0
        if release:
            self._free_now()

    def _free_now(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            self._delete(handle)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer (e.g. at interpreter exit)
            pass
