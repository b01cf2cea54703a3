// The published package: pack it as npm would (the addon as a prebuild), install the tarball
// into an empty folder with no compiler and no cmake on PATH, and run kw-train from there.
import t from 'tap';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');
const addon = require('node-gyp-build').path(root) as string;

function copy(rel: string, to: string): void {
  fs.cpSync(path.join(root, rel), path.join(to, rel), { recursive: true });
}

t.test('npm pack → npm install without a compiler → kw-train runs', async (t) => {
  if (!fs.existsSync(path.join(root, 'dist', 'lib', 'cli', 'kw-train.js')))
    throw new Error('dist/ is missing: run npm run build:ts (npm install does it) before this test');
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-stage-'));
  for (const rel of ['package.json', 'README.md', 'binding.d.ts', 'configs', 'data', 'dist/lib', 'scripts/install.js', 'native/core'])
    copy(rel, stage);
  // what `npm run prebuild` leaves: the addon under prebuilds/<platform>-<arch>/. The test stages
  // the addon already built on this machine (host g++) rather than running `npm run prebuild`:
  // the release build fetches zig (~45 MB) and compiles everything again with it, which would make
  // `npm test` need the network and take minutes longer. What this test checks (the tarball's
  // contents, installing without a compiler, kw-train from there) does not depend on the glibc
  // floor; the zig build checks that itself (objdump + a smoke test in scripts/prebuild.js).
  const pre = path.join(stage, 'prebuilds', `${process.platform}-${process.arch}`);
  fs.mkdirSync(pre, { recursive: true });
  fs.copyFileSync(addon, path.join(pre, 'kernelwarehouse.glibc.node'));

  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', stage], { cwd: stage, encoding: 'utf8' }))[0];
  const files: string[] = packed.files.map((f: { path: string }) => f.path);
  t.ok(files.includes('dist/lib/cli/kw-train.js') && files.includes('dist/lib/index.d.ts'), 'compiled JS and types');
  t.ok(files.includes('binding.d.ts') && files.includes('configs/resnet18/kw1x_resnet18.json'), 'binding types and configs');
  t.ok(files.includes('data/fashion-mnist-small/train-images-idx3-ubyte.gz'), 'the bundled dataset');
  t.ok(files.includes(`prebuilds/${process.platform}-${process.arch}/kernelwarehouse.glibc.node`), 'the prebuilt addon');
  const stray = files.filter((f) => !/^(dist\/lib\/|configs\/|data\/|prebuilds\/)/.test(f) && !['package.json', 'README.md', 'binding.d.ts', 'scripts/install.js'].includes(f));
  t.same(stray, [], 'nothing else: no sources, tests or build folders (native/core was staged to prove it is left out)');
  t.comment(`tarball ${packed.filename}: ${(packed.size / 2 ** 20).toFixed(1)} MiB packed, ${(packed.unpackedSize / 2 ** 20).toFixed(1)} MiB unpacked, ${files.length} files`);

  // a PATH with node, npm and a shell only: no cc, g++, make or cmake
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-bin-'));
  const nodeDir = path.dirname(process.execPath);
  for (const b of ['node', 'npm', 'npx']) fs.symlinkSync(fs.realpathSync(path.join(nodeDir, b)), path.join(bin, b));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh')); // npm runs install scripts with sh
  const env = { ...process.env, PATH: bin, npm_config_update_notifier: 'false' };
  for (const tool of ['cmake', 'g++', 'cc', 'c++', 'make'])
    t.not(spawnSync('sh', ['-c', `command -v ${tool}`], { env }).status, 0, `${tool} is not on PATH`);

  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-app-'));
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  const inst = spawnSync('npm', ['install', '--no-audit', '--no-fund', path.join(stage, packed.filename)], { cwd: app, env, encoding: 'utf8' });
  t.equal(inst.status, 0, `npm install: ${inst.stderr.slice(-2000)}`);
  // npm 11 skips a dependency's install script unless the user approves it; the prebuild is
  // found at require time (node-gyp-build), so nothing here depends on that script running.
  t.notOk(fs.existsSync(path.join(app, 'node_modules', 'cmake-js')), 'no build tools were installed');

  const npx = (args: string[]) => spawnSync('npx', ['kw-train', ...args], { cwd: app, env, encoding: 'utf8', timeout: 600_000 });
  const cfg = path.join(app, 'node_modules', 'kernelwarehouse', 'configs', 'resnet18', 'kw1d4x_resnet18.json');
  const sum = npx(['--kw_config', cfg, '--summary', '--json']);
  t.equal(sum.status, 0, sum.stderr);
  t.equal(JSON.parse(sum.stdout).params, 4031768, 'kw1d4x_resnet18: the published parameter count');
  const run = npx(['--epochs', '1']);
  t.equal(run.status, 0, run.stderr.slice(-2000));
  t.match(run.stdout, /kw_resnet_mini\s+[\d,]+\s+[\d.]+%/, 'the default run trained the KW model');
  t.match(run.stdout, /resnet_mini\s+[\d,]+\s+[\d.]+%/, 'and the plain one');
});

t.test('the loader says what it found and how to build when no binary fits', async (t) => {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-nobin-'));
  for (const rel of ['package.json', 'binding.d.ts', 'dist/lib']) copy(rel, stage);
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(stage, 'dist', 'lib'))})`], { encoding: 'utf8', env: { ...process.env, KW_ADDON_PATH: '' } });
  t.not(r.status, 0);
  t.match(r.stderr, /no native addon fits this machine \(platform=linux arch=x64 libc=glibc [\d.]+ node=v[\d.]+ napi=\d+ cpu=[\w,]+/);
  t.match(r.stderr, /npx cmake-js compile/);
  t.comment(r.stderr.split('\n').filter((l) => /kernelwarehouse|platform|cmake/.test(l)).slice(0, 5).join('\n'));
});
