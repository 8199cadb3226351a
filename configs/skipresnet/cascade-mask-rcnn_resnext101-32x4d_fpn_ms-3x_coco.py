# Cascade Mask R-CNN + FPN, ResNeXt-101-32x4d baseline (the recipe of
# cascade-mask-rcnn_resnet50_fpn_ms-3x_coco.py; OpenMMLab's ImageNet weights,
# as in mmdet::cascade_rcnn/cascade-mask-rcnn_x101-32x4d_fpn_ms-3x_coco.py).
# Paper: 46.09 box / 39.82 mask mAP.
_base_ = './cascade-mask-rcnn_resnext50-32x4d_fpn_ms-3x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://resnext101_32x4d')))
