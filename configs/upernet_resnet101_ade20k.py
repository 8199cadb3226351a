# UPerNet, ResNet-101 baseline (the recipe of upernet_resnet50_ade20k.py;
# torchvision's ImageNet weights). Paper: 81.01 aAcc / 44.02 mIoU.
_base_ = './upernet_resnet50_ade20k.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
