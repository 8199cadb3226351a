"""What the Gate Modules do: mean sigmoid gate and inbound weights per block.

For every ``GateModule`` of a model, over all images seen:

- ``gate_y``: the mean of ``sigmoid(g_0)`` (the gate on the block's own
  residual branch), over images and channels;
- ``w_d<k>``: the mean softmax weight of the inbound ``k`` outputs back
  (``d1`` = the previous output, then 2, 4, 8, ... for the Skip pattern),
  over images and channels. Per block these sum to 1;
- ``gate_y_std`` / ``w_std``: how much the gates differ between channels
  (the standard deviation over channels, averaged over images; ``w_std``
  also over the inbounds), which the means hide.

The values are taken from ``GateModule.last_gates`` (``record=True``) by a
forward hook, so every call of a gate counts, whatever the model does
around it. ``plot_gate_heatmap`` draws blocks x inbound distance, as figure
4 of the DenseResNet paper.
"""
import csv
import glob
import os
import os.path as osp
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from mmgate.models.backbones import RoutedBlock
from mmgate.models.layers import GateModule
from mmgate.models.layers import inbound_distances as block_distances
from mmgate.models.utils import load_pretrained_weights

__all__ = [
    'GateRecorder', 'gate_statistics', 'inbound_distances', 'write_gate_csv',
    'read_gate_csv', 'plot_gate_heatmap', 'load_model', 'image_batches',
    'dataset_batches', 'random_batches'
]

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def inbound_distances(model: nn.Module, gate_name: str,
                      gate: GateModule) -> List[int]:
    """How many outputs back each inbound of a gate is (1 = the previous
    output), as the inbound router numbers them
    (:func:`mmgate.models.layers.inbound_distances`; the same rule for the
    Skip and the Dense pattern). A gate outside a routed block gets 1, 2,
    ... in slot order."""
    parent_name = gate_name.rsplit('.', 1)[0] if '.' in gate_name else ''
    block = model.get_submodule(parent_name) if parent_name else None
    if isinstance(block, RoutedBlock):
        return block_distances(block)
    return list(range(1, gate.num_inbounds + 1))


