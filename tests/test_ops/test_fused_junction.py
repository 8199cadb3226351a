"""The fused junction: its C kernel, its eager twin, the folded BatchNorm,
and the blocks that use them, against plain autograd."""
import pytest
import torch
import torch.nn as nn

import mmgate.ops.junction as junction
from mmgate.models.backbones import BasicBlock, Bottleneck
from mmgate.models.layers import GateModule
from mmgate.models.layers.norm import fold_batchnorm
from mmgate.ops import fused_junction, kernel_status, plane_moments, use_kernel

F64 = dict(dtype=torch.float64)


def test_kernel_is_built():
    # setup.py builds it; the eager path is a fallback, not the default
    assert kernel_status('cpu') == 'loaded'
    assert kernel_status().startswith('cpu: loaded; cuda: ')
    with use_kernel(False):
        assert kernel_status('cpu') == 'disabled'
    assert kernel_status('cpu') == 'loaded'


def _inputs(k, shape=(2, 5, 6, 7), dtype=torch.float64, grad=True):
    gen = torch.Generator().manual_seed(k)
    n, c = shape[:2]

    def t(*s):
        return torch.randn(*s, generator=gen, dtype=dtype).requires_grad_(grad)

    return (t(*shape), t(n, c), t(n, c),
            t(n, k, c).softmax(1).detach().requires_grad_(grad),
            [t(*shape) for _ in range(k)])


def _reference(c, A, B, W, xs, relu):
    out = A[..., None, None] * c + B[..., None, None]
    for k, x in enumerate(xs):
        out = out + W[:, k, :, None, None] * x
    return out.relu() if relu else out


@pytest.mark.parametrize('kernel', [True, False])
@pytest.mark.parametrize('relu', [True, False])
@pytest.mark.parametrize('k', [1, 2, 3])
def test_gradcheck(kernel, relu, k):
    c, A, B, W, xs = _inputs(k)

    def fn(c, A, B, W, *xs):
        return fused_junction(c, A, B, W, xs, relu)

    with use_kernel(kernel):
        torch.testing.assert_close(
            fn(c, A, B, W, *xs), _reference(c, A, B, W, xs, relu))
        assert torch.autograd.gradcheck(fn, (c, A, B, W, *xs))


def test_kernel_equals_eager_in_float32_on_threads():
    """Large enough for the plane ranges to be split across threads."""
    c, A, B, W, xs = _inputs(3, shape=(4, 16, 32, 32), dtype=torch.float32)
    grad = torch.randn_like(c)
    results = []
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for kernel in (True, False):
            with use_kernel(kernel):
                out = fused_junction(c, A, B, W, xs, relu=True)
                grads = torch.autograd.grad(out, (c, A, B, W, *xs), grad)
            results.append((out, *grads))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_only_what_needs_a_gradient_gets_one():
    c, A, B, W, xs = _inputs(2)
    xs[1].requires_grad_(False)
    B.requires_grad_(False)
    for kernel in (True, False):
        with use_kernel(kernel):
            out = fused_junction(c, A, B, W, xs, relu=True)
            ga = torch.autograd.grad(out.sum(), (c, A, W, xs[0]))
        ref = torch.autograd.grad(
            _reference(c, A, B, W, xs, True).sum(), (c, A, W, xs[0]))
        for a, b in zip(ga, ref):
            torch.testing.assert_close(a, b)


def test_eager_path_for_other_layouts_and_dtypes():
    c, A, B, W, xs = _inputs(
        2, shape=(2, 4, 5, 5), dtype=torch.float32, grad=False)
    ref = _reference(c, A, B, W, xs, True)
    cl = [t.contiguous(memory_format=torch.channels_last) for t in (c, *xs)]
    torch.testing.assert_close(
        fused_junction(cl[0], A, B, W, cl[1:], relu=True), ref)
    bf16 = fused_junction(
        c.bfloat16(), A, B, W, [x.bfloat16() for x in xs], relu=True)
    assert bf16.dtype == torch.bfloat16
    torch.testing.assert_close(bf16.float(), ref, rtol=0.05, atol=0.05)


