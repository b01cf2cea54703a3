// Elementwise ops with numpy broadcasting. Each op's forward and backward rule side by side.
import { record } from '../autograd';
import { native } from '../native';
import { Tensor } from '../tensor';
import { sumToShape } from './reduce';
import { broadcastShapes, checkTensor, wrap } from './util';

// Op codes shared with native/core/kernels/elementwise.h.
const enum Bin { Add = 0, Sub, Mul, Div, Maximum, Minimum }
const enum Un { Neg = 0, Exp, Log, Sqrt, Abs, Relu, Relu6, Sigmoid, Tanh, Gelu, Square, Sign }

function bin(op: Bin, a: Tensor, b: Tensor): Tensor {
  return wrap(native.binary(op, a.storage, [...a.shape], b.storage, [...b.shape]), broadcastShapes('binary op', a.shape, b.shape));
}

function binaryOp(name: string, op: Bin, a: Tensor, b: Tensor, rule: (dy: Tensor, a: Tensor, b: Tensor) => [Tensor | null, Tensor | null], saveInputs: boolean): Tensor {
  checkTensor(name, 'a', a);
  checkTensor(name, 'b', b);
  broadcastShapes(name, a.shape, b.shape);
  const out = bin(op, a, b);
  return record(name, [a, b], out, saveInputs ? [a, b] : [], (dy, saved) => {
    const [ga, gb] = rule(dy, saved[0], saved[1]);
    const ra = a.requiresGrad && ga ? sumToShape(ga, a.shape) : null;
    const rb = b.requiresGrad && gb ? sumToShape(gb, b.shape) : null;
    ga?.dispose();
    gb?.dispose();
    return [ra, rb];
  });
}

/** a + b with broadcasting. @example add(x, tensor([1])) */
export function add(a: Tensor, b: Tensor): Tensor {
  return binaryOp('add', Bin.Add, a, b, (dy) => [dy.share(), dy.share()], false);
}

/** a - b with broadcasting. */
export function sub(a: Tensor, b: Tensor): Tensor {
  return binaryOp('sub', Bin.Sub, a, b, (dy) => [dy.share(), wrap(native.affine(dy.storage, -1, 0), dy.shape)], false);
}

/** a * b with broadcasting. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return binaryOp('mul', Bin.Mul, a, b, (dy, sa, sb) => [bin(Bin.Mul, dy, sb), bin(Bin.Mul, dy, sa)], true);
}

/** a / b with broadcasting. */
export function div(a: Tensor, b: Tensor): Tensor {
  return binaryOp('div', Bin.Div, a, b, (dy, sa, sb) => {
    const ga = bin(Bin.Div, dy, sb);
    // d(a/b)/db = -a/b² = -(dy/b)·(a/b)
    const q = bin(Bin.Div, sa, sb);
    const t = bin(Bin.Mul, ga, q);
    const gb = wrap(native.affine(t.storage, -1, 0), t.shape);
    q.dispose();
    t.dispose();
    return [ga, gb];
  }, true);
}

function selectRule(op: Bin) {
  // The gradient goes to the chosen element; ties go to a (as PyTorch splits them, we pick one).
  return (dy: Tensor, sa: Tensor, sb: Tensor): [Tensor, Tensor] => {
    const pick = bin(op, sa, sb);
    const eqA = wrap(native.binary(Bin.Sub, pick.storage, [...pick.shape], sa.storage, [...sa.shape]), pick.shape);
    const maskA = wrap(native.unary(Un.Abs, eqA.storage), eqA.shape);
    const inv = wrap(native.unary(Un.Sign, maskA.storage), maskA.shape); // 0 where a was chosen
    const selA = wrap(native.affine(inv.storage, -1, 1), inv.shape); // 1 where a was chosen
    const ga = bin(Bin.Mul, dy, selA);
    const gb = bin(Bin.Mul, dy, inv);
    for (const t of [pick, eqA, maskA, inv, selA]) t.dispose();
    return [ga, gb];
  };
}

