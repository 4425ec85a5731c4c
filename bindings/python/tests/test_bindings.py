"""The generated raw layer (§8.2): fresh, complete (§6.3 symbol coverage) and
declared with argtypes and restype for every function."""

from __future__ import annotations

import ctypes
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from cardbridge import _bindings, _ffi

from conftest import REPO

HEADER = REPO / "include" / "cardbridge.h"
SOURCE_BINDINGS = REPO / "bindings" / "python" / "cardbridge" / "_bindings.py"
GENERATOR = REPO / "bindings" / "python" / "tools" / "gen_bindings.py"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_bindings", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_bindings"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def header_prototypes() -> list[str]:
    """Every function declared with CARDBRIDGE_API, read from the header text
    independently of the generator."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    names = re.findall(r"CARDBRIDGE_API\b[^;{]*?\b(cardbridge_\w+)\s*\(", text)
    assert len(names) >= 50, names
    return names


def test_committed_bindings_are_fresh() -> None:
    generated = load_generator().generate(HEADER)
    committed = SOURCE_BINDINGS.read_text()
    assert generated == committed, (
        "bindings/python/cardbridge/_bindings.py is stale: run "
        "python3 bindings/python/tools/gen_bindings.py and commit the result"
    )


def test_installed_bindings_are_the_committed_ones() -> None:
    assert Path(_bindings.__file__).read_text() == SOURCE_BINDINGS.read_text()


def test_every_header_prototype_has_a_binding() -> None:
    prototypes = header_prototypes()
    missing = [n for n in prototypes if n not in _bindings.SYMBOLS or not callable(getattr(_bindings, n, None))]
    assert missing == [], f"header functions without a Python binding: {missing}"
    assert sorted(_bindings.SYMBOLS) == sorted(prototypes)


def test_every_required_symbol_is_exported_with_argtypes_and_restype() -> None:
    for name in _bindings.SYMBOLS:
        raw = getattr(_bindings, f"_{name}")
        if raw is None:
            assert name in _bindings.OPTIONAL_SYMBOLS, f"{name} is missing from {_ffi.library_path}"
            continue
        assert raw.argtypes is not None, name
        # The default restype is c_int, which truncates pointers on 64-bit.
        assert raw.restype is not ctypes.c_int, name


def test_feature_gated_exports_are_optional() -> None:
    assert _bindings.OPTIONAL_SYMBOLS == {
        "cardbridge_test_panic": "CARDBRIDGE_FFI_TEST",
        "cardbridge_test_alipayplus_set_clock": "CARDBRIDGE_FFI_TEST",
        "cardbridge_test_wechatpay_set_clock": "CARDBRIDGE_FFI_TEST",
    }


def test_constants_match_the_header() -> None:
    text = HEADER.read_text()
    for name, value in re.findall(r"^#define (CARDBRIDGE_\w+) (\d+)$", text, re.M):
        assert getattr(_bindings, name) == int(value), name
    for name, value in re.findall(r"^\s+(CARDBRIDGE_RESULT_\w+) = (\d+),$", text, re.M):
        assert getattr(_bindings, name) == int(value), name
    assert _bindings.CARDBRIDGE_RESULT_REMOTE_UNKNOWN == 501


def test_struct_layouts_match_c() -> None:
    size_t = ctypes.sizeof(ctypes.c_size_t)
    ptr = ctypes.sizeof(ctypes.c_void_p)
    assert ctypes.sizeof(_bindings.cardbridge_bytes) == ptr + size_t
    assert ctypes.sizeof(_bindings.cardbridge_header) == 2 * (ptr + size_t)
    assert [f[0] for f in _bindings.cardbridge_header._fields_] == ["name", "name_len", "value", "value_len"]
