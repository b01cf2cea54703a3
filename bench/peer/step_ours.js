const kw = require(require('path').join(__dirname, '../../dist/lib'));
const [name, ratio, B, S, C] = process.argv.slice(2);
const opts = { numClasses: +C };
if (ratio !== '-') { opts.cellNumRatio = +ratio; }
const model = kw.createModel(name, opts);
model.train();
const params = model.parameters();
const opt = new kw.SGD(params, { lr: 0.01, momentum: 0.9 });
const x = kw.randn([+B, 3, +S, +S]);
const labels = kw.Tensor ? null : null;
const y = kw.tensor(Int32Array.from({length: +B}, (_, i) => i % +C), [+B], 'int32');
const times = [], cpu = [];  // cpu: process CPU ms (user+sys), robust to a shared machine's load
for (let i = 0; i < (+process.argv[7] || 4); i++) {
  const t0 = Date.now(), c0 = process.cpuUsage();
  kw.tidy(() => {
    const out = model.forward(x);
    const loss = kw.crossEntropy(out, y);
    opt.zeroGrad?.();
    loss.backward();
    opt.step();
  });
  times.push(Date.now() - t0);
  const c = process.cpuUsage(c0);
  cpu.push(Math.round((c.user + c.system) / 1000));
}
console.log(name, ratio, B, S, 'train ms', times, 'cpu ms', cpu, 'rss MB', process.memoryUsage().rss / 1e6 | 0);
