"""SkipResNeXt: SkipResNet with grouped 3x3 convs (MMDetection's ResNeXt)."""
from mmgate.registry import MODELS
from .skip_resnet import GatedBottleneck, SkipResLayer, SkipResNet

__all__ = ['SkipResNeXt']


@MODELS.register_module()
class SkipResNeXt(SkipResNet):
    """SkipResNeXt backbone: 50-32x4d, 101-32x4d, 101-32x8d, ...

    Args:
        depth (int): 50, 101 or 152.
        groups (int): Cardinality of the 3x3 convs. Defaults to 32.
        width_per_group (int): Width of each group. Defaults to 4.
        **kwargs: Everything ``SkipResNet`` takes.

    Example:
        >>> import torch
        >>> from mmgate.models import SkipResNeXt
        >>> model = SkipResNeXt(depth=50, groups=4, width_per_group=4,
        ...                     base_channels=16, out_indices=(3, ))
        >>> model.eval()
        >>> print(tuple(model(torch.rand(1, 3, 32, 32))[0].shape))
        (1, 512, 1, 1)
    """

    arch_settings = {
        50: (GatedBottleneck, (3, 4, 6, 3)),
        101: (GatedBottleneck, (3, 4, 23, 3)),
        152: (GatedBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, groups: int = 32, width_per_group: int = 4,
                 **kwargs) -> None:
        assert groups >= 1 and width_per_group >= 1, \
            f'groups and width_per_group must be >= 1, got {groups}, ' \
            f'{width_per_group}'
        self.groups = groups
        self.width_per_group = width_per_group
        super().__init__(**kwargs)

    def make_res_layer(self, **kwargs) -> SkipResLayer:
        return SkipResLayer(
            groups=self.groups,
            base_width=self.width_per_group,
            base_channels=self.base_channels,
            **kwargs)
