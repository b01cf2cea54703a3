// The runnable examples in examples/ run and do what they say.
import t from 'tap';
import { main as autograd } from '../examples/autograd';
import { main as kwLayer } from '../examples/kw_layer';
import { main as zoo } from '../examples/model_zoo';

const quiet = () => {};
t.test('examples/autograd.ts fits the line', async (t) => {
  t.ok(autograd(quiet) < 1e-6);
});
t.test('examples/kw_layer.ts runs at three temperatures', async (t) => {
  const norms = kwLayer(quiet);
  t.equal(norms.length, 3);
  t.ok(norms.every((n) => Number.isFinite(n) && n > 0));
});
t.test('examples/model_zoo.ts reloads weights exactly', async (t) => {
  t.equal(zoo(quiet), 1);
});
