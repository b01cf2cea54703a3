// Loads the native addon: a prebuild from prebuilds/ when one fits, else build/Release.
// KW_ADDON_PATH points at a specific .node file (tests of sanitizer builds, side-by-side builds).
import * as fs from 'fs';
import * as path from 'path';
import type { Binding } from '../binding';

// The package root holds package.json; this file runs from lib/ (sources) or dist/lib/ (built).
function findPackageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'binding.d.ts'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`kernelwarehouse: cannot find the package root above ${__dirname}`);
  }
}
export const packageRoot = findPackageRoot();

function cpuFeatures(): string {
  try {
    const flags = /^flags\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1].split(' ') ?? [];
    const wanted = ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f'];
    return wanted.filter((f) => flags.includes(f)).join(',') || 'none of sse4_2/avx/avx2/fma/avx512f';
  } catch {
    return 'unknown';
  }
}

function describeMachine(): string {
  const libc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header?.glibcVersionRuntime;
  return `platform=${process.platform} arch=${process.arch} libc=${libc ? 'glibc ' + libc : 'unknown'} ` +
    `node=${process.version} napi=${process.versions.napi} cpu=${cpuFeatures()}`;
}

function load(): Binding {
  const explicit = process.env.KW_ADDON_PATH;
  if (explicit) {
    if (!fs.existsSync(explicit)) throw new Error(`KW_ADDON_PATH=${explicit} does not exist`);
    return require(path.resolve(explicit)) as Binding;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require('node-gyp-build')(packageRoot) as Binding;
  } catch (err) {
    throw new Error(
      `kernelwarehouse: no native addon fits this machine (${describeMachine()}).\n` +
        `Looked in ${path.join(packageRoot, 'prebuilds')} and ${path.join(packageRoot, 'build', 'Release')}.\n` +
        `Build it from source (from a git checkout; needs cmake and g++, and libopenblas-dev for the fast GEMM):\n` +
        `  cd ${packageRoot} && npx cmake-js compile\n` +
        `Cause: ${(err as Error).message}`,
    );
  }
}

export const native: Binding = load();

const pkgVersion: string = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version;
const addonVersion = native.buildInfo().version;
if (addonVersion !== pkgVersion) {
  throw new Error(
    `kernelwarehouse: the native addon is version ${addonVersion} but the package is ${pkgVersion}; ` +
      `rebuild it with: cd ${packageRoot} && npx cmake-js compile`,
  );
}
