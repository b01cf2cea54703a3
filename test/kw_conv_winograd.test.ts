// The Winograd strategy runs F(2×2, 3×3) or F(4×4, 3×3), by cost; test/kw_conv.test.ts covers
// each only where its shapes lead there. This file reruns it (every strategy against kwAssemble +
// convNd, finite differences) in child processes with KW_WINOGRAD_TILE fixing the tile of every
// 'winograd' request, so both run on every Winograd case, forward and all gradients.
import t from 'tap';
import { spawnSync } from 'child_process';
import * as path from 'path';

for (const tile of ['2', '4']) {
  t.test(`kwConv with Winograd tiles of ${tile}×${tile} outputs`, (t) => {
    const r = spawnSync(process.execPath, [...process.execArgv, path.join(__dirname, 'kw_conv.test.ts')], {
      encoding: 'utf8', env: { ...process.env, KW_WINOGRAD_TILE: tile }, timeout: 300_000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    t.match(out, new RegExp(`ok \\d+ - KW_WINOGRAD_TILE=${tile} fixes a request's tile`), 'the child ran with the tile fixed');
    t.equal(r.status, 0, `the child's tests pass${r.status === 0 ? '' : `:\n${out.split('\n').filter((l) => /not ok|Error/.test(l)).slice(0, 20).join('\n')}`}`);
    t.match(out, /# \{ total: \d+, pass: \d+ \}|\n1\.\.\d+/, 'the child reported its tests');
    t.end();
  });
}
