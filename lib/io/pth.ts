// Reader for torch.save files (the zip format of PyTorch >= 1.6):
//   <archive>/data.pkl      the pickled object (protocol 2)
//   <archive>/data/<key>    one raw little-endian storage per key
//   <archive>/byteorder     optional, "little" or "big"
//   <archive>/version       format version
// Tensors are materialised as RawTensor in logical (row-major) order, whatever
// their storage offset and strides; float16/bfloat16 become float32 unless
// asked otherwise. Nothing in the file is executed (see pickle.ts).

import { ZipReader } from './zip';
import { PyDict, TensorRebuildArgs, TorchStorageType, UnpickleLimits, unpickle } from './pickle';
import {
  DTYPE_BYTES, DType, DTypeArrays, RawTensor, allocateTypedArray, checkedNumel, isRawTensor, swapBytesInPlace,
  toFloat32, typedArrayFromLittleEndian,
} from './raw-tensor';

export { PyDict } from './pickle';
export type { RawTensor } from './raw-tensor';

export interface ReadPthOptions {
  /** Name used in error messages when reading from a buffer. */
  label?: string;
  /** Keep F16/BF16 tensors as raw 16-bit patterns instead of converting them to F32. */
  keepHalf?: boolean;
  /**
   * Budget for the bytes of all materialised tensors. Views (several tensors
   * sharing one storage, or stride-0 expansions) can make a small file expand
   * a lot; the default is max(256 MiB, 8 x file size).
   */
  maxTensorBytes?: number;
  limits?: Partial<UnpickleLimits>;
}

/** A storage read from `<archive>/data/<key>`, as handed to the tensor rebuild step. */
interface LoadedStorage {
  kind: 'storage';
  key: string;
  dtype: DType;
  numel: number;
  data: DTypeArrays[DType];
}

const STORAGE_KEY = /^[A-Za-z0-9_]{1,64}$/;

/** Reads a torch.save file (path or bytes) into plain values; see pickle.ts for the value mapping. */
export function readPth(source: string | Uint8Array, options: ReadPthOptions = {}): unknown {
  const label = options.label ?? (typeof source === 'string' ? source : '<buffer>');
  const zip = ZipReader.open(source, label);
  try {
    return readArchive(zip, label, typeof source === 'string' ? undefined : source.length, options);
  } finally {
    zip.close();
  }
}

