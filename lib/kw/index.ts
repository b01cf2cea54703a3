// KernelWarehouse: the warehouse manager, its layers, the attention, and the planner.
export { WarehouseManager, updateTemperature } from './manager';
export type { WarehouseManagerOptions, ReservedLayer } from './manager';
export { KWConvNd, KWConv1d, KWConv2d, KWConv3d, KWLinear } from './layers';
export type { CellSource } from './layers';
export { KWAttention } from './attention';
export * from './plan';
