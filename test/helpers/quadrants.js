// The "quadrants" toy dataset shared by test/trainer.test.ts and test/fixtures/dist_rank.js
// (plain JS so that the mpirun fixture can load it without a TypeScript loader): 4 classes,
// which quadrant of an 8×8 uint8 image is bright, pixels seeded by a small LCG.
'use strict';

/** { images: Uint8Array [n·64], labels: Uint8Array [n] } */
function quadrantImages(n, seed) {
  const images = new Uint8Array(n * 64), labels = new Uint8Array(n);
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    labels[i] = c;
    for (let p = 0; p < 64; p++) {
      const y = p >> 3, x = p & 7;
      const inQ = (y < 4) === (c < 2) && (x < 4) === (c % 2 === 0);
      images[i * 64 + p] = Math.min(255, (inQ ? 150 : 40) + Math.floor(rnd() * 60));
    }
  }
  return { images, labels };
}

module.exports = { quadrantImages };
