"""ResNets whose downsampling is done by guided pooling layers.

Gaussian-based pooling (Kobayashi, "Gaussian-Based Pooling for Convolutional
Neural Networks", NeurIPS 2019; :class:`GaussianPool2d`, or its sibling
:class:`MaxEntPool2d`) placed everywhere a ResNet / ResNeXt downsamples
(``pool_placement='post'``):

* the stem conv gets stride 1 and is followed by a 2x2/2 pool,
* the 3x3/2 max-pool becomes a 3x3/2 pool,
* in the first block of every strided stage the stride leaves conv2 and the
  shortcut, and a 2x2/2 pool is applied to the block output after the
  junction (add + ReLU, or the gate + ReLU in the Skip form).

That roughly adds 70% MACs and 8M parameters to ResNet-50, so gains are not
compute-matched. ``pool_placement='pre'`` is the cheaper option: the strided
stem is kept, the max-pool is replaced, and the 2x2/2 pool is applied to the
*input* of each strided stage (whose blocks then all run at stride 1).
``pool_stem=False`` keeps the stem's strided conv and max-pool in either
placement.

Four backbones, all with MMDetection's ResNet interface and keys
(``conv1``, ``layer{s}.{j}.conv{1,2,3}``, ``layer{s}.0.downsample`` ...):

* :class:`PriorPoolResNet`, :class:`PriorPoolResNeXt`: plain residual blocks
  (the junction is a residual add). With ``pool_cfg=None`` they are plain
  ResNets (max-pool, strided convs), which the Gaussian-conv and FLGC configs
  use (``dcn=`` for the 3x3, ``cifar_stem=True`` for 32x32 inputs). ImageNet
  weights of a plain ResNet load (the pools, a Gaussian conv's ``prior_rho``
  and FLGC's logits start from their own init; strides move, so the features
  change).
* :class:`PriorPoolSkipResNet`, :class:`PriorPoolSkipResNeXt`: the gated
  (Skip) blocks. With ``'post'``, the projected stage input that later gates
  read is average-pooled with the same 2x2/2 geometry by the router, so that
  it keeps matching the pooled block outputs.

Pools live in ``maxpool`` (the stem's pooling slot: a ``Sequential`` of the
2x2 and the 3x3 pool for ``'post'``) and in ``layer{s}.0.pool``, so
``frozen_stages`` and layer-wise lr decay treat them with their stage.
"""
from typing import Optional

from mmgate.registry import MODELS
from .resnet_base import RESNEXT_ARCHS, RoutedResNet
from .skip_resnet import SkipResNet

__all__ = [
    'PriorPoolSkipResNet', 'PriorPoolSkipResNeXt', 'PriorPoolResNet',
    'PriorPoolResNeXt'
]

POOL_ARGS = ('pool_cfg', 'pool_placement', 'pool_stem', 'cifar_stem')
POOL_ARGS_DOC = """
        pool_cfg (dict, optional): The pool: ``type`` (``'GaussianPool2d'``
            or ``'MaxEntPool2d'``) and its options (``noise``, ``norm_cfg``,
            ``reduction`` ...; not the window geometry). None keeps the
            max-pool and the strided convs. Defaults to GaussianPool2d.
        pool_placement (str): ``'post'`` (stride-1 stem + 2x2 pool, pool
            after the first block of each strided stage) or ``'pre'``
            (cheaper: strided stem, pool before each strided stage). Both
            replace the 3x3/2 max-pool. Defaults to 'post'.
        pool_stem (bool): Pool in the stem as well; False keeps the strided
            stem conv and its max-pool, e.g. to fine-tune a detector from
            plain weights with a frozen stem. Defaults to True.
        cifar_stem (bool): A 3x3 stride-1 stem conv without stem pooling
            (32x32 inputs, as MMPretrain's ``ResNet_CIFAR``). Defaults to
            False."""


