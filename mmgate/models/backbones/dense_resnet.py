"""DenseResNet (Takeda, MIRU 2020): ResNet whose blocks mix the last N
outputs of the whole network through a Gate Module.

Block ``i`` computes (paper eq. 3)::

    x_i = act(v_i * f_i(x_{i-1}) + sum_{k=i-N+1..i} w_ik * e_k)
    with sum_k w_ik = 1

where ``e_k`` is entry k of one global list (the stem output, then what every
block used as its shortcut), so connections cross stage boundaries; older
entries are average-pooled and zero-padded / truncated to the block's shape
(``layers/inbound_align.py``, which also documents ``pad_mode``). The
junction is the Skip family's :class:`GateModule`; the residual branches are
SkipResNet's :class:`GatedBasicBlock` / :class:`GatedBottleneck`, only the
connection pattern differs. The Skip pattern is the in-stage, power-of-two
special case of the same junction.

Reads top to bottom: the dense blocks, the stage, the backbone, its CIFAR
form (ResNet-110 layout). Weight layout: MMDetection's ResNet keys plus
``layer{s}.{j}.gate.{conv1,norm,conv2}``.
"""
from typing import List, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from torch import Tensor

from mmgate.registry import MODELS
from ..layers import GateModule
from ..layers.inbound_align import (PAD_MODES, InboundAlign, InboundBank,
                                    dense_inbound_indices)
from .skip_resnet import (GatedBasicBlock, GatedBottleneck, SkipResLayer,
                          SkipResNet, _gate_kwargs)

__all__ = ['DenseBlockMixin', 'DenseBasicBlock', 'DenseBottleneck',
           'DenseResLayer', 'DenseResNet', 'DenseResNetCIFAR']


class DenseBlockMixin:
    """Makes a gated block (a ``_GatedResBlock``) read the global list.

    The wrapped block keeps its residual branch, projection, drop-path,
    checkpointing and final activation; this mixin swaps the Skip inbound
    pattern for the dense one and aligns the inbounds before the gate.

    Args (keyword-only, the rest goes to the wrapped block):
        entry_offset (int): Global index of the stage's first block; the
            block is entry ``entry_offset + index`` of the list.
        entry_channels (Sequence[int]): Channels of every entry of the
            network (entry k = block k's projected input).
        num_connections (int): N, the number of entries mixed (the last
            ``min(N, entry_index + 1)``).
        pad_mode (str): ``'masked'`` or ``'paper'`` (see ``inbound_align``).
    """

    def __init__(self,
                 *args,
                 entry_offset: int = 0,
                 entry_channels: Sequence[int] = (),
                 num_connections: int = 4,
                 pad_mode: str = 'masked',
                 gate_cfg: dict = dict(),
                 **kwargs) -> None:
        super().__init__(*args, gate_cfg=gate_cfg, **kwargs)
        self.entry_index = entry_offset + self.index
        if len(entry_channels) <= self.entry_index:
            raise ValueError(
                f'entry_channels lists {len(entry_channels)} entries, block '
                f'{self.entry_index} needs its own and the ones before it')
        channels = self.gate.channels
        self.inbound_indices = dense_inbound_indices(self.entry_index,
                                                     num_connections)
        self.align = InboundAlign(
            [entry_channels[i] for i in self.inbound_indices], channels,
            pad_mode)
        # replaces the Skip-pattern gate the wrapped block built
        self.gate = GateModule(
            channels, len(self.inbound_indices),
            softmax_mask=self.align.softmax_mask, **_gate_kwargs(gate_cfg))

    def forward(self, x: Tensor, inbounds: Sequence[Tensor],
                inbound_descriptors: Sequence[Tensor]) -> Tensor:
        """Gated block output.

        Args:
            x (Tensor): Block input (the raw previous output).
            inbounds (Sequence[Tensor]): Entries ``inbound_indices``, at the
                block's output size (channels as stored).
            inbound_descriptors (Sequence[Tensor]): Their descriptors.
        """
        inbounds, inbound_descriptors = self.align(inbounds,
                                                   inbound_descriptors)
        return super().forward(x, inbounds, inbound_descriptors)


