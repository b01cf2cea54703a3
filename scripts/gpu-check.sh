#!/usr/bin/env bash
# The one prepared GPU check (issue 6): builds the CUDA backend on the GPU machine (with cuBLAS
# and cuDNN from PyTorch's NVIDIA wheels when present, and once more with only our own kernels),
# runs test/cuda.test.ts against both builds, the golden suite on CUDA (KW_DEVICE=cuda), and the
# KW-ResNet-18 kw1x training-throughput benchmark (batch 128, 224x224) beside the same model in
# PyTorch the upstream way (fp32, tf32, bf16 autocast). Everything lands in $OUT (8 files, the
# device tool's limit); summary.txt first of all.
#
# The GPU machine has nvcc, cmake, ninja, python3 + torch, but no node and no npm packages, and
# only the repository travels. So there are two steps:
#
#   1. here (any machine with node, npm deps, xz):   scripts/gpu-check.sh prepare [--no-golden]
#      writes .gpu/ (in .gitignore): node (xz), the compiled JS of lib/, bench/ and the two
#      test files, node-gyp-build, node-addon-api, a tap stand-in, Node-API headers, and the
#      golden cases (tar.xz): 53 MiB, 58 MiB with the repository, under the tool's 64 MiB.
#   2. on the GPU machine, through the device tool:
#        run(command="bash scripts/gpu-check.sh", carry=[".gpu"], timeout_s=600)
#      at most 570 s (KW_GPU_BUDGET): build, CUDA tests, benchmarks, golden suite, own-kernel tests.
#
# Each stage has its own time limit and the script goes on after a failure, so one broken stage
# still leaves the others' results; summary.txt says what passed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
G=$ROOT/.gpu

