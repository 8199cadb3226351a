# UPerNet, ResNeXt-50-32x4d baseline (the recipe of upernet_resnet50_ade20k.py;
# OpenMMLab's ImageNet weights). Paper: 80.36 aAcc / 42.69 mIoU.
_base_ = './upernet_resnet50_ade20k.py'

model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=50,
        groups=32,
        base_width=4,
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://resnext50_32x4d')))
