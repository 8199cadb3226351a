"""Channels-first LayerNorm, as ConvNeXt uses it on (B, C, H, W) maps, and a
BatchNorm folded into the per-plane affine map a gated junction applies."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor

from mmgate.ops import shared_map
from mmgate.registry import MODELS

__all__ = [
    'LayerNorm2d', 'build_norm', 'foldable_batchnorm', 'batch_statistics',
    'fold_batchnorm'
]


@MODELS.register_module('LN2d')
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dimension of a ``(B, C, H, W)`` tensor.

    Args:
        num_channels (int): Channels C.
        eps (float): Defaults to 1e-6 (ConvNeXt's value).

    Example:
        >>> import torch
        >>> LayerNorm2d(8)(torch.rand(2, 8, 4, 4)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, num_channels: int, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(num_channels, eps=eps, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        assert x.dim() == 4, f'LayerNorm2d expects (B, C, H, W), got {x.shape}'
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)


def build_norm(cfg: dict, num_channels: int) -> nn.Module:
    """A norm module from a config: ``LN2d`` (channels-first LayerNorm) is
    built here, so that it does not depend on the default scope, and honours
    ``requires_grad`` as mmcv does; anything else goes through mmcv's
    ``build_norm_layer`` (BN, SyncBN, GN, LN ...).
    """
    cfg = dict(cfg)
    if cfg.get('type') == 'LN2d':
        cfg.pop('type')
        requires_grad = cfg.pop('requires_grad', True)
        norm = LayerNorm2d(num_channels, **cfg)
        for param in norm.parameters():
            param.requires_grad = requires_grad
        return norm
    return build_norm_layer(cfg, num_channels)[1]


def foldable_batchnorm(norm: nn.Module, c: Tensor) -> bool:
    """Whether :func:`fold_batchnorm` computes ``norm(c)``: a plain affine
    ``nn.BatchNorm2d`` (not SyncBN, GN ...) on a float32 / float64 map with
    more than one value per channel."""
    return (type(norm) is nn.BatchNorm2d and norm.affine
            and c.dtype in (torch.float32, torch.float64)
            and c.numel() > c.size(1))


def batch_statistics(norm: nn.Module) -> bool:
    """Whether a norm normalises with statistics of its input (a BatchNorm
    in training mode or without running statistics; GroupNorm, LayerNorm)
    rather than with running ones."""
    return norm.training or not getattr(norm, 'track_running_stats', False)


def fold_batchnorm(norm: nn.BatchNorm2d,
                   c: Tensor,
                   means: Optional[Tensor] = None
                   ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """A BatchNorm as ``norm(c) == c * scale + shift`` per channel, without
    computing ``norm(c)``, plus the mean of every (sample, channel) plane of
    ``c`` (the global descriptor of ``norm(c)`` is
    ``means * scale + shift``).

    Training mode uses the batch statistics and updates the running ones
    exactly as ``nn.BatchNorm2d`` does (momentum, or the cumulative average
    with ``momentum=None``; unbiased running variance); eval mode uses the
    running statistics. Gradients reach ``c`` (through the statistics and
    the plane means), ``weight`` and ``bias``.

    Args:
        norm (nn.BatchNorm2d): The norm.
        c (Tensor): Its ``(N, C, H, W)`` input.
        means (Tensor, optional): The ``(N, C)`` plane means of ``c`` if the
            caller has them (a 1x1 conv's output: from its input's), for a
            norm on running statistics (:func:`batch_statistics` False);
            then ``c`` is not read here. Defaults to None.

    Returns:
        tuple: ``scale`` and ``shift`` of shape ``(C, )``, ``means`` of shape
        ``(N, C)``, and ``c``, as the :func:`~mmgate.ops.shared_map` that
        took its moments when it did: a junction that computes with it adds
        its gradient into the moments' (one pass, no second full-size
        gradient).

    Example:
        >>> bn = nn.BatchNorm2d(3)
        >>> c = torch.randn(2, 3, 4, 4)
        >>> scale, shift, means, c = fold_batchnorm(bn, c)
        >>> y = c * scale[:, None, None] + shift[:, None, None]
        >>> torch.allclose(y, bn(c), atol=1e-6)
        True
    """
    batch_stats = batch_statistics(norm)
    if means is not None and batch_stats:
        raise ValueError('fold_batchnorm: plane means were given, but the '
                         'norm uses batch statistics (it needs c itself)')
    if means is None:
        c, means, var_nc = shared_map(c, with_var=batch_stats)
    if batch_stats:
        mean = means.mean(0)
        var = var_nc.mean(0) + (means - mean).square().mean(0)
        if norm.training and norm.track_running_stats:
            _update_running_stats(norm, mean.detach(), var.detach(),
                                  c.numel() // c.size(1))
    else:
        mean, var = norm.running_mean, norm.running_var
    scale = norm.weight * torch.rsqrt(var + norm.eps)
    shift = norm.bias - mean * scale
    return scale.to(c.dtype), shift.to(c.dtype), means, c


def _update_running_stats(norm: nn.BatchNorm2d, mean: Tensor, var: Tensor,
                          count: int) -> None:
    """``nn.BatchNorm2d``'s running-statistics update for one batch."""
    norm.num_batches_tracked.add_(1)
    factor: Optional[float] = norm.momentum
    if factor is None:  # cumulative moving average
        factor = 1.0 / float(norm.num_batches_tracked)
    with torch.no_grad():
        norm.running_mean.lerp_(mean.to(norm.running_mean.dtype), factor)
        norm.running_var.lerp_(
            (var * (count / (count - 1))).to(norm.running_var.dtype), factor)
