// Per-native-call profile of one train step (the same step as step_ours.js):
//   node bench/peer/profile_ours.js resnet18 64 32 10 [byShape] [cellNumRatio]
//   node bench/peer/profile_ours.js kw_resnet18 16 224 1000 1 1
// Wraps every binding function with a timer; convolutions are split by kernel/groups, KW
// convolutions by input shape, assembly dims (m, n, gs, goc, gic, co, ci, ck) and the strategy
// the cost model picked (1 chunked, 2 input mix, 3 panels, 4/5 Winograd with 2×2/4×4 tiles). byShape
// keeps the input sizes apart.
const path = require('path');
const { native } = require(path.join(__dirname, '../../dist/lib/native'));
const stats = new Map();
for (const [k, f] of Object.entries(native)) {
  if (typeof f !== 'function') continue;
  native[k] = function (...a) {
    let key = k;
    if (k === 'convForward' || k === 'convBackward') {
      const wsh = k === 'convForward' ? a[3] : a[4];
      const groups = k === 'convForward' ? a[8] : a[8];
      const xs = k === 'convForward' ? a[1] : a[2];
      key += ` k${wsh.slice(2).join('x')} g${groups === 1 ? 1 : groups === xs[1] ? 'dw' : groups} C${xs[1]} S${xs.slice(2).join('x')}`;
    }
    if (k === 'kwConvForward' || k === 'kwConvBackward') {
      const args = a.slice(4, 12);  // xShape … strategy, at the same place in both calls
      key += ` C${args[0][1]} S${args[0].slice(2).join('x')} k${args[2]} s${args[3]} d${args[1].slice(1).join(',')}` +
        ` strategy${native.kwConvStrategy(...args)}`;
    }
    const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
    const r = f.apply(this, a);
    const dt = Number(process.hrtime.bigint() - t0) / 1e6, c = process.cpuUsage(c0);
    const s = stats.get(key) || { n: 0, ms: 0, cpu: 0 };
    s.n++; s.ms += dt; s.cpu += (c.user + c.system) / 1000; stats.set(key, s);
    return r;
  };
}
const kw = require(path.join(__dirname, '../../dist/lib'));
const [name, B, S, C, byShape, ratio] = process.argv.slice(2);
const model = kw.createModel(name, ratio ? { numClasses: +C, cellNumRatio: +ratio } : { numClasses: +C });
model.train();
const opt = new kw.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
const x = kw.randn([+B, 3, +S, +S]);
const y = kw.tensor(Int32Array.from({ length: +B }, (_, i) => i % +C), [+B], 'int32');
const step = () => kw.tidy(() => {
  const loss = kw.crossEntropy(model.forward(x), y);
  opt.zeroGrad?.();
  loss.backward();
  opt.step();
});
step(); step();
stats.clear();
const t0 = Date.now(), c0 = process.cpuUsage();
step();
const total = Date.now() - t0, c1 = process.cpuUsage(c0);
const rows = [...stats.entries()].map(([k, s]) => {
  if (!byShape) k = k.replace(/ C\d+ S[\dx]+$/, '');
  return [k, s];
}).reduce((m, [k, s]) => { const o = m.get(k) || { n: 0, ms: 0, cpu: 0 }; o.n += s.n; o.ms += s.ms; o.cpu += s.cpu; m.set(k, o); return m; }, new Map());
let sum = 0, sumCpu = 0;
console.log('op'.padEnd(44), 'calls', '  wall ms', '   cpu ms');
for (const [k, s] of [...rows.entries()].sort((a, b) => b[1].ms - a[1].ms)) {
  sum += s.ms; sumCpu += s.cpu;
  console.log(k.padEnd(44), String(s.n).padStart(5), s.ms.toFixed(1).padStart(9), s.cpu.toFixed(1).padStart(9));
}
console.log(`native total ${sum.toFixed(1)} ms wall, ${sumCpu.toFixed(1)} ms cpu; step ${total} ms wall, ${((c1.user + c1.system) / 1000).toFixed(1)} ms cpu`);