def test_missing_kernel_is_logged_once_and_the_eager_path_runs(monkeypatch):
    import mmengine.logging
    logged = []
    monkeypatch.setattr(mmengine.logging, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    monkeypatch.setattr(junction, '_lib', None)
    monkeypatch.setattr(junction, '_lib_error',
                        'mmgate.ops._fused_junction is not built')
    monkeypatch.setattr(junction, '_warned', False)
    c, A, B, W, xs = _inputs(1)
    for _ in range(2):
        out = fused_junction(c, A, B, W, xs, relu=True)
    torch.testing.assert_close(out, _reference(c, A, B, W, xs, True))
    assert kernel_status('cpu') == 'mmgate.ops._fused_junction is not built'
    assert len(logged) == 1 and 'not built' in logged[0] and \
        'eager' in logged[0]


def test_bad_shapes_are_named():
    c, A, B, W, xs = _inputs(2, grad=False)
    with pytest.raises(ValueError, match='2 weights for 1 inbounds'):
        fused_junction(c, A, B, W, xs[:1])
    with pytest.raises(ValueError, match=r'A must have shape \(2, 5\)'):
        fused_junction(c, A[:1], B, W, xs)


@pytest.mark.parametrize('with_var', [True, False])
def test_plane_moments(with_var):
    c = torch.randn(2, 3, 4, 5, **F64, requires_grad=True)
    m, v = plane_moments(c, with_var)
    torch.testing.assert_close(m, c.mean((2, 3)))
    if with_var:
        torch.testing.assert_close(v, c.var((2, 3), unbiased=False))
    assert torch.autograd.gradcheck(
        lambda c: [t for t in plane_moments(c, with_var) if t is not None],
        (c, ))


@pytest.mark.parametrize('momentum', [0.1, None])
def test_fold_batchnorm_is_the_module(momentum):
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, momentum=momentum).double()
    nn.init.normal_(bn.weight)
    nn.init.normal_(bn.bias)
    twin = nn.BatchNorm2d(3, momentum=momentum).double()
    twin.load_state_dict(bn.state_dict())
    for training in (True, True, False):
        bn.train(training)
        twin.train(training)
        c = torch.randn(2, 3, 4, 5, **F64, requires_grad=True) * 3 + 1
        scale, shift, means, c2 = fold_batchnorm(bn, c)
        y = c2 * scale[:, None, None] + shift[:, None, None]
        ref = twin(c)
        torch.testing.assert_close(y, ref)
        torch.testing.assert_close(means, c.mean((2, 3)))
        r = torch.randn_like(ref)
        got = torch.autograd.grad((y * r).sum(), (c, bn.weight, bn.bias))
        want = torch.autograd.grad((ref * r).sum(),
                                   (c, twin.weight, twin.bias))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)
        for key, value in twin.state_dict().items():
            torch.testing.assert_close(bn.state_dict()[key], value)


def _block(cls, drop_path_rate=0., with_cp=False):
    torch.manual_seed(0)
    planes = 4 if cls is Bottleneck else 16
    block = cls(
        16,
        planes,
        entry_index=1,
        inbound_indices=[1, 0],
        junction=GateModule(16, 2),
        drop_path_rate=drop_path_rate,
        with_cp=with_cp).double()
    for p in block.parameters():
        nn.init.normal_(p, std=0.3)
    return block


def _definition(block, x, xs):
    """The block by its definition: BN, drop-path, gate, ReLU as separate
    ops of plain autograd."""
    y = block.drop_path(block.residual(x))
    d = torch.cat([t.mean((2, 3), keepdim=True) for t in (y, *xs)], 1)
    gate_y, w = block.gate.gate_weights(d)
    out = y * gate_y[..., None, None] + sum(w[:, k, :, None, None] * t
                                            for k, t in enumerate(xs))
    return out.relu()


@pytest.mark.parametrize('cls', [Bottleneck, BasicBlock])
@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('drop_path_rate,with_cp', [(0., False), (0.5, False),
                                                    (0., True)])
def test_block_equals_definition(cls, training, drop_path_rate, with_cp):
    block = _block(cls, drop_path_rate, with_cp).train(training)
    twin = _block(cls, drop_path_rate).train(training)
    x = torch.randn(3, 16, 6, 6, **F64, requires_grad=True)
    x1 = torch.randn(3, 16, 6, 6, **F64, requires_grad=True)
    r = torch.randn(3, 16, 6, 6, **F64)
    torch.manual_seed(5)
    out = block(x, [x, x1])
    got = torch.autograd.grad((out * r).sum(), (x, x1, *block.parameters()))
    torch.manual_seed(5)
    ref = _definition(twin, x, [x, x1])
    want = torch.autograd.grad((ref * r).sum(), (x, x1, *twin.parameters()))
    torch.testing.assert_close(out, ref)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    if not with_cp:  # checkpointing runs the BNs twice, as in MMDetection
        for key, value in twin.state_dict().items():  # running statistics
            torch.testing.assert_close(block.state_dict()[key], value)


