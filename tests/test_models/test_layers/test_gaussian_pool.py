"""GaussianPool2d / MaxEntPool2d: the formulas by hand, determinism, fp32
statistics under autocast, and the options' errors."""
import pytest
import torch
import torch.nn.functional as F

from mmgate.models.layers import GaussianPool2d, MaxEntPool2d, build_prior_pool


def _batch_norm(z, bn):
    """Training-mode BN of (B, C, 1, 1) by hand."""
    mean = z.mean(dim=0, keepdim=True)
    var = z.var(dim=0, unbiased=False, keepdim=True)
    w, b = bn.weight.view(1, -1, 1, 1), bn.bias.view(1, -1, 1, 1)
    return (z - mean) / torch.sqrt(var + bn.eps) * w + b


def _estimator_by_hand(pool, x):
    est = pool.prior
    g = x.mean(dim=(2, 3), keepdim=True)
    z = torch.einsum('oc,bcij->boij', est.conv1.weight[:, :, 0, 0], g)
    z = torch.relu(_batch_norm(z, est.norm1))
    z = torch.einsum('oc,bcij->boij', est.conv2.weight[:, :, 0, 0], z)
    return _batch_norm(z, est.norm2)


def _randomise_norms(pool):
    with torch.no_grad():
        for norm in (pool.prior.norm1, pool.prior.norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)


def test_gaussian_pool_is_mean_plus_eta_sigma():
    pool = GaussianPool2d(4, kernel_size=2, stride=2)
    _randomise_norms(pool)
    x = torch.randn(3, 4, 8, 6) * 2 + 1
    torch.manual_seed(123)
    out = pool(x)

    # window statistics: 2x2 blocks, population std
    win = x.view(3, 4, 4, 2, 3, 2).permute(0, 1, 2, 4, 3,
                                           5).reshape(3, 4, 4, 3, 4)
    mu = win.mean(-1)
    sigma = win.var(-1, unbiased=False).clamp(min=1e-6).sqrt()
    params = _estimator_by_hand(pool, x)
    mu0, s0 = params[:, :4], params[:, 4:]
    torch.manual_seed(123)
    eps = torch.randn(3, 4, 1, 1)  # one draw per sample and channel
    eta = F.softplus(mu0 + torch.sigmoid(s0) * eps)
    expected = mu + eta * sigma
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert (out >= mu).all() and (out - mu).abs().max() > 0.1


def test_gaussian_pool_eval_is_deterministic_and_uses_softplus_mu0():
    pool = GaussianPool2d(4, kernel_size=3, stride=2, padding=1)
    _randomise_norms(pool)
    x = torch.randn(2, 4, 9, 9)
    pool.train()
    assert not torch.equal(pool(x), pool(x)), 'training must sample eta'
    pool.eval()
    out = pool(x)
    assert torch.equal(out, pool(x))
    mean = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    sq = F.avg_pool2d(x * x, 3, 2, 1, count_include_pad=False)
    sigma = (sq - mean**2).clamp(min=1e-6).sqrt()
    mu0 = pool.prior(x)[:, :4]
    torch.testing.assert_close(out, mean + F.softplus(mu0) * sigma)
    # same geometry as the 3x3/2 max-pool it replaces; padding never counts
    assert out.shape == F.max_pool2d(x, 3, 2, 1).shape
    assert (out >= mean).all()


def test_gaussian_pool_per_element_noise():
    pool = GaussianPool2d(4, noise='HWCN')
    x = torch.randn(2, 4, 8, 8)
    torch.manual_seed(7)
    out = pool(x)
    mu, sigma = pool.window_stats(x)
    mu0, sigma0 = pool.prior_params(pool.prior(x))
    torch.manual_seed(7)
    eps = torch.randn(2, 4, 4, 4)
    torch.testing.assert_close(out,
                               mu + F.softplus(mu0 + sigma0 * eps) * sigma)


@pytest.mark.parametrize('pool_cls', [GaussianPool2d, MaxEntPool2d])
def test_statistics_stay_fp32_under_autocast(pool_cls):
    pool = pool_cls(8).eval()
    # a large mean and a small spread: bf16's one-pass variance is useless
    x = (100 + 0.25 * torch.randn(2, 8, 8, 8)).bfloat16()
    ref = pool(x.float())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        params = pool.prior(x)
        out = pool(x)
        if pool_cls is GaussianPool2d:
            mu, sigma = pool.window_stats(x)
    assert params.dtype == torch.float32
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref.bfloat16().float())
    if pool_cls is GaussianPool2d:
        assert sigma.dtype == torch.float32
        win = x.float().view(2, 8, 4, 2, 4, 2)
        true_std = win.std(dim=(3, 5), unbiased=False)
        torch.testing.assert_close(
            sigma, true_std.clamp(min=1e-3), rtol=1e-4, atol=1e-4)
        # what fp32 saves us from: the same formula in bf16 is far off
        xb = x
        mb = F.avg_pool2d(xb, 2)
        vb = (F.avg_pool2d(xb * xb, 2) - mb * mb).float()
        assert (vb.clamp(min=0).sqrt() - true_std).abs().max() > 1.


