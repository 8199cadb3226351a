# Cascade Mask R-CNN + FPN, SkipResNeXt-50-32x4d (the recipe and backbone
# settings of cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py; the authors'
# ImageNet weights). Paper: 47.45 box / 41.30 mask mAP (ResNeXt-50: 45.45 /
# 39.47).
_base_ = './cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py'

pretrained = ('https://github.com/takedarts/skipresnet-pretrained/releases/'
              'download/v20220420/skipresnext50_32x4d-ee04428b.pth')
model = dict(
    backbone=dict(
        type='mmgate.SkipResNeXt',
        depth=50,
        groups=32,
        width_per_group=4,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
