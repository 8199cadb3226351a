"""Mixed precision, channels-last memory and ``torch.compile`` on CPU.

- bf16 and fp16 autocast: forward and a backward pass of every gated family
  (the gate's fused mixing casts a saved map to the gradient's precision);
- ``channels_last`` inputs and weights give the outputs of the default
  layout;
- ``torch.compile``: TorchDynamo captures the backbone, the gate's autograd
  function included (``backend='eager'`` here; Inductor's C++ build of a
  SkipResNet-18 takes minutes on 2 cores, see the README).
"""
import pytest
import torch

from mmgate.registry import MODELS

TINY = {
    'SkipResNet':
    dict(depth=18, base_channels=8, norm_eval=False),
    'DenseResNet':
    dict(depth=18, base_channels=8, norm_eval=False),
    'SkipConvNeXt':
    dict(
        arch=dict(depths=[1, 1, 2, 1], channels=[8, 16, 32, 64]),
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False),
    'DenseMobileNetV2':
    dict(widen_factor=0.25, out_indices=(2, 7)),
}


def _build(name):
    import mmgate.models  # noqa: F401
    return MODELS.build(dict(type='mmgate.' + name, **TINY[name]))


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('name', sorted(TINY))
def test_autocast_forward_and_backward(name, dtype):
    model = _build(name).train()
    x = torch.rand(2, 3, 64, 64)
    with torch.autocast('cpu', dtype=dtype):
        outs = model(x)
    loss = sum(o.float().square().mean() for o in outs)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # close to the fp32 forward, but computed in low precision
    model.eval()
    with torch.no_grad():
        ref = model(x)
        with torch.autocast('cpu', dtype=dtype):
            low = model(x)
    errors = [((a.float() - b).abs().max() / b.abs().max().clamp(min=1e-3))
              for a, b in zip(low, ref)]
    assert 0 < max(errors) < 0.1


@pytest.mark.parametrize('name', sorted(TINY))
def test_channels_last_gives_the_same_outputs(name):
    model = _build(name).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.to(memory_format=torch.channels_last))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_torch_compile_captures_the_gated_backbone():
    torch._dynamo.reset()
    # float64: compiled, a block runs its parts one by one (BatchNorm, gate
    # MLP as convs, ReLU); eagerly they are fused. In float32 the gates'
    # BatchNorm over two pooled vectors amplifies the rounding differences
    model = _build('SkipResNet').double().train()
    compiled = torch.compile(model, backend='eager', fullgraph=False)
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    outs = compiled(x)
    sum(o.square().mean() for o in outs).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    ref = model(x)
    sum(o.square().mean() for o in ref).backward()
    for a, b in zip(outs, ref):
        torch.testing.assert_close(a, b)
    for n, p in model.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, msg=n)
