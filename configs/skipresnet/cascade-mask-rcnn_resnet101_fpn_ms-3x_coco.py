# Cascade Mask R-CNN + FPN, ResNet-101 baseline (the recipe of
# cascade-mask-rcnn_resnet50_fpn_ms-3x_coco.py; torchvision's ImageNet
# weights). Paper: 44.81 box / 38.82 mask mAP.
_base_ = './cascade-mask-rcnn_resnet50_fpn_ms-3x_coco.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