class GateRecorder:
    """Accumulate gate statistics while a model runs (a context manager).

    Example:
        >>> from mmgate.models import SkipResNet
        >>> model = SkipResNet(depth=18, base_channels=8).eval()
        >>> with GateRecorder(model) as rec, torch.no_grad():
        ...     _ = model(torch.rand(2, 3, 32, 32))
        >>> rows = rec.rows()
        >>> rows[0]['block'], rows[0]['images']
        ('layer1.0', 2)
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.gates = [(name, m) for name, m in model.named_modules()
                      if isinstance(m, GateModule)]
        if not self.gates:
            raise ValueError(
                f'{type(model).__name__} has no GateModule to record')
        self._sums: Dict[str, Dict] = {}
        self._handles = []
        self._record_before = {}

    def _hook(self, name: str) -> Callable:

        def hook(module: GateModule, args, output) -> None:
            gate_y, weights = module.last_gates
            s = self._sums[name]
            # per image: mean over channels; summed over images
            gate_y, weights = gate_y.float(), weights.float()
            s['gate_y'] += gate_y.mean(dim=1).sum().item()
            s['weights'] += weights.mean(dim=2).sum(dim=0).cpu()
            if gate_y.size(1) > 1:
                s['gate_y_std'] += gate_y.std(dim=1).sum().item()
                s['w_std'] += weights.std(dim=2).mean(dim=1).sum().item()
            s['images'] += gate_y.size(0)
            s['calls'] += 1

        return hook

    def __enter__(self) -> 'GateRecorder':
        for name, gate in self.gates:
            self._sums[name] = dict(
                gate_y=0.,
                weights=torch.zeros(gate.num_inbounds),
                gate_y_std=0.,
                w_std=0.,
                images=0,
                calls=0,
                distances=inbound_distances(self.model, name, gate))
            self._record_before[name] = gate.record
            gate.record = True
            self._handles.append(gate.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        for name, gate in self.gates:
            gate.record = self._record_before[name]
            gate.last_gates = None

    def rows(self) -> List[Dict]:
        """One dict per gate, in model order: ``block``, ``stage``,
        ``index``, ``num_inbounds``, ``images``, ``gate_y``,
        ``gate_y_std``, ``w_std``, ``distances`` and ``w_d<k>`` for each
        inbound distance ``k``."""
        out = []
        for name, gate in self.gates:
            s = self._sums.get(name)
            if s is None or s['images'] == 0:
                continue
            block = name.rsplit('.', 1)[0] if '.' in name else name
            stage, _, index = block.rpartition('.')
            row = dict(
                block=block,
                stage=stage,
                index=int(index) if index.isdigit() else index,
                num_inbounds=gate.num_inbounds,
                images=s['images'],
                gate_y=s['gate_y'] / s['images'],
                gate_y_std=s['gate_y_std'] / s['images'],
                w_std=s['w_std'] / s['images'],
                distances=s['distances'])
            for d, w in zip(s['distances'], s['weights'] / s['images']):
                row[f'w_d{d}'] = float(w)
            out.append(row)
        return out


def gate_statistics(model: nn.Module,
                    batches: Iterable[torch.Tensor],
                    forward: Optional[Callable] = None) -> List[Dict]:
    """Run ``forward(batch)`` (default ``model(batch)``) over ``batches``
    in eval mode without gradients and return ``GateRecorder.rows()``."""
    forward = forward or model
    was_training = model.training
    model.eval()
    try:
        with GateRecorder(model) as rec, torch.no_grad():
            seen = 0
            for batch in batches:
                forward(batch)
                seen += 1
            if seen == 0:
                raise ValueError('no input batch to run the model on')
    finally:
        model.train(was_training)
    return rec.rows()


def _distance_columns(rows: Sequence[Dict]) -> List[int]:
    return sorted({d for r in rows for d in r['distances']})


def write_gate_csv(rows: Sequence[Dict], path: str) -> None:
    """CSV: block, stage, index, num_inbounds, images, gate_y,
    gate_y_std, w_std, w_d1, w_d2, ... (empty where a block has no inbound
    at that distance)."""
    dists = _distance_columns(rows)
    fields = [
        'block', 'stage', 'index', 'num_inbounds', 'images', 'gate_y',
        'gate_y_std', 'w_std'
    ] + [f'w_d{d}' for d in dists]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction='ignore')
        writer.writeheader()
        for r in rows:
            writer.writerow({
                k: (f'{v:.6f}' if isinstance(v, float) else v)
                for k, v in r.items()
            })


def read_gate_csv(path: str) -> List[Dict]:
    """Rows written by ``write_gate_csv`` (numbers parsed back)."""
    rows = []
    with open(path, encoding='utf-8') as f:
        for r in csv.DictReader(f):
            row = dict(
                block=r['block'],
                stage=r['stage'],
                index=int(r['index']) if r['index'].isdigit() else r['index'],
                num_inbounds=int(r['num_inbounds']),
                images=int(r['images']),
                gate_y=float(r['gate_y']),
                gate_y_std=float(r['gate_y_std']),
                w_std=float(r['w_std']))
            row['distances'] = []
            for k, v in r.items():
                if k.startswith('w_d') and v != '':
                    row[k] = float(v)
                    row['distances'].append(int(k[3:]))
            rows.append(row)
    return rows


def plot_gate_heatmap(rows: Sequence[Dict],
                      path: str,
                      title: str = 'Gate Module statistics') -> str:
    """Heat map: one row per block; left column the mean sigmoid gate of
    the residual branch, right the mean softmax weight of each inbound
    distance (blank where a block has no such inbound)."""
    from .plotting import pyplot, save_figure
    plt = pyplot()
    if not rows:
        raise ValueError('no gate statistics to plot')
    dists = _distance_columns(rows)
    w = np.full((len(rows), len(dists)), np.nan)
    for i, r in enumerate(rows):
        for j, d in enumerate(dists):
            if f'w_d{d}' in r:
                w[i, j] = r[f'w_d{d}']
    g = np.array([[r['gate_y']] for r in rows])
    labels = [r['block'] for r in rows]
    height = max(3., 0.28 * len(rows) + 1.4)
    fig, (ax0, ax1) = plt.subplots(
        1,
        2,
        figsize=(2.2 + 0.75 * len(dists) + 1.6, height),
        gridspec_kw=dict(width_ratios=[1, max(len(dists), 1)]))
    annotate = len(rows) <= 40
    for ax, data, cols, cmap, name in ((ax0, g, ['y'], 'Greens',
                                        'sigmoid(g0)'),
                                       (ax1, w, [f'{d}' for d in dists],
                                        'viridis', 'softmax weight')):
        masked = np.ma.masked_invalid(data)
        im = ax.imshow(
            masked,
            aspect='auto',
            cmap=cmap,
            vmin=0,
            vmax=1,
            interpolation='nearest')
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels(cols)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels if ax is ax0 else [], fontsize=7)
        if annotate:
            for (i, j), v in np.ndenumerate(data):
                if not np.isnan(v):
                    text = f'{v:.2f}'
                    if ax is ax0:  # the spread over channels
                        text += f'\n±{rows[i]["gate_y_std"]:.2f}'
                    ax.text(
                        j,
                        i,
                        text,
                        ha='center',
                        va='center',
                        fontsize=6,
                        color='w' if v < 0.6 else 'k')
        fig.colorbar(im, ax=ax, fraction=0.08, pad=0.03, label=name)
    # stage boundaries
    for i in range(1, len(rows)):
        if rows[i]['stage'] != rows[i - 1]['stage']:
            for ax in (ax0, ax1):
                ax.axhline(i - 0.5, color='w', linewidth=1.5)
    ax0.set_xlabel('branch')
    ax1.set_xlabel('inbound distance (outputs back)')
    return save_figure(fig, path, title)


# ---- models and inputs -------------------------------------------------


def load_model(config,
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               prefix: Optional[str] = None):
    """Build the model of a config (a path or ``Config``) and load a
    checkpoint.

    The config's ``model`` may be a full model (detector, segmentor,
    classifier: the gates are in ``model.backbone``) or a bare backbone.
    ``prefix`` (e.g. ``'backbone.'``) loads only the keys under it, for a
    classifier checkpoint into a bare backbone.

    Checkpoints are read as trusted (MMEngine's run checkpoints hold pickled
    objects): pass only checkpoints you trust. Any missing or unexpected key
    is an error.

    Returns:
        tuple: ``(model, backbone_forward, cfg)``: ``backbone_forward(x)``
        runs the part of the model that holds the gates.
    """
    from mmengine.config import Config

    from .complexity import build_model, init_weights_quietly, model_cfg_of
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config {config} does not exist')
        config = Config.fromfile(config)
    model = build_model(model_cfg_of(config), config.get('default_scope'))
    if checkpoint:
        # every key must fit: statistics of a half-loaded model mean nothing
        load_pretrained_weights(
            model,
            dict(checkpoint=checkpoint, prefix=prefix or ''),
            trusted=True)
    else:  # e.g. init_cfg=dict(type='Pretrained', ...)
        init_weights_quietly(model)
    model.to(device).eval()
    backbone = getattr(model, 'backbone', model)
    return model, backbone, config


def _model_preprocess(model: nn.Module):
    """``(mean, std, bgr_to_rgb)`` of the model's data preprocessor, or
    ImageNet's RGB ones."""
    pre = getattr(model, 'data_preprocessor', None)
    mean = getattr(pre, 'mean', None)
    std = getattr(pre, 'std', None)
    if mean is not None and std is not None and getattr(
            pre, '_enable_normalize', True):
        return (mean.flatten().tolist(), std.flatten().tolist(),
                bool(getattr(pre, '_channel_conversion', False)))
    return [123.675, 116.28, 103.53], [58.395, 57.12, 57.375], True


