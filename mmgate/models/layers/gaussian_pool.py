"""Local pooling guided by global features, with a prior on the pooled value.

Two siblings from Kobayashi's pooling papers share one estimator: the
global average of the input goes through a small 1x1-conv MLP whose outputs
are the per-sample, per-channel parameters of the pooling.

* :class:`GaussianPool2d` (NeurIPS 2019, "Gaussian-based pooling"): inside
  every window ``Y = mu + eta * sigma`` with ``mu`` / ``sigma`` the window's
  mean and (population) standard deviation and ``eta >= 0`` drawn from an
  inverse-softplus Gaussian prior, ``eta = softplus(mu0 + sigma0 * eps)``,
  whose parameters ``mu0``, ``sigma0`` the estimator predicts. Training
  draws ``eps ~ N(0, 1)``; evaluation uses ``eta = softplus(mu0)``. Since
  ``eta * sigma >= 0`` the output never falls below the window mean.
* :class:`MaxEntPool2d` (ICCV 2019, "Global feature guided local pooling"):
  ``y = sum_i x_i exp(l x_i) / sum_j exp(l x_j)`` over each window, with the
  temperature ``l = sigmoid(MLP(GAP(x)))`` per sample and channel.

Window statistics are always computed in fp32 or wider (fp32 for half
inputs, also under autocast: the one-pass variance ``E[x^2] - E[x]^2`` is
useless in bf16; float64 for a float64 model), padded positions
never count (``count_include_pad=False``), and the estimator runs with
autocast disabled. The result is cast back to the input dtype.

:func:`build_prior_pool` builds either (or any class registered in mmgate's
MODELS with the same signature) from a config; the backbones in
``mmgate/models/backbones/prior_pool_resnet.py`` place them.
"""
import math
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmgate.registry import MODELS
from .norm import build_norm

__all__ = [
    'PriorEstimator', 'GaussianPool2d', 'MaxEntPool2d', 'build_prior_pool'
]

_IntPair = Union[int, Tuple[int, int]]


def _pair(value: _IntPair, name: str) -> Tuple[int, int]:
    if isinstance(value, int):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, int) for v in value)):
        raise TypeError(f'{name} must be an int or a pair of ints, '
                        f'got {value!r}')
    return tuple(value)


def _at_least_fp32(x: Tensor) -> torch.dtype:
    """fp32 for half precision and fp32 inputs, float64 for float64."""
    return torch.promote_types(x.dtype, torch.float32)


