"""Gaussian-prior ("disentangled") convolution (Kobayashi, PRL 169, 2023).

A filter is modelled as an isotropic Gaussian prior convolved with a free
structural filter ``S``; the Gaussian's variance is learnt with ``S`` and sets
the receptive field. Computed efficiently as::

    y = conv(S, blur_sigma(x))

where ``blur_sigma`` is a depthwise, separable Gaussian (two 1-D passes) of a
fixed radius ``r``, its taps normalised to sum to 1 and
``sigma = softplus(rho) + sigma_min`` (one per input channel or one per
layer). The blur runs over the input padded by ``padding + r`` and the conv
then takes no padding, so the output is exactly the conv with the composed
kernel ``K = S * G`` (size ``k + 2r``, padding ``p + r``) everywhere, borders
included; :meth:`GaussianPriorConv2d.composed_weight` and
:meth:`GaussianPriorConv2d.to_conv2d` give that kernel and that conv for
export. The radius is fixed: no data-dependent kernel sizes.

The layer is an ``nn.Conv2d`` (same signature, same ``weight`` / ``bias``
keys), so pretrained filters load as ``S`` and it can be built from any
``conv_cfg`` / ``dcn`` config through mmcv's ``build_conv_layer``. ``sigma``
starts near a delta (0.4 px by default) so that the layer starts close to
the plain conv. Exclude ``prior_rho`` from weight decay
(``paramwise_cfg=dict(custom_keys={'.prior_rho': dict(decay_mult=0.)})``).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmgate.registry import MODELS

__all__ = ['GaussianPriorConv2d', 'fuse_gaussian_prior_convs']


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


@MODELS.register_module()
class GaussianPriorConv2d(nn.Conv2d):
    """Conv2d whose filter is a learnt isotropic Gaussian composed with the
    free filter: ``y = conv(weight, gaussian_blur(x))``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        groups, bias, padding_mode, device, dtype: As ``nn.Conv2d``
            (``padding`` must be numeric; the blur pads with
            ``padding_mode`` too).
        radius (int): Radius r of the Gaussian (``2r + 1`` taps). Fixed.
            Defaults to 3.
        sigma_init (float): Initial standard deviation in pixels.
            Defaults to 0.4 (close to a delta).
        sigma_min (float): Lower bound of sigma: ``sigma = softplus(rho) +
            sigma_min``. Defaults to 0.2.
        sigma_mode (str): ``'channel'`` (one sigma per input channel) or
            ``'layer'`` (one for the layer). Defaults to ``'channel'``.
        pointwise (bool): Also blur in front of 1x1 convs. A 1x1 filter has
            no spatial structure for the prior to model, so by default a
            1x1 ``GaussianPriorConv2d`` is a plain 1x1 conv (no ``prior_rho``)
            and a ``conv_cfg`` can change every conv of a backbone while only
            the spatial ones get the prior. Defaults to False.

    Example:
        >>> conv = GaussianPriorConv2d(8, 16, 3, padding=1)
        >>> conv(torch.rand(1, 8, 32, 32)).shape
        torch.Size([1, 16, 32, 32])
        >>> conv.composed_weight().shape  # 3 + 2 * radius
        torch.Size([16, 8, 9, 9])
    """

    # new to a network of plain convs: a pretrained checkpoint lacks them
    optional_pretrained_params = ('prior_rho', )

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
                 radius: int = 3,
                 sigma_init: float = 0.4,
                 sigma_min: float = 0.2,
                 sigma_mode: str = 'channel',
                 pointwise: bool = False) -> None:
        if not isinstance(radius, int) or radius < 1:
            raise ValueError(f'radius must be an int >= 1, got {radius!r}')
        if not sigma_min > 0:
            raise ValueError(f'sigma_min must be > 0, got {sigma_min!r}')
        if not sigma_init > sigma_min:
            raise ValueError(f'sigma_init ({sigma_init!r}) must be greater '
                             f'than sigma_min ({sigma_min!r})')
        if sigma_mode not in ('channel', 'layer'):
            raise ValueError("sigma_mode must be 'channel' or 'layer', got "
                             f'{sigma_mode!r}')
        if isinstance(padding, str):
            raise ValueError('GaussianPriorConv2d needs a numeric padding, '
                             f'got {padding!r}')
        self.radius = radius
        self.sigma_init = float(sigma_init)
        self.sigma_min = float(sigma_min)
        self.sigma_mode = sigma_mode
        self.pointwise = bool(pointwise)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            device=device,
            dtype=dtype)
        self.with_prior = self.pointwise or self.kernel_size != (1, 1)
        if self.with_prior:
            n = in_channels if sigma_mode == 'channel' else 1
            self.prior_rho = nn.Parameter(
                torch.empty(n, device=device, dtype=dtype))
        else:
            self.register_parameter('prior_rho', None)
        self.reset_prior()

    def reset_prior(self) -> None:
        """Set sigma back to ``sigma_init``."""
        if self.prior_rho is not None:
            with torch.no_grad():
                self.prior_rho.fill_(
                    _inverse_softplus(self.sigma_init - self.sigma_min))

    def sigma(self) -> Tensor:
        """Standard deviation of the prior, ``(C_in,)`` or ``(1,)``, fp32."""
        if self.prior_rho is None:
            raise RuntimeError('this 1x1 GaussianPriorConv2d has no prior '
                               '(pointwise=False)')
        return F.softplus(self.prior_rho.float()) + self.sigma_min

    def gaussian_taps(self) -> Tensor:
        """Normalised 1-D taps, ``(C_in, 2r + 1)`` (fp32)."""
        sigma = self.sigma()
        t = torch.arange(
            -self.radius,
            self.radius + 1,
            device=sigma.device,
            dtype=torch.float32)
        taps = torch.exp(-0.5 * (t / sigma[:, None])**2)
        taps = taps / taps.sum(dim=1, keepdim=True)
        return taps.expand(self.in_channels, -1)

    def forward(self, x: Tensor) -> Tensor:
        if not self.with_prior:
            return super().forward(x)
        c, r = self.in_channels, self.radius
        ph, pw = self.padding
        pads = (pw + r, pw + r, ph + r, ph + r)
        if self.padding_mode == 'zeros':
            x = F.pad(x, pads)
        else:
            x = F.pad(x, pads, mode=self.padding_mode)
        taps = self.gaussian_taps()
        if not torch.is_autocast_enabled(x.device.type):
            taps = taps.to(x.dtype)
        x = F.conv2d(x, taps.reshape(c, 1, 2 * r + 1, 1), groups=c)
        x = F.conv2d(x, taps.reshape(c, 1, 1, 2 * r + 1), groups=c)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0,
                        self.dilation, self.groups)

    def composed_weight(self) -> Tensor:
        """The kernel ``K = S * G`` of the equivalent plain conv
        (dilation 1, padding ``padding + r``), ``(C_out, C_in / groups,
        d (k - 1) + 1 + 2r, ...)``."""
        weight = self.weight
        if not self.with_prior:
            return weight
        cout, cin_g, kh, kw = weight.shape
        dh, dw = self.dilation
        r = self.radius
        # S on the dilated grid
        dilated = weight.new_zeros(cout, cin_g,
                                   dh * (kh - 1) + 1,
                                   dw * (kw - 1) + 1)
        dilated[:, :, ::dh, ::dw] = weight
        # the 2-D Gaussian of the input channel each (o, i) pair reads
        taps = self.gaussian_taps().to(weight.dtype)
        g2d = taps[:, :, None] * taps[:, None, :]  # (C_in, 2r+1, 2r+1)
        group = torch.arange(
            cout, device=weight.device) // (
                cout // self.groups)
        channel = group[:, None] * cin_g + torch.arange(
            cin_g, device=weight.device)[None]  # (C_out, C_in / groups)
        kernels = g2d[channel.reshape(-1)].unsqueeze(1)
        # full convolution of each S[o, i] with its (symmetric) Gaussian
        out = F.conv2d(
            dilated.reshape(1, cout * cin_g, *dilated.shape[2:]),
            kernels,
            padding=2 * r,
            groups=cout * cin_g)
        return out.reshape(cout, cin_g, *out.shape[2:])

    def to_conv2d(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` computing exactly this layer (export)."""
        weight = self.composed_weight().detach()
        if not self.with_prior:
            padding, dilation = self.padding, self.dilation
        else:
            padding = tuple(p + self.radius for p in self.padding)
            dilation = 1
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            tuple(weight.shape[2:]),
            self.stride,
            padding,
            dilation,
            self.groups,
            self.bias is not None,
            self.padding_mode,
            device=weight.device,
            dtype=weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight)
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.with_prior:
            s += (f', radius={self.radius}, sigma_mode={self.sigma_mode!r}, '
                  f'sigma_min={self.sigma_min}')
        return s


def fuse_gaussian_prior_convs(model: nn.Module) -> nn.Module:
    """Replace every :class:`GaussianPriorConv2d` in ``model`` by the plain
    conv with the composed kernel (in place); returns ``model``."""
    for name, child in list(model.named_children()):
        if isinstance(child, GaussianPriorConv2d):
            setattr(model, name, child.to_conv2d())
        else:
            fuse_gaussian_prior_convs(child)
    return model
