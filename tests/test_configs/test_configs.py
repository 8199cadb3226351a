"""Every config in configs/ loads, builds its model, dataset, pipeline and
optimizer wrapper, and trains one iteration on the CPU; every path the
README used to publish still loads the same config; the Dense recipe equals
what it was before it inherited the ResNet recipe.

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
import json
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS, FUNCTIONS, MODELS, init_default_scope

import mmgate  # noqa: F401
from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT
# Paths under configs/ that the README published before the configs moved
# into family folders -> where they are now. Each old path is a file that
# only inherits the new one (tested below), so old command lines still work.
LEGACY = {
    'cascade_rcnn_resnet101_coco.py':
    'skipresnet/cascade-mask-rcnn_resnet101_fpn_ms-3x_coco.py',
    'cascade_rcnn_resnet50_coco.py':
    'skipresnet/cascade-mask-rcnn_resnet50_fpn_ms-3x_coco.py',
    'cascade_rcnn_resnext101_32x4d_coco.py':
    'skipresnet/cascade-mask-rcnn_resnext101-32x4d_fpn_ms-3x_coco.py',
    'cascade_rcnn_resnext50_32x4d_coco.py':
    'skipresnet/cascade-mask-rcnn_resnext50-32x4d_fpn_ms-3x_coco.py',
    'cascade_rcnn_skipresnet101_coco.py':
    'skipresnet/cascade-mask-rcnn_skipresnet101_fpn_ms-3x_coco.py',
    'cascade_rcnn_skipresnet50_coco.py':
    'skipresnet/cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py',
    'cascade_rcnn_skipresnext101_32x4d_coco.py':
    'skipresnet/cascade-mask-rcnn_skipresnext101-32x4d_fpn_ms-3x_coco.py',
    'cascade_rcnn_skipresnext50_32x4d_coco.py':
    'skipresnet/cascade-mask-rcnn_skipresnext50-32x4d_fpn_ms-3x_coco.py',
    'cls_convnext_base_in1k.py':
    'skipconvnext/convnext-base_8xb128-cos300e_in1k.py',
    'cls_convnext_small_in1k.py':
    'skipconvnext/convnext-small_8xb128-cos300e_in1k.py',
    'cls_convnext_tiny_in1k.py':
    'skipconvnext/convnext-tiny_8xb128-cos300e_in1k.py',
    'cls_resnet101_in1k.py':
    'skipresnet/resnet101_8xb128-cos300e_in1k.py',
    'cls_resnet34_in1k.py':
    'skipresnet/resnet34_8xb128-cos300e_in1k.py',
    'cls_resnet50_in1k-pre_cifar100.py':
    'skipresnet/resnet50_in1k-pre_8xb16-cos50e_cifar100-224px.py',
    'cls_resnet50_in1k.py':
    'skipresnet/resnet50_8xb128-cos300e_in1k.py',
    'cls_resnext101_32x4d_in1k.py':
    'skipresnet/resnext101-32x4d_8xb128-cos300e_in1k.py',
    'cls_resnext50_32x4d_in1k.py':
    'skipresnet/resnext50-32x4d_8xb128-cos300e_in1k.py',
    'cls_skipconvnext_base_in1k.py':
    'skipconvnext/skipconvnext-base_8xb128-cos300e_in1k.py',
    'cls_skipconvnext_small_in1k.py':
    'skipconvnext/skipconvnext-small_8xb128-cos300e_in1k.py',
    'cls_skipconvnext_tiny_in1k.py':
    'skipconvnext/skipconvnext-tiny_8xb128-cos300e_in1k.py',
    'cls_skipresnet101_in1k.py':
    'skipresnet/skipresnet101_8xb128-cos300e_in1k.py',
    'cls_skipresnet34_in1k.py':
    'skipresnet/skipresnet34_8xb128-cos300e_in1k.py',
    'cls_skipresnet50_in1k-pre_cifar100.py':
    'skipresnet/skipresnet50_in1k-pre_8xb16-cos50e_cifar100-224px.py',
    'cls_skipresnet50_in1k.py':
    'skipresnet/skipresnet50_8xb128-cos300e_in1k.py',
    'cls_skipresnext101_32x4d_in1k.py':
    'skipresnet/skipresnext101-32x4d_8xb128-cos300e_in1k.py',
    'cls_skipresnext50_32x4d_in1k.py':
    'skipresnet/skipresnext50-32x4d_8xb128-cos300e_in1k.py',
    'upernet_resnet101_ade20k.py':
    'skipresnet/upernet_resnet101_8xb2-160k_ade20k-512x512.py',
    'upernet_resnet50_ade20k.py':
    'skipresnet/upernet_resnet50_8xb2-160k_ade20k-512x512.py',
    'upernet_resnext101_32x4d_ade20k.py':
    'skipresnet/upernet_resnext101-32x4d_8xb2-160k_ade20k-512x512.py',
    'upernet_resnext50_32x4d_ade20k.py':
    'skipresnet/upernet_resnext50-32x4d_8xb2-160k_ade20k-512x512.py',
    'upernet_skipresnet101_ade20k.py':
    'skipresnet/upernet_skipresnet101_8xb2-160k_ade20k-512x512.py',
    'upernet_skipresnet50_ade20k.py':
    'skipresnet/upernet_skipresnet50_8xb2-160k_ade20k-512x512.py',
    'upernet_skipresnext101_32x4d_ade20k.py':
    'skipresnet/upernet_skipresnext101-32x4d_8xb2-160k_ade20k-512x512.py',
    'upernet_skipresnext50_32x4d_ade20k.py':
    'skipresnet/upernet_skipresnext50-32x4d_8xb2-160k_ade20k-512x512.py',
    'seed_layers/cascade_rcnn_skipresnet50-gausspool_coco.py':
    'seed_layers/'
    'cascade-mask-rcnn_skipresnet50-gausspool-pre_fpn_ms-3x_coco.py',
}
LEGACY = {
    osp.join('configs', k): osp.join('configs', v)
    for k, v in LEGACY.items()
}
CONFIGS = sorted(
    osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in osp.relpath(p, ROOT).split(osp.sep)
    and osp.relpath(p, ROOT) not in LEGACY)
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


@pytest.fixture(scope='module')
def demo_roots(tiny_demo):
    return dict(
        coco=str(tiny_demo / 'coco') + '/',
        ade=str(tiny_demo / 'ade'),
        imagenet=str(tiny_demo / 'imagenet'))


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
        return [
            transform(
                dict(
                    img=rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
                    gt_label=i,
                    img_shape=(32, 32),
                    ori_shape=(32, 32))) for i in range(2)
        ]
    if scope == 'mmdet':
        data_cfg.update(
            data_root=demo_roots['coco'],
            metainfo=dict(classes=('person', 'ball', 'box', 'signboard')))
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
    _shrink_sizes(
        model_cfg.get('data_preprocessor') or {}, _factor(cfg, scope))
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
    before = {
        n: p.detach().clone()
        for n, p in model.named_parameters()
        if p.requires_grad and n.startswith('backbone.')
    }
    log_vars = model.train_step(data, optim_wrapper)
    assert torch.isfinite(log_vars['loss']), f'{path}: loss {log_vars}'
    moved = [
        n for n, p in model.named_parameters()
        if n in before and not torch.equal(p, before[n])
    ]
    assert len(moved) > len(before) // 2, \
        f'{path}: only {len(moved)} of {len(before)} backbone tensors moved'


@pytest.mark.parametrize('path', [
    p for p in CONFIGS
    if osp.dirname(p) in ('configs/skipresnet', 'configs/skipconvnext')
])
def test_config_points_at_the_right_weights(path):
    """Detection / segmentation / fine-tuning Skip configs load the authors'
    published weights for their depth; baselines torchvision's (ResNet) or
    OpenMMLab's (ResNeXt); ImageNet pre-training starts from scratch."""
    cfg = Config.fromfile(osp.join(ROOT, path))
    backbone = cfg.model.backbone
    found = _pretrained(cfg.model) + ([(backbone, cfg.model.pretrained)]
                                      if cfg.model.get('pretrained') else [])
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


