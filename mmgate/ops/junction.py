"""The gated junction as one autograd function with a one-pass CPU kernel.

A gated block ends with ``act(sigmoid(g0) * BN(c) + sum_k w_k * x_k)``
(Takeda et al., "Skip-connected ResNets", 2022). Per (sample, channel)
plane that is an affine map of the BatchNorm's input ``c`` plus a weighted
sum of the inbounds::

    out = act(A * c + B + sum_k W_k * x_k)

with ``A = sigmoid(g0) * gamma / sigma`` and
``B = sigmoid(g0) * (beta - gamma * mu / sigma)`` (per plane, computed by the
caller, see ``GateModule``). :func:`fused_junction` computes it without
materialising ``BN(c)``, the products or the pre-activation map:

- **forward**: one pass over ``c`` and the inbounds writes ``out``;
- **backward**: one pass over ``dout``, ``out`` (for the ReLU mask), ``c``
  and the inbounds writes ``dc = A * dz`` and ``dx_k = W_k * dz`` and the
  per-plane sums ``sum dz``, ``<dz, c>``, ``<dz, x_k>`` that are the
  gradients of ``B``, ``A`` and ``W_k`` (``dz`` is the gradient masked by the
  ReLU). The small per-plane gradients then flow through the gate MLP and
  the BatchNorm statistics by ordinary autograd.

What it keeps for backward is ``c`` (kept by a BatchNorm anyway), ``out``
(the next block's input) and the inbounds (earlier outputs, alive anyway):
no tensor a plain residual block would not keep.

Mechanism, chosen by measurement (``tools/analysis/benchmark_speed.py``):
a small C kernel (``mmgate/ops/csrc/fused_junction.c``, built by setup.py,
no torch headers) called through ctypes on ranges of planes, one range per
intra-op thread, for contiguous float32 / float64 CPU maps. Everything else
(CUDA, half precision, channels_last, ``torch.compile`` / ONNX / TorchScript
tracing, a build without the kernel) takes the eager path: the same
arithmetic in PyTorch ops, a few passes instead of one. A missing kernel is
logged once (:func:`kernel_status` says why), never silent.
"""
import atexit
import ctypes
import glob
import importlib.util
import os
import os.path as osp
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = ['fused_junction', 'plane_moments', 'kernel_status', 'use_kernel',
           'capturing_graph']

_lib = None
_lib_error: Optional[str] = None
_lib_lock = threading.Lock()
_warned = False
# The kernel can be switched off: use_kernel(False), or the environment
# variable MMGATE_FUSED_JUNCTION=0 (benchmarks of the eager path).
_enabled = os.environ.get('MMGATE_FUSED_JUNCTION', '1') != '0'
_pool: Optional[ThreadPoolExecutor] = None
_pool_size = 0
# Below this many values per map the threads cost more than they save.
_PARALLEL_MIN_NUMEL = 1 << 15
# As in csrc/fused_junction.c: the block of values its backward walks, and
# the most inbounds it takes.
_BLOCK, _MAX_K = 1024, 64
# csrc/fused_junction.c: mg_junction_abi_version()
_ABI_VERSION = 3


def _library_path() -> Optional[str]:
    spec = importlib.util.find_spec('mmgate.ops._fused_junction')
    if spec is not None and spec.origin:
        return spec.origin
    here = osp.dirname(osp.abspath(__file__))
    found = sorted(glob.glob(osp.join(here, '_fused_junction*.so')))
    return found[0] if found else None


def _load():
    """The ctypes library, or None (the reason in ``_lib_error``)."""
    global _lib, _lib_error
    if _lib is not None or _lib_error is not None:
        return _lib
    with _lib_lock:
        if _lib is not None or _lib_error is not None:
            return _lib
        try:
            path = _library_path()
        except ImportError as e:  # a broken build next to the sources
            path, _lib_error = None, f'the kernel module does not load ({e})'
            return None
        if path is None:
            _lib_error = ('mmgate.ops._fused_junction is not built (install '
                          'mmgate with a C compiler: pip install -e .)')
            return None
        try:
            lib = ctypes.CDLL(path)
            if lib.mg_junction_abi_version() != _ABI_VERSION:
                raise OSError('ABI version mismatch; rebuild mmgate')
        except (OSError, AttributeError) as e:
            _lib_error = f'{path} does not load: {e}'
            return None
        i64, vp = ctypes.c_int64, ctypes.c_void_p
        for suffix in ('f32', 'f64'):
            fwd = getattr(lib, f'mg_junction_fwd_{suffix}')
            fwd.argtypes = [i64, i64, i64, i64, i64, ctypes.c_int] + [vp] * 6
            fwd.restype = None
            bwd = getattr(lib, f'mg_junction_bwd_{suffix}')
            bwd.argtypes = [i64, i64, i64, i64, i64, ctypes.c_int] + \
                [vp] * 12
            bwd.restype = None
            mom = getattr(lib, f'mg_plane_moments_{suffix}')
            mom.argtypes = [i64, i64, i64] + [vp] * 3
            mom.restype = None
        _lib = lib
    return _lib


