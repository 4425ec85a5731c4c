#!/usr/bin/env python3
"""Generates cardbridge/_bindings.py from include/cardbridge.h.

The header is preprocessed with `gcc -E` (against tiny stand-ins for the three
standard headers it includes, so pycparser never sees glibc's extensions) and
parsed with pycparser. Every function gets `argtypes` and `restype`; structs
become `ctypes.Structure` classes; enum constants and integer `#define`s
become module constants. Functions guarded by `#if defined(CARDBRIDGE_X)`
(feature-gated exports such as the `ffi-test` panic) are bound when the
loaded library has them and are listed in `OPTIONAL_SYMBOLS`.

Usage:
    python3 tools/gen_bindings.py            # rewrite cardbridge/_bindings.py
    python3 tools/gen_bindings.py --check    # exit 1 if the committed file is stale
    python3 tools/gen_bindings.py --stdout   # print the generated text

Needs gcc and pycparser (a development dependency only).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pycparser import c_ast, c_parser  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "cardbridge"
OUTPUT = PACKAGE / "_bindings.py"
DEFAULT_HEADER = HERE.parents[2] / "include" / "cardbridge.h"

# Stand-ins for <stdint.h>, <stddef.h> and <stdbool.h>: only the names the
# header may use, as plain typedefs the mapping below understands.
FAKE_HEADERS = {
    "stdint.h": "\n".join(
        f"typedef int {name};"
        for name in [
            "int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t",
            "uint32_t", "int64_t", "uint64_t", "intptr_t", "uintptr_t",
        ]
    ),
    "stddef.h": "typedef int size_t;\ntypedef int ptrdiff_t;\n#define NULL 0",
    "stdbool.h": "typedef int bool;\n#define true 1\n#define false 0",
}

# C scalar type names -> ctypes names. Typedefs from the fake headers resolve
# here by name, before their stand-in definitions are looked at.
SCALARS = {
    "int8_t": "ctypes.c_int8",
    "uint8_t": "ctypes.c_uint8",
    "int16_t": "ctypes.c_int16",
    "uint16_t": "ctypes.c_uint16",
    "int32_t": "ctypes.c_int32",
    "uint32_t": "ctypes.c_uint32",
    "int64_t": "ctypes.c_int64",
    "uint64_t": "ctypes.c_uint64",
    "intptr_t": "ctypes.c_ssize_t",
    "uintptr_t": "ctypes.c_size_t",
    "size_t": "ctypes.c_size_t",
    "ptrdiff_t": "ctypes.c_ssize_t",
    "bool": "ctypes.c_bool",
    "_Bool": "ctypes.c_bool",
    "char": "ctypes.c_char",
    "signed char": "ctypes.c_byte",
    "unsigned char": "ctypes.c_ubyte",
    "int": "ctypes.c_int",
    "unsigned int": "ctypes.c_uint",
    "long": "ctypes.c_long",
    "unsigned long": "ctypes.c_ulong",
    "long long": "ctypes.c_longlong",
    "unsigned long long": "ctypes.c_ulonglong",
    "float": "ctypes.c_float",
    "double": "ctypes.c_double",
}
# One-byte element types: a single-level pointer to one of them as a
# *parameter* becomes c_char_p, so Python passes `bytes` (+ length) directly.
BYTE_TYPES = {"char", "int8_t", "uint8_t", "signed char", "unsigned char"}
INT_TYPES = set(SCALARS) - {"bool", "_Bool", "float", "double", "char"}


@dataclass
class Function:
    name: str
    params: list[tuple[str, str]]  # (name, ctypes expression)
    restype: str  # ctypes expression or "None"
    annotation: str  # Python return annotation
    feature: str | None = None  # macro guarding an optional export


@dataclass
class Struct:
    name: str
    fields: list[tuple[str, str]] | None  # None: opaque


class Model:
    """What the header declares, in declaration order."""

    def __init__(self) -> None:
        self.typedefs: dict[str, c_ast.Node] = {}
        self.structs: dict[str, Struct] = {}
        self.enums: list[tuple[str, list[tuple[str, int]]]] = []
        self.functions: dict[str, Function] = {}


def preprocess(header: Path, defines: list[str]) -> str:
    """Runs `gcc -E` on the header; `__GNUC__` is undefined so the export and
    deprecation macros expand to nothing pycparser would choke on."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in FAKE_HEADERS.items():
            (Path(tmp) / name).write_text(text + "\n")
        cmd = ["gcc", "-E", "-P", "-std=c11", "-nostdinc", "-I", tmp, "-U__GNUC__"]
        cmd += [f"-D{d}" for d in defines]
        cmd.append(str(header))
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def type_name(node: c_ast.Node) -> str:
    """The C name of a TypeDecl's base type."""
    t = node.type
    if isinstance(t, c_ast.IdentifierType):
        return " ".join(t.names)
    if isinstance(t, (c_ast.Struct, c_ast.Enum)):
        return str(t.name)
    raise TypeError(f"unsupported type node {type(t).__name__}")


