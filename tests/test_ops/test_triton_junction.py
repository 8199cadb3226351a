"""The fused junction's Triton kernels against the eager path and plain
autograd.

Without CUDA the kernels run on CPU tensors in Triton's interpreter
(``TRITON_INTERPRET=1``, set by tests/conftest.py before Triton is first
imported); with CUDA on the device. A missing Triton skips every test here
with its reason. ``test_kernels_compile_for_sm90`` compiles the kernels as
they are launched, for an H100 / H200 (sm_90), without a GPU.
"""
import importlib
import os
import subprocess
import sys

import pytest
import torch

import mmgate.ops.junction as junction
from mmgate.ops import fused_junction, kernel_status, use_kernel
from tests.helpers import REPO_ROOT

pytest.importorskip(
    'triton',
    reason='Triton is not installed: the CUDA '
    'junction kernels are not tested')
triton_junction = importlib.import_module('mmgate.ops.triton_junction')

_INTERPRETED = triton_junction.interpreting()


def _device(name):
    if name == 'cpu':
        return pytest.param(
            'cpu',
            marks=pytest.mark.skipif(
                not _INTERPRETED,
                reason='CPU tensors need Triton\'s interpreter: '
                'TRITON_INTERPRET=1 before triton is imported '
                '(tests/conftest.py sets it only without CUDA)'))
    return pytest.param(
        'cuda',
        marks=pytest.mark.skipif(
            not torch.cuda.is_available() or _INTERPRETED,
            reason='no CUDA device (the kernels run in the interpreter here)'))


DEVICES = [_device('cpu'), _device('cuda')]


@pytest.fixture
def calls(monkeypatch):
    """Counts the Triton kernels' forward and backward calls: a test of the
    Triton path fails if the dispatch sent it elsewhere."""
    seen = dict(forward=0, backward=0)
    for name in seen:
        fn = getattr(triton_junction, name)

        def counted(*args, _fn=fn, _name=name, **kwargs):
            seen[_name] += 1
            return _fn(*args, **kwargs)

        monkeypatch.setattr(triton_junction, name, counted)
    return seen


def _inputs(k,
            shape,
            device,
            dtype=torch.float64,
            grad=True,
            channels_last=False,
            seed=0):
    gen = torch.Generator().manual_seed(seed + k)
    n, c = shape[:2]

    def t(*s):
        return torch.randn(*s, generator=gen, dtype=torch.float64)

    maps = [t(*shape) for _ in range(k + 1)]
    if channels_last:
        maps = [m.contiguous(memory_format=torch.channels_last) for m in maps]
    params = [t(n, c), t(n, c), t(n, k, c).softmax(1)]
    out = [
        x.to(device, dtype).requires_grad_(grad)
        for x in [maps[0], *params, *maps[1:]]
    ]
    return out[0], out[1], out[2], out[3], out[4:]


