#!/usr/bin/env bash
# The Python suite, from a fresh Debian machine (as root, or with sudo):
#   1. builds the native library and the `cardbridge` binary (whose emulator the
#      tests start through cardbridge.testing): `cargo build --lib --bin cardbridge
#      --features ffi-test` (debug
#      profile). Why this build: the ffi-test feature adds the deliberate-panic
#      export the PanicError test needs, and .ci/test-all has just compiled
#      exactly this (cargo test --features ffi-test), so the build is a cheap
#      relink instead of a second full release build on a 2-core machine.
#      CARDBRIDGE_NATIVE_LIB=<path> tests another build (e.g. target/release);
#      the panic test then skips if the export is absent.
#   2. creates a venv under target/, installs the pinned test tools;
#   3. builds the sdist and, from it, a py3-none-<platform> wheel with the
#      library and the binary inside; checks both; installs the wheel and checks
#      its `cardbridge` console command;
#   4. mypy --strict on the package, tests, generator and examples; the
#      examples (Alipay+ POS sync, WeChat Pay card opening) as smoke tests;
#      pytest (against the installed wheel, not the source tree).
# Exits non-zero on any failure; pytest's summary is the closing line.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"
PKG="$ROOT/bindings/python"
VENV="$ROOT/target/python-venv"
DIST="$ROOT/target/python-dist"

step() { printf '\n--- python: %s ---\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v python3 >/dev/null || missing+=(python3)
command -v gcc >/dev/null || missing+=(gcc)          # the bindings generator preprocesses the header
if command -v python3 >/dev/null && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -z "${CARDBRIDGE_NATIVE_LIB:-}" ]; then
  step "native library and binary (cargo build --lib --bin cardbridge --features ffi-test)"
  cargo build --lib --bin cardbridge --features ffi-test
  CARDBRIDGE_NATIVE_LIB="$ROOT/target/debug/libcardbridge.so"
  case "$(uname -s)" in
    Darwin) CARDBRIDGE_NATIVE_LIB="$ROOT/target/debug/libcardbridge.dylib" ;;
  esac
fi
# The binary next to the library unless given (setup.py bundles it into the wheel).
export CARDBRIDGE_NATIVE_LIB
unset CARDBRIDGE_BIN   # the tests must run the binary bundled in the wheel
# This wheel is for the tests only: setup.py refuses an ffi-test library unless told so.
# Release wheels come from scripts/package (release build, no ffi-test, manylinux-tagged).
export CARDBRIDGE_ALLOW_TEST_LIBRARY=1
unset CARDBRIDGE_LIBRARY_PATH   # the tests must load the library bundled in the wheel

step "virtual environment ($VENV)"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$PKG/requirements-test.txt"

step "sdist and wheel"
rm -rf "$DIST" "$PKG/build" "$PKG"/*.egg-info
# Both from the sdist, so the sdist is proven sufficient to build the wheel.
if ! "$VENV/bin/python" -m build --sdist --wheel --outdir "$DIST" "$PKG" >"$ROOT/target/python-build.log" 2>&1; then
  cat "$ROOT/target/python-build.log"
  exit 1
fi
"$VENV/bin/python" - "$DIST" <<'PY'
import sys, tarfile, zipfile
from pathlib import Path
dist = Path(sys.argv[1])
wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
assert len(wheels) == 1 and len(sdists) == 1, (wheels, sdists)
wheel = wheels[0]
assert "-py3-none-" in wheel.name and not wheel.name.endswith("-any.whl"), wheel.name
names = zipfile.ZipFile(wheel).namelist()
native = [n for n in names if n.startswith("cardbridge/_native/")]
assert len(native) == 1 and native[0].rsplit("/", 1)[1].startswith(("_libcardbridge.", "_cardbridge.")), native
assert "cardbridge/py.typed" in names and "cardbridge/_bindings.py" in names
assert "cardbridge/_bin/cardbridge" in names, "the wheel carries the cardbridge binary"
entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
assert "cardbridge = cardbridge._cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode(), "console command"
binaries = [n for n in tarfile.open(sdists[0]).getnames() if n.endswith((".so", ".dylib", ".dll")) or "/_native/" in n]
assert not binaries, f"binaries in the sdist: {binaries}"
print(f"{wheel.name}: {native[0]}; {sdists[0].name}: sources only")
PY
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$DIST"/*.whl
version="$("$VENV/bin/cardbridge" --version)"
[[ "$version" == "cardbridge $("$VENV/bin/python" -c 'import cardbridge; print(cardbridge.__version__)')"* ]] ||
  { echo "the wheel's cardbridge command printed: $version" >&2; exit 1; }
echo "console command: $version"

step "mypy --strict"
(cd "$PKG" && "$VENV/bin/mypy" --strict cardbridge tests tools ../../examples/python)

step "examples (examples/python/pos_member_sync.py, wechat_card_opening.py)"
(cd "$ROOT/target" && "$VENV/bin/python" "$ROOT/examples/python/pos_member_sync.py")
(cd "$ROOT/target" && "$VENV/bin/python" "$ROOT/examples/python/wechat_card_opening.py")

step "pytest"
cd "$ROOT/target"   # not the source tree: `import cardbridge` must find the installed wheel
"$VENV/bin/python" -m pytest -p no:cacheprovider -q "$PKG/tests"
