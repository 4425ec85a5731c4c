"""Build glue: puts the native library into the package and tags the wheel
`py3-none-<platform>` (ctypes needs no CPython ABI; the library is per platform).

The library is taken from, in order:
  1. $CARDBRIDGE_NATIVE_LIB (a built libcardbridge.so / .dylib / cardbridge.dll);
  2. the newest of <repo>/target/{release,debug}/ (or $CARGO_TARGET_DIR);
  3. otherwise `cargo build --release` is run in the repository (slow).
$CARDBRIDGE_NATIVE_TAG overrides the `<platform>-<machine>` folder when
packaging a library for another platform (with `--plat-name`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# The naming rules of the loader, without importing the package (which would load the library).
_spec = importlib.util.spec_from_file_location("_cardbridge_platform", HERE / "cardbridge" / "_platform.py")
assert _spec is not None and _spec.loader is not None
_platform = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_platform)


def find_native_library() -> Path:
    explicit = os.environ.get("CARDBRIDGE_NATIVE_LIB")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SystemExit(f"CARDBRIDGE_NATIVE_LIB={explicit} does not exist")
        return path
    name = _platform.cargo_filename()
    target_dirs = [Path(os.environ["CARGO_TARGET_DIR"])] if os.environ.get("CARGO_TARGET_DIR") else []
    target_dirs.append(REPO / "target")
    candidates = [d / profile / name for d in target_dirs for profile in ("release", "debug")]
    existing = [p for p in candidates if p.is_file()]
    if existing:
        return max(existing, key=lambda p: p.stat().st_mtime)
    if not (REPO / "Cargo.toml").is_file():
        raise SystemExit(
            "cardbridge: no native library to bundle; set CARDBRIDGE_NATIVE_LIB to a built " + name
        )
    print("cardbridge: no built library found, running cargo build --release")
    subprocess.run(["cargo", "build", "--release", "--lib"], cwd=REPO, check=True)
    return REPO / "target" / "release" / name


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


class BinaryDistribution(Distribution):
    """Carries a native library: files go to the platform-specific root of the wheel."""

    def has_ext_modules(self) -> bool:
        return True


class platform_wheel(bdist_wheel):
    """A `py3-none-<platform>` wheel: any CPython 3, one platform."""

    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(distclass=BinaryDistribution, cmdclass={"build_py": build_py_with_native, "bdist_wheel": platform_wheel})
