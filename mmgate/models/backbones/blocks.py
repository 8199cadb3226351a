"""Residual blocks assembled from their parts, and the one stage loop.

A block is its residual branch (the convs a subclass builds), the shortcut
projection given to it (``downsample``), and the *junction* given to it: a
:class:`~mmgate.models.layers.GateModule` for the gated families or a
:class:`ResidualAdd` for plain ResNets, the way timm passes ``attn_layer`` /
``drop_path`` into its blocks. Its output is::

    out = post(out_act(junction(drop_path(y), inbounds, descriptors)))

with ``y`` the branch output, the inbounds handed over by an
:class:`~mmgate.models.layers.InboundRouter`, ``out_act`` a ReLU (ResNets) or
nothing (ConvNeXt, MobileNetV2), and ``post`` an optional downsampling pool
(guided-pooling ResNets, which may also pool the block input: ``enter``).
When the branch ends in a plain BatchNorm, a gate is handed the norm's
input and the norm itself, and computes the BatchNorm, drop-path, the gated
sum and the ReLU in one pass (``mmgate.ops.fused_junction``): ``y`` is never
materialised.

:class:`RoutedBlock` writes the interface the router relies on down once;
:class:`BasicBlock` and :class:`Bottleneck` are MMDetection's ResNet
branches with its key layout (``conv1``, ``bn1``, ..., ``downsample``), plus
``gate.*`` when the junction is a gate. :class:`RoutedStage` is the stage
every family uses.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import (build_activation_layer, build_conv_layer,
                      build_norm_layer, build_plugin_layer)
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule, Sequential
from torch import Tensor

from mmgate.ops import capturing_graph, plane_moments
from ..layers import GateModule, InboundRouter, padding_mask
from ..layers.norm import batch_statistics, foldable_batchnorm

__all__ = [
    'ResidualAdd', 'build_junction', 'RoutedBlock', 'BasicBlock', 'Bottleneck',
    'RoutedStage'
]


class ResidualAdd(nn.Module):
    """The junction of a plain residual block: ``y + shortcut``.

    It reads one inbound, the block's own entry (its projected input), and
    has no parameters. It takes the arguments of a gate's ``forward``
    (``norm``, ``scale``, ``relu``) and applies them as plain ops
    (``norm_input_means``, which only a folded norm uses, is not needed).
    """
    gated = False
    num_inbounds = 1

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self,
                y: Tensor,
                inbounds: Sequence[Tensor],
                descriptors: Optional[Sequence[Tensor]] = None,
                norm: Optional[nn.Module] = None,
                scale: Optional[Tensor] = None,
                relu: bool = False,
                norm_input_means: Optional[Tensor] = None) -> Tensor:
        if norm is not None:
            y = norm(y)
        if scale is not None:
            y = y * scale.view(-1, 1, 1, 1).to(y.dtype)
        out = y + inbounds[0]
        return out.relu_() if relu else out


def build_junction(gate_cfg: Optional[dict],
                   channels: int,
                   in_channels: Sequence[int],
                   pad_mode: str = 'masked') -> nn.Module:
    """The junction of a block with ``channels`` outputs that reads inbounds
    of ``in_channels``: a :class:`GateModule` configured by ``gate_cfg``
    (``reduction``, ``norm_cfg``, ``act_cfg``, ``lean``), or a
    :class:`ResidualAdd` when ``gate_cfg`` is None.

    ``pad_mode='masked'`` keeps the zero-padded channels of narrower
    inbounds out of the gate's softmax; ``'paper'`` is the plain softmax of
    DenseResNet's 2020 code (both have the same parameters).
    """
    if gate_cfg is None:
        if len(in_channels) != 1:
            raise ValueError('a plain residual add reads one inbound, got '
                             f'{len(in_channels)}')
        return ResidualAdd(channels)
    if pad_mode not in ('masked', 'paper'):
        raise ValueError(
            f"pad_mode must be 'masked' or 'paper', got {pad_mode!r}")
    mask = padding_mask(in_channels, channels) if pad_mode == 'masked' \
        else None
    return GateModule(
        channels, len(in_channels), softmax_mask=mask, **gate_cfg)


def _is_pointwise(conv: nn.Module) -> bool:
    """A plain 1x1 convolution: stride 1, no padding, groups 1, no bias."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (1, 1)
            and conv.stride == (1, 1) and conv.padding == (0, 0)
            and conv.groups == 1 and conv.bias is None
            and conv.padding_mode == 'zeros')


