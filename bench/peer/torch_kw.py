#!/usr/bin/env python3
"""PyTorch peer of the kernelwarehouse benchmark (bench/bench.ts runs it, one case per process).

KernelWarehouse written out the way the official ICML 2024 code does it
(modules/kernel_warehouse.py, models/kw_resnet.py): the attention head is
avgpool -> fc1 -> BatchNorm1d -> ReLU -> fc2 -> row-normalise -> temperature mix;
the kernels are assembled with one torch.mm of the attentions and the warehouse
cells, permuted into per-sample kernels, and applied as one grouped conv2d with
groups = batch x groups. Models: KW-ResNet-18 (models/kw_resnet.py) and KW-MobileNetV2 x0.5/x1.0
(models/kw_mobilenetv2.py, depthwise convolutions from warehouses too) and KW-ConvNeXt-T
(models/kw_convnext.py, LayerNorm attentions); plain ResNet-18, MobileNetV2 and ConvNeXt-T are
torchvision's. --selfcheck proves the architectures: parameter and warehouse counts
of every config of those models against the golden counts, and golden forwards of the official code.

  python3 bench/peer/torch_kw.py --selfcheck GOLDEN_DIR     # param counts + a golden forward
  python3 bench/peer/torch_kw.py --model kw_resnet18 --kw-config '{"cell_num_ratio": 1}' \
      --batch 64 --size 32 --classes 10 [--reps N] [--eval-only]
  python3 bench/peer/torch_kw.py --model ... --export out.onnx   # the eval model in ONNX, fixed batch

Prints one JSON line. Timing protocol as bench/harness.ts timeSteps: warm up (>= 1 run, more
while under 1 s, at most 5), then reps runs (default: what fits in about 8 s, 3..25), median.
"""
import argparse
import json
import math
import os
import resource
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

KW_MODELS = ('kw_resnet18', 'kw_mobilenetv2_050', 'kw_mobilenetv2_100', 'kw_convnext_tiny')
PLAIN_MODELS = ('resnet18', 'mobilenetv2_050', 'mobilenetv2_100', 'convnext_tiny')
MOBILENET_WIDTH = {'050': 0.5, '100': 1.0}


# ---- KernelWarehouse as upstream writes it ---------------------------------------------------

