"""GaussianPriorConv2d: the composed kernel by hand, its start near the plain
conv, registry lookups from mmcv / mmdet, weight decay, errors."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmgate.models.layers import GaussianPriorConv2d, fuse_gaussian_prior_convs


def _composed_by_hand(conv):
    """K = S * G: every tap (u, v) of the 2-D Gaussian of input channel i
    shifts a copy of S[:, i] (on its dilated grid) by (u, v)."""
    w = conv.weight.detach()
    cout, cin_g, kh, kw = w.shape
    d = conv.dilation[0]
    r = conv.radius
    sigma = conv.sigma().detach().expand(conv.in_channels)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    out = torch.zeros(cout, cin_g,
                      d * (kh - 1) + 1 + 2 * r,
                      d * (kw - 1) + 1 + 2 * r)
    per_group = cout // conv.groups
    for o in range(cout):
        for i in range(cin_g):
            c = (o // per_group) * cin_g + i
            g = torch.exp(-t**2 / (2 * sigma[c]**2))
            g2 = torch.outer(g, g) / g.sum()**2
            for a in range(kh):
                for b in range(kw):
                    out[o, i, a * d:a * d + 2 * r + 1,
                        b * d:b * d + 2 * r + 1] += w[o, i, a, b] * g2
    return out


def _spread(conv, low=0.5, high=2.0):
    with torch.no_grad():
        n = conv.prior_rho.numel()
        sigma = torch.linspace(low, high, n)
        conv.prior_rho.copy_(torch.log(torch.expm1(sigma - conv.sigma_min)))


@pytest.mark.parametrize('kwargs', [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, padding=1, stride=2, groups=2, sigma_mode='layer'),
    dict(kernel_size=3, padding=2, dilation=2, radius=2),
    dict(kernel_size=5, padding=0, stride=2, bias=False),
])
def test_equals_conv_with_composed_kernel(kwargs):
    conv = GaussianPriorConv2d(4, 6, **kwargs)
    _spread(conv)
    x = torch.randn(2, 4, 15, 13)
    out = conv(x)
    kernel = _composed_by_hand(conv)
    torch.testing.assert_close(conv.composed_weight().detach(), kernel)
    r = conv.radius
    ref = F.conv2d(x, kernel, conv.bias, conv.stride,
                   [p + r for p in conv.padding], 1, conv.groups)
    # equal everywhere (the blur runs on the padded input) ...
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    # ... and in particular away from the borders
    m = (r + conv.padding[0]) // conv.stride[0] + 1
    torch.testing.assert_close(
        out[..., m:-m, m:-m], ref[..., m:-m, m:-m], rtol=1e-4, atol=1e-5)
    exported = conv.to_conv2d()
    assert type(exported) is nn.Conv2d
    torch.testing.assert_close(exported(x), out, rtol=1e-4, atol=1e-5)


def test_starts_near_the_plain_conv():
    conv = GaussianPriorConv2d(8, 8, 3, padding=1)
    plain = nn.Conv2d(8, 8, 3, padding=1)
    plain.load_state_dict(conv.state_dict(), strict=False)
    # smooth inputs, as feature maps are
    x = F.interpolate(torch.randn(2, 8, 8, 8), size=32, mode='bilinear')

    def rel(a, b):
        return ((a - b).norm() / b.norm()).item()

    assert torch.allclose(conv.sigma(), torch.full((8, ), 0.4))
    near = rel(conv(x), plain(x))
    assert near < 0.05, near
    _spread(conv, 2., 2.)  # a wide prior is far from it: the check can fail
    assert rel(conv(x), plain(x)) > 4 * near


def test_pretrained_filter_loads_as_s_and_gradients_reach_sigma():
    plain = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    conv = GaussianPriorConv2d(4, 4, 3, padding=1, bias=False)
    missing, unexpected = conv.load_state_dict(
        plain.state_dict(), strict=False)
    assert missing == ['prior_rho'] and not unexpected
    assert torch.equal(conv.weight, plain.weight)
    conv(torch.randn(2, 4, 8, 8)).square().sum().backward()
    assert conv.prior_rho.grad.abs().min() > 0


def test_pointwise_convs_stay_plain_unless_asked():
    conv = GaussianPriorConv2d(4, 8, 1)
    assert conv.prior_rho is None and not conv.with_prior
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, conv.bias))
    conv = GaussianPriorConv2d(4, 8, 1, pointwise=True)
    assert conv.composed_weight().shape == (8, 4, 7, 7)


def test_runs_under_autocast():
    conv = GaussianPriorConv2d(4, 4, 3, padding=1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = conv(torch.randn(1, 4, 8, 8))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


@pytest.mark.parametrize('kwargs,match', [
    (dict(radius=0), 'radius'),
    (dict(sigma_init=0.2, sigma_min=0.2), 'sigma_init'),
    (dict(sigma_min=0.), 'sigma_min'),
    (dict(sigma_mode='pixel'), 'sigma_mode'),
    (dict(padding='same'), 'numeric padding'),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianPriorConv2d(4, 4, 3, **kwargs)


@pytest.mark.parametrize('scope', [None, 'mmdet', 'mmpretrain'])
def test_build_conv_layer_finds_it(scope):
    """mmcv's build_conv_layer finds the scoped name under any default
    scope; the unscoped one is not registered outside mmgate's registry."""
    from mmcv.cnn import build_conv_layer
    from mmengine.registry import DefaultScope
    if scope is not None:
        __import__(f'{scope}.registry')
    with DefaultScope.overwrite_default_scope(scope):
        conv = build_conv_layer(
            dict(type='mmgate.GaussianPriorConv2d', radius=2),
            4,
            4,
            3,
            padding=1)
        with pytest.raises(KeyError):  # mmcv: 'Cannot find None ...'
            build_conv_layer(dict(type='GaussianPriorConv2d'), 4, 4, 3)
    assert isinstance(conv, GaussianPriorConv2d) and conv.radius == 2


def test_mmdet_resnet_dcn_slot_and_fuse():
    from mmdet.models.backbones import ResNet
    model = ResNet(
        depth=50,
        base_channels=8,
        out_indices=(3, ),
        dcn=dict(type='mmgate.GaussianPriorConv2d'),
        stage_with_dcn=(False, True, True, True))
    assert type(model.layer1[0].conv2) is nn.Conv2d
    assert isinstance(model.layer2[0].conv2, GaussianPriorConv2d)
    assert model.layer2[0].conv2.stride == (2, 2)
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    out = model(x)[0]
    fused = fuse_gaussian_prior_convs(model)
    assert not any(isinstance(m, GaussianPriorConv2d) for m in fused.modules())
    torch.testing.assert_close(fused(x)[0], out, rtol=1e-4, atol=1e-4)


def test_config_keeps_rho_out_of_weight_decay():
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(
        'configs/seed_layers/gaussian_conv/resnet50_gaussconv_8xb32_in1k.py')
    model = nn.Sequential(GaussianPriorConv2d(4, 4, 3), nn.BatchNorm2d(4))
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {
        id(p): g['weight_decay']
        for g in optim.param_groups
        for p in g['params']
    }
    assert decay[id(model[0].prior_rho)] == 0.
    assert decay[id(model[0].weight)] == 1e-4
