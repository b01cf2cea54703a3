// The model zoo: upstream's models under upstream's names and state-dict names.
export { ZooModel } from './common';
export type { ModelOptions, KWModelOptions, CreateModelOptions } from './common';
export { createModel, createModelFromArgs, modelOptionsFromArgs, listModels, isKWModel } from './registry';
export type { ModelFactory } from './registry';
export { ResNet, BasicBlock, Bottleneck, resnet18, resnet50, resnet18_small, resnet50_small, resnet_mini } from './resnet';
export { KWResNet, kw_resnet18, kw_resnet50, kw_resnet18_small, kw_resnet50_small, kw_resnet_mini } from './kw_resnet';
export { MobileNetV2, InvertedResidual, ConvBNReLU, makeDivisible, mobilenetv2_050, mobilenetv2_100 } from './mobilenetv2';
export { KWMobileNetV2, kw_mobilenetv2_050, kw_mobilenetv2_100 } from './kw_mobilenetv2';
export { KW1d2xMobileNetV2, kw1d2x_mobilenetv2_050, kw1d2x_mobilenetv2_100 } from './kw1d2x_mobilenetv2';
export { ConvNeXt, ConvNeXtBlock, convnext_tiny } from './convnext';
export { KWConvNeXt, KWConvNeXtBlock, kw_convnext_tiny } from './kw_convnext';
