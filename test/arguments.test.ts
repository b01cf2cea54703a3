// Bad arguments to public constructors give an Error naming the argument (and, for a typo in
// an options object, the closest valid name) before any work starts.
import t from 'tap';
import * as kw from '../lib';
import { closestName } from '../lib/errors';

t.test('createModel: unknown options, wrong types and ranges are named', async (t) => {
  t.throws(() => kw.createModel('resnet_mini', { numClasess: 10 } as never), /createModel\('resnet_mini'\): unknown option 'numClasess' in 'opts' \(did you mean 'numClasses'\?\)/);
  t.throws(() => kw.createModel('kw_resnet_mini', { cellNumratio: 0.5 } as never), /unknown option 'cellNumratio' .*did you mean 'cellNumRatio'/);
  t.throws(() => kw.createModel('resnet_mini', null as never), /'opts' must be an options object, got null/);
  t.throws(() => kw.createModel('resnet_mini', [] as never), /'opts' must be an options object/);
  t.throws(() => kw.createModel(42 as never), /createModel: 'name' must be a model name \(a string\), got 42/);
  t.throws(() => kw.createModel('resnet_mni'), /unknown model 'resnet_mni' \(known: .*\); did you mean 'resnet_mini'\?/);
  t.throws(() => kw.createModel('kw_resnet_mini', { cellNumRatio: -1 }), /'cellNumRatio' must be a positive number or a non-empty list of positive numbers .*got -1/);
  t.throws(() => kw.createModel('kw_resnet_mini', { reduction: [0.0625, 0] }), /'reduction' must be .*got \[0.0625, 0\]/);
  t.throws(() => kw.createModel('kw_resnet_mini', { cellInplaneRatio: [] }), /'cellInplaneRatio' must be/);
  t.throws(() => kw.createModel('kw_resnet_mini', { nonlocalBasisRatio: NaN }), /'nonlocalBasisRatio' must be a positive number, got NaN/);
  t.throws(() => kw.createModel('kw_resnet_mini', { sharingRange: 3 as never }), /'sharingRange' must be a string or a list of strings, got 3/);
  t.throws(() => kw.createModel('resnet_mini', { generator: 7 as never }), /'generator' must be a Generator, got 7/);
  t.throws(() => kw.createModel('resnet_mini', { dropout: Infinity }), /'dropout' must be a finite number, got Infinity/);
  t.throws(() => kw.createModel('resnet_mini', { numClasses: 2.5 }), /'numClasses' must be a positive integer, got 2.5/);
  const m = kw.createModel('kw_resnet_mini', { inChans: 1, numClasses: 3, cellNumRatio: 1, sharingRange: ['layer', 'conv'] });
  t.equal(m.numClasses, 3, 'valid options still build');
  m.dispose();
});

t.test('optimizers: options and parameter groups are checked', async (t) => {
  const net = new kw.Linear(3, 2);
  const ps = net.parameters();
  t.throws(() => new kw.SGD(ps, { lr: 0.1, momentun: 0.9 } as never), /SGD: unknown option 'momentun' in 'opts' \(did you mean 'momentum'\?\)/);
  t.throws(() => new kw.SGD(ps, undefined as never), /SGD: 'opts' must be an options object, got undefined/);
  t.throws(() => new kw.SGD(ps, { lr: '0.1' } as never), /SGD: 'lr' must be a finite non-negative number, got "0.1"/);
  t.throws(() => new kw.SGD(ps, { lr: 0.1, momentum: -0.5 }), /SGD: 'momentum' must be a finite non-negative number, got -0.5/);
  t.throws(() => new kw.SGD(ps, { lr: 0.1, weightDecay: NaN }), /SGD: 'weightDecay' must be a finite non-negative number, got NaN/);
  t.throws(() => new kw.SGD(ps, { lr: 0.1, nesterov: 'yes' } as never), /SGD: 'nesterov' must be a boolean/);
  t.throws(() => new kw.SGD([], { lr: 0.1 }), /SGD: 'params' must be a non-empty list of tensors or parameter groups, got \[\]/);
  t.throws(() => new kw.SGD(5 as never, { lr: 0.1 }), /SGD: 'params' must be a non-empty list/);
  t.throws(() => new kw.SGD([{ params: ps, lr: -1 }], { lr: 0.1 }), /SGD: 'params\[0\].lr' must be a finite non-negative number, got -1/);
  t.throws(() => new kw.SGD([{ params: ps, weight_decay: 0 } as never], { lr: 0.1 }), /unknown option 'weight_decay' in 'params\[0\]' \(did you mean 'weightDecay'\?\)/);
  t.throws(() => new kw.Adam(ps, { lr: 0.1, betas: [2, 0.9] }), /Adam: 'betas' must be two numbers in \[0, 1\), got \[2, 0.9\]/);
  t.throws(() => new kw.Adam(ps, { lr: 0.1, betas: [0.9] as never }), /Adam: 'betas' must be two numbers/);
  t.throws(() => new kw.AdamW(ps, { lr: 0.1, eps: -1 }), /AdamW: 'eps' must be a finite non-negative number, got -1/);
  t.throws(() => new kw.AdamW(ps, { lr: 0.1, weightDecay: -1 }), /AdamW: 'weightDecay' must be/);
  const opt = new kw.SGD(ps, { lr: 0.1, momentum: 0.9 });
  t.throws(() => opt.setLr(-1), /SGD.setLr: 'lr' must be a finite non-negative number, got -1/);
  t.throws(() => opt.setLr(0.1, NaN), /SGD.setLr: 'weightDecay' must be/);
  t.throws(() => kw.clipGradNorm(ps, 0), /clipGradNorm: 'maxNorm' must be a positive number, got 0/);
  t.throws(() => kw.clipGradNorm(null as never, 1), /clipGradNorm: 'params' must be a list of tensors/);
  opt.dispose();
  net.dispose();
});

t.test('closestName', async (t) => {
  t.equal(closestName('numClasess', ['inChans', 'numClasses', 'dropout']), 'numClasses');
  t.equal(closestName('LR', ['lr', 'eps']), 'lr', 'case-insensitive');
});
