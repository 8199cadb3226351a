"""The ResNet body every ResNet-family backbone of mmgate is built from.

:class:`RoutedResNet` is MMDetection's ``ResNet`` (same arguments, meanings
and key layout: ``conv1``, ``bn1`` / ``stem``, ``layer{s}.{j}.conv{1,2,3}``,
``layer{s}.{j}.bn{1,2,3}``, ``layer{s}.0.downsample``) whose blocks are
:class:`~mmgate.models.backbones.blocks.RoutedBlock` s. What differs between
the registered backbones is passed in as constructor arguments, the way timm
varies its models:

- ``gate_cfg``: the junction, a Gate Module (``layer{s}.{j}.gate.*``) or,
  when None, the plain residual add;
- ``pattern``: which earlier maps a gate reads, ``'skip'`` (SkipResNet,
  in-stage powers of two) or ``'dense'`` (DenseResNet, the last
  ``num_connections`` across stages; see ``layers/router.py``);
- ``groups`` / ``width_per_group``: ResNeXt's grouped 3x3 convs;
- ``pool_cfg`` and its placement: guided pooling layers in place of the
  max-pool and the strided convs (Gaussian-based pooling, Kobayashi, "Gaussian-
  Based Pooling for Convolutional Neural Networks", NeurIPS 2019);
- ``cifar_stem``: a 3x3 stride-1 stem without max-pool (32x32 inputs).

It is not registered: each registered subclass fixes these choices with
the arguments it passes and the class attributes it sets
(``arch_settings``, ``family_args``: the arguments above its users may set,
``resnext``, ``accepts_classifier_keys``).
"""
import re
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule, build_conv_layer, build_norm_layer
from torch import Tensor

from ..layers import (InboundRouter, build_prior_pool, dense_inbound_indices,
                      skip_inbound_indices)
from .base import (HOST_DEFAULTS, GatedBackbone, check_dense_args,
                   check_drop_path_rate, check_out_indices, freeze_modules,
                   host_library, linear_drop_path_rates)
from .blocks import BasicBlock, Bottleneck, RoutedStage, build_junction

__all__ = ['RoutedResNet', 'RESNET_ARCHS', 'RESNEXT_ARCHS', 'FAMILY_ARGS']

RESNET_ARCHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
RESNEXT_ARCHS = {depth: RESNET_ARCHS[depth] for depth in (50, 101, 152)}
PATTERNS = ('skip', 'dense')
PLUGIN_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')
POOL_PLACEMENTS = ('post', 'pre')
# RoutedResNet's arguments beyond MMDetection's ResNet: a registered backbone
# lets its users set only those it lists in ``family_args``.
FAMILY_ARGS = ('groups', 'width_per_group', 'base_width', 'gate_cfg',
               'pattern', 'num_connections', 'pad_mode', 'pool_cfg',
               'pool_placement', 'pool_stem', 'cifar_stem')


def _width_per_group(width_per_group: Optional[int],
                     base_width: Optional[int]) -> int:
    """ResNeXt's width per group under either name (MMPretrain's
    ``width_per_group``, MMDetection's ``base_width``). Defaults to 4."""
    if width_per_group is not None and base_width is not None \
            and width_per_group != base_width:
        raise ValueError(
            'width_per_group (MMPretrain) and base_width (MMDetection) '
            f'name the same thing; got {width_per_group} and {base_width}')
    return width_per_group or base_width or 4


def _check_stage_args(num_stages: int, strides: Sequence[int],
                      dilations: Sequence[int], out_indices: Sequence[int],
                      frozen_stages: int, dcn: Optional[dict],
                      stage_with_dcn: Sequence[bool]) -> Tuple[int, ...]:
    """The per-stage arguments fit ``num_stages``; returns ``out_indices``
    with negative ones counted from the end."""
    assert 1 <= num_stages <= 4, \
        f'num_stages must be in [1, 4], got {num_stages}'
    assert len(strides) == len(dilations) == num_stages, \
        'strides and dilations need one entry per stage: got ' \
        f'{len(strides)} and {len(dilations)} for {num_stages} stages'
    out_indices = check_out_indices(out_indices, num_stages)
    assert -1 <= frozen_stages <= num_stages, \
        f'frozen_stages must be in [-1, {num_stages}], got {frozen_stages}'
    assert dcn is None or len(stage_with_dcn) >= num_stages, \
        'stage_with_dcn needs one entry per stage'
    return out_indices


