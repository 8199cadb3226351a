"""The dense backbones inside the downstream projects: registry builds by
``type='mmgate.…'``, one training step of a stock MMDetection detector, and
the configs in configs/dense/."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope, init_default_scope

from tests.helpers import REPO_ROOT, det_batch

TINY = {
    'DenseResNet': dict(depth=18, base_channels=8, num_connections=4),
    'DenseResNetCIFAR': dict(depth=20, num_connections=4),
    'DenseMobileNetV2': dict(widen_factor=0.25, out_indices=(7, )),
}
CONFIG_DIR = osp.join(REPO_ROOT, 'configs', 'dense')


@pytest.mark.parametrize('project', ['mmdet', 'mmseg', 'mmpretrain'])
@pytest.mark.parametrize('name', sorted(TINY))
def test_build_by_scoped_type(project, name):
    registry = __import__(f'{project}.registry', fromlist=['MODELS']).MODELS
    DefaultScope.get_instance(
        f'test-dense-{project}-{name}', scope_name=project)
    model = registry.build(dict(type=f'mmgate.{name}', **TINY[name]))
    assert type(model).__name__ == name
    assert model.eval()(torch.rand(1, 3, 32, 32))


def test_faster_rcnn_trains_one_step():
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    from mmengine.hub import get_config
    cfg = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.model.backbone = dict(
        type='mmgate.DenseResNet',
        depth=18,
        base_channels=16,
        num_connections=4,
        frozen_stages=1,
        norm_eval=True)
    cfg.model.neck.in_channels = [16, 32, 64, 128]
    cfg.model.neck.out_channels = 32
    cfg.model.rpn_head.in_channels = 32
    cfg.model.rpn_head.feat_channels = 32
    cfg.model.roi_head.bbox_roi_extractor.out_channels = 32
    cfg.model.roi_head.bbox_head.in_channels = 32
    cfg.model.roi_head.bbox_head.fc_out_channels = 64
    model = MODELS.build(cfg.model)
    model.init_weights()
    optim_wrapper = build_optim_wrapper(
        model,
        dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    model.train()
    gate = model.backbone.layer4[0].gate
    before = gate.conv2.weight.detach().clone()
    stem = model.backbone.conv1.weight.detach().clone()
    log_vars = model.train_step(det_batch(96, 120), optim_wrapper)
    assert torch.isfinite(log_vars['loss'])
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox'} <= set(log_vars)
    assert not torch.equal(gate.conv2.weight, before)  # gates train
    assert torch.equal(model.backbone.conv1.weight, stem)  # stem frozen
    assert not gate.norm.training  # norm_eval reaches the gate norms


def _configs():
    return sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))


def test_config_set_is_complete():
    names = {osp.basename(p) for p in _configs()}
    for n in (2, 4, 6, 8):
        assert f'dense-resnet34-n{n}_1xb64-cos300e_in1k-160px.py' in names
    assert {
        'dense-resnet110-n4_1xb64-cos300e_cifar100.py',
        'dense-mobilenetv2-1.0_1xb64-cos300e_in1k.py',
        'dense-mobilenetv2-1.4_1xb64-cos300e_in1k.py',
        'dense-resnet50-n4_1xb64-cos300e_in1k-160px.py',
        'resnet34_1xb64-cos300e_in1k-160px.py',
        'mobilenetv2-1.0_1xb64-cos300e_in1k.py',
        'cascade-mask-rcnn_dense-resnet50-n4_fpn_ms-3x_coco.py',
        'upernet_dense-resnet50-n4_4xb4-160k_ade20k-512x512.py'
    } <= names


@pytest.mark.parametrize('path', _configs(), ids=osp.basename)
def test_config_backbone_builds(path):
    from mmengine.registry import MODELS
    cfg = Config.fromfile(path)
    backbone = copy.deepcopy(cfg.model.backbone)
    backbone.pop('init_cfg', None)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(backbone)
    name = osp.basename(path)
    assert backbone.type.startswith('mmgate.Dense') == name.startswith(
        ('dense', 'cascade', 'upernet'))
    if 'in1k' in name or 'cifar' in name:
        # the paper's recipe: BNs train, Nesterov SGD, batch 64
        assert cfg.model.backbone.get('norm_eval', False) is False
        feat = model.feat_dim if hasattr(model, 'feat_dim') else 1280
        assert cfg.model.head.in_channels == feat
        opt = cfg.optim_wrapper.optimizer
        assert opt.type == 'SGD' and opt.nesterov and opt.momentum == 0.9
        assert cfg.train_dataloader.batch_size == 64
        assert cfg.train_cfg.max_epochs == 300
    if 'coco' in name:
        assert cfg.default_scope == 'mmdet'
        assert cfg.model.neck.in_channels == [256, 512, 1024, 2048]
        assert cfg.model.backbone.norm_eval is True
    if 'ade20k' in name:
        assert cfg.default_scope == 'mmseg'
        assert cfg.model.decode_head.in_channels == [256, 512, 1024, 2048]
