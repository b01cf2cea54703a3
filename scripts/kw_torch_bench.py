"""PyTorch side of the KW-ResNet-18 training-throughput comparison (scripts/gpu-check.sh).

Builds the same model as kernelwarehouse's -- the warehouses, cell grids and attention sizes are
read from the plan JSON that bench/gpu_train.ts writes -- but computes it the upstream way
(OSVAI/KernelWarehouse, modules/kernel_warehouse.py): per layer, the attention head in plain
torch ops, torch.mm of the attentions with the whole warehouse, a permute into the per-sample
kernels, and ONE grouped convolution with groups = batch x groups. Prints one JSON line per
precision (fp32, and bf16 autocast with --amp), images/s from the median step after warm-up.

Run: python3 scripts/kw_torch_bench.py --plan plan.json --batch 128 --size 224 --steps 10 --amp
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    """Upstream's contrasting-driven attention (nonlocal_basis_ratio = 1)."""

    def __init__(self, in_planes, hidden, mixtures, cells, norm, temp_bias):
        super().__init__()
        self.kw_planes_per_mixture = cells + 1
        self.kw_planes = mixtures * (cells + 1)
        batchnorm = norm == 'batchnorm1d'
        self.fc1 = nn.Linear(in_planes, hidden, bias=not batchnorm)
        self.norm1 = nn.BatchNorm1d(hidden) if batchnorm else nn.LayerNorm(hidden)
        self.act1 = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, self.kw_planes, bias=True)
        self.register_buffer('temp_bias', torch.tensor(temp_bias, dtype=torch.float32), persistent=False)
        self.temp_value = 0.5

    def forward(self, x):
        x = x.reshape(*x.shape[:2], -1).mean(dim=-1)
        x = self.act1(self.norm1(self.fc1(x)))
        x = self.fc2(x).reshape(-1, self.kw_planes_per_mixture)
        x = x / (torch.sum(torch.abs(x), dim=1).view(-1, 1) + 1e-3)
        x = (1.0 - self.temp_value) * x.reshape(-1, self.kw_planes) + self.temp_value * self.temp_bias.view(1, -1)
        return x.reshape(-1, self.kw_planes_per_mixture)[:, :-1]


class KWConv2d(nn.Module):
    def __init__(self, layer, manager):
        super().__init__()
        s = layer['spec']
        self.in_planes, self.out_planes, self.groups = s['inPlanes'], s['outPlanes'], s['groups']
        self.kernel, self.stride, self.padding, self.dilation = s['kernelSize'], s['stride'], s['padding'], s['dilation']
        self.cell_shape, self.permute, self.warehouse = layer['cellShape'], layer['permute'], layer['warehouseIndex']
        g = layer['grid']
        self.grid = (g['groupsSpatial'], g['groupsOutChannel'], g['groupsInChannel'])
        self.attention = Attention(self.in_planes, layer['hidden'], layer['mixtures'], layer['cells'], layer['norm'],
                                   layer['tempBias'])
        self.manager = [manager]  # a list: the warehouses are registered once, on the model

    def forward(self, x):
        kw_attention = self.attention(x).type(x.dtype)
        batch = x.shape[0]
        x = x.reshape(1, -1, *x.shape[2:])
        cells = self.manager[0][self.warehouse]
        weight = cells.reshape(cells.shape[0], -1).type(x.dtype)
        w = torch.mm(kw_attention, weight)
        w = w.reshape([batch, *self.grid, *self.cell_shape[1:]]).permute(*self.permute)
        w = w.reshape(-1, self.in_planes // self.groups, *self.kernel)
        out = F.conv2d(x, w, None, self.stride, self.padding, self.dilation, self.groups * batch)
        return out.view(batch, self.out_planes, *out.shape[2:])


class BasicBlock(nn.Module):
    def __init__(self, conv1, conv2, planes, downsample):
        super().__init__()
        self.conv1, self.bn1, self.conv2, self.bn2 = conv1, nn.BatchNorm2d(planes), conv2, nn.BatchNorm2d(planes)
        self.downsample = nn.Sequential(downsample, nn.BatchNorm2d(planes)) if downsample is not None else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class KWResNet18(nn.Module):
    def __init__(self, plan, num_classes=1000):
        super().__init__()
        self.warehouses = nn.ParameterList(
            [nn.Parameter(torch.randn(w['shape']) * 0.05) for w in plan['warehouses']])
        unused = list(plan['layers'])

        def take(cin, cout, k, stride):
            for i, l in enumerate(unused):
                s = l['spec']
                if (s['inPlanes'], s['outPlanes'], s['kernelSize'][0], s['stride'][0]) == (cin, cout, k, stride):
                    del unused[i]
                    if l['kind'] == 'kw':
                        return KWConv2d(l, self.warehouses)
                    return nn.Conv2d(cin, cout, k, stride, s['padding'][0], bias=s['bias'])
            raise ValueError(f'the plan has no conv {cin}->{cout} k{k} s{stride}')

        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        blocks = []
        for stage in range(4):
            planes = 64 * 2 ** stage
            for b in range(2):
                stride = 2 if stage > 0 and b == 0 else 1
                cin = planes // 2 if stage > 0 and b == 0 else planes
                down = take(cin, planes, 1, stride) if stride != 1 else None
                blocks.append(BasicBlock(take(cin, planes, 3, stride), take(planes, planes, 3, 1), planes, down))
        if unused:
            raise ValueError(f'{len(unused)} plan layers not placed')
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.blocks(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def bench(model, batch, size, steps, warmup, amp):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, size, size, device='cuda')
    y = torch.arange(batch, device='cuda') * 7919 % 1000
    times = []
    for i in range(warmup + steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast('cuda', dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
        torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), loss.item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--plan', required=True)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--amp', action='store_true')
    a = p.parse_args()
    plan = json.load(open(a.plan))
    torch.manual_seed(0)
    # FP32 as the CPU reference computes it; the TF32 row shows what PyTorch's fast default gives.
    for name, amp, tf32 in [('fp32', False, False), ('tf32', False, True)] + ([('bf16-autocast', True, False)] if a.amp else []):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
        model = KWResNet18(plan).cuda().train()
        ms, loss = bench(model, a.batch, a.size, a.steps, a.warmup, amp)
        print(json.dumps({'impl': 'pytorch-upstream-style', 'precision': name, 'model': plan['model'],
                          'numParameters': sum(t.numel() for t in model.parameters()), 'batch': a.batch,
                          'size': a.size, 'stepMs': ms, 'imagesPerSec': a.batch * 1000 / ms, 'loss': loss,
                          'peakDeviceMiB': torch.cuda.max_memory_allocated() / 2 ** 20,
                          'torch': torch.__version__, 'cudnn': torch.backends.cudnn.version(),
                          'device': torch.cuda.get_device_name()}), flush=True)
        del model
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


if __name__ == '__main__':
    main()
