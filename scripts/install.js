#!/usr/bin/env node
// npm "install" hook. From the published package: use the prebuilt addon in prebuilds/ (no
// compiler needed). From a git checkout (native/ present): build it with cmake-js when no
// prebuild fits. Kept dependency-light so it runs before anything is compiled.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
let loadError = null;
try {
  require('node-gyp-build')(root);
  console.log('kernelwarehouse: using the native addon found in ' + (fs.existsSync(path.join(root, 'build', 'Release', 'kernelwarehouse.node')) ? 'build/Release' : 'prebuilds/'));
  process.exit(0);
} catch (err) {
  loadError = err;
}
if (!fs.existsSync(path.join(root, 'native')) || !fs.existsSync(path.join(root, 'CMakeLists.txt'))) {
  const glibc = process.report && process.report.getReport().header.glibcVersionRuntime;
  console.error(
    `kernelwarehouse: no prebuilt native addon fits this machine (platform=${process.platform} arch=${process.arch} ` +
      `libc=${glibc ? 'glibc ' + glibc : 'unknown'} napi=${process.versions.napi}).\n` +
      `Cause: ${loadError && loadError.message}\n` +
      'Build it from source from a git checkout of kernelwarehouse: npm install (needs cmake and g++).',
  );
  process.exit(1);
}
console.log('kernelwarehouse: no prebuilt addon fits this machine, building from source (cmake-js)...');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    '\nkernelwarehouse: building the native addon failed.\n' +
      'A source build needs cmake (>= 3.16) and a C++17 compiler, e.g. on Debian/Ubuntu:\n' +
      '    sudo apt-get install cmake g++\n' +
      'OpenBLAS is optional but much faster:  sudo apt-get install libopenblas-dev\n',
  );
  process.exit(r.status || 1);
}
