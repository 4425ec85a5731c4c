"""Build glue: puts the native library and the `cardbridge` command-line tool
(the binary; `cardbridge.testing` runs its emulator) into the package and tags the wheel
`py3-none-<platform>` (ctypes needs no CPython ABI; the library is per platform).
`scripts/package` then retags the wheel with `auditwheel repair` to the lowest
manylinux tag the library satisfies.

The library is, in order:
  1. $CARDBRIDGE_NATIVE_LIB, a built libcardbridge.so / .dylib / cardbridge.dll
     (`scripts/package` passes its stripped release build);
  2. otherwise built from source: `cargo build --release --lib --bin cardbridge --locked` in the
     Rust crate, which is `rust/` inside the sdist or the repository around this
     directory. This needs Rust (cargo and rustc >= the crate's rust-version),
     a C compiler, and crates.io (or a vendored registry).
The library is never taken from target/debug, and never one built with the
`ffi-test` feature (it exports the deliberate-panic `cardbridge_test_panic`):
such a library is refused unless CARDBRIDGE_ALLOW_TEST_LIBRARY=1, which only the
test suite (tests/run.sh) sets.
The binary is $CARDBRIDGE_NATIVE_BIN, else `cardbridge` next to the library (a cargo
target directory), else built from source with the library. It goes to
`cardbridge/_bin/` and the wheel's `cardbridge` console command runs it.
$CARDBRIDGE_NATIVE_TAG overrides the `<platform>-<machine>` folder when
packaging a library for another platform (with `--plat-name`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# Inside an sdist the crate sits next to this file (see sdist_with_crate).
SDIST_CRATE = HERE / "rust"

# The naming rules of the loader, without importing the package (which would load the library).
_spec = importlib.util.spec_from_file_location("_cardbridge_platform", HERE / "cardbridge" / "_platform.py")
assert _spec is not None and _spec.loader is not None
_platform = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_platform)

# An exported symbol name sits between NUL bytes in the dynamic string table (ELF, PE export
# names) or after "_" (Mach-O). Only ffi-test builds define this function at all.
_TEST_EXPORT = re.compile(rb"[\0_]cardbridge_test_panic\0")


def refuse_test_library(path: Path) -> None:
    if os.environ.get("CARDBRIDGE_ALLOW_TEST_LIBRARY") == "1":
        return
    if _TEST_EXPORT.search(path.read_bytes()):
        raise SystemExit(
            f"cardbridge: {path} was built with the test-only `ffi-test` feature; "
            "package a release build without it (scripts/package does)"
        )


def crate_dir() -> Path | None:
    for candidate in (SDIST_CRATE, REPO):
        if (candidate / "Cargo.toml").is_file() and (candidate / "src" / "ffi").is_dir():
            return candidate
    return None


def build_from_source() -> Path:
    crate = crate_dir()
    name = _platform.cargo_filename()
    if crate is None:
        raise SystemExit(f"cardbridge: no native library to bundle; set CARDBRIDGE_NATIVE_LIB to a built {name}")
    if shutil.which("cargo") is None:
        raise SystemExit(
            "cardbridge: building from source needs Rust (cargo, https://rustup.rs) and a C compiler; "
            f"or set CARDBRIDGE_NATIVE_LIB to a prebuilt {name}"
        )
    command = ["cargo", "build", "--release", "--lib", "--bin", "cardbridge", "--locked"]
    print(f"cardbridge: building the native library and tool from source in {crate}: {' '.join(command)}")
    subprocess.run(command, cwd=crate, check=True)
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR") or crate / "target")
    if not target_dir.is_absolute():
        target_dir = crate / target_dir
    triple = os.environ.get("CARGO_BUILD_TARGET")
    return target_dir / triple / "release" / name if triple else target_dir / "release" / name


def binary_filename() -> str:
    return "cardbridge.exe" if os.name == "nt" else "cardbridge"


def find_binary(library: Path) -> Path:
    explicit = os.environ.get("CARDBRIDGE_NATIVE_BIN")
    path = Path(explicit) if explicit else library.parent / binary_filename()
    if not path.is_file():
        raise SystemExit(
            f"cardbridge: no cardbridge binary at {path}; set CARDBRIDGE_NATIVE_BIN to a built "
            "`cargo build --release --bin cardbridge`"
        )
    return path


def find_native_library() -> Path:
    explicit = os.environ.get("CARDBRIDGE_NATIVE_LIB")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SystemExit(f"CARDBRIDGE_NATIVE_LIB={explicit} does not exist")
    else:
        path = build_from_source()
    refuse_test_library(path)
    return path


class build_py_with_native(build_py):
    """build_py that also copies the native library into the package."""

    def run(self) -> None:
        super().run()
        source = find_native_library()
        tag = os.environ.get("CARDBRIDGE_NATIVE_TAG") or _platform.platform_tag()
        system = tag.split("-", 1)[0]
        dest = Path(self.build_lib) / "cardbridge" / "_native" / tag / _platform.library_filename(system)
        dest.parent.mkdir(parents=True, exist_ok=True)
        print(f"cardbridge: bundling {source} as {dest}")
        shutil.copyfile(source, dest)
        binary = find_binary(source)
        tool = Path(self.build_lib) / "cardbridge" / "_bin" / binary_filename()
        tool.parent.mkdir(parents=True, exist_ok=True)
        print(f"cardbridge: bundling {binary} as {tool}")
        shutil.copyfile(binary, tool)
        tool.chmod(0o755)


def crate_files(crate: Path) -> list[Path]:
    """What `cargo build --lib --bin cardbridge` needs from the crate: manifest, lock file, build
    script, sources, header config, licence, the test keys the binary builds in, and the files of
    targets the manifest names explicitly (cargo refuses a manifest whose named targets are missing)."""
    files = [crate / name for name in ("Cargo.toml", "Cargo.lock", "build.rs", "LICENSE")]
    files += sorted((crate / "tests" / "fixtures" / "keys").glob("test_*.pem"))
    for folder in ("src", "include"):
        files += sorted(p for p in (crate / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    manifest = tomllib.loads((crate / "Cargo.toml").read_text(encoding="utf-8"))
    for kind, folder in (("test", "tests"), ("bench", "benches"), ("example", "examples"), ("bin", "src/bin")):
        for target in manifest.get(kind, []):
            path = crate / target.get("path", f"{folder}/{target['name']}.rs")
            if path.is_file():
                files.append(path)
    return files


class sdist_with_crate(sdist):
    """An sdist that carries the Rust crate under rust/, so it builds without a prebuilt library."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        if (SDIST_CRATE / "Cargo.toml").is_file():  # building an sdist from an unpacked sdist
            crate = SDIST_CRATE
        elif (REPO / "Cargo.toml").is_file():
            crate = REPO
        else:
            raise SystemExit("cardbridge: no Rust crate to put into the sdist")
        for path in crate_files(crate):
            dest = Path(base_dir) / "rust" / path.relative_to(crate)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)


class BinaryDistribution(Distribution):
    """Carries a native library: files go to the platform-specific root of the wheel."""

    def has_ext_modules(self) -> bool:
        return True


class platform_wheel(bdist_wheel):
    """A `py3-none-<platform>` wheel: any CPython 3, one platform."""

    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(
    distclass=BinaryDistribution,
    cmdclass={"build_py": build_py_with_native, "bdist_wheel": platform_wheel, "sdist": sdist_with_crate},
)
