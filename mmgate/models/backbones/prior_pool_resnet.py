"""ResNets whose downsampling is done by guided pooling layers.

Seed 001's experiments put Gaussian-based pooling (:class:`GaussianPool2d`,
or its sibling :class:`MaxEntPool2d`) everywhere a ResNet / ResNeXt
downsamples (``pool_placement='post'``):

* the stem conv gets stride 1 and is followed by a 2x2/2 pool,
* the 3x3/2 max-pool becomes a 3x3/2 pool,
* in the first block of every strided stage the stride leaves conv2 and the
  shortcut, and a 2x2/2 pool is applied to the block output after the
  junction (add + ReLU, or the gate + ReLU in the Skip form).

That roughly adds 70% MACs and 8M parameters to ResNet-50, so the
published gains are not compute-matched. ``pool_placement='pre'`` is the
cheaper option: the strided stem is kept, the max-pool is replaced, and the
2x2/2 pool is applied to the *input* of each strided stage (whose blocks then
all run at stride 1). ``pool_stem=False`` keeps the stem's strided conv and
max-pool in either placement.

Four backbones, all with MMDetection's ResNet interface and keys
(``conv1``, ``layer{s}.{j}.conv{1,2,3}``, ``layer{s}.0.downsample`` ...):

* :class:`PriorPoolResNet`, :class:`PriorPoolResNeXt`: plain residual blocks.
  With ``pool_cfg=None`` they are plain ResNets (max-pool, strided convs),
  which the Gaussian-conv and FLGC configs use (``dcn=`` for the 3x3,
  ``cifar_stem=True`` for 32x32 inputs). ImageNet weights of a plain ResNet
  load (the pools, a Gaussian conv's ``prior_rho`` and FLGC's logits start
  from their own init; strides move, so the features change).
* :class:`PriorPoolSkipResNet`, :class:`PriorPoolSkipResNeXt`: the gated
  (Skip) blocks. With ``'post'``, the projected stage input that later gates
  read (``xs[0]``) is average-pooled with the same 2x2/2 geometry so that it
  keeps matching the pooled block outputs.

Pools live in ``maxpool`` (the stem's pooling slot: a ``Sequential`` of the
2x2 and the 3x3 pool for ``'post'``) and in ``layer{s}.0.pool``, so
``frozen_stages`` and layer-wise lr decay treat them with their stage.

The plain blocks reuse the gated blocks' convs through a cooperative base
(:class:`_PlainJunction`) that replaces the gate by the residual add.
"""
from typing import List, Optional

import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule, Sequential
from torch import Tensor

from mmgate.registry import MODELS
from ..layers import build_prior_pool, global_descriptor
from .skip_resnet import (GatedBasicBlock, GatedBottleneck, SkipResLayer,
                          SkipResNet, _GatedResBlock)
from .skip_resnext import SkipResNeXt

__all__ = ['PlainBasicBlock', 'PlainBottleneck', 'PriorPoolResLayer',
           'PriorPoolSkipResLayer', 'PriorPoolSkipResNet',
           'PriorPoolSkipResNeXt', 'PriorPoolResNet', 'PriorPoolResNeXt']


class _PlainJunction(_GatedResBlock):
    """Ends a block with ``relu(residual(x) + project(x))`` instead of a
    gate. Placed after a gated block class in the bases, its ``__init__``
    takes the place of the gate-building one in the cooperative chain, so the
    block keeps its convs and key names and builds no gate."""

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 index: int,
                 downsample: Optional[nn.Module] = None,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.,
                 gate_cfg: dict = dict(),
                 init_cfg: Optional[dict] = None) -> None:
        BaseModule.__init__(self, init_cfg=init_cfg)
        self.inplanes = inplanes
        self.planes = planes
        self.index = index
        self.downsample = downsample
        self.with_cp = with_cp
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 \
            else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:

        def _inner_forward(x):
            return self.drop_path(self.residual(x)) + self.project(x)

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


class PlainBasicBlock(GatedBasicBlock, _PlainJunction):
    """ResNet basic block (MMDetection's ``BasicBlock``): the convs of
    :class:`GatedBasicBlock`, ending in ``relu(y + shortcut)``."""


class PlainBottleneck(GatedBottleneck, _PlainJunction):
    """ResNet / ResNeXt bottleneck (MMDetection's ``Bottleneck``): the convs
    of :class:`GatedBottleneck` (``dcn=`` for the 3x3 included), ending in
    ``relu(y + shortcut)``."""