prepare() {
  local golden=1
  [ "${1:-}" = "--no-golden" ] && golden=0
  mkdir -p "$G/node_modules" "$G/include"
  echo "prepare: compiling lib/, bench/ and the GPU tests to .gpu/dist"
  cat >"$G/tsconfig.json" <<'JSON'
{
  "extends": "../tsconfig.json",
  "compilerOptions": { "outDir": "dist", "rootDir": "..", "declaration": false, "noUnusedLocals": false },
  "include": ["../lib/**/*.ts", "../bench/**/*.ts", "../binding.d.ts", "../test/cuda.test.ts", "../test/golden.test.ts", "../test/helpers/*.ts"]
}
JSON
  rm -rf "$G/dist" && npx tsc -p "$G/tsconfig.json" || return 1
  echo "prepare: node modules and headers"
  rm -rf "$G/node_modules/node-gyp-build" "$G/node_modules/node-addon-api" "$G/node_modules/tap"
  cp -rL node_modules/node-gyp-build node_modules/node-addon-api "$G/node_modules/"
  mkdir -p "$G/node_modules/tap" && cp scripts/gpu/tap-shim.js "$G/node_modules/tap/index.js"
  echo '{"name":"tap","main":"index.js"}' >"$G/node_modules/tap/package.json"
  local inc
  inc=$(node -p "require('path').join(process.execPath, '..', '..', 'include', 'node')")
  [ -f "$inc/node_api.h" ] || inc=/usr/include/node
  cp "$inc"/node_api.h "$inc"/node_api_types.h "$inc"/js_native_api.h "$inc"/js_native_api_types.h "$G/include/"
  if [ ! -f "$G/node.xz" ] || [ "$(cat "$G/node.version" 2>/dev/null)" != "$(node --version)" ]; then
    echo "prepare: compressing node $(node --version) (a few minutes)"
    xz -T0 -9 -c "$(command -v node)" >"$G/node.xz" && node --version >"$G/node.version"
  fi
  if [ "$golden" = 1 ]; then
    local gd=${KW_GOLDEN_DIR:-$ROOT/../shared/golden}
    if [ -d "$gd" ] && [ ! -f "$G/golden.tar.xz" ]; then
      echo "prepare: packing the golden cases from $gd"
      tar -C "$gd" -cf - . | xz -T0 -6 >"$G/golden.tar.xz"
    fi
  else
    rm -f "$G/golden.tar.xz"
  fi
  du -sh "$G"/* "$G" | sed 's/^/prepare: /'
  local total
  total=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb "$G" | cut -f1) ))
  echo "prepare: the working tree that travels: $((total / 1048576)) MiB (the device tool takes at most 64)"
}

if [ "${1:-}" = "prepare" ]; then
  shift
  prepare "$@"
  exit $?
fi

# ---------------------------------------------------------------- on the GPU machine
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
stage() {  # stage NAME LIMIT_S LOGFILE command...: runs, logs, records pass/fail and the time
  local name=$1 limit=$2 log=$3
  shift 3
  local t0=$SECONDS
  echo "=== $name" >>"$log"
  timeout "$limit" "$@" >>"$log" 2>&1
  local rc=$?
  say "$name: $([ $rc = 0 ] && echo PASS || echo "FAIL (exit $rc$([ $rc = 124 ] && echo ', timed out'))") in $((SECONDS - t0)) s"
  return $rc
}

[ -d "$G/dist" ] || { say "no .gpu/ bundle: run 'scripts/gpu-check.sh prepare' first and carry .gpu"; exit 1; }
{
  nvidia-smi 2>&1 | head -15
  nvcc --version 2>&1 | tail -2
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1
} >"$OUT/env.txt"

# xz may be missing there; python3's lzma reads the same files.
unxz_to() { if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi; }
mkdir -p /tmp/kwnode/bin
unxz_to "$G/node.xz" /tmp/kwnode/bin/node && chmod +x /tmp/kwnode/bin/node
export PATH=/tmp/kwnode/bin:$PATH
node --version >>"$OUT/env.txt" 2>&1 || { say "the carried node does not run here"; exit 1; }
[ -e node_modules ] || ln -s .gpu/node_modules node_modules

# The device tool stops a command after 600 s: every stage gets at most what is left of
# BUDGET (default 570 s), in order of importance, and a stage with under 20 s left is skipped.
BUDGET=${KW_GPU_BUDGET:-570}
run_stage() {  # like stage, with the limit cut to the time left
  local name=$1 limit=$2
  local left=$((BUDGET - SECONDS))
  if [ "$left" -lt 20 ]; then say "$name: SKIPPED (out of time)"; return 1; fi
  [ "$limit" -gt "$left" ] && limit=$left
  shift 2
  stage "$name" "$limit" "$@"
}

# Build: the addon (CPU kernels; no OpenBLAS needed) and libkw_cuda.so with the libraries found
# (cuBLAS/cuDNN, from the torch wheels), sm_90 only to save time on this H200. A second
# libkw_cuda.so with only our own GEMM and convolution kernels builds in the background.
JOBS=$(nproc)
run_stage "configure + build (cuBLAS/cuDNN where found)" 200 "$OUT/build.log" bash -c "
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKW_CUDA=ON -DKW_CUDA_ARCHS=90-real \
    -DCMAKE_JS_INC=$G/include -DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$ROOT/build/Release &&
  cmake --build build -j $JOBS" || {
  # A cuDNN/cuBLAS API mismatch must not cost the whole check: retry with our own kernels.
  run_stage "configure + build (own kernels only, after the failure above)" 150 "$OUT/build.log" bash -c "
    cmake -S . -B build -G Ninja -DKW_CUDA_LIBS=OFF && cmake --build build -j $JOBS"
}
grep -E "kernelwarehouse: (CUDA|GEMM)" "$OUT/build.log" | sed 's/^-- //' >>"$SUMMARY"
( timeout 200 bash -c "
  cmake -S . -B build-own -G Ninja -DCMAKE_BUILD_TYPE=Release -DKW_CUDA=ON -DKW_CUDA_LIBS=OFF -DKW_CUDA_ARCHS=90-real \
    -DCMAKE_JS_INC=$G/include -DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$ROOT/build-own/Release &&
  nice cmake --build build-own -j $JOBS --target kw_cuda" >"$OUT/build-own.log" 2>&1 ) &
OWN_BUILD=$!

node -e "const i = require('./.gpu/dist/lib/native').native.cudaInfo(); console.log(JSON.stringify(i))" >>"$OUT/env.txt" 2>&1
say "device: $(node -e "const i = require('./.gpu/dist/lib/native').native.cudaInfo(); console.log(i.available ? i.describe : i.reason)" 2>&1)"

run_stage "test/cuda.test.ts (cuBLAS/cuDNN build)" 120 "$OUT/cuda-test.txt" node .gpu/dist/test/cuda.test.js
grep -E "^# \{ total" "$OUT/cuda-test.txt" | tail -1 >>"$SUMMARY"

# Throughput: ours (cuDNN grouped conv, then our own conv kernels), then PyTorch upstream-style.
B=${KW_BENCH_BATCH:-128}
run_stage "benchmark kernelwarehouse (cuDNN)" 90 "$OUT/bench.jsonl" node .gpu/dist/bench/gpu_train.js --device cuda --batch "$B" --size 224 --steps 10 --warmup 3 --plan /tmp/plan.json
run_stage "benchmark PyTorch upstream-style" 120 "$OUT/bench.jsonl" python3 scripts/kw_torch_bench.py --plan /tmp/plan.json --batch "$B" --size 224 --steps 10 --warmup 3 --amp
run_stage "benchmark kernelwarehouse (own conv kernels)" 60 "$OUT/bench.jsonl" env KW_CUDA_CONV=own node .gpu/dist/bench/gpu_train.js --device cuda --batch "$B" --size 224 --steps 3 --warmup 1

if [ -f "$G/golden.tar.xz" ]; then
  mkdir -p /tmp/golden && unxz_to "$G/golden.tar.xz" /tmp/golden.tar && tar -C /tmp/golden -xf /tmp/golden.tar
  run_stage "golden suite on CUDA" 150 "$OUT/golden-cuda.txt" env KW_DEVICE=cuda KW_GOLDEN_DIR=/tmp/golden node .gpu/dist/test/golden.test.js
  grep -E "^# \{ total" "$OUT/golden-cuda.txt" | tail -1 >>"$SUMMARY"
else
  say "golden suite: skipped (prepared with --no-golden)"
fi

if wait "$OWN_BUILD" && [ -f build-own/Release/libkw_cuda.so ]; then
  run_stage "test/cuda.test.ts (own kernels only)" 120 "$OUT/cuda-test-own.txt" env KW_CUDA_LIB="$ROOT/build-own/Release/libkw_cuda.so" node .gpu/dist/test/cuda.test.js
  grep -E "^# \{ total" "$OUT/cuda-test-own.txt" | tail -1 >>"$SUMMARY"
else
  say "libkw_cuda.so with own kernels only: build failed (build-own.log)"
fi

python3 - "$OUT/bench.jsonl" >>"$SUMMARY" 2>&1 <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if not line.startswith('{'):
        continue
    r = json.loads(line)
    print('%28s %14s: %8.1f images/s (%.1f ms/step, peak %.0f MiB)' % (
        r['impl'], r.get('precision', 'fp32'), r['imagesPerSec'], r['stepMs'], r.get('peakDeviceMiB') or 0))
PY
cat "$SUMMARY"