function readArchive(zip: ZipReader, label: string, knownSize: number | undefined, options: ReadPthOptions): unknown {
  const fail = (what: string): never => {
    throw new Error(`pth file ${label}: ${what}`);
  };
  const prefix = findArchivePrefix(zip, fail);
  const bigEndian = readByteOrder(zip, prefix, fail);
  const archiveBytes = knownSize ?? zip.entries.reduce((sum, e) => sum + e.compressedSize, 0);
  const totalBudget = options.maxTensorBytes ?? Math.max(256 * 1024 * 1024, 8 * archiveBytes);
  let budget = totalBudget;

  const storages = new Map<string, LoadedStorage>();
  const persistentLoad = (pid: unknown): LoadedStorage => {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') return fail('persistent id is not a (storage, type, key, location, numel) tuple');
    const [, type, key, location, numel] = pid as unknown[];
    if (!(type instanceof TorchStorageType)) return fail('persistent id does not name a torch storage type');
    if (typeof key !== 'string' || !STORAGE_KEY.test(key)) return fail(`storage key ${JSON.stringify(key)} is not a simple name`);
    if (typeof location !== 'string') return fail(`storage ${key} location is not a string`);
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) return fail(`storage ${key} size is not a non-negative integer`);
    const cached = storages.get(key);
    if (cached !== undefined) {
      if (cached.dtype !== type.dtype || cached.numel !== numel) fail(`storage ${key} is used with two different types or sizes`);
      return cached;
    }
    const entryName = `${prefix}/data/${key}`;
    if (!zip.has(entryName)) fail(`storage ${key} has no entry ${JSON.stringify(entryName)}`);
    const expectedBytes = numel * DTYPE_BYTES[type.dtype];
    const entry = zip.entry(entryName)!;
    if (entry.uncompressedSize !== expectedBytes) {
      fail(`storage ${key} is ${entry.uncompressedSize} bytes but ${numel} x ${type.name} needs ${expectedBytes}`);
    }
    // typedArrayFromLittleEndian copies, so a big-endian file is fixed up in the copy, never in the caller's buffer.
    const data = typedArrayFromLittleEndian(type.dtype, zip.read(entryName));
    if (bigEndian) swapBytesInPlace(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), DTYPE_BYTES[type.dtype]);
    const storage: LoadedStorage = { kind: 'storage', key, dtype: type.dtype, numel, data };
    storages.set(key, storage);
    return storage;
  };

  const rebuildTensor = (args: TensorRebuildArgs): RawTensor => {
    const storage = args.storage as LoadedStorage;
    if (typeof storage !== 'object' || storage === null || storage.kind !== 'storage') return fail('tensor storage is not a loaded storage');
    const where = `tensor of storage ${storage.key}`;
    const numel = (() => {
      try {
        return checkedNumel(args.size, `pth file ${label}: ${where}`);
      } catch (err) {
        return fail((err as Error).message);
      }
    })();
    if (numel > 0) {
      let last = args.storageOffset;
      for (let d = 0; d < args.size.length; d++) last += (args.size[d] - 1) * args.stride[d];
      if (last >= storage.numel) {
        fail(`${where}: offset ${args.storageOffset}, size ${JSON.stringify(args.size)}, stride ${JSON.stringify(args.stride)} reach element ${last} of a ${storage.numel}-element storage`);
      }
    }
    const outBytes = numel * (storage.dtype === 'F16' || storage.dtype === 'BF16' ? 4 : DTYPE_BYTES[storage.dtype]);
    if (outBytes > budget) fail(`${where}: tensors exceed the ${totalBudget}-byte budget (ReadPthOptions.maxTensorBytes)`);
    budget -= outBytes;
    const raw = { dtype: storage.dtype, shape: [...args.size], data: gather(storage, args, numel) } as RawTensor;
    if (!options.keepHalf && (raw.dtype === 'F16' || raw.dtype === 'BF16')) {
      return { dtype: 'F32', shape: raw.shape, data: toFloat32(raw) };
    }
    return raw;
  };

  const pickleName = `${prefix}/data.pkl`;
  return unpickle(zip.read(pickleName), {
    label: `${label}: ${pickleName}`,
    torch: { persistentLoad, rebuildTensor },
    limits: options.limits,
  });
}

/** torch.save names the top folder after the file it first wrote; exactly one data.pkl must exist. */
function findArchivePrefix(zip: ZipReader, fail: (what: string) => never): string {
  const candidates = zip.entries.map((e) => e.name).filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (candidates.length === 0) fail('no <archive>/data.pkl entry (not a torch.save zip checkpoint)');
  if (candidates.length > 1) fail(`several data.pkl entries (${candidates.slice(0, 3).join(', ')}): ambiguous`);
  return candidates[0].slice(0, -'/data.pkl'.length);
}

function readByteOrder(zip: ZipReader, prefix: string, fail: (what: string) => never): boolean {
  const name = `${prefix}/byteorder`;
  if (!zip.has(name)) return false; // older writers: always little-endian
  const text = Buffer.from(zip.read(name)).toString('latin1').trim();
  if (text !== 'little' && text !== 'big') fail(`byteorder entry says ${JSON.stringify(text.slice(0, 20))}`);
  return text === 'big';
}

/** Copies a strided view out of a storage in logical order. */
function gather(storage: LoadedStorage, args: TensorRebuildArgs, numel: number): DTypeArrays[DType] {
  const out = allocateTypedArray(storage.dtype, numel);
  // Both arrays have the same element type; the union types cannot express that, hence the cast.
  const src = storage.data as unknown as { subarray(a: number, b: number): ArrayLike<number> } & ArrayLike<number>;
  const dst = out as unknown as { set(a: ArrayLike<number>, offset?: number): void } & { [i: number]: number };
  if (numel === 0) return out;
  if (isContiguous(args.size, args.stride)) {
    dst.set(src.subarray(args.storageOffset, args.storageOffset + numel));
    return out;
  }
  const rank = args.size.length;
  const index = new Array<number>(rank).fill(0);
  let source = args.storageOffset;
  for (let i = 0; i < numel; i++) {
    dst[i] = src[source];
    // Odometer increment over the logical index, tracking the storage position.
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      source += args.stride[d];
      if (index[d] < args.size[d]) break;
      source -= args.stride[d] * args.size[d];
      index[d] = 0;
    }
  }
  return out;
}