def _stage_from_layer(cls: type, layer: SkipResLayer,
                      pool: Optional[nn.Module], placement: str,
                      stride: int) -> Sequential:
    """A ``cls`` stage taking over the blocks of a built stage, with
    ``pool`` kept in its first block."""
    if pool is not None:
        layer[0].add_module('pool', pool)
    return cls(*layer, placement=placement, stride=stride)


class PriorPoolResLayer(Sequential):
    """A stage of plain blocks, downsampling with a pool (or not).

    The stage's pool is kept in its first block (``<stage>.0.pool``) so that
    freezing and layer-wise lr decay treat it with the stage.

    Args:
        *blocks (nn.Module): The blocks (built at stride 1 where pooled).
        placement (str): ``'post'`` pools the first block's output, ``'pre'``
            the stage input. Defaults to 'post'.
        stride (int): Stride of the pool. Defaults to 1.
    """

    def __init__(self, *blocks, placement: str = 'post',
                 stride: int = 1) -> None:
        super().__init__(*blocks)
        self.placement = placement
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        pool = getattr(self[0], 'pool', None)
        if pool is not None and self.placement == 'pre':
            x = pool(x)
        for j, block in enumerate(self):
            x = block(x)
            if j == 0 and pool is not None and self.placement == 'post':
                x = pool(x)
        return x


class PriorPoolSkipResLayer(SkipResLayer):
    """A stage of gated blocks downsampling with a pool (``<stage>.0.pool``).

    With ``'pre'`` the pool is applied to the stage input, then the stage
    runs as usual. With ``'post'`` the first block runs at full resolution,
    its output is pooled, and the projected stage input ``xs[0]`` that the
    later gates read is average-pooled with the pool's stride.

    Args:
        *blocks (nn.Module): The gated blocks (built at stride 1).
        placement (str): ``'post'`` or ``'pre'``. Defaults to 'post'.
        stride (int): Stride (and window) of the pool. Defaults to 2.
    """

    def __init__(self, *blocks, placement: str = 'post',
                 stride: int = 2) -> None:
        # the blocks are built already: skip SkipResLayer's builder
        Sequential.__init__(self, *blocks)
        self.placement = placement
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        first = self[0]
        if self.placement == 'pre':
            return super().forward(first.pool(x))
        xs = [first.project(x)]
        descriptors = [global_descriptor(xs[0])]
        last = len(self) - 1
        for j, block in enumerate(self):
            idx = block.inbound_indices
            x = block(x, [xs[i] for i in idx], [descriptors[i] for i in idx])
            if j == 0:
                x = first.pool(x)
                xs[0] = F.avg_pool2d(xs[0], self.stride, self.stride,
                                     ceil_mode=True, count_include_pad=False)
                descriptors[0] = global_descriptor(xs[0])
            xs.append(x)
            if j < last:
                descriptors.append(global_descriptor(x))
        return x


