"""Every tensor the backbones create while they run (router, descriptors,
padding masks, folded BatchNorm statistics, drop-path factors, the
junction's buffers) is created on the input's device and in its dtype.

The backbones (every family: the cases of
``tools/misc/make_backbone_refs.py``, with drop-path on) run forward and
backward in float64 on the ``meta`` device under a dispatch mode that sees
the output of every ATen op: any tensor on another device, or of another
floating dtype, is a stray. PyTorch lets a 0-dim CPU tensor meet a ``meta``
(or CUDA) one; the dispatch mode does not, and the control tests show that
a stray of either kind is caught. Under CPU autocast float16 the junctions
keep their input's dtype, and the outputs and gradients are finite and
close to float32.
"""
import copy

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import mmgate.models  # noqa: F401
from mmgate.models.backbones import RoutedBlock
from mmgate.models.layers import GateModule
from mmgate.registry import MODELS
from tests.helpers import load_tool

GEN = load_tool('misc/make_backbone_refs')


class StrayTensors(TorchDispatchMode):
    """Records every ATen op output that is not on ``device`` or, floating,
    not of ``dtype``."""

    def __init__(self, device: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.device, self.dtype = device, dtype
        self.strays, self.ops = [], 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and (t.device.type != self.device or
                                                (t.is_floating_point()
                                                 and t.dtype != self.dtype)):
                self.strays.append(f'{func}: {t.device} {t.dtype} '
                                   f'{tuple(t.shape)}')
        return out


def _build(name, **kwargs):
    cfg = dict(GEN.CASES[name], **kwargs)
    if cfg['type'] != 'DenseMobileNetV2':  # the others take drop-path
        cfg.setdefault('drop_path_rate', 0.3)
    return MODELS.build(dict(cfg, type='mmgate.' + cfg['type'])), \
        GEN.make_input(cfg)


def _uses_prior_pool(name):
    return GEN.CASES[name]['type'].startswith('PriorPool') and \
        GEN.CASES[name].get('pool_cfg', 1) is not None


def _strays(model, x, device):
    """Train forward + backward and eval forward of ``model`` in float64 on
    ``device``, under :class:`StrayTensors`."""
    model = model.double().to(device)
    x = x.double().to(device).requires_grad_()
    mode = StrayTensors(device, torch.float64)
    with mode:
        model.train()
        outs = model(x)
        forward_ops = mode.ops
        sum(o.sum() for o in outs).backward()
        assert mode.ops > 2 * forward_ops  # the backward ops are seen
        model.eval()
        with torch.no_grad():
            model(x)
    return mode.strays


@pytest.mark.parametrize('name', sorted(GEN.CASES))
def test_no_stray_tensors(name):
    if _uses_prior_pool(name):
        pytest.skip('the prior pools (gaussian_pool.py) turn autocast off '
                    "around their statistics, and torch.autocast takes no "
                    "device_type='meta'")
    model, x = _build(name)
    assert _strays(model, x, 'meta') == []


def _stray_scale(kind):
    """A drop-path factor made without the input's device and dtype."""

    def scale(self, y):
        if kind == 'scalar':  # 0-dim CPU: PyTorch mixes it with any device
            return torch.ones(y.size(0), dtype=y.dtype, device=y.device) * \
                torch.tensor(1.0, dtype=y.dtype)
        return torch.ones(y.size(0))

    return scale


def test_control_a_stray_map_is_caught(monkeypatch):
    """A CPU float32 factor: PyTorch refuses to mix it with meta maps."""
    monkeypatch.setattr(RoutedBlock, '_drop_path_scale', _stray_scale('map'))
    model, x = _build('skipresnet18')
    with pytest.raises(RuntimeError, match='device'):
        _strays(model, x, 'meta')


def test_control_a_stray_scalar_is_caught(monkeypatch):
    """A 0-dim CPU tensor: PyTorch mixes it with meta (and CUDA) maps, the
    dispatch mode reports it."""
    monkeypatch.setattr(RoutedBlock, '_drop_path_scale',
                        _stray_scale('scalar'))
    model, x = _build('skipresnet18')
    strays = _strays(model, x, 'meta')
    assert strays and all(': cpu torch.float64 ()' in s for s in strays), \
        strays


def _junction_dtypes(model):
    """``(input, output)`` dtypes of every junction call."""
    seen = []

    def hook(module, args, kwargs, out):
        seen.append((args[0].dtype, out.dtype))

    for m in model.modules():
        if isinstance(m, GateModule):
            m.register_forward_hook(hook, with_kwargs=True)
    return seen


@pytest.mark.parametrize('name', sorted(GEN.CASES))
def test_autocast_fp16_on_cpu(name):
    torch.manual_seed(0)
    model, x = _build(name, drop_path_rate=0.)
    twin = copy.deepcopy(model)
    model.eval()
    twin.eval()
    with torch.no_grad():
        ref = model(x)
        with torch.autocast('cpu', dtype=torch.float16):
            outs = twin(x)
    for a, b in zip(outs, ref):  # eval: no tiny-batch statistics
        assert ((a.float() - b).abs().max() / b.abs().max()) < 2e-2
    seen = _junction_dtypes(twin)
    twin.train()
    with torch.autocast('cpu', dtype=torch.float16):
        outs = twin(x)
        loss = sum(o.float().square().mean() for o in outs)
    loss.backward()
    assert torch.isfinite(loss)
    for key, p in twin.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), key
    # the gates' A, B, W and factors do not promote a float16 branch
    assert all(i == o for i, o in seen), seen
    # (ConvNeXt's branch ends in its float32 layer scale, as MMPretrain's:
    # its gates see float32 maps; plain ResNets have no gates)
    if not name.startswith(('priorpool_resnet', 'plain_', 'skipconvnext')):
        assert (torch.float16, torch.float16) in seen
