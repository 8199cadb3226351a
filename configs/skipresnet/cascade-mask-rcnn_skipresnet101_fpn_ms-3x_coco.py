# Cascade Mask R-CNN + FPN, SkipResNet-101 (the recipe and backbone settings of
# cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py; the authors' ImageNet
# weights). Paper: 48.22 box / 42.01 mask mAP (ResNet-101: 44.81 / 38.82).
_base_ = './cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py'

pretrained = ('https://github.com/takedarts/skipresnet-pretrained/releases/'
              'download/v20220420/skipresnet101-c36370cc.pth')
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
