#!/usr/bin/env node
// Regenerates data/fashion-mnist-small/, the dataset `npx kw-train` trains on by default:
// the first 12,000 training and 2,000 test images of Fashion-MNIST (MIT licence), as gzipped
// IDX files. Source: ../shared/data/fashion-mnist or Debian's dataset-fashion-mnist package.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const sources = [process.argv[2], path.join(__dirname, '..', '..', 'shared', 'data', 'fashion-mnist'), '/usr/share/datasets/fashion-mnist'];
const src = sources.find((d) => d && fs.existsSync(path.join(d, 'train-labels-idx1-ubyte.gz')));
if (!src) throw new Error(`Fashion-MNIST not found in ${sources.filter(Boolean).join(', ')}`);
const out = path.join(__dirname, '..', 'data', 'fashion-mnist-small');
fs.mkdirSync(out, { recursive: true });

function subset(name, count) {
  const buf = zlib.gunzipSync(fs.readFileSync(path.join(src, `${name}.gz`)));
  const ndim = buf[3];
  const header = Buffer.from(buf.subarray(0, 4 + 4 * ndim));
  const per = ndim === 3 ? buf.readUInt32BE(8) * buf.readUInt32BE(12) : 1;
  header.writeUInt32BE(count, 4);
  const body = buf.subarray(4 + 4 * ndim, 4 + 4 * ndim + count * per);
  fs.writeFileSync(path.join(out, `${name}.gz`), zlib.gzipSync(Buffer.concat([header, body]), { level: 9 }));
}
subset('train-images-idx3-ubyte', 12000);
subset('train-labels-idx1-ubyte', 12000);
subset('t10k-images-idx3-ubyte', 2000);
subset('t10k-labels-idx1-ubyte', 2000);
fs.writeFileSync(
  path.join(out, 'README.md'),
  '# Fashion-MNIST (subset)\n\nThe first 12,000 training and 2,000 test images of Fashion-MNIST\n' +
    '(Zalando Research, MIT licence), in IDX format, gzipped. Made by scripts/make-default-dataset.js.\n' +
    'It is the dataset `npx kw-train` trains on when no --data_path is given.\n',
);
console.log(`wrote ${out}`);
