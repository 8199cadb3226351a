"""Mixed-precision training on a CPU: bf16 autocast in MMEngine's optimizer
wrapper.

MMEngine's ``AmpOptimWrapper`` asserts a CUDA, NPU or MLU device and scales
the loss for fp16. On a CPU, PyTorch autocasts to bfloat16, whose exponent
range is fp32's, so no loss scaling is needed: :class:`CPUAmpOptimWrapper`
is a plain ``OptimWrapper`` whose ``optim_context`` (the forward pass and
the loss, in ``BaseModel.train_step``) runs under
``torch.autocast('cpu', dtype=torch.bfloat16)``; the backward pass and the
update run outside it, on the fp32 parameters, as with ``AmpOptimWrapper``.

mmcv's compiled CPU kernels (``mmcv._ext``: NMS, RoIAlign ... of a
two-stage detector) take fp32 only and, being no dispatcher ops, are not
seen by autocast (``RuntimeError: expected scalar type Float but found
BFloat16`` in ``mmcv/ops/nms.py``). While the wrapper's forward context or
its ``backward`` runs, each call into ``mmcv._ext`` gets fp32 copies of its
bf16 tensors, and the values the kernel wrote into them are copied back
(the kernels write their results into tensors passed in; an input the
kernel left unchanged is not touched); bf16 -> fp32 is exact. The
functions of ``mmcv._ext`` are restored when the context exits.

``tools/train.py --amp`` takes it when no CUDA device is present. In a
config: ``optim_wrapper = dict(type='mmgate.CPUAmpOptimWrapper', ...)``
(``mmgate.registry.OPTIM_WRAPPERS``; no ``custom_imports`` needed).
"""
import functools
import importlib
from contextlib import contextmanager, nullcontext

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper

from mmgate.registry import OPTIM_WRAPPERS

__all__ = ['CPUAmpOptimWrapper', 'mmcv_ops_in_fp32']


def _fp32_call(fn):
    """``fn`` (a function of ``mmcv._ext``) on fp32 copies of its bf16 /
    fp16 tensor arguments, whose results are copied back into them."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        low = []

        def up(t):
            if isinstance(t, torch.Tensor) and t.dtype in (torch.bfloat16,
                                                           torch.float16):
                f = t.float()
                low.append((t, f))
                return f
            return t

        args = [up(a) for a in args]
        kwargs = {k: up(v) for k, v in kwargs.items()}
        out = fn(*args, **kwargs)
        with torch.no_grad():
            for t, f in low:
                # only what the kernel wrote: copying into an input would
                # bump its version and break autograd's saved tensors
                if not torch.equal(f, t.float()):
                    t.copy_(f)
        return out

    return call


@contextmanager
def mmcv_ops_in_fp32():
    """Within: each function of ``mmcv._ext`` (mmcv's compiled ops) runs on
    fp32 copies of its low-precision tensors (see the module's docstring).
    Nothing happens where mmcv has no compiled ops."""
    try:
        ext = importlib.import_module('mmcv._ext')
    except ImportError:
        yield
        return
    saved = {
        name: fn
        for name, fn in vars(ext).items()
        if not name.startswith('_') and callable(fn)
    }
    try:
        for name, fn in saved.items():
            setattr(ext, name, _fp32_call(fn))
        yield
    finally:
        for name, fn in saved.items():
            setattr(ext, name, fn)


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward context is CPU autocast.

    Args:
        dtype (str or torch.dtype): the autocast dtype, ``'bfloat16'``
            (default) or ``'float16'`` (CPU fp16 autocast is much slower on
            most CPUs and, without loss scaling, may underflow gradients;
            it is offered for experiments only).
        **kwargs: :class:`OptimWrapper`'s arguments (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, dtype='bfloat16', **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, None)
        if dtype not in (torch.bfloat16, torch.float16):
            raise ValueError('CPUAmpOptimWrapper: dtype must be bfloat16 or '
                             f'float16, got {dtype!r}')
        self.cast_dtype = dtype

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast(
                'cpu', dtype=self.cast_dtype), self._fp32_ops():
            yield

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        # the backward kernels of mmcv's ops (RoIAlign ...) see the bf16
        # gradients of the forward's bf16 outputs
        with self._fp32_ops():
            super().backward(loss, **kwargs)

    def _fp32_ops(self):
        # re-entrant: the forward context may already hold the shim
        return nullcontext() if getattr(self, '_in_fp32_ops', False) \
            else self._hold_fp32_ops()

    @contextmanager
    def _hold_fp32_ops(self):
        self._in_fp32_ops = True
        try:
            with mmcv_ops_in_fp32():
                yield
        finally:
            self._in_fp32_ops = False
