"""Stock MMDetection / MMSegmentation configs with the backbone swapped for
an mmgate one: the detector / segmentor builds and trains one step."""
import copy

import pytest
import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from tests.helpers import det_batch, stock_config

BACKBONES = {
    'skipresnet': (dict(
        type='mmgate.SkipResNet',
        depth=18,
        base_channels=16,
        norm_eval=True,
        frozen_stages=1), [16, 32, 64, 128]),
    'skipresnext': (dict(
        type='mmgate.SkipResNeXt',
        depth=50,
        groups=4,
        width_per_group=4,
        base_channels=16), [64, 128, 256, 512]),
    'skipconvnext': (dict(
        type='mmgate.SkipConvNeXt',
        arch=dict(depths=[1, 1, 2, 1], channels=[16, 32, 64, 128]),
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False), [16, 32, 64, 128]),
}


def _train_step(model, data, optim_cfg):
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    model.train()
    before = {
        n: p.detach().clone()
        for n, p in model.named_parameters()
        if 'backbone.layer4' in n or 'backbone.stages.3' in n
    }
    log_vars = model.train_step(data, optim_wrapper)
    assert torch.isfinite(log_vars['loss'])
    changed = [
        n for n, p in model.named_parameters()
        if n in before and not torch.equal(p, before[n])
    ]
    assert changed, 'the gated backbone did not receive gradients'
    return log_vars


@pytest.mark.parametrize('backbone', sorted(BACKBONES))
def test_cascade_mask_rcnn_trains_one_step(backbone):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = stock_config(
        'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py')
    bb, channels = BACKBONES[backbone]
    cfg.model.backbone = copy.deepcopy(bb)
    cfg.model.neck.in_channels = channels
    # stock heads, fewer sampled proposals: the step stays a few seconds
    cfg.model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=64)
    for stage_cfg in cfg.model.train_cfg.rcnn:
        stage_cfg.sampler.num = 32
    model = MODELS.build(cfg.model)
    model.init_weights()

    log_vars = _train_step(
        model, det_batch(96, 128, masks=True),
        dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    assert {'s0.loss_cls', 's2.loss_mask', 'loss_rpn_cls'} <= set(log_vars)


@pytest.mark.parametrize('backbone', ['skipresnet', 'skipconvnext'])
def test_upernet_trains_one_step(backbone):
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    init_default_scope('mmseg')
    cfg = stock_config('mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py')
    bb, channels = BACKBONES[backbone]
    cfg.model.backbone = copy.deepcopy(bb)
    cfg.model.pretrained = None  # the stock one names a ResNetV1c file
    cfg.model.decode_head.in_channels = channels
    cfg.model.decode_head.channels = 32
    cfg.model.auxiliary_head.in_channels = channels[2]
    cfg.model.auxiliary_head.channels = 16
    cfg.model.data_preprocessor.size = (64, 64)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))  # no SyncBN on CPU
    model.init_weights()
    imgs, samples = [], []
    for _ in range(2):  # the PPM's 1x1 branch needs 2 samples for BN
        imgs.append(torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8))
        sample = SegDataSample(
            metainfo=dict(
                img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 64, 64)))
        samples.append(sample)
    log_vars = _train_step(
        model, dict(inputs=imgs, data_samples=samples),
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01)))
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(log_vars)
