from .skip_convnext import SkipConvNeXt
from .skip_resnet import SkipResNet, SkipResNetV1c, SkipResNetV1d
from .skip_resnext import SkipResNeXt

__all__ = [
    'SkipResNet', 'SkipResNetV1c', 'SkipResNetV1d', 'SkipResNeXt',
    'SkipConvNeXt'
]
