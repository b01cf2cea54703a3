#!/usr/bin/env node
// kw-train: train and evaluate KernelWarehouse models as upstream main.py does, with its flag
// names (--kw_config, --batch_size, --data_path, ...). With no arguments it runs the built-in
// default: a small KW ResNet and the same network without KW, trained the same way on the
// Fashion-MNIST subset that ships with the package, side by side.
import { Args, helpText, parseArgs } from './args';
import { buildDatasets, buildLoaders } from './datasets';
import { printDoctor } from './doctor';
import { relaunch } from './launch';
import { getWorld, initDistributed, launcherEnv, World } from '../distributed/world';
import { printSummary } from './summary';
import { createModelFromArgs } from '../models/registry';
import { Generator } from '../random';
import { native } from '../native';
import { buildInfo } from '../runtime';
import { countParameters, evaluate, train, TrainArgs, TrainResult } from '../train/trainer';
import { loadModelWeights } from '../train/checkpoint';
import { formatDuration } from '../train/progress';

/** The built-in default recipe (flags as a user would type them). */
export const DEFAULT_RECIPE = [
  '--data_set', 'IDX', '--input_size', '28', '--crop_padding', '0', '--epochs', '4', '--batch_size', '64',
  '--opt', 'sgd', '--lr', '0.1', '--momentum', '0.9', '--weight_decay', '5e-4', '--warmup_epochs', '0', '--min_lr', '1e-4',
  '--smoothing', '0', '--mixup', '0', '--cutmix', '0', '--temp_epoch', '1', '--drop_path', '0', '--dropout', '0',
  '--sharing_range', 'layer', 'conv', '--device', 'cpu', '--seed', '0', '--num_workers', '2',
];
export const DEFAULT_MODELS = ['kw_resnet_mini', 'resnet_mini'];

interface RunOutcome {
  model: string;
  params: number;
  result: TrainResult | null;
  acc1: number;
  seconds: number;
}

async function runTraining(args: Args, label = ''): Promise<RunOutcome> {
  const t0 = Date.now();
  const world = getWorld();
  // rank 0 speaks for the job; the other ranks print only errors
  const say = world.isMain ? (s: string) => console.log(s) : () => undefined;
  const data = buildDatasets(args);
  args.nb_classes = data.numClasses;
  const generator = new Generator(Number(args.seed));
  const build = () => createModelFromArgs(args, { inChans: data.inChans, generator });
  const model = build();
  const params = countParameters(model);
  say(`${label}model ${args.model}: ${params.toLocaleString('en-US')} parameters; data: ${data.description}`);
  if (world.distributed) {
    say(`${label}data-parallel: ${world.size} ranks (${world.library!.version}), ${buildInfo().threads} thread(s) each, batch ${args.batch_size} per rank = ${Number(args.batch_size) * world.size} in all; ` +
      `rank 0 writes logs and checkpoints. If a rank dies, mpirun stops them all` + (args.output_dir ? `; the same command then resumes from ${args.output_dir}` : ''));
    if (args.dist_eval && data.val && data.val.labels.length % world.size !== 0)
      say(`${label}note: --dist_eval with ${data.val.labels.length} test images on ${world.size} ranks repeats ${world.size - (data.val.labels.length % world.size)} of them (as upstream's sampler pads), which changes the accuracy slightly`);
  }
  if (args.use_amp) say(`${label}note: --use_amp is ignored on the CPU (float32 throughout)`);
  const loaders = buildLoaders(data, args, world);
  let stop = false;
  const onSigint = () => {
    if (stop) process.exit(130);
    stop = true;
    say(
      `\n${label}interrupted: stopping after this step` +
        (args.output_dir && args.save_ckpt ? ` and saving a checkpoint in ${args.output_dir}` : ' (no --output_dir: nothing will be saved)') +
        ' (Ctrl-C again to quit now, losing this epoch)',
    );
  };
  process.on('SIGINT', onSigint);
  try {
    if (args.eval) {
      const from = String(args.resume || '');
      if (!from) throw new Error('--eval true needs --resume <checkpoint> (a .safetensors checkpoint or an official .pth)');
      loadModelWeights(from, model, { strict: true, modelKey: String(args.model_key), modelPrefix: String(args.model_prefix) });
      if (!loaders.val) throw new Error('--eval true with --disable_eval true leaves nothing to do');
      if (args.device === 'cuda') model.to('cuda');
      const r = await evaluate(model, loaders.val, 0, loaders.val.opts.sampler ? world : undefined);
      say(`${label}* Acc@1 ${r.acc1.toFixed(3)} Acc@5 ${r.acc5.toFixed(3)} loss ${r.loss.toFixed(3)}`);
      return { model: String(args.model), params, result: null, acc1: r.acc1, seconds: (Date.now() - t0) / 1000 };
    }
    const result = await train({
      model,
      trainLoader: loaders.train,
      evalLoader: loaders.val,
      args: args as unknown as TrainArgs,
      device: args.device === 'cuda' ? 'cuda' : 'cpu', // checked in main(): usable, or refused
      createEmaModel: build,
      isConvnext: String(args.model).includes('convnext'),
      mixup: loaders.mixup,
      label,
      shouldStop: () => stop,
      world,
    });
    const last = result.history[result.history.length - 1];
    const acc1 = last?.test_acc1 ?? NaN;
    if (result.stopped) {
      say(`${label}stopped by Ctrl-C after ${formatDuration((Date.now() - t0) / 1000)}` + (args.output_dir && args.save_ckpt ? `; run the same command again to continue` : ''));
      return { model: String(args.model), params, result, acc1, seconds: (Date.now() - t0) / 1000 };
    }
    say(`${label}done in ${formatDuration((Date.now() - t0) / 1000)}: max accuracy ${result.maxAccuracy.toFixed(2)}%` + (args.output_dir ? `; checkpoints and log.txt in ${args.output_dir}` : ''));
    return { model: String(args.model), params, result, acc1, seconds: (Date.now() - t0) / 1000 };
  } finally {
    process.off('SIGINT', onSigint);
    await loaders.train.close();
    await loaders.val?.close();
    model.dispose();
  }
}

