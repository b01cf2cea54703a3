// Our checkpoints: a module's state dict saved as safetensors (atomic write), and loading a
// state dict file into a module, from safetensors or from a PyTorch .pth (torch.save zip, read
// without executing anything; the model entry chosen like upstream's --model_key /
// --model_prefix). Names are the module's own state-dict names, so official weights load.
//
//   saveStateDict('out/model.safetensors', net, { epoch: '3' });
//   loadStateDictFile('kw1d2x_mobilenetv2_050.pth', net);          // strict by default
import * as fs from 'node:fs';
import type { LoadResult, Module } from '../nn/module';
import { Tensor, tensor } from '../tensor';
import { readPthStateDict } from './pth';
import { RawTensor, toFloat32 } from './raw-tensor';
import { readSafetensors, writeSafetensors } from './safetensors';

/** A tensor holding raw's values: float32 for float dtypes, int64 / int32 / uint8 for integers. */
export function rawToTensor(raw: RawTensor): Tensor {
  const shape = [...raw.shape];
  switch (raw.dtype) {
    case 'F32':
    case 'F16':
    case 'BF16':
      return tensor(toFloat32(raw), shape);
    case 'F64':
      return tensor(Float32Array.from(raw.data), shape);
    case 'I64':
      return tensor(raw.data, shape, 'int64');
    case 'U64':
      return tensor(BigInt64Array.from(raw.data, (v) => BigInt.asIntN(64, v)), shape, 'int64');
    case 'I32':
      return tensor(raw.data, shape, 'int32');
    case 'I16':
    case 'I8':
    case 'U16':
      return tensor(Int32Array.from(raw.data), shape, 'int32');
    case 'U32':
      return tensor(BigInt64Array.from(raw.data, (v) => BigInt(v)), shape, 'int64');
    case 'U8':
    case 'BOOL':
      return tensor(raw.data, shape, 'uint8');
  }
}

/** The tensor's values as a RawTensor (a copy). */
export function tensorToRaw(t: Tensor): RawTensor {
  const shape = [...t.shape];
  const data = t.data();
  switch (t.dtype) {
    case 'float32':
      return { dtype: 'F32', shape, data: data as Float32Array };
    case 'int64':
      return { dtype: 'I64', shape, data: data as BigInt64Array };
    case 'int32':
      return { dtype: 'I32', shape, data: data as Int32Array };
    case 'uint8':
      return { dtype: 'U8', shape, data: data as Uint8Array };
  }
}

/**
 * Saves module.stateDict() (parameters and persistent buffers under their dotted names) as a
 * safetensors file, atomically: readers see the old file or the whole new one.
 * @example saveStateDict('checkpoint.safetensors', model, { model: 'kw_resnet18' });
 */
export function saveStateDict(file: string, module: Module, metadata?: Record<string, string>): void {
  const raw = new Map<string, RawTensor>();
  for (const [k, t] of module.stateDict()) raw.set(k, tensorToRaw(t));
  writeSafetensors(file, raw, metadata);
}

export interface LoadStateDictFileOptions {
  /** Missing or unexpected keys are errors (default true); shape mismatches always are. */
  strict?: boolean;
  /** .pth only: "|"-separated checkpoint keys tried in order (upstream --model_key, default "model|module"). */
  modelKey?: string;
  /** Only keys with this prefix are used, with it removed (upstream --model_prefix, default ""). */
  modelPrefix?: string;
}

export interface LoadStateDictFileResult extends LoadResult {
  format: 'safetensors' | 'pth';
  /** .pth: the checkpoint entry used (null when the file is the state dict itself). */
  modelKey: string | null;
  /** Entries left out: without the prefix, or not tensors (.pth). */
  skippedKeys: string[];
  /** safetensors metadata ({} for .pth). */
  metadata: Record<string, string>;
}

function isZip(file: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new Error(`checkpoint ${file}: cannot open (${(e as Error).message})`);
  }
  try {
    const head = Buffer.alloc(4);
    const n = fs.readSync(fd, head, 0, 4, 0);
    return n === 4 && head.readUInt32LE(0) === 0x04034b50; // "PK\3\4"
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a state dict file (.safetensors or torch.save .pth) without loading it anywhere. */
export function readStateDictFile(file: string, opts: LoadStateDictFileOptions = {}):
  { state: Map<string, RawTensor>; format: 'safetensors' | 'pth'; modelKey: string | null; skippedKeys: string[]; metadata: Record<string, string> } {
  const prefix = opts.modelPrefix ?? '';
  if (isZip(file)) {
    const r = readPthStateDict(file, { modelKey: opts.modelKey, modelPrefix: prefix });
    return { state: r.stateDict, format: 'pth', modelKey: r.modelKey, skippedKeys: r.skippedKeys, metadata: {} };
  }
  const { tensors, metadata } = readSafetensors(file);
  const state = new Map<string, RawTensor>();
  const skippedKeys: string[] = [];
  for (const [k, v] of tensors) {
    if (k.startsWith(prefix)) state.set(k.slice(prefix.length), v);
    else skippedKeys.push(k);
  }
  return { state, format: 'safetensors', modelKey: null, skippedKeys, metadata };
}

/**
 * Loads a .safetensors or .pth state dict file into module (in place), found by content, not
 * by extension. Throws, naming the file, for unreadable files, shape mismatches, and (strict)
 * missing or unexpected keys; nothing is copied then.
 * @example loadStateDictFile('checkpoint-best.pth', model, { modelKey: 'model_ema' });
 */
export function loadStateDictFile(file: string, module: Module, opts: LoadStateDictFileOptions = {}): LoadStateDictFileResult {
  const r = readStateDictFile(file, opts);
  const tensors = new Map<string, Tensor>();
  try {
    for (const [k, raw] of r.state) tensors.set(k, rawToTensor(raw));
    let result: LoadResult;
    try {
      result = module.loadStateDict(tensors, { strict: opts.strict ?? true });
    } catch (e) {
      throw new Error(`checkpoint ${file}: ${(e as Error).message}`);
    }
    return { ...result, format: r.format, modelKey: r.modelKey, skippedKeys: r.skippedKeys, metadata: r.metadata };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