def _norm(i: int) -> property:
    """The norm built with ``postfix=i`` (``bn{i}``, ``gn{i}`` ...), under
    MMDetection's name ``norm{i}``."""
    return property(lambda self: getattr(self, getattr(self, f'norm{i}_name')))


class RoutedBlock(BaseModule):
    """A residual block run by an :class:`InboundRouter`: the interface the
    router relies on, and the junction / drop-path / checkpointing / final
    activation every family shares.

    Subclasses build their branch and define either ``residual(x)``, or
    ``residual_pre_norm(x)`` and ``last_norm`` when the branch ends in a
    norm (a gate then folds a plain BatchNorm into its fused junction).

    Args:
        entry_index (int): Position of the block's entry in its router's
            list (stage-local for the Skip pattern, network-wide for the
            Dense one).
        inbound_indices (Sequence[int]): Entries the junction reads, most
            recent first.
        junction (nn.Module): ``GateModule`` or :class:`ResidualAdd` (see
            :func:`build_junction`). A gate is stored as ``gate`` (the key
            of the published weights), a residual add as ``add``; both are
            the ``junction`` property.
        downsample (nn.Module, optional): Projection of the block input into
            its entry (the shortcut). Defaults to None (identity).
        drop_path_rate (float): Stochastic depth of the branch.
        act_cfg (dict, optional): Activation after the junction; None for
            none. Defaults to ReLU.
        with_cp (bool): Gradient checkpointing of branch and junction.
        pool (nn.Module, optional): A downsampling pool that replaces the
            block's stride; stored as ``pool`` (absent without one).
        pool_placement (str): ``'pre'`` pools the block input, ``'post'``
            the block output. Defaults to 'post'.
        init_cfg (dict, optional): Initialisation config.

    Attributes:
        entry_index (int), inbound_indices (list[int]): As above.
        reads_descriptors (bool): The junction uses global descriptors.
        out_channels (int): Channels of the block output (and of ``y``),
            which every inbound is padded or truncated to.
    """
    last_norm: Optional[nn.Module] = None

    def __init__(self,
                 entry_index: int,
                 inbound_indices: Sequence[int],
                 junction: nn.Module,
                 downsample: Optional[nn.Module] = None,
                 drop_path_rate: float = 0.,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 with_cp: bool = False,
                 pool: Optional[nn.Module] = None,
                 pool_placement: str = 'post',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if junction.num_inbounds != len(inbound_indices):
            raise ValueError(
                f'the junction mixes {junction.num_inbounds} inbounds, the '
                f'block reads {len(inbound_indices)} ({list(inbound_indices)})'
            )
        if pool_placement not in ('pre', 'post'):
            raise ValueError("pool_placement must be 'pre' or 'post', got "
                             f'{pool_placement!r}')
        self.entry_index = entry_index
        self.inbound_indices: List[int] = list(inbound_indices)
        self.junction_name = 'gate' if isinstance(junction, GateModule) \
            else 'add'
        self.add_module(self.junction_name, junction)
        self.reads_descriptors = bool(junction.gated)
        self.out_channels = junction.channels
        self.downsample = downsample
        self.with_cp = with_cp
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 \
            else nn.Identity()
        self.out_act = build_activation_layer(act_cfg) \
            if act_cfg is not None else nn.Identity()
        # ``pool`` exists only on a pooling block (``<stage>.0.pool``)
        self.pool_placement = None
        if pool is not None:
            self.pool = pool
            self.pool_placement = pool_placement

    @property
    def junction(self) -> nn.Module:
        return getattr(self, self.junction_name)

    def enter(self, x: Tensor) -> Tensor:
        """The input the block works on: ``x``, pooled by a ``'pre'`` pool."""
        if self.pool_placement == 'pre':
            return self.pool(x)
        return x

    def project(self, x: Tensor) -> Tensor:
        """The block's entry (its shortcut): ``x`` after ``downsample``."""
        return x if self.downsample is None else self.downsample(x)

    def residual_pre_norm(self, x: Tensor) -> Tensor:
        """The branch up to (not including) ``last_norm``."""
        raise NotImplementedError

    def residual_pre_norm_means(self,
                                x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """:meth:`residual_pre_norm` and, where the branch has them for
        less than a pass over that output, its ``(B, C)`` plane means (None
        otherwise: the default)."""
        return self.residual_pre_norm(x), None

    def after_last_norm(self, y: Tensor) -> Tensor:
        """What the branch does after ``last_norm`` (MMDetection's
        ``after_conv3`` plugins); nothing by default."""
        return y

    @property
    def acts_after_last_norm(self) -> bool:
        """Whether :meth:`after_last_norm` changes ``y``."""
        return False

    def residual(self, x: Tensor) -> Tensor:
        """The branch output ``y`` (before drop-path and the junction)."""
        return self.after_last_norm(self.last_norm(self.residual_pre_norm(x)))

    def _drop_path_scale(self, y: Tensor) -> Optional[Tensor]:
        """``(B, )`` drop-path factors ``mask / keep_prob`` of this forward
        (mmcv's ``drop_path``, the same random numbers), or None."""
        if not (self.training and isinstance(self.drop_path, DropPath)
                and self.drop_path.drop_prob > 0):
            return None
        keep = 1 - self.drop_path.drop_prob
        shape = (y.size(0), ) + (1, ) * (y.dim() - 1)
        mask = (keep + torch.rand(shape, dtype=y.dtype, device=y.device))
        return mask.floor_().div_(keep).flatten()

    def _junction_forward(self, x: Tensor, inbounds: Sequence[Tensor],
                          descriptors: Optional[Sequence[Tensor]]) -> Tensor:
        """Branch and junction. A gate ending a branch whose last norm is a
        plain BatchNorm takes the norm's input and folds the norm, the
        drop-path factor and the ReLU into its one-pass junction
        (``mmgate.ops.fused_junction``); otherwise the branch output is
        computed first."""
        junction = self.junction
        # a captured graph (tracing, export, torch.compile) gets the parts
        # one by one: FLOP counters see the norm and the activation
        traced = capturing_graph()
        norm = means = None
        if self.last_norm is not None and self.reads_descriptors and \
                not self.acts_after_last_norm and not traced:
            # a norm on running statistics needs only the plane means of
            # its input, which the branch may have for less
            if batch_statistics(self.last_norm):
                c = self.residual_pre_norm(x)
            else:
                c, means = self.residual_pre_norm_means(x)
            if foldable_batchnorm(self.last_norm, c):
                y, norm = c, self.last_norm
            else:
                y, means = self.after_last_norm(self.last_norm(c)), None
        else:
            y = self.residual(x)
        if traced:
            out = junction(self.drop_path(y), inbounds, descriptors)
            return self.out_act(out)
        relu = isinstance(self.out_act, nn.ReLU)
        out = junction(
            y,
            inbounds,
            descriptors,
            norm=norm,
            scale=self._drop_path_scale(y),
            relu=relu,
            norm_input_means=means)
        return out if relu else self.out_act(out)

    def forward(self,
                x: Tensor,
                inbounds: Sequence[Tensor],
                descriptors: Optional[Sequence[Tensor]] = None) -> Tensor:
        """Block output.

        Args:
            x (Tensor): Block input (after ``enter``).
            inbounds (Sequence[Tensor]): The entries ``inbound_indices``,
                aligned to the block's output.
            descriptors (Sequence[Tensor], optional): Their global
                descriptors (gated junctions).
        """
        n = len(inbounds)

        def _inner_forward(x, *maps):
            return self._junction_forward(x, maps[:n], maps[n:] or None)

        maps = (*inbounds, *(descriptors or ()))
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, *maps, use_reentrant=False)
        else:
            out = _inner_forward(x, *maps)
        if self.pool_placement == 'post':
            out = self.pool(out)
        return out


class BasicBlock(RoutedBlock):
    """ResNet basic block (two 3x3 convs), MMDetection's key layout.

    Args:
        inplanes (int): Input channels.
        planes (int): Output channels.
        stride (int): Stride of the first conv. Defaults to 1.
        dilation (int): Dilation of the convs. Defaults to 1.
        conv_cfg (dict, optional): Conv config. Defaults to None.
        norm_cfg (dict): Norm config. Defaults to BN.
        dcn (dict, optional): Not supported by the basic block.
        style (str): 'pytorch' or 'caffe'; no effect on a basic block.
        plugins (list[dict], optional): Not supported by the basic block.
        **kwargs: :class:`RoutedBlock` arguments (``entry_index``,
            ``inbound_indices``, ``junction``, ``downsample`` ...).

    Example:
        >>> import torch
        >>> from mmgate.models.layers import GateModule
        >>> block = BasicBlock(8, 8, entry_index=1, inbound_indices=[1, 0],
        ...                    junction=GateModule(8, 2))
        >>> x = torch.rand(2, 8, 4, 4)
        >>> block(x, [x, torch.rand(2, 8, 4, 4)],
        ...       [x.mean((2, 3), True)] * 2).shape
        torch.Size([2, 8, 4, 4])
    """
    expansion = 1

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 stride: int = 1,
                 dilation: int = 1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 dcn: Optional[dict] = None,
                 style: str = 'pytorch',
                 plugins: Optional[List[dict]] = None,
                 **kwargs) -> None:
        if dcn is not None:
            raise ValueError('dcn is not supported by BasicBlock (only by '
                             "Bottleneck's 3x3 conv)")
        if plugins:
            raise ValueError('plugins are not supported by BasicBlock (as in '
                             'MMDetection: only bottlenecks take them)')
        super().__init__(**kwargs)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, planes, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, planes, postfix=2)
        self.conv1 = build_conv_layer(
            conv_cfg,
            inplanes,
            planes,
            3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=False)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(
            conv_cfg, planes, planes, 3, padding=1, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)

    norm1, norm2 = _norm(1), _norm(2)
    last_norm = _norm(2)

    def residual_pre_norm(self, x: Tensor) -> Tensor:
        return self.conv2(self.relu(self.norm1(self.conv1(x))))


