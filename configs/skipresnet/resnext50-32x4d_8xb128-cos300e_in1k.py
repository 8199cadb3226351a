# ResNeXt-50-32x4d on ImageNet-1k, the authors' recipe
# (configs/_base_/in1k_resnet_recipe.py: 8 GPUs x 128 images, 300 epochs, SGD
# nesterov lr 0.4, cosine, CutMix). MMPretrain's ResNeXt. Paper: 79.73 top-1
# (SkipResNeXt-50-32x4d: 80.67, skipresnext50-32x4d_8xb128-cos300e_in1k.py).
_base_ = '../_base_/in1k_resnet_recipe.py'

model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=50,
        groups=32,
        width_per_group=4,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    head=dict(in_channels=2048))
