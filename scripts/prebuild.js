#!/usr/bin/env node
// npm run prebuild: builds the Node-API addon with cmake-js through prebuildify, leaving
// prebuilds/<platform>-<arch>/kernelwarehouse.napi.glibc.node for node-gyp-build to load.
// prebuildify only knows node-gyp, so it is pointed at a wrapper that runs cmake-js instead.
'use strict';
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
    console.log(`prebuild written to ${path.join(root, 'prebuilds', `${process.platform}-${process.arch}`)}`);
  },
);
