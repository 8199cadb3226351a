"""Shared maps: junctions that read one map add their gradients into one
buffer, which the map's node completes with the rest of its gradient; the
plane means a forward kernel leaves for the next block; a bottleneck's
descriptor from its last conv's input."""
import pytest
import torch
import torch.nn as nn

import mmgate.ops.junction as junction
from mmgate.models.backbones import Bottleneck
from mmgate.models.layers import GateModule
from mmgate.models.layers.norm import fold_batchnorm
from mmgate.ops import fused_junction, shared_map, use_kernel

F64 = dict(dtype=torch.float64)


def _triton_interpreted() -> bool:
    try:
        from mmgate.ops import triton_junction
    except ImportError:
        return False
    return triton_junction.interpreting()


# the C kernel, the eager path, the Triton kernels in Triton's interpreter
BACKENDS = [
    pytest.param(dict(enabled=True), id='c'),
    pytest.param(dict(enabled=False), id='eager'),
    pytest.param(
        dict(enabled=True, backend='triton'),
        id='triton',
        marks=pytest.mark.skipif(
            not _triton_interpreted(),
            reason='Triton is not installed or not in interpreter mode '
            '(TRITON_INTERPRET=1, tests/conftest.py)'))
]


def _gates(n, c, k, seed):
    gen = torch.Generator().manual_seed(seed)
    A, B = (torch.rand(n, c, generator=gen, **F64) for _ in range(2))
    W = torch.rand(n, k, c, generator=gen, **F64).softmax(1)
    return [t.requires_grad_() for t in (A, B, W)]


def _graph(x, y, params, with_var):
    """Three junctions read the map ``x`` (the first as ``c`` too), its
    moments and a plain op read it as well: every consumer a shared map
    has. In backward the third writes the buffer, the second adds into
    it, the first returns its gradients as usual (a ``dc`` is only ever a
    map's first gradient; one map once per junction)."""
    m, means, var = shared_map(x, with_var)
    (A1, B1, W1), (A2, B2, W2), (A3, B3, W3) = params
    j1 = fused_junction(m, A1, B1, W1, [m, y], relu=True)
    j2 = fused_junction(y, A2, B2, W2, [m, j1], relu=False)
    j3 = fused_junction(j2, A3, B3, W3, [y, m], relu=True)
    out = j3 * 2 + m.sin() + means[..., None, None]
    return out if var is None else out * var[..., None, None]


def _params(seed):
    return [_gates(2, 3, 2, seed + s) for s in range(3)]


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('with_var', [True, False])
def test_gradients_equal_plain_autograd(monkeypatch, backend, with_var):
    x = torch.randn(2, 3, 4, 5, **F64, requires_grad=True)
    y = torch.randn(2, 3, 4, 5, **F64, requires_grad=True)
    params = _params(1)
    inputs = (x, y, *[t for p in params for t in p])
    r = torch.randn(2, 3, 4, 5, **F64)
    pending = []
    monkeypatch.setattr(
        junction,
        '_pending',
        lambda node, _f=junction._pending: pending.append(_f(node)) or pending[
            -1])
    with use_kernel(**backend):
        got = torch.autograd.grad((_graph(x, y, params, with_var) * r).sum(),
                                  inputs)
        # j3 finds no buffer, j2 adds into it, j1 (dc) finds it
        assert [p is None for p in pending] == [True, False, False]
        # the same without sinks: every junction returns its gradients
        monkeypatch.setattr(junction, '_sinks',
                            lambda maps: [None] * len(maps))
        want = torch.autograd.grad((_graph(x, y, params, with_var) * r).sum(),
                                   inputs)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('kernel', [True, False])
def test_gradcheck(kernel):
    x = torch.randn(2, 3, 3, 4, **F64, requires_grad=True)
    y = torch.randn(2, 3, 3, 4, **F64, requires_grad=True)
    params = _params(3)

    def fn(x, y):
        return _graph(x, y, params, True)

    with use_kernel(kernel):
        assert torch.autograd.gradcheck(fn, (x, y))


def test_partial_and_repeated_backward_leave_nothing_behind():
    """A backward pass that does not reach the map's node (``inputs`` of
    ``torch.autograd.grad``) returns the junctions' gradients as usual and
    leaves no buffer for the next pass; two passes over a retained graph
    give the gradient twice."""
    x = torch.randn(2, 3, 4, 5, **F64, requires_grad=True)
    y = torch.randn(2, 3, 4, 5, **F64, requires_grad=True)
    params = _params(5)
    out = _graph(x, y, params, False).sum()
    dA = torch.autograd.grad(out, [params[1][0]], retain_graph=True)[0]
    out.backward(retain_graph=True)
    first = x.grad.clone()
    torch.testing.assert_close(params[1][0].grad, dA)
    out.backward()
    torch.testing.assert_close(x.grad, 2 * first)
    x.grad = None
    _graph(x, y, params, False).sum().backward()
    torch.testing.assert_close(x.grad, first)