def _check_block_args(style: str, drop_path_rate: float, groups: int,
                      width_per_group: int) -> None:
    """``style``, stochastic depth and ResNeXt's widths."""
    assert style in ('pytorch', 'caffe'), \
        f"style must be 'pytorch' or 'caffe', got {style!r}"
    check_drop_path_rate(drop_path_rate)
    assert groups >= 1 and width_per_group >= 1, \
        f'groups and width_per_group must be >= 1, got {groups}, ' \
        f'{width_per_group}'


def _check_pattern_args(pattern: str, num_connections: int,
                        pad_mode: str) -> None:
    """Which earlier maps the gates read, and the dense pattern's options."""
    if pattern not in PATTERNS:
        raise ValueError(f'pattern must be one of {PATTERNS}, got '
                         f'{pattern!r}')
    check_dense_args(num_connections, pad_mode)


def _check_pool_args(pool_cfg: Optional[dict], pool_placement: str,
                     pool_stem: bool, cifar_stem: bool,
                     deep_stem: bool) -> None:
    """The guided pools and the stem they may replace."""
    if pool_cfg is not None and (not isinstance(pool_cfg, dict)
                                 or 'type' not in pool_cfg):
        raise TypeError('pool_cfg must be None or a dict with a "type", '
                        f'got {pool_cfg!r}')
    if pool_placement not in POOL_PLACEMENTS:
        raise ValueError(f'pool_placement must be one of '
                         f'{POOL_PLACEMENTS}, got {pool_placement!r}')
    for name, flag in (('pool_stem', pool_stem), ('cifar_stem', cifar_stem)):
        if not isinstance(flag, bool):
            raise TypeError(f'{name} must be a bool, got {flag!r}')
    if cifar_stem and deep_stem:
        raise ValueError('cifar_stem and deep_stem exclude each other')


def _check_plugins(plugins: Optional[List[dict]], num_stages: int) -> None:
    """MMDetection's block plugins: ``cfg``, a ``position`` and per-stage
    flags (none: every stage)."""
    if plugins is None:
        return
    if not isinstance(plugins, (list, tuple)) or any(
            p.get('position') not in PLUGIN_POSITIONS or 'cfg' not in p
            or len(p.get('stages', ())) not in (0, num_stages)
            for p in plugins):
        raise ValueError(
            'plugins must be a list of dict(cfg=..., position=one of '
            f'{PLUGIN_POSITIONS}, stages=<{num_stages} bools>), got '
            f'{plugins!r}')


def _check_multi_grid(multi_grid: Optional[Sequence[int]],
                      last_stage_blocks: int) -> None:
    """MMSegmentation's ``multi_grid``: one dilation per last-stage block."""
    if multi_grid is not None and len(multi_grid) != last_stage_blocks:
        raise ValueError(
            f'multi_grid needs one dilation per block of the last stage '
            f'({last_stage_blocks}), got {tuple(multi_grid)}')


