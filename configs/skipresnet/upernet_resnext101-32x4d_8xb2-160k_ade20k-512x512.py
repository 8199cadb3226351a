# UPerNet, ResNeXt-101-32x4d baseline (the recipe of
# upernet_resnet50_8xb2-160k_ade20k-512x512.py; OpenMMLab's ImageNet weights).
# Paper: 81.14 aAcc / 44.07 mIoU.
_base_ = './upernet_resnext50-32x4d_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://resnext101_32x4d')))
