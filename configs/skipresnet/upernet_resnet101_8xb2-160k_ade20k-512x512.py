# UPerNet, ResNet-101 baseline (the recipe of
# upernet_resnet50_8xb2-160k_ade20k-512x512.py; torchvision's ImageNet
# weights). Paper: 81.01 aAcc / 44.02 mIoU.
_base_ = './upernet_resnet50_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