class PriorEstimator(BaseModule):
    """Pooling parameters from the global feature of the input.

    ``GAP(x) -> conv1x1 (C -> C / reduction) -> norm -> ReLU ->
    conv1x1 (-> C * num_outputs) -> norm``, run in fp32 with autocast off.

    The norms see ``(B, C, 1, 1)`` maps: a BatchNorm in training mode needs
    a batch of two or more (use ``norm_eval``, GN or ``LN2d`` otherwise).

    Args:
        channels (int): Input channels C.
        num_outputs (int): Parameters per channel (2 for the Gaussian
            prior's ``mu0`` / ``sigma0``, 1 for the max-entropy temperature).
        reduction (int): Hidden width ``max(C // reduction, 1)``.
            Defaults to 2.
        norm_cfg (dict): Norm after each conv. Defaults to BN.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> est = PriorEstimator(16, num_outputs=2)
        >>> est(torch.rand(2, 16, 8, 8)).shape
        torch.Size([2, 32, 1, 1])
    """

    def __init__(self,
                 channels: int,
                 num_outputs: int,
                 reduction: int = 2,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(reduction, int) or reduction < 1:
            raise ValueError(
                f'reduction must be an int >= 1, got {reduction!r}')
        if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
            raise TypeError('norm_cfg must be a dict with a "type", got '
                            f'{norm_cfg!r}')
        hidden = max(channels // reduction, 1)
        self.conv1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.norm1 = build_norm(norm_cfg, hidden)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(hidden, channels * num_outputs, 1, bias=False)
        self.norm2 = build_norm(norm_cfg, channels * num_outputs)

    def _check_batch(self, batch: int) -> None:
        for norm in (self.norm1, self.norm2):
            if batch == 1 and isinstance(norm, _BatchNorm) and norm.training:
                raise ValueError(
                    'the prior estimator of a pooling layer normalises '
                    '(B, C, 1, 1) descriptors with BatchNorm, which needs a '
                    'batch of 2 or more in training mode; got a batch of 1. '
                    'Set norm_eval=True on the backbone, use a GN / LN2d '
                    'norm_cfg for the pooling, or train with a bigger batch')

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, C * num_outputs, 1, 1)`` in the dtype of
        the estimator's weights (fp32 unless the model was cast)."""
        self._check_batch(x.size(0))
        with torch.autocast(device_type=x.device.type, enabled=False):
            desc = x.mean(dim=(2, 3), keepdim=True, dtype=_at_least_fp32(x))
            desc = desc.to(self.conv1.weight.dtype)
            z = self.act(self.norm1(self.conv1(desc)))
            return self.norm2(self.conv2(z))


class _GuidedPool2d(BaseModule):
    """Window geometry, estimator and input checks shared by the two
    pooling layers. Subclasses set ``num_outputs`` and define ``pool``."""

    num_outputs = 1

    def __init__(self,
                 channels: int,
                 kernel_size: _IntPair = 2,
                 stride: Optional[_IntPair] = None,
                 padding: _IntPair = 0,
                 ceil_mode: bool = False,
                 reduction: int = 2,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f'channels must be an int >= 1, got {channels!r}')
        self.channels = channels
        self.kernel_size = _pair(kernel_size, 'kernel_size')
        self.stride = _pair(kernel_size if stride is None else stride,
                            'stride')
        self.padding = _pair(padding, 'padding')
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError('kernel_size and stride must be >= 1, got '
                             f'{self.kernel_size} and {self.stride}')
        if min(self.padding) < 0 or any(
                2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError('padding must be in [0, kernel_size / 2], got '
                             f'{self.padding} for kernel {self.kernel_size}')
        self.ceil_mode = bool(ceil_mode)
        self.prior = PriorEstimator(channels, self.num_outputs, reduction,
                                    norm_cfg)

    def extra_repr(self) -> str:
        return (f'{self.channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}, padding={self.padding}, '
                f'ceil_mode={self.ceil_mode}')

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.size(1) != self.channels:
            raise ValueError(f'{type(self).__name__} expects (B, '
                             f'{self.channels}, H, W), got {tuple(x.shape)}')

    def _avg(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            ceil_mode=self.ceil_mode,
            count_include_pad=False)

    def pool(self, x: Tensor, params: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        params = self.prior(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            wide = _at_least_fp32(x)
            out = self.pool(x.to(wide), params.to(wide))
        return out.to(x.dtype)


@MODELS.register_module()
class GaussianPool2d(_GuidedPool2d):
    """Gaussian-based pooling: ``Y = mu + eta * sigma`` per window.

    ``mu`` and ``sigma`` are the mean and population standard deviation of
    the window (``sigma = sqrt(max(E[x^2] - mu^2, eps))``, fp32), and
    ``eta = softplus(mu0 + sigma0 * noise)`` with ``mu0``,
    ``sigma0 = sigmoid(.)`` estimated from ``GAP(x)``. In evaluation mode
    ``eta = softplus(mu0)``, so the layer is deterministic.

    Args:
        channels (int): Channels C of the input (the estimator's width).
        kernel_size (int | tuple[int, int]): Window size. Defaults to 2.
        stride (int | tuple[int, int], optional): Defaults to
            ``kernel_size``.
        padding (int | tuple[int, int]): Zero padding that never counts in
            the statistics. Defaults to 0.
        ceil_mode (bool): Keep partial windows at the bottom/right (a 2x2/2
            pool then gives ``ceil(H / 2)`` like a stride-2 3x3 conv).
            Defaults to False (as PyTorch's pools).
        noise (str): ``'CN'`` draws one ``eps`` per sample and channel,
            ``'HWCN'`` one per output element. Defaults to ``'CN'``.
        reduction (int): Estimator hidden width ``C // reduction``.
            Defaults to 2.
        norm_cfg (dict): Norm inside the estimator (sees 1x1 maps; BN needs a
            batch >= 2 in training). Defaults to BN.
        eps (float): Floor of the window variance. Defaults to 1e-6.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> pool = GaussianPool2d(8, kernel_size=3, stride=2, padding=1)
        >>> _ = pool.eval()
        >>> pool(torch.rand(1, 8, 32, 32)).shape
        torch.Size([1, 8, 16, 16])
    """

    num_outputs = 2

    def __init__(self,
                 channels: int,
                 kernel_size: _IntPair = 2,
                 stride: Optional[_IntPair] = None,
                 padding: _IntPair = 0,
                 ceil_mode: bool = False,
                 noise: str = 'CN',
                 reduction: int = 2,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 eps: float = 1e-6,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(channels, kernel_size, stride, padding, ceil_mode,
                         reduction, norm_cfg, init_cfg)
        if noise not in ('CN', 'HWCN'):
            raise ValueError(f"noise must be 'CN' (one draw per sample and "
                             f"channel) or 'HWCN' (one per element), got "
                             f'{noise!r}')
        if not eps > 0:
            raise ValueError(f'eps must be > 0, got {eps!r}')
        self.noise = noise
        self.eps = float(eps)

    def window_stats(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Mean and standard deviation of every window, in fp32 or wider."""
        x = x.to(_at_least_fp32(x))
        mu = self._avg(x)
        var = self._avg(x * x) - mu * mu
        return mu, var.clamp(min=self.eps).sqrt()

    def prior_params(self, params: Tensor) -> Tuple[Tensor, Tensor]:
        """Split the estimator output into ``mu0`` and ``sigma0``, each
        ``(B, C, 1, 1)``."""
        mu0, sigma0 = params.chunk(2, dim=1)
        return mu0, torch.sigmoid(sigma0)

    def pool(self, x: Tensor, params: Tensor) -> Tensor:
        mu, sigma = self.window_stats(x)
        mu0, sigma0 = self.prior_params(params)
        if self.training:
            shape = mu0.shape if self.noise == 'CN' else mu.shape
            # drawn in fp32 at every precision: a seed gives the same draws
            noise = torch.randn(
                shape, device=mu.device, dtype=torch.float32).to(mu.dtype)
            eta = F.softplus(mu0 + sigma0 * noise)
        else:
            eta = F.softplus(mu0)
        return mu + eta * sigma

    def extra_repr(self) -> str:
        return super().extra_repr() + f', noise={self.noise!r}'


@MODELS.register_module()
class MaxEntPool2d(_GuidedPool2d):
    """Max-entropy pooling: a softmax-weighted window mean
    ``sum_i x_i exp(l x_i) / sum_j exp(l x_j)`` with ``l = sigmoid(.)``
    estimated from ``GAP(x)`` per sample and channel (``l -> 0`` is average
    pooling, large ``l`` approaches max pooling).

    Deterministic; padded positions get zero weight. The window weights are
    a softmax over each window (the per-window maximum is subtracted).

    Args:
        channels (int): Channels C of the input.
        kernel_size (int | tuple[int, int]): Window size. Defaults to 2.
        stride (int | tuple[int, int], optional): Defaults to
            ``kernel_size``.
        padding (int | tuple[int, int]): Padding, never weighted.
        ceil_mode (bool): Keep partial windows. Defaults to False.
        reduction (int): Estimator hidden width ``C // reduction``.
        norm_cfg (dict): Norm inside the estimator. Defaults to BN.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> pool = MaxEntPool2d(8, ceil_mode=True)
        >>> _ = pool.eval()
        >>> pool(torch.rand(1, 8, 15, 15)).shape
        torch.Size([1, 8, 8, 8])
    """

    num_outputs = 1

    def _windows(self, x: Tensor) -> Tuple[Tensor, Tensor, Tuple[int, int]]:
        """Unfolded windows ``(B, C, k*k, L)``, their validity mask
        ``(1, 1, k*k, L)`` and the output size, with the geometry of
        ``F.avg_pool2d`` (ceil_mode included)."""
        (kh, kw), (sh, sw), (ph, pw) = \
            self.kernel_size, self.stride, self.padding
        b, c, h, w = x.shape
        out_hw, extra = [], []
        for size, k, s, p in ((h, kh, sh, ph), (w, kw, sw, pw)):
            span = size + 2 * p - k
            n = (math.ceil(span / s) if self.ceil_mode else span // s) + 1
            if self.ceil_mode and (n - 1) * s >= size + p:
                n -= 1  # the last window must start inside the input
            out_hw.append(n)
            extra.append(max((n - 1) * s + k - size - 2 * p, 0))
        pads = (pw, pw + extra[1], ph, ph + extra[0])
        xp = F.pad(x, pads)
        ones = F.pad(x.new_ones(1, 1, h, w), pads)
        # L given, not -1: an empty batch (b = 0) has no size to infer
        cols = F.unfold(
            xp, (kh, kw), stride=(sh, sw)).view(b, c, kh * kw,
                                                out_hw[0] * out_hw[1])
        valid = F.unfold(
            ones, (kh, kw), stride=(sh, sw)).view(1, 1, kh * kw, -1) > 0
        return cols, valid, tuple(out_hw)

    def pool(self, x: Tensor, params: Tensor) -> Tensor:
        cols, valid, (ho, wo) = self._windows(x)
        temp = torch.sigmoid(params)  # (B, C, 1, 1)
        logits = (temp * cols).masked_fill(~valid, float('-inf'))
        weights = torch.softmax(logits, dim=2)
        out = (weights * cols).sum(dim=2)
        return out.view(x.size(0), x.size(1), ho, wo)


def build_prior_pool(cfg: dict,
                     channels: int,
                     kernel_size: int,
                     stride: int,
                     padding: int = 0,
                     ceil_mode: bool = False) -> nn.Module:
    """Build a guided pooling layer from a config.

    The type is looked up in mmgate's MODELS whatever the default scope is
    (``'GaussianPool2d'`` and ``'mmgate.GaussianPool2d'`` both work inside
    an mmdet or mmpretrain run); the window geometry comes from the caller.

    Args:
        cfg (dict): ``type`` plus the layer's other options (``noise``,
            ``norm_cfg``, ``reduction`` ...).
        channels (int): Input channels.
        kernel_size (int): Window size.
        stride (int): Window stride.
        padding (int): Padding.
        ceil_mode (bool): Keep partial windows. Defaults to False.

    Returns:
        nn.Module: The pooling layer.
    """
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'pool_cfg must be a dict with a "type", got {cfg!r}')
    cfg = dict(cfg)
    pool_type = cfg.pop('type')
    for key in ('channels', 'kernel_size', 'stride', 'padding', 'ceil_mode'):
        if key in cfg:
            raise ValueError(f'pool_cfg must not set {key!r}: the backbone '
                             'decides the window geometry and width')
    pool_cls = MODELS.get(pool_type) if isinstance(pool_type, str) \
        else pool_type
    if pool_cls is None:
        raise KeyError(
            f'pool type {pool_type!r} is not registered in mmgate.MODELS; '
            "use 'GaussianPool2d', 'MaxEntPool2d' or a registered class "
            'taking (channels, kernel_size, stride, padding, ceil_mode)')
    return pool_cls(
        channels=channels,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        **cfg)
