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

It is not registered: users build ``SkipResNet``, ``DenseResNet``,
``PriorPoolResNet`` ... which fix these choices.
"""
import re
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule, build_conv_layer, build_norm_layer
from torch import Tensor

from ..layers import (InboundRouter, build_prior_pool, dense_inbound_indices,
                      skip_inbound_indices)
from .base import HOST_DEFAULTS, GatedBackbone, freeze_modules, host_library
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
               'pattern',
               'num_connections', 'pad_mode', 'pool_cfg', 'pool_placement',
               'pool_stem', 'cifar_stem')


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
        """Refuse the family arguments ``cls`` does not offer, as Python
        refuses an unknown keyword (``SkipResNet(pattern='dense')``)."""
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
        host = host_library()
        defaults = HOST_DEFAULTS[host]
        if norm_eval is None:
            norm_eval = defaults['norm_eval']
        if out_indices is None:
            out_indices = defaults['out_indices']
        if stem_channels is None:
            stem_channels = defaults['stem_channels'] or base_channels
        if groups is None:
            groups = defaults['resnext_groups'] if self.resnext else 1
        if width_per_group is not None and base_width is not None \
                and width_per_group != base_width:
            raise ValueError(
                'width_per_group (MMPretrain) and base_width (MMDetection) '
                f'name the same thing; got {width_per_group} and {base_width}')
        width_per_group = width_per_group or base_width or 4
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth} for {type(self).__name__}, '
                           f'choose from {sorted(self.arch_settings)}')
        block_expansion = self.arch_settings[depth][0].expansion
        if expansion is not None and expansion != block_expansion:
            raise ValueError(
                f'expansion={expansion} is not supported: the blocks of '
                f'depth {depth} expand by {block_expansion}')
        assert 1 <= num_stages <= 4, \
            f'num_stages must be in [1, 4], got {num_stages}'
        assert len(strides) == len(dilations) == num_stages, \
            'strides and dilations need one entry per stage: got ' \
            f'{len(strides)} and {len(dilations)} for {num_stages} stages'
        out_indices = tuple(i + num_stages if i < 0 else i
                            for i in out_indices)
        assert out_indices and all(0 <= i < num_stages for i in out_indices), \
            f'out_indices {out_indices} out of range for {num_stages} stages'
        assert style in ('pytorch', 'caffe'), \
            f"style must be 'pytorch' or 'caffe', got {style!r}"
        assert -1 <= frozen_stages <= num_stages, \
            f'frozen_stages must be in [-1, {num_stages}], got {frozen_stages}'
        assert dcn is None or len(stage_with_dcn) >= num_stages, \
            'stage_with_dcn needs one entry per stage'
        assert 0. <= drop_path_rate < 1., \
            f'drop_path_rate must be in [0, 1), got {drop_path_rate}'
        assert groups >= 1 and width_per_group >= 1, \
            f'groups and width_per_group must be >= 1, got {groups}, ' \
            f'{width_per_group}'
        if pattern not in PATTERNS:
            raise ValueError(f'pattern must be one of {PATTERNS}, got '
                             f'{pattern!r}')
        if not isinstance(num_connections, int) or num_connections < 1:
            raise ValueError('num_connections (N) must be an int >= 1, got '
                             f'{num_connections!r}')
        if pad_mode not in ('masked', 'paper'):
            raise ValueError(
                f"pad_mode must be 'masked' or 'paper', got {pad_mode!r}")
        if pool_cfg is not None and (not isinstance(pool_cfg, dict)
                                     or 'type' not in pool_cfg):
            raise TypeError('pool_cfg must be None or a dict with a "type", '
                            f'got {pool_cfg!r}')
        if pool_placement not in POOL_PLACEMENTS:
            raise ValueError(f'pool_placement must be one of '
                             f'{POOL_PLACEMENTS}, got {pool_placement!r}')
        for name, flag in (('pool_stem', pool_stem),
                           ('cifar_stem', cifar_stem)):
            if not isinstance(flag, bool):
                raise TypeError(f'{name} must be a bool, got {flag!r}')
        if cifar_stem and deep_stem:
            raise ValueError('cifar_stem and deep_stem exclude each other')
        if plugins is not None:
            if not isinstance(plugins, (list, tuple)) or any(
                    p.get('position') not in PLUGIN_POSITIONS or 'cfg' not in p
                    or len(p.get('stages', ())) not in (0, num_stages)
                    for p in plugins):
                raise ValueError(
                    'plugins must be a list of dict(cfg=..., position=one of '
                    f'{PLUGIN_POSITIONS}, stages=<{num_stages} bools>), got '
                    f'{plugins!r}')
        if multi_grid is not None and \
                len(multi_grid) != self.arch_settings[depth][1][num_stages - 1]:
            raise ValueError(
                f'multi_grid needs one dilation per block of the last stage '
                f'({self.arch_settings[depth][1][num_stages - 1]}), got '
                f'{tuple(multi_grid)}')

        self.depth = depth
        self.block, stage_blocks = self.arch_settings[depth]
        self.stage_blocks = tuple(stage_blocks[:num_stages])
        self.stem_channels = stem_channels or base_channels
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.strides = strides
        self.dilations = dilations
        self.out_indices = out_indices
        self.style = style
        self.deep_stem = deep_stem
        self.cifar_stem = cifar_stem
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.host = host
        self.pattern = pattern
        self.num_connections = num_connections
        self.pad_mode = pad_mode
        if init_cfg is None:
            self.init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Constant', val=1,
                     layer=['_BatchNorm', 'GroupNorm', 'LayerNorm'])
            ]

        stem_pool = pool_cfg if (pool_stem and not cifar_stem) else None
        self._make_stem_layer(in_channels, self.stem_channels, stem_pool,
                              pool_placement)
        # MMDetection / MMSegmentation keep avg_down's AvgPool in a stride-1
        # projection too (``layer1.0.downsample.{0,1,2}``); MMPretrain not.
        self.avg_down_at_stride_1 = avg_down and host != 'mmpretrain'

        expansion = self.block.expansion
        widths = [base_channels * 2**i * expansion for i in range(num_stages)]
        # widths of the entries in network order (entry k = block k's
        # projected input, which has the block's output width)
        self.entry_channels = [w for w, n in zip(widths, self.stage_blocks)
                               for _ in range(n)]
        total_blocks = sum(self.stage_blocks)
        rates = [drop_path_rate * i / max(total_blocks - 1, 1)
                 for i in range(total_blocks)]
        block_args = dict(
            style=style, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            with_cp=with_cp,
            init_cfg=dict(type='Constant', val=0,
                          override=dict(name='last_norm'))
            if zero_init_residual else None)
        if issubclass(self.block, Bottleneck):
            block_args.update(groups=groups, base_width=width_per_group,
                              base_channels=base_channels)

        self.res_layers: List[str] = []
        self.feature_info: List[dict] = []
        reduction = 1 if cifar_stem else 4
        inplanes, first = self.stem_channels, 0
        for i, num_blocks in enumerate(self.stage_blocks):
            stride, dilation = strides[i], dilations[i]
            pooled = pool_cfg is not None and stride > 1
            downsample = self._make_downsample(
                inplanes, widths[i], 1 if pooled else stride, avg_down)
            pool = build_prior_pool(
                pool_cfg, inplanes if pool_placement == 'pre' else widths[i],
                stride, stride, ceil_mode=True) if pooled else None
            stage_plugins = [
                dict(p['cfg'], position=p['position']) for p in plugins or ()
                if not p.get('stages') or p['stages'][i]]
            grid = multi_grid if i == num_stages - 1 else None
            blocks = []
            for j in range(num_blocks):
                if gate_cfg is None:
                    entry, inbounds, reads = j, [j], [widths[i]]
                elif pattern == 'skip':
                    entry, inbounds = j, skip_inbound_indices(j)
                    reads = [widths[i]] * len(inbounds)
                else:
                    entry = first + j
                    inbounds = dense_inbound_indices(entry, num_connections)
                    reads = [self.entry_channels[k] for k in inbounds]
                blocks.append(self.block(
                    inplanes=inplanes if j == 0 else widths[i],
                    planes=base_channels * 2**i,
                    stride=stride if (j == 0 and not pooled) else 1,
                    dilation=grid[j] if grid else
                    (dilation // 2 if contract_dilation and dilation > 1
                     else dilation) if j == 0 else dilation,
                    dcn=dcn if (dcn is not None and stage_with_dcn[i])
                    else None,
                    entry_index=entry,
                    inbound_indices=inbounds,
                    junction=build_junction(gate_cfg, widths[i], reads,
                                            pad_mode),
                    downsample=downsample if j == 0 else None,
                    drop_path_rate=rates[first + j],
                    pool=pool if j == 0 else None,
                    pool_placement=pool_placement,
                    plugins=stage_plugins or None,
                    **block_args))
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, RoutedStage(*blocks))
            self.res_layers.append(layer_name)
            reduction *= stride
            if i in out_indices:
                self.feature_info.append(dict(
                    num_chs=widths[i], reduction=reduction,
                    module=layer_name))
            inplanes, first = widths[i], first + num_blocks

        self.feat_dim = inplanes
        self._freeze_stages()

    def _make_downsample(self, inplanes: int, out_channels: int, stride: int,
                         avg_down: bool) -> Optional[nn.Module]:
        """The stage's shortcut projection (None when shapes agree)."""
        if stride == 1 and inplanes == out_channels:
            return None
        layers = []
        conv_stride = stride
        if avg_down and (stride != 1 or self.avg_down_at_stride_1):
            conv_stride = 1
            layers.append(nn.AvgPool2d(
                kernel_size=stride, stride=stride, ceil_mode=True,
                count_include_pad=False))
        layers += [
            build_conv_layer(self.conv_cfg, inplanes, out_channels, 1,
                             stride=conv_stride, bias=False),
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
                ConvModule(cin, cout, 3, stride=stride, padding=1,
                           conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                           inplace=True)
                for cin, cout, stride in ((in_channels, mid, 2),
                                          (mid, mid, 1),
                                          (mid, stem_channels, 1))])
            first_conv = self.stem[0].conv
        elif self.deep_stem:
            mid = stem_channels // 2
            self.stem = nn.Sequential(
                build_conv_layer(self.conv_cfg, in_channels, mid, 3, stride=2,
                                 padding=1, bias=False),
                build_norm_layer(self.norm_cfg, mid)[1],
                nn.ReLU(inplace=True),
                build_conv_layer(self.conv_cfg, mid, mid, 3, padding=1,
                                 bias=False),
                build_norm_layer(self.norm_cfg, mid)[1],
                nn.ReLU(inplace=True),
                build_conv_layer(self.conv_cfg, mid, stem_channels, 3,
                                 padding=1, bias=False),
                build_norm_layer(self.norm_cfg, stem_channels)[1],
                nn.ReLU(inplace=True))
            first_conv = self.stem[0]
        else:
            kernel, stride = (3, 1) if self.cifar_stem else (7, 2)
            self.conv1 = build_conv_layer(
                self.conv_cfg, in_channels, stem_channels, kernel,
                stride=stride, padding=kernel // 2, bias=False)
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
                    build_prior_pool(pool_cfg, stem_channels, 2, 2,
                                     ceil_mode=True), pool)
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
            freeze_modules([self.stem] if self.deep_stem
                           else [self.conv1, self.norm1])
            freeze_modules([self.maxpool])
        freeze_modules(getattr(self, f'layer{i}')
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
        if name.startswith(('conv1', 'bn1', 'norm1', 'gn1', 'stem',
                            'maxpool')):
            return 0, num_layers
        if name.startswith('layer'):
            stage_id = int(name.split('.')[0][5:]) - 1
            block_id = int(name.split('.')[1])
            return sum(self.stage_blocks[:stage_id]) + block_id + 1, num_layers
        return num_layers - 1, num_layers