class Attention(nn.Module):
    def __init__(self, in_planes, reduction, num_static_cell, num_local_mixture, cell_num_ratio, norm_layer=nn.BatchNorm1d):
        super().__init__()
        hidden_planes = max(int(in_planes * reduction), 16)
        self.kw_planes_per_mixture = num_static_cell + 1
        self.num_local_mixture = num_local_mixture
        self.kw_planes = self.kw_planes_per_mixture * num_local_mixture
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        # BatchNorm1d's shift makes a bias redundant; LayerNorm (KW-ConvNeXt) normalises per sample, so fc1 keeps one
        self.fc1 = nn.Linear(in_planes, hidden_planes, bias=norm_layer is not nn.BatchNorm1d)
        self.norm1 = norm_layer(hidden_planes)
        self.act1 = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden_planes, self.kw_planes, bias=True)
        self.temp_bias = torch.zeros([self.kw_planes])  # derived by init_temperature, not saved
        self.temp_value = 0
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def init_temperature(self, start_cell_idx, num_cell_per_mixture):
        if num_cell_per_mixture >= 1.0:
            num_cell_per_mixture = int(num_cell_per_mixture)
            for idx in range(self.num_local_mixture):
                self.temp_bias[int(idx * self.kw_planes_per_mixture + start_cell_idx)] = 1
                start_cell_idx += num_cell_per_mixture
            return start_cell_idx
        num_mixture_per_cell = int(1.0 / num_cell_per_mixture)
        for idx in range(self.num_local_mixture):
            if idx % num_mixture_per_cell == (idx // num_mixture_per_cell) % num_mixture_per_cell:
                self.temp_bias[int(idx * self.kw_planes_per_mixture + start_cell_idx)] = 1
                start_cell_idx += 1
            else:
                self.temp_bias[int(idx * self.kw_planes_per_mixture + self.kw_planes_per_mixture - 1)] = 1
        return start_cell_idx

    def forward(self, x):
        x = self.avgpool(x.reshape(*x.shape[:2], -1)).squeeze(dim=-1)
        x = self.act1(self.norm1(self.fc1(x)))
        x = self.fc2(x).reshape(-1, self.kw_planes_per_mixture)
        x = x / (torch.sum(torch.abs(x), dim=1).view(-1, 1) + 1e-3)
        x = (1.0 - self.temp_value) * x.reshape(-1, self.kw_planes) + self.temp_value * self.temp_bias.view(1, -1)
        return x.reshape(-1, self.kw_planes_per_mixture)[:, :-1]


class KWConv2d(nn.Module):
    permute = (0, 2, 4, 3, 5, 1, 6, 7)

    def __init__(self, in_planes, out_planes, kernel_size, stride, padding, groups, bias, warehouse_id, manager):
        super().__init__()
        self.in_planes, self.out_planes, self.groups = in_planes, out_planes, groups
        self.bias = nn.Parameter(torch.zeros(out_planes)) if bias else None  # created at reserve time, as upstream
        self.kernel_size, self.stride, self.padding = [kernel_size] * 2, stride, padding
        self.warehouse_id = warehouse_id
        self.warehouse_manager = [manager]  # a list: not registered as a child module

    def init_attention(self, cell, start_cell_idx, reduction, cell_num_ratio, norm_layer):
        self.cell_shape = cell.shape  # [n, cell_out, cell_in, 1, 1]
        self.groups_out_channel = self.out_planes // self.cell_shape[1]
        # a depthwise layer (groups = channels) has cells of one input channel: in // (cell_in * groups) = 1
        self.groups_in_channel = self.in_planes // (self.cell_shape[2] * self.groups)
        self.groups_spatial = 1
        for d in range(2):
            self.groups_spatial = self.groups_spatial * self.kernel_size[d] // self.cell_shape[3 + d]
        m = self.groups_out_channel * self.groups_in_channel * self.groups_spatial
        self.attention = Attention(self.in_planes, reduction, self.cell_shape[0], m, cell_num_ratio, norm_layer)
        return self.attention.init_temperature(start_cell_idx, cell_num_ratio)

    def forward(self, x):
        kw_attention = self.attention(x)
        batch_size = x.shape[0]
        x = x.reshape(1, -1, *x.shape[2:])
        weight = self.warehouse_manager[0].weights[self.warehouse_id].reshape(self.cell_shape[0], -1)
        aggregate_weight = torch.mm(kw_attention, weight)
        aggregate_weight = aggregate_weight.reshape([batch_size, self.groups_spatial, self.groups_out_channel,
                                                     self.groups_in_channel, *self.cell_shape[1:]])
        aggregate_weight = aggregate_weight.permute(*self.permute)
        aggregate_weight = aggregate_weight.reshape(-1, self.in_planes // self.groups, *self.kernel_size)
        # per-sample kernels [B*out, in/groups, k, k]: sample b's groups are groups b*G .. b*G+G-1
        output = F.conv2d(x, weight=aggregate_weight, bias=None, stride=self.stride, padding=self.padding,
                          groups=self.groups * batch_size)
        output = output.view(batch_size, self.out_planes, *output.shape[2:])
        return output if self.bias is None else output + self.bias.view(1, -1, 1, 1)


class WarehouseManager(nn.Module):
    def __init__(self, reduction, cell_num_ratio, cell_inplane_ratio, cell_outplane_ratio, sharing_range,
                 norm_layer=nn.BatchNorm1d):
        super().__init__()
        self.sharing_range, self.norm_layer = sharing_range, norm_layer
        self.warehouse_list = {}
        self.reduction, self.cell_num_ratio = reduction, cell_num_ratio
        self.cell_inplane_ratio, self.cell_outplane_ratio = cell_inplane_ratio, cell_outplane_ratio
        self.weights = nn.ParameterList()

    def fuse_warehouse_name(self, name):
        fused = []
        for sub in name.split('_'):
            match = sub
            for share in self.sharing_range:
                if match.startswith(share):
                    match = share
            fused.append(match)
        return '_'.join(fused)

    def reserve(self, in_planes, out_planes, kernel_size, stride, padding, warehouse_name, enabled, groups=1, bias=False):
        if not enabled:
            return nn.Conv2d(in_planes, out_planes, kernel_size, stride=stride, padding=padding, groups=groups,
                             bias=bias)
        name = self.fuse_warehouse_name(warehouse_name)
        # the layer's weight shape [out, in/groups, k, k]: the gcds and cell counts are taken over it
        self.warehouse_list.setdefault(name, []).append([out_planes, in_planes // groups, kernel_size, kernel_size])
        return KWConv2d(in_planes, out_planes, kernel_size, stride, padding, groups, bias,
                        list(self.warehouse_list.keys()).index(name), self)

    def store(self):
        count = len(self.warehouse_list)
        each = lambda v: list(v) if isinstance(v, (list, tuple)) and len(v) == count else [v[0] if isinstance(v, (list, tuple)) else v] * count
        self.reduction, self.cell_num_ratio = each(self.reduction), each(self.cell_num_ratio)
        self.cell_inplane_ratio, self.cell_outplane_ratio = each(self.cell_inplane_ratio), each(self.cell_outplane_ratio)
        for idx, layers in enumerate(self.warehouse_list.values()):
            out_gcd, in_gcd = layers[0][0], layers[0][1]
            for layer in layers:
                out_gcd, in_gcd = math.gcd(out_gcd, layer[0]), math.gcd(in_gcd, layer[1])
            cell_in = max(int(in_gcd * self.cell_inplane_ratio[idx]), 1)
            cell_out = max(int(out_gcd * self.cell_outplane_ratio[idx]), 1)
            total = 0
            for layer in layers:  # spatial partition: 1x1 cells
                total += layer[2] * layer[3] * int(layer[0] // cell_out * layer[1] // cell_in)
            n = max(int(total * self.cell_num_ratio[idx]), 1)
            self.weights.append(nn.Parameter(torch.randn(n, cell_out, cell_in, 1, 1)))

    def allocate(self, network):
        ends = [0] * len(self.weights)
        for layer in network.modules():
            if isinstance(layer, KWConv2d):
                w = layer.warehouse_id
                start = ends[w]
                end = layer.init_attention(self.weights[w], start, self.reduction[w], self.cell_num_ratio[w],
                                           self.norm_layer)
                nn.init.kaiming_normal_(self.weights[w][start:end].view(-1, *self.weights[w].shape[2:]),
                                        mode='fan_out', nonlinearity='relu')
                ends[w] = end
        for w, end in enumerate(ends):
            assert end == self.weights[w].shape[0], f'warehouse {w}: {end} cells claimed, {self.weights[w].shape[0]} held'


class KWNet(nn.Module):
    """A network with KW layers: upstream's update_temperature, shared by the KW models below."""

    def update_temperature(self, t):
        for m in self.modules():
            if isinstance(m, Attention):
                m.temp_value = t


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride, downsample, wm, stage_idx, layer_idx):
        super().__init__()
        conv1_stage = max(stage_idx - 1 if layer_idx == 0 else stage_idx, 0)
        self.conv1 = wm.reserve(inplanes, planes, 3, stride, 1, f'stage{conv1_stage}_layer{layer_idx}_conv0', True)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = wm.reserve(planes, planes, 3, 1, 1, f'stage{stage_idx}_layer{layer_idx}_conv1', True)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class KWResNet18(KWNet):
    def __init__(self, num_classes, reduction=0.0625, cell_num_ratio=1, cell_inplane_ratio=1, cell_outplane_ratio=1,
                 sharing_range=('layer', 'conv')):
        super().__init__()
        if isinstance(sharing_range, str):
            sharing_range = sharing_range.split('_')
        self.warehouse_manager = WarehouseManager(reduction, cell_num_ratio, cell_inplane_ratio, cell_outplane_ratio,
                                                  sharing_range)
        wm = self.warehouse_manager
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes, layer_idx = 64, 0
        for stage, planes in enumerate([64, 128, 256, 512]):
            stride = 1 if stage == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes:
                downsample = nn.Sequential(
                    wm.reserve(inplanes, planes, 1, stride, 0, f'stage{stage - 1}_layer{layer_idx + 1}_conv0', stride != 1),
                    nn.BatchNorm2d(planes))
            blocks = [BasicBlock(inplanes, planes, stride, downsample, wm, stage, 0)]
            inplanes, layer_idx = planes, 1
            blocks.append(BasicBlock(inplanes, planes, 1, None, wm, stage, layer_idx))
            layer_idx += 1
            setattr(self, f'layer{stage + 1}', nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        wm.store()
        wm.allocate(self)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


# ---- KW-MobileNetV2 (upstream models/kw_mobilenetv2.py) ----------------------------------------
# torchvision's MobileNetV2 layout with every convolution, depthwise ones included, reserved from
# the warehouse manager; the classifier stays a plain Linear. The warehouse names carry upstream's
# KW stage of each row of the setting table, and at a stage change the first block still takes
# the previous stage's name with layer index restarting at 0 ("handover"): this decides which
# layers share a warehouse, hence the cell counts (lib/models/mobilenetv2.ts mobileFeatures).

MOBILENET_SETTING = [  # t (expansion), c (channels), n (blocks), s (stride)
    [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
MOBILENET_KW_STAGE = [1, 2, 3, 4, 5, 6, 6]  # upstream's kw_stage_setting: the KW stage of each row


def make_divisible(v, divisor, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNReLU(nn.Sequential):
    def __init__(self, wm, in_planes, out_planes, kernel_size=3, stride=1, groups=1, warehouse_name=None):
        super().__init__(
            wm.reserve(in_planes, out_planes, kernel_size, stride, (kernel_size - 1) // 2, warehouse_name, True,
                       groups=groups),
            nn.BatchNorm2d(out_planes), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, wm, inp, oup, stride, expand_ratio, stage_idx, layer_idx):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        name = lambda kind: f'stage{stage_idx}_layer{layer_idx}_{kind}'
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(wm, inp, hidden, kernel_size=1, warehouse_name=name('pwconv0')))
        layers += [ConvBNReLU(wm, hidden, hidden, stride=stride, groups=hidden, warehouse_name=name('dwconv0')),
                   wm.reserve(hidden, oup, 1, 1, 0, name('pwconv1'), True),
                   nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class KWMobileNetV2(KWNet):
    def __init__(self, num_classes, width_mult, reduction=0.0625, cell_num_ratio=1, cell_inplane_ratio=1,
                 cell_outplane_ratio=1, sharing_range=()):
        super().__init__()
        if isinstance(sharing_range, str):
            sharing_range = sharing_range.split('_')
        # upstream's main.py passes [] when the config has no sharing_range (every name its own warehouse)
        self.warehouse_manager = WarehouseManager(reduction, cell_num_ratio, cell_inplane_ratio, cell_outplane_ratio,
                                                  list(sharing_range))
        wm = self.warehouse_manager
        input_channel = make_divisible(32 * width_mult, 8)
        last_channel = make_divisible(1280 * max(1.0, width_mult), 8)
        features = [ConvBNReLU(wm, 3, input_channel, stride=2, warehouse_name='stage0_conv0')]
        layer_idx = 0
        for idx, (t, c, n, s) in enumerate(MOBILENET_SETTING):
            output_channel = make_divisible(c * width_mult, 8)
            for i in range(n):
                handover = i == 0 and idx > 0 and MOBILENET_KW_STAGE[idx] != MOBILENET_KW_STAGE[idx - 1]
                stage_idx = MOBILENET_KW_STAGE[idx] - 1 if handover else MOBILENET_KW_STAGE[idx]
                features.append(InvertedResidual(wm, input_channel, output_channel, s if i == 0 else 1, t,
                                                 stage_idx, layer_idx))
                input_channel = output_channel
                layer_idx = 0 if handover else layer_idx + 1
        features.append(ConvBNReLU(wm, input_channel, last_channel, kernel_size=1,
                                   warehouse_name=f'stage{MOBILENET_KW_STAGE[-1]}_layer{layer_idx}_pwconv1'))
        self.features = nn.Sequential(*features)
        self.dropout = nn.Dropout(p=0.0)
        self.classifier = nn.Linear(last_channel, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
        wm.store()
        wm.allocate(self)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(self.dropout(x))


# ---- KW-ConvNeXt-Tiny (upstream models/kw_convnext.py) -----------------------------------------
# ConvNeXt with the stem (4x4/4), the three downsampling convs (2x2/2) and every block's depthwise
# 7x7 and pointwise 1x1 convs reserved from the manager, all with a bias; the pointwise layers stay
# convolutions on (N, C, H, W) (so gamma is [1, C, 1, 1]) and the attentions use LayerNorm, whose
# per-sample statistics suit the warehouse sharing across stages of different scale.

class LayerNormChannelsFirst(nn.Module):
    """Upstream's LayerNorm(data_format='channels_first'): normalises dim 1 of (N, C, H, W)."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim)), eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class KWConvNeXtBlock(nn.Module):
    def __init__(self, wm, dim, layer_scale_init_value, stage_idx, layer_idx):
        super().__init__()
        name = lambda kind: f'stage{stage_idx}_layer{layer_idx}_{kind}'
        self.dwconv = wm.reserve(dim, dim, 7, 1, 3, name('dwconv0'), True, groups=dim, bias=True)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = wm.reserve(dim, 4 * dim, 1, 1, 0, name('pwconv1'), True, bias=True)
        self.act = nn.GELU()
        self.pwconv2 = wm.reserve(4 * dim, dim, 1, 1, 0, name('pwconv2'), True, bias=True)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(1, dim, 1, 1)) \
            if layer_scale_init_value > 0 else None
        # drop path: the benchmark runs both sides with rate 0 (bench/cases.ts resolveCase), so none here

    def forward(self, x):
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        y = self.pwconv2(self.act(self.pwconv1(y)))
        return x + (y if self.gamma is None else self.gamma * y)


class KWConvNeXt(KWNet):
    def __init__(self, num_classes, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), reduction=0.0625,
                 cell_num_ratio=1, cell_inplane_ratio=1, cell_outplane_ratio=1, sharing_range=('layer', 'pwconv'),
                 layer_scale_init_value=1e-6, head_init_scale=1.0):
        super().__init__()
        if isinstance(sharing_range, str):
            sharing_range = sharing_range.split('_')
        self.warehouse_manager = WarehouseManager(reduction, cell_num_ratio, cell_inplane_ratio, cell_outplane_ratio,
                                                  list(sharing_range), norm_layer=nn.LayerNorm)
        wm = self.warehouse_manager
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            wm.reserve(3, dims[0], 4, 4, 0, 'stagestem_conv0', True, bias=True), LayerNormChannelsFirst(dims[0]))])
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                LayerNormChannelsFirst(dims[i]),
                wm.reserve(dims[i], dims[i + 1], 2, 2, 0, f'stage{i}_layerds_conv0', True, bias=True)))
        self.stages = nn.ModuleList([
            nn.Sequential(*[KWConvNeXtBlock(wm, dims[i], layer_scale_init_value, i, j) for j in range(depths[i])])
            for i in range(4)])
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)
        # upstream's _init_weights runs before allocate(): it reaches the head, not the attentions
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=.02)
                nn.init.zeros_(m.bias)
        self.head.weight.data.mul_(head_init_scale)
        self.head.bias.data.mul_(head_init_scale)
        wm.store()
        wm.allocate(self)

    def forward(self, x):
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.head(self.norm(x.mean([-2, -1])))


KW_KEYS = ('reduction', 'cell_num_ratio', 'cell_inplane_ratio', 'cell_outplane_ratio', 'sharing_range')


def build(model, classes, kw_config):
    if model == 'resnet18':
        import torchvision
        return torchvision.models.resnet18(num_classes=classes)
    if model == 'kw_resnet18':
        return KWResNet18(classes, **{k: v for k, v in kw_config.items() if k in KW_KEYS})
    if model in ('mobilenetv2_050', 'mobilenetv2_100'):
        import torchvision  # upstream's models/mobilenetv2.py is torchvision's layout; dropout 0 as in the golden case
        return torchvision.models.MobileNetV2(num_classes=classes, width_mult=MOBILENET_WIDTH[model[-3:]], dropout=0.0)
    if model in ('kw_mobilenetv2_050', 'kw_mobilenetv2_100'):
        return KWMobileNetV2(classes, MOBILENET_WIDTH[model[-3:]], **{k: v for k, v in kw_config.items() if k in KW_KEYS})
    if model == 'convnext_tiny':
        import torchvision  # torchvision's ConvNeXt-T: upstream's architecture with Linear pointwise layers
        return torchvision.models.convnext_tiny(num_classes=classes)
    if model == 'kw_convnext_tiny':
        return KWConvNeXt(classes, **{k: v for k, v in kw_config.items() if k in KW_KEYS})
    raise SystemExit(f'torch_kw.py: no peer for model {model!r} (have {", ".join(KW_MODELS + PLAIN_MODELS)})')


def num_params(net):
    return sum(p.numel() for p in net.parameters())


# ---- checks: parameter counts and golden forwards of the official code --------------------

def read_safetensors(path):
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        assert info['dtype'] == 'F32', f'{name}: {info["dtype"]}'
        a, b = info['data_offsets']
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(info['shape'])
    return out


def split_state(t):
    """The golden tensors minus inputs, outputs and gradients: the state dict under upstream's names."""
    return {k: v for k, v in t.items() if k.split('.')[0] not in ('in', 'out', 'gout', 'labels', 'loss', 'grad', 'after')}


def load_state(net, t):
    missing, unexpected = net.load_state_dict(split_state(t), strict=False)
    return [k for k in missing if not k.endswith('num_batches_tracked')], unexpected


def golden_model_forward(golden_dir, name):
    """A "model" golden case: eval and train logits of the whole official model from its state dict."""
    case = json.load(open(os.path.join(golden_dir, name + '.json')))
    t = read_safetensors(os.path.join(golden_dir, name + '.safetensors'))
    net = build(case['kw_config']['model'], case['num_classes'], case['kw_config'])
    missing, unexpected = load_state(net, t)
    if hasattr(net, 'update_temperature'):
        net.update_temperature(case['temperature'])
    net.eval()
    with torch.no_grad():
        err_eval = (net(t['in.0']) - t['out.eval']).abs().max().item()
    net.train()
    err_train = (net(t['in.0']) - t['out.train']).abs().max().item()
    r = {'case': case['name'], 'missing': missing, 'unexpected': unexpected,
         'max_abs_err_eval': err_eval, 'max_abs_err_train': err_train}
    r['ok'] = not missing and not unexpected and err_eval < 1e-3 and err_train < 1e-3
    return r


class LayersNet(nn.Module):
    """A "layers" golden case's network: a manager and its layers, named as upstream's case generator names them."""

    def __init__(self, case):
        super().__init__()
        m = case['manager']
        assert m.get('nonlocal_basis_ratio', 1) >= 1, 'non-local basis attention: not in this peer'
        norm = {'batchnorm1d': nn.BatchNorm1d, 'layernorm': nn.LayerNorm}[m.get('norm_layer', 'batchnorm1d')]
        self.warehouse_manager = WarehouseManager(m['reduction'], m['cell_num_ratio'], m['cell_inplane_ratio'],
                                                  m['cell_outplane_ratio'], m['sharing_range'], norm_layer=norm)
        layers = []
        for l in case['layers']:
            assert l['layer_type'] == 'conv2d' and l['dilation'] == 1, l
            layers.append(self.warehouse_manager.reserve(l['in_planes'], l['out_planes'], l['kernel_size'], l['stride'],
                                                         l['padding'], l['warehouse_name'], True, groups=l['groups'],
                                                         bias=l['bias']))
        self.layers = nn.ModuleList(layers)
        self.warehouse_manager.store()
        self.warehouse_manager.allocate(self)


def golden_layers_forward(golden_dir, name):
    """A "layers" golden case (e.g. depthwise KW convolutions): each layer's output and input gradient."""
    case = json.load(open(os.path.join(golden_dir, name + '.json')))
    t = read_safetensors(os.path.join(golden_dir, name + '.safetensors'))
    net = LayersNet(case)
    missing, unexpected = load_state(net, t)
    for layer in net.layers:
        layer.attention.temp_value = case['temperature']
    net.train(case['mode'] == 'train')
    err_out = err_grad = 0.0
    for k, layer in enumerate(net.layers):
        x = t[f'in.{k}'].clone().requires_grad_(True)
        y = layer(x)
        (y * t[f'gout.{k}']).sum().backward()
        err_out = max(err_out, (y - t[f'out.{k}']).abs().max().item())
        err_grad = max(err_grad, (x.grad - t[f'grad.in.{k}']).abs().max().item())
    shapes = [list(w.shape) for w in net.warehouse_manager.weights]
    r = {'case': case['name'], 'missing': missing, 'unexpected': unexpected, 'warehouse_shapes_ok':
         shapes == case['warehouse_shapes'], 'max_abs_err_out': err_out, 'max_abs_err_grad_in': err_grad}
    r['ok'] = not missing and not unexpected and r['warehouse_shapes_ok'] and err_out < 1e-4 and err_grad < 1e-4
    return r


# Golden cases the peer reproduces: the KW-ResNet-18 model, plain MobileNetV2 x0.5 (torchvision's
# layout as upstream uses it), depthwise + pointwise KW layers (the KW-MobileNetV2 building blocks:
# the whole-model KW-MobileNetV2 golden case is kw1d2x, whose non-local basis attention the peer lacks)
# and KW-ConvNeXt's layers (4x4 stem, 7x7 depthwise, pointwise, 2x2 downsample; LayerNorm attention).
GOLDEN_MODEL_CASES = ('kw1d4x_resnet18_c10', 'mobilenetv2_050_c10')
GOLDEN_LAYER_CASES = ('depthwise', 'convnext_parts')


def selfcheck(golden_dir, configs_dir):
    """Param and warehouse counts of every config whose model the peer builds, and the golden cases above."""
    counts = json.load(open(os.path.join(golden_dir, 'param_counts.json')))
    report = {'param_counts': {}, 'ok': True}
    for cfg_name, want in sorted(counts.items()):
        if want['model'] not in KW_MODELS + PLAIN_MODELS:
            continue  # kw1d2x_* (non-local basis attention), resnet50: not built by this peer
        cfg = json.load(open(os.path.join(configs_dir, cfg_name)))
        net = build(want['model'], 1000, cfg)
        got = num_params(net)
        warehouses = len(net.warehouse_manager.weights) if hasattr(net, 'warehouse_manager') else 0
        ok = got == want['params'] and warehouses == want['warehouses']
        report['param_counts'][cfg_name] = {'peer': got, 'golden': want['params'], 'warehouses': warehouses,
                                            'golden_warehouses': want['warehouses'], 'ok': ok}
        report['ok'] &= ok
    forwards = [golden_model_forward(golden_dir, n) for n in GOLDEN_MODEL_CASES]
    forwards += [golden_layers_forward(golden_dir, n) for n in GOLDEN_LAYER_CASES]
    # 'golden_forward' stays the KW-ResNet-18 case (bench/peers.ts SelfCheck reads it); all are in 'golden'.
    report['golden_forward'] = forwards[0]
    report['golden'] = forwards
    report['ok'] &= all(f['ok'] for f in forwards)
    return report


# ---- timing ---------------------------------------------------------------------------------

def time_steps(fn, reps=None):
    warmup, w0 = 0, time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        last = time.perf_counter() - t0
        warmup += 1
        if time.perf_counter() - w0 >= 1 or warmup >= 5:
            break
    n = reps or min(25, max(3, math.ceil(8 / max(last, 1e-3))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[n // 2], n


def bench(a):
    torch.manual_seed(0)
    cfg = json.loads(a.kw_config or '{}')
    net = build(a.model, a.classes, cfg)
    if hasattr(net, 'update_temperature'):
        net.update_temperature(0.5)
    x = torch.randn(a.batch, 3, a.size, a.size)
    y = torch.tensor([(i * 7) % a.classes for i in range(a.batch)])
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)

    def train_step():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    def eval_step():
        with torch.no_grad():
            net(x)

    kind = 'official-style KW' if a.model in KW_MODELS else 'torchvision'
    out = {'peer': f'pytorch {torch.__version__} ({kind})', 'threads': torch.get_num_threads(),
           'params': num_params(net)}
    if a.export:
        # A fixed batch: upstream's reshape to groups = batch does not export with a dynamic one.
        net.eval()
        torch.onnx.export(net, x, a.export, input_names=['input'], output_names=['logits'], opset_version=13)
        out['onnx'] = a.export
        return out
    if not a.eval_only:
        net.train()
        out['train_s'], out['train_reps'] = time_steps(train_step, a.reps)
    net.eval()
    out['eval_s'], out['eval_reps'] = time_steps(eval_step, a.reps)
    out['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--selfcheck', metavar='GOLDEN_DIR')
    p.add_argument('--configs', default=os.path.join(os.path.dirname(__file__), '..', '..', 'configs'))
    p.add_argument('--model')
    p.add_argument('--kw-config', help='the KW keys of the official config, as JSON')
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--classes', type=int, default=10)
    p.add_argument('--reps', type=int)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--eval-only', action='store_true')
    p.add_argument('--export', metavar='ONNX_PATH', help='only export the eval model to ONNX (fixed batch), no timing')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.selfcheck:
        print(json.dumps(selfcheck(a.selfcheck, a.configs)))
    elif a.model:
        print(json.dumps(bench(a)))
    else:
        p.error('--model or --selfcheck is required')


if __name__ == '__main__':
    sys.exit(main())
