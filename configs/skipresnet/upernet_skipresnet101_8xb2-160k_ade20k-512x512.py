# UPerNet, SkipResNet-101 (the recipe and backbone settings of
# upernet_skipresnet50_8xb2-160k_ade20k-512x512.py; the authors' ImageNet
# weights). Paper: 81.38 aAcc / 44.43 mIoU (ResNet-101: 81.01 / 44.02).
_base_ = './upernet_skipresnet50_8xb2-160k_ade20k-512x512.py'

pretrained = ('https://github.com/takedarts/skipresnet-pretrained/releases/'
              'download/v20220420/skipresnet101-c36370cc.pth')
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
