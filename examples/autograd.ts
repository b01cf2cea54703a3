// Tensors and autograd: fit y = 3x - 1 with a linear layer and plain SGD.
// Run: npm run build:ts && node dist/examples/autograd.js
import * as kw from '../lib';

export function main(log: (s: string) => void = console.log): number {
  const x = kw.rand([64, 1], { generator: new kw.Generator(0), low: -1, high: 1 });
  const y = kw.addScalar(kw.mulScalar(x, 3), -1);
  const w = kw.zeros([1, 1]), b = kw.zeros([1]);
  w.requiresGrad = b.requiresGrad = true;
  const opt = new kw.SGD([w, b], { lr: 0.5 });
  let loss = 0;
  for (let step = 0; step < 100; step++) {
    loss = kw.tidy(() => {
      const l = kw.mean(kw.square(kw.sub(kw.linear(x, w, b), y)));
      l.backward();
      opt.step();
      opt.zeroGrad();
      return l.item();
    });
  }
  log(`w = ${w.item().toFixed(3)}, b = ${b.item().toFixed(3)}, loss = ${loss.toExponential(2)}`);
  return loss;
}

if (require.main === module) main();
