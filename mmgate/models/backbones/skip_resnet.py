"""SkipResNet: ResNet whose blocks end in a Gate Module.

Reads top to bottom: the gated blocks, the gated stage (``SkipResLayer``),
the backbone, its V1c / V1d variants. SkipResNeXt lives in
``skip_resnext.py``; the published-weights conversion in
``mmgate/models/utils/timm_convert.py``.

The interface is MMDetection's ``ResNet`` (same argument names and meanings),
and so is the weight layout of everything but the gates: ``conv1``, ``bn1``,
``layer{s}.{j}.conv{1,2,3}``, ``layer{s}.{j}.bn{1,2,3}``,
``layer{s}.0.downsample.*``, plus ``layer{s}.{j}.gate.{conv1,norm,conv2}``.
"""
import re
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule, Sequential
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmgate.registry import MODELS
from ..layers import (GateModule, global_descriptor, last_readers,
                      skip_inbound_indices)
from ..utils import load_pretrained_weights

__all__ = ['GatedBasicBlock', 'GatedBottleneck', 'SkipResLayer', 'SkipResNet',
           'SkipResNetV1c', 'SkipResNetV1d']


def _gate_kwargs(gate_cfg: dict) -> dict:
    return dict(
        reduction=gate_cfg.get('reduction', 8),
        norm_cfg=gate_cfg.get('norm_cfg', dict(type='BN', requires_grad=True)),
        act_cfg=gate_cfg.get('act_cfg', dict(type='ReLU')),
        lean=gate_cfg.get('lean', False))


def batchnorm_affine(norm: nn.Module,
                     c: Tensor) -> Optional[Tuple[Tensor, Tensor, Tensor]]:
    """``(c, scale, shift)`` with ``norm(c) == c * scale + shift`` when
    ``norm`` is a plain (non-synchronised) BatchNorm; None otherwise.

    In training mode the batch statistics are computed again here (one
    reduction over ``c``), in eval mode the running ones are used. The
    result only serves the gate's backward pass (see ``gated_sum``).
    """
    if type(norm) not in (nn.BatchNorm2d, ) or not norm.affine:
        return None
    with torch.no_grad():
        if norm.training or not norm.track_running_stats:
            var, mean = torch.var_mean(c, dim=(0, 2, 3), unbiased=False)
        else:
            mean, var = norm.running_mean, norm.running_var
        scale = norm.weight * torch.rsqrt(var + norm.eps)
        shift = norm.bias - mean * scale
    return c, scale.to(c.dtype), shift.to(c.dtype)


class _GatedResBlock(BaseModule):
    """What the two gated ResNet blocks share: projection of the stage input,
    drop-path, the gate, checkpointing and the final ReLU.

    Subclasses build their convs and define ``residual(x)``.
    """
    expansion = 1

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 index: int,
                 downsample: Optional[nn.Module] = None,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.,
                 gate_cfg: dict = dict(),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.inplanes = inplanes
        self.planes = planes
        self.index = index
        self.inbound_indices = skip_inbound_indices(index)
        self.downsample = downsample
        self.with_cp = with_cp
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 \
            else nn.Identity()
        self.gate = GateModule(
            planes * self.expansion, len(self.inbound_indices),
            **_gate_kwargs(gate_cfg))
        self.relu = nn.ReLU(inplace=True)

    def project(self, x: Tensor) -> Tensor:
        """``xs[0]`` of the stage: the stage input after its shortcut
        projection (only the stage's first block has one)."""
        return x if self.downsample is None else self.downsample(x)

    @property
    def last_norm(self) -> nn.Module:
        """The norm that ends the residual branch."""
        raise NotImplementedError

    def residual_pre_norm(self, x: Tensor) -> Tensor:
        """The residual branch up to (not including) ``last_norm``."""
        raise NotImplementedError

    def residual(self, x: Tensor) -> Tensor:
        """The residual branch ``y`` (before drop-path and the gate)."""
        return self.last_norm(self.residual_pre_norm(x))

    def forward(self, x: Tensor, inbounds: Sequence[Tensor],
                inbound_descriptors: Sequence[Tensor]) -> Tensor:
        """Gated block output.

        Args:
            x (Tensor): Block input (the raw stage input for block 0).
            inbounds (Sequence[Tensor]): ``[xs[i] for i in inbound_indices]``.
            inbound_descriptors (Sequence[Tensor]): Their global descriptors.
        """

        def _inner_forward(x, *maps):
            n = len(maps) // 2
            c = self.residual_pre_norm(x)
            y = self.last_norm(c)
            source = None
            if torch.is_grad_enabled() and not (
                    self.training and isinstance(self.drop_path, DropPath)):
                source = batchnorm_affine(self.last_norm, c)
            y = self.drop_path(y)
            return self.gate(y, maps[:n], maps[n:], y_source=source)

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(
                _inner_forward, x, *inbounds, *inbound_descriptors,
                use_reentrant=False)
        else:
            out = _inner_forward(x, *inbounds, *inbound_descriptors)
        return self.relu(out)


