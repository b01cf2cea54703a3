// A KernelWarehouse layer on its own: two 3×3 convs sharing one warehouse, as in a KW-ResNet
// stage, with the temperature annealed from 1 (each kernel is its assigned cell) to 0.
// Run: npm run build:ts && node dist/examples/kw_layer.js
import * as kw from '../lib';

class TwoConvs extends kw.Module {
  readonly manager = this.registerModule('warehouse_manager', new kw.WarehouseManager({ sharingRange: 'layer_conv', cellNumRatio: 1 }));
  readonly a = this.registerModule('a', this.manager.reserve({ inPlanes: 16, outPlanes: 16, kernelSize: 3, padding: 1, bias: false, warehouseName: 'stage0_layer0_conv0' }) as kw.KWConv2d);
  readonly b = this.registerModule('b', this.manager.reserve({ inPlanes: 16, outPlanes: 16, kernelSize: 3, padding: 1, bias: false, warehouseName: 'stage0_layer1_conv0' }) as kw.KWConv2d);
  constructor() {
    super();
    this.manager.store();
    this.manager.allocate(this);
  }
  forward(x: kw.Tensor): kw.Tensor {
    return this.b.forward(kw.relu(this.a.forward(x)));
  }
}

export function main(log: (s: string) => void = console.log): number[] {
  const net = new TwoConvs();
  const x = kw.randn([4, 16, 8, 8], { generator: new kw.Generator(1) });
  const norms: number[] = [];
  for (const t of [1, 0.5, 0]) {
    kw.updateTemperature(net, t);
    norms.push(kw.tidy(() => kw.mean(kw.square(net.forward(x))).item()));
  }
  const cells = net.manager.plan.warehouses.map((w) => `${w.name}: ${w.numCells} cells of ${w.shape.slice(1).join('×')}`);
  log(`warehouses: ${cells.join('; ')}`);
  log(`mean square output at temperature 1, 0.5, 0: ${norms.map((n) => n.toFixed(4)).join(', ')}`);
  log(`state dict: ${[...net.stateDict().keys()].slice(0, 4).join(', ')}, ...`);
  return norms;
}

if (require.main === module) main();
