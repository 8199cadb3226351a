"""The fused junction's Triton kernels: the CUDA twin of the C kernel.

The same arithmetic as ``csrc/fused_junction.c`` (see ``junction.py``), per
(sample, channel) plane ``p``::

    out = act(A[p] * c + B[p] + sum_k W[k, p] * x_k)

forward in one pass over ``c`` and the inbounds; backward in one pass over
``dout`` (and ``out`` for the ReLU mask, ``c`` and ``x_k`` for the
per-plane sums) that writes ``dc = A * dz``, ``dx_k = W_k * dz`` and the
sums ``sum dz``, ``<dz, c>``, ``<dz, x_k>`` (the gradients of ``B``, ``A``
and ``W_k``); a ``dx_k`` can be added into the gradient buffer of a shared
map instead of written (``junction.shared_map``). Loads are converted to
float32 (float64 for float64 maps), so float16 / bfloat16 maps are
accumulated in float32 and rounded once.

Each program owns one ``BLOCK_C x BLOCK_S`` tile (channels x spatial
positions) of one sample; a position ``s = h * W + w`` of a plane is at
``n * stride_n + c * stride_c + s * stride_s``, which covers contiguous
(``stride_s == 1``) and channels_last (``stride_c == 1``) maps, the tile's
long side on the contiguous one. The per-plane sums of a tile are written
to a ``(rows, tiles, planes)`` buffer and added up by ``torch.sum``
afterwards: no atomics, the same result every run. The inbounds are a
tuple argument (``xs[k]`` in a ``tl.static_range``), so any number of them
is one pass.

Triton reads ``TRITON_INTERPRET`` through ``triton.knobs.runtime.interpret``
whenever ``@triton.jit`` decorates a function, its own library functions
(``tl.sum``) included, i.e. when ``triton`` is first imported: set
``TRITON_INTERPRET=1`` before that, and the same kernels run on CPU tensors
in Triton's interpreter (how the tests check them on a machine without a
GPU; ``junction.use_kernel(True, backend='triton')`` sends CPU tensors
here). Importing this module imports Triton; ``junction.py`` does so on the
first CUDA map (``kernel_status('cuda')`` says why when it cannot).
"""
import contextlib
import importlib.metadata
from typing import List, Optional, Sequence, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = [
    'triton_version', 'interpreting', 'layout_of', 'applies', 'forward',
    'backward'
]

# Values per program: the tile's long side is at most this.
_TILE = 1024
# Channels of a channels_last tile (its contiguous side).
_TILE_C_CHANNELS_LAST = 64
_DTYPES = {
    torch.float16: tl.float32,
    torch.bfloat16: tl.float32,
    torch.float32: tl.float32,
    torch.float64: tl.float64
}


def triton_version() -> str:
    try:
        return importlib.metadata.version('triton')
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return triton.__version__


def interpreting() -> bool:
    """Whether Triton runs its interpreter (``TRITON_INTERPRET=1`` was set
    before ``triton`` was imported: its library functions are interpreted
    too)."""
    from triton.runtime.interpreter import InterpretedFunction
    return isinstance(tl.sum, InterpretedFunction)


@triton.jit
def _tile(C, HW, stride_n, stride_c, stride_s, BLOCK_C: tl.constexpr,
          BLOCK_S: tl.constexpr):
    """A program's tile, grid ``(spatial tiles, channel tiles, samples)``:
    its offsets and mask (``BLOCK_C x BLOCK_S``), its channels' mask and
    their planes ``p = n * C + channel``."""
    s = tl.program_id(0).to(tl.int64) * BLOCK_S + tl.arange(0, BLOCK_S)
    ch = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    n = tl.program_id(2).to(tl.int64)
    cmask = ch < C
    mask = cmask[:, None] & (s < HW)[None, :]
    offs = n * stride_n + ch.to(tl.int64)[:, None] * stride_c + \
        s[None, :] * stride_s
    return offs, mask, cmask, n * C + ch


