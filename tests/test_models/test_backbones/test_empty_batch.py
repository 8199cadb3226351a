"""An empty batch (N = 0) gives empty maps of the right shape, as
MMDetection's ResNet does: every backbone family (the cases of
``tools/misc/make_backbone_refs.py``), train and eval mode, with and
without the fused junction kernel; in training the backward pass runs and
leaves the weights' gradients zero and the running statistics as they
were (``nn.BatchNorm2d`` on an empty batch changes neither)."""
import pytest
import torch

import mmgate.models  # noqa: F401
from mmgate.ops import use_kernel
from mmgate.registry import MODELS
from tests.helpers import load_tool

GEN = load_tool('misc/make_backbone_refs')


def _build(name):
    cfg = GEN.CASES[name]
    model = MODELS.build(dict(cfg, type='mmgate.' + cfg['type']))
    model.load_state_dict(GEN.fill_state_dict(model), strict=True)
    return model, GEN.make_input(cfg)


def _running_stats(model):
    return {
        k: v.clone()
        for k, v in model.state_dict().items()
        if k.endswith(('running_mean', 'running_var'))
    }


@pytest.mark.parametrize('kernel', [True, False])
@pytest.mark.parametrize('name', sorted(GEN.CASES))
def test_empty_batch(name, kernel):
    model, x = _build(name)
    with torch.no_grad():
        shapes = [o.shape[1:] for o in model.eval()(x)]
    empty = x[:0]
    with use_kernel(kernel):
        with torch.no_grad():
            outs = model.eval()(empty)
        assert [tuple(o.shape) for o in outs] == \
            [(0, *s) for s in shapes]
        before = _running_stats(model)
        inp = empty.clone().requires_grad_()
        outs = model.train()(inp)
        assert [tuple(o.shape) for o in outs] == \
            [(0, *s) for s in shapes]
        sum(o.sum() for o in outs).backward()
    assert inp.grad.shape == empty.shape
    for key, param in model.named_parameters():
        if param.grad is not None:
            assert not param.grad.any(), key
    for key, value in _running_stats(model).items():
        torch.testing.assert_close(value, before[key], msg=key)