class Generator:
    def __init__(self, model: Model) -> None:
        self.model = model

    def scalar(self, name: str) -> str:
        if name in SCALARS:
            return SCALARS[name]
        if name in self.model.structs:
            return name
        if name in self.model.typedefs:
            return self.ctype(self.model.typedefs[name], param=False)
        raise TypeError(f"unknown type {name}")

    def base_name(self, node: c_ast.Node) -> str:
        """Resolves typedef chains to the underlying scalar or struct name."""
        name = type_name(node)
        while name not in SCALARS and name not in self.model.structs and name in self.model.typedefs:
            td = self.model.typedefs[name]
            if not isinstance(td, c_ast.TypeDecl):
                break
            name = type_name(td)
        return name

    def ctype(self, node: c_ast.Node, param: bool) -> str:
        if isinstance(node, c_ast.TypeDecl):
            return self.scalar(type_name(node))
        if isinstance(node, c_ast.PtrDecl):
            inner = node.type
            if isinstance(inner, c_ast.FuncDecl):
                # A callback type (the log callback): ctypes caches CFUNCTYPE
                # classes, so the wrapper's own CFUNCTYPE(...) is this type.
                ret, _ = self.restype(inner.type)
                args = [
                    self.ctype(p.type, param=False)
                    for p in (inner.args.params if inner.args else [])
                    if not isinstance(p, c_ast.Typename)
                ]
                return f"ctypes.CFUNCTYPE({', '.join([ret, *args])})"
            if param and isinstance(inner, c_ast.TypeDecl) and self.base_name(inner) in BYTE_TYPES:
                return "ctypes.c_char_p"
            if isinstance(inner, c_ast.TypeDecl) and type_name(inner) == "void":
                return "ctypes.c_void_p"
            return f"ctypes.POINTER({self.ctype(inner, param=False)})"
        if isinstance(node, c_ast.ArrayDecl):
            return f"({self.ctype(node.type, param=False)} * {node.dim.value})"
        raise TypeError(f"unsupported declarator {type(node).__name__}")

    def restype(self, node: c_ast.Node) -> tuple[str, str]:
        """(restype expression, Python annotation) of a return type."""
        if isinstance(node, c_ast.TypeDecl):
            name = type_name(node)
            if name == "void":
                return "None", "None"
            base = self.base_name(node)
            if base in ("bool", "_Bool"):
                return self.scalar(name), "bool"
            if base in INT_TYPES:
                return self.scalar(name), "int"
            return self.scalar(name), "Any"
        if isinstance(node, c_ast.PtrDecl) and isinstance(node.type, c_ast.TypeDecl):
            if self.base_name(node.type) == "char":
                # Static NUL-terminated strings (version, result names).
                return "ctypes.c_char_p", "Optional[bytes]"
        return self.ctype(node, param=False), "Any"


