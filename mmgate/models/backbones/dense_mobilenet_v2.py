"""Dense-MobileNetV2 (Takeda, MIRU 2020): MobileNetV2 whose 17 inverted
residual blocks all end in a Gate Module over the last N entries of the
global list.

As in the authors' 2020 code: every block is gated, also the stride-2 and
channel-changing ones (their shortcut is a 2x2 average pool, channels are
zero-padded / truncated by the alignment); the gate reads the linear block
output (after the last BN), its MLP has reduction 4 and ReLU6, and nothing
follows the junction. N = 4: 3.50M -> 4.08M parameters with a 1000-class
head.

The residual branches use MMPretrain's key layout
(``layer{i}.{j}.conv.{0,1,2}.{conv,bn}``, ``conv1``, ``conv2``), so the
non-gate weights of an MMPretrain MobileNetV2 checkpoint fit.
"""
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule
from torch import Tensor

from mmgate.registry import MODELS
from ..layers import InboundRouter, dense_inbound_indices
from ..layers.gate import gate_cfg_of, gate_norm_of
from .base import (GatedBackbone, check_dense_args, check_drop_path_rate,
                   freeze_modules, linear_drop_path_rates)
from .blocks import RoutedBlock, RoutedStage, build_junction

__all__ = ['make_divisible', 'InvertedResidual', 'DenseMobileNetV2']


def make_divisible(value: float,
                   divisor: int = 8,
                   min_ratio: float = 0.9) -> int:
    """Round ``value`` to a multiple of ``divisor``, never below
    ``min_ratio * value`` (MobileNet's channel rule).

    >>> make_divisible(32 * 1.4), make_divisible(24 * 0.5)
    (48, 16)
    """
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < min_ratio * value:
        new_value += divisor
    return new_value


