"""A true drop-in: stock configs of the installed MMDetection,
MMSegmentation and MMPretrain with *only* the backbone ``type`` swapped for
mmgate's.

For every config, under the host library's default scope:

- the backbone built from the config's own kwargs is compared with the
  stock class built from the same kwargs: every stock key exists with the
  same shape (mmgate adds only ``.gate.`` keys), the same BatchNorms are in
  training mode after ``train()`` (the gates' norms follow ``norm_eval``),
  the same non-gate parameters are trainable, and the outputs have the same
  shapes;
- the whole detector / segmentor / classifier with the gated backbone runs
  one training step and one prediction on a tiny random input.

The list covers two-stage, one-stage, anchor-free (caffe style, frozen BN),
DETR (``out_indices=(3, )``), instance segmentation with ResNeXt
(``base_width``), the C4 shared head (``num_stages=3``), GCNet plugins,
GroupNorm + weight standardisation (``conv_cfg=ConvWS``), deformable convs
(``dcn``),
dilated segmentation (``ResNetV1c``, ``multi_grid``), Mask2Former (no
``norm_eval`` in the config), and MMPretrain's ResNet / ResNetV1d / ResNeXt
/ ConvNeXt-V2 (GRN) classifiers.
"""
import copy
import time

import pytest
import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch.nn.modules.batchnorm import _BatchNorm

from mmgate.models.layers import GateModule
from tests.helpers import cls_batch, det_batch, seg_batch, stock_config

SWAP = {
    'ResNet': 'SkipResNet',
    'ResNetV1c': 'SkipResNetV1c',
    'ResNetV1d': 'SkipResNetV1d',
    'ResNeXt': 'SkipResNeXt',
    'ConvNeXt': 'SkipConvNeXt'
}
ZOO = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'mmdet::mask_rcnn/mask-rcnn_x101-32x4d_fpn_1x_coco.py',
    'mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py',
    'mmdet::detr/detr_r50_8xb2-150e_coco.py',
    'mmdet::gcnet/mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py',
    'mmdet::gn+ws/faster-rcnn_r50_fpn_gn-ws-all_1x_coco.py',
    'mmdet::dcn/faster-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py',
    'mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py',
    'mmseg::deeplabv3/'
    'deeplabv3_r101-d16-mg124_4xb2-40k_cityscapes-512x1024.py',
    'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
    'mmpretrain::resnet/resnet50_8xb32_in1k.py',
    'mmpretrain::resnet/resnetv1d50_8xb32_in1k.py',
    'mmpretrain::resnext/resnext50-32x4d_8xb32_in1k.py',
    'mmpretrain::convnext_v2/convnext-v2-atto_32xb32_in1k.py',
]
STEP_TIMES = {}


def _registry(host):
    return __import__(f'{host}.registry', fromlist=['MODELS']).MODELS


def _no_pretrained(cfg):
    """Drop every ``Pretrained`` init (tests run offline)."""
    if isinstance(cfg, dict):
        if isinstance(cfg.get('init_cfg'), dict) and \
                cfg['init_cfg'].get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        if cfg.get('pretrained'):
            cfg['pretrained'] = None
        for value in cfg.values():
            _no_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _no_pretrained(value)


def _backbone_cfgs(cfg):
    _no_pretrained(cfg.model)
    stock = copy.deepcopy(cfg.model.backbone)
    gated = dict(stock, type='mmgate.' + SWAP[stock['type']])
    return stock, gated


def _norm_states(model, gates):
    return [
        m.training for n, m in model.named_modules()
        if isinstance(m, _BatchNorm) and ('.gate.' in f'.{n}.') == gates
    ]


def _trainable(model):
    return sum(p.numel() for n, p in model.named_parameters()
               if p.requires_grad and '.gate.' not in f'.{n}')


@pytest.mark.parametrize('path', ZOO, ids=lambda p: p.split('/')[-1][:-3])
def test_type_swap_matches_stock_and_trains(path):
    host = path.split('::')[0]
    init_default_scope(host)
    cfg = stock_config(path)
    stock_cfg, gated_cfg = _backbone_cfgs(cfg)
    registry = _registry(host)
    stock = revert_sync_batchnorm(registry.build(stock_cfg))
    gated = revert_sync_batchnorm(registry.build(gated_cfg))

    # the same weights layout, plus the gates
    ours, theirs = gated.state_dict(), stock.state_dict()
    assert set(theirs) <= set(ours), sorted(set(theirs) - set(ours))[:5]
    assert all(ours[k].shape == v.shape for k, v in theirs.items())
    assert all('.gate.' in k for k in set(ours) - set(theirs))
    # the same training state: BN modes, trainable parameters; a gate's BN
    # is in the mode of its block's BNs (frozen stages, norm_eval)
    stock.train()
    gated.train()
    assert _norm_states(gated, False) == _norm_states(stock, False)
    for name, block in gated.named_modules():
        gate = getattr(block, 'gate', None)
        if isinstance(gate, GateModule) and isinstance(gate.norm, _BatchNorm) \
                and isinstance(block.norm1, _BatchNorm):
            assert gate.norm.training == block.norm1.training, name
    assert _trainable(gated) == _trainable(stock)
    # the same outputs
    x = torch.rand(1, 3, 128, 128)  # DCN wants >= 3x3 maps in stage 4
    stock.eval()
    gated.eval()
    with torch.no_grad():
        assert [o.shape for o in gated(x)] == [o.shape for o in stock(x)]

    # the whole model with the gated backbone: one step, one prediction
    cfg.model.backbone = gated_cfg
    model = revert_sync_batchnorm(registry.build(cfg.model))
    model.init_weights()
    if host == 'mmdet':
        data = det_batch(96, 128, masks=True)
    elif host == 'mmseg':
        data = seg_batch(64, 64, images=2)  # PSP pools to 1x1 bins
    else:
        data = cls_batch(64)
    optim = build_optim_wrapper(
        model,
        dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=1e-3, momentum=0.9)))
    model.train()
    start = time.perf_counter()
    losses = model.train_step(data, optim)
    STEP_TIMES[path] = time.perf_counter() - start
    assert losses and all(torch.isfinite(v).all() for v in losses.values())
    model.eval()
    with torch.no_grad():
        preds = model.test_step(data)
    assert len(preds) == len(data['inputs'])
