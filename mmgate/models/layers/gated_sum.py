"""The junction's arithmetic, ``sigmoid(g0) * y + sum_k w_k * x_k``, as one
autograd function that keeps training memory close to a plain residual add.

Plain autograd would save ``y`` (for the gradient of the gate ``a``) and
build a full-size temporary for every ``sum(grad * t)`` reduction in the
backward pass. Here:

* the reductions ``da = <dz, y>`` and ``dw_k = <dz, x_k>`` over H x W are
  batched dot products (``linalg.vecdot``): no full-size temporary;
* when ``y`` is an affine function of a tensor that is kept for backward
  anyway (``y = c * scale + shift`` per channel, which is what a BatchNorm
  computes from its input ``c``), only ``c`` and the two per-channel vectors
  are kept, and ``<dz, y> = scale * <dz, c> + shift * sum(dz)``. Without such
  a source ``y`` itself is saved.

The inbounds ``x_k`` are the stage's earlier outputs, alive anyway (they are
the next blocks' inputs), so keeping references to them costs nothing.
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['gated_sum', 'AffineSource']

# (c, scale, shift): y == c * scale.view(1, C, 1, 1) + shift.view(1, C, 1, 1)
AffineSource = Tuple[Tensor, Tensor, Tensor]


def _channel_dot(a: Tensor, b: Tensor) -> Tensor:
    """``(a * b).sum((2, 3))`` for (B, C, H, W) tensors, without building
    ``a * b``; ``b`` is cast to ``a``'s dtype (under autocast the gradient
    and a saved map may differ in precision)."""
    return torch.linalg.vecdot(a.flatten(2), b.flatten(2).to(a.dtype))


class _GatedSum(torch.autograd.Function):

    @staticmethod
    def forward(ctx, y, gate_y, weights, c, scale, shift, *inbounds):
        bsz, ch = gate_y.shape
        out = y * gate_y.view(bsz, ch, 1, 1)
        for k, x in enumerate(inbounds):
            out.addcmul_(x, weights[:, k].view(bsz, ch, 1, 1))
        ctx.has_source = c is not None
        kept = (c, scale, shift) if ctx.has_source else (y, )
        ctx.save_for_backward(gate_y, weights, *kept, *inbounds)
        ctx.num_inbounds = len(inbounds)
        return out

    @staticmethod
    def backward(ctx, grad):
        gate_y, weights, *rest = ctx.saved_tensors
        bsz, ch = gate_y.shape
        if ctx.has_source:
            c, scale, shift, *inbounds = rest
        else:
            y, *inbounds = rest
        grad = grad.contiguous()
        grad_y = grad_gate = grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_y = grad * gate_y.view(bsz, ch, 1, 1)
        if ctx.needs_input_grad[1]:
            if ctx.has_source:
                grad_gate = _channel_dot(grad, c.contiguous()) * scale + \
                    grad.sum((2, 3)) * shift
            else:
                grad_gate = _channel_dot(grad, y.contiguous())
        grad_inbounds = [
            grad * weights[:, k].view(bsz, ch, 1, 1)
            if ctx.needs_input_grad[6 + k] else None
            for k in range(ctx.num_inbounds)
        ]
        if ctx.needs_input_grad[2]:
            grad_weights = torch.stack(
                [_channel_dot(grad, x.contiguous()) for x in inbounds], dim=1)
        return (grad_y, grad_gate, grad_weights, None, None, None,
                *grad_inbounds)


def gated_sum(y: Tensor,
              gate_y: Tensor,
              weights: Tensor,
              inbounds: Sequence[Tensor],
              y_source: Optional[AffineSource] = None) -> Tensor:
    """``gate_y * y + sum_k weights[:, k] * inbounds[k]`` per channel.

    Args:
        y (Tensor): ``(B, C, H, W)``.
        gate_y (Tensor): ``(B, C)``.
        weights (Tensor): ``(B, n, C)``.
        inbounds (Sequence[Tensor]): n tensors of ``y``'s shape.
        y_source (tuple, optional): ``(c, scale, shift)`` with
            ``y == c * scale + shift`` per channel; lets the backward pass
            keep ``c`` (already kept by the norm that made ``y``) instead of
            ``y``.

    Returns:
        Tensor: ``(B, C, H, W)``.
    """
    assert len(inbounds) == weights.size(1), \
        f'{weights.size(1)} weights for {len(inbounds)} inbounds'
    if y_source is None:
        c = scale = shift = None
    else:
        c, scale, shift = y_source
        scale, shift = scale.detach(), shift.detach()
    return _GatedSum.apply(y, gate_y, weights, c, scale, shift, *inbounds)
