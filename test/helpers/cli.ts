// Runs kw-train in-process and captures what it prints; makes the small data sets the CLI tests train on.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BUNDLED_DATA } from '../../lib/cli/datasets';
import { main } from '../../lib/cli/kw-train';
import { encodeIdx, loadIdxDataset } from '../../lib/data/idx';

export async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error, write = process.stdout.write;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
    process.stdout.write = write;
  }
}

/** A small Fashion-MNIST in IDX files (the first `train` / `test` images of the bundled subset), in a new temp folder. */
export function smallIdx(train: number, test: number, prefix = 'idx-small-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const [split, n] of [['train', train], ['t10k', test]] as const) {
    const d = loadIdxDataset(BUNDLED_DATA, split);
    fs.writeFileSync(path.join(dir, `${split}-images-idx3-ubyte`), encodeIdx([n, 28, 28], d.images.data.subarray(0, n * 784)));
    fs.writeFileSync(path.join(dir, `${split}-labels-idx1-ubyte`), encodeIdx([n], d.labels.subarray(0, n)));
  }
  return dir;
}