class InvertedResidual(RoutedBlock):
    """Inverted residual branch (1x1 expand, 3x3 depthwise, 1x1 linear,
    MMPretrain's ``conv.{0,1,2}`` layout); the junction given to it ends the
    block, with no activation after it (linear bottleneck).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels C.
        stride (int): Stride of the depthwise conv (1 or 2); a stride-2
            block's entry is its input average-pooled 2x2.
        expand_ratio (int): Hidden width = ``round(in_channels * ratio)``.
        conv_cfg, norm_cfg, act_cfg (dict): Of the residual branch.
        **kwargs: :class:`RoutedBlock` arguments (``entry_index``,
            ``inbound_indices``, ``junction``, ``with_cp``,
            ``drop_path_rate``).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int,
                 expand_ratio: int,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6'),
                 **kwargs) -> None:
        assert stride in (1, 2), f'stride must be 1 or 2, got {stride}'
        assert norm_cfg is not None, \
            'InvertedResidual needs a norm: the gate reads its output'
        downsample = nn.AvgPool2d(2, stride=2, ceil_mode=True) \
            if stride == 2 else None
        super().__init__(downsample=downsample, act_cfg=None, **kwargs)
        self.stride = stride
        hidden = int(round(in_channels * expand_ratio))
        layers = []
        if expand_ratio != 1:
            layers.append(
                ConvModule(
                    in_channels,
                    hidden,
                    1,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg))
        layers += [
            ConvModule(
                hidden,
                hidden,
                3,
                stride=stride,
                padding=1,
                groups=hidden,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg),
            ConvModule(
                hidden,
                out_channels,
                1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=None)
        ]
        self.conv = nn.Sequential(*layers)

    @property
    def last_norm(self) -> nn.Module:
        """The BN that ends the branch (the gate reads its output)."""
        return self.conv[-1].norm

    def residual_pre_norm(self, x: Tensor) -> Tensor:
        """The branch up to (not including) ``last_norm``."""
        for layer in self.conv[:-1]:
            x = layer(x)
        return self.conv[-1].conv(x)


@MODELS.register_module()
class DenseMobileNetV2(GatedBackbone):
    """Dense-MobileNetV2 backbone, MMPretrain / MMDetection MobileNetV2
    interface.

    Args:
        widen_factor (float): Width multiplier (1.0, 1.4 ...). Defaults to 1.
        out_indices (Sequence[int]): 0-6 are the seven stages, 7 the final
            1x1 conv. Defaults to (1, 2, 4, 7) (MMDetection's).
        frozen_stages (int): 0 freezes the stem conv, i > 0 also stages
            1..i; -1 freezes nothing.
        conv_cfg (dict, optional): Conv config.
        norm_cfg (dict): Norm config. Defaults to BN.
        act_cfg (dict): Activation of the branches. Defaults to ReLU6.
        norm_eval (bool): Keep every BN, the gates' too, in eval mode while
            training. Defaults to False.
        with_cp (bool): Gradient checkpointing of the blocks.
        drop_path_rate (float): Stochastic depth, linear over the 17 blocks.
        num_connections (int): N. Defaults to 4 (the paper's).
        pad_mode (str): 'masked' or 'paper' (``blocks.build_junction``).
        gate_reduction (int): Defaults to 4 (the paper's Dense-MobileNetV2).
        gate_norm_cfg (dict, optional): Norm inside the gates. Defaults to
            ``norm_cfg`` when it is a BatchNorm, else BN
            (``layers.gate.gate_norm_of``).
        gate_act_cfg (dict): Activation inside the gates. Defaults to ReLU6.
        gate_lean (bool): Drop the dead softmax slot of block 0's gate.
        init_cfg (dict or list[dict], optional): Initialisation config.

    Example:
        >>> import torch
        >>> from mmgate.models import DenseMobileNetV2
        >>> model = DenseMobileNetV2(widen_factor=0.25, out_indices=(1, 7))
        >>> model = model.eval()
        >>> outs = model(torch.rand(1, 3, 64, 64))
        >>> [tuple(o.shape) for o in outs]
        [(1, 8, 16, 16), (1, 1280, 2, 2)]
    """

    # expand ratio, channels, blocks, stride of each stage
    arch_settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2],
                     [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                     [6, 320, 1, 1]]

    def __init__(
        self,
        widen_factor: float = 1.,
        out_indices: Sequence[int] = (1, 2, 4, 7),
        frozen_stages: int = -1,
        conv_cfg: Optional[dict] = None,
        norm_cfg: dict = dict(type='BN'),
        act_cfg: dict = dict(type='ReLU6'),
        norm_eval: bool = False,
        with_cp: bool = False,
        drop_path_rate: float = 0.,
        num_connections: int = 4,
        pad_mode: str = 'masked',
        gate_reduction: int = 4,
        gate_norm_cfg: Optional[dict] = None,
        gate_act_cfg: dict = dict(type='ReLU6'),
        gate_lean: bool = False,
        init_cfg: Optional[dict] = [
            dict(type='Kaiming', layer=['Conv2d']),
            dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
        ]
    ) -> None:
        super().__init__(init_cfg)
        num_layers = len(self.arch_settings)
        out_indices = self._check_outputs(out_indices, frozen_stages)
        assert widen_factor > 0, \
            f'widen_factor must be > 0, got {widen_factor}'
        check_drop_path_rate(drop_path_rate)
        check_dense_args(num_connections, pad_mode)
        self.widen_factor = widen_factor
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.num_connections = num_connections
        self.pad_mode = pad_mode
        gate_cfg = gate_cfg_of(gate_reduction, gate_norm_cfg
                               or gate_norm_of(norm_cfg), gate_act_cfg,
                               gate_lean)

        in_channels = make_divisible(32 * widen_factor)
        self.conv1 = ConvModule(
            3,
            in_channels,
            3,
            stride=2,
            padding=1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)

        stages = self._block_specs(in_channels)
        ratios = [ratio for ratio, *_ in self.arch_settings]
        in_channels = stages[-1][-1][1]
        # entry k = block k's shortcut: its input, pooled, same width
        self.entry_channels = [b[0] for s in stages for b in s]
        rates = linear_drop_path_rates(drop_path_rate,
                                       len(self.entry_channels))

        self.layers = []
        self.feature_info: List[dict] = []
        entry, reduction = 0, 2
        for i, (specs, ratio) in enumerate(zip(stages, ratios)):
            blocks = []
            for cin, cout, stride in specs:
                inbounds = dense_inbound_indices(entry, num_connections)
                blocks.append(
                    InvertedResidual(
                        cin,
                        cout,
                        stride,
                        ratio,
                        conv_cfg=conv_cfg,
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg,
                        entry_index=entry,
                        inbound_indices=inbounds,
                        junction=build_junction(
                            gate_cfg, cout,
                            [self.entry_channels[k]
                             for k in inbounds], pad_mode),
                        with_cp=with_cp,
                        drop_path_rate=rates[entry]))
                entry += 1
                reduction *= stride
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, RoutedStage(*blocks))
            self.layers.append(layer_name)
            if i in out_indices:
                self.feature_info.append(
                    dict(
                        num_chs=specs[-1][1],
                        reduction=reduction,
                        module=layer_name))

        self.out_channel = int(1280 * widen_factor) if widen_factor > 1. \
            else 1280
        self.conv2 = ConvModule(
            in_channels,
            self.out_channel,
            1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.feat_dim = self.out_channel
        if num_layers in out_indices:
            self.feature_info.append(
                dict(
                    num_chs=self.out_channel,
                    reduction=reduction,
                    module='conv2'))
        self._freeze_stages()

    @classmethod
    def _check_outputs(cls, out_indices: Sequence[int],
                       frozen_stages: int) -> Tuple[int, ...]:
        """``out_indices`` (negative ones counted from the end) name the
        stages or the final conv, ``frozen_stages`` the stages."""
        num_layers = len(cls.arch_settings)
        out_indices = tuple(i + num_layers + 1 if i < 0 else i
                            for i in out_indices)
        assert out_indices and all(0 <= i <= num_layers
                                   for i in out_indices), \
            f'out_indices {out_indices} out of range(0, {num_layers + 1})'
        assert -1 <= frozen_stages <= num_layers, \
            f'frozen_stages must be in [-1, {num_layers}], got {frozen_stages}'
        return out_indices

    def _block_specs(self, in_channels: int) -> List[List[tuple]]:
        """``(in, out, stride)`` of every block, stage by stage, after the
        stem's ``in_channels``, with the widths scaled by
        ``widen_factor``."""
        stages = []
        for _, channels, num_blocks, stride in self.arch_settings:
            out = make_divisible(channels * self.widen_factor)
            stages.append([(in_channels if j == 0 else out, out,
                            stride if j == 0 else 1)
                           for j in range(num_blocks)])
            in_channels = out
        return stages

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.conv1(x)
        stages = [getattr(self, name) for name in self.layers]
        router = InboundRouter([b for s in stages for b in s],
                               descriptors='entry')
        outs = []
        for i, stage in enumerate(stages):
            x = stage(x, router)
            if i in self.out_indices:
                outs.append(x)
        if len(self.layers) in self.out_indices:
            outs.append(self.conv2(x))
        return tuple(outs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            freeze_modules([self.conv1])
        freeze_modules(
            getattr(self, f'layer{i}')
            for i in range(1, self.frozen_stages + 1))