class DenseBasicBlock(DenseBlockMixin, GatedBasicBlock):
    """:class:`GatedBasicBlock` reading the global list
    (:class:`DenseBlockMixin`)."""


class DenseBottleneck(DenseBlockMixin, GatedBottleneck):
    """:class:`GatedBottleneck` reading the global list
    (:class:`DenseBlockMixin`)."""


class DenseResLayer(SkipResLayer):
    """One stage of dense blocks. Built like :class:`SkipResLayer` (the
    projection lives on block 0); the forward threads the network's
    :class:`InboundBank` through the blocks."""

    def forward(self, x: Tensor, bank: InboundBank) -> Tensor:
        for block in self:
            x = bank.step(block, x)
        return x


@MODELS.register_module()
class DenseResNet(SkipResNet):
    """DenseResNet backbone, MMDetection ``ResNet`` interface.

    Every block ends with ``relu(sigmoid(g0) * y + sum_k w_k * e_k)`` over
    the last ``N`` entries of the global list (stem output first), across
    stage boundaries. DenseResNet-34 with N = 2 / 4 / 6 / 8 has 22.75M /
    23.38M / 24.00M / 24.60M parameters with a 1000-class head.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        num_connections (int): N, the number of earlier entries each block
            mixes (any N >= 1; the paper's ImageNet best is 6). Defaults to 4
            (the 2020 code's default).
        pad_mode (str): ``'masked'`` keeps zero-padded channels of narrower
            (older) inbounds out of the softmax; ``'paper'`` is the 2020
            code's plain softmax over all inbounds (see
            ``mmgate/models/layers/inbound_align.py``). Same parameters.
            Defaults to 'masked'.
        **kwargs: Every :class:`SkipResNet` argument (``in_channels``,
            ``stem_channels``, ``base_channels``, ``num_stages``, ``strides``,
            ``dilations``, ``out_indices``, ``style``, ``deep_stem``,
            ``avg_down``, ``frozen_stages``, ``conv_cfg``, ``norm_cfg``,
            ``norm_eval`` (gate norms included), ``dcn``, ``stage_with_dcn``,
            ``with_cp``, ``zero_init_residual``, ``contract_dilation``,
            ``drop_path_rate``, ``gate_reduction``, ``gate_norm_cfg``,
            ``gate_act_cfg``, ``gate_lean``, ``pretrained``, ``init_cfg``).

    Example:
        >>> import torch
        >>> from mmgate.models import DenseResNet
        >>> model = DenseResNet(depth=18, base_channels=8, num_connections=4)
        >>> model = model.eval()
        >>> outs = model(torch.rand(1, 3, 32, 32))
        >>> for out in outs:
        ...     print(tuple(out.shape))
        (1, 8, 8, 8)
        (1, 16, 4, 4)
        (1, 32, 2, 2)
        (1, 64, 1, 1)
    """

    arch_settings = {
        18: (DenseBasicBlock, (2, 2, 2, 2)),
        34: (DenseBasicBlock, (3, 4, 6, 3)),
        50: (DenseBottleneck, (3, 4, 6, 3)),
        101: (DenseBottleneck, (3, 4, 23, 3)),
        152: (DenseBottleneck, (3, 8, 36, 3)),
    }
    # no published weights in the authors' timm layout
    timm_layout = None

    def __init__(self,
                 depth: int,
                 num_connections: int = 4,
                 pad_mode: str = 'masked',
                 **kwargs) -> None:
        if not isinstance(num_connections, int) or num_connections < 1:
            raise ValueError(
                f'num_connections (N) must be an int >= 1, got '
                f'{num_connections!r}')
        if pad_mode not in PAD_MODES:
            raise ValueError(
                f'pad_mode must be one of {PAD_MODES}, got {pad_mode!r}')
        # Plain attributes, set before SkipResNet.__init__ because its
        # make_res_layer() calls (below) read them.
        self.num_connections = num_connections
        self.pad_mode = pad_mode
        super().__init__(depth=depth, **kwargs)

    @property
    def entry_channels(self) -> List[int]:
        """Channels of every entry of the global list (entry k = block k's
        projected input, which has the block's output width)."""
        return [self.base_channels * 2**s * self.block.expansion
                for s, n in enumerate(self.stage_blocks) for _ in range(n)]

    def make_res_layer(self, **kwargs) -> DenseResLayer:
        """Build stage ``len(self.res_layers)`` (called by SkipResNet)."""
        stage = len(self.res_layers)
        if kwargs.get('init_cfg') is not None:  # zero_init_residual
            last = 'norm3' if issubclass(kwargs['block'], GatedBottleneck) \
                else 'norm2'
            kwargs['init_cfg'] = dict(
                type='Constant', val=0, override=dict(name=last))
        return DenseResLayer(
            entry_offset=sum(self.stage_blocks[:stage]),
            entry_channels=tuple(self.entry_channels),
            num_connections=self.num_connections,
            pad_mode=self.pad_mode,
            **kwargs)

    def _forward_stem(self, x: Tensor) -> Tensor:
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        return self.maxpool(x)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self._forward_stem(x)
        bank = InboundBank(keep=self.num_connections)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x, bank)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


