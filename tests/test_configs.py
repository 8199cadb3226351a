"""Every config in configs/ loads, builds its model, dataset, pipeline and
optimizer wrapper, and trains one iteration on the CPU.

Real MMDetection / MMSegmentation / MMPretrain objects throughout; the only
changes to a config are the ones that keep this offline and small:
pretrained ``init_cfg`` -> random init (no download), ``data_root`` -> a tiny
embedded demo set in the same format (2 images written by
``mmgate.datasets``), the pipeline's image sizes divided by 7-16 (every
transform of the config still runs) and at most 32 sampled RoIs per image in
detectors. Full-width models, 2 images per batch, one CPU thread.

Slow: ~2-3 min for all configs on 2 cores.
"""
import copy
import glob
import os.path as osp
import re

import numpy as np
import pytest
import torch

import mmgate  # noqa: F401
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS, FUNCTIONS, MODELS, init_default_scope

from mmgate.datasets import (make_ade20k_demo, make_coco_demo,
                             make_imagenet_demo)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                       recursive=True)
    if '_base_' not in osp.relpath(p, ROOT).split(osp.sep))
RELEASE = ('https://github.com/takedarts/skipresnet-pretrained/releases/'
           'download/v20220420/')
PUBLISHED = {
    ('SkipResNet', 34): RELEASE + 'skipresnet34-b489f850.pth',
    ('SkipResNet', 50): RELEASE + 'skipresnet50-c24b1e79.pth',
    ('SkipResNet', 101): RELEASE + 'skipresnet101-c36370cc.pth',
    ('SkipResNeXt', 50): RELEASE + 'skipresnext50_32x4d-ee04428b.pth',
    ('SkipResNeXt', 101): RELEASE + 'skipresnext101_32x4d-5389c356.pth',
}
# image sizes (>= 100 px) in pipelines / preprocessors are divided by these:
# COCO 1333x800 -> 83x50, ADE20k crops 512 -> 32, ImageNet crops 224 -> 32
SHRINK = {'mmdet': 16, 'mmseg': 16, 'mmpretrain': 7}
# sampled RoIs per image in a detector's training step (stock: 512)
MAX_ROIS = 32
SIZE_KEYS = ('scale', 'crop_size', 'size')


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    """One intra-op thread: at these input sizes a second thread gains
    little on an idle 2-core machine, and on a busy one OpenMP's spinning
    threads make a step up to 20x slower (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def demo_roots(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny_demo')
    make_coco_demo(str(root / 'coco'), num_train=2, num_val=1)
    make_ade20k_demo(str(root / 'ade'), num_train=2, num_val=1)
    make_imagenet_demo(str(root / 'imagenet'), num_train=1, num_val=1)
    return dict(coco=str(root / 'coco') + '/', ade=str(root / 'ade'),
                imagenet=str(root / 'imagenet'))


def _factor(cfg, scope):
    """How much to shrink image sizes; CPU demo configs are small already."""
    return 1 if 'demo' in cfg.filename.split(osp.sep) else SHRINK[scope]


def _shrink(value, factor):
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value // factor if value >= 100 else value
    if isinstance(value, (list, tuple)):
        return type(value)(_shrink(v, factor) for v in value)
    return value


def _shrink_sizes(cfg, factor):
    """Divide image sizes (>= 100 px) of transforms / preprocessors."""
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            cfg[k] = _shrink(v, factor) if k in SIZE_KEYS else \
                _shrink_sizes(v, factor)
    elif isinstance(cfg, list):
        for i, v in enumerate(cfg):
            cfg[i] = _shrink_sizes(v, factor)
    return cfg


def _pretrained(cfg, found=None):
    """Every (module config, checkpoint) with a Pretrained init."""
    found = [] if found is None else found
    if isinstance(cfg, dict):
        init = cfg.get('init_cfg')
        inits = init if isinstance(init, list) else [init]
        for i in inits:
            if isinstance(i, dict) and i.get('type') == 'Pretrained':
                found.append((cfg, i['checkpoint']))
        for v in cfg.values():
            _pretrained(v, found)
    elif isinstance(cfg, list):
        for v in cfg:
            _pretrained(v, found)
    return found


def _random_init(cfg):
    for module_cfg, _ in _pretrained(cfg):
        module_cfg['init_cfg'] = None
    if isinstance(cfg, dict) and cfg.get('pretrained'):
        cfg['pretrained'] = None  # mmseg's model-level shortcut


def _fewer_rois(train_cfg):
    """Cap the RoIs sampled per image: the heads' cost on a CPU."""
    stages = train_cfg.get('rcnn') or []
    for stage in stages if isinstance(stages, list) else [stages]:
        sampler = stage.get('sampler', {})
        if 'num' in sampler:
            sampler['num'] = min(sampler['num'], MAX_ROIS)


