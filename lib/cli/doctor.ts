// `kw-train --doctor`: what is installed and what it can use, for bug reports and set-up checks.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native, packageRoot } from '../native';
import { commLibraryPath } from '../distributed/world';
import { findMpirun } from './launch';

export function doctorReport(): Record<string, unknown> {
  const info = native.buildInfo();
  const cuda = native.cudaInfo();
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8'));
  const prebuilt = path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return {
    package: `${pkg.name} ${pkg.version}`,
    addon: info.version,
    addonSource: fs.existsSync(prebuilt) && fs.readdirSync(prebuilt).some((f) => f.endsWith('.node')) ? `prebuilt (${prebuilt})` : 'built from source (build/Release)',
    node: process.version,
    napi: process.versions.napi,
    platform: `${process.platform}-${process.arch}`,
    libc: report?.header?.glibcVersionRuntime ? `glibc ${report.header.glibcVersionRuntime}` : 'unknown',
    cpu: `${os.cpus()[0]?.model ?? 'unknown'} × ${os.cpus().length}`,
    backends: cuda.available ? ['cpu', 'cuda'] : ['cpu'],
    gemm: info.gemm,
    threads: info.threads,
    cuda: info.cuda ? `built with CUDA (${cuda.library})` : 'not built (CPU only)',
    gpuVisible: cuda.available,
    gpu: cuda.available ? cuda.describe : cuda.reason,
    // data-parallel training (mpirun / --nproc_per_node) needs both
    mpi: fs.existsSync(commLibraryPath('mpi')) ? `built (${commLibraryPath('mpi')})` : 'not built (apt-get install libopenmpi-dev, then npx cmake-js compile)',
    mpirun: findMpirun() ?? 'not found (apt-get install openmpi-bin)',
  };
}

export function printDoctor(json: boolean): void {
  const r = doctorReport();
  if (json) {
    console.log(JSON.stringify(r));
    return;
  }
  const width = Math.max(...Object.keys(r).map((k) => k.length));
  for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(width)}  ${Array.isArray(v) ? v.join(', ') : v}`);
}
