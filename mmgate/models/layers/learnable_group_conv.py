"""Fully learnable group convolution (FLGC, Wang et al., "Fully Learnable
Group Convolution for Acceleration of Deep Neural Networks", CVPR 2019) with
feature duplication (an extension of mmgate: important channels are shared
by several groups).

For a conv with ``C_in`` inputs, ``C_out`` filters and ``G`` groups, FLGC
learns two assignment logit matrices, ``S`` (``C_in x G``, which group reads
each input channel) and ``T`` (``C_out x G``, which group each filter belongs
to). The forward pass uses the hard one-hot of the row-wise argmax of their
softmaxes and the mask ``M = onehot(T) @ onehot(S)^T`` (``C_out x C_in``,
``M[o, c] = 1`` when filter ``o`` reads channel ``c``); the conv runs with
``weight * M``. The backward pass is straight-through: the hard one-hots
are ``h + p - p.detach()``, so the mask's gradient reaches the softmax
probabilities and the logits. Groups may end up unequal, or empty.

Duplication: after the assignment, every group ``g`` gets a
threshold, the mean of the top-k (k = 3) affinities to ``g``; every channel
outside ``g`` whose affinity to ``g`` exceeds the threshold is duplicated
into ``g`` (it is read by two or more groups). Taken literally (top-3 of the
members' softmax probabilities) the rule seldom fires, so the statistic is
configurable: ``dup_source`` ('prob' or 'logit'), ``dup_reference``
('members': top-k among the group's members; 'column': top-k of the whole
column) and ``dup_topk``. The duplicates are computed from detached
affinities inside every forward, so training sees the topology that
inference uses; each layer keeps its count in ``num_duplicates`` and
:class:`mmgate.engine.LearnableGroupStatsHook` logs them.

Deployment: :meth:`LearnableGroupConv2d.pack` gathers each group's input
channels and runs one conv per group (:class:`PackedGroupConv2d`, exact, and
the only form that saves compute); :meth:`LearnableGroupConv2d.fold` gives a
plain conv with the mask folded into the weight (export).
:func:`deploy_learnable_group_convs` converts a whole model.

Exclude the logits from weight decay:
``paramwise_cfg=dict(custom_keys={'group_logits': dict(decay_mult=0.)})``.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmgate.registry import MODELS

__all__ = [
    'LearnableGroupConv2d', 'PackedGroupConv2d',
    'deploy_learnable_group_convs', 'learnable_group_stats'
]


@MODELS.register_module()
class LearnableGroupConv2d(nn.Conv2d):
    """Conv2d whose grouping of input channels and filters is learnt.

    The weight is dense (``C_out x C_in x k x k``, the keys of a plain conv)
    and is masked in every forward; :meth:`pack` turns the layer into real
    per-group convs for inference.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        bias, padding_mode, device, dtype: As ``nn.Conv2d``.
        groups (int): The grouping a block asks for (ResNeXt's cardinality).
            Used as the number of learnable groups when ``num_groups`` is not
            given; the conv itself is always dense. Defaults to 1.
        num_groups (int, optional): Number G of learnable groups, at most
            ``min(C_in, C_out)``. Defaults to ``groups``.
        duplicate (bool): Apply the feature duplication. Defaults to False.
        dup_topk (int): k of the top-k threshold. Defaults to 3.
        dup_source (str): Affinity used by the rule: ``'prob'`` (softmax of
            ``S``, the rule as first stated) or ``'logit'``. Defaults to
            'prob'.
        dup_reference (str): Threshold from the top-k of the group's
            ``'members'`` (the rule as first stated) or of the whole
            ``'column'``. Defaults to 'members'.

    Example:
        >>> conv = LearnableGroupConv2d(16, 32, 3, padding=1, num_groups=4)
        >>> x = torch.rand(2, 16, 8, 8)
        >>> conv(x).shape
        torch.Size([2, 32, 8, 8])
        >>> packed = conv.pack()
        >>> torch.allclose(packed(x), conv(x), atol=1e-5)
        True
    """

    # new to a network of plain convs: a pretrained checkpoint lacks them
    optional_pretrained_params = ('in_group_logits', 'out_group_logits')

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size,
                 stride=1,
                 padding=0,
                 dilation=1,
                 groups: int = 1,
                 bias: bool = True,
                 padding_mode: str = 'zeros',
                 device=None,
                 dtype=None,
                 num_groups: Optional[int] = None,
                 duplicate: bool = False,
                 dup_topk: int = 3,
                 dup_source: str = 'prob',
                 dup_reference: str = 'members') -> None:
        if num_groups is None:
            num_groups = groups
        elif groups not in (1, num_groups):
            raise ValueError(
                f'LearnableGroupConv2d got groups={groups} from its caller '
                f'and num_groups={num_groups} from its config; it learns '
                'its own grouping, give one of them (or equal values)')
        if not isinstance(num_groups, int) or not (1 <= num_groups <= min(
                in_channels, out_channels)):
            raise ValueError(
                f'num_groups must be an int in [1, min(in_channels, '
                f'out_channels)] = [1, {min(in_channels, out_channels)}], '
                f'got {num_groups!r}')
        if not isinstance(duplicate, bool):
            raise TypeError(f'duplicate must be a bool, got {duplicate!r}')
        if not isinstance(dup_topk, int) or dup_topk < 1:
            raise ValueError(f'dup_topk must be an int >= 1, got {dup_topk!r}')
        if dup_source not in ('prob', 'logit'):
            raise ValueError("dup_source must be 'prob' or 'logit', got "
                             f'{dup_source!r}')
        if dup_reference not in ('members', 'column'):
            raise ValueError("dup_reference must be 'members' or 'column', "
                             f'got {dup_reference!r}')
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            1,
            bias,
            padding_mode,
            device=device,
            dtype=dtype)
        self.num_groups = num_groups
        self.duplicate = bool(duplicate)
        self.dup_topk = dup_topk
        self.dup_source = dup_source
        self.dup_reference = dup_reference
        self.in_group_logits = nn.Parameter(
            torch.empty(in_channels, num_groups, device=device, dtype=dtype))
        self.out_group_logits = nn.Parameter(
            torch.empty(out_channels, num_groups, device=device, dtype=dtype))
        self.register_buffer(
            'num_duplicates',
            torch.zeros((), dtype=torch.long, device=device),
            persistent=False)
        self.reset_assignment()

    def reset_assignment(self) -> None:
        """Start from the contiguous grouping of a standard group conv
        (channel ``c`` in group ``c * G // C``) with a logit margin of 1."""
        with torch.no_grad():
            for logits in (self.in_group_logits, self.out_group_logits):
                n = logits.size(0)
                group = torch.arange(n, device=logits.device) * \
                    self.num_groups // n
                logits.copy_(F.one_hot(group, self.num_groups))

    def _duplicates(self, logits: Tensor, probs: Tensor,
                    members: Tensor) -> Tensor:
        """0/1 ``(C_in, G)`` of channels duplicated into groups they are
        not members of (no gradient)."""
        stat = probs if self.dup_source == 'prob' else logits
        if self.dup_reference == 'members':
            pool = stat.masked_fill(~members, float('-inf'))
        else:
            pool = stat
        k = min(self.dup_topk, stat.size(0))
        top = pool.topk(k, dim=0).values  # (k, G)
        finite = torch.isfinite(top)
        count = finite.sum(dim=0)
        threshold = top.masked_fill(~finite,
                                    0.).sum(dim=0) / count.clamp(min=1)
        # an empty group has no members to set a threshold
        threshold = threshold.masked_fill(count == 0, float('inf'))
        return (stat > threshold) & ~members

    def assignments(self) -> Tuple[Tensor, Tensor]:
        """Straight-through assignments ``(C_in, G)`` and ``(C_out, G)``:
        hard 0/1 values in forward (duplicates included), the softmax's
        gradient in backward."""
        p_in = torch.softmax(self.in_group_logits.float(), dim=1)
        p_out = torch.softmax(self.out_group_logits.float(), dim=1)
        h_in = F.one_hot(p_in.argmax(dim=1), self.num_groups).bool()
        h_out = F.one_hot(p_out.argmax(dim=1), self.num_groups).bool()
        if self.duplicate:
            with torch.no_grad():
                dup = self._duplicates(self.in_group_logits.detach().float(),
                                       p_in.detach(), h_in)
            self.num_duplicates.copy_(dup.sum())
            h_in = h_in | dup
        a_in = h_in.to(p_in.dtype) + p_in - p_in.detach()
        a_out = h_out.to(p_out.dtype) + p_out - p_out.detach()
        return a_in, a_out

    def mask(self) -> Tensor:
        """``(C_out, C_in)`` 0/1 connection mask (straight-through), fp32
        also under autocast."""
        with torch.autocast(
                device_type=self.weight.device.type, enabled=False):
            a_in, a_out = self.assignments()
            return a_out @ a_in.t()

    def forward(self, x: Tensor) -> Tensor:
        mask = self.mask().to(self.weight.dtype)
        return self._conv_forward(x, self.weight * mask[:, :, None, None],
                                  self.bias)

    @torch.no_grad()
    def group_members(self) -> List[Tuple[Tensor, Tensor]]:
        """``(input channels, filters)`` of every group, duplicates
        included, as index tensors (possibly empty)."""
        a_in, a_out = self.assignments()
        return [(a_in[:, g].nonzero().flatten(), a_out[:,
                                                       g].nonzero().flatten())
                for g in range(self.num_groups)]

    def _dense_conv(self, in_channels: int, out_channels: int) -> nn.Conv2d:
        """A dense conv with this layer's geometry, bias, device and
        dtype."""
        return nn.Conv2d(
            in_channels,
            out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            groups=1,
            bias=self.bias is not None,
            padding_mode=self.padding_mode,
            device=self.weight.device,
            dtype=self.weight.dtype)

    @torch.no_grad()
    def fold(self) -> nn.Conv2d:
        """A plain dense conv with the mask folded into its weight."""
        conv = self._dense_conv(self.in_channels, self.out_channels)
        conv.weight.copy_(self.weight *
                          self.mask().to(self.weight.dtype)[:, :, None, None])
        if self.bias is not None:
            conv.bias.copy_(self.bias)
        return conv

    @torch.no_grad()
    def pack(self) -> 'PackedGroupConv2d':
        """Per-group convs on gathered channels, equal to this layer."""
        convs, in_index, out_index, idle = [], [], [], []
        for channels, filters in self.group_members():
            if filters.numel() == 0:
                continue  # channels nobody reads
            if channels.numel() == 0:
                idle.append(filters)  # filters without input: bias only
                continue
            conv = self._dense_conv(channels.numel(), filters.numel())
            conv.weight.copy_(self.weight[filters][:, channels])
            if self.bias is not None:
                conv.bias.copy_(self.bias[filters])
            convs.append(conv)
            in_index.append(channels)
            out_index.append(filters)
        idle = torch.cat(idle) if idle else None
        idle_bias = None
        if idle is not None and self.bias is not None:
            idle_bias = self.bias[idle].detach().clone()
        return PackedGroupConv2d(
            self.in_channels, self.out_channels, convs, in_index, out_index,
            idle, idle_bias,
            (self.kernel_size, self.stride, self.padding, self.dilation))

    def extra_repr(self) -> str:
        s = super().extra_repr() + f', num_groups={self.num_groups}'
        if self.duplicate:
            s += (f', duplicate=True, dup_topk={self.dup_topk}, '
                  f'dup_source={self.dup_source!r}, '
                  f'dup_reference={self.dup_reference!r}')
        return s


class PackedGroupConv2d(nn.Module):
    """Inference form of a :class:`LearnableGroupConv2d`: one conv per
    non-empty group on its gathered input channels, outputs scattered back to
    the original filter order. Filters of a group without input channels
    output their bias (or zero).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        convs (list[nn.Conv2d]): One conv per group.
        in_index (list[Tensor]): Input channels of each group.
        out_index (list[Tensor]): Filters of each group.
        idle_index (Tensor, optional): Filters of groups without inputs.
        idle_bias (Tensor, optional): Their bias.
        geometry (tuple): ``(kernel_size, stride, padding, dilation)`` of
            the original conv, each a pair (output size of idle filters).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 convs: List[nn.Conv2d], in_index: List[Tensor],
                 out_index: List[Tensor], idle_index: Optional[Tensor],
                 idle_bias: Optional[Tensor], geometry: tuple) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.convs = nn.ModuleList(convs)
        for g, index in enumerate(in_index):
            self.register_buffer(f'in_index{g}', index.clone())
        order = list(out_index) + ([idle_index]
                                   if idle_index is not None else [])
        position = torch.cat(order)
        if sorted(position.tolist()) != list(range(out_channels)):
            raise ValueError('every filter must belong to exactly one group')
        # output channel o is row inverse[o] of the concatenated results
        self.register_buffer('inverse', torch.argsort(position))
        self.num_idle = 0 if idle_index is None else idle_index.numel()
        if idle_bias is not None:
            self.register_buffer('idle_bias', idle_bias.clone())
        else:
            self.idle_bias = None
        self.geometry = geometry

    def output_size(self, h: int, w: int) -> Tuple[int, int]:
        kernel, stride, padding, dilation = self.geometry
        return tuple((size + 2 * p - d * (k - 1) - 1) // s + 1
                     for size, k, s, p, d in zip((
                         h, w), kernel, stride, padding, dilation))

    def forward(self, x: Tensor) -> Tensor:
        outs = [
            conv(x.index_select(1, getattr(self, f'in_index{g}')))
            for g, conv in enumerate(self.convs)
        ]
        if self.num_idle:
            h, w = self.output_size(x.size(2), x.size(3))
            idle = x.new_zeros(x.size(0), self.num_idle, h, w)
            if self.idle_bias is not None:
                idle = idle + self.idle_bias.view(1, -1, 1, 1).to(x.dtype)
            outs.append(idle)
        return torch.cat(outs, dim=1).index_select(1, self.inverse)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'groups={len(self.convs)}, idle_filters={self.num_idle}')


def deploy_learnable_group_convs(model: nn.Module,
                                 mode: str = 'pack') -> nn.Module:
    """Replace every :class:`LearnableGroupConv2d` in ``model`` (in place) by
    its packed per-group form (``mode='pack'``) or by the dense conv with the
    mask folded in (``mode='fold'``); returns ``model``."""
    if mode not in ('pack', 'fold'):
        raise ValueError(f"mode must be 'pack' or 'fold', got {mode!r}")
    for name, child in list(model.named_children()):
        if isinstance(child, LearnableGroupConv2d):
            setattr(model, name,
                    child.pack() if mode == 'pack' else child.fold())
        else:
            deploy_learnable_group_convs(child, mode)
    return model


@torch.no_grad()
def learnable_group_stats(model: nn.Module) -> Dict[str, Dict[str, object]]:
    """Per :class:`LearnableGroupConv2d` of ``model``: the number of
    duplicated channels (as of the last forward) and the input-channel /
    filter count of each group (current assignment)."""
    stats = {}
    for name, m in model.named_modules():
        if isinstance(m, LearnableGroupConv2d):
            members = m.group_members()
            stats[name] = dict(
                duplicates=int(m.num_duplicates),
                in_sizes=[int(c.numel()) for c, _ in members],
                out_sizes=[int(f.numel()) for _, f in members])
    return stats
