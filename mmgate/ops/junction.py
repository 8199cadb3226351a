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

A map that junctions read is handed to them by :func:`shared_map`: an
identity autograd node that also takes the map's plane moments (an
inbound's global descriptor; the means and variances of a folded
BatchNorm's input ``c``). An inbound of a Skip stage is read by the
junctions 1, 2, 4, ... blocks later: the backward pass of each adds its
``W_k * dz`` into one gradient buffer owned by the node (the first writes
it; ``dc`` goes to ``c``'s node likewise), and the node adds the rest of
the map's gradient (the next block's input gradient, the moments'
gradient) in one more pass: no junction returns a fresh full-size gradient
that autograd would then add up map by map.

Mechanism, chosen by measurement (``tools/analysis/benchmark_speed.py``):

- CPU: a small C kernel (``mmgate/ops/csrc/fused_junction.c``, built by
  setup.py, no torch headers) called through ctypes on ranges of planes,
  one range per intra-op thread, for contiguous float32 / float64 maps;
- CUDA: Triton kernels (``triton_junction.py``) for float16 / bfloat16 /
  float32 / float64 maps, contiguous or channels_last, accumulating in
  float32 (float64 for float64).

Everything else (other devices and layouts, half precision on the CPU,
``torch.compile`` / ONNX / TorchScript tracing, a build without the C
kernel, no Triton) takes the eager path: the same arithmetic in PyTorch
ops, a few passes instead of one. A missing kernel is logged once
(:func:`kernel_status` says why), never silent. ``use_kernel(False)`` or
``MMGATE_FUSED_JUNCTION=0`` switches both kernels off.
"""
import atexit
import ctypes
import glob
import importlib.util
import os
import os.path as osp
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = [
    'fused_junction', 'plane_moments', 'shared_map', 'kernel_status',
    'use_kernel', 'capturing_graph'
]

_lib = None
_lib_error: Optional[str] = None
_lib_lock = threading.Lock()
_warned = False
# The Triton kernels (module triton_junction), imported on the first map
# that would take them
_triton = None
_triton_error: Optional[str] = None
_triton_warned = False
# The kernels can be switched off: use_kernel(False), or the environment
# variable MMGATE_FUSED_JUNCTION=0 (benchmarks of the eager path).
_enabled = os.environ.get('MMGATE_FUSED_JUNCTION', '1') != '0'
# use_kernel(True, backend='triton'): the Triton kernels for CPU maps too
# (the tests, in Triton's interpreter)
_BACKENDS = (None, 'triton')
_backend: Optional[str] = None
_pool: Optional[ThreadPoolExecutor] = None
_pool_size = 0
# Below this many values per map the threads cost more than they save.
_PARALLEL_MIN_NUMEL = 1 << 15
# As in csrc/fused_junction.c: the most inbounds it takes.
_MAX_K = 64
# csrc/fused_junction.c: mg_junction_abi_version()
_ABI_VERSION = 6
# Per thread: the last map the C forward kernel wrote and its plane means
_last_output = threading.local()


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
        # after the plane range [p0, p1)
        args = dict(
            mg_junction_fwd=[i64, i64, i64, ctypes.c_int] + [vp] * 7,
            mg_junction_bwd=[i64, i64, i64, ctypes.c_int, ctypes.c_uint64] +
            [vp] * 11,
            mg_plane_moments=[i64] + [vp] * 3,
            mg_plane_add=[i64] + [vp] * 6)
        for name, rest in args.items():
            for suffix in ('f32', 'f64'):
                fn = getattr(lib, f'{name}_{suffix}')
                fn.argtypes, fn.restype = [i64, i64] + rest, None
        _lib = lib
    return _lib


def _load_triton():
    """The Triton kernels' module, or None (the reason in
    ``_triton_error``)."""
    global _triton, _triton_error
    if _triton is not None or _triton_error is not None:
        return _triton
    with _lib_lock:
        if _triton is None and _triton_error is None:
            try:
                from . import triton_junction
                _triton = triton_junction
            except (ImportError, RuntimeError, OSError) as e:
                _triton_error = f'triton does not import ({e})'
    return _triton


def kernel_status(device: Optional[str] = None) -> str:
    """Whether the fused junction runs a kernel on ``device``'s maps:
    ``'loaded'`` (the C kernel, CPU), ``'triton <version>'`` (CUDA),
    ``'disabled'``, or why not; without ``device``, both:
    ``'cpu: ...; cuda: ...'``.

    Example:
        >>> kernel_status('cpu')
        'loaded'
    """
    if device is None:
        return f"cpu: {kernel_status('cpu')}; cuda: {kernel_status('cuda')}"
    kind = torch.device(device).type
    if not _enabled:
        return 'disabled'
    if kind == 'cpu' and _backend != 'triton':
        return 'loaded' if _load() is not None else _lib_error
    if kind not in ('cpu', 'cuda'):
        return f'no kernel for {kind} maps (eager path)'
    if _load_triton() is None:
        return _triton_error
    status = f'triton {_triton.triton_version()}'
    if _triton.interpreting():
        return status + ' (interpreter, TRITON_INTERPRET=1)'
    if kind == 'cuda' and not torch.cuda.is_available():
        return status + ' (no CUDA device here)'
    return status


class use_kernel:
    """Context manager (or call) switching the kernels on or off, e.g.
    ``with use_kernel(False): ...`` to run the eager path.

    Args:
        enabled (bool): Use the kernels (C on CPU, Triton on CUDA).
        backend (str, optional): ``'triton'`` sends CPU maps to the Triton
            kernels too (they run in Triton's interpreter, which needs
            ``TRITON_INTERPRET=1`` before ``triton`` is first imported: the
            tests). Defaults to None (by device).
    """

    def __init__(self, enabled: bool, backend: Optional[str] = None) -> None:
        global _enabled, _backend
        if backend not in _BACKENDS:
            raise ValueError(f'backend must be one of {_BACKENDS}, got '
                             f'{backend!r}')
        self.previous = (_enabled, _backend)
        _enabled, _backend = bool(enabled), backend

    def __enter__(self) -> 'use_kernel':
        return self

    def __exit__(self, *exc) -> None:
        global _enabled, _backend
        _enabled, _backend = self.previous


def capturing_graph() -> bool:
    """Whether a graph is being captured (TorchScript tracing, ONNX export,
    ``torch.compile`` / ``torch.export``): then the gates run their parts as
    plain PyTorch ops, which exporters can read and FLOP counters count."""
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export())


def _kernel_applies(tensors: Sequence[Tensor]) -> bool:
    """Whether the C kernel takes these tensors (the first a map)."""
    global _warned
    if not _enabled or capturing_graph() or _backend == 'triton':
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
            print_log(
                f'mmgate: fused junction kernel not used: {_lib_error}'
                '; the gates run on the eager PyTorch path (slower, '
                'same results)',
                logger='current',
                level=30)
        return False
    return True


def _triton_applies(maps: Sequence[Tensor], params: Sequence[Tensor]) -> bool:
    """Whether the Triton kernels take these maps (``c``, the inbounds)
    and per-plane tensors (``A``, ``B``, ``W``): CUDA maps, or CPU maps
    under ``use_kernel(True, backend='triton')``."""
    global _triton_warned
    if not _enabled or capturing_graph():
        return False
    first = maps[0]
    kind = first.device.type
    if not (kind == 'cuda' or (kind == 'cpu' and _backend == 'triton')):
        return False
    if _load_triton() is None:
        if not _triton_warned:
            _triton_warned = True
            from mmengine.logging import print_log
            print_log(
                'mmgate: fused junction kernel not used on '
                f'{kind}: {_triton_error}; the gates run on the eager '
                'PyTorch path (slower, same results)',
                logger='current',
                level=30)
        return False
    return _triton.applies(maps) and all(
        p.device == first.device and p.dtype == first.dtype for p in params)


def _junction_backend(c: Tensor, A: Tensor, B: Tensor, W: Tensor,
                      inbounds: Sequence[Tensor]) -> Optional[str]:
    """``'c'``, ``'triton'`` or None (eager) for a junction's tensors."""
    if _kernel_applies([c, A, B, W, *inbounds]):
        return 'c'
    if _triton_applies([c, *inbounds], [A, B, W]):
        return 'triton'
    return None


