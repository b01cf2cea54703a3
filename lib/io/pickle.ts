// A safe, non-executing reader for Python pickles: the data-only opcodes of
// protocols 0-5, which covers what torch.save (protocol 2) writes. It builds
// plain JavaScript values and never runs code: GLOBAL/STACK_GLOBAL may only
// name entries of a fixed allowlist (SAFE_GLOBALS below); any other global (os.system,
// subprocess.Popen, builtins.eval, posix.system, ...) is refused at the moment
// it is named, with an Error naming it. INST/OBJ/EXT opcodes, which
// instantiate classes or use the extension registry, are refused too.
//
// Python value -> JavaScript value:
//   None -> null, bool -> boolean, int -> number (bigint beyond 2^53),
//   float -> number, str -> string, bytes/bytearray -> Uint8Array,
//   list -> array, tuple -> frozen array, dict/OrderedDict -> PyDict (a Map,
//   keeping insertion order and non-string keys such as optimizer state's
//   integer ids), set/frozenset -> Set, argparse.Namespace -> plain object,
//   torch.Size -> frozen array of numbers, tensors -> whatever
//   options.torch.rebuildTensor returns (a TensorStub when not given).
//
// Every allocation is bounded by the input (lengths are checked against the
// remaining bytes before slicing) and by UnpickleLimits (value stack, MARK
// nesting, memo entries, integer width). The interpreter is a loop, not a
// recursion, so hostile nesting cannot overflow the JS stack.

import { DType } from './raw-tensor';

export interface UnpickleLimits {
  /** Values on the stack at once. */
  maxStack: number;
  /** Open MARKs at once (container nesting). */
  maxMarkDepth: number;
  /** Distinct memo entries. */
  maxMemo: number;
  /** Bytes of a LONG1/LONG4 integer (and digits/3 of a text INT/LONG). */
  maxIntBytes: number;
}

export const DEFAULT_UNPICKLE_LIMITS: Readonly<UnpickleLimits> = {
  maxStack: 1 << 24,
  maxMarkDepth: 10_000, // Python's own recursion limit keeps real pickles far below this
  maxMemo: 1 << 24,
  maxIntBytes: 1024,
};

/** Arguments of torch._utils._rebuild_tensor_v2, validated for shape. */
export interface TensorRebuildArgs {
  storage: unknown;
  storageOffset: number;
  size: number[];
  stride: number[];
  requiresGrad: boolean;
}

/** What a tensor becomes when no rebuildTensor hook is given. */
export interface TensorStub extends TensorRebuildArgs {
  kind: 'tensor-stub';
}

export interface TorchHooks {
  /** Resolves a BINPERSID/PERSID id, e.g. ('storage', FloatStorage, '0', 'cpu', 432). */
  persistentLoad?: (pid: unknown) => unknown;
  rebuildTensor?: (args: TensorRebuildArgs) => unknown;
}

export interface UnpickleOptions {
  /** Names the source in error messages (e.g. "model.pth: data.pkl"). */
  label?: string;
  torch?: TorchHooks;
  limits?: Partial<UnpickleLimits>;
}

/** A Python dict or OrderedDict. Attributes set by BUILD (torch's `_metadata`) are kept aside. */
export class PyDict extends Map<unknown, unknown> {
  attributes: Record<string, unknown> | undefined = undefined;
  constructor(readonly pythonClass: string = 'dict') {
    super();
  }
}

/**
 * A resolved, allowlisted global. `call` implements REDUCE and `construct`
 * NEWOBJ, each refused when absent; a global with neither is an inert
 * placeholder that is only data (e.g. torch.float32).
 */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call?: (args: readonly unknown[], ctx: CallContext) => unknown,
    readonly construct?: (args: readonly unknown[], ctx: CallContext) => unknown,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A torch.<X>Storage class named in a persistent id. */
export class TorchStorageType extends PyGlobal {
  constructor(name: string, readonly dtype: DType) {
    super('torch', name);
  }
}

export interface CallContext {
  fail(what: string): never;
  hooks: TorchHooks;
  /** Objects created as argparse.Namespace, so BUILD knows to set attributes on them. */
  namespaces: WeakSet<object>;
}

export function isPyDict(value: unknown): value is PyDict {
  return value instanceof PyDict;
}

// ---------------------------------------------------------------- allowlist