def _maxent_by_hand(x, temp, k, s, p):
    """Loops over windows: softmax(l x) weighted mean of the valid inputs,
    windows as avg_pool2d(ceil_mode=True) lays them out."""
    b, c, h, w = x.shape
    ho = F.avg_pool2d(x, k, s, p, ceil_mode=True).shape[2]
    wo = F.avg_pool2d(x, k, s, p, ceil_mode=True).shape[3]
    out = torch.empty(b, c, ho, wo)
    for i in range(ho):
        for j in range(wo):
            r0, c0 = i * s - p, j * s - p
            rows = slice(max(r0, 0), min(r0 + k, h))
            cols = slice(max(c0, 0), min(c0 + k, w))
            win = x[:, :, rows, cols].reshape(b, c, -1)
            wgt = torch.softmax(temp.view(b, c, 1) * win, dim=-1)
            out[:, :, i, j] = (wgt * win).sum(-1)
    return out


@pytest.mark.parametrize('k,s,p', [(2, 2, 0), (3, 2, 1)])
def test_maxent_pool_by_hand(k, s, p):
    pool = MaxEntPool2d(3, kernel_size=k, stride=s, padding=p, ceil_mode=True)
    _randomise_norms(pool)
    pool.eval()
    x = torch.randn(2, 3, 7, 9) * 3
    out = pool(x)
    temp = torch.sigmoid(pool.prior(x))
    torch.testing.assert_close(out, _maxent_by_hand(x, temp, k, s, p))
    mean = F.avg_pool2d(x, k, s, p, ceil_mode=True, count_include_pad=False)
    mx = F.max_pool2d(x, k, s, p, ceil_mode=True)
    assert (out >= mean - 1e-5).all() and (out <= mx + 1e-5).all()
    assert (out - mean).abs().max() > 0.05


def test_estimator_batch_of_one():
    x = torch.randn(1, 4, 8, 8)
    pool = GaussianPool2d(4)
    with pytest.raises(ValueError, match='batch of 2 or more'):
        pool(x)
    pool.prior.norm1.eval()
    pool.prior.norm2.eval()  # what norm_eval does
    assert pool(x).shape == (1, 4, 4, 4)
    for norm_cfg in (dict(type='GN', num_groups=1), dict(type='LN2d')):
        assert GaussianPool2d(4, norm_cfg=norm_cfg)(x).shape == (1, 4, 4, 4)


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(channels=0), ValueError, 'channels'),
    (dict(channels=4, noise='C'), ValueError, 'noise'),
    (dict(channels=4, kernel_size=2, padding=2), ValueError, 'padding'),
    (dict(channels=4, kernel_size=0), ValueError, 'kernel_size'),
    (dict(channels=4, reduction=0), ValueError, 'reduction'),
    (dict(channels=4, eps=0.), ValueError, 'eps'),
    (dict(channels=4, norm_cfg='BN'), TypeError, 'norm_cfg'),
    (dict(channels=4, kernel_size=(2, 2, 2)), TypeError, 'kernel_size'),
])
def test_gaussian_pool_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        GaussianPool2d(**kwargs)


def test_wrong_input_channels():
    with pytest.raises(ValueError, match=r'expects \(B, 4, H, W\)'):
        MaxEntPool2d(4)(torch.randn(2, 5, 8, 8))


def test_build_prior_pool():
    pool = build_prior_pool(dict(type='MaxEntPool2d'), 8, 3, 2, 1)
    assert isinstance(pool, MaxEntPool2d) and pool.stride == (2, 2)
    pool = build_prior_pool(
        dict(type='mmgate.GaussianPool2d', noise='HWCN'), 8, 2, 2)
    assert isinstance(pool, GaussianPool2d) and pool.noise == 'HWCN'
    with pytest.raises(KeyError, match='not registered'):
        build_prior_pool(dict(type='NoSuchPool'), 8, 2, 2)
    with pytest.raises(ValueError, match='must not set'):
        build_prior_pool(dict(type='GaussianPool2d', stride=1), 8, 2, 2)
    with pytest.raises(TypeError, match='pool_cfg'):
        build_prior_pool('GaussianPool2d', 8, 2, 2)
