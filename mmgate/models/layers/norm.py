"""Channels-first LayerNorm, as ConvNeXt uses it on (B, C, H, W) maps."""
import torch.nn as nn
from mmcv.cnn import build_norm_layer
import torch.nn.functional as F
from torch import Tensor

from mmgate.registry import MODELS

__all__ = ['LayerNorm2d', 'build_norm']


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
