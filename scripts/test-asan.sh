#!/usr/bin/env bash
# npm run test:asan — builds the native addon with AddressSanitizer + UndefinedBehaviorSanitizer
# (CMake option KW_SANITIZE) into build-asan/ and runs the native-heavy test files against it.
# Exits non-zero when a test fails or any sanitizer report appears in the output.
#
# Node itself is not instrumented, so the sanitizer runtimes are LD_PRELOADed (ASan must be the
# first library loaded). Leak detection is off: V8 and Node keep global allocations alive until
# exit by design (isolate heaps, static caches), so LeakSanitizer reports thousands of "leaks"
# that are not ours; our own storage accounting is checked by memoryStats() in the tests instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${KW_ASAN_SKIP_BUILD:-0}" != "1" ]; then
  npx cmake-js compile --out build-asan --CDKW_SANITIZE=ON
fi
addon="build-asan/Release/kernelwarehouse.node"
[ -f "$addon" ] || { echo "test:asan: $addon was not built" >&2; exit 1; }

libasan="$(g++ -print-file-name=libasan.so)"
libubsan="$(g++ -print-file-name=libubsan.so)"
for lib in "$libasan" "$libubsan"; do
  [ -f "$lib" ] || { echo "test:asan: sanitizer runtime $lib not found (install the gcc sanitizer libraries)" >&2; exit 1; }
done

files=(
  test/binding_safety.test.ts test/elementwise.test.ts test/reduce_matmul_layout.test.ts
  test/conv.test.ts test/norm.test.ts test/pool.test.ts test/loss.test.ts test/kw.test.ts
  test/kw-layers.test.ts test/kw_conv.test.ts test/golden.test.ts test/optim.test.ts test/tensor_autograd.test.ts
)
if [ "$#" -gt 0 ]; then files=("$@"); fi

report="$(mktemp)"
probe="$(mktemp -d)"
trap 'rm -rf "$report" "$probe"' EXIT

# Positive control: a deliberate heap overflow in a library loaded into node the same way must
# be reported, so a clean run below means clean, not "sanitizers silently inactive".
cat >"$probe/overflow.cpp" <<'CPP'
#include <cstdlib>
__attribute__((constructor)) static void overflow() {
  volatile int* p = static_cast<int*>(std::malloc(4 * sizeof(int)));
  p[4] = 1;
  std::free(const_cast<int*>(p));
}
CPP
g++ -fsanitize=address,undefined -shared -fPIC -o "$probe/overflow.so" "$probe/overflow.cpp"
control="$(LD_PRELOAD="$libasan:$libubsan" ASAN_OPTIONS=detect_leaks=0 \
  node -e "process.dlopen({ exports: {} }, '$probe/overflow.so')" 2>&1 || true)"
if grep -q 'ERROR: AddressSanitizer: heap-buffer-overflow' <<<"$control"; then
  echo "test:asan: sanitizers are live (a deliberate overflow was caught)"
else
  echo "test:asan: the sanitizer runtime did not catch a deliberate overflow; results would mean nothing" >&2
  exit 1
fi

status=0
# each file on its own: tap's workers would inherit LD_PRELOAD anyway, one at a time keeps the
# output attributable and the 2-core machine responsive
for f in "${files[@]}"; do
  echo "== $f"
  KW_ADDON_PATH="$addon" \
  LD_PRELOAD="$libasan:$libubsan" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    npx tap --disable-coverage -R terse --timeout 1200 "$f" >"$report" 2>&1 || status=1
  cat "$report"
  if grep -Eq 'ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer' "$report"; then
    echo "test:asan: sanitizer report in $f" >&2
    status=1
  fi
done
if [ "$status" -ne 0 ]; then echo "test:asan: FAILED" >&2; else echo "test:asan: clean"; fi
exit "$status"