@pytest.mark.parametrize(
    'path',
    [
        'configs/skipresnet/cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py',
        'configs/cascade_rcnn_skipresnet50_coco.py',  # the published path
    ])
def test_the_mission_config_exists_and_says_skipresnet50(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
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


def test_config_layout():
    """One folder per family (README.md + metafile.yml), MMDetection-style
    names; at the top level only the legacy paths."""
    top = {
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(ROOT, 'configs', '*.py'))
    }
    assert top == {p for p in LEGACY if osp.dirname(p) == 'configs'}
    for family in ('skipresnet', 'skipconvnext', 'dense', 'seed_layers'):
        for name in ('README.md', 'metafile.yml'):
            assert osp.isfile(osp.join(ROOT, 'configs', family, name)), \
                (family, name)
    for path in CONFIGS:
        name = osp.basename(path)
        if path.startswith('configs/demo/'):
            continue  # kept: tools/run_demo.sh and the tests use them
        # {method_}{backbone}_{gpus}x{b}{batch}[-schedule]_{data}.py
        assert name.startswith(('cascade-mask-rcnn_', 'upernet_')) or \
            re.match(r'^[a-z0-9.-]+_', name), name
        assert re.search(r'_(ms-3x|\d+xb\d+[-a-z0-9]*)_', name), name
        assert name.endswith(
            ('_coco.py', '_in1k.py', '-160px.py', '-512x512.py', '_cifar10.py',
             '_cifar100.py', '-224px.py')), name