@triton.jit
def _junction_fwd(c_ptr, a_ptr, b_ptr, w_ptr, xs, out_ptr, C, HW, P, stride_n,
                  stride_c, stride_s, K: tl.constexpr, RELU: tl.constexpr,
                  ACC: tl.constexpr, BLOCK_C: tl.constexpr,
                  BLOCK_S: tl.constexpr):
    offs, mask, cmask, p = _tile(C, HW, stride_n, stride_c, stride_s, BLOCK_C,
                                 BLOCK_S)
    a = tl.load(a_ptr + p, mask=cmask, other=0).to(ACC)
    b = tl.load(b_ptr + p, mask=cmask, other=0).to(ACC)
    acc = tl.load(c_ptr + offs, mask=mask, other=0).to(ACC) * a[:, None] + \
        b[:, None]
    for k in tl.static_range(K):
        w = tl.load(w_ptr + k * P + p, mask=cmask, other=0).to(ACC)
        x = tl.load(xs[k] + offs, mask=mask, other=0).to(ACC)
        acc += x * w[:, None]
    if RELU:
        acc = tl.where(acc < 0, 0, acc)  # NaN stays NaN, as in the C kernel
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _junction_bwd(g_ptr, out_ptr, c_ptr, a_ptr, w_ptr, xs, dc_ptr, dxs,
                  sums_ptr, C, HW, P, stride_n, stride_c, stride_s,
                  K: tl.constexpr, RELU: tl.constexpr, DC: tl.constexpr,
                  DX: tl.constexpr, ADD: tl.constexpr, S0: tl.constexpr,
                  S1: tl.constexpr, SK: tl.constexpr, ACC: tl.constexpr,
                  BLOCK_C: tl.constexpr, BLOCK_S: tl.constexpr):
    # DX: bit k set = write dx_k (ADD: bit k set = add it to what is
    # there); S0 / S1 / SK: write the tile's sums of dz / dz * c / dz * x_k
    # into rows 0 / 1 / 2 + k of sums[row, tile, p]
    offs, mask, cmask, p = _tile(C, HW, stride_n, stride_c, stride_s, BLOCK_C,
                                 BLOCK_S)
    tile = tl.program_id(0)
    g = tl.load(g_ptr + offs, mask=mask, other=0).to(ACC)
    if RELU:
        o = tl.load(out_ptr + offs, mask=mask, other=0)
        g = tl.where(o <= 0, 0, g)
    row = tl.num_programs(0).to(tl.int64) * P
    sums = sums_ptr + tile.to(tl.int64) * P + p
    if S0:
        tl.store(sums, tl.sum(g, axis=1), mask=cmask)
    if S1:
        cv = tl.load(c_ptr + offs, mask=mask, other=0).to(ACC)
        tl.store(sums + row, tl.sum(g * cv, axis=1), mask=cmask)
    if DC:
        a = tl.load(a_ptr + p, mask=cmask, other=0).to(ACC)
        tl.store(
            dc_ptr + offs, (g * a[:, None]).to(dc_ptr.dtype.element_ty),
            mask=mask)
    for k in tl.static_range(K):
        if SK:
            x = tl.load(xs[k] + offs, mask=mask, other=0).to(ACC)
            tl.store(sums + (2 + k) * row, tl.sum(g * x, axis=1), mask=cmask)
        if (DX >> k) & 1:
            w = tl.load(w_ptr + k * P + p, mask=cmask, other=0).to(ACC)
            dx = g * w[:, None]
            if (ADD >> k) & 1:
                dx += tl.load(dxs[k] + offs, mask=mask, other=0).to(ACC)
            tl.store(dxs[k] + offs, dx.to(dxs[k].dtype.element_ty), mask=mask)


def layout_of(t: Tensor) -> Optional[Tuple[int, int, int]]:
    """``(stride_n, stride_c, stride_s)`` of a ``(N, C, H, W)`` map whose
    positions ``s = h * W + w`` are equally spaced in memory (contiguous or
    channels_last, or any layout with ``stride_h == W * stride_w``), else
    None."""
    if t.dim() != 4:
        return None
    sn, sc, sh, sw = t.stride()
    h, w = t.shape[2:]
    if w == 1:
        ss = sh
    elif h == 1 or sh == w * sw:
        ss = sw
    else:
        return None
    return sn, sc, ss


def _next_pow2(v: int) -> int:
    return 1 << max(0, int(v) - 1).bit_length()


