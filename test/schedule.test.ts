// Schedules against hand-computed values of upstream's formulas.
import t from 'tap';
import { cosineSchedule, temperature } from '../lib/train/schedule';

t.test('cosine schedule with warmup', async (t) => {
  const s = cosineSchedule(1, 0, 3, 2, 1); // 6 iterations: warmup [0, 1], cosine over 4
  t.equal(s.length, 6);
  t.same(Array.from(s.subarray(0, 2)), [0, 1]);
  t.ok(Math.abs(s[2] - 1) < 1e-12);
  t.ok(Math.abs(s[3] - 0.5 * (1 + Math.cos(Math.PI / 4))) < 1e-12);
  t.ok(Math.abs(s[5] - 0.5 * (1 + Math.cos((3 * Math.PI) / 4))) < 1e-12);
  const flat = cosineSchedule(0.1, 0.1, 2, 5);
  t.ok(flat.every((v) => Math.abs(v - 0.1) < 1e-15), 'base = final is constant');
  const noWarm = cosineSchedule(2, 1, 1, 4);
  t.equal(noWarm[0], 2);
  t.throws(() => cosineSchedule(1, 0, 1, 4, 0, 0, 2), /upstream asserts/);
  t.throws(() => cosineSchedule(1, 0, 1, 4, 2), /exceed/);
});

t.test('temperature anneals linearly to 0 and stays there', async (t) => {
  // 10 iterations per epoch, temp_epoch 2 → total 20
  t.equal(temperature(0, 0, 10, 2), 19 / 20);
  t.equal(temperature(0, 9, 10, 2), 10 / 20);
  t.equal(temperature(1, 9, 10, 2), 0);
  t.equal(temperature(5, 3, 10, 2), 0);
  t.equal(temperature(0, 4, 10, 2, 0.5), 0.5 * 15 / 20);
});