def collect(text: str) -> Model:
    ast = c_parser.CParser().parse(text, "cardbridge.h")
    model = Model()
    gen = Generator(model)
    for ext in ast.ext:
        if isinstance(ext, c_ast.Typedef):
            t = ext.type
            if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.Struct):
                struct = t.type
                if struct.name not in model.structs:
                    model.structs[struct.name] = Struct(struct.name, None)
                if struct.decls is not None:
                    model.structs[struct.name].fields = [
                        (d.name, gen.ctype(d.type, param=False)) for d in struct.decls
                    ]
                if ext.name != struct.name:
                    model.typedefs[ext.name] = t
                continue
            if ext.name in FAKE_TYPEDEF_NAMES:
                continue
            model.typedefs[ext.name] = t
        elif isinstance(ext, c_ast.Decl):
            t = ext.type
            if isinstance(t, c_ast.Enum) and t.values is not None:
                values: list[tuple[str, int]] = []
                for e in t.values.enumerators:
                    values.append((e.name, int(e.value.value, 0)))
                model.enums.append((t.name, values))
            elif isinstance(t, c_ast.Struct):
                if t.name not in model.structs:
                    model.structs[t.name] = Struct(t.name, None)
                if t.decls is not None:
                    model.structs[t.name].fields = [(d.name, gen.ctype(d.type, param=False)) for d in t.decls]
            elif isinstance(t, c_ast.FuncDecl):
                params: list[tuple[str, str]] = []
                for p in t.args.params if t.args else []:
                    if isinstance(p, c_ast.Typename):
                        continue  # `(void)`
                    params.append((p.name, gen.ctype(p.type, param=True)))
                restype, annotation = gen.restype(t.type)
                model.functions[ext.name] = Function(ext.name, params, restype, annotation)
    return model


FAKE_TYPEDEF_NAMES = {
    m.group(1) for text in FAKE_HEADERS.values() for m in re.finditer(r"typedef int (\w+);", text)
}


def feature_macros(header_text: str) -> list[str]:
    """Macros that gate optional exports: `#if defined(CARDBRIDGE_X)`."""
    seen: list[str] = []
    for m in re.finditer(r"^#\s*if\s+defined\((CARDBRIDGE_\w+)\)\s*$", header_text, re.M):
        if m.group(1) not in seen:
            seen.append(m.group(1))
    return seen


def integer_defines(header_text: str) -> list[tuple[str, int]]:
    """Object-like `#define CARDBRIDGE_X <integer literal>` lines, in order
    (pycparser never sees macros)."""
    out = []
    for m in re.finditer(r"^#define (CARDBRIDGE_\w+) (-?(?:0[xX][0-9a-fA-F]+|\d+))[uUlL]*\s*$", header_text, re.M):
        out.append((m.group(1), int(m.group(2), 0)))
    return out


def wrapper(f: Function) -> list[str]:
    """The binding of one function: the foreign pointer with argtypes and
    restype, and a typed Python function calling it."""
    raw = f"_{f.name}"
    args = ", ".join(n for n, _ in f.params)
    sig = ", ".join(f"{n}: Any" for n, _ in f.params)
    lines: list[str] = []
    if f.params:
        setup = [f"{raw}.argtypes = ["] + [f"    {t},  # {n}" for n, t in f.params] + ["]"]
    else:
        setup = [f"{raw}.argtypes = []"]
    setup.append(f"{raw}.restype = {f.restype}")
    if f.feature is None:
        lines.append(f"{raw}: Any = dll.{f.name}")
        lines += setup
    else:
        lines += [
            "try:",
            f"    {raw}: Any = dll.{f.name}",
            "except AttributeError:  # the library was built without this feature",
            f"    {raw} = None",
            "else:",
        ]
        lines += [f"    {s}" for s in setup]
    lines.append("")
    lines.append("")
    header = f"def {f.name}({sig}) -> {f.annotation}:"
    if len(header) <= 100:
        lines.append(header)
    else:
        lines.append(f"def {f.name}(")
        lines += [f"    {n}: Any," for n, _ in f.params]
        lines.append(f") -> {f.annotation}:")
    if f.feature is not None:
        lines.append(f"    if {raw} is None:")
        lines.append(f"        raise NotImplementedError(\"{f.name}: library built without {f.feature}\")")
    call = f"{raw}({args})"
    if len(call) > 80:
        call = f"{raw}(\n        " + ",\n        ".join(n for n, _ in f.params) + ",\n    )"
    if f.annotation == "None":
        lines.append(f"    {call}")
    elif f.annotation == "int":
        lines.append(f"    return int({call})")
    elif f.annotation == "bool":
        lines.append(f"    return bool({call})")
    elif f.annotation == "Optional[bytes]":
        lines.append(f"    result: Optional[bytes] = {call}")
        lines.append("    return result")
    else:
        lines.append(f"    return {call}")
    lines.append("")
    lines.append("")
    return lines


