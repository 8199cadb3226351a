"""Each seed layer inside a backbone inside a real MMDetection detector (stock
configs, tiny widths and images) runs a training step, and the layer's own
parameters learn."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from tests.helpers import REPO_ROOT, det_batch

ROOT = Path(REPO_ROOT)


def _shrink(cfg, width: int = 32):
    """Narrow the neck and heads (256 / 1024 channels) to ``width``."""
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key in ('in_channels', 'out_channels', 'feat_channels',
                       'conv_out_channels', 'fc_out_channels') \
                    and value in (256, 1024):
                cfg[key] = width
            else:
                _shrink(value, width)
    elif isinstance(cfg, (list, tuple)):
        for item in cfg:
            _shrink(item, width)


def _train_step(cfg, watched: str, masks: bool = False):
    """One SGD step of the detector (neck and heads narrowed, the
    constructors' init); the parameters whose names contain ``watched`` must
    all exist and change."""
    from mmdet.registry import MODELS
    for part in ('neck', 'rpn_head', 'roi_head'):
        _shrink(cfg.model[part])
    model = MODELS.build(cfg.model)
    model.train()
    before = {
        n: p.detach().clone()
        for n, p in model.named_parameters()
        if watched in n and p.requires_grad
    }
    assert before, f'no trainable parameter named *{watched}*'
    optim = build_optim_wrapper(
        model,
        dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    log_vars = model.train_step(det_batch(masks=masks), optim)
    assert torch.isfinite(log_vars['loss'])
    unchanged = [
        n for n, p in model.named_parameters()
        if n in before and torch.equal(p, before[n])
    ]
    assert not unchanged, f'no gradient reached {unchanged[:3]}'
    return model


def test_cascade_mask_rcnn_with_gaussian_pool_skip_backbone():
    """The seed_layers detection config, at depth 18 and base width 16."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(
        str(ROOT / 'configs/seed_layers/cascade-mask-rcnn_'
            'skipresnet50-gausspool-pre_fpn_ms-3x_coco.py'))
    assert cfg.model.backbone.type == 'mmgate.PriorPoolSkipResNet'
    cfg.model.backbone.update(depth=18, base_channels=16, init_cfg=None)
    cfg.model.neck.in_channels = [16, 32, 64, 128]
    _train_step(cfg, '.0.pool.prior.', masks=True)


FASTER_RCNN = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
LAYERS = {
    'maxent_pool': (dict(
        type='mmgate.PriorPoolResNet',
        depth=18,
        base_channels=16,
        pool_cfg=dict(type='MaxEntPool2d'),
        pool_placement='post',
        frozen_stages=-1), [16, 32, 64, 128], 'pool.prior.conv'),
    'gaussian_conv': (dict(
        type='ResNet',
        depth=50,
        base_channels=16,
        dcn=dict(type='mmgate.GaussianPriorConv2d'),
        stage_with_dcn=(False, True, True, True)), [64, 128, 256,
                                                    512], 'prior_rho'),
    'flgc_dup': (dict(
        type='mmgate.SkipResNet',
        depth=50,
        base_channels=16,
        dcn=dict(
            type='mmgate.LearnableGroupConv2d',
            num_groups=4,
            duplicate=True,
            dup_source='logit'),
        stage_with_dcn=(False, True, True, True)), [64, 128, 256,
                                                    512], 'group_logits'),
}


@pytest.mark.parametrize('layer', sorted(LAYERS))
def test_faster_rcnn_with_seed_layer(layer):
    init_default_scope('mmdet')
    cfg = get_config(FASTER_RCNN)
    backbone, channels, watched = LAYERS[layer]
    cfg.model.backbone.update(copy.deepcopy(backbone))
    cfg.model.backbone.init_cfg = None
    cfg.model.neck.in_channels = channels
    model = _train_step(cfg, watched)
    if layer == 'flgc_dup':
        from mmgate.models.layers import learnable_group_stats
        stats = learnable_group_stats(model)
        assert len(stats) == 13  # the 3x3 of every block of stages 2-4
