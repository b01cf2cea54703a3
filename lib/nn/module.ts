// Module: parameters, buffers and child modules under PyTorch-style dotted names, with
// train/eval mode and state dicts in PyTorch's order (own parameters, own buffers, then
// children in registration order), so upstream checkpoints map name for name.
//
//   class Net extends Module {
//     constructor() { super(); this.fc = this.registerModule('fc', new Linear(4, 2)); }
//   }
//   net.stateDict();              // Map { 'fc.weight' => Tensor, 'fc.bias' => Tensor }
//   net.loadStateDict(saved);     // copies values in; throws naming missing/unexpected keys
import { ArgumentError, describe } from '../errors';
import { native } from '../native';
import { checkDevice, Device, keep, numelOf, Tensor } from '../tensor';

/** Marks t as a trainable leaf (requiresGrad) that no tidy() scope disposes. */
export function parameter(t: Tensor): Tensor {
  if (t.gradFn) throw new ArgumentError('parameter', 't', 'a leaf tensor (not the output of a recorded op)', t);
  t.requiresGrad = true;
  return keep(t);
}

/**
 * Writes src's elements into dst's storage starting at flat element `offset` (in place; dst
 * keeps its identity, so optimizers and recorded graphs holding it see the new values).
 * src is cast to dst's dtype when they differ.
 */
export function copyInto(dst: Tensor, src: Tensor, offset = 0): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + src.numel > dst.numel)
    throw new ArgumentError('copyInto', 'offset', `a range inside ${dst.numel} elements`, `${offset} + ${src.numel}`);
  if (src.numel === 0) return;
  const cast = src.dtype !== dst.dtype ? native.cast(src.storage, dst.dtype) : null;
  // A CPU state dict loads into a CUDA model (and back): the values cross devices first.
  const moved = src.device !== dst.device ? native.toDevice(cast ?? src.storage, dst.device) : null;
  try {
    native.scatter(dst.storage, moved ?? cast ?? src.storage, [src.numel], [1], offset);
  } finally {
    if (moved) native.release(moved);
    if (cast) native.release(cast);
  }
}

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export type StateDict = Map<string, Tensor> | Record<string, Tensor>;

// Errors thrown inside a model's forward name the layer they came from ("layer1.0.conv1
// (KWConv2d 64→64): ..."). Every subclass's own `forward` is wrapped once per class, on the
// first construction, in a try/catch: nothing per layer to write, and nothing on the success
// path but one extra call frame. On the way out each wrapping module extends the path from
// itself down to the module that threw, so the outermost call leaves the full dotted path.
const WRAPPED = new WeakSet<object>();

/** Where a propagating error has got to (kept off the error so that printing it stays short). */
interface Trail {
  thrower: Module; // the innermost module whose forward the error left
  anchor: Module; // the outermost module the path has been extended to
  original: string; // the error's own message, before any prefix
  path: string; // from anchor down to thrower
}
const TRAILS = new WeakMap<Error, Trail>();

function wrapForwards(proto: object | null): void {
  for (let p = proto; p && p !== Module.prototype; p = Object.getPrototypeOf(p)) {
    if (WRAPPED.has(p)) return; // its parents were wrapped with it
    WRAPPED.add(p);
    const d = Object.getOwnPropertyDescriptor(p, 'forward');
    if (!d || typeof d.value !== 'function') continue;
    const inner = d.value as (this: Module, ...args: unknown[]) => unknown;
    Object.defineProperty(p, 'forward', {
      ...d,
      value: {
        forward(this: Module, ...args: unknown[]): unknown {
          try {
            return inner.apply(this, args);
          } catch (e) {
            throw nameModuleIn(e, this);
          }
        },
      }.forward,
    });
  }
}

/** Prefixes err's message with the path from `m` down to the module that threw (error path only). */
function nameModuleIn(err: unknown, m: Module): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & { modulePath?: string };
  const trail = TRAILS.get(e);
  try {
    if (!trail) {
      TRAILS.set(e, { thrower: m, anchor: m, original: e.message, path: '' });
      e.modulePath = ''; // called directly: its own message already names it
      return e;
    }
    if (trail.anchor === m) return e; // a subclass's forward calling super.forward
    const below = m.namedModules().find(([, c]) => c === trail.anchor);
    if (!below) return e; // the anchor is not a registered child of m: keep the path so far
    trail.anchor = m;
    trail.path = [below[0], trail.path].filter((s) => s).join('.');
    const before = e.message;
    e.message = `${trail.path} (${trail.thrower.describeLayer()}): ${trail.original}`;
    e.modulePath = trail.path;
    // V8 formats `stack` on first read; if something read it already, its header is stale
    if (typeof e.stack === 'string' && !e.stack.startsWith(`${e.name}: ${e.message}`)) e.stack = e.stack.replace(before, e.message);
  } catch {
    // a frozen error goes on as it is
  }
  return e;
}