class GatedBasicBlock(_GatedResBlock):
    """ResNet basic block (two 3x3 convs) ending in a Gate Module.

    Args:
        inplanes (int): Input channels.
        planes (int): Output channels.
        index (int): Position of the block inside its stage; decides which
            earlier outputs it reads (see ``skip_inbound_indices``).
        stride (int): Stride of the first conv. Defaults to 1.
        dilation (int): Dilation of the convs. Defaults to 1.
        downsample (nn.Module, optional): Projection of the stage input
            (stage-first block only).
        style (str): 'pytorch' or 'caffe'; no effect on a basic block.
        with_cp (bool): Gradient checkpointing. Defaults to False.
        conv_cfg (dict, optional): Conv config. Defaults to None.
        norm_cfg (dict): Norm config. Defaults to BN.
        dcn (dict, optional): Not supported by the basic block.
        drop_path_rate (float): Stochastic depth of the residual branch.
        gate_cfg (dict): ``reduction``, ``norm_cfg``, ``act_cfg``, ``lean``
            of the Gate Module.
        init_cfg (dict, optional): Initialisation config.
    """
    expansion = 1

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 index: int,
                 stride: int = 1,
                 dilation: int = 1,
                 downsample: Optional[nn.Module] = None,
                 style: str = 'pytorch',
                 with_cp: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 dcn: Optional[dict] = None,
                 drop_path_rate: float = 0.,
                 gate_cfg: dict = dict(),
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        assert dcn is None, 'DCN is not supported by GatedBasicBlock'
        super().__init__(inplanes, planes, index, downsample, with_cp,
                         drop_path_rate, gate_cfg, init_cfg)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, planes, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, planes, postfix=2)
        self.conv1 = build_conv_layer(
            conv_cfg, inplanes, planes, 3, stride=stride, padding=dilation,
            dilation=dilation, bias=False)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(
            conv_cfg, planes, planes, 3, padding=1, bias=False)
        self.add_module(self.norm2_name, norm2)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    @property
    def last_norm(self) -> nn.Module:
        return self.norm2

    def residual_pre_norm(self, x: Tensor) -> Tensor:
        return self.conv2(self.relu(self.norm1(self.conv1(x))))


