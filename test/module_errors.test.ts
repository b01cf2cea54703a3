// Shape mismatches inside a model name the layer: the error thrown by an op deep inside a zoo
// model's forward comes out prefixed with the module's dotted path and what the layer is.
import t from 'tap';
import * as kw from '../lib';

const gen = () => new kw.Generator(3);

function forwardError(model: kw.Module & kw.Layer, shape: number[]): Error & { modulePath?: string } {
  const x = kw.zeros(shape);
  try {
    kw.noGrad(() => kw.tidy(() => {
      model.eval().forward(x);
    }));
  } catch (e) {
    return e as Error;
  } finally {
    x.dispose();
  }
  throw new Error(`forward on [${shape}] did not throw`);
}

t.test('a 1-channel input to 3-channel zoo models names the first conv', async (t) => {
  // [model, the stem's module path, its description]: the paths are the state-dict names
  // (upstream's), so they can be checked against the model's own parameter names too
  const cases: [string, string, RegExp][] = [
    ['resnet_mini', 'conv1', /^conv1 \(Conv2d 3→\d+\): /],
    ['resnet18_small', 'conv1', /^conv1 \(Conv2d 3→64\): /],
    ['kw_resnet_mini', 'conv1', /^conv1 \((KW)?Conv2d 3→\d+\): /],
    ['mobilenetv2_050', 'features.0.0', /^features\.0\.0 \(Conv2d 3→16\): /],
    ['kw_mobilenetv2_050', 'features.0.0', /^features\.0\.0 \((KW)?Conv2d 3→16\): /],
    ['kw1d2x_mobilenetv2_050', 'features.0.0', /^features\.0\.0 \((KW)?Conv2d 3→16\): /],
  ];
  for (const [name, modulePath, prefix] of cases) {
    const model = kw.createModel(name, { numClasses: 10, generator: gen() });
    const e = forwardError(model, [2, 1, 28, 28]);
    t.match(e.message, prefix, `${name}: ${e.message}`);
    t.match(e.message, /the input has 1 channels, the layer expects 3/, `${name}: says what is wrong`);
    t.ok(e instanceof kw.ArgumentError, `${name}: still an ArgumentError`);
    t.equal(e.modulePath, modulePath, `${name}: modulePath`);
    t.ok(model.get(modulePath) instanceof kw.Module, `${name}: the path resolves with model.get()`);
    t.ok(e.stack?.startsWith(`ArgumentError: ${e.message}`), `${name}: the stack's header carries the path`);
    // nothing was left half-done: the same model runs a correct input
    const y = kw.noGrad(() => model.forward(kw.zeros([2, 3, 32, 32])));
    t.same(y.shape, [2, 10]);
    y.dispose();
    model.dispose();
  }
});

t.test('a spatial size too small fails deep in ConvNeXt, named by its full path', async (t) => {
  const model = kw.createModel('kw_convnext_tiny', { numClasses: 10, generator: gen() });
  // the stem (4×4, stride 4) needs at least 4 pixels
  const e = forwardError(model, [1, 3, 2, 2]);
  t.match(e.message, /^downsample_layers\.0\.0 \((KW)?Conv2d 3→96\): .*at least 4 long along spatial dim 0/, e.message);
  model.dispose();
});

t.test('a wrong-size linear input names the Linear inside a Sequential', async (t) => {
  const net = new kw.Sequential(
    new kw.Conv2d(1, 4, 3, { padding: 1, generator: gen() }),
    new kw.Flatten(),
    new kw.Sequential(new kw.Linear(4 * 8 * 8, 16, true, { generator: gen() }), new kw.ReLU(), new kw.Linear(16, 10, true, { generator: gen() })),
  );
  const ok = kw.noGrad(() => net.forward(kw.zeros([2, 1, 8, 8])));
  t.same(ok.shape, [2, 10], 'the right size runs');
  ok.dispose();
  const e = forwardError(net, [2, 1, 6, 6]); // 4·6·6 = 144 features where 256 are expected
  t.match(e.message, /^2\.0 \(Linear 256→16\): linear: input's last dimension must be 256, got shape \[2, 144\]$/, e.message);
  t.equal(e.modulePath, '2.0');
});

t.test('a layer called directly keeps its own message; errors are prefixed once', async (t) => {
  const conv = new kw.Conv2d(3, 8, 3, { generator: gen() });
  const e = forwardError(conv, [1, 1, 8, 8]);
  t.match(e.message, /^Conv2d\.forward: 'x' must be a \[B, 3, \.\.\.\] tensor \(the input has 1 channels, the layer expects 3\), got tensor of shape \[1, 1, 8, 8\] float32$/);
  t.equal(e.modulePath, '');
  // a subclass whose forward calls super.forward, inside a parent: one prefix, not two
  class Noisy extends kw.Conv2d {
    forward(x: kw.Tensor): kw.Tensor {
      return super.forward(x);
    }
  }
  class Parent extends kw.Module implements kw.Layer {
    inner = this.registerModule('inner', new Noisy(3, 8, 3, { generator: gen() }));
    forward(x: kw.Tensor): kw.Tensor {
      return this.inner.forward(x);
    }
  }
  const outer = new kw.Sequential(new Parent());
  const e2 = forwardError(outer, [1, 2, 8, 8]);
  t.match(e2.message, /^0\.inner \(Noisy 3→8\): Conv2d\.forward: 'x' must be/, e2.message);
  t.equal(e2.message.split('(Noisy').length, 2, 'prefixed once');
});

t.test('errors other than shape errors are named too; non-Error throws pass through', async (t) => {
  class Throws extends kw.Module implements kw.Layer {
    constructor(private readonly what: unknown) {
      super();
    }
    forward(): kw.Tensor {
      throw this.what;
    }
  }
  const net = new kw.Sequential(new kw.Identity(), new Throws(new RangeError('boom')));
  const e = forwardError(net, [1]);
  t.ok(e instanceof RangeError);
  t.equal(e.message, '1 (Throws): boom');
  const raw = new kw.Sequential(new Throws('a string'));
  let thrown: unknown = null;
  try {
    raw.forward(kw.zeros([1]));
  } catch (v) {
    thrown = v;
  }
  t.equal(thrown, 'a string', 'a thrown string is rethrown as it was');
});