export class Module {
  /** False after eval(): BatchNorm uses running statistics, dropout is off. */
  training = true;
  private readonly params = new Map<string, Tensor | null>();
  private readonly bufs = new Map<string, Tensor | null>();
  private readonly nonPersistent = new Set<string>();
  private readonly mods = new Map<string, Module | null>();

  constructor() {
    wrapForwards(new.target.prototype);
  }

  /** What the layer is, for error messages: "Conv2d 3→32" (the class name and its extraRepr()). */
  describeLayer(): string {
    const extra = this.extraRepr();
    return extra ? `${this.constructor.name} ${extra}` : this.constructor.name;
  }

  /** The sizes that identify a layer ("3→32"); subclasses override (PyTorch's extra_repr). */
  extraRepr(): string {
    return '';
  }

  private checkName(name: string, fn: string): void {
    if (typeof name !== 'string' || name === '' || name.includes('.'))
      throw new ArgumentError(fn, 'name', 'a non-empty name without dots', name);
    const taken = (this.params.has(name) ? 1 : 0) + (this.bufs.has(name) ? 1 : 0) + (this.mods.has(name) ? 1 : 0);
    if (taken) throw new Error(`${fn}: '${name}' is already registered on ${this.constructor.name}`);
  }

  /** Registers a parameter (made a trainable leaf); null reserves the name (like bias=None). */
  registerParameter(name: string, t: Tensor | null): Tensor | null {
    this.checkName(name, 'registerParameter');
    this.params.set(name, t ? parameter(t) : null);
    return t;
  }

  /** Registers a buffer: state that is saved but not trained (running statistics). */
  registerBuffer(name: string, t: Tensor | null, persistent = true): Tensor | null {
    this.checkName(name, 'registerBuffer');
    if (t) keep(t);
    this.bufs.set(name, t);
    if (!persistent) this.nonPersistent.add(name);
    return t;
  }

  registerModule<M extends Module | null>(name: string, m: M): M {
    this.checkName(name, 'registerModule');
    if (m !== null && !(m instanceof Module)) throw new ArgumentError('registerModule', 'm', 'a Module', m);
    this.mods.set(name, m);
    return m;
  }

  /** An own parameter by name. */
  getParameter(name: string): Tensor | null {
    if (!this.params.has(name)) throw new Error(`${this.constructor.name} has no parameter '${name}'`);
    return this.params.get(name) ?? null;
  }

  /** An own buffer by name. */
  getBuffer(name: string): Tensor | null {
    if (!this.bufs.has(name)) throw new Error(`${this.constructor.name} has no buffer '${name}'`);
    return this.bufs.get(name) ?? null;
  }

  /** Replaces an own buffer's tensor (the old one is disposed). */
  setBuffer(name: string, t: Tensor | null): void {
    const old = this.getBuffer(name);
    if (t) keep(t);
    this.bufs.set(name, t);
    if (old && old !== t) old.dispose();
  }

  /** An own child module by name. */
  getModule(name: string): Module | null {
    if (!this.mods.has(name)) throw new Error(`${this.constructor.name} has no child module '${name}'`);
    return this.mods.get(name) ?? null;
  }

  /** A parameter, buffer or module anywhere below, by dotted name ('attention.fc1.weight'). */
  get(path: string): Tensor | Module | null {
    const parts = path.split('.');
    let m: Module = this;
    for (const p of parts.slice(0, -1)) {
      const next = m.mods.get(p);
      if (!next) throw new Error(`${this.constructor.name} has no module '${p}' on the path '${path}'`);
      m = next;
    }
    const last = parts[parts.length - 1];
    if (m.params.has(last)) return m.params.get(last) ?? null;
    if (m.bufs.has(last)) return m.bufs.get(last) ?? null;
    if (m.mods.has(last)) return m.mods.get(last) ?? null;
    throw new Error(`${this.constructor.name} has nothing named '${path}'`);
  }