class GatedBottleneck(_GatedResBlock):
    """ResNet / ResNeXt bottleneck (1x1, 3x3, 1x1) ending in a Gate Module.

    Args:
        inplanes (int): Input channels.
        planes (int): Base channels; the output has ``planes * 4``.
        index (int): Position of the block inside its stage.
        stride (int): Stride of the block. Defaults to 1.
        dilation (int): Dilation of the 3x3 conv. Defaults to 1.
        downsample (nn.Module, optional): Projection of the stage input.
        style (str): 'pytorch' puts the stride on the 3x3 conv, 'caffe' on
            the first 1x1. Defaults to 'pytorch'.
        groups (int): Groups of the 3x3 conv (ResNeXt cardinality).
        base_width (int): Width per group (ResNeXt).
        base_channels (int): Base channels of the backbone (ResNeXt width
            rule ``floor(planes * base_width / base_channels) * groups``).
        with_cp (bool): Gradient checkpointing. Defaults to False.
        conv_cfg (dict, optional): Conv config. Defaults to None.
        norm_cfg (dict): Norm config. Defaults to BN.
        dcn (dict, optional): Conv config of the 3x3 conv (DCN or any
            registered conv), as in MMDetection.
        drop_path_rate (float): Stochastic depth of the residual branch.
        gate_cfg (dict): Gate Module options.
        init_cfg (dict, optional): Initialisation config.
    """
    expansion = 4

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 index: int,
                 stride: int = 1,
                 dilation: int = 1,
                 downsample: Optional[nn.Module] = None,
                 style: str = 'pytorch',
                 groups: int = 1,
                 base_width: int = 4,
                 base_channels: int = 64,
                 with_cp: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 dcn: Optional[dict] = None,
                 drop_path_rate: float = 0.,
                 gate_cfg: dict = dict(),
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        assert style in ('pytorch', 'caffe'), \
            f"style must be 'pytorch' or 'caffe', got {style!r}"
        assert dcn is None or isinstance(dcn, dict), \
            f'dcn must be None or a dict, got {type(dcn)}'
        super().__init__(inplanes, planes, index, downsample, with_cp,
                         drop_path_rate, gate_cfg, init_cfg)
        conv1_stride, conv2_stride = (1, stride) if style == 'pytorch' \
            else (stride, 1)
        if groups == 1:
            width = planes
        else:
            width = (planes * base_width // base_channels) * groups
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, width, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, width, postfix=2)
        self.norm3_name, norm3 = build_norm_layer(
            norm_cfg, planes * self.expansion, postfix=3)
        self.conv1 = build_conv_layer(
            conv_cfg, inplanes, width, 1, stride=conv1_stride, bias=False)
        self.add_module(self.norm1_name, norm1)
        conv2_cfg = conv_cfg
        if dcn is not None:
            dcn = dict(dcn)
            if not dcn.pop('fallback_on_stride', False) or conv2_stride == 1:
                assert conv_cfg is None, 'conv_cfg must be None for DCN'
                conv2_cfg = dcn
        self.conv2 = build_conv_layer(
            conv2_cfg, width, width, 3, stride=conv2_stride, padding=dilation,
            dilation=dilation, groups=groups, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(
            conv_cfg, width, planes * self.expansion, 1, bias=False)
        self.add_module(self.norm3_name, norm3)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    @property
    def last_norm(self) -> nn.Module:
        return self.norm3

    def residual_pre_norm(self, x: Tensor) -> Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        return self.conv3(out)


class SkipResLayer(Sequential):
    """One stage of gated blocks: keeps the list ``xs`` of the stage's
    outputs (``xs[0]`` = projected stage input) and their descriptors, and
    hands each block the inbounds it reads.

    Args:
        block (type): ``GatedBasicBlock`` or ``GatedBottleneck``.
        inplanes (int): Input channels of the stage.
        planes (int): Base channels of the stage's blocks.
        num_blocks (int): Number of blocks.
        stride (int): Stride of the first block. Defaults to 1.
        dilation (int): Dilation of the blocks. Defaults to 1.
        avg_down (bool): Average-pool before the projection conv (ResNet-D).
        conv_cfg (dict, optional): Conv config.
        norm_cfg (dict): Norm config. Defaults to BN.
        contract_dilation (bool): Halve the first block's dilation
            (MMSegmentation's ResNetV1c option). Defaults to False.
        drop_path_rates (Sequence[float], optional): One per block.
        **kwargs: Passed to every block.
    """

    def __init__(self,
                 block: type,
                 inplanes: int,
                 planes: int,
                 num_blocks: int,
                 stride: int = 1,
                 dilation: int = 1,
                 avg_down: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 contract_dilation: bool = False,
                 drop_path_rates: Optional[Sequence[float]] = None,
                 **kwargs) -> None:
        assert num_blocks >= 1, f'a stage needs >= 1 block, got {num_blocks}'
        drop_path_rates = drop_path_rates or [0.] * num_blocks
        assert len(drop_path_rates) == num_blocks
        out_channels = planes * block.expansion
        downsample = None
        if stride != 1 or inplanes != out_channels:
            layers = []
            conv_stride = stride
            if avg_down and stride != 1:
                conv_stride = 1
                layers.append(nn.AvgPool2d(
                    kernel_size=stride, stride=stride, ceil_mode=True,
                    count_include_pad=False))
            layers += [
                build_conv_layer(conv_cfg, inplanes, out_channels, 1,
                                 stride=conv_stride, bias=False),
                build_norm_layer(norm_cfg, out_channels)[1]
            ]
            downsample = nn.Sequential(*layers)
        first_dilation = dilation // 2 if (contract_dilation
                                           and dilation > 1) else dilation
        blocks = []
        for j in range(num_blocks):
            blocks.append(block(
                inplanes=inplanes if j == 0 else out_channels,
                planes=planes,
                index=j,
                stride=stride if j == 0 else 1,
                dilation=first_dilation if j == 0 else dilation,
                downsample=downsample if j == 0 else None,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                drop_path_rate=drop_path_rates[j],
                **kwargs))
        super().__init__(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        xs = [self[0].project(x)]
        descriptors = [global_descriptor(xs[0])]
        release = last_readers([block.inbound_indices for block in self])
        last = len(self) - 1
        for j, block in enumerate(self):
            idx = block.inbound_indices
            x = block(x, [xs[i] for i in idx], [descriptors[i] for i in idx])
            for k in release[j]:  # no later block reads these
                xs[k] = descriptors[k] = None
            xs.append(x)
            if j < last:
                descriptors.append(global_descriptor(x))
        return x


@MODELS.register_module()
class SkipResNet(BaseModule):
    """SkipResNet backbone (ResNet with Gate Modules), MMDetection interface.

    Every block ends with ``relu(sigmoid(g0) * y + sum_k w_k * x_k)``, where
    ``x_k`` are the outputs 1, 2, 4, ... blocks back inside the same stage
    and ``w`` is a per-channel softmax. See ``../shared`` spec and
    ``GateModule``.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        in_channels (int): Input image channels. Defaults to 3.
        stem_channels (int, optional): Stem width. Defaults to
            ``base_channels``.
        base_channels (int): Width of the first stage. Defaults to 64.
        num_stages (int): 1 to 4. Defaults to 4.
        strides (Sequence[int]): Stride of each stage.
        dilations (Sequence[int]): Dilation of each stage (output stride 8:
            strides (1, 2, 1, 1), dilations (1, 1, 2, 4)).
        out_indices (Sequence[int]): Stages whose outputs are returned.
        style (str): 'pytorch' (stride on the 3x3) or 'caffe'.
        deep_stem (bool): Three 3x3 convs as stem (V1c). Defaults to False.
        avg_down (bool): Average pool in the projection (V1d).
        frozen_stages (int): Stages to freeze (stem = 0); -1 freezes none.
        conv_cfg (dict, optional): Conv config.
        norm_cfg (dict): Norm config (BN, SyncBN, GN ...).
        norm_eval (bool): Keep every BN in eval mode while training, the
            gates' norms included. Defaults to True (as MMDetection).
        dcn (dict, optional): Conv config of the bottleneck 3x3 convs.
        stage_with_dcn (Sequence[bool]): Stages using ``dcn``.
        with_cp (bool): Gradient checkpointing. Defaults to False.
        zero_init_residual (bool): Zero-init the last norm of each residual
            branch. Defaults to True.
        contract_dilation (bool): Halve the first block's dilation in dilated
            stages (MMSegmentation). Defaults to False.
        drop_path_rate (float): Stochastic depth, linear over all blocks.
        gate_reduction (int): Gate MLP reduction. Defaults to 8.
        gate_norm_cfg (dict): Norm inside the gates. Defaults to BN.
        gate_act_cfg (dict): Activation inside the gates. Defaults to ReLU.
        gate_lean (bool): Drop the dead softmax slot of single-inbound gates
            (breaks loading the published weights). Defaults to False.
        pretrained (str, optional): Deprecated, use ``init_cfg``.
        init_cfg (dict or list[dict], optional): Initialisation config.
            ``dict(type='Pretrained', checkpoint=..., prefix=...)`` accepts
            mmgate checkpoints and the authors' original timm files; every
            key and shape must fit.

    Example:
        >>> import torch
        >>> from mmgate.models import SkipResNet
        >>> model = SkipResNet(depth=18, base_channels=8, out_indices=(0, 1, 2, 3))
        >>> model.eval()
        >>> outs = model(torch.rand(1, 3, 32, 32))
        >>> for out in outs:
        ...     print(tuple(out.shape))
        (1, 8, 8, 8)
        (1, 16, 4, 4)
        (1, 32, 2, 2)
        (1, 64, 1, 1)
    """

    arch_settings = {
        18: (GatedBasicBlock, (2, 2, 2, 2)),
        34: (GatedBasicBlock, (3, 4, 6, 3)),
        50: (GatedBottleneck, (3, 4, 6, 3)),
        101: (GatedBottleneck, (3, 4, 23, 3)),
        152: (GatedBottleneck, (3, 8, 36, 3)),
    }
    # timm key layout of the published weights (see utils/timm_convert.py)
    timm_layout = 'resnet'

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 stem_channels: Optional[int] = None,
                 base_channels: int = 64,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 style: str = 'pytorch',
                 deep_stem: bool = False,
                 avg_down: bool = False,
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = True,
                 dcn: Optional[dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 contract_dilation: bool = False,
                 drop_path_rate: float = 0.,
                 gate_reduction: int = 8,
                 gate_norm_cfg: dict = dict(type='BN', requires_grad=True),
                 gate_act_cfg: dict = dict(type='ReLU'),
                 gate_lean: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth} for {type(self).__name__}, '
                           f'choose from {sorted(self.arch_settings)}')
        assert not (init_cfg and pretrained), \
            'init_cfg and pretrained cannot be specified at the same time'
        if isinstance(pretrained, str):
            warnings.warn('pretrained is deprecated, use "init_cfg" instead')
            self.init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        elif pretrained is not None:
            raise TypeError('pretrained must be a str or None')
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

        self.depth = depth
        self.block, stage_blocks = self.arch_settings[depth]
        self.stage_blocks = stage_blocks[:num_stages]
        self.stem_channels = stem_channels or base_channels
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.strides = strides
        self.dilations = dilations
        self.out_indices = out_indices
        self.style = style
        self.deep_stem = deep_stem
        self.avg_down = avg_down
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.gate_cfg = dict(
            reduction=gate_reduction, norm_cfg=gate_norm_cfg,
            act_cfg=gate_act_cfg, lean=gate_lean)

        if init_cfg is None and pretrained is None:
            self.init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Constant', val=1,
                     layer=['_BatchNorm', 'GroupNorm', 'LayerNorm'])
            ]
        last_norm = 'norm3' if issubclass(self.block, GatedBottleneck) \
            else 'norm2'
        block_init_cfg = dict(type='Constant', val=0,
                              override=dict(name=last_norm)) \
            if zero_init_residual else None

        self._make_stem_layer(in_channels, self.stem_channels)

        total_blocks = sum(self.stage_blocks)
        rates = [drop_path_rate * i / max(total_blocks - 1, 1)
                 for i in range(total_blocks)]
        self.res_layers = []
        inplanes = self.stem_channels
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = base_channels * 2**i
            start = sum(self.stage_blocks[:i])
            res_layer = self.make_res_layer(
                block=self.block,
                inplanes=inplanes,
                planes=planes,
                num_blocks=num_blocks,
                stride=strides[i],
                dilation=dilations[i],
                style=style,
                avg_down=avg_down,
                with_cp=with_cp,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                dcn=dcn if (dcn is not None and stage_with_dcn[i]) else None,
                contract_dilation=contract_dilation,
                drop_path_rates=rates[start:start + num_blocks],
                gate_cfg=self.gate_cfg,
                init_cfg=block_init_cfg)
            inplanes = planes * self.block.expansion
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, res_layer)
            self.res_layers.append(layer_name)

        self.feat_dim = inplanes
        self._freeze_stages()

    def make_res_layer(self, **kwargs) -> SkipResLayer:
        """Build one stage; subclasses (ResNeXt) add their block options."""
        return SkipResLayer(**kwargs)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def feature_info(self) -> List[dict]:
        """Channels and reduction of each returned output (timm style)."""
        info, reduction = [], 4
        for i in range(self.num_stages):
            reduction *= self.strides[i]
            if i in self.out_indices:
                info.append(dict(
                    num_chs=self.base_channels * 2**i * self.block.expansion,
                    reduction=reduction, module=f'layer{i + 1}'))
        return info

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        if self.deep_stem:
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
        else:
            self.conv1 = build_conv_layer(
                self.conv_cfg, in_channels, stem_channels, 7, stride=2,
                padding=3, bias=False)
            self.norm1_name, norm1 = build_norm_layer(
                self.norm_cfg, stem_channels, postfix=1)
            self.add_module(self.norm1_name, norm1)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            stem = [self.stem] if self.deep_stem else [self.conv1, self.norm1]
            for m in stem:
                m.eval()
                for param in m.parameters():
                    param.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            m = getattr(self, f'layer{i}')
            m.eval()
            for param in m.parameters():
                param.requires_grad = False

    def optional_pretrained_key(self, key: str, missing: bool) -> bool:
        """Checkpoint keys of stages this backbone does not build
        (``num_stages < 4``) may be left out of the load."""
        stage = re.match(r'^layer(\d+)\.', key)
        return not missing and stage is not None \
            and self.num_stages < int(stage[1]) <= 4

    def init_weights(self) -> None:
        """Random init from ``init_cfg``, or a strict load of a checkpoint
        (mmgate or the authors' timm layout) for ``type='Pretrained'``."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            load_pretrained_weights(self, cfg)
            self._is_init = True
        else:
            super().init_weights()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'SkipResNet':
        """Freeze stages again, and keep BNs (gate norms too) in eval mode
        when ``norm_eval`` is set."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def get_layer_depth(self, param_name: str, prefix: str = '') -> tuple:
        """Layer id of a parameter for layer-wise lr decay.

        The stem is layer 0, the j-th block overall is layer j + 1, anything
        else (necks, heads) is the last layer.

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
        if name.startswith(('conv1', 'bn1', 'norm1', 'gn1', 'stem')):
            return 0, num_layers
        if name.startswith('layer'):
            stage_id = int(name.split('.')[0][5:]) - 1
            block_id = int(name.split('.')[1])
            return sum(self.stage_blocks[:stage_id]) + block_id + 1, num_layers
        return num_layers - 1, num_layers


@MODELS.register_module()
class SkipResNetV1c(SkipResNet):
    """SkipResNet-V1c: deep stem (three 3x3 convs), as MMSegmentation's
    ``ResNetV1c``."""

    def __init__(self, **kwargs) -> None:
        super().__init__(deep_stem=True, avg_down=False, **kwargs)


@MODELS.register_module()
class SkipResNetV1d(SkipResNet):
    """SkipResNet-V1d: deep stem and average-pool projections."""

    def __init__(self, **kwargs) -> None:
        super().__init__(deep_stem=True, avg_down=True, **kwargs)
