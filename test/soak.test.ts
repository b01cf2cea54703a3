// A long run in small, in `npm test`: 512 training steps of a KW ResNet through the real trainer
// and DataLoader workers with native memory flat after warm-up, RSS bounded, and no threads or
// file descriptors left behind. `npm run soak` runs the same for 3,072 steps (test/soak_long.ts).
import t from 'tap';
import { runSoak } from './helpers/soak';

const IMAGES = 256, BATCH = 8, EPOCHS = 16; // 32 steps per epoch, 512 steps

t.test(`soak: ${EPOCHS * (IMAGES / BATCH)} steps of kw_resnet_mini at 16×16, batch ${BATCH}`, { skip: process.platform !== 'linux' ? 'reads /proc/self' : false }, async (t) => {
  // warm-up: the first epoch allocates the optimizer and EMA state and the first checkpoint
  await runSoak(t, { images: IMAGES, epochs: EPOCHS, batch: BATCH, size: 16, warmupSteps: 2 * (IMAGES / BATCH), rssSlackMiB: 48 });
});
