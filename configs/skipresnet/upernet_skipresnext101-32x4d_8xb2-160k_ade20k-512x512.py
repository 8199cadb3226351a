# UPerNet, SkipResNeXt-101-32x4d (the recipe and backbone settings of
# upernet_skipresnet50_8xb2-160k_ade20k-512x512.py; the authors' ImageNet
# weights). Paper: 81.85 aAcc / 45.65 mIoU (ResNeXt-101: 81.14 / 44.07).
_base_ = './upernet_skipresnext50-32x4d_8xb2-160k_ade20k-512x512.py'

pretrained = ('https://github.com/takedarts/skipresnet-pretrained/releases/'
              'download/v20220420/skipresnext101_32x4d-5389c356.pth')
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
