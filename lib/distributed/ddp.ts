// The pieces of torch's DistributedDataParallel that a CPU trainer needs: the same starting
// weights on every rank, and gradients averaged over ranks before each optimizer step. BatchNorm
// normalises each rank's batch with its own statistics, as upstream (no SyncBN). torch's DDP
// also copies rank 0's running statistics to every rank before each forward; the trainer does
// it once per epoch, before evaluation and checkpoints, which are the only readers of them.
import { Module } from '../nn/module';
import { zeros } from '../tensor';
import { World } from './world';

/** Copies rank 0's parameters and buffers to every rank. */
export function broadcastModule(world: World, model: Module, root = 0): void {
  world.broadcast([...model.parameters(), ...model.buffers()], root);
}

/**
 * Replaces every trainable parameter's gradient by its mean over the ranks (bucketed all-reduce).
 * A parameter that got no gradient on this rank takes part with zeros, so every rank reduces the
 * same list of tensors.
 */
export function averageGradients(world: World, model: Module, bucketElems?: number): void {
  if (!world.distributed) return;
  const grads = [];
  for (const p of model.parameters()) {
    if (!p.requiresGrad) continue;
    if (!p.grad) p.grad = zeros(p.shape);
    grads.push(p.grad);
  }
  world.allReduce(grads, { average: true, bucketElems });
}
