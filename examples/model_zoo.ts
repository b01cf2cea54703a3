// The model zoo: build an official model by its upstream name and config, count its
// parameters, run it, and save / reload its weights.
// Run: npm run build:ts && node dist/examples/model_zoo.js
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as kw from '../lib';
import { createModel, createModelFromArgs } from '../lib/models';
import { parseArgs } from '../lib/cli/args';
import { loadStateDictFile, saveStateDict } from '../lib/io/checkpoint';

export function main(log: (s: string) => void = console.log): number {
  // an official config, as `--kw_config` reads it, with 10 classes
  const net = createModelFromArgs(parseArgs(['--kw_config', 'configs/resnet18/kw1d4x_resnet18.json', '--nb_classes', '10']));
  log(`kw_resnet18 (1/4x): ${net.numParameters().toLocaleString('en-US')} parameters`);
  net.dispose();
  const small = createModel('kw_resnet_mini', { inChans: 1, numClasses: 10, generator: new kw.Generator(0) });
  small.eval();
  const x = kw.randn([2, 1, 28, 28], { generator: new kw.Generator(1) });
  const before = kw.noGrad(() => small.forward(x)).data() as Float32Array;
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'zoo-')), 'mini.safetensors');
  saveStateDict(file, small);
  const copy = createModel('kw_resnet_mini', { inChans: 1, numClasses: 10, generator: new kw.Generator(9) });
  loadStateDictFile(file, copy, { strict: true });
  copy.eval();
  const after = kw.noGrad(() => copy.forward(x)).data() as Float32Array;
  const same = before.every((v, i) => v === after[i]);
  log(`reloaded weights give the same logits: ${same}`);
  return same ? 1 : 0;
}

if (require.main === module) main();
