"""The Gate Module: the junction that ends every gated residual block.

A plain residual block ends with ``act(y + x)``. A gated block ends with::

    out = sigmoid(g_0) * y + sum_k softmax_k(g_1, ..., g_n) * x_k

where ``y`` is the block's residual branch, ``x_1 .. x_n`` are earlier feature
maps (its *inbounds*, already aligned to ``y``'s shape) and the logits ``g``
come from an SE-like MLP over the global-average-pooled ``y`` and inbounds.
Which earlier maps a block reads is decided by the inbound router
(``router.py``: the Skip pattern or DenseResNet's "last N"); this module only
mixes what it is given.

The pooled descriptors are computed per tensor (the GAP of a concatenation is
the concatenation of the GAPs), so no full-size concatenation is ever built,
and a backbone that reuses an inbound in several blocks can pass its cached
descriptor instead of pooling it again.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmgate.ops import capturing_graph, fused_junction, plane_moments
from mmgate.registry import MODELS
from .norm import build_norm, fold_batchnorm, foldable_batchnorm

__all__ = [
    'GateModule', 'gate_cfg_of', 'gate_norm_of', 'gate_hidden_channels',
    'global_descriptor'
]


def gate_hidden_channels(channels: int, reduction: int) -> int:
    """Width M of the gate MLP: ``ceil(max(C // reduction, 1) / 8) * 8``.

    >>> [gate_hidden_channels(c, 8) for c in (64, 256, 2048)]
    [8, 32, 256]
    """
    return math.ceil(max(channels // reduction, 1) / 8) * 8


def gate_norm_of(norm_cfg: dict) -> dict:
    """The gates' norm when a backbone's ``gate_norm_cfg`` is not given:
    ``norm_cfg`` itself when it is a BatchNorm (BN, SyncBN, ...: type,
    momentum, eps and ``requires_grad`` follow the backbone), else a BN with
    ``norm_cfg``'s ``requires_grad`` (a GroupNorm over a pooled vector of a
    few channels per group degenerates).

    >>> gate_norm_of(dict(type='SyncBN', requires_grad=False))
    {'type': 'SyncBN', 'requires_grad': False}
    >>> gate_norm_of(dict(type='GN', num_groups=32))
    {'type': 'BN', 'requires_grad': True}
    """
    kind = norm_cfg.get('type')
    if isinstance(kind, str) and kind.endswith(('BN', 'BN1d', 'BN2d')) \
            or isinstance(kind, type) and issubclass(kind, _BatchNorm):
        return dict(norm_cfg)
    return dict(type='BN', requires_grad=norm_cfg.get('requires_grad', True))


def gate_cfg_of(reduction: int = 8,
                norm_cfg: dict = dict(type='BN', requires_grad=True),
                act_cfg: dict = dict(type='ReLU'),
                lean: bool = False) -> dict:
    """The ``gate_cfg`` of every block of a backbone (the
    :class:`GateModule` options but the shapes) from the backbone's
    ``gate_reduction``, ``gate_norm_cfg``, ``gate_act_cfg`` and
    ``gate_lean`` arguments.

    >>> cfg = gate_cfg_of(4, gate_norm_of(dict(type='GN', num_groups=8)))
    >>> gate = GateModule(channels=16, num_inbounds=2, **cfg)
    >>> type(gate.norm).__name__, gate.conv1.out_channels
    ('BatchNorm2d', 8)
    """
    return dict(
        reduction=reduction, norm_cfg=norm_cfg, act_cfg=act_cfg, lean=lean)


def global_descriptor(x: Tensor) -> Tensor:
    """Global average pool to ``(B, C, 1, 1)``; half precision inputs are
    accumulated in fp32. Its gradient reaches ``x`` as a broadcast view
    (``plane_moments``; plain ops while a graph is captured), not as a
    full-size map."""
    return plane_moments(x, with_var=False)[0].view(*x.shape[:2], 1, 1)


@MODELS.register_module()
class GateModule(BaseModule):
    """Gate Module of SkipResNet / DenseResNet.

    Args:
        channels (int): Channels C of the residual branch ``y`` and of every
            (aligned) inbound.
        num_inbounds (int): Number n of earlier feature maps mixed in.
        reduction (int): The MLP width is
            ``ceil(max(C // reduction, 1) / 8) * 8``. Defaults to 8.
        descriptor_channels (int, optional): Channels of the concatenated
            descriptor ``[GAP(y), GAP(x_1), ...]`` when the inbounds'
            descriptors are taken before channel alignment (DenseResNet).
            Defaults to ``C * (1 + n)``.
        norm_cfg (dict): Norm after the first 1x1 conv. It sees 1x1 maps, so
            BN statistics come from the batch alone; with a batch of one
            image a BN uses its running statistics (``_norm``). Defaults to
            BN.
        act_cfg (dict): Activation inside the MLP. Defaults to ReLU.
        lean (bool): Drop the dead softmax slot of a single-inbound gate
            (its weight is always 1). The published weights keep it, so the
            default is False.
        softmax_mask (Tensor, optional): Bool ``(n, C)``; ``True`` marks an
            (inbound, channel) slot that is zero padding (DenseResNet's
            channel alignment, ``router.padding_mask``) and is kept out of the
            softmax, so the weights of the real inbounds of every channel
            sum to 1. Stored as a non-persistent buffer: the state dict is
            the same with or without it. Defaults to None (plain softmax).
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> gate = GateModule(channels=16, num_inbounds=2)
        >>> y, x1, x2 = (torch.rand(2, 16, 8, 8) for _ in range(3))
        >>> gate(y, [x1, x2]).shape
        torch.Size([2, 16, 8, 8])
    """

    # a junction that reads global descriptors (see ``RoutedBlock``)
    gated = True

    def __init__(self,
                 channels: int,
                 num_inbounds: int,
                 reduction: int = 8,
                 descriptor_channels: Optional[int] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: dict = dict(type='ReLU'),
                 lean: bool = False,
                 init_cfg: Optional[dict] = None,
                 softmax_mask: Optional[Tensor] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        assert channels >= 1, f'channels must be >= 1, got {channels}'
        assert num_inbounds >= 1, \
            f'a gate needs at least one inbound, got {num_inbounds}'
        assert reduction >= 1, f'reduction must be >= 1, got {reduction}'
        self.channels = channels
        self.num_inbounds = num_inbounds
        self.lean = lean
        # Output slots of conv2: [y, x_1, ..., x_n]; a lean single-inbound
        # gate keeps only the sigmoid slot.
        self.num_slots = 1 if (lean and num_inbounds == 1) \
            else 1 + num_inbounds
        if descriptor_channels is None:
            descriptor_channels = channels * (1 + num_inbounds)
        hidden = gate_hidden_channels(channels, reduction)
        self.conv1 = nn.Conv2d(descriptor_channels, hidden, 1, bias=False)
        # A fixed attribute name keeps the weight keys the same for BN, GN,
        # SyncBN or LN (``gate.norm.*``).
        self.norm = build_norm(norm_cfg, hidden)
        self.act = build_activation_layer(act_cfg)
        self.conv2 = nn.Conv2d(hidden, self.num_slots * channels, 1, bias=True)
        if softmax_mask is not None:
            softmax_mask = torch.as_tensor(softmax_mask, dtype=torch.bool)
            if softmax_mask.shape != (num_inbounds, channels):
                raise ValueError(
                    'softmax_mask must have shape (num_inbounds, channels) = '
                    f'{(num_inbounds, channels)}, got '
                    f'{tuple(softmax_mask.shape)}')
        self.register_buffer('softmax_mask', softmax_mask, persistent=False)
        # Set by analysis tools: keep the last gate values for inspection.
        self.record = False
        self.last_gates: Optional[Tuple[Tensor, Optional[Tensor]]] = None

    def _norm(self, h: Tensor) -> Tensor:
        """``self.norm(h)``, except for a BatchNorm training on a batch of one
        image: a pooled vector has one value per channel, so there are no
        batch statistics; it is normalised with the running ones (as in
        eval mode, which the running statistics then keep following). The
        backbone's own BNs see ``H * W`` values and need no such rule."""
        norm = self.norm
        if (h.size(0) == 1 and norm.training and isinstance(norm, _BatchNorm)
                and not isinstance(norm, nn.SyncBatchNorm)
                and norm.track_running_stats):
            return F.batch_norm(h, norm.running_mean, norm.running_var,
                                norm.weight, norm.bias, False, 0., norm.eps)
        return norm(h)

    def gate_weights(self, descriptor: Tensor) -> Tuple[Tensor, Tensor]:
        """Gate values from the concatenated descriptor.

        Args:
            descriptor (Tensor): ``(B, descriptor_channels, 1, 1)``.

        Returns:
            tuple: ``sigmoid`` gate of ``y``, shape ``(B, C)``, and softmax
            weights of the inbounds, shape ``(B, n, C)`` (summing to 1 over
            ``n``).
        """
        if capturing_graph():
            # the convs as such: FLOP counters and exporters see conv ops
            g = self.conv2(self.act(self._norm(self.conv1(descriptor))))
        else:
            # 1x1 convs on 1x1 maps are matrix products; as such they skip
            # the convolution machinery (2.5-6x faster on a CPU)
            h = F.linear(
                descriptor.flatten(1), self.conv1.weight.flatten(1),
                self.conv1.bias)  # a bias after fuse_conv_bn
            h = self.act(self._norm(h.view(*h.shape, 1, 1)))
            g = F.linear(
                h.flatten(1), self.conv2.weight.flatten(1), self.conv2.bias)
        g = g.view(g.size(0), self.num_slots, self.channels)
        gate_y = torch.sigmoid(g[:, 0])
        if self.num_inbounds == 1:
            # softmax over a single logit is exactly 1 (no gradient either)
            weights = g.new_ones(g.size(0), 1, self.channels)
        else:
            logits = g[:, 1:]
            if self.softmax_mask is not None:
                # A channel whose inbounds are all padding gets uniform
                # weights on zeros: nothing is mixed in, and no NaN.
                logits = logits.masked_fill(self.softmax_mask,
                                            torch.finfo(logits.dtype).min)
            weights = torch.softmax(logits, dim=1)
        return gate_y, weights

    def forward(self,
                y: Tensor,
                inbounds: Sequence[Tensor],
                inbound_descriptors: Optional[Sequence[Tensor]] = None,
                norm: Optional[nn.Module] = None,
                scale: Optional[Tensor] = None,
                relu: bool = False,
                norm_input_means: Optional[Tensor] = None) -> Tensor:
        """Mix ``y`` with its inbounds.

        Args:
            y (Tensor): Residual branch output, ``(B, C, H, W)``; with
                ``norm``, the input of the branch's last BatchNorm.
            inbounds (Sequence[Tensor]): n maps of ``y``'s shape.
            inbound_descriptors (Sequence[Tensor], optional): Their
                ``(B, C_k, 1, 1)`` global descriptors if already computed
                (or taken from the unaligned originals).
            norm (nn.BatchNorm2d, optional): The branch's last norm, folded
                into the junction (``fold_batchnorm``): ``norm(y)`` is never
                materialised. Only a plain BatchNorm (``foldable_batchnorm``).
            scale (Tensor, optional): ``(B, )`` per-sample factor of the
                branch (drop-path's ``mask / keep_prob``).
            relu (bool): End with a ReLU (fused). Defaults to False.
            norm_input_means (Tensor, optional): ``(B, C)`` plane means of
                ``y`` when ``norm`` is given, uses running statistics and
                the caller has them (``fold_batchnorm``'s ``means``).

        Returns:
            Tensor: ``sigmoid(g_0) * y' + sum_k w_k * x_k`` (ReLU'd with
            ``relu``) with ``y' = scale * norm(y)``, ``(B, C, H, W)``.
        """
        if len(inbounds) != self.num_inbounds:
            raise ValueError(f'this gate mixes {self.num_inbounds} inbounds, '
                             f'got {len(inbounds)}')
        if inbound_descriptors is None:
            inbound_descriptors = [global_descriptor(x) for x in inbounds]
        bn_scale = bn_shift = None
        if norm is not None:
            if not foldable_batchnorm(norm, y):
                raise ValueError('only a plain nn.BatchNorm2d on a float32 / '
                                 f'float64 map folds into the gate, got '
                                 f'{type(norm).__name__} on {y.dtype}')
            bn_scale, bn_shift, means, y = fold_batchnorm(
                norm, y, norm_input_means)
            desc_y = means * bn_scale + bn_shift
        else:
            if norm_input_means is not None:
                raise ValueError('norm_input_means is for a folded norm; '
                                 'no norm was given')
            desc_y = global_descriptor(y).flatten(1)
        if scale is not None:
            scale = scale.view(-1, 1).to(desc_y.dtype)
            desc_y = desc_y * scale
        descriptor = torch.cat([
            desc_y.view(*desc_y.shape, 1, 1).to(inbound_descriptors[0].dtype),
            *inbound_descriptors
        ],
                               dim=1)
        gate_y, weights = self.gate_weights(descriptor)
        if self.record:
            self.last_gates = (gate_y.detach(), weights.detach())
        # per plane: out = A * y + B + sum_k W_k * x_k
        A, B = gate_y, None
        if bn_scale is not None:
            A, B = gate_y * bn_scale, gate_y * bn_shift
        if scale is not None:
            A = A * scale
            B = None if B is None else B * scale
        # inference with a folded norm: y is the norm's input, which nothing
        # reads afterwards: the output takes its memory
        inplace = norm is not None and not torch.is_grad_enabled()
        return fused_junction(y, A, B, weights, inbounds, relu, inplace)
