from .dense_mobilenet_v2 import DenseMobileNetV2
from .dense_resnet import DenseResNet, DenseResNetCIFAR
from .prior_pool_resnet import (PriorPoolResNet, PriorPoolResNeXt,
                                PriorPoolSkipResNet, PriorPoolSkipResNeXt)
from .skip_convnext import SkipConvNeXt
from .skip_resnet import SkipResNet, SkipResNetV1c, SkipResNetV1d
from .skip_resnext import SkipResNeXt

__all__ = [
    'SkipResNet', 'SkipResNetV1c', 'SkipResNetV1d', 'SkipResNeXt',
    'SkipConvNeXt', 'DenseResNet', 'DenseResNetCIFAR', 'DenseMobileNetV2',
    'PriorPoolResNet', 'PriorPoolResNeXt', 'PriorPoolSkipResNet',
    'PriorPoolSkipResNeXt'
]