/** Elementwise maximum with broadcasting. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return binaryOp('maximum', Bin.Maximum, a, b, selectRule(Bin.Maximum), true);
}

/** Elementwise minimum with broadcasting. */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return binaryOp('minimum', Bin.Minimum, a, b, selectRule(Bin.Minimum), true);
}

// ---- unary ----

type Saves = 'x' | 'y' | 'none';

function unaryOp(name: string, op: Un, x: Tensor, saves: Saves): Tensor {
  checkTensor(name, 'x', x);
  const y = wrap(native.unary(op, x.storage), x.shape);
  const saved = saves === 'x' ? [x] : saves === 'y' ? [y] : [];
  return record(name, [x], y, saved, (dy, s) => [
    wrap(native.unaryBackward(op, saves === 'x' ? s[0].storage : null, saves === 'y' ? s[0].storage : null, dy.storage), x.shape),
  ]);
}

export const neg = (x: Tensor): Tensor => unaryOp('neg', Un.Neg, x, 'none');
export const exp = (x: Tensor): Tensor => unaryOp('exp', Un.Exp, x, 'y');
export const log = (x: Tensor): Tensor => unaryOp('log', Un.Log, x, 'x');
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', Un.Sqrt, x, 'y');
export const abs = (x: Tensor): Tensor => unaryOp('abs', Un.Abs, x, 'x');
export const relu = (x: Tensor): Tensor => unaryOp('relu', Un.Relu, x, 'x');
export const relu6 = (x: Tensor): Tensor => unaryOp('relu6', Un.Relu6, x, 'x');
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', Un.Sigmoid, x, 'y');
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', Un.Tanh, x, 'y');
/** GELU with the exact erf form (PyTorch's nn.GELU default). */
export const gelu = (x: Tensor): Tensor => unaryOp('gelu', Un.Gelu, x, 'x');
export const square = (x: Tensor): Tensor => unaryOp('square', Un.Square, x, 'x');

/** x * scale + shift with scalar scale and shift. */
export function affine(x: Tensor, scale: number, shift = 0): Tensor {
  checkTensor('affine', 'x', x);
  const y = wrap(native.affine(x.storage, scale, shift), x.shape);
  return record('affine', [x], y, [], (dy) => [wrap(native.affine(dy.storage, scale, 0), dy.shape)]);
}

export const addScalar = (x: Tensor, c: number): Tensor => affine(x, 1, c);
export const mulScalar = (x: Tensor, c: number): Tensor => affine(x, c, 0);

/** x ** p for a scalar exponent p. */
export function pow(x: Tensor, p: number): Tensor {
  checkTensor('pow', 'x', x);
  const y = wrap(native.powScalar(x.storage, p), x.shape);
  return record('pow', [x], y, [x], (dy, [sx]) => {
    const d = wrap(native.powScalar(sx.storage, p - 1), sx.shape);
    const ds = wrap(native.affine(d.storage, p, 0), d.shape);
    const g = bin(Bin.Mul, dy, ds);
    d.dispose();
    ds.dispose();
    return [g];
  });
}

/** Clamps into [min, max]; the gradient is zero where clamped. */
export function clamp(x: Tensor, min: number, max: number): Tensor {
  checkTensor('clamp', 'x', x);
  const y = wrap(native.clamp(x.storage, min, max), x.shape);
  return record('clamp', [x], y, [x], (dy, [sx]) => {
    // inside = 1 where min < x < max: sign(relu(x - min)) * sign(relu(max - x))
    const lo = wrap(native.affine(sx.storage, 1, -min), sx.shape);
    const hi = wrap(native.affine(sx.storage, -1, max), sx.shape);
    const m1 = wrap(native.unary(Un.Relu, lo.storage), lo.shape);
    const m2 = wrap(native.unary(Un.Relu, hi.storage), hi.shape);
    const s1 = wrap(native.unary(Un.Sign, m1.storage), m1.shape);
    const s2 = wrap(native.unary(Un.Sign, m2.storage), m2.shape);
    const inside = bin(Bin.Mul, s1, s2);
    const g = bin(Bin.Mul, dy, inside);
    for (const t of [lo, hi, m1, m2, s1, s2, inside]) t.dispose();
    return [g];
  });
}