def _leaf(dataset_cfg):
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def _samples(cfg, scope, demo_roots):
    """Two training samples through the config's dataset and pipeline."""
    data_cfg = copy.deepcopy(_leaf(cfg.train_dataloader.dataset))
    pipeline = _shrink_sizes(data_cfg.pop('pipeline'), _factor(cfg, scope))
    if str(data_cfg['type']).startswith('CIFAR'):  # binary batches: arrays
        rng = np.random.default_rng(0)
        transform = Compose(pipeline)
        return [transform(dict(img=rng.integers(0, 255, (32, 32, 3),
                                                dtype=np.uint8),
                               gt_label=i, img_shape=(32, 32),
                               ori_shape=(32, 32))) for i in range(2)]
    if scope == 'mmdet':
        data_cfg.update(data_root=demo_roots['coco'], metainfo=dict(
            classes=('person', 'ball', 'box', 'signboard')))
    elif scope == 'mmseg':
        data_cfg['data_root'] = demo_roots['ade']
    else:
        data_cfg['data_root'] = demo_roots['imagenet']
    dataset = DATASETS.build(dict(data_cfg, pipeline=pipeline))
    return [dataset[i] for i in range(2)]


@pytest.mark.slow
@pytest.mark.parametrize('path', CONFIGS)
def test_config_trains_one_iteration(path, demo_roots):
    cfg = Config.fromfile(osp.join(ROOT, path))
    scope = cfg.default_scope
    assert scope in SHRINK, f'{path}: unexpected default_scope {scope}'
    init_default_scope(scope)

    model_cfg = copy.deepcopy(cfg.model)
    _random_init(model_cfg)
    if cfg.get('data_preprocessor') is not None:  # as the Runner does
        model_cfg.setdefault('data_preprocessor',
                             copy.deepcopy(cfg.data_preprocessor))
    _shrink_sizes(model_cfg.get('data_preprocessor') or {},
                  _factor(cfg, scope))
    _fewer_rois(model_cfg.get('train_cfg') or {})
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.init_weights()
    model.train()

    samples = _samples(cfg, scope, demo_roots)
    collate_cfg = cfg.train_dataloader.get('collate_fn')
    collate = FUNCTIONS.get(collate_cfg['type']) if collate_cfg \
        else pseudo_collate
    data = collate(samples)

    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {n: p.detach().clone() for n, p in model.named_parameters()
              if p.requires_grad and n.startswith('backbone.')}
    log_vars = model.train_step(data, optim_wrapper)
    assert torch.isfinite(log_vars['loss']), f'{path}: loss {log_vars}'
    moved = [n for n, p in model.named_parameters()
             if n in before and not torch.equal(p, before[n])]
    assert len(moved) > len(before) // 2, \
        f'{path}: only {len(moved)} of {len(before)} backbone tensors moved'


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS if osp.dirname(p) == 'configs'])
def test_config_points_at_the_right_weights(path):
    """Detection / segmentation / fine-tuning Skip configs load the authors'
    published weights for their depth; baselines torchvision's (ResNet) or
    OpenMMLab's (ResNeXt); ImageNet pre-training starts from scratch."""
    cfg = Config.fromfile(osp.join(ROOT, path))
    backbone = cfg.model.backbone
    found = _pretrained(cfg.model) + (
        [(backbone, cfg.model.pretrained)] if cfg.model.get('pretrained')
        else [])
    name = osp.basename(path)
    if name.endswith('_in1k.py'):
        assert not found, f'{path} pre-trains from scratch'
        return
    assert [c for c, _ in found] == [backbone], \
        f'{path}: exactly the backbone loads weights, got {found}'
    url = found[0][1]
    kind = backbone.type.split('.')[-1]
    if backbone.type.startswith('mmgate.'):
        assert url == PUBLISHED[(kind, backbone.depth)], (path, url)
        assert not backbone.get('deep_stem', False), \
            'the published weights have the plain stem'
    elif kind == 'ResNet':
        assert url == f'torchvision://resnet{backbone.depth}', (path, url)
    else:
        assert kind == 'ResNeXt'
        assert url == f'open-mmlab://resnext{backbone.depth}_32x4d', \
            (path, url)
    # the file name says which backbone it is
    depth = re.search(r'(skip)?res(net|next)(\d+)', name)
    assert depth and int(depth[3]) == backbone.depth, path
    assert bool(depth[1]) == backbone.type.startswith('mmgate.'), path


def test_the_mission_config_exists_and_says_skipresnet50():
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'cascade_rcnn_skipresnet50_coco.py'))
    assert cfg.model.type == 'CascadeRCNN'
    assert cfg.model.backbone.type == 'mmgate.SkipResNet'
    assert cfg.model.backbone.depth == 50
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)
    assert cfg.train_dataloader.batch_size == 2
    # ms-3x: 12 epochs of a 3x repeated COCO, both metrics evaluated
    assert cfg.train_dataloader.dataset.type == 'RepeatDataset'
    assert cfg.train_dataloader.dataset.times == 3
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
