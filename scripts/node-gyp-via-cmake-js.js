#!/usr/bin/env node
// Stands in for node-gyp when prebuildify (scripts/prebuild.js) calls "node-gyp rebuild ...":
// configures and builds with cmake-js instead, requiring static OpenBLAS (a prebuilt addon must
// need nothing installed). scripts/prebuild.js chooses the build folder and the compilers:
//   KW_PREBUILD_BUILD_DIR  cmake-js's -O (prebuildify finds the addon in <dir>/Release)
//   KW_PREBUILD_CXX/_CC    compiler wrappers (zig c++ -target x86_64-linux-gnu.2.28); when set the
//                          link is KW_PORTABLE_LINK (see CMakeLists.txt), and nvcc keeps the host
//                          g++ for libkw_cuda.so (nvcc accepts only gcc/clang it knows)
//   KW_CUDA                ON builds libkw_cuda.so too; the prebuild's default is OFF
// The node-gyp arguments prebuildify passes (--target, --devdir, ...) do not apply: Node-API.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const out = process.env.KW_PREBUILD_BUILD_DIR || path.join(root, 'build');
const defs = ['--CDKW_BLAS=OPENBLAS', `--CDKW_CUDA=${process.env.KW_CUDA || 'OFF'}`];
if (process.env.KW_PREBUILD_CXX) {
  defs.push(
    `--CDCMAKE_CXX_COMPILER=${process.env.KW_PREBUILD_CXX}`,
    `--CDCMAKE_C_COMPILER=${process.env.KW_PREBUILD_CC || process.env.KW_PREBUILD_CXX}`,
    '--CDKW_PORTABLE_LINK=ON',
    '--CDCMAKE_CUDA_HOST_COMPILER=g++',
  );
} else {
  defs.push('--CDKW_PORTABLE_LINK=OFF');
}

// prebuildify ships every .so it finds beside the addon: remove the previous run's outputs so a
// library that is no longer built (libkw_cuda.so after KW_CUDA=ON, then OFF) is not shipped stale
const release = path.join(out, 'Release');
for (const f of fs.existsSync(release) ? fs.readdirSync(release) : [])
  if (/\.(so|node)$/.test(f)) fs.rmSync(path.join(release, f));

// configure every time (a changed KW_CUDA must take effect; cmake-js compile would reuse the
// cache), then build incrementally: the folder is the prebuild's own, never the developer's build/
for (const step of [['configure', ...defs], ['build']]) {
  const r = spawnSync(process.execPath, [cmakeJs, ...step, '-O', out], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}
