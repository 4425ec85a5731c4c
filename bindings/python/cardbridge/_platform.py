"""Platform naming shared by the loader and the build (setup.py loads this
file on its own, so it must not import the rest of the package)."""

from __future__ import annotations

import platform
import sys


def platform_tag() -> str:
    """`<platform>-<machine>` of this interpreter, e.g. `linux-x86_64`: the
    folder under `cardbridge/_native/` holding the matching library."""
    machine = platform.machine().lower()
    # Windows says AMD64/ARM64, macOS arm64: one spelling per architecture.
    machine = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return f"{sys.platform}-{machine}"


def library_filename(system: str = sys.platform) -> str:
    """The bundled library's file name (leading underscore: never mistaken for
    a system-wide libcardbridge)."""
    if system == "win32":
        return "_cardbridge.dll"
    if system == "darwin":
        return "_libcardbridge.dylib"
    return "_libcardbridge.so"


def cargo_filename(system: str = sys.platform) -> str:
    """The file name cargo gives the cdylib."""
    if system == "win32":
        return "cardbridge.dll"
    if system == "darwin":
        return "libcardbridge.dylib"
    return "libcardbridge.so"