def _ptr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


def _ptr_array(tensors: Sequence[Optional[Tensor]]):
    return (ctypes.c_void_p *
            max(1, len(tensors)))(*[_ptr(t) for t in tensors])


def _run_planes(name: str, dtype: torch.dtype, planes: int, numel: int,
                *args) -> None:
    """Kernel ``name`` for ``dtype`` over the planes ``[0, planes)``, split
    across torch's intra-op thread count (a Python thread pool: ctypes
    releases the GIL)."""
    global _pool, _pool_size
    suffix = 'f32' if dtype == torch.float32 else 'f64'
    threads = min(torch.get_num_threads(), planes)
    fn = getattr(_load(), f'{name}_{suffix}')
    if threads <= 1 or numel < _PARALLEL_MIN_NUMEL:
        fn(0, planes, *args)
        return
    if _pool is None or _pool_size != threads - 1:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(
            threads - 1, thread_name_prefix='mmgate-junction')
        _pool_size = threads - 1
    bounds = [planes * i // threads for i in range(threads + 1)]
    futures = [
        _pool.submit(fn, bounds[i], bounds[i + 1], *args)
        for i in range(1, threads)
    ]
    fn(bounds[0], bounds[1], *args)
    for f in futures:
        f.result()


def _forward_kernel(c, A, B, W, inbounds, relu, inplace=False) -> Tensor:
    n, ch = A.shape
    planes, hw = n * ch, c.shape[2:].numel()
    # element i of a plane is read, then written: c may be the output
    out = c if inplace else torch.empty_like(c)
    xs = _ptr_array(inbounds)
    Wt = W.transpose(0, 1).contiguous()  # (K, B, C): W_k of plane p at k*P+p
    sums = torch.empty(planes, dtype=torch.float64)
    _run_planes('mg_junction_fwd', c.dtype, planes, c.numel(), planes, hw,
                len(inbounds), int(relu), _ptr(c), _ptr(A), _ptr(B), xs,
                _ptr(Wt), _ptr(out), _ptr(sums))
    _last_output.value = (weakref.ref(out), out._version,
                          (sums / hw).view(n, ch).to(out.dtype))
    return out


def _remembered_means(x: Tensor) -> Optional[Tensor]:
    """The plane means of ``x`` if it is the map the C forward kernel
    last wrote in this thread, unchanged since (the next block's entry is
    that map: its descriptor then costs no pass over it)."""
    last = getattr(_last_output, 'value', None)
    if last is None:
        return None
    ref, version, means = last
    return means if ref() is x and x._version == version else None


def _backward_kernel(ctx, grad, c, out, A, W, inbounds, acc):
    n, ch = A.shape
    planes, hw, k = n * ch, c.shape[2:].numel(), len(inbounds)
    need = ctx.needs_input_grad  # c, A, B, W, relu, *inbounds
    dc = torch.empty_like(c) if need[0] else None
    dxs = _inbound_grad_buffers(need, inbounds, acc)
    add_mask = sum(1 << i for i, a in enumerate(acc) if a is not None)
    f64 = dict(dtype=torch.float64, device=c.device)
    s0 = torch.empty(planes, **f64) if need[2] else None
    s1 = torch.empty(planes, **f64) if need[1] else None
    sk = torch.empty(k, planes, **f64) if need[3] else None
    Wt = W.transpose(0, 1).contiguous()
    _run_planes('mg_junction_bwd', c.dtype, planes, c.numel(), planes, hw, k,
                int(ctx.relu), add_mask, _ptr(grad), _ptr(out), _ptr(c),
                _ptr(A), _ptr_array(inbounds), _ptr(Wt), _ptr(dc),
                _ptr_array(dxs), _ptr(s0), _ptr(s1), _ptr(sk))
    dtype = c.dtype
    dA = s1.view(n, ch).to(dtype) if s1 is not None else None
    dB = s0.view(n, ch).to(dtype) if s0 is not None else None
    dW = sk.view(k, n, ch).transpose(0, 1).to(dtype) if sk is not None \
        else None
    return dc, dA, dB, dW, dxs


def _forward_triton(c, A, B, W, inbounds, relu, inplace=False) -> Tensor:
    return _triton.forward(c, A, B, W, inbounds, relu, inplace)


def _backward_triton(ctx, grad, c, out, A, W, inbounds, acc):
    return _triton.backward(ctx.needs_input_grad, ctx.relu, grad, c, out, A, W,
                            inbounds, acc)


def _inbound_grad_buffers(need: Sequence[bool], inbounds: Sequence[Tensor],
                          acc: Sequence[Optional[Tensor]]):
    """Where a backward kernel puts ``dx_k``: the buffer ``acc[k]`` it
    adds into, a fresh map, or None (no gradient wanted)."""
    return [
        a if a is not None else torch.empty_like(x) if need[5 + i] else None
        for i, (x, a) in enumerate(zip(inbounds, acc))
    ]


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


def _backward_eager(ctx, grad, c, out, A, W, inbounds, acc):
    need = ctx.needs_input_grad
    if ctx.relu:
        grad = torch.ops.aten.threshold_backward(grad, out, 0)
    grad = grad.contiguous()
    dc = grad * _plane(A) if need[0] else None
    dA = _channel_dot(grad, c.contiguous()) if need[1] else None
    dB = grad.sum((2, 3)) if need[2] else None
    dW = torch.stack([_channel_dot(grad, x.contiguous()) for x in inbounds],
                     dim=1) if need[3] else None
    dxs = [
        None if not need[5 + k] else grad * _plane(W[:, k])
        if acc[k] is None else acc[k].addcmul_(grad, _plane(W[:, k]))
        for k in range(len(inbounds))
    ]
    return dc, dA, dB, dW, dxs


# by backend: the C kernel, the Triton kernels, PyTorch ops
_FORWARD = {
    'c': _forward_kernel,
    'triton': _forward_triton,
    None: _forward_eager
}
_BACKWARD = {
    'c': _backward_kernel,
    'triton': _backward_triton,
    None: _backward_eager
}


class _FusedJunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, c, A, B, W, relu, *inbounds):
        backend = _junction_backend(c, A, B, W, inbounds)
        out = _FORWARD[backend](c, A, B, W, inbounds, relu)
        ctx.relu, ctx.backend = relu, backend
        # (a captured graph has no shared maps, nor grad_fn to look at)
        ctx.sinks = [None] * (1 + len(inbounds)) if capturing_graph() \
            else _sinks([c, *inbounds])
        ctx.save_for_backward(c, out if relu else None, A, W, *inbounds)
        return out

    @staticmethod
    def backward(ctx, grad):
        c, out, A, W, *inbounds = ctx.saved_tensors
        need = ctx.needs_input_grad
        # the shared maps' gradient buffers this backward writes or adds
        # into: dc only as a map's first gradient, dx_k either way
        wants = [need[0], *need[5:]]  # c is input 0, inbound k 5 + k
        sinks = [
            s if s is not None and w and _will_run(s) else None
            for s, w in zip(ctx.sinks, wants)
        ]
        acc = [None if s is None else _pending(s) for s in sinks]
        if acc[0] is not None:
            sinks[0] = acc[0] = None
        c_sink, sinks, acc = sinks[0], sinks[1:], acc[1:]
        backend = ctx.backend
        if backend == 'c':
            grad = grad.contiguous()
            maps = [grad, c, *(a for a in acc if a is not None)]
            if not _kernel_applies(maps):
                backend = None
        elif backend == 'triton' and (not _enabled or capturing_graph()):
            backend = None  # switched off since the forward
        dc, dA, dB, dW, dxs = _BACKWARD[backend](ctx, grad, c, out, A, W,
                                                 inbounds, acc)
        for i, s in enumerate(sinks):
            if s is not None:  # the node hands it on
                s.sink_grad, dxs[i] = dxs[i], None
        if c_sink is not None:
            c_sink.sink_grad, dc = dc, None
        return (dc, dA, dB, dW, None, *dxs)