const STORAGE_DTYPES: Record<string, DType> = {
  DoubleStorage: 'F64',
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

// torch dtype objects pickle as the global `torch.<name>`; they are pure data,
// so they become inert placeholders (a PyGlobal with nothing to call).
const TORCH_DTYPE_NAMES = [
  'float64', 'float32', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool',
  'double', 'float', 'half', 'long', 'int', 'short',
];

type GlobalFactory = () => PyGlobal;

const SAFE_GLOBALS = new Map<string, GlobalFactory>();

function allow(module: string, name: string, call?: PyGlobal['call'], construct?: PyGlobal['construct']): void {
  SAFE_GLOBALS.set(`${module}.${name}`, () => new PyGlobal(module, name, call, construct));
}

allow('collections', 'OrderedDict', (args, ctx) => {
  const dict = new PyDict('collections.OrderedDict');
  if (args.length > 1) ctx.fail('OrderedDict() takes at most one argument');
  if (args.length === 1) fillDict(dict, args[0], ctx);
  return dict;
});

// Python 2 names (__builtin__) are mapped onto builtins before lookup.
for (const name of ['set', 'frozenset']) {
  allow('builtins', name, (args, ctx) => {
    if (args.length > 1) ctx.fail(`${name}() takes at most one argument`);
    return new Set(args.length === 0 ? [] : iterate(args[0], ctx));
  });
}

// Protocol 2 pickles bytes from Python 3 as _codecs.encode(text, 'latin1'): a pure function.
allow('_codecs', 'encode', (args, ctx) => {
  const [text, encoding] = args;
  if (typeof text !== 'string') return ctx.fail('_codecs.encode expects a str');
  if (encoding !== 'latin1' && encoding !== 'latin-1' && encoding !== 'iso-8859-1') {
    return ctx.fail(`_codecs.encode with encoding ${JSON.stringify(encoding)} is not supported`);
  }
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) ctx.fail('_codecs.encode: character outside latin1');
    out[i] = code;
  }
  return out;
});

// argparse.Namespace: created empty (NEWOBJ or REDUCE with no args), filled by BUILD.
const makeNamespace = (args: readonly unknown[], ctx: CallContext): object => {
  if (args.length > 0) ctx.fail('argparse.Namespace with positional arguments is not supported');
  const namespace = {};
  ctx.namespaces.add(namespace);
  return namespace;
};
allow('argparse', 'Namespace', makeNamespace, makeNamespace);

allow('torch', 'Size', (args, ctx) => {
  if (args.length !== 1) ctx.fail('torch.Size expects one argument');
  return Object.freeze(intList(args[0], 'torch.Size', ctx));
});

// torch.device('cpu') / torch.device('cuda', 0): kept as an inert string.
allow('torch', 'device', (args, ctx) => {
  const [type, index] = args;
  if (typeof type !== 'string' || (index !== undefined && index !== null && typeof index !== 'number')) {
    return ctx.fail('torch.device expects (str, int?)');
  }
  return typeof index === 'number' ? `${type}:${index}` : type;
});

allow('torch._utils', '_rebuild_tensor_v2', (args, ctx) => {
  if (args.length < 6 || args.length > 7) ctx.fail(`_rebuild_tensor_v2 expects 6 or 7 arguments, got ${args.length}`);
  const [storage, offset, size, stride, requiresGrad] = args;
  if (typeof requiresGrad !== 'boolean') ctx.fail('_rebuild_tensor_v2: requires_grad is not a bool');
  return rebuildTensor(storage, offset, size, stride, requiresGrad as boolean, ctx);
});

allow('torch._utils', '_rebuild_tensor', (args, ctx) => {
  if (args.length !== 4) ctx.fail(`_rebuild_tensor expects 4 arguments, got ${args.length}`);
  const [storage, offset, size, stride] = args;
  return rebuildTensor(storage, offset, size, stride, false, ctx);
});

// nn.Parameter is a tensor plus requires_grad/hooks/state we have no use for: return the data.
allow('torch._utils', '_rebuild_parameter', (args, ctx) => {
  if (args.length !== 3) ctx.fail(`_rebuild_parameter expects 3 arguments, got ${args.length}`);
  return args[0];
});
allow('torch._utils', '_rebuild_parameter_with_state', (args, ctx) => {
  if (args.length !== 4) ctx.fail(`_rebuild_parameter_with_state expects 4 arguments, got ${args.length}`);
  return args[0];
});

