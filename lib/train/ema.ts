// Model EMA (timm's ModelEma): a second copy of the model whose floating-point state follows
// ema = decay·ema + (1 − decay)·model after every optimizer step; integer buffers are copied.
import { native } from '../native';
import type { Module } from '../nn/module';

export class ModelEma<M extends Module> {
  constructor(readonly ema: M, readonly decay: number, source: M) {
    ema.loadStateDict(source.stateDict());
    ema.eval();
  }

  update(model: M): void {
    const src = model.stateDict();
    for (const [name, e] of this.ema.stateDict()) {
      const m = src.get(name);
      if (!m) throw new Error(`ModelEma: the model has no '${name}'`);
      if (e.dtype === 'float32') native.lerpInplace(e.storage, m.storage, 1 - this.decay);
      else native.copyInto(e.storage, m.storage);
    }
  }
}
