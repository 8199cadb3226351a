"""Every backbone keeps its weight layout and its arithmetic.

``tests/data/backbone_refs.pt`` was written by
``tools/misc/make_backbone_refs.py`` with the code before the router /
composed-block redesign: per tiny backbone the state-dict layout and the
outputs (eval and train mode) for seeded weights and inputs. Here each is
built again, its layout must be the same key for key and shape for shape,
the seeded weights load strictly, and the outputs must agree.

``tests/data/backbone_refs_fp64.pt`` (written with the code before the fused
junction, ``make_backbone_refs.py --fp64``) holds the same builds' float64
outputs and gradient fingerprints: they must agree to about 1e-9, which
float32 cannot show where a network is ill-conditioned (train-mode
BatchNorm over two samples). The ``priorpool_*`` float64 references were
rewritten when the prior pools began to compute in float64 in a float64
model (they had fp32 steps, whose reductions round differently from one
CPU to another). The float32 outputs must agree with the float32
references to within those references' own float32 error.

One layout change is deliberate: with ``avg_down``, MMDetection's and
MMSegmentation's ResNets keep an identity ``AvgPool2d(1)`` in stride-1
projections (``layer{s}.0.downsample.{0,1,2}``), and so do mmgate's built
for them (:func:`reference_key` maps those keys back).
"""
import re
from pathlib import Path

import pytest
import torch

import mmgate.models  # noqa: F401
from mmgate.registry import MODELS
from tests.helpers import REPO_ROOT, load_tool

ROOT = Path(REPO_ROOT)
REFS = torch.load(ROOT / 'tests/data/backbone_refs.pt', weights_only=True)
REFS64 = torch.load(
    ROOT / 'tests/data/backbone_refs_fp64.pt', weights_only=True)

GEN = load_tool('misc/make_backbone_refs')


def reference_key(model, key: str) -> str:
    """``key``'s name in the references: a projection that starts with an
    identity ``AvgPool2d(1)`` had its conv and norm one index lower."""
    m = re.match(r'(layer\d+\.0\.downsample)\.(\d+)\.(.*)', key)
    if m:
        pool = model.get_submodule(m[1])[0]
        if isinstance(pool, torch.nn.AvgPool2d) and pool.kernel_size == 1:
            return f'{m[1]}.{int(m[2]) - 1}.{m[3]}'
    return key


def test_every_case_is_still_listed():
    assert set(REFS) == set(GEN.CASES) == set(REFS64)


def _seeded(name):
    ref = REFS[name]
    model = MODELS.build(dict(ref['cfg'], type='mmgate.' + ref['cfg']['type']))
    model.load_state_dict(
        GEN.fill_state_dict(model, lambda k: reference_key(model, k)),
        strict=True)
    return model


def _relative_error(a, b) -> float:
    """max |a - b| over max |b|."""
    return ((a.double() - b.double()).abs().max() /
            b.double().abs().max().clamp_min(1e-30)).item()


@pytest.mark.parametrize('name', sorted(REFS))
def test_layout_and_outputs_unchanged(name):
    ref = REFS[name]
    model = MODELS.build(dict(ref['cfg'], type='mmgate.' + ref['cfg']['type']))
    layout = {
        reference_key(model, k): tuple(v.shape)
        for k, v in model.state_dict().items()
    }
    assert layout == ref['layout']
    model = _seeded(name)
    got = GEN.run(model, GEN.make_input(ref['cfg']))
    for mode in ('out_eval', 'out_train'):
        assert len(got[mode]) == len(ref[mode])
        for a, b, b64 in zip(got[mode], ref[mode], REFS64[name][mode]):
            # the old float32 result's own error, from its float64 twin (two
            # independent float32 roundings of an ill-conditioned network may
            # each be that far off)
            tol = max(1e-4, 5 * _relative_error(b, b64))
            assert _relative_error(a, b) <= tol, (mode, tol)


@pytest.mark.parametrize('name', sorted(REFS))
def test_float64_outputs_and_gradients_unchanged(name):
    ref = REFS64[name]
    x = GEN.make_input(REFS[name]['cfg']).double()
    got = GEN.run(_seeded(name).double(), x)
    for mode in ('out_eval', 'out_train'):
        for a, b in zip(got[mode], ref[mode]):
            assert _relative_error(a, b) < 1e-9, mode
    grads = GEN.gradients(_seeded(name).double(), x)
    assert set(grads) == set(ref['grads'])
    for key, value in grads.items():
        expected = ref['grads'][key]
        # a fingerprint's sum may cancel: absolute tolerance from its scale
        torch.testing.assert_close(
            value,
            expected,
            rtol=1e-6,
            atol=1e-9 * expected.abs().max().item(),
            msg=key)
