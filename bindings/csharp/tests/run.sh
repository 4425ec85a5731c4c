#!/usr/bin/env bash
# Builds and tests the C# bindings with Debian's Mono, from a clean checkout on a fresh machine:
#   1. installs mono-mcs, mono-runtime and the one extra framework library the POS example uses
#      (System.Runtime.Serialization, for DataContractJsonSerializer) when missing;
#   2. builds the native library: `cargo build --features ffi-test` (debug profile, default target
#      dir). The ffi-test feature adds the cardbridge_test_panic export the panic test needs; it
#      never ships in release artifacts. Reusing target/debug is deliberate: .ci/test-all has just
#      run `cargo test --features ffi-test`, which compiled the crate with the same features, so
#      this step only links; a separate target dir would recompile every dependency (aws-lc-rs,
#      SQLite) on a 2-core machine. The library is copied out at once, so later cargo commands
#      with other features cannot swap it underneath the tests.
#      CARDBRIDGE_LIBRARY_DIR=<dir holding libcardbridge.so> skips the build and tests that
#      library instead (e.g. a release build; the panic test then reports itself skipped);
#   3. compiles CardBridge.dll (src/*.cs, exactly the files CardBridge.csproj lists), the test
#      runner and the POS example (both with the test support in testing/*.cs, which starts the
#      `cardbridge` binary's emulator and speaks its control API) with mcs -unsafe -warnaserror;
#   4. runs the POS example as a smoke test (an Alipay+ card number, an EFFECTIVE WeChat card, then INVALID),
#      then the test runner, whose last line is
#      "N passed, N failed, N skipped"; exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
csharp="$(dirname "$here")"
root="$(cd "$csharp/../.." && pwd)"
out="$root/target/csharp"
cd "$root"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v mcs >/dev/null || missing+=(mono-mcs)
command -v mono >/dev/null || missing+=(mono-runtime)
[ -f /usr/lib/mono/4.5/System.Runtime.Serialization.dll ] || missing+=(libmono-system-runtime-serialization4.0-cil)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  as_root apt-get update -qq
  # A second try covers a concurrent apt/dpkg run holding the lock or cleaning its cache.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    { sleep 10; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
fi

rm -rf "$out"
mkdir -p "$out"
if [ -n "${CARDBRIDGE_LIBRARY_DIR:-}" ]; then
  echo "native library from $CARDBRIDGE_LIBRARY_DIR"
  cp "$CARDBRIDGE_LIBRARY_DIR/libcardbridge.so" "$out/"
else
  cargo build --quiet --features ffi-test --lib --bin cardbridge
  cp "${CARGO_TARGET_DIR:-$root/target}/debug/libcardbridge.so" "$out/"
fi
# The emulator the tests and the example start (CardBridge.Testing.Emulator finds it next to them):
# $CARDBRIDGE_BIN, else the one in CARDBRIDGE_LIBRARY_DIR, else the debug build (already built above
# when the library was; the same features, so no recompilation).
bin="${CARDBRIDGE_BIN:-}"
if [ -z "$bin" ] && [ -n "${CARDBRIDGE_LIBRARY_DIR:-}" ] && [ -x "$CARDBRIDGE_LIBRARY_DIR/cardbridge" ]; then
  bin="$CARDBRIDGE_LIBRARY_DIR/cardbridge"
fi
if [ -z "$bin" ]; then
  cargo build --quiet --features ffi-test --bin cardbridge
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/cardbridge"
fi
cp "$bin" "$out/cardbridge"
unset CARDBRIDGE_BIN
cp "$csharp/CardBridge.dll.config" "$out/"

mcs_flags=(-nologo -unsafe -warnaserror -warn:4 -debug)
mapfile -t sources < <(find "$csharp/src" -maxdepth 1 -name '*.cs' | LC_ALL=C sort)
mcs "${mcs_flags[@]}" -target:library -doc:"$out/CardBridge.xml" -out:"$out/CardBridge.dll" "${sources[@]}"
# The test support (bindings/csharp/testing: the emulator process and its control API) is compiled
# into the tests and the example, never into CardBridge.dll.
mapfile -t testing < <(find "$csharp/testing" -maxdepth 1 -name '*.cs' | LC_ALL=C sort)
mapfile -t tests < <(find "$here/CardBridge.Tests" -maxdepth 1 -name '*.cs' | LC_ALL=C sort)
mcs "${mcs_flags[@]}" -r:"$out/CardBridge.dll" -r:System.Core.dll -out:"$out/CardBridge.Tests.exe" "${tests[@]}" "${testing[@]}"
mcs "${mcs_flags[@]}" -r:"$out/CardBridge.dll" -r:System.Runtime.Serialization.dll -r:System.Xml.dll \
  -out:"$out/PosApp.exe" "$root/examples/csharp/PosApp/Program.cs" "${testing[@]}"

# Mono maps "cardbridge" through CardBridge.dll.config and finds libcardbridge.so next to the
# assemblies; LD_LIBRARY_PATH covers the dlopen fallback.
export LD_LIBRARY_PATH="$out${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "--- examples/csharp/PosApp"
pos_output="$(mono --debug "$out/PosApp.exe" "$root/tests/fixtures/keys")"
echo "$pos_output"
grep -Eq '^Card number: .+' <<<"$pos_output" || { echo "PosApp printed no card number"; exit 1; }
grep -Eq '^WeChat card [0-9]+ EFFECTIVE$' <<<"$pos_output" || { echo "PosApp opened no WeChat card"; exit 1; }
grep -Eq '^WeChat card [0-9]+ INVALID \(member left\)$' <<<"$pos_output" || { echo "PosApp invalidated no WeChat card"; exit 1; }

echo "--- C# test suite"
mono --debug "$out/CardBridge.Tests.exe" "$root" "$@"