def test_buffers_of_another_layout_are_added_by_pytorch():
    """A channels_last map takes the eager path; its buffer is still one."""
    x = torch.randn(
        2, 3, 4, 5,
        **F64).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = torch.randn(2, 3, 4, 5, **F64, requires_grad=True)
    params = _params(7)
    got = torch.autograd.grad(_graph(x, y, params, True).sum(), (x, y))
    want = torch.autograd.grad(
        _graph(x.contiguous(), y, params, True).sum(), (x, y))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_no_node_without_gradients_or_while_tracing():
    x = torch.randn(2, 3, 4, 5)
    m, means, var = shared_map(x, True)
    assert m.grad_fn is None and var is not None
    torch.testing.assert_close(means, x.mean((2, 3)))
    traced = torch.jit.trace(lambda t: shared_map(t)[1], x)
    assert 'mean' in str(traced.graph)
    assert 'PythonOp' not in str(traced.graph)


@pytest.mark.parametrize('inplace', [True, False])
def test_a_kernel_output_brings_its_plane_means(inplace):
    c, x = torch.randn(2, 8, 16, 16), torch.randn(2, 8, 16, 16)
    A, B, W = torch.rand(2, 8), torch.rand(2, 8), torch.rand(2, 1, 8)
    with torch.no_grad():
        out = fused_junction(c, A, B, W, [x], relu=True, inplace=inplace)
        kept = junction._remembered_means(out)
        assert kept is not None
        torch.testing.assert_close(kept, out.mean((2, 3)))
        torch.testing.assert_close(shared_map(out)[1], out.mean((2, 3)))
        out.add_(1)  # changed since: its means are taken again
        assert junction._remembered_means(out) is None
        torch.testing.assert_close(shared_map(out)[1], out.mean((2, 3)))
    assert junction._remembered_means(torch.randn(2, 8, 16, 16)) is None


def _bottleneck(seed):
    torch.manual_seed(seed)
    block = Bottleneck(
        16,
        4,
        entry_index=1,
        inbound_indices=[1, 0],
        junction=GateModule(16, 2)).double()
    for p in block.parameters():
        nn.init.normal_(p, std=0.3)
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    return block


@pytest.mark.parametrize('pointwise', [True, False])
def test_bottleneck_descriptor_from_the_last_conv_input(pointwise):
    """A training block whose norms are frozen (``norm_eval=True``): the
    plane means of its last BN's input come from ``conv3``'s input when
    that is a plain 1x1 conv; outputs and gradients are those of the block
    that takes them from the map itself."""
    block, twin = _bottleneck(0), _bottleneck(0)
    for b in (block, twin):
        b.train()
        for m in b.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
    if not pointwise:  # a conv3 with a bias is not folded into the means
        bias = torch.randn(16, **F64)
        for b in (block, twin):
            b.conv3.bias = nn.Parameter(bias.clone())
    x = torch.randn(2, 16, 5, 5, **F64, requires_grad=True)
    x1 = torch.randn(2, 16, 5, 5, **F64, requires_grad=True)
    c, means = block.residual_pre_norm_means(x)
    assert (means is not None) == pointwise
    if pointwise:
        torch.testing.assert_close(means, c.mean((2, 3)))
    twin.residual_pre_norm_means = lambda x: (twin.residual_pre_norm(x), None)
    r = torch.randn(2, 16, 5, 5, **F64)
    got = torch.autograd.grad((block(x, [x, x1]) * r).sum(),
                              (x, x1, *block.parameters()))
    want = torch.autograd.grad((twin(x, [x, x1]) * r).sum(),
                               (x, x1, *twin.parameters()))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_fold_batchnorm_refuses_means_for_batch_statistics():
    bn = nn.BatchNorm2d(3).train()
    c = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match='batch statistics'):
        fold_batchnorm(bn, c, means=c.mean((2, 3)))
    scale, shift, means, c2 = fold_batchnorm(bn.eval(), c, c.mean((2, 3)))
    assert c2 is c
    torch.testing.assert_close(c * scale[:, None, None] + shift[:, None, None],
                               bn(c))
