# UPerNet, SkipResNeXt-50-32x4d (the recipe and backbone settings of
# upernet_skipresnet50_8xb2-160k_ade20k-512x512.py; the authors' ImageNet
# weights). Paper: 80.74 aAcc / 43.39 mIoU (ResNeXt-50: 80.36 / 42.69).
_base_ = './upernet_skipresnet50_8xb2-160k_ade20k-512x512.py'

pretrained = ('https://github.com/takedarts/skipresnet-pretrained/releases/'
              'download/v20220420/skipresnext50_32x4d-ee04428b.pth')
model = dict(
    backbone=dict(
        type='mmgate.SkipResNeXt',
        depth=50,
        groups=32,
        width_per_group=4,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