class RoutedResNet(GatedBackbone):
    """ResNet whose blocks end in a given junction (see the module doc).

    Args:
        depth (int): A key of ``arch_settings``.
        **MMDetection's ResNet arguments**: ``in_channels`` ...
            ``drop_path_rate``, documented with :class:`SkipResNet`.
        plugins (list[dict], optional): MMDetection's block plugins
            (``cfg``, ``position`` after_conv1/2/3, ``stages``), bottlenecks
            only.
        multi_grid (Sequence[int], optional): Dilations of the last stage's
            blocks (MMSegmentation).
        expansion (int, optional): MMPretrain's; only the blocks' own
            expansion (4 or 1) is accepted.
        groups (int, optional): Cardinality of the bottleneck 3x3 convs
            (ResNeXt). Defaults to 1, or the host library's for ResNeXt
            classes (``base.HOST_DEFAULTS``).
        width_per_group (int, optional): Width per group (ResNeXt;
            ``base_width`` is MMDetection's name). Defaults to 4.
        gate_cfg (dict, optional): ``reduction``, ``norm_cfg``, ``act_cfg``,
            ``lean`` of every block's Gate Module; None builds plain residual
            adds.
        pattern (str): ``'skip'`` or ``'dense'``. Defaults to 'skip'.
        num_connections (int): N of the dense pattern. Defaults to 4.
        pad_mode (str): ``'masked'`` or ``'paper'``: the dense gates'
            softmax over zero-padded channels (``build_junction``).
        pool_cfg (dict, optional): A guided pool (``type`` and options)
            replacing the max-pool and the strided convs. Defaults to None.
        pool_placement (str): ``'post'``: stride-1 stem conv + 2x2 pool, and
            the pool after the first block of each strided stage; ``'pre'``:
            strided stem, pool before each strided stage.
        pool_stem (bool): Pool in the stem as well. Defaults to True.
        cifar_stem (bool): 3x3 stride-1 stem conv, no stem pooling.
        init_cfg (dict | list[dict], optional): Initialisation config;
            ``type='Pretrained'`` loads strictly (timm files too).
    """

    arch_settings = RESNET_ARCHS
    # the FAMILY_ARGS a registered subclass's users may set
    family_args: Tuple[str, ...] = ()
    # ResNeXt variants: ``groups`` defaults to the host library's
    resnext = False
    # unexpected ``fc.*`` keys (a torchvision classifier file) are allowed
    accepts_classifier_keys = False

    @classmethod
    def check_family_args(cls, kwargs: dict) -> None:
        """Refuse the family arguments ``cls`` does not offer (those not in
        its ``family_args``), as Python refuses an unknown keyword."""
        for name in kwargs:
            if name in FAMILY_ARGS and name not in cls.family_args:
                raise TypeError(f'{cls.__name__}.__init__() got an '
                                f'unexpected keyword argument {name!r}')

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 stem_channels: Optional[int] = None,
                 base_channels: int = 64,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Optional[Sequence[int]] = None,
                 style: str = 'pytorch',
                 deep_stem: bool = False,
                 avg_down: bool = False,
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: Optional[bool] = None,
                 dcn: Optional[dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 plugins: Optional[List[dict]] = None,
                 multi_grid: Optional[Sequence[int]] = None,
                 expansion: Optional[int] = None,
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 contract_dilation: bool = False,
                 drop_path_rate: float = 0.,
                 groups: Optional[int] = None,
                 width_per_group: Optional[int] = None,
                 base_width: Optional[int] = None,
                 gate_cfg: Optional[dict] = None,
                 pattern: str = 'skip',
                 num_connections: int = 4,
                 pad_mode: str = 'masked',
                 pool_cfg: Optional[dict] = None,
                 pool_placement: str = 'post',
                 pool_stem: bool = True,
                 cifar_stem: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.host = host_library()
        norm_eval, out_indices, stem_channels, groups = self._host_defaults(
            norm_eval, out_indices, stem_channels, base_channels, groups)
        width_per_group = _width_per_group(width_per_group, base_width)
        self.block, stage_blocks = self._check_depth(depth, expansion)
        out_indices = _check_stage_args(num_stages, strides, dilations,
                                        out_indices, frozen_stages, dcn,
                                        stage_with_dcn)
        _check_block_args(style, drop_path_rate, groups, width_per_group)
        _check_pattern_args(pattern, num_connections, pad_mode)
        _check_pool_args(pool_cfg, pool_placement, pool_stem, cifar_stem,
                         deep_stem)
        _check_plugins(plugins, num_stages)
        _check_multi_grid(multi_grid, stage_blocks[num_stages - 1])

        self.depth = depth
        self.stage_blocks = tuple(stage_blocks[:num_stages])
        self.stem_channels = stem_channels or base_channels
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.strides = strides
        self.dilations = dilations
        self.out_indices = out_indices
        self.style = style
        self.deep_stem = deep_stem
        self.avg_down = avg_down
        self.cifar_stem = cifar_stem
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.dcn = dcn
        self.stage_with_dcn = stage_with_dcn
        self.plugins = plugins
        self.multi_grid = multi_grid
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.contract_dilation = contract_dilation
        self.groups = groups
        self.width_per_group = width_per_group
        self.gate_cfg = gate_cfg
        self.pattern = pattern
        self.num_connections = num_connections
        self.pad_mode = pad_mode
        self.pool_cfg = pool_cfg
        self.pool_placement = pool_placement
        if init_cfg is None:
            self.init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(
                    type='Constant',
                    val=1,
                    layer=['_BatchNorm', 'GroupNorm', 'LayerNorm'])
            ]

        stem_pool = pool_cfg if (pool_stem and not cifar_stem) else None
        self._make_stem_layer(in_channels, self.stem_channels, stem_pool,
                              pool_placement)
        # MMDetection / MMSegmentation keep avg_down's AvgPool in a stride-1
        # projection too (``layer1.0.downsample.{0,1,2}``); MMPretrain not.
        self.avg_down_at_stride_1 = avg_down and self.host != 'mmpretrain'
        widths = [self._stage_width(i) for i in range(num_stages)]
        # widths of the entries in network order (entry k = block k's
        # projected input, which has the block's output width)
        self.entry_channels = [
            w for w, n in zip(widths, self.stage_blocks) for _ in range(n)
        ]
        rates = linear_drop_path_rates(drop_path_rate,
                                       len(self.entry_channels))
        self.res_layers: List[str] = []
        self.feature_info: List[dict] = []
        reduction = 1 if cifar_stem else 4
        inplanes, first = self.stem_channels, 0
        for i, num_blocks in enumerate(self.stage_blocks):
            layer_name = f'layer{i + 1}'
            self.add_module(
                layer_name,
                self._make_res_layer(i, inplanes, first,
                                     rates[first:first + num_blocks]))
            self.res_layers.append(layer_name)
            reduction *= strides[i]
            if i in out_indices:
                self.feature_info.append(
                    dict(
                        num_chs=widths[i],
                        reduction=reduction,
                        module=layer_name))
            inplanes, first = widths[i], first + num_blocks

        self.feat_dim = inplanes
        self._freeze_stages()

    # ---- the constructor's checks --------------------------------------

    def _host_defaults(self, norm_eval: Optional[bool],
                       out_indices: Optional[Sequence[int]],
                       stem_channels: Optional[int], base_channels: int,
                       groups: Optional[int]) -> tuple:
        """``norm_eval``, ``out_indices``, ``stem_channels`` and ``groups``
        with the host library's values for those left at None
        (``base.HOST_DEFAULTS``; its ``groups`` for ``resnext`` classes)."""
        defaults = HOST_DEFAULTS[self.host]
        if norm_eval is None:
            norm_eval = defaults['norm_eval']
        if out_indices is None:
            out_indices = defaults['out_indices']
        if stem_channels is None:
            stem_channels = defaults['stem_channels'] or base_channels
        if groups is None:
            groups = defaults['resnext_groups'] if self.resnext else 1
        return norm_eval, out_indices, stem_channels, groups

    def _check_depth(self, depth: int, expansion: Optional[int]) -> tuple:
        """The block class and the blocks per stage of ``depth``; MMPretrain's
        ``expansion`` may only restate the blocks' own."""
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth} for {type(self).__name__}, '
                           f'choose from {sorted(self.arch_settings)}')
        block, stage_blocks = self.arch_settings[depth]
        if expansion is not None and expansion != block.expansion:
            raise ValueError(
                f'expansion={expansion} is not supported: the blocks of '
                f'depth {depth} expand by {block.expansion}')
        return block, stage_blocks

    # ---- building ------------------------------------------------------

    def _stage_width(self, i: int) -> int:
        """Output channels of stage ``i`` (and of each of its blocks)."""
        return self.base_channels * 2**i * self.block.expansion

    def _block_args(self) -> dict:
        """The arguments every block gets (bottlenecks: ResNeXt's widths)."""
        zero_init = dict(
            type='Constant', val=0, override=dict(name='last_norm'))
        args = dict(
            style=self.style,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            with_cp=self.with_cp,
            init_cfg=zero_init if self.zero_init_residual else None)
        if issubclass(self.block, Bottleneck):
            args.update(
                groups=self.groups,
                base_width=self.width_per_group,
                base_channels=self.base_channels)
        return args

    def _block_dilations(self, i: int) -> List[int]:
        """Dilation of each block of stage ``i``: ``multi_grid`` in the last
        stage; with ``contract_dilation`` the first block's is halved."""
        if self.multi_grid and i == self.num_stages - 1:
            return list(self.multi_grid)
        dilation = self.dilations[i]
        first = dilation // 2 if self.contract_dilation and dilation > 1 \
            else dilation
        return [first] + [dilation] * (self.stage_blocks[i] - 1)

    def _inbounds(self, entry: int, j: int) -> tuple:
        """Entry index, inbound indices and inbound widths of block ``j`` of
        its stage, the network's block ``entry``: one inbound (a plain
        residual add), the Skip pattern (stage-local entries 1, 2, 4 ...
        back) or the dense one (the last ``num_connections`` entries)."""
        width = self.entry_channels[entry]
        if self.gate_cfg is None:
            return j, [j], [width]
        if self.pattern == 'skip':
            inbounds = skip_inbound_indices(j)
            return j, inbounds, [width] * len(inbounds)
        inbounds = dense_inbound_indices(entry, self.num_connections)
        return entry, inbounds, [self.entry_channels[k] for k in inbounds]

    def _make_res_layer(self, i: int, inplanes: int, first: int,
                        rates: Sequence[float]) -> RoutedStage:
        """Stage ``i`` (``layer{i + 1}``) from ``inplanes`` channels; its
        blocks are the network's blocks ``first``, ``first + 1`` ...; the
        first one projects (and, with ``pool_cfg``, pools) the input."""
        width, stride = self._stage_width(i), self.strides[i]
        pooled = self.pool_cfg is not None and stride > 1
        downsample = self._make_downsample(inplanes, width,
                                           1 if pooled else stride,
                                           self.avg_down)
        pool = build_prior_pool(
            self.pool_cfg,
            inplanes if self.pool_placement == 'pre' else width,
            stride,
            stride,
            ceil_mode=True) if pooled else None
        plugins = [
            dict(p['cfg'], position=p['position']) for p in self.plugins or ()
            if not p.get('stages') or p['stages'][i]
        ]
        dcn = self.dcn if (self.dcn is not None
                           and self.stage_with_dcn[i]) else None
        block_args = self._block_args()
        blocks = []
        for j, dilation in enumerate(self._block_dilations(i)):
            entry, inbounds, reads = self._inbounds(first + j, j)
            blocks.append(
                self.block(
                    inplanes=inplanes if j == 0 else width,
                    planes=self.base_channels * 2**i,
                    stride=stride if (j == 0 and not pooled) else 1,
                    dilation=dilation,
                    dcn=dcn,
                    entry_index=entry,
                    inbound_indices=inbounds,
                    junction=build_junction(self.gate_cfg, width, reads,
                                            self.pad_mode),
                    downsample=downsample if j == 0 else None,
                    drop_path_rate=rates[j],
                    pool=pool if j == 0 else None,
                    pool_placement=self.pool_placement,
                    plugins=plugins or None,
                    **block_args))
        return RoutedStage(*blocks)

    def _make_downsample(self, inplanes: int, out_channels: int, stride: int,
                         avg_down: bool) -> Optional[nn.Module]:
        """The stage's shortcut projection (None when shapes agree)."""
        if stride == 1 and inplanes == out_channels:
            return None
        layers = []
        conv_stride = stride
        if avg_down and (stride != 1 or self.avg_down_at_stride_1):
            conv_stride = 1
            layers.append(
                nn.AvgPool2d(
                    kernel_size=stride,
                    stride=stride,
                    ceil_mode=True,
                    count_include_pad=False))
        layers += [
            build_conv_layer(
                self.conv_cfg,
                inplanes,
                out_channels,
                1,
                stride=conv_stride,
                bias=False),
            build_norm_layer(self.norm_cfg, out_channels)[1]
        ]
        return nn.Sequential(*layers)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def _make_stem_layer(self, in_channels: int, stem_channels: int,
                         pool_cfg: Optional[dict], placement: str) -> None:
        """``conv1`` / ``bn1`` (or the deep ``stem``) and ``maxpool``, which
        holds the stem's guided pools when ``pool_cfg`` is given."""
        if self.deep_stem and self.host == 'mmpretrain':
            # MMPretrain's ResNetV1c/V1d layout: stem.{0,1,2}.{conv,bn}
            mid = stem_channels // 2
            self.stem = nn.Sequential(*[
                ConvModule(
                    cin,
                    cout,
                    3,
                    stride=stride,
                    padding=1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    inplace=True)
                for cin, cout, stride in ((in_channels, mid, 2), (mid, mid, 1),
                                          (mid, stem_channels, 1))
            ])
            first_conv = self.stem[0].conv
        elif self.deep_stem:
            mid = stem_channels // 2
            self.stem = nn.Sequential(
                build_conv_layer(
                    self.conv_cfg,
                    in_channels,
                    mid,
                    3,
                    stride=2,
                    padding=1,
                    bias=False),
                build_norm_layer(self.norm_cfg, mid)[1], nn.ReLU(inplace=True),
                build_conv_layer(
                    self.conv_cfg, mid, mid, 3, padding=1, bias=False),
                build_norm_layer(self.norm_cfg, mid)[1], nn.ReLU(inplace=True),
                build_conv_layer(
                    self.conv_cfg,
                    mid,
                    stem_channels,
                    3,
                    padding=1,
                    bias=False),
                build_norm_layer(self.norm_cfg, stem_channels)[1],
                nn.ReLU(inplace=True))
            first_conv = self.stem[0]
        else:
            kernel, stride = (3, 1) if self.cifar_stem else (7, 2)
            self.conv1 = build_conv_layer(
                self.conv_cfg,
                in_channels,
                stem_channels,
                kernel,
                stride=stride,
                padding=kernel // 2,
                bias=False)
            self.norm1_name, norm1 = build_norm_layer(
                self.norm_cfg, stem_channels, postfix=1)
            self.add_module(self.norm1_name, norm1)
            self.relu = nn.ReLU(inplace=True)
            first_conv = self.conv1
        if self.cifar_stem:
            self.maxpool = nn.Identity()
        elif pool_cfg is None:
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            pool = build_prior_pool(pool_cfg, stem_channels, 3, 2, 1)
            if placement == 'post':
                first_conv.stride = (1, 1)
                pool = nn.Sequential(
                    build_prior_pool(
                        pool_cfg, stem_channels, 2, 2, ceil_mode=True), pool)
            self.maxpool = pool

    def _forward_stem(self, x: Tensor) -> Tensor:
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        return self.maxpool(x)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self._forward_stem(x)
        stages = [getattr(self, name) for name in self.res_layers]
        # Dense blocks read across stages: one router for the network;
        # otherwise every stage routes its own entries.
        router = InboundRouter([b for s in stages for b in s],
                               descriptors='entry') \
            if self.pattern == 'dense' else None
        outs = []
        for i, stage in enumerate(stages):
            x = stage(x, router)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            freeze_modules(
                [self.stem] if self.deep_stem else [self.conv1, self.norm1])
            freeze_modules([self.maxpool])
        freeze_modules(
            getattr(self, f'layer{i}')
            for i in range(1, self.frozen_stages + 1))

    def optional_pretrained_key(self, key: str, missing: bool) -> bool:
        """Keys a checkpoint may lack or have in excess: stages this
        backbone does not build (``num_stages < 4``), the guided pools (a
        plain network's weights lack them) and, where the class allows it,
        a torchvision classifier's ``fc.*``.

        ``init_cfg=dict(type='Pretrained', checkpoint=..., new_gates=True)``
        takes the trunk from a plain ResNet checkpoint (MMDetection's or
        torchvision's keys): the gates may be missing and keep their
        initialisation (listed in the log), and ``fc.*`` is ignored.
        """
        new_gates = isinstance(self.init_cfg, dict) and \
            self.init_cfg.get('new_gates', False)
        if missing:
            if new_gates and '.gate.' in key:
                return True
            return key.startswith('maxpool.') or '.0.pool.' in key
        if key.startswith('fc.'):
            return self.accepts_classifier_keys or new_gates
        stage = re.match(r'^layer(\d+)\.', key)
        return stage is not None and self.num_stages < int(stage[1]) <= 4

    def get_layer_depth(self, param_name: str, prefix: str = '') -> tuple:
        """Layer id of a parameter for layer-wise lr decay.

        The stem (its pools included) is layer 0, the j-th block overall is
        layer j + 1, anything else (necks, heads) is the last layer.

        Args:
            param_name (str): Parameter name.
            prefix (str): Prefix of the backbone's parameters.

        Returns:
            tuple[int, int]: Layer depth and the number of layers.
        """
        num_layers = sum(self.stage_blocks) + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        stem = ('conv1', 'bn1', 'norm1', 'gn1', 'stem', 'maxpool')
        if name.startswith(stem):
            return 0, num_layers
        if name.startswith('layer'):
            stage_id = int(name.split('.')[0][5:]) - 1
            block_id = int(name.split('.')[1])
            return sum(self.stage_blocks[:stage_id]) + block_id + 1, num_layers
        return num_layers - 1, num_layers
