# UPerNet, ResNeXt-50-32x4d baseline (the recipe of
# upernet_resnet50_8xb2-160k_ade20k-512x512.py; OpenMMLab's ImageNet weights).
# Paper: 80.36 aAcc / 42.69 mIoU.
_base_ = './upernet_resnet50_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=50,
        groups=32,
        base_width=4,
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://resnext50_32x4d')))
