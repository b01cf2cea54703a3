// The training loop of upstream's main.py / engine.py: per-iteration cosine lr and weight
// decay, KW temperature annealing, gradient accumulation, clipping, EMA, evaluation,
// checkpoints (rotating, best, best-ema), auto-resume and log.txt with one JSON line per epoch.
import * as fs from 'fs';
import * as path from 'path';
import { noGrad } from '../autograd';
import { DataLoader } from '../data/loader';
import { averageGradients, broadcastModule } from '../distributed/ddp';
import { World } from '../distributed/world';
import { updateTemperature } from '../kw/manager';
import { KWAttention } from '../kw/attention';
import { Module } from '../nn/module';
import { crossEntropy } from '../ops/loss';
import { mulScalar } from '../ops/elementwise';
import { defaultGenerator } from '../random';
import { Device, Tensor, tidy } from '../tensor';
import { disposeCheckpoint, INTERRUPTED_CHECKPOINT, latestCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { ModelEma } from './ema';
import { clipGradNorm, Optimizer } from './optim';
import { createOptimizer } from './optim_factory';
import { formatDuration, Progress } from './progress';
import { cosineSchedule, temperature } from './schedule';

export interface TrainableModel extends Module {
  forward(x: Tensor): Tensor;
}

/** The subset of kw-train's (upstream-named) arguments the loop reads. */
export interface TrainArgs {
  epochs: number;
  update_freq: number;
  opt: string;
  lr: number;
  min_lr: number;
  weight_decay: number;
  weight_decay_end: number | null;
  momentum: number;
  opt_eps: number;
  opt_betas: number[] | null;
  layer_decay: number;
  warmup_epochs: number;
  warmup_steps: number;
  clip_grad: number | null;
  smoothing: number;
  temp_epoch: number;
  temp_init_value: number;
  model_ema: boolean;
  model_ema_decay: number;
  model_ema_eval: boolean;
  output_dir: string;
  save_ckpt: boolean;
  save_ckpt_freq: number;
  save_ckpt_num: number;
  auto_resume: boolean;
  resume: string;
  start_epoch: number;
  disable_eval: boolean;
  [key: string]: unknown;
}

export interface EpochStats {
  epoch: number;
  train_loss: number;
  train_lr: number;
  train_min_lr: number;
  train_weight_decay: number;
  train_class_acc?: number;
  test_loss?: number;
  test_acc1?: number;
  test_acc5?: number;
  test_loss_ema?: number;
  test_acc1_ema?: number;
  test_acc5_ema?: number;
  n_parameters: number;
  seconds: number;
}

export interface StepInfo {
  epoch: number;
  step: number;
  steps: number;
  loss: number;
  lr: number;
  temperature: number | null;
}

export interface TrainOptions {
  model: TrainableModel;
  trainLoader: DataLoader;
  evalLoader?: DataLoader | null;
  args: TrainArgs;
  /**
   * 'cuda' trains on the GPU: the model, its optimizer state and each batch move there. Default
   * cpu (not args.device, whose upstream default is cuda: kw-train passes it when asked for).
   */
  device?: Device;
  /** Builds a second, identically shaped model (for --model_ema). */
  createEmaModel?: () => TrainableModel;
  /** ConvNeXt: apply --layer_decay with its layer ids. */
  isConvnext?: boolean;
  /** Soft targets come from the loader (mixup/cutmix active). */
  mixup?: boolean;
  log?: (line: string) => void;
  progress?: Progress;
  onStep?: (s: StepInfo) => void;
  onEpoch?: (s: EpochStats) => void;
  /**
   * Checked after every optimizer step: when it returns true, training stops there and (with
   * --output_dir and --save_ckpt) saves checkpoint-interrupted.safetensors, from which
   * auto-resume continues mid-epoch exactly where this run stopped.
   */
  shouldStop?: () => boolean;
  label?: string;
  /**
   * Data-parallel runs (lib/distributed): gradients are averaged over the ranks before each step, rank
   * 0's weights are copied to all at the start, statistics are summed over ranks, and only rank 0
   * logs and writes files. The loaders should hold this rank's DistributedSampler.
   */
  world?: World;
}

export interface TrainResult {
  history: EpochStats[];
  maxAccuracy: number;
  maxAccuracyEma: number;
  numParameters: number;
  stopped: boolean;
}

export function countParameters(model: Module): number {
  return model.parameters().reduce((n, p) => n + p.numel, 0);
}

function hasKw(model: Module): boolean {
  return model.modules().some((m) => m instanceof KWAttention);
}

/** A loader batch on `device`: moved (the host copies are disposed) unless already there. */
function onDevice(b: { x: Tensor; y: Tensor }, device: Device): { x: Tensor; y: Tensor } {
  if (device === 'cpu') return b;
  const moved = { x: b.x.to(device), y: b.y.to(device) };
  b.x.dispose();
  b.y.dispose();
  return moved;
}

/** Top-1 and top-5 hits of a batch (logits [B, C], integer labels). */
export function topk(logits: Tensor, labels: Tensor): { top1: number; top5: number } {
  const [B, C] = logits.shape;
  const out = logits.data() as Float32Array;
  const y = Array.from(labels.data() as ArrayLike<number | bigint>, Number);
  let top1 = 0, top5 = 0;
  for (let b = 0; b < B; b++) {
    const row = out.subarray(b * C, (b + 1) * C);
    const target = row[y[b]];
    let above = 0; // classes ranked before the target (ties broken by index, as topk does)
    for (let c = 0; c < C; c++) if (row[c] > target || (row[c] === target && c < y[b])) above++;
    if (above < 1) top1++;
    if (above < Math.min(5, C)) top5++;
  }
  return { top1, top5 };
}

/**
 * Evaluation as upstream's evaluate(): mean batch loss, accuracy weighted by batch size. With a
 * `world`, each rank evaluates its loader's share and the sums are gathered (upstream's
 * --dist_eval, padded samples included as torch's sampler pads them).
 */
export async function evaluate(model: TrainableModel, loader: DataLoader, epoch = 0, world?: World): Promise<{ loss: number; acc1: number; acc5: number }> {
  model.eval();
  const device: Device = model.parameters()[0]?.device ?? 'cpu';
  let lossSum = 0, batches = 0, n = 0, top1 = 0, top5 = 0;
  for await (const batch of loader.epoch(epoch)) {
    const { x, y } = onDevice(batch, device);
    noGrad(() =>
      tidy(() => {
        const out = model.forward(x);
        lossSum += crossEntropy(out, y).item();
        const k = topk(out, y);
        top1 += k.top1;
        top5 += k.top5;
      }),
    );
    batches++;
    n += y.shape[0];
    x.dispose();
    y.dispose();
  }
  if (world) [lossSum, batches, n, top1, top5] = world.sumNumbers([lossSum, batches, n, top1, top5]);
  return { loss: lossSum / Math.max(1, batches), acc1: (100 * top1) / Math.max(1, n), acc5: (100 * top5) / Math.max(1, n) };
}

/**
 * Makes log.txt hold one line per epoch before `startEpoch` and none after, so a resumed run
 * logs every epoch once: drops lines of epochs about to be redone (a kill after the log append
 * but before the next checkpoint) and restores the checkpointed epoch's own line when a kill
 * came between its save and its append. Rewritten atomically.
 */
function repairLog(file: string, startEpoch: number, checkpointLine: Record<string, unknown> | null): void {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const lines: string[] = [];
  const epochs = new Set<number>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let epoch: unknown;
    try {
      epoch = JSON.parse(line).epoch;
    } catch {
      continue; // a line torn by a kill mid-append
    }
    if (typeof epoch === 'number' && epoch < startEpoch && !epochs.has(epoch)) {
      epochs.add(epoch);
      lines.push(line);
    }
  }
  const ckEpoch = checkpointLine?.epoch;
  if (typeof ckEpoch === 'number' && ckEpoch < startEpoch && !epochs.has(ckEpoch)) {
    lines.push(JSON.stringify(checkpointLine));
    epochs.add(ckEpoch);
  }
  const out = lines.map((l) => l + '\n').join('');
  if (out === text) return;
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, out);
  fs.renameSync(temp, file);
}

