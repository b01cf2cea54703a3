#!/usr/bin/env node
// Stands in for node-gyp when prebuildify calls "node-gyp rebuild ...": runs a clean cmake-js
// build that requires static OpenBLAS (a prebuilt addon must need nothing installed) and
// leaves the addon in build/Release, where prebuildify looks for it.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'rebuild', '--CDKW_BLAS=OPENBLAS', '--CDKW_CUDA=OFF'], {
  cwd: path.join(__dirname, '..'),
  stdio: 'inherit',
});
process.exit(r.status === null ? 1 : r.status);