  namedChildren(): [string, Module][] {
    return [...this.mods].filter((e): e is [string, Module] => e[1] !== null);
  }

  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module and every module below it, depth first, each once (PyTorch's named_modules). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, name: string): void => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [k, c] of m.namedChildren()) visit(c, name ? `${name}.${k}` : k);
    };
    visit(this, prefix);
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** Every parameter below, each tensor once, under its first name. */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules())
      for (const [k, t] of m.params)
        if (t && !seen.has(t)) {
          seen.add(t);
          out.push([prefix ? `${prefix}.${k}` : k, t]);
        }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules())
      for (const [k, t] of m.bufs)
        if (t && !seen.has(t)) {
          seen.add(t);
          out.push([prefix ? `${prefix}.${k}` : k, t]);
        }
    return out;
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /** Sets training mode on this module and all below. */
  /**
   * Moves every parameter and buffer (and gradients) to `device` in place: the tensors keep
   * their identity, so optimizers built before or after the move see the same objects.
   * Throws saying why when CUDA is unavailable.
   * @example const net = createModel('kw_resnet18').to('cuda');
   */
  to(device: Device): this {
    checkDevice('Module.to', device);
    for (const t of [...this.parameters(), ...this.buffers()]) t.moveTo(device);
    for (const m of this.modules()) for (const t of m.deviceTensors()) t.moveTo(device);
    return this;
  }

  /** Tensors a module holds outside its state (not parameters or buffers) that must follow it in to(). */
  protected deviceTensors(): Tensor[] {
    return [];
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Parameters and persistent buffers under their dotted names, in PyTorch's order: a
   * module's own parameters, its own buffers, then each child's entries. The tensors are the
   * module's own (not copies).
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const visit = (m: Module, prefix: string): void => {
      for (const [k, t] of m.params) if (t) out.set(prefix + k, t);
      for (const [k, t] of m.bufs) if (t && !m.nonPersistent.has(k)) out.set(prefix + k, t);
      for (const [k, c] of m.mods) if (c) visit(c, `${prefix}${k}.`);
    };
    visit(this, '');
    return out;
  }

  /**
   * Copies values from `state` into this module's parameters and buffers (in place). Shape
   * mismatches always throw; with strict (the default) missing or unexpected keys throw too.
   * Nothing is copied when it throws.
   * @example net.loadStateDict(new Map([['fc.weight', w], ['fc.bias', b]]));
   */
  loadStateDict(state: StateDict, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const given = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !given.has(k));
    const unexpectedKeys = [...given.keys()].filter((k) => !own.has(k));
    const errors: string[] = [];
    for (const [k, src] of given) {
      const dst = own.get(k);
      if (!dst) continue;
      if (!(src instanceof Tensor) || src.isDisposed) {
        errors.push(`'${k}' must be a live Tensor, got ${describe(src)}`);
      } else if (src.shape.join() !== dst.shape.join() && !(numelOf(src.shape) === 1 && dst.ndim === 0 && src.ndim <= 1)) {
        errors.push(`size mismatch for '${k}': the given tensor has shape [${src.shape.join(', ')}], ` +
          `the module's is [${dst.shape.join(', ')}]`);
      }
    }
    if (strict) {
      if (missingKeys.length) errors.push(`missing keys: ${missingKeys.join(', ')}`);
      if (unexpectedKeys.length) errors.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
    }
    if (errors.length) throw new Error(`loadStateDict into ${this.constructor.name}: ${errors.join('; ')}`);
    for (const [k, src] of given) {
      const dst = own.get(k);
      if (dst) copyInto(dst, src);
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Drops every parameter's .grad. */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Calls fn on every module below (children first, as PyTorch's apply), then on this one. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  /** Frees every parameter and buffer below (and their gradients). */
  dispose(): void {
    for (const t of [...this.parameters(), ...this.buffers()]) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}

/** Children named '0', '1', ... (PyTorch's nn.ModuleList). */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];
  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }
  append(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }
  at(i: number): M {
    const m = this.items[i < 0 ? i + this.items.length : i];
    if (!m) throw new ArgumentError('ModuleList.at', 'i', `an index below ${this.items.length}`, i);
    return m;
  }
  get length(): number {
    return this.items.length;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/** Parameters named '0', '1', ... (PyTorch's nn.ParameterList). */
export class ParameterList extends Module {
  private readonly items: Tensor[] = [];
  constructor(params: Iterable<Tensor> = []) {
    super();
    for (const p of params) this.append(p);
  }
  append(p: Tensor): this {
    this.registerParameter(String(this.items.length), p);
    this.items.push(p);
    return this;
  }
  at(i: number): Tensor {
    const p = this.items[i < 0 ? i + this.items.length : i];
    if (!p) throw new ArgumentError('ParameterList.at', 'i', `an index below ${this.items.length}`, i);
    return p;
  }
  get length(): number {
    return this.items.length;
  }
  [Symbol.iterator](): Iterator<Tensor> {
    return this.items[Symbol.iterator]();
  }
}

/** A module mapping one tensor to one tensor (what Sequential chains). */
export interface Layer {
  forward(x: Tensor): Tensor;
}

/** Applies its children in order (PyTorch's nn.Sequential); children named '0', '1', .... */
export class Sequential extends Module implements Layer {
  private readonly items: (Module & Layer)[] = [];
  constructor(...modules: (Module & Layer)[]) {
    super();
    modules.forEach((m, i) => {
      this.registerModule(String(i), m);
      this.items.push(m);
    });
  }
  /** Runs each child on the previous output; the intermediates it created are disposed (the graph keeps what it needs). */
  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.items) {
      const next = m.forward(y);
      if (y !== x && next !== y) y.dispose();
      y = next;
    }
    return y;
  }
}