def _list_images(paths: Sequence[str]) -> List[str]:
    files = []
    for p in paths:
        if osp.isdir(p):
            files += sorted(
                f for f in glob.glob(osp.join(p, '**', '*'), recursive=True)
                if f.lower().endswith(IMAGE_EXTS))
        elif osp.isfile(p):
            files.append(p)
        else:
            raise FileNotFoundError(f'no image or folder {p}')
    if not files:
        raise FileNotFoundError(f'no images in {list(paths)}')
    return files


def image_batches(paths: Sequence[str],
                  model: nn.Module,
                  size: int = 224,
                  batch_size: int = 8,
                  limit: Optional[int] = None,
                  device: str = 'cpu') -> Iterator[torch.Tensor]:
    """Normalized ``(B, 3, size, size)`` batches of image files (files or
    folders, searched recursively), resized to a square with the model's
    mean / std / channel order."""
    import mmcv
    files = _list_images(paths)[:limit]
    mean, std, to_rgb = _model_preprocess(model)
    mean_t = torch.tensor(mean).view(1, -1, 1, 1)
    std_t = torch.tensor(std).view(1, -1, 1, 1)
    for start in range(0, len(files), batch_size):
        imgs = []
        for f in files[start:start + batch_size]:
            img = mmcv.imread(f, channel_order='rgb' if to_rgb else 'bgr')
            img = mmcv.imresize(img, (size, size))
            imgs.append(torch.from_numpy(img).permute(2, 0, 1).float())
        x = (torch.stack(imgs) - mean_t) / std_t
        yield x.to(device)


def dataset_batches(cfg,
                    model: nn.Module,
                    split: str = 'val',
                    limit: Optional[int] = None,
                    batch_size: int = 4,
                    device: str = 'cpu') -> Iterator[torch.Tensor]:
    """Inputs of the config's ``{split}_dataloader`` after the model's data
    preprocessor (so exactly what the backbone sees in evaluation)."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    key = f'{split}_dataloader'
    if cfg.get(key) is None:
        raise KeyError(f'the config has no {key}')
    loader_cfg = cfg[key].copy()
    loader_cfg['batch_size'] = batch_size
    loader_cfg['num_workers'] = 0
    loader_cfg['persistent_workers'] = False
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        loader = Runner.build_dataloader(loader_cfg)
        seen = 0
        for data in loader:
            data = model.data_preprocessor(data, False)
            x = data['inputs']
            if limit is not None:
                x = x[:limit - seen]
            seen += x.size(0)
            yield x.to(device)
            if limit is not None and seen >= limit:
                break


def random_batches(num: int,
                   size: int = 224,
                   batch_size: int = 8,
                   seed: int = 0,
                   device: str = 'cpu') -> Iterator[torch.Tensor]:
    """``num`` standard-normal images (a smoke run without data)."""
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, num, batch_size):
        b = min(batch_size, num - start)
        yield torch.randn(b, 3, size, size, generator=gen).to(device)
