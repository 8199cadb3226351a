"""SkipConvNeXt: ConvNeXt whose blocks end in a Gate Module.

MMPretrain's ConvNeXt interface and weight layout (``downsample_layers``,
``stages.{i}.{j}.{depthwise_conv,norm,pointwise_conv1,pointwise_conv2,
gamma}``, ``norm{i}``), plus ``stages.{i}.{j}.gate.{conv1,norm,conv2}``.

Unlike a plain ConvNeXt block (Liu et al., "A ConvNet for the 2020s", CVPR
2022), a gated block does not add its input: the residual branch ``y`` is
mixed with the stage's earlier outputs by the gate (LayerNorm + GELU inside,
no activation after), with the Skip pattern of SkipResNet.
"""
from functools import partial
from itertools import chain
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmengine.model import ModuleList
from torch import Tensor

from mmgate.registry import MODELS
from ..layers import build_norm, skip_inbound_indices
from ..layers.gate import gate_cfg_of
from .base import GatedBackbone, check_out_indices, freeze_modules
from .blocks import RoutedBlock, RoutedStage, build_junction

__all__ = ['GRN', 'ConvNeXtBlock', 'SkipConvNeXt']


class GRN(nn.Module):
    """Global Response Normalization of ConvNeXt V2 (Woo et al., "ConvNeXt
    V2: Co-designing and Scaling ConvNets with Masked Autoencoders", CVPR
    2023): ``x + gamma * x * N(x) + beta`` with ``N`` the spatial L2 norm of
    each channel divided by its mean over channels. Parameters ``gamma`` and
    ``beta`` (MMPretrain's names), zero at init.

    Args:
        channels (int): Channels C.
        eps (float): Added to the mean norm. Defaults to 1e-6.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor, channel_dim: int = 1) -> Tensor:
        """``x`` of shape (B, C, H, W) (``channel_dim=1``) or (B, H, W, C)
        (``channel_dim=-1``)."""
        spatial = (2, 3) if channel_dim == 1 else (1, 2)
        gx = torch.norm(x, p=2, dim=spatial, keepdim=True)
        nx = gx / (gx.mean(dim=channel_dim, keepdim=True) + self.eps)
        shape = (1, -1, 1, 1) if channel_dim == 1 else (1, 1, 1, -1)
        return self.gamma.view(shape) * (x * nx) + self.beta.view(shape) + x


class ConvNeXtBlock(RoutedBlock):
    """ConvNeXt block branch (7x7 depthwise, LN, MLP x4, layer scale); the
    junction given to it ends the block, with no activation after it.

    Args:
        channels (int): Channels of the block.
        mlp_ratio (float): MLP expansion. Defaults to 4.
        norm_cfg (dict): Norm of the block. Defaults to LN2d, eps 1e-6.
        act_cfg (dict): MLP activation. Defaults to GELU.
        layer_scale_init_value (float): Initial layer scale ``gamma``.
        linear_pw_conv (bool): Pointwise convs as ``nn.Linear`` on
            channels-last maps (True) or 1x1 ``nn.Conv2d`` (False), as in
            MMPretrain. Defaults to True.
        use_grn (bool): A :class:`GRN` after the MLP activation (ConvNeXt
            V2). Defaults to False.
        **kwargs: :class:`RoutedBlock` arguments (``entry_index``,
            ``inbound_indices``, ``junction``, ``drop_path_rate``,
            ``with_cp``).
    """

    def __init__(self,
                 channels: int,
                 mlp_ratio: float = 4.,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 act_cfg: dict = dict(type='GELU'),
                 layer_scale_init_value: float = 1e-6,
                 linear_pw_conv: bool = True,
                 use_grn: bool = False,
                 **kwargs) -> None:
        super().__init__(act_cfg=None, **kwargs)
        self.linear_pw_conv = linear_pw_conv
        self.depthwise_conv = nn.Conv2d(
            channels, channels, 7, padding=3, groups=channels)
        self.norm = build_norm(norm_cfg, channels)
        mid_channels = int(mlp_ratio * channels)
        pw_conv = nn.Linear if linear_pw_conv else partial(
            nn.Conv2d, kernel_size=1)
        self.pointwise_conv1 = pw_conv(channels, mid_channels)
        self.act = build_activation_layer(act_cfg)
        self.grn = GRN(mid_channels) if use_grn else None
        self.pointwise_conv2 = pw_conv(mid_channels, channels)
        self.gamma = nn.Parameter(
            layer_scale_init_value * torch.ones(channels)) \
            if layer_scale_init_value > 0 else None

    def residual(self, x: Tensor) -> Tensor:
        x = self.norm(self.depthwise_conv(x))
        channel_dim = 1
        if self.linear_pw_conv:
            x, channel_dim = x.permute(0, 2, 3, 1), -1
        x = self.act(self.pointwise_conv1(x))
        if self.grn is not None:
            x = self.grn(x, channel_dim)
        x = self.pointwise_conv2(x)
        if self.linear_pw_conv:
            x = x.permute(0, 3, 1, 2)
        if self.gamma is not None:
            x = x * self.gamma.view(1, -1, 1, 1)
        return x


@MODELS.register_module()
class SkipConvNeXt(GatedBackbone):
    """SkipConvNeXt backbone, MMPretrain ConvNeXt interface.

    Args:
        arch (str | dict): 'atto', 'femto', 'pico', 'nano', 'tiny', 'small',
            'base', 'large', 'xlarge', 'huge' (MMPretrain's), or a dict with
            ``depths`` and ``channels``. Defaults to 'tiny'.
        in_channels (int): Input channels. Defaults to 3.
        stem_patch_size (int): Stem patch size. Defaults to 4.
        norm_cfg (dict): Norm config. Defaults to LN2d, eps 1e-6.
        act_cfg (dict): MLP activation. Defaults to GELU.
        linear_pw_conv (bool): Pointwise convs as Linear layers (True) or
            1x1 convs. Defaults to True.
        use_grn (bool): Global Response Normalization in the blocks
            (ConvNeXt V2; with ``layer_scale_init_value=0``). Defaults to
            False.
        drop_path_rate (float): Stochastic depth, linear. Defaults to 0.
        layer_scale_init_value (float): Layer scale init. Defaults to 1e-6.
        out_indices (Sequence[int] | int): Returned stages (negative counts
            from the end). Defaults to -1.
        frozen_stages (int): Number of stages (with their downsample layer)
            to freeze. Defaults to 0.
        gap_before_final_norm (bool): Pool before the output norm
            (classification). Defaults to True.
        gate_reduction (int): Gate MLP reduction. Defaults to 8.
        gate_norm_cfg (dict, optional): Norm in the gates. Defaults to
            ``norm_cfg`` (LN2d; ``requires_grad`` follows it).
        gate_act_cfg (dict): Activation in the gates. Defaults to GELU.
        gate_lean (bool): Drop the dead slot of single-inbound gates.
        with_cp (bool): Gradient checkpointing. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config;
            ``type='Pretrained'`` loads strictly (timm files too).

    Example:
        >>> import torch
        >>> from mmgate.models import SkipConvNeXt
        >>> model = SkipConvNeXt(arch=dict(depths=[1, 1, 2, 1],
        ...     channels=[8, 16, 32, 64]), out_indices=(0, 1, 2, 3),
        ...     gap_before_final_norm=False)
        >>> for out in model(torch.rand(1, 3, 32, 32)):
        ...     print(tuple(out.shape))
        (1, 8, 8, 8)
        (1, 16, 4, 4)
        (1, 32, 2, 2)
        (1, 64, 1, 1)
    """

    arch_settings = {
        'atto': dict(depths=[2, 2, 6, 2], channels=[40, 80, 160, 320]),
        'femto': dict(depths=[2, 2, 6, 2], channels=[48, 96, 192, 384]),
        'pico': dict(depths=[2, 2, 6, 2], channels=[64, 128, 256, 512]),
        'nano': dict(depths=[2, 2, 8, 2], channels=[80, 160, 320, 640]),
        'tiny': dict(depths=[3, 3, 9, 3], channels=[96, 192, 384, 768]),
        'small': dict(depths=[3, 3, 27, 3], channels=[96, 192, 384, 768]),
        'base': dict(depths=[3, 3, 27, 3], channels=[128, 256, 512, 1024]),
        'large': dict(depths=[3, 3, 27, 3], channels=[192, 384, 768, 1536]),
        'xlarge': dict(depths=[3, 3, 27, 3], channels=[256, 512, 1024, 2048]),
        'huge': dict(depths=[3, 3, 27, 3], channels=[352, 704, 1408, 2816]),
    }

    def __init__(
        self,
        arch: Union[str, dict] = 'tiny',
        in_channels: int = 3,
        stem_patch_size: int = 4,
        norm_cfg: dict = dict(type='LN2d', eps=1e-6),
        act_cfg: dict = dict(type='GELU'),
        linear_pw_conv: bool = True,
        use_grn: bool = False,
        drop_path_rate: float = 0.,
        layer_scale_init_value: float = 1e-6,
        out_indices: Union[int, Sequence[int]] = -1,
        frozen_stages: int = 0,
        gap_before_final_norm: bool = True,
        gate_reduction: int = 8,
        gate_norm_cfg: Optional[dict] = None,
        gate_act_cfg: dict = dict(type='GELU'),
        gate_lean: bool = False,
        with_cp: bool = False,
        init_cfg=[
            dict(
                type='TruncNormal',
                layer=['Conv2d', 'Linear'],
                std=.02,
                bias=0.),
            dict(type='Constant', layer=['LayerNorm'], val=1., bias=0.),
        ]
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = self._check_arch(arch)
        self.depths = list(arch['depths'])
        self.channels = list(arch['channels'])
        self.num_stages = len(self.depths)
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        out_indices = check_out_indices(out_indices, self.num_stages)
        assert 0 <= frozen_stages <= self.num_stages, \
            f'frozen_stages must be in [0, {self.num_stages}]'
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.gap_before_final_norm = gap_before_final_norm
        gate_cfg = gate_cfg_of(gate_reduction, gate_norm_cfg or norm_cfg,
                               gate_act_cfg, gate_lean)

        rates = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        self.feature_info: List[dict] = []
        self.downsample_layers = ModuleList()
        self.stages = ModuleList()
        self.downsample_layers.append(
            nn.Sequential(
                nn.Conv2d(
                    in_channels,
                    self.channels[0],
                    stem_patch_size,
                    stride=stem_patch_size),
                build_norm(norm_cfg, self.channels[0])))
        start = 0
        for i, (depth, channels) in enumerate(zip(self.depths, self.channels)):
            if i >= 1:
                self.downsample_layers.append(
                    nn.Sequential(
                        build_norm(norm_cfg, self.channels[i - 1]),
                        nn.Conv2d(self.channels[i - 1], channels, 2,
                                  stride=2)))
            blocks = []
            for j in range(depth):
                inbounds = skip_inbound_indices(j)
                blocks.append(
                    ConvNeXtBlock(
                        channels,
                        norm_cfg=norm_cfg,
                        act_cfg=act_cfg,
                        layer_scale_init_value=layer_scale_init_value,
                        linear_pw_conv=linear_pw_conv,
                        use_grn=use_grn,
                        entry_index=j,
                        inbound_indices=inbounds,
                        junction=build_junction(gate_cfg, channels,
                                                [channels] * len(inbounds)),
                        drop_path_rate=rates[start + j],
                        with_cp=with_cp))
            self.stages.append(RoutedStage(*blocks))
            start += depth
            if i in self.out_indices:
                self.add_module(f'norm{i}', build_norm(norm_cfg, channels))
                self.feature_info.append(
                    dict(
                        num_chs=channels,
                        reduction=stem_patch_size * 2**i,
                        module=f'stages.{i}'))
        self._freeze_stages()

    @classmethod
    def _check_arch(cls, arch: Union[str, dict]) -> dict:
        """The ``depths`` and ``channels`` of ``arch``: a name in
        ``arch_settings`` or a dict, one entry per stage."""
        if isinstance(arch, str):
            if arch not in cls.arch_settings:
                raise KeyError(f'invalid arch {arch!r} for SkipConvNeXt, '
                               f'choose from {sorted(cls.arch_settings)} '
                               'or give a dict with depths and channels')
            arch = cls.arch_settings[arch]
        elif isinstance(arch, dict):
            missing = {'depths', 'channels'} - set(arch)
            if missing:
                raise KeyError(f'arch dict lacks {sorted(missing)}')
        else:
            raise TypeError(f'arch must be a str or dict, got {type(arch)}')
        depths, channels = list(arch['depths']), list(arch['channels'])
        assert len(depths) == len(channels) >= 1, \
            'depths and channels need one entry per stage: got ' \
            f'{depths} and {channels}'
        return arch

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(self.downsample_layers[i](x))
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}')
                if self.gap_before_final_norm:
                    outs.append(norm(x.mean((2, 3), keepdim=True)).flatten(1))
                else:
                    outs.append(norm(x))
        return tuple(outs)

    def _freeze_stages(self) -> None:
        freeze_modules(
            chain.from_iterable((self.downsample_layers[i], self.stages[i])
                                for i in range(self.frozen_stages)))

    def optional_pretrained_key(self, key: str, missing: bool) -> bool:
        """An ImageNet checkpoint has only the final norm: other output
        norms keep their init; stages not built may be skipped."""
        parts = key.split('.')
        if missing:
            return parts[0].startswith('norm') and parts[0] != 'norm3'
        if parts[0] in ('stages', 'downsample_layers'):
            return int(parts[1]) >= self.num_stages
        return parts[0].startswith('norm')

    def get_layer_depth(self, param_name: str, prefix: str = '') -> tuple:
        """Layer id for layer-wise lr decay (MMPretrain ConvNeXt's rule)."""
        max_layer_id = 12 if self.depths[-2] > 9 else 6
        if not param_name.startswith(prefix):
            return max_layer_id + 1, max_layer_id + 2
        parts = param_name[len(prefix):].split('.')
        if parts[0] == 'downsample_layers':
            stage_id = int(parts[1])
            layer_id = {0: 0, 1: 2, 2: 3}.get(stage_id, max_layer_id)
        elif parts[0] == 'stages':
            stage_id, block_id = int(parts[1]), int(parts[2])
            if stage_id < 2:
                layer_id = stage_id + 1
            elif stage_id == 2:
                layer_id = 3 + block_id // 3
            else:
                layer_id = max_layer_id
        else:
            layer_id = max_layer_id + 1
        return layer_id, max_layer_id + 2
