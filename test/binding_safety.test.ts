// The binding refuses bad arguments with an Error instead of touching memory.
import t from 'tap';
import { native } from '../lib/native';

type AnyFn = (...a: unknown[]) => unknown;
const call = (name: string, ...args: unknown[]) => () => (native as unknown as Record<string, AnyFn>)[name](...args);

t.test('storage handles are checked', async (t) => {
  const s = native.fromTypedArray(new Float32Array([1, 2, 3, 4]));
  const released = native.share(s);
  native.release(released);
  t.throws(call('unary', 0, released), /'x' was disposed/);
  t.throws(call('unary', 0, {}), /'x' must be a storage handle/);
  t.throws(call('unary', 0, 42), /'x' must be a storage handle/);
  t.throws(call('unary', 0), /missing argument 'x'/);
  t.throws(call('toTypedArray', 'nope'), /storage handle/);
  t.throws(call('release', 1), /storage handle/);
});

t.test('shapes must match storage sizes and dtypes', async (t) => {
  const s = native.fromTypedArray(new Float32Array(6));
  const i = native.fromTypedArray(new Int32Array(6));
  t.throws(call('binary', 0, s, [2, 4], s, [2, 3]), /holds 6 elements but shape \[2, 4\] needs 8/);
  t.throws(call('binary', 0, s, [2, 3], i, [2, 3]), /'b' must be float32/);
  t.throws(call('binary', 0, s, [2, -3], s, [2, 3]), /non-negative integers/);
  t.throws(call('binary', 0, s, [2, 1.5], s, [2, 3]), /non-negative integers/);
  t.throws(call('binary', 99, s, [6], s, [6]), /'op' must be an integer in/);
  t.throws(call('bmm', s, s, 1, 1, 2, 2, 2, false, false), /'a' holds 6 elements/);
  t.throws(call('sumAxis', s, 2, 2, 2), /holds 6 elements/);
  t.throws(call('gather', s, [3, 3], [3, 1], 0), /reaches element 8 of 6/);
  t.throws(call('gather', s, [2], [1], 10), /reaches element 11 of 6/);
  t.throws(call('gather', s, [2, 2], [1], 0), /2 dimensions but strides has 1/);
  t.throws(call('scatterAdd', s, s, [6], [1], 1), /reaches element 6 of 6/);
  t.throws(call('zeros', 'float16', 4), /unknown dtype 'float16'/);
  t.throws(call('zeros', 'float32', -1), /'numel' must be an integer/);
  t.throws(call('zeros', 'float32', 2 ** 60), /'numel' must be an integer/);
  t.throws(call('bernoulli', 4, 0, 0, 1.5), /'p' must be in \[0, 1\]/);
  t.throws(call('fromTypedArray', new Float64Array(2)), /Float32Array, Int32Array, BigInt64Array or Uint8Array/);
});

t.test('out-of-range indices are refused before the scatter', async (t) => {
  const dy = native.fromTypedArray(new Float32Array(2));
  const idx = native.fromTypedArray(new Int32Array([0, 7]));
  t.throws(call('maxAxisBackward', dy, idx, 2, 3, 1), /'indices' out of range/);
});
