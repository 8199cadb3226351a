from .blocks import (BasicBlock, Bottleneck, ResidualAdd, RoutedBlock,
                     RoutedStage, build_junction)
from .dense_mobilenet_v2 import DenseMobileNetV2, InvertedResidual
from .dense_resnet import DenseResNet, DenseResNetCIFAR
from .prior_pool_resnet import (PriorPoolResNet, PriorPoolResNeXt,
                                PriorPoolSkipResNet, PriorPoolSkipResNeXt)
from .resnet_base import RoutedResNet
from .skip_convnext import ConvNeXtBlock, SkipConvNeXt
from .skip_resnet import SkipResNet, SkipResNetV1c, SkipResNetV1d, SkipResNeXt

__all__ = [
    'SkipResNet', 'SkipResNetV1c', 'SkipResNetV1d', 'SkipResNeXt',
    'SkipConvNeXt', 'DenseResNet', 'DenseResNetCIFAR', 'DenseMobileNetV2',
    'PriorPoolResNet', 'PriorPoolResNeXt', 'PriorPoolSkipResNet',
    'PriorPoolSkipResNeXt', 'RoutedResNet', 'RoutedBlock', 'RoutedStage',
    'BasicBlock', 'Bottleneck', 'ConvNeXtBlock', 'InvertedResidual',
    'ResidualAdd', 'build_junction'
]
