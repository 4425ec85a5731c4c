"""Loading the native library (§8.1), version agreement (§7) and packaging."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cardbridge
from cardbridge import _ffi

from conftest import REPO

PACKAGE_DIR = Path(cardbridge.__file__).resolve().parent


def cargo_version() -> str:
    m = re.search(r'^version\s*=\s*"([^"]+)"', (REPO / "Cargo.toml").read_text(), re.M)
    assert m
    return m.group(1)


def test_package_library_and_crate_carry_one_version() -> None:
    assert cardbridge.__version__ == cargo_version()
    assert cardbridge.version() == f"cardbridge/{cargo_version()}"
    pyproject = (REPO / "bindings" / "python" / "pyproject.toml").read_text()
    assert f'version = "{cargo_version()}"' in pyproject


def test_platform_tag_names_this_machine() -> None:
    tag = _ffi.platform_tag()
    assert tag.startswith(sys.platform + "-")
    assert tag.split("-", 1)[1] in ("x86_64", "aarch64", "riscv64", "i686", "ppc64le", "s390x")


@pytest.mark.skipif(_ffi.ENV_LIBRARY_PATH in os.environ, reason="library path overridden")
def test_installed_package_loads_its_bundled_library() -> None:
    # run.sh installs the wheel: the library must come from inside the package.
    assert _ffi.library_path == _ffi.bundled_library_path()
    assert _ffi.library_path.is_relative_to(PACKAGE_DIR)
    assert _ffi.library_path.name == _ffi.library_filename()


def run_import(
    env_extra: dict[str, str], pythonpath: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != _ffi.ENV_LIBRARY_PATH}
    env.update(env_extra)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [sys.executable, "-c", "import cardbridge"], env=env, capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_missing_override_raises_import_error_naming_path_and_tag() -> None:
    result = run_import({_ffi.ENV_LIBRARY_PATH: "/nonexistent/libcardbridge.so"})
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "/nonexistent/libcardbridge.so" in result.stderr
    assert _ffi.platform_tag() in result.stderr


def test_package_without_native_library_raises_import_error(tmp_path: Path) -> None:
    copy = tmp_path / "cardbridge"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("_native", "__pycache__"))
    # From tmp_path, so `-c`'s current-directory entry cannot find another copy.
    result = run_import({}, pythonpath=str(tmp_path), cwd=tmp_path)
    assert result.returncode != 0
    expected = copy / "_native" / _ffi.platform_tag() / _ffi.library_filename()
    assert "ImportError" in result.stderr
    assert str(expected) in result.stderr
    assert _ffi.platform_tag() in result.stderr


def test_a_library_that_is_not_cardbridge_is_refused() -> None:
    # A shared object without cardbridge_version: one of the interpreter's own.
    import _ctypes

    result = run_import({_ffi.ENV_LIBRARY_PATH: str(_ctypes.__file__)})
    assert result.returncode != 0
    assert "is not a cardbridge library" in result.stderr


def test_version_mismatch_is_refused() -> None:
    _ffi.check_version("cardbridge/0.1.0", "0.1.0")
    with pytest.raises(ImportError, match=r"reports 'cardbridge/9\.9\.9'.*version 0\.1\.0"):
        _ffi.check_version("cardbridge/9.9.9", "0.1.0")
    with pytest.raises(ImportError):
        _ffi.check_version("", "0.1.0")