def fused_junction(c: Tensor,
                   A: Tensor,
                   B: Optional[Tensor],
                   W: Tensor,
                   inbounds: Sequence[Tensor],
                   relu: bool = False,
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
        backend = _junction_backend(c, A, B, W, inbounds)
        return _FORWARD[backend](
            c, A, B, W, inbounds, bool(relu), inplace=True)
    return _FusedJunction.apply(c, A, B, W, bool(relu), *inbounds)


def _will_run(node) -> bool:
    """Whether the running backward pass runs ``node`` (a partial one,
    ``torch.autograd.grad(..., inputs)``, may not: then the gradient is
    returned as usual)."""
    try:
        return torch._C._will_engine_execute_node(node)
    except RuntimeError:  # not called by the autograd engine
        return False


def _pending(node) -> Optional[Tensor]:
    """The gradient buffer of a :func:`shared_map` node in this backward
    pass so far (None before its first junction; a buffer left by an
    earlier, interrupted pass is dropped)."""
    task = torch._C._current_graph_task_id()
    if node.sink_task != task:
        node.sink_task, node.sink_grad = task, None
    return node.sink_grad


def _sinks(maps: Sequence[Tensor]) -> list:
    """Per map: the :func:`shared_map` node that collects its gradient, if
    it is that node's map output (each node once), else None."""
    sinks, seen = [], set()
    for x in maps:
        node = x.grad_fn
        if not isinstance(node, _SharedMap._backward_cls) or \
                x.output_nr != 0 or id(node) in seen:
            node = None
        else:
            seen.add(id(node))
        sinks.append(node)
    return sinks


def _plane_means(c: Tensor) -> Tensor:
    """``(N, C)`` means of the planes; half precision accumulated in
    float32."""
    if c.dtype in (torch.float16, torch.bfloat16):
        return c.mean(dim=(2, 3), dtype=torch.float32).to(c.dtype)
    return c.mean(dim=(2, 3))


def _moments_kernel(c):
    """Plane means and variances by the C kernel (two passes over each plane
    while it is in cache; ``torch.var_mean`` over the inner dimensions is
    several times slower on a CPU)."""
    n, ch = c.shape[:2]
    planes, hw = n * ch, c.shape[2:].numel()
    m = c.new_empty(n, ch)
    v = c.new_empty(n, ch)
    _run_planes('mg_plane_moments', c.dtype, planes, c.numel(), hw, _ptr(c),
                _ptr(m), _ptr(v))
    return m, v


def _moments(c: Tensor, with_var: bool):
    """``(means, variances or None)`` of the planes."""
    if with_var and _kernel_applies([c]):
        return _moments_kernel(c)
    if with_var:
        v, m = torch.var_mean(c, dim=(2, 3), unbiased=False)
        return m, v
    m = _remembered_means(c)
    return (_plane_means(c) if m is None else m), None


def _add_planes(buf: Optional[Tensor], grad: Optional[Tensor],
                c: Optional[Tensor], alpha: Optional[Tensor],
                beta: Optional[Tensor], shape) -> Optional[Tensor]:
    """``buf + grad + (alpha * c + beta)`` with ``alpha``, ``beta`` ``(N,
    C)`` (one value per plane), any term possibly None, in one pass, into
    ``buf`` when there is one."""
    a, g = (grad, None) if buf is None else (buf, grad)
    if alpha is None:
        c = None
    if a is None:  # the moments' gradient alone
        if c is not None:
            return torch.addcmul(_plane(beta), c, _plane(alpha))
        return None if beta is None else _plane(beta).expand(shape)
    if g is None and beta is None and c is None:
        return a
    out = torch.empty_like(a) if buf is None else buf
    dtype = a.dtype
    alpha, beta = (None if t is None else t.to(dtype).contiguous()
                   for t in (alpha, beta))
    extra = [t for t in (g, c, alpha, beta) if t is not None]
    if a.dim() == 4 and _kernel_applies([out, a, *extra]):
        n, ch = a.shape[:2]
        _run_planes('mg_plane_add', a.dtype, n * ch, a.numel(),
                    a.shape[2:].numel(), _ptr(out), _ptr(a), _ptr(g), _ptr(c),
                    _ptr(alpha), _ptr(beta))
        return out
    term = None if beta is None and c is None else \
        _plane(beta) if c is None else \
        torch.addcmul(_plane(beta), c, _plane(alpha))
    if buf is None:  # the gradient autograd gave is not written to
        return a + term
    if g is not None:
        buf.add_(g)
    return buf if term is None else buf.add_(term)


class _SharedMap(torch.autograd.Function):
    """Identity on a map, plus its plane means (and variances); the
    collector of the gradient that the junctions reading the map add into
    ``sink_grad``. Backward: that buffer, plus the map's other gradient,
    plus ``dc = (dm + 2 * dv * (c - m)) / HW`` of the moments, in one
    pass."""

    @staticmethod
    def forward(ctx, c, with_var):
        ctx.set_materialize_grads(False)
        ctx.sink_grad = ctx.sink_task = None
        m, v = _moments(c, with_var)
        if with_var:
            ctx.save_for_backward(c, m)
        ctx.shape, ctx.with_var = c.shape, with_var
        return c.view_as(c), m, v

    @staticmethod
    def backward(ctx, grad, dm, dv):
        buf = ctx.sink_grad if ctx.sink_task == \
            torch._C._current_graph_task_id() else None
        ctx.sink_grad = ctx.sink_task = None
        if not ctx.needs_input_grad[0]:
            return None, None
        hw = ctx.shape[2:].numel()
        c = alpha = None
        beta = None if dm is None else dm / hw
        if ctx.with_var and dv is not None:
            c, m = ctx.saved_tensors
            alpha = dv * (2. / hw)
            beta = -alpha * m if beta is None else beta - alpha * m
        return _add_planes(buf, grad, c, alpha, beta, ctx.shape), None


def shared_map(x: Tensor, with_var: bool = False):
    """``x`` as a map that junctions read, with its plane moments.

    When ``x`` needs a gradient, the map returned is ``x`` as the output of
    one autograd node: a :func:`fused_junction` that reads exactly this
    tensor (as its ``c`` or as an inbound) adds its share of the gradient
    into that node's buffer instead of returning a fresh map, and the node
    adds the gradient of everything else that reads the map and that of
    the moments in one pass. While a graph is being captured (tracing,
    export, ``torch.compile``) the moments are plain PyTorch ops.

    Args:
        x (Tensor): ``(N, C, H, W)``.
        with_var (bool): Also the (biased) variances. Defaults to False.

    Returns:
        tuple: the map to hand to the junctions (and to anything else that
        reads ``x``), its ``(N, C)`` plane means and variances (None
        without ``with_var``).

    Example:
        >>> x = torch.randn(2, 3, 4, 4, requires_grad=True)
        >>> x2, means, _ = shared_map(x)
        >>> A, W = torch.rand(2, 3), torch.rand(2, 1, 3)
        >>> out = fused_junction(x2, A, None, W, [x2]) + means[..., None, None]
        >>> out.sum().backward()
        >>> want = A + W[:, 0] + 1 / 16  # every value of a 4x4 plane
        >>> torch.allclose(x.grad, want[..., None, None].expand(2, 3, 4, 4))
        True
    """
    if capturing_graph():
        if with_var:
            v, m = torch.var_mean(x, dim=(2, 3), unbiased=False)
            return x, m, v
        return x, _plane_means(x), None
    return _SharedMap.apply(x, bool(with_var))


def plane_moments(c: Tensor, with_var: bool = True):
    """Per (sample, channel) plane of a ``(N, C, H, W)`` map: the means and,
    with ``with_var``, the (biased) variances, each ``(N, C)``; the variance
    is None without it. Their gradient reaches ``c`` in one pass (for the
    means alone, as a broadcast view: no full-size buffer)."""
    return shared_map(c, with_var)[1:]


def _shutdown_pool() -> None:  # pragma: no cover - interpreter exit
    if _pool is not None:
        _pool.shutdown(wait=False)


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: start afresh."""
    global _pool, _pool_size
    _pool, _pool_size = None, 0


atexit.register(_shutdown_pool)
os.register_at_fork(after_in_child=_forget_pool)