/** Row-major contiguous, ignoring the strides of size-1 dimensions (torch does too). */
function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] === 1) continue;
    if (stride[d] !== expected) return false;
    expected *= size[d];
  }
  return true;
}

export interface ExtractStateDictOptions {
  /** Names the checkpoint in error messages. */
  label?: string;
  /** Alternatives separated by "|", tried in order (upstream --model_key, default "model|module"). */
  modelKey?: string;
  /** Only keys starting with this prefix are used, with it removed (upstream --model_prefix, default ""). */
  modelPrefix?: string;
  /**
   * The target model's own state-dict shapes. When given, "head.weight" and
   * "head.bias" are dropped if their shapes differ, as upstream main.py does
   * before fine-tuning with a different number of classes.
   */
  modelShapes?: ReadonlyMap<string, readonly number[]> | Readonly<Record<string, readonly number[]>>;
}

export interface ExtractedStateDict {
  stateDict: Map<string, RawTensor>;
  /** The model_key alternative that matched, or null when the whole checkpoint was used. */
  modelKey: string | null;
  /** Keys left out: those without the prefix (upstream silently ignores them) and non-tensor values. */
  skippedKeys: string[];
  /** head.* keys dropped for a shape mismatch with modelShapes. */
  removedKeys: string[];
}

/**
 * Picks the model state dict out of a checkpoint the way upstream main.py
 * does for --finetune: the first "|"-separated model_key present in the
 * checkpoint dict wins, otherwise the checkpoint itself is the state dict;
 * then utils.load_state_dict looks every model key up as prefix + key, so
 * keys are kept only if they start with model_prefix, which is stripped.
 */
export function extractStateDict(checkpoint: unknown, options: ExtractStateDictOptions = {}): ExtractedStateDict {
  const modelKeyOption = options.modelKey ?? 'model|module';
  const prefix = options.modelPrefix ?? '';
  let model: unknown = checkpoint;
  let modelKey: string | null = null;
  if (checkpoint instanceof PyDict) {
    for (const key of modelKeyOption.split('|')) {
      if (checkpoint.has(key)) {
        model = checkpoint.get(key);
        modelKey = key;
        break;
      }
    }
  }
  if (!(model instanceof PyDict)) {
    const what = modelKey === null ? 'is not a dict of tensors' : `entry ${JSON.stringify(modelKey)} is not a dict of tensors`;
    throw new Error(`checkpoint ${options.label ?? '<object>'}: ${what}`);
  }

  const removedKeys: string[] = [];
  const shapeOf = (key: string): readonly number[] | undefined => {
    const shapes = options.modelShapes;
    if (shapes === undefined) return undefined;
    return shapes instanceof Map ? shapes.get(key) : (shapes as Record<string, readonly number[]>)[key];
  };
  for (const key of ['head.weight', 'head.bias']) {
    const tensor = model.get(key);
    const wanted = shapeOf(key);
    if (isRawTensor(tensor) && wanted !== undefined && !sameShape(tensor.shape, wanted)) removedKeys.push(key);
  }

  const stateDict = new Map<string, RawTensor>();
  const skippedKeys: string[] = [];
  for (const [key, value] of model) {
    if (typeof key === 'string' && removedKeys.includes(key)) continue;
    if (typeof key !== 'string' || !key.startsWith(prefix) || !isRawTensor(value)) {
      skippedKeys.push(String(key));
      continue;
    }
    stateDict.set(key.slice(prefix.length), value);
  }
  return { stateDict, modelKey, skippedKeys, removedKeys };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** readPth then extractStateDict, with errors naming the file: the usual way to load weights. */
export function readPthStateDict(
  source: string | Uint8Array,
  options: ReadPthOptions & ExtractStateDictOptions = {},
): ExtractedStateDict {
  const label = options.label ?? (typeof source === 'string' ? source : '<buffer>');
  return extractStateDict(readPth(source, { ...options, label }), { ...options, label });
}
