// The device a suite runs on: KW_DEVICE=cuda runs the golden cases on the GPU (scripts/gpu-check.sh).
import type { Device } from '../../lib';

export function testDevice(): Device {
  const d = process.env.KW_DEVICE ?? 'cpu';
  if (d !== 'cpu' && d !== 'cuda') throw new Error(`KW_DEVICE=${d}: expected cpu or cuda`);
  return d;
}
