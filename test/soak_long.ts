// `npm run soak` (not part of `npm test`): 3,072 training steps of a KW ResNet (kw_resnet_mini,
// AdamW, EMA, clipping, a checkpoint each epoch) through the trainer and DataLoader workers.
// Native live bytes must stay exactly flat after warm-up, RSS within 64 MiB of its post-warm-up
// value, open fds and OS threads constant at every step, and nothing left after close().
import t from 'tap';
import { runSoak } from './helpers/soak';

const IMAGES = 512, BATCH = 8, EPOCHS = 48; // 64 steps per epoch, 3,072 steps

t.test(`long soak: ${EPOCHS * (IMAGES / BATCH)} steps of kw_resnet_mini at 16×16, batch ${BATCH}`, { skip: process.platform !== 'linux' ? 'reads /proc/self' : false, timeout: 3600_000 }, async (t) => {
  await runSoak(t, { images: IMAGES, epochs: EPOCHS, batch: BATCH, size: 16, warmupSteps: 2 * (IMAGES / BATCH), rssSlackMiB: 64 });
});
