# Cascade Mask R-CNN + FPN, SkipResNeXt-101-32x4d (the recipe and backbone
# settings of cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py; the authors'
# ImageNet weights). Paper: 48.86 box / 42.24 mask mAP (ResNeXt-101: 46.09 /
# 39.82).
_base_ = './cascade-mask-rcnn_skipresnext50-32x4d_fpn_ms-3x_coco.py'

pretrained = ('https://github.com/takedarts/skipresnet-pretrained/releases/'
              'download/v20220420/skipresnext101_32x4d-5389c356.pth')
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
