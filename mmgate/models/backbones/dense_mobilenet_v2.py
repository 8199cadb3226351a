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
from mmengine.model import BaseModule, Sequential
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmgate.registry import MODELS
from ..layers.inbound_align import PAD_MODES, InboundBank
from .dense_resnet import DenseBlockMixin
from .skip_resnet import _GatedResBlock

__all__ = ['make_divisible', 'DenseInvertedResidual', 'DenseMobileNetV2']


def make_divisible(value: float, divisor: int = 8,
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


class DenseInvertedResidual(DenseBlockMixin, _GatedResBlock):
    """Inverted residual block (1x1 expand, 3x3 depthwise, 1x1 linear)
    ending in a Gate Module over the global list, without activation.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels C.
        stride (int): Stride of the depthwise conv (1 or 2); a stride-2
            block's shortcut entry is its input average-pooled 2x2.
        expand_ratio (int): Hidden width = ``round(in_channels * ratio)``.
        index (int): Position inside the stage.
        conv_cfg, norm_cfg, act_cfg (dict): Of the residual branch.
        with_cp (bool): Gradient checkpointing.
        drop_path_rate (float): Stochastic depth of the residual branch.
        gate_cfg (dict): Gate Module options.
        **kwargs: :class:`DenseBlockMixin` options (``entry_offset``,
            ``entry_channels``, ``num_connections``, ``pad_mode``).
    """
    expansion = 1

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int,
                 expand_ratio: int,
                 index: int = 0,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6'),
                 with_cp: bool = False,
                 drop_path_rate: float = 0.,
                 gate_cfg: dict = dict(),
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        assert stride in (1, 2), f'stride must be 1 or 2, got {stride}'
        assert norm_cfg is not None, \
            'DenseInvertedResidual needs a norm: the gate reads its output'
        downsample = nn.AvgPool2d(2, stride=2, ceil_mode=True) \
            if stride == 2 else None
        super().__init__(
            in_channels, out_channels, index, downsample=downsample,
            with_cp=with_cp, drop_path_rate=drop_path_rate,
            gate_cfg=gate_cfg, init_cfg=init_cfg, **kwargs)
        self.relu = nn.Identity()  # linear bottleneck: no act after the gate
        self.stride = stride
        hidden = int(round(in_channels * expand_ratio))
        layers = []
        if expand_ratio != 1:
            layers.append(ConvModule(
                in_channels, hidden, 1, conv_cfg=conv_cfg,
                norm_cfg=norm_cfg, act_cfg=act_cfg))
        layers += [
            ConvModule(hidden, hidden, 3, stride=stride, padding=1,
                       groups=hidden, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                       act_cfg=act_cfg),
            ConvModule(hidden, out_channels, 1, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg, act_cfg=None)
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

    def residual(self, x: Tensor) -> Tensor:
        """The linear branch output ``y``."""
        return self.conv(x)


class DenseStage(Sequential):
    """Blocks of one MobileNetV2 stage, threading the :class:`InboundBank`."""

    def forward(self, x: Tensor, bank: InboundBank) -> Tensor:
        for block in self:
            x = bank.step(block, x)
        return x


@MODELS.register_module()
class DenseMobileNetV2(BaseModule):
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
        pad_mode (str): 'masked' or 'paper' (``inbound_align.py``).
        gate_reduction (int): Defaults to 4 (the paper's Dense-MobileNetV2).
        gate_norm_cfg (dict): Norm inside the gates. Defaults to BN.
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

    def __init__(self,
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
                 gate_norm_cfg: dict = dict(type='BN', requires_grad=True),
                 gate_act_cfg: dict = dict(type='ReLU6'),
                 gate_lean: bool = False,
                 init_cfg: Optional[dict] = [
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(type='Constant', val=1,
                          layer=['_BatchNorm', 'GroupNorm'])
                 ]) -> None:
        super().__init__(init_cfg)
        num_layers = len(self.arch_settings)
        out_indices = tuple(i + num_layers + 1 if i < 0 else i
                            for i in out_indices)
        assert out_indices and all(0 <= i <= num_layers
                                   for i in out_indices), \
            f'out_indices {out_indices} out of range(0, {num_layers + 1})'
        assert -1 <= frozen_stages <= num_layers, \
            f'frozen_stages must be in [-1, {num_layers}], got {frozen_stages}'
        assert widen_factor > 0, \
            f'widen_factor must be > 0, got {widen_factor}'
        assert 0. <= drop_path_rate < 1., \
            f'drop_path_rate must be in [0, 1), got {drop_path_rate}'
        if not isinstance(num_connections, int) or num_connections < 1:
            raise ValueError(
                f'num_connections (N) must be an int >= 1, got '
                f'{num_connections!r}')
        if pad_mode not in PAD_MODES:
            raise ValueError(
                f'pad_mode must be one of {PAD_MODES}, got {pad_mode!r}')
        self.widen_factor = widen_factor
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.num_connections = num_connections
        self.pad_mode = pad_mode
        gate_cfg = dict(reduction=gate_reduction, norm_cfg=gate_norm_cfg,
                        act_cfg=gate_act_cfg, lean=gate_lean)

        in_channels = make_divisible(32 * widen_factor)
        self.conv1 = ConvModule(3, in_channels, 3, stride=2, padding=1,
                                conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                act_cfg=act_cfg)

        # (in, out, stride, expand ratio) of every block, stage by stage
        stages = []
        for ratio, channels, num_blocks, stride in self.arch_settings:
            out = make_divisible(channels * widen_factor)
            stages.append([(in_channels if j == 0 else out, out,
                            stride if j == 0 else 1, ratio)
                           for j in range(num_blocks)])
            in_channels = out
        # entry k = block k's shortcut: its input, pooled, same width
        entry_channels = tuple(b[0] for s in stages for b in s)
        total = len(entry_channels)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]

        self.layers = []
        offset = 0
        for i, blocks in enumerate(stages):
            stage = DenseStage(*[
                DenseInvertedResidual(
                    cin, cout, stride, ratio, index=j, conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg, act_cfg=act_cfg, with_cp=with_cp,
                    drop_path_rate=rates[offset + j], gate_cfg=gate_cfg,
                    entry_offset=offset, entry_channels=entry_channels,
                    num_connections=num_connections, pad_mode=pad_mode)
                for j, (cin, cout, stride, ratio) in enumerate(blocks)
            ])
            offset += len(blocks)
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, stage)
            self.layers.append(layer_name)

        self.out_channel = int(1280 * widen_factor) if widen_factor > 1. \
            else 1280
        self.conv2 = ConvModule(in_channels, self.out_channel, 1,
                                conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                act_cfg=act_cfg)
        self.feat_dim = self.out_channel
        self._freeze_stages()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.conv1(x)
        bank = InboundBank(keep=self.num_connections)
        outs = []
        for i, layer_name in enumerate(self.layers):
            x = getattr(self, layer_name)(x, bank)
            if i in self.out_indices:
                outs.append(x)
        if len(self.layers) in self.out_indices:
            outs.append(self.conv2(x))
        return tuple(outs)

    def _freeze_stages(self) -> None:
        modules: List[nn.Module] = []
        if self.frozen_stages >= 0:
            modules.append(self.conv1)
        modules += [getattr(self, f'layer{i}')
                    for i in range(1, self.frozen_stages + 1)]
        for m in modules:
            m.eval()
            for param in m.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'DenseMobileNetV2':
        """Freeze stages again, and keep BNs (gate norms too) in eval mode
        when ``norm_eval`` is set."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