@MODELS.register_module()
class DenseResNetCIFAR(DenseResNet):
    """DenseResNet in the CIFAR layout of the paper's CIFAR-100 table.

    ResNet-(6n+2) of He et al.: a 3x3 stem conv (stride 1, no max pool) and
    three stages of n basic blocks with 16 / 32 / 64 channels (strides 1, 2,
    2; 1x1 conv + BN projections). Dense-ResNet-110 with N = 4 and gate
    reduction 2 (the authors' CIFAR setting) has 2.23M parameters with a
    100-class head (ResNet-110: 1.74M).

    Args:
        depth (int): 20, 32, 44, 56 or 110.
        base_channels (int): Width of the first stage. Defaults to 16.
        out_indices (Sequence[int]): Defaults to (2, ), the last stage.
        **kwargs: :class:`DenseResNet` arguments (``num_connections``,
            ``pad_mode``, ``gate_reduction`` ...).

    Example:
        >>> import torch
        >>> from mmgate.models import DenseResNetCIFAR
        >>> model = DenseResNetCIFAR(depth=20, gate_reduction=2).eval()
        >>> tuple(model(torch.rand(1, 3, 32, 32))[0].shape)
        (1, 64, 8, 8)
    """

    arch_settings = {
        depth: (DenseBasicBlock, ((depth - 2) // 6, ) * 3)
        for depth in (20, 32, 44, 56, 110)
    }

    def __init__(self,
                 depth: int,
                 base_channels: int = 16,
                 num_stages: int = 3,
                 strides: Sequence[int] = (1, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1),
                 out_indices: Sequence[int] = (2, ),
                 deep_stem: bool = False,
                 **kwargs) -> None:
        assert not deep_stem, 'DenseResNetCIFAR has a single 3x3 stem conv'
        assert 1 <= num_stages <= 3, \
            f'the CIFAR layout has 3 stages, got num_stages={num_stages}'
        super().__init__(
            depth=depth, base_channels=base_channels, num_stages=num_stages,
            strides=strides, dilations=dilations, out_indices=out_indices,
            deep_stem=False, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        self.conv1 = build_conv_layer(
            self.conv_cfg, in_channels, stem_channels, 3, stride=1,
            padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(
            self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()

    @property
    def feature_info(self) -> List[dict]:
        info, reduction = [], 1
        for i in range(self.num_stages):
            reduction *= self.strides[i]
            if i in self.out_indices:
                info.append(dict(
                    num_chs=self.base_channels * 2**i * self.block.expansion,
                    reduction=reduction, module=f'layer{i + 1}'))
        return info
