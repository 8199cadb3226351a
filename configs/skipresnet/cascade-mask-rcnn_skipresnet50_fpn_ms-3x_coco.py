# Cascade Mask R-CNN + FPN, SkipResNet-50, COCO instance segmentation.
#
# Everything but the backbone is cascade-mask-rcnn_resnet50_fpn_ms-3x_coco.py
# (the stock MMDetection multi-scale 3x recipe). The backbone is mmgate's
# SkipResNet, initialised from the authors' published ImageNet weights (a timm
# file that mmgate converts while loading; every key must fit). To use a local
# copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/skipresnet50.pth
#
# As in the stock recipe the stem and stage 1 are frozen and every BN keeps
# its ImageNet statistics (norm_eval=True), the gates' BNs included: with 2
# images per GPU the gate BNs, which see one pooled vector per image, would
# otherwise learn from a batch of 2.
#
# Paper (Cascade Mask R-CNN, SkipResNet-50): 47.72 box / 41.42 mask mAP
# (ResNet-50: 44.81 / 38.98).
_base_ = './cascade-mask-rcnn_resnet50_fpn_ms-3x_coco.py'

pretrained = ('https://github.com/takedarts/skipresnet-pretrained/releases/'
              'download/v20220420/skipresnet50-c24b1e79.pth')
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmgate.SkipResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
