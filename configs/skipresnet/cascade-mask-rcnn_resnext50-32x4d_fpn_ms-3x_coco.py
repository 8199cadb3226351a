# Cascade Mask R-CNN + FPN, ResNeXt-50-32x4d baseline (the recipe of
# cascade-mask-rcnn_resnet50_fpn_ms-3x_coco.py; OpenMMLab's ImageNet weights,
# as MMDetection uses for its ResNeXt configs). Paper: 45.45 box / 39.47 mask
# mAP.
_base_ = './cascade-mask-rcnn_resnet50_fpn_ms-3x_coco.py'

model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=50,
        groups=32,
        base_width=4,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://resnext50_32x4d')))
