// KernelWarehouse benchmark rows: one KW 3×3 layer (64→64, 32×32, batch 64) drawing on the
// kw1x warehouse of a ResNet-18 stage (its four 3×3 convs share 36 cells of 64×64), forward
// and forward+backward, beside a plain conv of the same shape; the standalone assembly op
// (kwAssemble, into upstream's kernel layout); and the assembly GEMMs as kwConv's panels
// strategy runs them at KW-ResNet-18's warehouse shapes (native.kwPanelAssemblySeconds), all
// against the machine's GEMM rate. benchKw() prints the rows; bench.ts calls it.
// Run alone: npm run build:ts && node dist/bench/kw.js
import * as kw from '../lib';
import { native } from '../lib/native';
import { median, printTable } from './harness';

export interface BenchRow {
  name: string;
  ms: number;
  gflops: number | null;
  note: string;
}

/**
 * Median wall times in ms of each fn over `reps` rounds, after one warm-up round. The fns run
 * interleaved, round by round, so a change in machine load hits them alike (the cores are shared).
 */
function timeAll(fns: (() => void)[], reps: number): number[] {
  for (const f of fns) f();
  const t: number[][] = fns.map(() => []);
  for (let i = 0; i < reps; i++)
    fns.forEach((f, k) => {
      const t0 = process.hrtime.bigint();
      f();
      t[k].push(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  return t.map(median);
}

/** The stage: four 64→64 3×3 convs in one warehouse, as KW-ResNet-18 (kw1x) builds layer1. */
function resnetStage(generator: kw.Generator): { net: kw.Module; layer: kw.KWConvNd; manager: kw.WarehouseManager } {
  const manager = new kw.WarehouseManager({ reduction: 0.0625, cellNumRatio: 1, sharingRange: ['layer', 'conv'], generator });
  const names = ['stage1_layer0_conv0', 'stage1_layer0_conv1', 'stage1_layer1_conv0', 'stage1_layer1_conv1'];
  const convs = names.map((warehouseName) =>
    manager.reserve({ inPlanes: 64, outPlanes: 64, kernelSize: 3, padding: 1, bias: false, warehouseName }));
  const net = new kw.Module();
  net.registerModule('warehouse_manager', manager);
  net.registerModule('layers', new kw.ModuleList(convs));
  manager.store();
  manager.allocate(net);
  kw.updateTemperature(net, 0.5);
  return { net, layer: convs[0] as kw.KWConvNd, manager };
}

function forwardBackward(params: kw.Tensor[], run: () => kw.Tensor, dy: kw.Tensor): void {
  const y = run();
  y.backward(dy);
  y.dispose();
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}

/** Runs the KW rows and returns them (also printed when `print`). */
export function benchKw(print = true): BenchRow[] {
  const rows: BenchRow[] = [];
  const add = (name: string, ms: number, flop: number | null, note = ''): void => {
    rows.push({ name, ms, gflops: flop === null ? null : flop / (ms * 1e6), note });
  };
  const g = new kw.Generator(7);
  const B = 64, C = 64, H = 32;
  const x = kw.randn([B, C, H, H], { generator: g });
  const dy = kw.randn([B, C, H, H], { generator: g });
  const { net, layer, manager } = resnetStage(g);
  const plan = layer.plan;
  const m = plan.grid.numMixtures, n = plan.cellShape[0], cell = 64 * 64;
  const convFlop = 2 * B * C * C * 9 * H * H;
  const assembleFlop = 2 * B * m * n * cell;

  const plain = new kw.Conv2d(C, C, 3, { padding: 1, bias: false, generator: g });
  const kwParams = [...net.parameters(), x];
  const withGrad = (f: () => void) => () => {
    x.requiresGrad = true;
    f();
    x.requiresGrad = false;
  };
  const [kwFwd, convFwd, kwFb, convFb] = timeAll([
    () => kw.noGrad(() => layer.forward(x).dispose()),
    () => kw.noGrad(() => plain.forward(x).dispose()),
    withGrad(() => forwardBackward(kwParams, () => layer.forward(x), dy)),
    withGrad(() => forwardBackward([plain.weight, x], () => plain.forward(x), dy)),
  ], 7);
  add('KW conv 3×3 fwd [64,64,32,32], kw1x stage warehouse (n=36)', kwFwd, convFlop + assembleFlop,
    `m=${m}, cells ${n}×64×64, train mode; KW/plain = ${(kwFwd / convFwd).toFixed(2)}`);
  add('plain conv 3×3 fwd (same shape)', convFwd, convFlop);
  add('KW conv 3×3 fwd+bwd', kwFb, 3 * (convFlop + assembleFlop),
    `grads to x, warehouse, attention; KW/plain = ${(kwFb / convFb).toFixed(2)}`);
  add('plain conv 3×3 fwd+bwd', convFb, 3 * convFlop);

  // The assembly alone: α [B·m, n] · E [n, 64·64] written as per-sample kernels, beside the
  // same product as one plain matmul (no relayout) and a square GEMM: the machine's rate.
  const alpha = kw.randn([B * m, n], { generator: g });
  const cells = manager.cells(plan.warehouseIndex);
  const geom = { groupsSpatial: plan.grid.groupsSpatial, groupsOutChannel: plan.grid.groupsOutChannel,
    groupsInChannel: plan.grid.groupsInChannel, kernelSize: [3, 3] };
  const dw = kw.randn([B, C, C, 3, 3], { generator: g });
  const e2 = kw.reshape(cells, [n, cell]);
  const sq = kw.randn([1024, 1024], { generator: g });
  const [asmFwd, asmFb, flat, sqMs] = timeAll([
    () => kw.noGrad(() => kw.kwAssemble(alpha, cells, geom).dispose()),
    () => {
      alpha.requiresGrad = true;
      forwardBackward([alpha, cells], () => kw.kwAssemble(alpha, cells, geom), dw);
      alpha.requiresGrad = false;
    },
    () => kw.noGrad(() => kw.matmul(alpha, e2).dispose()),
    () => kw.noGrad(() => kw.matmul(sq, sq).dispose()),
  ], 9);
  add(`assembly fwd α[${B * m},${n}]·E[${n},${cell}] → [64,64,64,3,3]`, asmFwd, assembleFlop);
  add('assembly fwd+bwd (dα = dW·Eᵀ, dE = Σ αᵀ·dW)', asmFb, 3 * assembleFlop);
  add(`GEMM [${B * m},${n}]·[${n},${cell}] (kw.matmul, no relayout)`, flat, assembleFlop);
  // The assembly GEMMs inside kwConv (panels): per sample (pairs over 16 MB) α_b [9, n] times
  // the cells regrouped 32 output channels at a time, KW-ResNet-18 kw1x's stage warehouses
  // (n cells of co×ci, 9 taps) at batch 16, threads over (sample, 32-channel block) as in the
  // forward. Median of 5 runs, the GEMM 1024³ rate the faster of its two medians.
  const panelShapes: [string, number, number][] = [
    ['layer1: 56 cells 64×64', 56, 64], ['layer2: 47 cells 128×128', 47, 128],
    ['layer3: 47 cells 256×256', 47, 256], ['layer4: 27 cells 512×512', 27, 512],
  ];
  const panelMs = panelShapes.map(([, n, c]) => {
    native.kwPanelAssemblySeconds(n, c, c, 9, 1, 1, 16);
    return median(Array.from({ length: 5 }, () => native.kwPanelAssemblySeconds(n, c, c, 9, 1, 1, 16))) * 1e3;
  });
  const [sq2] = timeAll([() => kw.noGrad(() => kw.matmul(sq, sq).dispose())], 9);
  panelShapes.forEach(([what, n, c], i) =>
    add(`assembly GEMM in kwConv (panels), ${what}, B16`, panelMs[i], 2 * 16 * 9 * n * c * c));
  add('GEMM 1024³ (kw.matmul): the machine rate', Math.min(sqMs, sq2), 2 * 1024 ** 3);
  const machine = rows[rows.length - 1].gflops ?? 1;
  for (const r of rows)
    if (r.name.startsWith('assembly') || r.name.startsWith('GEMM ['))
      r.note = [r.note, `${(((r.gflops ?? 0) / machine) * 100).toFixed(0)}% of the GEMM 1024³ rate`].filter(Boolean).join('; ');

  for (const t of [x, dy, alpha, dw, e2, sq]) t.dispose();
  net.dispose();
  plain.dispose();
  if (print) printRows(rows);
  return rows;
}

function printRows(rows: BenchRow[]): void {
  printTable(['benchmark', 'median ms', 'GFLOP/s', 'note'], rows.map((r) => [r.name, r.ms.toFixed(2), r.gflops === null ? '-' : r.gflops.toFixed(1), r.note]));
}

if (require.main === module) benchKw();