def kernel_status() -> str:
    """``'loaded'``, ``'disabled'`` or why the C kernel is not used."""
    if not _enabled:
        return 'disabled'
    return 'loaded' if _load() is not None else _lib_error


class use_kernel:
    """Context manager (or call) switching the C kernel on or off, e.g.
    ``with use_kernel(False): ...`` to run the eager path."""

    def __init__(self, enabled: bool) -> None:
        global _enabled
        self.previous, _enabled = _enabled, bool(enabled)

    def __enter__(self) -> 'use_kernel':
        return self

    def __exit__(self, *exc) -> None:
        global _enabled
        _enabled = self.previous


def capturing_graph() -> bool:
    """Whether a graph is being captured (TorchScript tracing, ONNX export,
    ``torch.compile`` / ``torch.export``): then the gates run their parts as
    plain PyTorch ops, which exporters can read and FLOP counters count."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export())


def _kernel_applies(tensors: Sequence[Tensor]) -> bool:
    global _warned
    if not _enabled or capturing_graph():
        return False
    first = tensors[0]
    if len(tensors) - 4 > _MAX_K:
        return False
    if first.device.type != 'cpu' or \
            first.dtype not in (torch.float32, torch.float64):
        return False
    if not all(t.dtype == first.dtype and t.device == first.device
               and t.is_contiguous() for t in tensors):
        return False
    if _load() is None:
        if not _warned:
            _warned = True
            from mmengine.logging import print_log
            print_log(f'mmgate: fused junction kernel not used: {_lib_error}'
                      '; the gates run on the eager PyTorch path (slower, '
                      'same results)', logger='current', level=30)
        return False
    return True


def _ptr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


def _ptr_array(tensors: Sequence[Optional[Tensor]]):
    return (ctypes.c_void_p * max(1, len(tensors)))(
        *[_ptr(t) for t in tensors])


def _run_planes(fn, planes: int, numel: int, *args) -> None:
    """``fn(p0, p1, *args)`` over ``[0, planes)``, split across torch's
    intra-op thread count (ctypes releases the GIL)."""
    global _pool, _pool_size
    threads = min(torch.get_num_threads(), planes)
    if threads <= 1 or numel < _PARALLEL_MIN_NUMEL:
        fn(0, planes, *args)
        return
    if _pool is None or _pool_size != threads - 1:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(threads - 1,
                                   thread_name_prefix='mmgate-junction')
        _pool_size = threads - 1
    bounds = [planes * i // threads for i in range(threads + 1)]
    futures = [_pool.submit(fn, bounds[i], bounds[i + 1], *args)
               for i in range(1, threads)]
    fn(bounds[0], bounds[1], *args)
    for f in futures:
        f.result()


def _suffix(t: Tensor) -> str:
    return 'f32' if t.dtype == torch.float32 else 'f64'


def _forward_kernel(c, A, B, W, inbounds, relu, inplace=False) -> Tensor:
    lib = _load()
    n, ch = A.shape
    planes, hw = n * ch, c[0, 0].numel()
    # element i of a plane is read, then written: c may be the output
    out = c if inplace else torch.empty_like(c)
    xs = _ptr_array(inbounds)
    Wt = W.transpose(0, 1).contiguous()  # (K, B, C): W_k of plane p at k*P+p
    _run_planes(getattr(lib, f'mg_junction_fwd_{_suffix(c)}'), planes,
                c.numel(), planes, hw, len(inbounds), int(relu),
                _ptr(c), _ptr(A), _ptr(B), xs, _ptr(Wt), _ptr(out))
    return out


def _backward_kernel(ctx, grad, c, out, A, W, inbounds):
    lib = _load()
    n, ch = A.shape
    planes, hw, k = n * ch, c[0, 0].numel(), len(inbounds)
    need = ctx.needs_input_grad  # c, A, B, W, relu, *inbounds
    dc = torch.empty_like(c) if need[0] else None
    dxs = [torch.empty_like(x) if need[5 + i] else None
           for i, x in enumerate(inbounds)]
    f64 = dict(dtype=torch.float64, device=c.device)
    s0 = torch.empty(planes, **f64) if need[2] else None
    s1 = torch.empty(planes, **f64) if need[1] else None
    sk = torch.empty(k, planes, **f64) if need[3] else None
    Wt = W.transpose(0, 1).contiguous()
    fn = getattr(lib, f'mg_junction_bwd_{_suffix(c)}')
    xs, dx_ptrs = _ptr_array(inbounds), _ptr_array(dxs)

    def run(p0, p1):
        scratch = torch.empty(_BLOCK, dtype=c.dtype)  # one per thread
        fn(p0, p1, planes, hw, k, int(ctx.relu), _ptr(grad), _ptr(out),
           _ptr(c), _ptr(A), xs, _ptr(Wt), _ptr(dc), dx_ptrs, _ptr(s0),
           _ptr(s1), _ptr(sk), _ptr(scratch))

    _run_planes(run, planes, c.numel())
    dtype = c.dtype
    dA = s1.view(n, ch).to(dtype) if s1 is not None else None
    dB = s0.view(n, ch).to(dtype) if s0 is not None else None
    dW = sk.view(k, n, ch).transpose(0, 1).to(dtype) if sk is not None \
        else None
    return dc, dA, dB, dW, dxs


def _plane(t: Tensor) -> Tensor:
    return t.view(*t.shape, 1, 1)


def _channel_dot(a: Tensor, b: Tensor) -> Tensor:
    """``(a * b).sum((2, 3))`` for (B, C, H, W) maps, without building
    ``a * b``; ``b`` is cast to ``a``'s dtype (under autocast a gradient and
    a saved map may differ in precision)."""
    return torch.linalg.vecdot(a.flatten(2), b.flatten(2).to(a.dtype))


def _forward_eager(c, A, B, W, inbounds, relu, inplace=False) -> Tensor:
    if inplace:
        out = c.mul_(_plane(A)).add_(_plane(B))
    else:
        out = torch.addcmul(_plane(B), c, _plane(A))
    for k, x in enumerate(inbounds):
        out.addcmul_(x, _plane(W[:, k]))
    return out.relu_() if relu else out


def _backward_eager(ctx, grad, c, out, A, W, inbounds):
    need = ctx.needs_input_grad
    if ctx.relu:
        grad = torch.ops.aten.threshold_backward(grad, out, 0)
    grad = grad.contiguous()
    dc = grad * _plane(A) if need[0] else None
    dA = _channel_dot(grad, c.contiguous()) if need[1] else None
    dB = grad.sum((2, 3)) if need[2] else None
    dW = torch.stack([_channel_dot(grad, x.contiguous()) for x in inbounds],
                     dim=1) if need[3] else None
    dxs = [grad * _plane(W[:, k]) if need[5 + k] else None
           for k in range(len(inbounds))]
    return dc, dA, dB, dW, dxs


class _FusedJunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, c, A, B, W, relu, *inbounds):
        kernel = _kernel_applies([c, A, B, W, *inbounds])
        fwd = _forward_kernel if kernel else _forward_eager
        out = fwd(c, A, B, W, inbounds, relu)
        ctx.relu, ctx.kernel = relu, kernel
        ctx.save_for_backward(c, out if relu else None, A, W, *inbounds)
        return out

    @staticmethod
    def backward(ctx, grad):
        c, out, A, W, *inbounds = ctx.saved_tensors
        if ctx.kernel:
            grad = grad.contiguous()
        kernel = ctx.kernel and _kernel_applies([grad, c])
        bwd = _backward_kernel if kernel else _backward_eager
        dc, dA, dB, dW, dxs = bwd(ctx, grad, c, out, A, W, inbounds)
        return (dc, dA, dB, dW, None, *dxs)


def fused_junction(c: Tensor, A: Tensor, B: Optional[Tensor], W: Tensor,
                   inbounds: Sequence[Tensor], relu: bool = False,
                   inplace: bool = False) -> Tensor:
    """``act(A * c + B + sum_k W[:, k] * inbounds[k])`` per plane.

    Args:
        c (Tensor): ``(N, C, H, W)``: a BatchNorm's input, or the branch
            output itself (then ``B`` is None or zero).
        A (Tensor): ``(N, C)``.
        B (Tensor, optional): ``(N, C)``; None for zero.
        W (Tensor): ``(N, n, C)``: the weights of the n inbounds.
        inbounds (Sequence[Tensor]): n maps of ``c``'s shape.
        relu (bool): Apply a ReLU (fused). Defaults to False.
        inplace (bool): Write the result into ``c`` (inference: ``c`` is
            not needed afterwards, and the output takes no new memory).
            Only without autograd (``torch.no_grad()``). Defaults to False.

    Returns:
        Tensor: ``(N, C, H, W)``.

    Example:
        >>> c, x = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
        >>> A, B, W = torch.rand(2, 3), torch.zeros(2, 3), torch.rand(2, 1, 3)
        >>> ref = (A[..., None, None] * c + W[:, 0, :, None, None] * x).relu()
        >>> torch.allclose(fused_junction(c, A, B, W, [x], relu=True), ref)
        True
    """
    if W.size(1) != len(inbounds):
        raise ValueError(f'{W.size(1)} weights for {len(inbounds)} inbounds')
    n, ch = c.shape[:2]
    for name, t in (('A', A), ('B', B)):
        if t is not None and t.shape != (n, ch):
            raise ValueError(f'{name} must have shape {(n, ch)}, got '
                             f'{tuple(t.shape)}')
    if B is None:
        B = A.new_zeros(n, ch)
    dtype = c.dtype
    A, B, W = A.to(dtype), B.to(dtype), W.to(dtype)
    if inplace:
        if torch.is_grad_enabled() and any(
                t.requires_grad for t in (c, A, B, W, *inbounds)):
            raise RuntimeError('fused_junction(inplace=True) is for '
                               'inference: autograd needs c')
        kernel = _kernel_applies([c, A, B, W, *inbounds])
        fwd = _forward_kernel if kernel else _forward_eager
        return fwd(c, A, B, W, inbounds, bool(relu), inplace=True)
    return _FusedJunction.apply(c, A, B, W, bool(relu), *inbounds)


def _moments_kernel(c):
    """Plane means and variances by the C kernel (two passes over each plane
    while it is in cache; ``torch.var_mean`` over the inner dimensions is
    several times slower on a CPU)."""
    n, ch = c.shape[:2]
    planes, hw = n * ch, c[0, 0].numel()
    m = c.new_empty(n, ch)
    v = c.new_empty(n, ch)
    _run_planes(getattr(_load(), f'mg_plane_moments_{_suffix(c)}'), planes,
                c.numel(), hw, _ptr(c), _ptr(m), _ptr(v))
    return m, v


class _PlaneMoments(torch.autograd.Function):
    """Mean (and variance) of every (sample, channel) plane; the backward
    pass, ``dc = (dm + 2 * dv * (c - m)) / HW``, is one ``addcmul`` (or, for
    the means alone, a broadcast view: no full-size buffer)."""

    @staticmethod
    def forward(ctx, c, with_var):
        hw = c[0, 0].numel()
        if with_var and _kernel_applies([c]):
            m, v = _moments_kernel(c)
        elif with_var:
            v, m = torch.var_mean(c, dim=(2, 3), unbiased=False)
        else:
            m, v = c.mean(dim=(2, 3)), None
        if with_var:
            ctx.save_for_backward(c, m)
        ctx.hw, ctx.shape, ctx.with_var = hw, c.shape, with_var
        return m, v

    @staticmethod
    def backward(ctx, dm, dv):
        if not ctx.needs_input_grad[0]:
            return None, None
        if dm is None:
            dm = torch.zeros(ctx.shape[:2], dtype=dv.dtype, device=dv.device)
        beta = dm / ctx.hw
        if not ctx.with_var or dv is None:
            return _plane(beta).expand(ctx.shape), None
        c, m = ctx.saved_tensors
        alpha = dv * (2. / ctx.hw)
        beta = beta - alpha * m
        return torch.addcmul(_plane(beta), c, _plane(alpha)), None


def plane_moments(c: Tensor, with_var: bool = True):
    """Per (sample, channel) plane of a ``(N, C, H, W)`` map: the means and,
    with ``with_var``, the (biased) variances, each ``(N, C)``; the variance
    is None without it. Their gradient reaches ``c`` in one pass."""
    return _PlaneMoments.apply(c, bool(with_var))


def _shutdown_pool() -> None:  # pragma: no cover - interpreter exit
    if _pool is not None:
        _pool.shutdown(wait=False)


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: start afresh."""
    global _pool, _pool_size
    _pool, _pool_size = None, 0


atexit.register(_shutdown_pool)
os.register_at_fork(after_in_child=_forget_pool)