def _reference(c, A, B, W, xs, relu):
    out = A[..., None, None] * c + B[..., None, None]
    for k, x in enumerate(xs):
        out = out + W[:, k, :, None, None] * x
    return out.relu() if relu else out


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('relu', [True, False])
@pytest.mark.parametrize('k', [1, 2, 3])
def test_gradcheck(device, relu, k, calls):
    c, A, B, W, xs = _inputs(k, (2, 3, 3, 4), device)

    def fn(c, A, B, W, *xs):
        return fused_junction(c, A, B, W, xs, relu)

    with use_kernel(True, backend='triton'):
        torch.testing.assert_close(
            fn(c, A, B, W, *xs), _reference(c, A, B, W, xs, relu))
        assert torch.autograd.gradcheck(fn, (c, A, B, W, *xs), fast_mode=True)
    assert calls['forward'] > 0 and calls['backward'] > 0


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype',
                         [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize('channels_last', [False, True])
def test_equals_eager_and_accumulates_in_fp32(device, dtype, channels_last,
                                              calls):
    """Outputs and every gradient against the eager path (float32), and
    against the float64 result rounded once (half precision: the kernels
    accumulate in float32)."""
    c, A, B, W, xs = _inputs(
        3, (2, 5, 6, 7), device, dtype, channels_last=channels_last)
    tensors = (c, A, B, W, *xs)
    grad = torch.randn(c.shape, dtype=torch.float64).to(device, dtype)
    results = []
    for backend in ('triton', None):
        with use_kernel(backend is not None, backend=backend):
            out = fused_junction(c, A, B, W, xs, relu=True)
            results.append((out, *torch.autograd.grad(out, tensors, grad)))
    assert calls['forward'] == 1 and calls['backward'] == 1
    got, eager = results
    assert got[0].stride() == c.stride()  # the layout is kept
    if dtype == torch.float32:
        for a, b in zip(got, eager):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        return
    f64 = [t.detach().double().requires_grad_() for t in tensors]
    ref = _reference(*f64[:4], f64[4:], True)
    want = (ref, *torch.autograd.grad(ref, f64, grad.double()))
    for a, b in zip(got, want):
        # one rounding of the float64 result, up to a unit in the last place
        torch.testing.assert_close(a, b.to(dtype), atol=1e-3, rtol=1e-2)


@pytest.mark.parametrize('device', DEVICES)
def test_only_what_needs_a_gradient_gets_one(device, calls):
    c, A, B, W, xs = _inputs(3, (2, 4, 3, 5), device)
    B.requires_grad_(False)
    xs[1].requires_grad_(False)
    with use_kernel(True, backend='triton'):
        out = fused_junction(c, A, B, W, xs, relu=True)
        got = torch.autograd.grad(out.square().sum(), (c, A, W, xs[0], xs[2]))
    want = torch.autograd.grad(
        _reference(c, A, B, W, xs, True).square().sum(),
        (c, A, W, xs[0], xs[2]))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    # dA, dW and no map gradient: the per-plane sums alone
    with use_kernel(True, backend='triton'):
        out = fused_junction(c.detach(), A, B, W, [x.detach() for x in xs])
        got = torch.autograd.grad(out.sum(), (A, W))
    want = torch.autograd.grad(_reference(c, A, B, W, xs, False).sum(), (A, W))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert calls['backward'] == 2


@pytest.mark.parametrize('device', DEVICES)
def test_many_inbounds_in_one_pass(device, calls):
    """Inbounds are a tuple argument: six are one kernel launch each way."""
    c, A, B, W, xs = _inputs(6, (1, 3, 4, 4), device)
    with use_kernel(True, backend='triton'):
        out = fused_junction(c, A, B, W, xs, relu=True)
        got = torch.autograd.grad(out.sum(), (c, A, B, W, *xs))
    ref = _reference(c, A, B, W, xs, True)
    torch.testing.assert_close(out, ref)
    for a, b in zip(got, torch.autograd.grad(ref.sum(), (c, A, B, W, *xs))):
        torch.testing.assert_close(a, b)
    assert calls == dict(forward=1, backward=1)


@pytest.mark.parametrize('device', DEVICES)
def test_inplace_inference_and_empty_batch(device, calls):
    c, A, B, W, xs = _inputs(2, (2, 4, 5, 3), device, grad=False)
    ref = _reference(c, A, B, W, xs, True)
    with use_kernel(True, backend='triton'), torch.no_grad():
        out = fused_junction(c, A, B, W, xs, relu=True, inplace=True)
    assert out.data_ptr() == c.data_ptr()
    torch.testing.assert_close(out, ref)
    c, A, B, W, xs = _inputs(2, (0, 4, 5, 3), device)
    with use_kernel(True, backend='triton'):
        out = fused_junction(c, A, B, W, xs, relu=True)
        grads = torch.autograd.grad(out.sum(), (c, A, B, W, *xs))
    assert out.shape == (0, 4, 5, 3)
    assert [tuple(g.shape)
            for g in grads] == [tuple(t.shape) for t in (c, A, B, W, *xs)]
    assert calls['forward'] == 2


@pytest.mark.parametrize('device', DEVICES)
def test_a_backbone_on_the_triton_path(device, calls):
    """SkipResNet-18 (tiny) trains the same on the Triton path as on the
    eager one: outputs, input and parameter gradients."""
    from mmgate.models import SkipResNet
    from tests.helpers import assert_same_forward_backward, forward_backward
    model = SkipResNet(depth=18, base_channels=4, norm_eval=False).double()
    model.to(device).train()
    twin = SkipResNet(depth=18, base_channels=4, norm_eval=False).double()
    twin.load_state_dict(model.state_dict())
    twin.to(device).train()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64, device=device)
    with use_kernel(True, backend='triton'):
        got = forward_backward(model, x)
    with use_kernel(False):
        want = forward_backward(twin, x)
    assert_same_forward_backward(got, want)
    assert calls['forward'] == 8 and calls['backward'] == 8