@MODELS.register_module()
class PriorPoolSkipResNet(SkipResNet):
    """SkipResNet downsampling with guided pools (seed 001's placement).

    Args:
        pool_cfg (dict, optional): The pool: ``type`` (``'GaussianPool2d'``
            or ``'MaxEntPool2d'``) and its options (``noise``, ``norm_cfg``,
            ``reduction`` ...; not the window geometry). None keeps the
            max-pool and the strided convs. Defaults to GaussianPool2d.
        pool_placement (str): ``'post'`` (the seed's: stride-1 stem + 2x2
            pool, pool after the first block of each strided stage) or
            ``'pre'`` (cheaper: strided stem, pool before each strided
            stage). Both replace the 3x3/2 max-pool. Defaults to 'post'.
        pool_stem (bool): Pool in the stem as well (see ``pool_placement``);
            False keeps the strided stem conv and its max-pool, e.g. to
            fine-tune a detector from plain weights with a frozen stem.
            Defaults to True.
        cifar_stem (bool): A 3x3 stride-1 stem conv without stem pooling
            (32x32 inputs, as MMPretrain's ``ResNet_CIFAR``). Defaults to
            False.
        **kwargs: Everything ``SkipResNet`` takes (``depth``, ``strides``,
            ``norm_eval``, ``dcn`` ...). The pools' norms follow
            ``norm_eval`` and ``frozen_stages``.

    Example:
        >>> import torch
        >>> from mmgate.models import PriorPoolSkipResNet
        >>> model = PriorPoolSkipResNet(depth=18, base_channels=8)
        >>> _ = model.eval()
        >>> for out in model(torch.rand(1, 3, 32, 32)):
        ...     print(tuple(out.shape))
        (1, 8, 8, 8)
        (1, 16, 4, 4)
        (1, 32, 2, 2)
        (1, 64, 1, 1)
    """

    placements = ('post', 'pre')

    def __init__(self,
                 pool_cfg: Optional[dict] = dict(type='GaussianPool2d'),
                 pool_placement: str = 'post',
                 pool_stem: bool = True,
                 cifar_stem: bool = False,
                 **kwargs) -> None:
        if pool_cfg is not None and (not isinstance(pool_cfg, dict)
                                     or 'type' not in pool_cfg):
            raise TypeError('pool_cfg must be None or a dict with a "type", '
                            f'got {pool_cfg!r}')
        if pool_placement not in self.placements:
            raise ValueError(f'pool_placement must be one of '
                             f'{self.placements}, got {pool_placement!r}')
        for name, flag in (('pool_stem', pool_stem),
                           ('cifar_stem', cifar_stem)):
            if not isinstance(flag, bool):
                raise TypeError(f'{name} must be a bool, got {flag!r}')
        if cifar_stem and kwargs.get('deep_stem', False):
            raise ValueError('cifar_stem and deep_stem exclude each other')
        self.pool_cfg = pool_cfg
        self.pool_placement = pool_placement
        self.pool_stem = pool_stem
        self.cifar_stem = cifar_stem
        super().__init__(**kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        if self.cifar_stem:
            self.conv1 = build_conv_layer(
                self.conv_cfg, in_channels, stem_channels, 3, stride=1,
                padding=1, bias=False)
            self.norm1_name, norm1 = build_norm_layer(
                self.norm_cfg, stem_channels, postfix=1)
            self.add_module(self.norm1_name, norm1)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.Identity()
            return
        super()._make_stem_layer(in_channels, stem_channels)
        if self.pool_cfg is None or not self.pool_stem:
            return
        pool = build_prior_pool(self.pool_cfg, stem_channels, 3, 2, 1)
        if self.pool_placement == 'post':
            first_conv = self.stem[0] if self.deep_stem else self.conv1
            first_conv.stride = (1, 1)
            pool = nn.Sequential(
                build_prior_pool(self.pool_cfg, stem_channels, 2, 2,
                                 ceil_mode=True), pool)
        self.maxpool = pool

    def make_res_layer(self, stride: int = 1, **kwargs) -> nn.Module:
        """Build a stage at stride 1 and give it a pool of ``stride``."""
        pooled = self.pool_cfg is not None and stride > 1
        layer = super().make_res_layer(stride=1 if pooled else stride,
                                       **kwargs)
        pool = None
        if pooled:
            if self.pool_placement == 'pre':
                channels = kwargs['inplanes']
            else:
                channels = kwargs['planes'] * kwargs['block'].expansion
            # ceil_mode: ceil(H / s) outputs, as the strided conv it replaces
            pool = build_prior_pool(self.pool_cfg, channels, stride, stride,
                                    ceil_mode=True)
        return self.wrap_stage(layer, pool, stride)

    def wrap_stage(self, layer: SkipResLayer, pool: Optional[nn.Module],
                   stride: int) -> nn.Module:
        """The stage module: ``layer`` itself when it has no pool."""
        if pool is None:
            return layer
        return _stage_from_layer(PriorPoolSkipResLayer, layer, pool,
                                 self.pool_placement, stride)

    @property
    def feature_info(self) -> List[dict]:
        info = super().feature_info
        if self.cifar_stem:
            for item in info:
                item['reduction'] //= 4
        return info

    def _freeze_stages(self) -> None:
        super()._freeze_stages()
        if self.frozen_stages >= 0:
            self.maxpool.eval()
            for param in self.maxpool.parameters():
                param.requires_grad = False

    def optional_pretrained_key(self, key: str, missing: bool) -> bool:
        """Besides the parent's: the pools and the parameters a layer lists
        in ``optional_pretrained_params`` (a Gaussian conv's ``prior_rho``,
        FLGC's logits) may be missing, since the weights of a network
        without them lack them; a torchvision checkpoint's ``fc.*`` may be
        left over."""
        if missing:
            if key.startswith('maxpool.') or '.0.pool.' in key:
                return True
            module_name, _, param = key.rpartition('.')
            try:
                module = self.get_submodule(module_name)
            except AttributeError:
                module = None
            if param in getattr(module, 'optional_pretrained_params', ()):
                return True
        elif key.startswith('fc.'):
            return True
        return super().optional_pretrained_key(key, missing)

    def get_layer_depth(self, param_name: str, prefix: str = '') -> tuple:
        """As ``SkipResNet``'s, with the stem's pools in layer 0."""
        if param_name.startswith(prefix + 'maxpool'):
            return 0, sum(self.stage_blocks) + 2
        return super().get_layer_depth(param_name, prefix)


@MODELS.register_module()
class PriorPoolSkipResNeXt(PriorPoolSkipResNet, SkipResNeXt):
    """SkipResNeXt downsampling with guided pools.

    Args:
        groups (int): Cardinality. Defaults to 32.
        width_per_group (int): Width of each group. Defaults to 4.
        **kwargs: Everything ``PriorPoolSkipResNet`` takes.

    Example:
        >>> import torch
        >>> from mmgate.models import PriorPoolSkipResNeXt
        >>> model = PriorPoolSkipResNeXt(depth=50, groups=4, width_per_group=4,
        ...                              base_channels=16, out_indices=(3, ))
        >>> _ = model.eval()
        >>> print(tuple(model(torch.rand(1, 3, 32, 32))[0].shape))
        (1, 512, 1, 1)
    """


def _reject_gate_args(cls: type, kwargs: dict) -> None:
    gate_args = sorted(k for k in kwargs if k.startswith('gate_'))
    if gate_args:
        raise TypeError(f'{cls.__name__} has plain residual blocks and no '
                        f'gates; remove {gate_args}')


@MODELS.register_module()
class PriorPoolResNet(PriorPoolSkipResNet):
    """Plain ResNet downsampling with guided pools (seed 001's experiment).

    Same arguments as :class:`PriorPoolSkipResNet` except the ``gate_*``
    ones. The weights keep MMDetection's / torchvision's names, so a plain
    ResNet checkpoint loads (``init_cfg=dict(type='Pretrained', ...)``; the
    pools and a torchvision ``fc`` are allowed to be missing / left over).
    With ``pool_cfg=None`` this is a plain ResNet; with ``cifar_stem=True``
    it is MMPretrain's ``ResNet_CIFAR``.

    Example:
        >>> import torch
        >>> from mmgate.models import PriorPoolResNet
        >>> model = PriorPoolResNet(depth=50, base_channels=8,
        ...                         pool_placement='pre')
        >>> _ = model.eval()
        >>> for out in model(torch.rand(1, 3, 32, 32)):
        ...     print(tuple(out.shape))
        (1, 32, 8, 8)
        (1, 64, 4, 4)
        (1, 128, 2, 2)
        (1, 256, 1, 1)
    """

    arch_settings = {
        18: (PlainBasicBlock, (2, 2, 2, 2)),
        34: (PlainBasicBlock, (3, 4, 6, 3)),
        50: (PlainBottleneck, (3, 4, 6, 3)),
        101: (PlainBottleneck, (3, 4, 23, 3)),
        152: (PlainBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, **kwargs) -> None:
        _reject_gate_args(type(self), kwargs)
        super().__init__(**kwargs)
        if self.zero_init_residual and self.block is PlainBottleneck:
            # SkipResNet picks the last norm with `block is GatedBottleneck`
            for name in self.res_layers:
                for block in getattr(self, name):
                    block.init_cfg = dict(type='Constant', val=0,
                                          override=dict(name='norm3'))

    def wrap_stage(self, layer: SkipResLayer, pool: Optional[nn.Module],
                   stride: int) -> nn.Module:
        """Plain blocks take only ``x``: always a plain stage."""
        return _stage_from_layer(PriorPoolResLayer, layer, pool,
                                 self.pool_placement, stride)


@MODELS.register_module()
class PriorPoolResNeXt(PriorPoolResNet, SkipResNeXt):
    """Plain ResNeXt downsampling with guided pools.

    Args:
        groups (int): Cardinality. Defaults to 32.
        width_per_group (int): Width of each group. Defaults to 4.
        **kwargs: Everything ``PriorPoolResNet`` takes.

    Example:
        >>> import torch
        >>> from mmgate.models import PriorPoolResNeXt
        >>> model = PriorPoolResNeXt(depth=50, groups=4, width_per_group=4,
        ...                          base_channels=16, out_indices=(3, ))
        >>> _ = model.eval()
        >>> print(tuple(model(torch.rand(1, 3, 32, 32))[0].shape))
        (1, 512, 1, 1)
    """

    arch_settings = {
        depth: PriorPoolResNet.arch_settings[depth] for depth in (50, 101, 152)
    }
