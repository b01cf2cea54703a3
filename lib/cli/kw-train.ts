#!/usr/bin/env node
// kw-train: the command-line trainer. The training recipe lands with the training issue;
// until then it checks that the native core loads and says what is available.
import { buildInfo } from '../runtime';
import { parseArgs } from './args';
import { printSummary } from './summary';

// --- model summary (lib/cli/summary.ts): `--summary [--json]` prints and exits -------------
function summaryMain(argv: string[]): number {
  try {
    const args = parseArgs(argv);
    printSummary(args, args.json === true);
    return 0;
  } catch (e) {
    console.error(`kw-train: ${(e as Error).message}`);
    return 2;
  }
}
// ---------------------------------------------------------------------------------------------

function main(argv: string[]): number {
  if (argv.includes('--summary')) return summaryMain(argv);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log('usage: kw-train [--kw_config <config.json>] [flags]\n\nTraining is not implemented yet in this version.');
    return 0;
  }
  const info = buildInfo();
  console.log(`kernelwarehouse ${info.version} (native core: ${info.gemm}, ${info.threads} threads)`);
  console.log('kw-train: training is not available yet in this version (see the README for what is).');
  return 0;
}

process.exitCode = main(process.argv.slice(2));
