// The KW panel kernels (native/cpu/simd_gemm.cpp) exist in AVX-512, AVX2 and baseline x86-64
// versions, chosen once by CPUID. The test run covers the machine's best; this file reruns
// test/kw_conv.test.ts (every strategy against kwAssemble + convNd, finite differences) in child
// processes with KW_SIMD lowering the choice, so the other versions are checked too.
import t from 'tap';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { buildInfo } from '../lib';

const isaOf = (gemm: string) => /KW kernels: (\w+)/.exec(gemm)?.[1];
const best = isaOf(buildInfo().gemm);
t.ok(best && ['avx512', 'avx2', 'baseline'].includes(best), `this process runs the ${best} kernels`);

for (const isa of ['avx2', 'baseline']) {
  const skip = best === 'baseline' && isa === 'avx2' ? 'this CPU has no AVX2' : false;
  t.test(`kwConv with the ${isa} kernels`, { skip }, (t) => {
    const r = spawnSync(process.execPath, [...process.execArgv, path.join(__dirname, 'kw_conv.test.ts')], {
      encoding: 'utf8', env: { ...process.env, KW_SIMD: isa }, timeout: 300_000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    t.match(out, new RegExp(`# KW kernels: ${isa}\\b`), 'the child ran the requested kernels');
    t.equal(r.status, 0, `the child's tests pass${r.status === 0 ? '' : `:\n${out.split('\n').filter((l) => /not ok|Error/.test(l)).slice(0, 20).join('\n')}`}`);
    t.match(out, /# \{ total: \d+, pass: \d+ \}|\n1\.\.\d+/, 'the child reported its tests');
    t.end();
  });
}