def _tiles(c: Tensor, layout: Tuple[int, int, int]) -> Tuple[int, int]:
    """``(BLOCK_C, BLOCK_S)``: the long side along the contiguous axis."""
    ch, hw = c.size(1), c.size(2) * c.size(3)
    if layout[1] == 1 and layout[2] != 1:  # channels_last
        block_c = min(_next_pow2(ch), _TILE_C_CHANNELS_LAST)
        return block_c, min(_next_pow2(hw), max(1, _TILE // block_c))
    block_s = min(_next_pow2(hw), _TILE)
    return min(_next_pow2(ch), max(1, _TILE // block_s)), block_s


def _check_device(t: Tensor) -> None:
    if t.device.type == 'cpu' and not interpreting():
        raise RuntimeError(
            'the Triton junction on CPU tensors needs Triton\'s interpreter: '
            'set TRITON_INTERPRET=1 before triton is first imported')


def _launch(kernel, grid, *args, **kwargs) -> None:
    """Run a kernel on the device of its first argument (Triton launches on
    the current one); a failure of Triton (compilation, resources) says how
    to run without it."""
    device = args[0].device
    guard = torch.cuda.device(device) if device.type == 'cuda' \
        else contextlib.nullcontext()
    try:
        with guard:
            kernel[grid](*args, **kwargs)
    except Exception as e:  # Triton raises many types
        raise RuntimeError(
            f'mmgate: the Triton junction kernel {kernel.__name__} failed '
            f'({type(e).__name__}: {e}); MMGATE_FUSED_JUNCTION=0 runs the '
            'gates on the eager PyTorch path') from e


def _grid(c: Tensor, block_c: int, block_s: int) -> Tuple[int, int, int]:
    n, ch = c.shape[:2]
    hw = c.size(2) * c.size(3)
    return triton.cdiv(hw, block_s), triton.cdiv(ch, block_c), n


def forward(c: Tensor,
            A: Tensor,
            B: Tensor,
            W: Tensor,
            inbounds: Sequence[Tensor],
            relu: bool,
            inplace: bool = False) -> Tensor:
    """``act(A * c + B + sum_k W[:, k] * x_k)``; maps of one layout
    (:func:`layout_of`), ``A``, ``B`` ``(N, C)``, ``W`` ``(N, K, C)``."""
    out = c if inplace else torch.empty_like(c)
    if c.numel() == 0:
        return out
    _check_device(c)
    layout = layout_of(c)
    n, ch = A.shape
    block_c, block_s = _tiles(c, layout)
    Wt = W.transpose(0, 1).contiguous()  # (K, N, C): W_k of plane p at kP+p
    _launch(
        _junction_fwd,
        _grid(c, block_c, block_s),
        c,
        A.contiguous(),
        B.contiguous(),
        Wt,
        tuple(inbounds),
        out,
        ch,
        c.size(2) * c.size(3),
        n * ch,
        *layout,
        K=len(inbounds),
        RELU=bool(relu),
        ACC=_DTYPES[c.dtype],
        BLOCK_C=block_c,
        BLOCK_S=block_s)
    return out


def backward(need: Sequence[bool],
             relu: bool,
             grad: Tensor,
             c: Tensor,
             out: Optional[Tensor],
             A: Tensor,
             W: Tensor,
             inbounds: Sequence[Tensor],
             acc: Optional[Sequence[Optional[Tensor]]] = None):
    """``dc, dA, dB, dW, [dx_k]`` of :func:`forward` (None where ``need``,
    ``(c, A, B, W, relu, *inbounds)``, is False); ``dx_k`` is added into
    ``acc[k]`` (and is that tensor) where that is given."""
    n, ch = A.shape
    k = len(inbounds)
    given = list(acc) if acc is not None else [None] * k
    # a buffer of another layout is added to afterwards
    acc = [
        a if a is not None and a.stride() == c.stride() else None
        for a in given
    ]
    if grad.stride() != c.stride():  # the kernel reads one layout
        grad = torch.empty_like(c).copy_(grad)
    dc = torch.empty_like(c) if need[0] else None
    dxs: List[Optional[Tensor]] = [
        a if a is not None else torch.empty_like(x) if need[5 + i] else None
        for i, (x, a) in enumerate(zip(inbounds, acc))
    ]
    layout = layout_of(c)
    block_c, block_s = _tiles(c, layout)
    grid = _grid(c, block_c, block_s)
    acc_type = _DTYPES[c.dtype]
    sum_dtype = torch.float64 if acc_type == tl.float64 else torch.float32
    want = dict(S0=bool(need[2]), S1=bool(need[1]), SK=bool(need[3]))
    sums = torch.zeros(
        (2 + k, grid[0], n * ch) if any(want.values()) else (1, ),
        dtype=sum_dtype,
        device=c.device)
    if c.numel() > 0:
        _check_device(c)
        # slots not written are given a tensor they never touch
        _launch(
            _junction_bwd,
            grid,
            grad,
            out if relu else grad,
            c,
            A.contiguous(),
            W.transpose(0, 1).contiguous(),
            tuple(inbounds),
            grad if dc is None else dc,
            tuple(grad if d is None else d for d in dxs),
            sums,
            ch,
            c.size(2) * c.size(3),
            n * ch,
            *layout,
            K=k,
            RELU=bool(relu),
            DC=dc is not None,
            DX=sum(1 << i for i, d in enumerate(dxs) if d is not None),
            ADD=sum(1 << i for i, a in enumerate(acc) if a is not None),
            ACC=acc_type,
            BLOCK_C=block_c,
            BLOCK_S=block_s,
            **want)
    totals = sums.sum(1) if any(want.values()) else None
    dtype = c.dtype
    dB = totals[0].view(n, ch).to(dtype) if want['S0'] else None
    dA = totals[1].view(n, ch).to(dtype) if want['S1'] else None
    dW = totals[2:].view(k, n, ch).transpose(0, 1).to(dtype) \
        if want['SK'] else None
    for i, (g, a) in enumerate(zip(given, acc)):
        if g is not None and a is None:
            dxs[i] = g.add_(dxs[i])
    return dc, dA, dB, dW, dxs


def applies(tensors: Sequence[Tensor]) -> bool:
    """Whether the kernels take these maps (``c`` and the inbounds; the
    first is ``c``): one device, one dtype of float16 / bfloat16 / float32
    / float64, one layout that :func:`layout_of` reads."""
    first = tensors[0]
    layout = layout_of(first)
    return (first.dtype in _DTYPES and layout is not None
            and all(t.device == first.device and t.dtype == first.dtype and
                    t.shape == first.shape and t.stride() == first.stride()
                    for t in tensors))