@pytest.mark.parametrize('old', sorted(LEGACY))
def test_legacy_path_resolves_to_its_new_file(old):
    """A published path still loads, and to exactly the config of the file
    that replaced it (same model, same everything)."""
    new = LEGACY[old]
    with open(osp.join(ROOT, old)) as f:
        code = [line for line in f if not line.startswith('#')]
    # nothing but the inheritance
    assert ''.join(code).replace('\n', '').replace(
        ' ', '') in (f"_base_=['./{osp.relpath(new, osp.dirname(old))}']",
                     "_base_=['./{}/''{}']".format(
                         *osp.split(osp.relpath(new, osp.dirname(old))))), code
    old_cfg = Config.fromfile(osp.join(ROOT, old))
    new_cfg = Config.fromfile(osp.join(ROOT, new))
    assert old_cfg.model == new_cfg.model
    assert old_cfg.to_dict() == new_cfg.to_dict()


def test_dense_recipe_inherits_the_resnet_recipe_unchanged():
    """``tests/data/dense_in1k_configs_before.json`` holds the merged
    configs of the Dense family's ImageNet configs from before their recipe
    inherited ``configs/_base_/in1k_resnet_recipe.py``: they must not have
    changed."""
    recipe = osp.join(ROOT, 'configs', 'dense', '_base_',
                      'in1k_paper_recipe.py')
    with open(recipe) as f:
        assert "_base_ = '../../_base_/in1k_resnet_recipe.py'" in f.read()
    with open(
            osp.join(ROOT, 'tests', 'data',
                     'dense_in1k_configs_before.json')) as f:
        before = json.load(f)
    # DenseResNet-34 x4, -50, ResNet-34, MobileNetV2, Dense-MobileNetV2 x2
    assert len(before) == 9
    for name, old in before.items():
        new = Config.fromfile(osp.join(ROOT, 'configs', 'dense', name))
        # what changed since: mmgate's Runner and its checkpoint hook
        expected = copy.deepcopy(old)
        expected['runner_type'] = 'mmgate.Runner'
        expected['default_hooks']['checkpoint']['type'] = \
            'mmgate.CheckpointHook'
        assert json.loads(json.dumps(new.to_dict())) == expected, name


def test_every_config_runs_on_mmgates_runner():
    """Every config (the demos, the baselines and the legacy paths too)
    selects ``mmgate.Runner``, and names no checkpoint hook but mmgate's."""
    wrong = []
    for path in CONFIGS + sorted(LEGACY):
        cfg = Config.fromfile(osp.join(ROOT, path))
        hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
        if cfg.get('runner_type') != 'mmgate.Runner' or hook.get(
                'type') not in ('mmgate.CheckpointHook', 'CheckpointHook'):
            wrong.append(f'{path}: {cfg.get("runner_type")} '
                         f'{hook.get("type")}')
    assert not wrong, wrong
