# Fine-tuning SkipResNet-50 from the authors' ImageNet weights on CIFAR-100:
# the recipe of resnet50_in1k-pre_8xb16-cos50e_cifar100-224px.py (not from the
# paper) with mmgate's SkipResNet. Local copy of the weights:
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/skipresnet50.pth
_base_ = './resnet50_in1k-pre_8xb16-cos50e_cifar100-224px.py'

pretrained = ('https://github.com/takedarts/skipresnet-pretrained/releases/'
              'download/v20220420/skipresnet50-c24b1e79.pth')
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmgate.SkipResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
