#!/usr/bin/env node
// npm "install" hook: use a prebuilt addon when one fits this machine, otherwise build
// from source with cmake-js. Kept dependency-free so it runs before anything is compiled.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
try {
  require('node-gyp-build')(root);
  console.log('kernelwarehouse: using the prebuilt native addon');
  process.exit(0);
} catch (_) {
  // no prebuild for this platform: fall through to a source build
}
console.log('kernelwarehouse: no prebuilt addon fits this machine, building from source (cmake-js)...');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    '\nkernelwarehouse: building the native addon failed.\n' +
      'A source build needs cmake (>= 3.16) and a C++17 compiler, e.g. on Debian/Ubuntu:\n' +
      '    sudo apt-get install cmake g++\n' +
      'OpenBLAS is optional but much faster:  sudo apt-get install libopenblas-dev\n'
  );
  process.exit(r.status || 1);
}
