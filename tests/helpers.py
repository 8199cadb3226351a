"""Helpers shared by the test areas (``from tests.helpers import ...``)."""
import importlib.util
import os.path as osp
import socket
import subprocess
import sys
from typing import Iterable

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmgate.models.layers import GateModule

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(relpath: str):
    """``tools/<relpath>.py`` as a module (``tools/`` is no package); its
    folder is on ``sys.path`` while it loads (``test.py`` imports
    ``train``)."""
    path = osp.join(REPO_ROOT, 'tools', f'{relpath}.py')
    name = 'mmgate_tool_' + relpath.replace('/', '_')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, osp.dirname(path))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(osp.dirname(path))
    return module


def run_tool(args, timeout=600, env=None):
    """Run a tools/ command from the repository root; return the result."""
    cmd = args if args[0].endswith('.sh') else [sys.executable, *args]
    return subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env)


def coco_options(root):
    """--cfg-options pointing the det demo config at a COCO-format root."""
    root = str(root).rstrip('/') + '/'
    ann = root + 'annotations/instances_val2017.json'
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def n_params(modules: Iterable[nn.Module]) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def params_with_head(model: nn.Module,
                     num_classes: int = 1000,
                     gates: bool = True) -> float:
    """Backbone parameters plus a linear head on ``model.feat_dim``, in
    millions; ``gates=False`` leaves the Gate Modules out (the plain
    network's count)."""
    n = n_params([model])
    if not gates:
        n -= n_params(m for m in model.modules() if isinstance(m, GateModule))
    return (n + model.feat_dim * num_classes + num_classes) / 1e6


def check_norm_state(modules: Iterable[nn.Module], train_state: bool) -> bool:
    """Every BatchNorm among ``modules`` is in ``train_state``."""
    return all(m.training == train_state for m in modules
               if isinstance(m, _BatchNorm))


def blocks(model: nn.Module) -> list:
    """The routed blocks of a backbone, in network order."""
    names = getattr(model, 'res_layers', None) or model.layers
    return [b for name in names for b in getattr(model, name)]


def forward_backward(model: nn.Module, x: torch.Tensor) -> tuple:
    """Outputs, parameter gradients and input gradient of
    ``sum(out ** 2)`` over the model's outputs."""
    inp = x.clone().requires_grad_(True)
    outs = model(inp)
    sum(o.square().sum() for o in outs).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    return outs, grads, inp.grad.clone()


def assert_same_forward_backward(a: tuple, b: tuple) -> None:
    """Two :func:`forward_backward` results agree."""
    (o1, g1, i1), (o2, g2, i2) = a, b
    for x, y in zip(o1, o2):
        torch.testing.assert_close(x, y)
    assert g1.keys() == g2.keys()
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k], msg=k)
    torch.testing.assert_close(i1, i2)


def det_batch(h: int = 64, w: int = 96, masks: bool = False) -> dict:
    """A one-image MMDetection batch (``inputs``, ``data_samples``) with two
    boxes of classes 3 and 7, and their masks when asked."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.)))
    gt = dict(
        bboxes=torch.tensor([[10., 8., 50., 40.], [40., 20., 90., 60.]]),
        labels=torch.tensor([3, 7]))
    if masks:
        m = torch.zeros(2, h, w, dtype=torch.uint8)
        m[0, 8:40, 10:50] = 1
        m[1, 20:60, 40:90] = 1
        gt['masks'] = BitmapMasks(m.numpy(), h, w)
    sample.gt_instances = InstanceData(**gt)
    img = torch.randint(0, 255, (3, h, w), dtype=torch.uint8)
    return dict(inputs=[img], data_samples=[sample])


def seg_batch(h: int = 64,
              w: int = 64,
              num_classes: int = 4,
              images: int = 1) -> dict:
    """An MMSegmentation batch with random label maps."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(images):
        sample = SegDataSample(
            metainfo=dict(
                img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, h, w)))
        samples.append(sample)
    imgs = [
        torch.randint(0, 255, (3, h, w), dtype=torch.uint8) for _ in samples
    ]
    return dict(inputs=imgs, data_samples=samples)


def cls_batch(size: int = 64, num_classes: int = 10) -> dict:
    """A two-image MMPretrain batch with labels 1 and 3."""
    from mmpretrain.structures import DataSample
    samples = [DataSample().set_gt_label(label) for label in (1, 3)]
    imgs = [
        torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
        for _ in samples
    ]
    return dict(inputs=imgs, data_samples=samples)


def stock_config(ref: str):
    """``Config.fromfile`` for ``mmdet::path`` (likewise mmseg::,
    mmpretrain::): a config shipped inside the installed package."""
    import importlib

    from mmengine.config import Config
    package, path = ref.split('::')
    root = osp.dirname(importlib.import_module(package).__file__)
    return Config.fromfile(osp.join(root, '.mim', 'configs', path))