def generate(header: Path) -> str:
    header_text = header.read_text()
    features = feature_macros(header_text)
    base = collect(preprocess(header, []))
    full = collect(preprocess(header, features))
    for name, f in full.functions.items():
        if name in base.functions:
            continue
        # Which single macro brings it in, for the error message.
        for macro in features:
            if name in collect(preprocess(header, [macro])).functions:
                f.feature = macro
                break
        else:
            f.feature = " + ".join(features)

    out = [
        "# Generated by bindings/python/tools/gen_bindings.py from include/cardbridge.h.",
        "# DO NOT EDIT: regenerate with `python3 bindings/python/tools/gen_bindings.py`;",
        "# the test suite fails when this file is stale.",
        '"""Raw ctypes declarations of the cardbridge C ABI (generated)."""',
        "",
        "import ctypes",
        "from typing import Any, Optional",
        "",
        "from ._ffi import dll",
        "",
        "# ---- #define constants",
        "",
    ]
    for name, value in integer_defines(header_text):
        out.append(f"{name} = {value}")
    out += ["", "# ---- enums", ""]
    for enum_name, values in full.enums:
        out.append(f"# enum {enum_name}")
        for name, value in values:
            out.append(f"{name} = {value}")
        out.append("")
    out += ["# ---- typedefs of scalar types", ""]
    gen = Generator(full)
    def is_callback(node: c_ast.Node) -> bool:
        return isinstance(node, c_ast.PtrDecl) and isinstance(node.type, c_ast.FuncDecl)

    for name, node in full.typedefs.items():
        if not is_callback(node):
            out.append(f"{name} = {gen.ctype(node, param=False)}")
    out += ["", "", "# ---- structs (opaque handles have no fields)", ""]
    for s in full.structs.values():
        out.append("")
        out.append(f"class {s.name}(ctypes.Structure):")
        if s.fields is None:
            out.append("    pass")
        else:
            out.append("    _fields_ = [")
            for fname, ftype in s.fields:
                out.append(f'        ("{fname}", {ftype}),')
            out.append("    ]")
        out.append("")
    callbacks = [(name, node) for name, node in full.typedefs.items() if is_callback(node)]
    if callbacks:
        out += ["", "# ---- callback types (after the structs they point to)", ""]
        for name, node in callbacks:
            out.append(f"{name} = {gen.ctype(node, param=False)}")
    out += ["", "# Exports present only when the library was built with a feature, by macro.", ""]
    optional = {n: f.feature for n, f in full.functions.items() if f.feature is not None}
    out.append("OPTIONAL_SYMBOLS = {")
    for name, feature in optional.items():
        out.append(f'    "{name}": "{feature}",')
    out.append("}")
    out += ["", "# Every function the header declares, in header order.", ""]
    out.append("SYMBOLS = (")
    for name in full.functions:
        out.append(f'    "{name}",')
    out.append(")")
    out += ["", "", "# ---- functions", "", ""]
    for f in full.functions.values():
        out += wrapper(f)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--header", type=Path, default=DEFAULT_HEADER)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fail if the output file is stale")
    mode.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = parser.parse_args()
    text = generate(args.header)
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python3 bindings/python/tools/gen_bindings.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