@MODELS.register_module()
class PriorPoolSkipResNet(SkipResNet):
    __doc__ = """SkipResNet downsampling with guided pools.

    Args:{}
        **kwargs: Everything ``SkipResNet`` takes (``depth``, ``strides``,
            ``norm_eval``, ``dcn`` ...). The pools' norms follow
            ``norm_eval`` and ``frozen_stages``.

    Example:
        >>> import torch
        >>> from mmgate.models import PriorPoolSkipResNet
        >>> model = PriorPoolSkipResNet(depth=18, base_channels=8,
        ...                             out_indices=(0, 3)).eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 32, 32))]
        [(1, 8, 8, 8), (1, 64, 1, 1)]
        >>> type(model.layer2[0].pool).__name__
        'GaussianPool2d'
    """.format(POOL_ARGS_DOC)

    family_args = POOL_ARGS
    accepts_classifier_keys = True

    def __init__(self,
                 pool_cfg: Optional[dict] = dict(type='GaussianPool2d'),
                 **kwargs) -> None:
        super().__init__(pool_cfg=pool_cfg, **kwargs)


@MODELS.register_module()
class PriorPoolSkipResNeXt(PriorPoolSkipResNet):
    """SkipResNeXt (depth 50, 101, 152; ``groups`` / ``width_per_group`` as
    :class:`SkipResNeXt`) downsampling with guided pools; otherwise as
    :class:`PriorPoolSkipResNet`.

    Example:
        >>> import torch
        >>> from mmgate.models import PriorPoolSkipResNeXt
        >>> model = PriorPoolSkipResNeXt(depth=50, groups=4, base_channels=16,
        ...                              pool_placement='pre')
        >>> model.layer2[0].conv2.groups, model.layer2[0].pool_placement
        (4, 'pre')
    """

    arch_settings = RESNEXT_ARCHS
    family_args = POOL_ARGS + ('groups', 'width_per_group', 'base_width')
    resnext = True


@MODELS.register_module()
class PriorPoolResNet(RoutedResNet):
    __doc__ = """Plain ResNet downsampling with guided pools.

    MMDetection's ``ResNet`` arguments plus the pool ones; no ``gate_*``
    (the blocks end in a plain residual add). The weights keep MMDetection's
    / torchvision's names, so a plain ResNet checkpoint loads
    (``init_cfg=dict(type='Pretrained', ...)``; the pools and a torchvision
    ``fc`` are allowed to be missing / left over). With ``pool_cfg=None``
    this is a plain ResNet; with ``cifar_stem=True`` it is MMPretrain's
    ``ResNet_CIFAR``.

    Args:
        depth (int): 18, 34, 50, 101 or 152.{}
        **kwargs: MMDetection's ``ResNet`` arguments.

    Example:
        >>> import torch
        >>> from mmgate.models import PriorPoolResNet
        >>> model = PriorPoolResNet(depth=50, base_channels=8,
        ...                         pool_placement='pre')
        >>> outs = model.eval()(torch.rand(1, 3, 32, 32))
        >>> [o.shape[1] for o in outs], tuple(outs[-1].shape[-2:])
        ([32, 64, 128, 256], (1, 1))
    """.format(POOL_ARGS_DOC)

    family_args = POOL_ARGS
    accepts_classifier_keys = True

    def __init__(self,
                 depth: int,
                 pool_cfg: Optional[dict] = dict(type='GaussianPool2d'),
                 **kwargs) -> None:
        gate_args = sorted(k for k in kwargs if k.startswith('gate_'))
        if gate_args:
            raise TypeError(f'{type(self).__name__} has plain residual blocks'
                            f' and no gates; remove {gate_args}')
        self.check_family_args(kwargs)
        super().__init__(depth, pool_cfg=pool_cfg, gate_cfg=None, **kwargs)


@MODELS.register_module()
class PriorPoolResNeXt(PriorPoolResNet):
    """Plain ResNeXt (depth 50, 101, 152) downsampling with guided pools:
    :class:`PriorPoolResNet` with ``groups`` / ``width_per_group`` (as
    :class:`SkipResNeXt`) for the 3x3 convs."""

    arch_settings = RESNEXT_ARCHS
    family_args = POOL_ARGS + ('groups', 'width_per_group', 'base_width')
    resnext = True