class Bottleneck(RoutedBlock):
    """ResNet / ResNeXt bottleneck (1x1, 3x3, 1x1), MMDetection's layout.

    Args:
        inplanes (int): Input channels.
        planes (int): Base channels; the output has ``planes * 4``.
        stride (int): Stride of the block. Defaults to 1.
        dilation (int): Dilation of the 3x3 conv. Defaults to 1.
        style (str): 'pytorch' puts the stride on the 3x3 conv, 'caffe' on
            the first 1x1. Defaults to 'pytorch'.
        groups (int): Groups of the 3x3 conv (ResNeXt cardinality).
        base_width (int): Width per group (ResNeXt).
        base_channels (int): Base channels of the backbone (ResNeXt width
            rule ``floor(planes * base_width / base_channels) * groups``).
        conv_cfg (dict, optional): Conv config. Defaults to None.
        norm_cfg (dict): Norm config. Defaults to BN.
        dcn (dict, optional): Conv config of the 3x3 conv (DCN or any
            registered conv), as in MMDetection.
        plugins (list[dict], optional): Plugin configs (ContextBlock,
            NonLocal2d, GeneralizedAttention ...) each with a ``position``
            (``after_conv1/2/3``) and an optional ``postfix``; named and
            placed as in MMDetection's ``Bottleneck`` (after_conv3: after the
            last norm, before the junction).
        **kwargs: :class:`RoutedBlock` arguments.
    """
    expansion = 4

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 stride: int = 1,
                 dilation: int = 1,
                 style: str = 'pytorch',
                 groups: int = 1,
                 base_width: int = 4,
                 base_channels: int = 64,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 dcn: Optional[dict] = None,
                 plugins: Optional[List[dict]] = None,
                 **kwargs) -> None:
        if style not in ('pytorch', 'caffe'):
            raise ValueError(
                f"style must be 'pytorch' or 'caffe', got {style!r}")
        if dcn is not None and not isinstance(dcn, dict):
            raise TypeError(f'dcn must be None or a dict, got {type(dcn)}')
        super().__init__(**kwargs)
        conv1_stride, conv2_stride = (1, stride) if style == 'pytorch' \
            else (stride, 1)
        width = planes if groups == 1 else \
            (planes * base_width // base_channels) * groups
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
                if conv_cfg is not None:
                    raise ValueError('conv_cfg must be None when dcn is set')
                conv2_cfg = dcn
        self.conv2 = build_conv_layer(
            conv2_cfg,
            width,
            width,
            3,
            stride=conv2_stride,
            padding=dilation,
            dilation=dilation,
            groups=groups,
            bias=False)
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(
            conv_cfg, width, planes * self.expansion, 1, bias=False)
        self.add_module(self.norm3_name, norm3)
        self.relu = nn.ReLU(inplace=True)
        widths = dict(
            after_conv1=width,
            after_conv2=width,
            after_conv3=planes * self.expansion)
        self.plugin_names = {position: [] for position in widths}
        for plugin in plugins or ():
            plugin = dict(plugin)
            position = plugin.pop('position')
            name, layer = build_plugin_layer(
                plugin,
                in_channels=widths[position],
                postfix=plugin.pop('postfix', ''))
            if hasattr(self, name):
                raise ValueError(f'duplicate plugin {name}: give each a '
                                 'postfix')
            self.add_module(name, layer)
            self.plugin_names[position].append(name)

    def _plugins(self, x: Tensor, position: str) -> Tensor:
        for name in self.plugin_names[position]:
            x = getattr(self, name)(x)
        return x

    def after_last_norm(self, y: Tensor) -> Tensor:
        return self._plugins(y, 'after_conv3')

    @property
    def acts_after_last_norm(self) -> bool:
        return bool(self.plugin_names['after_conv3'])

    norm1, norm2, norm3 = _norm(1), _norm(2), _norm(3)
    last_norm = _norm(3)

    def _conv3_input(self, x: Tensor) -> Tensor:
        x = self._plugins(self.relu(self.norm1(self.conv1(x))), 'after_conv1')
        return self._plugins(
            self.relu(self.norm2(self.conv2(x))), 'after_conv2')

    def residual_pre_norm(self, x: Tensor) -> Tensor:
        return self.conv3(self._conv3_input(x))

    def residual_pre_norm_means(self,
                                x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """``conv3``'s output and, for a plain 1x1 conv, its plane means
        from its input's: a 1x1 conv without bias commutes with the global
        average, and its input is a quarter as wide."""
        h = self._conv3_input(x)
        conv = self.conv3
        if not _is_pointwise(conv):
            return conv(h), None
        # taken before the conv: in backward, autograd then adds their
        # broadcast gradient into the conv's input gradient in place
        means = plane_moments(h, with_var=False)[0]
        return conv(h), F.linear(means, conv.weight.flatten(1))


class RoutedStage(Sequential):
    """A stage of :class:`RoutedBlock` s: the one stage loop of every family.

    ``forward(x)`` runs the stage with a router of its own (the Skip and the
    plain pattern, whose entries live within a stage); a backbone whose
    blocks read across stages (the Dense pattern) passes one router to all
    its stages.
    """

    def forward(self,
                x: Tensor,
                router: Optional[InboundRouter] = None) -> Tensor:
        router = InboundRouter(self) if router is None else router
        for block in self:
            x = router.step(block, x)
        return x