/**
 * Trains `model` as upstream's main.py does and returns the per-epoch statistics.
 * @example const result = await train({ model, trainLoader, evalLoader, args });
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const { model, trainLoader, args } = o;
  const device: Device = o.device ?? 'cpu';
  // Before the optimizer exists, so its state is created beside the parameters.
  if (device !== 'cpu') model.to(device);
  const world = o.world ?? World.single();
  const main = world.isMain; // the rank that prints and writes
  const log = main ? o.log ?? ((s: string) => console.log(s)) : () => undefined;
  const progress = main ? o.progress ?? new Progress() : new Progress(() => undefined, false);
  const label = o.label ? `${o.label} ` : '';
  const updateFreq = Math.max(1, args.update_freq);
  const itersPerEpoch = trainLoader.length;
  const stepsPerEpoch = Math.floor(itersPerEpoch / updateFreq);
  if (stepsPerEpoch < 1) throw new Error(`the training set gives ${itersPerEpoch} batches per epoch, fewer than --update_freq ${updateFreq}`);
  const optimizer: Optimizer = createOptimizer(
    model,
    { opt: args.opt, lr: args.lr, weightDecay: args.weight_decay, momentum: args.momentum, optEps: args.opt_eps, optBetas: args.opt_betas, layerDecay: args.layer_decay },
    !!o.isConvnext,
  );
  // Upstream asserts when the warmup is longer than the run (e.g. its default 20 warmup epochs
  // with --epochs 1); here the warmup is cut to the run's length, with a note.
  let warmupEpochs = args.warmup_epochs, warmupSteps = args.warmup_steps;
  if (warmupSteps > 0 ? warmupSteps > args.epochs * stepsPerEpoch : warmupEpochs > args.epochs) {
    log(`${label}note: the warmup (${warmupSteps > 0 ? `${warmupSteps} steps` : `${warmupEpochs} epochs`}) is longer than the run; warming up over all ${args.epochs} epoch(s) instead`);
    warmupEpochs = Math.min(warmupEpochs, args.epochs);
    warmupSteps = warmupSteps > 0 ? args.epochs * stepsPerEpoch : warmupSteps;
  }
  const lrs = cosineSchedule(args.lr, args.min_lr, args.epochs, stepsPerEpoch, warmupEpochs, 0, warmupSteps);
  const wdEnd = args.weight_decay_end ?? args.weight_decay;
  const wds = cosineSchedule(args.weight_decay, wdEnd, args.epochs, stepsPerEpoch);
  const ema = args.model_ema && o.createEmaModel ? new ModelEma(o.createEmaModel().to(device), args.model_ema_decay, model) : null;
  const kw = hasKw(model);
  const numParameters = countParameters(model);
  const outDir = args.output_dir;
  const writes = !!outDir && main;
  if (writes) fs.mkdirSync(outDir, { recursive: true });

  let startEpoch = args.start_epoch;
  let maxAccuracy = 0, maxAccuracyEma = 0;
  // where an interrupted epoch stopped: data iterations done and its running statistics
  let resumeIter = 0;
  let resumeStats: Record<string, number> | null = null;
  let savedLogLine: Record<string, unknown> | null = null;
  // rank 0 picks the checkpoint and every rank loads that one (the ranks share the file system)
  const resumeFrom = world.broadcastJSON(main ? args.resume || (args.auto_resume && outDir ? latestCheckpoint(outDir) : null) : null);
  if (resumeFrom) {
    const ck = loadCheckpoint(resumeFrom);
    try {
      model.loadStateDict(ck.model);
      optimizer.loadStateDict(ck.optimizer, ck.meta.optimizer);
      if (ema) ema.ema.loadStateDict(ck.modelEma ?? ck.model);
      if (ck.meta.generator) defaultGenerator.setState(ck.meta.generator);
      if (typeof ck.meta.epoch === 'number') startEpoch = ck.meta.epoch + 1;
      maxAccuracy = Number(ck.meta.extra.max_accuracy ?? 0);
      maxAccuracyEma = Number(ck.meta.extra.max_accuracy_ema ?? 0);
      savedLogLine = (ck.meta.extra.log as Record<string, unknown> | undefined) ?? null;
      const within = ck.meta.extra.interrupted as { iter: unknown; stats: Record<string, unknown> } | undefined;
      if (within && typeof ck.meta.epoch === 'number') {
        const keys = ['lossSum', 'lossCount', 'hits', 'seen', 'images'];
        if (!Number.isInteger(within.iter) || (within.iter as number) < 0 || (within.iter as number) > itersPerEpoch ||
            typeof within.stats !== 'object' || !keys.every((k) => typeof within.stats?.[k] === 'number'))
          throw new Error(`${resumeFrom}: metadata 'extra.interrupted' is malformed (expected {iter, stats: {${keys.join(', ')}}})`);
        // skipping the trained batches replays the same order only with the same batching
        for (const k of ['batch_size', 'update_freq', 'seed'])
          if (ck.meta.args[k] !== undefined && args[k] !== undefined && ck.meta.args[k] !== args[k])
            throw new Error(
              `${resumeFrom} stopped mid-epoch with --${k} ${ck.meta.args[k]}, this run has --${k} ${args[k]}: ` +
                `continue with the same value, or delete that file to restart from the last completed epoch`,
            );
        startEpoch = ck.meta.epoch; // the epoch in progress, not the next one
        resumeIter = within.iter as number;
        resumeStats = within.stats as Record<string, number>;
      }
    } finally {
      disposeCheckpoint(ck);
    }
    log(`${label}resumed from ${resumeFrom} at epoch ${startEpoch}` + (resumeIter ? `, iteration ${resumeIter}` : ''));
    if (writes && path.resolve(path.dirname(resumeFrom)) === path.resolve(outDir)) repairLog(path.join(outDir, 'log.txt'), startEpoch, savedLogLine);
  }

  // A failed save (full disk, I/O error) leaves the previous checkpoints as they were (the
  // write goes to a temp file renamed into place) and stops training with the file's name.
  const saveTo = (file: string, epoch: number | string, extra: Record<string, unknown> = {}) => {
    try {
      saveCheckpoint(file, {
        model: model.stateDict(),
        modelEma: ema ? ema.ema.stateDict() : null,
        optimizer: optimizer.stateDict(),
        epoch,
        args: args as Record<string, unknown>,
        generator: defaultGenerator.state(),
        extra: { max_accuracy: maxAccuracy, max_accuracy_ema: maxAccuracyEma, ...extra },
      });
    } catch (e) {
      const kept = latestCheckpoint(outDir);
      throw new Error(
        `${label}could not save checkpoint ${file}: ${(e as Error).message}. Training stopped; ` +
          (kept ? `the previous checkpoint ${kept} is intact and auto-resume continues from it` : 'no earlier checkpoint exists') +
          ' (free disk space and run the same command again)',
      );
    }
  };
  const save = (name: string, epoch: number | string, extra?: Record<string, unknown>) =>
    saveTo(path.join(outDir, `checkpoint-${name}.safetensors`), epoch, extra);

  // DDP starts every rank from rank 0's weights (their own initialisations may differ)
  broadcastModule(world, model);
  if (ema) broadcastModule(world, ema.ema);

  const history: EpochStats[] = [];
  let stopped = false;
  for (let epoch = startEpoch; epoch < args.epochs && !stopped; epoch++) {
    const t0 = Date.now();
    model.train();
    optimizer.zeroGrad();
    let lossSum = 0, lossCount = 0, hits = 0, seen = 0, images = 0;
    let lr = 0, temp: number | null = null;
    let dataIterStep = 0;
    const skip = resumeIter;
    if (resumeStats) ({ lossSum, lossCount, hits, seen, images } = resumeStats);
    resumeIter = 0;
    resumeStats = null;
    for await (const batch of trainLoader.epoch(epoch)) {
      const { x, y } = onDevice(batch, device);
      const step = Math.floor(dataIterStep / updateFreq);
      // batches an interrupted run already trained on (the order is a function of seed and epoch)
      if (step >= stepsPerEpoch || dataIterStep < skip) {
        x.dispose();
        y.dispose();
        dataIterStep++;
        continue;
      }
      const it = epoch * stepsPerEpoch + step;
      lr = lrs[it];
      optimizer.setLr(lrs[it], wds[it]);
      if (kw) {
        temp = temperature(epoch, dataIterStep, itersPerEpoch, args.temp_epoch, args.temp_init_value);
        updateTemperature(model, temp);
      }
      const lossValue = tidy(() => {
        const out = model.forward(x);
        const loss = o.mixup ? crossEntropy(out, y) : crossEntropy(out, y, { labelSmoothing: args.smoothing });
        const v = loss.item();
        if (!Number.isFinite(v))
          throw new Error(`${label}loss is ${v} at epoch ${epoch}, iteration ${dataIterStep}: stopping training (lower --lr or enable --clip_grad)`);
        (updateFreq > 1 ? mulScalar(loss, 1 / updateFreq) : loss).backward();
        if (!o.mixup) {
          const k = topk(out, y);
          hits += k.top1;
          seen += y.shape[0];
        }
        return v;
      });
      if ((dataIterStep + 1) % updateFreq === 0) {
        averageGradients(world, model);
        if (args.clip_grad !== null && args.clip_grad !== undefined) clipGradNorm(model.parameters(), args.clip_grad);
        optimizer.step();
        optimizer.zeroGrad();
        ema?.update(model);
      }
      images += x.shape[0];
      x.dispose();
      y.dispose();
      lossSum += lossValue;
      lossCount++;
      dataIterStep++;
      const elapsed = (Date.now() - t0) / 1000;
      const rate = (images * world.size) / Math.max(elapsed, 1e-9); // all ranks together
      const eta = ((itersPerEpoch - dataIterStep) * elapsed) / dataIterStep;
      progress.update(
        `${label}epoch ${epoch + 1}/${args.epochs} [${dataIterStep}/${itersPerEpoch}] loss ${(lossSum / lossCount).toFixed(4)}` +
          (seen ? ` acc ${((100 * hits) / seen).toFixed(1)}%` : '') +
          ` lr ${lr.toExponential(2)}` +
          (temp !== null ? ` temp ${temp.toFixed(3)}` : '') +
          ` ${rate.toFixed(0)} img/s ETA ${formatDuration(eta)}`,
      );
      o.onStep?.({ epoch, step: dataIterStep, steps: itersPerEpoch, loss: lossValue, lr, temperature: temp });
      // stop only between optimizer steps: no half-accumulated gradients to lose
      if (o.shouldStop && dataIterStep % updateFreq === 0) {
        // prefetched batches resolve as microtasks, which would keep a SIGINT handler (a
        // macrotask) from running until the epoch ends: give the event loop a turn first
        await new Promise((r) => setImmediate(r));
      }
      // a stop must be agreed by all ranks at the same step, or the others wait forever
      if (dataIterStep % updateFreq === 0 && o.shouldStop && (world.distributed ? world.sumNumbers([o.shouldStop() ? 1 : 0])[0] > 0 : o.shouldStop())) {
        const where = `in epoch ${epoch + 1}/${args.epochs} after iteration ${dataIterStep}/${itersPerEpoch}`;
        stopped = true;
        if (outDir && args.save_ckpt) {
          const file = path.join(outDir, INTERRUPTED_CHECKPOINT);
          if (main) saveTo(file, epoch, { interrupted: { iter: dataIterStep, stats: { lossSum, lossCount, hits, seen, images } } });
          progress.done(`${label}stopped ${where}: saved ${file}; the same command (with --auto_resume, the default) continues from there`);
        } else {
          progress.done(`${label}stopped ${where} (no --output_dir with --save_ckpt: nothing saved)`);
        }
        break;
      }
    }
    // upstream's metric_logger.synchronize_between_processes: the epoch's statistics over all ranks
    if (world.distributed) [lossSum, lossCount, hits, seen] = world.sumNumbers([lossSum, lossCount, hits, seen]);
    // rank 0's BatchNorm running statistics on every rank, as DDP's buffer broadcast leaves them
    world.broadcast(model.buffers());
    const groupsLr = optimizer.groups.map((g) => g.lr);
    const stats: EpochStats = {
      epoch,
      train_loss: lossSum / Math.max(1, lossCount),
      train_lr: Math.max(...groupsLr),
      train_min_lr: Math.min(...groupsLr),
      train_weight_decay: optimizer.groups.find((g) => g.weightDecay > 0)?.weightDecay ?? 0,
      n_parameters: numParameters,
      seconds: 0,
    };
    if (seen) stats.train_class_acc = hits / seen;
    if (o.evalLoader && !args.disable_eval && !stopped) {
      const distEval = o.evalLoader.opts.sampler ? world : undefined;
      const r = await evaluate(model, o.evalLoader, epoch, distEval);
      Object.assign(stats, { test_loss: r.loss, test_acc1: r.acc1, test_acc5: r.acc5 });
      if (r.acc1 > maxAccuracy) {
        maxAccuracy = r.acc1;
        if (writes && args.save_ckpt) save('best', 'best');
      }
      if (ema && args.model_ema_eval) {
        const re = await evaluate(ema.ema as TrainableModel, o.evalLoader, epoch, distEval);
        Object.assign(stats, { test_loss_ema: re.loss, test_acc1_ema: re.acc1, test_acc5_ema: re.acc5 });
        if (re.acc1 > maxAccuracyEma) {
          maxAccuracyEma = re.acc1;
          if (writes && args.save_ckpt) save('best-ema', 'best-ema');
        }
      }
    }
    stats.seconds = (Date.now() - t0) / 1000;
    if (writes && args.save_ckpt && !stopped && ((epoch + 1) % args.save_ckpt_freq === 0 || epoch + 1 === args.epochs)) {
      // the epoch's log line rides in its checkpoint: a kill between the save and the log
      // append is repaired on resume
      const { seconds, ...logged } = stats;
      void seconds;
      save(String(epoch), epoch, { log: logged });
      const old = path.join(outDir, `checkpoint-${epoch - args.save_ckpt_num * args.save_ckpt_freq}.safetensors`);
      if (fs.existsSync(old)) fs.unlinkSync(old);
      fs.rmSync(path.join(outDir, INTERRUPTED_CHECKPOINT), { force: true }); // now behind us
    }
    if (!stopped) {
      if (writes) {
        const { seconds, ...logged } = stats;
        void seconds;
        fs.appendFileSync(path.join(outDir, 'log.txt'), JSON.stringify(logged) + '\n');
      }
      history.push(stats);
      progress.done(
        `${label}epoch ${epoch + 1}/${args.epochs}: train loss ${stats.train_loss.toFixed(4)}` +
          (stats.test_acc1 !== undefined ? `, test loss ${stats.test_loss!.toFixed(4)}, acc@1 ${stats.test_acc1.toFixed(2)}%` : '') +
          (stats.test_acc1_ema !== undefined ? `, EMA acc@1 ${stats.test_acc1_ema.toFixed(2)}%` : '') +
          ` (${formatDuration(stats.seconds)})`,
      );
      o.onEpoch?.(stats);
    }
  }
  optimizer.dispose();
  ema?.ema.dispose();
  return { history, maxAccuracy, maxAccuracyEma, numParameters, stopped };
}