@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('drop_path_rate,with_cp', [(0., False), (0.5, False),
                                                    (0.5, True)])
def test_block_gradcheck(training, drop_path_rate, with_cp):
    block = _block(Bottleneck, drop_path_rate, with_cp).train(training)
    x = torch.randn(2, 16, 4, 4, **F64, requires_grad=True)
    x1 = torch.randn(2, 16, 4, 4, **F64, requires_grad=True)

    def fn(x, x1):
        torch.manual_seed(7)  # the same drop-path mask every call
        return block(x, [x, x1])

    assert torch.autograd.gradcheck(fn, (x, x1))


@pytest.mark.parametrize('kernel', [True, False])
def test_inplace_inference_writes_into_c(kernel):
    c, A, B, W, xs = _inputs(
        2, shape=(2, 4, 5, 5), dtype=torch.float32, grad=False)
    ref = _reference(c, A, B, W, xs, True)
    with use_kernel(kernel), torch.no_grad():
        out = fused_junction(c, A, B, W, xs, relu=True, inplace=True)
    assert out.data_ptr() == c.data_ptr()
    torch.testing.assert_close(out, ref)
    c2, A2, B2, W2, xs2 = _inputs(2)
    with pytest.raises(RuntimeError, match='for inference'):
        fused_junction(c2, A2, B2, W2, xs2, inplace=True)


def test_eval_block_output_reuses_the_branch_memory():
    """In inference the junction writes into the last conv's output."""
    block = _block(Bottleneck).eval()
    x = torch.randn(2, 16, 6, 6, **F64)
    seen = {}

    def hook(module, inputs, output):
        seen['ptr'] = output.data_ptr()

    block.conv3.register_forward_hook(hook)
    with torch.no_grad():
        out = block(x, [x, torch.randn_like(x)])
    assert out.data_ptr() == seen['ptr']


def test_kernel_threads_split_the_planes(monkeypatch):
    """Planes split over the thread pool: the results of one thread."""
    monkeypatch.setattr(junction, '_PARALLEL_MIN_NUMEL', 0)
    c, A, B, W, xs = _inputs(3, shape=(2, 6, 5, 7))
    grad = torch.randn_like(c)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = fused_junction(c, A, B, W, xs, relu=True)
            results.append(
                (out, *torch.autograd.grad(out, (c, A, B, W, *xs), grad)))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_threads_work_in_a_forked_child(monkeypatch):
    """The kernel's worker threads do not survive a fork; a child (e.g. a
    data-loader worker that runs a model) starts its own. The maps are
    small enough that PyTorch's own ops stay single-threaded (GNU OpenMP
    is not usable in a forked child once the parent ran parallel regions),
    and the kernel is told to use its threads even so."""
    import multiprocessing as mp
    monkeypatch.setattr(junction, '_PARALLEL_MIN_NUMEL', 0)
    c, A, B, W, xs = _inputs(
        2, shape=(2, 4, 16, 16), dtype=torch.float32, grad=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fused_junction(c, A, B, W, xs)  # the parent's pool exists
        assert junction._pool is not None
        with mp.get_context('fork').Pool(1) as pool:
            out = pool.apply_async(_child_run, (c, A, B, W, xs)).get(30)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(out, _reference(c, A, B, W, xs, False))


def _child_run(c, A, B, W, xs):
    junction._PARALLEL_MIN_NUMEL = 0
    return fused_junction(c, A, B, W, xs)


@pytest.mark.parametrize('cfg', [
    dict(type='SkipResNet', depth=18, base_channels=8),
    dict(type='SkipResNet', depth=50, base_channels=8),
    dict(type='DenseResNet', depth=50, base_channels=8),
    dict(type='DenseMobileNetV2', widen_factor=0.25),
])
def test_mmcv_fuse_conv_bn_keeps_the_outputs(cfg):
    """MMDetection's deploy step (``fuse_conv_bn``, also in its test.py)
    folds every BN into the conv before it: the branch's last BN (the
    junction then takes the conv output as it is) and the gate MLP's
    (its first matrix product then has a bias)."""
    from mmcv.cnn import fuse_conv_bn

    from mmgate.registry import MODELS
    model = MODELS.build(dict(cfg, type='mmgate.' + cfg['type'])).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            nn.init.normal_(m.weight)
            nn.init.normal_(m.bias)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        fused = fuse_conv_bn(model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
        out = fused(x)
    for a, b in zip(out, ref):
        torch.testing.assert_close(
            a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item())
