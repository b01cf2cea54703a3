#!/usr/bin/env node
// npm run prebuild: builds the Node-API addon with cmake-js through prebuildify, leaving
// prebuilds/<platform>-<arch>/kernelwarehouse.napi.glibc.node for node-gyp-build to load.
// prebuildify only knows node-gyp, so it is pointed at a wrapper that runs cmake-js instead.
'use strict';
const fs = require('fs');
const path = require('path');
const prebuildify = require('prebuildify');

const root = path.join(__dirname, '..');
prebuildify(
  {
    cwd: root,
    napi: true,
    strip: true,
    tagLibc: true,
    nodeGyp: path.join(__dirname, 'node-gyp-via-cmake-js.js'),
  },
  (err) => {
    if (err) {
      console.error('prebuild failed:', err.message);
      process.exit(1);
    }
    const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    // the optional communication libraries (MPI, NCCL) travel next to the addon, which opens them
    // at run time; they need the MPI runtime installed where they are used, the addon does not
    const built = path.join(root, 'build', 'Release');
    for (const f of fs.existsSync(built) ? fs.readdirSync(built) : [])
      if (/^libkw_comm_\w+\.so$/.test(f)) fs.copyFileSync(path.join(built, f), path.join(dir, f));
    console.log(`prebuild written to ${dir}`);
  },
);
