"""Export an mmgate backbone or a whole model's network to ONNX, and check
it under onnxruntime against PyTorch.

    python tools/deploy/export_onnx.py SkipResNet-50 --shape 224
    python tools/deploy/export_onnx.py CONFIG.py \\
        --checkpoint work_dirs/x/epoch_12.pth \\
        --shape 800 1333 --out work_dirs/x/model.onnx

``MODEL`` is a config file (its ``model``: a detector, segmentor or
classifier; ``--backbone-only`` exports just the backbone) or a named
classification variant (``SkipResNet-50``, ``SkipResNeXt-50-32x4d``,
``SkipConvNeXt-T``, ``DenseResNet-50`` ...; the backbone). A whole model is
exported as its network in MMEngine's ``mode='tensor'``: the raw head
outputs, before post-processing (NMS, resizing); the post-processing of the
library runs on them unchanged (``tests/test_tools/test_deploy.py`` decodes
RetinaNet boxes from onnxruntime's outputs). The gate's mixing is an
autograd function in training; exported in eval mode, it traces to plain
Mul / Add ops.

The file is written atomically (a temporary file renamed when the export
and the check succeeded); ``--verify`` (default) prints the largest absolute
difference between onnxruntime and PyTorch on a random input and fails above
``--atol``.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import warnings
from typing import List, Sequence

import numpy as np
import torch
import torch.nn as nn


class TensorOutputs(nn.Module):
    """``model(x, mode='tensor')`` (or a backbone's ``model(x)``) as a flat
    tuple of tensors, which is what ONNX stores."""

    def __init__(self, model: nn.Module, tensor_mode: bool) -> None:
        super().__init__()
        self.model = model
        self.tensor_mode = tensor_mode

    def forward(self, x: torch.Tensor):
        out = self.model(x, mode='tensor') if self.tensor_mode \
            else self.model(x)
        return tuple(flatten(out))


def flatten(out) -> List[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for o in out for t in flatten(o)]


def build(model: str,
          checkpoint: str = None,
          backbone_only: bool = False) -> TensorOutputs:
    """The network to export, in eval mode."""
    from mmgate.analysis.complexity import (build_model, classifier_cfg,
                                            init_weights_quietly, model_cfg_of)
    if osp.isfile(model):
        from mmengine.config import Config
        cfg = Config.fromfile(model)
        net = build_model(model_cfg_of(cfg), cfg.get('default_scope'))
        tensor_mode = not backbone_only
    else:
        cfg = classifier_cfg(model)
        net = build_model(cfg['backbone'], 'mmpretrain')
        tensor_mode = False
    if checkpoint:
        from mmgate.models.utils import load_pretrained_weights
        load_pretrained_weights(
            net,
            dict(checkpoint=checkpoint, prefix='' if tensor_mode else None),
            trusted=True)
    else:
        init_weights_quietly(net)
    if backbone_only and hasattr(net, 'backbone'):
        net = net.backbone
        tensor_mode = False
    return TensorOutputs(net, tensor_mode).eval()


def export(wrapper: TensorOutputs,
           shape: Sequence[int],
           out: str,
           opset: int = 17,
           atol: float = 1e-3,
           verify: bool = True) -> float:
    """Export ``wrapper`` for a ``(1, *shape)`` input to ``out``; return the
    largest |onnxruntime - PyTorch| (0 when not verified)."""
    x = torch.rand(1, *shape)
    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.onnx.tmp', dir=folder)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter('ignore')
            torch.onnx.export(
                wrapper, (x, ),
                tmp,
                dynamo=False,
                opset_version=opset,
                input_names=['input'])
        error = 0.
        if verify:
            error = max_abs_error(wrapper, tmp, x)
            if error > atol:
                raise RuntimeError(
                    f'onnxruntime differs from PyTorch by {error:.3g} '
                    f'(> --atol {atol}); {out} not written')
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return error


def max_abs_error(wrapper: nn.Module, path: str, x: torch.Tensor) -> float:
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        ref = wrapper(x)
    if len(got) != len(ref):
        raise RuntimeError(f'onnxruntime returned {len(got)} outputs, '
                           f'PyTorch {len(ref)}')
    return max(float(np.abs(a - b.numpy()).max()) for a, b in zip(got, ref))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('model', help='config file or variant name')
    parser.add_argument('--checkpoint', help='weights to load (strict)')
    parser.add_argument('--out', help='ONNX file (default: <model>.onnx)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[224],
        help='H, or H W (default 224)')
    parser.add_argument('--backbone-only', action='store_true')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--atol', type=float, default=1e-3)
    parser.add_argument('--no-verify', dest='verify', action='store_false')
    return parser.parse_args(argv)


def main(argv=None) -> float:
    args = parse_args(argv)
    if len(args.shape) not in (1, 2):
        raise SystemExit(f'--shape takes H or H W, got {args.shape}')
    h, w = (args.shape * 2)[:2]
    out = args.out or osp.splitext(osp.basename(args.model))[0] + '.onnx'
    wrapper = build(args.model, args.checkpoint, args.backbone_only)
    error = export(wrapper, (3, h, w), out, args.opset, args.atol, args.verify)
    print(f'wrote {out}' + (f'; onnxruntime vs PyTorch: max abs error '
                            f'{error:.3g}' if args.verify else ''))
    return error


if __name__ == '__main__':
    sys.exit(0 if main() is not None else 1)
