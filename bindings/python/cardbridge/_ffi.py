"""Finds and loads the native cardbridge library (ffi-conventions.md §8.1, §7).

The library ships inside the package as
`cardbridge/_native/<platform>-<machine>/_libcardbridge.so` (`.dylib` on macOS,
`_cardbridge.dll` on Windows); `CARDBRIDGE_LIBRARY_PATH` points elsewhere for
development builds. `ctypes.CDLL` releases the GIL during every foreign call,
so slow network calls do not block other Python threads.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from ._platform import library_filename, platform_tag
from ._version import __version__

__all__ = ["dll", "library_path", "platform_tag", "library_filename", "check_version"]

ENV_LIBRARY_PATH = "CARDBRIDGE_LIBRARY_PATH"


def bundled_library_path() -> Path:
    """Where the package keeps its native library for this platform."""
    return Path(__file__).resolve().parent / "_native" / platform_tag() / library_filename()


def check_version(reported: str, expected: str) -> None:
    """Raises ImportError unless the library reports exactly `cardbridge/<expected>`
    (§7: the package and the library it loads carry the same version)."""
    if reported != f"cardbridge/{expected}":
        raise ImportError(
            f"cardbridge: the native library at {library_path} reports {reported!r}, but this "
            f"Python package is version {expected}; install matching versions "
            f"(or fix {ENV_LIBRARY_PATH})"
        )


def _load() -> tuple[ctypes.CDLL, Path]:
    override = os.environ.get(ENV_LIBRARY_PATH)
    path = Path(override) if override else bundled_library_path()
    if not path.is_file():
        origin = f"{ENV_LIBRARY_PATH} points to" if override else "expected the bundled library at"
        raise ImportError(
            f"cardbridge: no native library for platform tag {platform_tag()!r}: {origin} {path}, "
            f"which does not exist. Install a wheel built for this platform, or set "
            f"{ENV_LIBRARY_PATH} to a built libcardbridge (cargo build --release)."
        )
    try:
        return ctypes.CDLL(str(path)), path
    except OSError as e:
        raise ImportError(f"cardbridge: cannot load the native library {path} ({platform_tag()}): {e}") from e


dll, library_path = _load()


def _library_version() -> str:
    try:
        fn = dll.cardbridge_version
    except AttributeError as e:
        raise ImportError(f"cardbridge: {library_path} is not a cardbridge library: {e}") from e
    fn.argtypes = []
    fn.restype = ctypes.c_char_p
    raw = fn()
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""


# Before any symbol is bound, so a stale library fails with a clear message
# rather than a missing-symbol error.
check_version(_library_version(), __version__)