def test_dispatch_and_status():
    c, A, B, W, xs = _inputs(1, (1, 2, 3, 3), 'cpu', torch.float32)
    assert junction._junction_backend(c, A, B, W, xs) == 'c'
    with use_kernel(True, backend='triton'):
        assert junction._junction_backend(c, A, B, W, xs) == 'triton'
        # a layout it does not read (h and w swapped in memory)
        odd = c.transpose(2, 3).contiguous().transpose(2, 3)
        xs_odd = [x.transpose(2, 3).contiguous().transpose(2, 3) for x in xs]
        assert junction._junction_backend(odd, A, B, W, xs_odd) is None
        assert kernel_status('cpu').startswith('triton ')
    with use_kernel(False, backend='triton'):
        assert junction._junction_backend(c, A, B, W, xs) is None
        assert kernel_status('cuda') == 'disabled'
    status = kernel_status()
    assert status.startswith('cpu: loaded; cuda: triton ')
    with pytest.raises(ValueError, match='backend must be one of'):
        use_kernel(True, backend='cuda')


def _python(code, env):
    """``python -c code`` in the repository with ``env``."""
    return subprocess.run([sys.executable, '-c', code],
                          env=env,
                          cwd=REPO_ROOT,
                          capture_output=True,
                          text=True,
                          timeout=600)


def test_switch_off_by_environment():
    """``MMGATE_FUSED_JUNCTION=0`` turns both kernels off."""
    code = ('from mmgate.ops import kernel_status; '
            "print(kernel_status('cpu'), kernel_status('cuda'))")
    out = _python(code, dict(os.environ, MMGATE_FUSED_JUNCTION='0'))
    assert out.stdout.split() == ['disabled', 'disabled'], out.stderr


def _compile_for_sm90():
    """Run the host code of every kernel variant on CPU tensors with each
    launch replaced by a compilation for sm_90 (what Triton's launcher
    compiles, from the same specialisation of the same arguments);
    print the variants compiled."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile, make_backend
    from triton.runtime.jit import create_function_from_signature
    assert not triton_junction.interpreting()
    target = GPUTarget('cuda', 90, 32)
    backend = make_backend(target)
    compiled = []

    def launch(kernel, grid, *args, **kwargs):
        binder = create_function_from_signature(kernel.signature,
                                                kernel.params, backend)
        bound, spec, options = binder(*args, **kwargs)
        options, sig, constexprs, attrs = kernel._pack_args(
            backend, kwargs, bound, spec, options)
        binary = compile(
            ASTSource(kernel, sig, constexprs, attrs),
            target=target,
            options=options.__dict__)
        assert binary.asm['cubin']
        compiled.append(kernel.__name__)

    triton_junction._launch = launch
    triton_junction._check_device = lambda t: None
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for channels_last in (False, True):
            c, A, B, W, xs = _inputs(
                3, (2, 8, 6, 6),
                'cpu',
                dtype,
                grad=False,
                channels_last=channels_last)
            out = triton_junction.forward(c, A, B, W, xs, True)
            need = [True, True, True, True, False, True, False, True]
            triton_junction.backward(need, True, out, c, out, A, W, xs)
    print(' '.join(compiled))


def test_kernels_compile_for_sm90():
    pytest.importorskip(
        'triton.backends.nvidia',
        reason="Triton's NVIDIA backend is not installed")
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    code = ('from tests.test_ops.test_triton_junction import '
            '_compile_for_sm90; _compile_for_sm90()')
    out = _python(code, env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ['_junction_fwd', '_junction_bwd'] * 6
