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

ROOT = Path(__file__).parents[1]


def _sample(masks: bool):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    h, w = 64, 96
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1., 1.)))
    gt = dict(bboxes=torch.tensor([[10., 8., 50., 40.], [40., 20., 90., 60.]]),
              labels=torch.tensor([3, 7]))
    if masks:
        m = torch.zeros(2, h, w, dtype=torch.uint8)
        m[0, 8:40, 10:50] = 1
        m[1, 20:60, 40:90] = 1
        gt['masks'] = BitmapMasks(m.numpy(), h, w)
    sample.gt_instances = InstanceData(**gt)
    img = torch.randint(0, 255, (3, h, w), dtype=torch.uint8)
    return dict(inputs=[img], data_samples=[sample])


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
    before = {n: p.detach().clone() for n, p in model.named_parameters()
              if watched in n and p.requires_grad}
    assert before, f'no trainable parameter named *{watched}*'
    optim = build_optim_wrapper(
        model, dict(type='OptimWrapper',
                    optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    log_vars = model.train_step(_sample(masks), optim)
    assert torch.isfinite(log_vars['loss'])
    unchanged = [n for n, p in model.named_parameters()
                 if n in before and torch.equal(p, before[n])]
    assert not unchanged, f'no gradient reached {unchanged[:3]}'
    return model


def test_cascade_mask_rcnn_with_gaussian_pool_skip_backbone():
    """The seed_layers detection config, at depth 18 and base width 16."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(
        str(ROOT / 'configs/seed_layers/'
                   'cascade_rcnn_skipresnet50-gausspool_coco.py'))
    assert cfg.model.backbone.type == 'mmgate.PriorPoolSkipResNet'
    cfg.model.backbone.update(depth=18, base_channels=16, init_cfg=None)
    cfg.model.neck.in_channels = [16, 32, 64, 128]
    _train_step(cfg, '.0.pool.prior.', masks=True)


FASTER_RCNN = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
LAYERS = {
    'maxent_pool': (dict(type='mmgate.PriorPoolResNet', depth=18,
                         base_channels=16, pool_cfg=dict(type='MaxEntPool2d'),
                         pool_placement='post', frozen_stages=-1),
                    [16, 32, 64, 128], 'pool.prior.conv'),
    'gaussian_conv': (dict(type='ResNet', depth=50, base_channels=16,
                           dcn=dict(type='mmgate.GaussianPriorConv2d'),
                           stage_with_dcn=(False, True, True, True)),
                      [64, 128, 256, 512], 'prior_rho'),
    'flgc_dup': (dict(type='mmgate.SkipResNet', depth=50, base_channels=16,
                      dcn=dict(type='mmgate.LearnableGroupConv2d',
                               num_groups=4, duplicate=True,
                               dup_source='logit'),
                      stage_with_dcn=(False, True, True, True)),
                 [64, 128, 256, 512], 'group_logits'),
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