// Tensor subclasses: _rebuild_from_type_v2(func, new_type, args, state). Only
// our own tensor rebuild functions may be `func`, and only plain
// tensors/parameters may be `new_type`; `state` (Python attributes) is dropped.
const TENSOR_REBUILDERS = new Set(['torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor', 'torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state']);
const TENSOR_TYPES = new Set(['torch.Tensor', 'torch.nn.parameter.Parameter']);
allow('torch._tensor', '_rebuild_from_type_v2', (args, ctx) => {
  if (args.length !== 4) ctx.fail(`_rebuild_from_type_v2 expects 4 arguments, got ${args.length}`);
  const [func, newType, funcArgs] = args;
  if (!(func instanceof PyGlobal) || !func.call || !TENSOR_REBUILDERS.has(func.qualifiedName)) {
    return ctx.fail('_rebuild_from_type_v2: func is not a tensor rebuild function');
  }
  if (!(newType instanceof PyGlobal) || !TENSOR_TYPES.has(newType.qualifiedName)) {
    return ctx.fail('_rebuild_from_type_v2: new_type is not torch.Tensor or torch.nn.Parameter');
  }
  if (!Array.isArray(funcArgs)) return ctx.fail('_rebuild_from_type_v2: args is not a tuple');
  return func.call(funcArgs, ctx);
});
allow('torch', 'Tensor'); // inert: only meaningful as new_type above
allow('torch.nn.parameter', 'Parameter'); // inert: only meaningful as new_type above

for (const name of TORCH_DTYPE_NAMES) allow('torch', name);
for (const [name, dtype] of Object.entries(STORAGE_DTYPES)) {
  SAFE_GLOBALS.set(`torch.${name}`, () => new TorchStorageType(name, dtype));
}

const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

function resolveGlobal(module: string, name: string, fail: (what: string) => never): PyGlobal {
  const normalised = PY2_MODULES[module] ?? module;
  const factory = SAFE_GLOBALS.get(`${normalised}.${name}`);
  if (factory === undefined) {
    return fail(`refusing global ${module}.${name}: it is not on the allowlist of data-only types (nothing was executed)`);
  }
  return factory();
}

function rebuildTensor(
  storage: unknown,
  offset: unknown,
  size: unknown,
  stride: unknown,
  requiresGrad: boolean,
  ctx: CallContext,
): unknown {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    return ctx.fail('tensor storage offset is not a non-negative integer');
  }
  const sizes = intList(size, 'tensor size', ctx);
  const strides = intList(stride, 'tensor stride', ctx);
  if (sizes.length !== strides.length) ctx.fail(`tensor size ${JSON.stringify(sizes)} and stride ${JSON.stringify(strides)} differ in length`);
  if (sizes.some((d) => d < 0) || strides.some((s) => s < 0)) ctx.fail('tensor size or stride is negative');
  const args: TensorRebuildArgs = { storage, storageOffset: offset, size: sizes, stride: strides, requiresGrad };
  if (ctx.hooks.rebuildTensor) return ctx.hooks.rebuildTensor(args);
  const stub: TensorStub = { kind: 'tensor-stub', ...args };
  return stub;
}

function intList(value: unknown, what: string, ctx: CallContext): number[] {
  if (!Array.isArray(value)) return ctx.fail(`${what} is not a tuple`);
  return value.map((item) => {
    if (typeof item !== 'number' || !Number.isSafeInteger(item)) return ctx.fail(`${what} has a non-integer entry`);
    return item;
  });
}

function iterate(value: unknown, ctx: CallContext): unknown[] {
  if (Array.isArray(value)) return value;
  if (value instanceof Set) return [...value];
  if (value instanceof PyDict) return [...value.keys()];
  if (typeof value === 'string') return [...value];
  return ctx.fail('value is not iterable');
}

function fillDict(dict: PyDict, source: unknown, ctx: CallContext): void {
  if (source instanceof PyDict) {
    for (const [k, v] of source) dict.set(k, v);
    return;
  }
  for (const pair of iterate(source, ctx)) {
    if (!Array.isArray(pair) || pair.length !== 2) ctx.fail('dict items are not (key, value) pairs');
    dict.set((pair as unknown[])[0], (pair as unknown[])[1]);
  }
}

// ---------------------------------------------------------------- interpreter

