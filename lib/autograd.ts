// Reverse-mode autodiff. Each differentiable op calls record() with its inputs, the tensors
// its backward needs (saved as extra references, so the caller may dispose its own), and its
// backward rule. backward() walks the graph once in reverse topological order, frees each
// node's saved tensors as soon as it has run, and accumulates into the leaves' .grad.
import { native } from './native';
import { GradNode, keep, Tensor } from './tensor';

let gradEnabled = true;

/** True when ops are being recorded for autograd. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording ops (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export type BackwardRule = (dy: Tensor, saved: Tensor[]) => (Tensor | null)[];

class Node implements GradNode {
  released = false;
  constructor(
    readonly name: string,
    readonly inputs: readonly (Tensor | null)[],
    private saved: Tensor[],
    private rule: BackwardRule,
  ) {}
  backward(dy: Tensor): (Tensor | null)[] {
    if (this.released)
      throw new Error(`backward through '${this.name}' a second time: its saved tensors were freed (pass retainGraph: true)`);
    return this.rule(dy, this.saved);
  }
  release(): void {
    for (const t of this.saved) t.dispose();
    this.saved = [];
    this.released = true;
  }
}

/**
 * Records `out` as produced by op `name` from `inputs`. Returns out. Nothing is recorded (and
 * nothing saved) when grad mode is off or no input requires a gradient.
 */
export function record(name: string, inputs: (Tensor | null)[], out: Tensor, saved: Tensor[], rule: BackwardRule): Tensor {
  if (!gradEnabled || !inputs.some((t) => t !== null && t.requiresGrad)) return out;
  out.requiresGrad = true;
  out.gradFn = new Node(name, inputs, saved.map((t) => t.share()), rule);
  return out;
}

function topoOrder(root: GradNode): GradNode[] {
  const order: GradNode[] = [];
  const seen = new Set<GradNode>();
  const stack: [GradNode, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i < node.inputs.length) {
      top[1]++;
      const child = node.inputs[i]?.gradFn;
      if (child && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(node);
      stack.pop();
    }
  }
  return order.reverse();
}

// Sums gradient contributions. When the running sum is a float32 CPU tensor nothing else holds
// (one reference: not a share of another tensor's storage), g is added in place: for a
// branching activation (a KW layer's input feeds both its attention and its convolution) that
// saves a full-size allocation and one of three memory streams per contribution.
function addInto(acc: Tensor | undefined | null, g: Tensor): Tensor {
  if (!acc) return g;
  if (acc.dtype === 'float32' && g.dtype === 'float32' && acc.device === 'cpu' && g.device === 'cpu' &&
    acc.numel === g.numel && native.storageInfo(acc.storage).refs === 1) {
    native.addInplace(acc.storage, g.storage, 1);
    g.dispose();
    return acc;
  }
  const sum = new Tensor(native.binary(0, acc.storage, [...acc.shape], g.storage, [...g.shape]), acc.shape, 'float32', false);
  acc.dispose();
  g.dispose();
  return sum;
}

/**
 * Computes gradients of `root` with respect to every leaf that requires them, adding into
 * each leaf's `.grad`. `grad` defaults to 1 for a one-element root.
 */
export function backward(root: Tensor, grad?: Tensor, opts: { retainGraph?: boolean } = {}): void {
  if (!root.requiresGrad) throw new Error('backward: the tensor does not require grad (no recorded op reaches a parameter)');
  if (!grad && root.numel !== 1)
    throw new Error(`backward: a gradient is needed for a non-scalar output of shape [${root.shape.join(', ')}]`);
  if (grad && grad.shape.join() !== root.shape.join())
    throw new Error(`backward: gradient shape [${grad.shape.join(', ')}] does not match output [${root.shape.join(', ')}]`);
  const seed = grad ? grad.share() : new Tensor(native.full(1, 1, root.device), root.shape, 'float32', false);
  if (!root.gradFn) {
    root.grad = keep(addInto(root.grad, seed));
    return;
  }
  const pending = new Map<GradNode, Tensor>([[root.gradFn, seed]]);
  const prev = gradEnabled;
  gradEnabled = false; // backward rules are not themselves recorded
  try {
    for (const node of topoOrder(root.gradFn)) {
      const dy = pending.get(node);
      pending.delete(node);
      if (!dy) continue;
      const grads = node.backward(dy);
      dy.dispose();
      if (!opts.retainGraph) node.release();
      node.inputs.forEach((input, i) => {
        const g = grads[i];
        if (!g) return;
        if (!input || !input.requiresGrad) return g.dispose();
        if (g.shape.join() !== input.shape.join())
          throw new Error(`backward of '${node.name}': gradient shape [${g.shape}] does not match input [${input.shape}]`);
        if (input.gradFn) pending.set(input.gradFn, addInto(pending.get(input.gradFn), g));
        else input.grad = keep(addInto(input.grad, g));
      });
    }
  } finally {
    gradEnabled = prev;
    for (const t of pending.values()) t.dispose();
  }
}
