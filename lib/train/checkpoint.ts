// Training checkpoints: one safetensors file holding the model (`model.*`), its EMA
// (`model_ema.*`), the optimizer state (`optimizer.*`) and, in the metadata, the epoch, the
// args, the optimizer's plain values and the random generator, as upstream's checkpoint dict
// holds model / optimizer / epoch / scaler / args. Written atomically (temp file, fsync,
// rename), so a kill mid-write never leaves a broken latest checkpoint.
import * as fs from 'fs';
import * as path from 'path';
import { RawTensor, readSafetensors, writeSafetensors } from '../io/safetensors';
import { tensor, Tensor } from '../tensor';

export function toRaw(t: Tensor): RawTensor {
  const shape = [...t.shape];
  switch (t.dtype) {
    case 'float32': return { dtype: 'F32', shape, data: t.data() as Float32Array };
    case 'int64': return { dtype: 'I64', shape, data: t.data() as BigInt64Array };
    case 'int32': return { dtype: 'I32', shape, data: t.data() as Int32Array };
    case 'uint8': return { dtype: 'U8', shape, data: t.data() as Uint8Array };
  }
}

export function fromRaw(r: RawTensor, name: string): Tensor {
  switch (r.dtype) {
    case 'F32':
    case 'I64':
    case 'I32':
    case 'U8':
      return tensor(r.data, r.shape);
    default:
      throw new Error(`checkpoint tensor '${name}' has dtype ${r.dtype}; expected F32, I64, I32 or U8`);
  }
}

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
  for (const [k, v] of c.model) raw.set(`model.${k}`, toRaw(v));
  if (c.modelEma) for (const [k, v] of c.modelEma) raw.set(`model_ema.${k}`, toRaw(v));
  for (const [k, v] of c.optimizer.tensors) raw.set(`optimizer.${k}`, toRaw(v));
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
    target.set(name, fromRaw(v, k));
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

/** The highest N of checkpoint-N.safetensors in dir (upstream's auto_resume), or null. */
export function latestCheckpoint(dir: string): string | null {
  if (!dir || !fs.existsSync(dir)) return null;
  let best = -1;
  for (const f of fs.readdirSync(dir)) {
    const m = /^checkpoint-(\d+)\.safetensors$/.exec(f);
    if (m) best = Math.max(best, Number(m[1]));
  }
  return best >= 0 ? path.join(dir, `checkpoint-${best}.safetensors`) : null;
}
