# UPerNet, SkipResNet-50, ADE20k semantic segmentation (512x512, 160k iters).
#
# Everything but the backbone is upernet_resnet50_8xb2-160k_ade20k-512x512.py
# (the stock MMSegmentation recipe on 8 GPUs x 2 images). The backbone is
# mmgate's SkipResNet with the authors' published ImageNet weights. Those
# weights have the plain 7x7 stem, so this is SkipResNet, not SkipResNetV1c
# (whose deep stem they would not fit). Local copy of the weights:
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/skipresnet50.pth
#
# MMSegmentation trains its BNs (norm_eval=False, SyncBN); the gates' norms
# use SyncBN as well, so that their statistics come from all 16 images of an
# iteration, not from the 2 on one GPU.
#
# Paper (UPerNet, SkipResNet-50): 80.16 aAcc / 42.44 mIoU (ResNet-50: 80.19 /
# 41.94).
_base_ = './upernet_resnet50_8xb2-160k_ade20k-512x512.py'

norm_cfg = dict(type='SyncBN', requires_grad=True)
pretrained = ('https://github.com/takedarts/skipresnet-pretrained/releases/'
              'download/v20220420/skipresnet50-c24b1e79.pth')
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmgate.SkipResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 1, 1),
        strides=(1, 2, 2, 2),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        gate_norm_cfg=norm_cfg,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
