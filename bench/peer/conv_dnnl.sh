#!/bin/bash
# Builds and runs bench/peer/conv_dnnl.cpp against this checkout's CPU kernels: conv_dnnl.sh [32|224] [reps]
set -e
cd "$(dirname "$0")/../.."
out=${TMPDIR:-/tmp}/kw_conv_dnnl
# KW_CONV_SRC=<file>: time that conv.cpp instead of this checkout's (before/after comparisons).
conv=${KW_CONV_SRC:-native/cpu/conv.cpp}
[ -n "$KW_CONV_SRC" ] && out=$out.$(basename "$KW_CONV_SRC" .cpp)
srcs="$(ls native/core/*.cpp native/cpu/*.cpp | grep -v cpu/conv.cpp) $conv"
[ "$out" -nt "$conv" ] && [ "$out" -nt bench/peer/conv_dnnl.cpp ] || \
  nice g++ -O3 -std=c++17 -fopenmp -DKW_HAVE_OPENBLAS=1 -Inative -I/usr/include/x86_64-linux-gnu/openblas-pthread \
    bench/peer/conv_dnnl.cpp $srcs -o "$out" -ldnnl /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.a -lpthread -lm
OMP_NUM_THREADS=2 "$out" "$@"