/** Flags that pick a model or data; without any of them kw-train runs the built-in default. */
const CHOOSES_THE_JOB = ['model', 'kw_config', 'data_path', 'data_set', 'eval', 'resume', 'finetune'];

/** The built-in default; `overrides` (flags the user gave, e.g. --epochs 1) win over its recipe. */
async function defaultRun(overrides: string[]): Promise<number> {
  const info = buildInfo();
  const say = getWorld().isMain ? (s: string) => console.log(s) : () => undefined;
  say(`kernelwarehouse ${info.version}: the built-in default run (${info.threads} threads, ${info.gemm.split(' ').slice(0, 2).join(' ')})`);
  say(`Trains ${DEFAULT_MODELS.join(' and ')} the same way on the bundled Fashion-MNIST subset.`);
  say(`The same command by hand: npx kw-train --model <name> ${DEFAULT_RECIPE.join(' ')}\n`);
  const outcomes: RunOutcome[] = [];
  for (const name of DEFAULT_MODELS) {
    const o = await runTraining(parseArgs(['--model', name, ...DEFAULT_RECIPE, ...overrides]), `[${name}] `);
    outcomes.push(o);
    if (o.result?.stopped) return 130; // Ctrl-C stops the whole comparison, not just this model
  }
  say('\nmodel             parameters   test acc@1   time');
  for (const o of outcomes) say(`${o.model.padEnd(16)}  ${o.params.toLocaleString('en-US').padStart(10)}   ${o.acc1.toFixed(2).padStart(9)}%   ${formatDuration(o.seconds)}`);
  return 0;
}

/** Runs kw-train with these arguments and returns its exit code. */
export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    console.error(`kw-train: ${(e as Error).message}\n(kw-train --help lists the flags)`);
    return 2;
  }
  if (args.help) {
    console.log(helpText());
    return 0;
  }
  if (args.doctor) {
    printDoctor(args.json === true);
    return 0;
  }
  if (args.summary) {
    try {
      printSummary(args, args.json === true);
    } catch (e) {
      console.error(`kw-train: ${(e as Error).message}`);
      return 2; // a bad model name or config, like a bad flag
    }
    return 0;
  }
  // upstream's default device is cuda; here a GPU must be asked for, and is refused clearly
  // (built without CUDA, library missing, no device visible, driver too old) when unusable
  const explicitDevice = argv.some((a) => a === '--device' || a.startsWith('--device='));
  if (!explicitDevice) args.device = 'cpu';
  if (args.device !== 'cpu' && args.device !== 'cuda') {
    console.error(`kw-train: --device ${args.device}: expected cpu or cuda`);
    return 2;
  }
  if (args.device === 'cuda') {
    const cuda = native.cudaInfo();
    if (!cuda.available) {
      console.error(`kw-train: --device cuda: ${cuda.reason}; use --device cpu`);
      return 1;
    }
  }
  const nproc = Number(args.nproc_per_node);
  const launched = launcherEnv();
  if (nproc < 1) {
    console.error(`kw-train: --nproc_per_node must be at least 1, got ${nproc}`);
    return 2;
  }
  if (nproc > 1 && !launched) return relaunch(nproc, __filename, argv, String(args.output_dir || ''));
  const world = launched ? initDistributed() : getWorld();
  if (world.isMain) {
    if (argv.some((a) => a.startsWith('--dist_url') || a.startsWith('--dist-url')))
      console.log(`note: --dist_url ${args.dist_url} is ignored: ranks find each other through MPI (mpirun), not a URL`);
    const ws = Number(args.world_size);
    if (argv.some((a) => a.startsWith('--world_size') || a.startsWith('--world-size')) && ws !== world.size)
      console.log(
        `note: --world_size ${ws} is ignored: the world size is the number of ranks mpirun started (${world.size})` +
          (world.size === 1 ? `; to run ${ws} ranks use --nproc_per_node ${ws} or mpirun -np ${ws} kw-train ...` : ''),
      );
  }
  const named = argv.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0].replace(/-/g, '_'));
  const code = !named.some((n) => CHOOSES_THE_JOB.includes(n)) ? await defaultRun(argv) : (await runTraining(args)).result?.stopped ? 130 : 0;
  if (world.distributed) world.finalize();
  return code;
}

/** A rank that fails stops the whole job (otherwise the others would wait for it forever). */
function failRank(world: World, e: Error): never {
  return world.abort(`kw-train rank ${world.rank} of ${world.size}: ${e.message}\nkw-train: stopping all ${world.size} ranks`);
}

if (require.main === module)
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: Error) => {
      const world = getWorld();
      if (world.distributed) failRank(world, e);
      console.error(`kw-train: ${e.message}`);
      process.exitCode = 1;
    },
  );
