// Training checkpoints: one safetensors file holding the model (`model.*`), its EMA
// (`model_ema.*`), the optimizer state (`optimizer.*`) and, in the metadata, the epoch, the
// args, the optimizer's plain values and the random generator, as upstream's checkpoint dict
// holds model / optimizer / epoch / scaler / args. Written atomically (temp file, fsync,
// rename), so a kill mid-write never leaves a broken latest checkpoint.
import * as fs from 'fs';
import * as path from 'path';
import { loadStateDictFile, rawToTensor, tensorToRaw } from '../io/checkpoint';
import { RawTensor, readSafetensors, writeSafetensors } from '../io/safetensors';
import type { Module } from '../nn/module';
import type { Tensor } from '../tensor';

export interface CheckpointContents {
  model: Map<string, Tensor>;
  modelEma: Map<string, Tensor> | null;
  optimizer: Map<string, Tensor>;
  meta: {
    epoch: number | string;
    args: Record<string, unknown>;
    optimizer: Record<string, unknown>;
    generator: { seed: number; offset: number } | null;
    extra: Record<string, unknown>;
  };
}

export interface SaveCheckpointInput {
  model: Map<string, Tensor>;
  modelEma?: Map<string, Tensor> | null;
  optimizer: { tensors: Map<string, Tensor>; meta: Record<string, unknown> };
  epoch: number | string;
  args: Record<string, unknown>;
  generator?: { seed: number; offset: number } | null;
  extra?: Record<string, unknown>;
}

export function saveCheckpoint(file: string, c: SaveCheckpointInput): void {
  const raw = new Map<string, RawTensor>();
  for (const [k, v] of c.model) raw.set(`model.${k}`, tensorToRaw(v));
  if (c.modelEma) for (const [k, v] of c.modelEma) raw.set(`model_ema.${k}`, tensorToRaw(v));
  for (const [k, v] of c.optimizer.tensors) raw.set(`optimizer.${k}`, tensorToRaw(v));
  writeSafetensors(file, raw, {
    format: 'kernelwarehouse-checkpoint',
    epoch: JSON.stringify(c.epoch),
    args: JSON.stringify(c.args),
    optimizer: JSON.stringify(c.optimizer.meta),
    scaler: '{}',
    generator: JSON.stringify(c.generator ?? null),
    extra: JSON.stringify(c.extra ?? {}),
  });
}

export function loadCheckpoint(file: string): CheckpointContents {
  const { tensors, metadata } = readSafetensors(file);
  if (metadata.format !== 'kernelwarehouse-checkpoint') throw new Error(`${file}: not a kernelwarehouse training checkpoint (no format tag)`);
  const parse = (key: string): unknown => {
    try {
      return JSON.parse(metadata[key] ?? 'null');
    } catch {
      throw new Error(`${file}: metadata '${key}' is not valid JSON`);
    }
  };
  const model = new Map<string, Tensor>(), ema = new Map<string, Tensor>(), opt = new Map<string, Tensor>();
  for (const [k, v] of tensors) {
    const dot = k.indexOf('.');
    const [prefix, name] = [k.slice(0, dot), k.slice(dot + 1)];
    const target = prefix === 'model' ? model : prefix === 'model_ema' ? ema : prefix === 'optimizer' ? opt : null;
    if (!target) throw new Error(`${file}: unexpected tensor '${k}' (expected model.*, model_ema.* or optimizer.*)`);
    target.set(name, rawToTensor(v));
  }
  const epoch = parse('epoch');
  if (typeof epoch !== 'number' && typeof epoch !== 'string') throw new Error(`${file}: metadata 'epoch' is missing`);
  return {
    model,
    modelEma: ema.size ? ema : null,
    optimizer: opt,
    meta: {
      epoch,
      args: (parse('args') ?? {}) as Record<string, unknown>,
      optimizer: (parse('optimizer') ?? {}) as Record<string, unknown>,
      generator: parse('generator') as { seed: number; offset: number } | null,
      extra: (parse('extra') ?? {}) as Record<string, unknown>,
    },
  };
}

export function disposeCheckpoint(c: CheckpointContents): void {
  for (const m of [c.model, c.modelEma, c.optimizer]) if (m) for (const t of m.values()) t.dispose();
}

/** The file an interrupted (SIGINT) run saves its mid-epoch state to. */
export const INTERRUPTED_CHECKPOINT = 'checkpoint-interrupted.safetensors';

/**
 * The checkpoint auto-resume continues from: the highest N of checkpoint-N.safetensors
 * (upstream's auto_resume; epoch N complete) or, when it is further along, the mid-epoch
 * checkpoint an interrupted run left (its epoch is the one in progress). Null when none.
 */
export function latestCheckpoint(dir: string): string | null {
  if (!dir || !fs.existsSync(dir)) return null;
  let best = -1;
  for (const f of fs.readdirSync(dir, { withFileTypes: true })) {
    const m = /^checkpoint-(\d+)\.safetensors$/.exec(f.name);
    if (m && f.isFile()) best = Math.max(best, Number(m[1]));
  }
  const interrupted = path.join(dir, INTERRUPTED_CHECKPOINT);
  if (fs.statSync(interrupted, { throwIfNoEntry: false })?.isFile()) {
    const epoch = interruptedEpoch(interrupted);
    if (epoch !== null && epoch > best) return interrupted;
  }
  return best >= 0 ? path.join(dir, `checkpoint-${best}.safetensors`) : null;
}

function interruptedEpoch(file: string): number | null {
  try {
    const e = JSON.parse(readSafetensors(file).metadata.epoch ?? 'null');
    return typeof e === 'number' ? e : null;
  } catch {
    return null; // unreadable: ignored, the completed-epoch checkpoints still resume
  }
}

/**
 * Loads model weights from a training checkpoint of ours (the first of --model_key's names
 * present: model or model_ema) or, for any other file, a plain state dict (.safetensors or an
 * official .pth, with --model_key / --model_prefix as upstream).
 */
export function loadModelWeights(file: string, model: Module, opts: { modelKey?: string; modelPrefix?: string; strict?: boolean } = {}): void {
  let ours: CheckpointContents | null = null;
  try {
    const head = readSafetensors(file).metadata;
    if (head.format === 'kernelwarehouse-checkpoint') ours = loadCheckpoint(file);
  } catch {
    ours = null; // not a safetensors file: a .pth or a plain state dict
  }
  if (!ours) {
    loadStateDictFile(file, model, opts);
    return;
  }
  try {
    const keys = (opts.modelKey ?? 'model|module').split('|');
    const pick = keys.map((k) => (k === 'model' ? ours!.model : k === 'model_ema' ? ours!.modelEma : null)).find((m) => m && m.size);
    if (!pick) throw new Error(`${file}: none of --model_key ${opts.modelKey} is in this checkpoint (it has model${ours.modelEma ? ', model_ema' : ''})`);
    model.loadStateDict(pick, { strict: opts.strict ?? true });
  } finally {
    disposeCheckpoint(ours);
  }
}