class Reader {
  pos = 0;
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array, private readonly fail: (what: string) => never) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number): number {
    if (n < 0 || this.pos + n > this.bytes.length) {
      this.fail(`truncated: needs ${n} bytes at offset ${this.pos}, ${this.bytes.length - this.pos} left`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u8(): number {
    return this.bytes[this.need(1)];
  }
  u16(): number {
    return this.view.getUint16(this.need(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.need(4), true);
  }
  i32(): number {
    return this.view.getInt32(this.need(4), true);
  }
  u64(): number {
    const value = this.view.getBigUint64(this.need(8), true);
    if (value > BigInt(this.bytes.length)) this.fail(`length ${value} exceeds the pickle size`);
    return Number(value);
  }
  f64be(): number {
    return this.view.getFloat64(this.need(8), false);
  }
  take(n: number): Uint8Array {
    const at = this.need(n);
    return this.bytes.subarray(at, at + n);
  }
  line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.fail(`truncated: unterminated text argument at offset ${this.pos}`);
    const text = Buffer.from(this.bytes.subarray(this.pos, end)).toString('latin1');
    this.pos = end + 1;
    return text;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Runs the pickle in `data` to its STOP opcode and returns the value it built. */
export function unpickle(data: Uint8Array, options: UnpickleOptions = {}): unknown {
  const label = options.label ?? '<pickle>';
  const limits: UnpickleLimits = { ...DEFAULT_UNPICKLE_LIMITS, ...options.limits };
  let opcodeOffset = 0;
  const fail = (what: string): never => {
    throw new Error(`pickle ${label}: ${what} (opcode at byte ${opcodeOffset})`);
  };
  const ctx: CallContext = { fail, hooks: options.torch ?? {}, namespaces: new WeakSet() };
  const r = new Reader(data, fail);
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const push = (value: unknown): void => {
    if (stack.length >= limits.maxStack) fail(`stack exceeds ${limits.maxStack} values`);
    stack.push(value);
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const previous = marks.pop();
    if (previous === undefined) return fail('no MARK to pop to');
    stack = previous;
    return items;
  };
  const put = (index: number): void => {
    if (!memo.has(index) && memo.size >= limits.maxMemo) fail(`memo exceeds ${limits.maxMemo} entries`);
    memo.set(index, top());
  };
  const get = (index: number): void => {
    if (!memo.has(index)) fail(`memo entry ${index} is not defined`);
    push(memo.get(index));
  };
  const decodeUtf8 = (bytes: Uint8Array): string => {
    try {
      return utf8.decode(bytes);
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof PyDict)) fail('SETITEM(S) target is not a dict');
    if (items.length % 2 !== 0) fail('SETITEMS has an odd number of items');
    for (let i = 0; i < items.length; i += 2) (target as PyDict).set(items[i], items[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]): void => {
    if (!Array.isArray(target) || Object.isFrozen(target)) fail('APPEND(S) target is not a list');
    for (const item of items) (target as unknown[]).push(item);
  };
  const addItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Set) || Object.isFrozen(target)) fail('ADDITEMS target is not a set');
    for (const item of items) (target as Set<unknown>).add(item);
  };
  const tuple = (items: unknown[]): readonly unknown[] => Object.freeze(items);
  const pushGlobal = (module: string, name: string): void => push(resolveGlobal(module, name, fail));
  const callable = (value: unknown, opcode: string): PyGlobal => {
    if (!(value instanceof PyGlobal)) return fail(`${opcode} on something that is not an allowed global`);
    return value;
  };
  const persistent = (pid: unknown): void => {
    if (!ctx.hooks.persistentLoad) fail('persistent ids are not supported here');
    push(ctx.hooks.persistentLoad!(pid));
  };

  for (;;) {
    opcodeOffset = r.pos;
    const op = r.u8();
    switch (op) {
      case 0x80: { // PROTO
        const protocol = r.u8();
        if (protocol > 5) fail(`unsupported pickle protocol ${protocol}`);
        break;
      }
      case 0x95: // FRAME (protocol 4): a length hint only
        r.u64();
        break;
      case 0x2e: { // STOP
        const result = pop();
        if (marks.length > 0) fail('STOP inside an open MARK');
        return result;
      }
      case 0x28: // MARK
        if (marks.length >= limits.maxMarkDepth) fail(`MARK nesting exceeds ${limits.maxMarkDepth}`);
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length > 0) stack.pop();
        else popMark(); // POP of a MARK discards it, as CPython does
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;

      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(r.i32()); break; // BININT
      case 0x4b: push(r.u8()); break; // BININT1
      case 0x4d: push(r.u16()); break; // BININT2
      case 0x8a: push(decodeLong(r.take(checkIntBytes(r.u8(), limits, fail)))); break; // LONG1
      case 0x8b: push(decodeLong(r.take(checkIntBytes(r.u32(), limits, fail)))); break; // LONG4
      case 0x49: push(parseTextInt(r.line(), true, limits, fail)); break; // INT
      case 0x4c: push(parseTextInt(r.line(), false, limits, fail)); break; // LONG
      case 0x47: push(r.f64be()); break; // BINFLOAT
      case 0x46: push(parseTextFloat(r.line(), fail)); break; // FLOAT

      case 0x58: push(decodeUtf8(r.take(r.u32()))); break; // BINUNICODE
      case 0x8c: push(decodeUtf8(r.take(r.u8()))); break; // SHORT_BINUNICODE
      case 0x8d: push(decodeUtf8(r.take(r.u64()))); break; // BINUNICODE8
      case 0x56: push(decodeRawUnicodeEscape(r.line(), fail)); break; // UNICODE
      // Python 2 str: torch.load decodes it as UTF-8 (its default encoding).
      case 0x54: { // BINSTRING
        const length = r.i32();
        if (length < 0) fail('negative BINSTRING length');
        push(decodeUtf8(r.take(length)));
        break;
      }
      case 0x55: push(decodeUtf8(r.take(r.u8()))); break; // SHORT_BINSTRING
      case 0x42: push(Uint8Array.from(r.take(r.u32()))); break; // BINBYTES
      case 0x43: push(Uint8Array.from(r.take(r.u8()))); break; // SHORT_BINBYTES
      case 0x8e: push(Uint8Array.from(r.take(r.u64()))); break; // BINBYTES8
      case 0x96: push(Uint8Array.from(r.take(r.u64()))); break; // BYTEARRAY8

      case 0x29: push(tuple([])); break; // EMPTY_TUPLE
      case 0x85: push(tuple([pop()])); break; // TUPLE1
      case 0x86: { // TUPLE2
        const b = pop();
        const a = pop();
        push(tuple([a, b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        push(tuple([a, b, c]));
        break;
      }
      case 0x74: push(tuple(popMark())); break; // TUPLE
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x6c: push(popMark()); break; // LIST
      case 0x7d: push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const dict = new PyDict();
        setItems(dict, popMark());
        push(dict);
        break;
      }
      case 0x8f: push(new Set()); break; // EMPTY_SET
      case 0x91: push(Object.freeze(new Set(popMark()))); break; // FROZENSET (Object.freeze marks it read-only for ADDITEMS)

      case 0x61: { // APPEND
        const item = pop();
        appendItems(top(), [item]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x73: { // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x90: { // ADDITEMS
        const items = popMark();
        addItems(top(), items);
        break;
      }

      case 0x71: put(r.u8()); break; // BINPUT
      case 0x72: put(r.u32()); break; // LONG_BINPUT
      case 0x70: put(parseIndex(r.line(), fail)); break; // PUT
      case 0x94: put(memo.size); break; // MEMOIZE
      case 0x68: get(r.u8()); break; // BINGET
      case 0x6a: get(r.u32()); break; // LONG_BINGET
      case 0x67: get(parseIndex(r.line(), fail)); break; // GET

      case 0x63: { // GLOBAL
        const module = r.line();
        const name = r.line();
        pushGlobal(module, name);
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        pushGlobal(module as string, name as string);
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = callable(pop(), 'REDUCE');
        if (!Array.isArray(args)) fail('REDUCE arguments are not a tuple');
        if (!fn.call) fail(`${fn.qualifiedName} is a data-only placeholder and cannot be called`);
        push(fn.call!(args as unknown[], ctx));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop();
        const cls = callable(pop(), 'NEWOBJ');
        if (!Array.isArray(args)) fail('NEWOBJ arguments are not a tuple');
        if (!cls.construct) fail(`${cls.qualifiedName} cannot be constructed with NEWOBJ`);
        push(cls.construct!(args as unknown[], ctx));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        applyBuild(top(), state, ctx);
        break;
      }
      case 0x51: persistent(pop()); break; // BINPERSID
      case 0x50: persistent(r.line()); break; // PERSID

      case 0x69: fail('refusing opcode INST: it instantiates arbitrary classes'); break;
      case 0x6f: fail('refusing opcode OBJ: it instantiates arbitrary classes'); break;
      case 0x92: fail('refusing opcode NEWOBJ_EX: keyword construction is not supported'); break;
      case 0x82: case 0x83: case 0x84: fail('refusing EXT opcodes: the extension registry is not supported'); break;
      case 0x97: case 0x98: fail('refusing out-of-band buffer opcodes'); break;
      case 0x53: fail('refusing opcode STRING (protocol 0 quoted strings are not supported)'); break;
      default:
        fail(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}

/** BUILD sets attributes: on a Namespace they become its fields; on a dict they are kept in `attributes`. */
function applyBuild(target: unknown, state: unknown, ctx: CallContext): void {
  let dictState: unknown = state;
  let slotState: unknown = null;
  if (Array.isArray(state) && state.length === 2) [dictState, slotState] = state; // (dict, slots) form
  const records: Array<[string, unknown]> = [];
  for (const part of [dictState, slotState]) {
    if (part === null) continue;
    if (!(part instanceof PyDict)) ctx.fail('BUILD state is not a dict');
    for (const [key, value] of part as PyDict) {
      if (typeof key !== 'string') ctx.fail('BUILD attribute name is not a string');
      records.push([key as string, value]);
    }
  }
  if (typeof target === 'object' && target !== null && ctx.namespaces.has(target)) {
    // defineProperty: an attribute named "__proto__" must stay data, not swap the prototype.
    for (const [key, value] of records) {
      Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
    }
    return;
  }
  if (target instanceof PyDict) {
    const attributes: Record<string, unknown> = target.attributes ?? {};
    for (const [key, value] of records) {
      Object.defineProperty(attributes, key, { value, enumerable: true, writable: true, configurable: true });
    }
    target.attributes = attributes;
    return;
  }
  ctx.fail('BUILD on an object that is neither a Namespace nor a dict');
}

function checkIntBytes(n: number, limits: UnpickleLimits, fail: (what: string) => never): number {
  if (n > limits.maxIntBytes) fail(`integer of ${n} bytes exceeds the ${limits.maxIntBytes}-byte limit`);
  return n;
}

/** Little-endian two's complement, as LONG1/LONG4 store it. */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
  if (bytes[bytes.length - 1] & 0x80) value -= 1n << BigInt(bytes.length * 8);
  return narrowInt(value);
}

function narrowInt(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

function parseTextInt(text: string, boolAllowed: boolean, limits: UnpickleLimits, fail: (what: string) => never): number | bigint | boolean {
  if (boolAllowed && text === '00') return false; // protocol 0 spelling of False
  if (boolAllowed && text === '01') return true;
  const digits = text.endsWith('L') ? text.slice(0, -1) : text;
  if (!/^[-+]?\d+$/.test(digits)) return fail(`bad integer literal ${JSON.stringify(text.slice(0, 40))}`);
  if (digits.length > limits.maxIntBytes * 3) fail(`integer literal exceeds ${limits.maxIntBytes * 3} digits`);
  return narrowInt(BigInt(digits));
}

function parseTextFloat(text: string, fail: (what: string) => never): number {
  const special: Record<string, number> = { inf: Infinity, '-inf': -Infinity, nan: NaN };
  if (text in special) return special[text];
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return fail(`bad float literal ${JSON.stringify(text.slice(0, 40))}`);
  return Number(text);
}

function parseIndex(text: string, fail: (what: string) => never): number {
  if (!/^\d{1,10}$/.test(text)) return fail(`bad memo index ${JSON.stringify(text.slice(0, 40))}`);
  return Number(text);
}

/** Python's raw-unicode-escape: latin1 text where only \uXXXX and \UXXXXXXXX are escapes. */
function decodeRawUnicodeEscape(text: string, fail: (what: string) => never): string {
  return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, short: string | undefined, long: string | undefined) => {
    const code = parseInt(short ?? long ?? '', 16);
    if (code > 0x10ffff) return fail('raw-unicode-escape code point out of range');
    return String.fromCodePoint(code);
  });
}
